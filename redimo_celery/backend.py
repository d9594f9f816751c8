"""``redimo://TABLE``: Celery's result backend on DynamoDB, through Redimo (docs/celery.md).

A thin ``KeyValueStoreBackend`` over :class:`redimo.Redimo`, modelled on Celery's redis backend:
results are strings (``celery-task-meta-<id>``), read strongly consistently, chunked past 350 KB
and expiring exactly. What differs is below, each as cheap as DynamoDB allows:

* a ready state (SUCCESS, FAILURE, REVOKED) is final: a late STARTED or RETRY is refused by the
  write's own condition (:meth:`redimo.Redimo.set_state`), in the same single request;
* chords are native: each header part records its result once (keyed by its index and task id)
  without a transaction, and exactly one worker claims the callback;
* joins are native: a group's ready results are counted, so a waiter reads one counter per poll
  cycle, and the pending results only when it moved.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Any, Iterator

from celery import states
from celery.backends.base import KeyValueStoreBackend, _create_chord_error_with_cause
from celery.exceptions import BackendStoreError, ChordError, ImproperlyConfigured, TimeoutError
from celery.result import GroupResult, ResultSet, allow_join_result
from celery.canvas import maybe_signature
from celery.utils.functional import _regen
from celery.utils.log import get_logger
from kombu.utils.encoding import bytes_to_str
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from redimo import Redimo
from redimo.storage import MAX_VALUE

from .connection import ConfigurationError, parse_url, shared_holder

logger = get_logger(__name__)

#: DynamoDB errors that botocore gave up retrying but that are safe to try again later.
TRANSIENT_CODES = ("ProvisionedThroughputExceeded", "ThrottlingException", "RequestLimitExceeded",
                   "InternalServerError", "ServiceUnavailable", "TransactionConflict")
DONE = b"done"
PLACEHOLDER = b"-"  # the field that makes a chord's record of parts exist before its first part


class RedimoBackend(KeyValueStoreBackend):
    """The ``redimo://TABLE?namespace=...&endpoint_url=...&region=...`` result backend."""

    supports_autoexpire = True
    supports_native_join = True
    supports_result_compression = True
    supports_failure_expires = True
    implements_incr = False

    def __init__(self, url: str | None = None, **kwargs: Any) -> None:
        super().__init__(expires_type=int, url=url, **kwargs)
        conf = self.app.conf
        failure_expires = conf.get("result_failure_expires")
        self.failure_expires = (self.expires if failure_expires is None
                                else self.prepare_expires(failure_expires, type=int))
        self.url = url or conf.result_backend
        if not isinstance(self.url, str):
            raise ImproperlyConfigured("the redimo result backend needs a URL: redimo://TABLE")
        try:
            self.location, _ = parse_url(self.url, conf.get("result_backend_transport_options") or {},
                                         setting_name="result_backend_transport_options")
        except ConfigurationError as error:
            raise ImproperlyConfigured(str(error)) from None
        self._holder = shared_holder(self.location)
        self.connection_errors = (RedisConnectionError, RedisTimeoutError)

    @property
    def client(self) -> Redimo:
        """This process's client (a forked child builds its own: no shared HTTP connections)."""
        return self._holder.get()

    def as_uri(self, include_password: bool = False) -> str:
        return self.url

    def __reduce__(self, args: tuple = (), kwargs: dict | None = None) -> Any:
        return super().__reduce__(args, dict(kwargs or {}, url=self.url))

    def exception_safe_to_retry(self, exc: Exception) -> bool:
        """Connection losses, timeouts and DynamoDB's throttling or 5xx replies that outlasted the
        gateway's own retries: every backend write is idempotent, so trying again is safe."""
        if isinstance(exc, self.connection_errors):
            return True
        return isinstance(exc, ResponseError) and any(code in str(exc) for code in TRANSIENT_CODES)

    # -- the key/value contract --------------------------------------------------------------
    def get(self, key: bytes) -> bytes | None:
        """1 GetItem, strongly consistent."""
        return self.client.get(key)

    def mget(self, keys: list[bytes]) -> list[bytes | None]:
        """ceil(n/100) BatchGetItem."""
        return self.client.mget(keys) if keys else []

    def set(self, key: bytes, value: bytes | str, expires: int | None = None, final: bool = True) -> bool:
        """1 PutItem; ``expires`` in seconds (None: ``result_expires``; 0: never)."""
        if len(value) > MAX_VALUE:
            raise BackendStoreError(f"value too large for the redimo backend ({MAX_VALUE} bytes at most)")
        expires = self.expires if expires is None else expires
        return self.client.set_state(key, value, px=int(expires * 1000) if expires else None, final=final)

    def _set_with_state(self, key: bytes, value: bytes | str, state: str) -> bool:
        expires = self.failure_expires if state == states.FAILURE else None
        return self.set(key, value, expires, final=state in states.READY_STATES)

    def delete(self, key: bytes) -> None:
        self.client.delete(key)

    def incr(self, key: bytes) -> int:
        return self.client.incr(key)

    def expire(self, key: bytes, value: int) -> Any:
        return self.client.expire(key, value)

    def _store_result(self, task_id: str, result: Any, state: str, traceback: str | None = None,
                      request: Any = None, **kwargs: Any) -> Any:
        """One conditional PutItem: a ready state replaces anything; an unready one is refused by
        the write itself when a ready state is stored (no read first). A ready result of a group
        member (outside a chord, whose part return does it) is then announced on the group's
        stream."""
        meta = self._get_result_meta(result=result, state=state, traceback=traceback, request=request)
        meta["task_id"] = bytes_to_str(task_id)
        try:
            stored = self._set_with_state(self.get_key_for_task(task_id), self.encode(meta), state)
        except BackendStoreError as error:
            raise BackendStoreError(str(error), state=state, task_id=task_id) from error
        group_id = getattr(request, "group", None)
        if stored and group_id and state in states.READY_STATES and not getattr(request, "chord", None):
            self._count_done(group_id)
        return result

    def wait_for_pending(self, result: Any, timeout: float | None = None, interval: float = 0.5,
                         no_ack: bool = True, on_message: Any = None, on_interval: Any = None,
                         callback: Any = None, propagate: bool = True) -> Any:
        """As the sync backends', but a failed result first lets ``on_interval`` (Celery's check of
        the result's parents) raise a parent's error, as Celery's redis backend does: a chord whose
        header failed raises the header's exception, not the callback's ChordError."""
        self._ensure_not_eager()
        if on_message is not None:
            raise ImproperlyConfigured("Backend does not support on_message callback")
        meta = self.wait_for(result.id, timeout=timeout, interval=interval, on_interval=on_interval, no_ack=no_ack)
        if meta:
            result._maybe_set_cache(meta)
            if propagate and on_interval is not None and meta["status"] in states.PROPAGATE_STATES:
                on_interval()
            return result.maybe_throw(propagate=propagate, callback=callback)

    # -- native joins ------------------------------------------------------------------------
    def _done_counter(self, group_id: str) -> bytes:
        return self.get_key_for_group(group_id, ".done")

    def _count_done(self, group_id: str) -> None:
        """Tell a group's waiters that one more of its results is ready: 1 UpdateItem (INCR; the
        first also sets the counter's expiry, 1 more). A counter, not a stream: every writer of a
        stream conditions on its one head, so concurrent members refuse each other's XADD."""
        counter = self._done_counter(group_id)
        expires = self._chord_result_expires or self.expires
        if self.client.incr(counter) == 1 and expires:
            self.client.expire(counter, expires)

    def iter_native(self, result: Any, timeout: float | None = None, interval: float = 0.5, no_ack: bool = True,
                    on_message: Any = None, on_interval: Any = None) -> Iterator[tuple[str, Any]]:
        """Yield ``(task_id, meta)`` as a group's results become ready: one MGET of what is pending,
        then each poll cycle one GET of the group's completion counter (1 GetItem), and an MGET of
        the pending results only when it moved. An MGET also runs after 1, 2, 4 ... 32 quiet
        cycles, for results that were never counted (stored by hand, or by another backend)."""
        group_id = getattr(result, "id", None)
        if not group_id or not isinstance(result, GroupResult):
            yield from super().iter_native(result, timeout, interval, no_ack, on_message, on_interval)
            return
        self._ensure_not_eager()
        pending: set[str] = set()
        for child in result.results:
            if isinstance(child, ResultSet):
                yield child.id, child.results
            else:
                pending.add(child.id)
        interval = 0.5 if interval is None else interval
        counter, seen = self._done_counter(group_id), self.client.get(self._done_counter(group_id))
        deadline = None if timeout is None else time.monotonic() + timeout
        quiet, next_check = 0, 1
        while pending:
            for task_id, meta in self._ready(pending):
                pending.discard(task_id)
                if on_message is not None:
                    on_message(meta)
                yield task_id, meta
            while pending:
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"Operation timed out ({timeout})")
                if on_interval:
                    on_interval()
                self._raise_parent_error(result)
                time.sleep(interval if deadline is None else max(0.0, min(interval, deadline - time.monotonic())))
                count, quiet = self.client.get(counter), quiet + 1
                if count != seen or quiet >= next_check:  # moved, or the safety net is due
                    next_check = 1 if count != seen else min(32, next_check * 2)
                    seen, quiet = count, 0
                    break

    @staticmethod
    def _raise_parent_error(result: GroupResult) -> None:
        """A group that follows a failed task in a chain never runs: raise that task's error while
        waiting, as ``AsyncResult.get`` does for its parents (Celery issue #6437, where the redis
        backend waits until the timeout). 1 GetItem per parent until it is ready."""
        parents, node = [], result.parent
        while node is not None:
            parents.append(node)
            node = node.parent
        for parent in reversed(parents):
            parent.maybe_throw()

    def _ready(self, task_ids: set[str]) -> Iterator[tuple[str, dict]]:
        """The ready results among ``task_ids`` (served from the cache when known): ceil(n/100)
        BatchGetItem."""
        ids = []
        for task_id in list(task_ids):
            cached = self._cache.get(task_id)
            if cached and cached["status"] in states.READY_STATES:
                yield task_id, cached
            else:
                ids.append(task_id)
        if ids:
            found = self._mget_to_results(self.mget([self.get_key_for_task(i) for i in ids]), ids)
            self._cache.update(found)
            yield from found.items()

    # -- native chords -----------------------------------------------------------------------
    def add_to_chord(self, group_id: str, result: Any) -> None:
        """A task added to a running chord's header (``Task.add_to_chord``): 1 MULTI/EXEC."""
        key = self.get_key_for_group(group_id, ".t")
        with self.client.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            if self.chord_expires:
                pipe.expire(key, self.chord_expires)
            pipe.execute()

    def set_chord_size(self, group_id: str, chord_size: int) -> None:
        """A new run of a chord: its size, a placeholder field in its record of parts (which gives
        the record its expiry), and no claim or done mark from an earlier run. Celery calls this
        just before sending the header's last task, so earlier parts may be recorded already.
        1 MULTI/EXEC."""
        parts = self.get_key_for_group(group_id, ".j")
        with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(self.get_key_for_group(group_id, ".c"))
            pipe.set(self.get_key_for_group(group_id, ".s"), chord_size, ex=self.chord_expires or None)
            pipe.hset(parts, PLACEHOLDER, b"")
            if self.chord_expires:
                pipe.expire(parts, self.chord_expires)
            pipe.execute()

    def apply_chord(self, header_result_args: Any, body: Any, **kwargs: Any) -> None:
        """Save the header only when it nests groups, as the redis backend does: the part return
        then joins it to keep that structure."""
        if not isinstance(header_result_args[1], _regen):
            header_result = self.app.GroupResult(*header_result_args)
            if any(isinstance(child, GroupResult) for child in header_result.results):
                key = self.get_key_for_group(header_result.id)
                self.client.set(key, self.encode({"result": header_result.as_tuple()}),
                                ex=self.chord_expires or None)

    def _unpack_chord_result(self, value: bytes) -> Any:
        _, task_id, state, result = self.decode(value)
        if state in states.EXCEPTION_STATES:
            result = self.exception_to_python(result)
        if state in states.PROPAGATE_STATES:
            raise _create_chord_error_with_cause(message=f"Dependency {task_id} raised {result!r}",
                                                 original_exc=result)
        return result

    def on_chord_part_return(self, request: Any, state: str, result: Any, propagate: Any = None,
                             **kwargs: Any) -> None:
        """Record a header part once (HSETNX of the field ``index:task_id``: a redelivered copy
        changes nothing) and read the chord's state; the part that finds every part recorded claims
        the callback (SET NX) and sends it with the results in header order. Cost per part: the
        HSETNX, 1 UpdateItem on a compact record of parts (1 BatchGetItem + 1 TransactWriteItems
        once promoted; neither form asserts the other parts, so parts on many workers do not refuse
        each other) + 1 BatchGetItem (count, size, added parts, claim). The completing part adds
        1 GetItem of the parts (+ a Query once promoted), 1 PutItem (the claim) and 1 MULTI/EXEC
        (closing). A claim whose holder died is taken over by
        a later copy of a part once it expires, as in Celery's redis backend."""
        task_id, group_id, index = request.id, request.group, request.group_index
        if not task_id or not group_id:
            return
        client = self.client
        parts, added, size, claim = (self.get_key_for_group(group_id, suffix) for suffix in (".j", ".t", ".s", ".c"))
        encoded = self.encode([1, task_id, state, self.encode_result(result, state)])
        client.hsetnx(parts, f"{'inf' if index is None else int(index)}:{task_id}", encoded)
        with client.pipeline(transaction=False) as pipe:
            pipe.hlen(parts)
            pipe.get(size)
            pipe.get(added)
            pipe.get(claim)
            recorded, header_size, added_later, marker = pipe.execute()
        if header_size is None:  # not sized yet: the part that made the record gives it its expiry
            if recorded == 1 and marker != DONE and self.chord_expires:
                client.expire(parts, self.chord_expires)
            return
        if marker == DONE or recorded - 1 < int(header_size) + int(added_later or 0):
            return
        callback = maybe_signature(request.chord, app=self.app)
        join_timeout = self.app.conf.result_chord_join_timeout or 5.0
        if not client.set(claim, uuid.uuid4().hex, nx=True, ex=max(5, math.ceil(join_timeout * 2)) + 60):
            return
        try:
            results = self._chord_results(group_id, parts)
        except ChordError as error:
            logger.exception("Chord %r raised: %r", group_id, error)
            client.delete(size)  # a later copy of a header part must not fail the chord again
            return self.chord_error_from_stack(callback, error)
        except Exception as error:  # the join failed: the chord fails with the reason, as on redis
            logger.exception("Chord %r raised: %r", group_id, error)
            client.delete(size)
            return self.chord_error_from_stack(callback, ChordError(f"Join error: {error!r}"))
        try:
            self.app.amqp._retry_publish(callback.delay, results)
        except Exception as error:  # publishing failed: the callback's result says why
            logger.exception("Chord callback for %r raised: %r", group_id, error)
            return self.chord_error_from_stack(callback, ChordError(f"Callback error: {error!r}"))
        finally:
            # The recorded parts stay until they expire, so that a late copy of a part finds its
            # field there and writes nothing; without an expiry they go now.
            with client.pipeline(transaction=True) as pipe:
                pipe.delete(added, size, *(() if self.chord_expires else (parts,)))
                pipe.set(claim, DONE, ex=max(300, self.chord_expires or 0))
                pipe.execute()

    def _chord_results(self, group_id: str, parts: bytes) -> list:
        """The header's results in header order: a saved nested header is joined, else the recorded
        parts are read (1 GetItem + a Query) and sorted by their index."""
        header = GroupResult.restore(group_id, app=self.app)
        if header is not None:
            header.on_ready()
            join = header.join_native if header.supports_native_join else header.join
            with allow_join_result():
                return join(timeout=self.app.conf.result_chord_join_timeout, propagate=True)
        recorded = self.client.hgetall(parts)
        recorded.pop(PLACEHOLDER, None)

        def order(field: bytes) -> tuple[float, bytes]:
            index, _, _ = field.partition(b":")
            return float(index), field

        return [self._unpack_chord_result(recorded[field]) for field in sorted(recorded, key=order)]
