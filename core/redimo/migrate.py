"""``redimo migrate``: copy a Redis database (a live server, or an RDB file) into a Redimo table.

The source yields decoded keys (:mod:`redimo.rdb`: an RDB file read in order, or SCAN + DUMP of a
live server); each key becomes the items Redimo would hold for it (:func:`items_of`, the same layout
the commands write, compact when small) and the items go to DynamoDB in 25-item BatchWriteItems,
interleaving the keys of a chunk so that no partition is hot. Workers (processes) write chunks in
parallel. Every batch appends the keys it completed to a checkpoint file, so a run that was stopped
resumes where it was and writes no completed key again. docs/migration.md is the guide.
"""

from __future__ import annotations

import base64
import ctypes
import gzip
import hashlib
import json
import math
import multiprocessing
import os
import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit
from typing import Any, Callable, Iterable, Iterator

from redis.exceptions import ResponseError

from . import rdb
from .collection import check_value, member_attributes, new_items
from .commands import hashes, lists, sets, stream_groups, streams, zsets
from .compact import item_size
from .gateway import BATCH_WRITE_LIMIT, Gateway, Item
from .glob import glob_match
from .protocol import ReplyError
from .storage import HEAD, Database, millis

TYPES = ("string", "list", "set", "zset", "hash", "stream")
CHUNK_KEYS = 256  # keys a worker takes at a time ...
CHUNK_BYTES = 4_000_000  # ... or bytes of values, whichever comes first
PRICE_PER_MILLION_WRITES = 0.625  # USD per million write request units, on-demand, us-east-1 (2025)
PRICE_PER_GB_MONTH = 0.25  # USD per GB-month of table storage, us-east-1 (2025)
PR_SET_PDEATHSIG = 1  # prctl option: the signal a process gets when its parent dies
ITEM_OVERHEAD = 100  # bytes DynamoDB adds to each item's stored size (and its index entry's)


class MigrationError(Exception):
    """Bad input or an unusable target: one line for the user."""


class Unsupported(Exception):
    """A key Redimo cannot hold (the reason is the message)."""


# -- keys into items --------------------------------------------------------------------------
def generation_of(run: bytes, pk: bytes) -> bytes:
    """The generation of a key's items in one run: the same on a resumed run, so its items overwrite
    the ones an interrupted batch may have written, leaving nothing behind."""
    return hashlib.blake2b(pk, digest_size=8, key=run).digest()


def digest(pk: bytes) -> str:
    """A key's name in the checkpoint."""
    return hashlib.blake2b(pk, digest_size=8).hexdigest()


def _sid(id_: rdb.StreamID) -> int:
    return id_[0] << 64 | id_[1]


def stream_members(value: rdb.Stream) -> tuple[list[Item], Item]:
    """A stream's member items (entries, groups, consumers, pending entries) and head attributes."""
    first_index = value.entries_added - len(value.entries)
    items: list[Item] = [{"sk": {"B": streams.entry_sk(_sid(id_))},
                          "fv": {"B": streams.encode_fields([part for pair in fields for part in pair])},
                          "ix": streams.number(first_index + index)}
                         for index, (id_, fields) in enumerate(value.entries)]
    for group in value.groups:
        delivered = max([_sid(group.last_id)] + [_sid(entry.id) for entry in group.pending])
        items.append({"sk": {"B": stream_groups.group_sk(group.name)}, "lid": streams.raw_id(_sid(group.last_id)),
                      "er": streams.number(group.entries_read), "hw": streams.raw_id(delivered)})
        items += [{"sk": {"B": stream_groups.consumer_sk(group.name, consumer.name)},
                   "st": streams.number(consumer.seen_time)} for consumer in group.consumers]
        items += [stream_groups.pending_item(group.name, _sid(entry.id), entry.consumer, entry.delivery_time,
                                             entry.delivery_count) for entry in group.pending]
    head = {"lid": streams.raw_id(_sid(value.last_id)), "ea": streams.number(value.entries_added),
            "mdi": streams.raw_id(_sid(value.max_deleted_id))}
    return items, head


def items_of(db: Database, entry: rdb.Entry, generation: bytes) -> list[Item]:
    """The items of one key, its head last (a reader never finds a head naming missing items).
    Raises Unsupported for what Redimo cannot hold."""
    if entry.type == "module":
        raise Unsupported(f"module type {entry.value} (Redis modules' values cannot be moved)")
    if entry.field_expires:
        raise Unsupported("hash with field expirations (HEXPIRE), which Redimo does not keep")
    try:
        if entry.type == "string":
            head, chunks = db.string_items(entry.key, entry.value, entry.expire_ms, generation=generation)
            return [*chunks, head]
        size, head_set = None, None
        if entry.type == "hash":
            members = [hashes.field_item(name, value) for name, value in entry.value]
        elif entry.type == "set":
            members = [member_attributes(sets.MEMBER, member) for member in entry.value]
        elif entry.type == "zset":
            members = [zsets.score_item(member, score) for member, score in entry.value]
        elif entry.type == "list":
            members = [{"sk": {"B": lists.element_sk(index)}, "v": {"B": check_value(value)}}
                       for index, value in enumerate(entry.value)]
            head_set = {"l": lists.number(0), "r": lists.number(len(members))}
        elif entry.type == "stream":
            members, head_set = stream_members(entry.value)
            size = len(entry.value.entries)
        else:
            raise Unsupported(f"unknown type {entry.type}")
        if not members and entry.type != "stream":
            raise Unsupported("empty collection (Redis never stores one)")
        head, items = new_items(db, entry.key, entry.type, members, head_set, entry.expire_ms,
                                size=size, generation=generation)
        return [*items, head]
    except ReplyError as error:
        raise Unsupported(str(error).removeprefix("ERR ")) from None


def write_units(item: Item) -> int:
    """WCU of writing one new item: 1 a KB, plus its by-score index entry."""
    return math.ceil(item_size(item) / 1024) + ("sc" in item)


def offline_database(namespace: str) -> Database:
    """A Database that only builds items (for files and dry runs): it has no DynamoDB client."""
    return Database(Gateway("-", client=SimpleNamespace(meta=None)), namespace)


def weight(entry: rdb.Entry) -> int:
    """About how many bytes a key's value holds (to size chunks)."""
    value = entry.value
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, rdb.Stream):
        return sum(sum(len(a) + len(b) for a, b in fields) + 16 for _, fields in value.entries) + 64
    if isinstance(value, list):
        return sum(len(part) + 8 if isinstance(part, bytes) else len(part[0]) + 8 + (
            len(part[1]) if isinstance(part[1], bytes) else 0) for part in value)
    return 64


def interleave(keyed: list[list[Item]]) -> list[tuple[int, Item]]:
    """The items of several keys, one key after another in turn: (key's index, item)."""
    tagged = [[(index, item) for item in items] for index, items in enumerate(keyed)]
    return [pair for layer in zip_longest(*tagged) for pair in layer if pair is not None]


# -- the checkpoint -----------------------------------------------------------------------------
class Checkpoint:
    """An append-only file: a header line naming the run, then the keys each batch completed. Lines
    are single ``os.write`` calls on an O_APPEND file, so workers share it; a torn last line is ignored."""

    def __init__(self, path: Path, arguments: dict) -> None:
        self.path = path
        self.done: set[str] = set()
        if path.exists():
            lines = path.read_bytes().split(b"\n")
            first = json.loads(lines[0]) if lines[0] else {}
            if first.get("arguments") != arguments:
                raise MigrationError(f"checkpoint {path} belongs to another migration; remove it or pass --checkpoint")
            self.run = bytes.fromhex(first["run"])
            for line in lines[1:-1]:  # the last is empty, or torn
                self.done.update(line.decode().split())
        else:
            self.run = os.urandom(16)
            path.parent.mkdir(parents=True, exist_ok=True)
            header = {"redimo-migrate": 1, "arguments": arguments, "run": self.run.hex()}
            path.write_text(json.dumps(header, sort_keys=True) + "\n")

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def append_line(path: Path, digests: Iterable[str]) -> None:
    """Record completed keys: one write of one line."""
    line = " ".join(digests)
    if line:
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(descriptor, (line + "\n").encode())
        finally:
            os.close(descriptor)


def default_checkpoint(arguments: dict) -> Path:
    name = hashlib.sha256(json.dumps(arguments, sort_keys=True).encode()).hexdigest()[:16]
    return Path(f".redimo-migrate-{name}.checkpoint")


# -- sources ------------------------------------------------------------------------------------
@dataclass
class Selection:
    """Which keys move, and where: database number -> namespace, a glob, a type, a shard."""

    namespaces: dict[int, str]
    match: bytes | None = None
    type: str | None = None
    shard: tuple[int, int] = (0, 1)

    def wants(self, entry: rdb.Entry) -> bool:
        return ((self.match is None or glob_match(self.match, entry.key))
                and (self.type is None or entry.type == self.type) and self.in_shard(entry.key))

    def in_shard(self, key: bytes) -> bool:
        index, count = self.shard
        return count == 1 or int.from_bytes(hashlib.blake2b(key, digest_size=4).digest(), "big") % count == index


class RDBSource:
    """Keys of an RDB file, in file order; progress is the bytes read."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise MigrationError(f"no such RDB file: {path}")
        self.total = self.path.stat().st_size
        self.unit = "B"
        self._file: Any = None

    def position(self) -> int:
        return self.total if self._file is None or self._file.closed else self._file.tell()

    def entries(self, selection: Selection, skip: Callable[[int, bytes], bool]) -> Iterator[rdb.Entry]:
        with self.path.open("rb") as self._file:
            for entry in rdb.read_rdb(self._file):
                if entry.db in selection.namespaces and selection.wants(entry) and not skip(entry.db, entry.key):
                    yield entry


class RedisSource:
    """Keys of a live server: SCAN (with MATCH and TYPE) and, for each page, one pipeline of DUMP and
    PTTL; the DUMP payloads are decoded by :func:`redimo.rdb.parse_dump`. Progress counts keys."""

    def __init__(self, url: str, databases: Iterable[int]) -> None:
        import redis

        self.url, self.unit, self.done_keys = url, "keys", 0
        try:
            self.clients = {db: redis.Redis.from_url(urlsplit(url)._replace(path=f"/{db}").geturl(),
                                                     socket_connect_timeout=10) for db in databases}
            self.total = sum(client.dbsize() for client in self.clients.values())
        except ValueError as error:
            raise MigrationError(f"bad Redis URL {url!r}: {error}") from None
        except redis.AuthenticationError as error:
            raise MigrationError(f"Redis at {url} refused the password: {error}") from None
        except redis.RedisError as error:
            raise MigrationError(f"cannot read Redis at {url}: {error}") from None

    def position(self) -> int:
        return self.done_keys

    def entries(self, selection: Selection, skip: Callable[[int, bytes], bool]) -> Iterator[rdb.Entry]:
        for db, client in self.clients.items():
            cursor = None
            while cursor != 0:
                cursor, keys = client.scan(cursor or 0, match=selection.match, count=1000, _type=selection.type)
                keys = [key for key in keys if selection.in_shard(key)]
                self.done_keys += len(keys)
                keys = [key for key in keys if not skip(db, key)]
                pipe = client.pipeline(transaction=False)
                for key in keys:
                    pipe.dump(key)
                    pipe.pttl(key)
                replies = pipe.execute() if keys else []
                now = millis()
                for key, payload, ttl in zip(keys, replies[::2], replies[1::2]):
                    if payload is None or ttl == -2:
                        continue  # gone since SCAN listed it
                    entry = rdb.parse_dump(payload, key)
                    entry.db, entry.expire_ms = db, (now + ttl if ttl >= 0 else None)
                    yield entry


def open_source(source: str, databases: Iterable[int]) -> RDBSource | RedisSource:
    if "://" in source:
        if not source.startswith(("redis://", "rediss://", "unix://")):
            raise MigrationError(f"bad source {source!r}: give a redis:// or rediss:// URL, or an RDB file's path")
        return RedisSource(source, databases)
    return RDBSource(source)


# -- writing ------------------------------------------------------------------------------------
@dataclass
class Tally:
    """What a migration did (summed over chunks and workers)."""

    keys: Counter = field(default_factory=Counter)  # written, by type
    items: int = 0
    bytes: int = 0
    write_units: float = 0.0  # as DynamoDB reported (or, for a dry run, estimated)
    index_entries: int = 0
    requests: int = 0
    expired: int = 0
    unsupported: list[dict] = field(default_factory=list)

    def add(self, other: "Tally") -> None:
        self.keys.update(other.keys)
        self.items += other.items
        self.bytes += other.bytes
        self.write_units += other.write_units
        self.index_entries += other.index_entries
        self.requests += other.requests
        self.expired += other.expired
        self.unsupported += other.unsupported


@dataclass
class Target:
    """Where items go: a table (``gateway_options`` for :class:`Gateway`), files, or nowhere (dry run)."""

    table: str | None
    gateway_options: dict
    namespaces: dict[int, str]
    run: bytes
    checkpoint: Path | None
    files: Path | None = None
    dry_run: bool = False


class Writer:
    """Turns chunks of keys into items and writes them (one per process)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.gateway = Gateway(target.table or "-", **target.gateway_options) if target.table else None
        self.databases = {db: Database(self.gateway, namespace) if self.gateway else offline_database(namespace)
                          for db, namespace in target.namespaces.items()}

    def write_chunk(self, entries: list[rdb.Entry]) -> Tally:
        tally, keyed, names = Tally(), [], []
        now = millis()
        for entry in entries:
            db = self.databases[entry.db]
            if entry.expire_ms is not None and entry.expire_ms <= now:
                tally.expired += 1
                continue
            try:
                pk = db.pk(entry.key)
                items = items_of(db, entry, generation_of(self.target.run, pk))
            except (Unsupported, ReplyError) as reason:  # ReplyError: a key too long for DynamoDB
                tally.unsupported.append({"db": entry.db, "key": entry.key, "type": entry.type,
                                          "reason": str(reason).removeprefix("ERR ")})
                continue
            keyed.append(items)
            names.append(digest(pk))
            tally.keys[entry.type] += 1
            tally.items += len(items)
            tally.index_entries += sum("sc" in item for item in items)
            tally.bytes += weight(entry)
        pairs = interleave(keyed)
        if self.target.dry_run:
            tally.write_units = sum(write_units(item) for _, item in pairs)
            tally.requests = math.ceil(len(pairs) / BATCH_WRITE_LIMIT)
        elif self.target.files is not None:
            if names:
                self.write_files(names[0], [item for _, item in pairs])
                self.checkpoint_keys(names)
        else:
            self.write_table(pairs, keyed, names, tally)
        return tally

    def write_table(self, pairs: list[tuple[int, Item]], keyed: list[list[Item]], names: list[str],
                    tally: Tally) -> None:
        assert self.gateway is not None
        before = self.gateway.usage.snapshot()
        left = [len(items) for items in keyed]
        for start in range(0, len(pairs), BATCH_WRITE_LIMIT):
            batch = pairs[start:start + BATCH_WRITE_LIMIT]
            self.gateway.batch_write(puts=[item for _, item in batch])
            completed = []
            for index, _ in batch:
                left[index] -= 1
                if not left[index]:
                    completed.append(names[index])
            self.checkpoint_keys(completed)
        spent = self.gateway.usage - before
        tally.requests += spent.total_requests
        tally.write_units += spent.write_units

    def checkpoint_keys(self, names: list[str]) -> None:
        if self.target.checkpoint is not None:
            append_line(self.target.checkpoint, names)

    def write_files(self, first: str, items: list[Item]) -> None:
        """DynamoDB JSON for S3 ImportTable: one gzip file a chunk (named after its first key, so a
        resumed run adds files), an ``{"Item": ...}`` a line."""
        assert self.target.files is not None
        path = self.target.files / f"redimo-{first}.json.gz"
        with gzip.open(path.with_suffix(".tmp"), "wt") as out:
            for item in items:
                out.write(json.dumps({"Item": dynamodb_json(item)}, separators=(",", ":")) + "\n")
        path.with_suffix(".tmp").rename(path)


def dynamodb_json(value: Any) -> Any:
    """Attribute values as DynamoDB's JSON: binary as base64 text."""
    if isinstance(value, dict):
        return {name: (base64.b64encode(part).decode() if name == "B" and isinstance(part, bytes)
                       else [base64.b64encode(b).decode() for b in part] if name == "BS"
                       else dynamodb_json(part)) for name, part in value.items()}
    if isinstance(value, list):
        return [dynamodb_json(part) for part in value]
    return value


_writer: Writer | None = None


def _start_worker(target: Target) -> None:
    global _writer
    try:  # Linux: end with the command, even when it is killed, so that a resumed run writes alone
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (AttributeError, OSError):
        pass
    _writer = Writer(target)


def _write_in_worker(entries: list[rdb.Entry]) -> Tally:
    assert _writer is not None
    return _writer.write_chunk(entries)


def chunks(entries: Iterator[rdb.Entry]) -> Iterator[list[rdb.Entry]]:
    """The keys in chunks of CHUNK_KEYS or CHUNK_BYTES; at an RDBError, the keys read before it first."""
    chunk, size = [], 0
    try:
        for entry in entries:
            chunk.append(entry)
            size += weight(entry)
            if len(chunk) >= CHUNK_KEYS or size >= CHUNK_BYTES:
                yield chunk
                chunk, size = [], 0
    except rdb.RDBError as error:
        if chunk:
            yield chunk
        raise error
    if chunk:
        yield chunk


def run(source: RDBSource | RedisSource, selection: Selection, target: Target, workers: int,
        skip: Callable[[int, bytes], bool], progress: Callable[[int, int], None], tally: Tally) -> None:
    """Copy every selected key into ``tally``, ``workers`` processes writing chunks (1: in this
    process); ``progress`` gets the source position and the keys done so far after each chunk. An
    RDBError of the source is raised once the chunks before it are written."""

    def done(result: Tally) -> None:
        tally.add(result)
        progress(source.position(), sum(tally.keys.values()))

    pieces = chunks(source.entries(selection, skip))
    if workers <= 1:  # this process: the next chunk is read while one is written (botocore waits without the GIL)
        writer = Writer(target)
        with ThreadPoolExecutor(1) as pool:
            writing = None
            try:
                for chunk in pieces:
                    if writing is not None:
                        done(writing.result())
                    writing = pool.submit(writer.write_chunk, chunk)
            finally:
                if writing is not None:
                    done(writing.result())
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_start_worker, initargs=(target,)) as pool:
        waiting: list = []
        try:
            for chunk in pieces:
                waiting.append(pool.apply_async(_write_in_worker, (chunk,)))
                while len(waiting) >= 2 * workers or (waiting and waiting[0].ready()):
                    done(waiting.pop(0).get())
        except rdb.RDBError:
            for result in waiting:
                done(result.get())
            raise
        for result in waiting:
            done(result.get())


def dollars(write_units: float) -> float:
    return write_units / 1_000_000 * PRICE_PER_MILLION_WRITES


# -- the command ---------------------------------------------------------------------------------
@dataclass
class Options:
    """``redimo migrate``'s arguments (see cli.py)."""

    source: str
    namespaces: dict[int, str]
    table: str | None = None
    gateway_options: dict = field(default_factory=dict)
    match: bytes | None = None
    type: str | None = None
    shard: tuple[int, int] = (0, 1)
    workers: int = 1
    checkpoint: Path | None = None  # None: default_checkpoint
    files: Path | None = None
    dry_run: bool = False

    def arguments(self) -> dict:
        """What identifies the migration, for its checkpoint."""
        source = self.source if "://" in self.source else str(Path(self.source).resolve())
        return {"source": source, "table": self.table, "files": str(self.files) if self.files else None,
                "namespaces": {str(db): ns for db, ns in sorted(self.namespaces.items())},
                "match": self.match.decode("latin-1") if self.match else None, "type": self.type,
                "shard": list(self.shard)}


def summary(options: Options, tally: Tally, seconds: float, resumed: int, stopped: str | None) -> dict:
    written = sum(tally.keys.values())
    result = {"source": options.source, "table": options.table,
              "namespaces": {str(db): ns for db, ns in options.namespaces.items()},
              "dry_run": options.dry_run, "files": str(options.files) if options.files else None,
              "keys": written, "keys_by_type": dict(tally.keys), "items": tally.items,
              "index_entries": tally.index_entries, "value_bytes": tally.bytes, "requests": tally.requests,
              "write_units": round(tally.write_units, 1), "seconds": round(seconds, 2),
              "keys_per_second": round(written / seconds, 1) if seconds > 0 else None,
              "skipped_expired": tally.expired, "skipped_already_copied": resumed,
              "unsupported": [{**entry, "key": entry["key"].decode("utf-8", "backslashreplace")}
                              for entry in tally.unsupported],
              "stopped": stopped}
    if options.dry_run:
        result["estimated_dollars"] = round(dollars(tally.write_units), 4)
        result["estimated_storage_gb"] = round((tally.bytes + ITEM_OVERHEAD * (tally.items + tally.index_entries)) / 1e9, 6)
    return result


def migrate(options: Options, progress: Callable[[int, int, int], None] = lambda total, position, keys: None) -> dict:
    """Run a migration; returns its summary (see ``summary``). ``progress`` gets the source's total
    (bytes of the file, or keys of the server), the position in it and the keys copied, after each
    chunk. Raises MigrationError for bad input, before anything is written."""
    source = open_source(options.source, options.namespaces)
    writes = not options.dry_run and options.files is None
    if writes:
        if not options.table:
            raise MigrationError("give --table (or --dry-run, or --to-files)")
        gateway = Gateway(options.table, **options.gateway_options)
        try:
            gateway.get({"pk": {"B": b"\x00"}, "sk": {"B": HEAD}})  # the table is there (1 GetItem)
        except ResponseError as error:  # the gateway's message names the table and the endpoint
            raise MigrationError(str(error)) from None
    if options.files is not None:
        options.files.mkdir(parents=True, exist_ok=True)
    checkpoint = None
    if not options.dry_run:
        checkpoint = Checkpoint(options.checkpoint or default_checkpoint(options.arguments()), options.arguments())
    prefixes = {db: namespace.encode() + b"\x00" for db, namespace in options.namespaces.items()}
    resumed = 0

    def skip(db: int, key: bytes) -> bool:
        nonlocal resumed
        if checkpoint is not None and digest(prefixes[db] + key) in checkpoint.done:
            resumed += 1
            return True
        return False

    target = Target(options.table, options.gateway_options, options.namespaces,
                    checkpoint.run if checkpoint else os.urandom(16), checkpoint.path if checkpoint else None,
                    options.files, options.dry_run)
    start, stopped = time.monotonic(), None
    selection = Selection(options.namespaces, options.match, options.type, options.shard)
    tally = Tally()
    try:
        run(source, selection, target, options.workers, skip,
            lambda position, keys: progress(source.total, position, keys + resumed), tally)
    except rdb.RDBError as error:
        if error.offset < 9:  # the header: not an RDB file this reader takes
            raise MigrationError(f"{options.source}: {error}") from None
        stopped = str(error)
    if checkpoint is not None and stopped is None:
        checkpoint.remove()
    return summary(options, tally, time.monotonic() - start, resumed, stopped)
