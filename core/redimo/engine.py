"""The command engine: one Redis command in (bytes), one Redis reply out."""

from __future__ import annotations

from typing import Callable, Sequence

from botocore.exceptions import ClientError

from .commands import COMMANDS
from .commands.base import Reply, c_string
from .gateway import Gateway
from .protocol import ReplyError, wrong_arity
from .storage import Database, millis


def unknown_command(name: bytes, args: Sequence[bytes]) -> str:
    """Redis's message: the name and the arguments (each ``'arg' ``) cut to 128 characters, as C
    strings (up to a NUL)."""
    shown = b""
    for arg in args:
        if len(shown) >= 128:
            break
        shown += b"'" + c_string(arg)[:128 - len(shown)] + b"' "
    text = b"ERR unknown command '" + c_string(name)[:128] + b"', with args beginning with: " + shown
    return text.decode(errors="replace")


class Engine:
    """Executes Redis commands against one namespace of a DynamoDB table."""

    def __init__(self, gateway: Gateway, namespace: str = "0", clock: Callable[[], int] = millis) -> None:
        self.gateway = gateway
        self.db = Database(gateway, namespace, clock)

    def execute(self, args: Sequence[bytes]) -> Reply:
        """Run one command; raises :class:`ReplyError` for an error reply."""
        if not args:
            raise ReplyError("ERR empty command")
        name, *rest = args
        spec = COMMANDS.get(bytes(name).lower())
        if spec is None:
            raise ReplyError(unknown_command(bytes(name), rest))
        if (spec.arity >= 0 and len(args) != spec.arity) or len(args) < -spec.arity:
            raise wrong_arity(spec.name)
        try:
            return spec.handler(self.db, list(rest))
        except ClientError as error:  # DynamoDB refused the request: an error reply, not a crash
            details = error.response.get("Error", {})
            raise ReplyError(f"ERR DynamoDB {details.get('Code', 'error')}: {details.get('Message', error)}") from error
