"""The command engine: one Redis command in (bytes), one Redis reply out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from botocore.exceptions import ClientError
from redis.exceptions import RedisError

from .commands import COMMANDS
from .commands.base import Command, Reply, c_string
from .commands.transactions import QUEUED, READ_ONLY, SESSION_COMMANDS, command_keys
from .compact import Limits
from .gateway import Gateway, Item
from .protocol import ReplyError, wrong_arity
from .staging import Key, Prefetched, head_keys
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


@dataclass
class Session:
    """The state of one client connection: the MULTI queue (None outside MULTI), whether a command
    was refused while queuing (EXEC then aborts), and the WATCHed keys with their heads as read."""

    queue: list[list[bytes]] | None = None
    dirty: bool = False
    watched: dict[bytes, tuple[Item | None, bool]] = field(default_factory=dict)  # (head, live then)
    touched: set[Key] = field(default_factory=set)  # items this connection wrote while watching

    def reset(self) -> None:
        self.queue, self.dirty = None, False
        self.watched.clear()
        self.touched.clear()


class Engine:
    """Executes Redis commands against one namespace of a DynamoDB table. Connection state (MULTI,
    WATCH) lives in a :class:`Session` the caller keeps per connection."""

    def __init__(self, gateway: Gateway, namespace: str = "0", clock: Callable[[], int] = millis,
                 compact: Limits | None = None) -> None:
        self.gateway = gateway
        self.db = Database(gateway, namespace, clock, compact)

    def execute(self, args: Sequence[bytes], session: Session | None = None) -> Reply:
        """Run one command; raises :class:`ReplyError` for an error reply. Inside MULTI a command is
        checked (name, arity) and queued."""
        session = session if session is not None else Session()
        if not args:
            raise ReplyError("ERR empty command")
        name = bytes(args[0]).lower()
        try:
            arity, handler = SESSION_COMMANDS.get(name) or (None, None)
            if handler is None:
                self.resolve(args)
            elif (arity >= 0 and len(args) != arity) or len(args) < -arity:
                raise wrong_arity(name)
        except ReplyError as error:
            if session.queue is not None and name == b"exec":  # a refused EXEC discards the transaction
                session.reset()
                raise ReplyError("EXECABORT Transaction discarded because of: "
                                 + error.message.removeprefix("ERR ")) from None
            if session.queue is not None:
                session.dirty = True  # as Redis's flagTransaction: EXEC will abort
            raise
        if handler is not None and not (session.queue is not None and name == b"unwatch"):  # queued, as in Redis
            return handler(self, session, [bytes(arg) for arg in args[1:]])
        if session.queue is not None:
            session.queue.append([bytes(arg) for arg in args])
            return QUEUED
        return self.run(self.database(session), args)

    def database(self, session: Session) -> Database:
        """The database a session's commands run on: this engine's, or while it WATCHes keys one
        that notes the session's own writes (they change a watched key, as in Redis)."""
        if not session.watched:
            return self.db
        return self.db.other(self.db.namespace, Prefetched(self.gateway, (), self.written(session)))

    @staticmethod
    def written(session: Session) -> Callable[[Key], None]:
        return session.touched.add if session.watched else lambda key: None

    def execute_many(self, commands: Sequence[Sequence[bytes]], session: Session) -> list[Reply | Exception]:
        """Run the commands of one pipeline send, each reply or error in order. Outside MULTI, the
        heads that the read-only commands among them read are fetched first in one BatchGetItem
        (a read is served from it unless an earlier command of the batch wrote that item)."""
        db, prefetched = None, None
        names = {bytes(command[0]).lower() for command in commands if command}
        if session.queue is None and len(commands) > 1 and not names & set(SESSION_COMMANDS):
            keys = [key for command in commands if command and bytes(command[0]).lower() in READ_ONLY
                    for key in command_keys([bytes(arg) for arg in command])]
            if len(set(keys)) > 1:
                try:
                    prefetched = Prefetched(self.gateway, head_keys(self.db.prefix, keys), self.written(session))
                except RedisError as error:
                    return [error] * len(commands)
                db = self.db.other(self.db.namespace, prefetched)
        replies: list[Reply | Exception] = []
        for command in commands:
            if prefetched:
                prefetched.next_command()
            try:
                replies.append(self.run(db, command) if db else self.execute(command, session))
            except (ReplyError, RedisError) as error:
                replies.append(error)
        return replies

    def resolve(self, args: Sequence[bytes]) -> Command:
        """The command ``args`` names, checked: unknown command and arity errors as Redis words them."""
        name, *rest = args
        spec = COMMANDS.get(bytes(name).lower())
        if spec is None:
            raise ReplyError(unknown_command(bytes(name), rest))
        if (spec.arity >= 0 and len(args) != spec.arity) or len(args) < -spec.arity:
            raise wrong_arity(spec.name)
        return spec

    def run(self, db: Database, args: Sequence[bytes]) -> Reply:
        """Run a command on ``db`` (this engine's database or a staged one)."""
        if not args:
            raise ReplyError("ERR empty command")
        spec = self.resolve(args)
        try:
            return spec.handler(db, [bytes(arg) for arg in args[1:]])
        except ClientError as error:  # DynamoDB refused the request: an error reply, not a crash
            details = error.response.get("Error", {})
            raise ReplyError(f"ERR DynamoDB {details.get('Code', 'error')}: {details.get('Message', error)}") from error
