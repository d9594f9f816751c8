"""``redimo serve``: a Redis-protocol server (RESP2/RESP3) on the engine, so any Redis client or tool
(redis-cli, other languages) can use a Redimo table. See docs/server.md.

An asyncio loop owns the sockets; each connection has its own :class:`Session` and runs its commands in
order on a thread pool (the engine's DynamoDB calls block), so a slow or blocking command holds only its
own connection. Database n maps to a namespace (``--db``)."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import multiprocessing
import os
import platform
import signal
import socket
import ssl
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from .acl import User, load_users
from .client import ConnectionSession
from .commands import COMMANDS
from .commands.pubsub import subscribed_reply
from .commands.transactions import SESSION_COMMANDS
from .engine import Engine
from .gateway import Gateway
from .glob import glob_match
from .protocol import OK, ReplyError, SimpleString, parse_int, wrong_arity
from .pubsub import PUSHED, Listener
from .resp import Double, Limits, Map, Parser, ProtocolError, Push, QueryBufferFull, Set, encode, error_line

log = logging.getLogger("redimo.server")

VERSION = "7.0.0"  # the Redis version whose commands and replies Redimo follows (HELLO, INFO)
SUBSCRIBING = frozenset((b"subscribe", b"psubscribe", b"unsubscribe", b"punsubscribe"))
PUSH_KINDS = frozenset((b"message", b"pmessage", *SUBSCRIBING))
NOAUTH = "NOAUTH Authentication required."
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."
DENIED = ("DENIED Redis is running in protected mode because protected mode is enabled and no password is set for "
          "the default user. In this mode connections are only accepted from the loopback interface. If you want "
          "to connect from external computers, restart redimo serve with --requirepass, or with --protected-mode no "
          "if the network is trusted.")
MAX_CLIENTS = "ERR max number of clients reached"
READ_SIZE = 64 * 1024
BATCH = 64  # commands per execute_many: between batches a client over its output limit is dropped


@dataclass
class Options:
    """What ``redimo serve`` is told (docs/server.md lists each option)."""

    table: str
    host: str = "127.0.0.1"
    port: int = 6379
    databases: int = 16
    names: dict[int, str] = field(default_factory=dict)  # database -> namespace (default: str(database))
    requirepass: str | None = None
    aclfile: str | None = None
    users: dict[str, User] = field(default_factory=dict)  # name -> user; load_users(aclfile, requirepass)
    protected_mode: bool = True
    tls_cert: str | None = None
    tls_key: str | None = None
    maxclients: int = 10000
    timeout: float = 0  # idle seconds before a connection is closed (0: never)
    max_bulk: int = 512 * 1024 * 1024
    query_buffer: int = 1024 * 1024 * 1024
    output_buffer: int = 0  # bytes queued for a normal client before it is disconnected (0: no limit)
    pubsub_output_buffer: int = 32 * 1024 * 1024
    shutdown_timeout: float = 10.0
    workers: int = 1
    endpoint_url: str | None = None
    region: str | None = None

    def __post_init__(self) -> None:
        if not self.users:
            self.users = load_users(self.aclfile, self.requirepass)

    def namespace(self, database: int) -> str:
        return self.names.get(database, str(database))

    @property
    def default_open(self) -> bool:
        """Whether a new connection is authenticated as the default user (on, and nopass), as Redis."""
        default = self.users["default"]
        return default.enabled and default.nopass


def is_loopback(host: str) -> bool:
    """Whether a peer address is the loopback interface (IPv4, IPv6 or IPv4-mapped IPv6)."""
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def refused_by_protected_mode(options: Options, peer_host: str) -> bool:
    """Redis's protected mode: when the default user has no password, only loopback clients are served."""
    return options.protected_mode and options.users["default"].nopass and not is_loopback(peer_host)


# -- RESP3 reply shapes --------------------------------------------------------------------------
def pairs(flat: list, double: bool = False) -> list:
    return [[flat[i], Double(flat[i + 1]) if double and flat[i + 1] is not None else flat[i + 1]]
            for i in range(0, len(flat), 2)]


def has(args: list[bytes], word: bytes) -> bool:
    return any(arg.upper() == word for arg in args[1:])


def resp3_shape(args: list[bytes], reply: Any) -> Any:
    """The RESP3 form of an engine reply (which is RESP2-shaped): maps, sets and doubles where Redis 7
    sends them for the commands clients read most."""
    if isinstance(reply, BaseException) or reply is None or reply is PUSHED:
        return reply
    name = args[0].lower()
    if (name in (b"hgetall", b"config") or (name == b"lcs" and has(args, b"IDX"))) and isinstance(reply, list):
        return Map(pairs(reply))
    if name in (b"smembers", b"sinter", b"sunion", b"sdiff"):
        return Set(reply)
    if name in (b"zscore", b"zincrby") or (name == b"zadd" and has(args, b"INCR")):
        return Double(reply)
    if name == b"zmscore":
        return [None if score is None else Double(score) for score in reply]
    if name in (b"zrange", b"zrangebyscore", b"zrevrange", b"zrevrangebyscore", b"zunion", b"zinter", b"zdiff",
                b"zrandmember") and has(args, b"WITHSCORES"):
        return pairs(reply, double=True)
    if name == b"hrandfield" and has(args, b"WITHVALUES"):
        return pairs(reply)
    if name in (b"zpopmin", b"zpopmax"):
        return pairs(reply, double=True) if len(args) > 2 else [reply[0], Double(reply[1])] if reply else reply
    if name in (b"bzpopmin", b"bzpopmax"):
        return [reply[0], reply[1], Double(reply[2])]
    if name in (b"zrank", b"zrevrank") and has(args, b"WITHSCORE") and isinstance(reply, list):
        return [reply[0], Double(reply[1])]
    if name in (b"xread", b"xreadgroup"):
        return Map((stream[0], stream[1]) for stream in reply)
    return reply


class ServerListener(Listener):
    """A connection's Pub/Sub listener that wakes the event loop when the poller queues a message."""

    def __init__(self, loop: asyncio.AbstractEventLoop, wake: Callable[[], None]) -> None:
        super().__init__()
        self.loop, self.wake = loop, wake

    def push(self, *replies: Any) -> None:
        super().push(*replies)
        self.loop.call_soon_threadsafe(self.wake)


class Connection:
    """One client: its database, protocol version, authentication and Session; runs its commands in order."""

    def __init__(self, server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, id_: int) -> None:
        self.server, self.reader, self.writer, self.id = server, reader, writer, id_
        self.transport = writer.transport
        peer = writer.get_extra_info("peername") or ("?", 0)
        local = writer.get_extra_info("sockname") or ("?", 0)
        self.addr, self.laddr = f"{peer[0]}:{peer[1]}", f"{local[0]}:{local[1]}"
        self.peer_host = peer[0]
        self.name = b""
        self.database = 0
        self.protocol = 2
        self.user = server.options.users["default"]
        self.authenticated = server.options.default_open
        self.listener = ServerListener(asyncio.get_running_loop(), self.flush_pushed)
        self.session = ConnectionSession(listener=self.listener)
        self.parser = Parser(server.limits)
        self.created = self.last = time.monotonic()
        self.last_command = b"NULL"
        self.waiting = False  # awaiting input: the only point where the connection's task may be cancelled
        self.closing = False
        self.task: asyncio.Task | None = None

    @property
    def engine(self) -> Engine:
        return self.server.engine(self.server.options.namespace(self.database))

    # -- the loop ----------------------------------------------------------------------------------
    async def serve(self) -> None:
        try:
            while not self.closing:
                timeout = self.server.options.timeout or None
                if self.listener.count:  # as Redis: subscribers are not disconnected for idleness
                    timeout = None
                self.waiting = True
                try:
                    data = await asyncio.wait_for(self.reader.read(READ_SIZE), timeout)
                except asyncio.TimeoutError:
                    break
                finally:
                    self.waiting = False
                if not data:
                    break
                self.last = time.monotonic()
                self.parser.feed(data)
                await self.process()
                if not self.transport.is_closing():
                    await self.writer.drain()
        except QueryBufferFull as full:
            log.warning("closing client %s: %s", self.addr, full)
        except (ConnectionError, OSError):
            pass
        finally:
            await self.cleanup()

    async def process(self) -> None:
        """Every complete command in the buffer, in order; on a protocol error, the commands before it,
        then the error, then the connection closes (as Redis)."""
        while not self.closing:
            limited = not self.authenticated  # before AUTH, one command at a time: AUTH lifts the limits
            try:
                commands, error = self.parser.commands(self.authenticated, most=1 if limited else None), None
            except ProtocolError as failure:
                commands, error = failure.commands, failure
            if commands:
                await self.run(commands)
            if error is not None:
                self.write(ReplyError("ERR " + error.message))
                self.closing = True
                return
            if not commands or not limited:
                return

    async def run(self, commands: list[list[bytes]]) -> None:
        """Runs commands in order: consecutive plain engine commands in one ``execute_many`` batch."""
        i = 0
        while i < len(commands) and not self.closing:
            j = i
            while j < len(commands) and j - i < BATCH and self.plain(commands[j]):
                j += 1
            if j > i:
                batch = commands[i:j]
                self.last_command = batch[-1][0].lower()
                self.server.commands_processed += len(batch)
                replies = await self.server.call(self.engine.execute_many, batch, self.session)
                for args, reply in zip(batch, replies):
                    self.write(resp3_shape(args, reply) if self.protocol == 3 else reply)
                i = j
                continue
            args = commands[i]
            self.last_command = args[0].lower()
            self.server.commands_processed += 1
            try:
                reply = await self.special(args)
            except ReplyError as error:
                reply = error
            if reply is not PUSHED:
                self.flush_pushed()
                self.write(reply)
            i += 1

    def plain(self, args: list[bytes]) -> bool:
        name = args[0].lower()
        return (self.authenticated and not self.listener.count and name not in SERVER_COMMANDS
                and name not in SUBSCRIBING and not (self.protocol == 3 and name == b"exec")
                and self.user.denial(args) is None)

    async def special(self, args: list[bytes]) -> Any:
        """A command that is not a plain engine command: server commands, commands before AUTH,
        subscribe mode, RESP3 EXEC."""
        name = args[0].lower()
        handler = SERVER_COMMANDS.get(name)
        if not self.authenticated and name not in (b"auth", b"hello", b"quit", b"reset"):
            return ReplyError(NOAUTH)
        denial = self.user.denial(args)
        if denial is not None:
            if self.session.queue is not None:
                self.session.dirty = True  # EXEC will abort, as Redis
            return ReplyError(denial)
        if handler is not None:
            arity = handler[0]
            if (arity >= 0 and len(args) != arity) or len(args) < -arity:
                raise wrong_arity(name)
            if self.listener.count and self.protocol == 2 and name not in (b"quit", b"reset"):
                shown = name + b"|" + args[1].lower() if len(args) > 1 and name in CONTAINERS else name
                raise ReplyError(f"ERR Can't execute '{shown.decode(errors='replace')}': only (P|S)SUBSCRIBE / "
                                 "(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
            if self.session.queue is not None and name not in (b"quit", b"reset"):
                self.session.dirty = True  # EXEC will abort, as after any refused command
                raise ReplyError(f"ERR {name.decode(errors='replace').upper()} inside MULTI is not supported "
                                 "by redimo serve")
            return await handler[1](self, args[1:])
        queued = list(self.session.queue or ())
        reply = await self.server.call(self.engine_command, args)
        if self.protocol == 3 and name == b"exec" and isinstance(reply, list):
            return [resp3_shape(command, element) for command, element in zip(queued, reply)]
        return resp3_shape(args, reply) if self.protocol == 3 else reply

    def engine_command(self, args: list[bytes]) -> Any:
        """Runs in the thread pool: one engine command, with Redis's subscribe-mode rules in RESP2."""
        try:
            reply = subscribed_reply(self.engine, args) if self.listener.count and self.protocol == 2 else None
            return reply if reply is not None else self.engine.execute(args, self.session)
        except Exception as error:  # an error reply (ReplyError, or redis-py's errors for DynamoDB failures)
            return error

    # -- output ------------------------------------------------------------------------------------
    def write(self, reply: Any) -> None:
        if self.transport.is_closing():
            return
        if isinstance(reply, BaseException) and not isinstance(reply, ReplyError):
            log.debug("error reply to %s: %r", self.addr, reply)
        self.transport.write(error_line(reply) if isinstance(reply, BaseException) else encode(reply, self.protocol))
        limit = self.server.options.pubsub_output_buffer if self.listener.count else self.server.options.output_buffer
        if limit and self.transport.get_write_buffer_size() > limit:
            log.warning("closing client %s: output buffer over %d bytes", self.addr, limit)
            self.closing = True
            self.transport.abort()

    def flush_pushed(self) -> None:
        """Writes what the Pub/Sub machinery queued: confirmations and messages (RESP3 pushes)."""
        while self.listener.replies and not self.transport.is_closing():
            reply = self.listener.replies.popleft()
            if self.protocol == 3 and isinstance(reply, list) and reply and reply[0] in PUSH_KINDS:
                reply = Push(reply)
            self.write(reply)

    def kill(self) -> None:
        """Drops the connection; a command running finishes first (its reply is dropped)."""
        self.closing = True
        self.transport.abort()
        if self.waiting and self.task is not None:
            self.task.cancel()

    async def cleanup(self) -> None:
        self.server.clients.pop(self.id, None)
        self.transport.close()
        self.session.reset()
        if self.listener.count and self.listener.poller is not None:
            await self.server.call(self.listener.poller.leave, self.listener)

    def describe(self) -> bytes:
        """This client's CLIENT LIST line."""
        now = time.monotonic()
        flags = "P" if self.listener.count else "x" if self.session.queue is not None else "N"
        return (f"id={self.id} addr={self.addr} laddr={self.laddr} fd=-1 name={self.name.decode(errors='replace')} "
                f"age={int(now - self.created)} idle={int(now - self.last)} flags={flags} db={self.database} "
                f"sub={len(self.listener.channels)} psub={len(self.listener.patterns)} "
                f"multi={-1 if self.session.queue is None else len(self.session.queue)} "
                f"cmd={self.last_command.decode(errors='replace')} user={self.user.name} resp={self.protocol}").encode()

    # -- server commands ---------------------------------------------------------------------------
    async def quit(self, args: list[bytes]) -> Any:
        self.closing = True
        return OK

    async def reset(self, args: list[bytes]) -> Any:
        self.session.reset()
        if self.listener.count and self.listener.poller is not None:
            await self.server.call(self.listener.poller.leave, self.listener)
        self.listener.replies.clear()
        self.database, self.protocol, self.name = 0, 2, b""
        self.user = self.server.options.users["default"]
        self.authenticated = self.server.options.default_open
        return SimpleString(b"RESET")

    async def select(self, args: list[bytes]) -> Any:
        database = parse_int(args[0])
        if not 0 <= database < self.server.options.databases:
            raise ReplyError("ERR DB index is out of range")
        if self.session.watched and database != self.database:
            raise ReplyError("ERR SELECT while WATCHing keys is not supported by redimo serve: UNWATCH first")
        self.database = database
        return OK

    def check_password(self, name: bytes, password: bytes) -> None:
        """Authenticates as user ``name``, or raises WRONGPASS (also for an unknown or disabled user)."""
        user = self.server.options.users.get(name.decode(errors="replace"))
        if user is None or not user.check_password(password):
            raise ReplyError(WRONGPASS)
        self.user, self.authenticated = user, True

    async def auth(self, args: list[bytes]) -> Any:
        if len(args) > 2:
            raise ReplyError("ERR syntax error")
        if len(args) == 1 and self.server.options.users["default"].nopass:
            raise ReplyError("ERR AUTH <password> called without any password configured for the default user. "
                             "Are you sure your configuration is correct?")
        self.check_password(args[0] if len(args) == 2 else b"default", args[-1])
        return OK

    async def hello(self, args: list[bytes]) -> Any:
        protocol = self.protocol
        if args:
            try:
                protocol = parse_int(args[0])
            except ReplyError:
                raise ReplyError("ERR Protocol version is not an integer or out of range") from None
            if protocol not in (2, 3):
                raise ReplyError("NOPROTO unsupported protocol version")
        i, name, credentials = 1, None, None
        while i < len(args):
            option = args[i].upper()
            if option == b"AUTH" and i + 2 < len(args):
                credentials, i = (args[i + 1], args[i + 2]), i + 3
            elif option == b"SETNAME" and i + 1 < len(args):
                name, i = args[i + 1], i + 2
            else:
                raise ReplyError(f"ERR Syntax error in HELLO option '{args[i].decode(errors='replace')}'")
        if credentials is not None:
            self.check_password(*credentials)
        if not self.authenticated:
            raise ReplyError("NOAUTH HELLO must be called with the client already authenticated, otherwise the "
                             "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "
                             "select the RESP protocol version at the same time")
        if name is not None:
            self.name = valid_name(name)
        self.protocol = protocol
        return Map({b"server": b"redis", b"version": VERSION.encode(), b"proto": protocol, b"id": self.id,
                    b"mode": b"standalone", b"role": b"master", b"modules": []})

    async def client(self, args: list[bytes]) -> Any:
        sub = args[0].upper()
        if sub == b"ID" and len(args) == 1:
            return self.id
        if sub == b"GETNAME" and len(args) == 1:
            return self.name or None
        if sub == b"SETNAME" and len(args) == 2:
            self.name = valid_name(args[1])
            return OK
        if sub == b"SETINFO" and len(args) == 3:
            return OK
        if sub == b"INFO" and len(args) == 1:
            return self.describe() + b"\n"
        if sub == b"LIST":
            return b"".join(client.describe() + b"\n" for client in list(self.server.clients.values()))
        if sub == b"KILL" and len(args) >= 2:
            return self.client_kill(args[1:])
        raise ReplyError(f"ERR unknown subcommand or wrong number of arguments for '{args[0].decode(errors='replace')}'."
                         " Try CLIENT HELP.")

    def client_kill(self, args: list[bytes]) -> Any:
        clients = list(self.server.clients.values())
        if len(args) == 1:  # the old form: CLIENT KILL addr:port
            targets = [client for client in clients if client.addr.encode() == args[0]]
            if not targets:
                raise ReplyError("ERR No such client")
        else:
            if len(args) % 2:
                raise ReplyError("ERR syntax error")
            targets, skip_me = clients, True
            for option, value in zip(args[::2], args[1::2]):
                option = option.upper()
                if option == b"ID":
                    wanted = parse_int(value, "ERR client-id should be greater than 0")
                    targets = [client for client in targets if client.id == wanted]
                elif option == b"ADDR":
                    targets = [client for client in targets if client.addr.encode() == value]
                elif option == b"LADDR":
                    targets = [client for client in targets if client.laddr.encode() == value]
                elif option == b"SKIPME" and value.lower() in (b"yes", b"no"):
                    skip_me = value.lower() == b"yes"
                else:
                    raise ReplyError("ERR syntax error")
            targets = [client for client in targets if not (skip_me and client is self)]
        for client in targets:
            if client is self:
                self.closing = True  # after this reply, as Redis
            else:
                client.kill()
        return OK if len(args) == 1 else len(targets)

    async def info(self, args: list[bytes]) -> Any:
        return self.server.info([arg.lower() for arg in args])

    async def config(self, args: list[bytes]) -> Any:
        sub = args[0].upper()
        if sub == b"GET" and len(args) >= 2:
            settings = self.server.settings()
            found = {name: value for name, value in settings.items()
                     if any(glob_match(pattern.lower(), name) for pattern in args[1:])}
            flat = [part for pair in found.items() for part in pair]
            return Map(found) if self.protocol == 3 else flat
        if sub in (b"SET", b"RESETSTAT", b"REWRITE"):
            raise ReplyError(f"ERR CONFIG {sub.decode()} is not supported by redimo serve: restart it with the option")
        raise ReplyError(f"ERR unknown subcommand or wrong number of arguments for '{args[0].decode(errors='replace')}'."
                         " Try CONFIG HELP.")

    async def command(self, args: list[bytes]) -> Any:
        names = command_names()
        if not args:
            return [command_info(name) for name in names]
        sub = args[0].upper()
        if sub == b"COUNT" and len(args) == 1:
            return len(names)
        if sub == b"INFO":
            return [command_info(name.lower()) if name.lower() in names else None for name in args[1:] or names]
        if sub == b"DOCS":
            wanted = [name.lower() for name in args[1:]] or list(names)
            return Map((name, Map({b"summary": names[name], b"since": b"1.0.0", b"group": b"generic"}))
                       for name in wanted if name in names)
        if sub == b"LIST" and len(args) == 1:
            return list(names)
        raise ReplyError(f"ERR unknown subcommand or wrong number of arguments for '{args[0].decode(errors='replace')}'."
                         " Try COMMAND HELP.")

    async def time(self, args: list[bytes]) -> Any:
        now = time.time_ns() // 1000
        return [str(now // 1_000_000).encode(), str(now % 1_000_000).encode()]


def valid_name(name: bytes) -> bytes:
    if any(byte < 33 or byte > 126 for byte in name):
        raise ReplyError("ERR Client names cannot contain spaces, newlines or special characters.")
    return name


CONTAINERS = frozenset((b"client", b"config", b"command"))
SERVER_COMMANDS: dict[bytes, tuple[int, Callable[..., Any]]] = {
    b"quit": (-1, Connection.quit), b"reset": (1, Connection.reset), b"select": (2, Connection.select),
    b"auth": (-2, Connection.auth), b"hello": (-1, Connection.hello), b"client": (-2, Connection.client),
    b"info": (-1, Connection.info), b"config": (-2, Connection.config), b"command": (-1, Connection.command),
    b"time": (1, Connection.time),
}


def command_names() -> dict[bytes, bytes]:
    """Every command the server runs, with its one-line summary (from the handler's docstring)."""
    def summary(handler: Callable[..., Any]) -> bytes:
        return ((handler.__doc__ or "").strip().splitlines() or [""])[0].encode()

    names = {name: summary(spec.handler) for name, spec in COMMANDS.items()}
    names |= {name: summary(handler) for name, (_, handler) in SESSION_COMMANDS.items()}
    names |= {name: name.upper() + b" (redimo serve)" for name in SERVER_COMMANDS}
    return dict(sorted(names.items()))


def command_info(name: bytes) -> list:
    """COMMAND INFO's reply for one command: name and arity (no flags, key positions or ACL categories)."""
    spec = COMMANDS.get(name)
    arity = spec.arity if spec else (SESSION_COMMANDS.get(name) or SERVER_COMMANDS[name])[0]
    return [name, arity, [], 0, 0, 0, [], [], [], []]


class Server:
    """The server: the listening socket, its connections, and one engine per namespace on one gateway."""

    def __init__(self, options: Options, gateway: Gateway | None = None) -> None:
        self.options = options
        self.gateway = gateway or Gateway(options.table, max_pool_connections=64, **{
            name: value for name, value in (("endpoint_url", options.endpoint_url),
                                            ("region_name", options.region)) if value})
        self.limits = Limits(options.max_bulk, options.query_buffer)
        self.engines: dict[str, Engine] = {}
        self.executor = ThreadPoolExecutor(max_workers=options.maxclients + 4, thread_name_prefix="redimo-serve")
        self.clients: dict[int, Connection] = {}
        self.next_id = 0
        self.started = time.monotonic()
        self.connections_received = self.rejected = self.commands_processed = 0
        self.listener: asyncio.base_events.Server | None = None
        self.port = options.port
        self.stopping: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def engine(self, namespace: str) -> Engine:
        if namespace not in self.engines:
            self.engines[namespace] = Engine(self.gateway, namespace)
        return self.engines[namespace]

    async def call(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    def tls_context(self) -> ssl.SSLContext | None:
        if not self.options.tls_cert:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.options.tls_cert, self.options.tls_key)
        return context

    async def start(self) -> None:
        """Listens; ``self.port`` is then the bound port (useful with port 0)."""
        self.stopping, self.loop = asyncio.Event(), asyncio.get_running_loop()
        self.listener = await asyncio.start_server(
            self.accept, self.options.host, self.options.port, ssl=self.tls_context(),
            reuse_port=self.options.workers > 1 or None, limit=READ_SIZE)
        self.port = self.listener.sockets[0].getsockname()[1]
        log.info("redimo serve %s: table %s, listening on %s:%d%s", VERSION, self.options.table,
                 self.options.host, self.port, " (TLS)" if self.options.tls_cert else "")

    async def serve(self) -> None:
        """Starts, serves until :meth:`stop`, then shuts down gracefully."""
        await self.start()
        assert self.stopping is not None
        await self.stopping.wait()
        await self.shutdown()

    def stop(self) -> None:
        if self.stopping is not None:
            self.stopping.set()

    async def shutdown(self) -> None:
        """Stops accepting; idle connections close now, busy ones after their commands' replies (up to
        ``shutdown_timeout`` seconds)."""
        assert self.listener is not None
        self.listener.close()
        clients = list(self.clients.values())
        for client in clients:
            client.closing = True
            if client.waiting and client.task is not None:
                client.task.cancel()
        tasks = [client.task for client in clients if client.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.options.shutdown_timeout)
            for task in pending:
                task.cancel()
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections_received += 1
        peer = writer.get_extra_info("peername") or ("", 0)
        refusal = None
        if self.stopping is not None and self.stopping.is_set():
            refusal = "ERR Server is shutting down"
        elif len(self.clients) >= self.options.maxclients:
            refusal = MAX_CLIENTS
        elif refused_by_protected_mode(self.options, peer[0]):
            refusal = DENIED
        if refusal is not None:
            self.rejected += 1
            writer.write(b"-" + refusal.encode() + b"\r\n")
            try:
                await writer.drain()
            except (ConnectionError, OSError):
                pass
            writer.close()
            return
        self.next_id += 1
        connection = Connection(self, reader, writer, self.next_id)
        self.clients[connection.id] = connection
        connection.task = asyncio.current_task()
        try:
            await connection.serve()
        except asyncio.CancelledError:
            pass

    def settings(self) -> dict[bytes, bytes]:
        """CONFIG GET's parameters."""
        options = self.options
        values = {"maxmemory": 0, "maxmemory-policy": "noeviction", "databases": options.databases, "save": "",
                  "appendonly": "no", "timeout": int(options.timeout), "maxclients": options.maxclients,
                  "port": self.port, "bind": options.host, "protected-mode": "yes" if options.protected_mode else "no",
                  "proto-max-bulk-len": options.max_bulk, "client-query-buffer-limit": options.query_buffer,
                  "cluster-enabled": "no"}
        return {name.encode(): str(value).encode() for name, value in values.items()}

    def info(self, sections: list[bytes]) -> bytes:
        uptime = int(time.monotonic() - self.started)
        every = {
            b"server": {"redis_version": VERSION, "redis_mode": "standalone", "redimo_table": self.options.table,
                        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
                        "arch_bits": 64 if sys.maxsize > 2**32 else 32, "process_id": os.getpid(),
                        "tcp_port": self.port, "uptime_in_seconds": uptime, "uptime_in_days": uptime // 86400},
            b"clients": {"connected_clients": len(self.clients), "maxclients": self.options.maxclients},
            b"stats": {"total_connections_received": self.connections_received,
                       "total_commands_processed": self.commands_processed,
                       "rejected_connections": self.rejected},
        }
        wanted = set(sections) - {b"default", b"all", b"everything"} if sections else set()
        if not wanted and sections and not set(sections) & {b"default", b"all", b"everything"}:
            return b""
        chosen = [name for name in every if not wanted or name in wanted]
        text = "\r\n".join(f"# {name.decode().capitalize()}\r\n"
                           + "".join(f"{key}:{value}\r\n" for key, value in every[name].items()) for name in chosen)
        return text.encode()


# -- the command line ----------------------------------------------------------------------------
def database_names(text: str) -> tuple[int, str]:
    database, _, namespace = text.partition("=")
    if not database.strip().isdigit() or not namespace or "\x00" in namespace:
        raise argparse.ArgumentTypeError(f"{text!r} is not database=namespace (such as 1=sessions)")
    return int(database), namespace


def configure(parser: argparse.ArgumentParser) -> None:
    option = parser.add_argument
    option("--table", required=True, help="the Redimo table (create it with create-table)")
    option("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    option("--port", type=int, default=6379, help="TCP port (default 6379)")
    option("--db", type=database_names, action="append", default=[], metavar="N=NAMESPACE",
           help="database N is this namespace (repeatable; default: database n is namespace \"n\")")
    option("--databases", type=int, default=16, help="number of databases SELECT accepts (default 16)")
    option("--requirepass", help="the default user's password (clients must AUTH with it)")
    option("--aclfile", help="ACL users, in Redis's ACL file syntax (docs/server.md)")
    option("--protected-mode", choices=("yes", "no"), default="yes",
           help="without a password, refuse clients not on loopback (default yes)")
    option("--tls-cert", help="PEM certificate: serve TLS (with --tls-key)")
    option("--tls-key", help="PEM private key of --tls-cert")
    option("--maxclients", type=int, default=10000, help="connections at most (default 10000)")
    option("--timeout", type=float, default=0, help="close connections idle this many seconds (default 0: never)")
    option("--proto-max-bulk-len", type=int, default=512 * 1024 * 1024, help="bytes of one argument (default 512 MB)")
    option("--client-query-buffer-limit", type=int, default=1024 * 1024 * 1024,
           help="bytes of unparsed input per client (default 1 GB)")
    option("--output-buffer-limit", type=int, default=0,
           help="bytes of unsent replies before a client is disconnected (default 0: no limit)")
    option("--pubsub-output-buffer-limit", type=int, default=32 * 1024 * 1024,
           help="the same for a subscribed client (default 32 MB)")
    option("--shutdown-timeout", type=float, default=10.0,
           help="seconds SIGTERM waits for running commands (default 10)")
    option("--workers", type=int, default=1, help="processes sharing the port with SO_REUSEPORT (default 1)")
    option("--endpoint-url", help="DynamoDB endpoint (default: boto3's configuration)")
    option("--region", help="AWS region (default: boto3's configuration)")
    option("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="default INFO")


def add_serve_command(subparsers: Any) -> argparse.ArgumentParser:
    """Adds ``serve`` to ``redimo``'s subcommands."""
    parser = subparsers.add_parser("serve", help="serve the Redis protocol on a table (docs/server.md)")
    configure(parser)
    return parser


def options_of(arguments: argparse.Namespace) -> Options:
    if bool(arguments.tls_cert) != bool(arguments.tls_key):
        raise ValueError("--tls-cert and --tls-key go together")
    if arguments.workers < 1 or arguments.maxclients < 1 or arguments.databases < 1:
        raise ValueError("--workers, --maxclients and --databases must be at least 1")
    try:
        return Options(table=arguments.table, host=arguments.host, port=arguments.port,
                       databases=arguments.databases,
                       names=dict(arguments.db), requirepass=arguments.requirepass, aclfile=arguments.aclfile,
                       protected_mode=arguments.protected_mode == "yes", tls_cert=arguments.tls_cert,
                       tls_key=arguments.tls_key, maxclients=arguments.maxclients, timeout=arguments.timeout,
                       max_bulk=arguments.proto_max_bulk_len, query_buffer=arguments.client_query_buffer_limit,
                       output_buffer=arguments.output_buffer_limit,
                       pubsub_output_buffer=arguments.pubsub_output_buffer_limit,
                       shutdown_timeout=arguments.shutdown_timeout, workers=arguments.workers,
                       endpoint_url=arguments.endpoint_url, region=arguments.region)
    except OSError as error:  # an unreadable --aclfile
        raise ValueError(str(error)) from None


async def serve_until_signalled(options: Options) -> None:
    server = Server(options)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, server.stop)
    await server.serve()


def serve_process(options: Options, log_level: str) -> None:
    """One server process (a worker of ``--workers``, or the only one). Commands still blocked after the
    shutdown timeout (a BLPOP 0) are abandoned: the process exits without waiting for their threads."""
    logging.basicConfig(level=log_level, format=f"%(asctime)s [{os.getpid()}] %(levelname)s %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)
    asyncio.run(serve_until_signalled(options))
    workers = [thread for thread in threading.enumerate() if thread.name.startswith("redimo-serve")]
    deadline = time.monotonic() + 1
    for thread in workers:
        thread.join(max(0.0, deadline - time.monotonic()))
    if any(thread.is_alive() for thread in workers):
        log.warning("exiting with commands still blocked")
        logging.shutdown()
        os._exit(0)
    log.info("shut down")


def run_serve(arguments: argparse.Namespace) -> int:
    """``redimo serve``: serves until SIGTERM or SIGINT; returns the exit status."""
    try:
        options = options_of(arguments)
    except ValueError as error:
        print(f"redimo serve: error: {error}", file=sys.stderr)
        return 2
    try:
        if options.workers == 1:
            serve_process(options, arguments.log_level)
            return 0
        return run_workers(options, arguments.log_level)
    except OSError as error:  # the port is taken, the certificate unreadable ...
        print(f"redimo serve: error: {error}", file=sys.stderr)
        return 1


def run_workers(options: Options, log_level: str) -> int:
    """``--workers N``: N processes listening on one port (SO_REUSEPORT); SIGTERM and SIGINT are passed on."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise OSError("--workers needs SO_REUSEPORT, which this system lacks")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=serve_process, args=(options, log_level)) for _ in range(options.workers)]
    for worker in workers:
        worker.start()

    def forward(signum: int, frame: Any) -> None:
        for worker in workers:
            if worker.pid is not None and worker.is_alive():
                os.kill(worker.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for worker in workers:
        worker.join()
    return max(worker.exitcode or 0 for worker in workers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="redimo serve", description=__doc__.splitlines()[0])
    configure(parser)
    return run_serve(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
