"""The collection layer (redimo.collection) and the key commands on collections, shown with hashes:
generations, exact counts, atomic writes, expiry, orphans, COPY/RENAME/DEL, large writes."""

from __future__ import annotations

import uuid
from typing import Callable

import pytest

from redimo import Redimo
from redimo.storage import HEAD

from conftest import TABLE, run_processes


def items_of(r: Redimo, key: bytes) -> list[bytes]:
    return sorted(item["sk"]["B"] for item in r.engine.db.all_items(key))


def requests(r: Redimo, action: Callable[[], object]) -> dict[str, int]:
    before = r.gateway.usage.snapshot()
    action()
    return dict((r.gateway.usage - before).requests)


@pytest.mark.promoted
def test_point_read_is_one_request_and_write_two(r: Redimo) -> None:
    assert requests(r, lambda: r.hset("h", "f", "v")) == {"batch_get_item": 1, "transact_write_items": 1}
    assert requests(r, lambda: r.hget("h", "f")) == {"batch_get_item": 1}
    assert requests(r, lambda: r.hlen("h")) == {"get_item": 1}
    assert requests(r, lambda: r.hdel("h", "missing")) == {"batch_get_item": 1}, "nothing to change: no write"


def test_the_last_member_removed_deletes_the_key(r: Redimo) -> None:
    r.hset("h", mapping={"a": 1, "b": 2})
    assert r.hdel("h", "a", "b") == 2
    assert r.exists("h") == 0 and items_of(r, b"h") == []


@pytest.mark.promoted
def test_a_key_recreated_after_expiry_does_not_see_old_members(make_redimo: Callable[..., Redimo]) -> None:
    now = [1_000_000_000_000]
    r = make_redimo(clock=lambda: now[0])
    r.hset("h", mapping={"old1": 1, "old2": 2})
    r.pexpire("h", 100)
    now[0] += 101
    assert r.hgetall("h") == {} and r.hget("h", "old1") is None and r.hlen("h") == 0
    assert r.hset("h", mapping={"old1": "new", "x": 1}) == 2, "expired members count as absent"
    assert r.hgetall("h") == {b"old1": b"new", b"x": b"1"} and r.hlen("h") == 2
    assert r.ttl("h") == -1
    assert items_of(r, b"h") == [HEAD, b"\x02old1", b"\x02x"], "the expired incarnation's members are deleted"


def test_orphaned_members_of_a_vanished_head_stay_invisible(r: Redimo) -> None:
    """AWS's TTL deletes an expired head long after it expired, but deletes its members separately
    (never, without their own TTL): members whose head is gone must not come back."""
    r.hset("h", mapping={"a": 1, "b": 2})
    r.gateway.delete(r.engine.db.head_key(b"h"))
    assert r.hgetall("h") == {} and r.exists("h") == 0
    assert r.hset("h", "a", "new") == 1
    assert r.hgetall("h") == {b"a": b"new"} and r.hlen("h") == 1
    assert r.hdel("h", "b") == 0, "an orphan is not a member"


def test_wrong_type_and_replacement_by_set(r: Redimo) -> None:
    r.hset("h", mapping={"a": 1})
    r.set("s", "v")
    for call in (lambda: r.hget("s", "a"), lambda: r.hset("s", "a", 1), lambda: r.get("h"), lambda: r.incr("h")):
        try:
            call()
        except Exception as error:
            assert str(error).startswith("WRONGTYPE")
        else:
            raise AssertionError("WRONGTYPE expected")
    r.set("h", "string now")
    assert r.get("h") == b"string now" and items_of(r, b"h") == [HEAD], "SET over a hash deletes its members"


@pytest.mark.promoted
def test_copy_rename_and_delete(r: Redimo) -> None:
    r.hset("h", mapping={"a": 1, "b": "x"})
    r.expire("h", 100)
    assert r.copy("h", "c")
    assert r.hgetall("c") == {b"a": b"1", b"b": b"x"} and 95 <= r.ttl("c") <= 100
    r.hset("c", "z", 1)
    assert r.hlen("h") == 2 and r.hlen("c") == 3, "a copy shares no items with its source"
    r.set("target", "string")
    assert r.rename("h", "target")
    assert r.exists("h") == 0 and items_of(r, b"h") == []
    assert r.type("target") == b"hash" and r.hgetall("target") == {b"a": b"1", b"b": b"x"}
    assert not r.copy("c", "target"), "COPY without REPLACE keeps an existing target"
    assert r.copy("c", "target", replace=True) and r.hlen("target") == 3
    assert len(items_of(r, b"target")) == 4, "the replaced value's members are deleted"
    assert r.delete("target", "c") == 2
    assert items_of(r, b"target") == [] and items_of(r, b"c") == []
    assert r.scan(0, _type="hash")[1] == []


@pytest.mark.promoted
def test_a_large_write_splits_into_transactions_of_100_items(r: Redimo) -> None:
    fields = {f"f{i}": i for i in range(250)}
    assert requests(r, lambda: r.hset("big", mapping=fields)) == {"batch_get_item": 3, "transact_write_items": 3}
    assert r.hlen("big") == 250 and len(r.hgetall("big")) == 250
    assert r.hdel("big", *fields) == 250
    assert r.exists("big") == 0 and items_of(r, b"big") == []


def set_fields(url: str, namespace: str, worker: int, count: int) -> None:
    r = Redimo(table=TABLE, namespace=namespace, endpoint_url=url)
    for i in range(count):
        r.hset("shared", mapping={f"w{worker}-{i}": i, "common": worker})


def test_concurrent_writers_keep_the_count_exact(shared_endpoint: str) -> None:
    namespace = f"test-{uuid.uuid4().hex}"
    run_processes(set_fields, [(shared_endpoint, namespace, worker, 15) for worker in range(4)])
    r = Redimo(table=TABLE, namespace=namespace, endpoint_url=shared_endpoint)
    assert r.hlen("shared") == 4 * 15 + 1 == len(r.hgetall("shared"))
