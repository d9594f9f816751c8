"""Stream entries: XADD, XLEN, XRANGE, XREVRANGE, XDEL, XTRIM, XREAD, XSETID (consumer groups are in
``stream_groups``). A stream is a collection (see ``redimo.collection``) of type ``stream`` that keeps
its head when it has no entries, as in Redis. The head holds the entry count ``sz``, the last ID ``lid``,
the entries added ``ea``, the max deleted ID ``mdi`` (IDs as 16 big-endian bytes: ms, seq) and the last
node Redis would be filling (``k*``, see :func:`node_after_add`), for ``~`` trimming. Items (``sk``):
``07 + id``, an entry, its fields and values in ``fv`` (length-prefixed, one Binary), ``ix`` its
addition number (``ea`` before it), ``kd`` its node's ordinal;
``08``, ``09`` and ``0A``: groups, consumers and pending entries (see ``stream_groups``).

Only entries count in ``sz``. Each docstring gives the DynamoDB cost; docs/reference/streams.md lists
the differences from Redis.
"""

from __future__ import annotations

import hashlib
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
NODE = 100  # entries a node holds, for approximate trimming (Redis's stream-node-max-entries)
NODE_BYTES = 4096  # bytes a node's listpack holds (Redis's stream-node-max-bytes)
NODE_ATTRIBUTES = ("kd", "km", "kf", "kb", "kn", "kl")  # the head's last node (see node_after_add)
UNKNOWN = -1  # entries-read that cannot be known
INVALID_ID = "ERR Invalid stream ID specified as stream command argument"
SMALLER_ID = "ERR The ID specified in XADD is equal or smaller than the target stream top item"



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


# -- nodes ----------------------------------------------------------------------------------
def backlen(size: int) -> int:
    return 1 if size <= 127 else 2 if size < 16383 else 3 if size < 2097151 else 4 if size < 268435455 else 5


def lp_int(value: int) -> int:
    """Bytes of an integer in a Redis listpack, its back-length included."""
    if 0 <= value <= 127:
        return 2
    for bits, size in ((13, 2), (16, 3), (24, 4), (32, 5)):
        if -(1 << (bits - 1)) <= value < 1 << (bits - 1):
            return size + 1
    return 10


_LP_INTEGER = re.compile(rb"(-?[1-9][0-9]*|0)\Z")


def lp_string(value: bytes) -> int:
    """Bytes of a string in a listpack, which keeps one that reads as an int64 as the integer."""
    if len(value) <= 20 and _LP_INTEGER.match(value) and -2**63 <= int(value) < 2**63:
        return lp_int(int(value))
    size = len(value) + (1 if len(value) < 64 else 2 if len(value) < 4096 else 5)
    return size + backlen(size)


def signed64(value: int) -> int:
    value %= 2**64
    return value - 2**64 if value >= 2**63 else value


def head_number(item: Item, name: str) -> int:
    return int(item[name]["N"]) if name in item else 0


def node_after_add(head: Item, added: int, id_: int, values: list[bytes]) -> Item:
    """The head's node attributes after an entry is added, as Redis's streamAppendItem fills its last
    node, a listpack of at most NODE entries (deleted ones included) and NODE_BYTES bytes: ``kd`` its
    ordinal (each entry keeps its node's), ``km`` its master ID, ``kf`` a digest of its master fields,
    ``kb`` its bytes, ``kn`` its entries, ``kl`` the live ones (0: deleted, a new node comes next)."""
    names = values[::2]
    digest = hashlib.blake2b(encode_fields(names), digest_size=8).digest()
    if head_number(head, "kl") and head_number(head, "kb") + sum(map(len, values)) < NODE_BYTES \
            and head_number(head, "kn") < NODE:
        ordinal, master, size = head_number(head, "kd"), id_attr(head, "km"), head_number(head, "kb")
        count, live, same = head_number(head, "kn"), head_number(head, "kl"), head["kf"]["B"] == digest
    else:
        ordinal = head_number(head, "kd") + 1 if "kd" in head else added // NODE + 1
        master, count, live, same = id_, 0, 0, True
        size = 7 + 3 * lp_int(0) + lp_int(len(names)) + sum(map(lp_string, names))  # header, master entry, end
        head = {"kf": {"B": digest}}
    ms, seq = signed64((id_ >> 64) - (master >> 64)), signed64((id_ & SEQ_MAX) - (master & SEQ_MAX))
    size += (lp_int(0) + lp_int(ms) + lp_int(seq)
             + (0 if same else lp_int(len(names)) + sum(map(lp_string, names))) + sum(map(lp_string, values[1::2]))
             + lp_int(len(names) + 3 + (0 if same else len(names) + 1)))
    return {"kd": number(ordinal), "km": raw_id(master), "kf": head["kf"], "kb": number(size),
            "kn": number(count + 1), "kl": number(live + 1)}


def node_of(item: Item) -> int:
    """An entry's node ordinal (entries written before Redimo kept nodes: runs of NODE additions)."""
    return int(item["kd"]["N"]) if "kd" in item else int(item["ix"]["N"]) // NODE


def leave_node(db: Database, key: bytes, change: Change, head: Item, deleted: list[Item]) -> None:
    """Count the deleted entries of the head's last node out of its live entries (``kl``), conditional
    on the count read; and in TAILS, when it holds this head, so that XADD's single UpdateItem goes on."""
    gone = sum(1 for item in deleted if "kd" in head and node_of(item) == head_number(head, "kd"))
    if gone:
        change.head_set["kl"] = number(head_number(head, "kl") - gone)
        change.condition = " AND ".join(filter(None, [change.condition, "kl = :old_kl"]))
        change.values[":old_kl"] = head["kl"]
        tail = (db.gateway.table, db.pk(key))
        known = TAILS.get(tail)
        if known is not None and known[:2] == (id_attr(head, "lid"), head_number(head, "ea")):
            TAILS.put(tail, (*known[:2], {**known[2], "kl": change.head_set["kl"]}))


def entry_sk(id_: int) -> bytes:
    return ENTRY + id_.to_bytes(16, "big")


def entry_reply(item: Item) -> list:
    return [fmt(id_of(item)), decode_fields(item["fv"]["B"])]


def number(value: int) -> dict:
    return {"N": str(value)}


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


TAILS = compact.Recent()  # (table, pk) -> (last ID, entries added, last node) as this process last wrote them (XADD)


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
        the last of them ``newest`` (in node ``index``) when it is being added (not yet stored):
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
                            projection="pk, sk, g, ix, kd") if state.head and stored else []
        else:
            found = entries(db, state.key, state.head, 0, self.threshold - 1,
                            projection="pk, sk, g, ix, kd") if state.head and stored and self.threshold else []
            goes_too = newest is not None and newest < self.threshold
        for item in found:
            state.members[item["sk"]["B"]] = item
        return [item["sk"]["B"] for item in found], goes_too

    def nodes(self, db: Database, state: State, length: int, newest: int | None,
              index: int) -> tuple[list[bytes], bool]:
        """Approximate trimming as Redis's streamTrim does it: whole nodes only, from the first,
        while LIMIT allows, Redimo's nodes being those Redis would have made (:func:`node_after_add`)."""
        head, cap = state.head, self.limit
        stored: list[Item] = []
        if self.strategy == b"MAXLEN":
            excess = length - self.threshold
            if excess <= 0:
                return [], False
            if head is not None and length - (newest is not None):
                stored = entries(db, state.key, head, 0, MAX_ID, limit=min(excess, cap or excess) + 1,
                                 projection="pk, sk, g, ix, kd")
        elif head is not None and self.threshold and length - (newest is not None):
            stored = entries(db, state.key, head, 0, self.threshold - 1, limit=cap + 1 if cap else None,
                             projection="pk, sk, g, ix, kd")
            if stored and (not cap or len(stored) <= cap):  # does the last node go on past the threshold?
                stored += entries(db, state.key, head, self.threshold, MAX_ID, limit=1, projection="pk, sk, g, ix, kd")
        members = [(node_of(item), id_of(item), item) for item in stored]
        if newest is not None and len(members) == length - 1:
            members.append((index, newest, None))
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
        elif xadd:  # the ID: checked here, before the arguments after it, as Redis does
            parse_id(args[index], strict=True, star_seq=True)
            break
        else:
            raise ReplyError(SYNTAX_ERROR)
    if trim.limit and not trim.strategy:
        raise ReplyError("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy")
    if not xadd and not trim.strategy:
        raise ReplyError("ERR syntax error, XTRIM must be called with a trimming strategy")
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
    last ID, entries added and last node it saw are assumed in the condition; refused, the item it
    returns is planned from). Every write is conditional on the last node's live entries as read."""
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

    def addition(new: int, added: int, last: int, head: Item) -> Change:
        """The entry and the head after it; conditional on the last ID and the live entries of the last
        node (which XDEL and XTRIM change) as read."""
        node = node_after_add(head, added, new, fields)
        entry = {"sk": {"B": entry_sk(new)}, "fv": {"B": encoded}, "ix": number(added), "kd": node["kd"]}
        change = Change(puts=[entry], keep_empty=True, head_set={"lid": raw_id(new), "ea": number(added + 1), **node},
                        condition="lid = :old_lid", values={":old_lid": raw_id(last)})
        if "kl" in head:
            change.condition += " AND kl = :old_kl"
            change.values[":old_kl"] = head["kl"]
        else:
            change.condition += " AND attribute_not_exists(kl)"
        return change

    tail = (db.gateway.table, db.pk(args[0]))

    def plan(state: State) -> tuple[Change | None, bytes | None]:
        if state.head is None and nomkstream:
            return None, None
        meta = Meta(db, args[0], state.head)
        new = next_id(meta.last)
        head = state.head.item if state.head else {}
        change = addition(new, meta.added, meta.last, head)
        deletes, goes_too = trim.plan(db, state, meta.length + 1, new, node_of(change.puts[0]))
        change.deletes = deletes
        ordinal = node_of(change.puts[0])  # the last node: trimming may take entries of it, this one too
        gone = sum(node_of(item) == ordinal for item in [state.members[sk] for sk in deletes] + change.puts[:goes_too])
        change.head_set["kl"] = number(head_number(change.head_set, "kl") - gone)
        if goes_too:
            change.puts = []
        if state.head is None:
            change.head_set["mdi"] = raw_id(0)
            change.condition, change.values = "", {}
        TAILS.put(tail, (new, meta.added + 1, {name: change.head_set[name] for name in NODE_ATTRIBUTES}))
        return change, fmt(new)

    fast = None
    known = TAILS.get(tail) if not trim.strategy else None
    if known is not None:  # this client added the last entry: one UpdateItem, if nobody else did since
        last, added, node = known
        try:
            new = next_id(last)
        except ReplyError:
            pass  # let the general path, with the stream as stored, say it
        else:
            fast = (addition(new, added, last, node), fmt(new))
            fast[0].condition += " AND ea = :old_ea"
            fast[0].values[":old_ea"] = number(added)
    reply = collection.update(db, args[0], "stream", plan, fast=fast)
    if fast is not None and reply is fast[1]:  # the single UpdateItem applied
        TAILS.put(tail, (new, added + 1, {name: fast[0].head_set[name] for name in NODE_ATTRIBUTES}))
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
        leave_node(db, args[0], change, state.head.item, [state.members[entry_sk(id_)] for id_ in present])
        return change, len(present)

    return collection.update(db, args[0], "stream", plan, [entry_sk(id_) for id_ in ids] if valid else [])


@command("xtrim", -4)
def xtrim(db: Database, args: list[bytes]) -> int:
    """XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]. Cost: 1 GetItem + a Query of the
    entries deleted + TransactWriteItems deleting them (99 a transaction). ``~`` removes whole
    nodes only, the nodes Redis would have made (see :func:`node_after_add` and the docs)."""
    trim = parse_trim(args, xadd=False)[0]

    def plan(state: State) -> tuple[Change | None, int]:
        if state.head is None:
            return None, 0
        deletes, _ = trim.plan(db, state, state.size)
        if not deletes:
            return None, 0
        change = Change(deletes=deletes, keep_empty=True)
        leave_node(db, args[0], change, state.head.item, [state.members[sk] for sk in deletes])
        return change, len(deletes)

    return collection.update(db, args[0], "stream", plan)


@command("xsetid", -3)
def xsetid(db: Database, args: list[bytes]) -> bytes:
    """XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]: set the head's
    last ID, entries added and max deleted ID, with Redis 7.0's checks (not below the last entry; not
    fewer entries added than the stream holds). Cost: 1 GetItem + 1 TransactWriteItems of the head,
    conditional on the last ID read (compact: 1 PutItem, 1 GetItem more without a current hint);
    an ID below the head's last ID on a stream with entries adds a one-item Query of the last entry."""
    id_ = strict_id(args[1])
    entries_added, max_deleted = UNKNOWN, 0
    index = 2
    while index < len(args):
        word = c_string(args[index]).upper()
        if word == b"ENTRIESADDED" and index + 1 < len(args):
            entries_added = parse_int(args[index + 1])
            if entries_added < 0:
                raise ReplyError("ERR entries_added must be positive")
        elif word == b"MAXDELETEDID" and index + 1 < len(args):
            max_deleted = strict_id(args[index + 1])
            if id_ < max_deleted:
                raise ReplyError("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id")
        else:
            raise ReplyError(SYNTAX_ERROR)
        index += 2

    def plan(state: State) -> tuple[Change | None, bytes]:
        if state.head is None:
            raise ReplyError("ERR no such key")
        meta = Meta(db, args[0], state.head)
        if meta.length:
            top = meta.edge(False) if id_ < meta.last else None
            if top is not None and id_ < id_of(top):
                raise ReplyError("ERR The ID specified in XSETID is smaller than the target stream top item")
            if entries_added != UNKNOWN and meta.length > entries_added:
                raise ReplyError("ERR The entries_added specified in XSETID is smaller than the target stream length")
        change = Change(keep_empty=True, head_set={"lid": raw_id(id_)}, condition="lid = :old_lid",
                        values={":old_lid": raw_id(meta.last)})
        if entries_added != UNKNOWN:
            change.head_set["ea"] = number(entries_added)
        if max_deleted:
            change.head_set["mdi"] = raw_id(max_deleted)
        return change, OK

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


