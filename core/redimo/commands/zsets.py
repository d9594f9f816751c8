"""Sorted-set commands. A sorted set is a collection (see ``redimo.collection``): a head with the
member count and one item per member, ``sk = 04 + member`` (``mb`` for a long member) with the score
in ``sc`` as its order-preserving integer (``redimo.scores``). The local secondary index ``by-score``
(pk, sc) carries sk, g and mb, so score ranges are read from the index alone. The index does not order
equal scores: Redimo sorts each tie group by member bytes (Redis's order) and, at a LIMIT or rank
boundary, reads the rest of that tie group. Each docstring gives the DynamoDB cost.

Differences from Redis 7 (see docs/reference/zsets.md): a score of -0 is stored as 0 (as Redis's
listpack encoding, used for small sorted sets, also does); BY LEX ranges are in member order whatever
the scores (Redis's reply is unspecified when scores differ); ranks and score ranges cost O(what is
before them) index entries where Redis is O(log N); ZRANK/ZREVRANK take Redis 7.2's WITHSCORE;
BZPOPMIN/BZPOPMAX/BZMPOP poll (lists.block); ZSCAN's cursor is the last member returned (hashes'
member cursor); ZRANDMEMBER draws as SRANDMEMBER (hashes.sample: exactly uniform up to 1000 members)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

from .. import collection
from ..collection import Change, Head, State, check_value, member_attributes, member_of, member_sk
from ..gateway import Item
from ..protocol import INT64_MAX, NOT_FLOAT, SYNTAX_ERROR, WRONGTYPE, ReplyError, parse_int, wrong_arity
from ..scores import decode_score, encode_score
from ..storage import Database
from ..table import SCORE_INDEX_NAME
from .base import Reply, c_string, command, options
from .hashes import random_count, sample, scan_members
from .lists import block, mpop_arguments, parse_timeout

MEMBER = b"\x04"
SET_MEMBER = b"\x03"  # a plain set's member items (ZUNIONSTORE/ZINTERSTORE read sets too)
PREFIX = 1 + collection.MEMBER_LIMIT  # a long member's sort key: these bytes, then 8 of its hash
LOWEST, HIGHEST = encode_score(-math.inf), encode_score(math.inf)
NAN_ERROR = "ERR resulting score is not a number (NaN)"
NOT_FLOAT_RANGE = "ERR min or max is not a float"
NOT_LEX_RANGE = "ERR min or max not valid string range item"
_DOUBLE = re.compile(rb"[+-]?(?:(?P<inf>inf(?:inity)?)|0x(?P<hex>(?=\.?[0-9a-f])[0-9a-f]*(?:\.[0-9a-f]*)?)"
                     rb"(?:p[+-]?[0-9]+)?|(?P<dec>(?=\.?[0-9])[0-9]*(?:\.[0-9]*)?)(?:e[+-]?[0-9]+)?)\Z", re.IGNORECASE)
_C_SPACE = b" \t\n\v\f\r"


# -- scores ---------------------------------------------------------------------------------------
def _strtod(text: bytes) -> tuple[float, bool] | None:
    """C's strtod of a whole string (no trailing characters): (value, out of range), None when
    ``text`` is not a number. NaN is refused, as every Redis caller does."""
    match = _DOUBLE.match(text)
    if match is None:
        return None
    if match["inf"]:
        return (-math.inf if text.startswith(b"-") else math.inf), False
    try:
        value = float.fromhex(text.decode()) if match["hex"] is not None else float(text)
    except OverflowError:
        return (-math.inf if text.startswith(b"-") else math.inf), True
    mantissa = match["hex"] if match["hex"] is not None else match["dec"]
    return value, math.isinf(value) or (value == 0 and mantissa.strip(b"0.") != b"")  # overflow, underflow


def parse_score(arg: bytes, error: str = NOT_FLOAT) -> float:
    """A score argument as Redis's string2d reads it: the whole argument, no spaces, no NaN, no
    overflow, no underflow to zero."""
    parsed = _strtod(arg)
    if parsed is None or parsed[1]:
        raise ReplyError(error)
    return parsed[0]


def c_strtod(arg: bytes) -> tuple[float, bool] | None:
    """C's strtod of an argument as a C string, checked to its end: leading spaces skipped, "" is 0;
    (value, out of range), or None when it is not a number (or NaN)."""
    text = c_string(arg)
    return _strtod(text.lstrip(_C_SPACE)) if text else (0.0, False)


def parse_bound(arg: bytes) -> float | None:
    """A range bound as Redis's zslParseRange reads it (out of range is ±inf or 0); None when invalid."""
    parsed = c_strtod(arg)
    return None if parsed is None else parsed[0]


def format_score(score: float) -> bytes:
    """A score reply as Redis 7.0 writes it (``%.17g``; ``inf``/``-inf``)."""
    if math.isinf(score):
        return b"inf" if score > 0 else b"-inf"
    return b"%.17g" % score


def score_of(item: Item) -> float:
    return decode_score(int(item["sc"]["N"]))


def score_item(member: bytes, score: float) -> Item:
    """A member item: ``sk`` (and ``mb``) and ``sc``."""
    return {**member_attributes(MEMBER, check_value(member)), "sc": {"N": str(encode_score(score))}}


def stored(item: Item) -> Item:
    """The attributes of a member item that a copy keeps (for the STORE commands)."""
    return {name: value for name, value in item.items() if name in ("sk", "sc", "mb")}


# -- ranges ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Span:
    """A range of members as DynamoDB reads it: ``sc`` on the index (``by_score``) or ``sk`` on the
    table, between ``low`` and ``high``. ``exact`` when that is exactly the members wanted; otherwise
    (a lex bound over 1000 bytes) a superset that ``contains`` narrows."""

    by_score: bool
    low: int | bytes
    high: int | bytes
    exact: bool = True
    contains: Callable[[bytes], bool] = lambda member: True

    @property
    def empty(self) -> bool:
        return self.low > self.high

    def group(self, item: Item) -> int | bytes:
        """Members DynamoDB may return in any order: one score, or long members sharing a sk prefix."""
        return int(item["sc"]["N"]) if self.by_score else item["sk"]["B"][:PREFIX]

    def order(self, item: Item) -> tuple:
        return (int(item["sc"]["N"]), member_of(item)) if self.by_score else (member_of(item),)

    def request(self, db: Database, key: bytes, head: Head, low: int | bytes, high: int | bytes) -> dict:
        """The Query of live members between ``low`` and ``high`` (gateway keyword arguments)."""
        bound = (lambda value: {"N": str(value)}) if self.by_score else (lambda value: {"B": value})
        values = {":pk": {"B": db.pk(key)}, ":g": {"B": head.generation}, ":low": bound(low), ":high": bound(high)}
        return {"key_condition": f"pk = :pk AND {'sc' if self.by_score else 'sk'} BETWEEN :low AND :high",
                "values": values, "index": SCORE_INDEX_NAME if self.by_score else None, "filter_expression": "g = :g"}

    def holds(self, item: Item) -> bool:
        """Whether a member item is in the range (for a compact sorted set, read whole)."""
        value = int(item["sc"]["N"]) if self.by_score else item["sk"]["B"]
        return self.low <= value <= self.high and self.contains(member_of(item))

    def count(self, db: Database, key: bytes, head: Head) -> int:
        """How many members are in range: a Select=COUNT Query (or reading them, when not exact or
        compact)."""
        if self.empty:
            return 0
        if not self.exact or head.compact:
            return len(fetch(db, key, head, self))
        return db.gateway.count(**self.request(db, key, head, self.low, self.high))


ALL = Span(True, LOWEST, HIGHEST)


def score_span(low_arg: bytes, high_arg: bytes) -> Span:
    """A score range (``(`` for exclusive, ``-inf``/``+inf``) as exact ``sc`` bounds."""
    bounds = []
    for arg, step in ((low_arg, 1), (high_arg, -1)):
        exclusive = arg.startswith(b"(")
        number = parse_bound(arg[1:] if exclusive else arg)
        if number is None:
            raise ReplyError(NOT_FLOAT_RANGE)
        bounds.append(encode_score(number) + (step if exclusive else 0))
    return Span(True, bounds[0], bounds[1])


def lex_bound(arg: bytes) -> tuple[bytes | None, bool, bool]:
    """(member, exclusive, is "+"): "-" and "+" are (None, True, ...)."""
    if arg[:1] in (b"-", b"+") and c_string(arg[1:]) == b"":
        return None, True, arg[:1] == b"+"
    if arg[:1] in (b"(", b"["):
        return arg[1:], arg[:1] == b"(", False
    raise ReplyError(NOT_LEX_RANGE)


def predecessor(sk: bytes) -> bytes:
    """The greatest sort key (of at most 1024 bytes) below ``sk``."""
    if sk[-1] == 0:
        return sk[:-1]
    return sk[:-1] + bytes([sk[-1] - 1]) + b"\xff" * (1024 - len(sk))


def lex_span(low_arg: bytes, high_arg: bytes) -> Span:
    """A lex range (``[``, ``(``, ``-``, ``+``) as sk bounds; exact for bounds up to 1000 bytes."""
    (low, low_ex, low_plus), (high, high_ex, high_plus) = lex_bound(low_arg), lex_bound(high_arg)
    nothing = Span(False, b"\x01", b"\x00")
    if (low is None and low_plus) or (high is None and not high_plus):
        return nothing  # from "+" or up to "-"
    if low is not None and high is not None and (low > high or (low == high and (low_ex or high_ex))):
        return nothing
    exact, sk_low, sk_high = True, MEMBER, MEMBER + b"\xff" * 1023
    if low is not None:
        exact = len(low) <= collection.MEMBER_LIMIT
        sk_low = MEMBER + low + (b"\x00" if low_ex else b"") if exact else MEMBER + low[:collection.MEMBER_LIMIT]
    if high is not None:
        if len(high) <= collection.MEMBER_LIMIT:
            sk_high = predecessor(MEMBER + high) if high_ex else MEMBER + high
        else:
            exact, sk_high = False, MEMBER + high[:collection.MEMBER_LIMIT] + b"\xff" * 8

    def contains(member: bytes) -> bool:
        above = low is None or member > low or (member == low and not low_ex)
        return above and (high is None or member < high or (member == high and not high_ex))

    return Span(False, sk_low, sk_high, exact, contains)


def fetch(db: Database, key: bytes, head: Head, span: Span, *, reverse: bool = False,
          count: int | None = None) -> list[Item]:
    """The first ``count`` members of a range (all when None) in Redis order, or reverse order.
    Cost: Query pages of ``count`` + 1 entries (to see whether the last tie group goes on), plus one
    Query of that tie group when it does. None for a compact sorted set (its head holds the members)."""
    if span.empty or count == 0:
        return []
    if head.compact:
        items = sorted((item for item in head.members.values() if span.holds(item)), key=span.order, reverse=reverse)
        return items[:count]
    if count is not None and count >= head.size:
        count = None  # the whole range: no Limit needed
    rows = db.gateway.query(**span.request(db, key, head, span.low, span.high), forward=not reverse,
                            limit=count + 1 if count is not None and span.exact else None)
    items: list[Item] = []
    for item in rows:
        if span.contains(member_of(item)):
            items.append(item)
            if count is not None and len(items) > count:
                break
    if count is not None and len(items) > count and span.group(items[count]) == span.group(items[count - 1]):
        group = span.group(items[count])
        high = group if span.by_score else group + b"\xff" * 8
        items = [item for item in items if span.group(item) != group]
        items += [item for item in db.gateway.query(**span.request(db, key, head, group, high))
                  if span.contains(member_of(item))]
    items.sort(key=span.order, reverse=reverse)
    return items if count is None else items[:count]


def by_rank(db: Database, key: bytes, head: Head, start: int, stop: int) -> list[Item]:
    """Members of ascending ranks ``start..stop`` (0 <= start <= stop < size), read from the nearer
    end: ``stop + 1`` or ``size - start`` index entries (plus a boundary tie group)."""
    if stop + 1 <= head.size - start:
        return fetch(db, key, head, ALL, count=stop + 1)[start:]
    return fetch(db, key, head, ALL, reverse=True, count=head.size - start)[::-1][:stop - start + 1]


def clamp(start: int, stop: int, size: int) -> tuple[int, int] | None:
    """Redis's rank arguments (negative from the end) as 0 <= start <= stop < size, or None when empty."""
    start, stop = start + size if start < 0 else start, stop + size if stop < 0 else stop
    start = max(start, 0)
    if start > stop or start >= size:
        return None
    return start, min(stop, size - 1)


def rank_range(db: Database, key: bytes, head: Head, start: int, stop: int, reverse: bool) -> list[Item]:
    """ZRANGE by rank, in the command's direction."""
    ranks = clamp(start, stop, head.size)
    if ranks is None:
        return []
    if not reverse:
        return by_rank(db, key, head, *ranks)
    return by_rank(db, key, head, head.size - 1 - ranks[1], head.size - 1 - ranks[0])[::-1]


def reply_items(items: list[Item], with_scores: bool) -> list[bytes]:
    reply = []
    for item in items:
        reply.append(member_of(item))
        if with_scores:
            reply.append(format_score(score_of(item)))
    return reply


# -- reads ----------------------------------------------------------------------------------------
@command("zscore", 3)
def zscore(db: Database, args: list[bytes]) -> bytes | None:
    """ZSCORE key member. Cost: 1 BatchGetItem of the head and the member."""
    sk = member_sk(MEMBER, args[1])
    state = collection.read(db, args[0], "zset", [sk])
    return format_score(score_of(state.members[sk])) if sk in state.members else None


@command("zmscore", -3)
def zmscore(db: Database, args: list[bytes]) -> list[bytes | None]:
    """ZMSCORE key member [member ...]. Cost: ceil((n + 1) / 100) BatchGetItem."""
    sks = [member_sk(MEMBER, member) for member in args[1:]]
    state = collection.read(db, args[0], "zset", sks)
    return [format_score(score_of(state.members[sk])) if sk in state.members else None for sk in sks]


@command("zcard", 2)
def zcard(db: Database, args: list[bytes]) -> int:
    """ZCARD key. Cost: 1 GetItem (the head keeps the count)."""
    head = collection.load(db, args[0], "zset")
    return head.size if head else 0


@command("zcount", 4)
def zcount(db: Database, args: list[bytes]) -> int:
    """ZCOUNT key min max. Cost: 1 GetItem + a Select=COUNT Query of the index (RCU for the entries
    counted, about 40 to a 4 KB unit)."""
    span = score_span(args[1], args[2])
    head = collection.load(db, args[0], "zset")
    return span.count(db, args[0], head) if head else 0


@command("zlexcount", 4)
def zlexcount(db: Database, args: list[bytes]) -> int:
    """ZLEXCOUNT key min max. Cost: 1 GetItem + a Select=COUNT Query of the members' sort keys (bounds
    over 1000 bytes: the members are read)."""
    span = lex_span(args[1], args[2])
    head = collection.load(db, args[0], "zset")
    return span.count(db, args[0], head) if head else 0


def rank(db: Database, args: list[bytes], reverse: bool) -> int | list | None:
    """ZRANK/ZREVRANK: 1 BatchGetItem (head and member), a Select=COUNT Query of the index entries
    with a lower (higher) score, and a Query of the member's tie group; 1 GetItem when compact."""
    name = b"zrevrank" if reverse else b"zrank"
    if len(args) > 3:
        raise wrong_arity(name)
    if len(args) == 3 and options(args, 2) != [b"WITHSCORE"]:
        raise ReplyError(SYNTAX_ERROR)
    sk = member_sk(MEMBER, args[1])
    state = collection.read(db, args[0], "zset", [sk])
    if sk not in state.members:
        return None
    item, head = state.members[sk], state.head
    if head.compact:
        ordered = sorted(head.members.values(), key=ALL.order, reverse=reverse)
        before = next(index for index, other in enumerate(ordered) if other["sk"]["B"] == sk)
        return [before, format_score(score_of(item))] if len(args) == 3 else before
    values = {":pk": {"B": db.pk(args[0])}, ":g": {"B": head.generation}, ":sc": item["sc"]}
    before = db.gateway.count(f"pk = :pk AND sc {'>' if reverse else '<'} :sc", values, index=SCORE_INDEX_NAME,
                              filter_expression="g = :g")
    ties = db.gateway.query("pk = :pk AND sc = :sc", values, index=SCORE_INDEX_NAME, filter_expression="g = :g")
    before += sum(1 for tie in ties if (member_of(tie) > args[1] if reverse else member_of(tie) < args[1]))
    return [before, format_score(score_of(item))] if len(args) == 3 else before


@command("zrank", -3)
def zrank(db: Database, args: list[bytes]) -> int | list | None:
    """ZRANK key member [WITHSCORE]. Cost: see :func:`rank`."""
    return rank(db, args, False)


@command("zrevrank", -3)
def zrevrank(db: Database, args: list[bytes]) -> int | list | None:
    """ZREVRANK key member [WITHSCORE]. Cost: see :func:`rank`."""
    return rank(db, args, True)


def zrange_generic(db: Database, args: list[bytes], source: int, store: bool, kind: str | None,
                   reverse: bool | None) -> list[bytes] | int:
    """Redis's zrangeGenericCommand: ``args[source]`` is the key, then min, max and options; ``kind``
    (rank, score, lex) and ``reverse`` are fixed by the legacy commands, None for ZRANGE's options.
    Cost: 1 GetItem + Query pages (see :func:`fetch`, :func:`by_rank`); STORE adds the write of
    :func:`collection.replace`."""
    key, low_index, high_index = args[source], source + 1, source + 2
    with_scores, offset, limit = False, 0, -1
    j = source + 3
    while j < len(args):
        word = c_string(args[j]).upper()
        if not store and word == b"WITHSCORES":
            with_scores = True
        elif word == b"LIMIT" and len(args) - j - 1 >= 2:
            offset, limit = parse_int(args[j + 1]), parse_int(args[j + 2])
            j += 2
        elif reverse is None and word == b"REV":
            reverse = True
        elif kind is None and word in (b"BYLEX", b"BYSCORE"):
            kind = word[2:].lower().decode()
        else:
            raise ReplyError(SYNTAX_ERROR)
        j += 1
    reverse, kind = bool(reverse), kind or "rank"
    if limit != -1 and kind == "rank":
        raise ReplyError("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
    if with_scores and kind == "lex":
        raise ReplyError("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
    if reverse and kind != "rank":
        low_index, high_index = high_index, low_index
    if kind == "rank":
        start, stop = parse_int(args[low_index]), parse_int(args[high_index])
    else:
        span = (score_span if kind == "score" else lex_span)(args[low_index], args[high_index])
    head = collection.load(db, key, "zset")
    items: list[Item] = []
    if head is not None:
        if kind == "rank":
            items = rank_range(db, key, head, start, stop, reverse)
        elif offset >= 0 and not (offset > 0 and offset >= head.size):
            items = fetch(db, key, head, span, reverse=reverse, count=None if limit < 0 else offset + limit)[offset:]
    if not store:
        return reply_items(items, with_scores)
    collection.replace(db, args[0], "zset", [stored(item) for item in items])
    return len(items)


@command("zrange", -4)
def zrange(db: Database, args: list[bytes]) -> list[bytes]:
    """ZRANGE key start stop [BYSCORE | BYLEX] [REV] [LIMIT offset count] [WITHSCORES]. Cost: 1 GetItem
    + Query pages of the entries returned (by rank: from the nearer end, so also those before them;
    LIMIT: also the ``offset`` skipped), plus at most one tie-group Query."""
    return zrange_generic(db, args, 0, False, None, None)


@command("zrangestore", -5)
def zrangestore(db: Database, args: list[bytes]) -> int:
    """ZRANGESTORE dst src min max [BYSCORE | BYLEX] [REV] [LIMIT offset count]. Cost: as ZRANGE, then
    (collection.replace) up to 99 members 1 GetItem of dst's head + 1 TransactWriteItems of the head and
    the members (2 WCU per KB each); more, ceil(n / 25) BatchWriteItem then 1 PutItem of the head; none,
    1 DeleteItem. Plus a Query and BatchWriteItem deleting dst's old members that were not overwritten."""
    return zrange_generic(db, args, 1, True, None, None)


@command("zrevrange", -4)
def zrevrange(db: Database, args: list[bytes]) -> list[bytes]:
    """ZREVRANGE key start stop [WITHSCORES]. Cost: as ZRANGE."""
    return zrange_generic(db, args, 0, False, "rank", True)


@command("zrangebyscore", -4)
def zrangebyscore(db: Database, args: list[bytes]) -> list[bytes]:
    """ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]. Cost: as ZRANGE BYSCORE."""
    return zrange_generic(db, args, 0, False, "score", False)


@command("zrevrangebyscore", -4)
def zrevrangebyscore(db: Database, args: list[bytes]) -> list[bytes]:
    """ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]. Cost: as ZRANGE BYSCORE."""
    return zrange_generic(db, args, 0, False, "score", True)


@command("zrangebylex", -4)
def zrangebylex(db: Database, args: list[bytes]) -> list[bytes]:
    """ZRANGEBYLEX key min max [LIMIT offset count]. Cost: 1 GetItem + a Query of the member sort keys
    returned (and those skipped by LIMIT)."""
    return zrange_generic(db, args, 0, False, "lex", False)


@command("zrevrangebylex", -4)
def zrevrangebylex(db: Database, args: list[bytes]) -> list[bytes]:
    """ZREVRANGEBYLEX key max min [LIMIT offset count]. Cost: as ZRANGEBYLEX."""
    return zrange_generic(db, args, 0, False, "lex", True)


# -- writes ---------------------------------------------------------------------------------------
def add(db: Database, key: bytes, pairs: list[tuple[float, bytes]], flags: set[bytes]) -> int | bytes | None:
    """ZADD's zsetAdd over each pair in turn. Cost: 1 BatchGetItem (head and members) + 1
    TransactWriteItems of the members whose score changes (none when nothing changes). Compact: 1
    UpdateItem when every member is new (not with XX), else 1 GetItem + 1 conditional PutItem."""
    nx, xx, gt, lt, incr = (name in flags for name in (b"NX", b"XX", b"GT", b"LT", b"INCR"))
    sks = [member_sk(MEMBER, member) for _, member in pairs]

    def plan(state: State) -> tuple[Change | None, int | bytes | None]:
        if state.head is None and xx:
            return None, None if incr else 0
        original = {sk: score_of(item) for sk, item in state.members.items()}
        scores, members = dict(original), {}
        added = updated = 0
        result: float | None = None
        for (score, member), sk in zip(pairs, sks):
            current = scores.get(sk)
            if current is None:
                if not xx:
                    scores[sk], members[sk], result = score, member, score
                    added += 1
                continue
            if nx:
                continue
            if incr:
                score += current
                if math.isnan(score):
                    raise ReplyError(NAN_ERROR)
            if (lt and score >= current) or (gt and score <= current):
                continue
            result = score
            if score != current:
                scores[sk], members[sk] = score, member
                updated += 1
        puts = [score_item(members[sk], score) for sk, score in scores.items()
                if sk in members and (sk not in original or encode_score(original[sk]) != encode_score(score))]
        if incr:
            reply = None if result is None else format_score(result)
        else:
            reply = added + updated if b"CH" in flags else added
        return Change(puts=puts), reply

    fast = None  # new members only: one UpdateItem on a compact sorted set (collection.fast_update)
    if not xx and len(set(sks)) == len(sks):
        reply = format_score(pairs[0][0]) if incr else len(pairs)
        fast = Change(puts=[score_item(member, score) for score, member in pairs]), reply
    return collection.update(db, key, "zset", plan, sks, fast=fast)


@command("zadd", -4)
def zadd(db: Database, args: list[bytes]) -> int | bytes | None:
    """ZADD key [NX | XX] [GT | LT] [CH] [INCR] score member [score member ...]. Cost: 1 BatchGetItem
    + 1 TransactWriteItems (2 WCU per KB of the head and of each member written, + the index entries)."""
    flags: set[bytes] = set()
    index = 1
    for word in options(args, 1):
        if word not in (b"NX", b"XX", b"CH", b"INCR", b"GT", b"LT"):
            break
        flags.add(word)
        index += 1
    rest = args[index:]
    if not rest or len(rest) % 2:
        raise ReplyError(SYNTAX_ERROR)
    if {b"NX", b"XX"} <= flags:
        raise ReplyError("ERR XX and NX options at the same time are not compatible")
    if len(flags & {b"NX", b"GT", b"LT"}) > 1:
        raise ReplyError("ERR GT, LT, and/or NX options at the same time are not compatible")
    if b"INCR" in flags and len(rest) > 2:
        raise ReplyError("ERR INCR option supports a single increment-element pair")
    pairs = [(parse_score(score), member) for score, member in zip(rest[::2], rest[1::2])]
    return add(db, args[0], pairs, flags)


@command("zincrby", 4)
def zincrby(db: Database, args: list[bytes]) -> bytes | None:
    """ZINCRBY key increment member: in double arithmetic, as Redis; a read-modify-write asserting the
    member unchanged (retried on conflict). Cost: 1 BatchGetItem + 1 TransactWriteItems."""
    return add(db, args[0], [(parse_score(args[1]), args[2])], {b"INCR"})


@command("zrem", -3)
def zrem(db: Database, args: list[bytes]) -> int:
    """ZREM key member [member ...]. Cost: 1 BatchGetItem + 1 TransactWriteItems (none when no member
    exists); the last member deletes the key."""
    return collection.remove(db, args[0], "zset", MEMBER, args[1:])


def remove(db: Database, key: bytes, select: Callable[[Head], list[Item]],
           reply: Callable[[list[Item]], Reply]) -> Reply:
    """Delete the members ``select`` reads (index or table entries hold every attribute of a member
    item, so each delete asserts it unchanged). Cost: 1 GetItem + the reads of ``select`` + 1
    TransactWriteItems per 99 members (each atomic, the whole not)."""

    def plan(state: State) -> tuple[Change, Reply]:
        items = select(state.head) if state.head else []
        state.members.update((item["sk"]["B"], item) for item in items)
        return Change(deletes=[item["sk"]["B"] for item in items]), reply(items)

    return collection.update(db, key, "zset", plan)


@command("zremrangebyscore", 4)
def zremrangebyscore(db: Database, args: list[bytes]) -> int:
    """ZREMRANGEBYSCORE key min max. Cost: see :func:`remove` (a Query of the range on the index)."""
    span = score_span(args[1], args[2])
    return remove(db, args[0], lambda head: fetch(db, args[0], head, span), len)


@command("zremrangebylex", 4)
def zremrangebylex(db: Database, args: list[bytes]) -> int:
    """ZREMRANGEBYLEX key min max. Cost: see :func:`remove` (a Query of the member sort keys)."""
    span = lex_span(args[1], args[2])
    return remove(db, args[0], lambda head: fetch(db, args[0], head, span), len)


@command("zremrangebyrank", 4)
def zremrangebyrank(db: Database, args: list[bytes]) -> int:
    """ZREMRANGEBYRANK key start stop. Cost: see :func:`remove` (index entries up to the range, from
    the nearer end)."""
    start, stop = parse_int(args[1]), parse_int(args[2])
    return remove(db, args[0], lambda head: rank_range(db, args[0], head, start, stop, False), len)


def pop(db: Database, args: list[bytes], highest: bool) -> list[bytes]:
    """ZPOPMIN/ZPOPMAX key [count]: 1 GetItem + a Query of count + 1 index entries (+ a tie group)
    + 1 TransactWriteItems per 99 members."""
    if len(args) > 2:
        raise ReplyError(SYNTAX_ERROR)
    count = 1
    if len(args) == 2:
        count = parse_int(args[1], "ERR value is out of range, must be positive")
        if count < 0:
            raise ReplyError("ERR value is out of range, must be positive")
    return remove(db, args[0], lambda head: fetch(db, args[0], head, ALL, reverse=highest, count=count),
                  lambda items: reply_items(items, True))


@command("zpopmin", -2)
def zpopmin(db: Database, args: list[bytes]) -> list[bytes]:
    """ZPOPMIN key [count]. Cost: see :func:`pop`."""
    return pop(db, args, False)


@command("zpopmax", -2)
def zpopmax(db: Database, args: list[bytes]) -> list[bytes]:
    """ZPOPMAX key [count]. Cost: see :func:`pop`."""
    return pop(db, args, True)


# -- union and intersection -----------------------------------------------------------------------
def aggregate(total: float, value: float, how: bytes) -> float:
    """Redis's zunionInterAggregate (a NaN sum is 0; MIN/MAX ignore a NaN value)."""
    if how == b"SUM":
        total += value
        return 0.0 if math.isnan(total) else total
    if how == b"MIN":
        return value if value < total else total
    return value if value > total else total


def operate(db: Database, name: str, args: list[bytes], op: str, destination: bytes | None = None,
            cardinality: bool = False) -> Reply:
    """Redis's zunionInterDiffGenericCommand: ``args`` are numkeys, the keys and the options; ``op``
    is union, inter or diff; the inputs may be sets (each member scores 1). The result is stored at
    ``destination`` (STORE), counted (ZINTERCARD) or replied in (score, member) order. Cost:
    ceil(k / 100) BatchGetItem of the heads, then Query pages of every input's members (none for an
    intersection with a missing key); STORE adds :func:`collection.replace`."""
    numkeys = parse_int(args[0])
    if numkeys < 1:
        raise ReplyError(f"ERR at least 1 input key is needed for '{name}' command")
    if numkeys > len(args) - 1:
        raise ReplyError(SYNTAX_ERROR)
    keys = args[1:1 + numkeys]
    records = db.load_many(dict.fromkeys(keys))
    if any(record.type not in ("zset", "set") for record in records.values()):
        raise ReplyError(WRONGTYPE)
    weights, how, with_scores, limit, j = [1.0] * numkeys, b"SUM", False, 0, 1 + numkeys
    scoring = op != "diff" and not cardinality
    while j < len(args):
        word, remaining = c_string(args[j]).upper(), len(args) - j
        if scoring and word == b"WEIGHTS" and remaining >= numkeys + 1:
            weights = [parse_score(weight, "ERR weight value is not a float") for weight in args[j + 1:j + 1 + numkeys]]
            j += numkeys + 1
        elif scoring and word == b"AGGREGATE" and remaining >= 2:
            how = c_string(args[j + 1]).upper()
            if how not in (b"SUM", b"MIN", b"MAX"):
                raise ReplyError(SYNTAX_ERROR)
            j += 2
        elif destination is None and not cardinality and word == b"WITHSCORES":
            with_scores = True
            j += 1
        elif cardinality and word == b"LIMIT" and remaining >= 2:
            limit = parse_int(args[j + 1], "ERR LIMIT can't be negative")
            if limit < 0:
                raise ReplyError("ERR LIMIT can't be negative")
            j += 2
        else:
            raise ReplyError(SYNTAX_ERROR)
    contents: dict[bytes, dict[bytes, float]] = {}
    if op != "inter" or len(records) == len(set(keys)):
        for key, record in records.items():
            head = collection.head_of(db, record.item, record.type)[0]
            kind = MEMBER if record.type == "zset" else SET_MEMBER
            contents[key] = {member_of(item): score_of(item) if "sc" in item else 1.0
                             for item in collection.members(db, key, head, *collection.kind_range(kind))}
    sources = [(contents.get(key, {}), weight) for key, weight in zip(keys, weights)]
    result: dict[bytes, float] = {}
    if op == "diff":
        (first, _), others = sources[0], sources[1:]
        result = {member: score for member, score in first.items() if not any(member in other for other, _ in others)}
    elif op == "union":
        for members, weight in sorted(sources, key=lambda source: len(source[0])):
            for member, score in members.items():
                value = weight * score
                value = 0.0 if math.isnan(value) else value
                result[member] = aggregate(result[member], value, how) if member in result else value
    else:
        (first, first_weight), *others = sorted(sources, key=lambda source: len(source[0]))
        for member, score in first.items():
            total = first_weight * score
            total = 0.0 if math.isnan(total) else total
            for members, weight in others:
                if member not in members:
                    break
                total = aggregate(total, members[member] * weight, how)
            else:
                result[member] = total
                if cardinality and len(result) == limit:
                    break
    if cardinality:
        return len(result)
    if destination is not None:
        collection.replace(db, destination, "zset", [score_item(member, score) for member, score in result.items()])
        return len(result)
    reply = []
    for member, score in sorted(result.items(), key=lambda pair: (pair[1], pair[0])):
        reply += [member, format_score(score)] if with_scores else [member]
    return reply


@command("zunionstore", -4)
def zunionstore(db: Database, args: list[bytes]) -> int:
    """ZUNIONSTORE destination numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX].
    Cost: the reads of :func:`operate`, then the write as ZRANGESTORE's (up to 99 members: 1 GetItem +
    1 TransactWriteItems; more: ceil(n / 25) BatchWriteItem + 1 PutItem)."""
    return operate(db, "zunionstore", args[1:], "union", args[0])


@command("zinterstore", -4)
def zinterstore(db: Database, args: list[bytes]) -> int:
    """ZINTERSTORE destination numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX].
    Cost: as ZUNIONSTORE."""
    return operate(db, "zinterstore", args[1:], "inter", args[0])


@command("zdiffstore", -4)
def zdiffstore(db: Database, args: list[bytes]) -> int:
    """ZDIFFSTORE destination numkeys key [key ...]. Cost: as ZUNIONSTORE."""
    return operate(db, "zdiffstore", args[1:], "diff", args[0])


@command("zunion", -3)
def zunion(db: Database, args: list[bytes]) -> list[bytes]:
    """ZUNION numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]. Cost:
    the heads' BatchGetItem + Query pages of every input (see :func:`operate`)."""
    return operate(db, "zunion", args, "union")


@command("zinter", -3)
def zinter(db: Database, args: list[bytes]) -> list[bytes]:
    """ZINTER numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]. Cost:
    as ZUNION (only the heads when an input is missing)."""
    return operate(db, "zinter", args, "inter")


@command("zdiff", -3)
def zdiff(db: Database, args: list[bytes]) -> list[bytes]:
    """ZDIFF numkeys key [key ...] [WITHSCORES]. Cost: as ZUNION."""
    return operate(db, "zdiff", args, "diff")


@command("zintercard", -3)
def zintercard(db: Database, args: list[bytes]) -> int:
    """ZINTERCARD numkeys key [key ...] [LIMIT limit]. Cost: as ZINTER (every input is read whole;
    LIMIT stops only the counting)."""
    return operate(db, "zintercard", args, "inter", cardinality=True)


# -- random members and cursor --------------------------------------------------------------------
@command("zrandmember", -2)
def zrandmember(db: Database, args: list[bytes]) -> bytes | None | list[bytes]:
    """ZRANDMEMBER key [count [WITHSCORES]]: truly random members, as HRANDFIELD. Cost: 1 GetItem +
    what :func:`hashes.sample` reads (the whole sorted set up to 1000 members or when count * 64
    reaches its size, else 2 + 1 a member Queries)."""
    if len(args) == 1:
        head = collection.load(db, args[0], "zset")
        picked = sample(db, args[0], head, MEMBER, 1, True) if head else []
        return member_of(picked[0]) if picked else None
    count = random_count(args[1])
    if len(args) > 3 or (len(args) == 3 and options(args, 2)[0] != b"WITHSCORES"):
        raise ReplyError(SYNTAX_ERROR)
    with_scores = len(args) == 3
    if with_scores and not -(INT64_MAX // 2) <= count <= INT64_MAX // 2:
        raise ReplyError("ERR value is out of range")
    head = collection.load(db, args[0], "zset")
    if head is None or count == 0:
        return []
    return reply_items(sample(db, args[0], head, MEMBER, abs(count), count > 0), with_scores)


@command("zscan", -3)
def zscan(db: Database, args: list[bytes]) -> list:
    """ZSCAN key cursor [MATCH pattern] [COUNT count]: member, score pairs in member order; the cursor
    is the last member returned, as an integer. Cost: 1 GetItem + Query pages of COUNT members
    (default 1000)."""
    return scan_members(db, args, "zset", MEMBER, lambda item: format_score(score_of(item)))


# -- pops from several keys, blocking pops --------------------------------------------------------
def first_zset(db: Database, keys: list[bytes]) -> bytes | None:
    """The first key (in order) holding a sorted set; WRONGTYPE when the first existing key holds
    another type. Cost: 1 BatchGetItem of the heads (one key: none, the pop reads it)."""
    if len(keys) == 1:
        return keys[0]
    records = db.load_many(dict.fromkeys(keys))
    key = next((key for key in keys if key in records), None)
    if key is not None and records[key].type != "zset":
        raise ReplyError(WRONGTYPE)
    return key


def pop_first(db: Database, keys: list[bytes], highest: bool, count: int | None) -> list | None:
    """[key, member, score] (with a ``count``: [key, [[member, score], ...]]) popped from the first
    sorted set of ``keys``, None when there is none. Cost: :func:`first_zset` + as ZPOPMIN."""
    key = first_zset(db, keys)
    if key is None:
        return None
    items = remove(db, key, lambda head: fetch(db, key, head, ALL, reverse=highest, count=count or 1), list)
    if not items:
        return None
    if count is None:
        return [key, *reply_items(items[:1], True)]
    return [key, [reply_items([item], True) for item in items]]


@command("zmpop", -4)
def zmpop(db: Database, args: list[bytes]) -> list | None:
    """ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]. Cost: one key as ZPOPMIN (1 GetItem + 1
    Query + 1 TransactWriteItems); several keys, 1 BatchGetItem of the heads more."""
    keys, lowest, count = mpop_arguments(args, (b"MIN", b"MAX"))
    return pop_first(db, keys, not lowest, count)


@command("bzmpop", -5)
def bzmpop(db: Database, args: list[bytes]) -> list | None:
    """BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]: polls ZMPOP as BLPOP polls (see
    lists.block); a poll of missing keys costs 1 GetItem (one key) or 1 BatchGetItem."""
    keys, lowest, count = mpop_arguments(args[1:], (b"MIN", b"MAX"))
    timeout = parse_timeout(args[0])
    return block(timeout, lambda: pop_first(db, keys, not lowest, count))


@command("bzpopmin", -3)
def bzpopmin(db: Database, args: list[bytes]) -> list | None:
    """BZPOPMIN key [key ...] timeout: [key, member, score], polling as BZMPOP."""
    timeout = parse_timeout(args[-1])
    return block(timeout, lambda: pop_first(db, args[:-1], False, None))


@command("bzpopmax", -3)
def bzpopmax(db: Database, args: list[bytes]) -> list | None:
    """BZPOPMAX key [key ...] timeout: as BZPOPMIN, the highest score."""
    timeout = parse_timeout(args[-1])
    return block(timeout, lambda: pop_first(db, args[:-1], True, None))
