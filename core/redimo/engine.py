"""The command engine: one Redis command in (bytes), one Redis reply out."""

from __future__ import annotations

from typing import Callable, Sequence

from .commands import COMMANDS
from .commands.base import Reply
from .gateway import Gateway
from .protocol import ReplyError, wrong_arity
from .storage import Database, millis


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
            shown = " ".join(f"'{arg.decode(errors='replace')}'" for arg in rest[:8])
            raise ReplyError(f"ERR unknown command '{bytes(name).decode(errors='replace')}', "
                             f"with args beginning with: {shown}")
        if (spec.arity >= 0 and len(args) != spec.arity) or len(args) < -spec.arity:
            raise wrong_arity(spec.name)
        return spec.handler(self.db, list(rest))
