"""Collections (hash, set, sorted set, list, stream): a head item plus one item per member, or, for a
small hash, set, sorted set or stream, the compact encoding (compact.py): the members in the head.

The head (``sk = HEAD``) holds the type ``t``, the generation ``g`` (8 random bytes, new each time
the key is created), the member count ``sz``, the version ``w`` (new random bytes on every write, for
WATCH), the expiry ``x``/``tx`` and type-specific attributes. A member item has
``sk = kind byte + member key`` and carries the generation ``g`` it was written under: it belongs to
the key only while that equals the live head's ``g``. So a key re-created after it expired (or after a
DEL that crashed half-way) never sees the old incarnation's members, and only the head carries the
expiry, so EXPIRE is one request however large the collection is.

Every write is a read (1 BatchGetItem of the head and the members it touches) followed by one
TransactWriteItems that applies the member changes and the head's count together, each member
conditioned on the state that was read; if another writer got in between, the whole thing is read and
planned again. Counts (HLEN, SCARD, ...) are therefore exact, and a collection that becomes empty is
deleted in the same transaction, as in Redis. A compact collection is read whole with its head (1 GetItem)
and written as one conditional PutItem of it; it is promoted to member items once it passes the limits.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Iterable, Iterator, TypeVar

from . import compact, oplog
from .gateway import TRANSACTION_LIMIT, ConditionFailed, Item, TransactionConditionFailed
from .protocol import WRONGTYPE, ReplyError
from .storage import ABSENT_OR_EXPIRED, HEAD, LIVE, Database

MEMBER_LIMIT = 1000  # bytes of a member kept as they are in the sort key (DynamoDB allows 1024)
VALUE_LIMIT = 350_000  # bytes of a member's value (hash value, list element, stream entry)
FAST_MEMBERS = 20  # members one single-request write may name (DynamoDB caps an expression at 4 KB)
HINT_PAUSE = 8  # reads and writes of a key without its hint after a write planned from it was refused
Result = TypeVar("Result")


def member_sk(kind: bytes, member: bytes) -> bytes:
    """The sort key of a member: ``kind + member``, or for a member over MEMBER_LIMIT bytes its
    first MEMBER_LIMIT bytes and 8 bytes of its SHA-256 (the whole member is then in ``mb``)."""
    if len(member) <= MEMBER_LIMIT:
        return kind + member
    return kind + member[:MEMBER_LIMIT] + hashlib.sha256(member).digest()[:8]


def member_attributes(kind: bytes, member: bytes) -> Item:
    """``sk`` and, for a long member, ``mb``: the start of a member item."""
    item: Item = {"sk": {"B": member_sk(kind, member)}}
    if len(member) > MEMBER_LIMIT:
        item["mb"] = {"B": member}
    return item


def member_of(item: Item) -> bytes:
    """The member an item stores (its sort key without the kind byte, or ``mb``)."""
    return item["mb"]["B"] if "mb" in item else item["sk"]["B"][1:]


def kind_range(kind: bytes) -> tuple[bytes, bytes]:
    """The lowest and highest sort key of members of one kind (for :func:`members`)."""
    return kind, kind + b"\xff" * 1023


def check_value(value: bytes) -> bytes:
    if len(value) > VALUE_LIMIT:
        raise ReplyError(f"ERR value exceeds the {VALUE_LIMIT} bytes a collection member can hold in Redimo")
    return value


@dataclass
class Head:
    """The live head of a collection, decoded."""

    type: str
    generation: bytes
    size: int
    expire_at: int | None
    item: Item

    def number(self, name: str, default: int = 0) -> int:
        return int(self.item[name]["N"]) if name in self.item else default

    @property
    def compact(self) -> bool:
        return compact.is_compact(self.item)

    @cached_property
    def members(self) -> dict[bytes, Item]:
        """A compact collection's member items, by sort key."""
        return compact.unpack(self.item)


@dataclass
class State:
    """What a write planned from: the live head (or None), a head that is present but expired or of
    another type being replaced (``stale``), and the live members read, by sort key."""

    key: bytes
    type: str
    head: Head | None
    stale: Item | None
    members: dict[bytes, Item]
    read: set[bytes] = field(default_factory=set)  # sort keys whose state was read (and is asserted)

    @property
    def size(self) -> int:
        return self.head.size if self.head else 0


@dataclass
class Change:
    """A collection write. ``puts`` are member items (``sk`` and attributes; ``pk`` and ``g`` are
    added); ``deletes`` are sort keys of live members in ``State.members``. A put of a member in
    ``State.members`` replaces it (the count stays), any other put adds one (and asserts the member
    was absent); a delete removes one. Every replaced or deleted member is asserted unchanged since
    it was read. ``head_set``/``head_remove`` change head attributes, ``condition``/``values`` add head
    conditions."""

    puts: list[Item] = field(default_factory=list)
    deletes: list[bytes] = field(default_factory=list)
    head_set: Item = field(default_factory=dict)
    head_remove: list[str] = field(default_factory=list)
    condition: str = ""
    values: dict = field(default_factory=dict)
    keep_empty: bool = False  # a stream keeps its head when it has no entries
    uncounted: set[bytes] = field(default_factory=set)  # sort keys whose put/delete leaves sz alone

    def __bool__(self) -> bool:
        return bool(self.puts or self.deletes or self.head_set or self.head_remove)


def head_of(db: Database, item: Item | None, type_: str, check_type: bool = True) -> tuple[Head | None, Item | None]:
    """Decode a head item: (live head of ``type_``, stale item). A live head of another type raises
    WRONGTYPE unless ``check_type`` is off (then it is returned as stale, to be replaced)."""
    record = db.record(item)
    if record is None:
        return None, item
    if record.type != type_:
        if check_type:
            raise ReplyError(WRONGTYPE)
        return None, item
    return Head(type_, item["g"]["B"], int(item["sz"]["N"]), record.expire_at, item), None


def seen(db: Database, key: bytes, item: Item | None, missed: bool = False) -> None:
    """Keep the head item just read or written as the key's hint (Database.heads) when it is a compact
    collection of up to compact.HINT_BYTES, else forget the key. A write planned from a hint asserts it
    (the version ``w``, which every write of the head renews), so a stale hint costs a refused write,
    never a wrong one; reads never answer from it. ``missed``: a write planned from the hint was
    refused (another client writes the key too), so the hint is not used again until the key has been
    seen HINT_PAUSE more times: under contention, writes read first (a read unit is cheaper than a
    refused write's unit)."""
    pk = db.pk(key)
    if compact.is_compact(item) and int(item.get(compact.SIZE, {}).get("N", "0")) <= compact.HINT_BYTES:
        previous = db.heads.get(pk)
        pause = HINT_PAUSE if missed else max(previous[1] - 1, 0) if isinstance(previous, tuple) else 0
        db.heads.put(pk, (item, pause))
    else:
        db.heads.discard(pk)


def hinted(db: Database, key: bytes, type_: str, sks: Iterable[bytes]) -> State | None:
    """The state of a compact collection of ``type_`` as this client last saw it (see :func:`seen`)."""
    hint = db.heads.get(db.pk(key))
    if not isinstance(hint, tuple) or hint[1] or hint[0].get("t", {}).get("S") != type_:
        return None
    return state_of(db, key, type_, hint[0], sks)


def load(db: Database, key: bytes, type_: str) -> Head | None:
    """The live head of a collection, WRONGTYPE for another type. Cost: 1 GetItem."""
    item = db.gateway.get(db.head_key(key))
    seen(db, key, item)
    return head_of(db, item, type_)[0]


def state_of(db: Database, key: bytes, type_: str, item: Item | None, sks: Iterable[bytes] = (),
             missed: bool = False) -> State | None:
    """The state of a key from a head item already in hand (a refused write returns it): None when the
    key is a promoted collection, whose members must still be read. ``missed``: see :func:`seen`."""
    seen(db, key, item, missed)
    head, stale = head_of(db, item, type_)
    if head is not None and not head.compact:
        if type_ in db.compact.types:
            db.promoted.put(db.pk(key))
        return None
    return State(key, type_, head, stale, dict(head.members) if head else {}, set(sks))


def read(db: Database, key: bytes, type_: str, sks: Iterable[bytes] = (), check_type: bool = True) -> State:
    """The head and the given members of a key (every member, for a compact collection). Cost: 1 GetItem
    without members, or of a compact collection; else one BatchGetItem for the head and up to 99 members
    (ceil((n+1)/100) requests in all), after 1 GetItem of the head when the key was not known to be
    promoted (see compact.Recent)."""
    sks = list(dict.fromkeys(sks))
    head_key = db.head_key(key)
    pk = head_key["pk"]["B"]
    if not sks or (type_ in db.compact.types and pk not in db.promoted):
        item = db.gateway.get(head_key)
        seen(db, key, item)
        head, stale = head_of(db, item, type_, check_type)
        if head is None or head.compact:
            return State(key, type_, head, stale, dict(head.members) if head else {}, set(sks))
        if type_ in db.compact.types:
            db.promoted.put(pk)
        found = get_members(db, key, head, sks)
    else:
        by_sk = {item["sk"]["B"]: item for item in db.gateway.batch_get(
            [head_key] + [{"pk": head_key["pk"], "sk": {"B": sk}} for sk in sks])}
        item = by_sk.pop(HEAD, None)
        seen(db, key, item)
        head, stale = head_of(db, item, type_, check_type)
        if head is not None and head.compact:
            db.promoted.discard(pk)
            return State(key, type_, head, stale, dict(head.members), set(sks))
        found = [item for item in by_sk.values() if head and item.get("g", {}).get("B") == head.generation]
    return State(key, type_, head, stale, {item["sk"]["B"]: item for item in found}, set(sks))


def members(db: Database, key: bytes, head: Head, low: bytes, high: bytes, *, forward: bool = True,
            limit: int | None = None, projection: str | None = None) -> Iterator[Item]:
    """Live members with ``low <= sk <= high``, in sort-key order: Query pages reading only that range
    (members of other generations are filtered out, after being read); none for a compact collection,
    whose members came with its head."""
    if head.compact:
        found = sorted((item for sk, item in head.members.items() if low <= sk <= high),
                       key=lambda item: item["sk"]["B"], reverse=not forward)
        return iter(found[:limit])
    values = {":pk": {"B": db.pk(key)}, ":low": {"B": low}, ":high": {"B": high}, ":g": {"B": head.generation}}
    return db.gateway.query("pk = :pk AND sk BETWEEN :low AND :high", values, filter_expression="g = :g",
                            forward=forward, limit=limit, projection=projection)


def get_members(db: Database, key: bytes, head: Head, sks: Iterable[bytes]) -> list[Item]:
    """The live members among sort keys: from a compact head, else ceil(n/100) BatchGetItem."""
    sks = list(dict.fromkeys(sks))
    if head.compact:
        return [head.members[sk] for sk in sks if sk in head.members]
    items = db.gateway.batch_get([{"pk": {"B": db.pk(key)}, "sk": {"B": sk}} for sk in sks]) if sks else []
    return [item for item in items if item.get("g", {}).get("B") == head.generation]


def new_version() -> dict:
    return {"B": os.urandom(8)}


def head_action(db: Database, state: State, change: Change, head: Head | None, generation: bytes,
                delta: int) -> dict:
    """The transaction action on the head: create it, change its count, or delete it when empty."""
    key = db.head_key(state.key)
    values = {**db.now(), **change.values}
    extra = f" AND {change.condition}" if change.condition else ""
    if head is None:
        item = {**key, "t": {"S": state.type}, "g": {"B": generation}, "sz": {"N": str(delta)},
                "w": new_version(), **change.head_set}
        return {"Put": {"Item": item, "ConditionExpression": ABSENT_OR_EXPIRED + extra,
                        "ExpressionAttributeValues": values}}
    values.update({":t": {"S": state.type}, ":g": {"B": generation}})
    condition = f"t = :t AND g = :g AND {LIVE}{extra}"
    if head.size + delta == 0 and not change.keep_empty:
        values[":sz"] = {"N": str(head.size)}
        return {"Delete": {"Key": key, "ConditionExpression": f"{condition} AND sz = :sz",
                           "ExpressionAttributeValues": values}}
    values[":w"] = new_version()
    values.update({f":set_{name}": value for name, value in change.head_set.items()})
    expression = "SET " + ", ".join(["w = :w"] + [f"{name} = :set_{name}" for name in change.head_set])
    if delta:
        expression += " ADD sz :delta"
        values[":delta"] = {"N": str(delta)}
    if change.head_remove:
        expression += " REMOVE " + ", ".join(change.head_remove)
    return {"Update": {"Key": key, "UpdateExpression": expression, "ConditionExpression": condition,
                       "ExpressionAttributeValues": values}}


def unchanged(item: Item) -> tuple[str, dict]:
    """A condition that holds while a member item is exactly as read."""
    names = sorted(name for name in item if name not in ("pk", "sk"))
    condition = " AND ".join(f"#m{index} = :m{index}" for index in range(len(names)))
    return condition, ({f"#m{index}": name for index, name in enumerate(names)},
                       {f":m{index}": item[name] for index, name in enumerate(names)})


def member_actions(db: Database, state: State, change: Change, generation: bytes) -> list[tuple[dict, int]]:
    """Each member action with the change of the count it makes."""
    pk = {"B": db.pk(state.key)}
    g = {"B": generation}
    actions: list[tuple[dict, int]] = []
    for item in change.puts:
        sk = item["sk"]["B"]
        put: dict = {"Item": {**item, "pk": pk, "g": g}}
        if sk in state.members:
            condition, (names, values) = unchanged(state.members[sk])
            put.update(ConditionExpression=condition, ExpressionAttributeNames=names, ExpressionAttributeValues=values)
            actions.append(({"Put": put}, 0))
        else:
            put.update(ConditionExpression="attribute_not_exists(sk) OR g <> :g", ExpressionAttributeValues={":g": g})
            actions.append(({"Put": put}, 0 if sk in change.uncounted else 1))
    for sk in change.deletes:
        condition, (names, values) = unchanged(state.members[sk])
        actions.append(({"Delete": {"Key": {"pk": pk, "sk": {"B": sk}}, "ConditionExpression": condition,
                                    "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}},
                        0 if sk in change.uncounted else -1))
    return actions


class Promoted(Exception):
    """A compact collection was promoted instead of written: read it again, and plan on members."""


def compact_head(db: Database, state: State, change: Change) -> Item | None:
    """The head a change leaves a compact (or new) collection with; None when it empties it."""
    members = dict(state.members) if state.head else {}
    size = state.size
    for item in change.puts:
        sk = item["sk"]["B"]
        size += sk not in members and sk not in change.uncounted
        members[sk] = item
    for sk in change.deletes:
        size -= sk not in change.uncounted
        del members[sk]
    if size == 0 and not change.keep_empty:
        return None
    head = dict(state.head.item) if state.head else {**db.head_key(state.key), "t": {"S": state.type},
                                                    "g": {"B": os.urandom(8)}}
    head.update(change.head_set)
    for name in change.head_remove:
        head.pop(name, None)
    head.update(sz={"N": str(size)}, w=new_version(), **compact.attributes(members))
    return head


def compact_condition(db: Database, state: State, change: Change) -> tuple[str, dict]:
    """The condition of a write that replaces a compact head (or creates one): the head as read."""
    values = {**db.now(), **change.values}
    if state.head is None:
        condition = ABSENT_OR_EXPIRED
    else:
        condition = f"w = :old_w AND {LIVE}"
        values[":old_w"] = state.head.item["w"]
    return (f"{condition} AND {change.condition}" if change.condition else condition), values


def writes_compact(db: Database, state: State) -> bool:
    return state.head.compact if state.head else state.type in db.compact.types


def compact_write(db: Database, state: State, change: Change) -> tuple[Item | None, str, dict] | None:
    """The head a compact (or new) collection is written with (None: deleted) and the condition; None
    when a new collection does not fit the compact limits. A compact one that outgrows them is
    promoted, and Promoted raised."""
    head = compact_head(db, state, change)
    if head is not None and not (state.type in db.compact.types and db.compact.fits(head)):
        if state.head is None:
            return None
        promote(db, state)
        raise Promoted
    return (head, *compact_condition(db, state, change))


def commit_compact(db: Database, state: State, change: Change) -> bool:
    """Write a compact (or new) collection: 1 PutItem conditional on the head as read, exactly-once under
    lost replies (oplog.py); a change that empties it deletes the head in 1 TransactWriteItems (its
    client token makes a retry safe). False when the result does not fit the compact limits (see
    :func:`compact_write`)."""
    planned = compact_write(db, state, change)
    if planned is None:
        return False
    put_compact(db, state, *planned)
    return True


def put_compact(db: Database, state: State, head: Item | None, condition: str, values: dict) -> Item | None:
    """Write a head planned by :func:`compact_write` (see :func:`commit_compact`); returns the head
    written (None: deleted). Raises ConditionFailed, or TransactionConditionFailed for a delete."""
    if head is None:
        db.heads.discard(db.pk(state.key))
        db.gateway.transact_write([{"Delete": {"Key": db.head_key(state.key), "ConditionExpression": condition,
                                               "ExpressionAttributeValues": values}}])
        return None
    record = oplog.new_record(oplog.PUT)
    head.update(oplog.logged(state.head.item if state.head else None, record))
    try:
        db.gateway.put(head, oplog.with_condition(condition), {**values, **oplog.values(record)}, once=True)
    except ConditionFailed as refused:
        seen(db, state.key, refused.item)
        if oplog.position(refused.item, record) is None:
            raise
    else:
        seen(db, state.key, head)
    if state.stale is not None:
        db.discard(state.stale)
    return head


def promote(db: Database, state: State) -> None:
    """Move a compact collection to one item per member, under a new generation, atomically: the head
    and up to 99 members in 1 TransactWriteItems; more members first (BatchWriteItem, 25 a request),
    then the head (1 conditional PutItem). A writer that read the compact head fails its condition and
    reads again; when this one's condition fails, nothing changed (its member items are deleted)."""
    assert state.head is not None
    db.heads.discard(db.pk(state.key))
    generation = {"B": os.urandom(8)}
    members = [{**item, "g": generation} for item in state.members.values()]
    head = {name: value for name, value in state.head.item.items()
            if name not in (compact.MEMBERS, compact.SIZE, *oplog.NAMES)}
    head.update(g=generation, w=new_version())
    values = {**db.now(), ":old_w": state.head.item["w"]}
    put = {"Item": head, "ConditionExpression": f"w = :old_w AND {LIVE}", "ExpressionAttributeValues": values}
    if len(members) < TRANSACTION_LIMIT:
        try:
            db.gateway.transact_write([{"Put": put}] + [{"Put": {"Item": item}} for item in members])
        except TransactionConditionFailed:
            return
    else:
        db.gateway.batch_write(puts=members)
        try:
            db.gateway.put(head, put["ConditionExpression"], values)
        except ConditionFailed as refused:
            if (refused.item or {}).get("g") != generation:  # not a retry of this very write
                db.gateway.batch_write(deletes=[{"pk": item["pk"], "sk": item["sk"]} for item in members])
                return
    db.promoted.put(db.pk(state.key))


def compact_action(db: Database, key: bytes, head: Item | None, condition: str, values: dict) -> dict:
    """The TransactWriteItems action of a head planned by :func:`compact_write`: Put it, or Delete."""
    body = {"ConditionExpression": condition, "ExpressionAttributeValues": values}
    return {"Delete": {"Key": db.head_key(key), **body}} if head is None else {"Put": {"Item": head, **body}}


def transaction_actions(db: Database, state: State, change: Change) -> list[dict]:
    """The TransactWriteItems actions of a change (for writes over several keys, such as SMOVE): the
    head and the members, or for a compact collection the head alone. Raises Promoted, after promoting
    it, when a compact collection outgrows its encoding."""
    planned = compact_write(db, state, change) if writes_compact(db, state) else None
    if planned is not None:
        return [compact_action(db, state.key, *planned)]
    generation = state.head.generation if state.head else os.urandom(8)
    members = member_actions(db, state, change, generation)
    delta = sum(size for _, size in members)
    return [head_action(db, state, change, state.head, generation, delta)] + [action for action, _ in members]


def commit(db: Database, state: State, change: Change) -> None:
    """Apply a change: to a compact collection (or a new one that fits the compact limits) see
    :func:`commit_compact`; else one TransactWriteItems (2 WCU per KB of each item in it). More than 99
    member actions take several transactions, each atomic, the whole not (head attributes and
    conditions go with the first). Raises TransactionConditionFailed or ConditionFailed when what was
    read has changed meanwhile (nothing of that write is applied), Promoted after a promotion."""
    if writes_compact(db, state) and commit_compact(db, state, change):
        return
    generation = state.head.generation if state.head else os.urandom(8)
    actions = member_actions(db, state, change, generation)
    step = TRANSACTION_LIMIT - 1
    head, stale = state.head, state.stale
    for start in range(0, max(len(actions), 1), step):
        part = actions[start:start + step]
        delta = sum(size for _, size in part)
        part_change = change if start == 0 else Change(keep_empty=change.keep_empty or start + step < len(actions))
        db.gateway.transact_write([head_action(db, state, part_change, head, generation, delta)]
                                  + [action for action, _ in part])
        if stale is not None:
            db.discard(stale)
            stale = None
        head = Head(state.type, generation, (head.size if head else 0) + delta, head.expire_at if head else None,
                    head.item if head else {})


def fast_update(db: Database, key: bytes, type_: str, change: Change) -> tuple[bool, bool, Item | None]:
    """One UpdateItem on a live compact head, when the change only adds members it assumes absent
    (``puts``) or only removes members it assumes present (``deletes``) and leaves at least one:
    ``SET m.#member = ...`` or ``REMOVE m.#member``, ``ADD sz, nb``, with those assumptions and the
    compact limits (``size(m)``, ``nb``) in the condition, so concurrent writers of other members never
    refuse each other. The change's ``head_set`` and ``condition`` (what the writer assumes of the
    head, such as a stream's last ID) join the update and the condition.
    Exactly-once under lost replies (oplog.py). Returns (applied, refused, the item found when refused).
    A key known promoted, a write of more than FAST_MEMBERS members, or one inside MULTI (one
    transaction anyway), is not tried."""
    limits, pk = db.compact, db.pk(key)
    adds = {item["sk"]["B"]: item for item in change.puts}
    removes = list(dict.fromkeys(change.deletes))
    # nb never undercounts (a removed hash value's bytes stay counted), so the head stays in the limits
    added = compact.members_size(compact.pack(adds)) if adds else -compact.members_size(
        compact.pack({sk: {} for sk in removes}))
    if (type_ not in limits.types or pk in db.promoted or bool(adds) == bool(removes) or change.head_remove
            or not db.gateway.nested_paths or added > limits.max_bytes or len(adds) + len(removes) > FAST_MEMBERS):
        return False, False, None
    record = oplog.new_record(oplog.PUT)
    paths = [f"#m.#e{index}" for index in range(len(adds) + len(removes))]
    names = {"#m": compact.MEMBERS, **{f"#e{index}": compact.map_key(sk) for index, sk in enumerate([*adds, *removes])}}
    delta = sum(sk not in change.uncounted for sk in adds) - sum(sk not in change.uncounted for sk in removes)
    values = {**db.now(), ":t": {"S": type_}, ":w": new_version(), ":delta": {"N": str(delta)},
              ":bytes": {"N": str(added)}, **oplog.values(record, shift=True)}
    condition = f"t = :t AND attribute_exists(#m) AND {LIVE} AND {oplog.NOT_APPLIED}"
    expression = f"SET w = :w, {oplog.SHIFT}"
    if change.condition:
        condition += f" AND {change.condition}"
        values.update(change.values)
    for name, value in change.head_set.items():
        expression += f", {name} = :head_{name}"
        values[f":head_{name}"] = value
    if adds:
        values.update({f":e{index}": value for index, value in enumerate(compact.pack(adds)["M"].values())})
        values.update({":room": {"N": str(limits.max_entries - len(adds))},
                       ":byte_room": {"N": str(limits.max_bytes - added)}})
        condition += (" AND size(#m) <= :room AND nb <= :byte_room"
                      + "".join(f" AND attribute_not_exists({path})" for path in paths))
        expression += "".join(f", {path} = :e{index}" for index, path in enumerate(paths))
    else:
        values[":fewest"] = {"N": str(len(removes) + 1)}
        condition += " AND size(#m) >= :fewest" + "".join(f" AND attribute_exists({path})" for path in paths)
        expression += " REMOVE " + ", ".join(paths)
    try:
        seen(db, key, db.gateway.update(db.head_key(key), expression + " ADD sz :delta, nb :bytes", values, names,
                                        condition, returns="ALL_NEW", once=True))
    except ConditionFailed as refused:
        seen(db, key, refused.item)
        applied = oplog.position(refused.item, record) is not None
        return applied, not applied, refused.item
    return True, False, None


def assumed(state: State, change: Change) -> bool:
    """Whether a single-request write's assumptions hold in ``state``: its puts absent, its deletes present
    and not the last members."""
    return (all(item["sk"]["B"] not in state.members for item in change.puts)
            and all(sk in state.members for sk in change.deletes) and len(set(change.deletes)) < len(state.members))


def update(db: Database, key: bytes, type_: str, plan: Callable[[State], tuple[Change | None, Result]],
           sks: Iterable[bytes] = (), fast: tuple[Change, Result] | None = None) -> Result:
    """Read the head and ``sks``, plan a change from that state, commit it; read and plan again while
    another writer gets in between (or after a promotion). ``plan`` may read more (and add what it read
    to ``state.members``). ``fast``: a change and its result to try first as one UpdateItem
    (:func:`fast_update`); when refused, the head it returns is planned from without a read. A compact
    collection this client last saw (:func:`hinted`) is planned from without a read too: its write
    asserts the head's version, and a plan that writes nothing or fails is checked on a real read, so
    a stale hint costs a request, never a wrong reply. Cost: see :func:`read` and :func:`commit`, per
    attempt; 1 UpdateItem when ``fast`` holds, 1 PutItem when the hint is current."""
    sks = list(sks)
    known = hinted(db, key, type_, sks)
    guess = known is not None
    if fast is not None and (known is None or assumed(known, fast[0])):
        applied, refused, found = fast_update(db, key, type_, fast[0])
        if applied:
            return fast[1]
        if refused:
            known, guess = state_of(db, key, type_, found, sks), False
    for attempt in range(100):
        state, known, guessed, guess = known or read(db, key, type_, sks), None, guess and known is not None, False
        try:
            change, result = plan(state)
        except ReplyError:
            if guessed:
                continue  # planned from a hint: check on the stored head
            raise
        if not change:
            if guessed:
                continue
            return result
        try:
            commit(db, state, change)
            return result
        except Promoted:
            continue
        except ConditionFailed as refused:  # a compact head changed: plan again from it as it now stands
            known = state_of(db, key, type_, refused.item, sks, missed=guessed)
        except TransactionConditionFailed:
            pass
        if not guessed:
            time.sleep(min(0.5, 0.005 * 2**min(attempt, 10)) * random.random())
    raise ReplyError("ERR too much contention on this key: the write was retried 100 times")


def remove(db: Database, key: bytes, type_: str, kind: bytes, members: list[bytes]) -> int:
    """Remove members (HDEL, SREM, ZREM), returning how many were there. Cost: 1 BatchGetItem +
    1 TransactWriteItems (none when none is there); removing the last member deletes the key. On a
    compact collection, 1 UpdateItem when every member is there and one stays; else 2 requests."""
    sks = [member_sk(kind, member) for member in members]

    def plan(state: State) -> tuple[Change, int]:
        present = [sk for sk in dict.fromkeys(sks) if sk in state.members]
        return Change(deletes=present), len(present)

    distinct = list(dict.fromkeys(sks))
    return update(db, key, type_, plan, sks, fast=(Change(deletes=distinct), len(distinct)))


def new_items(db: Database, key: bytes, type_: str, items: list[Item], head_set: Item | None = None,
              expire_at: int | None = None, *, size: int | None = None,
              generation: bytes | None = None) -> tuple[Item, list[Item]]:
    """The head and member items of a new collection of ``items`` (member items with ``sk``), under a
    new (or the given) generation: the head alone when the type is written compact and the result fits
    the limits. ``size`` is ``sz`` when not every item counts (a stream's groups); no request."""
    pk, g = {"B": db.pk(key)}, {"B": generation or os.urandom(8)}
    members = [{**item, "pk": pk, "g": g} for item in items]
    head = {**db.head_key(key), "t": {"S": type_}, "g": g, "sz": {"N": str(len(items) if size is None else size)},
            "w": new_version(), **db.expiry_attributes(expire_at), **(head_set or {})}
    if type_ in db.compact.types:
        packed = {**head, **compact.attributes({item["sk"]["B"]: item for item in members})}
        if db.compact.fits(packed):
            return packed, []
    return head, members


def replace(db: Database, key: bytes, type_: str, items: list[Item], head_set: Item | None = None,
            expire_at: int | None = None) -> None:
    """Make ``key`` a new collection of ``items`` (member items with ``sk``), whatever it held, under a
    new generation; then delete the old value's items. No items: the key is deleted. Used by the STORE
    commands. Cost: see :func:`write_new`."""
    if not items:
        db.discard(db.gateway.delete(db.head_key(key)))
        return
    head, members = new_items(db, key, type_, items, head_set, expire_at)
    write_new(db, key, head, members)


def write_new(db: Database, key: bytes, head: Item, members: list[Item], first: list[Item] = (),
              only_new: bool = False) -> bool:
    """Write a new value of ``key`` (its head and member items, under a new generation) over whatever it
    held, then delete the old value's items; ``first`` (a string's chunks) are written before. With
    ``only_new``, a live key is left as it is (False). Cost: up to 98 members, 1 GetItem of the old head
    + 1 TransactWriteItems of the head and the members (atomic: readers see the old value or the new
    one). More members (or chunks) are written first (BatchWriteItem, 25 a request) and the head last
    (1 PutItem returning the old one); a member that replaces one of the old value's items (same member)
    then disappears from the old value for a moment. A compact value is the head alone: 1 GetItem + 1
    conditional PutItem."""
    if len(members) >= TRANSACTION_LIMIT:
        first, members = [*first, *members], []
    if first:
        db.gateway.batch_write(puts=first)
        try:
            old = db.gateway.put(head, ABSENT_OR_EXPIRED if only_new else None, db.now() if only_new else None,
                                 return_old=True)
        except ConditionFailed:
            db.gateway.batch_write(deletes=[{"pk": item["pk"], "sk": item["sk"]} for item in first])
            return False
        db.discard(old)
        return True
    while True:
        old = db.gateway.get(db.head_key(key))
        if only_new and db.record(old) is not None:
            return False
        if old is None:
            put: dict = {"Item": head, "ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition, (names, values) = unchanged(old)
            put = {"Item": head, "ConditionExpression": condition, "ExpressionAttributeNames": names,
                   "ExpressionAttributeValues": values}
        try:
            if members:
                db.gateway.transact_write([{"Put": put}] + [{"Put": {"Item": member}} for member in members])
            else:  # compact, or members written first: the head alone
                db.gateway.put(head, put["ConditionExpression"], put.get("ExpressionAttributeValues"),
                               put.get("ExpressionAttributeNames"))
        except (TransactionConditionFailed, ConditionFailed):
            continue  # the key changed since it was read: read it again
        db.discard(old)
        return True
