"""``RedimoScheduler`` on DynamoDB Local: entries in the table, one beat at a time through a lock
with a fencing token, run history that survives restarts, and two ``celery beat`` subprocesses of
which the active one is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest
from celery.contrib.testing.worker import start_worker
from celery.schedules import crontab, schedule, solar

import celery_app
from conftest import ROOT, TABLE, wait_until
from redimo_celery.beat import RedimoEntry, RedimoScheduler, decode_schedule, encode_schedule

app = celery_app.app


@pytest.fixture
def on_redimo(dynamodb_local_client: Any, dynamodb_local_endpoint: str) -> Iterator[str]:
    url = f"redimo://{TABLE}?endpoint_url={dynamodb_local_endpoint}&namespace=beat-{uuid.uuid4().hex}"
    with celery_app.settings(broker_url=url, result_backend=url, beat_schedule={}, redimo_beat_lock_timeout=3):
        yield url


class Recording(RedimoScheduler):
    """A scheduler that records what it would send instead of sending it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sent: list[str] = []
        super().__init__(*args, **kwargs)

    def apply_async(self, entry: Any, producer: Any = None, advance: bool = True, **kwargs: Any) -> Any:
        self.sent.append(entry.name)
        return type("Result", (), {"id": uuid.uuid4().hex})()

    @property
    def producer(self) -> None:  # type: ignore[override]
        return None


@pytest.mark.parametrize("value", [schedule(timedelta(seconds=30)), schedule(5, relative=True),
                                   crontab(minute="*/15", hour="9-17", day_of_week="mon-fri"),
                                   solar("sunrise", 51.5, -0.12)])
def test_schedules_round_trip_as_json(value: Any) -> None:
    assert decode_schedule(encode_schedule(value), app) == value


def test_entries_are_saved_loaded_and_deleted_from_any_process(on_redimo: str) -> None:
    entry = RedimoEntry("report", "celery_app.add", schedule(60), args=[1, 2], kwargs={"x": 1},
                        options={"queue": "reports"}, app=app).save()
    loaded = RedimoEntry.load("report", app)
    assert loaded is not None and loaded == entry and loaded.args == [1, 2] and loaded.options == {"queue": "reports"}
    assert "report" in Recording(app, lazy=True).schedule
    entry.delete()
    assert RedimoEntry.load("report", app) is None
    assert "report" not in Recording(app, lazy=True).schedule
    with pytest.raises(ValueError, match="needs a name, a task and a schedule"):
        RedimoEntry("x", None, schedule(1), app=app)


def test_beat_schedule_is_synced_at_start(on_redimo: str) -> None:
    app.conf.beat_schedule = {"a": {"task": "celery_app.add", "schedule": 10.0, "args": (1, 1)},
                              "b": {"task": "celery_app.add", "schedule": 20.0, "args": (2, 2)}}
    assert set(Recording(app).schedule) == {"a", "b"}
    app.conf.beat_schedule = {"a": {"task": "celery_app.add", "schedule": 10.0, "args": (3, 3)}}
    synced = Recording(app).schedule
    assert set(synced) == {"a"} and synced["a"].args == [3, 3], "removed from the config: removed"
    RedimoEntry("runtime", "celery_app.add", schedule(5), app=app).save()
    assert set(Recording(app).schedule) == {"a", "runtime"}, "entries added at runtime stay"


def test_one_beat_runs_due_entries_and_the_run_history_survives(on_redimo: str) -> None:
    RedimoEntry("fast", "celery_app.add", schedule(0.5), args=[1, 1], app=app).save()
    active, standby = Recording(app), Recording(app)
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        active.tick()
        standby.tick()
        time.sleep(0.1)
    assert len(active.sent) >= 3 and standby.sent == [], "only the lock holder sends"
    assert active.lock is not None and active.lock.fencing_token is not None
    restarted = RedimoEntry.load("fast", app)
    assert restarted is not None and restarted.total_run_count == len(active.sent), "history is in the table"
    active.close()
    assert standby.tick() >= 0 and standby.lock is not None and standby.lock.local.token is not None, \
        "a closed beat releases its lock to the standby"


def test_a_beat_that_lost_its_lock_sends_nothing(on_redimo: str) -> None:
    RedimoEntry("due", "celery_app.add", schedule(60), args=[1, 1], app=app).save()  # not due in the ticks
    beat = Recording(app, lock_timeout=1)
    beat.tick()
    time.sleep(1.2)  # the lease runs out, and another beat takes the lock
    other = Recording(app, lock_timeout=10)
    other.tick()
    assert beat.lock is not None
    entry = RedimoEntry.load("due", app)
    assert entry is not None and beat._record_run(entry) is False
    assert beat.sent == []


def start_beat(url: str, record: Path) -> subprocess.Popen:
    env = {**os.environ, "REDIMO_TEST_BACKEND": url, "REDIMO_TEST_BROKER": url, "REDIMO_TEST_BEAT_FILE": str(record),
           "REDIMO_TEST_BEAT_LOCK": "3", "PYTHONPATH": str(ROOT / "tests")}
    return subprocess.Popen([sys.executable, "-m", "celery", "-A", "celery_app", "beat", "-S",
                             "redimo_celery.beat:RedimoScheduler", "--loglevel", "WARNING",
                             "--pidfile", "", "-s", str(record.parent / f"schedule-{uuid.uuid4().hex}")],
                            env=env, cwd=ROOT / "tests", start_new_session=True)


def test_a_standby_beat_takes_over_when_the_active_one_is_killed(on_redimo: str, tmp_path: Path) -> None:
    """Two ``celery beat`` processes, a 1 s entry and a 3 s lock: after ``kill -9`` of the active
    beat the standby sends the entry on, and no due run is sent twice."""
    record = tmp_path / "runs"
    record.touch()
    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=30):
        first = start_beat(on_redimo, record)
        second = None
        try:
            wait_until(lambda: len(record.read_text().split("\n")) > 3, "the first beat's runs", 60)
            second = start_beat(on_redimo, record)
            time.sleep(3)
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(timeout=30)
            killed_at = time.time()
            wait_until(lambda: any(float(line.split()[1]) > killed_at + 1 for line in record.read_text().splitlines()),
                       "the standby beat's runs", 60)
            time.sleep(3)
        finally:
            for process in (first, second):
                if process is not None and process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
                    process.wait(timeout=60)
    times = sorted(float(line.split()[1]) for line in record.read_text().splitlines())
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    assert min(gaps) > 0.5, f"a run was sent twice: gaps {gaps}"
    assert max(gaps) < 3 + 1 + 2, f"the standby took over within the lock timeout: gaps {gaps}"
