"""Pub/Sub on DynamoDB (docs/pubsub.md): each channel is a capped stream in a side namespace, and one
poller per engine reads the heads of every channel its connections listen to, in one BatchGetItem.

Layout, in namespace ``side(db)`` (the client's namespace + ``ESC "pubsub"``, so no KEYS, SCAN or
DBSIZE of the client's namespace sees it):

- channel head, ``pk = channel, sk = 00``: ``n`` the last sequence number (every PUBLISH adds 1),
  ``g`` its generation, ``r`` when it was last put in the registry, ``s:<listener>`` the expiry (ms)
  of each subscribed connection, heartbeated; ``tx`` renewed by publishes and heartbeats.
- message, ``sk = 07 ‖ (seq mod CAP)``: a ring of CAP slots, each ``s`` (its sequence number), ``g``,
  ``ts`` (publish time, ms), ``v`` (the message), ``tx``.
- registry, ``pk = "" , sk = 05 "channels"``: one attribute per channel published to or subscribed to
  lately (its last refresh, ms), so that pattern subscribers find channels; ``sk = 05 "patterns"``:
  one attribute per (connection, pattern) with its expiry, for PUBLISH's count and PUBSUB NUMPAT.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable

from .compact import map_key, sort_key
from .gateway import BATCH_GET_LIMIT, ConditionFailed, Gateway, Item
from .glob import glob_match
from .protocol import ReplyError
from .storage import HEAD, Database, ttl_seconds

log = logging.getLogger(__name__)

CAP = 1024  # message slots per channel (MAXLEN, exact): a subscriber more than CAP behind loses the oldest
MESSAGE_TTL = 600_000  # ms: a message item's DynamoDB TTL (AWS deletes it some time after)
HEAD_TTL = 86_400_000  # ms: a channel head's TTL, renewed by every publish and heartbeat
INTERVAL = 0.05  # s between the starts of two polls
HEARTBEAT = 20.0  # s between a poller's renewals of its subscriber entries
SUBSCRIBER_TTL = 60_000  # ms a subscriber entry lives without a heartbeat (a crashed client's)
REFRESH = 60_000  # ms: a publisher puts its channel in the registry again after this
REGISTRY_TTL = 600_000  # ms: registry entries not refreshed for this long are removed
STUCK = 5.0  # s a poller waits for a message whose publisher took its number but did not write it
DISCOVERY = 100  # messages a pattern subscriber looks back on a channel it finds in the registry
MAX_MESSAGE = 350_000  # bytes: a message is one item
ENTRIES_PER_UPDATE = 50  # attributes set or removed by one UpdateItem (expressions are at most 4 KB)
SLOT = b"\x07"
CHANNELS = b"\x05channels"
PATTERNS = b"\x05patterns"
ID_LENGTH = 12  # characters of a listener id
PUSHED = object()  # a session handler's "reply": its replies were pushed to the connection's queue
SIDE_SUFFIX = "\x1bpubsub"  # the side namespace's name is the client's namespace + this


def side(db: Database) -> Database:
    """The side namespace of ``db``'s, on the real gateway (not a MULTI's staging or a pipeline's)."""
    gateway = getattr(db.gateway, "gateway", db.gateway)
    return db.other(db.namespace + SIDE_SUFFIX, gateway)


def slot_key(db: Database, channel: bytes, seq: int) -> Item:
    return {"pk": {"B": db.pk(channel)}, "sk": {"B": SLOT + (seq % CAP).to_bytes(4, "big")}}


def registry_key(db: Database, sk: bytes) -> Item:
    return {"pk": {"B": db.pk(b"")}, "sk": {"B": sk}}


def number(value: int) -> dict:
    return {"N": str(value)}


def live(item: Item | None, prefix: str, now: int) -> tuple[list[str], list[str]]:
    """The names of ``item``'s entries starting with ``prefix``: (live, expired) by their expiry."""
    names = [name for name in item or {} if name.startswith(prefix) and name not in ("pk", "sk")]
    return ([name for name in names if int(item[name]["N"]) > now],  # type: ignore[index]
            [name for name in names if int(item[name]["N"]) <= now])  # type: ignore[index]


def update_entries(gateway: Gateway, key: Item, values: dict[str, dict], removes: Iterable[str] = (),
                   also: str = "", also_values: dict | None = None) -> Item | None:
    """Set and remove top-level attributes of one item, ENTRIES_PER_UPDATE to an UpdateItem (an
    expression is at most 4 KB); ``also`` is one more SET clause for the first. Returns the item as
    the last UpdateItem left it."""
    sets, removes = list(values.items()), list(removes)
    item = None
    while True:
        now_sets, sets = sets[:ENTRIES_PER_UPDATE], sets[ENTRIES_PER_UPDATE:]
        room = ENTRIES_PER_UPDATE - len(now_sets)
        gone, removes = removes[:room], removes[room:]
        names = {f"#a{i}": name for i, (name, _) in enumerate(now_sets)}
        names |= {f"#r{i}": name for i, name in enumerate(gone)}
        parts = [f"#a{i} = :a{i}" for i in range(len(now_sets))] + ([also] if also else [])
        expression = " ".join(filter(None, ["SET " + ", ".join(parts) if parts else "",
                                            "REMOVE " + ", ".join(f"#r{i}" for i in range(len(gone))) if gone else ""]))
        values_now = {f":a{i}": value for i, (_, value) in enumerate(now_sets)} | (also_values or {})
        item = gateway.update(key, expression, values_now, names, returns="ALL_NEW")
        also, also_values = "", None
        if not sets and not removes:
            return item


def read_eventually(gateway: Gateway, keys: list[Item]) -> list[Item]:
    """BatchGetItem with eventually consistent reads (half the RCU): a stale answer only delays a message."""
    found: list[Item] = []
    for start in range(0, len(keys), BATCH_GET_LIMIT):
        pending = {gateway.table: {"Keys": keys[start:start + BATCH_GET_LIMIT], "ConsistentRead": False}}
        while pending:
            response = gateway.call("batch_get_item", RequestItems=pending)
            found.extend(response["Responses"].get(gateway.table, []))
            pending = response.get("UnprocessedKeys") or {}
    return found


# -- publishing -----------------------------------------------------------------------------------
def publish(db: Database, channel: bytes, message: bytes) -> int:
    """PUBLISH: 1 UpdateItem (the head: next number, live subscribers) + 1 PutItem (the slot) + 1
    eventually consistent GetItem (pattern subscriptions); once a minute a channel's publisher also
    refreshes the registry (2 UpdateItem). Returns the live subscriptions that receive it."""
    if len(message) > MAX_MESSAGE:
        raise ReplyError(f"ERR message exceeds maximum allowed size ({MAX_MESSAGE} bytes in Redimo)")
    side_db = side(db)
    gateway, now = side_db.gateway, db.clock()
    head_key = side_db.head_key(channel)
    head = gateway.update(head_key, "ADD n :one SET g = if_not_exists(g, :g), tx = :tx",
                          {":one": number(1), ":g": {"B": os.urandom(8)}, ":tx": {"N": ttl_seconds(now + HEAD_TTL)}},
                          returns="ALL_NEW") or {}
    seq = int(head["n"]["N"])
    gateway.put({**slot_key(side_db, channel, seq), "s": number(seq), "g": head["g"], "ts": number(now),
                 "v": {"B": message}, "tx": {"N": ttl_seconds(now + MESSAGE_TTL)}})
    subscribers, expired = live(head, "s:", now)
    if expired:
        update_entries(gateway, head_key, {}, expired)
    if "r" not in head or int(head["r"]["N"]) < now - REFRESH:
        register(side_db, channel, now)
    patterns_key = registry_key(side_db, PATTERNS)
    patterns = gateway.call("get_item", TableName=gateway.table, Key=patterns_key, ConsistentRead=False).get("Item")
    entries, expired = live(patterns, "", now)
    if expired:
        update_entries(gateway, patterns_key, {}, expired)
    return len(subscribers) + sum(1 for name in entries if glob_match(pattern_of(name), channel))


def pattern_of(name: str) -> bytes:
    """The pattern of a pattern registry entry (``map_key("p" + listener id + pattern)``)."""
    return sort_key(name)[1 + ID_LENGTH:]


def register(db: Database, channel: bytes, now: int) -> None:
    """Put a published channel in the registry, if no other publisher did in the last minute: a
    conditional UpdateItem of its head's ``r``, then an UpdateItem of the registry (which also drops
    entries older than REGISTRY_TTL that it returns)."""
    try:
        db.gateway.update(db.head_key(channel), "SET r = :now", {":now": number(now), ":stale": number(now - REFRESH)},
                          condition="attribute_not_exists(r) OR r < :stale")
    except ConditionFailed:
        return
    refresh(db, [channel], now)


def refresh(db: Database, channels: Iterable[bytes], now: int) -> None:
    """Stamp channels in the registry (an UpdateItem per ENTRIES_PER_UPDATE), and remove the stale
    entries the last one returns (one conditional UpdateItem more, when there are some)."""
    key = registry_key(db, CHANNELS)
    item = update_entries(db.gateway, key, {map_key(b"c" + channel): number(now) for channel in channels})
    stale = [name for name in item or {} if name not in ("pk", "sk")
             and int(item[name]["N"]) < now - REGISTRY_TTL][:ENTRIES_PER_UPDATE]  # type: ignore[index]
    if stale:
        names = {f"#r{i}": name for i, name in enumerate(stale)}
        try:
            db.gateway.update(key, "REMOVE " + ", ".join(names), {":stale": number(now - REGISTRY_TTL)}, names,
                              condition=" AND ".join(f"{name} < :stale" for name in names))
        except ConditionFailed:
            pass  # refreshed meanwhile: the next registration looks again


# -- subscribing ----------------------------------------------------------------------------------
class Listener:
    """One connection's subscriptions and its queue of replies and messages (what redis-py reads)."""

    def __init__(self) -> None:
        self.id = uuid.uuid4().hex[:ID_LENGTH]
        self.replies: deque = deque()
        self.arrived = threading.Condition()
        self.channels: dict[bytes, None] = {}
        self.patterns: dict[bytes, int] = {}  # pattern -> when subscribed (ms)
        self.poller: Poller | None = None

    @property
    def attribute(self) -> str:
        return "s:" + self.id

    def pattern_attribute(self, pattern: bytes) -> str:
        return map_key(b"p" + self.id.encode() + pattern)

    @property
    def count(self) -> int:
        return len(self.channels) + len(self.patterns)

    def push(self, *replies: Any) -> None:
        with self.arrived:
            self.replies.extend(replies)
            self.arrived.notify_all()

    def wait(self, timeout: float | None) -> bool:
        """Whether a reply is queued, waiting up to ``timeout`` seconds (None: for ever) for one."""
        if self.replies or timeout == 0:  # no need of the lock: the deque's length is read atomically
            return bool(self.replies)
        with self.arrived:
            return self.arrived.wait_for(lambda: self.replies, timeout)


@dataclass(eq=False)
class Receiver:
    """A listener's subscription to one channel, directly (``pattern`` None) or through a pattern."""

    listener: Listener
    pattern: bytes | None
    last: int | None  # the last sequence number delivered or passed; None: from the next head read
    since: int = 0  # ms: only messages published from then on (for channels found in the registry)


@dataclass(eq=False)
class Watch:
    """A channel the poller reads: its generation and who receives it."""

    generation: bytes | None = None
    receivers: dict[tuple[str, bytes | None], Receiver] = field(default_factory=dict)
    waiting: float | None = None  # since when a numbered message has not appeared
    expired: list[str] = field(default_factory=list)  # subscriber entries the last head read showed expired

    def adopt(self, generation: bytes) -> None:
        """A head of another generation is a new channel (the old one expired): all its messages are new."""
        if self.generation is not None and generation != self.generation:
            for receiver in self.receivers.values():
                receiver.last = 0
        self.generation = generation


class Poller:
    """The poller of one engine: it serves every connection of the client. Each poll is one eventually
    consistent BatchGetItem of the watched channels' heads (with the channel registry when a pattern is
    subscribed), then one of the new messages' slots, only when some head moved."""

    def __init__(self, db: Database) -> None:
        self.db = side(db)
        self.gateway = self.db.gateway
        self.interval = INTERVAL
        self.heartbeat = HEARTBEAT
        self.lock = threading.RLock()
        self.wake = threading.Event()
        self.watches: dict[bytes, Watch] = {}
        self.listeners: dict[str, Listener] = {}
        self.thread: threading.Thread | None = None
        self.polls = 0
        self.next_beat = time.monotonic() + self.heartbeat

    def expiry(self) -> dict:
        return number(self.db.clock() + SUBSCRIBER_TTL)

    # -- commands -----------------------------------------------------------------------------
    def subscribe(self, listener: Listener, channels: list[bytes]) -> None:
        """SUBSCRIBE: per new channel 1 UpdateItem of its head (the entry; it returns where the
        channel is), then 1 UpdateItem of the registry for them all."""
        new = []
        for channel in channels:
            if channel not in listener.channels:
                now = self.db.clock()
                head = self.gateway.update(
                    self.db.head_key(channel), "SET #me = :x, g = if_not_exists(g, :g), n = if_not_exists(n, :zero), "
                    "tx = :tx", {":x": self.expiry(), ":g": {"B": os.urandom(8)}, ":zero": number(0),
                                 ":tx": {"N": ttl_seconds(now + HEAD_TTL)}},
                    {"#me": listener.attribute}, returns="ALL_NEW") or {}
                with self.lock:
                    watch = self.watches.setdefault(channel, Watch())
                    watch.adopt(head["g"]["B"])
                    watch.receivers[(listener.id, None)] = Receiver(listener, None, int(head["n"]["N"]))
                    listener.channels[channel] = None
                    self.join(listener)
                new.append(channel)
            listener.push([b"subscribe", channel, listener.count])
        if new:
            refresh(self.db, new, self.db.clock())
        self.start()

    def psubscribe(self, listener: Listener, patterns: list[bytes]) -> None:
        """PSUBSCRIBE: 1 UpdateItem of the pattern registry, 1 GetItem of the channel registry and a
        BatchGetItem of the heads of the channels it lists that the new patterns match."""
        new = list(dict.fromkeys(pattern for pattern in patterns if pattern not in listener.patterns))
        heads: dict[bytes, Item] = {}
        if new:
            update_entries(self.gateway, registry_key(self.db, PATTERNS),
                           {listener.pattern_attribute(pattern): self.expiry() for pattern in new})
            registry = self.gateway.get(registry_key(self.db, CHANNELS)) or {}
            names = [sort_key(name)[1:] for name in registry if name not in ("pk", "sk")]
            matching = [name for name in names if any(glob_match(pattern, name) for pattern in new)]
            if matching:
                items = self.gateway.batch_get([self.db.head_key(name) for name in matching])
                heads = {self.db.key_of(item): item for item in items}
        since = self.db.clock()
        with self.lock:
            for pattern in patterns:
                if pattern in new:
                    listener.patterns[pattern] = since
                    for channel, head in heads.items():
                        if glob_match(pattern, channel):
                            watch = self.watches.setdefault(channel, Watch())
                            watch.adopt(head["g"]["B"])
                            watch.receivers[(listener.id, pattern)] = Receiver(listener, pattern, int(head["n"]["N"]))
                    self.join(listener)
                listener.push([b"psubscribe", pattern, listener.count])
        self.start()

    def unsubscribe(self, listener: Listener, channels: list[bytes], confirm: bool = True) -> None:
        """UNSUBSCRIBE: 1 UpdateItem per channel left (removes the entry)."""
        targets = channels or list(listener.channels)
        for channel in targets:
            if channel in listener.channels:
                self.gateway.update(self.db.head_key(channel), "REMOVE #me", names={"#me": listener.attribute})
                with self.lock:
                    del listener.channels[channel]
                    self.drop(channel, (listener.id, None))
            if confirm:
                listener.push([b"unsubscribe", channel, listener.count])
        if confirm and not targets:
            listener.push([b"unsubscribe", None, listener.count])
        self.leave_if_done(listener)

    def punsubscribe(self, listener: Listener, patterns: list[bytes], confirm: bool = True) -> None:
        """PUNSUBSCRIBE: 1 UpdateItem of the pattern registry (none when it leaves no pattern)."""
        targets = patterns or list(listener.patterns)
        leaving = [pattern for pattern in dict.fromkeys(targets) if pattern in listener.patterns]
        if leaving:
            update_entries(self.gateway, registry_key(self.db, PATTERNS), {},
                           [listener.pattern_attribute(pattern) for pattern in leaving])
        for pattern in targets:
            with self.lock:
                if listener.patterns.pop(pattern, None) is not None:
                    for channel in list(self.watches):
                        self.drop(channel, (listener.id, pattern))
            if confirm:
                listener.push([b"punsubscribe", pattern, listener.count])
        if confirm and not targets:
            listener.push([b"punsubscribe", None, listener.count])
        self.leave_if_done(listener)

    def leave(self, listener: Listener) -> None:
        """A connection closes: its subscriptions end (requests as UNSUBSCRIBE and PUNSUBSCRIBE)."""
        self.unsubscribe(listener, [], confirm=False)
        self.punsubscribe(listener, [], confirm=False)

    def join(self, listener: Listener) -> None:
        self.listeners[listener.id] = listener
        listener.poller = self

    def drop(self, channel: bytes, receiver: tuple[str, bytes | None]) -> None:
        watch = self.watches.get(channel)
        if watch is not None:
            watch.receivers.pop(receiver, None)
            if not watch.receivers:
                del self.watches[channel]

    def leave_if_done(self, listener: Listener) -> None:
        with self.lock:
            if not listener.count:
                self.listeners.pop(listener.id, None)
            if not self.listeners:
                self.wake.set()

    # -- polling ------------------------------------------------------------------------------
    def start(self) -> None:
        with self.lock:
            if self.thread is None and self.listeners:
                self.wake.clear()
                self.thread = threading.Thread(target=self.run, name="redimo-pubsub", daemon=True)
                self.thread.start()

    def run(self) -> None:
        while True:
            with self.lock:
                if not self.listeners:
                    self.thread = None
                    return
            started = time.monotonic()
            try:
                self.poll()
            except Exception:  # DynamoDB unreachable for a moment: poll again
                log.warning("redimo pub/sub poll failed", exc_info=True)
            self.wake.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def poll(self) -> None:
        """One poll: the heads, then the new messages, delivered in order; heartbeats when due."""
        with self.lock:
            channels = list(self.watches)
            patterns = any(listener.patterns for listener in self.listeners.values())
            keys = [self.db.head_key(channel) for channel in channels]
            if patterns:
                keys.append(registry_key(self.db, CHANNELS))
            if not keys:
                return
            items = {(item["pk"]["B"], item["sk"]["B"]): item for item in read_eventually(self.gateway, keys)}
            self.polls += 1
            now = self.db.clock()
            if patterns:
                self.discover(items.get((self.db.pk(b""), CHANNELS)))
            wanted: dict[bytes, range] = {}
            for channel, watch in self.watches.items():
                head = items.get((self.db.pk(channel), HEAD))
                if head is None:
                    continue
                watch.adopt(head["g"]["B"])
                watch.expired = live(head, "s:", now)[1]
                last = int(head.get("n", {"N": "0"})["N"])
                for receiver in watch.receivers.values():
                    if receiver.last is None:
                        receiver.last = max(0, last - DISCOVERY)
                low = min(receiver.last for receiver in watch.receivers.values())  # type: ignore[type-var]
                if last > low:
                    wanted[channel] = range(max(low, last - CAP) + 1, last + 1)
            if wanted:
                slots = [slot_key(self.db, channel, seq) for channel, seqs in wanted.items() for seq in seqs]
                found = {(item["pk"]["B"], item["sk"]["B"]): item for item in read_eventually(self.gateway, slots)}
                for channel, seqs in wanted.items():
                    self.deliver(channel, seqs, found)
            if time.monotonic() >= self.next_beat:
                self.beat(now)

    def discover(self, registry: Item | None) -> None:
        """Pattern subscriptions take on the registry's channels they match that they do not read yet,
        from the messages published since they subscribed."""
        for name in registry or {}:
            if name in ("pk", "sk"):
                continue
            channel = sort_key(name)[1:]
            for listener in self.listeners.values():
                for pattern, since in listener.patterns.items():
                    if glob_match(pattern, channel):
                        watch = self.watches.setdefault(channel, Watch())
                        watch.receivers.setdefault((listener.id, pattern), Receiver(listener, pattern, None, since))

    def deliver(self, channel: bytes, seqs: range, found: dict[tuple[bytes, bytes], Item]) -> None:
        watch = self.watches[channel]
        for seq in seqs:
            item = found.get((self.db.pk(channel), SLOT + (seq % CAP).to_bytes(4, "big")))
            position = int(item["s"]["N"]) if item and item["g"] == {"B": watch.generation} else -1
            if position < seq:  # numbered, not written yet (or not readable yet): wait, up to STUCK
                watch.waiting = watch.waiting or time.monotonic()
                if time.monotonic() - watch.waiting < STUCK:
                    return
            watch.waiting = None
            for receiver in watch.receivers.values():
                if receiver.last is not None and receiver.last < seq:
                    receiver.last = seq
                    if position == seq and int(item["ts"]["N"]) >= receiver.since:  # type: ignore[index]
                        data = item["v"]["B"]  # type: ignore[index]
                        receiver.listener.push([b"message", channel, data] if receiver.pattern is None
                                               else [b"pmessage", receiver.pattern, channel, data])

    def beat(self, now: int) -> None:
        """Renew this client's entries: 1 UpdateItem per channel subscribed (removing the expired entries
        its last read showed), 1 of the channel registry, 1 of the pattern registry."""
        self.next_beat = time.monotonic() + self.heartbeat
        expiry, subscribed = self.expiry(), []
        for channel, watch in self.watches.items():
            mine = {receiver.listener.attribute: expiry for receiver in watch.receivers.values()
                    if receiver.pattern is None}
            if mine:
                subscribed.append(channel)
                update_entries(self.gateway, self.db.head_key(channel), mine,
                               [name for name in watch.expired if name not in mine],
                               "tx = :tx", {":tx": {"N": ttl_seconds(now + HEAD_TTL)}})
        if subscribed:
            refresh(self.db, subscribed, now)
        patterns = {listener.pattern_attribute(pattern): expiry for listener in self.listeners.values()
                    for pattern in listener.patterns}
        if patterns:
            update_entries(self.gateway, registry_key(self.db, PATTERNS), patterns)


_pollers: weakref.WeakKeyDictionary[Any, Poller] = weakref.WeakKeyDictionary()
_pollers_lock = threading.Lock()


def poller_of(engine: Any) -> Poller:
    """The poller of an engine (``Redimo(...).engine``), made on first use; set its ``interval``
    (seconds between polls, default 0.05) to trade latency for requests."""
    with _pollers_lock:
        if engine not in _pollers:
            _pollers[engine] = Poller(engine.db)
        return _pollers[engine]
