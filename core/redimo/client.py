"""``redimo.Redimo``: redis-py's client, whose connection hands commands to the engine in-process
(as fakeredis does), so redis-py's API, replies and errors hold exactly."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import redis
from redis._parsers.base import BaseParser
from redis.backoff import NoBackoff
from redis.retry import Retry

from .commands.pubsub import subscribed_reply
from .compact import COMPACT_TYPES, Limits
from .engine import Engine, Session
from .gateway import ConditionFailed, Gateway
from .lock import Lock, Semaphore
from .protocol import ReplyError
from .pubsub import PUSHED, Listener
from .storage import millis

FINAL = "rf"  # the head attribute of a string written by set_state(final=True)
SUBSCRIBING = frozenset((b"subscribe", b"psubscribe", b"unsubscribe", b"punsubscribe"))


@dataclass
class ConnectionSession(Session):
    """A connection's state: MULTI and WATCH, and its Pub/Sub subscriptions and reply queue."""

    listener: Listener = field(default_factory=Listener)


class EngineConnection(redis.Connection):
    """A redis-py connection without a socket: each command runs on the engine when sent, and its
    reply (or error) is queued for ``read_response``. In subscribe mode the engine's Pub/Sub poller
    queues messages there too, and ``can_read``/``read_response`` wait for them."""

    def __init__(self, engine: Engine, **kwargs: Any) -> None:
        super().__init__(host="redimo", port=0, **kwargs)
        self.engine = engine
        self.session = ConnectionSession()  # dropped on disconnect as Redis does
        self.listener = self.session.listener
        self._replies = self.listener.replies

    def repr_pieces(self) -> list[tuple[str, Any]]:
        return [("table", self.engine.gateway.table), ("namespace", self.engine.db.namespace)]

    def _host_error(self) -> str:
        return f"DynamoDB table {self.engine.gateway.table} at {self.engine.gateway.endpoint}"

    def connect(self) -> None:
        self._sock = self  # marks the connection as open; there is no socket or handshake

    connect_check_health = connect  # type: ignore[assignment]

    def disconnect(self, *args: Any, **kwargs: Any) -> None:
        self._sock = None
        if self.listener.poller is not None and self.listener.count:
            self.listener.poller.leave(self.listener)
        self._replies.clear()
        self.session.reset()

    def check_health(self) -> None:
        pass

    def can_read(self, timeout: float | None = 0) -> bool:
        return self.listener.wait(timeout)

    def pack_command(self, *args: Any) -> list[tuple]:
        return [args]

    def pack_commands(self, commands: Any) -> list[tuple]:
        return [tuple(command) for command in commands]

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        """A pipeline's commands arrive together: the engine runs them as one batch."""
        commands = [[self.encoder.encode(arg) for arg in args] for args in command]
        # as redis-py's own pack_command: a name such as "XGROUP CREATE" is sent as two arguments
        commands = [args[0].split() + args[1:] if args and b" " in args[0] else args for args in commands]
        if not self.listener.count and not any(args and args[0].lower() in SUBSCRIBING for args in commands):
            self.listener.push(*self.engine.execute_many(commands, self.session))
            return
        for args in commands:  # one by one: the subscribe family queues its replies as it runs
            try:
                reply = subscribed_reply(self.engine, args) if self.listener.count else None
                if reply is None:
                    reply = self.engine.execute(args, self.session)
            except (ReplyError, redis.RedisError) as error:
                reply = error
            if reply is not PUSHED:
                self.listener.push(reply)

    def send_command(self, *args: Any, **kwargs: Any) -> None:
        self.send_packed_command([args])

    def read_response(self, disable_decoding: bool = False, timeout: float | None = None, **kwargs: Any) -> Any:
        if not self.listener.wait(timeout):
            raise redis.TimeoutError(f"Timeout reading from {self._host_error()}")
        reply = self._replies.popleft()
        if isinstance(reply, redis.RedisError):
            raise reply
        reply = self._convert(reply, not disable_decoding)
        if isinstance(reply, redis.ResponseError):
            raise reply
        return reply

    def _convert(self, reply: Any, decode: bool) -> Any:
        if isinstance(reply, ReplyError):
            return BaseParser.parse_error(reply.message)
        if isinstance(reply, list):
            return [self._convert(element, decode) for element in reply]
        if isinstance(reply, bytes):
            return self.encoder.decode(bytes(reply)) if decode else bytes(reply)
        return reply


class EnginePool(redis.ConnectionPool):
    """redis-py's connection pool, taking and returning engine connections without what sockets need:
    no health check on taking one (a connection with unread replies is reset, as redis-py resets one
    with unread data), no release events and no pool metrics (redis-py's OpenTelemetry connection
    counts, which count sockets)."""

    def get_connection(self, *_: Any, **__: Any) -> EngineConnection:  # type: ignore[override]
        self._checkpid()
        with self._lock:
            try:
                connection = self._available_connections.pop()
            except IndexError:
                connection = self.make_connection()
            self._in_use_connections.add(connection)
        if connection._replies:
            connection.disconnect()
        connection.connect()
        return connection

    def release(self, connection: EngineConnection) -> None:  # type: ignore[override]
        self._checkpid()
        with self._lock:
            try:
                self._in_use_connections.remove(connection)
            except KeyError:  # not this pool's
                return
            if self.owns_connection(connection):
                self._available_connections.append(connection)
            else:  # made before a fork
                connection.disconnect()


class Redimo(redis.Redis):
    """A redis-py client whose data lives in a DynamoDB table.

    ``table`` names the table, ``namespace`` the keyspace inside it (Redis's database number).
    ``client`` is a boto3 DynamoDB client; without one, the remaining keyword arguments
    (``endpoint_url``, ``region_name``, ``retry_mode``, ``max_attempts``, ``connect_attempts``,
    ``connect_timeout``, ``read_timeout``, or boto3 session options) configure a new one, and anything unset comes from
    boto3's own configuration. ``lean=False`` (or ``REDIMO_LEAN=0`` in the environment) sends every request
    through boto3 instead of the lean transport (see redimo/transport.py).

    ``compact_max_entries`` and ``compact_max_bytes`` say when a small hash, set, sorted set or stream leaves the
    compact encoding (its members inside its head item) for one item per member, as Redis's
    ``hash-max-listpack-entries``; ``compact=False`` creates every collection with one item per member.
    See docs/data-model.md.
    """

    def __init__(self, table: str = "redimo", namespace: str = "0", decode_responses: bool = False,
                 consistent_reads: bool = True, client: Any = None, clock: Callable[[], int] = millis,
                 compact: bool = True, compact_max_entries: int = Limits.max_entries,
                 compact_max_bytes: int = Limits.max_bytes, **boto3_options: Any) -> None:
        limits = Limits(compact_max_entries, compact_max_bytes, COMPACT_TYPES if compact else frozenset())
        self.engine = Engine(Gateway(table, client, consistent_reads, **boto3_options), namespace, clock, limits)
        pool = EnginePool(connection_class=EngineConnection, engine=self.engine,
                                    decode_responses=decode_responses, protocol=2,
                                    retry=Retry(NoBackoff(), 0))
        super().__init__(connection_pool=pool)

    @property
    def gateway(self) -> Gateway:
        return self.engine.gateway

    def create_table(self, **options: Any) -> bool:
        """Create the table if it does not exist (see :func:`redimo.table.create_table`)."""
        from .table import create_table

        return create_table(self.gateway, **options)

    def set_state(self, name: str | bytes, value: str | bytes, px: int | None = None, final: bool = False) -> bool:
        """SET for state records whose final value must outlive late updates (a Celery result whose
        SUCCESS a redelivered task's STARTED must not replace). A value set with ``final=True`` is
        kept, while it lives, against any later ``final=False`` write, which then changes nothing and
        returns False. ``px`` is the expiry in milliseconds. Cost: 1 PutItem, conditional unless
        ``final`` (a refused write is that 1 request too); a value over 350 KB adds its chunks'
        BatchWriteItems."""
        encoder = self.connection_pool.get_encoder()
        key, data = encoder.encode(name), encoder.encode(value)
        if px is not None and px <= 0:
            raise redis.DataError("set_state: px must be positive")
        db = self.engine.db
        expire_at = db.clock() + px if px else None
        try:
            db.put_string(key, data, expire_at, None if final else f"attribute_not_exists({FINAL}) OR x <= :now",
                          None if final else db.now(), marks={FINAL: {"BOOL": True}} if final else None)
        except ConditionFailed:
            return False
        return True

    def lock(self, name: str | bytes, timeout: float | None = None, sleep: float = 0.1,  # type: ignore[override]
             blocking: bool = True, blocking_timeout: float | None = None, lock_class: Any = None,
             thread_local: bool = True, auto_renewal: bool = False,
             on_renewal_failure: Callable[..., Any] | None = None, **_: Any) -> Lock:
        """A distributed lock with a fencing token (see :class:`redimo.lock.Lock`); redis-py's
        signature, plus ``auto_renewal`` and ``on_renewal_failure``."""
        return (lock_class or Lock)(self, name, timeout=timeout, sleep=sleep, blocking=blocking,
                                    blocking_timeout=blocking_timeout, thread_local=thread_local,
                                    auto_renewal=auto_renewal, on_renewal_failure=on_renewal_failure)

    def semaphore(self, name: str | bytes, limit: int, timeout: float, **options: Any) -> Semaphore:
        """A counting semaphore of ``limit`` slots whose leases last ``timeout`` seconds."""
        return Semaphore(self, name, limit, timeout, **options)

    def __repr__(self) -> str:
        return f"Redimo<table={self.gateway.table}, namespace={self.engine.db.namespace}>"
