"""Stream commands, consumer groups included. A stream is a collection (see ``redimo.collection``)
of type ``stream`` that keeps its head when it has no entries, as in Redis. The head holds the
entry count ``sz``, the last ID ``lid``, the entries added ``ea`` and the max deleted ID ``mdi``
(IDs as 16 big-endian bytes: ms, seq). Items (``sk``):

* ``07 + id``: an entry, its fields and values in ``fv`` (length-prefixed, one Binary), ``ix`` its
  addition number (``ea`` before it: entries ``ix // 100`` share a node, for ``~`` trimming);
* ``08 + group``: a group: last delivered ID ``lid``, entries read ``er`` (-1: unknown), and ``hw``,
  the highest ID the group ever delivered (entries above it cannot be pending);
* ``09 + len(group)(2) + group + consumer``: a consumer, seen time ``st``;
* ``0A + len(group)(2) + group + id``: a pending entry: consumer ``cn``, delivery ms ``dt``, count ``dc``.

Only entries count in ``sz`` (groups, consumers and pending entries are ``Change.uncounted``).
Each docstring gives the DynamoDB cost; docs/reference/streams.md lists the differences from Redis.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Callable

from .. import collection, compact
from ..collection import Change, Head, State, check_value
from ..gateway import Item
from ..protocol import OK, SYNTAX_ERROR, ReplyError, canonical_int, parse_int, wrong_arity
from ..storage import Database
from .base import c_string, command

ENTRY, GROUP, CONSUMER, PENDING = b"\x07", b"\x08", b"\x09", b"\x0a"
SEQ_MAX = 2**64 - 1
MAX_ID = 2**128 - 1
NAME_LIMIT = 500  # bytes of a group or consumer name (they live in sort keys)
NODE = 100  # entries a node holds, for approximate trimming (Redis's stream-node-max-entries)
UNKNOWN = -1  # entries-read that cannot be known
INVALID_ID = "ERR Invalid stream ID specified as stream command argument"
SMALLER_ID = "ERR The ID specified in XADD is equal or smaller than the target stream top item"
KEY_REQUIRED = ("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want "
                "to use the MKSTREAM option to create an empty stream automatically.")


# -- IDs ------------------------------------------------------------------------------------
def fmt(id_: int) -> bytes:
    return b"%d-%d" % (id_ >> 64, id_ & SEQ_MAX)


def raw_id(id_: int) -> dict:
    return {"B": id_.to_bytes(16, "big")}


def id_attr(item: Item, name: str) -> int:
    return int.from_bytes(item[name]["B"], "big") if name in item else 0


def id_of(item: Item) -> int:
    return int.from_bytes(item["sk"]["B"][-16:], "big")


_STRTOULL = re.compile(rb"[ \t\n\v\f\r]*([+-]?)([0-9]+)\Z")


def string2ull(text: bytes) -> int | None:
    """Redis's string2ull: a canonical non-negative int64, else what C's strtoull accepts whole."""
    number = canonical_int(text)
    if number is not None:
        return number if number >= 0 else None
    match = _STRTOULL.match(text)
    if not match or int(match[2]) > SEQ_MAX:
        return None
    return (-int(match[2])) % 2**64 if match[1] == b"-" else int(match[2])


def parse_id(arg: bytes, missing_seq: int = 0, strict: bool = False, star_seq: bool = False) -> tuple[int, bool]:
    """An ID as Redis's streamGenericParseIDOrReply reads it: (id, whether the sequence was given);
    ``star_seq`` allows ``ms-*`` (XADD)."""
    if len(arg) > 127:
        raise ReplyError(INVALID_ID)
    text = c_string(arg)
    if text in (b"-", b"+"):
        if strict:
            raise ReplyError(INVALID_ID)
        return (0 if text == b"-" else MAX_ID), True
    ms_text, dash, seq_text = text.partition(b"-")
    ms = string2ull(ms_text)
    if dash and star_seq and seq_text == b"*":
        seq, given = 0, False
    else:
        seq, given = (string2ull(seq_text) if dash else missing_seq), True
    if ms is None or seq is None:
        raise ReplyError(INVALID_ID)
    return ms << 64 | seq, given


def strict_id(arg: bytes) -> int:
    return parse_id(arg, strict=True)[0]


def try_strict_id(arg: bytes) -> int | None:
    try:
        return strict_id(arg)
    except ReplyError:
        return None


def interval(start: bytes, end: bytes) -> tuple[int, int]:
    """The inclusive range of XRANGE-style bounds, ``(`` making a bound exclusive."""
    if len(start) > 1 and start[:1] == b"(":
        low = parse_id(start[1:], 0, strict=True)[0]
        if low == MAX_ID:
            raise ReplyError("ERR invalid start ID for the interval")
        low += 1
    else:
        low = parse_id(start, 0)[0]
    if len(end) > 1 and end[:1] == b"(":
        high = parse_id(end[1:], SEQ_MAX, strict=True)[0]
        if high == 0:
            raise ReplyError("ERR invalid end ID for the interval")
        high -= 1
    else:
        high = parse_id(end, SEQ_MAX)[0]
    return low, high


def parse_count(arg: bytes) -> int:
    return max(parse_int(arg), 0)


# -- items ----------------------------------------------------------------------------------
def encode_fields(values: list[bytes]) -> bytes:
    out = bytearray()
    for value in values:
        size = len(value)
        while size >= 0x80:
            out.append(size & 0x7F | 0x80)
            size >>= 7
        out.append(size)
        out += value
    return bytes(out)


def decode_fields(data: bytes) -> list[bytes]:
    values, index = [], 0
    while index < len(data):
        size, shift = 0, 0
        while True:
            byte = data[index]
            index += 1
            size |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        values.append(data[index:index + size])
        index += size
    return values


def entry_sk(id_: int) -> bytes:
    return ENTRY + id_.to_bytes(16, "big")


def entry_reply(item: Item) -> list:
    return [fmt(id_of(item)), decode_fields(item["fv"]["B"])]


def check_name(name: bytes, what: str) -> bytes:
    if len(name) > NAME_LIMIT:
        raise ReplyError(f"ERR a {what} name is at most {NAME_LIMIT} bytes in Redimo")
    return name


def group_sk(group: bytes) -> bytes:
    return GROUP + check_name(group, "consumer group")


def prefix(kind: bytes, group: bytes) -> bytes:
    return kind + len(group).to_bytes(2, "big") + group


def consumer_sk(group: bytes, consumer: bytes) -> bytes:
    return prefix(CONSUMER, group) + check_name(consumer, "consumer")


def pending_sk(group: bytes, id_: int) -> bytes:
    return prefix(PENDING, group) + id_.to_bytes(16, "big")


def number(value: int) -> dict:
    return {"N": str(value)}


def pending_item(group: bytes, id_: int, consumer: bytes, delivered: int, count: int) -> Item:
    return {"sk": {"B": pending_sk(group, id_)}, "cn": {"B": consumer}, "dt": number(delivered), "dc": number(count)}


def nogroup(key: bytes, group: bytes, suffix: str = "") -> ReplyError:
    return ReplyError(f"NOGROUP No such key '{text(key)}' or consumer group '{text(group)}'{suffix}")


def text(arg: bytes) -> str:
    return c_string(arg).decode(errors="replace")


# -- the head -------------------------------------------------------------------------------
@dataclass
class Meta:
    """A stream's head, decoded, with Redis's bookkeeping for entries-read and lag."""

    db: Database
    key: bytes
    head: Head | None
    _first: int | None = field(default=None, init=False)

    @property
    def length(self) -> int:
        return self.head.size if self.head else 0

    @property
    def last(self) -> int:
        return id_attr(self.head.item, "lid") if self.head else 0

    @property
    def added(self) -> int:
        return self.head.number("ea") if self.head else 0

    @property
    def max_deleted(self) -> int:
        return id_attr(self.head.item, "mdi") if self.head else 0

    def edge(self, forward: bool) -> Item | None:
        """The first (or last) entry: one Query of one item."""
        if not self.length:
            return None
        low, high = collection.kind_range(ENTRY)
        return next(collection.members(self.db, self.key, self.head, low, high, forward=forward, limit=1), None)

    def first(self) -> int:
        if self._first is None:
            item = self.edge(True)
            self._first = id_of(item) if item else 0
        return self._first

    def has_tombstones(self, start: int) -> bool:
        """Redis's streamRangeHasTombstones(start, +)."""
        if not self.length or not self.max_deleted or start > self.max_deleted:
            return False
        return self.first() <= self.max_deleted

    def estimate(self, id_: int) -> int:
        """Redis's streamEstimateDistanceFromFirstEverEntry."""
        if not self.added:
            return 0
        if not self.length and id_ <= self.last:
            return self.added
        if id_ == self.last:
            return self.added
        if id_ > self.last:
            return UNKNOWN
        if not self.max_deleted or self.max_deleted < self.first():
            if id_ < self.first():
                return self.added - self.length
            if id_ == self.first():
                return self.added - self.length + 1
        return UNKNOWN

    def lag(self, group: Item) -> int | None:
        entries_read = int(group["er"]["N"])
        if not self.added:
            return 0
        if entries_read != UNKNOWN and not self.has_tombstones(id_attr(group, "lid")):
            return self.added - entries_read
        estimate = self.estimate(id_attr(group, "lid"))
        return None if estimate == UNKNOWN else self.added - estimate


def new_head() -> Item:
    """Attributes of a head being created (XADD, XGROUP CREATE MKSTREAM)."""
    return {"lid": raw_id(0), "ea": number(0), "mdi": raw_id(0)}


def entries(db: Database, key: bytes, head: Head, low: int, high: int, forward: bool = True,
            limit: int | None = None, projection: str | None = None) -> list[Item]:
    if low > high:
        return []
    return list(collection.members(db, key, head, entry_sk(low), entry_sk(high), forward=forward, limit=limit,
                                   projection=projection))


def group_items(db: Database, key: bytes, head: Head, kind: bytes, group: bytes, low: bytes = b"",
                high: bytes = b"\xff" * 16, *, consumer: bytes | None = None, delivered_before: int | None = None,
                limit: int | None = None, projection: str | None = None) -> list[Item]:
    """A group's consumers or pending entries (between two sort-key suffixes), optionally only one
    consumer's or those delivered before a time: Query pages of the group's range."""
    base = prefix(kind, group)
    if head.compact:
        found = [item for item in collection.members(db, key, head, base + low, base + high)
                 if (consumer is None or item["cn"]["B"] == consumer)
                 and (delivered_before is None or int(item["dt"]["N"]) <= delivered_before)]
        return found[:limit]
    values = {":pk": {"B": db.pk(key)}, ":low": {"B": base + low}, ":high": {"B": base + high},
              ":g": {"B": head.generation}}
    condition = "g = :g"
    if consumer is not None:
        condition += " AND cn = :cn"
        values[":cn"] = {"B": consumer}
    if delivered_before is not None:
        condition += " AND dt <= :dt"
        values[":dt"] = number(delivered_before)
    return list(db.gateway.query("pk = :pk AND sk BETWEEN :low AND :high", values, filter_expression=condition,
                                 limit=limit, projection=projection))


def count_group_items(db: Database, key: bytes, head: Head, kind: bytes, group: bytes) -> int:
    base = prefix(kind, group)
    if head.compact:
        return len(list(collection.members(db, key, head, base, base + b"\xff" * 520)))
    return db.gateway.count("pk = :pk AND sk BETWEEN :low AND :high",
                            {":pk": {"B": db.pk(key)}, ":low": {"B": base}, ":high": {"B": base + b"\xff" * 520},
                             ":g": {"B": head.generation}}, filter_expression="g = :g")


TAILS = compact.Recent()  # (table, pk) -> (last ID, entries added) as this process last wrote them (XADD)


# -- trimming -------------------------------------------------------------------------------
@dataclass
class Trim:
    strategy: bytes = b""  # b"MAXLEN", b"MINID" or none
    threshold: int = 0
    approx: bool = False
    limit: int = 0  # 0: no limit

    def plan(self, db: Database, state: State, length: int, newest: int | None = None,
             index: int = 0) -> tuple[list[bytes], bool]:
        """The entries to delete (read into ``state.members``) from a stream of ``length`` entries,
        the last of them ``newest`` (addition ``index``) when it is being added (not yet stored):
        (sort keys, whether ``newest`` itself goes). Cost: a Query of the entries deleted (plus
        one more entry, and for MINID ~ one more one-item Query), none when nothing can go."""
        if not self.strategy or state.head is None and newest is None:
            return [], False
        stored = length - (newest is not None)
        if self.approx:
            return self.nodes(db, state, length, newest, index)
        if self.strategy == b"MAXLEN":
            excess = length - self.threshold
            if excess <= 0:
                return [], False
            goes_too = newest is not None and excess > stored
            found = entries(db, state.key, state.head, 0, MAX_ID, limit=min(excess, stored),
                            projection="pk, sk, g") if state.head and stored else []
        else:
            found = entries(db, state.key, state.head, 0, self.threshold - 1,
                            projection="pk, sk, g") if state.head and stored and self.threshold else []
            goes_too = newest is not None and newest < self.threshold
        for item in found:
            state.members[item["sk"]["B"]] = item
        return [item["sk"]["B"] for item in found], goes_too

    def nodes(self, db: Database, state: State, length: int, newest: int | None,
              index: int) -> tuple[list[bytes], bool]:
        """Approximate trimming as Redis's streamTrim does it: whole nodes only, from the first,
        while LIMIT allows. Redimo's nodes are the runs of NODE entries by addition order (``ix``)."""
        head, cap = state.head, self.limit
        stored: list[Item] = []
        if self.strategy == b"MAXLEN":
            excess = length - self.threshold
            if excess <= 0:
                return [], False
            if head is not None and length - (newest is not None):
                stored = entries(db, state.key, head, 0, MAX_ID, limit=min(excess, cap or excess) + 1,
                                 projection="pk, sk, g, ix")
        elif head is not None and self.threshold and length - (newest is not None):
            stored = entries(db, state.key, head, 0, self.threshold - 1, limit=cap + 1 if cap else None,
                             projection="pk, sk, g, ix")
            if stored and (not cap or len(stored) <= cap):  # does the last node go on past the threshold?
                stored += entries(db, state.key, head, self.threshold, MAX_ID, limit=1, projection="pk, sk, g, ix")
        members = [(int(item["ix"]["N"]) // NODE, id_of(item), item) for item in stored]
        if newest is not None and len(members) == length - 1:
            members.append((index // NODE, newest, None))
        groups: list[list[tuple[int, int, Item | None]]] = []
        for member in members:
            if groups and groups[-1][0][0] == member[0]:
                groups[-1].append(member)
            else:
                groups.append([member])
        deleted: list[tuple[int, int, Item | None]] = []
        for number, group in enumerate(groups):
            complete = number + 1 < len(groups) or len(members) == length
            if not complete or cap and len(deleted) + len(group) > cap:
                break
            if self.strategy == b"MAXLEN":
                if length - len(deleted) <= self.threshold or length - len(deleted) - len(group) < self.threshold:
                    break
            elif group[-1][1] >= self.threshold:
                break
            deleted += group
        for _, _, item in deleted:
            if item is not None:
                state.members[item["sk"]["B"]] = item
        return [item["sk"]["B"] for _, _, item in deleted if item is not None], any(item is None for *_, item in deleted)


def parse_trim(args: list[bytes], xadd: bool) -> tuple[Trim, int, bool]:
    """XADD/XTRIM options from args[1] on, as Redis's streamParseAddOrTrimArgsOrReply:
    (trim, index of XADD's ID, NOMKSTREAM). XTRIM's arguments are all options."""
    trim, limit_given, nomkstream = Trim(), False, False
    index = 1
    while index < len(args):
        more = len(args) - 1 - index
        word = c_string(args[index]).upper()
        if xadd and c_string(args[index]) == b"*":
            break
        if word in (b"MAXLEN", b"MINID") and more:
            if trim.strategy:
                raise ReplyError("ERR syntax error, MAXLEN and MINID options at the same time are not compatible")
            trim.approx = False
            if more >= 2 and c_string(args[index + 1]) in (b"~", b"="):
                trim.approx = c_string(args[index + 1]) == b"~"
                index += 1
            if word == b"MAXLEN":
                trim.threshold = parse_int(args[index + 1])
                if trim.threshold < 0:
                    raise ReplyError("ERR The MAXLEN argument must be >= 0.")
            else:
                trim.threshold = strict_id(args[index + 1])
            trim.strategy = word
            index += 2
        elif word == b"LIMIT" and more:
            trim.limit = parse_int(args[index + 1])
            if trim.limit < 0:
                raise ReplyError("ERR The LIMIT argument must be >= 0.")
            limit_given = True
            index += 2
        elif xadd and word == b"NOMKSTREAM":
            nomkstream = True
            index += 1
        elif xadd:
            break
        else:
            raise ReplyError(SYNTAX_ERROR)
    if limit_given and not trim.strategy:
        raise ReplyError("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy")
    if limit_given and not trim.approx:
        raise ReplyError("ERR syntax error, LIMIT cannot be used without the special ~ option")
    if trim.approx and not limit_given:
        trim.limit = 100 * NODE
    return trim, index, nomkstream


# -- XADD, XLEN, XRANGE, XREVRANGE, XDEL, XTRIM ---------------------------------------------
@command("xadd", -5)
def xadd(db: Database, args: list[bytes]) -> bytes | None:
    """XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value [...].
    Cost: 1 GetItem of the head + 1 TransactWriteItems of the head and the entry (2 WCU per KB of
    each: 4 WCU for a small entry). Trimming adds a Query of the entries it deletes and their
    deletes to the transaction (2 WCU each; more than 98 take several transactions). ``*`` takes
    the client's clock, made monotonic: max(now, last + 1). On a compact stream: 1 GetItem + 1
    PutItem, or 1 UpdateItem without trimming when this process added the last entry (TAILS: the
    last ID and entries added it saw are assumed in the condition; refused, the item it returns is
    planned from)."""
    trim, index, nomkstream = parse_trim(args, xadd=True)
    id_arg = args[index] if index < len(args) else b""
    fields = args[index + 1:]
    if len(fields) < 2 or len(fields) % 2:
        raise wrong_arity(b"xadd")
    given, seq_given = (None, True) if c_string(id_arg) == b"*" else parse_id(id_arg, strict=True, star_seq=True)
    if given == 0 and seq_given:
        raise ReplyError("ERR The ID specified in XADD must be greater than 0-0")
    encoded = check_value(encode_fields(fields))

    def next_id(last: int) -> int:
        if last == MAX_ID:
            raise ReplyError("ERR The stream has exhausted the last possible ID, unable to add more items")
        if given is None:
            now = db.clock()
            new = now << 64 if now > last >> 64 else last + 1
        elif not seq_given and given >> 64 == last >> 64:
            if last & SEQ_MAX == SEQ_MAX:
                raise ReplyError(SMALLER_ID)
            new = last + 1
        else:
            new = given
        if new <= last:
            raise ReplyError(SMALLER_ID)
        return new

    def addition(new: int, added: int, last: int) -> Change:
        entry = {"sk": {"B": entry_sk(new)}, "fv": {"B": encoded}, "ix": number(added)}
        return Change(puts=[entry], keep_empty=True, head_set={"lid": raw_id(new), "ea": number(added + 1)},
                      condition="lid = :old_lid", values={":old_lid": raw_id(last)})

    tail = (db.gateway.table, db.pk(args[0]))

    def plan(state: State) -> tuple[Change | None, bytes | None]:
        if state.head is None and nomkstream:
            return None, None
        meta = Meta(db, args[0], state.head)
        new = next_id(meta.last)
        deletes, goes_too = trim.plan(db, state, meta.length + 1, new, meta.added)
        change = addition(new, meta.added, meta.last)
        change.deletes = deletes
        if goes_too:
            change.puts = []
        if state.head is None:
            change.head_set["mdi"] = raw_id(0)
            change.condition, change.values = "", {}
        TAILS.put(tail, (new, meta.added + 1))
        return change, fmt(new)

    fast = None
    known = TAILS.get(tail) if not trim.strategy else None
    if known is not None:  # this client added the last entry: one UpdateItem, if nobody else did since
        last, added = known
        try:
            new = next_id(last)
        except ReplyError:
            pass  # let the general path, with the stream as stored, say it
        else:
            fast = (addition(new, added, last), fmt(new))
            fast[0].condition += " AND ea = :old_ea"
            fast[0].values[":old_ea"] = number(added)
    reply = collection.update(db, args[0], "stream", plan, fast=fast)
    if fast is not None and reply is fast[1]:  # the single UpdateItem applied
        TAILS.put(tail, (new, added + 1))
    return reply


@command("xlen", 2)
def xlen(db: Database, args: list[bytes]) -> int:
    """XLEN key. Cost: 1 GetItem (the head keeps the count)."""
    head = collection.load(db, args[0], "stream")
    return head.size if head else 0


def range_command(db: Database, args: list[bytes], reverse: bool) -> list | None:
    low, high = interval(*(args[2:0:-1] if reverse else args[1:3]))
    count = None
    index = 3
    while index < len(args):
        if c_string(args[index]).upper() == b"COUNT" and index + 1 < len(args):
            count = parse_count(args[index + 1])
            index += 2
        else:
            raise ReplyError(SYNTAX_ERROR)
    head = collection.load(db, args[0], "stream")
    if head is None:
        return []
    if count == 0:
        return None
    return [entry_reply(item) for item in entries(db, args[0], head, low, high, not reverse, count)]


@command("xrange", -4)
def xrange(db: Database, args: list[bytes]) -> list | None:
    """XRANGE key start end [COUNT count]. Cost: 1 GetItem + Query pages of the entries returned."""
    return range_command(db, args, reverse=False)


@command("xrevrange", -4)
def xrevrange(db: Database, args: list[bytes]) -> list | None:
    """XREVRANGE key end start [COUNT count]. Cost: 1 GetItem + Query pages of the entries returned."""
    return range_command(db, args, reverse=True)


@command("xdel", -3)
def xdel(db: Database, args: list[bytes]) -> int:
    """XDEL key id [id ...]. Cost: 1 BatchGetItem of the head and the entries + 1 TransactWriteItems
    deleting those that exist (none when none does)."""
    ids = [try_strict_id(arg) for arg in args[1:]]
    valid = None not in ids

    def plan(state: State) -> tuple[Change | None, int]:
        if state.head is None:
            return None, 0
        if not valid:
            raise ReplyError(INVALID_ID)
        present = [id_ for id_ in dict.fromkeys(ids) if entry_sk(id_) in state.members]
        if not present:
            return None, 0
        change = Change(deletes=[entry_sk(id_) for id_ in present], keep_empty=True)
        old = Meta(db, args[0], state.head).max_deleted
        if max(present) > old:
            change.head_set["mdi"] = raw_id(max(present))
            change.condition, change.values = "mdi = :old_mdi", {":old_mdi": raw_id(old)}
        return change, len(present)

    return collection.update(db, args[0], "stream", plan, [entry_sk(id_) for id_ in ids] if valid else [])


@command("xtrim", -4)
def xtrim(db: Database, args: list[bytes]) -> int:
    """XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]. Cost: 1 GetItem + a Query of the
    entries deleted + TransactWriteItems deleting them (99 a transaction). ``~`` removes whole
    nodes only, Redimo's nodes being runs of 100 entries by addition order (see docs)."""
    trim = parse_trim(args, xadd=False)[0]

    def plan(state: State) -> tuple[Change | None, int]:
        if state.head is None:
            return None, 0
        deletes, _ = trim.plan(db, state, state.size)
        return (Change(deletes=deletes, keep_empty=True) if deletes else None), len(deletes)

    return collection.update(db, args[0], "stream", plan)


# -- XREAD / XREADGROUP ---------------------------------------------------------------------
@dataclass
class ReadArgs:
    count: int | None = None
    block: int | None = None  # ms; 0 = forever
    group: bytes | None = None
    consumer: bytes = b""
    noack: bool = False
    keys: list[bytes] = field(default_factory=list)
    ids: list[bytes] = field(default_factory=list)


def parse_read(args: list[bytes], group: bool) -> ReadArgs:
    name = "XREADGROUP" if group else "XREAD"
    parsed = ReadArgs()
    index = 0
    streams = None
    while index < len(args):
        more = len(args) - index - 1
        word = c_string(args[index]).upper()
        if word == b"BLOCK" and more:
            block = parse_int(args[index + 1], "ERR timeout is not an integer or out of range")
            if block < 0:
                raise ReplyError("ERR timeout is negative")
            parsed.block = block
            index += 2
        elif word == b"COUNT" and more:
            parsed.count = parse_count(args[index + 1]) or None
            index += 2
        elif word == b"STREAMS" and more:
            streams = args[index + 1:]
            if len(streams) % 2:
                raise ReplyError(f"ERR Unbalanced '{name.lower()}' list of streams: for each stream key an ID "
                                 f"or '{'>' if group else '$'}' must be specified.")
            break
        elif word == b"GROUP" and more >= 2:
            if not group:
                raise ReplyError("ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.")
            parsed.group, parsed.consumer = args[index + 1], args[index + 2]
            index += 3
        elif word == b"NOACK":
            if not group:
                raise ReplyError("ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.")
            parsed.noack = True
            index += 1
        else:
            raise ReplyError(SYNTAX_ERROR)
    if streams is None:
        raise ReplyError(SYNTAX_ERROR)
    if group and parsed.group is None:
        raise ReplyError("ERR Missing GROUP option for XREADGROUP")
    half = len(streams) // 2
    parsed.keys, parsed.ids = streams[:half], streams[half:]
    return parsed


def poll(block: int | None, attempt: Callable[[], list]) -> list | None:
    """Run ``attempt`` until it serves something or the BLOCK time (ms, 0 = forever) is over,
    polling with backoff (10 ms doubling to 1 s): Redimo's emulation of blocking."""
    deadline = None if not block else time.monotonic() + block / 1000
    pause = 0.01
    while True:
        reply = attempt()
        if reply or block is None:
            return reply or None
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            pause = min(pause, left)
        time.sleep(pause)
        pause = min(pause * 2, 1.0)


def head_items(db: Database, keys: list[bytes], more: bytes | None = None) -> dict[tuple[bytes, bytes], Item]:
    """The head items of keys (and each key's item ``more``), by (pk, sk): 1 GetItem, or
    ceil(n/100) BatchGetItem."""
    distinct = list(dict.fromkeys(keys))
    if len(distinct) == 1 and more is None:
        items = [db.gateway.get(db.head_key(distinct[0]))]
    else:
        items = db.gateway.batch_get([db.head_key(key) for key in distinct] + (
            [{"pk": {"B": db.pk(key)}, "sk": {"B": more}} for key in distinct] if more is not None else []))
    found = {(item["pk"]["B"], item["sk"]["B"]): item for item in items if item}
    for item in items if more is not None else ():
        if item and compact.is_compact(item):  # a compact stream holds ``more`` in its head
            members = compact.unpack(item)
            if more in members:
                found[(item["pk"]["B"], more)] = members[more]
    return found


def stream_head(db: Database, items: dict[tuple[bytes, bytes], Item], key: bytes) -> Head | None:
    """A key's live stream head among :func:`head_items` (WRONGTYPE for another type)."""
    return collection.head_of(db, items.get((db.pk(key), b"\x00")), "stream")[0]


@command("xread", -4)
def xread(db: Database, args: list[bytes]) -> list | None:
    """XREAD [COUNT count] [BLOCK ms] STREAMS key [key ...] id [id ...]. Cost per round: 1 GetItem
    of the head (BatchGetItem for several streams) + a Query per stream with newer entries. BLOCK
    polls (10 ms doubling to 1 s between rounds)."""
    parsed = parse_read(args, group=False)
    items = head_items(db, parsed.keys)
    after = []
    for key, id_arg in zip(parsed.keys, parsed.ids):
        head = stream_head(db, items, key)
        if id_arg == b"$":
            after.append(Meta(db, key, head).last)
        elif id_arg == b">":
            raise ReplyError("ERR The > ID can be specified only when calling XREADGROUP using the GROUP "
                             "<group> <consumer> option.")
        else:
            after.append(strict_id(id_arg))

    rounds = [items]

    def attempt() -> list:
        current = rounds.pop() if rounds else head_items(db, parsed.keys)
        reply = []
        for key, start in zip(parsed.keys, after):
            head = stream_head(db, current, key)
            if head is None or Meta(db, key, head).last <= start:
                continue
            found = entries(db, key, head, start + 1, MAX_ID, limit=parsed.count)
            if found:
                reply.append([key, [entry_reply(item) for item in found]])
        return reply

    return poll(parsed.block, attempt)


def history_of(id_arg: bytes) -> int | None:
    """An XREADGROUP ID: None for ``>`` (new entries), else the consumer's history after that ID. The
    largest ID reads new entries too, as in Redis 7.0 (where the ID after it wraps around)."""
    if id_arg == b"$":
        raise ReplyError("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the "
                         "history of this consumer by specifying a proper ID, or use the > ID to get new "
                         "messages. The $ ID would just return an empty result set.")
    if id_arg == b">":
        return None
    after = strict_id(id_arg)
    return None if after == MAX_ID else after


def read_group(db: Database, key: bytes, parsed: ReadArgs, id_arg: bytes) -> list | None:
    """XREADGROUP on one stream: [key, entries], or None when ``>`` finds nothing new.
    Cost: 1 BatchGetItem (head, group, consumer) + a Query of the entries (or of the consumer's
    pending entries and a BatchGetItem of their entries) + 1 TransactWriteItems (the group's new
    last-delivered ID, conditional on the old one, the pending entries, the consumer)."""
    gsk, csk = group_sk(parsed.group), consumer_sk(parsed.group, parsed.consumer)

    def plan(state: State) -> tuple[Change | None, list | None]:
        if state.head is None or gsk not in state.members:
            raise nogroup(key, parsed.group, " in XREADGROUP with GROUP option")
        history = history_of(id_arg)
        now = db.clock()
        group = state.members[gsk]
        change = Change(keep_empty=True)
        consumer = {"sk": {"B": csk}, "st": number(now)}
        if history is not None:
            pending = group_items(db, key, state.head, PENDING, parsed.group, (history + 1).to_bytes(16, "big"),
                                  consumer=parsed.consumer, limit=parsed.count) if history < MAX_ID else []
            found = {item["sk"]["B"]: item for item in collection.get_members(
                db, key, state.head, [entry_sk(id_of(item)) for item in pending])}
            reply = []
            for item in pending:
                entry = found.get(entry_sk(id_of(item)))
                reply.append(entry_reply(entry) if entry else [fmt(id_of(item)), None])
                if entry:
                    state.members[item["sk"]["B"]] = item
                    change.puts.append({**item, "dt": number(now), "dc": number(int(item["dc"]["N"]) + 1)})
            if csk not in state.members:
                change.puts.append(consumer)
            change.uncounted = {item["sk"]["B"] for item in change.puts}
            return change, [key, reply]
        meta = Meta(db, key, state.head)
        last_delivered = id_attr(group, "lid")
        if meta.last <= last_delivered:
            return None, None
        found = entries(db, key, state.head, last_delivered + 1, MAX_ID, limit=parsed.count)
        if not found:
            return None, None
        entries_read, high_water = int(group["er"]["N"]), id_attr(group, "hw")
        for item in found:
            id_ = id_of(item)
            if entries_read != UNKNOWN and not meta.has_tombstones(id_):
                entries_read += 1
            elif meta.added:
                entries_read = meta.estimate(id_)
        newest = id_of(found[-1])
        change.puts = [{**group, "lid": raw_id(newest), "er": number(entries_read),
                        "hw": raw_id(max(high_water, newest))}, consumer]
        if not parsed.noack:
            rewound = [pending_sk(parsed.group, id_of(item)) for item in found if id_of(item) <= high_water]
            if rewound:  # after XGROUP SETID back: these may be pending already (they are taken over)
                for item in collection.get_members(db, key, state.head, rewound):
                    state.members[item["sk"]["B"]] = item
            change.puts += [pending_item(parsed.group, id_of(item), parsed.consumer, now, 1) for item in found]
        change.uncounted = {item["sk"]["B"] for item in change.puts}
        return change, [key, [entry_reply(item) for item in found]]

    return collection.update(db, key, "stream", plan, [gsk, csk])


@command("xreadgroup", -7)
def xreadgroup(db: Database, args: list[bytes]) -> list | None:
    """XREADGROUP GROUP group consumer [COUNT count] [BLOCK ms] [NOACK] STREAMS key [key ...]
    id [id ...]. Cost per stream: see :func:`read_group`; several streams are first checked with
    one BatchGetItem. BLOCK polls as XREAD does. Two consumers never receive the same new entry:
    the group's last-delivered ID is advanced conditionally in the transaction that writes the
    pending entries."""
    parsed = parse_read(args, group=True)
    gsk = group_sk(parsed.group)
    consumer_sk(parsed.group, parsed.consumer)
    if len(parsed.keys) > 1:  # every stream is checked before any is served, as in Redis
        items = head_items(db, parsed.keys, gsk)
        for key, id_arg in zip(parsed.keys, parsed.ids):
            head = stream_head(db, items, key)
            group = items.get((db.pk(key), gsk))
            if head is None or group is None or group["g"]["B"] != head.generation:
                raise nogroup(key, parsed.group, " in XREADGROUP with GROUP option")
            history_of(id_arg)

    def attempt() -> list:
        return [served for key, id_arg in zip(parsed.keys, parsed.ids)
                if (served := read_group(db, key, parsed, id_arg)) is not None]

    history = any(id_arg not in (b">", b"$") for id_arg in parsed.ids)
    return poll(None if history else parsed.block, attempt)


# -- XACK, XPENDING, XCLAIM, XAUTOCLAIM -----------------------------------------------------
@command("xack", -4)
def xack(db: Database, args: list[bytes]) -> int:
    """XACK key group id [id ...]. Cost: 1 BatchGetItem (head, group, pending entries) +
    1 TransactWriteItems deleting the pending entries found (none when none is). On a compact stream:
    1 UpdateItem when every ID is pending, else 2 requests."""
    key, group = args[0], args[1]
    ids = [try_strict_id(arg) for arg in args[2:]]
    valid = None not in ids
    gsk = group_sk(group)
    sks = [pending_sk(group, id_) for id_ in dict.fromkeys(ids)] if valid else []

    def plan(state: State) -> tuple[Change | None, int]:
        if state.head is None or gsk not in state.members:
            return None, 0
        if not valid:
            raise ReplyError(INVALID_ID)
        present = [sk for sk in sks if sk in state.members]
        return (Change(deletes=present, uncounted=set(present), keep_empty=True) if present else None), len(present)

    fast = (Change(deletes=sks, uncounted=set(sks), keep_empty=True), len(sks)) if valid else None  # all pending
    return collection.update(db, key, "stream", plan, [gsk] + sks, fast)


def group_state(db: Database, key: bytes, group: bytes, more: list[bytes] = ()) -> State:
    """The head, the group and ``more`` items; NOGROUP when the stream or the group is missing."""
    state = collection.read(db, key, "stream", [group_sk(group), *more])
    if state.head is None or group_sk(group) not in state.members:
        raise nogroup(key, group)
    return state


@command("xpending", -3)
def xpending(db: Database, args: list[bytes]) -> list:
    """XPENDING key group [[IDLE min-idle-time] start end count [consumer]]. Cost: 1 BatchGetItem
    (head, group, consumer) + a Query of the group's pending entries (all of them for the summary:
    Redimo keeps no pending count)."""
    key, group = args[0], args[1]
    if len(args) != 2 and not 5 <= len(args) <= 8:
        raise ReplyError(SYNTAX_ERROR)
    if len(args) == 2:
        state = group_state(db, key, group)
        pending = group_items(db, key, state.head, PENDING, group, projection="sk, cn")
        if not pending:
            return [0, None, None, None]
        counts: dict[bytes, int] = {}
        for item in pending:
            counts[item["cn"]["B"]] = counts.get(item["cn"]["B"], 0) + 1
        return [len(pending), fmt(id_of(pending[0])), fmt(id_of(pending[-1])),
                [[name, str(counts[name]).encode()] for name in sorted(counts)]]
    start, min_idle = 2, 0
    if c_string(args[2]).upper() == b"IDLE":
        min_idle = parse_int(args[3])
        if len(args) < 7:
            raise ReplyError(SYNTAX_ERROR)
        start = 4
    count = parse_count(args[start + 2])
    low, high = interval(args[start], args[start + 1])
    consumer = args[start + 3] if start + 3 < len(args) else None
    state = group_state(db, key, group, [consumer_sk(group, consumer)] if consumer is not None else [])
    if consumer is not None and consumer_sk(group, consumer) not in state.members or not count or low > high:
        return []
    now = db.clock()
    pending = group_items(db, key, state.head, PENDING, group, low.to_bytes(16, "big"), high.to_bytes(16, "big"),
                          consumer=consumer, delivered_before=now - min_idle if min_idle > 0 else None, limit=count)
    return [[fmt(id_of(item)), item["cn"]["B"], max(now - int(item["dt"]["N"]), 0), int(item["dc"]["N"])]
            for item in pending]


def claim_options(args: list[bytes], now: int) -> tuple[int, int, bool, bool, int | None]:
    """XCLAIM's options: (delivery time, retry count (-1: none), FORCE, JUSTID, LASTID)."""
    delivery, retry, force, justid, last_id = -1, -1, False, False, None
    index = 0
    while index < len(args):
        word, more = c_string(args[index]).upper(), len(args) - 1 - index
        if word == b"FORCE":
            force = True
        elif word == b"JUSTID":
            justid = True
        elif word == b"IDLE" and more:
            index += 1
            delivery = now - parse_int(args[index], "ERR Invalid IDLE option argument for XCLAIM")
        elif word == b"TIME" and more:
            index += 1
            delivery = parse_int(args[index], "ERR Invalid TIME option argument for XCLAIM")
        elif word == b"RETRYCOUNT" and more:
            index += 1
            retry = parse_int(args[index], "ERR Invalid RETRYCOUNT option argument for XCLAIM")
        elif word == b"LASTID" and more:
            index += 1
            last_id = strict_id(args[index])
        else:
            raise ReplyError(f"ERR Unrecognized XCLAIM option '{text(args[index])}'")
        index += 1
    if delivery < 0 or delivery > now:
        delivery = now
    return delivery, retry, force, justid, last_id


@dataclass
class Claim:
    """What XCLAIM/XAUTOCLAIM change: pending entries (by ID) and whether the consumer must be made."""

    state: State
    group: bytes
    consumer: bytes
    now: int
    change: Change = field(default_factory=lambda: Change(keep_empty=True))
    taken: dict[int, Item] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)

    def current(self, id_: int) -> Item | None:
        """The pending entry of an ID as this command has left it so far."""
        if id_ in self.deleted:
            return None
        return self.taken.get(id_) or self.state.members.get(pending_sk(self.group, id_))

    def take(self, id_: int, nack: Item, delivered: int, count: int) -> None:
        self.taken[id_] = {**nack, "cn": {"B": self.consumer}, "dt": number(delivered), "dc": number(count)}
        csk = consumer_sk(self.group, self.consumer)
        if csk not in self.state.members and all(put["sk"]["B"] != csk for put in self.change.puts):
            self.change.puts.append({"sk": {"B": csk}, "st": number(self.now)})

    def drop(self, id_: int) -> None:
        self.taken.pop(id_, None)
        self.deleted.add(id_)

    def finish(self) -> Change | None:
        self.change.puts += self.taken.values()
        self.change.deletes += [pending_sk(self.group, id_) for id_ in self.deleted
                                if pending_sk(self.group, id_) in self.state.members]
        self.change.uncounted = {put["sk"]["B"] for put in self.change.puts} | set(self.change.deletes)
        return self.change if self.change else None


def item_time(item: Item) -> int:
    return int(item["dt"]["N"])


@command("xclaim", -6)
def xclaim(db: Database, args: list[bytes]) -> list:
    """XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME ms] [RETRYCOUNT n]
    [FORCE] [JUSTID] [LASTID id]. Cost: 1 BatchGetItem (head, group, consumer, the pending entries
    and the entries) + 1 TransactWriteItems of what changes."""
    key, group, consumer = args[0], args[1], args[2]
    ids = []
    for arg in args[4:]:
        id_ = try_strict_id(arg)
        if id_ is None:
            break
        ids.append(id_)
    distinct = list(dict.fromkeys(ids))
    sks = [consumer_sk(group, consumer)] + [pending_sk(group, id_) for id_ in distinct] + [entry_sk(id_) for id_ in distinct]

    def plan(state: State) -> tuple[Change | None, list]:
        if state.head is None or group_sk(group) not in state.members:
            raise nogroup(key, group)
        min_idle = max(parse_int(args[3], "ERR Invalid min-idle-time argument for XCLAIM"), 0)
        now = db.clock()
        delivery, retry, force, justid, last_id = claim_options(args[4 + len(ids):], now)
        claim = Claim(state, group, consumer, now)
        group_item = state.members[group_sk(group)]
        new_group = dict(group_item)
        if last_id is not None and last_id > id_attr(group_item, "lid"):
            new_group["lid"] = raw_id(last_id)
        reply = []
        for id_ in ids:
            nack = claim.current(id_)
            if entry_sk(id_) not in state.members:
                if nack is not None:
                    claim.drop(id_)
                continue
            fresh = nack is None
            if fresh:
                if not force:
                    continue
                nack = pending_item(group, id_, consumer, now, 0)
                if id_ > id_attr(new_group, "hw"):
                    new_group["hw"] = raw_id(id_)
            elif min_idle and now - item_time(nack) < min_idle:
                continue
            claim.take(id_, nack, delivery, retry if retry >= 0 else int(nack["dc"]["N"]) + (not justid))
            reply.append(fmt(id_) if justid else entry_reply(state.members[entry_sk(id_)]))
        if new_group != group_item:
            claim.change.puts.append(new_group)
        return claim.finish(), reply

    return collection.update(db, key, "stream", plan, [group_sk(group)] + sks)


@command("xautoclaim", -6)
def xautoclaim(db: Database, args: list[bytes]) -> list:
    """XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]. Cost:
    1 BatchGetItem (head, group, consumer) + a Query of up to 10 x COUNT pending entries + a
    BatchGetItem of their entries + 1 TransactWriteItems of what changes."""
    key, group, consumer = args[0], args[1], args[2]
    min_idle = max(parse_int(args[3], "ERR Invalid min-idle-time argument for XAUTOCLAIM"), 0)
    start, _ = interval(args[4], b"+")
    count, justid, index = 100, False, 5
    while index < len(args):
        word, more = c_string(args[index]).upper(), len(args) - 1 - index
        if word == b"COUNT" and more:
            count = parse_int(args[index + 1], "ERR COUNT must be > 0")
            if not 1 <= count <= (2**63 - 1) // 16:
                raise ReplyError("ERR COUNT must be > 0")
            index += 1
        elif word == b"JUSTID":
            justid = True
        else:
            raise ReplyError(SYNTAX_ERROR)
        index += 1

    def plan(state: State) -> tuple[Change | None, list]:
        if state.head is None or group_sk(group) not in state.members:
            raise nogroup(key, group)
        now = db.clock()
        attempts = count * 10
        examined = group_items(db, key, state.head, PENDING, group, start.to_bytes(16, "big"), limit=attempts + 1)
        present = {id_of(item) for item in collection.get_members(
            db, key, state.head, [entry_sk(id_of(item)) for item in examined[:attempts]])}
        entry_items: dict[int, Item] = {}
        if present and not justid:
            for item in collection.get_members(db, key, state.head, [entry_sk(id_) for id_ in present]):
                entry_items[id_of(item)] = item
        claim = Claim(state, group, consumer, now)
        reply, deleted, left, position = [], [], count, 0
        for position, nack in enumerate(examined[:attempts], 1):
            if not left:
                position -= 1
                break
            id_ = id_of(nack)
            state.members[nack["sk"]["B"]] = nack
            if id_ not in present:
                claim.drop(id_)
                deleted.append(fmt(id_))
                left -= 1
                continue
            if min_idle and now - item_time(nack) < min_idle:
                continue
            claim.take(id_, nack, now, int(nack["dc"]["N"]) + (not justid))
            reply.append(fmt(id_) if justid else entry_reply(entry_items[id_]))
            left -= 1
        cursor = fmt(id_of(examined[position])) if position < len(examined) else b"0-0"
        return claim.finish(), [cursor, reply, deleted]

    return collection.update(db, key, "stream", plan, [group_sk(group), consumer_sk(group, consumer)])


# -- XGROUP ---------------------------------------------------------------------------------
XGROUP_ARITY = {b"CREATE": -5, b"SETID": -5, b"DESTROY": 4, b"CREATECONSUMER": 5, b"DELCONSUMER": 5}


def parse_entries_read(arg: bytes) -> int:
    value = parse_int(arg)
    if value < 0 and value != UNKNOWN:
        raise ReplyError("ERR value for ENTRIESREAD must be positive or -1")
    return value


def subcommand(args: list[bytes], arities: dict[bytes, int], container: str) -> bytes:
    """The upper-cased subcommand of XGROUP/XINFO, its arity checked (Redis arity: with the container)."""
    sub = c_string(args[0]).upper()
    arity = arities.get(sub)
    if arity is None:
        raise ReplyError(f"ERR unknown subcommand '{text(args[0])[:128]}'. Try {container} HELP.")
    if (arity >= 0 and len(args) + 1 != arity) or len(args) + 1 < -arity:
        raise ReplyError(f"ERR wrong number of arguments for '{container.lower()}|{sub.decode().lower()}' command")
    return sub


@command("xgroup", -2)
def xgroup(db: Database, args: list[bytes]) -> object:
    """XGROUP CREATE key group id|$ [MKSTREAM] [ENTRIESREAD n] | SETID key group id|$ [ENTRIESREAD n]
    | DESTROY key group | CREATECONSUMER key group consumer | DELCONSUMER key group consumer.
    Cost: 1 BatchGetItem (head, group, consumer) + 1 TransactWriteItems; DESTROY and DELCONSUMER
    add Queries of the group's consumers and pending entries and delete them (99 a transaction)."""
    sub = subcommand(args, XGROUP_ARITY, "XGROUP")
    syntax = ReplyError(f"ERR unknown subcommand or wrong number of arguments for '{text(args[0])[:128]}'. "
                        "Try XGROUP HELP.")
    key, group = args[1], args[2]
    mkstream, entries_read = False, UNKNOWN
    index = 4
    while index < len(args):
        word = c_string(args[index]).upper()
        if word == b"MKSTREAM" and sub == b"CREATE":
            mkstream = True
            index += 1
        elif word == b"ENTRIESREAD" and sub in (b"CREATE", b"SETID") and index + 1 < len(args):
            entries_read = parse_entries_read(args[index + 1])
            index += 2
        else:
            raise syntax
    gsk = group_sk(group)
    csk = consumer_sk(group, args[3]) if sub in (b"CREATECONSUMER", b"DELCONSUMER") else None

    def plan(state: State) -> tuple[Change | None, object]:
        if state.head is None and not (sub == b"CREATE" and mkstream):
            raise ReplyError(KEY_REQUIRED)
        exists = gsk in state.members
        if not exists and sub in (b"SETID", b"CREATECONSUMER", b"DELCONSUMER"):
            raise ReplyError(f"NOGROUP No such consumer group '{text(group)}' for key name '{text(key)}'")
        meta = Meta(db, key, state.head)
        if sub == b"CREATE":
            if len(args) > 7:
                raise syntax
            id_ = meta.last if args[3] == b"$" else strict_id(args[3])
            if exists:
                raise ReplyError("BUSYGROUP Consumer Group name already exists")
            change = Change(puts=[{"sk": {"B": gsk}, "lid": raw_id(id_), "er": number(entries_read),
                                   "hw": raw_id(0)}], uncounted={gsk}, keep_empty=True)
            if state.head is None:
                change.head_set = new_head()
            return change, OK
        if sub == b"SETID":
            if len(args) not in (4, 6):
                raise syntax
            id_ = meta.last if args[3] == b"$" else parse_id(args[3])[0]
            return Change(puts=[{**state.members[gsk], "lid": raw_id(id_), "er": number(entries_read)}],
                          uncounted={gsk}, keep_empty=True), OK
        if sub == b"CREATECONSUMER":
            if csk in state.members:
                return None, 0
            return Change(puts=[{"sk": {"B": csk}, "st": number(db.clock())}], uncounted={csk}, keep_empty=True), 1
        if sub == b"DELCONSUMER":
            if csk not in state.members:
                return None, 0
            pending = group_items(db, key, state.head, PENDING, group, consumer=args[3])
            deletes = [item["sk"]["B"] for item in pending] + [csk]
        else:
            if not exists:
                return None, 0
            pending = (group_items(db, key, state.head, PENDING, group)
                       + group_items(db, key, state.head, CONSUMER, group, high=b"\xff" * NAME_LIMIT))
            deletes = [item["sk"]["B"] for item in pending] + [gsk]
        for item in pending:
            state.members[item["sk"]["B"]] = item
        result = len(pending) if sub == b"DELCONSUMER" else 1
        return Change(deletes=deletes, uncounted=set(deletes), keep_empty=True), result

    return collection.update(db, key, "stream", plan, [gsk] + ([csk] if csk else []))


# -- XINFO ----------------------------------------------------------------------------------
def groups_of(db: Database, key: bytes, head: Head) -> list[Item]:
    low, high = collection.kind_range(GROUP)
    return list(collection.members(db, key, head, low, high))


def group_info(db: Database, meta: Meta, group: Item) -> list:
    name = group["sk"]["B"][1:]
    entries_read = int(group["er"]["N"])
    return [b"name", name,
            b"consumers", count_group_items(db, meta.key, meta.head, CONSUMER, name),
            b"pending", count_group_items(db, meta.key, meta.head, PENDING, name),
            b"last-delivered-id", fmt(id_attr(group, "lid")),
            b"entries-read", None if entries_read == UNKNOWN else entries_read,
            b"lag", meta.lag(group)]


def full_group_info(db: Database, meta: Meta, group: Item, count: int) -> list:
    """A group as XINFO STREAM FULL shows it: at most ``count`` pending entries (0: all), and its
    consumers with theirs."""
    name = group["sk"]["B"][1:]
    entries_read = int(group["er"]["N"])
    pending = group_items(db, meta.key, meta.head, PENDING, name)
    consumers = []
    for item in group_items(db, meta.key, meta.head, CONSUMER, name, high=b"\xff" * NAME_LIMIT):
        consumer = item["sk"]["B"][3 + len(name):]
        own = [entry for entry in pending if entry["cn"]["B"] == consumer]
        consumers.append([b"name", consumer, b"seen-time", int(item["st"]["N"]), b"pel-count", len(own),
                          b"pending", [[fmt(id_of(entry)), item_time(entry), int(entry["dc"]["N"])]
                                       for entry in own[:count or None]]])
    return [b"name", name, b"last-delivered-id", fmt(id_attr(group, "lid")),
            b"entries-read", None if entries_read == UNKNOWN else entries_read, b"lag", meta.lag(group),
            b"pel-count", len(pending),
            b"pending", [[fmt(id_of(entry)), entry["cn"]["B"], item_time(entry), int(entry["dc"]["N"])]
                         for entry in pending[:count or None]],
            b"consumers", consumers]


XINFO_ARITY = {b"STREAM": -3, b"GROUPS": 3, b"CONSUMERS": 4}


@command("xinfo", -2)
def xinfo(db: Database, args: list[bytes]) -> list:
    """XINFO STREAM key | GROUPS key | CONSUMERS key group. STREAM: 1 GetItem + 2 one-item Queries
    (first and last entry) + a Query of the group items (FULL: Queries of the entries shown and of
    each group's pending entries and consumers); GROUPS: 1 GetItem + a Query of the groups + 2 COUNT
    Queries a group (its consumers and pending entries); CONSUMERS: 1 BatchGetItem + Queries of the
    group's consumers and pending entries."""
    sub = subcommand(args, XINFO_ARITY, "XINFO")
    if sub == b"CONSUMERS":
        state = collection.read(db, args[1], "stream", [group_sk(args[2])])
        if state.head is None:
            raise ReplyError("ERR no such key")
        if group_sk(args[2]) not in state.members:
            raise ReplyError(f"NOGROUP No such consumer group '{text(args[2])}' for key name '{text(args[1])}'")
        pending: dict[bytes, int] = {}
        for item in group_items(db, args[1], state.head, PENDING, args[2], projection="sk, cn"):
            pending[item["cn"]["B"]] = pending.get(item["cn"]["B"], 0) + 1
        now = db.clock()
        consumers = group_items(db, args[1], state.head, CONSUMER, args[2], high=b"\xff" * NAME_LIMIT)
        return [[b"name", name, b"pending", pending.get(name, 0), b"idle", max(now - int(item["st"]["N"]), 0)]
                for item in consumers for name in [item["sk"]["B"][3 + len(args[2]):]]]
    head = collection.load(db, args[1], "stream")
    if head is None:
        raise ReplyError("ERR no such key")
    meta = Meta(db, args[1], head)
    if sub == b"GROUPS":
        return [group_info(db, meta, group) for group in groups_of(db, args[1], head)]
    full = len(args) > 2
    if full and (c_string(args[2]).upper() != b"FULL" or len(args) not in (3, 5)
                 or len(args) == 5 and c_string(args[3]).upper() != b"COUNT"):
        raise ReplyError(f"ERR unknown subcommand or wrong number of arguments for '{text(args[0])[:128]}'. "
                         "Try XINFO HELP.")
    count = max(parse_int(args[4]), 0) if len(args) == 5 else 10
    first = meta.edge(True)
    nodes = -(-meta.length // NODE)
    reply = [b"length", meta.length, b"radix-tree-keys", nodes, b"radix-tree-nodes", nodes + 1,
             b"last-generated-id", fmt(meta.last), b"max-deleted-entry-id", fmt(meta.max_deleted),
             b"entries-added", meta.added, b"recorded-first-entry-id", fmt(id_of(first)) if first else b"0-0"]
    if full:
        return reply + [b"entries", [entry_reply(item) for item in entries(db, args[1], head, 0, MAX_ID,
                                                                          limit=count or None)],
                        b"groups", [full_group_info(db, meta, group, count) for group in groups_of(db, args[1], head)]]
    last = meta.edge(False)
    return reply + [b"groups", len(groups_of(db, args[1], head)),
                    b"first-entry", entry_reply(first) if first else None,
                    b"last-entry", entry_reply(last) if last else None]
