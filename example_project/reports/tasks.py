"""The report jobs: a report is a chord of one part per week (at most two parts at once across all
workers) and a callback that sums them; the ``report`` task represents the whole job, so a second
one with the same region and weeks is refused while it runs. And the beat's heartbeat."""

from __future__ import annotations

import os
import random
import socket
import time
from typing import Any

from celery import Task, chord
from celery.result import AsyncResult

from redimo_celery.locks import Limited, Once
from redimo_site import config
from redimo_site.celery import app
from redimo_site.data import data

REGIONS = ["Europe", "Americas", "Asia-Pacific", "Africa", "Middle East"]
FEED_LENGTH = 200
PARTS_AT_ONCE = 2


def part_id(job_id: str, index: int) -> str:
    return f"{job_id}-week{index + 1}"


def total_id(job_id: str) -> str:
    return f"{job_id}-total"


def feed(text: str, kind: str) -> None:
    """Add an entry to the activity feed (a stream, trimmed to its last FEED_LENGTH entries)."""
    data().xadd("feed", {"text": text, "kind": kind, "at": f"{time.time():.3f}"}, maxlen=FEED_LENGTH,
                approximate=False)


@app.task(bind=True, base=Once, once={"keys": ["region", "weeks"], "timeout": 600}, max_retries=1200)
def report(self: Task, region: str, weeks: int) -> dict[str, Any]:
    """Starts the chord, then checks on it every half second (a retry keeps the Once lock), and
    returns its total: the lock is released when this task ends."""
    if not self.request.retries:
        parts = [week.s(region, weeks, index).set(task_id=part_id(self.request.id, index)) for index in range(weeks)]
        chord(parts)(total.s(region, weeks).set(task_id=total_id(self.request.id)))
    result = AsyncResult(total_id(self.request.id), app=app)
    if result.successful():
        return result.result
    if result.failed():
        raise RuntimeError(f"the report's total failed: {result.result!r}")
    raise self.retry(countdown=0.5)


@app.task(bind=True, base=Limited, limit={"key": "report-parts", "max": PARTS_AT_ONCE}, max_retries=None)
def week(self: Task, region: str, weeks: int, index: int) -> dict[str, Any]:
    """One week of a region's (made-up, reproducible) sales; runs PART_SECONDS, in the state RUNNING
    (it holds one of the PARTS_AT_ONCE slots: a run that found none is retried, in the state RETRY)."""
    started = time.time()
    self.update_state(state="RUNNING")
    numbers = random.Random(f"{region}/{index}")
    orders = numbers.randint(120, 480)
    revenue = round(orders * numbers.uniform(35, 90), 2)
    time.sleep(config.PART_SECONDS)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    feed(f"Week {index + 1} of {weeks} for {region}: {orders} orders, ${revenue:,.0f}", "part")
    return {"week": index + 1, "orders": orders, "revenue": revenue, "worker": worker,
            "started": started, "finished": time.time()}


@app.task
def total(parts: list[dict[str, Any]], region: str, weeks: int) -> dict[str, Any]:
    """The chord's callback: the report, on the leaderboard and in the feed (one MULTI/EXEC)."""
    revenue = round(sum(p["revenue"] for p in parts), 2)
    best = max(parts, key=lambda p: p["revenue"])
    summary = {"region": region, "weeks": weeks, "orders": sum(p["orders"] for p in parts), "revenue": revenue,
               "best_week": best["week"]}
    with data().pipeline() as pipe:
        pipe.zadd("leaderboard", {region: revenue})
        pipe.xadd("feed", {"text": f"Report done: {region}, {weeks} weeks, ${revenue:,.0f} (best: week {best['week']})",
                           "kind": "report", "at": f"{time.time():.3f}"}, maxlen=FEED_LENGTH, approximate=False)
        pipe.execute()
    return summary


@app.task
def heartbeat() -> float:
    """Run by celery beat every HEARTBEAT_SECONDS: records when (1 MULTI/EXEC)."""
    now = time.time()
    with data().pipeline() as pipe:
        pipe.set("heartbeat:at", now)
        pipe.incr("heartbeat:runs")
        pipe.execute()
    return now
