"""Generic key and server commands through redis-py, on both stores, with their request counts."""

from __future__ import annotations

import time
import uuid
from typing import Any, Callable

import pytest
import redis

from redimo import Redimo
from redimo.storage import INLINE_LIMIT, MAX_PARTITION_KEY, millis


def spent(r: Redimo, action: Callable[[], Any]) -> tuple[Any, dict]:
    before = r.gateway.usage.snapshot()
    result = action()
    return result, dict((r.gateway.usage - before).requests)


def ahead(make_redimo: Callable[..., Redimo], r: Redimo, milliseconds: int) -> Redimo:
    """A client on the same namespace whose clock is ``milliseconds`` ahead."""
    return make_redimo(namespace=r.engine.db.namespace, table=r.gateway.table, clock=lambda: millis() + milliseconds)


def put_raw_head(r: Redimo, key: bytes, type_name: str, **attributes: Any) -> None:
    item = {"pk": {"B": r.engine.db.pk(key)}, "sk": {"B": b"\x00"}, "t": {"S": type_name}, **attributes}
    r.gateway.client.put_item(TableName=r.gateway.table, Item=item)


@pytest.fixture
def alone(make_redimo: Callable[..., Redimo], table: str) -> Redimo:
    return make_redimo(table=table)


# -- DEL / UNLINK / EXISTS / TYPE -------------------------------------------------------------

@pytest.mark.parametrize("name", ["DEL", "UNLINK"])
def test_delete_one_key_is_one_request(r: Redimo, name: str) -> None:
    r.set("k", "v")
    assert spent(r, lambda: r.execute_command(name, "k")) == (1, {"update_item": 1}), \
        "the head expired at once, with an operation record (exactly-once)"
    assert spent(r, lambda: r.execute_command(name, "k")) == (0, {"update_item": 1})
    assert spent(r, lambda: r.execute_command(name, "never")) == (0, {"update_item": 1})
    assert r.get("k") is None and r.exists("k") == 0 and r.keys("*") == []
    assert r.set("k", "new", nx=True) and r.get("k") == b"new", "a deleted key is created again"


@pytest.mark.parametrize("name", ["DEL", "UNLINK"])
def test_delete_many_keys(r: Redimo, store, name: str) -> None:
    r.mset({"a": 1, "b": 2, "c": 3})
    count, requests = spent(r, lambda: r.execute_command(name, "a", "b", "a", "missing"))
    assert count == 2
    if store.is_moto:  # "PartiQL DELETE takes no ? parameters": the fallback reads, then deletes
        assert requests == {"batch_get_item": 1, "batch_write_item": 1}
    else:
        assert requests == {"batch_execute_statement": 1}
    assert r.mget("a", "b", "c") == [None, None, b"3"]
    assert r.execute_command(name, "x", "y") == 0


def test_delete_130_keys_in_batches(r: Redimo, store) -> None:
    r.mset({f"k{i}": i for i in range(130)})
    count, requests = spent(r, lambda: r.delete(*[f"k{i}" for i in range(130)], "missing"))
    assert count == 130
    if store.is_moto:
        assert requests == {"batch_get_item": 2, "batch_write_item": 6}
    else:
        assert requests == {"batch_execute_statement": 6}, "ceil(131/25)"
    assert r.exists(*[f"k{i}" for i in range(130)]) == 0


def test_delete_many_removes_what_keys_hold(r: Redimo, store) -> None:
    """Collections and chunked values cost more only by what they hold: their heads go in the same
    BatchExecuteStatements as the plain strings', then their members and chunks in BatchWriteItems."""
    r.mset({f"s{i}": i for i in range(58)})
    r.hset("hash", mapping={f"f{i}": i for i in range(150)})  # past the compact limit: member items
    r.set("big", b"x" * 1_000_000)  # chunked
    r.set("gone", 1, px=1)
    time.sleep(0.01)
    keys = [f"s{i}" for i in range(58)] + ["hash", "big", "gone"]
    count, requests = spent(r, lambda: r.delete(*keys))
    assert count == 60
    if not store.is_moto:
        assert requests["batch_execute_statement"] == 3, "ceil(61/25) for the heads"
    assert r.exists(*keys) == 0
    assert [r.engine.db.all_items(key.encode()) for key in keys] == [[] for _ in keys], "nothing left"


def test_delete_expired_key_counts_zero_but_removes_it(make_redimo: Callable[..., Redimo], r: Redimo) -> None:
    r.set("a", "1", px=1000)
    r.set("b", "2", px=1000)
    r.set("c", "3")
    later = ahead(make_redimo, r, 5000)
    assert later.delete("a") == 0
    assert later.delete("b", "c") == 1
    assert r.engine.db.all_items(b"a") == [] and r.engine.db.all_items(b"b") == []


def test_delete_chunked_values_removes_their_chunks(r: Redimo) -> None:
    r.set("big1", b"x" * (INLINE_LIMIT * 2 + 1))
    r.set("big2", b"y" * (INLINE_LIMIT + 1))
    assert len(r.engine.db.all_items(b"big1")) == 4
    assert r.delete("big1", "big2") == 2
    assert r.engine.db.all_items(b"big1") == [] and r.engine.db.all_items(b"big2") == []


def test_exists_counts_repeats(r: Redimo) -> None:
    r.mset({"a": 1, "b": 2})
    assert spent(r, lambda: r.exists("a")) == (1, {"get_item": 1})
    assert spent(r, lambda: r.exists("a", "a", "b", "missing", "b", "a")) == (5, {"batch_get_item": 1})
    assert r.exists("missing") == 0
    assert r.exists("missing", "missing") == 0


def test_type(make_redimo: Callable[..., Redimo], r: Redimo) -> None:
    r.set("s", "v")
    r.set("n", 12)
    put_raw_head(r, b"h", "hash")
    assert spent(r, lambda: r.type("s")) == (b"string", {"get_item": 1})
    assert r.type("n") == b"string"
    assert r.type("h") == b"hash"
    assert r.type("missing") == b"none"
    r.set("soon", "v", px=1000)
    assert ahead(make_redimo, r, 5000).type("soon") == b"none"


def test_wrong_arity_and_unknown_command(r: Redimo) -> None:
    for args, name in ([("DEL",), "del"], [("EXPIRE", "k"), "expire"], [("TTL",), "ttl"],
                       [("TYPE", "a", "b"), "type"], [("RENAME", "a"), "rename"], [("DBSIZE", "x"), "dbsize"]):
        with pytest.raises(redis.ResponseError, match=f"wrong number of arguments for '{name}' command"):
            r.execute_command(*args)
    with pytest.raises(redis.ResponseError, match="unknown command 'FOO', with args beginning with: 'a' 'b'"):
        r.execute_command("FOO", "a", "b")
    assert r.gateway.usage.total_requests == 0


def test_ping_echo(r: Redimo) -> None:
    assert r.ping() is True
    assert r.engine.execute([b"PING", b"hello"]) == b"hello"  # redis-py's PING callback hides the reply
    assert r.engine.execute([b"ping"]) == b"PONG"
    assert r.echo("é\x00") == "é\x00".encode()
    with pytest.raises(redis.ResponseError, match="wrong number of arguments for 'ping' command"):
        r.execute_command("PING", "a", "b")
    with pytest.raises(redis.ResponseError, match="wrong number of arguments for 'echo' command"):
        r.execute_command("ECHO")
    assert r.gateway.usage.total_requests == 0


def test_key_too_long_for_dynamodb(r: Redimo) -> None:
    longest = MAX_PARTITION_KEY - len(r.engine.db.prefix)
    assert r.set(b"k" * longest, "v")
    assert r.get(b"k" * longest) == b"v"
    assert r.delete(b"k" * longest) == 1
    r.set("a", "source")
    for command in (lambda key: r.set(key, "v"), r.get, r.delete, r.exists, r.ttl,
                    lambda key: r.rename("a", key), lambda key: r.delete("a", key)):
        with pytest.raises(redis.ResponseError, match=f"key is too long for DynamoDB: at most {longest} bytes"):
            command(b"k" * (longest + 1))


# -- EXPIRE family ---------------------------------------------------------------------------

def test_expire_and_ttl(r: Redimo) -> None:
    assert r.expire("missing", 10) is False
    r.set("k", "v")
    assert (r.ttl("k"), r.pttl("k")) == (-1, -1)
    assert (r.expiretime("k"), r.execute_command("PEXPIRETIME", "k")) == (-1, -1)
    assert spent(r, lambda: r.expire("k", 100)) == (True, {"update_item": 1})
    assert r.ttl("k") in range(95, 101)
    assert 95_000 < r.pttl("k") <= 100_000
    assert r.pexpire("k", 5500)
    assert 4000 < r.pttl("k") <= 5500
    assert (r.ttl("missing"), r.pttl("missing")) == (-2, -2)
    assert (r.expiretime("missing"), r.execute_command("PEXPIRETIME", "missing")) == (-2, -2)


def test_ttl_rounds_to_the_nearest_second(make_redimo: Callable[..., Redimo], r: Redimo) -> None:
    now = millis()
    frozen = make_redimo(namespace=r.engine.db.namespace, clock=lambda: now)
    frozen.set("k", "v")
    for left, seconds in ((5500, 6), (5499, 5), (1, 0), (499, 0), (500, 1), (100_000, 100)):
        assert frozen.pexpireat("k", now + left)
        assert (frozen.pttl("k"), frozen.ttl("k")) == (left, seconds)


def test_expireat_and_expiretime(r: Redimo) -> None:
    r.set("k", "v")
    at = 4102444800  # 2100-01-01
    assert r.expireat("k", at)
    assert r.expiretime("k") == at
    assert r.execute_command("PEXPIRETIME", "k") == at * 1000
    assert r.pexpireat("k", at * 1000 + 499)
    assert r.execute_command("PEXPIRETIME", "k") == at * 1000 + 499
    assert r.expiretime("k") == at  # Redis rounds to the nearest second
    assert r.pexpireat("k", at * 1000 + 500)
    assert r.expiretime("k") == at + 1
    assert r.pexpireat("k", 2**63 - 1)
    assert r.execute_command("PEXPIRETIME", "k") == 2**63 - 1
    assert r.expiretime("k") == 9223372036854776


def test_ttl_is_never_negative_for_a_live_key(make_redimo: Callable[..., Redimo], r: Redimo) -> None:
    """A key read alive whose time runs out before its TTL is computed has 0 left, never -1
    (which would mean "no expiry")."""
    at = millis() + 100_000
    r.set("k", "v", pxat=at + 10)
    for command in ("PTTL", "TTL"):
        ticks = iter([at + 9, at + 11])  # alive when read; expired by the time the TTL is worked out
        client = make_redimo(namespace=r.engine.db.namespace, clock=lambda: next(ticks, at + 11))
        assert client.execute_command(command, "k") in (0, 1)


def test_expire_in_the_past_deletes(r: Redimo) -> None:
    r.mset({"a": 1, "b": 2, "c": 3, "d": 4})
    assert spent(r, lambda: r.expire("a", -1)) == (True, {"update_item": 1}), "as DEL: exactly-once"
    assert r.pexpire("b", 0)
    assert r.expireat("c", 1)
    assert r.pexpireat("d", millis() - 1)
    assert r.exists("a", "b", "c", "d") == 0
    assert [item["x"] for item in r.engine.db.all_items(b"a")] == [{"N": "1"}], "expired at once, until TTL"
    assert r.expire("missing", -1) is False
    r.set("big", b"z" * (INLINE_LIMIT + 10))
    assert r.expire("big", -5)
    assert [item["sk"]["B"] for item in r.engine.db.all_items(b"big")] == [b"\x00"], "the chunks are deleted"
    r.set("timed", "v", ex=100)
    assert r.expire("timed", -1, nx=True) is False and r.get("timed") == b"v", "NX: a key with a TTL stays"
    assert r.expire("timed", -1, xx=True) is True and r.exists("timed") == 0


def test_expire_flags(r: Redimo) -> None:
    r.set("k", "v")
    assert r.expire("k", 100, xx=True) is False
    assert r.expire("k", 100, gt=True) is False  # no TTL counts as infinite
    assert r.ttl("k") == -1
    assert r.expire("k", 100, nx=True) is True
    assert r.expire("k", 200, nx=True) is False
    assert r.ttl("k") in range(95, 101)
    assert r.expire("k", 50, gt=True) is False
    assert r.expire("k", 200, gt=True) is True
    assert r.ttl("k") in range(195, 201)
    assert r.expire("k", 300, lt=True) is False
    assert r.expire("k", 150, lt=True) is True
    assert r.ttl("k") in range(145, 151)
    assert r.expire("k", 120, xx=True) is True
    assert r.execute_command("EXPIRE", "k", "130", "xx", "gt") == 1
    assert r.execute_command("EXPIRE", "k", "100", "XX", "GT") == 0
    assert r.ttl("k") in range(125, 131)
    assert r.expire("k", -1, gt=True) is False  # in the past but not greater: kept
    assert r.exists("k") == 1
    assert r.expire("k", -1, lt=True) is True
    assert r.exists("k") == 0
    r.set("p", "v")
    assert r.expire("p", 100, lt=True) is True  # less than infinite
    assert r.expire("missing", 100, lt=True) is False
    assert r.expire("missing", 100, nx=True) is False


def test_expire_errors(r: Redimo) -> None:
    r.set("k", "v")
    for flags, message in ([("NX", "XX"), "NX and XX, GT or LT options at the same time are not compatible"],
                           [("NX", "GT"), "NX and XX, GT or LT options at the same time are not compatible"],
                           [("GT", "LT"), "GT and LT options at the same time are not compatible"],
                           [("foo",), "Unsupported option foo"]):
        with pytest.raises(redis.ResponseError, match=message):
            r.execute_command("EXPIRE", "k", "10", *flags)
    with pytest.raises(redis.ResponseError, match="value is not an integer or out of range"):
        r.execute_command("EXPIRE", "k", "ten")
    with pytest.raises(redis.ResponseError, match="value is not an integer or out of range"):
        r.execute_command("PEXPIRE", "k", "1.5")
    for name, amount in (("EXPIRE", 2**63 - 1), ("PEXPIRE", 2**63 - 1), ("EXPIREAT", 2**63 - 1),
                         ("EXPIRE", -(2**63)), ("EXPIRE", -9223372036854776), ("EXPIREAT", 9223372036854776)):
        with pytest.raises(redis.ResponseError, match=f"invalid expire time in '{name.lower()}' command"):
            r.execute_command(name, "k", amount)
    assert r.ttl("k") == -1
    assert r.execute_command("EXPIRE", "k", -9223372036854775) == 1  # the smallest valid: deletes
    r.set("k", "v")
    assert r.execute_command("PEXPIRE", "k", -(2**63)) == 1  # valid for PEXPIRE, as in Redis
    assert r.exists("k") == 0


def test_persist(r: Redimo) -> None:
    r.set("k", "v", ex=100)
    assert spent(r, lambda: r.persist("k")) == (True, {"update_item": 1})
    assert r.ttl("k") == -1
    assert r.persist("k") is False
    assert r.persist("missing") is False
    assert r.get("k") == b"v"


def test_expiry_survives_overwrite_rules(r: Redimo) -> None:
    r.set("k", "v", ex=100)
    r.set("k", "w")
    assert r.ttl("k") == -1, "SET clears the TTL"
    r.set("k", "v", ex=100)
    r.incr("n")
    r.expire("n", 100)
    r.incr("n")
    assert r.ttl("n") in range(95, 101), "INCR keeps the TTL"


# -- RENAME / RENAMENX / COPY ----------------------------------------------------------------

def test_rename(r: Redimo) -> None:
    with pytest.raises(redis.ResponseError, match="no such key"):
        r.rename("missing", "x")
    with pytest.raises(redis.ResponseError, match="no such key"):
        r.rename("missing", "missing")
    r.set("a", "1", ex=100)
    r.set("b", "old")
    assert r.rename("a", "b") is True
    assert (r.get("a"), r.get("b")) == (None, b"1")
    assert r.ttl("b") in range(95, 101), "the TTL moves with the key"
    r.set("c", "3")
    r.expire("b", 50)
    assert r.rename("c", "b")
    assert r.ttl("b") == -1, "the target's old TTL goes"
    assert r.rename("b", "b") is True
    assert r.get("b") == b"3"
    assert r.engine.db.all_items(b"a") == [] and r.engine.db.all_items(b"c") == []


def test_renamenx(make_redimo: Callable[..., Redimo], r: Redimo) -> None:
    with pytest.raises(redis.ResponseError, match="no such key"):
        r.renamenx("missing", "x")
    r.mset({"a": "1", "b": "2"})
    assert r.renamenx("a", "b") is False
    assert r.mget("a", "b") == [b"1", b"2"]
    assert r.renamenx("a", "c") is True
    assert r.mget("a", "c") == [None, b"1"]
    assert r.renamenx("c", "c") is False
    r.set("gone", "x", px=1000)
    later = ahead(make_redimo, r, 5000)
    assert later.renamenx("c", "gone") is True, "an expired target does not exist"
    assert later.get("gone") == b"1"


def test_rename_chunked_value(r: Redimo) -> None:
    value = bytes(range(256)) * 3000 + b"tail"  # 768,004 bytes: 3 chunks
    r.set("big", value, ex=1000)
    assert r.rename("big", "moved")
    assert r.get("moved") == value
    assert r.get("big") is None
    assert r.engine.db.all_items(b"big") == []
    items = r.engine.db.all_items(b"moved")
    assert len(items) == 4
    assert all("tx" in item for item in items), "every item keeps the TTL attribute"
    assert 990 <= r.ttl("moved") <= 1000
    r.set("small", "s")
    assert r.rename("small", "moved")
    assert r.get("moved") == b"s"
    assert len(r.engine.db.all_items(b"moved")) == 1, "the replaced value's chunks are deleted"


def test_copy_and_rename_onto_a_copy_of_a_chunked_value(r: Redimo) -> None:
    value = b"c" * (INLINE_LIMIT * 2 + 7)
    r.set("a", value)
    assert r.copy("a", "b")
    assert r.copy("a", "b", replace=True)
    assert r.get("b") == value
    assert len(r.engine.db.all_items(b"b")) == 4
    assert r.rename("a", "b")
    assert r.get("b") == value
    assert len(r.engine.db.all_items(b"b")) == 4
    assert r.engine.db.all_items(b"a") == []
    assert r.copy("b", "a")
    assert r.delete("b") == 1
    assert r.get("a") == value, "a copy shares nothing with its source"


def test_missing_chunks_are_reported_not_looped_over(r: Redimo) -> None:
    r.set("big", b"d" * (INLINE_LIMIT + 1))
    chunk = next(item for item in r.engine.db.all_items(b"big") if item["sk"]["B"] != b"\x00")
    r.gateway.client.delete_item(TableName=r.gateway.table, Key={"pk": chunk["pk"], "sk": chunk["sk"]})
    with pytest.raises(redis.ResponseError, match="damaged"):
        r.get("big")
    assert r.delete("big") == 1
    assert r.get("big") is None


def test_copy(r: Redimo) -> None:
    assert r.copy("missing", "x") is False
    r.set("a", "1", ex=100)
    r.set("b", "2")
    assert r.copy("a", "b") is False
    assert r.get("b") == b"2"
    assert r.copy("a", "c") is True
    assert (r.get("a"), r.get("c")) == (b"1", b"1")
    assert r.ttl("c") in range(95, 101)
    assert r.copy("a", "b", replace=True) is True
    assert r.get("b") == b"1"
    with pytest.raises(redis.ResponseError, match="source and destination objects are the same"):
        r.copy("a", "a")
    for extra in (("DB",), ("FOO",), ("REPLACE", "X")):
        with pytest.raises(redis.ResponseError, match="syntax error"):
            r.execute_command("COPY", "a", "d", *extra)


def test_copy_to_another_namespace(make_redimo: Callable[..., Redimo], r: Redimo) -> None:
    other = make_redimo()
    target = other.engine.db.namespace
    r.set("a", "1", ex=100)
    assert r.execute_command("COPY", "a", "a", "DB", target) == 1
    assert other.get("a") == b"1"
    assert 95 <= other.ttl("a") <= 100
    other.set("b", "2")
    assert r.execute_command("COPY", "a", "b", "DB", target) == 0
    assert r.execute_command("COPY", "a", "b", "db", target, "replace") == 1
    assert other.get("b") == b"1"
    assert r.get("b") is None
    with pytest.raises(redis.ResponseError):
        r.execute_command("COPY", "a", "b", "DB", "bad\x00namespace")


# -- RANDOMKEY / SCAN / KEYS / DBSIZE ---------------------------------------------------------

def test_randomkey(make_redimo: Callable[..., Redimo], r: Redimo) -> None:
    assert r.randomkey() is None
    r.mset({"a": 1, "b": 2, "c": 3})
    seen = {r.randomkey() for _ in range(10)}
    assert seen and seen <= {b"a", b"b", b"c"}
    r.set("soon", "x", px=1000)
    later = ahead(make_redimo, r, 5000)
    later.delete("a", "b", "c")
    assert later.randomkey() is None, "an expired key is not returned"


def scan_all(r: Redimo, **options: Any) -> tuple[list[bytes], int]:
    cursor, found, calls = 0, [], 0
    while True:
        cursor, keys = r.scan(cursor, **options)
        found.extend(keys)
        calls += 1
        if cursor == 0:
            return found, calls


def test_scan_full_iteration(make_redimo: Callable[..., Redimo], alone: Redimo) -> None:
    r = alone
    r.mset({f"k{i:02}": i for i in range(20)})
    put_raw_head(r, b"h1", "hash")
    r.set("soon", "x", px=1000)
    make_redimo(table=r.gateway.table).mset({"k00": "other namespace", "x": "y"})
    r.set("big", b"b" * (INLINE_LIMIT + 1))  # a chunk item is examined but never returned
    later = ahead(make_redimo, r, 5000)
    strings = {f"k{i:02}".encode() for i in range(20)} | {b"big"}

    found, calls = scan_all(later, count=3)
    assert sorted(found) == sorted(strings | {b"h1"}), "each live key once; no expired, no other namespace"
    assert calls >= 28 // 3
    found, _ = scan_all(later, count=5, match="k1*")
    assert sorted(found) == [f"k1{i}".encode() for i in range(10)]
    found, _ = scan_all(later, count=4, _type="hash")
    assert found == [b"h1"]
    found, _ = scan_all(later, _type="string")
    assert sorted(found) == sorted(strings)
    assert sorted(later.scan_iter(match="k0?", count=2)) == [f"k0{i}".encode() for i in range(10)]
    assert sorted(later.scan_iter(match="[hb]*")) == [b"big", b"h1"]
    (cursor, keys), requests = spent(later, lambda: later.scan(0))  # COUNT 1000: one page
    assert (cursor, sorted(keys), requests) == (0, sorted(strings | {b"h1"}), {"scan": 1})


def test_scan_cursor_round_trip(alone: Redimo) -> None:
    r = alone
    r.mset({f"k{i}": i for i in range(10)})
    cursor, first = r.scan(0, count=4)
    assert cursor != 0 and len(first) == 4
    again, same = r.scan(0, count=4)
    assert (again, same) == (cursor, first), "a cursor is a position: the same scan gives the same answer"
    cursor, second = r.execute_command("SCAN", str(cursor).encode(), "COUNT", "4")
    assert int(cursor) != 0 and not set(first) & set(second)


def test_scan_errors(r: Redimo) -> None:
    for cursor in ("abc", "-1", "1", "12345", "1.5"):
        with pytest.raises(redis.ResponseError, match="invalid cursor"):
            r.execute_command("SCAN", cursor)
    for extra in (("COUNT", "0"), ("MATCH",), ("FOO", "bar"), ("COUNT", "-3")):
        with pytest.raises(redis.ResponseError, match="syntax error"):
            r.execute_command("SCAN", "0", *extra)
    with pytest.raises(redis.ResponseError, match="value is not an integer or out of range"):
        r.execute_command("SCAN", "0", "COUNT", "x")
    assert r.gateway.usage.total_requests == 0


GLOB_KEYS = [b"apple", b"banana", b"cherry", b"hello", b"hallo", b"hxllo", b"hllo", b"heeeello", b"a*c",
             b"a?c", b"abc", b"h[llo", b"x", b"", b"\xff\x00bin", b"line\nbreak", b"back\\slash", b"caf\xc3\xa9"]
GLOB_PATTERNS = {
    b"*": GLOB_KEYS,
    b"h?llo": [b"hello", b"hallo", b"hxllo", b"h[llo"],
    b"h*llo": [b"hello", b"hallo", b"hxllo", b"hllo", b"heeeello", b"h[llo"],
    b"h[ae]llo": [b"hello", b"hallo"],
    b"h[^e]llo": [b"hallo", b"hxllo", b"h[llo"],
    b"h[a-b]llo": [b"hallo"],
    b"[a-c]*": [b"apple", b"banana", b"cherry", b"a*c", b"a?c", b"abc", b"back\\slash", b"caf\xc3\xa9"],
    b"[^a-h]*": [b"x", b"\xff\x00bin", b"line\nbreak"],
    b"a\\*c": [b"a*c"],
    b"a\\?c": [b"a?c"],
    b"a?c": [b"a*c", b"a?c", b"abc"],
    b"h\\[llo": [b"h[llo"],
    b"*an*": [b"banana"],
    b"\xff*": [b"\xff\x00bin"],
    b"line?break": [b"line\nbreak"],
    b"back\\\\slash": [b"back\\slash"],
    b"caf?": [],
    b"caf??": [b"caf\xc3\xa9"],
    b"nothing*": [],
}


def test_glob_expectations_hold_on_redis(real_redis: redis.Redis) -> None:
    """The expected KEYS results below are Redis's own."""
    for key in GLOB_KEYS:
        real_redis.set(key, "v")
    for pattern, expected in GLOB_PATTERNS.items():
        assert sorted(real_redis.keys(pattern)) == sorted(expected), pattern


def test_keys_glob_patterns(make_redimo: Callable[..., Redimo], r: Redimo) -> None:
    for key in GLOB_KEYS:
        r.set(key, "v")
    make_redimo().mset({key: "other" for key in GLOB_KEYS})
    for pattern, expected in GLOB_PATTERNS.items():
        assert sorted(r.keys(pattern)) == sorted(expected), pattern
    r.set("soon", "x", px=60_000)  # long enough for a scan of a shared table on a loaded machine
    assert b"soon" in r.keys("s*")
    assert ahead(make_redimo, r, 120_000).keys("s*") == []


def test_dbsize(make_redimo: Callable[..., Redimo], r: Redimo) -> None:
    assert r.dbsize() == 0
    r.mset({f"k{i}": i for i in range(7)})
    r.set("big", b"b" * (INLINE_LIMIT + 1))
    r.set("soon", "x", px=60_000)
    make_redimo().mset({"a": 1, "b": 2})
    assert r.dbsize() == 9
    assert ahead(make_redimo, r, 120_000).dbsize() == 8


# -- FLUSHDB / FLUSHALL / namespaces -----------------------------------------------------------

def test_flushdb_clears_only_its_namespace(make_redimo: Callable[..., Redimo]) -> None:
    base = f"test-{uuid.uuid4().hex}"
    r, longer, other = make_redimo(namespace=base), make_redimo(namespace=base + "x"), make_redimo()
    for client in (r, longer, other):
        client.mset({"a": 1, "b": 2})
        client.set("big", b"b" * (INLINE_LIMIT + 1))
    assert r.flushdb() is True
    assert r.dbsize() == 0
    assert r.engine.db.all_items(b"big") == [], "chunks go too"
    for client in (longer, other):
        assert client.mget("a", "b") == [b"1", b"2"]
        assert len(client.get("big")) == INLINE_LIMIT + 1
        assert client.dbsize() == 3
    assert r.flushdb(asynchronous=True) is True
    assert r.execute_command("FLUSHDB", "SYNC") is True
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.execute_command("FLUSHDB", "foo")


def test_flushall_clears_the_whole_table(make_redimo: Callable[..., Redimo], table: str, store: Any) -> None:
    first, second = make_redimo(table=table), make_redimo(table=table)
    for client in (first, second):
        client.mset({f"k{i}": i for i in range(30)})
        client.set("big", b"b" * (INLINE_LIMIT + 1))
    assert store.client.scan(TableName=table, Select="COUNT")["Count"] == 2 * (30 + 1 + 2)
    before = first.gateway.usage.snapshot()
    assert first.flushall() is True
    requests = (first.gateway.usage - before).requests
    assert requests["batch_write_item"] == 3  # 66 items, 25 a request
    assert store.client.scan(TableName=table, Select="COUNT")["Count"] == 0
    assert second.get("k1") is None
    with pytest.raises(redis.ResponseError, match="syntax error"):
        first.execute_command("FLUSHALL", "ASYNC", "SYNC")


def test_namespaces_are_isolated(make_redimo: Callable[..., Redimo]) -> None:
    one, two = make_redimo(), make_redimo()
    one.set("k", "one", ex=100)
    two.set("k", "two")
    one.set("only-one", "1")
    assert (one.get("k"), two.get("k")) == (b"one", b"two")
    assert (one.ttl("k"), two.ttl("k")) == (100, -1)
    assert two.exists("only-one", "k") == 1
    assert two.get("only-one") is None
    assert two.delete("only-one") == 0
    assert one.get("only-one") == b"1"
    assert one.rename("k", "renamed")
    assert two.get("k") == b"two"
    assert two.incr("counter") == 1 and one.get("counter") is None


def test_namespaces_are_isolated_in_scans(make_redimo: Callable[..., Redimo]) -> None:
    base = f"test-{uuid.uuid4().hex}"
    one, two = make_redimo(namespace=base), make_redimo(namespace=base + "0")
    one.mset({"a": 1, "b": 2})
    two.mset({"c": 3})
    assert (sorted(one.keys()), two.keys()) == ([b"a", b"b"], [b"c"])
    assert (one.dbsize(), two.dbsize()) == (2, 1)
    assert sorted(one.scan_iter()) == [b"a", b"b"]
    assert two.randomkey() == b"c"


def test_namespace_cannot_contain_nul(store: Any) -> None:
    with pytest.raises(ValueError, match="NUL"):
        Redimo(store.table, namespace="a\x00b", client=store.client)
