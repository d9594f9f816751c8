"""Celery task locks on DynamoDB Local: Once and Limited (the core's lock and semaphore), and the
backends for celery-once's QueueOnce and celery-singleton's Singleton."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any, Callable
from urllib.parse import urlencode

import celery_singleton.backends
import pytest
from celery import Celery, states
from celery.app.backends import by_url
from celery.contrib.testing.worker import start_worker
from celery.exceptions import MaxRetriesExceededError
from celery_once import AlreadyQueued as OnceAlreadyQueued
from celery_once import QueueOnce
from celery_singleton import DuplicateTaskError, Singleton, clear_locks

from redimo import Redimo
from redimo_celery.connection import ConfigurationError, app_client
from redimo_celery.locks import AlreadyQueued, Limited, Once
from redimo_celery.once import Backend as OnceBackend
from redimo_celery.singleton import Backend as SingletonBackend

from conftest import TABLE, run_processes


def new_app(url: str, **conf: Any) -> Celery:
    """An app whose result_backend is ``url`` (what app_client reads), on the in-memory broker with a
    queue of its own; results go to the Redimo backend if it loads, else to an in-memory cache."""
    app = Celery(f"locks-{uuid.uuid4().hex[:8]}", broker="memory://", set_as_current=False)
    app.conf.update(result_backend=url, task_default_queue=f"q-{uuid.uuid4().hex}", worker_timer_precision=0.05,
                    broker_transport_options={"polling_interval": 0.05}, **conf)
    try:
        by_url(url)
    except Exception:  # the redimo:// result backend is not installed yet
        app.backend_cls = "cache+memory://"
    return app


@pytest.fixture
def url(dynamodb_local_client: Any, dynamodb_local_endpoint: str) -> str:
    """A redimo:// URL on DynamoDB Local's test table, in a namespace of the test's own."""
    return f"redimo://{TABLE}?" + urlencode({"endpoint_url": dynamodb_local_endpoint,
                                             "namespace": f"celery-{uuid.uuid4().hex}"})


@pytest.fixture
def make_app(url: str) -> Callable[..., Celery]:
    return lambda **conf: new_app(url, **conf)


def identity(a: Any) -> Any:
    return a


def spent(client: Redimo, operation: Callable[[], Any]) -> tuple[Any, dict[str, int]]:
    """The operation's result and the DynamoDB requests it made."""
    before = client.gateway.usage.snapshot()
    result = operation()
    return result, dict((client.gateway.usage - before).requests)


# -- Once ------------------------------------------------------------------------------------------

def test_duplicate_raises_with_countdown(make_app: Callable[..., Celery]) -> None:
    app = make_app()

    @app.task(shared=False, base=Once, once={"keys": ["b", "a"], "timeout": 30})
    def add(a: int, b: int, note: str = "") -> int:
        return a + b

    client = app_client(app)
    first, cost = spent(client, lambda: add.apply_async((1, 2), {"note": "x"}))
    assert cost == {"update_item": 1}, "queuing: the lock's acquire only"
    assert client.get(f'once:{add.name}:{{"a":1,"b":2}}') == first.id.encode(), \
        "the key holds the selected arguments, sorted, and its value is the task id"
    with pytest.raises(AlreadyQueued) as duplicate:
        spent(client, lambda: add.delay(1, b=2, note="y"))
    assert 29 < duplicate.value.countdown <= 30 and "Expires in" in str(duplicate.value)
    _, cost = spent(client, lambda: pytest.raises(AlreadyQueued, add.apply_async, (1, 2)))
    assert cost == {"update_item": 1, "get_item": 1}, "a duplicate: the refused acquire and a PTTL"
    assert add.apply_async((1, 3)).id != first.id


def test_positional_arguments_are_named_by_the_signature(make_app: Callable[..., Celery]) -> None:
    app = make_app()

    @app.task(shared=False, base=Once, once={"keys": ["y", "z"]})
    def task(x: int, y: int = 5, **extra: Any) -> None:
        pass

    task.apply_async((1,), {"z": 0})
    for args, kwargs in (((2, 5), {"z": 0}), ((), {"x": 3, "y": 5, "z": 0})):
        with pytest.raises(AlreadyQueued):
            task.apply_async(args, kwargs)
    task.apply_async((1, 6), {"z": 0})
    with pytest.raises(ConfigurationError, match=r"\['z'\] are not among the arguments"):
        task.apply_async((1,))


def test_graceful_returns_the_queued_result(make_app: Callable[..., Celery]) -> None:
    app = make_app()

    @app.task(shared=False, base=Once, once={"graceful": True})
    def task(x: int) -> None:
        pass

    first = task.delay(1)
    again, cost = spent(app_client(app), lambda: task.delay(1))
    assert again.id == first.id and cost == {"update_item": 1, "get_item": 1}
    with pytest.raises(AlreadyQueued):
        task.apply_async((1,), once={"graceful": False})
    other = task.apply_async((2,), once={"keys": []})
    assert task.apply_async((3,), once={"keys": []}).id == other.id, "no keys: any call is a duplicate"


def test_released_after_success_and_failure(make_app: Callable[..., Celery]) -> None:
    app = make_app(task_always_eager=True)

    @app.task(shared=False, base=Once)
    def ok(x: int) -> int:
        return x

    @app.task(shared=False, base=Once)
    def boom(x: int) -> None:
        raise ValueError(x)

    client = app_client(app)
    for _ in range(2):
        result, cost = spent(client, lambda: ok.delay(1))
        assert result.get() == 1 and cost == {"update_item": 2}, "the acquire, and the release after the run"
        assert boom.delay(1).state == states.FAILURE
    assert client.keys("once:*") == [], "every lock was released"


def test_released_by_a_worker_with_increasing_fencing_tokens(make_app: Callable[..., Celery]) -> None:
    app = make_app()

    @app.task(shared=False, bind=True, base=Once, once={"keys": []})
    def fenced(self: Once, fail: bool) -> int:
        if fail:
            raise ValueError(self.once_fencing_token)
        return self.once_fencing_token

    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False):
        tokens = [fenced.delay(False).get(timeout=20)]
        with pytest.raises(ValueError):
            fenced.delay(True).get(timeout=20, propagate=True)
        tokens.append(fenced.delay(False).get(timeout=20))
    assert all(isinstance(token, int) for token in tokens)
    assert tokens[1] == tokens[0] + 2, "the failed run held the token in between and released its lock"


def test_fencing_token_and_unlock_before_run(make_app: Callable[..., Celery]) -> None:
    app = make_app(task_always_eager=True)
    client = app_client(app)

    @app.task(shared=False, bind=True, base=Once)
    def task(self: Once, x: int) -> tuple[int, bytes | None]:
        return self.once_fencing_token, client.get(self.once_key((x,)))

    runs = [task.delay(1).get() for _ in range(3)]
    assert [token for token, _ in runs] == list(range(runs[0][0], runs[0][0] + 3)), "strictly increasing"
    assert all(holder is not None for _, holder in runs), "held while running"
    result, cost = spent(client, lambda: task.apply_async((1,), once={"unlock_before_run": True}))
    assert result.get() == (runs[-1][0] + 1, None), "released before the run"
    assert cost == {"update_item": 2, "get_item": 1}, "acquire, release; the task's own GET"
    assert task(1) == (None, None), "a direct call takes no lock"


def test_holds_across_apps(url: str) -> None:
    queued = new_app(url, task_always_eager=False)
    other = new_app(url)
    first = queued.task(base=Once, name="shared.task", shared=False)(identity).delay(1)
    task = other.task(base=Once, name="shared.task", shared=False, once={"timeout": 60})(identity)
    with pytest.raises(AlreadyQueued):
        task.delay(1)
    assert task.apply_async((1,), once={"graceful": True}).id == first.id
    task.delay(2)


def try_duplicate(url: str, expected_id: str) -> None:
    """In another process: the lock queued by the parent holds."""
    task = new_app(url).task(base=Once, name="shared.task", shared=False)(identity)
    try:
        task.delay(1)
    except AlreadyQueued as duplicate:
        assert duplicate.countdown > 0
    else:
        raise AssertionError("queued a duplicate")
    assert task.apply_async((1,), once={"graceful": True}).id == expected_id


def test_holds_across_processes(url: str) -> None:
    first = new_app(url).task(base=Once, name="shared.task", shared=False)(identity).delay(1)
    run_processes(try_duplicate, [(url, first.id)], timeout=60)


def test_lock_expires_after_its_timeout(make_app: Callable[..., Celery]) -> None:
    app = make_app()

    @app.task(shared=False, base=Once, once={"timeout": 0.5})
    def task(x: int) -> None:
        pass

    first = task.delay(1)
    with pytest.raises(AlreadyQueued) as duplicate:
        task.delay(1)
    assert 0 < duplicate.value.countdown <= 0.5
    time.sleep(0.6)
    second = task.delay(1)
    assert not task._unlock(task.once_key((1,)), first.id), "the expired run cannot release the new lock"
    assert app_client(app).get(task.once_key((1,))) == second.id.encode()


def test_bad_options_are_refused(make_app: Callable[..., Celery]) -> None:
    app = make_app()

    def define(base: type, **options: Any) -> Any:
        return app.task(base=base, name=f"t-{uuid.uuid4().hex}", shared=False, lazy=False, **options)(identity)

    for options, message in (({"timeout": -1}, "timeout must be a number > 0"),
                             ({"keys": ["b"]}, r"keys \['b'\] are not arguments"),
                             ({"keys": "a"}, "list of argument names"),
                             ({"graceful": "yes"}, "graceful must be True or False"),
                             ({"timeot": 3}, "unknown once option")):
        with pytest.raises(ConfigurationError, match=message):
            define(Once, once=options)
    for options, message in (({"max": 0}, "max must be an integer >= 1"), ({"lease": 5}, "needs limit"),
                             ({"max": 1, "lease": -1}, "lease must be a number > 0")):
        with pytest.raises(ConfigurationError, match=message):
            define(Limited, limit=options)
    task = define(Once)
    _, cost = spent(app_client(app), lambda: pytest.raises(ConfigurationError, task.apply_async, (1,),
                                                           once={"timeout": 0}))
    assert cost == {}, "refused before any request"
    app.conf.redimo_once = {"graceful": 1}
    with pytest.raises(ConfigurationError, match="graceful"):
        task.delay(1)
    app.conf.redimo_limit = {"countdown": -1}
    with pytest.raises(ConfigurationError, match="countdown"):
        define(Limited, limit={"max": 1}).delay(1)


# -- Limited ---------------------------------------------------------------------------------------

def test_limited_costs_and_over_the_limit(make_app: Callable[..., Celery]) -> None:
    app = make_app(task_always_eager=True)

    @app.task(shared=False, base=Limited, limit={"key": "reports", "max": 1, "lease": 30}, max_retries=0)
    def report() -> str:
        return "done"

    client = app_client(app)
    result, cost = spent(client, report.delay)
    assert result.get() == "done" and cost == {"update_item": 2}, "take a slot, give it back"
    assert client.semaphore("limit:reports", 1, 30, blocking=False).acquire(), "the slot came back"
    result, cost = spent(client, report.delay)
    assert isinstance(result.result, MaxRetriesExceededError) and cost == {"update_item": 1}, \
        "over the limit: a refused acquire, then a retry (here none is left)"


def test_limited_never_exceeds_max_with_a_worker(make_app: Callable[..., Celery]) -> None:
    app = make_app()
    running, peak, retried, guard = [0], [0], [], threading.Lock()

    @app.task(shared=False, bind=True, base=Limited, limit={"max": 2, "lease": 30, "countdown": 0.1}, max_retries=None)
    def work(self: Limited) -> None:
        with guard:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            retried.append(self.request.retries)
        time.sleep(0.3)
        with guard:
            running[0] -= 1

    with start_worker(app, pool="threads", concurrency=4, perform_ping_check=False):
        results = [work.delay() for _ in range(6)]
        for result in results:
            result.get(timeout=30)
    assert peak[0] == 2, "two at a time, never more"
    assert len(retried) == 6 and max(retried) > 0, "runs over the limit were retried"


def test_limited_slot_of_a_killed_worker_comes_back_after_its_lease(make_app: Callable[..., Celery]) -> None:
    app = make_app()

    @app.task(shared=False, bind=True, base=Limited, limit={"key": "solo", "max": 1, "lease": 1, "countdown": 0.2},
              max_retries=None)
    def solo(self: Limited) -> tuple[float, int]:
        return time.monotonic(), self.request.retries

    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False):
        assert app_client(app).semaphore("limit:solo", 1, 1, blocking=False).acquire(), "a worker then killed"
        killed = time.monotonic()
        ran, retries = solo.delay().get(timeout=20)
    assert ran - killed >= 0.9 and retries > 0


# -- celery-once and celery-singleton --------------------------------------------------------------

def test_celery_once_backend(url: str) -> None:
    settings = {"url": url, "default_timeout": 30}
    app = new_app(url, ONCE={"backend": "redimo_celery.once.Backend", "settings": settings})

    @app.task(shared=False, base=QueueOnce, once={"keys": ["x"]})
    def task(x: int, y: int = 0) -> int:
        return x

    client = app_client(app)
    _, cost = spent(client, lambda: task.delay(1))
    assert cost == {"put_item": 1}
    with pytest.raises(OnceAlreadyQueued) as duplicate:
        task.delay(1, y=2)
    assert 29 < duplicate.value.countdown <= 30
    graceful, cost = spent(client, lambda: task.apply_async((1,), once={"graceful": True}))
    assert graceful.state == states.REJECTED and cost == {"put_item": 1, "get_item": 1}
    _, cost = spent(client, lambda: OnceBackend(settings).clear_lock(task.get_key((1,))))
    assert cost == {"update_item": 1}
    task.delay(1)

    app.conf.task_always_eager = True
    assert [task.delay(2).get() for _ in range(2)] == [2, 2], "released after each run"

    blocking = OnceBackend({**settings, "blocking": True, "blocking_timeout": 3})
    blocking.raise_or_lock("k", timeout=0.5)
    started = time.monotonic()
    blocking.raise_or_lock("k", timeout=5)
    assert 0.3 < time.monotonic() - started < 2, "waited for the first lock to expire"
    for bad in ({}, {"url": "redis://localhost"}, {"url": url + "&colour=red"}):
        with pytest.raises(ConfigurationError):
            OnceBackend(bad)


def test_celery_singleton_backend(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(celery_singleton.backends, "_backend", None)  # celery-singleton caches it globally
    app = new_app(url, singleton_backend_class="redimo_celery.singleton.Backend", singleton_backend_url=url)

    @app.task(shared=False, base=Singleton)
    def task(x: int) -> int:
        if x < 0:
            raise ValueError(x)
        return x

    @app.task(shared=False, base=Singleton, raise_on_duplicate=True, lock_expiry=30)
    def strict(x: int) -> None:
        pass

    client = app_client(app)
    first, cost = spent(client, lambda: task.delay(1))
    assert cost == {"put_item": 1}
    again, cost = spent(client, lambda: task.delay(1))
    assert again.id == first.id and cost == {"put_item": 1, "get_item": 1}
    held = strict.delay(1)
    with pytest.raises(DuplicateTaskError) as duplicate:
        strict.delay(1)
    assert duplicate.value.task_id == held.id and 0 < client.ttl(strict.generate_lock(strict.name, [1])) <= 30
    clear_locks(app)
    assert client.keys("SINGLETONLOCK_*") == []
    assert task.delay(1).id != first.id

    app.conf.task_always_eager = True
    for x in (2, -2):
        ids = {task.delay(x).id for _ in range(2)}
        assert len(ids) == 2, "released after success and after failure"

    monkeypatch.setattr(celery_singleton.backends, "_backend", None)
    app.conf.singleton_backend_url = None
    with pytest.raises(ConfigurationError, match="singleton_backend_url"):
        app.task(base=Singleton, shared=False, lazy=False)(identity).delay(3)
    with pytest.raises(ConfigurationError, match="unknown"):
        SingletonBackend(url, db=1)
