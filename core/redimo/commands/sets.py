"""Set commands. A set is a collection (see ``redimo.collection``): a head with the member count and
one item per member, ``sk = 03 + member``, with no value. Each docstring gives the DynamoDB cost.

Commands over several sets (SINTER, SUNION, SDIFF, their STORE forms, SINTERCARD) read the heads in
one BatchGetItem and each set's members with Queries: they are not a snapshot, so a set written
meanwhile may be seen before or after that write. SMOVE is one transaction over both keys."""

from __future__ import annotations

import random
import time

from .. import collection
from ..collection import Change, Head, State, member_attributes, member_of, member_sk
from ..gateway import TransactionConditionFailed
from ..protocol import SYNTAX_ERROR, ReplyError, canonical_int
from ..storage import Database
from .base import command, options
from .hashes import random_count, sample, scan_members

MEMBER = b"\x03"
PROBE_RATIO = 64  # check candidates with BatchGetItem when they are this many times fewer than a set's members


@command("sadd", -3)
def sadd(db: Database, args: list[bytes]) -> int:
    """SADD key member [member ...]. Cost: 1 BatchGetItem + 1 TransactWriteItems (none when every
    member is already there; 99 members a transaction, 2 WCU per KB of each item). On a compact set:
    1 UpdateItem when every member is new, else 2 requests."""
    sks = {member_sk(MEMBER, member): member for member in args[1:]}

    def plan(state: State) -> tuple[Change, int]:
        new = [member for sk, member in sks.items() if sk not in state.members]
        return Change(puts=[member_attributes(MEMBER, member) for member in new]), len(new)

    fast = Change(puts=[member_attributes(MEMBER, member) for member in sks.values()])  # if all are new
    return collection.update(db, args[0], "set", plan, sks, (fast, len(sks)))


@command("srem", -3)
def srem(db: Database, args: list[bytes]) -> int:
    """SREM key member [member ...]. Cost: 1 BatchGetItem + 1 TransactWriteItems (none when no member
    is there). Removing the last member deletes the key."""
    return collection.remove(db, args[0], "set", MEMBER, args[1:])


@command("sismember", 3)
def sismember(db: Database, args: list[bytes]) -> int:
    """SISMEMBER key member. Cost: 1 BatchGetItem of the head and the member."""
    sk = member_sk(MEMBER, args[1])
    return int(sk in collection.read(db, args[0], "set", [sk]).members)


@command("smismember", -3)
def smismember(db: Database, args: list[bytes]) -> list[int]:
    """SMISMEMBER key member [member ...]. Cost: ceil((n+1)/100) BatchGetItem."""
    sks = [member_sk(MEMBER, member) for member in args[1:]]
    found = collection.read(db, args[0], "set", sks).members
    return [int(sk in found) for sk in sks]


def all_members(db: Database, key: bytes, head: Head | None) -> list[bytes]:
    if head is None:
        return []
    return [member_of(item) for item in collection.members(db, key, head, *collection.kind_range(MEMBER))]


@command("smembers", 2)
def smembers(db: Database, args: list[bytes]) -> list[bytes]:
    """SMEMBERS key. Cost: 1 GetItem + Query pages of the members (1 RCU per 4 KB)."""
    return all_members(db, args[0], collection.load(db, args[0], "set"))


@command("scard", 2)
def scard(db: Database, args: list[bytes]) -> int:
    """SCARD key. Cost: 1 GetItem (the head keeps the count)."""
    head = collection.load(db, args[0], "set")
    return head.size if head else 0


@command("srandmember", -2)
def srandmember(db: Database, args: list[bytes]) -> bytes | None | list[bytes]:
    """SRANDMEMBER key [count]: truly random members (a negative count may repeat them). Cost: 1 GetItem
    + the whole set in Query pages up to 1000 members (or when |count| * 64 reaches the size), else
    2 Queries + 1 Query a member drawn (see hashes.sample)."""
    if len(args) > 2:
        raise ReplyError(SYNTAX_ERROR)
    count = random_count(args[1]) if len(args) == 2 else None
    head = collection.load(db, args[0], "set")
    if count is None:
        picked = sample(db, args[0], head, MEMBER, 1, True) if head else []
        return member_of(picked[0]) if picked else None
    if head is None or count == 0:
        return []
    return [member_of(item) for item in sample(db, args[0], head, MEMBER, abs(count), count > 0)]


@command("spop", -2)
def spop(db: Database, args: list[bytes]) -> bytes | None | list[bytes]:
    """SPOP key [count]: removes random members (drawn as SRANDMEMBER draws them). Cost: 1 GetItem +
    the reads of SRANDMEMBER + 1 TransactWriteItems (99 members a transaction)."""
    if len(args) > 2:
        raise ReplyError(SYNTAX_ERROR)
    count = None
    if len(args) == 2:
        count = canonical_int(args[1])
        if count is None or count < 0:
            raise ReplyError("ERR value is out of range, must be positive")

    def plan(state: State) -> tuple[Change | None, list[bytes]]:
        if state.head is None or count == 0:
            return None, []
        items = sample(db, args[0], state.head, MEMBER, 1 if count is None else count, True)
        state.members.update({item["sk"]["B"]: item for item in items})
        return Change(deletes=[item["sk"]["B"] for item in items]), [member_of(item) for item in items]

    popped = collection.update(db, args[0], "set", plan)
    if count is None:
        return popped[0] if popped else None
    return popped


@command("smove", 4)
def smove(db: Database, args: list[bytes]) -> int:
    """SMOVE source destination member: one TransactWriteItems over both heads and both member items
    (a compact set's head alone), so the move is atomic. Cost: 2 reads (each head and its member) +
    1 TransactWriteItems of 4 items, 2 for two compact sets (2 WCU per KB each); a member absent from
    the source costs the reads only."""
    source, destination, member = args
    sk = member_sk(MEMBER, member)
    for attempt in range(100):
        origin = collection.read(db, source, "set", [sk])
        if origin.head is None:
            return 0
        if source == destination:
            return int(sk in origin.members)
        target = collection.read(db, destination, "set", [sk])  # WRONGTYPE even if the member is absent
        if sk not in origin.members:
            return 0
        try:
            actions = (collection.transaction_actions(db, origin, Change(deletes=[sk]))
                       + collection.transaction_actions(db, target, Change(puts=[member_attributes(MEMBER, member)])))
        except collection.Promoted:
            continue
        try:
            db.gateway.transact_write(actions)
        except TransactionConditionFailed:
            time.sleep(min(0.5, 0.005 * 2**min(attempt, 10)) * random.random())
            continue
        if target.stale is not None:
            db.discard(target.stale)
        return 1
    raise ReplyError("ERR too much contention on this key: the write was retried 100 times")


@command("sscan", -3)
def sscan(db: Database, args: list[bytes]) -> list:
    """SSCAN key cursor [MATCH pattern] [COUNT count]: the cursor is the last member returned, as an
    integer. Cost: 1 GetItem + Query pages of COUNT members (default 1000)."""
    return scan_members(db, args, "set", MEMBER)


# -- several sets ---------------------------------------------------------------------------------
def heads(db: Database, keys: list[bytes]) -> list[Head | None]:
    """The live set heads of keys (None when missing), WRONGTYPE if any is another type.
    Cost: ceil(n/100) BatchGetItem."""
    items = db.gateway.batch_get([db.head_key(key) for key in dict.fromkeys(keys)])
    found = {db.key_of(item): collection.head_of(db, item, "set")[0] for item in items}
    return [found.get(key) for key in keys]


def keep_present(db: Database, key: bytes, head: Head, candidates: set[bytes]) -> set[bytes]:
    """The candidates that are members: a BatchGetItem of them when they are PROBE_RATIO times fewer
    than the members, else a Query of the whole set (a compact set: its head, no request)."""
    if len(candidates) * PROBE_RATIO < head.size or head.compact:
        items = collection.get_members(db, key, head, [member_sk(MEMBER, member) for member in candidates])
        return {member_of(item) for item in items}
    return candidates & set(all_members(db, key, head))


def intersection(db: Database, keys: list[bytes]) -> set[bytes]:
    """Cost: the heads, then the smallest set's members, then each other set's (or a probe of the
    remaining candidates), stopping once nothing remains."""
    found = heads(db, keys)
    if any(head is None for head in found):
        return set()
    ordered = sorted(dict(zip(keys, found)).items(), key=lambda pair: pair[1].size)
    result = set(all_members(db, *ordered[0]))
    for key, head in ordered[1:]:
        if not result:
            break
        result = keep_present(db, key, head, result)
    return result


def union(db: Database, keys: list[bytes]) -> set[bytes]:
    """Cost: the heads, then every set's members."""
    result: set[bytes] = set()
    for key, head in dict(zip(keys, heads(db, keys))).items():
        result.update(all_members(db, key, head))
    return result


def difference(db: Database, keys: list[bytes]) -> set[bytes]:
    """Cost: the heads, then the first set's members, then each other set's (or a probe)."""
    found = heads(db, keys)
    result = set(all_members(db, keys[0], found[0]))
    for key, head in dict(zip(keys[1:], found[1:])).items():
        if not result:
            break
        if head is not None:
            result -= keep_present(db, key, head, result)
    return result


def store(db: Database, destination: bytes, members: set[bytes]) -> int:
    """Replace the destination, whatever it holds, with a set of ``members`` (none: delete it).
    Cost: ceil(n/25) BatchWriteItem + 1 PutItem, then the old value's items are deleted."""
    collection.replace(db, destination, "set", [member_attributes(MEMBER, member) for member in sorted(members)])
    return len(members)


@command("sinter", -2)
def sinter(db: Database, args: list[bytes]) -> list[bytes]:
    """SINTER key [key ...]. Cost: see :func:`intersection`."""
    return sorted(intersection(db, args))


@command("sunion", -2)
def sunion(db: Database, args: list[bytes]) -> list[bytes]:
    """SUNION key [key ...]. Cost: see :func:`union`."""
    return sorted(union(db, args))


@command("sdiff", -2)
def sdiff(db: Database, args: list[bytes]) -> list[bytes]:
    """SDIFF key [key ...]. Cost: see :func:`difference`."""
    return sorted(difference(db, args))


@command("sinterstore", -3)
def sinterstore(db: Database, args: list[bytes]) -> int:
    """SINTERSTORE destination key [key ...]. Cost: SINTER's reads + :func:`store`."""
    return store(db, args[0], intersection(db, args[1:]))


@command("sunionstore", -3)
def sunionstore(db: Database, args: list[bytes]) -> int:
    """SUNIONSTORE destination key [key ...]. Cost: SUNION's reads + :func:`store`."""
    return store(db, args[0], union(db, args[1:]))


@command("sdiffstore", -3)
def sdiffstore(db: Database, args: list[bytes]) -> int:
    """SDIFFSTORE destination key [key ...]. Cost: SDIFF's reads + :func:`store`."""
    return store(db, args[0], difference(db, args[1:]))


@command("sintercard", -3)
def sintercard(db: Database, args: list[bytes]) -> int:
    """SINTERCARD numkeys key [key ...] [LIMIT limit]. Cost: as SINTER."""
    numkeys = canonical_int(args[0])
    if numkeys is None or numkeys < 1:
        raise ReplyError("ERR numkeys should be greater than 0")
    if numkeys > len(args) - 1:
        raise ReplyError("ERR Number of keys can't be greater than number of args")
    limit, words, index = 0, options(args, 1 + numkeys), 0
    while index < len(words):
        if words[index] == b"LIMIT" and index + 1 < len(words):
            limit = canonical_int(args[2 + numkeys + index])
            if limit is None or limit < 0:
                raise ReplyError("ERR LIMIT can't be negative")
            index += 2
        else:
            raise ReplyError(SYNTAX_ERROR)
    count = len(intersection(db, args[1:1 + numkeys]))
    return min(count, limit) if limit else count

