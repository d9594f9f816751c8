"""A pure-Python decoder of Redis RDB files (RDB versions 9 to 12: Redis 5.0 to 7.4) and of DUMP payloads.

:func:`read_rdb` streams a dump.rdb key by key; :func:`parse_dump` decodes one DUMP payload. Every value
type and encoding of those versions is decoded (ziplists, listpacks, intsets, zipmaps, quicklists, LZF,
streams with their consumer groups, hashes with field TTLs); module values are named, not decoded. Bad or
truncated input raises :class:`RDBError` with the byte offset where decoding failed. :func:`dump_payload`
writes a DUMP payload in Redis 7.0's format (DUMP and RESTORE: ``redimo.commands.serialization``).
"""

from __future__ import annotations

import re
import struct
import sys
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterable, Iterator

__all__ = ["RDBError", "StreamID", "Consumer", "PendingEntry", "Group", "Stream", "Entry",
           "read_rdb", "parse_dump", "crc64", "dump_payload"]

StreamID = tuple[int, int]  # (ms, seq)
MAX_VERSION = 12
_CHUNK = 1 << 20
_MAX_READ = 1 << 26
_U64_MAX = (1 << 64) - 1
_MODULE_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


class RDBError(Exception):
    """Bad or truncated input; ``offset`` is the byte offset in the file or payload where decoding failed."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class _Corrupt(ValueError):
    """A malformed blob (ziplist, listpack, ...); turned into an RDBError at the blob's offset."""


@dataclass(slots=True)
class Consumer:
    name: bytes
    seen_time: int  # ms
    active_time: int  # ms; -1 before RDB 11 (STREAM_LISTPACKS_3)
    pending: list[StreamID]  # the ids this consumer owns in the group's PEL


@dataclass(slots=True)
class PendingEntry:
    id: StreamID
    consumer: bytes
    delivery_time: int  # ms
    delivery_count: int


@dataclass(slots=True)
class Group:
    name: bytes
    last_id: StreamID
    entries_read: int  # -1 when unknown
    pending: list[PendingEntry]  # sorted by id
    consumers: list[Consumer]


@dataclass(slots=True)
class Stream:
    entries: list[tuple[StreamID, list[tuple[bytes, bytes]]]]  # live entries in id order
    length: int
    last_id: StreamID
    first_id: StreamID  # (0, 0) when the RDB version does not store it
    max_deleted_id: StreamID  # (0, 0) when not stored
    entries_added: int  # = length when not stored
    groups: list[Group]


@dataclass(slots=True)
class Entry:
    """One key. ``value`` by type: string bytes; list/set list[bytes]; zset list[(member, score)]; hash
    list[(field, value)]; stream Stream; module the module type's 9-character name (value not decoded)."""

    key: bytes
    type: str
    value: object
    expire_ms: int | None = None  # absolute unix ms
    db: int = 0
    offset: int = 0  # where the key's record (its expire/idle/freq opcodes included) starts
    field_expires: dict[bytes, int] | None = None  # hash field TTLs (unix ms), for RDB 12 hash types only


def _crc_tables() -> tuple[list[int], ...]:
    poly = int(f"{0xAD93D23594C935A9:064b}"[::-1], 2)  # reflected form of the Jones polynomial
    first = []
    for i in range(256):
        for _ in range(8):
            i = (i >> 1) ^ poly if i & 1 else i >> 1
        first.append(i)
    tables = [first]
    for _ in range(7):  # slicing-by-8: table k advances a byte through k more zero bytes
        tables.append([first[v & 0xFF] ^ (v >> 8) for v in tables[-1]])
    return tuple(tables)


_TABLES = _crc_tables()
_LITTLE_ENDIAN = sys.byteorder == "little"


def crc64(data: bytes, crc: int = 0) -> int:
    """Redis's CRC-64/Jones (reflected, poly 0xad93d23594c935a9, init 0, no xorout), continuing from ``crc``."""
    t0, t1, t2, t3, t4, t5, t6, t7 = _TABLES
    view = memoryview(data).cast("B")
    whole = len(view) & ~7 if _LITTLE_ENDIAN else 0
    for word in view[:whole].cast("Q"):
        crc ^= word
        crc = (t7[crc & 0xFF] ^ t6[(crc >> 8) & 0xFF] ^ t5[(crc >> 16) & 0xFF] ^ t4[(crc >> 24) & 0xFF]
               ^ t3[(crc >> 32) & 0xFF] ^ t2[(crc >> 40) & 0xFF] ^ t1[(crc >> 48) & 0xFF] ^ t0[crc >> 56])
    for byte in view[whole:]:
        crc = t0[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


def _lzf(data: bytes, size: int) -> bytes:
    """Decompress an LZF block (lzf_d.c) that must expand to ``size`` bytes."""
    out = bytearray()
    i, end = 0, len(data)
    try:
        while i < end:
            ctrl = data[i]
            i += 1
            if ctrl < 32:  # a literal run of ctrl + 1 bytes
                i += ctrl + 1
                if i > end:
                    raise _Corrupt("LZF literal runs past the end of the data")
                out += data[i - ctrl - 1:i]
                continue
            length = ctrl >> 5
            if length == 7:
                length += data[i]
                i += 1
            ref = len(out) - ((ctrl & 0x1F) << 8) - data[i] - 1
            i += 1
            length += 2
            if ref < 0:
                raise _Corrupt("LZF back reference before the start of the output")
            if ref + length <= len(out):
                out += out[ref:ref + length]
            else:  # the copy overlaps its own output: a repeating pattern
                pattern = out[ref:]
                out += (pattern * (length // len(pattern) + 1))[:length]
    except IndexError:
        raise _Corrupt("LZF data ends inside a back reference") from None
    if len(out) != size:
        raise _Corrupt(f"LZF data expands to {len(out)} bytes, not the {size} announced")
    return bytes(out)


class _Reader:
    """Buffered reading of RDB primitives from a file (or from bytes when ``file`` is None), with the
    offset for errors and, optionally, the running CRC of the bytes consumed."""

    __slots__ = ("file", "buf", "pos", "base", "crc", "checksum", "what", "where")

    def __init__(self, file: BinaryIO | None, data: bytes = b"", what: str = "RDB file",
                 checksum: bool = False) -> None:
        self.file, self.buf, self.pos, self.base, self.crc = file, data, 0, 0, 0
        self.checksum, self.what, self.where = checksum, what, ""

    @property
    def offset(self) -> int:
        return self.base + self.pos

    def corrupt(self, message: str, offset: int | None = None) -> RDBError:
        offset = self.offset if offset is None else offset
        return RDBError(f"corrupt {self.what} at byte {offset}{self.where}: {message}", offset)

    def _fill(self, n: int) -> None:
        """Make ``n`` bytes available from ``pos`` on, or raise the truncation error."""
        buf, pos = self.buf, self.pos
        if self.file is not None:
            if self.checksum:
                self.crc = crc64(memoryview(buf)[:pos], self.crc)
            parts, need = [buf[pos:]], n - (len(buf) - pos)
            while need > 0:
                more = self.file.read(min(max(need, _CHUNK), _MAX_READ))  # a corrupt length can be huge
                if not more:
                    break
                parts.append(more)
                need -= len(more)
            self.base += pos
            self.buf, self.pos = b"".join(parts), 0
        if len(self.buf) - self.pos < n:
            end = self.base + len(self.buf)
            raise RDBError(f"truncated {self.what}: ended at byte {end}{self.where}", end)

    def read(self, n: int) -> bytes:
        if self.pos + n > len(self.buf):
            self._fill(n)
        pos = self.pos
        self.pos = pos + n
        return self.buf[pos:pos + n]

    def byte(self) -> int:
        if self.pos >= len(self.buf):
            self._fill(1)
        self.pos += 1
        return self.buf[self.pos - 1]

    def mstime(self) -> int:
        return int.from_bytes(self.read(8), "little", signed=True)

    def _length_or_encoding(self) -> tuple[int, bool]:
        first = self.byte()
        kind = first >> 6
        if kind == 0:
            return first, False
        if kind == 1:
            return (first & 0x3F) << 8 | self.byte(), False
        if kind == 3:
            return first & 0x3F, True
        if first == 0x80:
            return int.from_bytes(self.read(4), "big"), False
        if first == 0x81:
            return int.from_bytes(self.read(8), "big"), False
        raise self.corrupt(f"unknown length encoding 0x{first:02x}", self.offset - 1)

    def length(self) -> int:
        value, encoded = self._length_or_encoding()
        if encoded:
            raise self.corrupt(f"a string encoding (0x{0xC0 | value:02x}) where a length belongs", self.offset - 1)
        return value

    def string(self) -> bytes:
        buf, pos = self.buf, self.pos
        if pos < len(buf) and buf[pos] < 0x40 and pos + 1 + buf[pos] <= len(buf):  # the common short string
            self.pos = end = pos + 1 + buf[pos]
            return buf[pos + 1:end]
        at = self.offset
        value, encoded = self._length_or_encoding()
        if not encoded:
            return self.read(value)
        if value < 3:  # INT8, INT16, INT32
            return b"%d" % int.from_bytes(self.read(1 << value), "little", signed=True)
        if value == 3:
            compressed, size = self.length(), self.length()
            try:
                return _lzf(self.read(compressed), size)
            except _Corrupt as error:
                raise self.corrupt(str(error), at) from None
        raise self.corrupt(f"unknown string encoding {value}", at)

    def blob(self, decode: Callable[[bytes], object], what: str) -> object:
        """Read a string and decode it as a ziplist, listpack, intset, ... (errors at the string's offset)."""
        at = self.offset
        data = self.string()
        try:
            return decode(data)
        except (ValueError, IndexError, TypeError, struct.error) as error:
            raise self.corrupt(f"bad {what}: {error}", at) from None


def _backlen_size(size: int) -> int:
    return 1 if size <= 127 else 2 if size < 16383 else 3 if size < 2097151 else 4 if size < 268435455 else 5


def _listpack(data: bytes) -> list[bytes | int]:
    """The elements of a listpack (listpack.c): integers as ints, strings as bytes."""
    end = len(data) - 1
    if end < 6 or data[end] != 0xFF or int.from_bytes(data[:4], "little") != len(data):
        raise _Corrupt("bad listpack header or terminator")
    out: list[bytes | int] = []
    append = out.append
    p = 6
    while p < end:
        b = data[p]
        if b < 0x80:  # 7-bit unsigned int
            append(b)
            p += 2
            continue
        if b < 0xC0:  # 6-bit length string
            size = 1 + (b & 0x3F)
            append(data[p + 1:p + size])
        elif b < 0xE0:  # 13-bit signed int
            value = (b & 0x1F) << 8 | data[p + 1]
            append(value - 8192 if value >= 4096 else value)
            size = 2
        elif b < 0xF0:  # 12-bit length string
            size = 2 + ((b & 0x0F) << 8 | data[p + 1])
            append(data[p + 2:p + size])
        elif b == 0xF0:  # 32-bit length string
            size = 5 + int.from_bytes(data[p + 1:p + 5], "little")
            append(data[p + 5:p + size])
        elif b <= 0xF4:  # 16, 24, 32, 64-bit signed int
            size = 1 + (2, 3, 4, 8)[b - 0xF1]
            append(int.from_bytes(data[p + 1:p + size], "little", signed=True))
        else:
            raise _Corrupt(f"unknown listpack encoding 0x{b:02x} at byte {p}")
        p += size + _backlen_size(size)
    if p != end:
        raise _Corrupt("listpack entries run past its end")
    return out


_ZIPLIST_INT_WIDTHS = {0xC0: 2, 0xD0: 4, 0xE0: 8, 0xF0: 3, 0xFE: 1}  # 16, 32, 64, 24, 8-bit


def _ziplist(data: bytes) -> list[bytes | int]:
    """The elements of a ziplist (ziplist.c): integers as ints, strings as bytes."""
    end = len(data) - 1
    if end < 10 or data[end] != 0xFF or int.from_bytes(data[:4], "little") != len(data):
        raise _Corrupt("bad ziplist header or terminator")
    out: list[bytes | int] = []
    p = 10
    while p < end:
        p += 1 if data[p] < 254 else 5  # prevlen
        b = data[p]
        if b < 0x40:
            size, p = b, p + 1
        elif b < 0x80:
            size, p = (b & 0x3F) << 8 | data[p + 1], p + 2
        elif b == 0x80:
            size, p = int.from_bytes(data[p + 1:p + 5], "big"), p + 5
        elif 0xF1 <= b <= 0xFD:  # 4-bit immediate 0..12
            out.append((b & 0x0F) - 1)
            p += 1
            continue
        elif b in _ZIPLIST_INT_WIDTHS:
            width = _ZIPLIST_INT_WIDTHS[b]
            out.append(int.from_bytes(data[p + 1:p + 1 + width], "little", signed=True))
            p += 1 + width
            continue
        else:
            raise _Corrupt(f"unknown ziplist encoding 0x{b:02x} at byte {p}")
        out.append(data[p:p + size])
        p += size
    if p != end:
        raise _Corrupt("ziplist entries run past its end")
    return out



def _strings(items: list[bytes | int]) -> list[bytes]:
    return [item if item.__class__ is bytes else b"%d" % item for item in items]


def _pairs(items: list[bytes | int]) -> list[tuple[bytes, bytes]]:
    if len(items) % 2:
        raise _Corrupt("an odd number of elements where pairs are expected")
    items = _strings(items)
    return list(zip(items[::2], items[1::2]))


def _scored(items: list[bytes | int]) -> list[tuple[bytes, float]]:
    if len(items) % 2:
        raise _Corrupt("an odd number of elements where member/score pairs are expected")
    return [(b"%d" % m if m.__class__ is int else m, float(s)) for m, s in zip(items[::2], items[1::2])]


def _intset(data: bytes) -> list[bytes]:
    """The members of an intset (intset.c): 2, 4 or 8-byte little-endian signed integers."""
    width, count = int.from_bytes(data[:4], "little"), int.from_bytes(data[4:8], "little")
    if width not in (2, 4, 8) or len(data) != 8 + width * count:
        raise _Corrupt(f"intset of {len(data)} bytes with encoding {width} and {count} members")
    return [b"%d" % v for v in struct.unpack(f"<{count}{'hiq'[width.bit_length() - 2]}", data[8:])]


def _zipmap(data: bytes) -> list[tuple[bytes, bytes]]:
    """The pairs of a zipmap (zipmap.c, Redis 2.x hashes)."""
    out, p, end = [], 1, len(data) - 1

    def string(p: int, free: bool) -> tuple[bytes, int]:
        size, p = (data[p], p + 1) if data[p] < 254 else (int.from_bytes(data[p + 1:p + 5], "little"), p + 5)
        extra = 0
        if free:
            extra, p = data[p], p + 1
        return data[p:p + size], p + size + extra

    while p < end and data[p] != 0xFF:
        key, p = string(p, False)
        value, p = string(p, True)
        out.append((key, value))
    if p != end or data[end] != 0xFF:
        raise _Corrupt("zipmap entries run past its end")
    return out


def _sid(raw: bytes) -> StreamID:
    return int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:16], "big")


def _stream_node(data: bytes, master: StreamID, out: list) -> None:
    """Append the live entries of one stream listpack node (t_stream.c) to ``out``."""
    items = _listpack(data)
    count, deleted, nfields = items[0], items[1], items[2]
    fields = _strings(items[3:3 + nfields])
    p = 4 + nfields  # after the master entry's terminating 0
    if items[p - 1] != 0:
        raise _Corrupt("stream master entry is not terminated by 0")
    live = dead = 0
    ms0, seq0 = master
    while p < len(items):
        flags, entry_id = items[p], (ms0 + items[p + 1], seq0 + items[p + 2])
        p += 3
        if flags & 2:  # SAMEFIELDS: the values of the master fields
            pairs = list(zip(fields, _strings(items[p:p + nfields])))
            p += nfields
        else:
            n = items[p]
            pairs = _pairs(items[p + 1:p + 1 + 2 * n])
            p += 1 + 2 * n
        p += 1  # lp-count
        if p > len(items):
            raise _Corrupt("stream entry runs past the end of its node")
        if flags & 1:  # DELETED
            dead += 1
        else:
            live += 1
            out.append((entry_id, pairs))
    if (live, dead) != (count, deleted):
        raise _Corrupt(f"node holds {live} live and {dead} deleted entries, its header says {count} and {deleted}")


def _stream(r: _Reader, t: int) -> Stream:
    entries: list = []
    for _ in range(r.length()):
        at = r.offset
        key = r.string()
        if len(key) != 16:
            raise r.corrupt(f"stream node key of {len(key)} bytes, not 16", at)
        master = _sid(key)
        r.blob(lambda data: _stream_node(data, master, entries), "stream listpack")
    length, last_id = r.length(), (r.length(), r.length())
    first_id, max_deleted_id, added = (0, 0), (0, 0), length
    if t >= 19:
        first_id, max_deleted_id, added = (r.length(), r.length()), (r.length(), r.length()), r.length()
    if length != len(entries):
        raise r.corrupt(f"stream length {length} but {len(entries)} live entries")
    groups = []
    for _ in range(r.length()):
        name, group_id = r.string(), (r.length(), r.length())
        entries_read = -1
        if t >= 19:
            entries_read = r.length()
            entries_read = -1 if entries_read == _U64_MAX else entries_read
        pel: dict[StreamID, tuple[int, int]] = {}  # id: (delivery time, delivery count)
        for _ in range(r.length()):
            id_ = _sid(r.read(16))
            if id_ in pel:
                raise r.corrupt(f"group {name!r} lists {id_} twice in its PEL")
            pel[id_] = (r.mstime(), r.length())
        owners: dict[StreamID, bytes] = {}
        consumers = []
        for _ in range(r.length()):
            cname, seen = r.string(), r.mstime()
            active = r.mstime() if t >= 21 else -1
            ids = [_sid(r.read(16)) for _ in range(r.length())]
            for id_ in ids:
                if id_ not in pel or id_ in owners:
                    raise r.corrupt(f"consumer {cname!r} owns {id_}, which is not a free entry of its group's PEL")
                owners[id_] = cname
            consumers.append(Consumer(cname, seen, active, ids))
        if len(owners) != len(pel):
            raise r.corrupt(f"group {name!r} has pending entries that no consumer owns")
        pending = [PendingEntry(id_, owners[id_], *pel[id_]) for id_ in sorted(pel)]
        groups.append(Group(name, group_id, entries_read, pending, consumers))
    return Stream(entries, length, last_id, first_id, max_deleted_id, added, groups)


def _ascii_double(r: _Reader) -> float:
    size = r.byte()
    special = {253: "nan", 254: "inf", 255: "-inf"}.get(size)
    at = r.offset
    text = r.read(size) if special is None else special
    try:
        return float(text)
    except ValueError:
        raise r.corrupt(f"bad score {text!r}", at) from None


def _skip_module_value(r: _Reader) -> None:
    """Walk a module value's opcodes (rdbLoadCheckModuleValue) up to its EOF opcode."""
    while opcode := r.length():
        if opcode in (1, 2):  # SINT, UINT
            r.length()
        elif opcode == 3:  # FLOAT
            r.read(4)
        elif opcode == 4:  # DOUBLE
            r.read(8)
        elif opcode == 5:  # STRING
            r.string()
        else:
            raise r.corrupt(f"unknown module opcode {opcode}")


def _module_name(module_id: int) -> str:
    return "".join(_MODULE_CHARS[(module_id >> (10 + 6 * (8 - i))) & 63] for i in range(9))


def _hash_with_ttls(r: _Reader, t: int) -> tuple[list[tuple[bytes, bytes]], dict[bytes, int]]:
    """RDB 12 hashes with field TTLs: 24/22 (min expire [24 only], then per field: TTL, field, value)
    and 25/23 (min expire [25 only], then a listpack of field, value, TTL triplets)."""
    if t in (22, 24):
        base = r.mstime() if t == 24 else 0
        pairs, expires = [], {}
        for _ in range(r.length()):
            ttl, name, value = r.length(), r.string(), r.string()
            pairs.append((name, value))
            if ttl:
                expires[name] = ttl + base - 1 if t == 24 else ttl  # 24 stores it relative to the min, +1
        return pairs, expires
    if t == 25:
        r.mstime()  # the minimal field expire, implied by the triplets
    at = r.offset
    items = r.blob(_listpack, "hash listpack")
    if len(items) % 3 or any(ttl.__class__ is not int for ttl in items[2::3]):
        raise r.corrupt("hash listpack is not made of field, value, TTL triplets", at)
    names, values = _strings(items[0::3]), _strings(items[1::3])
    expires = {name: ttl for name, ttl in zip(names, items[2::3]) if ttl}
    return list(zip(names, values)), expires


def _value(r: _Reader, t: int) -> tuple[str, object, dict[bytes, int] | None]:
    """Decode one value of RDB type ``t``: (type name, value, field expires)."""
    if t == 0:
        return "string", r.string(), None
    if t in (1, 2):
        return ("list" if t == 1 else "set"), [r.string() for _ in range(r.length())], None
    if t in (3, 5):  # skiplists are written highest score first: reversed to ascending order
        members = [(r.string(), _ascii_double(r) if t == 3 else struct.unpack("<d", r.read(8))[0])
                   for _ in range(r.length())]
        return "zset", members[::-1], None
    if t == 4:
        return "hash", [(r.string(), r.string()) for _ in range(r.length())], None
    if t in (14, 18):
        items: list[bytes] = []
        for _ in range(r.length()):
            container = r.length() if t == 18 else 2
            if container == 1:  # PLAIN node: one large element
                items.append(r.string())
            elif container == 2:
                items += r.blob(lambda data: _strings(_listpack(data) if t == 18 else _ziplist(data)),
                                "quicklist node")
            else:
                raise r.corrupt(f"unknown quicklist container {container}")
        return "list", items, None
    if t in _BLOB_TYPES:
        name, decode = _BLOB_TYPES[t]
        return name, r.blob(decode, f"{name} encoding (type {t})"), None
    if t in (15, 19, 21):
        return "stream", _stream(r, t), None
    if 22 <= t <= 25:
        pairs, expires = _hash_with_ttls(r, t)
        return "hash", pairs, expires
    if t == 7:
        name = _module_name(r.length())
        _skip_module_value(r)
        return "module", name, None
    raise r.corrupt("module value in the pre-GA format (type 6), which Redis itself no longer loads")


_VALUE_TYPES = frozenset([*range(8), *range(9, 26)])
_BLOB_TYPES: dict[int, tuple[str, Callable[[bytes], object]]] = {
    9: ("hash", _zipmap),
    10: ("list", lambda data: _strings(_ziplist(data))),
    11: ("set", _intset),
    12: ("zset", lambda data: _scored(_ziplist(data))),
    13: ("hash", lambda data: _pairs(_ziplist(data))),
    16: ("hash", lambda data: _pairs(_listpack(data))),
    17: ("zset", lambda data: _scored(_listpack(data))),
    20: ("set", lambda data: _strings(_listpack(data))),
}


def read_rdb(file: BinaryIO, *, verify_checksum: bool = True) -> Iterator[Entry]:
    """Yield every key of every database of an RDB file (versions 9 to 12), in file order. Non-key
    records (AUX, RESIZEDB, SLOT_INFO, MODULE_AUX, FUNCTION2, IDLE, FREQ) are skipped. The CRC-64 after
    the EOF opcode is checked unless it is 0 or ``verify_checksum`` is false. Bad input raises RDBError
    (the keys before it have been yielded)."""
    r = _Reader(file, checksum=verify_checksum)
    magic = r.read(9)
    if magic[:5] != b"REDIS":
        raise RDBError(f"not an RDB file: it starts with {magic[:5]!r}, not b'REDIS' (byte 0)", 0)
    if not magic[5:].isdigit():
        raise r.corrupt(f"bad RDB version field {magic[5:]!r}", 5)
    version = int(magic[5:])
    if not 9 <= version <= MAX_VERSION:
        raise RDBError(f"unsupported RDB version {version} (this reader handles versions 9 to {MAX_VERSION},"
                       f" Redis 5.0 to 7.4)", 5)
    db, expire, start = 0, None, None
    while True:
        at = r.offset
        op = r.byte()
        if op < 0xF4:  # a key of value type `op`
            if op not in _VALUE_TYPES:
                raise r.corrupt(f"unknown value type {op}", at)
            r.where = " in a key name"
            key = r.string()
            r.where = f" inside key {key!r}"
            kind, value, field_expires = _value(r, op)
            r.where = ""
            yield Entry(key, kind, value, expire, db, at if start is None else start, field_expires)
            expire = start = None
        elif op == 0xFF:
            break
        elif op in (0xFC, 0xFD, 0xF8, 0xF9):
            start = at if start is None else start
            if op == 0xFC:
                expire = r.mstime()
            elif op == 0xFD:
                expire = int.from_bytes(r.read(4), "little", signed=True) * 1000
            elif op == 0xF8:
                r.length()  # LRU idle seconds
            else:
                r.byte()  # LFU frequency
        elif op == 0xFE:
            db = r.length()
        elif op == 0xFB:
            r.length(), r.length()
        elif op == 0xFA:
            r.string(), r.string()
        elif op == 0xF7:  # MODULE_AUX: module id, `when` (UINT opcode + value), then the module's opcodes
            r.where = " in module aux data"
            module = _module_name(r.length())
            if r.length() != 2:
                raise r.corrupt(f"module aux data of {module} lacks its 'when' field")
            r.length()
            _skip_module_value(r)
            r.where = ""
        elif op == 0xF5:
            r.string()  # a function library's code
        elif op == 0xF4:
            r.length(), r.length(), r.length()  # slot id, keys, expiring keys
        elif op == 0xF6:
            raise r.corrupt("functions in the Redis 7.0 release-candidate format (opcode 0xF6), which Redis"
                            " itself does not load", at)
        else:
            raise r.corrupt(f"unknown opcode 0x{op:02x}", at)
    expected = crc64(memoryview(r.buf)[:r.pos], r.crc) if verify_checksum else 0
    r.checksum, r.where = False, " in the checksum after the EOF opcode"
    at = r.offset
    stored = int.from_bytes(r.read(8), "little")
    if verify_checksum and stored and stored != expected:
        raise RDBError(f"checksum mismatch: the RDB file says 0x{stored:016x}, its bytes give 0x{expected:016x}"
                       f" (byte {at})", at)


def parse_dump(payload: bytes, key: bytes = b"") -> Entry:
    """Decode a DUMP payload (value type, value, 2-byte RDB version, CRC-64; all little-endian) as key ``key``."""
    size = len(payload)
    if size < 11:
        raise RDBError(f"truncated DUMP payload: ended at byte {size}, shorter than its 10-byte footer", size)
    version = int.from_bytes(payload[-10:-8], "little")
    if version > MAX_VERSION:
        raise RDBError(f"unsupported RDB version {version} in the DUMP payload (this reader handles up to"
                       f" {MAX_VERSION})", size - 10)
    stored, expected = int.from_bytes(payload[-8:], "little"), crc64(memoryview(payload)[:-8])
    if stored and stored != expected:
        raise RDBError(f"checksum mismatch: the DUMP payload says 0x{stored:016x}, its bytes give"
                       f" 0x{expected:016x} (byte {size - 8})", size - 8)
    r = _Reader(None, bytes(payload[:-10]), "DUMP payload")
    r.where = f" inside key {key!r}"
    type_ = r.byte()
    if type_ not in _VALUE_TYPES:
        raise r.corrupt(f"unknown value type {type_}", 0)
    kind, value, field_expires = _value(r, type_)
    if r.pos != len(r.buf):
        raise r.corrupt(f"{len(r.buf) - r.pos} unexpected bytes after the value")
    return Entry(key, kind, value, field_expires=field_expires)


# -- writing DUMP payloads ------------------------------------------------------------------------
DUMP_VERSION = 10  # Redis 7.0's RDB version, which Redis 7.0 and later RESTORE
_LISTPACK_NODE = 8192  # bytes of a quicklist node (list-max-listpack-size -2)
_SMALL_ENTRIES, _SMALL_VALUE = 128, 64  # hash/zset-max-listpack-entries and -value: listpack below both
_INTSET_ENTRIES = 512  # set-max-intset-entries
_INTEGER = re.compile(rb"-?[1-9][0-9]*|0")


def _canonical(value: bytes) -> int | None:
    """The int64 Redis's string2ll reads ``value`` as, only when it writes it back the same."""
    if len(value) > 20 or not _INTEGER.fullmatch(value):
        return None
    number = int(value)
    return number if -(1 << 63) <= number < 1 << 63 else None


def _length(n: int) -> bytes:
    if n < 1 << 6:
        return bytes([n])
    if n < 1 << 14:
        return bytes([0x40 | n >> 8, n & 0xFF])
    if n < 1 << 32:
        return b"\x80" + n.to_bytes(4, "big")
    return b"\x81" + n.to_bytes(8, "big")


def _string(value: bytes) -> bytes:
    """An RDB string: small integers in their integer encodings (rdbTryIntegerEncoding), else raw (never
    LZF-compressed: RESTORE takes both)."""
    number = _canonical(value) if len(value) <= 11 else None
    if number is not None:
        for code, width in ((0xC0, 1), (0xC1, 2), (0xC2, 4)):
            if -(1 << 8 * width - 1) <= number < 1 << 8 * width - 1:
                return bytes([code]) + number.to_bytes(width, "little", signed=True)
    return _length(len(value)) + value


def _lp_entry(value: bytes | int) -> bytes:
    """One listpack entry (listpack.c): a string that is a canonical integer is stored as one."""
    number = value if isinstance(value, int) else _canonical(value)
    if number is None:
        size = len(value)
        if size < 64:
            body = bytes([0x80 | size]) + value
        elif size < 4096:
            body = bytes([0xE0 | size >> 8, size & 0xFF]) + value
        else:
            body = b"\xF0" + size.to_bytes(4, "little") + value
    elif 0 <= number <= 127:
        body = bytes([number])
    elif -4096 <= number <= 4095:
        unsigned = number & 0x1FFF
        body = bytes([0xC0 | unsigned >> 8, unsigned & 0xFF])
    else:
        code, width = next((0xF1 + index, width) for index, width in enumerate((2, 3, 4, 8))
                           if -(1 << 8 * width - 1) <= number < 1 << 8 * width - 1)
        body = bytes([code]) + number.to_bytes(width, "little", signed=True)
    size, groups = len(body), []
    while True:  # lpEncodeBacklen: 7 bits a byte, most significant first, all but the first with bit 8 set
        groups.append(size & 127)
        size >>= 7
        if not size:
            break
    return body + bytes([groups[-1], *(group | 128 for group in groups[-2::-1])])


def _listpack_of(entries: list[bytes]) -> bytes:
    body = b"".join(entries)
    return (len(body) + 7).to_bytes(4, "little") + min(len(entries), 65535).to_bytes(2, "little") + body + b"\xFF"


def _listpack_blob(values: list[bytes | int]) -> bytes:
    return _string(_listpack_of([_lp_entry(value) for value in values]))


def _score_text(score: float) -> bytes:
    """d2string: how a zset listpack holds a score."""
    if score == 0:
        return b"-0" if struct.pack(">d", score)[0] & 0x80 else b"0"
    if score in (float("inf"), float("-inf")):
        return b"inf" if score > 0 else b"-inf"
    if -4503599627370495 < score < 4503599627370496 and score == int(score):
        return b"%d" % int(score)
    return b"%.17g" % score


def _small(values: Iterable[bytes], count: int) -> bool:
    return count <= _SMALL_ENTRIES and all(len(value) <= _SMALL_VALUE for value in values)


def _quicklist(items: list[bytes]) -> bytes:
    nodes: list[list[bytes]] = [[]]
    size = 7
    for item in items:
        entry = _lp_entry(item)
        if nodes[-1] and size + len(entry) > _LISTPACK_NODE:
            nodes.append([])
            size = 7
        nodes[-1].append(entry)
        size += len(entry)
    return _length(len(nodes)) + b"".join(b"\x02" + _string(_listpack_of(node)) for node in nodes)


def _intset_blob(numbers: list[int]) -> bytes:
    width = next(width for width in (2, 4, 8) if all(-(1 << 8 * width - 1) <= n < 1 << 8 * width - 1 for n in numbers))
    body = b"".join(n.to_bytes(width, "little", signed=True) for n in sorted(numbers))
    return _string(width.to_bytes(4, "little") + len(numbers).to_bytes(4, "little") + body)


def _stream_blob(value: Stream) -> bytes:
    """STREAM_LISTPACKS_2: nodes of up to 100 entries, each a listpack whose master entry holds its first
    entry's ID and fields; entries with the master's fields are written SAMEFIELDS."""
    out = [_length((len(value.entries) + 99) // 100)]
    for start in range(0, len(value.entries), 100):
        node = value.entries[start:start + 100]
        master_id, master_fields = node[0][0], [name for name, _ in node[0][1]]
        items: list[bytes | int] = [len(node), 0, len(master_fields), *master_fields, 0]
        for (ms, seq), pairs in node:
            same = [name for name, _ in pairs] == master_fields
            items += [2 if same else 0, ms - master_id[0], seq - master_id[1]]
            if same:
                items += [v for _, v in pairs]
            else:
                items += [len(pairs), *[part for pair in pairs for part in pair]]
            items.append(len(pairs) + 3 if same else 2 * len(pairs) + 4)
        out.append(_string(master_id[0].to_bytes(8, "big") + master_id[1].to_bytes(8, "big")) + _listpack_blob(items))
    first = value.entries[0][0] if value.entries else (0, 0)
    out += [_length(len(value.entries)), _length(value.last_id[0]), _length(value.last_id[1]), _length(first[0]),
            _length(first[1]), _length(value.max_deleted_id[0]), _length(value.max_deleted_id[1]),
            _length(value.entries_added), _length(len(value.groups))]
    for group in value.groups:
        out += [_string(group.name), _length(group.last_id[0]), _length(group.last_id[1]),
                _length(_U64_MAX if group.entries_read < 0 else group.entries_read), _length(len(group.pending))]
        out += [_raw_id(p.id) + p.delivery_time.to_bytes(8, "little") + _length(p.delivery_count) for p in group.pending]
        out.append(_length(len(group.consumers)))
        for consumer in group.consumers:
            out += [_string(consumer.name), consumer.seen_time.to_bytes(8, "little"), _length(len(consumer.pending)),
                    *[_raw_id(id_) for id_ in consumer.pending]]
    return b"".join(out)


def _raw_id(id_: StreamID) -> bytes:
    return id_[0].to_bytes(8, "big") + id_[1].to_bytes(8, "big")


def dump_payload(type_: str, value: object) -> bytes:
    """A DUMP payload (RDB version 10, CRC-64) of a value shaped as :class:`Entry` holds it, in the
    encodings Redis 7.0 writes: integers and raw strings (no LZF), quicklists of listpacks, listpack
    hashes and sorted sets up to 128 entries of 64 bytes, intsets up to 512 integers, streams."""
    if type_ == "string":
        body = b"\x00" + _string(value)
    elif type_ == "list":
        body = b"\x12" + _quicklist(value)
    elif type_ == "set":
        numbers = [_canonical(member) for member in value]
        if len(numbers) <= _INTSET_ENTRIES and None not in numbers:
            body = b"\x0B" + _intset_blob(numbers)
        else:
            body = b"\x02" + _length(len(value)) + b"".join(_string(member) for member in value)
    elif type_ == "hash":
        if _small((part for pair in value for part in pair), len(value)):
            body = b"\x10" + _listpack_blob([part for pair in value for part in pair])
        else:
            body = b"\x04" + _length(len(value)) + b"".join(_string(f) + _string(v) for f, v in value)
    elif type_ == "zset":
        if _small((member for member, _ in value), len(value)):
            body = b"\x11" + _listpack_blob([part for member, score in value for part in (member, _score_text(score))])
        else:
            body = b"\x05" + _length(len(value)) + b"".join(_string(member) + struct.pack("<d", score)
                                                            for member, score in value[::-1])
    elif type_ == "stream":
        body = b"\x13" + _stream_blob(value)
    else:
        raise ValueError(f"no DUMP encoding for type {type_}")
    body += DUMP_VERSION.to_bytes(2, "little")
    return body + crc64(body).to_bytes(8, "little")
