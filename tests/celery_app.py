"""A Celery app for the tests: result backend ``redimo://`` on DynamoDB Local, configured from the
environment so that a worker subprocess (``celery -A celery_app worker``) builds the same app."""

from __future__ import annotations

import os
import time

from celery import Celery

app = Celery("redimo_tests")
app.conf.update(
    broker_url=os.environ.get("REDIMO_TEST_BROKER", "memory://"),
    result_backend=os.environ.get("REDIMO_TEST_BACKEND", "redimo://redimo-tests"),
    result_extended=True,
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
)


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


@app.task(bind=True)
def pid(self) -> int:  # noqa: ARG001 - bound to show it runs in a worker process
    return os.getpid()
