"""Celery on DynamoDB alone: the ``redimo://`` kombu transport (broker) with the ``redimo://`` result
backend, on DynamoDB Local, with no Redis anywhere: kombu-level behaviour, a real in-process worker,
and worker subprocesses (``kill -9`` of one holding an acks_late task)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
from celery import chain, chord, group, states
from celery.contrib.testing.worker import start_worker
from kombu import Connection, Consumer, Exchange, Producer, Queue
from redis.exceptions import ResponseError

import celery_app
from celery_app import add, collect, flaky, identity, sleep_then_record
from conftest import ROOT, TABLE, wait_until
from redimo_celery.transport import Channel

app = celery_app.app


@pytest.fixture
def broker(dynamodb_local_client: Any, dynamodb_local_endpoint: str) -> str:
    return f"redimo://{TABLE}?endpoint_url={dynamodb_local_endpoint}&namespace=broker-{uuid.uuid4().hex}"


@pytest.fixture
def connection(broker: str) -> Iterator[Connection]:
    with Connection(broker) as conn:
        yield conn


@pytest.fixture
def on_redimo(broker: str) -> Iterator[str]:
    """The test app with broker and result backend both on ``redimo://`` (one namespace)."""
    with celery_app.settings(broker_url=broker, result_backend=broker, result_expires=3600):
        yield broker


@pytest.fixture
def worker(on_redimo: str) -> Iterator[Any]:
    with start_worker(app, pool="threads", concurrency=4, perform_ping_check=False, shutdown_timeout=30,
                      without_heartbeat=True) as running:
        yield running


def drain(conn: Connection, queue: Queue, count: int, timeout: float = 10) -> list:
    """The bodies of the next ``count`` messages of ``queue``, each acked."""
    bodies: list = []

    def received(body: Any, message: Any) -> None:
        bodies.append(body)
        message.ack()

    with Consumer(conn.default_channel, [queue], callbacks=[received]):
        deadline = time.monotonic() + timeout
        while len(bodies) < count and time.monotonic() < deadline:
            try:
                conn.drain_events(timeout=0.5)
            except TimeoutError:
                pass
    return bodies


# -- kombu level ------------------------------------------------------------------------------
def test_messages_flow_and_are_acked_away(connection: Connection) -> None:
    queue = Queue("jobs", Exchange("jobs", "direct"), routing_key="jobs")
    producer = Producer(connection.default_channel, queue.exchange)
    for number in range(3):
        producer.publish({"n": number}, routing_key="jobs", declare=[queue])
    assert queue(connection.default_channel).queue_declare(passive=True).message_count == 3
    assert drain(connection, queue, 3) == [{"n": 0}, {"n": 1}, {"n": 2}]
    client = connection.default_channel.client
    assert client.xlen("jobs") == 0, "an ack removes the entry"


def test_a_large_message_is_stored_beside_the_stream(connection: Connection) -> None:
    queue = Queue("big", Exchange("big", "direct"), routing_key="big")
    body = {"blob": "x" * 1_500_000}
    Producer(connection.default_channel, queue.exchange).publish(body, routing_key="big", declare=[queue])
    assert drain(connection, queue, 1) == [body]
    assert connection.default_channel.client.keys("_kombu.message.*") == [], "its body goes with the ack"


def test_reject_with_requeue_redelivers_and_without_drops(connection: Connection) -> None:
    queue = Queue("rq", Exchange("rq", "direct"), routing_key="rq")
    Producer(connection.default_channel, queue.exchange).publish({"a": 1}, routing_key="rq", declare=[queue])
    channel = connection.default_channel
    first = queue(channel).get()
    first.reject(requeue=True)
    again = queue(channel).get()
    assert again.payload == {"a": 1} and again.delivery_info.get("redelivered") is not None
    again.reject()
    assert queue(channel).get() is None and channel.client.xlen("rq") == 0


def test_purge_removes_ready_messages_only(connection: Connection) -> None:
    queue = Queue("pq", Exchange("pq", "direct"), routing_key="pq")
    producer = Producer(connection.default_channel, queue.exchange)
    for number in range(4):
        producer.publish({"n": number}, routing_key="pq", declare=[queue])
    taken = queue(connection.default_channel).get()
    assert queue(connection.default_channel).purge() == 3
    taken.ack()
    assert connection.default_channel.client.xlen("pq") == 0


def test_priorities_are_served_highest_first(connection: Connection) -> None:
    queue = Queue("prio", Exchange("prio", "direct"), routing_key="prio", max_priority=10)
    producer = Producer(connection.default_channel, queue.exchange)
    for priority in (9, 6, 4, 0, 3):
        producer.publish({"p": priority}, routing_key="prio", declare=[queue], priority=priority)
    # bands of priority_steps [0, 3, 6, 9], band 0 first as on redis; 4 and 3 share band 3, in order
    assert [body["p"] for body in drain(connection, queue, 5)] == [0, 4, 3, 6, 9]


def test_fanout_reaches_every_bound_queue_across_connections(broker: str) -> None:
    exchange = Exchange("broadcast", "fanout")
    with Connection(broker) as one, Connection(broker) as two:
        first, second = Queue("fan-1", exchange), Queue("fan-2", exchange)
        first(one.default_channel).declare()
        second(two.default_channel).declare()
        with Connection(broker) as sender:
            Producer(sender.default_channel, exchange).publish({"all": True}, declare=[exchange])
        assert drain(one, first, 1) == [{"all": True}]
        assert drain(two, second, 1) == [{"all": True}]


def test_a_malformed_entry_is_dropped_and_logged(connection: Connection, caplog: pytest.LogCaptureFixture) -> None:
    queue = Queue("bad", Exchange("bad", "direct"), routing_key="bad")
    producer = Producer(connection.default_channel, queue.exchange)
    producer.publish({"ok": 1}, routing_key="bad", declare=[queue])
    connection.default_channel.client.xadd("bad", {"m": b"{not json"})
    producer.publish({"ok": 2}, routing_key="bad")
    with caplog.at_level(logging.ERROR):
        assert drain(connection, queue, 2) == [{"ok": 1}, {"ok": 2}]
    assert "malformed" in caplog.text


def test_an_idle_consumer_polls_one_request_at_a_time_backing_off(connection: Connection) -> None:
    queue = Queue("idle", Exchange("idle", "direct"), routing_key="idle")
    queue(connection.default_channel).declare()
    usage = connection.default_channel.client.gateway.usage
    with Consumer(connection.default_channel, [queue], callbacks=[lambda body, message: None]):
        with pytest.raises(TimeoutError):
            connection.drain_events(timeout=0.5)  # the first round makes the group and reads once
        before, start = usage.snapshot(), time.monotonic()
        with pytest.raises(TimeoutError):
            connection.drain_events(timeout=3)
        spent, elapsed = usage - before, time.monotonic() - start
    polls = spent.total_requests
    assert set(spent.requests) <= {"get_item", "batch_get_item"}, "an idle poll only reads stream heads"
    assert polls <= elapsed / 0.1 + 8, f"{polls} polls in {elapsed:.1f} s: backs off to polling_interval"


def test_closing_a_channel_deletes_its_auto_delete_queues(broker: str) -> None:
    exchange = Exchange("control", "fanout")
    with Connection(broker) as conn:
        channel = conn.channel()
        Queue("worker-1.pidbox", exchange, auto_delete=True)(channel).declare()
        Producer(channel, exchange).publish({"ping": 1})
        client = channel.client
        assert client.xlen("worker-1.pidbox") == 1
        channel.close()
        assert client.exists("worker-1.pidbox") == 0
        assert client.hlen("_kombu.binding.control") == 0, "its binding goes too"


def test_an_auto_delete_direct_queue_outlives_its_channel(broker: str) -> None:
    """A reply queue (kombu's pidbox) is declared once per connection: closing a channel keeps it,
    as on the redis transport, so the next call on the pooled connection still gets its replies."""
    exchange = Exchange("reply.control", "direct")
    queue = Queue("client-1.reply", exchange, routing_key="client-1", auto_delete=True)
    with Connection(broker) as conn:
        channel = conn.channel()
        queue(channel).declare()
        channel.close()
        with conn.Producer() as producer:
            producer.publish({"pong": 1}, exchange=exchange, routing_key="client-1")
        assert drain(conn, queue, 1) == [{"pong": 1}]


def test_a_missing_table_names_the_create_table_command(dynamodb_local_endpoint: str) -> None:
    with Connection(f"redimo://no-such-table?endpoint_url={dynamodb_local_endpoint}") as conn:
        with pytest.raises(ResponseError, match="redimo create-table no-such-table"):
            conn.connect()


def test_unknown_options_are_refused(broker: str) -> None:
    with pytest.raises(ValueError, match="unknown option 'colour'"):
        Connection(broker + "&colour=blue").connect()


def test_options_reach_the_channel(broker: str) -> None:
    with Connection(broker + "&visibility_timeout=7", transport_options={"fanout_maxlen": 9}) as conn:
        channel: Channel = conn.default_channel
        assert float(channel.visibility_timeout) == 7 and int(channel.fanout_maxlen) == 9


# -- a real worker, broker and backend on Redimo ---------------------------------------------
def test_tasks_retries_and_canvas(worker: Any) -> None:
    assert add.delay(2, 2).get(timeout=30) == 4
    assert flaky.delay(3).get(timeout=30) == 3
    assert chain(add.s(1, 1), add.s(10))().get(timeout=30) == 12
    assert group(add.s(i, i) for i in range(8))().get(timeout=60) == [2 * i for i in range(8)]
    assert chord([add.s(i, 0) for i in range(5)])(collect.s()).get(timeout=60) == list(range(5))
    large = "y" * 600_000
    assert identity.delay(large).get(timeout=30) == large


def test_revoke_and_remote_control(worker: Any) -> None:
    replies = app.control.ping(timeout=5)
    assert replies and all("ok" in reply for answer in replies for reply in answer.values())
    result = add.apply_async((1, 2), countdown=3)
    result.revoke()
    time.sleep(4)
    assert result.state == states.REVOKED
    assert app.control.rate_limit(add.name, "100/m", reply=True, timeout=5)


def test_events_reach_a_receiver(on_redimo: str) -> None:
    """``celery events``' path: worker events on the topic exchange ``celeryev``, to a receiver's queue."""
    received: list[str] = []
    with celery_app.settings(worker_send_task_events=True), app.connection_for_read() as conn:
        receiver = app.events.Receiver(conn, handlers={"*": lambda event: received.append(event["type"])})
        capturing = threading.Thread(target=receiver.capture, kwargs={"wakeup": False}, daemon=True)
        capturing.start()
        with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=30):
            wait_until(lambda: conn.default_channel.client.hlen("_kombu.binding.celeryev"), "the receiver's queue", 30)
            add.delay(1, 1).get(timeout=30)
            wait_until(lambda: "task-succeeded" in received, "the task-succeeded event", 30)
        receiver.should_stop = True
        capturing.join(10)
    assert "task-received" in received and "task-succeeded" in received, received


# -- worker subprocesses -----------------------------------------------------------------------
def start_worker_process(broker: str, name: str, visibility: float) -> subprocess.Popen:
    env = {**os.environ, "REDIMO_TEST_BACKEND": broker, "REDIMO_TEST_BROKER": broker,
           "REDIMO_TEST_VISIBILITY": str(visibility), "PYTHONPATH": str(ROOT / "tests")}
    return subprocess.Popen([sys.executable, "-m", "celery", "-A", "celery_app", "worker", "-P", "prefork", "-c", "1",
                             "-n", f"{name}@%h", "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
                             "--without-heartbeat"], env=env, cwd=ROOT / "tests", start_new_session=True)


def test_a_killed_workers_task_runs_elsewhere_after_the_visibility_timeout(on_redimo: str, tmp_path: Path) -> None:
    record = tmp_path / "runs"
    first = start_worker_process(on_redimo, "first", visibility=4)
    second = None
    try:
        result = sleep_then_record.delay(6, str(record), "done")
        wait_until(lambda: result.state == states.STARTED, "the first worker to take the task", 90)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
        second = start_worker_process(on_redimo, "second", visibility=4)
        assert result.get(timeout=90) == "done"
        assert record.read_text().split() == ["done"], "run to the end once, by the second worker"
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=60)
