"""Hash commands: unit tests on both stores (replies, request counts, binary and long fields, expiry,
WRONGTYPE, concurrency) and a differential test against a real redis-server."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any, Callable

import pytest
import redis
from hypothesis import strategies as st

from conftest import ALL_ENCODINGS, TABLE, run_processes
from differential import Error, Pair, flat, run_state_machine
from redimo import Redimo
from redimo.commands import hashes
from redimo.storage import millis

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


def spent(r: Redimo, action: Callable[[], Any]) -> tuple[Any, dict]:
    before = r.gateway.usage.snapshot()
    result = action()
    return result, dict((r.gateway.usage - before).requests)


def raw_items(r: Redimo, key: bytes) -> list[dict]:
    return r.engine.db.all_items(key)


# -- replies -----------------------------------------------------------------------------------
def test_hash_commands(r: Redimo) -> None:
    assert r.hset("h", "a", "1") == 1
    assert r.hset("h", mapping={"a": "2", "b": "x"}, items=["c", "3.5"]) == 2
    assert r.hsetnx("h", "a", "9") == 0 and r.hsetnx("h", "d", "") == 1
    assert r.execute_command("HMSET", "h", "e", "5") is True
    assert r.hget("h", "a") == b"2" and r.hget("h", "nope") is None and r.hget("nokey", "a") is None
    assert r.hmget("h", ["a", "nope", "b", "a"]) == [b"2", None, b"x", b"2"]
    assert r.hgetall("h") == {b"a": b"2", b"b": b"x", b"c": b"3.5", b"d": b"", b"e": b"5"}
    assert sorted(r.hkeys("h")) == [b"a", b"b", b"c", b"d", b"e"]
    assert sorted(r.hvals("h")) == [b"", b"2", b"3.5", b"5", b"x"]
    assert r.hlen("h") == 5 and r.hlen("nokey") == 0
    assert r.hexists("h", "d") is True and r.hexists("h", "z") is False
    assert r.hstrlen("h", "c") == 3 and r.hstrlen("h", "z") == 0
    assert r.hdel("h", "a", "a", "z") == 1 and r.hexists("h", "a") is False
    assert r.type("h") == b"hash"
    assert r.hgetall("nokey") == {} and r.hkeys("nokey") == [] and r.hmget("nokey", "a") == [None]


def test_hincrby_and_hincrbyfloat(r: Redimo) -> None:
    assert r.hincrby("h", "n", 5) == 5
    assert r.hincrby("h", "n", -7) == -2
    assert r.hget("h", "n") == b"-2"
    r.hset("h", "big", str(2**63 - 1))
    with pytest.raises(redis.ResponseError, match="increment or decrement would overflow"):
        r.hincrby("h", "big", 1)
    r.hset("h", "s", "abc")
    with pytest.raises(redis.ResponseError, match="hash value is not an integer"):
        r.hincrby("h", "s", 1)
    with pytest.raises(redis.ResponseError, match="value is not an integer or out of range"):
        r.execute_command("HINCRBY", "h", "n", "1.5")
    assert r.hincrbyfloat("h", "f", "10.5") == 10.5
    assert r.hincrbyfloat("h", "f", "0.1") == 10.6 and r.hget("h", "f") == b"10.6"
    assert r.hincrbyfloat("h", "n", "1e3") == 998
    assert r.hget("h", "n") == b"998", "an integral result is stored as an integer again"
    assert r.hincrby("h", "n", 2) == 1000
    with pytest.raises(redis.ResponseError, match="hash value is not a float"):
        r.hincrbyfloat("h", "s", 1)
    with pytest.raises(redis.ResponseError, match="value is NaN or Infinity"):
        r.hincrbyfloat("h", "f", "inf")
    r.hset("h", "inf", "inf")
    with pytest.raises(redis.ResponseError, match="increment would produce NaN or Infinity"):
        r.hincrbyfloat("h", "inf", 1)


def test_hrandfield(r: Redimo) -> None:
    assert r.hrandfield("nokey") is None and r.hrandfield("nokey", 3) == []
    fields = {f"f{i}".encode(): str(i).encode() for i in range(10)}
    r.hset("h", mapping=fields)
    assert r.hrandfield("h") in fields
    picked = r.hrandfield("h", 4)
    assert len(picked) == len(set(picked)) == 4 and set(picked) <= set(fields)
    assert sorted(r.hrandfield("h", 50)) == sorted(fields)
    repeated = r.hrandfield("h", -30)
    assert len(repeated) == 30 and set(repeated) <= set(fields)
    pairs = r.hrandfield("h", -5, withvalues=True)
    assert len(pairs) == 10 and all(fields[f] == v for f, v in zip(pairs[::2], pairs[1::2]))
    assert r.hrandfield("h", 0) == []
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.execute_command("HRANDFIELD", "h", "1", "FOO")
    with pytest.raises(redis.ResponseError, match="value is out of range"):
        r.execute_command("HRANDFIELD", "h", "-9223372036854775808")


def test_hrandfield_is_not_biased_to_the_first_fields(r: Redimo) -> None:
    fields = [f"field-{i:02}".encode() for i in range(20)]
    r.hset("h", mapping={field: b"v" for field in fields})
    assert Counter(r.hrandfield("h") for _ in range(400)).keys() == set(fields)
    assert set(r.hrandfield("h", -400)) == set(fields)


@pytest.mark.promoted
def test_large_hashes_are_sampled_at_random_points(r: Redimo, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past READ_ALL_LIMIT, HRANDFIELD reads one field per random point of the sort-key range."""
    monkeypatch.setattr(hashes, "READ_ALL_LIMIT", 5)
    monkeypatch.setattr(hashes, "READ_ALL_RATIO", 1)
    fields = [bytes([8 * i]) for i in range(32)]  # evenly spread sort keys: uniform draws
    r.hset("h", mapping={field: field * 2 for field in fields})
    seen, cost = spent(r, lambda: r.hrandfield("h", -3, withvalues=True))
    assert cost == {"get_item": 1, "query": 2 + 3}
    assert all(value == field * 2 for field, value in zip(seen[::2], seen[1::2]))
    picked = r.hrandfield("h", 4)
    assert len(set(picked)) == 4 and set(picked) <= set(fields)
    assert set(r.hrandfield("h", -400)) == set(fields)


def test_hscan(r: Redimo) -> None:
    fields = {f"f{i}".encode(): str(i).encode() for i in range(25)}
    r.hset("h", mapping=fields)
    assert r.hscan("nokey") == (0, {})
    cursor, found, rounds = 0, {}, 0
    while True:
        cursor, page = r.hscan("h", cursor, count=7)
        assert len(page) <= 7
        found.update(page)
        rounds += 1
        if cursor == 0:
            break
    assert found == fields and rounds == 4
    assert dict(r.hscan_iter("h", match="f1*")) == {f: v for f, v in fields.items() if f.startswith(b"f1")}
    assert sorted(r.hscan("h", no_values=True)[1]) == sorted(fields)
    with pytest.raises(redis.ResponseError, match="invalid cursor"):
        r.hscan("h", "abc")
    with pytest.raises(redis.ResponseError, match="invalid cursor"):
        r.hscan("h", 12345)
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.hscan("h", 0, count=0)


@pytest.mark.promoted
# -- costs -------------------------------------------------------------------------------------
def test_request_counts(r: Redimo) -> None:
    assert spent(r, lambda: r.hset("h", mapping={"a": "1", "b": "2"}))[1] == \
        {"batch_get_item": 1, "transact_write_items": 1}
    assert spent(r, lambda: r.hset("h", "a", "3"))[1] == {"batch_get_item": 1, "transact_write_items": 1}
    for read in (lambda: r.hget("h", "a"), lambda: r.hexists("h", "a"), lambda: r.hstrlen("h", "a")):
        assert spent(r, read)[1] == {"batch_get_item": 1}
    assert spent(r, lambda: r.hlen("h")) == (2, {"get_item": 1})
    assert spent(r, lambda: r.hmget("h", [f"f{i}" for i in range(99)]))[1] == {"batch_get_item": 1}
    assert spent(r, lambda: r.hmget("h", [f"f{i}" for i in range(250)]))[1] == {"batch_get_item": 3}
    assert spent(r, lambda: r.hdel("h", "a"))[1] == {"batch_get_item": 1, "transact_write_items": 1}
    assert spent(r, lambda: r.hdel("h", "nope"))[1] == {"batch_get_item": 1}
    assert spent(r, lambda: r.hincrby("h", "b", 1))[1] == {"batch_get_item": 1, "transact_write_items": 1}
    assert spent(r, lambda: r.hgetall("h"))[1] == {"get_item": 1, "query": 1}
    assert spent(r, lambda: r.hset("big", mapping={f"f{i}": i for i in range(150)}))[1] == \
        {"batch_get_item": 2, "transact_write_items": 2}
    assert r.hlen("big") == 150


def test_binary_and_long_fields(r: Redimo) -> None:
    long_a, long_b = b"\x00" * 1000 + b"a" * 600, b"\x00" * 1000 + b"b" * 600  # same first 1000 bytes
    fields = {b"": b"empty", b"\x00": b"nul", b"\xff\xfe": b"\x00\x01", long_a: b"A", long_b: b"B" * 2000}
    assert r.hset(b"\x00key\xff", mapping=fields) == 5
    assert r.hgetall(b"\x00key\xff") == fields
    assert r.hget(b"\x00key\xff", long_b) == b"B" * 2000 and r.hstrlen(b"\x00key\xff", long_a) == 1
    assert r.hmget(b"\x00key\xff", [long_a, long_b, b"\x00" * 1000]) == [b"A", b"B" * 2000, None]
    assert dict(r.hscan_iter(b"\x00key\xff", count=2)) == fields
    assert set(r.hrandfield(b"\x00key\xff", 10)) == set(fields)
    assert r.hdel(b"\x00key\xff", long_a) == 1 and r.hexists(b"\x00key\xff", long_b)
    assert r.hincrby(b"\x00key\xff", long_a, 3) == 3 and r.hget(b"\x00key\xff", long_a) == b"3"


def test_value_limit(r: Redimo) -> None:
    with pytest.raises(redis.ResponseError, match="350000 bytes"):
        r.hset("h", "f", b"x" * 350_001)
    assert r.exists("h") == 0


def test_empty_hash_disappears(r: Redimo) -> None:
    r.hset("h", mapping={"a": "1", "b": "2"})
    assert r.hdel("h", "a", "b") == 2
    assert r.exists("h") == 0 and r.type("h") == b"none" and r.hlen("h") == 0
    assert raw_items(r, b"h") == [], "the head and every field item are deleted"
    r.hset("h", "c", "3")
    assert r.hgetall("h") == {b"c": b"3"}


def test_delete_and_recreate_never_sees_old_fields(r: Redimo) -> None:
    r.hset("h", mapping={"a": "1", "b": "2"})
    assert r.delete("h") == 1
    assert r.hgetall("h") == {} and r.hget("h", "a") is None
    r.hset("h", "c", "3")
    assert r.hgetall("h") == {b"c": b"3"} and r.hlen("h") == 1


def test_expiry_hides_the_hash(r: Redimo, make_redimo: Callable[..., Redimo]) -> None:
    r.hset("h", mapping={"a": "1", "b": "2"})
    assert r.expire("h", 100) is True and 99 <= r.ttl("h") <= 100
    r.hset("h", "c", "3")
    assert 99 <= r.ttl("h") <= 100, "writing a field keeps the TTL"
    later = make_redimo(namespace=r.engine.db.namespace, clock=lambda: millis() + 101_000)
    assert later.hgetall("h") == {} and later.hget("h", "a") is None and later.hlen("h") == 0
    assert later.hmget("h", ["a", "c"]) == [None, None] and later.exists("h") == 0
    assert later.hrandfield("h") is None and later.hscan("h") == (0, {})
    assert later.hset("h", "z", "9") == 1, "an expired hash is replaced by a new one"
    assert later.hgetall("h") == {b"z": b"9"} and later.ttl("h") == -1


def test_wrongtype(r: Redimo) -> None:
    r.set("s", "v")
    calls = [lambda: r.hset("s", "f", "v"), lambda: r.hsetnx("s", "f", "v"), lambda: r.hget("s", "f"),
             lambda: r.hmget("s", ["f"]), lambda: r.hgetall("s"), lambda: r.hdel("s", "f"),
             lambda: r.hexists("s", "f"), lambda: r.hlen("s"), lambda: r.hkeys("s"), lambda: r.hvals("s"),
             lambda: r.hincrby("s", "f", 1), lambda: r.hincrbyfloat("s", "f", 1), lambda: r.hstrlen("s", "f"),
             lambda: r.hrandfield("s"), lambda: r.hrandfield("s", 2), lambda: r.hscan("s")]
    for call in calls:
        with pytest.raises(redis.ResponseError, match=WRONGTYPE):
            call()
    r.hset("h", "f", "v")
    with pytest.raises(redis.ResponseError, match=WRONGTYPE):
        r.get("h")
    with pytest.raises(redis.ResponseError, match=WRONGTYPE):
        r.sadd("h", "m")
    assert r.set("h", "string") is True and r.get("h") == b"string"
    assert raw_items(r, b"h")[0]["t"]["S"] == "string" and len(raw_items(r, b"h")) == 1


# -- concurrency ---------------------------------------------------------------------------------
def _increment(url: str, namespace: str, times: int) -> None:
    r = Redimo(table=TABLE, namespace=namespace, endpoint_url=url)
    for _ in range(times):
        r.hincrby("counters", "hits", 1)
        r.hincrbyfloat("counters", "float", "0.5")


def test_hincrby_is_exact_under_concurrency(shared_endpoint: str) -> None:
    namespace, workers, times = f"hincrby-{uuid.uuid4().hex}", 4, 15
    run_processes(_increment, [(shared_endpoint, namespace, times)] * workers)
    r = Redimo(table=TABLE, namespace=namespace, endpoint_url=shared_endpoint)
    assert r.hgetall("counters") == {b"hits": str(workers * times).encode(), b"float": b"30"}
    assert r.hlen("counters") == 2


# -- differential --------------------------------------------------------------------------------
KEYS = [b"a", b"b", b"\x00"]
FIELDS = [b"", b"\x00", b"\xff", b"f", b"g", b"a\x00b", b"1", b"L" * 1200, b"L" * 1200 + b"x"]
VALUES = [b"", b"0", b"1", b"-1", b"10", b"007", b"1.5", b"-0.5", b"1e3", b"inf", b"abc", b"\x00\xff",
          b"9223372036854775807", b"-9223372036854775808", b"V" * 1100]
INTEGERS = [b"1", b"-1", b"0", b"5", b"100", b"1.5", b"abc", b"9223372036854775807", b"-9223372036854775808", b""]
FLOATS = [b"1", b"-1", b"0.1", b"1.5", b"1e3", b"-2.5e-3", b"inf", b"-inf", b"nan", b"abc", b"", b"0x10", b"1e400"]
COUNTS = [b"0", b"1", b"2", b"5", b"20", b"-1", b"-3", b"-12", b"abc", b"1.5", b"-9223372036854775808",
          b"4611686018427387904"]

key = st.sampled_from(KEYS)
field = st.one_of(st.sampled_from(FIELDS), st.binary(max_size=3))
value = st.one_of(st.sampled_from(VALUES), st.binary(max_size=4))
fields = st.lists(field, min_size=1, max_size=4)
pairs = st.lists(st.tuples(field, value), min_size=1, max_size=3).map(lambda ps: [p for pair in ps for p in pair])
HASH_COMMANDS = [
    st.tuples(st.just(b"HSET"), key, pairs), st.tuples(st.just(b"HSET"), key, pairs),
    st.tuples(st.just(b"HMSET"), key, pairs), st.tuples(st.just(b"HSETNX"), key, field, value),
    st.tuples(st.just(b"HGET"), key, field), st.tuples(st.just(b"HMGET"), key, fields),
    st.tuples(st.just(b"HGETALL"), key), st.tuples(st.just(b"HDEL"), key, fields),
    st.tuples(st.just(b"HEXISTS"), key, field), st.tuples(st.just(b"HLEN"), key),
    st.tuples(st.just(b"HKEYS"), key), st.tuples(st.just(b"HVALS"), key),
    st.tuples(st.just(b"HINCRBY"), key, field, st.sampled_from(INTEGERS)),
    st.tuples(st.just(b"HINCRBYFLOAT"), key, field, st.sampled_from(FLOATS)),
    st.tuples(st.just(b"HSTRLEN"), key, field),
    st.tuples(st.just(b"HRANDFIELD"), key, st.one_of(
        st.just([]), st.sampled_from(COUNTS).map(lambda count: [count]),
        st.tuples(st.sampled_from(COUNTS), st.sampled_from([b"WITHVALUES", b"withvalues", b"FOO"])).map(list))),
    st.tuples(st.just(b"~HSCAN"), key, st.sampled_from([[], [b"MATCH", b"f*"], [b"match", b"*"], [b"COUNT", b"1"],
                                                        [b"COUNT", b"2", b"MATCH", b"[a-g]"], [b"COUNT", b"0"],
                                                        [b"COUNT", b"x"], [b"FOO"], [b"MATCH"]])),
    st.tuples(st.just(b"HSCAN"), key, st.sampled_from([b"abc", b"1x", b" 0"])),
    st.tuples(st.just(b"DEL"), key), st.tuples(st.just(b"EXISTS"), key), st.tuples(st.just(b"TYPE"), key),
    st.tuples(st.just(b"EXPIRE"), key, st.sampled_from([b"1000", b"50000"])),
    st.tuples(st.just(b"EXPIREAT"), key, st.just(b"1000000000")),
    st.tuples(st.just(b"SET"), key, value), st.tuples(st.just(b"GET"), key),
]


def scan_all(client: redis.Redis, key: bytes, options: list) -> Any:
    cursor, found = b"0", []
    for _ in range(1000):
        try:
            cursor, page = client.execute_command(b"HSCAN", key, cursor, *options)
        except redis.ResponseError as error:
            return Error(type(error).__name__, str(error))
        found += list(zip(page[::2], page[1::2]))
        if cursor == b"0":
            return sorted(found)
    raise AssertionError("HSCAN does not end")


def check_hrandfield(pair: Pair, args: tuple) -> None:
    expected, got = pair.both(*args)
    if isinstance(expected, Error) or isinstance(got, Error):
        assert got == expected, f"{args!r}: Redis {expected!r}, Redimo {got!r}"
        return
    contents = dict(zip(*[iter(pair.redis.execute_command(b"HGETALL", args[1]))] * 2))
    if len(args) == 2:
        assert (got is None) == (expected is None) and (got is None or got in contents), args
        return
    count, with_values = int(args[2]), len(args) == 4
    names = got[::2] if with_values else got
    size = min(count, len(contents)) if count >= 0 else -count if contents else 0
    assert len(got) == len(expected) == size * (2 if with_values else 1), args
    assert set(names) <= set(contents) and (count < 0 or len(set(names)) == len(names)), args
    if with_values:
        assert all(contents[name] == value for name, value in zip(got[::2], got[1::2])), args


def check(pair: Pair, args: tuple) -> None:
    name = args[0]
    if name == b"~HSCAN":
        assert scan_all(pair.redimo, args[1], list(args[2:])) == scan_all(pair.redis, args[1], list(args[2:])), args
        return
    if name == b"HRANDFIELD":
        return check_hrandfield(pair, args)
    expected, got = pair.both(*args)
    if name == b"HGETALL" and isinstance(expected, list):
        expected, got = sorted(zip(expected[::2], expected[1::2])), sorted(zip(got[::2], got[1::2]))
    elif name in (b"HKEYS", b"HVALS") and isinstance(expected, list):
        expected, got = sorted(expected), sorted(got)
    assert got == expected, f"{args!r}: Redis replied {expected!r}, Redimo {got!r}"


@ALL_ENCODINGS
def test_hash_differential(pair: Pair) -> None:
    run_state_machine(pair, HASH_COMMANDS, lambda command: check(pair, flat(command)),
                      lambda: [check(pair, (b"HGETALL", key_)) for key_ in KEYS])


def test_hash_errors_differential(pair: Pair) -> None:
    pair.same(b"SET", b"s", b"v")
    pair.same(b"HSET", b"h", b"f", b"v", b"n", b"5", b"x", b"1.5")
    for args in [(b"HSET", b"h", b"f"), (b"HSET", b"h", b"f", b"v", b"g"), (b"HMSET", b"h", b"f"),
                 (b"HSETNX", b"h", b"f"), (b"HGET", b"h"), (b"HMGET", b"h"), (b"HDEL", b"h"), (b"HLEN",),
                 (b"HINCRBY", b"h", b"f"), (b"HINCRBYFLOAT", b"h", b"f"), (b"HSTRLEN", b"h"), (b"HRANDFIELD",),
                 (b"HSCAN", b"h"), (b"HEXISTS", b"h", b"f", b"g"), (b"HGETALL",), (b"HKEYS", b"h", b"x"),
                 (b"HINCRBY", b"s", b"f", b"x"), (b"HINCRBY", b"s", b"f", b"1"), (b"HINCRBYFLOAT", b"s", b"f", b"x"),
                 (b"HINCRBYFLOAT", b"s", b"f", b"inf"), (b"HINCRBYFLOAT", b"h", b"f", b"nan"),
                 (b"HINCRBY", b"h", b"x", b"1"), (b"HINCRBYFLOAT", b"h", b"f", b"1"), (b"HINCRBY", b"h", b"n", b"-6"),
                 (b"HINCRBYFLOAT", b"h", b"n", b"-0.25"), (b"HINCRBYFLOAT", b"h", b"x", b"1e4940"),
                 (b"HRANDFIELD", b"s", b"x"), (b"HRANDFIELD", b"s", b"1", b"FOO"), (b"HRANDFIELD", b"s", b"1"),
                 (b"HRANDFIELD", b"h", b"1", b"WITHVALUES", b"x"), (b"HRANDFIELD", b"nokey", b"1", b"FOO"),
                 (b"HRANDFIELD", b"h", b"-9223372036854775807", b"WITHVALUES"),
                 (b"HSCAN", b"s", b"0"), (b"HSCAN", b"s", b"x"), (b"HSCAN", b"nokey", b"0", b"FOO"),
                 (b"HSCAN", b"h", b"0", b"COUNT", b"-1"), (b"HRANDFIELD", b"h", b"-4611686018427387904", b"WITHVALUES"),
                 (b"HGETALL", b"h")]:
        check(pair, args)
