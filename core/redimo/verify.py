"""``redimo verify``: compare a Redis source (live server or RDB file) with its copy in Redimo, key by
key: type, contents and expiry (within a tolerance). Redimo is read through the engine, so replies are
Redis protocol values, compared with the source's decoded values in one normal form."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from . import rdb
from .engine import Engine, Session
from .migrate import RDBSource, RedisSource, Selection
from .protocol import ReplyError
from .storage import millis

Shown = Any  # a value in the normal form both sides are compared in
VALUE_TYPES = ("string", "hash", "list", "set", "zset")
BATCH = 50  # keys compared a pipeline (a BatchGetItem reads 100 heads)


def fmt(id_: rdb.StreamID) -> bytes:
    return b"%d-%d" % id_


def source_form(entry: rdb.Entry) -> Shown:
    """A source key's value in the compared form."""
    value = entry.value
    if entry.type in ("string", "list"):
        return value
    if entry.type == "hash":
        return dict(value)
    if entry.type == "set":
        return set(value)
    if entry.type == "zset":
        return sorted(value, key=lambda pair: (pair[1], pair[0]))
    if entry.type == "stream":
        return {"entries": [(fmt(id_), [part for pair in fields for part in pair]) for id_, fields in value.entries],
                "last": fmt(value.last_id), "added": value.entries_added, "deleted": fmt(value.max_deleted_id),
                "groups": sorted((group.name, fmt(group.last_id), group.entries_read,
                                  [(fmt(p.id), p.consumer, p.delivery_count) for p in group.pending],
                                  sorted(consumer.name for consumer in group.consumers)) for group in value.groups)}
    return value


def pairs(flat: list) -> dict:
    return dict(zip(flat[::2], flat[1::2]))


def value_command(type_: str, key: bytes) -> list[bytes]:
    """The read that gives a key's whole value (streams: see stream_form)."""
    return {"string": [b"GET", key], "hash": [b"HGETALL", key], "list": [b"LRANGE", key, b"0", b"-1"],
            "set": [b"SMEMBERS", key], "zset": [b"ZRANGE", key, b"0", b"-1", b"WITHSCORES"]}[type_]


def value_form(type_: str, reply: Any) -> Shown:
    """A value command's reply in the compared form."""
    if type_ == "hash":
        return pairs(reply)
    if type_ == "set":
        return set(reply)
    if type_ == "zset":
        return sorted(((member, float(score)) for member, score in zip(reply[::2], reply[1::2])),
                      key=lambda pair: (pair[1], pair[0]))
    return reply


def stream_form(engine: Engine, key: bytes) -> Shown:
    """A stream copy in the compared form: XRANGE, XINFO STREAM, and per group XPENDING and XINFO CONSUMERS."""
    run = engine.execute
    info = pairs(run([b"XINFO", b"STREAM", key]))
    groups = []
    for group in run([b"XINFO", b"GROUPS", key]):
        group = pairs(group)
        name = group[b"name"]
        pending = run([b"XPENDING", key, name, b"-", b"+", str(max(group[b"pending"], 1)).encode()])
        consumers = run([b"XINFO", b"CONSUMERS", key, name])
        read = group[b"entries-read"]
        groups.append((name, group[b"last-delivered-id"], -1 if read is None else read,
                       [(p[0], p[1], p[3]) for p in pending], sorted(pairs(c)[b"name"] for c in consumers)))
    return {"entries": [(id_, fields) for id_, fields in run([b"XRANGE", key, b"-", b"+"])],
            "last": info[b"last-generated-id"], "added": info[b"entries-added"],
            "deleted": info[b"max-deleted-entry-id"], "groups": sorted(groups)}


@dataclass
class Report:
    checked: int = 0
    expired: int = 0
    differences: list[tuple[int, bytes, str]] = field(default_factory=list)


def differences(engine: Engine, batch: list[rdb.Entry], tolerance_ms: int) -> Iterator[tuple[rdb.Entry, str]]:
    """The keys of a batch whose copy differs, and why. The batch's TYPE, PEXPIRETIME and value reads
    are one pipeline, so their heads (and compact collections whole) come in one BatchGetItem."""
    commands = [command for entry in batch for command in
                ([b"TYPE", entry.key], [b"PEXPIRETIME", entry.key],
                 *([value_command(entry.type, entry.key)] if entry.type in VALUE_TYPES else []))]
    replies = iter(engine.execute_many(commands, Session()))
    for entry in batch:
        found, expire = next(replies), next(replies)
        value = next(replies) if entry.type in VALUE_TYPES else None
        try:
            reason = why(engine, entry, found, expire, value, tolerance_ms)
        except ReplyError as error:
            reason = f"Redimo refused to read it: {error}"
        if reason:
            yield entry, reason


def why(engine: Engine, entry: rdb.Entry, found: Any, expire: Any, value: Any, tolerance_ms: int) -> str | None:
    """Why the copy of one key differs from the source (None: it matches)."""
    for reply in (found, expire, value):
        if isinstance(reply, Exception):
            raise ReplyError(str(reply))
    if entry.type not in (*VALUE_TYPES, "stream"):
        return f"not copied: the source's {entry.type} cannot be held by Redimo"
    found = found.decode() if isinstance(found, bytes) else str(found)
    if found != entry.type:
        return f"type: source {entry.type}, Redimo {found}"
    copy = stream_form(engine, entry.key) if entry.type == "stream" else value_form(entry.type, value)
    if copy != source_form(entry):
        return "contents differ"
    if entry.expire_ms is None and expire != -1:
        return "TTL: the source has none, Redimo has one"
    if entry.expire_ms is not None and (expire < 0 or abs(expire - entry.expire_ms) > tolerance_ms):
        return f"TTL: source expires at {entry.expire_ms} ms, Redimo at {expire if expire >= 0 else 'never'}"
    return None


def sampled(entries: Iterator[rdb.Entry], size: int) -> list[rdb.Entry]:
    """A uniform random sample of ``size`` keys (reservoir sampling)."""
    chosen: list[rdb.Entry] = []
    for seen, entry in enumerate(entries):
        if seen < size:
            chosen.append(entry)
        elif (slot := random.randrange(seen + 1)) < size:
            chosen[slot] = entry
    return chosen


def verify(source: RDBSource | RedisSource, selection: Selection, engines: dict[int, Engine],
           sample: int | None = None, tolerance_ms: int = 5000,
           progress: Callable[[int], None] = lambda keys: None) -> Report:
    """Compare every selected key (or a random sample of them) of the source with its copy, 50 keys
    a pipeline; ``progress`` gets the keys compared after each."""
    report = Report()
    entries: Any = source.entries(selection, lambda db, key: False)
    if sample is not None:
        entries = sampled(entries, sample)
    batches: dict[int, list[rdb.Entry]] = {}
    for entry in [*entries, None]:
        if entry is not None:
            if entry.expire_ms is not None and entry.expire_ms <= millis() + tolerance_ms:
                report.expired += 1  # gone, or about to go, on both sides
                continue
            batches.setdefault(entry.db, []).append(entry)
        for db, batch in list(batches.items()):
            if len(batch) >= BATCH or entry is None:
                report.checked += len(batch)
                report.differences += [(db, differing.key, reason)
                                       for differing, reason in differences(engines[db], batch, tolerance_ms)]
                progress(len(batch))
                del batches[db]
    return report
