"""Pub/Sub: PUBLISH, PUBSUB CHANNELS / NUMSUB / NUMPAT, and SUBSCRIBE, PSUBSCRIBE, UNSUBSCRIBE,
PUNSUBSCRIBE, which act on the connection (see docs/pubsub.md and core/redimo/pubsub.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from ..compact import sort_key
from ..glob import glob_match
from ..protocol import ReplyError, wrong_arity
from ..pubsub import CHANNELS, PATTERNS, PUSHED, Listener, live, pattern_of, poller_of, publish, registry_key, side
from ..storage import Database
from .base import Reply, command, subcommand, text
from .transactions import SESSION_COMMANDS

if TYPE_CHECKING:
    from ..engine import Engine, Session

ALLOWED = frozenset((b"subscribe", b"psubscribe", b"unsubscribe", b"punsubscribe", b"ssubscribe", b"sunsubscribe",
                     b"ping", b"quit", b"reset"))
CONTAINERS = frozenset((b"pubsub", b"xinfo", b"xgroup", b"object", b"client", b"config", b"command", b"script",
                        b"function", b"memory"))


@command("publish", 3)
def publish_command(db: Database, args: list[bytes]) -> int:
    """PUBLISH channel message: the number of subscriptions (connections, and their patterns that match)
    that receive it. Cost: 1 UpdateItem + 1 PutItem + 1 eventually consistent GetItem (+ 2 UpdateItem
    once a minute per channel, to keep it in the registry)."""
    return publish(db, args[0], args[1])


def subscribers(db: Database, channels: list[bytes]) -> dict[bytes, int]:
    """Live subscriber entries of each distinct channel's head: ⌈n/100⌉ BatchGetItem."""
    distinct = list(dict.fromkeys(channels))
    items = db.gateway.batch_get([db.head_key(channel) for channel in distinct]) if distinct else []
    now = db.clock()
    return {db.key_of(item): len(live(item, "s:", now)[0]) for item in items}


@command("pubsub", -2)
def pubsub_command(db: Database, args: list[bytes]) -> Any:
    """PUBSUB CHANNELS [pattern]: 1 GetItem of the registry + ⌈n/100⌉ BatchGetItem of its channels'
    heads. PUBSUB NUMSUB [channel ...]: ⌈n/100⌉ BatchGetItem. PUBSUB NUMPAT: 1 GetItem."""
    sub = subcommand(args, {b"CHANNELS": -2, b"NUMSUB": -2, b"NUMPAT": 2}, "PUBSUB")
    side_db = side(db)
    if sub == b"CHANNELS":
        if len(args) > 2:
            raise ReplyError(f"ERR unknown subcommand or wrong number of arguments for '{text(args[0])}'. "
                             "Try PUBSUB HELP.")
        registry = side_db.gateway.get(registry_key(side_db, CHANNELS)) or {}
        names = [sort_key(name)[1:] for name in registry if name not in ("pk", "sk")]
        names = [name for name in names if len(args) == 1 or glob_match(args[1], name)]
        return [channel for channel, count in subscribers(side_db, names).items() if count]
    if sub == b"NUMSUB":
        counts = subscribers(side_db, args[1:])
        return [part for channel in args[1:] for part in (channel, counts.get(channel, 0))]
    patterns = side_db.gateway.get(registry_key(side_db, PATTERNS))
    return len({pattern_of(name) for name in live(patterns, "", db.clock())[0]})


def listener_of(session: Session) -> Listener:
    listener = getattr(session, "listener", None)
    if listener is None:
        raise ReplyError("ERR this connection cannot subscribe")
    if session.queue is not None:
        raise ReplyError("ERR SUBSCRIBE and its family are not supported inside MULTI in Redimo")
    return listener


def session_handler(action: Callable[..., None]) -> Callable[[Engine, Session, list[bytes]], Reply]:
    def handler(engine: Engine, session: Session, args: list[bytes]) -> Reply:
        action(poller_of(engine), listener_of(session), args)
        return PUSHED

    handler.__doc__ = action.__doc__
    return handler


SESSION_COMMANDS.update({
    b"subscribe": (-2, session_handler(lambda poller, listener, args: poller.subscribe(listener, args))),
    b"psubscribe": (-2, session_handler(lambda poller, listener, args: poller.psubscribe(listener, args))),
    b"unsubscribe": (-1, session_handler(lambda poller, listener, args: poller.unsubscribe(listener, args))),
    b"punsubscribe": (-1, session_handler(lambda poller, listener, args: poller.punsubscribe(listener, args))),
})


def subscribed_reply(engine: Engine, args: list[bytes]) -> Reply | None:
    """On a connection in subscribe mode (RESP2), as Redis 7: PING replies ``[pong, message]``, the
    subscribe family runs (None), any other command is refused after its name and arity are checked."""
    name = args[0].lower()
    if name == b"ping":
        if len(args) > 2:
            raise wrong_arity(name)
        return [b"pong", args[1] if len(args) > 1 else b""]
    if name in ALLOWED:
        return None
    if name in SESSION_COMMANDS:
        arity = SESSION_COMMANDS[name][0]
        if (arity >= 0 and len(args) != arity) or len(args) < -arity:
            raise wrong_arity(name)
    else:
        engine.resolve(args)
    full = name + b"|" + args[1].lower() if name in CONTAINERS and len(args) > 1 else name
    raise ReplyError(f"ERR Can't execute '{text(full)}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / "
                     "RESET are allowed in this context")
