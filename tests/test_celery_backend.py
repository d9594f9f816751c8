"""The ``redimo://`` Celery result backend on DynamoDB Local: the key/value contract with its request
counts, final states, expiry, large results, bad input, native chords and joins, with a real
in-process worker and a prefork worker in a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from typing import Any, Iterator

import pytest
from celery import chord, group, states
from celery.contrib.testing.worker import start_worker
from celery.exceptions import ChordError, ImproperlyConfigured
from celery.result import AsyncResult, GroupResult
from kombu.exceptions import EncodeError
from redis.exceptions import ResponseError

import celery_app
from celery_app import add, collect, fail, identity, pid, slow_add
from conftest import ROOT, TABLE, wait_until
from redimo_celery.backend import RedimoBackend

app = celery_app.app


def spent(backend: RedimoBackend, action: Any) -> dict[str, int]:
    """The DynamoDB requests ``action()`` made through the backend's client, by operation."""
    before = backend.client.gateway.usage.snapshot()
    action()
    return dict((backend.client.gateway.usage - before).requests)


@pytest.fixture
def configured(dynamodb_local_client: Any, dynamodb_local_endpoint: str) -> Iterator[str]:
    """The test app's backend URL, on a namespace of its own; each test gets fresh backends."""
    url = f"redimo://{TABLE}?endpoint_url={dynamodb_local_endpoint}&namespace=celery-{uuid.uuid4().hex}"
    with celery_app.settings(result_backend=url, result_expires=3600, result_backend_always_retry=False):
        yield url


@pytest.fixture
def backend(configured: str) -> RedimoBackend:
    fresh = app.backend
    assert isinstance(fresh, RedimoBackend)
    return fresh


@pytest.fixture
def worker(configured: str) -> Iterator[Any]:
    """A real worker in this process (thread pool of 4), with the in-memory broker."""
    with start_worker(app, pool="threads", concurrency=4, perform_ping_check=False, shutdown_timeout=30) as running:
        yield running


def new_backend(url: str) -> RedimoBackend:
    return RedimoBackend(app=app, url=url)


# -- construction and bad input ---------------------------------------------------------------
def test_building_makes_no_request_and_the_url_is_parsed(configured: str) -> None:
    built = new_backend(configured)
    assert built._holder._client is None, "no client (and no request) until first use"
    assert built.location.table == TABLE and built.location.namespace.startswith("celery-")
    assert new_backend(f"redimo://{TABLE}").location.namespace == "celery"
    assert built.as_uri() == configured


@pytest.mark.parametrize("url, message", [
    ("redimo://", "names no table"),
    ("redimo://ab", "not a DynamoDB table name"),
    (f"redimo://{TABLE}?colour=blue", "unknown option 'colour'"),
])
def test_bad_urls_are_refused_when_the_backend_is_built(url: str, message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        new_backend(url)


def test_options_come_from_transport_options_and_the_url_wins(configured: str) -> None:
    app.conf.result_backend_transport_options = {"namespace": "from-options", "region": "eu-west-1"}
    try:
        assert new_backend(f"redimo://{TABLE}").location.namespace == "from-options"
        assert new_backend(f"redimo://{TABLE}?namespace=url").location.namespace == "url"
        assert new_backend(f"redimo://{TABLE}").location.region == "eu-west-1"
    finally:
        app.conf.result_backend_transport_options = {}


def test_a_missing_table_names_the_create_table_command(configured: str, dynamodb_local_endpoint: str) -> None:
    missing = new_backend(f"redimo://no-such-table?endpoint_url={dynamodb_local_endpoint}")
    with pytest.raises(ResponseError, match="redimo create-table no-such-table"):
        missing.get_task_meta("x")


def test_an_unserializable_result_fails_and_keeps_what_was_stored(backend: RedimoBackend) -> None:
    backend.store_result("t1", 1, states.STARTED)
    with pytest.raises(EncodeError):
        backend.store_result("t1", object(), states.SUCCESS)
    assert backend.get_task_meta("t1", cache=False)["status"] == states.STARTED


# -- the contract and its request counts ------------------------------------------------------
def test_store_and_fetch_cost_one_request_each(backend: RedimoBackend, configured: str) -> None:
    assert spent(backend, lambda: backend.store_result("t1", {"answer": 42}, states.SUCCESS)) == {"put_item": 1}
    fresh = new_backend(configured)
    meta: dict = {}
    assert spent(fresh, lambda: meta.update(fresh.get_task_meta("t1"))) == {"get_item": 1}
    assert meta["status"] == states.SUCCESS and meta["result"] == {"answer": 42}
    assert fresh.client.gateway.consistent_reads, "results are read strongly consistently"


def test_a_ready_state_is_final_against_late_updates(backend: RedimoBackend) -> None:
    backend.store_result("t1", None, states.STARTED)
    backend.store_result("t1", 3, states.SUCCESS)
    for late in (states.STARTED, states.RETRY, states.RECEIVED, states.PENDING):
        assert spent(backend, lambda: backend.store_result("t1", None, late)) == {"put_item": 1}
        assert backend.get_task_meta("t1", cache=False)["status"] == states.SUCCESS
    backend.store_result("t1", ValueError("boom"), states.FAILURE)
    assert backend.get_task_meta("t1", cache=False)["status"] == states.FAILURE, "a ready state may replace a ready one"
    backend.mark_as_revoked("t2", "stop")
    backend.store_result("t2", None, states.STARTED)
    assert backend.get_task_meta("t2", cache=False)["status"] == states.REVOKED


def test_extended_results_keep_the_request(backend: RedimoBackend) -> None:
    app.conf.result_extended = True
    request = type("Request", (), {"id": "t1", "task": "tasks.add", "args": [1, 2], "kwargs": {"k": 1},
                                   "hostname": "w1", "retries": 0, "delivery_info": {"routing_key": "celery"},
                                   "group": None, "group_index": None, "chord": None, "ignore_result": False,
                                   "parent_id": None, "root_id": "t1"})()
    backend.store_result("t1", 3, states.SUCCESS, request=request)
    meta = backend.get_task_meta("t1", cache=False)
    assert (meta["name"], meta["args"], meta["kwargs"], meta["worker"]) == ("tasks.add", [1, 2], {"k": 1}, "w1")


def test_groups_and_forget_cost_one_request_each(backend: RedimoBackend, configured: str) -> None:
    saved = GroupResult("g1", [AsyncResult("a", app=app), AsyncResult("b", app=app)], app=app)
    assert spent(backend, lambda: backend.save_group("g1", saved)) == {"put_item": 1}
    fresh = new_backend(configured)
    restored: list = []
    assert spent(fresh, lambda: restored.append(fresh.restore_group("g1"))) == {"get_item": 1}
    assert [child.id for child in restored[0].results] == ["a", "b"]
    assert spent(fresh, lambda: fresh.delete_group("g1")) == {"update_item": 1}
    assert new_backend(configured).restore_group("g1") is None
    backend.store_result("t1", 1, states.SUCCESS)
    assert spent(fresh, lambda: fresh.forget("t1")) == {"update_item": 1}
    assert fresh.get_task_meta("t1")["status"] == states.PENDING


@pytest.mark.parametrize("count", [100, 250])
def test_get_many_of_ready_results_is_one_batch_read_per_100(backend: RedimoBackend, configured: str,
                                                             count: int) -> None:
    ids = [f"t{i}" for i in range(count)]
    with backend.client.pipeline(transaction=False) as pipe:
        for task_id in ids:
            pipe.set(backend.get_key_for_task(task_id), backend.encode(
                {"status": states.SUCCESS, "result": task_id, "task_id": task_id}))
        pipe.execute()
    fresh = new_backend(configured)
    got: dict = {}
    assert spent(fresh, lambda: got.update(fresh.get_many(ids))) == {"batch_get_item": -(-count // 100)}
    assert {task_id: meta["result"] for task_id, meta in got.items()} == {i: i for i in ids}


def test_results_expire_exactly(backend: RedimoBackend) -> None:
    app.conf.result_expires = 1
    app.conf.result_failure_expires = 30
    short = new_backend(backend.url)
    short.store_result("ok", 1, states.SUCCESS)
    short.store_result("bad", ValueError("x"), states.FAILURE)
    ttl, failure_ttl = short.client.pttl(short.get_key_for_task("ok")), short.client.pttl(short.get_key_for_task("bad"))
    assert 0 < ttl <= 1000 and 29_000 < failure_ttl <= 30_000, "result_expires and result_failure_expires"
    time.sleep(1.1)
    assert short.get_task_meta("ok", cache=False)["status"] == states.PENDING, "never returned once expired"
    assert short.get_task_meta("bad", cache=False)["status"] == states.FAILURE
    app.conf.result_expires = None
    forever = new_backend(backend.url)
    forever.store_result("kept", 1, states.SUCCESS)
    assert forever.client.pttl(forever.get_key_for_task("kept")) == -1, "result_expires=None keeps results"


def test_a_five_megabyte_result_round_trips(backend: RedimoBackend) -> None:
    big = os.urandom(5 * 1024 * 1024).hex()[: 5 * 1024 * 1024]
    backend.store_result("big", big, states.SUCCESS)
    assert new_backend(backend.url).get_task_meta("big")["result"] == big


def test_transient_errors_are_safe_to_retry(backend: RedimoBackend) -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    assert backend.exception_safe_to_retry(RedisConnectionError("reset"))
    assert backend.exception_safe_to_retry(ResponseError("DynamoDB ThrottlingException: slow down"))
    assert not backend.exception_safe_to_retry(ResponseError("WRONGTYPE Operation against a key"))
    assert not backend.exception_safe_to_retry(ValueError("bad"))


# -- a real worker: tasks, groups, chords -----------------------------------------------------
def test_tasks_run_on_a_worker(worker: Any) -> None:
    assert add.delay(2, 3).get(timeout=20) == 5
    failed = fail.delay("no")
    with pytest.raises(ValueError, match="no"):
        failed.get(timeout=20)
    assert failed.state == states.FAILURE


def test_group_join_reads_the_completion_counter(worker: Any) -> None:
    result = group(add.s(i, i) for i in range(30)).apply_async()
    assert result.get(timeout=60) == [2 * i for i in range(30)]
    counter = result.backend.get_key_for_group(result.id, ".done")
    assert result.backend.client.get(counter) == b"30"
    assert 0 < result.backend.client.ttl(counter) <= 3600


def test_joining_100_tasks_costs_a_bounded_number_of_requests_per_cycle(backend: RedimoBackend) -> None:
    """While nothing completes, each poll cycle is 1 GET of the completion counter (1 GetItem) plus,
    every few cycles, an MGET of the pending results (1 BatchGetItem per 100)."""
    ids = [uuid.uuid4().hex for _ in range(100)]
    waiting = GroupResult(uuid.uuid4().hex, [AsyncResult(i, app=app) for i in ids], app=app, backend=backend)
    cycles: list[int] = []
    with pytest.raises(Exception, match="timed out"):
        backend.client.gateway.usage.requests.clear()
        list(backend.iter_native(waiting, timeout=2.0, interval=0.1, on_interval=lambda: cycles.append(1)))
    requests = backend.client.gateway.usage.requests
    assert requests["get_item"] >= len(cycles) - 1 >= 10, "one counter read per cycle"
    assert requests["batch_get_item"] <= 2 + len(cycles) // 2, "full checks are spaced out"
    assert set(requests) <= {"get_item", "batch_get_item"}


def test_a_chord_delivers_results_in_header_order(worker: Any) -> None:
    header = [slow_add.s(i, 0, 0.05 * ((7 * i) % 5)) for i in range(12)]
    result = chord(header)(collect.s())
    assert result.get(timeout=60) == list(range(12))


def test_a_failing_chord_part_fails_the_callback(worker: Any) -> None:
    result = chord([add.s(1, 1), fail.s("part broke")])(collect.s())
    with pytest.raises(ValueError, match="part broke"):
        result.get(timeout=60)  # the header's own error, as on redis (maybe before the callback failed)
    wait_until(lambda: result.state == states.FAILURE, "the callback's failure", 30)
    assert isinstance(result.result, ChordError) and "part broke" in str(result.result), "the callback's own error"


def test_a_redelivered_part_counts_once_and_one_callback_runs(backend: RedimoBackend, worker: Any) -> None:
    """Parts recorded before the chord is sized, twice (as a redelivery does) and concurrently from
    threads: exactly one callback, with each part's first result in header order."""
    group_id, body = uuid.uuid4().hex, identity.s()
    sent: list = []

    def part(index: int, value: int) -> None:
        request = type("Request", (), {"id": f"part-{index}", "group": group_id, "group_index": index,
                                       "chord": body})()
        new_backend(backend.url).on_chord_part_return(request, states.SUCCESS, value)

    original = app.amqp._retry_publish
    app.amqp._retry_publish = lambda send, results: sent.append(results)
    try:
        part(0, 100)  # before the size: Celery sizes a chord just before sending its last part
        backend.set_chord_size(group_id, 6)
        part(0, 999)  # the same part again: not counted, and its first result kept
        threads = [threading.Thread(target=part, args=(index, index)) for index in range(1, 6)]
        threads += [threading.Thread(target=part, args=(index, -1)) for index in range(1, 6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        part(3, 3)  # after the callback: nothing
    finally:
        app.amqp._retry_publish = original
    assert len(sent) == 1
    assert sent[0][0] == 100 and len(sent[0]) == 6
    assert all(value in (index, -1) for index, value in enumerate(sent[0]) if index)
    for suffix in (".s", ".t"):
        assert backend.client.exists(backend.get_key_for_group(group_id, suffix)) == 0
    parts = backend.get_key_for_group(group_id, ".j")
    assert backend.client.hlen(parts) == 7 and backend.client.ttl(parts) > 0, "parts (and the placeholder) expire"
    assert backend.client.ttl(backend.get_key_for_group(group_id, ".c")) > 0, "the done mark expires"


def test_chord_keys_expire(backend: RedimoBackend) -> None:
    group_id = uuid.uuid4().hex
    backend.set_chord_size(group_id, 3)
    request = type("Request", (), {"id": "p0", "group": group_id, "group_index": 0, "chord": identity.s()})()
    assert spent(backend, lambda: backend.on_chord_part_return(request, states.SUCCESS, 1)) == {
        "update_item": 1, "batch_get_item": 1}, "a part: HSETNX on the compact record, one batch read, no EXEC"
    for suffix in (".j", ".s"):
        assert 0 < backend.client.ttl(backend.get_key_for_group(group_id, suffix)) <= 3600, suffix


# -- a prefork worker in a subprocess ---------------------------------------------------------
@pytest.fixture
def prefork_worker(configured: str, redis_server: Any) -> Iterator[None]:
    """``celery -A celery_app worker -P prefork -c 2`` with a real redis-server as the broker (the
    backend does not use it)."""
    broker = f"redis://127.0.0.1:{redis_server.connection_pool.connection_kwargs['port']}/3"
    redis_server.flushdb()
    env = {**os.environ, "REDIMO_TEST_BACKEND": configured, "REDIMO_TEST_BROKER": broker,
           "PYTHONPATH": str(ROOT / "tests")}
    process = subprocess.Popen([sys.executable, "-m", "celery", "-A", "celery_app", "worker", "-P", "prefork",
                                "-c", "2", "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
                                "--without-heartbeat"], env=env, cwd=ROOT / "tests", start_new_session=True)
    use_broker(broker)
    try:
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        use_broker("memory://")


def use_broker(url: str) -> None:
    """Point the test app's producers at another broker (dropping its pooled connections)."""
    app.conf.broker_url = url
    app._after_fork()


def test_a_prefork_worker_stores_results_from_its_children(prefork_worker: None) -> None:
    wait_until(lambda: add.delay(1, 1).get(timeout=5) == 2, "the prefork worker", 90)
    children = {pid.delay().get(timeout=30) for _ in range(8)}
    assert os.getpid() not in children
    assert chord([add.s(i, 1) for i in range(6)])(collect.s()).get(timeout=60) == [i + 1 for i in range(6)]
    assert group(add.s(i, i) for i in range(10))().get(timeout=60) == [2 * i for i in range(10)]
