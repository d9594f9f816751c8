"""Expiry is exact: every read hides an expired key itself, to the millisecond, whether or not
DynamoDB's TTL has deleted the item yet. The tables here have TTL turned off, so every expired
item is still stored, and each test reads it raw to prove it."""

from __future__ import annotations

import time
import uuid
from typing import Any, Callable, Iterator

import pytest
import redis

from redimo import Redimo
from redimo.gateway import Gateway
from redimo.storage import INLINE_LIMIT, millis
from redimo.table import create_table

BIG = b"B" * (INLINE_LIMIT + 1)


@pytest.fixture
def ttl_off(store: Any) -> Iterator[str]:
    name = f"redimo-expiry-{uuid.uuid4().hex}"
    create_table(Gateway(name, store.client), ttl=False)
    status = store.client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert status["TimeToLiveStatus"] == "DISABLED"
    yield name
    store.client.delete_table(TableName=name)


@pytest.fixture
def r(make_redimo: Callable[..., Redimo], ttl_off: str) -> Redimo:
    return make_redimo(table=ttl_off)


def shifted(make_redimo: Callable[..., Redimo], r: Redimo, milliseconds: int) -> Redimo:
    """The same namespace seen by a client whose clock is ``milliseconds`` ahead."""
    return make_redimo(table=r.gateway.table, namespace=r.engine.db.namespace,
                       clock=lambda: millis() + milliseconds)


def raw_items(r: Redimo, key: bytes) -> list[dict]:
    """Every stored item of a key, read with the boto3 client directly."""
    response = r.gateway.client.query(
        TableName=r.gateway.table, KeyConditionExpression="pk = :pk", ConsistentRead=True,
        ExpressionAttributeValues={":pk": {"B": r.engine.db.pk(key)}})
    return response["Items"]


def raw_head(r: Redimo, key: bytes) -> dict | None:
    return r.gateway.client.get_item(TableName=r.gateway.table, ConsistentRead=True,
                                     Key={"pk": {"B": r.engine.db.pk(key)}, "sk": {"B": b"\x00"}}).get("Item")


def write_expiring(make_redimo: Callable[..., Redimo], r: Redimo, how: str) -> tuple[Redimo, Redimo]:
    """Keys of each kind of string item that expire, and one persistent key. Returns a client
    that sees them expired and one that sees them alive: with ``how="sleep"``, keys of PX 100
    and a pause of 150 ms; with ``how="clock"``, keys of a minute and a clock two minutes ahead."""
    px = 100 if how == "sleep" else 60_000
    r.set("keep", "kept")
    r.set("big", BIG, px=px)
    r.set("s", "value", px=px)
    r.set("n", 41, px=px)
    r.set("app", "abc", px=px)
    r.set("float", "1.5", px=px)
    for key in (b"s", b"n", b"big", b"app", b"float"):
        head = raw_head(r, key)
        assert int(head["tx"]["N"]) == -(-int(head["x"]["N"]) // 1000), "the TTL attribute rounds up"
    if how == "sleep":
        time.sleep(0.15)
        return r, shifted(make_redimo, r, -60_000)
    return shifted(make_redimo, r, 120_000), r


HOW = pytest.mark.parametrize("how", ["sleep", "clock"])


@HOW
def test_expired_keys_are_absent_to_point_reads(make_redimo: Callable[..., Redimo], r: Redimo, how: str) -> None:
    later, earlier = write_expiring(make_redimo, r, how)
    expiring = ["s", "n", "big", "app", "float"]
    for key in expiring:
        assert later.get(key) is None
        assert later.exists(key) == 0
        assert (later.ttl(key), later.pttl(key)) == (-2, -2)
        assert (later.expiretime(key), later.execute_command("PEXPIRETIME", key)) == (-2, -2)
        assert later.type(key) == b"none"
        assert later.strlen(key) == 0
        assert later.getrange(key, 0, -1) == b""
        assert later.getex(key, ex=100) is None
        assert later.persist(key) is False
        assert later.expire(key, 100) is False
    assert later.exists(*expiring, "keep", "keep") == 2
    assert later.mget(*expiring, "keep") == [None] * 5 + [b"kept"]
    with pytest.raises(redis.ResponseError, match="no such key"):
        later.rename("s", "t")
    assert later.copy("s", "t") is False
    assert later.get("keep") == b"kept"
    for key in expiring:
        assert raw_head(r, key.encode()) is not None, "the item is still stored: the read hid it"
    assert len(raw_items(r, b"big")) == 3
    assert earlier.get("s") == b"value", "and the key is alive for a client whose clock says so"
    assert earlier.mget("big", "n") == [BIG, b"41"]


@HOW
def test_expired_keys_are_absent_to_writes(make_redimo: Callable[..., Redimo], r: Redimo, how: str) -> None:
    later, _ = write_expiring(make_redimo, r, how)
    assert later.incr("n") == 1, "INCR starts again from 0"
    assert later.ttl("n") == -1, "without the old TTL"
    assert later.set("s", "new", nx=True) is True
    assert later.get("s") == b"new" and later.ttl("s") == -1
    assert later.append("app", "xyz") == 3
    assert later.get("app") == b"xyz"
    assert later.incrbyfloat("float", "0.25") == 0.25
    assert later.set("big", "small", xx=True) is None, "XX: an expired key does not exist"
    assert raw_head(r, b"big") is not None
    assert later.set("big", "small", get=True) is None, "GET: there was no old value"
    assert later.get("big") == b"small"
    assert len(raw_items(r, b"big")) == 1, "the expired value's chunks went with it"


@HOW
def test_expired_keys_are_absent_to_deletes_and_counters(make_redimo: Callable[..., Redimo], r: Redimo,
                                                         how: str) -> None:
    later, _ = write_expiring(make_redimo, r, how)
    assert later.delete("s") == 0
    assert raw_head(r, b"s") is None, "DEL removes the expired item all the same"
    assert later.delete("n", "big", "keep") == 1
    assert raw_items(r, b"big") == []
    assert later.getdel("app") is None
    assert later.setnx("float", "x") is True
    assert later.msetnx({"app": "1", "float2": "2"}) is True


@HOW
def test_expired_keys_are_absent_to_scans(make_redimo: Callable[..., Redimo], r: Redimo, how: str) -> None:
    later, earlier = write_expiring(make_redimo, r, how)
    assert sorted(earlier.keys()) == [b"app", b"big", b"float", b"keep", b"n", b"s"]
    assert earlier.dbsize() == 6
    assert later.keys() == [b"keep"]
    assert later.keys("s*") == []
    assert later.scan(0) == (0, [b"keep"])
    assert list(later.scan_iter(count=1)) == [b"keep"]
    assert later.dbsize() == 1
    assert {later.randomkey() for _ in range(5)} == {b"keep"}
    assert later.delete("keep") == 1
    assert (later.randomkey(), later.dbsize(), later.keys()) == (None, 0, [])
    assert r.gateway.client.scan(TableName=r.gateway.table, Select="COUNT")["Count"] == 5 + 2 + 1, \
        "DEL leaves the head expired, for exactly-once, until DynamoDB's TTL removes it"


def test_the_millisecond_boundary(make_redimo: Callable[..., Redimo], r: Redimo) -> None:
    at = millis() + 60_000
    r.set("k", "v", pxat=at)
    just_before = make_redimo(table=r.gateway.table, namespace=r.engine.db.namespace, clock=lambda: at - 1)
    just_after = make_redimo(table=r.gateway.table, namespace=r.engine.db.namespace, clock=lambda: at + 1)
    assert (just_before.get("k"), just_before.pttl("k"), just_before.exists("k")) == (b"v", 1, 1)
    assert (just_after.get("k"), just_after.pttl("k"), just_after.exists("k")) == (None, -2, 0)
    assert just_before.incr("k2") == 1 and just_before.pexpireat("k2", at)
    assert just_after.incr("k2") == 1, "an expired counter starts again"
    assert just_before.set("k3", "v", nx=True, pxat=at)
    assert just_before.set("k3", "w", nx=True) is None
    assert just_after.set("k3", "w", nx=True) is True


def warm_up(r: Redimo) -> None:
    """DynamoDB Local's JVM is slow on the first requests to a new table: not what is measured."""
    for _ in range(3):
        r.set("warm", "up", px=150)
        r.get("warm"), r.exists("warm", "up"), r.mget("warm", "up"), r.pttl("warm"), r.incr("warm-n")
        r.pexpire("warm-n", 150)


def within_150_ms(r: Redimo, write: Callable[[str], None], keys: list[str]) -> tuple[float, tuple]:
    """Write (timed), read back 50 ms after the write began; returns (end of write, what was read).
    Tries again (other keys) when the store was too slow for the reads to end within 150 ms."""
    for attempt in range(3):
        names = [f"{key}-{attempt}" for key in keys]
        started = time.monotonic()
        for name in names:
            write(name)
        written = time.monotonic()
        time.sleep(max(0.0, started + 0.05 - time.monotonic()))
        seen = (r.get(names[0]), r.exists(*names), r.mget(*names), r.pttl(names[0]))
        if time.monotonic() - started < 0.15:
            return written, (names, seen)
    pytest.fail("the store was too slow three times: reads did not end within 150 ms of the write")


def test_px_150_is_alive_at_50_ms_and_gone_at_250_ms(r: Redimo) -> None:
    warm_up(r)
    written, (names, seen) = within_150_ms(r, lambda name: r.set(name, "v", px=150), ["k", "n"])
    assert seen[:3] == (b"v", 2, [b"v", b"v"])
    assert 0 < seen[3] <= 150
    time.sleep(max(0.0, written + 0.25 - time.monotonic()))
    assert (r.get(names[0]), r.exists(*names), r.mget(*names), r.pttl(names[0])) == (None, 0, [None, None], -2)
    assert all(raw_head(r, name.encode()) is not None for name in names)
    assert r.incr(names[1]) == 1


def test_pexpire_150_is_alive_at_50_ms_and_gone_at_250_ms(r: Redimo) -> None:
    warm_up(r)

    def write(name: str) -> None:
        r.set(name, "v")  # outside the measured window would be better, but it is one more request
        assert r.pexpire(name, 150)

    written, (names, seen) = within_150_ms(r, write, ["k"])
    assert seen[:3] == (b"v", 1, [b"v"])
    time.sleep(max(0.0, written + 0.25 - time.monotonic()))
    assert (r.get(names[0]), r.exists(names[0]), r.pttl(names[0])) == (None, 0, -2)
    assert raw_head(r, names[0].encode()) is not None
