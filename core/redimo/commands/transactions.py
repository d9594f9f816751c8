"""Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH (see docs/reference/transactions.md).

These act on the connection's :class:`~redimo.engine.Session`, so the engine dispatches them itself
(``SESSION_COMMANDS``) rather than through the command registry.

EXEC runs the queued commands on a :class:`~redimo.staging.Staging` gateway: their reads go to
DynamoDB (the heads of the keys they name are read first, with the WATCHed ones, in one BatchGetItem),
their writes stay in the staging, and every item they changed is then written in ONE TransactWriteItems,
each conditioned on the item being as this EXEC read it, with a ConditionCheck for each WATCHed head.
So other clients see all of an EXEC or none of it. When another client changed something the EXEC
read, the transaction is refused and the EXEC runs again from the start (nothing was applied); when a
WATCHed key changed, EXEC replies nil. When the items exceed one transaction (100 items, 4 MB), the
ones only BatchWriteItem wrote (a new value's chunks and members, written first; an old value's,
deleted after) go around it; if the rest still does not fit, the commands run again one after another,
each applied as it runs (not atomically).
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Callable

from ..gateway import Item, TransactionConditionFailed
from ..protocol import OK, ReplyError, SimpleString, canonical_int
from ..staging import Stale, Staging, head_keys
from ..storage import Database
from .base import Reply, options
from .lists import parse_timeout

if TYPE_CHECKING:
    from ..engine import Engine, Session

QUEUED = SimpleString(b"QUEUED")
ATTEMPTS = 100

# Commands whose keys are all their arguments, or every other one from the first (MSET); the others
# name one key first (or none: KEYLESS). Used only to read heads ahead, so a guess costs a little RCU.
ALL_KEYS = frozenset(name.encode() for name in (
    "del unlink exists touch mget watch sinter sunion sdiff sinterstore sunionstore sdiffstore pfcount pfmerge "
    "rename renamenx copy smove rpoplpush lmove").split())
PAIRS = frozenset((b"mset", b"msetnx"))
KEYLESS = frozenset(name.encode() for name in (
    "ping echo dbsize keys scan randomkey flushdb flushall time info multi exec discard unwatch").split())
# Blocking commands and where their timeout is.
BLOCKING_LAST = frozenset((b"blpop", b"brpop", b"brpoplpush", b"blmove", b"bzpopmin", b"bzpopmax"))
BLOCKING_FIRST = frozenset((b"blmpop", b"bzmpop"))
# Read-only commands whose heads a pipeline reads ahead (one BatchGetItem for the whole batch).
# Only commands that read nothing but the head: members read later would pair with an older head.
READ_ONLY = frozenset(name.encode() for name in (
    "get getrange substr strlen mget exists type ttl pttl expiretime pexpiretime "
    "hlen scard zcard llen xlen").split())


def command_keys(args: list[bytes]) -> list[bytes]:
    """The keys a command (name first) names, as far as reading ahead needs them."""
    name = args[0].lower()
    if name in KEYLESS:
        return []
    if name in ALL_KEYS:
        return args[1:]
    if name in PAIRS:
        return args[1::2]
    return args[1:2]


def multi(engine: Engine, session: Session, args: list[bytes]) -> Reply:
    """MULTI. Cost: none."""
    if session.queue is not None:
        raise ReplyError("ERR MULTI calls can not be nested")
    session.queue = []
    return OK


def discard(engine: Engine, session: Session, args: list[bytes]) -> Reply:
    """DISCARD: drops the queue and the WATCHes. Cost: none."""
    if session.queue is None:
        raise ReplyError("ERR DISCARD without MULTI")
    session.reset()
    return OK


def watch(engine: Engine, session: Session, args: list[bytes]) -> Reply:
    """WATCH key [key ...]: reads the heads now (1 BatchGetItem, 100 keys a request); EXEC fails if
    one of them changes (any write, including EXPIRE) or expires before EXEC."""
    if session.queue is not None:
        raise ReplyError("ERR WATCH inside MULTI is not allowed")
    db = engine.db
    new = [key for key in dict.fromkeys(args) if key not in session.watched]
    if new:
        heads = {db.key_of(item): item for item in engine.gateway.batch_get([db.head_key(key) for key in new])}
        for key in new:
            session.watched[key] = (heads.get(key), db.record(heads.get(key)) is not None)
        session.touched.difference_update(head_keys(db.prefix, new))  # its own writes before WATCH don't count
    return OK


def unwatch(engine: Engine, session: Session, args: list[bytes]) -> Reply:
    """UNWATCH. Cost: none."""
    session.watched.clear()
    session.touched.clear()
    return OK


def exec_(engine: Engine, session: Session, args: list[bytes]) -> Reply:
    """EXEC: the queued commands' replies, or nil when a WATCHed key changed. Cost: 1 BatchGetItem of
    the heads the commands name (and the WATCHed ones), the reads the commands make beyond those, and
    1 TransactWriteItems of the changed items (2 WCU per KB each; none when nothing changed)."""
    if session.queue is None:
        raise ReplyError("ERR EXEC without MULTI")
    queue, watched, dirty = session.queue, dict(session.watched), session.dirty
    touched = any(head in session.touched for head in head_keys(engine.db.prefix, watched))
    session.reset()
    if dirty:
        raise ReplyError("EXECABORT Transaction discarded because of previous errors.")
    return None if touched else transaction(engine, queue, watched)


def version(item: Item | None) -> object:
    return item["w"] if item and "w" in item else item


def changed(db: Database, watched: tuple[Item | None, bool], item: Item | None) -> bool:
    """Whether a WATCHed head changed: written since (a new version), or expired since."""
    snapshot, live = watched
    if not live:
        return db.record(item) is not None
    return db.record(item) is None or version(item) != version(snapshot)


def without_blocking(args: list[bytes]) -> list[bytes]:
    """As Redis runs a blocking command inside MULTI: without waiting (XREAD without its BLOCK; the
    others with the shortest timeout). An invalid timeout is left for the command to refuse."""
    name = args[0].lower()
    if name in (b"xread", b"xreadgroup"):
        words = options(args, 0)
        end = words.index(b"STREAMS") if b"STREAMS" in words else len(args)
        for index in range(4 if name == b"xreadgroup" else 1, end - 1):
            milliseconds = canonical_int(args[index + 1])
            if words[index] == b"BLOCK" and milliseconds is not None and milliseconds >= 0:
                return args[:index] + args[index + 2:]
        return args
    position = -1 if name in BLOCKING_LAST else 1 if name in BLOCKING_FIRST else None
    if position is None or len(args) < 3:
        return args
    try:
        parse_timeout(args[position])
    except ReplyError:
        return args
    args = list(args)
    args[position] = b"0.002"  # 1 ms once Redis's cast to whole milliseconds truncates it
    return args


def run_all(engine: Engine, db: Database, queue: list[list[bytes]], staging: Staging | None = None) -> list[Reply]:
    replies: list[Reply] = []
    for args in queue:
        if staging:
            staging.next_command()
        if args[0].lower() == b"unwatch":  # EXEC forgets the WATCHes anyway
            replies.append(OK)
            continue
        try:
            replies.append(engine.run(db, without_blocking(args)))
        except ReplyError as error:
            replies.append(error)
    return replies


def transaction(engine: Engine, queue: list[list[bytes]], watched: dict[bytes, tuple[Item | None, bool]]) -> Reply:
    """Stage the queue and commit it in one TransactWriteItems; again while another client got in
    between (see the module's docstring)."""
    keys = [key for args in queue for key in command_keys(args)]
    return atomically(engine, lambda db, staging: run_all(engine, db, queue, staging), keys, watched,
                      lambda: run_all(engine, engine.db, queue))


def atomically(engine: Engine, body: Callable[[Database, Staging], Reply], keys: list[bytes],
               watched: dict[bytes, tuple[Item | None, bool]], too_large: Callable[[], Reply]) -> Reply:
    """Run ``body`` on a staging (the heads of ``keys`` and the WATCHed ones read first, in one
    BatchGetItem) and commit what it wrote in one TransactWriteItems, conditioned on what it read; run
    it again while another client got in between. nil when a WATCHed key changed. When the writes do
    not fit one transaction, ``too_large()`` replies instead. An exception from ``body`` that carries
    ``commit = True`` is raised after its writes are committed (a Lua script's error, as in Redis)."""
    db = engine.db
    heads = head_keys(db.prefix, watched)
    keys = head_keys(db.prefix, keys)
    for attempt in range(ATTEMPTS):
        staging = Staging(engine.gateway)
        current = staging.read_many(heads + keys, serve=False)
        if any(changed(db, state, item) for state, item in zip(watched.values(), current)):
            return None
        failure = None
        try:
            replies = body(db.other(db.namespace, staging), staging)
        except Stale:
            continue  # a key changed while the body read it: start over (nothing was written)
        except Exception as error:
            if not getattr(error, "commit", False):
                raise
            replies, failure = None, error
        states = {head: "live" if live else "absent" for head, (_, live) in zip(heads, watched.values())}
        actions, puts, deletes = staging.actions(states, db.now()), [], []
        if not any("ConditionCheck" not in action.request for action in actions):
            if failure:
                raise failure
            return replies  # nothing to write: WATCH was checked as the EXEC began
        if not Staging.fits(actions):  # new members and chunks first, left-behind ones after
            actions, (puts, deletes) = staging.actions(states, db.now(), without_side=True), staging.side_writes()
        if not Staging.fits(actions):
            return too_large()
        engine.gateway.batch_write(puts=puts)
        try:
            if actions:
                engine.gateway.transact_write([action.request for action in actions])
        except TransactionConditionFailed as failed:
            engine.gateway.batch_write(deletes=[{"pk": item["pk"], "sk": item["sk"]} for item in puts])
            if any(refused and action.watched for refused, action in zip(failed.failed, actions)):
                return None
        else:
            engine.gateway.batch_write(deletes=deletes)
            if failure:
                raise failure
            return replies
        time.sleep(min(0.5, 0.005 * 2**min(attempt, 10)) * random.random())
    raise ReplyError(f"ERR too much contention: the transaction was tried {ATTEMPTS} times")


Handler = Callable[["Engine", "Session", list[bytes]], Reply]
SESSION_COMMANDS: dict[bytes, tuple[int, Handler]] = {
    b"multi": (1, multi),
    b"exec": (1, exec_),
    b"discard": (1, discard),
    b"watch": (-2, watch),
    b"unwatch": (1, unwatch),
}
