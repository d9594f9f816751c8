"""String commands. Each docstring gives the DynamoDB cost for a value that fits in one item
(values over 350 KB add their chunk items: see docs/data-model.md)."""

from __future__ import annotations

import os
from fractions import Fraction
from typing import Callable

from redis.exceptions import ConnectionError as RedisConnectionError

from .. import oplog
from ..gateway import TRANSACTION_LIMIT, ConditionFailed, TransactionConditionFailed
from ..protocol import (
    INT64_MAX,
    INT64_MIN,
    NOT_INTEGER,
    OK,
    OVERFLOW,
    SYNTAX_ERROR,
    WRONGTYPE,
    ReplyError,
    add_long_double,
    format_long_double,
    parse_int,
    parse_long_double,
    wrong_arity,
)
from ..storage import ABSENT_OR_EXPIRED, DEAD, LIVE, MAX_VALUE, TOO_LARGE, Database, Record, ttl_seconds
from .base import command, options

TRANSACTION_BYTES = 4_000_000  # DynamoDB's 4 MB a transaction, with room for attribute names

STRING = {":string": {"S": "string"}}


def live_string(db: Database, key: bytes) -> Record | None:
    record = db.load(key)
    if record is not None and record.type != "string":
        raise ReplyError(WRONGTYPE)
    return record


def expiry_from_option(db: Database, name: bytes, amount: bytes, command_name: str) -> int:
    """The absolute expiry (ms) of an EX/PX/EXAT/PXAT option, refused as Redis does when it is not
    positive or overflows a signed 64-bit millisecond time."""
    number = parse_int(amount)
    if number <= 0 or (name in (b"EX", b"EXAT") and number > INT64_MAX // 1000):
        raise ReplyError(f"ERR invalid expire time in '{command_name}' command")
    milliseconds = number * 1000 if name in (b"EX", b"EXAT") else number
    if name in (b"EX", b"PX"):
        milliseconds += db.clock()
    if milliseconds > INT64_MAX:
        raise ReplyError(f"ERR invalid expire time in '{command_name}' command")
    return milliseconds


TIMED = frozenset((b"EX", b"PX", b"EXAT", b"PXAT"))


def string_options(args: list[bytes], start: int, for_set: bool) -> tuple[set[bytes], bytes | None]:
    """SET's (``for_set``) or GETEX's options, parsed as Redis's parseExtendedStringArguments
    does: a repeated option is allowed, conflicting ones are a syntax error. Returns the flags and
    the expiry amount, which the caller validates later (Redis checks it after the syntax)."""
    words, flags, amount, index = options(args, start), set(), None, 0
    while index < len(words):
        word, timed = words[index], flags & TIMED
        if word in (b"NX", b"XX") and for_set and not flags & {b"NX", b"XX"} - {word}:
            flags.add(word)
        elif word == b"GET" and for_set:
            flags.add(word)
        elif word == b"KEEPTTL" and for_set and not timed:
            flags.add(word)
        elif word == b"PERSIST" and not for_set and not timed:
            flags.add(word)
        elif (word in TIMED and index + 1 < len(words) and timed <= {word}
              and not flags & {b"KEEPTTL", b"PERSIST"}):
            flags.add(word)
            index += 1
            amount = args[start + index]
        else:
            raise ReplyError(SYNTAX_ERROR)
        index += 1
    return flags, amount


def modify_string(db: Database, key: bytes, change: Callable[[bytes | None], bytes | None]) -> bytes | None:
    """Read-modify-write of a string, keeping its TTL: 1 GetItem + 1 conditional PutItem
    (repeated if another writer got in between). ``change`` returns the new value or None to skip."""
    while True:
        record, old = db.read_string(key)
        new = change(old)
        if new is None:
            return old
        if record is None:
            condition, values = ABSENT_OR_EXPIRED, db.now()
        else:
            condition, values = record.unchanged()
        try:
            db.put_string(key, new, record.expire_at if record else None, condition, values,
                          once=oplog.new_record(oplog.PUT), replaces=record.item if record else None)
            return new
        except ConditionFailed:
            continue


@command("get", 2)
def get(db: Database, args: list[bytes]) -> bytes | None:
    """GET key. Cost: 1 GetItem (1 RCU per 4 KB, strongly consistent by default)."""
    return db.get_string(args[0])


@command("set", -3)
def set_(db: Database, args: list[bytes]) -> bytes | None:
    """SET key value [NX|XX] [GET] [EX|PX|EXAT|PXAT|KEEPTTL].
    Cost: 1 PutItem (1 WCU per KB); KEEPTTL adds 1 GetItem."""
    key, value = args[0], args[1]
    flags, amount = string_options(args, 2, for_set=True)
    timed = flags & TIMED
    expire_at = expiry_from_option(db, min(timed), amount, "set") if timed else None
    condition_flag = b"NX" if b"NX" in flags else b"XX" if b"XX" in flags else None
    return set_string(db, key, value, expire_at, condition_flag, b"GET" in flags, b"KEEPTTL" in flags)


def set_string(db: Database, key: bytes, value: bytes, expire_at: int | None, condition_flag: bytes | None,
               return_old: bool, keep_ttl: bool = False) -> bytes | None:
    """The SET family: replies OK, the old value (GET), or nil when NX/XX refused."""
    while True:
        conditions, values = [], {}
        if condition_flag == b"NX":
            conditions.append(ABSENT_OR_EXPIRED)
        elif condition_flag == b"XX":
            conditions.append(f"attribute_exists(t) AND {LIVE}")
        if return_old:
            conditions.append(f"(t = :string OR {ABSENT_OR_EXPIRED})")
            values.update(STRING)
        if keep_ttl:
            kept = db.load(key, "t, x")
            if kept is not None:
                expire_at = kept.expire_at
                conditions.append("x = :kept" if kept.expire_at is not None else "attribute_not_exists(x)")
                if kept.expire_at is not None:
                    values[":kept"] = kept.item["x"]
            else:
                conditions.append(ABSENT_OR_EXPIRED)
        if any(":now" in condition for condition in conditions):
            values.update(db.now())
        once = oplog.new_record(oplog.PUT) if conditions else None  # GET: conditioned on the type
        try:
            old_value = db.put_string(key, value, expire_at, " AND ".join(conditions) or None, values,
                                      read_old=return_old, once=once)
        except ConditionFailed as refused:
            record = db.record(refused.item)
            refused_by_options = ((condition_flag == b"NX" and record is not None)
                                  or (condition_flag == b"XX" and record is None)
                                  or (return_old and record is not None and record.type != "string"))
            if not refused_by_options:
                continue  # the key changed or expired between our read and our write
            if return_old:
                if record is not None and record.type != "string":
                    raise ReplyError(WRONGTYPE)
                return db.string_value(record) if record else None
            return None
        return old_value if return_old else OK


@command("setnx", 3)
def setnx(db: Database, args: list[bytes]) -> int:
    """SETNX key value. Cost: 1 conditional PutItem."""
    return int(set_string(db, args[0], args[1], None, b"NX", False) is not None)


@command("setex", 4)
def setex(db: Database, args: list[bytes]) -> bytes:
    """SETEX key seconds value. Cost: 1 PutItem."""
    set_string(db, args[0], args[2], expiry_from_option(db, b"EX", args[1], "setex"), None, False)
    return OK


@command("psetex", 4)
def psetex(db: Database, args: list[bytes]) -> bytes:
    """PSETEX key milliseconds value. Cost: 1 PutItem."""
    set_string(db, args[0], args[2], expiry_from_option(db, b"PX", args[1], "psetex"), None, False)
    return OK


@command("getset", 3)
def getset(db: Database, args: list[bytes]) -> bytes | None:
    """GETSET key value. Cost: 1 conditional PutItem returning the old item."""
    return set_string(db, args[0], args[1], None, None, True)


@command("getdel", 2)
def getdel(db: Database, args: list[bytes]) -> bytes | None:
    """GETDEL key. Cost: 1 conditional UpdateItem returning the old item (a chunked value: its chunks
    are read and deleted too). The head is expired, not deleted: it keeps the value until DynamoDB's
    TTL removes it, so a retry after a lost reply finds its operation record and the value (oplog.py)."""
    key = args[0]
    operation = oplog.new_record(oplog.PUT)
    values = {**STRING, **db.now(), ":dead": DEAD, ":tx": {"N": ttl_seconds(db.clock())},
              ":w": {"B": os.urandom(8)}, **oplog.values(operation, shift=True)}
    try:
        old = db.gateway.update(db.head_key(key), f"SET x = :dead, tx = :tx, w = :w, {oplog.SHIFT}", values,
                                condition=f"t = :string AND {LIVE} AND {oplog.NOT_APPLIED}", returns="ALL_OLD",
                                once=True)
    except ConditionFailed as refused:
        if oplog.position(refused.item, operation) is None:
            if db.record(refused.item) is not None:
                raise ReplyError(WRONGTYPE) from None
            return None
        old = refused.item  # applied: the expired head still holds the value
    value = db.string_value(Record("string", None, old))
    db.discard(old)
    return value


@command("getex", -2)
def getex(db: Database, args: list[bytes]) -> bytes | None:
    """GETEX key [EX|PX|EXAT|PXAT|PERSIST]. Cost: 1 GetItem without options, else 1 UpdateItem
    (an invalid expiry adds 1 GetItem: Redis replies nil or WRONGTYPE before checking it)."""
    key = args[0]
    flags, amount = string_options(args, 1, for_set=False)
    timed = flags & TIMED
    if not flags:
        return db.get_string(key)
    if timed:
        try:
            expire_at = expiry_from_option(db, min(timed), amount, "getex")
        except ReplyError:
            if live_string(db, key) is None:
                return None
            raise
        expression, values = "SET x = :x, tx = :tx, w = :w", db.expiry_attributes(expire_at)
        values = {":x": values["x"], ":tx": values["tx"]}
    else:
        expression, values, expire_at = "SET w = :w REMOVE x, tx", {}, None
    values[":w"] = {"B": os.urandom(8)}  # a new version, for WATCH
    try:
        item = db.gateway.update(db.head_key(key), expression, {**values, **STRING, **db.now()},
                                 condition=f"t = :string AND {LIVE}", returns="ALL_NEW")
    except ConditionFailed as refused:
        if db.record(refused.item) is not None:
            raise ReplyError(WRONGTYPE) from None
        return None
    value = db.string_value(Record("string", expire_at, item))
    db.set_expiry_of_chunks(item, expire_at)
    return value


@command("mget", -2)
def mget(db: Database, args: list[bytes]) -> list[bytes | None]:
    """MGET key [key ...]. Cost: ceil(n/100) BatchGetItem; non-strings and missing keys are nil."""
    records = db.load_many(set(args))
    values = {}
    for key, record in records.items():
        if record.type == "string":
            values[key] = db.string_value(record)
    return [values.get(key) for key in args]


def pairs(args: list[bytes], name: bytes) -> dict[bytes, bytes]:
    if not args or len(args) % 2:
        raise wrong_arity(name)
    return dict(zip(args[::2], args[1::2]))


def write_many(db: Database, mapping: dict[bytes, bytes], expire_at: int | None, atomic: bool,
               only_new: bool = False) -> bool:
    """Write several strings: one PutItem for one key; a TransactWriteItems (2 WCU per KB) when
    ``atomic`` and at most 100 keys; else BatchWriteItem, 25 to a request. Chunks of values over
    350 KB are written first. Returns False when ``only_new`` and a key existed."""
    if len(mapping) == 1:
        (key, value), = mapping.items()
        return set_string(db, key, value, expire_at, b"NX" if only_new else None, False) is not None
    heads, chunks = [], []
    for key, value in mapping.items():
        head, key_chunks = db.string_items(key, value, expire_at)
        heads.append(head)
        chunks.extend(key_chunks)
    if atomic and sum(len(head["pk"]["B"]) + len(head.get("v", {}).get("B", b"")) for head in heads) > TRANSACTION_BYTES:
        raise ReplyError(f"ERR the values are too large to write atomically: a DynamoDB transaction holds at most "
                         f"{TRANSACTION_BYTES // 1_000_000} MB (write them with separate SETs)")
    if chunks:
        db.gateway.batch_write(puts=chunks)
    if not atomic:
        db.gateway.batch_write(puts=heads)
        return True
    condition = {"ConditionExpression": ABSENT_OR_EXPIRED, "ExpressionAttributeValues": db.now()} if only_new else {}
    try:
        db.gateway.transact_write([{"Put": {"Item": head, **condition}} for head in heads])
    except TransactionConditionFailed:
        db.discard(*heads)
        return False
    return True


@command("mset", -3)
def mset(db: Database, args: list[bytes]) -> bytes:
    """MSET key value [key value ...]. Atomic for up to 100 distinct keys: 1 TransactWriteItems
    (2 WCU per KB each); beyond that it is not atomic: BatchWriteItem, 25 keys a request."""
    mapping = pairs(args, b"mset")
    write_many(db, mapping, None, atomic=len(mapping) <= TRANSACTION_LIMIT)
    return OK


@command("msetnx", -3)
def msetnx(db: Database, args: list[bytes]) -> int:
    """MSETNX key value [key value ...]. Atomic: 1 TransactWriteItems of at most 100 distinct keys;
    more keys are refused with an error, since DynamoDB cannot make them atomic."""
    mapping = pairs(args, b"msetnx")
    if len(mapping) > TRANSACTION_LIMIT:
        raise ReplyError(f"ERR MSETNX takes at most {TRANSACTION_LIMIT} keys in Redimo (DynamoDB's transaction limit)")
    return int(write_many(db, mapping, None, atomic=True, only_new=True))


def increment(db: Database, key: bytes, delta: int, must_exist: bool = False) -> int | None:
    """INCRBY as one atomic UpdateItem (the value is a DynamoDB Number). An expired key is
    replaced by ``delta`` with one more conditional PutItem. With ``must_exist`` (Django's incr),
    a missing or expired key is left alone and None returned, still in one request."""
    low, high = (INT64_MIN, INT64_MAX - delta) if delta >= 0 else (INT64_MIN - delta, INT64_MAX)
    values = {":delta": {"N": str(delta)}, ":zero": {"N": "0"}, ":low": {"N": str(low)},
              ":high": {"N": str(high)}, **STRING, **db.now()}
    condition = (f"(attribute_not_exists(t) OR (t = :string AND attribute_exists(n) AND n BETWEEN :low AND :high))"
                 f" AND {LIVE} AND {oplog.NOT_APPLIED}")
    if must_exist:
        condition += " AND attribute_exists(t)"
    while True:
        operation = oplog.new_record(oplog.INCREMENT, delta)
        try:
            item = db.gateway.update(db.head_key(key),
                                     f"SET n = if_not_exists(n, :zero) + :delta, t = :string, w = :w, {oplog.SHIFT}",
                                     {**values, ":w": {"B": os.urandom(8)}, **oplog.values(operation, shift=True)},
                                     condition=condition, returns="ALL_NEW", once=True)  # moto's UPDATED_NEW
            return int(item["n"]["N"])  # leaves out an attribute whose value did not change (INCRBY 0)
        except ConditionFailed as refused:
            old_item = refused.item  # (``refused`` is unbound after the except block)
        applied = oplog.position(old_item, operation)
        if applied is not None:  # a retry of a write whose reply was lost
            later = oplog.increments_since(old_item, applied)
            if later is None:
                raise RedisConnectionError("INCRBY was applied, but its reply was lost and the writes since "
                                           "do not tell the value it made")
            return int(old_item["n"]["N"]) - later
        record = db.record(old_item)
        if record is None and must_exist:
            return None
        if record is None:  # expired: start again from zero, without the old TTL
            try:
                db.put_string(key, str(delta).encode(), None, "x = :old_x", {":old_x": old_item["x"]})
                return delta
            except ConditionFailed:
                continue
        if record.type != "string":
            raise ReplyError(WRONGTYPE)
        raise ReplyError(OVERFLOW if "n" in record.item else NOT_INTEGER)


@command("incr", 2)
def incr(db: Database, args: list[bytes]) -> int:
    """INCR key. Cost: 1 UpdateItem."""
    return increment(db, args[0], 1)


@command("decr", 2)
def decr(db: Database, args: list[bytes]) -> int:
    """DECR key. Cost: 1 UpdateItem."""
    return increment(db, args[0], -1)


@command("incrby", 3)
def incrby(db: Database, args: list[bytes]) -> int:
    """INCRBY key increment. Cost: 1 UpdateItem."""
    return increment(db, args[0], parse_int(args[1]))


@command("decrby", 3)
def decrby(db: Database, args: list[bytes]) -> int:
    """DECRBY key decrement. Cost: 1 UpdateItem."""
    delta = parse_int(args[1])
    if delta == INT64_MIN:
        raise ReplyError("ERR decrement would overflow")
    return increment(db, args[0], -delta)


@command("incrbyfloat", 3)
def incrbyfloat(db: Database, args: list[bytes]) -> bytes:
    """INCRBYFLOAT key increment. Cost: 1 GetItem + 1 conditional PutItem (long double arithmetic
    as in Redis on x86-64, formatted as Redis does with 17 decimal places)."""

    def add(old: bytes | None) -> bytes:  # as in Redis, WRONGTYPE is checked before the arguments
        value = parse_long_double(old) if old is not None else Fraction(0)
        total = add_long_double(value, parse_long_double(args[1]))
        if isinstance(total, float):  # inf or nan
            raise ReplyError("ERR increment would produce NaN or Infinity")
        return format_long_double(total)

    return modify_string(db, args[0], add)


@command("append", 3)
def append(db: Database, args: list[bytes]) -> int:
    """APPEND key value. Cost: 1 GetItem + 1 conditional PutItem (DynamoDB cannot concatenate binary)."""
    suffix = args[1]
    return len(modify_string(db, args[0], lambda old: (old or b"") + suffix))


@command("strlen", 2)
def strlen(db: Database, args: list[bytes]) -> int:
    """STRLEN key. Cost: 1 GetItem."""
    return len(db.get_string(args[0]) or b"")


@command("substr", 4)
@command("getrange", 4)
def getrange(db: Database, args: list[bytes]) -> bytes:
    """GETRANGE key start end (and its old name SUBSTR). Cost: 1 GetItem."""
    start, end = parse_int(args[1]), parse_int(args[2])
    value = db.get_string(args[0]) or b""
    length = len(value)
    if start < 0 and end < 0 and start > end:
        return b""
    start = max(start + length if start < 0 else start, 0)
    end = max(end + length if end < 0 else end, 0)
    end = min(end, length - 1)
    return value[start:end + 1] if start <= end and length else b""


@command("setrange", 4)
def setrange(db: Database, args: list[bytes]) -> int:
    """SETRANGE key offset value. Cost: 1 GetItem + 1 conditional PutItem."""
    offset, piece = parse_int(args[1]), args[2]
    if offset < 0:
        raise ReplyError("ERR offset is out of range")

    def overwrite(old: bytes | None) -> bytes | None:  # as Redis: WRONGTYPE, then nothing to do, then size
        if not piece:
            return None
        if offset + len(piece) > MAX_VALUE:
            raise ReplyError(TOO_LARGE)
        old = old or b""
        return old[:offset].ljust(offset, b"\x00") + piece + old[offset + len(piece):]

    return len(modify_string(db, args[0], overwrite) or b"")
