"""Distributed locks with fencing tokens, and counting semaphores, on conditional writes.

redis-py's ``Lock`` runs Lua scripts, which the engine does not execute, so ``Redimo.lock`` returns
:class:`Lock`: the same API (acquire, release, extend, reacquire, owned, locked, context manager,
``LockError``/``LockNotOwnedError``), each operation one DynamoDB request.

A lock is the string key ``name`` holding the owner's token, with the lease as its expiry. Its head
item also keeps ``f``, the fencing counter, which every acquire increments in the same UpdateItem.
A release or an expired lease never deletes the item (it only hides it), and lock items carry no
TTL attribute, so the counter survives and every grant's token is strictly greater than all earlier
ones. The guarantee holds while the key is used only through this API (a plain SET or DEL of the
key would reset the counter).
"""

from __future__ import annotations

import threading
import time
import uuid
from types import SimpleNamespace, TracebackType
from typing import TYPE_CHECKING, Any, Callable

from redis.exceptions import LockError, LockNotOwnedError

from .collection import new_version
from .gateway import ConditionFailed
from .maps import MapItem
from .storage import LIVE, Database

if TYPE_CHECKING:
    from .client import Redimo

RELEASED = {":released": {"N": "1"}}  # an expiry long past: the lock reads as absent


class Lock:
    """A lease-based lock with a fencing token, compatible with redis-py's ``Lock``.

    ``timeout`` is the lease in seconds (None: held until released). With ``auto_renewal`` a
    heartbeat thread extends the lease every ``timeout / 3`` while the holder lives; if a renewal
    fails, ``renewal_failed`` becomes True and ``on_renewal_failure(lock, error)`` is called.
    """

    def __init__(self, redis: "Redimo", name: str | bytes, timeout: float | None = None, sleep: float = 0.1,
                 blocking: bool = True, blocking_timeout: float | None = None, thread_local: bool = True,
                 auto_renewal: bool = False,
                 on_renewal_failure: Callable[["Lock", Exception], Any] | None = None) -> None:
        if auto_renewal and timeout is None:
            raise LockError("auto_renewal needs a timeout")
        self.redis = redis
        self.db: Database = redis.engine.db
        self.name = name
        self.key = name.encode() if isinstance(name, str) else bytes(name)
        self.timeout = timeout
        self.sleep = sleep
        self.blocking = blocking
        self.blocking_timeout = blocking_timeout
        self.auto_renewal = auto_renewal
        self.on_renewal_failure = on_renewal_failure
        self.local: Any = threading.local() if thread_local else SimpleNamespace()
        self.local.token = None
        self.local.fencing_token = None
        self.renewal_failed = False
        self._heartbeat: threading.Thread | None = None
        self._stop_heartbeat = threading.Event()

    @property
    def fencing_token(self) -> int | None:
        """The fencing token of this holder's current grant (None when not held)."""
        return getattr(self.local, "fencing_token", None)

    def __enter__(self) -> "Lock":
        if self.acquire():
            return self
        raise LockError("Unable to acquire lock within the time specified", lock_name=self.name)

    def __exit__(self, kind: type | None, value: BaseException | None, traceback: TracebackType | None) -> None:
        self.release()

    def _lease_end(self, seconds: float) -> int:
        return self.db.clock() + int(seconds * 1000)

    def acquire(self, sleep: float | None = None, blocking: bool | None = None,
                blocking_timeout: float | None = None, token: str | bytes | None = None) -> bool:
        """Take the lock: one conditional UpdateItem an attempt, retried every ``sleep`` seconds
        while ``blocking``, for at most ``blocking_timeout`` seconds."""
        sleep = self.sleep if sleep is None else sleep
        blocking = self.blocking if blocking is None else blocking
        blocking_timeout = self.blocking_timeout if blocking_timeout is None else blocking_timeout
        token_bytes = (token.encode() if isinstance(token, str) else token) if token else uuid.uuid1().hex.encode()
        deadline = None if blocking_timeout is None else time.monotonic() + blocking_timeout
        while True:
            fence = self._try_acquire(token_bytes)
            if fence is not None:
                self.local.token = token_bytes
                self.local.fencing_token = fence
                self.renewal_failed = False
                if self.auto_renewal:
                    self._start_heartbeat()
                return True
            if not blocking or (deadline is not None and time.monotonic() + sleep > deadline):
                return False
            time.sleep(sleep)

    def _try_acquire(self, token: bytes) -> int | None:
        values = {":token": {"B": token}, ":string": {"S": "string"}, ":zero": {"N": "0"}, ":one": {"N": "1"},
                  ":w": new_version(), **self.db.now()}
        if self.timeout is None:
            expression = "SET v = :token, t = :string, f = if_not_exists(f, :zero) + :one, w = :w REMOVE x, tx, n"
        else:
            expression = ("SET v = :token, t = :string, f = if_not_exists(f, :zero) + :one, w = :w, x = :x "
                          "REMOVE tx, n")
            values[":x"] = {"N": str(self._lease_end(self.timeout))}
        try:
            item = self.db.gateway.update(self.db.head_key(self.key), expression, values,
                                          condition="attribute_not_exists(t) OR x <= :now", returns="UPDATED_NEW")
        except ConditionFailed:
            return None
        return int(item["f"]["N"])

    def locked(self) -> bool:
        """Whether anyone holds the lock. Cost: 1 GetItem."""
        return self.db.load(self.key, "t, x") is not None

    def owned(self) -> bool:
        """Whether this holder's token holds the lock. Cost: 1 GetItem."""
        token = self.local.token
        if token is None:
            return False
        record = self.db.load(self.key, "t, x, v")
        return record is not None and record.item.get("v", {}).get("B") == token

    def release(self) -> None:
        """Release: one UpdateItem, conditional on the token, that hides the lock but keeps the
        fencing counter. Raises LockError if not acquired, LockNotOwnedError if lost meanwhile."""
        token = self.local.token
        if token is None:
            raise LockError("Cannot release an unlocked lock", lock_name=self.name)
        self.local.token = None
        self._stop()
        try:
            self.db.gateway.update(self.db.head_key(self.key), "SET x = :released, w = :w REMOVE v",
                                   {":token": {"B": token}, ":w": new_version(), **RELEASED, **self.db.now()},
                                   condition=f"v = :token AND {LIVE}")
        except ConditionFailed:
            raise LockNotOwnedError("Cannot release a lock that's no longer owned", lock_name=self.name) from None

    def extend(self, additional_time: float, replace_ttl: bool = False) -> bool:
        """Add ``additional_time`` seconds to the lease (or make it the whole remaining lease with
        ``replace_ttl``): one conditional UpdateItem."""
        if self.local.token is None:
            raise LockError("Cannot extend an unlocked lock", lock_name=self.name)
        if self.timeout is None:
            raise LockError("Cannot extend a lock with no timeout", lock_name=self.name)
        if replace_ttl:
            return self._renew(self._lease_end(additional_time), "Cannot extend a lock that's no longer owned")
        values = {":token": {"B": self.local.token}, ":add": {"N": str(int(additional_time * 1000))},
                  ":w": new_version(), **self.db.now()}
        try:
            self.db.gateway.update(self.db.head_key(self.key), "SET x = x + :add, w = :w", values,
                                   condition="v = :token AND x > :now")
        except ConditionFailed:
            raise LockNotOwnedError("Cannot extend a lock that's no longer owned", lock_name=self.name) from None
        return True

    def reacquire(self) -> bool:
        """Reset the lease to ``timeout`` seconds from now: one conditional UpdateItem."""
        if self.local.token is None:
            raise LockError("Cannot reacquire an unlocked lock", lock_name=self.name)
        if self.timeout is None:
            raise LockError("Cannot reacquire a lock with no timeout", lock_name=self.name)
        return self._renew(self._lease_end(self.timeout), "Cannot reacquire a lock that's no longer owned")

    def _renew(self, lease_end: int, message: str, token: bytes | None = None) -> bool:
        values = {":token": {"B": token or self.local.token}, ":x": {"N": str(lease_end)}, ":w": new_version(),
                  **self.db.now()}
        try:
            self.db.gateway.update(self.db.head_key(self.key), "SET x = :x, w = :w", values,
                                   condition="v = :token AND x > :now")
        except ConditionFailed:
            raise LockNotOwnedError(message, lock_name=self.name) from None
        return True

    # -- auto-renewal -----------------------------------------------------------------------
    def _start_heartbeat(self) -> None:
        self._stop_heartbeat = threading.Event()
        token, stop = self.local.token, self._stop_heartbeat
        self._heartbeat = threading.Thread(target=self._renew_until_stopped, args=(token, stop),
                                           name=f"redimo-lock-{self.name!r}", daemon=True)
        self._heartbeat.start()

    def _renew_until_stopped(self, token: bytes, stop: threading.Event) -> None:
        assert self.timeout is not None
        while not stop.wait(self.timeout / 3):
            try:
                self._renew(self._lease_end(self.timeout), "lease lost", token)
            except Exception as error:  # the holder must hear of any failure, whatever it was
                if stop.is_set():
                    return
                self.renewal_failed = True
                if self.on_renewal_failure:
                    self.on_renewal_failure(self, error)
                return

    def _stop(self) -> None:
        self._stop_heartbeat.set()
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None and heartbeat is not threading.current_thread():
            heartbeat.join()


class Semaphore:
    """A counting semaphore: at most ``limit`` holders at once; a crashed holder's slot frees itself
    after ``timeout`` seconds.

    The holders are a :class:`~redimo.maps.MapItem` beside the key ``name``, from token to lease end.
    Acquiring is one conditional UpdateItem (``size(m) < limit``) when a slot is free; when the map
    is full of leases some of which ran out, one more UpdateItem removes those (conditional on each
    being unchanged) before trying again. Releasing is one UpdateItem.
    """

    def __init__(self, redis: "Redimo", name: str | bytes, limit: int, timeout: float, sleep: float = 0.1,
                 blocking: bool = True, blocking_timeout: float | None = None) -> None:
        if limit < 1:
            raise ValueError("a semaphore's limit must be at least 1")
        if timeout <= 0:
            raise ValueError("a semaphore's timeout must be positive")
        self.db: Database = redis.engine.db
        self.name = name
        self.holders = MapItem(self.db, name.encode() if isinstance(name, str) else bytes(name))
        self.limit, self.timeout, self.sleep = limit, timeout, sleep
        self.blocking, self.blocking_timeout = blocking, blocking_timeout
        self.token: str | None = None

    def acquire(self, blocking: bool | None = None, blocking_timeout: float | None = None) -> bool:
        blocking = self.blocking if blocking is None else blocking
        blocking_timeout = self.blocking_timeout if blocking_timeout is None else blocking_timeout
        deadline = None if blocking_timeout is None else time.monotonic() + blocking_timeout
        token = uuid.uuid4().hex
        while True:
            if self._try_acquire(token):
                self.token = token
                return True
            if not blocking or (deadline is not None and time.monotonic() + self.sleep > deadline):
                return False
            time.sleep(self.sleep)

    def _try_acquire(self, token: str) -> bool:
        while True:
            full = self.holders.put(token, self.db.clock() + int(self.timeout * 1000), self.limit)
            if full is None:
                return True
            now = self.db.clock()
            expired = {holder: lease for holder, lease in full.items() if lease <= now}
            if not expired:
                return False
            self.holders.remove(*expired, only_if=expired)  # if someone else cleaned up, just try again

    def release(self) -> None:
        """Give the slot back: one UpdateItem conditional on still holding it."""
        if self.token is None:
            raise LockError("Cannot release an unacquired semaphore")
        token, self.token = self.token, None
        if not self.holders.remove(token):
            raise LockNotOwnedError("Cannot release a semaphore slot that's no longer owned")

    def __enter__(self) -> "Semaphore":
        if self.acquire():
            return self
        raise LockError("Unable to acquire semaphore within the time specified")

    def __exit__(self, *exc_info: object) -> None:
        self.release()
