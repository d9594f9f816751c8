"""A Celery app for the tests: result backend ``redimo://`` on DynamoDB Local, configured from the
environment so that a worker subprocess (``celery -A celery_app worker``) builds the same app."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Any, Iterator

from celery import Celery

import redimo_celery  # noqa: F401 - registers the redimo:// broker transport

app = Celery("redimo_tests")
app.conf.update(
    broker_url=os.environ.get("REDIMO_TEST_BROKER", "memory://"),
    result_backend=os.environ.get("REDIMO_TEST_BACKEND", "redimo://redimo-tests"),
    result_extended=True,
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    broker_transport_options={"visibility_timeout": float(os.environ.get("REDIMO_TEST_VISIBILITY", 3600))},
    task_track_started=True,
    redimo_beat_lock_timeout=float(os.environ.get("REDIMO_TEST_BEAT_LOCK", 3)),
    beat_max_loop_interval=1,
)
if os.environ.get("REDIMO_TEST_BEAT_FILE"):
    app.conf.beat_schedule = {"record-every-second": {
        "task": "celery_app.record", "schedule": 1.0, "args": (os.environ["REDIMO_TEST_BEAT_FILE"], "beat")}}


@contextmanager
def settings(**changes: Any) -> Iterator[None]:
    """The app with ``changes`` to its settings for the duration; its pooled broker connections and
    per-thread result backends are dropped on entry and exit, so they follow the settings."""
    saved = dict(app.conf)
    app.conf.update(changes)
    app._after_fork()
    app._local.__dict__.pop("backend", None)
    try:
        yield
    finally:
        app.conf.update(saved)
        app._after_fork()
        app._local.__dict__.pop("backend", None)


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task
def identity(value: object) -> object:
    return value


@app.task
def fail(message: str) -> None:
    raise ValueError(message)


@app.task
def collect(values: list) -> list:
    return values


@app.task
def slow_add(x: int, y: int, seconds: float) -> int:
    time.sleep(seconds)
    return x + y


@app.task
def pid() -> int:
    return os.getpid()


@app.task(bind=True, max_retries=3, default_retry_delay=0.1)
def flaky(self, succeed_on: int) -> int:  # type: ignore[no-untyped-def]
    """Fails until its ``succeed_on``-th attempt (1-based), then returns the attempt number."""
    if self.request.retries + 1 < succeed_on:
        raise self.retry(exc=RuntimeError("not yet"))
    return self.request.retries + 1


@app.task
def sleep_then_record(seconds: float, path: str, tag: str) -> str:
    """Sleeps, then appends ``tag`` to the file at ``path`` (the tests read which runs finished)."""
    time.sleep(seconds)
    with open(path, "a") as out:
        out.write(tag + "\n")
    return tag


@app.task
def record(path: str, tag: str) -> str:
    with open(path, "a") as out:
        out.write(f"{tag} {time.time()}\n")
    return tag
