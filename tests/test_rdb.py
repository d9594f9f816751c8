"""redimo.rdb against a real redis-server's dump.rdb and DUMP payloads (every encoding Redis 7.0 writes),
and against hand-built RDB bytes for the encodings it no longer writes (ziplists, zipmaps, RDB 11/12 types)."""

from __future__ import annotations

import io
import random
import struct
import time
from pathlib import Path
from typing import Iterator

import pytest
import redis

from redimo import rdb
from redimo.local import redis_server
from redimo.rdb import RDBError, crc64, parse_dump, read_rdb

NOW_MS = int(time.time() * 1000)
BIG = b"".join(b"line %d of a big compressible value;" % (i % 1000) for i in range(60_000))  # 2 MB
NOISE = random.Random(7).randbytes(100_000)


# --- a tiny RDB encoder, for the encodings Redis 7.0 does not write ---------------------------------------

def length(n: int) -> bytes:
    if n < 64:
        return bytes([n])
    if n < 16384:
        return bytes([0x40 | n >> 8, n & 0xFF])
    return b"\x80" + n.to_bytes(4, "big") if n < 1 << 32 else b"\x81" + n.to_bytes(8, "big")


def string(s: bytes) -> bytes:
    return length(len(s)) + s


def rdb_file(body: bytes, version: int = 9) -> bytes:
    data = b"REDIS%04d" % version + body + b"\xff"
    return data + crc64(data).to_bytes(8, "little")


def key(type_: int, name: bytes, value: bytes) -> bytes:
    return bytes([type_]) + string(name) + value


def ziplist(items: list[bytes | int]) -> bytes:
    body, prev, tail = b"", 0, 10
    for item in items:
        if isinstance(item, int):
            if 0 <= item <= 12:
                enc = bytes([0xF1 + item])
            else:
                tag, width = next((t, w) for t, w in ((0xFE, 1), (0xC0, 2), (0xF0, 3), (0xD0, 4), (0xE0, 8))
                                  if -(1 << (8 * w - 1)) <= item < 1 << (8 * w - 1))
                enc = bytes([tag]) + item.to_bytes(width, "little", signed=True)
        elif len(item) < 64:
            enc = bytes([len(item)]) + item
        elif len(item) < 16384:
            enc = bytes([0x40 | len(item) >> 8, len(item) & 0xFF]) + item
        else:
            enc = b"\x80" + len(item).to_bytes(4, "big") + item
        entry = (bytes([prev]) if prev < 254 else b"\xfe" + prev.to_bytes(4, "little")) + enc
        tail, body, prev = 10 + len(body), body + entry, len(entry)
    return (11 + len(body)).to_bytes(4, "little") + tail.to_bytes(4, "little") + len(items).to_bytes(2, "little") \
        + body + b"\xff"


def backlen(n: int) -> bytes:
    size = 1 if n <= 127 else 2 if n < 16383 else 3 if n < 2097151 else 4
    groups = [(n >> (7 * i)) & 127 for i in range(size)][::-1]
    return bytes([groups[0]] + [g | 128 for g in groups[1:]])


def listpack(items: list[bytes | int]) -> bytes:
    body = b""
    for item in items:
        if isinstance(item, int):
            if 0 <= item < 128:
                enc = bytes([item])
            elif -4096 <= item < 4096:
                enc = bytes([0xC0 | (item & 0x1FFF) >> 8, item & 0xFF])
            else:
                tag, width = next((t, w) for t, w in ((0xF1, 2), (0xF2, 3), (0xF3, 4), (0xF4, 8))
                                  if -(1 << (8 * w - 1)) <= item < 1 << (8 * w - 1))
                enc = bytes([tag]) + item.to_bytes(width, "little", signed=True)
        elif len(item) < 64:
            enc = bytes([0x80 | len(item)]) + item
        elif len(item) < 4096:
            enc = bytes([0xE0 | len(item) >> 8, len(item) & 0xFF]) + item
        else:
            enc = b"\xf0" + len(item).to_bytes(4, "little") + item
        body += enc + backlen(len(enc))
    return (7 + len(body)).to_bytes(4, "little") + len(items).to_bytes(2, "little") + body + b"\xff"


def intset(width: int, values: list[int]) -> bytes:
    return width.to_bytes(4, "little") + len(values).to_bytes(4, "little") + b"".join(
        v.to_bytes(width, "little", signed=True) for v in sorted(values))


def zipmap(pairs: list[tuple[bytes, bytes]]) -> bytes:
    def zlen(n: int) -> bytes:
        return bytes([n]) if n < 254 else b"\xfe" + n.to_bytes(4, "little")
    body = b"".join(zlen(len(k)) + k + zlen(len(v)) + b"\x02" + v + b"\x00\x00" for k, v in pairs)
    return bytes([len(pairs)]) + body + b"\xff"


def decode(body: bytes, version: int = 9) -> list[rdb.Entry]:
    return list(read_rdb(io.BytesIO(rdb_file(body, version))))


def value_of(type_: int, payload: bytes, version: int = 9) -> rdb.Entry:
    [entry] = decode(key(type_, b"k", payload), version)
    return entry


INTS = [0, 7, 12, 13, 127, 128, -1, -128, 1000, -4096, 4095, 30000, -32768, 8_000_000, -8_388_608,
        2**31 - 1, -2**31, 2**62, -2**63]
INT_BYTES = [b"%d" % i for i in INTS]
TEXTS = [b"", b"a", b"x" * 63, b"y" * 64, b"z" * 300, b"w" * 5000, b"\x00\xff bin"]


def test_crc64_known_answer_and_increments() -> None:
    assert crc64(b"123456789") == 0xE9C6D914C4B8D9CA  # the CRC-64/Jones check value Redis's crc64.c tests
    data = NOISE[:9999]
    assert crc64(data[4321:], crc64(data[:4321])) == crc64(data)


# --- hand-built encodings -----------------------------------------------------------------------------------

def test_ziplist_types_and_quicklist_v1() -> None:
    items = INTS + TEXTS + [b"z" * 20000]
    assert value_of(10, string(ziplist(items))).value == INT_BYTES + TEXTS + [b"z" * 20000]
    assert value_of(14, length(2) + string(ziplist(items[:5])) + string(ziplist(TEXTS))).value == \
        INT_BYTES[:5] + TEXTS
    entry = value_of(13, string(ziplist([b"f", 5, b"n", b"v" * 300, 100000, b"x"])))
    assert (entry.type, entry.value) == ("hash", [(b"f", b"5"), (b"n", b"v" * 300), (b"100000", b"x")])
    entry = value_of(12, string(ziplist([b"a", 1, b"b", b"2.5", b"c", b"-inf", 7, b"1e300"])))
    assert (entry.type, entry.value) == ("zset", [(b"a", 1.0), (b"b", 2.5), (b"c", float("-inf")), (b"7", 1e300)])


def test_listpack_types_and_quicklist_v2() -> None:
    items = INTS + TEXTS
    entry = value_of(20, string(listpack(items)), 11)
    assert (entry.type, entry.value) == ("set", INT_BYTES + TEXTS)
    entry = value_of(18, length(3) + length(2) + string(listpack(items)) + length(1) + string(b"plain" * 9)
                     + length(2) + string(listpack([b"last"])), 10)
    assert entry.value == INT_BYTES + TEXTS + [b"plain" * 9, b"last"]
    assert value_of(16, string(listpack([b"f", -5, 300, b"v"])), 10).value == [(b"f", b"-5"), (b"300", b"v")]
    assert value_of(17, string(listpack([b"m", b"-0", b"n", 12, b"o", b"nan"])), 10).value[:2] == \
        [(b"m", -0.0), (b"n", 12.0)]


def test_intsets_zipmap_and_plain_types() -> None:
    for width, values in ((2, [-32768, 0, 5, 32767]), (4, [-2**31, 70000]), (8, [-2**63, 2**63 - 1, 1])):
        entry = value_of(11, string(intset(width, values)))
        assert (entry.type, entry.value) == ("set", [b"%d" % v for v in sorted(values)])
    pairs = [(b"name", b"redis"), (b"", b"empty"), (b"big", b"v" * 300)]
    assert value_of(9, string(zipmap(pairs))).value == pairs
    assert value_of(1, length(3) + string(b"a") + b"\xc0\x05" + string(b"")).value == [b"a", b"5", b""]
    assert value_of(2, length(2) + string(b"x") + b"\xc1\x39\x30").value == [b"x", b"12345"]
    assert value_of(4, length(1) + string(b"f") + b"\xc2\xff\xff\xff\xff").value == [(b"f", b"-1")]
    zset = value_of(3, length(4) + string(b"a") + b"\xfe" + string(b"b") + b"\xff" + string(b"c") + b"\x033.5"
                    + string(b"d") + b"\xfd")
    assert [m for m, _ in zset.value] == [b"d", b"c", b"b", b"a"]  # skiplists are stored highest first
    assert zset.value[1][1] == 3.5 and zset.value[2][1] == float("-inf") and zset.value[3][1] == float("inf")
    assert zset.value[0][1] != zset.value[0][1]  # nan
    zset2 = value_of(5, length(2) + string(b"hi") + struct.pack("<d", 2.0) + string(b"lo") + struct.pack("<d", -0.0))
    assert zset2.value == [(b"lo", -0.0), (b"hi", 2.0)] and struct.pack("<d", zset2.value[0][1]) == \
        struct.pack("<d", -0.0)


def test_strings_lengths_and_lzf() -> None:
    # a literal "ab", two overlapping copies (6 bytes, then 209 with the extended length), a literal, a copy
    lzf = b"\x01ab" + b"\x80\x01" + b"\xe0\xc8\x01" + b"\x02xyz" + b"\x20\x02"
    expected = b"abababab" + (b"ab" * 105)[:209] + b"xyzxyz"
    assert _lzf_reference(lzf) == expected
    [entry] = decode(key(0, b"s", b"\xc3" + length(len(lzf)) + length(len(expected)) + lzf))
    assert entry.value == expected
    entries = decode(key(0, b"a", b"\x81" + (5).to_bytes(8, "big") + b"12345")  # 64-bit length
                     + b"\x00\xc0\x07" + b"\xc1\x00\x80"  # an INT8-encoded key name, an INT16 value
                     + b"\x00\xc1\x00\x01" + b"\x80\x00\x00\x00\x01!")  # 32-bit length
    assert [(e.key, e.value) for e in entries] == [(b"a", b"12345"), (b"7", b"-32768"), (b"256", b"!")]


def _lzf_reference(data: bytes) -> bytes:
    """A byte-at-a-time LZF decoder, as in lzf_d.c, to check the fast one."""
    out, i = bytearray(), 0
    while i < len(data):
        ctrl = data[i]
        i += 1
        if ctrl < 32:
            out += data[i:i + ctrl + 1]
            i += ctrl + 1
            continue
        n = ctrl >> 5
        if n == 7:
            n, i = n + data[i], i + 1
        ref = len(out) - ((ctrl & 31) << 8) - data[i] - 1
        i += 1
        for j in range(n + 2):
            out.append(out[ref + j])
    return bytes(out)


def test_opcodes_modules_and_databases() -> None:
    module_id = sum(rdb._MODULE_CHARS.index(c) << (10 + 6 * (8 - i)) for i, c in enumerate("MyType-01")) | 3
    module_value = length(module_id) + b"\x02" + length(7) + b"\x01" + length(2**40) + b"\x03" + struct.pack(
        "<f", 1.5) + b"\x04" + struct.pack("<d", 2.5) + b"\x05" + string(b"payload") + b"\x00"
    body = (b"\xfa" + string(b"redis-ver") + string(b"7.4.0") + b"\xfa" + string(b"ctime") + b"\xc2\x00\x00\x00\x65"
            + b"\xf7" + length(module_id) + b"\x02" + length(1) + b"\x05" + string(b"aux") + b"\x00"
            + b"\xf5" + string(b"#!lua name=lib\nredis.register_function('f', function() return 1 end)")
            + b"\xfe\x00\xfb\x02\x01" + b"\xf4" + length(5) + length(2) + length(1)
            + b"\xf8" + length(1000) + key(0, b"a", string(b"1"))
            + b"\xfc" + (NOW_MS + 5).to_bytes(8, "little") + b"\xf9\x07" + key(7, b"m", module_value)
            + b"\xfd" + (1_900_000_000).to_bytes(4, "little") + key(0, b"b", string(b"2"))
            + b"\xfe\x05" + key(0, b"c", string(b"3")))
    data = rdb_file(body, 12)
    entries = list(read_rdb(io.BytesIO(data)))
    assert [(e.key, e.type, e.value, e.expire_ms, e.db) for e in entries] == [
        (b"a", "string", b"1", None, 0), (b"m", "module", "MyType-01", NOW_MS + 5, 0),
        (b"b", "string", b"2", 1_900_000_000_000, 0), (b"c", "string", b"3", None, 5)]
    assert [data[e.offset] for e in entries] == [0xF8, 0xFC, 0xFD, 0x00]  # a record starts at its first opcode
    assert data[entries[3].offset - 2:entries[3].offset] == b"\xfe\x05"
    with pytest.raises(RDBError, match="pre-GA"):
        decode(key(6, b"m", b""))


def stream_node(master: tuple[int, int], fields: list[bytes], entries: list[tuple]) -> bytes:
    """One stream listpack node: the master entry, then (id, flags, pairs) entries."""
    live = sum(not flags & 1 for _, flags, _ in entries)
    items: list[bytes | int] = [live, len(entries) - live, len(fields), *fields, 0]
    for (ms, seq), flags, pairs in entries:
        items += [flags, ms - master[0], seq - master[1]]
        if flags & 2:
            items += [v for _, v in pairs]
            items.append(len(pairs) + 3)
        else:
            items += [len(pairs), *[part for pair in pairs for part in pair]]
            items.append(2 * len(pairs) + 4)
    return string(master[0].to_bytes(8, "big") + master[1].to_bytes(8, "big")) + string(listpack(items))


def raw_id(ms: int, seq: int) -> bytes:
    return ms.to_bytes(8, "big") + seq.to_bytes(8, "big")


@pytest.mark.parametrize("type_", [15, 19, 21])
def test_streams_of_each_version(type_: int) -> None:
    nodes = [stream_node((5, 0), [b"a", b"b"], [((5, 0), 2, [(b"a", 1), (b"b", b"x")]),
                                                ((5, 1), 3, [(b"a", 2), (b"b", b"y")]),
                                                ((6, 0), 0, [(b"c", b"-9"), (b"d", b"")])]),
             stream_node((9, 0), [b"q"], [((9, 0), 1, [(b"q", b"gone")]), ((10, 2), 2, [(b"q", 300)])])]
    body = length(2) + b"".join(nodes) + length(3) + length(10) + length(2)
    if type_ >= 19:
        body += length(5) + length(0) + length(9) + length(0) + length(7)
    body += length(2)  # groups
    body += string(b"g1") + length(10) + length(2) + (length(4) if type_ >= 19 else b"")
    body += length(2) + raw_id(5, 0) + (1000).to_bytes(8, "little") + length(3) \
        + raw_id(10, 2) + (2000).to_bytes(8, "little") + length(1)
    body += length(2) + string(b"alice") + (111).to_bytes(8, "little") + ((222).to_bytes(8, "little")
                                                                          if type_ >= 21 else b"")
    body += length(1) + raw_id(10, 2)
    body += string(b"bob") + (333).to_bytes(8, "little") + ((444).to_bytes(8, "little") if type_ >= 21 else b"")
    body += length(1) + raw_id(5, 0)
    body += string(b"g2") + length(0) + length(0) + (b"\x81" + b"\xff" * 8 if type_ >= 19 else b"") \
        + length(0) + length(0)
    entry = value_of(type_, body)
    s = entry.value
    assert entry.type == "stream" and isinstance(s, rdb.Stream)
    assert s.entries == [((5, 0), [(b"a", b"1"), (b"b", b"x")]), ((6, 0), [(b"c", b"-9"), (b"d", b"")]),
                         ((10, 2), [(b"q", b"300")])]
    assert (s.length, s.last_id) == (3, (10, 2))
    assert (s.first_id, s.max_deleted_id, s.entries_added) == (((5, 0), (9, 0), 7) if type_ >= 19 else
                                                               ((0, 0), (0, 0), 3))
    g1, g2 = s.groups
    assert (g1.name, g1.last_id, g1.entries_read) == (b"g1", (10, 2), 4 if type_ >= 19 else -1)
    assert g1.pending == [rdb.PendingEntry((5, 0), b"bob", 1000, 3), rdb.PendingEntry((10, 2), b"alice", 2000, 1)]
    active = (222, 444) if type_ >= 21 else (-1, -1)
    assert g1.consumers == [rdb.Consumer(b"alice", 111, active[0], [(10, 2)]),
                            rdb.Consumer(b"bob", 333, active[1], [(5, 0)])]
    assert (g2.name, g2.entries_read, g2.pending, g2.consumers) == (b"g2", -1, [], [])


def test_hashes_with_field_ttls() -> None:
    t1, t2 = NOW_MS + 1000, NOW_MS + 5000
    lp = listpack([b"f1", b"v1", t1, b"f2", 7, 0, b"f3", b"v3", t2])
    for type_, payload in ((25, t1.to_bytes(8, "little") + string(lp)), (23, string(lp))):
        entry = value_of(type_, payload, 12)
        assert (entry.type, entry.value) == ("hash", [(b"f1", b"v1"), (b"f2", b"7"), (b"f3", b"v3")])
        assert entry.field_expires == {b"f1": t1, b"f3": t2}
    fields = length(3) + length(t2 - t1 + 1) + string(b"a") + string(b"1") + length(0) + string(b"b") \
        + string(b"2") + length(1) + string(b"c") + string(b"3")
    entry = value_of(24, t1.to_bytes(8, "little") + fields, 12)
    assert entry.value == [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")] and entry.field_expires == {b"a": t2, b"c": t1}
    pre_ga = length(2) + length(t2) + string(b"a") + string(b"1") + length(0) + string(b"b") + string(b"2")
    entry = value_of(22, pre_ga, 12)
    assert entry.value == [(b"a", b"1"), (b"b", b"2")] and entry.field_expires == {b"a": t2}
    assert value_of(16, string(listpack([b"x", b"y"])), 12).field_expires is None


def test_bad_input() -> None:
    good = rdb_file(key(0, b"a", string(b"1")) + key(0, b"b", string(b"22")))
    with pytest.raises(RDBError, match="not an RDB file") as caught:
        list(read_rdb(io.BytesIO(b"RODIS" + good[5:])))
    assert caught.value.offset == 0
    with pytest.raises(RDBError, match="version 13"):
        list(read_rdb(io.BytesIO(b"REDIS0013" + good[9:])))
    with pytest.raises(RDBError, match="version 8"):
        list(read_rdb(io.BytesIO(b"REDIS0008" + good[9:])))
    bad_type = bytearray(good)
    bad_type[14] = 42  # the second key's type byte
    reader = read_rdb(io.BytesIO(bytes(bad_type)))
    assert next(reader).key == b"a"
    with pytest.raises(RDBError, match="unknown value type 42") as caught:
        next(reader)
    assert caught.value.offset == 14 and str(caught.value).startswith("corrupt RDB file at byte 14")
    flipped = bytearray(good)
    flipped[-10] ^= 1  # inside the last value: decodes, but the CRC no longer matches
    with pytest.raises(RDBError, match="checksum mismatch"):
        list(read_rdb(io.BytesIO(bytes(flipped))))
    assert [e.value for e in read_rdb(io.BytesIO(bytes(flipped)), verify_checksum=False)] == [b"1", b"23"]
    assert [e.value for e in read_rdb(io.BytesIO(good[:-8] + bytes(8)))] == [b"1", b"22"]  # CRC 0: unchecked
    with pytest.raises(RDBError, match="truncated RDB file: ended at byte 10"):
        list(read_rdb(io.BytesIO(good[:10])))
    with pytest.raises(RDBError, match="bad listpack") as caught:
        value_of(20, string(listpack([b"a"])[:-1] + b"\xfe"), 11)
    assert caught.value.offset == 12  # where the listpack string starts
    with pytest.raises(RDBError, match="not a free entry"):
        value_of(19, length(0) + length(0) + length(0) * 2 + length(0) * 5 + length(1) + string(b"g")
                 + length(0) * 3 + length(0) + length(1) + string(b"c") + bytes(8) + length(1) + raw_id(1, 1))
    with pytest.raises(RDBError, match="version 13"):
        parse_dump(b"\x00\x01a" + (13).to_bytes(2, "little") + bytes(8))
    with pytest.raises(RDBError, match="LZF"):
        decode(key(0, b"s", b"\xc3" + length(3) + length(9) + b"\x20\x05\x00"))


# --- a real redis-server ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[redis.Redis, Path]]:
    directory = tmp_path_factory.mktemp("redis")
    with redis_server(directory, "--enable-debug-command", "yes", "--hash-max-listpack-entries", "128",
                      "--zset-max-listpack-entries", "128", "--set-max-intset-entries", "512",
                      "--list-max-listpack-size", "-2") as port:
        client = redis.Redis(port=port)
        fill(client, port)
        yield client, directory / "dump.rdb"


def fill(r: redis.Redis, port: int) -> None:
    """Every type in every encoding Redis 7.0 writes."""
    r.set("int", 12345)
    r.set("bigint", 2**62)
    r.set("negint", -5)
    r.set("not-int", "007")
    r.set("embstr", "hello")
    r.set("raw", "raw value " * 10)
    r.set("empty", "")
    r.set(b"\x00bin\xff\xfekey", b"\x00\xff\xfe\x80 invalid utf-8 \xc3\x28")
    r.set("big", BIG)
    r.set("noise", NOISE)
    r.set("12345", "an integer-looking key")
    r.pfadd("hll", *[f"visitor{i}" for i in range(500)])
    r.pfadd("hll-sparse", "a", "b")
    r.hset("hash-small", mapping={"f": "v", "num": 42, "neg": -7, "big": 123456789012, "long": "x" * 60})
    r.hset("hash-large", mapping={f"field{i}": f"value{i}" for i in range(300)})
    r.hset("hash-wide", mapping={"f": "v" * 100})
    r.sadd("set-int16", 1, 2, 3, -5)
    r.sadd("set-int32", 1, 70000)
    r.sadd("set-int64", 1, 2**40, -2**63)
    r.sadd("set-strings", "a", "b", "c")
    r.sadd("set-large", *range(600))
    scores = {"inf": float("inf"), "-inf": float("-inf"), "negzero": -0.0, "tiny": 1e-300, "half": 3.5,
              "bigint": 2**53, "huge": 1e20, "neg": -17, "pi": 3.141592653589793}
    r.zadd("zset-small", scores)
    r.zadd("zset-large", {**scores, **{f"m{i}": i * 0.25 for i in range(200)}})
    r.zadd("zset-wide", {"x" * 100: 1.0, "y": 2.0})
    r.rpush("list-small", "a", 1, -1, "b", *INTS, "x" * 5000)
    r.config_set("list-compress-depth", 1)
    r.rpush("list-large", *[f"element {i}" for i in range(3000)], *INTS)
    r.config_set("list-compress-depth", 0)
    r.rpush("list-big-element", "a", b"z" * 10000, "b")
    r.execute_command("DEBUG", "QUICKLIST-PACKED-THRESHOLD", 1000)
    r.rpush("list-plain", "a", b"p" * 2000, "b", BIG[:5000], b"q" * 1500)
    r.execute_command("DEBUG", "QUICKLIST-PACKED-THRESHOLD", 1 << 30)
    for i in range(250):
        fields = {"n": i, "text": f"entry {i}"} if i % 7 else {"other": "fields", "n": -i}
        r.xadd("stream", fields, id=f"{1000 + i}-{i % 3}")
    r.xdel("stream", "1000-0", "1010-1", "1100-1", "1101-2", "1249-0")
    r.xgroup_create("stream", "g1", id="0")
    r.xreadgroup("g1", "alice", {"stream": ">"}, count=5)
    r.xreadgroup("g1", "bob", {"stream": ">"}, count=3)
    r.xack("stream", "g1", "1002-2")
    r.xgroup_createconsumer("stream", "g1", "carol")
    r.xclaim("stream", "g1", "carol", 0, ["1003-0"])
    r.xgroup_create("stream", "g2", id="1200-0")
    r.xgroup_create("stream", "g3", id="$")
    r.xadd("stream-set", {"a": 1}, id="5-5")
    r.execute_command("XSETID", "stream-set", "99-0", "ENTRIESADDED", 1000, "MAXDELETEDID", "50-0")
    r.xgroup_create("stream-empty", "g", id="$", mkstream=True)
    r.xadd("stream-drained", {"a": 1})
    r.xadd("stream-drained", {"a": 2})
    r.xtrim("stream-drained", maxlen=0)
    expire_at = NOW_MS + 3_600_123
    for name in ("int", "hash-small", "zset-large", "stream", "list-plain"):
        r.pexpireat(name, expire_at)
    r.function_load("#!lua name=mylib\nredis.register_function('f', function() return 1 end)")
    r3 = redis.Redis(port=port, db=3)
    r3.set("in-db-3", "three")
    r3.hset("hash-db-3", "f", "v")
    r3.pexpireat("hash-db-3", expire_at + 1)


def clients(r: redis.Redis) -> dict[int, redis.Redis]:
    port = r.connection_pool.connection_kwargs["port"]
    return {db: redis.Redis(port=port, db=db) for db in (0, 3)}


def fmt(id_: tuple[int, int]) -> bytes:
    return b"%d-%d" % id_


def live_value(c: redis.Redis, name: bytes, type_: str) -> object:
    """What the live server holds for a key, in the form of Entry.value."""
    if type_ == "string":
        return c.get(name)
    if type_ == "list":
        return c.lrange(name, 0, -1)
    if type_ == "set":
        return sorted(c.smembers(name))
    if type_ == "hash":
        return sorted(c.hgetall(name).items())
    if type_ == "zset":
        return [(m, struct.pack("<d", s)) for m, s in c.zrange(name, 0, -1, withscores=True)]
    info = c.execute_command("XINFO", "STREAM", name, "FULL", "COUNT", 0)
    assert [(i, list(f.items())) for i, f in c.xrange(name)] == [(i, fields_of(f)) for i, f in info[b"entries"]]
    return {
        "entries": [(i, fields_of(f)) for i, f in info[b"entries"]], "length": info[b"length"],
        "last": info[b"last-generated-id"], "first": info[b"recorded-first-entry-id"],
        "deleted": info[b"max-deleted-entry-id"], "added": info[b"entries-added"],
        "groups": [(g[b"name"], g[b"last-delivered-id"], -1 if g[b"entries-read"] is None else g[b"entries-read"],
                    [tuple(p) for p in g[b"pending"]],
                    [(c[b"name"], c[b"seen-time"], [tuple(p) for p in c[b"pending"]]) for c in g[b"consumers"]])
                   for g in info[b"groups"]]}


def fields_of(flat: list[bytes]) -> list[tuple[bytes, bytes]]:
    return list(zip(flat[::2], flat[1::2]))


def decoded_value(entry: rdb.Entry) -> object:
    """An Entry's value in the form of live_value."""
    value = entry.value
    if entry.type == "set":
        return sorted(value)
    if entry.type == "hash":
        return sorted(value)
    if entry.type == "zset":
        return [(m, struct.pack("<d", s)) for m, s in value]
    if entry.type == "stream":
        assert isinstance(value, rdb.Stream)
        times = {(g.name, p.id): p.delivery_time for g in value.groups for p in g.pending}
        return {"entries": [(fmt(i), fields) for i, fields in value.entries], "length": value.length,
                "last": fmt(value.last_id), "first": fmt(value.first_id), "deleted": fmt(value.max_deleted_id),
                "added": value.entries_added,
                "groups": [(g.name, fmt(g.last_id), g.entries_read,
                            [(fmt(p.id), p.consumer, p.delivery_time, p.delivery_count) for p in g.pending],
                            [(c.name, c.seen_time, [(fmt(i), times[g.name, i],
                                                     next(p.delivery_count for p in g.pending if p.id == i))
                                                    for i in c.pending]) for c in g.consumers])
                           for g in value.groups]}
    return value


def saved(r: redis.Redis, path: Path) -> bytes:
    r.save()
    return path.read_bytes()


def test_dump_rdb_matches_the_live_server(server: tuple[redis.Redis, Path]) -> None:
    r, path = server
    data = saved(r, path)
    entries = list(read_rdb(io.BytesIO(data)))
    by_db = clients(r)
    assert sorted((e.db, e.key) for e in entries) == sorted(
        [(0, k) for k in by_db[0].keys()] + [(3, k) for k in by_db[3].keys()])
    for entry in entries:
        c = by_db[entry.db]
        assert entry.type == c.type(entry.key).decode(), entry.key
        assert decoded_value(entry) == live_value(c, entry.key, entry.type), entry.key
        assert (entry.expire_ms or -1) == c.pexpiretime(entry.key), entry.key
        assert data[entry.offset] == 0xFC if entry.expire_ms else data[entry.offset] < 0xF4
        assert entry.field_expires is None
        dumped = parse_dump(c.dump(entry.key), entry.key)
        assert (dumped.key, dumped.type, dumped.value, dumped.expire_ms) == (entry.key, entry.type, entry.value, None)
    found = {(e.db, e.key): e for e in entries}
    assert found[0, b"big"].value == BIG and found[0, b"noise"].value == NOISE
    assert found[0, b"hll"].value.startswith(b"HYLL")
    assert found[0, b"int"].expire_ms == NOW_MS + 3_600_123 and found[3, b"hash-db-3"].expire_ms == NOW_MS + 3_600_124
    assert len(found[0, b"list-large"].value) == 3000 + len(INTS)
    stream = found[0, b"stream"].value
    assert isinstance(stream, rdb.Stream) and stream.length == 245 and len(stream.groups) == 3
    alice, bob, carol = stream.groups[0].consumers
    assert (len(alice.pending), len(bob.pending), carol.pending) == (3, 3, [(1003, 0)])
    assert found[0, b"stream-set"].value.entries_added == 1000
    assert found[0, b"stream-set"].value.max_deleted_id == (50, 0)
    assert found[0, b"stream-empty"].value.entries == [] and found[0, b"stream-drained"].value.length == 0
    assert b"name=mylib" in data  # a FUNCTION2 record, skipped


def test_types_of_the_live_dump(server: tuple[redis.Redis, Path]) -> None:
    """The file holds the RDB types this test means to cover."""
    r, path = server
    types = {}
    for entry in read_rdb(io.BytesIO(data := saved(r, path))):
        position = entry.offset + (9 if data[entry.offset] == 0xFC else 0)
        types[entry.key] = data[position]
    assert types[b"hash-small"] == 16 and types[b"hash-large"] == 4 and types[b"hash-wide"] == 4
    assert types[b"set-int16"] == types[b"set-int64"] == 11 and types[b"set-large"] == types[b"set-strings"] == 2
    assert types[b"zset-small"] == 17 and types[b"zset-large"] == 5 and types[b"zset-wide"] == 5
    assert types[b"list-small"] == types[b"list-large"] == types[b"list-plain"] == 18
    assert types[b"stream"] == 19
    assert r.dump("list-plain")[1] == 5  # 3 PLAIN nodes between packed ones (packed, the 3 would need 2)


@pytest.mark.parametrize("policy, opcode", [("allkeys-lru", 0xF8), ("allkeys-lfu", 0xF9)])
def test_idle_and_freq_opcodes(server: tuple[redis.Redis, Path], policy: str, opcode: int) -> None:
    r, path = server
    before = [(e.db, e.key, e.type, e.value, e.expire_ms) for e in read_rdb(io.BytesIO(saved(r, path)))]
    r.config_set("maxmemory-policy", policy)
    try:
        data = saved(r, path)
    finally:
        r.config_set("maxmemory-policy", "noeviction")
    entries = list(read_rdb(io.BytesIO(data)))
    assert [(e.db, e.key, e.type, e.value, e.expire_ms) for e in entries] == before
    assert {data[e.offset + (9 if e.expire_ms else 0)] for e in entries} == {opcode}


def test_truncated_and_corrupted_dump(server: tuple[redis.Redis, Path]) -> None:
    r, path = server
    data = saved(r, path)
    entries = list(read_rdb(io.BytesIO(data)))
    big = next(i for i, e in enumerate(entries) if e.key == b"big")
    cut = entries[big].offset + 1000
    reader = read_rdb(io.BytesIO(data[:cut]))
    assert [next(reader).key for _ in range(big)] == [e.key for e in entries[:big]]
    with pytest.raises(RDBError, match="truncated RDB file") as caught:
        next(reader)
    assert caught.value.offset == cut and "b'big'" in str(caught.value)
    victim = next(i for i, e in enumerate(entries) if i > big and e.expire_ms is None)
    corrupted = bytearray(data)
    corrupted[entries[victim].offset] = 42
    keys = []
    with pytest.raises(RDBError, match="unknown value type 42") as caught:
        keys.extend(e.key for e in read_rdb(io.BytesIO(bytes(corrupted))))
    assert caught.value.offset == entries[victim].offset and keys == [e.key for e in entries[:victim]]
    payload = bytearray(r.dump("hash-large"))
    payload[20] ^= 0x40
    with pytest.raises(RDBError, match="checksum mismatch"):
        parse_dump(bytes(payload), b"hash-large")
