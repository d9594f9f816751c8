"""Consumer groups: XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM, XGROUP and XINFO. A group, its
consumers and its pending entries are items of the stream's collection (see ``streams``):

* ``08 + group``: a group: last delivered ID ``lid``, entries read ``er`` (-1: unknown), and ``hw``,
  the highest ID the group ever delivered (entries above it cannot be pending);
* ``09 + len(group)(2) + group + consumer``: a consumer, seen time ``st``;
* ``0A + len(group)(2) + group + id``: a pending entry: consumer ``cn``, delivery ms ``dt``, count ``dc``.

They are ``Change.uncounted``: only entries count in the head's ``sz``. Each docstring gives the
DynamoDB cost; docs/reference/streams.md lists the differences from Redis.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import collection
from ..collection import Change, Head, State
from ..gateway import Item
from ..protocol import OK, SYNTAX_ERROR, ReplyError, parse_int
from ..storage import Database
from .base import c_string, command, subcommand, text
from .streams import (CONSUMER, GROUP, INVALID_ID, MAX_ID, PENDING, UNKNOWN, Meta, ReadArgs, entries, entry_reply,
                      entry_sk, fmt, head_items, id_attr, id_of, interval, new_head, node_of, number, parse_count,
                      parse_id, parse_read, poll, raw_id, stream_head, strict_id, try_strict_id)

NAME_LIMIT = 500  # bytes of a group or consumer name (they live in sort keys)
KEY_REQUIRED = ("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want "
                "to use the MKSTREAM option to create an empty stream automatically.")


# -- items ----------------------------------------------------------------------------------
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


def pending_item(group: bytes, id_: int, consumer: bytes, delivered: int, count: int) -> Item:
    return {"sk": {"B": pending_sk(group, id_)}, "cn": {"B": consumer}, "dt": number(delivered), "dc": number(count)}


def nogroup(key: bytes, group: bytes, suffix: str = "") -> ReplyError:
    return ReplyError(f"NOGROUP No such key '{text(key)}' or consumer group '{text(group)}'{suffix}")


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


# -- XREADGROUP -----------------------------------------------------------------------------
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
                nack = pending_item(group, id_, consumer, now, 1)  # as Redis creates it, then counted
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
    first, last = meta.edge(True), meta.edge(False)
    nodes = node_of(last) - node_of(first) + 1 if first and last else 0
    reply = [b"length", meta.length, b"radix-tree-keys", nodes, b"radix-tree-nodes", nodes + 1,
             b"last-generated-id", fmt(meta.last), b"max-deleted-entry-id", fmt(meta.max_deleted),
             b"entries-added", meta.added, b"recorded-first-entry-id", fmt(id_of(first)) if first else b"0-0"]
    if full:
        return reply + [b"entries", [entry_reply(item) for item in entries(db, args[1], head, 0, MAX_ID,
                                                                          limit=count or None)],
                        b"groups", [full_group_info(db, meta, group, count) for group in groups_of(db, args[1], head)]]
    return reply + [b"groups", len(groups_of(db, args[1], head)),
                    b"first-entry", entry_reply(first) if first else None,
                    b"last-entry", entry_reply(last) if last else None]
