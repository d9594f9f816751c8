"""The compact encoding of small hashes, sets, sorted sets and streams (docs/data-model.md), Redimo's listpack:
the whole collection in its head item, the members in one map attribute ``m``, so a read of it is 1 GetItem and
a write 1 conditional PutItem, with no transaction.

A member's map key is its sort key (kind byte + member) as text: the bytes themselves when they are
UTF-8, else ``\\x10`` + their base64. A member's attributes (a hash field's ``v``/``n``) are the map
value. A compact collection moves to the per-member layout (is *promoted*) once its head would pass
``Limits.max_entries`` members or ``Limits.max_bytes`` bytes, and never moves back, as in Redis.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .gateway import Item

MEMBERS = "m"  # the head attribute holding a compact collection's members
SIZE = "nb"  # the bytes of its members, as DynamoDB counts them in ``m`` (an upper bound after HDEL)
_ENCODED = "\x10"  # starts the map key of a sort key that is not UTF-8 (no kind byte is 0x10)
COMPACT_TYPES = frozenset({"hash", "set", "zset", "list", "stream"})  # the types written compact (the others: member items)
ITEM_LIMIT = 350_000  # the largest compact head: DynamoDB's item limit is 400 KB
HINT_BYTES = 16_384  # the largest compact head a client keeps as a hint (Database.heads)


@dataclass(frozen=True)
class Limits:
    """When a compact collection is promoted: the most members, and the most bytes of members in its
    head item as DynamoDB counts them (1 WCU per KB of the whole item is written on each change; the
    head's other attributes add about 150 bytes). Defaults: the measured crossover of
    docs/performance.md. ``types`` are the collection types written compact; an empty set turns the
    encoding off (collections are then created promoted)."""

    max_entries: int = 64
    max_bytes: int = 3840
    types: frozenset[str] = field(default=COMPACT_TYPES)

    def __post_init__(self) -> None:
        if self.max_entries < 0:
            raise ValueError("compact max_entries must be 0 or more")
        if not 0 <= self.max_bytes <= ITEM_LIMIT:
            raise ValueError(f"compact max_bytes must be between 0 and {ITEM_LIMIT}")
        unknown = set(self.types) - COMPACT_TYPES
        if unknown:
            raise ValueError(f"no compact encoding for {sorted(unknown)}: only for {sorted(COMPACT_TYPES)}")

    def fits(self, head: Item) -> bool:
        return len(head[MEMBERS]["M"]) <= self.max_entries and members_size(head[MEMBERS]) <= self.max_bytes


def is_compact(head: Item | None) -> bool:
    return bool(head) and MEMBERS in head


def map_key(sk: bytes) -> str:
    try:
        return sk.decode()
    except UnicodeDecodeError:
        return _ENCODED + base64.b64encode(sk).decode()


def sort_key(name: str) -> bytes:
    return base64.b64decode(name[1:]) if name.startswith(_ENCODED) else name.encode()


def unpack(head: Item) -> dict[bytes, Item]:
    """The member items of a compact head, by sort key, shaped as stored member items."""
    pk, generation = head["pk"], head["g"]
    return {sk: {**value["M"], "pk": pk, "sk": {"B": sk}, "g": generation}
            for sk, value in ((sort_key(name), value) for name, value in head[MEMBERS]["M"].items())}


def pack(members: dict[bytes, Item]) -> dict:
    """The ``m`` attribute of member items (their own attributes, without the key and generation)."""
    return {"M": {map_key(sk): {"M": {name: value for name, value in item.items() if name not in ("pk", "sk", "g")}}
                  for sk, item in members.items()}}


def attributes(members: dict[bytes, Item]) -> Item:
    """The head attributes of a compact collection of these member items: ``m`` and ``nb``."""
    packed = pack(members)
    return {MEMBERS: packed, SIZE: {"N": str(members_size(packed))}}


def members_size(members: dict) -> int:
    """The bytes of a ``pack``-ed map's entries (all of ``m`` but its own 3)."""
    return _value_size(members) - 3


def item_size(item: Item) -> int:
    """An item's size by DynamoDB's rules: names and values in UTF-8, numbers 1 byte per 2 digits + 1,
    maps and lists 3 bytes + 1 byte per element."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict) -> int:
    (kind, data), = value.items()
    if kind in ("S", "B"):
        return len(data.encode() if kind == "S" else data)
    if kind == "N":
        digits = Decimal(data).as_tuple().digits
        return (len(digits) + 1) // 2 + 1
    if kind == "M":
        return 3 + sum(len(name.encode()) + _value_size(entry) + 1 for name, entry in data.items())
    if kind == "L":
        return 3 + sum(_value_size(entry) + 1 for entry in data)
    return _sized_set(kind, data)


def _sized_set(kind: str, data: Any) -> int:
    if kind in ("SS", "BS"):
        return sum(len(entry.encode() if kind == "SS" else entry) for entry in data)
    if kind == "NS":
        return sum(_value_size({"N": entry}) for entry in data)
    return 1  # BOOL, NULL


class Recent:
    """The latest values of the most recently written ``size`` keys: a hint of cost only, never the
    truth. ``Database.promoted`` holds the keys last seen promoted: a read of one gets its head and
    members in one BatchGetItem, of any other key the head first (1 GetItem, all of a compact
    collection) and, for a promoted one, then the members. A wrong hint costs a request or a read unit,
    never a wrong answer."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._values: dict = {}

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def get(self, key: object) -> object:
        return self._values.get(key)

    def put(self, key: object, value: object = True) -> None:
        self._values.pop(key, None)
        self._values[key] = value
        if len(self._values) > self.size:
            self._values.pop(next(iter(self._values)), None)

    def discard(self, key: object) -> None:
        self._values.pop(key, None)
