"""DUMP, RESTORE, MOVE, OBJECT and TIME: differential tests against a real redis-server, DUMP payloads
carried both ways between redis-server and Redimo for every type, and what RESTORE leaves behind."""

from __future__ import annotations

import random
import time

import pytest
import redis

from differential import Error, Pair, raw
from redimo import Redimo, rdb
from redimo.storage import HEAD

FUTURE_MS = 4_102_444_800_000  # 2100-01-01


def build_every_type(client: redis.Redis) -> list[bytes]:
    """One key of each type and encoding on ``client`` (redis-server): small and large, with TTLs."""
    client.set(b"str", b"hello")
    client.set(b"int", b"-12345")
    client.set(b"big-int", b"123456789012")
    client.set(b"long", b"abc" * 1000)
    client.set(b"huge", bytes(range(256)) * 2000)  # 512,000 bytes: chunked in Redimo
    client.set(b"ttl", b"v", pxat=FUTURE_MS)
    client.rpush(b"list", b"a", b"1", b"-5000", b"70000", b"x" * 100, b"")
    client.rpush(b"big-list", *[b"element-%d" % i for i in range(3000)])
    client.sadd(b"intset", 1, -2, 40000, 9223372036854775807)
    client.sadd(b"set", b"a", b"b", b"\x00", b"")
    client.sadd(b"big-intset", *range(600))
    client.hset(b"hash", mapping={b"a": b"1", b"b": b"two", b"\xff": b""})
    client.hset(b"big-hash", mapping={b"field-%d" % i: b"v" * 100 for i in range(200)})
    client.zadd(b"zset", {b"a": 1.5, b"b": -2, b"c": 0, b"d": 1e300, b"e": float("inf"), b"f": float("-inf")})
    client.zadd(b"big-zset", {b"member-%d" % i: i / 7 for i in range(300)})
    client.pexpireat(b"big-zset", FUTURE_MS)
    client.xadd(b"stream", {b"f": b"v", b"g": b"w"}, id=b"1-1")
    client.xadd(b"stream", {b"f": b"v2", b"g": b"w2"}, id=b"1-2")
    client.xadd(b"stream", {b"other": b"x"}, id=b"5-0")
    client.xadd(b"stream", {b"f": b"v3", b"g": b"w3"}, id=b"5-7")
    client.xdel(b"stream", b"1-2")
    client.xgroup_create(b"stream", b"group", id=b"0")
    client.xreadgroup(b"group", b"alice", {b"stream": b">"}, count=2)
    client.xgroup_create(b"stream", b"idle", id=b"$")
    client.xgroup_createconsumer(b"stream", b"idle", b"bob")
    for index in range(250):
        client.xadd(b"big-stream", {b"n": str(index).encode(), b"pad": b"p" * (index % 7)})
    client.xadd(b"empty-stream", {b"f": b"v"}, id=b"2-2")
    client.xdel(b"empty-stream", b"2-2")
    client.xgroup_create(b"empty-stream", b"g", id=b"0")
    return [key for key in client.keys(b"*")]


def normal(payload: bytes) -> object:
    """A DUMP payload's value in a form that does not depend on hash-table order."""
    entry = rdb.parse_dump(payload)
    if entry.type in ("set", "hash"):
        return entry.type, sorted(entry.value)
    return entry.type, entry.value


@pytest.mark.parametrize("pair", ["default", "promoted"], indirect=True)
def test_dump_restore_both_ways(pair: Pair) -> None:
    """redis-server DUMP -> Redimo RESTORE -> Redimo DUMP -> redis-server RESTORE: the same value."""
    keys = build_every_type(pair.redis)
    for key in keys:
        payload = pair.redis.execute_command(b"DUMP", key)
        ttl = pair.redis.execute_command(b"PEXPIRETIME", key)
        restore = [b"RESTORE", key, str(max(ttl, 0)).encode(), payload] + ([b"ABSTTL"] if ttl > 0 else [])
        assert pair.redimo.execute_command(*restore) == b"OK", key
        assert pair.redimo.execute_command(b"PEXPIRETIME", key) == ttl, key
        assert pair.redimo.execute_command(b"TYPE", key) == pair.redis.execute_command(b"TYPE", key)
        ours = pair.redimo.execute_command(b"DUMP", key)
        assert normal(ours) == normal(payload), key
        assert pair.redis.execute_command(b"RESTORE", b"copy", b"0", ours, b"REPLACE") == b"OK", key
        assert normal(pair.redis.execute_command(b"DUMP", b"copy")) == normal(payload), key
    for key in (b"list", b"big-list"):
        pair.same(b"LRANGE", key, b"0", b"-1")
    pair.same(b"XINFO", b"STREAM", b"stream")
    expected, got = pair.both(b"XPENDING", b"stream", b"group", b"-", b"+", b"10")
    assert [[i, c, n] for i, c, _, n in got] == [[i, c, n] for i, c, _, n in expected]  # idle times: clocks differ
    pair.same(b"ZRANGE", b"big-zset", b"0", b"-1", b"WITHSCORES")


def test_dump_bytes_match_redis(pair: Pair) -> None:
    """Where Redis would not compress (LZF) and its hash tables do not order, the payloads are Redis's own."""
    pair.same(b"SET", b"s", b"short")
    pair.same(b"SET", b"i", b"-70000")
    pair.same(b"RPUSH", b"l", b"a", b"1", b"-5000", b"300", b"70000", b"9999999999")
    pair.same(b"SADD", b"is", b"5", b"-1", b"300000")
    pair.same(b"HSET", b"h", b"a", b"1", b"b", b"x")
    pair.same(b"ZADD", b"z", b"1.5", b"a", b"-2", b"b", b"inf", b"c", b"3", b"d")
    pair.same(b"XADD", b"x", b"1-1", b"f", b"v")
    pair.same(b"XADD", b"x", b"2-0", b"f", b"w")
    pair.same(b"XADD", b"x", b"3-0", b"g", b"w")
    pair.same(b"XGROUP", b"CREATE", b"x", b"g", b"0")
    noise = random.Random(7).randbytes  # incompressible: Redis writes it without LZF too
    edges = [b"%d" % n for n in (0, 127, 128, -1, -4096, 4095, -4097, 4096, 32767, -32769, 8388607, -8388609,
                                 2**31 - 1, -2**31 - 1, 2**63 - 1, -2**63)]
    pair.same(b"RPUSH", b"edges", *edges, noise(63), noise(64), noise(300), b"007", b"-0", b"1.0")
    pair.same(b"SADD", b"wide", b"-8817420637164285981", b"7307228399447530581")  # an intset of 8-byte integers
    for key in (b"s", b"i", b"l", b"is", b"h", b"z", b"x", b"edges", b"wide", b"missing"):
        pair.same(b"DUMP", key)


def test_restore_options_and_errors(pair: Pair) -> None:
    pair.same(b"SET", b"src", b"value")
    pair.same(b"SET", b"busy", b"1")
    payload = pair.redis.execute_command(b"DUMP", b"src")
    corrupt = payload[:-1] + bytes([payload[-1] ^ 1])
    newer = payload[:-10] + (11).to_bytes(2, "little") + rdb.crc64(payload[:-10] + (11).to_bytes(2, "little")).to_bytes(8, "little")
    body = b"\x02\x00"  # an empty set: Redis never stores one
    empty = body + (10).to_bytes(2, "little") + rdb.crc64(body + (10).to_bytes(2, "little")).to_bytes(8, "little")
    body = b"\x3f\x00"  # an unknown type
    unknown = body + (10).to_bytes(2, "little") + rdb.crc64(body + (10).to_bytes(2, "little")).to_bytes(8, "little")
    for args in [(b"k", b"0", payload), (b"k", b"0", payload), (b"k", b"0", payload, b"REPLACE"),
                 (b"busy", b"0", corrupt), (b"busy", b"x", payload), (b"busy", b"-1", payload),
                 (b"k2", b"0", corrupt), (b"k2", b"0", newer), (b"k2", b"0", empty), (b"k2", b"0", unknown),
                 (b"k2", b"0", b"x"), (b"k2", b"-1", payload), (b"k2", b"x", payload), (b"k2", b"0", payload, b"FOO"),
                 (b"k2", b"0", payload, b"IDLETIME"), (b"k2", b"0", payload, b"IDLETIME", b"-1"),
                 (b"k2", b"0", payload, b"FREQ", b"256"), (b"k2", b"0", payload, b"FREQ", b"x"),
                 (b"k2", b"0", payload, b"IDLETIME", b"5", b"FREQ", b"5"), (b"k3", b"0", payload, b"IDLETIME", b"5"),
                 (b"k4", b"0", payload, b"freq", b"100", b"replace"), (b"k5", b"1000", payload, b"ABSTTL"),
                 (b"busy", b"1000", payload, b"ABSTTL"), (b"busy", b"1000", payload, b"ABSTTL", b"REPLACE")]:
        pair.same(b"RESTORE", *args)
        pair.same(b"EXISTS", args[0])
    pair.same(b"RESTORE", b"k6", b"100000", payload)
    assert abs(pair.redimo.execute_command(b"PTTL", b"k6") - pair.redis.execute_command(b"PTTL", b"k6")) < 2000
    pair.same(b"RESTORE")
    pair.same(b"RESTORE", b"k")
    pair.same(b"DUMP")


@pytest.mark.promoted
def test_restore_replace_leaves_nothing_behind(r: Redimo, real_redis: redis.Redis) -> None:
    """RESTORE ... REPLACE over a collection deletes the old value's member items."""
    r.sadd("k", *[f"old-{i}" for i in range(150)])
    r.hset("k2", mapping={f"f{i}": "v" for i in range(10)})
    real_redis.rpush("src", *[f"new-{i}" for i in range(120)])
    payload = real_redis.dump("src")
    assert r.restore("k", 0, payload, replace=True) == b"OK"
    assert r.restore("k2", 0, payload, replace=True) == b"OK"
    for key in (b"k", b"k2"):
        items = r.engine.db.all_items(key)
        assert len(items) == 121 and sum(item["sk"]["B"] == HEAD for item in items) == 1
        assert r.lrange(key, 0, -1) == [f"new-{i}".encode() for i in range(120)]
    with pytest.raises(redis.ResponseError, match="BUSYKEY"):
        r.restore("k", 0, payload)
    assert r.restore("k", 1, payload, replace=True, absttl=True) == b"OK"  # already expired: deleted
    assert r.exists("k") == 0 and r.engine.db.all_items(b"k") in ([], [r.engine.db.all_items(b"k")[0]])


# -- MOVE ---------------------------------------------------------------------------------------------
def test_move(pair: Pair, store, table: str, real_redis: redis.Redis) -> None:
    """MOVE key db: a Redis database number is a Redimo namespace name."""
    other = Pair(raw(redis.Redis(connection_pool=redis.ConnectionPool(
        port=real_redis.connection_pool.connection_kwargs["port"], db=1))),
        raw(Redimo(table=table, namespace="1", client=store.client)))
    pair.same(b"SET", b"a", b"1", b"PXAT", str(FUTURE_MS).encode())
    pair.same(b"SADD", b"s", *[b"m%d" % i for i in range(120)])
    pair.same(b"MOVE", b"a", b"1")
    pair.same(b"EXISTS", b"a")
    other.same(b"GET", b"a")
    other.same(b"PEXPIRETIME", b"a")
    pair.same(b"MOVE", b"s", b"1")
    other.same(b"SCARD", b"s")
    assert sorted(other.redimo.execute_command(b"SMEMBERS", b"s")) == sorted(other.redis.execute_command(b"SMEMBERS", b"s"))
    pair.same(b"SET", b"a", b"2")
    pair.same(b"MOVE", b"a", b"1")  # the target has it: 0, nothing moves
    pair.same(b"GET", b"a")
    pair.same(b"MOVE", b"missing", b"1")
    pair.same(b"MOVE", b"a", b"0")
    pair.same(b"MOVE", b"a")
    # FORCED_DIFFERENCES["copy db"] (tests/test_differential.py): a namespace is any string.
    expected, got = pair.both(b"MOVE", b"a", b"x")
    assert expected == Error("ResponseError", "value is not an integer or out of range") and got == 1
    assert raw(Redimo(table=table, namespace="x", client=store.client)).execute_command(b"GET", b"a") == b"2"


# -- OBJECT and TIME ----------------------------------------------------------------------------------
def test_object_subcommands(pair: Pair) -> None:
    pair.same(b"SET", b"n", b"100")
    pair.same(b"SET", b"big", b"10000")
    pair.same(b"SET", b"s", b"text")
    pair.same(b"RPUSH", b"l", b"a")
    for args in [(b"HELP",), (b"help",), (b"REFCOUNT", b"n"), (b"REFCOUNT", b"big"), (b"REFCOUNT", b"s"),
                 (b"REFCOUNT", b"l"), (b"REFCOUNT", b"missing"), (b"FREQ", b"n"), (b"FREQ", b"missing"),
                 (b"IDLETIME", b"missing"), (b"ENCODING", b"n"), (b"ENCODING", b"s"), (b"ENCODING",),
                 (b"ENCODING", b"n", b"x"), (b"HELP", b"x"), (b"FOO",), (b"FOO", b"n"), (b"IDLETIME",)]:
        pair.same(b"OBJECT", *args)
    pair.same(b"OBJECT")
    assert pair.redimo.execute_command(b"OBJECT", b"IDLETIME", b"n") == 0  # Redimo keeps no access times


def test_time(pair: Pair) -> None:
    (redis_s, redis_us), (ours_s, ours_us) = pair.both(b"TIME")
    assert abs(int(redis_s) + int(redis_us) / 1e6 - (int(ours_s) + int(ours_us) / 1e6)) < 5
    assert 0 <= int(ours_us) < 1_000_000 and abs(int(ours_s) - time.time()) < 5
    pair.same(b"TIME", b"x")


def test_in_multi_exec(r: Redimo) -> None:
    """SORT, DUMP, RESTORE and MOVE read and write through a transaction like the other commands."""
    r.rpush("l", 3, 1, 2)
    r.set("w_1", 5)
    payload, other = r.dump("l"), r.engine.db.namespace + "-other"
    pipe = r.pipeline(transaction=True)
    pipe.sort("l", store="sorted").lrange("sorted", 0, -1).sort("l", by="w_*", get=["#", "w_*"])
    pipe.restore("copy", 0, payload).lrange("copy", 0, -1).dump("copy").move("copy", other).exists("copy")
    assert pipe.execute() == [3, [b"1", b"2", b"3"], [b"2", None, b"3", None, b"1", b"5"], b"OK", [b"3", b"1", b"2"],
                              payload, True, 0]
    assert Redimo(table=r.gateway.table, namespace=other, client=r.gateway.client).lrange("copy", 0, -1) == \
        [b"3", b"1", b"2"]
