"""Hash commands. A hash is a collection (see ``redimo.collection``): a head with the field count and
one item per field, ``sk = 02 + field``, holding the value in ``v`` (Binary) or, for a canonical
integer, ``n`` (Number). Each docstring gives the DynamoDB cost."""

from __future__ import annotations

from .. import collection
from ..collection import Change, State, check_value, member_attributes, member_of, member_sk
from ..gateway import Item
from ..protocol import canonical_int, wrong_arity
from ..storage import Database
from .base import command

FIELD = b"\x02"


def field_item(field: bytes, value: bytes) -> Item:
    item = member_attributes(FIELD, field)
    if canonical_int(value) is not None:
        item["n"] = {"N": value.decode()}
    else:
        item["v"] = {"B": check_value(value)}
    return item


def value_of(item: Item) -> bytes:
    return item["n"]["N"].encode() if "n" in item else item["v"]["B"]


def set_fields(db: Database, key: bytes, pairs: dict[bytes, bytes], only_new: bool = False) -> int:
    """Set fields, returning how many were new. Cost: 1 BatchGetItem + 1 TransactWriteItems
    (2 WCU per KB of the head and of each field written)."""

    def plan(state: State) -> tuple[Change, int]:
        sks = {field: member_sk(FIELD, field) for field in pairs}
        new = [field for field, sk in sks.items() if sk not in state.members]
        if only_new:
            return Change(puts=[field_item(field, pairs[field]) for field in new]), len(new)
        return Change(puts=[field_item(field, value) for field, value in pairs.items()]), len(new)

    return collection.update(db, key, "hash", plan, [member_sk(FIELD, field) for field in pairs])


@command("hset", -4)
def hset(db: Database, args: list[bytes]) -> int:
    """HSET key field value [field value ...]. Cost: 1 BatchGetItem + 1 TransactWriteItems."""
    if len(args) % 2 == 0:
        raise wrong_arity(b"hset")
    return set_fields(db, args[0], dict(zip(args[1::2], args[2::2])))


@command("hget", 3)
def hget(db: Database, args: list[bytes]) -> bytes | None:
    """HGET key field. Cost: 1 BatchGetItem of the head and the field."""
    sk = member_sk(FIELD, args[1])
    state = collection.read(db, args[0], "hash", [sk])
    return value_of(state.members[sk]) if sk in state.members else None


@command("hdel", -3)
def hdel(db: Database, args: list[bytes]) -> int:
    """HDEL key field [field ...]. Cost: 1 BatchGetItem + 1 TransactWriteItems (none when no field exists)."""
    sks = [member_sk(FIELD, field) for field in args[1:]]

    def plan(state: State) -> tuple[Change, int]:
        present = [sk for sk in dict.fromkeys(sks) if sk in state.members]
        return Change(deletes=present), len(present)

    return collection.update(db, args[0], "hash", plan, sks)


@command("hlen", 2)
def hlen(db: Database, args: list[bytes]) -> int:
    """HLEN key. Cost: 1 GetItem (the head keeps the count)."""
    head = collection.load(db, args[0], "hash")
    return head.size if head else 0


@command("hgetall", 2)
def hgetall(db: Database, args: list[bytes]) -> list[bytes]:
    """HGETALL key. Cost: 1 GetItem + Query pages of the fields (1 RCU per 4 KB)."""
    head = collection.load(db, args[0], "hash")
    if head is None:
        return []
    reply = []
    for item in collection.members(db, args[0], head, *collection.kind_range(FIELD)):
        reply += [member_of(item), value_of(item)]
    return reply
