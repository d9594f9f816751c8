"""``celery beat -S redimo_celery.beat:RedimoScheduler``: RedBeat's design on Redimo (docs/celery.md).

* Each entry is a hash ``<prefix>:<name>`` with its ``definition`` and its ``meta`` (last run time
  and run count, so they survive restarts), both JSON.
* The sorted set ``<prefix>::schedule`` holds each entry's next due time.
* A lock ``<prefix>::lock`` with a lease lets one beat run; a standby beat takes over within
  ``redimo_beat_lock_timeout`` seconds of the active one dying. Each run is recorded under WATCH
  of the lock, in one MULTI/EXEC, before the task is sent: a beat that lost its lock records
  nothing and sends nothing, so a due run is never sent twice.

Entries can be added, changed and removed at runtime from any process::

    RedimoEntry("report", "tasks.report", schedule(60), args=[1], app=app).save()
    RedimoEntry.load("report", app=app).delete()
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from celery.beat import ScheduleEntry, Scheduler
from celery.schedules import crontab, schedule, solar
from celery.utils.log import get_logger
from redis.exceptions import LockError, WatchError

from redimo import Redimo
from redimo.lock import Lock

from .connection import app_client

logger = get_logger(__name__)
DEFAULT_PREFIX = "redimo-beat"
STATIC = "::statics"  # the names of the entries that came from beat_schedule


def _prefix(app: Any) -> str:
    return app.conf.get("redimo_beat_key_prefix") or DEFAULT_PREFIX


def encode_schedule(value: Any) -> dict:
    """A schedule as JSON: interval, crontab or solar (as RedBeat stores them)."""
    if isinstance(value, crontab):
        return {"__type__": "crontab", "minute": value._orig_minute, "hour": value._orig_hour,
                "day_of_week": value._orig_day_of_week, "day_of_month": value._orig_day_of_month,
                "month_of_year": value._orig_month_of_year}
    if isinstance(value, solar):
        return {"__type__": "solar", "event": value.event, "lat": value.lat, "lon": value.lon}
    if isinstance(value, schedule):
        return {"__type__": "interval", "every": value.run_every.total_seconds(), "relative": value.relative}
    raise TypeError(f"cannot store a schedule of type {type(value).__name__}")


def decode_schedule(data: dict, app: Any) -> Any:
    kind = data["__type__"]
    if kind == "crontab":
        return crontab(**{k: v for k, v in data.items() if k != "__type__"}, app=app)
    if kind == "solar":
        return solar(data["event"], data["lat"], data["lon"], app=app)
    return schedule(timedelta(seconds=data["every"]), relative=data.get("relative", False), app=app)


def _timestamp(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


class RedimoEntry(ScheduleEntry):
    """A schedule entry kept in the table. ``save()`` and ``delete()`` take effect in every beat."""

    def __init__(self, name: str | None = None, task: str | None = None, schedule: Any = None,
                 args: Any = (), kwargs: dict | None = None, options: dict | None = None, enabled: bool = True,
                 app: Any = None, last_run_at: datetime | None = None, total_run_count: int | None = None,
                 relative: bool = False) -> None:
        super().__init__(name=name, task=task, last_run_at=last_run_at, total_run_count=total_run_count,
                         schedule=schedule, args=args, kwargs=kwargs, options=options, relative=relative, app=app)
        self.enabled = enabled
        if not name or not task or schedule is None:
            raise ValueError("a beat entry needs a name, a task and a schedule")

    @property
    def client(self) -> Redimo:
        return app_client(self.app)

    @property
    def key(self) -> str:
        return f"{_prefix(self.app)}:{self.name}"

    @staticmethod
    def schedule_key(app: Any) -> str:
        return f"{_prefix(app)}::schedule"

    def _definition(self) -> str:
        return json.dumps({"name": self.name, "task": self.task, "schedule": encode_schedule(self.schedule),
                           "args": list(self.args or ()), "kwargs": self.kwargs, "options": self.options,
                           "enabled": self.enabled})

    def _meta(self) -> str:
        return json.dumps({"last_run_at": _timestamp(self.last_run_at), "total_run_count": self.total_run_count})

    @property
    def due_at(self) -> float:
        """When the entry is next due, as a Unix time."""
        remaining = self.schedule.remaining_estimate(self.last_run_at)
        return _timestamp(self.default_now()) + max(0.0, remaining.total_seconds())

    def save(self) -> "RedimoEntry":
        """Store the definition (keeping any stored run history) and its due time: 1 MULTI/EXEC."""
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(self.key, "definition", self._definition())
            pipe.hsetnx(self.key, "meta", self._meta())
            if self.enabled:
                pipe.zadd(self.schedule_key(self.app), {self.name: self.due_at})
            else:
                pipe.zrem(self.schedule_key(self.app), self.name)
            pipe.execute()
        return self

    def delete(self) -> None:
        """Remove the entry everywhere: 1 MULTI/EXEC."""
        with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(self.key)
            pipe.zrem(self.schedule_key(self.app), self.name)
            pipe.execute()

    @classmethod
    def load(cls, name: str, app: Any) -> "RedimoEntry | None":
        """The stored entry, or None (1 GetItem + a Query)."""
        stored = app_client(app).hgetall(f"{_prefix(app)}:{name}")
        return cls.from_stored(stored, app) if stored else None

    @classmethod
    def from_stored(cls, stored: dict, app: Any) -> "RedimoEntry | None":
        if b"definition" not in stored:
            return None
        definition = json.loads(stored[b"definition"])
        meta = json.loads(stored.get(b"meta", b"{}"))
        last = meta.get("last_run_at")
        return cls(definition["name"], definition["task"], decode_schedule(definition["schedule"], app),
                   definition.get("args") or (), definition.get("kwargs"), definition.get("options"),
                   definition.get("enabled", True), app,
                   datetime.fromtimestamp(last, timezone.utc) if last is not None else None,
                   meta.get("total_run_count", 0))

    def _next_instance(self, last_run_at: datetime | None = None) -> "RedimoEntry":
        entry = super()._next_instance(last_run_at)
        entry.enabled = self.enabled
        return entry

    __next__ = next = _next_instance

    def __reduce__(self) -> Any:
        return self.__class__, (self.name, self.task, self.schedule, self.args, self.kwargs, self.options,
                                self.enabled, None, self.last_run_at, self.total_run_count)


class RedimoScheduler(Scheduler):
    """A beat scheduler whose schedule lives in the table, run by one beat at a time.

    Settings: ``redimo_beat_lock_timeout`` (seconds, default 5 x ``beat_max_loop_interval``),
    ``redimo_beat_key_prefix`` (default ``redimo-beat``). The URL is the app's ``redimo://``
    result backend, else its broker.
    """

    Entry = RedimoEntry

    def __init__(self, app: Any, lock_timeout: float | None = None, **kwargs: Any) -> None:
        self.lock: Lock | None = None
        self._schedule: dict[str, RedimoEntry] = {}
        super().__init__(app, **kwargs)
        self.lock_timeout = float(lock_timeout or app.conf.get("redimo_beat_lock_timeout")
                                  or self.max_interval * 5)

    @property
    def client(self) -> Redimo:
        return app_client(self.app)

    @property
    def lock_key(self) -> str:
        return f"{_prefix(self.app)}::lock"

    @property
    def schedule_key(self) -> str:
        return RedimoEntry.schedule_key(self.app)

    def setup_schedule(self) -> None:
        """Sync ``beat_schedule`` into the table: its entries are saved (their run history kept), and
        entries that an earlier config had and this one has not are removed."""
        configured = {name: self.Entry(**dict(definition, name=name, app=self.app))
                      for name, definition in (self.app.conf.beat_schedule or {}).items()}
        statics = f"{_prefix(self.app)}{STATIC}"
        for name in {n.decode() for n in self.client.smembers(statics)} - set(configured):
            stale = RedimoEntry.load(name, self.app)
            if stale:
                stale.delete()
            self.client.srem(statics, name)
        for entry in configured.values():
            entry.save()
        if configured:
            self.client.sadd(statics, *configured)

    @property
    def schedule(self) -> dict[str, RedimoEntry]:  # type: ignore[override]
        """Every stored entry that is scheduled (1 GetItem + a Query, then the entries)."""
        names = [name.decode() for name in self.client.zrange(self.schedule_key, 0, -1)]
        entries = {name: RedimoEntry.load(name, self.app) for name in names}
        self._schedule = {name: entry for name, entry in entries.items() if entry}
        return self._schedule

    def _hold_lock(self) -> bool:
        """Take the lock, or renew it while held: 1 conditional UpdateItem."""
        if self.lock is None:
            self.lock = self.client.lock(self.lock_key, timeout=self.lock_timeout, thread_local=False)
        if self.lock.local.token is not None:
            try:
                return self.lock.reacquire()
            except LockError:
                logger.warning("beat: lost the lock %s; standing by", self.lock_key)
                self.lock.local.token = None
        if self.lock.acquire(blocking=False):
            logger.info("beat: took the lock %s (fencing token %s)", self.lock_key, self.lock.fencing_token)
            return True
        return False

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """Run what is due; the seconds to sleep. A standby beat tries for the lock every third of
        its timeout."""
        if not self._hold_lock():
            return min(self.max_interval, self.lock_timeout / 3)
        now = time.time()
        for name in self.client.zrangebyscore(self.schedule_key, "-inf", now):
            entry = RedimoEntry.load(name.decode(), self.app)
            if entry is None or not entry.enabled:
                self.client.zrem(self.schedule_key, name)
                continue
            due, _ = entry.is_due()
            if not due:
                self.client.zadd(self.schedule_key, {entry.name: entry.due_at})
                continue
            if not self._record_run(entry):
                return min(self.max_interval, self.lock_timeout / 3)
        upcoming = self.client.zrange(self.schedule_key, 0, 0, withscores=True)
        wait = upcoming[0][1] - time.time() if upcoming else self.max_interval
        return max(0.0, min(wait, self.max_interval, self.lock_timeout / 3))

    def _record_run(self, entry: RedimoEntry) -> bool:
        """Record the run and its next due time under WATCH of the lock, then send the task.
        False when the lock was lost (nothing recorded, nothing sent)."""
        ran = entry._next_instance()
        with self.client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(self.lock_key)
                if self.lock is None or pipe.get(self.lock_key) != self.lock.local.token:
                    return False
                pipe.multi()
                pipe.hset(entry.key, "meta", ran._meta())
                pipe.zadd(self.schedule_key, {entry.name: ran.due_at})
                pipe.execute()
            except WatchError:
                logger.warning("beat: the lock %s changed; %s not sent", self.lock_key, entry.name)
                return False
        try:
            result = self.apply_async(entry, producer=self.producer, advance=False)
        except Exception as error:  # as celery's beat: log and go on with the next entry
            logger.error("beat: sending %s failed: %r", entry.name, error, exc_info=True)
        else:
            logger.info("beat: sent %s (%s)", entry.name, result.id)
        return True

    def close(self) -> None:
        super().close()
        if self.lock is not None and self.lock.local.token is not None:
            try:
                self.lock.release()
            except LockError:
                pass

    @property
    def info(self) -> str:
        return f"    . redimo -> {self.client!r} lock {self.lock_key} ({self.lock_timeout:g} s)"
