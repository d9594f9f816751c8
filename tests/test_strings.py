"""String commands through redis-py, on both stores, with their DynamoDB request counts."""

from __future__ import annotations

import pytest
import redis

from redimo import Redimo


def requests(r: Redimo) -> int:
    return r.gateway.usage.total_requests


def test_get_set_round_trip_binary(r: Redimo) -> None:
    key, value = b"\x00\xffkey\n", bytes(range(256))
    assert r.set(key, value) is True
    assert r.get(key) == value
    assert r.get(b"missing") is None


def test_single_key_commands_cost_one_request(r: Redimo) -> None:
    before = requests(r)
    r.set("k", "v")
    r.get("k")
    r.incr("counter")
    r.expire("k", 100)
    r.delete("k")
    assert requests(r) - before == 5


def test_set_options(r: Redimo) -> None:
    assert r.set("k", "1", nx=True) is True
    assert r.set("k", "2", nx=True) is None
    assert r.set("k", "3", xx=True) is True
    assert r.set("other", "3", xx=True) is None
    assert r.set("k", "4", get=True) == b"3"
    assert r.set("k", "5", ex=100)
    assert 99 <= r.ttl("k") <= 100
    assert r.set("k", "6", keepttl=True)
    assert 99 <= r.ttl("k") <= 100
    assert r.set("k", "7")
    assert r.ttl("k") == -1
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.execute_command("SET", "k", "v", "NX", "XX")
    with pytest.raises(redis.ResponseError, match="invalid expire time"):
        r.execute_command("SET", "k", "v", "EX", "0")


def test_counters_are_native_numbers(r: Redimo) -> None:
    assert r.incr("n") == 1
    assert r.incrby("n", 41) == 42
    assert r.decrby("n", 2) == 40
    assert r.get("n") == b"40"
    r.set("n", "9223372036854775807")
    with pytest.raises(redis.ResponseError, match="overflow"):
        r.incr("n")
    r.set("s", "abc")
    with pytest.raises(redis.ResponseError, match="not an integer"):
        r.incr("s")
    assert r.incrbyfloat("f", "10.5") == 10.5
    assert r.incrbyfloat("f", "0.1") == pytest.approx(10.6)
    assert r.get("f") == b"10.6"


def test_incr_keeps_ttl(r: Redimo) -> None:
    r.set("n", 1, ex=100)
    r.incr("n")
    assert 99 <= r.ttl("n") <= 100


def test_mget_batches_by_100(r: Redimo) -> None:
    r.mset({f"k{i}": i for i in range(100)})
    before = requests(r)
    values = r.mget([f"k{i}" for i in range(250)])
    assert requests(r) - before == 3
    assert values[:100] == [str(i).encode() for i in range(100)] and values[100:] == [None] * 150


def test_mset_is_one_transaction_up_to_100_keys(r: Redimo) -> None:
    before = r.gateway.usage.snapshot()
    r.mset({f"k{i}": "v" for i in range(100)})
    spent = r.gateway.usage - before
    assert dict(spent.requests) == {"transact_write_items": 1}
    before = r.gateway.usage.snapshot()
    r.mset({f"k{i}": "w" for i in range(130)})
    assert dict((r.gateway.usage - before).requests) == {"batch_write_item": 6}


def test_msetnx_all_or_nothing(r: Redimo) -> None:
    assert r.msetnx({"a": 1, "b": 2}) is True
    assert r.msetnx({"b": 3, "c": 4}) is False
    assert r.mget("a", "b", "c") == [b"1", b"2", None]


def test_wrongtype_is_not_possible_for_strings_only_but_get_reports_it(r: Redimo) -> None:
    item = {"pk": {"B": r.engine.db.pk(b"h")}, "sk": {"B": b"\x00"}, "t": {"S": "hash"}}
    r.gateway.client.put_item(TableName=r.gateway.table, Item=item)
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.get("h")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.incr("h")
    assert r.mget("h") == [None]
    assert r.type("h") == b"hash"


def test_append_strlen_ranges(r: Redimo) -> None:
    assert r.append("s", "Hello") == 5
    assert r.append("s", " World") == 11
    assert r.strlen("s") == 11
    assert r.getrange("s", 0, 4) == b"Hello"
    assert r.getrange("s", -5, -1) == b"World"
    assert r.setrange("s", 6, "Redis") == 11
    assert r.get("s") == b"Hello Redis"
    assert r.setrange("pad", 3, "x") == 4
    assert r.get("pad") == b"\x00\x00\x00x"


def test_getdel_getex_getset(r: Redimo) -> None:
    r.set("k", "v")
    assert r.getset("k", "w") == b"v"
    assert r.getex("k", ex=50) == b"w"
    assert 49 <= r.ttl("k") <= 50
    assert r.getex("k", persist=True) == b"w"
    assert r.ttl("k") == -1
    assert r.getdel("k") == b"w"
    assert r.get("k") is None
    assert r.getdel("k") is None


@pytest.mark.parametrize("size", [350_000, 350_001, 2_000_000, 16 * 1024 * 1024])
def test_large_values_are_chunked(r: Redimo, size: int) -> None:
    value = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    r.set("big", value, ex=1000)
    assert r.get("big") == value
    assert r.strlen("big") == size
    r.set("big", "small")
    assert r.get("big") == b"small"
    items = r.engine.db.all_items(b"big")
    assert len(items) == 1, "the replaced value's chunks are deleted"


def test_too_large_value_is_refused(r: Redimo) -> None:
    with pytest.raises(redis.ResponseError, match="maximum allowed size"):
        r.set("huge", b"x" * (64 * 1024 * 1024 + 1))


def test_chunked_value_delete_and_expire(r: Redimo) -> None:
    r.set("big", b"y" * 1_000_000)
    assert r.expire("big", 100)
    assert all("tx" in item for item in r.engine.db.all_items(b"big"))
    assert r.persist("big")
    assert not any("tx" in item for item in r.engine.db.all_items(b"big"))
    assert r.delete("big") == 1
    left = r.engine.db.all_items(b"big")
    assert [item["sk"]["B"] for item in left] == [b"\x00"] and left[0]["x"] == {"N": "1"} and "tx" in left[0], \
        "the chunks are deleted; the head stays, expired, until DynamoDB's TTL removes it"


def test_decode_responses(make_redimo) -> None:
    r = make_redimo(decode_responses=True)
    r.set("k", "välue")
    assert r.get("k") == "välue"
    assert r.mget("k", "x") == ["välue", None]


def test_mset_beyond_a_transactions_4_mb_is_refused_clearly(r: Redimo) -> None:
    values = {f"k{i}": b"x" * 300_000 for i in range(15)}  # 4.5 MB, each value inline
    with pytest.raises(redis.ResponseError, match="too large to write atomically"):
        r.mset(values)
    assert r.exists(*values) == 0, "nothing was written"


def test_a_refused_expire_leaves_a_chunked_values_ttl_alone(r: Redimo) -> None:
    r.set("big", b"z" * 800_000, ex=1000)
    assert r.expire("big", 5, gt=True) == 0
    assert r.expire("big", 5000, lt=True) == 0
    chunk_ttls = {item["tx"]["N"] for item in r.engine.db.all_items(b"big")}
    assert len(chunk_ttls) == 1, "head and chunks keep one TTL"
    assert 990 <= r.ttl("big") <= 1000
