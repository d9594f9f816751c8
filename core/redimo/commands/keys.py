"""Generic key and server commands. Each docstring gives the DynamoDB cost."""

from __future__ import annotations

import os
import sys
import time

from .. import oplog
from ..gateway import TRANSACTION_LIMIT, ConditionFailed, TransactionConditionFailed
from ..glob import glob_match
from ..protocol import INT64_MAX, OK, SYNTAX_ERROR, ReplyError, SimpleString, canonical_int, parse_int
from ..collection import new_version
from ..compact import MEMBERS, is_compact, sort_key
from ..storage import (ABSENT_OR_EXPIRED, CHUNK, COLLECTION_TYPES, DEAD, HEAD, LIVE, MAX_PARTITION_KEY, Database,
                       Record, ttl_seconds)
from .base import c_string, command, cursor_of, options, position_of, subcommand

HEAD_ONLY = "pk, sk, t, x, c, g, m"  # what COPY and MOVE need of the head they replace (m: compact)


def delete_one(db: Database, key: bytes, conditions: tuple[str, ...] = (), values: dict | None = None) -> int:
    """Delete one key: 1 UpdateItem that expires its head at once, with an operation record, returning
    the head as written (the old one's attributes, expired); then what it leaves (chunks, members) is
    deleted (Database.discard). Exactly-once under lost replies, as GETDEL: the expired head keeps its attributes until DynamoDB's TTL removes
    it, so a retry finds its record, the reply, and what to clean up (oplog.py). A key already deleted
    so: the refused UpdateItem alone. A head expired by its TTL: + 1 DeleteItem of it and its
    leftovers. ``conditions`` (with their ``values``): more that the key must meet (EXPIRE's flags)."""
    operation = oplog.new_record(oplog.PUT)
    values = {**(values or {}), **db.now(), ":dead": DEAD, ":tx": {"N": ttl_seconds(db.clock())},
              ":w": new_version(), **oplog.values(operation, shift=True)}
    condition = " AND ".join([f"attribute_exists(t) AND {LIVE}", *conditions, oplog.NOT_APPLIED])
    try:
        old = db.gateway.update(db.head_key(key), f"SET x = :dead, tx = :tx, w = :w, {oplog.SHIFT}", values,
                                condition=condition, returns="ALL_NEW", once=True)
    except ConditionFailed as refused:
        if oplog.position(refused.item, operation) is None:
            if refused.item is not None and refused.item.get("x") != DEAD and db.record(refused.item) is None:
                # expired by its TTL, not yet removed: delete it and what it leaves
                db.discard(db.gateway.delete(db.head_key(key)))
            return 0
        old = refused.item  # applied: the expired head still holds what the old one did
    db.discard(old)  # the head as written: expired, with all the old one's attributes but x, tx and w
    return 1


def delete_keys(db: Database, keys: list[bytes]) -> int:
    """Delete keys, returning how many were live. One key: 1 UpdateItem (:func:`delete_one`). Several:
    ceil(n/25) BatchExecuteStatement, each deleting 25 heads and returning them as they were
    (Gateway.delete_many), then what those heads leave (a collection's members, a value's chunks:
    Database.discard). Not atomic together, and not exactly-once: a head deleted by an attempt whose
    reply was lost is not counted (its members are left to `redimo sweep`)."""
    keys = list(dict.fromkeys(keys))
    if len(keys) == 1:
        return delete_one(db, keys[0])
    heads = db.gateway.delete_many([db.head_key(key) for key in keys])
    db.discard(*heads)
    return sum(db.record(head) is not None for head in heads)


@command("del", -2)
def del_(db: Database, args: list[bytes]) -> int:
    """DEL key [key ...]. Cost: 1 UpdateItem for one key (:func:`delete_one`); see :func:`delete_keys`
    for several."""
    return delete_keys(db, args)


@command("unlink", -2)
def unlink(db: Database, args: list[bytes]) -> int:
    """UNLINK key [key ...]: the same as DEL (DynamoDB has no background free)."""
    return delete_keys(db, args)


@command("touch", -2)
@command("exists", -2)
def exists(db: Database, args: list[bytes]) -> int:
    """EXISTS key [key ...]: repeated keys count again; TOUCH is the same (Redimo keeps no access
    times). Cost: 1 GetItem, or ceil(n/100) BatchGetItem."""
    if len(args) == 1:
        return int(db.load(args[0], "t, x") is not None)
    live = db.load_many(set(args), "pk, t, x")
    return sum(key in live for key in args)


@command("type", 2)
def type_(db: Database, args: list[bytes]) -> SimpleString:
    """TYPE key. Cost: 1 GetItem."""
    record = db.load(args[0], "t, x")
    return SimpleString(record.type.encode() if record else b"none")


EXPIRY_FLAGS = {
    b"NX": "attribute_not_exists(x)",
    b"XX": "attribute_exists(x)",
    b"GT": "x < :x",
    b"LT": "(attribute_not_exists(x) OR x > :x)",
}


def expiry_flags(args: list[bytes]) -> set[bytes]:
    flags = set()
    for arg, word in zip(args, options(args, 0)):
        if word not in EXPIRY_FLAGS:
            raise ReplyError(f"ERR Unsupported option {c_string(arg).decode(errors='replace')}")
        flags.add(word)
    if b"NX" in flags and len(flags) > 1:
        raise ReplyError("ERR NX and XX, GT or LT options at the same time are not compatible")
    if {b"GT", b"LT"} <= flags:
        raise ReplyError("ERR GT and LT options at the same time are not compatible")
    return flags


def expiry_allowed(current: int | None, new: int, flags: set[bytes]) -> bool:
    """NX/XX/GT/LT as the conditions in EXPIRY_FLAGS decide them (no TTL counts as infinite)."""
    return not ((b"NX" in flags and current is not None) or (b"XX" in flags and current is None)
                or (b"GT" in flags and (current is None or new <= current))
                or (b"LT" in flags and current is not None and new >= current))


def set_expiry(db: Database, key: bytes, expire_at: int, flags: set[bytes]) -> int:
    """The EXPIRE family: 1 conditional UpdateItem, exactly-once under lost replies (oplog.py); a time
    already past deletes the key as DEL does (:func:`delete_one`). A chunked value also updates the TTL
    attribute of each chunk (its head's update is then not logged)."""
    flag_conditions = [EXPIRY_FLAGS[flag] for flag in sorted(flags)]
    conditions = [f"attribute_exists(t) AND {LIVE}"] + flag_conditions
    while True:  # again when a chunked value was written meanwhile (a SETBIT patches chunks in place)
        values = {":x": {"N": str(expire_at)}, **db.now()}
        if expire_at <= db.clock():
            return delete_one(db, key, tuple(flag_conditions), values if flags & {b"GT", b"LT"} else None)
        values[":tx"] = db.expiry_attributes(expire_at)["tx"]
        values[":w"] = {"B": os.urandom(8)}  # a new version, for WATCH
        operation = oplog.new_record(oplog.PUT)
        try:
            db.gateway.update(db.head_key(key), f"SET x = :x, tx = :tx, w = :w, {oplog.SHIFT}",
                              {**values, **oplog.values(operation, shift=True)},
                              condition=" AND ".join(conditions + ["attribute_not_exists(c)", oplog.NOT_APPLIED]),
                              once=True)
            return 1
        except ConditionFailed as refused:
            if oplog.position(refused.item, operation) is not None:
                return 1
            record = db.record(refused.item)
        if record is None or not record.chunks or not expiry_allowed(record.expire_at, expire_at, flags):
            return 0
        db.set_expiry_of_chunks(record.item, expire_at)  # a chunked value: chunks first, so none expires early
        unchanged, kept = record.unchanged()
        try:
            db.gateway.update(db.head_key(key), "SET x = :x, tx = :tx, w = :w", {**values, **kept},
                              condition=" AND ".join(conditions + [unchanged]))
            return 1
        except ConditionFailed:
            continue


def expire_command(db: Database, args: list[bytes], unit_ms: int, absolute: bool) -> int:
    """As Redis's expireGenericCommand: the options first, then the time, refused only when the
    conversion to milliseconds or the addition of the current time overflows int64."""
    flags = expiry_flags(args[2:])
    amount = parse_int(args[1])
    base = 0 if absolute else db.clock()
    if unit_ms > 1 and abs(amount) > INT64_MAX // unit_ms or amount * unit_ms > INT64_MAX - base:
        name = {(1000, False): "expire", (1, False): "pexpire", (1000, True): "expireat", (1, True): "pexpireat"}
        raise ReplyError(f"ERR invalid expire time in '{name[unit_ms, absolute]}' command")
    return set_expiry(db, args[0], amount * unit_ms + base, flags)


@command("expire", -3)
def expire(db: Database, args: list[bytes]) -> int:
    """EXPIRE key seconds [NX|XX|GT|LT]. Cost: 1 UpdateItem."""
    return expire_command(db, args, 1000, False)


@command("pexpire", -3)
def pexpire(db: Database, args: list[bytes]) -> int:
    """PEXPIRE key milliseconds [NX|XX|GT|LT]. Cost: 1 UpdateItem."""
    return expire_command(db, args, 1, False)


@command("expireat", -3)
def expireat(db: Database, args: list[bytes]) -> int:
    """EXPIREAT key unix-time-seconds [NX|XX|GT|LT]. Cost: 1 UpdateItem."""
    return expire_command(db, args, 1000, True)


@command("pexpireat", -3)
def pexpireat(db: Database, args: list[bytes]) -> int:
    """PEXPIREAT key unix-time-milliseconds [NX|XX|GT|LT]. Cost: 1 UpdateItem."""
    return expire_command(db, args, 1, True)


def remaining(db: Database, key: bytes) -> Record | int:
    record = db.load(key, "t, x")
    if record is None:
        return -2
    if record.expire_at is None:
        return -1
    return record


@command("ttl", 2)
def ttl(db: Database, args: list[bytes]) -> int:
    """TTL key. Cost: 1 GetItem."""
    record = remaining(db, args[0])
    return record if isinstance(record, int) else (max(0, record.expire_at - db.clock()) + 500) // 1000


@command("pttl", 2)
def pttl(db: Database, args: list[bytes]) -> int:
    """PTTL key. Cost: 1 GetItem."""
    record = remaining(db, args[0])  # read alive, it may expire before the clock is read again: 0, as Redis
    return record if isinstance(record, int) else max(0, record.expire_at - db.clock())


@command("expiretime", 2)
def expiretime(db: Database, args: list[bytes]) -> int:
    """EXPIRETIME key (rounded to the nearest second, as Redis does). Cost: 1 GetItem."""
    record = remaining(db, args[0])
    return record if isinstance(record, int) else (record.expire_at + 500) // 1000


@command("pexpiretime", 2)
def pexpiretime(db: Database, args: list[bytes]) -> int:
    """PEXPIRETIME key. Cost: 1 GetItem."""
    record = remaining(db, args[0])
    return record if isinstance(record, int) else record.expire_at


def remove_expiry(db: Database, key: bytes, only_volatile: bool) -> bool:
    """Make a live key persistent: 1 conditional UpdateItem, exactly-once under lost replies (plus one a
    chunk for a chunked value).
    Returns whether it was changed; with ``only_volatile`` (PERSIST) a key without TTL is not."""
    condition = f"attribute_exists(t) AND {LIVE}" + (" AND attribute_exists(x)" if only_volatile else "")
    while True:  # again when a chunked value was written meanwhile
        operation = oplog.new_record(oplog.PUT)
        try:
            db.gateway.update(db.head_key(key), f"SET w = :w, {oplog.SHIFT} REMOVE x, tx",
                              {**db.now(), ":w": {"B": os.urandom(8)}, **oplog.values(operation, shift=True)},
                              condition=f"{condition} AND attribute_not_exists(c) AND {oplog.NOT_APPLIED}", once=True)
            return True
        except ConditionFailed as refused:
            if oplog.position(refused.item, operation) is not None:
                return True
            record = db.record(refused.item)
        if record is None or not record.chunks or (only_volatile and record.expire_at is None):
            return False
        db.set_expiry_of_chunks(record.item, None)  # chunks first, so none expires under a persistent head
        unchanged, values = record.unchanged()
        try:
            db.gateway.update(db.head_key(key), "SET w = :w REMOVE x, tx",
                              {**values, **db.now(), ":w": {"B": os.urandom(8)}}, condition=f"{condition} AND {unchanged}")
            return True
        except ConditionFailed:
            continue


def encoding(record: Record) -> bytes:
    """The name Redis gives the encoding of a value like this one (OBJECT ENCODING)."""
    item = record.item
    if record.type == "string":
        return b"int" if "n" in item else b"embstr" if len(item.get("v", {}).get("B", b"")) <= 44 and not record.chunks \
            else b"raw"
    if is_compact(item) and record.type != "stream":  # Redis's streams are always "stream"
        members = [sort_key(name)[1:] for name in item[MEMBERS]["M"]]
        integers = record.type == "set" and all(canonical_int(member) is not None for member in members)
        return b"intset" if integers and len(members) <= 512 else b"listpack"
    return {"hash": b"hashtable", "set": b"hashtable", "zset": b"skiplist", "list": b"quicklist"}.get(record.type, b"stream")


OBJECT_ARITY = {b"ENCODING": 3, b"FREQ": 3, b"IDLETIME": 3, b"REFCOUNT": 3, b"HELP": 2}
OBJECT_HELP = [
    b"OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"ENCODING <key>",
    b"    Return the kind of internal representation used in order to store the value",
    b"    associated with a <key>.",
    b"FREQ <key>",
    b"    Return the access frequency index of the <key>. The returned integer is",
    b"    proportional to the logarithm of the recent access frequency of the key.",
    b"IDLETIME <key>",
    b"    Return the idle time of the <key>, that is the approximated number of",
    b"    seconds elapsed since the last access to the key.",
    b"REFCOUNT <key>",
    b"    Return the number of references of the value associated with the specified",
    b"    <key>.",
    b"HELP",
    b"    Prints this help.",
]
NO_LFU = ("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when "
          "switching between policies at runtime LRU and LFU data will take some time to adjust.")
SHARED_REFCOUNT = 2**31 - 1  # Redis's shared objects: the integers 0 to 9999 that SET or INCR stores


@command("object", -2)
def object_(db: Database, args: list[bytes]) -> bytes | int | list | None:
    """OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT key, OBJECT HELP. ENCODING: ``listpack`` (``intset`` for a
    set of integers) for a compact collection, Redis's names for the others: ``hashtable``,
    ``skiplist``, ``quicklist``, ``stream`` (a stream in either encoding, as in Redis); ``int``,
    ``embstr`` or ``raw`` for a string. FREQ refuses as Redis does without an LFU policy; IDLETIME is 0
    (Redimo keeps no access times); REFCOUNT is Redis's: shared for an integer 0 to 9999, else 1.
    Cost: 1 GetItem (HELP: none)."""
    sub = subcommand(args, OBJECT_ARITY, "OBJECT")
    if sub == b"HELP":
        return [SimpleString(line) for line in OBJECT_HELP]
    record = db.load(args[1])
    if record is None:
        return None
    if sub == b"ENCODING":
        return encoding(record)
    if sub == b"FREQ":
        raise ReplyError(NO_LFU)
    if sub == b"IDLETIME":
        return 0
    shared = record.type == "string" and 0 <= int(record.item.get("n", {}).get("N", "-1")) < 10_000
    return SHARED_REFCOUNT if shared else 1


@command("persist", 2)
def persist(db: Database, args: list[bytes]) -> int:
    """PERSIST key. Cost: 1 conditional UpdateItem (plus one a chunk for a chunked value)."""
    return int(remove_expiry(db, args[0], only_volatile=True))


def copy_key(db: Database, source: bytes, target_db: Database, target: bytes, replace: bool,
             move: bool) -> bool | None:
    """Copy (or move) a key's value. None if the source is missing, False if the target exists and
    ``replace`` is off. Cost: 1 GetItem of the source, 1 GetItem of the target, and the heads in
    1 TransactWriteItems (2 WCU per KB each). A collection's members are read (Query pages) and
    written under a new generation in that transaction (up to 98; more go first, 25 a BatchWriteItem);
    a chunked string's chunks are read (BatchGetItem) and written first. The transaction asserts the
    source unchanged, so the copy is never a mix. Side items (a semaphore's holders) stay."""
    record = db.load(source)
    if record is None:
        return None
    target_pk = {"B": target_db.pk(target)}
    old_target = db.gateway.get(target_db.head_key(target), HEAD_ONLY)
    if not replace and target_db.record(old_target) is not None:
        return False
    copied_head = {**record.item, "pk": target_pk, "w": new_version()}  # a new version: WATCH sees a copy
    # A new generation: the target's old value may be an earlier copy with the same generation,
    # whose items (deleted below) would otherwise be the ones just written.
    generation = os.urandom(8)
    if record.type in COLLECTION_TYPES:
        copies = [{**member, "pk": target_pk, "g": {"B": generation}} for member in db.members_of(record.item)]
        copied_head["g"] = {"B": generation}
    else:
        chunk_keys = db.chunk_keys(record.item)
        chunks = {item["sk"]["B"]: item for item in db.gateway.batch_get(chunk_keys)}
        if len(chunks) != len(chunk_keys):  # the source was rewritten while it was read
            return copy_key(db, source, target_db, target, replace, move)
        copies = [{**chunks[key["sk"]["B"]], "pk": target_pk, "sk": {"B": CHUNK + generation + key["sk"]["B"][-4:]}}
                  for key in chunk_keys]
        if copies:
            copied_head["g"] = {"B": generation}
    inline = record.type in COLLECTION_TYPES and len(copies) <= TRANSACTION_LIMIT - 2
    if not inline:
        db.gateway.batch_write(puts=copies)
    put: dict = {"Item": copied_head}
    if not replace:
        put.update(ConditionExpression=ABSENT_OR_EXPIRED, ExpressionAttributeValues=db.now())
    unchanged, values = record.unchanged()
    source_check = {"Key": db.head_key(source), "ConditionExpression": unchanged, "ExpressionAttributeValues": values}
    actions = [{"Put": put}]
    if move:
        actions.append({"Delete": source_check})
    elif copies:  # the items were read one request at a time: assert none changed meanwhile
        actions.append({"ConditionCheck": source_check})
    if inline:  # the target's members switch with its head
        actions += [{"Put": {"Item": item}} for item in copies]
    try:
        db.gateway.transact_write(actions)
    except TransactionConditionFailed as failed:
        if not inline:
            db.gateway.batch_write(deletes=[{"pk": item["pk"], "sk": item["sk"]} for item in copies])
        if failed.failed[0]:
            return False
        return copy_key(db, source, target_db, target, replace, move)  # the source changed: again
    if old_target:
        db.discard(old_target)
    if move:
        db.discard(record.item)
    return True


@command("rename", 3)
def rename(db: Database, args: list[bytes]) -> bytes:
    """RENAME key newkey. Cost: see :func:`copy_key`."""
    source, target = args
    if source == target:
        if db.load(source, "t, x") is None:
            raise ReplyError("ERR no such key")
        return OK
    if copy_key(db, source, db, target, replace=True, move=True) is None:
        raise ReplyError("ERR no such key")
    return OK


@command("renamenx", 3)
def renamenx(db: Database, args: list[bytes]) -> int:
    """RENAMENX key newkey. Cost: see :func:`copy_key`."""
    source, target = args
    if source == target:
        if db.load(source, "t, x") is None:
            raise ReplyError("ERR no such key")
        return 0
    done = copy_key(db, source, db, target, replace=False, move=True)
    if done is None:
        raise ReplyError("ERR no such key")
    return int(done)


def namespace_db(db: Database, name: bytes) -> Database:
    """The namespace a DB argument (COPY, MOVE) names: Redimo's databases are namespaces."""
    try:
        return db.other(name.decode())
    except (ValueError, UnicodeDecodeError):
        raise ReplyError("ERR invalid namespace: it must be UTF-8 without NUL") from None


@command("move", 3)
def move(db: Database, args: list[bytes]) -> int:
    """MOVE key db: ``db`` names a Redimo namespace (Redis's database numbers are namespaces "0" to
    "15"; any other name is one too). 0 when the key is missing or the target namespace has it.
    Atomic: the source's delete and the target's put are one TransactWriteItems (members over 98
    are copied first). Cost: see :func:`copy_key`."""
    target_db = namespace_db(db, args[1])
    if target_db.namespace == db.namespace:
        raise ReplyError("ERR source and destination objects are the same")
    return int(bool(copy_key(db, args[0], target_db, args[0], replace=False, move=True)))


@command("time", 1)
def time_(db: Database, args: list[bytes]) -> list[bytes]:
    """TIME: this client's clock, [seconds, microseconds] (Redis gives the server's). Cost: none."""
    now = time.time_ns() // 1000
    return [b"%d" % (now // 1_000_000), b"%d" % (now % 1_000_000)]


@command("copy", -3)
def copy(db: Database, args: list[bytes]) -> int:
    """COPY source destination [DB namespace] [REPLACE]. ``DB`` names a Redimo namespace.
    Cost: see :func:`copy_key`."""
    source, target, words = args[0], args[1], options(args, 2)
    target_db, replace, index = db, False, 0
    while index < len(words):
        if words[index] == b"REPLACE":
            replace = True
        elif words[index] == b"DB" and index + 1 < len(words):
            index += 1
            target_db = namespace_db(db, args[2 + index])
        else:
            raise ReplyError(SYNTAX_ERROR)
        index += 1
    if source == target and target_db.namespace == db.namespace:
        raise ReplyError("ERR source and destination objects are the same")
    return int(bool(copy_key(db, source, target_db, target, replace, move=False)))


def encode_cursor(last: dict | None) -> bytes:
    if last is None:
        return b"0"
    pk, sk = last["pk"]["B"], last["sk"]["B"]
    return cursor_of(b"\x01" + len(pk).to_bytes(2, "big") + pk + sk)


def cursor_fits_redis_py(cursor: bytes) -> bool:
    """Whether redis-py can read the cursor: it calls int(), which refuses more digits than
    sys.get_int_max_str_digits() (4300 by default: a cursor at a key of about 1780 bytes)."""
    limit = sys.get_int_max_str_digits()
    return not limit or len(cursor) <= limit


def decode_cursor(cursor: bytes) -> dict | None:
    """A cursor is 0 or a position Redimo handed out; other numbers are invalid (Redis takes any)."""
    raw = position_of(cursor, 8000)
    if raw is None:
        return None
    size = int.from_bytes(raw[1:3], "big")
    pk, sk = raw[3:3 + size], raw[3 + size:]
    if raw[0] != 1 or not 0 < len(pk) == size <= MAX_PARTITION_KEY or not 0 < len(sk) <= 1024:
        raise ReplyError("ERR invalid cursor")
    return {"pk": {"B": pk}, "sk": {"B": sk}}


@command("scan", -2)
def scan(db: Database, args: list[bytes]) -> list:
    """SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]. The cursor is DynamoDB's position,
    as a (large) integer. Cost: 1 Scan page of COUNT items (default 1000) of the whole table,
    filtered to this namespace's live keys: RCU follow the size of what is examined."""
    start = decode_cursor(args[0])
    pattern, count, type_name = None, 1000, None
    words, index = options(args, 1), 0
    while index < len(words):
        if index + 1 >= len(words):
            raise ReplyError(SYNTAX_ERROR)
        value = args[2 + index]
        if words[index] == b"MATCH":
            pattern = value
        elif words[index] == b"COUNT":
            count = parse_int(value)
            if count < 1:
                raise ReplyError(SYNTAX_ERROR)
        elif words[index] == b"TYPE":
            type_name = c_string(value).decode(errors="replace").lower()  # Redis: strcasecmp
        else:
            raise ReplyError(SYNTAX_ERROR)
        index += 2
    extra, values = "", {}
    if type_name is not None:
        extra, values = " AND t = :type", {":type": {"S": type_name or "none"}}  # DynamoDB refuses ""
    limit = min(count, 2**31 - 1)  # an Integer for DynamoDB
    keys, last = db.scan_keys(extra, values, limit=limit, start=start)
    while last is not None and not cursor_fits_redis_py(encode_cursor(last)):
        more, last = db.scan_keys(extra, values, limit=limit, start=last)  # go on past a very long key
        keys += more
    if pattern is not None:
        keys = [key for key in keys if glob_match(pattern, key)]
    return [encode_cursor(last), keys]


@command("keys", 2)
def keys(db: Database, args: list[bytes]) -> list[bytes]:
    """KEYS pattern. Cost: a Scan of the whole table (1 MB pages), filtered to this namespace."""
    pattern = args[0]
    return [key for key in db.iter_keys() if glob_match(pattern, key)]


@command("dbsize", 1)
def dbsize(db: Database, args: list[bytes]) -> int:
    """DBSIZE. Cost: a Scan of the whole table (Redis keeps a counter; Redimo does not,
    because a counter would add a write to every key creation and deletion)."""
    return sum(1 for _ in db.iter_keys())


def flush(db: Database, prefix: bytes) -> None:
    """Delete every item whose partition key starts with ``prefix``: a Scan of the whole table
    and BatchWriteItem deletes, 25 items a request."""
    batch = []
    for item in db.gateway.scan(projection="pk, sk"):
        if not item["pk"]["B"].startswith(prefix):
            continue  # matched here: moto's begins_with() never matches a Binary attribute
        batch.append(item)
        if len(batch) == 1000:
            db.gateway.batch_write(deletes=batch)
            batch = []
    db.gateway.batch_write(deletes=batch)


def flush_options(args: list[bytes]) -> None:
    if len(args) > 1 or (args and options(args, 0)[0] not in (b"ASYNC", b"SYNC")):
        raise ReplyError(SYNTAX_ERROR)


@command("flushdb", -1)
def flushdb(db: Database, args: list[bytes]) -> bytes:
    """FLUSHDB [ASYNC|SYNC]: clears this namespace only. Cost: see :func:`flush`."""
    flush_options(args)
    flush(db, db.prefix)
    return OK


@command("flushall", -1)
def flushall(db: Database, args: list[bytes]) -> bytes:
    """FLUSHALL [ASYNC|SYNC]: clears every namespace of the table. Cost: see :func:`flush`."""
    flush_options(args)
    flush(db, b"")
    return OK


@command("randomkey", 1)
def randomkey(db: Database, args: list[bytes]) -> bytes | None:
    """RANDOMKEY. Cost: Scan pages from a random position of the table until a live key of this
    namespace turns up (a whole-table Scan when the namespace is empty)."""
    random_start = {"pk": {"B": db.prefix + os.urandom(16)}, "sk": {"B": HEAD}}
    for start in (random_start, None):
        while True:
            keys, start = db.scan_keys(limit=1000, start=start)
            if keys:
                return keys[0]
            if start is None:
                break
    return None


@command("ping", -1)
def ping(db: Database, args: list[bytes]) -> bytes:
    """PING [message]. Cost: none."""
    if len(args) > 1:
        raise ReplyError("ERR wrong number of arguments for 'ping' command")
    return args[0] if args else SimpleString(b"PONG")


@command("echo", 2)
def echo(db: Database, args: list[bytes]) -> bytes:
    """ECHO message. Cost: none."""
    return args[0]
