"""Hash commands. A hash is a collection (see ``redimo.collection``): a head with the field count and
one item per field, ``sk = 02 + field``, holding the value in ``v`` (Binary) or, for a canonical
integer, ``n`` (Number). Each docstring gives the DynamoDB cost.

The random sampling (HRANDFIELD, SRANDMEMBER, SPOP) and the member cursor (HSCAN, SSCAN) of any
collection live here too, and the set commands use them."""

from __future__ import annotations

import random
from fractions import Fraction
from typing import Callable

from .. import collection
from ..collection import Change, Head, State, check_value, member_attributes, member_of, member_sk
from ..gateway import Item
from ..glob import glob_match
from ..protocol import (INT64_MAX, INT64_MIN, OK, OVERFLOW, SYNTAX_ERROR, ReplyError, add_long_double,
                        canonical_int, format_long_double, parse_int, parse_long_double, wrong_arity)
from ..storage import Database
from .base import command, cursor_of, options, position_of

FIELD = b"\x02"
READ_ALL_LIMIT = 1000  # a collection up to this size is read whole to draw random members (exactly uniform)
READ_ALL_RATIO = 64  # ... and so is one where count * READ_ALL_RATIO reaches the size
_random = random.SystemRandom()


def field_item(field: bytes, value: bytes) -> Item:
    item = member_attributes(FIELD, field)
    if canonical_int(value) is not None:
        item["n"] = {"N": value.decode()}
    else:
        item["v"] = {"B": check_value(value)}
    return item


def value_of(item: Item) -> bytes:
    return item["n"]["N"].encode() if "n" in item else item["v"]["B"]


# -- random members (HRANDFIELD, SRANDMEMBER, SPOP) -----------------------------------------------
def _point_between(low: bytes, high: bytes) -> bytes:
    """A uniformly random byte string between two sort keys (padded to one length)."""
    size = max(len(low), len(high))
    low_number, high_number = (int.from_bytes(sk.ljust(size, b"\x00"), "big") for sk in (low, high))
    return _random.randint(low_number, high_number).to_bytes(size, "big")


def _sample_points(db: Database, key: bytes, head: Head, kind: bytes, count: int,
                   distinct: bool) -> list[Item] | None:
    """Members found at random points between the first and the last sort key; None when too few
    distinct ones turned up."""
    low, high = collection.kind_range(kind)
    first = next(collection.members(db, key, head, low, high, limit=1), None)
    last = next(collection.members(db, key, head, low, high, forward=False, limit=1), None)
    if first is None or last is None:
        return None
    drawn: dict[bytes, Item] = {}
    draws: list[Item] = []
    for _ in range(4 * count + 16):
        if len(drawn if distinct else draws) >= count:
            break
        point = _point_between(first["sk"]["B"], last["sk"]["B"])
        item = next(collection.members(db, key, head, point, high, limit=1), None) or first
        drawn[item["sk"]["B"]] = item
        draws.append(item)
    if distinct:
        return list(drawn.values()) if len(drawn) >= count else None
    return draws


def sample(db: Database, key: bytes, head: Head, kind: bytes, count: int, distinct: bool) -> list[Item]:
    """``count`` random live members: distinct ones (all of them, shuffled, when ``count`` is at least the
    size), or with repetition. A collection of at most READ_ALL_LIMIT (1000) members, or one where
    ``count * READ_ALL_RATIO`` (64) reaches its size, is read whole (Query pages) and drawn from
    uniformly. A larger one is sampled at random points of its sort-key range: 2 Queries (first and last
    member) and 1 Query of one member per draw; a member is then as likely as the gap of sort keys
    before it is wide (uniform over the key space, not over the members). When too few distinct members
    turn up that way, the whole collection is read."""
    if head.size > READ_ALL_LIMIT and count * READ_ALL_RATIO < head.size:
        picked = _sample_points(db, key, head, kind, count, distinct)
        if picked is not None:
            return picked
    items = list(collection.members(db, key, head, *collection.kind_range(kind)))
    if not items:
        return []
    return _random.sample(items, min(count, len(items))) if distinct else _random.choices(items, k=count)


def random_count(arg: bytes) -> int:
    """A count of HRANDFIELD/SRANDMEMBER: any long but LONG_MIN (Redis's -LONG_MAX..LONG_MAX)."""
    count = parse_int(arg)
    if count == INT64_MIN:
        raise ReplyError(f"ERR value is out of range, value must between {-INT64_MAX} and {INT64_MAX}")
    return count


# -- member cursors (HSCAN, SSCAN) ----------------------------------------------------------------
def encode_cursor(sk: bytes | None) -> bytes:
    """0, or the last sort key returned as a (large) integer."""
    return b"0" if sk is None else cursor_of(b"\x01" + sk)


def decode_cursor(cursor: bytes, kind: bytes) -> bytes | None:
    """The sort key a cursor continues after; 0 starts. Other numbers than Redimo's are invalid."""
    raw = position_of(cursor, 4000)
    if raw is None:
        return None
    if raw[:1] != b"\x01" or raw[1:2] != kind or len(raw) > 1025:
        raise ReplyError("ERR invalid cursor")
    return raw[1:]


def scan_members(db: Database, args: list[bytes], type_: str, kind: bytes,
                 value: Callable[[Item], bytes] | None = None) -> list:
    """HSCAN/SSCAN/ZSCAN key cursor [MATCH pattern] [COUNT count] (and HSCAN's NOVALUES): the next
    ``count`` members after the cursor, which is the last sort key returned, each followed by its
    ``value`` when given (a hash field's value by default). Cost: 1 GetItem + Query pages of ``count``
    members (default 1000). Each member is returned once; members added meanwhile may be."""
    after = decode_cursor(args[1], kind)
    head = collection.load(db, args[0], type_)
    if head is None:
        return [b"0", []]
    pattern, count, novalues, words, index = None, 1000, False, options(args, 2), 0
    while index < len(words):
        if words[index] == b"COUNT" and index + 1 < len(words):
            count = parse_int(args[3 + index])
            if count < 1:
                raise ReplyError(SYNTAX_ERROR)
            index += 2
        elif words[index] == b"MATCH" and index + 1 < len(words):
            pattern = None if args[3 + index] == b"*" else args[3 + index]
            index += 2
        elif words[index] == b"NOVALUES" and kind == FIELD:
            novalues = True
            index += 1
        else:
            raise ReplyError(SYNTAX_ERROR)
    if kind == FIELD and not novalues:
        value = value_of
    low, high = collection.kind_range(kind)
    items = list(collection.members(db, args[0], head, after + b"\x00" if after else low, high,
                                    limit=min(count, 2**31 - 1)))
    reply: list[bytes] = []
    for item in items:
        member = member_of(item)
        if pattern is None or glob_match(pattern, member):
            reply += [member] if value is None else [member, value(item)]
    return [encode_cursor(items[-1]["sk"]["B"] if len(items) == count else None), reply]


# -- hash commands --------------------------------------------------------------------------------
def set_fields(db: Database, key: bytes, pairs: dict[bytes, bytes], only_new: bool = False) -> int:
    """Set fields, returning how many were new. Cost: 1 BatchGetItem + 1 TransactWriteItems
    (2 WCU per KB of the head and of each field written). On a compact hash: 1 UpdateItem when every
    field is new, else 1 GetItem + 1 PutItem (or the refused UpdateItem's item + 1 PutItem)."""

    def plan(state: State) -> tuple[Change, int]:
        sks = {field: member_sk(FIELD, field) for field in pairs}
        new = [field for field, sk in sks.items() if sk not in state.members]
        if only_new:
            return Change(puts=[field_item(field, pairs[field]) for field in new]), len(new)
        return Change(puts=[field_item(field, value) for field, value in pairs.items()]), len(new)

    fast = Change(puts=[field_item(field, value) for field, value in pairs.items()])  # if all are new
    return collection.update(db, key, "hash", plan, [member_sk(FIELD, field) for field in pairs], (fast, len(pairs)))


@command("hset", -4)
def hset(db: Database, args: list[bytes]) -> int:
    """HSET key field value [field value ...]. Cost: 1 BatchGetItem + 1 TransactWriteItems; compact:
    see :func:`set_fields`."""
    if len(args) % 2 == 0:
        raise wrong_arity(b"hset")
    return set_fields(db, args[0], dict(zip(args[1::2], args[2::2])))


@command("hmset", -4)
def hmset(db: Database, args: list[bytes]) -> bytes:
    """HMSET key field value [field value ...]. Cost: as HSET."""
    if len(args) % 2 == 0:
        raise wrong_arity(b"hmset")
    set_fields(db, args[0], dict(zip(args[1::2], args[2::2])))
    return OK


@command("hsetnx", 4)
def hsetnx(db: Database, args: list[bytes]) -> int:
    """HSETNX key field value. Cost: 1 BatchGetItem (+ 1 TransactWriteItems when the field is new);
    compact: 1 UpdateItem when the field is new, else that refused UpdateItem alone."""
    return set_fields(db, args[0], {args[1]: args[2]}, only_new=True)


def read_field(db: Database, key: bytes, field: bytes) -> Item | None:
    sk = member_sk(FIELD, field)
    return collection.read(db, key, "hash", [sk]).members.get(sk)


@command("hget", 3)
def hget(db: Database, args: list[bytes]) -> bytes | None:
    """HGET key field. Cost: 1 BatchGetItem of the head and the field."""
    item = read_field(db, args[0], args[1])
    return value_of(item) if item else None


@command("hexists", 3)
def hexists(db: Database, args: list[bytes]) -> int:
    """HEXISTS key field. Cost: 1 BatchGetItem of the head and the field."""
    return int(read_field(db, args[0], args[1]) is not None)


@command("hstrlen", 3)
def hstrlen(db: Database, args: list[bytes]) -> int:
    """HSTRLEN key field. Cost: 1 BatchGetItem of the head and the field."""
    item = read_field(db, args[0], args[1])
    return len(value_of(item)) if item else 0


@command("hmget", -3)
def hmget(db: Database, args: list[bytes]) -> list[bytes | None]:
    """HMGET key field [field ...]. Cost: ceil((n+1)/100) BatchGetItem (the head and n distinct fields)."""
    sks = [member_sk(FIELD, field) for field in args[1:]]
    found = collection.read(db, args[0], "hash", sks).members
    return [value_of(found[sk]) if sk in found else None for sk in sks]


@command("hdel", -3)
def hdel(db: Database, args: list[bytes]) -> int:
    """HDEL key field [field ...]. Cost: 1 BatchGetItem + 1 TransactWriteItems (none when no field exists)."""
    return collection.remove(db, args[0], "hash", FIELD, args[1:])


@command("hlen", 2)
def hlen(db: Database, args: list[bytes]) -> int:
    """HLEN key. Cost: 1 GetItem (the head keeps the count)."""
    head = collection.load(db, args[0], "hash")
    return head.size if head else 0


def all_fields(db: Database, key: bytes) -> list[Item]:
    head = collection.load(db, key, "hash")
    return list(collection.members(db, key, head, *collection.kind_range(FIELD))) if head else []


@command("hgetall", 2)
def hgetall(db: Database, args: list[bytes]) -> list[bytes]:
    """HGETALL key. Cost: 1 GetItem + Query pages of the fields (1 RCU per 4 KB)."""
    return [part for item in all_fields(db, args[0]) for part in (member_of(item), value_of(item))]


@command("hkeys", 2)
def hkeys(db: Database, args: list[bytes]) -> list[bytes]:
    """HKEYS key. Cost: 1 GetItem + Query pages of the fields (values included: DynamoDB charges the
    whole items)."""
    return [member_of(item) for item in all_fields(db, args[0])]


@command("hvals", 2)
def hvals(db: Database, args: list[bytes]) -> list[bytes]:
    """HVALS key. Cost: 1 GetItem + Query pages of the fields."""
    return [value_of(item) for item in all_fields(db, args[0])]


@command("hincrby", 4)
def hincrby(db: Database, args: list[bytes]) -> int:
    """HINCRBY key field increment. Exact under concurrency: the write is conditional on the field as
    read, and read and planned again when another writer got in between. Cost: 1 BatchGetItem +
    1 TransactWriteItems (per attempt)."""
    increment, field = parse_int(args[2]), args[1]

    def plan(state: State) -> tuple[Change, int]:
        item = state.members.get(member_sk(FIELD, field))
        if item is not None and "n" not in item:
            raise ReplyError("ERR hash value is not an integer")
        total = (int(item["n"]["N"]) if item else 0) + increment
        if not INT64_MIN <= total <= INT64_MAX:
            raise ReplyError(OVERFLOW)
        return Change(puts=[field_item(field, str(total).encode())]), total

    return collection.update(db, args[0], "hash", plan, [member_sk(FIELD, field)])


@command("hincrbyfloat", 4)
def hincrbyfloat(db: Database, args: list[bytes]) -> bytes:
    """HINCRBYFLOAT key field increment: long double arithmetic and formatting as Redis on x86-64
    (as INCRBYFLOAT). Cost: 1 BatchGetItem + 1 TransactWriteItems (per attempt, as HINCRBY)."""
    increment, field = parse_long_double(args[2]), args[1]
    if isinstance(increment, float):
        raise ReplyError("ERR value is NaN or Infinity")

    def plan(state: State) -> tuple[Change, bytes]:
        item = state.members.get(member_sk(FIELD, field))
        value = Fraction(0) if item is None else Fraction(int(item["n"]["N"])) if "n" in item else None
        if value is None:
            try:
                value = parse_long_double(item["v"]["B"])
            except ReplyError:
                raise ReplyError("ERR hash value is not a float") from None
        total = add_long_double(value, increment)
        if isinstance(total, float):  # inf or nan
            raise ReplyError("ERR increment would produce NaN or Infinity")
        text = format_long_double(total)
        return Change(puts=[field_item(field, text)]), text

    return collection.update(db, args[0], "hash", plan, [member_sk(FIELD, field)])


@command("hrandfield", -2)
def hrandfield(db: Database, args: list[bytes]) -> bytes | None | list[bytes]:
    """HRANDFIELD key [count [WITHVALUES]]: truly random fields. Cost: 1 GetItem + what
    :func:`sample` reads (the whole hash up to READ_ALL_LIMIT fields, else 2 + 1 a field Queries)."""
    if len(args) == 1:
        head = collection.load(db, args[0], "hash")
        picked = sample(db, args[0], head, FIELD, 1, True) if head else []
        return member_of(picked[0]) if picked else None
    count = random_count(args[1])
    if len(args) > 3 or (len(args) == 3 and options(args, 2)[0] != b"WITHVALUES"):
        raise ReplyError(SYNTAX_ERROR)
    with_values = len(args) == 3
    if with_values and not -(INT64_MAX // 2) <= count <= INT64_MAX // 2:
        raise ReplyError("ERR value is out of range")
    head = collection.load(db, args[0], "hash")
    if head is None or count == 0:
        return []
    items = sample(db, args[0], head, FIELD, abs(count), count > 0)
    if with_values:
        return [part for item in items for part in (member_of(item), value_of(item))]
    return [member_of(item) for item in items]


@command("hscan", -3)
def hscan(db: Database, args: list[bytes]) -> list:
    """HSCAN key cursor [MATCH pattern] [COUNT count] [NOVALUES]: the cursor is the last field returned,
    as an integer. Cost: 1 GetItem + Query pages of COUNT fields (default 1000)."""
    return scan_members(db, args, "hash", FIELD)
