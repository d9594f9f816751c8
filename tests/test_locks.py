"""Locks (with fencing tokens) and semaphores: API tests on both stores, and stress tests with real
OS processes against a DynamoDB endpoint (DynamoDB Local, and moto's server)."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import signal
import time
import uuid
from pathlib import Path

import pytest
from redis.exceptions import LockError, LockNotOwnedError, WatchError

from redimo import Redimo
from redimo.gateway import make_client

from conftest import TABLE

FORK = multiprocessing.get_context("fork")


def test_lock_api_matches_redis_py(r: Redimo) -> None:
    lock = r.lock("resource", timeout=10)
    assert lock.acquire(blocking=False)
    assert lock.owned() and lock.locked()
    assert r.get("resource") == lock.local.token, "the key holds the token, as with redis-py"
    other = r.lock("resource", timeout=10)
    assert not other.acquire(blocking=False)
    assert not other.owned()
    assert lock.extend(5)
    assert 10_000 < r.pttl("resource") <= 15_000, "extend adds to the remaining lease"
    assert lock.extend(3, replace_ttl=True)
    assert r.pttl("resource") <= 3_000
    assert lock.reacquire()
    assert 5_000 < r.pttl("resource") <= 10_000
    lock.release()
    assert not lock.locked()
    assert r.get("resource") is None and r.exists("resource") == 0
    with pytest.raises(LockError):
        lock.release()
    with pytest.raises(LockError):
        r.lock("no-timeout").extend(1)


def test_each_operation_is_one_request(r: Redimo) -> None:
    lock = r.lock("one", timeout=10)
    for operation in (lambda: lock.acquire(blocking=False), lambda: lock.extend(1), lock.reacquire, lock.release):
        before = r.gateway.usage.total_requests
        operation()
        assert r.gateway.usage.total_requests - before == 1


def test_watch_sees_every_lock_operation(make_redimo) -> None:
    """Each lock write gives the key a new version: a head that kept the version of an expired SET
    would otherwise look unchanged to WATCH after an extend or a release."""
    r = make_redimo()
    other = make_redimo(namespace=r.engine.db.namespace)
    r.set("resource", "old", px=1)
    time.sleep(0.005)
    lock = other.lock("resource", timeout=10)
    for operation in (lock.acquire, lambda: lock.extend(1), lock.reacquire, lock.release):
        with r.pipeline() as pipe:
            pipe.watch("resource")
            operation()
            pipe.multi()
            pipe.set("after", "1")
            with pytest.raises(WatchError):
                pipe.execute()


def test_fencing_tokens_increase_across_release_and_expiry(r: Redimo) -> None:
    tokens = []
    for _ in range(3):
        lock = r.lock("fenced", timeout=10)
        assert lock.acquire(blocking=False)
        tokens.append(lock.fencing_token)
        lock.release()
    short = r.lock("fenced", timeout=0.05)
    assert short.acquire(blocking=False)
    tokens.append(short.fencing_token)
    time.sleep(0.1)  # the lease lapses without a release
    after = r.lock("fenced", timeout=10)
    assert after.acquire(blocking=False)
    tokens.append(after.fencing_token)
    assert tokens == sorted(set(tokens)) and len(tokens) == 5
    with pytest.raises(LockNotOwnedError):
        short.release()


def test_blocking_timeout_and_context_manager(r: Redimo) -> None:
    holder = r.lock("busy", timeout=5)
    holder.acquire()
    started = time.monotonic()
    with pytest.raises(LockError, match="Unable to acquire"):
        with r.lock("busy", timeout=5, sleep=0.05, blocking_timeout=0.3):
            pass
    assert 0.2 < time.monotonic() - started < 2
    holder.release()
    with r.lock("busy", timeout=5) as lock:
        assert lock.owned()
    assert not lock.locked()


def test_lost_lease_is_reported_on_release_and_extend(r: Redimo) -> None:
    lock = r.lock("lease", timeout=0.05)
    lock.acquire()
    time.sleep(0.1)
    assert r.lock("lease", timeout=5).acquire(blocking=False)
    with pytest.raises(LockNotOwnedError):
        lock.extend(1)


def test_auto_renewal_keeps_the_lease_and_reports_failure(r: Redimo) -> None:
    failures = []
    lock = r.lock("renewed", timeout=1.2, auto_renewal=True, on_renewal_failure=lambda l, e: failures.append(e))
    assert lock.acquire()
    time.sleep(3)
    assert lock.owned(), "the heartbeat extended the lease past its timeout"
    # someone takes the key away (an operator deletes it): the next renewal fails and says so
    r.delete("renewed")
    deadline = time.monotonic() + 5
    while not lock.renewal_failed and time.monotonic() < deadline:
        time.sleep(0.02)
    assert lock.renewal_failed and isinstance(failures[0], LockNotOwnedError)
    with pytest.raises(LockNotOwnedError):
        lock.release()


def test_semaphore_limits_holders_and_frees_expired_slots(r: Redimo) -> None:
    slots = [r.semaphore("pool", limit=2, timeout=1.5) for _ in range(3)]
    assert slots[0].acquire(blocking=False) and slots[1].acquire(blocking=False)
    assert not slots[2].acquire(blocking=False)
    slots[0].release()
    assert slots[2].acquire(blocking=False)
    time.sleep(1.6)  # both leases lapse: their holders "crashed"
    fresh = [r.semaphore("pool", limit=2, timeout=5) for _ in range(2)]
    assert all(slot.acquire(blocking=False) for slot in fresh)
    with pytest.raises(LockNotOwnedError):
        slots[1].release()
    before = r.gateway.usage.total_requests
    fresh[0].release()
    assert r.semaphore("pool", limit=2, timeout=5).acquire(blocking=False)
    assert r.gateway.usage.total_requests - before == 2, "release and a free-slot acquire: 1 request each"


def test_django_cache_lock(store) -> None:
    from redimo_django.cache import RedimoCache

    cache = RedimoCache(TABLE, {"KEY_PREFIX": "site", "VERSION": 3,
                                "OPTIONS": {"CLIENT_FACTORY": lambda: store.client, "NAMESPACE": f"c-{uuid.uuid4().hex}"}})
    with cache.lock("report", timeout=10, blocking_timeout=1) as lock:
        assert lock.fencing_token == 1
        assert cache.get_client().get("site:3:report") == lock.local.token, "the key is made as for any cache key"
        assert not cache.lock("report", timeout=10).acquire(blocking=False)
    assert cache.lock("report", timeout=10).acquire(blocking=False)


# -- real processes ----------------------------------------------------------------------------
def _client(url: str, namespace: str) -> Redimo:
    return Redimo(table=TABLE, namespace=namespace, client=make_client(endpoint_url=url))


def _locked_append(path: Path, line: str) -> None:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write(line + "\n")


def _increment_under_lock(url: str, namespace: str, directory: str, increments: int) -> None:
    r = _client(url, namespace)
    counter, fences = Path(directory) / "counter", Path(directory) / "fences"
    for _ in range(increments):
        with r.lock("counter-lock", timeout=10, sleep=0.01) as lock:
            value = int(counter.read_text() or 0)  # a read-modify-write no other lock protects
            time.sleep(0.001)
            counter.write_text(str(value + 1))
            with fences.open("a") as handle:
                handle.write(f"{lock.fencing_token}\n")


def _run(processes: list) -> None:
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=180)
        assert process.exitcode == 0, f"worker exit code {process.exitcode}"


def test_lock_stress_no_lost_update_and_increasing_fences(shared_endpoint: str, tmp_path: Path) -> None:
    workers, increments = 4, 15
    namespace = f"stress-{uuid.uuid4().hex}"
    (tmp_path / "counter").write_text("0")
    _run([FORK.Process(target=_increment_under_lock, args=(shared_endpoint, namespace, str(tmp_path), increments))
          for _ in range(workers)])
    assert int((tmp_path / "counter").read_text()) == workers * increments
    fences = [int(line) for line in (tmp_path / "fences").read_text().split()]
    assert len(fences) == workers * increments
    assert all(earlier < later for earlier, later in zip(fences, fences[1:])), "fencing tokens strictly increase"


def _hold_forever(url: str, namespace: str, ready: str, timeout: float) -> None:
    r = _client(url, namespace)
    lock = r.lock("crash-lock", timeout=timeout)
    assert lock.acquire()
    Path(ready).write_text(str(r.pexpiretime("crash-lock")))  # the lease's end, as stored
    time.sleep(3600)


def test_killed_holder_frees_the_lock_after_its_timeout_and_not_before(shared_endpoint: str, tmp_path: Path) -> None:
    namespace, timeout = f"crash-{uuid.uuid4().hex}", 3.0
    ready = tmp_path / "ready"
    holder = FORK.Process(target=_hold_forever, args=(shared_endpoint, namespace, str(ready), timeout))
    holder.start()
    deadline = time.monotonic() + 30
    while not ready.exists() or not ready.read_text():
        assert time.monotonic() < deadline and holder.is_alive()
        time.sleep(0.01)
    lease_end = int(ready.read_text())
    os.kill(holder.pid, signal.SIGKILL)
    holder.join()
    r = _client(shared_endpoint, namespace)
    waiter = r.lock("crash-lock", timeout=5, sleep=0.02)
    tried_at = r.engine.db.clock()
    if tried_at < lease_end - 500:  # a slow machine may reach here after the lease ended: then the early try proves nothing
        assert not waiter.acquire(blocking=False), "the dead holder's lease has not run out yet"
    assert waiter.acquire(blocking_timeout=10)
    got_at = r.engine.db.clock()
    assert got_at >= lease_end, "not before the lease ends"
    assert got_at < lease_end + 3000, "and soon after it"


def _use_semaphore(url: str, namespace: str, directory: str, limit: int, rounds: int) -> None:
    r = _client(url, namespace)
    inside = Path(directory) / "inside"
    for _ in range(rounds):
        with r.semaphore("sem", limit=limit, timeout=60, sleep=0.01):
            with inside.open("a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                handle.write("+\n")
            time.sleep(0.005)
            with inside.open("a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                handle.write("-\n")


def test_semaphore_stress_never_exceeds_limit(shared_endpoint: str, tmp_path: Path) -> None:
    workers, limit, rounds = 5, 2, 8
    namespace = f"sem-{uuid.uuid4().hex}"
    _run([FORK.Process(target=_use_semaphore, args=(shared_endpoint, namespace, str(tmp_path), limit, rounds))
          for _ in range(workers)])
    events = (tmp_path / "inside").read_text().split()
    assert events.count("+") == workers * rounds
    current = peak = 0
    for event in events:
        current += 1 if event == "+" else -1
        peak = max(peak, current)
    assert peak <= limit, f"{peak} holders at once"
    assert peak == limit, "the stress actually overlapped holders"
