"""``redimo://TABLE``: a kombu virtual transport whose queues are Redimo streams (docs/celery.md).

* A queue is a stream with the consumer group ``kombu``; a delivery is an XREADGROUP and an ack is
  an XACK with the XDEL of the entry, in one MULTI/EXEC. A message taken by a consumer that died
  is claimed again (XAUTOCLAIM) once it has been pending for ``visibility_timeout`` seconds.
* Queues declared with ``x-max-priority`` (or every queue, when ``priority_steps`` is given) get
  one stream per priority band, read in the order of ``priority_steps``: as on the redis transport,
  priority 0 is served first.
* Bindings live in the table (a hash per exchange), so direct, topic and fanout exchanges route
  across processes: remote control (``celery inspect``) and events work.
* An idle worker polls with one BatchGetItem of the heads (XLEN) of every stream its channels
  consume, backing off from ``min_polling_interval`` to ``polling_interval``; only the streams
  with entries are then read.
* A message too large for a stream entry is stored as a (chunked) string beside it.

``import redimo_celery`` registers the ``redimo`` alias in kombu's transports.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from bisect import bisect
from queue import Empty
from time import monotonic, sleep
from typing import Any

from kombu.transport.base import to_rabbitmq_queue_arguments
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

import redimo
from redimo import Redimo

from .connection import ConfigurationError, parse_url, shared_holder

GROUP = "kombu"
SEPARATOR = "\x06\x16"  # the redis transport's separator, in binding members and band names
PRIORITY_STEPS = [0, 3, 6, 9]
BINDINGS = "_kombu.binding.%s"
LARGE = "_kombu.message.%s"
ENTRY_LIMIT = 300_000  # bytes of message kept in a stream entry; a longer one goes beside it
OPTIONS = frozenset({"visibility_timeout", "polling_interval", "min_polling_interval", "priority_steps",
                     "fanout_maxlen", "binding_cache_seconds"})


class QoS(virtual.QoS):
    """Acks and rejects reach the stream: XACK + XDEL (1 BatchGetItem + 1 TransactWriteItems)."""

    restore_at_shutdown = True

    def ack(self, delivery_tag: str) -> None:
        self.channel._settle(self._delivered[delivery_tag])
        super().ack(delivery_tag)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        message = self._delivered[delivery_tag]
        if requeue:
            self.channel._settle(message, requeue=True)
        else:
            self.channel._settle(message)
        super().ack(delivery_tag)


class Channel(virtual.Channel):
    """One consumer of the ``kombu`` group on each stream it reads."""

    QoS = QoS
    supports_fanout = True
    do_restore = True
    from_transport_options = virtual.Channel.from_transport_options + tuple(OPTIONS)

    visibility_timeout: float = 3600
    priority_steps: list[int] | None = None
    fanout_maxlen = 1000
    binding_cache_seconds = 5.0
    polling_interval = None
    min_polling_interval = None

    def __init__(self, connection: Any, **kwargs: Any) -> None:
        super().__init__(connection, **kwargs)
        self.client: Redimo = connection.holder.get()
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{self.channel_id}-{uuid.uuid4().hex[:8]}"
        self._bands: dict[str, list[int]] = {}  # queues declared with priorities: their bands
        self._expires: dict[str, int] = {}  # queue -> x-expires (ms)
        self.auto_delete_queues: set[str] = set()
        self._fanout_queues: set[str] = set()  # queues this channel bound to fanout exchanges
        self._tables: dict[str, tuple[float, list[tuple[str, str, str]]]] = {}
        self._grouped: set[str] = set()  # streams whose group this channel made sure of
        self._sizes: dict[str, int] | None = None  # XLEN of each stream at the last idle check
        self._next_claim: dict[str, float] = {}
        self._settling = threading.Lock()  # one stream write at a time: concurrent ones refuse each other

    # -- queues and streams ------------------------------------------------------------------
    def _steps(self, queue: str) -> list[int]:
        return self._bands.get(queue) or (self.priority_steps or [0])

    def _stream(self, queue: str, band: int) -> str:
        return f"{queue}{SEPARATOR}{band}" if band else queue

    def _streams(self, queue: str) -> list[str]:
        """A queue's streams, highest priority first."""
        return [self._stream(queue, band) for band in self._steps(queue)]

    def _band_of(self, queue: str, message: dict) -> int:
        steps = self._steps(queue)
        priority = self._get_message_priority(message, reverse=False)
        return steps[max(0, bisect(steps, priority) - 1)]

    def _new_queue(self, queue: str, auto_delete: bool = False, **kwargs: Any) -> None:
        arguments = kwargs.get("arguments") or {}
        if auto_delete:
            self.auto_delete_queues.add(queue)
        if arguments.get("x-expires") is not None:
            self._expires[queue] = int(arguments["x-expires"])
        if arguments.get("x-max-priority") is not None and not self.priority_steps:
            self._bands[queue] = PRIORITY_STEPS
        elif self.priority_steps:
            self._bands[queue] = sorted(int(step) for step in self.priority_steps)

    def prepare_queue_arguments(self, arguments: dict, **kwargs: Any) -> dict:
        """Keep ``expires`` and ``max_priority`` as the x- arguments ``_new_queue`` reads."""
        return to_rabbitmq_queue_arguments(arguments, **kwargs)

    def _has_queue(self, queue: str, **kwargs: Any) -> bool:
        with self.client.pipeline(transaction=False) as pipe:
            for stream in self._streams(queue):
                pipe.exists(stream)
            return any(pipe.execute())

    def _ensure_group(self, stream: str) -> None:
        try:
            self.client.xgroup_create(stream, GROUP, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._grouped.add(stream)

    def _size(self, queue: str) -> int:
        """Messages not yet delivered: XLEN less the pending entries, per band (1 BatchGetItem + a
        BatchGetItem and Query per band)."""
        total = 0
        for stream in self._streams(queue):
            with self.client.pipeline(transaction=False) as pipe:
                pipe.xlen(stream)
                pipe.xpending(stream, GROUP)
                try:
                    length, pending = pipe.execute()
                except ResponseError:  # no group yet: nothing delivered
                    length, pending = self.client.xlen(stream), {"pending": 0}
            total += max(0, length - pending["pending"])
        return total

    def _purge(self, queue: str) -> int:
        """Remove the messages not yet delivered (those being processed stay, as on redis): read
        them with a throwaway consumer, then XDEL them."""
        removed = 0
        for stream in self._streams(queue):
            if not self.client.exists(stream):
                continue
            self._ensure_group(stream)
            purger = f"purge-{uuid.uuid4().hex}"
            while reply := self.client.xreadgroup(GROUP, purger, {stream: ">"}, count=500, noack=True):
                entries = reply[0][1]
                large = [fields[b"l"] for _, fields in entries if b"l" in fields]
                with self.client.pipeline(transaction=True) as pipe:
                    pipe.xdel(stream, *[entry_id for entry_id, _ in entries])
                    if large:
                        pipe.delete(*large)
                    pipe.execute()
                removed += len(entries)
            self.client.xgroup_delconsumer(stream, GROUP, purger)
        return removed

    def _delete(self, queue: str, exchange: str, routing_key: str, pattern: str, *args: Any, **kwargs: Any) -> None:
        self.auto_delete_queues.discard(queue)
        with self.client.pipeline(transaction=False) as pipe:
            pipe.hdel(BINDINGS % exchange, SEPARATOR.join([routing_key or "", pattern or "", queue or ""]))
            pipe.delete(*self._streams(queue))
            pipe.execute()
        self._tables.pop(exchange, None)
        for stream in self._streams(queue):
            self._grouped.discard(stream)

    # -- bindings ------------------------------------------------------------------------------
    def _queue_bind(self, exchange: str, routing_key: str, pattern: str, queue: str) -> None:
        member = SEPARATOR.join([routing_key or "", pattern or "", queue or ""])
        self.client.hset(BINDINGS % exchange, member, self._expires.get(queue, ""))
        if self.typeof(exchange).type == "fanout":
            self._fanout_queues.add(queue)
        self._tables.pop(exchange, None)

    def queue_unbind(self, queue: str, exchange: str | None = None, routing_key: str = "", arguments: Any = None,
                     **kwargs: Any) -> None:
        super().queue_unbind(queue, exchange, routing_key, arguments, **kwargs)
        meta = self.typeof(exchange).prepare_bind(queue, exchange, routing_key, arguments)
        self.client.hdel(BINDINGS % exchange, SEPARATOR.join(part or "" for part in meta))
        self._tables.pop(exchange, None)

    def get_table(self, exchange: str, fresh: bool = False) -> list[tuple[str, str, str]]:
        """An exchange's bindings, shared through the table (1 GetItem + a Query). A direct
        exchange's table is kept for ``binding_cache_seconds``."""
        cached = self._tables.get(exchange)
        if cached and not fresh and monotonic() - cached[0] < self.binding_cache_seconds:
            return cached[1]
        table = []
        for member, expires in self.client.hgetall(BINDINGS % exchange).items():
            routing_key, pattern, queue = bytes_to_str(member).split(SEPARATOR)
            table.append((routing_key, pattern, queue))
            if expires:
                self._expires.setdefault(queue, int(expires))
        if self.typeof(exchange).type == "direct":
            self._tables[exchange] = (monotonic(), table)
        return table

    def _lookup(self, exchange: str, routing_key: str, default: Any = None) -> list[str]:
        """As kombu's, but a cached table that routes nowhere is read again before giving up."""
        if exchange and exchange in self._tables:
            routed = self.typeof(exchange).lookup(self._tables[exchange][1], exchange, routing_key, default)
            if routed:
                return list(routed)
            self._tables.pop(exchange, None)
        return super()._lookup(exchange, routing_key, default)

    # -- publishing ----------------------------------------------------------------------------
    def _fields(self, message: dict) -> tuple[dict, str | None]:
        """The stream entry of a message: the message itself, or the key of the string holding it."""
        payload = dumps(message)
        if len(payload) <= ENTRY_LIMIT:
            return {"m": payload}, None
        large = LARGE % uuid.uuid4().hex
        return {"l": large}, large

    def _put(self, queue: str, message: dict, maxlen: int | None = None, **kwargs: Any) -> None:
        """XADD (1 GetItem + 1 TransactWriteItems); with x-expires, PEXPIRE in the same MULTI. A
        large message is first SET beside the stream."""
        stream = self._stream(queue, self._band_of(queue, message))
        fields, large = self._fields(message)
        if large:
            self.client.set(large, dumps(message))
        expires = self._expires.get(queue)
        if expires:
            with self.client.pipeline(transaction=True) as pipe:
                pipe.xadd(stream, fields, maxlen=maxlen)
                pipe.pexpire(stream, expires)
                pipe.execute()
        else:
            self.client.xadd(stream, fields, maxlen=maxlen)

    def _put_fanout(self, exchange: str, message: dict, routing_key: str, **kwargs: Any) -> None:
        """A copy to each bound queue, each stream capped at ``fanout_maxlen`` entries."""
        for queue in {queue for _, _, queue in self.get_table(exchange, fresh=True)}:
            self._put(queue, message, maxlen=self.fanout_maxlen)

    # -- consuming -----------------------------------------------------------------------------
    def _streams_to_poll(self) -> list[str]:
        """The streams this channel would read now (none while its prefetch limit is reached)."""
        if not self._consumers or not self.qos.can_consume():
            return []
        return [stream for queue in self._active_queues for stream in self._streams(queue)]

    def _has_control_work(self) -> bool:
        """Whether this channel consumes a fanout-bound queue that may hold a message (always when
        no idle check ran: then the read itself tells)."""
        control = self._fanout_queues.intersection(self._active_queues)
        if not control or not self._streams_to_poll():
            return False
        return self._sizes is None or any(self._sizes.get(stream) for queue in control
                                           for stream in self._streams(queue))

    def _get(self, queue: str, timeout: float | None = None) -> dict:
        """The next message of a queue: one claimed from a dead consumer, else the highest band's
        next entry (XREADGROUP: 1 BatchGetItem + 1 Query + 1 TransactWriteItems)."""
        for stream in self._streams(queue):
            if self._sizes is not None and not self._sizes.get(stream):
                continue
            if stream not in self._grouped:
                self._ensure_group(stream)
            with self._settling:  # a delivery and another thread's ack on one stream would refuse each other
                claimed = self._claim(stream)
                entry = claimed or self._read(stream)
            if entry is not None:
                return self._message(stream, *entry, redelivered=claimed is not None)
        raise Empty()

    def _read(self, stream: str) -> tuple[bytes, dict] | None:
        try:
            reply = self.client.xreadgroup(GROUP, self.consumer, {stream: ">"}, count=1)
        except ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            self._ensure_group(stream)  # the stream expired or was deleted meanwhile
            return None
        return reply[0][1][0] if reply else None

    def _claim(self, stream: str) -> tuple[bytes, dict] | None:
        """A message pending longer than ``visibility_timeout`` (its consumer died), checked at
        most every tenth of the timeout (at least 1 s, at most 60 s) per stream."""
        now = monotonic()
        if now < self._next_claim.get(stream, 0):
            return None
        idle_ms = int(float(self.visibility_timeout) * 1000)
        _, entries, *_ = self.client.xautoclaim(stream, GROUP, self.consumer, idle_ms, count=1)
        if entries and entries[0][1] is not None:
            return entries[0]
        self._next_claim[stream] = now + min(60.0, max(1.0, float(self.visibility_timeout) / 10))
        return None

    def _message(self, stream: str, entry_id: bytes, fields: dict, redelivered: bool = False) -> dict:
        if b"l" in fields:
            data = self.client.get(fields[b"l"])
            if data is None:  # its large body is gone: drop the entry, as a malformed message
                self._settle_entry(stream, entry_id, None)
                raise Empty()
        else:
            data = fields[b"m"]
        try:
            message = loads(bytes_to_str(data))
        except ValueError:
            virtual.base.logger.error("Dropped a malformed message %s from %s", bytes_to_str(entry_id), stream)
            self._settle_entry(stream, entry_id, fields.get(b"l"))
            raise Empty() from None
        properties = message.setdefault("properties", {})
        properties["delivery_tag"] = uuid.uuid4().hex  # a new tag per delivery: one is settled once
        delivery_info = properties.setdefault("delivery_info", {})
        delivery_info["redimo"] = [stream, bytes_to_str(entry_id), bytes_to_str(fields.get(b"l", b""))]
        if redelivered:
            delivery_info["redelivered"] = True
        return message

    def _settle_entry(self, stream: str, entry_id: bytes | str, large: bytes | str | None,
                      requeue: dict | None = None) -> None:
        """XACK + XDEL of an entry (and the DEL of its large body), with the XADD of a requeued
        copy in the same MULTI/EXEC: 2 GetItem + 1 BatchGetItem + 1 TransactWriteItems. The
        channel's acks go one at a time (a worker's threads ack on one channel): concurrent ones
        on a stream would refuse each other's transaction."""
        with self._settling, self.client.pipeline(transaction=True) as pipe:
            if requeue is not None:
                fields, new_large = self._fields(requeue)
                if new_large:
                    self.client.set(new_large, dumps(requeue))
                pipe.xadd(stream, fields)
            pipe.xack(stream, GROUP, entry_id)
            pipe.xdel(stream, entry_id)
            if large:
                pipe.delete(large)
            pipe.execute()

    def _settle(self, message: Any, requeue: bool = False) -> None:
        stream, entry_id, large = message.delivery_info["redimo"]
        copy = None
        if requeue:
            copy = message.serializable()
            copy["properties"]["delivery_info"].pop("redimo", None)
            copy["properties"]["delivery_info"]["redelivered"] = True
        self._settle_entry(stream, entry_id, large or None, copy)

    def _restore(self, message: Any) -> None:
        """Put an unacked message back at shutdown (kombu's restore): a requeue, right away."""
        if "redimo" in (message.delivery_info or {}):
            self._settle(message, requeue=True)
        else:
            super()._restore(message)

    def close(self) -> None:
        """Drop the auto-delete queues bound to fanout exchanges (as the redis transport does: other
        queues stay, since kombu's connection remembers them as declared), requeue what is
        unacked, and leave the groups."""
        if self.closed:
            return
        for queue in list(self.auto_delete_queues & self._fanout_queues):
            try:
                self.queue_delete(queue)
            except Exception:  # closing must not fail on a store that is gone
                virtual.base.logger.warning("Could not delete auto-delete queue %s", queue, exc_info=True)
        super().close()
        for stream in self._grouped:
            try:
                self.client.xgroup_delconsumer(stream, GROUP, self.consumer)
            except Exception:  # as above
                pass


class Transport(virtual.Transport):
    """The ``redimo://TABLE?namespace=...&endpoint_url=...&region=...`` kombu transport."""

    Channel = Channel
    can_parse_url = True
    default_port = None
    driver_type = "redimo"
    driver_name = "redimo"
    polling_interval = 0.1
    min_polling_interval = 0.005
    implements = virtual.Transport.implements.extend(asynchronous=True,
                                                      exchange_type=frozenset(["direct", "topic", "fanout"]))
    connection_errors = virtual.Transport.connection_errors + (RedisConnectionError, RedisTimeoutError)
    channel_errors = virtual.Transport.channel_errors + (ResponseError,)

    def __init__(self, client: Any, **kwargs: Any) -> None:
        url = client.hostname if "://" in (client.hostname or "") else f"redimo://{client.hostname}"
        options = dict(client.transport_options or {})
        try:
            self.location, extra = parse_url(url, options, extra=OPTIONS, setting_name="broker_transport_options")
        except ConfigurationError as error:
            raise ValueError(str(error)) from None
        client.transport_options = {**options, **extra}
        super().__init__(client, **kwargs)
        if "min_polling_interval" in client.transport_options:
            self.min_polling_interval = float(client.transport_options["min_polling_interval"])
        self.polling_interval = float(self.polling_interval)
        self.holder = shared_holder(self.location)
        self._idle_wait = self.min_polling_interval
        self._idle_since: float | None = None  # when the last round that found nothing ended
        self._event_loop: Any = None  # the worker's hub that polls this transport, if any
        self._rotation = 0  # the channel to try first (after control) in the next round

    def driver_version(self) -> str:
        return redimo.__version__

    def as_uri(self, uri: str, include_password: bool = False, mask: str = "**") -> str:
        return uri

    def establish_connection(self) -> Any:
        """Checks that the table is there (1 GetItem), so a missing table fails at connect."""
        self.holder.get().exists("_kombu.connect")
        return super().establish_connection()

    def register_with_event_loop(self, connection: Any, loop: Any) -> None:
        """Under a worker's event loop (kombu's hub), poll from the hub's timer: one round per tick,
        the next at once after a delivery, else after the backoff wait. The loop stays free between
        rounds, so remote control and pool results are handled while the pool is busy."""
        self._event_loop = loop
        loop.call_later(0, self._on_tick, connection, loop)

    def unregister_from_event_loop(self, connection: Any, loop: Any) -> None:
        if self._event_loop is loop:
            self._event_loop = None

    def _on_tick(self, connection: Any, loop: Any) -> None:
        if self._event_loop is not loop or not self.channels:
            return
        try:
            self.drain_events(connection, timeout=0)
        except socket.timeout:
            loop.call_later(self._idle_wait, self._on_tick, connection, loop)
        except self.connection_errors:
            self._event_loop = None  # the consumer reconnects and registers again
            raise
        except Exception:
            loop.call_later(self.polling_interval, self._on_tick, connection, loop)
            raise
        else:  # a timer, not call_soon: the hub runs call_soon callbacks only after its next poll
            loop.call_later(0, self._on_tick, connection, loop)

    def _has_work(self) -> bool:
        """While idle: one BatchGetItem of the lengths of every stream that any channel would read
        (each channel then reads only its streams with entries). False when all are empty."""
        polled = [(channel, channel._streams_to_poll()) for channel in self.channels]
        streams = list(dict.fromkeys(stream for _, names in polled for stream in names))
        if not streams:
            return False
        with self.holder.get().pipeline(transaction=False) as pipe:
            for stream in streams:
                pipe.xlen(stream)
            sizes = dict(zip(streams, pipe.execute()))
        for channel, names in polled:
            channel._sizes = {name: sizes[name] for name in names}
        return any(sizes.values())

    def _deliver_next(self, timeout: float | None) -> None:
        """One message, trying each channel once: first those with fanout queues that may hold one
        (remote control, such as a revoke sent just before the task it names), then the others in
        turn from the one after the last delivery."""
        channels = list(self.channels)
        start = self._rotation % len(channels) if channels else 0
        rotated = channels[start:] + channels[:start]
        control = [channel for channel in rotated if channel._has_control_work()]
        for channel in control + [channel for channel in rotated if channel not in control]:
            try:
                self._drain_channel(channel, self._deliver, timeout=timeout)
            except Empty:
                continue
            self._rotation = channels.index(channel) + 1
            return
        raise Empty()

    def drain_events(self, connection: Any, timeout: float | None = None) -> None:
        """Poll the channels. After a round that found nothing, the next waits
        ``min_polling_interval``, doubling up to ``polling_interval`` (across calls too), and
        starts with one length check of every stream; a delivery resets both."""
        start = monotonic()
        while True:
            if self._idle_since is not None:  # keep to the wait, even when called again at once
                left = self._idle_wait - (monotonic() - self._idle_since)
                if timeout is not None:
                    left = min(left, timeout - (monotonic() - start))
                if left > 0:
                    sleep(left)
            try:
                if self._idle_since is not None and not self._has_work():
                    raise Empty()
                self._deliver_next(timeout)
            except Empty:
                if self._idle_since is not None:
                    self._idle_wait = min(self.polling_interval, self._idle_wait * 2)
                self._idle_since = monotonic()
                if timeout is not None and monotonic() - start >= timeout:
                    raise socket.timeout() from None
            else:
                self._idle_wait, self._idle_since = self.min_polling_interval, None
                for channel in self.channels:
                    channel._sizes = None  # busy: read straight on next time
                return


def register() -> None:
    """Make ``redimo://`` a kombu transport (kombu 5.7 has no entry points for transports)."""
    from kombu.transport import TRANSPORT_ALIASES

    TRANSPORT_ALIASES.setdefault("redimo", "redimo_celery.transport:Transport")

