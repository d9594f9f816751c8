"""The single-table layout (docs/data-model.md) for one namespace: keys, head items, expiry, chunks.

Every Redis key is one DynamoDB partition ``pk = namespace + NUL + key``. Its *head* item
(``sk = HEAD``) carries the type ``t``, the expiry ``x`` (epoch ms, checked on every read) and
``tx`` (epoch seconds, the table's TTL attribute, so AWS deletes it eventually). A string lives in
its head: ``n`` (a Number) when it is a canonical integer, so INCR is one atomic UpdateItem, else
``v`` (Binary). A string longer than ``INLINE_LIMIT`` is split into chunk items
``sk = CHUNK + generation + index``; the head names the generation ``g`` and count ``c``, and is
written last, so a reader never sees a half-written value.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError

from . import oplog
from .compact import Limits, Recent, is_compact
from .gateway import ConditionFailed, Gateway, Item, TransactionConditionFailed
from .protocol import WRONGTYPE, ReplyError, canonical_int

HEAD = b"\x00"
CHUNK = b"\x01"
INLINE_LIMIT = 350_000  # bytes of value kept in the head item; DynamoDB's item limit is 400 KB
MAX_VALUE = 64 * 1024 * 1024
TOO_LARGE = f"ERR string exceeds maximum allowed size ({MAX_VALUE} bytes in Redimo)"
PATCH_CHUNKS = 10  # chunks one TransactWriteItems (4 MB) can rewrite in place, with the head
MAX_PARTITION_KEY = 2048  # DynamoDB's limit for a binary partition key
COLLECTION_TYPES = frozenset({"hash", "set", "zset", "list", "stream"})  # see collection.py

LIVE = "(attribute_not_exists(x) OR x > :now)"
DEAD = {"N": "1"}  # the expiry of a head that DEL or GETDEL expired at once (kept for exactly-once)
ABSENT_OR_EXPIRED = "(attribute_not_exists(t) OR x <= :now)"


def millis() -> int:
    return time.time_ns() // 1_000_000


def ttl_seconds(expire_at_ms: int) -> str:
    """The TTL attribute for an expiry: whole seconds, rounded up so AWS never deletes early."""
    return str(-(-expire_at_ms // 1000))


@dataclass
class Record:
    """A live head item, decoded."""

    type: str
    expire_at: int | None
    item: Item

    @property
    def chunks(self) -> int:
        return int(self.item["c"]["N"]) if "c" in self.item else 0

    def unchanged(self) -> tuple[str, dict]:
        """A condition that holds only while the head is exactly as read (for read-modify-write)."""
        for name in ("w", "g", "n", "v"):
            if name in self.item:
                condition = f"{name} = :old_{name}"
                values = {f":old_{name}": self.item[name]}
                break
        else:
            condition, values = "t = :old_t", {":old_t": self.item["t"]}
        if self.expire_at is None:
            return f"{condition} AND attribute_not_exists(x)", values
        return f"{condition} AND x = :old_x", {**values, ":old_x": self.item["x"]}


@dataclass
class Window:
    """Bytes ``base`` .. ``base + len(data)`` of a string value (a bit command reads any other byte as 0)."""

    base: int
    data: bytearray

    def byte(self, at: int) -> int:
        index = at - self.base
        return self.data[index] if 0 <= index < len(self.data) else 0


T = TypeVar("T")
HEADS_KEPT = 1000  # compact collection heads a Database remembers (collection.seen), each at most compact.HINT_BYTES

class Database:
    """One namespace of one table: the analogue of a Redis database."""

    def __init__(self, gateway: Gateway, namespace: str = "0", clock: Callable[[], int] = millis,
                 compact: Limits | None = None, promoted: Recent | None = None, heads: Recent | None = None) -> None:
        if "\x00" in namespace:
            raise ValueError("a namespace cannot contain NUL")
        self.gateway = gateway
        self.namespace = namespace
        self.prefix = namespace.encode() + b"\x00"
        self.clock = clock
        self.compact = compact or Limits()
        self.promoted = promoted if promoted is not None else Recent()
        self.heads = heads if heads is not None else Recent(HEADS_KEPT)  # compact heads last seen (collection.seen)

    def other(self, namespace: str, gateway: Gateway | None = None) -> "Database":
        """The same settings over another namespace (or another gateway, such as a transaction's)."""
        return Database(gateway or self.gateway, namespace, self.clock, self.compact, self.promoted,
                        self.heads if gateway is None else None)  # a transaction's writes are not seen until EXEC

    # -- keys -------------------------------------------------------------------------------
    def pk(self, key: bytes) -> bytes:
        pk = self.prefix + key
        if len(pk) > MAX_PARTITION_KEY:
            raise ReplyError(f"ERR key is too long for DynamoDB: at most {MAX_PARTITION_KEY - len(self.prefix)} "
                             f"bytes in namespace '{self.namespace}'")
        return pk

    def head_key(self, key: bytes) -> Item:
        return {"pk": {"B": self.pk(key)}, "sk": {"B": HEAD}}

    def key_of(self, item: Item) -> bytes:
        return item["pk"]["B"][len(self.prefix):]

    def now(self) -> dict:
        return {":now": {"N": str(self.clock())}}

    # -- head items -------------------------------------------------------------------------
    def record(self, item: Item | None) -> Record | None:
        """The live record of a head item, or None when it is absent or expired."""
        if not item:
            return None
        expire_at = int(item["x"]["N"]) if "x" in item else None
        if expire_at is not None and expire_at <= self.clock():
            return None
        return Record(item["t"]["S"], expire_at, item)

    def load(self, key: bytes, projection: str | None = None) -> Record | None:
        """One GetItem of the head; None for a missing or expired key."""
        return self.record(self.gateway.get(self.head_key(key), projection))

    def load_many(self, keys: Iterable[bytes], projection: str | None = None) -> dict[bytes, Record]:
        """Live heads of distinct keys, ceil(n/100) BatchGetItem requests."""
        items = self.gateway.batch_get([self.head_key(key) for key in keys], projection)
        records = {self.key_of(item): self.record(item) for item in items}
        return {key: record for key, record in records.items() if record}

    def expiry_attributes(self, expire_at: int | None) -> Item:
        if expire_at is None:
            return {}
        return {"x": {"N": str(expire_at)}, "tx": {"N": ttl_seconds(expire_at)}}

    # -- strings ----------------------------------------------------------------------------
    def string_items(self, key: bytes, value: bytes, expire_at: int | None, marks: Item | None = None,
                     generation: bytes | None = None) -> tuple[Item, list[Item]]:
        """The head item (with the extra attributes ``marks``) and chunk items that store a string
        value, chunks under a new (or the given) generation. The head's version ``w`` (random bytes) is
        new on every write, for WATCH."""
        head: Item = {**(marks or {}), **self.head_key(key), "t": {"S": "string"}, "w": {"B": os.urandom(8)},
                      **self.expiry_attributes(expire_at)}
        if len(value) > MAX_VALUE:
            raise ReplyError(TOO_LARGE)
        if len(value) <= INLINE_LIMIT:
            if canonical_int(value) is not None:
                head["n"] = {"N": value.decode()}
            else:
                head["v"] = {"B": value}
            return head, []
        generation = generation or os.urandom(8)
        pieces = [value[i:i + INLINE_LIMIT] for i in range(0, len(value), INLINE_LIMIT)]
        head["g"] = {"B": generation}
        head["c"] = {"N": str(len(pieces))}
        chunks = [{"pk": head["pk"], "sk": {"B": CHUNK + generation + index.to_bytes(4, "big")},
                   "v": {"B": piece}, **self.expiry_attributes(expire_at)}
                  for index, piece in enumerate(pieces)]
        return head, chunks

    def chunk_key(self, head: Item, index: int) -> Item:
        return {"pk": head["pk"], "sk": {"B": CHUNK + head["g"]["B"] + index.to_bytes(4, "big")}}

    def chunk_keys(self, item: Item) -> list[Item]:
        return [self.chunk_key(item, index) for index in range(int(item["c"]["N"]))] if "c" in item else []

    def read_chunks(self, head: Item, indexes: range) -> bytes | None:
        """Chunks of a chunked head, joined: 1 GetItem for one, else ceil(n/100) BatchGetItem. None when
        one is missing (the value was replaced meanwhile) or newer than the head (patched in place since
        it was read: a chunk's ``p`` is the head's patch count that wrote it), so a read never mixes two
        states of the value."""
        keys = [self.chunk_key(head, index) for index in indexes]
        if len(keys) == 1:
            found = [item for item in [self.gateway.get(keys[0])] if item]
        else:
            found = self.gateway.batch_get(keys) if keys else []
        patches = int(head.get("p", {"N": "0"})["N"])
        pieces = {item["sk"]["B"]: item["v"]["B"] for item in found if int(item.get("p", {"N": "0"})["N"]) <= patches}
        if len(pieces) != len(keys):
            return None
        return b"".join(pieces[key["sk"]["B"]] for key in keys)

    def string_value(self, record: Record) -> bytes | None:
        """The bytes of a live string record; None if its chunks were replaced meanwhile."""
        item = record.item
        if "n" in item:
            return item["n"]["N"].encode()
        if "v" in item:
            return item["v"]["B"]
        return self.read_chunks(item, range(record.chunks))

    def get_string(self, key: bytes) -> bytes | None:
        """GET: one GetItem for an inline value (plus ceil(chunks/100) BatchGetItem for a chunked one)."""
        return self.read_string(key)[1]

    def read_string(self, key: bytes) -> tuple[Record | None, bytes | None]:
        """The live string record of a key and its value (WRONGTYPE for another type)."""
        same_head, previous = 0, None
        while True:
            record = self.load(key)
            if record is None:
                return None, None
            if record.type != "string":
                raise ReplyError(WRONGTYPE)
            value = self.string_value(record)
            if value is not None:
                return record, value
            # Chunks missing: normally the value was replaced meanwhile, and the head read again
            # names the new chunks. The same head again and again means they are gone: say so
            # rather than loop forever (a few tries, for eventually consistent reads).
            same_head = same_head + 1 if record.item == previous else 0
            if same_head >= 4:
                raise ReplyError("ERR the value of this key is damaged: some of its chunk items are missing")
            previous = record.item
            if same_head:
                time.sleep(0.01 * 2**same_head)

    def read_window(self, key: bytes, low: int, high: int) -> Window:
        """Bytes ``low`` .. ``high`` of a string (WRONGTYPE for another type; a missing key reads as
        nothing): 1 GetItem of the head, and for a chunked value 1 GetItem (or BatchGetItem) of the
        chunks that hold them."""
        record = self.load(key)
        if record is None:
            return Window(low, bytearray())
        if record.type != "string":
            raise ReplyError(WRONGTYPE)
        if not record.chunks:
            return Window(0, bytearray(self.string_value(record) or b""))
        first = low // INLINE_LIMIT
        data = self.read_chunks(record.item, range(first, min(high // INLINE_LIMIT, record.chunks - 1) + 1))
        if data is None:  # replaced or patched meanwhile: read it whole, as GET does
            return Window(0, bytearray(self.read_string(key)[1] or b""))
        return Window(first * INLINE_LIMIT, bytearray(data))

    def modify_window(self, key: bytes, low: int, high: int, length: int, change: Callable[[Window], T]) -> T:
        """Read-modify-write of bytes ``low`` .. ``high`` of a string grown (with zero bytes) to at least
        ``length``, keeping its TTL; ``change`` edits the window and returns the reply. The value is
        written only when its bytes change, and the write is conditional on the head as read (retried
        from the read when another writer got in between).

        An inline value: 1 GetItem + 1 PutItem (a new chunked value when it grows past INLINE_LIMIT).
        A chunked value: 1 GetItem of the head + 1 GetItem (or BatchGetItem) of the chunks in the
        window + 1 TransactWriteItems of the head (its version, patch count and chunk count) and of
        the chunks that changed or were added, in place; a window of more than PATCH_CHUNKS chunks
        rewrites the whole value under a new generation instead (put_string)."""
        while True:
            record = self.load(key)
            if record is not None and record.type != "string":
                raise ReplyError(WRONGTYPE)
            if length > MAX_VALUE:
                raise ReplyError(TOO_LARGE)
            chunks = record.chunks if record else 0
            grown = (length - 1) // INLINE_LIMIT  # the chunk that will hold the last byte
            first, last = low // INLINE_LIMIT, min(high // INLINE_LIMIT, max(chunks - 1, grown))
            if grown >= chunks:  # growing past the last chunk, which is filled with zeros first
                first = min(first, chunks - 1)
            patch = record is not None and chunks > 0 and last - first < PATCH_CHUNKS
            if patch:
                old = self.read_chunks(record.item, range(first, min(last, chunks - 1) + 1))
                base = first * INLINE_LIMIT
            else:
                old = self.string_value(record) if record else b""
                base = 0
            if old is None:
                continue  # replaced or patched meanwhile
            window = Window(base, bytearray(old))
            window.data.extend(bytes(max(0, length - base - len(old))))
            reply = change(window)
            if window.data == old:
                return reply
            try:
                if patch:
                    self.patch_chunks(record, window, old, max(chunks, grown + 1))
                else:
                    condition, values = record.unchanged() if record else (ABSENT_OR_EXPIRED, self.now())
                    self.put_string(key, bytes(window.data), record.expire_at if record else None, condition,
                                    values, once=oplog.new_record(oplog.PUT), replaces=record.item if record else None)
            except (ConditionFailed, TransactionConditionFailed):
                continue
            return reply

    def patch_chunks(self, record: Record, window: Window, old: bytes, count: int) -> None:
        """Write the chunks of a window (chunk-aligned) that differ from ``old`` and the head, now of
        ``count`` chunks, in one TransactWriteItems conditional on the head as read."""
        patches = int(record.item.get("p", {"N": "0"})["N"]) + 1
        condition, values = record.unchanged()
        head = {"pk": record.item["pk"], "sk": record.item["sk"]}
        actions: list[dict] = [{"Update": {
            "Key": head, "UpdateExpression": "SET w = :w, p = :p, c = :c", "ConditionExpression": condition,
            "ExpressionAttributeValues": {**values, ":w": {"B": os.urandom(8)}, ":p": {"N": str(patches)},
                                          ":c": {"N": str(count)}}}}]
        first = window.base // INLINE_LIMIT
        for at in range(0, len(window.data), INLINE_LIMIT):
            piece = bytes(window.data[at:at + INLINE_LIMIT])
            if piece != old[at:at + INLINE_LIMIT]:
                actions.append({"Put": {"Item": {**self.chunk_key(record.item, first + at // INLINE_LIMIT),
                                                 "v": {"B": piece}, "p": {"N": str(patches)},
                                                 **self.expiry_attributes(record.expire_at)}}})
        self.gateway.transact_write(actions)

    def put_string(self, key: bytes, value: bytes, expire_at: int | None, condition: str | None = None,
                   values: dict | None = None, read_old: bool = False, marks: Item | None = None,
                   once: bytes | None = None, replaces: Item | None = None) -> bytes | None:
        """Write a string (chunks first, head last; ``marks`` are extra head attributes); with
        ``read_old``, returns the replaced live value (read before its chunks are deleted). Raises
        ConditionFailed (after removing the chunks it wrote) when ``condition`` fails.

        ``once`` (an operation record, with a ``condition``) makes the write exactly-once under lost
        replies (oplog.py): a retry that finds the write applied returns None, and the leftovers of
        ``replaces``, the head the condition expects, are deleted. With ``read_old`` it raises redis-py's
        ConnectionError instead: the write was applied once, but the old value left with the lost reply."""
        if once is not None:
            marks = {**(marks or {}), **oplog.logged(replaces, once)}
            condition = oplog.with_condition(condition)
            values = {**(values or {}), **oplog.values(once)}
        head, chunks = self.string_items(key, value, expire_at, marks)
        if chunks:
            self.gateway.batch_write(puts=chunks)
        try:
            old = self.gateway.put(head, condition, values, return_old=True, once=once is not None)
        except ConditionFailed as refused:
            if once is not None and oplog.position(refused.item, once) is not None:
                self.discard(replaces)
                if read_old:
                    raise RedisConnectionError(f"DynamoDB at {self.gateway.endpoint} applied the write once, but "
                                               "its reply, with the old value, was lost") from None
                return None
            self.discard(head)
            raise
        record = self.record(old) if read_old else None
        old_value = self.string_value(record) if record else None
        self.discard(old)
        return old_value

    def discard(self, *old_items: Item | None) -> None:
        """Delete what a replaced or deleted head leaves behind: a string's value chunks (BatchWriteItem),
        a collection's members (a Query of the key's items, then BatchWriteItem)."""
        leftovers = [key for item in old_items if item for key in self.chunk_keys(item)]
        for item in old_items:
            if item and item.get("t", {}).get("S") in COLLECTION_TYPES and not is_compact(item):
                leftovers += [{"pk": member["pk"], "sk": member["sk"]} for member in self.members_of(item)]
        if leftovers:
            self.gateway.batch_write(deletes=leftovers)

    def members_of(self, head: Item) -> Iterator[Item]:
        """Every member item of a collection head's generation: Query pages of its partition (none for
        a compact head, which holds its members)."""
        if is_compact(head):
            return iter(())
        values = {":pk": head["pk"], ":g": head["g"], ":head": {"B": HEAD}}
        return self.gateway.query("pk = :pk AND sk > :head", values, filter_expression="g = :g")

    def all_items(self, key: bytes) -> list[Item]:
        """Every item of a key (head, chunks, members): Query pages of its partition."""
        return list(self.gateway.query("pk = :pk", {":pk": {"B": self.pk(key)}}))

    def set_expiry_of_chunks(self, head: Item, expire_at: int | None) -> None:
        """Chunks carry the head's TTL attribute so AWS deletes them together."""
        for key in self.chunk_keys(head):
            try:
                if expire_at is None:
                    self.gateway.update(key, "REMOVE tx", condition="attribute_exists(pk)")
                else:
                    self.gateway.update(key, "SET tx = :tx", {":tx": {"N": ttl_seconds(expire_at)}},
                                        condition="attribute_exists(pk)")
            except ConditionFailed:
                pass  # replaced meanwhile: nothing to keep alive

    def scan_keys(self, extra_filter: str = "", values: dict | None = None, *, limit: int | None = None,
                  start: Item | None = None) -> tuple[list[bytes], Item | None]:
        """One Scan page of the live heads of the whole table, narrowed to this namespace here, not in
        the filter (moto's begins_with() never matches a Binary attribute; the RCU are the same):
        (keys, DynamoDB's position after the page, or None at the end)."""
        items, last = self.gateway.scan_page(
            filter_expression=f"sk = :head AND {LIVE}" + extra_filter,
            values={":head": {"B": HEAD}, **self.now(), **(values or {})}, projection="pk", limit=limit, start=start)
        return [self.key_of(item) for item in items if item["pk"]["B"].startswith(self.prefix)], last

    def iter_keys(self, extra_filter: str = "", values: dict | None = None, page_size: int | None = None,
                  start: Item | None = None) -> Iterator[bytes]:
        """Every live key of this namespace: Scan pages of the whole table."""
        while True:
            keys, start = self.scan_keys(extra_filter, values, limit=page_size, start=start)
            yield from keys
            if start is None:
                return
