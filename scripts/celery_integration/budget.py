"""pytest plugin for scripts/celery-integration.sh: a time limit on every attempt of every test phase,
and one on the whole session, that hold through pytest-rerunfailures' reruns.

pytest-timeout cannot do this for Celery's suite: its timer spans all of a test's reruns (the suite's
@flaky reruns a test 5 times), the reruns after the timer fired run with no limit at all, and its
--session-timeout is only checked once a test and all its reruns are over. A result backend that hangs
then hangs the run.

Here, as with pytest-timeout, a test's ``timeout`` mark (or CELERY_INTEGRATION_TEST_TIMEOUT) bounds
the time from the start of its first attempt, reruns included; but each setup, call and teardown gets a
SIGALRM timer of its own, so that once that time is up each further attempt's phases are bounded by
CELERY_INTEGRATION_TEST_TIMEOUT (pytest-timeout leaves them unbounded: the suite's
test_revoked_by_headers_complex_canvas, marked 20 s, relies on a rerun to finish the ~30 s of sleeping
tasks left by its first attempt), and all of them by what is left of CELERY_INTEGRATION_TIMEOUT. When a
timer fires, the stacks of all threads are written to CELERY_INTEGRATION_STACKS/<test>.txt and the phase
fails with a "Timeout" error (raised again every 30 s if something swallows it). Once the session's
time is up, no test is rerun and the run stops after the current test, so pytest still prints its
summary.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

import pytest

_TEST_TIMEOUT = float(os.environ.get("CELERY_INTEGRATION_TEST_TIMEOUT", "600"))
_SESSION_TIMEOUT = float(os.environ.get("CELERY_INTEGRATION_TIMEOUT", "0"))
_STACKS = Path(os.environ.get("CELERY_INTEGRATION_STACKS", "celery-integration-stacks"))
_REFIRE = 30.0
_started = time.monotonic()


def _remaining() -> float | None:
    if _SESSION_TIMEOUT <= 0:
        return None
    return _SESSION_TIMEOUT - (time.monotonic() - _started)


def _item_timeout(item: pytest.Item) -> float:
    marker = item.get_closest_marker("timeout")
    if marker is not None:
        value = marker.kwargs.get("timeout", marker.args[0] if marker.args else None)
        if value:
            return float(value)
    return _TEST_TIMEOUT


def _dump_stacks(item: pytest.Item, when: str, limit: float) -> Path:
    _STACKS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.=-]+", "_", item.nodeid.split("/")[-1])[:150]
    path = _STACKS / f"{name}.{when}.{getattr(item, 'execution_count', 1)}.txt"
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    with path.open("w") as out:
        out.write(f"{item.nodeid} {when}: over {limit:.0f} s\n")
        for ident, frame in sys._current_frames().items():
            out.write(f"\n--- thread {names.get(ident, '?')} ({ident})\n")
            out.write("".join(traceback.format_stack(frame)))
    return path


def _out_of_time(session: pytest.Session) -> None:
    session.shouldstop = f"CELERY_INTEGRATION_TIMEOUT ({_SESSION_TIMEOUT:.0f} s) is up"
    if hasattr(session.config.option, "max_suite_reruns"):
        session.config.option.max_suite_reruns = 0   # pytest-rerunfailures: no more reruns


def _timed(item: pytest.Item, when: str):
    now = time.monotonic()
    deadline = getattr(item, "_celery_integration_deadline", None)
    if deadline is None:
        deadline = item._celery_integration_deadline = now + _item_timeout(item)
    limit = deadline - now if deadline - now >= 1 else max(_TEST_TIMEOUT, _item_timeout(item))
    remaining = _remaining()
    if remaining is not None:
        if remaining <= 0:
            _out_of_time(item.session)
        limit = min(limit, max(5.0, remaining))

    def fire(signum, frame):  # noqa: ARG001 - signal handler signature
        path = _dump_stacks(item, when, limit)
        signal.setitimer(signal.ITIMER_REAL, _REFIRE)
        if _remaining() is not None and _remaining() <= 0:
            _out_of_time(item.session)
        pytest.fail(f"Timeout: {when} stopped after {limit:.0f} s (the test's limit: {_item_timeout(item):.0f} s from"
                    f" its first attempt, then {_TEST_TIMEOUT:.0f} s a phase; thread stacks: {path})", pytrace=False)

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        return (yield)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        remaining = _remaining()
        if remaining is not None and remaining <= 0:
            _out_of_time(item.session)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item):
    return (yield from _timed(item, "setup"))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_call(item):
    return (yield from _timed(item, "call"))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_teardown(item):
    return (yield from _timed(item, "teardown"))


def pytest_report_header(config):
    session = f"{_SESSION_TIMEOUT:.0f} s" if _SESSION_TIMEOUT > 0 else "none"
    return f"celery-integration budget: {_TEST_TIMEOUT:.0f} s a test phase (or its timeout mark), session {session}"
