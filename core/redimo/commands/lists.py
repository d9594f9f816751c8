"""List commands. A list is a collection (see ``redimo.collection``) whose head holds, besides ``sz``,
its bounds ``l`` (first position) and ``r`` (one past the last), Numbers. Element ``i`` lives at
position ``l + i``, in an item ``sk = 06 + position`` (8 bytes big-endian with the sign bit flipped,
so byte order is numeric order) with its value in ``v`` (Binary, at most collection.VALUE_LIMIT).

Invariant: every position in ``[l, r)`` holds an element of the head's generation. Every write is one
TransactWriteItems whose head action asserts the bounds it planned from (``l = :l`` ...), so indexed
access is arithmetic (LINDEX/LSET read or write position ``l + i``), a push writes only the new
positions and a pop deletes only the popped ones, and LRANGE queries only the slice it returns.
Positions outside ``[l, r)`` are garbage (a push may overwrite them); what a big LTRIM or pop leaves
there is deleted afterwards in transactions that first check the positions are still outside.

A small list is compact (collection.py, compact.py): its elements are in its head's map ``m``, under
the same sort keys, with the same bounds, and every write is one conditional PutItem of the head
(LMOVE: one transaction of both heads), planned from the cached head.

Each Database keeps a small client-side cache of the list heads it last saw, so a push is one request
when the cache is current (its condition refuses a stale cache; the refusal returns the current head,
and the push is planned again from it) and a pop is a BatchGetItem of the head and the element at the
cached end, then the transaction. Blocking commands poll (see :func:`block`).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator
from weakref import WeakKeyDictionary

from .. import collection
from ..collection import Change, Head, State, check_value, head_action, unchanged
from ..gateway import TRANSACTION_LIMIT, ConditionFailed, Item, TransactionConditionFailed
from ..protocol import (INT64_MAX, INT64_MIN, NOT_INTEGER, OK, SYNTAX_ERROR, ReplyError, SimpleString,
                        parse_int, parse_long_double, round_long_double)
from ..storage import HEAD, LIVE, Database
from .base import c_string, command, options

ELEMENT = b"\x06"
BIAS = 2**63  # flips the sign bit of a position
STEP = TRANSACTION_LIMIT - 1  # element actions that fit in one transaction with the head's
CACHE_SIZE = 10_000  # list heads remembered per Database
POLL_FIRST, POLL_MAX = 0.01, 0.2  # seconds between polls of a blocking command: doubling up to the max
UNKNOWN: Any = object()  # "no head known": read it
NOT_POSITIVE = "ERR value is out of range, must be positive"

_heads: WeakKeyDictionary[Database, OrderedDict[bytes, Item]] = WeakKeyDictionary()
_heads_lock = threading.Lock()


# -- layout ---------------------------------------------------------------------------------------
def element_sk(position: int) -> bytes:
    return ELEMENT + (position + BIAS).to_bytes(8, "big")


def position_of(item: Item) -> int:
    return int.from_bytes(item["sk"]["B"][1:], "big") - BIAS


def element_key(db: Database, key: bytes, position: int) -> Item:
    return {"pk": {"B": db.pk(key)}, "sk": {"B": element_sk(position)}}


def number(value: int) -> dict:
    return {"N": str(value)}


def bounds(head: Head) -> tuple[int, int]:
    return head.number("l"), head.number("r")


def decode(db: Database, item: Item | None) -> tuple[Head | None, Item | None]:
    """(live list head or None, a present but expired head to clean up); WRONGTYPE for another type."""
    return collection.head_of(db, item, "list")


# -- the client-side cache of heads -------------------------------------------------------------
def cached(db: Database, key: bytes) -> Item | None:
    """The head this Database last saw for ``key`` (UNKNOWN if none)."""
    with _heads_lock:
        return _heads.get(db, {}).get(key, UNKNOWN)


def remember(db: Database, key: bytes, item: Item | None) -> None:
    """Cache a list head; anything else (absent, another type) forgets the key."""
    with _heads_lock:
        heads = _heads.setdefault(db, OrderedDict())
        heads.pop(key, None)
        if item is not None and item.get("t", {}).get("S") == "list":
            heads[key] = item
            if len(heads) > CACHE_SIZE:
                heads.popitem(last=False)


def attempts() -> Iterator[int]:
    """Attempt numbers, sleeping a random, growing backoff between them; gives up after 100."""
    for attempt in range(100):
        yield attempt
        time.sleep(min(0.5, 0.005 * 2**min(attempt, 10)) * random.random())
    raise ReplyError("ERR too much contention on this key: the write was retried 100 times")


# -- writing ------------------------------------------------------------------------------------
@dataclass
class Plan:
    """One list's part of a transaction: its new bounds, the head condition (on the head read), the
    elements to put (position -> value), the element items read to delete (asserted unchanged) and the
    positions to delete without a condition (inside the asserted bounds)."""

    key: bytes
    head: Head | None
    stale: Item | None
    l: int
    r: int
    condition: str = ""
    values: dict = field(default_factory=dict)
    puts: dict[int, bytes] = field(default_factory=dict)
    deletes: list[Item] = field(default_factory=list)
    drops: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.generation = self.head.generation if self.head else os.urandom(8)

    def actions(self, db: Database) -> list[dict]:
        delta = (self.r - self.l) - (self.head.size if self.head else 0)
        old = bounds(self.head) if self.head else (None, None)
        moved = {name: number(new) for name, new, was in (("l", self.l, old[0]), ("r", self.r, old[1])) if new != was}
        change = Change(head_set=moved,  # only the bounds that move: the other end may be moving concurrently
                        condition=self.condition if self.head else "", values=self.values if self.head else {})
        state = State(self.key, "list", self.head, self.stale, {})
        actions = [head_action(db, state, change, self.head, self.generation, delta)]
        pk, g = {"B": db.pk(self.key)}, {"B": self.generation}
        actions += [{"Put": {"Item": {"pk": pk, "sk": {"B": element_sk(position)}, "g": g, "v": {"B": value}}}}
                    for position, value in self.puts.items()]
        for item in self.deletes:
            condition, (names, values) = unchanged(item)
            actions.append({"Delete": {"Key": {"pk": pk, "sk": item["sk"]}, "ConditionExpression": condition,
                                       "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}})
        actions += [{"Delete": {"Key": element_key(db, self.key, position)}} for position in self.drops]
        return actions

    def compact_state(self) -> tuple[State, Change]:
        """The plan as a collection change: for a compact (or new) list, written whole in its head."""
        members = dict(self.head.members) if self.head and self.head.compact else {}
        puts = [{"sk": {"B": element_sk(position)}, "v": {"B": value}} for position, value in self.puts.items()]
        deletes = [item["sk"]["B"] for item in self.deletes] + [element_sk(position) for position in self.drops]
        return (State(self.key, "list", self.head, self.stale, members),
                Change(puts=puts, deletes=deletes, head_set={"l": number(self.l), "r": number(self.r)}))

    def new_head(self, db: Database) -> Item | None:
        if self.l == self.r:
            return None
        expiry = {name: self.head.item[name] for name in ("x", "tx") if self.head and name in self.head.item}
        return {**db.head_key(self.key), "t": {"S": "list"}, "g": {"B": self.generation},
                "sz": number(self.r - self.l), "l": number(self.l), "r": number(self.r), **expiry}


def compact_plan(db: Database, plan: Plan) -> tuple[State, tuple[Item | None, str, dict]] | None:
    """The compact write of a plan (collection.compact_write): its state and (head, condition, values);
    None when the list is promoted or a new one does not fit. A compact list that outgrows the limits
    is promoted, and TransactionConditionFailed raised so that the caller reads it again."""
    state, change = plan.compact_state()
    if not collection.writes_compact(db, state):
        return None
    try:
        planned = collection.compact_write(db, state, change)
    except collection.Promoted:
        remember(db, plan.key, None)
        raise TransactionConditionFailed([False], [None]) from None
    return None if planned is None else (state, planned)


def commit(db: Database, *plans: Plan) -> None:
    """A compact list alone: 1 conditional PutItem of its head (1 WCU per KB of it), exactly-once under
    lost replies. Else one TransactWriteItems of the plans (2 WCU per KB of each item in it). Raises
    TransactionConditionFailed (after caching the heads it returns) when a condition fails."""
    compact = [compact_plan(db, plan) for plan in plans]
    if len(plans) == 1 and compact[0] is not None:
        state, planned = compact[0]
        try:
            remember(db, plans[0].key, collection.put_compact(db, state, *planned))
        except ConditionFailed as failed:
            remember(db, plans[0].key, failed.item)
            raise TransactionConditionFailed([True], [failed.item]) from None
        except TransactionConditionFailed as failed:
            remember(db, plans[0].key, failed.items[0])
            raise
        return
    actions, offsets = [], []
    for plan, planned in zip(plans, compact):
        offsets.append(len(actions))
        if planned is None:
            actions += plan.actions(db)
            continue
        actions.append(collection.compact_action(db, plan.key, *planned[1]))
    try:
        db.gateway.transact_write(actions)
    except TransactionConditionFailed as failed:
        for plan, offset in zip(plans, offsets):
            if failed.failed[offset]:
                remember(db, plan.key, failed.items[offset])
        raise
    for plan, planned in zip(plans, compact):
        if plan.stale is not None:
            db.discard(plan.stale)
        remember(db, plan.key, plan.new_head(db) if planned is None else planned[1][0])
        if (planned is None and plan.head is not None and plan.l == plan.r
                and plan.head.size > len(plan.deletes) + len(plan.drops)):
            db.discard(plan.head.item)  # emptied in one head delete: the elements are unreachable now


def refused(failed: TransactionConditionFailed) -> Item | None:
    """What to plan from after a refusal: the head the refusal returned (the first action's), else
    UNKNOWN (read it)."""
    return failed.items[0] if failed.failed[0] else UNKNOWN


def sweep(db: Database, key: bytes, generation: bytes, positions: list[int], left: bool) -> None:
    """Delete elements left outside the bounds on the left (or right) side, 99 a transaction, each
    with a ConditionCheck that the head still has them outside (a push may have reused them; then
    the rest stays, harmless, until the key is deleted)."""
    g = {"B": generation}
    for start in range(0, len(positions), STEP):
        part = positions[start:start + STEP]
        outside = "l > :edge" if left else "r <= :edge"
        check = {"ConditionCheck": {"Key": db.head_key(key),
                                    "ConditionExpression": f"attribute_not_exists(g) OR g <> :g OR {outside}",
                                    "ExpressionAttributeValues": {":g": g, ":edge": number(max(part) if left else min(part))}}}
        deletes = [{"Delete": {"Key": element_key(db, key, position), "ConditionExpression": "attribute_not_exists(g) OR g = :g",
                               "ExpressionAttributeValues": {":g": g}}} for position in part]
        try:
            db.gateway.transact_write([check] + deletes)
        except TransactionConditionFailed:
            return


def read_head(db: Database, key: bytes) -> Item | None:
    item = db.gateway.get(db.head_key(key))
    remember(db, key, item)
    return item


def read_head_and_elements(db: Database, key: bytes, positions: list[int]) -> tuple[Item | None, dict[int, Item]]:
    """The head and the elements at ``positions`` (guessed from the cached head), in one BatchGetItem."""
    found = db.gateway.batch_get([db.head_key(key)] + [element_key(db, key, position) for position in positions])
    item = next((found_item for found_item in found if found_item["sk"]["B"] == HEAD), None)
    remember(db, key, item)
    return item, {position_of(found_item): found_item for found_item in found if found_item["sk"]["B"] != HEAD}


# -- push and pop ---------------------------------------------------------------------------------
def push(db: Database, key: bytes, values: list[bytes], left: bool, only_existing: bool = False) -> int:
    """Push up to 99 values in one transaction (more: 99 a transaction, each atomic, the whole not).
    Cost: 1 TransactWriteItems with a current cached head, else 1 GetItem more (2 WCU per KB of the
    head and of each element)."""
    for value in values:
        check_value(value)
    length = 0
    for start in range(0, len(values), STEP):
        length = push_some(db, key, values[start:start + STEP], left, only_existing)
        if not length:
            return 0
    return length


def push_some(db: Database, key: bytes, values: list[bytes], left: bool, only_existing: bool) -> int:
    known, fresh = cached(db, key), False
    for _ in attempts():
        if known is UNKNOWN or (only_existing and not fresh):
            known, fresh = read_head(db, key), True
        head, stale = decode(db, known)
        if head is None and only_existing:
            if fresh:
                return 0
            known = UNKNOWN
            continue
        l, r = bounds(head) if head else (0, 0)
        if left:
            plan = Plan(key, head, stale, l - len(values), r, puts={l - 1 - i: value for i, value in enumerate(values)})
        else:
            plan = Plan(key, head, stale, l, r + len(values), puts={r + i: value for i, value in enumerate(values)})
        plan.condition, plan.values = "l = :l AND r = :r", {":l": number(l), ":r": number(r)}
        try:
            commit(db, plan)
            return plan.r - plan.l
        except TransactionConditionFailed as failed:
            known, fresh = refused(failed), True


def end_positions(l: int, r: int, left: bool, count: int) -> list[int]:
    """The positions of the first (or last) ``count`` elements, in popping order."""
    return list(range(l, l + count)) if left else list(range(r - 1, r - 1 - count, -1))


def elements(db: Database, key: bytes, head: Head, positions: list[int], have: dict[int, Item]) -> list[Item] | None:
    """The live items at ``positions`` (reading those not in ``have``); None if one is missing
    (the list changed since its head was read). A compact list's are in its head."""
    if head.compact:
        items = [head.members.get(element_sk(position)) for position in positions]
        return None if None in items else items  # type: ignore[return-value]
    missing = [position for position in positions if position not in have]
    if missing:
        found = db.gateway.batch_get([element_key(db, key, position) for position in missing])
        have = {**have, **{position_of(item): item for item in found}}
    items = [have.get(position) for position in positions]
    if any(item is None or item["g"]["B"] != head.generation for item in items):
        return None
    return items  # type: ignore[return-value]


def pop(db: Database, key: bytes, left: bool, count: int) -> list[bytes] | None:
    """Pop up to ``count`` elements; None when the key does not exist. Compact: 1 conditional PutItem
    with a current cached head (else 1 GetItem more). Else, cost (up to 99 elements):
    1 BatchGetItem of the head and the elements at the cached end + 1 TransactWriteItems; 1 request
    more without a current cached head. More than 99: GetItem + Query + TransactWriteItems, then
    the popped items are deleted 99 a transaction."""
    known = cached(db, key)
    for _ in attempts():
        have: dict[int, Item] = {}
        if known is UNKNOWN:
            item = read_head(db, key)
        elif (guess := decode(db, known)[0]) is not None and guess.compact:
            item = known  # a compact list's cached head holds its elements; the write's condition checks it
        else:
            guessed = end_positions(*bounds(guess), left, min(count, guess.size)) if guess else []
            guessed = guessed if len(guessed) <= STEP else []  # more: pop_many Queries them
            item, have = read_head_and_elements(db, key, guessed)
        head, _ = decode(db, item)
        if head is None:
            return None
        if count == 0:
            return []
        taken = min(count, head.size)
        if taken > STEP and not head.compact:
            result = pop_many(db, key, head, left, taken)
            if result is not None:
                return result
            known = UNKNOWN
            continue
        l, r = bounds(head)
        positions = end_positions(l, r, left, taken)
        items = elements(db, key, head, positions, have)
        if items is None:
            known = UNKNOWN
            continue
        plan = Plan(key, head, None, l + taken if left else l, r if left else r - taken, deletes=items)
        final = taken == head.size
        plan.condition = ("l = :l" if left else "r = :r") + ("" if final else " AND sz > :n")
        plan.values = {":l": number(l)} if left else {":r": number(r)}
        if not final:
            plan.values[":n"] = number(taken)
        try:
            commit(db, plan)
            return [item["v"]["B"] for item in items]
        except TransactionConditionFailed as failed:
            known = refused(failed)


def pop_many(db: Database, key: bytes, head: Head, left: bool, taken: int) -> list[bytes] | None:
    """Pop more elements than a transaction holds: Query them, then move the bound in one
    transaction conditional on the head's version (nothing changed since the Query), then delete
    them. None if the list changed meanwhile."""
    l, r = bounds(head)
    low, high = (l, l + taken - 1) if left else (r - taken, r - 1)
    items = list(collection.members(db, key, head, element_sk(low), element_sk(high), forward=left))
    if len(items) != taken:
        return None
    plan = Plan(key, head, None, l + taken if left else l, r if left else r - taken,
                condition="w = :seen", values={":seen": head.item["w"]})
    try:
        commit(db, plan)
    except TransactionConditionFailed:
        return None
    if plan.l != plan.r:
        sweep(db, key, head.generation, [position_of(item) for item in items], left)
    return [item["v"]["B"] for item in items]


# -- reading the whole list and rewriting it ------------------------------------------------------
def load(db: Database, key: bytes) -> Head | None:
    """The live list head (1 GetItem), cached."""
    head, _ = decode(db, read_head(db, key))
    return head


def read_all(db: Database, key: bytes) -> tuple[Head | None, list[Item]]:
    """The head and every element, in order: 1 GetItem + Query pages (reread if the list changed
    between the two)."""
    for _ in attempts():
        head = load(db, key)
        if head is None:
            return None, []
        l, r = bounds(head)
        items = list(collection.members(db, key, head, element_sk(l), element_sk(r - 1)))
        if len(items) == head.size:
            return head, items


def far_base(l: int, n: int) -> int:
    """Where a rewritten list of ``n`` elements starts: at least 2**40 positions away from any
    position a push onto the current list can reach soon, on the other side of 0 (so positions
    stay far within 64 bits), at a random place (so concurrent rewrites do not meet)."""
    gap = random.randrange(2**40, 2**60)
    return -gap - n if l >= 0 else gap


def rewrite(db: Database, key: bytes, head: Head, items: list[Item], new: list[bytes]) -> bool:
    """Replace the elements ``items`` (all of them, as read with ``head``) by ``new``; False if the
    list changed since it was read (nothing is then changed). Keeping ``l`` or keeping ``r``, whichever
    writes fewer items: when that fits one transaction (99 items), one TransactWriteItems conditional on
    the head's version; else the new elements are written under a new generation at fresh positions
    (BatchWriteItem), the head switched to them (1 conditional PutItem) and the old elements deleted
    (Query + BatchWriteItem)."""
    l, r = bounds(head)
    old = {position_of(item): item["v"]["B"] for item in items}
    layouts = []
    for start in (l, r - len(new)):
        puts = {start + i: value for i, value in enumerate(new) if old.get(start + i) != value}
        drops = [position for position in old if not start <= position < start + len(new)]
        layouts.append((len(puts) + len(drops), start, puts, drops))
    size, start, puts, drops = min(layouts, key=lambda layout: layout[0])
    if size <= STEP or not new or head.compact:
        plan = Plan(key, head, None, start, start + len(new), condition="w = :seen", values={":seen": head.item["w"]},
                    puts=puts, drops=drops if size <= STEP or head.compact else [])
        try:
            commit(db, plan)
            return True
        except TransactionConditionFailed:
            return False
    generation, base = {"B": os.urandom(8)}, far_base(l, len(new))
    pk = {"B": db.pk(key)}
    staged = [{"pk": pk, "sk": {"B": element_sk(base + i)}, "g": generation, "v": {"B": value}}
              for i, value in enumerate(new)]
    db.gateway.batch_write(puts=staged)
    switched = {**head.item, "g": generation, "l": number(base), "r": number(base + len(new)),
                "sz": number(len(new)), "w": collection.new_version()}
    try:
        db.gateway.put(switched, f"t = :t AND g = :g AND w = :seen AND {LIVE}",
                       {":t": {"S": "list"}, ":g": {"B": head.generation}, ":seen": head.item["w"], **db.now()})
    except ConditionFailed:
        db.gateway.batch_write(deletes=[{"pk": pk, "sk": item["sk"]} for item in staged])
        return False
    remember(db, key, switched)
    db.discard(head.item)
    return True


# -- commands -------------------------------------------------------------------------------------
@command("lpush", -3)
def lpush(db: Database, args: list[bytes]) -> int:
    """LPUSH key element [element ...]. Cost: 1 TransactWriteItems with a current cached head (else
    +1 GetItem); more than 99 elements take a transaction per 99 (see :func:`push`)."""
    return push(db, args[0], args[1:], left=True)


@command("rpush", -3)
def rpush(db: Database, args: list[bytes]) -> int:
    """RPUSH key element [element ...]. Cost: as LPUSH."""
    return push(db, args[0], args[1:], left=False)


@command("lpushx", -3)
def lpushx(db: Database, args: list[bytes]) -> int:
    """LPUSHX key element [element ...]. Cost: 1 GetItem (the key must be seen to exist) + 1
    TransactWriteItems when it does."""
    return push(db, args[0], args[1:], left=True, only_existing=True)


@command("rpushx", -3)
def rpushx(db: Database, args: list[bytes]) -> int:
    """RPUSHX key element [element ...]. Cost: as LPUSHX."""
    return push(db, args[0], args[1:], left=False, only_existing=True)


def pop_command(db: Database, args: list[bytes], left: bool) -> bytes | list[bytes] | None:
    if len(args) > 2:
        raise ReplyError(f"ERR wrong number of arguments for '{'lpop' if left else 'rpop'}' command")
    if len(args) == 1:
        popped = pop(db, args[0], left, 1)
        return popped[0] if popped else None
    count = int_or_none(args[1])
    if count is None or count < 0:
        raise ReplyError(NOT_POSITIVE)
    return pop(db, args[0], left, count)


def int_or_none(value: bytes) -> int | None:
    """An integer argument, or None when it is not one (for errors Redis reports later or otherwise)."""
    try:
        return parse_int(value)
    except ReplyError:
        return None


@command("lpop", -2)
def lpop(db: Database, args: list[bytes]) -> bytes | list[bytes] | None:
    """LPOP key [count]. Cost: 1 BatchGetItem (head + elements at the cached end) + 1
    TransactWriteItems; +1 GetItem without a current cached head; see :func:`pop` for count > 99."""
    return pop_command(db, args, left=True)


@command("rpop", -2)
def rpop(db: Database, args: list[bytes]) -> bytes | list[bytes] | None:
    """RPOP key [count]. Cost: as LPOP."""
    return pop_command(db, args, left=False)


@command("llen", 2)
def llen(db: Database, args: list[bytes]) -> int:
    """LLEN key. Cost: 1 GetItem (the head's ``sz``)."""
    head = load(db, args[0])
    return head.size if head else 0


@command("lindex", 3)
def lindex(db: Database, args: list[bytes]) -> bytes | None:
    """LINDEX key index. Cost: 1 BatchGetItem (head + element at the cached bounds) with a current
    cached head, else 1 GetItem of the head + 1 GetItem of the element."""
    key = args[0]
    index = int_or_none(args[1])
    known = cached(db, key)
    for _ in attempts():
        have: dict[int, Item] = {}
        if known is UNKNOWN or index is None:
            item = read_head(db, key)
        else:
            guess, _ = decode(db, known)
            positions = []
            if guess:
                l, r = bounds(guess)
                position = l + index if index >= 0 else r + index
                positions = [position] if l <= position < r else []
            item, have = read_head_and_elements(db, key, positions)
        head, _ = decode(db, item)
        if head is None:
            return None
        if index is None:
            raise ReplyError(NOT_INTEGER)
        l, r = bounds(head)
        position = l + index if index >= 0 else r + index
        if not l <= position < r:
            return None
        items = elements(db, key, head, [position], have)
        if items is not None:
            return items[0]["v"]["B"]
        known = UNKNOWN


@command("lset", 4)
def lset(db: Database, args: list[bytes]) -> SimpleString:
    """LSET key index element. Cost: 1 TransactWriteItems (head + element) with a current cached
    head, else +1 GetItem."""
    key, value, index = args[0], check_value(args[2]), int_or_none(args[1])
    known, fresh = cached(db, key), False
    for _ in attempts():
        if known is UNKNOWN or (index is None and not fresh):
            known, fresh = read_head(db, key), True
        head, _ = decode(db, known)
        if head is None and not fresh:
            known = UNKNOWN
            continue
        if head is None:
            raise ReplyError("ERR no such key")
        if index is None:
            raise ReplyError(NOT_INTEGER)
        l, r = bounds(head)
        position = l + index if index >= 0 else r + index
        if not l <= position < r:
            if not fresh:
                known = UNKNOWN
                continue
            raise ReplyError("ERR index out of range")
        plan = Plan(key, head, None, l, r, condition="l = :l AND r = :r", values={":l": number(l), ":r": number(r)},
                    puts={position: value})
        try:
            commit(db, plan)
            return OK
        except TransactionConditionFailed as failed:
            known, fresh = refused(failed), True


def redis_range(start: int, stop: int, size: int) -> tuple[int, int] | None:
    """Redis's LRANGE indexes: negative from the end, clamped; None for an empty range."""
    if start < 0:
        start = max(size + start, 0)
    if stop < 0:
        stop = size + stop
    if start > stop or start >= size:
        return None
    return start, min(stop, size - 1)


@command("lrange", 4)
def lrange(db: Database, args: list[bytes]) -> list[bytes]:
    """LRANGE key start stop. Cost: 1 GetItem + a Query of just the slice (1 RCU per 4 KB)."""
    start, stop = parse_int(args[1]), parse_int(args[2])
    for _ in attempts():
        head = load(db, args[0])
        if head is None:
            return []
        span = redis_range(start, stop, head.size)
        if span is None:
            return []
        l, _ = bounds(head)
        items = list(collection.members(db, args[0], head, element_sk(l + span[0]), element_sk(l + span[1])))
        if len(items) == span[1] - span[0] + 1:
            return [item["v"]["B"] for item in items]


@command("ltrim", 4)
def ltrim(db: Database, args: list[bytes]) -> SimpleString:
    """LTRIM key start stop. Cost: 1 TransactWriteItems moving the bounds and deleting up to 98
    trimmed elements (+1 GetItem without a current cached head); more trimmed elements are deleted
    afterwards, 99 a transaction (or, when nothing is kept, by a Query and BatchWriteItem)."""
    key = args[0]
    start, stop = parse_int(args[1]), parse_int(args[2])
    known, fresh = cached(db, key), False
    for _ in attempts():
        if known is UNKNOWN:
            known, fresh = read_head(db, key), True
        head, _ = decode(db, known)
        if head is None:
            if fresh:
                return OK
            known = UNKNOWN
            continue
        l, r = bounds(head)
        span = redis_range(start, stop, head.size)
        nl, nr = (l + span[0], l + span[1] + 1) if span else (l, l)
        if (nl, nr) == (l, r):
            if fresh:
                return OK
            known = UNKNOWN
            continue
        trimmed = list(range(l, nl)) + list(range(nr, r))
        step = len(trimmed) if head.compact else STEP  # a compact list's elements go with its head
        drops, rest = trimmed[:step], set(trimmed[step:])
        plan = Plan(key, head, None, nl, nr, condition="l = :l AND r = :r", values={":l": number(l), ":r": number(r)},
                    drops=drops)
        try:
            commit(db, plan)
        except TransactionConditionFailed as failed:
            known, fresh = refused(failed), True
            continue
        if nl != nr:
            sweep(db, key, head.generation, [p for p in range(l, nl) if p in rest], left=True)
            sweep(db, key, head.generation, [p for p in range(nr, r) if p in rest], left=False)
        return OK


@command("lrem", 4)
def lrem(db: Database, args: list[bytes]) -> int:
    """LREM key count element. Cost: 1 GetItem + Query of the whole list, then (when something is
    removed) see :func:`rewrite`: one transaction when at most 99 items change."""
    count, element = parse_int(args[1]), args[2]
    for _ in attempts():
        head, items = read_all(db, args[0])
        if head is None:
            return 0
        values = [item["v"]["B"] for item in items]
        order = range(len(values)) if count >= 0 else range(len(values) - 1, -1, -1)
        removed: set[int] = set()
        for index in order:
            if values[index] == element:
                removed.add(index)
                if len(removed) == abs(count):
                    break
        if not removed:
            return 0
        if rewrite(db, args[0], head, items, [value for index, value in enumerate(values) if index not in removed]):
            return len(removed)


@command("linsert", 5)
def linsert(db: Database, args: list[bytes]) -> int:
    """LINSERT key BEFORE|AFTER pivot element. Cost: 1 GetItem + Query of the whole list, then see
    :func:`rewrite` (the shorter side moves: one transaction when at most 98 elements move)."""
    where = c_string(args[1]).upper()
    if where not in (b"BEFORE", b"AFTER"):
        raise ReplyError(SYNTAX_ERROR)
    pivot, element = args[2], check_value(args[3])
    for _ in attempts():
        head, items = read_all(db, args[0])
        if head is None:
            return 0
        values = [item["v"]["B"] for item in items]
        if pivot not in values:
            return -1
        at = values.index(pivot) + (where == b"AFTER")
        new = values[:at] + [element] + values[at:]
        if rewrite(db, args[0], head, items, new):
            return len(new)


def int64(value: int) -> int:
    """``value`` wrapped to a signed 64-bit integer, as C arithmetic does."""
    return (value + 2**63) % 2**64 - 2**63


@command("lpos", -3)
def lpos(db: Database, args: list[bytes]) -> int | list[int] | None:
    """LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]. Cost: 1 GetItem + Query pages
    from the chosen end until enough matches (at most MAXLEN elements)."""
    element, rank, count, maxlen = args[1], 1, None, 0
    words = options(args, 2)
    for index in range(2, len(args), 2):
        if index + 1 >= len(args):
            raise ReplyError(SYNTAX_ERROR)
        option, value = words[index - 2], args[index + 1]
        if option == b"RANK":
            rank = parse_int(value)
            if rank == 0:
                raise ReplyError("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... "
                                 "or use negative to start from the end of the list")
        elif option in (b"COUNT", b"MAXLEN"):
            limit = int_or_none(value)
            if limit is None or limit < 0:
                raise ReplyError(f"ERR {option.decode()} can't be negative")
            if option == b"COUNT":
                count = limit
            else:
                maxlen = limit
        else:
            raise ReplyError(SYNTAX_ERROR)
    head = load(db, args[0])
    if head is None:
        return [] if count is not None else None
    forward = rank > 0
    if rank < 0:
        rank = int64(-rank)  # Redis 7.0 negates in C: RANK -2**63 stays negative, so every match counts
    l, r = bounds(head)
    low, high = (l, min(r, l + maxlen) if maxlen else r) if forward else ((max(l, r - maxlen) if maxlen else l), r)
    found, matches = [], 0
    if low < high:
        for item in collection.members(db, args[0], head, element_sk(low), element_sk(high - 1), forward=forward):
            if item["v"]["B"] != element:
                continue
            matches += 1
            if matches >= rank:
                found.append(position_of(item) - l)
                if count is None or (count and int64(matches - rank + 1) >= count):
                    break
    if count is not None:
        return found
    return found[0] if found else None


# -- moving between lists -------------------------------------------------------------------------
def side(word: bytes) -> bool:
    """LEFT -> True, RIGHT -> False (a syntax error otherwise)."""
    word = c_string(word).upper()
    if word not in (b"LEFT", b"RIGHT"):
        raise ReplyError(SYNTAX_ERROR)
    return word == b"LEFT"


def move(db: Database, source: bytes, destination: bytes, left_from: bool, left_to: bool) -> bytes | None:
    """Pop from ``source`` and push onto ``destination`` in one transaction over both heads and both
    elements. Cost: 1 BatchGetItem (both heads and the element at the source's cached end) + 1
    TransactWriteItems; +1 GetItem of the element without a current cached source head."""
    known = cached(db, source)
    for _ in attempts():
        guess, _ = decode(db, known) if known is not UNKNOWN else (None, None)
        keys = [db.head_key(source)]
        if destination != source:
            keys.append(db.head_key(destination))
        if guess:
            keys.append(element_key(db, source, end_positions(*bounds(guess), left_from, 1)[0]))
        found = db.gateway.batch_get(keys)
        by_key = {(item["pk"]["B"], item["sk"]["B"]): item for item in found}
        source_item = by_key.get((db.pk(source), HEAD))
        remember(db, source, source_item)
        head, _ = decode(db, source_item)
        if head is None:
            return None
        target_item = by_key.get((db.pk(destination), HEAD))
        target, stale = decode(db, target_item) if destination != source else (head, None)
        if destination != source:
            remember(db, destination, target_item)
        l, r = bounds(head)
        position = end_positions(l, r, left_from, 1)[0]
        have = {position_of(item): item for item in found if item["sk"]["B"] != HEAD}
        items = elements(db, source, head, [position], have)
        if items is None:
            known = UNKNOWN
            continue
        value = items[0]["v"]["B"]
        exact = {":l": number(l), ":r": number(r)}
        if destination == source:
            if left_from == left_to:
                plans = [Plan(source, head, None, l, r, condition="l = :l AND r = :r", values=exact)]
            else:
                shift = 1 if left_from else -1
                to = r if left_from else l - 1
                plans = [Plan(source, head, None, l + shift, r + shift, condition="l = :l AND r = :r", values=exact,
                              puts={to: value}, deletes=items)]
        else:
            final = head.size == 1
            popped = Plan(source, head, None, l + 1 if left_from else l, r if left_from else r - 1, deletes=items,
                          condition=("l = :l" if left_from else "r = :r") + ("" if final else " AND sz > :n"),
                          values={":l": number(l)} if left_from else {":r": number(r)})
            if not final:
                popped.values[":n"] = number(1)
            tl, tr = bounds(target) if target else (0, 0)
            pushed = Plan(destination, target, stale, tl - 1 if left_to else tl, tr if left_to else tr + 1,
                          puts={tl - 1 if left_to else tr: value},
                          condition="l = :l" if left_to else "r = :r",
                          values={":l": number(tl)} if left_to else {":r": number(tr)})
            plans = [popped, pushed]
        try:
            commit(db, *plans)
            return value
        except TransactionConditionFailed as failed:
            known = refused(failed)


@command("lmove", 5)
def lmove(db: Database, args: list[bytes]) -> bytes | None:
    """LMOVE source destination LEFT|RIGHT LEFT|RIGHT. Cost: see :func:`move` (2 requests with a
    current cached source head)."""
    return move(db, args[0], args[1], side(args[2]), side(args[3]))


@command("rpoplpush", 3)
def rpoplpush(db: Database, args: list[bytes]) -> bytes | None:
    """RPOPLPUSH source destination. Cost: as LMOVE."""
    return move(db, args[0], args[1], False, True)


# -- blocking commands ----------------------------------------------------------------------------
def parse_timeout(value: bytes) -> float | None:
    """A blocking timeout in seconds as Redis 7.0 reads it (a long double, times 1000, cast to an
    integer of milliseconds: out of range casts to the most negative): seconds, None for 0 (forever)."""
    try:
        seconds = parse_long_double(value)
    except ReplyError:
        raise ReplyError("ERR timeout is not a float or out of range") from None
    scaled = round_long_double(seconds * 1000) if not isinstance(seconds, float) else seconds
    milliseconds = int(scaled) if not isinstance(scaled, float) else INT64_MIN
    if not INT64_MIN <= milliseconds <= INT64_MAX or milliseconds < 0:
        raise ReplyError("ERR timeout is negative")
    return milliseconds / 1000 if milliseconds else None


def block(timeout: float | None, attempt: Callable[[], Any]) -> Any:
    """Poll ``attempt`` until it returns a reply or the timeout passes (None: forever), sleeping
    POLL_FIRST seconds, doubling up to POLL_MAX: an element pushed while a client waits is seen
    within 200 ms (plus the requests), not at once as in Redis. Each poll costs what one attempt does."""
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = POLL_FIRST
    while True:
        reply = attempt()
        if reply is not None:
            return reply
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            return None
        time.sleep(delay if deadline is None else min(delay, deadline - now))
        delay = min(delay * 2, POLL_MAX)


def pop_first(db: Database, keys: list[bytes], left: bool, count: int | None = None) -> list | None:
    """[key, element] (with a ``count``: [key, [elements]]) from the first key (in order) holding a
    list; WRONGTYPE from a key of another type met before it. Cost: 1 BatchGetItem of the heads (one
    key: none), then a pop."""
    if len(keys) > 1:
        found = {db.key_of(item): item for item in db.gateway.batch_get([db.head_key(key) for key in dict.fromkeys(keys)])}
        keys = [next((key for key in keys if decode(db, found.get(key))[0] is not None), None)]
    popped = pop(db, keys[0], left, count or 1) if keys[0] is not None else None
    if not popped:
        return None
    return [keys[0], popped] if count else [keys[0], popped[0]]


@command("blpop", -3)
def blpop(db: Database, args: list[bytes]) -> list[bytes] | None:
    """BLPOP key [key ...] timeout: polls (see :func:`block`). Cost of a poll: 1 request for one
    key (the head read of LPOP), 1 BatchGetItem of the heads for several; then LPOP's."""
    timeout = parse_timeout(args[-1])
    return block(timeout, lambda: pop_first(db, args[:-1], left=True))


@command("brpop", -3)
def brpop(db: Database, args: list[bytes]) -> list[bytes] | None:
    """BRPOP key [key ...] timeout: as BLPOP, from the right."""
    timeout = parse_timeout(args[-1])
    return block(timeout, lambda: pop_first(db, args[:-1], left=False))


@command("blmove", 6)
def blmove(db: Database, args: list[bytes]) -> bytes | None:
    """BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout: polls LMOVE (1 BatchGetItem a poll
    while the source is empty)."""
    left_from, left_to = side(args[2]), side(args[3])
    timeout = parse_timeout(args[4])
    return block(timeout, lambda: move(db, args[0], args[1], left_from, left_to))


@command("brpoplpush", 4)
def brpoplpush(db: Database, args: list[bytes]) -> bytes | None:
    """BRPOPLPUSH source destination timeout: as BLMOVE source destination RIGHT LEFT."""
    timeout = parse_timeout(args[2])
    return block(timeout, lambda: move(db, args[0], args[1], False, True))



def mpop_arguments(args: list[bytes], ends: tuple[bytes, bytes]) -> tuple[list[bytes], bool, int]:
    """``numkeys key [key ...] END [COUNT count]`` as Redis 7.0 parses LMPOP's and ZMPOP's arguments
    (``ends``: LEFT/RIGHT or MIN/MAX): (keys, whether END is the first of ``ends``, count)."""
    numkeys = int_or_none(args[0])
    if numkeys is None or numkeys < 1:
        raise ReplyError("ERR numkeys should be greater than 0")
    if numkeys + 1 >= len(args) or c_string(args[numkeys + 1]).upper() not in ends:
        raise ReplyError(SYNTAX_ERROR)
    count, j = None, numkeys + 2
    while j < len(args):
        if count is not None or c_string(args[j]).upper() != b"COUNT" or j + 1 == len(args):
            raise ReplyError(SYNTAX_ERROR)
        count = int_or_none(args[j + 1])
        if count is None or count < 1:
            raise ReplyError("ERR count should be greater than 0")
        j += 2
    return args[1:numkeys + 1], c_string(args[numkeys + 1]).upper() == ends[0], count or 1


@command("lmpop", -4)
def lmpop(db: Database, args: list[bytes]) -> list | None:
    """LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]: [key, [elements]] from the first
    non-empty list. Cost: one key, as LPOP with a count; several, 1 BatchGetItem of the heads more."""
    keys, left, count = mpop_arguments(args, (b"LEFT", b"RIGHT"))
    return pop_first(db, keys, left, count)


@command("blmpop", -5)
def blmpop(db: Database, args: list[bytes]) -> list | None:
    """BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]: polls LMPOP (see
    :func:`block`; a poll of an empty list costs 1 request: the head read, or a BatchGetItem of the
    heads of several keys)."""
    keys, left, count = mpop_arguments(args[1:], (b"LEFT", b"RIGHT"))
    timeout = parse_timeout(args[0])
    return block(timeout, lambda: pop_first(db, keys, left, count))
