"""Task locks for Celery on the core's lock and semaphore: :class:`Once` (one queued run per set of
arguments, celery-once's options) and :class:`Limited` (at most N concurrent runs across all workers).

Both find their client with :func:`~redimo_celery.connection.app_client`, so every app and process
pointing at the same table and namespace shares the locks. Costs, per operation:

- ``Once.apply_async``: 1 conditional UpdateItem (the lock's acquire, which also returns the fencing
  token); a duplicate adds 1 GetItem (PTTL, or GET with ``graceful``). After the run (or just before
  it, with ``unlock_before_run``): 1 conditional UpdateItem (the release).
- ``Limited`` run: 1 UpdateItem to take a slot and 1 to give it back. Over the limit: 1 refused
  UpdateItem (plus 2 when expired leases are purged first) and the retry message.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from celery import Task
from celery.utils.log import get_task_logger
from kombu.utils.uuid import uuid
from redis.exceptions import LockNotOwnedError

from redimo import Redimo

from .connection import ConfigurationError, Location, app_client, shared_holder

ONCE_SETTING = "redimo_once"
LIMIT_SETTING = "redimo_limit"
HEADER_KEY = "redimo_once_key"
HEADER_FENCE = "redimo_once_fencing_token"
HEADER_EARLY = "redimo_once_unlock_before_run"

logger = get_task_logger(__name__)


class AlreadyQueued(Exception):
    """A run of the task with the same lock key is queued or running; ``countdown`` is the number of
    seconds until its lock expires."""

    def __init__(self, countdown: float) -> None:
        self.message = f"Expires in {countdown:g} seconds"
        self.countdown = countdown
        super().__init__(self.message)


def _number(value: Any, name: str, minimum: float, strict: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum or (strict and value == minimum):
        raise ConfigurationError(f"{name} must be a number {'>' if strict else '>='} {minimum:g}, not {value!r}")
    return value


def _known(layers: tuple[Mapping[str, Any] | None, ...], allowed: frozenset[str], what: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for layer in layers:
        if layer is None:
            continue
        if not isinstance(layer, Mapping):
            raise ConfigurationError(f"{what} must be a dict, not {layer!r}")
        unknown = set(layer) - allowed
        if unknown:
            raise ConfigurationError(f"unknown {what} option(s) {sorted(unknown)}; known: {sorted(allowed)}")
        merged.update(layer)
    return merged


@dataclass(frozen=True)
class OnceOptions:
    """``keys``: the arguments that decide duplicates (None: all); ``timeout``: the lock's lease in
    seconds; ``graceful``: return the queued run's result instead of raising; ``unlock_before_run``."""

    keys: tuple[str, ...] | None = None
    timeout: float = 3600
    graceful: bool = False
    unlock_before_run: bool = False

    @classmethod
    def merge(cls, *layers: Mapping[str, Any] | None) -> "OnceOptions":
        """Later layers win: ``app.conf.redimo_once``, the task's ``once``, the call's ``once``."""
        merged = _known(layers, frozenset(cls.__dataclass_fields__), "once")
        keys = merged.get("keys")
        if keys is not None:
            if isinstance(keys, (str, bytes)) or not all(isinstance(key, str) for key in keys):
                raise ConfigurationError(f"once keys must be a list of argument names, not {keys!r}")
            merged["keys"] = tuple(keys)
        _number(merged.get("timeout", cls.timeout), "once timeout", 0, strict=True)
        for flag in ("graceful", "unlock_before_run"):
            if not isinstance(merged.get(flag, False), bool):
                raise ConfigurationError(f"once {flag} must be True or False, not {merged[flag]!r}")
        return cls(**merged)


@dataclass(frozen=True)
class LimitOptions:
    """``max`` concurrent runs of the tasks sharing ``key``; ``lease``: seconds after which a killed
    worker's slot comes back; ``countdown``: seconds before an over-the-limit run is tried again."""

    key: str
    max: int
    lease: float = 3600
    countdown: float = 1

    @classmethod
    def merge(cls, default_key: str, *layers: Mapping[str, Any] | None) -> "LimitOptions":
        """Later layers win: ``app.conf.redimo_limit``, then the task's ``limit``."""
        merged = {"key": default_key, **_known(layers, frozenset(cls.__dataclass_fields__), "limit")}
        if "max" not in merged:
            raise ConfigurationError("a Limited task needs limit={'max': N}")
        if isinstance(merged["max"], bool) or not isinstance(merged["max"], int) or merged["max"] < 1:
            raise ConfigurationError(f"limit max must be an integer >= 1, not {merged['max']!r}")
        if not isinstance(merged["key"], str) or not merged["key"]:
            raise ConfigurationError(f"limit key must be a non-empty string, not {merged['key']!r}")
        _number(merged.get("lease", cls.lease), "limit lease", 0, strict=True)
        _number(merged.get("countdown", cls.countdown), "limit countdown", 0, strict=False)
        return cls(**merged)


def _header(request: Any, name: str) -> Any:
    """A message header: a worker's request has it as an attribute, an eager one in ``headers``."""
    headers = getattr(request, "headers", None) or {}
    return headers.get(name, getattr(request, name, None))


def _check_keys(run: Callable[..., Any], keys: tuple[str, ...] | None, task: str) -> None:
    parameters = inspect.signature(run).parameters
    if keys is None or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    missing = [key for key in keys if key not in parameters]
    if missing:
        raise ConfigurationError(f"once keys {missing} are not arguments of {task}")


class Once(Task):
    """A task queued at most once per lock key (the task's name and its ``keys`` arguments) until
    that run has finished or the lock's ``timeout`` has passed; see docs/celery-locks.md."""

    once: Mapping[str, Any] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "once" in cls.__dict__:  # a task's own options: wrong ones fail where the task is made
            _check_keys(cls.run, OnceOptions.merge(cls.once).keys, cls.__dict__.get("name") or cls.__name__)

    def once_options(self, override: Mapping[str, Any] | None = None) -> OnceOptions:
        return OnceOptions.merge(self.app.conf.get(ONCE_SETTING), self.once, override)

    def once_key(self, args: Any = None, kwargs: Any = None, keys: tuple[str, ...] | None = None) -> str:
        """``once:TASK:{"name": value, ...}``: positional arguments are named by the task's signature,
        defaults filled in, and only ``keys`` kept (all arguments when None)."""
        bound = inspect.signature(self.run).bind(*(args or ()), **(kwargs or {}))
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        for parameter in bound.signature.parameters.values():
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                arguments.update(arguments.pop(parameter.name))
        if keys is not None:
            missing = [key for key in keys if key not in arguments]
            if missing:
                raise ConfigurationError(f"once keys {missing} are not among the arguments of {self.name}")
            arguments = {key: arguments[key] for key in keys}
        return f"once:{self.name}:{json.dumps(arguments, sort_keys=True, default=repr, separators=(',', ':'))}"

    @property
    def once_fencing_token(self) -> int | None:
        """Inside a run: the fencing token of the lock its queuing took (strictly greater than every
        earlier grant of the same key); None when the run was not queued through ``apply_async``."""
        return _header(self.request, HEADER_FENCE)

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        """Queue the task unless its lock is held: raises :class:`AlreadyQueued`, or with ``graceful``
        returns the AsyncResult of the run that holds it. ``once={...}`` overrides options per call."""
        settings = self.once_options(options.pop("once", None))
        if options.get("retries"):  # a retry keeps the lock its first queuing took
            return super().apply_async(args, kwargs, **options)
        key = self.once_key(args, kwargs, settings.keys)
        task_id = options["task_id"] = options.get("task_id") or uuid()
        client = app_client(self.app)
        while True:
            lock = client.lock(key, timeout=settings.timeout, thread_local=False)
            if lock.acquire(blocking=False, token=task_id):
                break
            if settings.graceful:
                holder = client.get(key)
                if holder is not None:
                    return self.AsyncResult(holder.decode())
            else:
                remaining = client.pttl(key)  # -1: no expiry (the key was not set by Once)
                if remaining != -2:
                    raise AlreadyQueued(remaining / 1000 if remaining >= 0 else float("inf"))
            # released in between: try again
        options["headers"] = {**(options.get("headers") or {}), HEADER_KEY: key,
                              HEADER_FENCE: lock.fencing_token, HEADER_EARLY: settings.unlock_before_run}
        try:
            return super().apply_async(args, kwargs, **options)
        except BaseException:
            self._unlock(key, task_id)  # not queued (or, eager, already released: a no-op)
            raise

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if _header(self.request, HEADER_EARLY) and not self.request.retries:
            self._unlock(_header(self.request, HEADER_KEY), self.request.id)
        return super().__call__(*args, **kwargs)

    def after_return(self, status: str, retval: Any, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        key = _header(self.request, HEADER_KEY)
        if key is not None and not _header(self.request, HEADER_EARLY):
            if not self._unlock(key, task_id):
                logger.warning("%s[%s]: its once lock expired before the run ended; raise once's timeout",
                               self.name, task_id)
        super().after_return(status, retval, task_id, args, kwargs, einfo)

    def _unlock(self, key: str, task_id: str) -> bool:
        """Release the lock if ``task_id`` still holds it: 1 conditional UpdateItem."""
        lock = app_client(self.app).lock(key, thread_local=False)
        lock.local.token = task_id.encode()
        try:
            lock.release()
        except LockNotOwnedError:
            return False
        return True


class Limited(Task):
    """A task of which at most ``limit['max']`` runs go on at once across all workers; a run over the
    limit is retried after ``limit['countdown']`` seconds (counting toward the task's max_retries)."""

    limit: Mapping[str, Any] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "limit" in cls.__dict__:
            LimitOptions.merge("task", cls.limit)

    def limit_options(self) -> LimitOptions:
        return LimitOptions.merge(self.name, self.app.conf.get(LIMIT_SETTING), self.limit)

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        self.limit_options()  # wrong options fail at the caller, before anything is queued
        return super().apply_async(args, kwargs, **options)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        settings = self.limit_options()
        slot = app_client(self.app).semaphore(f"limit:{settings.key}", settings.max, settings.lease,
                                              blocking=False)
        if not slot.acquire():
            raise self.retry(countdown=settings.countdown)
        try:
            return super().__call__(*args, **kwargs)
        finally:
            try:
                slot.release()
            except LockNotOwnedError:
                logger.warning("%s: the run outlasted its limit lease of %g s", self.name, settings.lease)


def location_client(location: Location) -> Redimo:
    """The per-process client of a location (rebuilt after a fork), shared with :func:`app_client`."""
    return shared_holder(location).get()
