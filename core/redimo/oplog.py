"""Exactly-once single-item writes when DynamoDB's reply is lost (docs/data-model.md).

A write that is not idempotent carries an *operation record*: 8 random bytes, a kind (``i`` for an
increment, followed by its amount; ``p`` for a put whose reply the writer already knows). The head
item keeps the last ``DEPTH`` records, newest first, in ``o1`` .. ``o4``, and the write's condition
refuses an item that already holds its record. When DynamoDB applied a write but the reply was lost,
the gateway sends it again; the retry is refused, and the refused item (returned with the refusal,
without a read) shows that the write was applied and what it replied. Costs nothing on the
fault-free path: a few bytes on the head item.

Writes that replace a head without keeping its log (SET without a condition) start it again: a
write retried after one of them applies to the new value, which is the order Redis could also have
chosen, since the two calls overlapped.
"""

from __future__ import annotations

import functools
import os

from .gateway import Item

DEPTH = 4
NAMES = tuple(f"o{index}" for index in range(1, DEPTH + 1))
NOT_APPLIED = "NOT (" + " OR ".join(f"{name} = :op" for name in NAMES) + ")"
SHIFT = ", ".join([f"{NAMES[0]} = :op"] + [f"{NAMES[index]} = if_not_exists({NAMES[index - 1]}, :no_op)"
                                            for index in range(1, DEPTH)])
INCREMENT = b"i"
PUT = b"p"


def new_record(kind: bytes, amount: int | None = None) -> bytes:
    return os.urandom(8) + kind + (str(amount).encode() if amount is not None else b"")


@functools.lru_cache(maxsize=1024)  # conditions are a few fixed texts: scanning them cost more than the rest
def with_condition(condition: str | None) -> str:
    """``condition`` AND NOT_APPLIED (DynamoDB refuses redundant parentheses, so only a top-level OR
    gets them)."""
    if not condition:
        return NOT_APPLIED
    depth, top_level_or = 0, False
    for index, char in enumerate(condition):
        depth += {"(": 1, ")": -1}.get(char, 0)
        top_level_or |= depth == 0 and condition.startswith(" OR ", index)
    return f"({condition}) AND {NOT_APPLIED}" if top_level_or else f"{condition} AND {NOT_APPLIED}"


def values(record: bytes, shift: bool = False) -> dict:
    """The expression values of NOT_APPLIED (and of SHIFT, with ``shift``)."""
    return {":op": {"B": record}, **({":no_op": {"B": b""}} if shift else {})}


def logged(old: Item | None, record: bytes) -> Item:
    """The log attributes of a head that replaces ``old`` (a PutItem): ``record`` first, then old's."""
    entries = [{"B": record}] + [old[name] for name in NAMES[:-1] if old and name in old]
    return dict(zip(NAMES, entries))


def position(item: Item | None, record: bytes) -> int | None:
    """Where ``record`` is in the item's log (0: the item's last write), or None."""
    for index, name in enumerate(NAMES):
        if item and item.get(name, {}).get("B") == record:
            return index
    return None


def increments_since(item: Item, index: int) -> int | None:
    """The sum of the increments logged after entry ``index``; None when one of those writes was
    not an increment (the reply of entry ``index`` cannot be told then)."""
    total = 0
    for name in NAMES[:index]:
        entry = item[name]["B"]
        if entry[8:9] != INCREMENT:
            return None
        total += int(entry[9:])
    return total
