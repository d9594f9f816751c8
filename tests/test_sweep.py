"""`redimo sweep`: every unreachable item is deleted, every live key stays as it was, also while other
processes write. On DynamoDB Local: moto's PartiQL cannot run the sweep's conditional deletes."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import pytest

from conftest import run_processes
from redimo import Redimo
from redimo.cli import main
from redimo.gateway import Gateway, make_client
from redimo.sweep import Sweep
from redimo.table import create_table

BIG = bytes(range(256)) * 6000  # 1.5 MB: 5 chunks


@pytest.fixture
def table(dynamodb_local_endpoint: str) -> Any:
    """A table of the test's own, so that its raw item count is the test's alone."""
    name = f"sweep-{uuid.uuid4().hex[:10]}"
    client = make_client(endpoint_url=dynamodb_local_endpoint)
    create_table(Gateway(name, client))
    yield name, client
    client.delete_table(TableName=name)


def raw_items(client: Any, name: str) -> list[dict]:
    return list(Gateway(name, client).scan())


def state(r: Redimo) -> dict:
    """Every live key's type and value, read through the API."""
    found = {}
    for key in r.scan_iter(count=1000):
        kind = r.type(key)
        read = {b"string": r.get, b"hash": r.hgetall, b"set": r.smembers, b"list": lambda k: r.lrange(k, 0, -1),
                b"zset": lambda k: r.zrange(k, 0, -1, withscores=True), b"stream": r.xrange}[kind]
        found[key] = (kind, read(key))
    return found


def make_orphans_and_live_keys(r: Redimo) -> int:
    """The issue's recipe and the other paths that leave items behind; returns the live keys' own items."""
    fields = {f"field{i}": f"value {i}" for i in range(150)}
    r.hset("expiring-hash", mapping=fields)  # 150 member items (past the compact limits)
    r.pexpire("expiring-hash", 300)
    r.hset("overwritten-hash", mapping=fields)
    r.set("overwritten-big", BIG)
    r.mset({"overwritten-hash": "now a string", "overwritten-big": "small now"})  # MSET reads no old head
    r.set("expiring-big", BIG, px=300)
    r.hset("deleted-hash", mapping=fields)
    r.delete("deleted-hash")  # its members go at once; its head stays, expired, for exactly-once DEL
    r.set("deleted-string", "x")
    r.delete("deleted-string")
    live = 0
    r.mset({f"live:{i}": f"value {i}" for i in range(112)})
    live += 112 + 2  # and the two MSET keys
    r.hset("live-hash", mapping=fields)
    live += 1 + 150
    r.set("live-big", BIG)
    live += 1 + 5
    r.zadd("live-zset", {f"m{i}": i for i in range(100)})
    live += 1 + 100
    r.rpush("live-list", "a", "b", "c")
    r.xadd("live-stream", {"k": "v"})
    r.sadd("live-set", "x", "y")
    live += 3  # compact: their heads alone
    time.sleep(0.4)  # the PEXPIREs pass
    return live


def test_sweep_leaves_exactly_the_live_keys_items(table: Any, capsys: pytest.CaptureFixture) -> None:
    name, client = table
    r = Redimo(table=name, client=client)
    live = make_orphans_and_live_keys(r)
    semaphore_map = r.semaphore("pool", 2, timeout=60)
    assert semaphore_map.acquire()
    live += 1  # the semaphore's side item
    r.publish("news", "hello")  # Pub/Sub's channel items have their own lifetimes: the sweep leaves them
    live += sum(item["pk"]["B"].startswith(b"0\x1bpubsub\x00") for item in raw_items(client, name))
    before = state(r)
    assert len(raw_items(client, name)) > live + 300
    assert main(["sweep", "--table", name, "--endpoint-url", Gateway(name, client).endpoint, "--dry-run",
                 "--json", "--no-progress"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["dry_run"] and dry["deleted"] == len(raw_items(client, name)) - live  # counted, not deleted
    assert main(["sweep", "--table", name, "--endpoint-url", Gateway(name, client).endpoint, "--grace", "0.5",
                 "--json", "--no-progress"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(raw_items(client, name)) == live
    assert result["deleted"] == dry["deleted"] and result["kept_reachable_again"] == 0
    assert result["deleted_by_kind"] == {"expired head": 4, "chunk": 10, "hash member": 300}
    assert state(r) == before
    assert result["requests"]["batch_execute_statement"] == -(-result["deleted"] // 25)


def test_a_sweep_resumes_from_its_checkpoint(table: Any, tmp_path: Any) -> None:
    name, client = table
    r = Redimo(table=name, client=client)
    live = make_orphans_and_live_keys(r)
    gateway = Gateway(name, client)
    checkpoint = tmp_path / "sweep.json"
    stop_after = iter(range(3))

    def interrupted(scanned: int) -> None:
        if next(stop_after, None) is None:
            raise KeyboardInterrupt

    sweep = Sweep(gateway, grace=0.2, workers=2, checkpoint=checkpoint, progress=interrupted)
    sweep.scan_segment(0)  # one segment done ...
    with pytest.raises(KeyboardInterrupt):
        sweep.scan_segment(1)  # ... the other stopped after a page
    sweep.save_positions()
    assert json.loads(checkpoint.read_text())["positions"]["0"] is None
    result = Sweep(gateway, grace=0.2, workers=2, checkpoint=checkpoint).run()
    assert not checkpoint.exists() and result["items_scanned"] < len(raw_items(client, name)) + result["deleted"]
    Sweep(gateway, grace=0.2, workers=2).run()  # what the resumed run did not see again
    assert len(raw_items(client, name)) == live


def writer(endpoint: str, table: str, index: int, rounds: int) -> None:
    """Rewrites its keys in every way that leaves items behind, ending in a known state."""
    r = Redimo(table=table, endpoint_url=endpoint)
    for round_ in range(rounds):
        r.hset(f"h{index}", mapping={f"f{i}": f"{round_}:{i}" for i in range(80)})  # promoted
        r.set(f"big{index}", bytes([round_ % 256]) * 400_000)
        r.mset({f"h{index}": f"string {round_}", f"big{index}": f"small {round_}"})  # orphans members, chunks
        r.delete(f"h{index}")
        r.hset(f"h{index}", mapping={f"f{i}": f"again {round_}:{i}" for i in range(80)})
        r.set(f"big{index}", bytes([round_ % 256]) * 400_000)
        r.zadd(f"z{index}", {f"m{i}": i + round_ for i in range(70)})
        r.expire(f"z{index}", 60)


def test_sweeping_while_four_processes_write_loses_nothing(dynamodb_local_endpoint: str) -> None:
    name = f"sweep-{uuid.uuid4().hex[:10]}"
    client = make_client(endpoint_url=dynamodb_local_endpoint)
    gateway = Gateway(name, client)
    create_table(gateway)
    stop, sweeps = threading.Event(), []

    def sweeping() -> None:
        while not stop.is_set():
            sweeps.append(Sweep(Gateway(name, make_client(endpoint_url=dynamodb_local_endpoint)), grace=1.0,
                                workers=2).run())

    thread = threading.Thread(target=sweeping)
    thread.start()
    try:
        run_processes(writer, [(dynamodb_local_endpoint, name, index, 6) for index in range(4)], timeout=600)
    finally:
        stop.set()
        thread.join()
    Sweep(gateway, grace=0.5, workers=2).run()
    r = Redimo(table=name, client=client)
    for index in range(4):
        assert r.hgetall(f"h{index}") == {f"f{i}".encode(): f"again 5:{i}".encode() for i in range(80)}
        assert r.get(f"big{index}") == bytes([5]) * 400_000
        assert r.zrange(f"z{index}", 0, -1, withscores=True) == [(f"m{i}".encode(), float(i + 5)) for i in range(70)]
    assert len(sweeps) >= 2 and sum(result["deleted"] for result in sweeps) > 0
    live = 4 * ((1 + 80) + (1 + 2) + (1 + 70))
    assert len(raw_items(client, name)) == live
    client.delete_table(TableName=name)


def test_items_of_a_write_in_flight_are_kept_through_the_grace_period(table: Any) -> None:
    """A chunked value's chunks are written before its head: unreachable until the head lands."""
    name, client = table
    r = Redimo(table=name, client=client)
    head, chunks = r.engine.db.string_items(b"in-flight", BIG, None)
    r.gateway.batch_write(puts=chunks)  # the first step of SET of a large value
    results: list[dict] = []
    thread = threading.Thread(target=lambda: results.append(Sweep(Gateway(name, client), grace=1.5, workers=1).run()))
    thread.start()
    time.sleep(0.5)
    r.gateway.put(head)  # the second step, within the grace period
    thread.join()
    assert results[0]["unreachable_found"] == 5 and results[0]["kept_reachable_again"] == 5
    assert results[0]["deleted"] == 0 and r.get("in-flight") == BIG


def expired_collection(r: Redimo, key: str) -> None:
    r.hset(key, mapping={f"f{i}": "v" for i in range(100)})
    r.pexpire(key, 50)


def test_the_management_command_sweeps_its_caches_namespace(table: Any) -> None:
    import io

    from django.conf import settings
    from django.core.cache import caches
    from django.core.management import call_command
    from django.test import override_settings

    name, client = table
    config = {"default": {"BACKEND": "redimo_django.cache.RedimoCache", "LOCATION": name,
                          "OPTIONS": {"CLIENT_FACTORY": lambda: client}}}
    apps = list(settings.INSTALLED_APPS)
    with override_settings(CACHES=config, INSTALLED_APPS=apps if "redimo_django" in apps else [*apps, "redimo_django"]):
        redimo = caches["default"].get_client()
        expired_collection(redimo, "in-the-cache")
        other = Redimo(table=name, namespace="elsewhere", client=client)
        expired_collection(other, "elsewhere")
        time.sleep(0.1)
        out = io.StringIO()
        call_command("redimo_sweep", "--grace", "0.2", stdout=out)
        assert "Deleted 101 unreachable items" in out.getvalue()  # the head and its 100 members
        assert sum(item["pk"]["B"].startswith(b"elsewhere\x00") for item in raw_items(client, name)) == 101


def test_the_celery_task_sweeps(table: Any) -> None:
    from redimo_celery.tasks import sweep

    name, client = table
    r = Redimo(table=name, namespace="jobs", client=client)
    expired_collection(r, "old")
    time.sleep(0.1)
    endpoint = Gateway(name, client).endpoint
    result = sweep.apply(args=(f"redimo://{name}?namespace=jobs&endpoint_url={endpoint}",),
                         kwargs={"grace": 0.2}).get()
    assert result["deleted"] == 101 and not raw_items(client, name)
