"""DUMP and RESTORE in Redis's own serialization format (RDB version 10, Redis 7.0's, with its CRC-64).

The codec is :mod:`redimo.rdb` (:func:`~redimo.rdb.parse_dump` reads a payload, :func:`~redimo.rdb.dump_payload`
writes one) and a restored value becomes the items ``redimo migrate`` writes (:func:`redimo.migrate.items_of`),
so a DUMP from Redis restores into Redimo and a DUMP from Redimo restores into Redis.
"""

from __future__ import annotations

import os

from .. import collection, rdb
from ..collection import Head, member_of
from ..gateway import Item
from ..migrate import Unsupported, items_of
from ..protocol import OK, SYNTAX_ERROR, ReplyError, parse_int
from ..storage import Database
from .base import command, options
from .hashes import FIELD, value_of
from .keys import delete_one
from .sets import all_members
from .sort import read_list
from .streams import CONSUMER, ENTRY, GROUP, PENDING, decode_fields, id_attr, id_of
from .zsets import rank_range, score_of

BAD_PAYLOAD = "ERR DUMP payload version or checksum are wrong"
BUSY = "BUSYKEY Target key name already exists."


def sid(id_: int) -> rdb.StreamID:
    return id_ >> 64, id_ & (1 << 64) - 1


def stream_value(db: Database, key: bytes, head: Head) -> rdb.Stream:
    """A stream with its groups, consumers and pending entries: one Query of all its member items."""
    items = collection.members(db, key, head, ENTRY, PENDING + b"\xff" * 1023)
    entries, groups, consumers, pending = [], {}, {}, {}
    for item in items:
        sk = item["sk"]["B"]
        kind = sk[:1]
        if kind == ENTRY:
            fields = decode_fields(item["fv"]["B"])
            entries.append((sid(id_of(item)), list(zip(fields[::2], fields[1::2]))))
        elif kind == GROUP:
            groups[sk[1:]] = item
        else:
            size = int.from_bytes(sk[1:3], "big")
            group, rest = sk[3:3 + size], sk[3 + size:]
            if kind == CONSUMER:
                consumers.setdefault(group, []).append(rdb.Consumer(rest, int(item["st"]["N"]), -1, []))
            else:
                pending.setdefault(group, []).append(rdb.PendingEntry(
                    sid(int.from_bytes(rest, "big")), item["cn"]["B"], int(item["dt"]["N"]), int(item["dc"]["N"])))
    built = []
    for name, item in groups.items():
        owners = {consumer.name: consumer for consumer in consumers.get(name, [])}
        for entry in pending.get(name, []):
            owners.setdefault(entry.consumer, rdb.Consumer(entry.consumer, entry.delivery_time, -1, []))
            owners[entry.consumer].pending.append(entry.id)
        built.append(rdb.Group(name, sid(id_attr(item, "lid")), int(item["er"]["N"]), pending.get(name, []),
                               list(owners.values())))
    return rdb.Stream(entries, len(entries), sid(id_attr(head.item, "lid")), entries[0][0] if entries else (0, 0),
                      sid(id_attr(head.item, "mdi")), head.number("ea"), built)


def value_of_key(db: Database, key: bytes) -> tuple[str, object] | None:
    """A key's type and value, shaped as :class:`redimo.rdb.Entry` holds it (None: no such key).
    Cost: 1 GetItem, + the members' Query pages (none for a compact collection)."""
    record = db.load(key)
    if record is None:
        return None
    if record.type == "string":
        value = db.string_value(record)
        return "string", value if value is not None else db.read_string(key)[1]
    head = collection.head_of(db, record.item, record.type)[0]
    if record.type == "hash":
        return "hash", [(member_of(item), value_of(item))
                        for item in collection.members(db, key, head, *collection.kind_range(FIELD))]
    if record.type == "set":
        return "set", all_members(db, key, head)
    if record.type == "zset":
        return "zset", [(member_of(item), score_of(item)) for item in rank_range(db, key, head, 0, -1, False)]
    if record.type == "list":
        return "list", read_list(db, key, head, 0, head.size - 1)
    return "stream", stream_value(db, key, head)


@command("dump", 2)
def dump(db: Database, args: list[bytes]) -> bytes | None:
    """DUMP key: the value in Redis 7.0's encodings (see :func:`redimo.rdb.dump_payload`). Cost: 1 GetItem
    + Query pages of a promoted collection's members (a stream's groups, consumers and pending entries
    too); a string over 350,000 bytes: + BatchGetItem of its chunks."""
    found = value_of_key(db, args[0])
    return None if found is None else rdb.dump_payload(*found)


def decode(payload: bytes, key: bytes) -> rdb.Entry:
    """A payload as Redis 7.0's RESTORE checks it: RDB version at most 10 and the CRC-64 right, then a value
    it can load (not empty, not a module's)."""
    if len(payload) < 10 or int.from_bytes(payload[-10:-8], "little") > rdb.DUMP_VERSION \
            or rdb.crc64(payload[:-8]) != int.from_bytes(payload[-8:], "little"):
        raise ReplyError(BAD_PAYLOAD)
    try:
        entry = rdb.parse_dump(payload, key)
    except rdb.RDBError:
        raise ReplyError("ERR Bad data format") from None
    if entry.type == "module" or (entry.type != "stream" and not entry.value and entry.type != "string"):
        raise ReplyError("ERR Bad data format")
    return entry


@command("restore", -4)
def restore(db: Database, args: list[bytes]) -> bytes:
    """RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]. IDLETIME and
    FREQ are checked and dropped (Redimo keeps no access times). Cost: the value's items written as
    :func:`redimo.collection.write_new` writes them (1 GetItem + 1 PutItem for a string or a compact
    collection; 1 TransactWriteItems of head and members up to 98; more: 25 a BatchWriteItem first),
    then the old value's leftovers deleted. A TTL already past: DEL with REPLACE, else nothing."""
    key, words = args[0], options(args, 3)
    replace = absttl = False
    idle = freq = None
    index = 0
    while index < len(words):
        word, more = words[index], index + 1 < len(words)
        if word == b"REPLACE":
            replace = True
        elif word == b"ABSTTL":
            absttl = True
        elif word == b"IDLETIME" and more and freq is None:
            index += 1
            idle = parse_int(args[3 + index])
            if idle < 0:
                raise ReplyError("ERR Invalid IDLETIME value, must be >= 0")
        elif word == b"FREQ" and more and idle is None:
            index += 1
            freq = parse_int(args[3 + index])
            if not 0 <= freq <= 255:
                raise ReplyError("ERR Invalid FREQ value, must be >= 0 and <= 255")
        else:
            raise ReplyError(SYNTAX_ERROR)
        index += 1
    try:
        ttl = parse_int(args[1])
        if ttl < 0:
            raise ReplyError("ERR Invalid TTL value, must be >= 0")
        entry = decode(args[2], key)
    except ReplyError:
        if not replace and db.load(key, "t, x") is not None:
            raise ReplyError(BUSY) from None
        raise
    expire_at = None if ttl == 0 else ttl if absttl else ttl + db.clock()
    if expire_at is not None and expire_at <= db.clock():
        if replace:
            delete_one(db, key)
        elif db.load(key, "t, x") is not None:
            raise ReplyError(BUSY)
        return OK
    entry.expire_ms = expire_at
    try:
        *members, head = items_of(db, entry, os.urandom(8))
    except Unsupported as error:
        raise ReplyError(f"ERR {error}") from None
    chunks: list[Item] = [] if entry.type != "string" else members
    if not collection.write_new(db, key, head, [] if chunks else members, chunks, only_new=not replace):
        raise ReplyError(BUSY)
    return OK
