"""Compare Celery brokers on the same machine: redimo:// vs redis:// vs kombu's SQLAlchemy on SQLite.

    .venv/bin/python benchmarks/celery/broker.py [--quick] [--no-prefork] [--only redimo|redis|sqla] [--no-write]

Needs ``sqlalchemy`` in the venv for the third broker (``pip install sqlalchemy``; measured with 2.1.9).
Starts DynamoDB Local and a redis-server of its own (free ports, stopped on exit) and a SQLite file in a
temporary directory, then for each broker

* ``redimo://TABLE?namespace=...&endpoint_url=...`` (this project's kombu transport, on DynamoDB Local,
  default ``polling_interval`` 0.1 s),
* ``redis://127.0.0.1:PORT/0``,
* ``sqla+sqlite:///PATH`` (kombu's SQLAlchemy transport, its default ``polling_interval`` of 1 s),

runs the same in-process worker (``start_worker(app, pool="threads", concurrency=4)``, so no heartbeat,
mingle or gossip, remote control on) with **no result backend**: the one task (``bench.mark``) is
``ignore_result`` and tells it ran by appending ``TAG START_TIME`` to a file (the side channel; it works
across processes, so the same task serves the prefork worker). It measures

1. throughput: N tasks published up front (no worker running; publish rate), then a worker started;
   the consume rate is the N gaps between the N+1 task start times (a warm-up task + the N);
2. pickup latency of an idle worker: after ≥ 3 s idle, one task published; latency = the task's
   ``time.time()`` at start − ``time.time()`` just before ``apply_async``; repeated with random idle gaps
   of 1–4 s (counted from the task's start);
3. for redimo, exactly, every DynamoDB request in the process (a wrapper around botocore's
   ``BaseClient._make_api_call``, as in run.py) tagged with the transport method that made it
   (``_put``, ``_has_work``, ``_get``, ``_settle``, ...): the requests of one task (publish + deliver + ack,
   from the latency windows, less the idle polls in them), and an idle worker's requests and read units
   per minute, in dollars per month at on-demand prices. Also with ``polling_interval=1.0``, and for a
   ``celery worker -P prefork -c 2`` subprocess with Celery's defaults (heartbeat, mingle, gossip on),
   whose requests are counted in the subprocess by the same wrapper (this module, imported by
   ``celery -A broker``, installs it when ``BENCH_WORKER_COUNTS`` is set).

The tables are printed and written to ``benchmarks/celery/broker-results.md`` (unless ``--no-write``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import json
import logging
import math
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import quote

# Never reach for real credentials: everything here talks to DynamoDB Local.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_REGION", "us-east-1")
os.environ.setdefault("AWS_DEFAULT_REGION", os.environ["AWS_REGION"])

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
os.environ.setdefault("REDIMO_DYNAMODB_LOCAL_DIR", str(ROOT / ".cache" / "dynamodb-local"))

import botocore.client  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from celery import Celery  # noqa: E402

import redimo_celery  # noqa: E402,F401  (registers the redimo:// transport)
from redimo_celery import transport as redimo_transport  # noqa: E402
from run import redis_server  # noqa: E402  (benchmarks/celery/run.py: the same redis-server)

TABLE = "celery-broker-bench"
READ_PRICE = 0.125 / 1e6  # $ per read request unit, on-demand, us-east-1
WRITE_PRICE = 0.625 / 1e6  # $ per write request unit, on-demand, us-east-1
MINUTES_PER_MONTH = 730 * 60
CAPACITY_OPERATIONS = frozenset({
    "GetItem", "PutItem", "UpdateItem", "DeleteItem", "BatchGetItem", "BatchWriteItem", "Query", "Scan",
    "TransactGetItems", "TransactWriteItems"})
READ_OPERATIONS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
IDLE = "idle poll (XLEN)"
HEARTBEAT = "worker heartbeat (fanout publish)"


# -- counting every DynamoDB request in the process, tagged by the transport method ---------------
_tags = threading.local()


def current_tag() -> str:
    stack = getattr(_tags, "stack", None)
    if not stack:
        return "other"
    return HEARTBEAT if HEARTBEAT in stack else stack[-1]


def tag_method(cls: type, name: str, tag: str) -> None:
    original = getattr(cls, name)

    @functools.wraps(original)
    def tagged(*args: Any, **kwargs: Any) -> Any:
        stack = _tags.__dict__.setdefault("stack", [])
        stack.append(tag)
        try:
            return original(*args, **kwargs)
        finally:
            stack.pop()

    setattr(cls, name, tagged)


def tag_transport() -> None:
    """Every request is booked to the innermost tagged transport method on the thread's stack."""
    channel = redimo_transport.Channel
    for name, tag in [("_put", "publish (XADD)"), ("get_table", "bindings (HGETALL)"),
                      ("_queue_bind", "declare (HSET binding)"), ("_has_queue", "declare (EXISTS)"),
                      ("_ensure_group", "XGROUP CREATE"),
                      ("_get", "deliver (XREADGROUP)"), ("_claim", "claim check (XAUTOCLAIM)"),
                      ("_settle", "ack (XACK+XDEL)"), ("_size", "queue size"), ("_purge", "purge"),
                      ("close", "close"), ("_delete", "queue delete")]:
        tag_method(channel, name, tag)
    tag_method(redimo_transport.Transport, "establish_connection", "connect")
    tag_method(redimo_transport.Transport, "_has_work", IDLE)
    from celery.worker.heartbeat import Heart

    tag_method(Heart, "_send", HEARTBEAT)


@dataclass
class Spent:
    """Per (tag, operation): requests, items touched (keys of a BatchGetItem, actions of a
    TransactWriteItems, else 1), and the capacity DynamoDB Local reported."""

    requests: Counter = field(default_factory=Counter)
    items: Counter = field(default_factory=Counter)
    rcu: Counter = field(default_factory=Counter)
    wcu: Counter = field(default_factory=Counter)
    refused: Counter = field(default_factory=Counter)

    def copy(self) -> "Spent":
        return Spent(*(Counter(getattr(self, name)) for name in ("requests", "items", "rcu", "wcu", "refused")))

    def __sub__(self, other: "Spent") -> "Spent":
        def minus(a: Counter, b: Counter) -> Counter:
            return Counter({k: a[k] - b.get(k, 0) for k in a if a[k] - b.get(k, 0)})
        return Spent(*(minus(getattr(self, n), getattr(other, n)) for n in ("requests", "items", "rcu", "wcu", "refused")))

    def __add__(self, other: "Spent") -> "Spent":
        return Spent(*(getattr(self, n) + getattr(other, n) for n in ("requests", "items", "rcu", "wcu", "refused")))

    def without(self, tag: str) -> "Spent":
        keep = lambda c: Counter({k: v for k, v in c.items() if k[0] != tag})  # noqa: E731
        return Spent(keep(self.requests), keep(self.items), keep(self.rcu), keep(self.wcu), keep(self.refused))

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    @property
    def read_units(self) -> float:
        return sum(self.rcu.values())

    @property
    def write_units(self) -> float:
        return sum(self.wcu.values())

    def aws_rru(self, key: tuple[str, str]) -> float:
        """Strongly consistent reads: DynamoDB Local's figure, but at least 1 RRU per item a
        BatchGetItem asks for (AWS bills a missing item the minimum too)."""
        return max(self.rcu[key], self.items[key]) if key[1] == "BatchGetItem" else self.rcu[key]

    def aws_wru(self, key: tuple[str, str]) -> float:
        """DynamoDB Local's figure for a TransactWriteItems looks like 2 per KB of the whole
        transaction; AWS bills 2 WRU per KB of each action's item: at least 2 per action."""
        return max(self.wcu[key], 2 * self.items[key]) if key[1] == "TransactWriteItems" else self.wcu[key]

    def aws_read_units(self) -> float:
        return sum(self.aws_rru(k) for k in self.requests)

    def aws_write_units(self) -> float:
        return sum(self.aws_wru(k) for k in self.requests)

    def to_json(self) -> dict:
        return {name: {"\t".join(k): v for k, v in getattr(self, name).items()}
                for name in ("requests", "items", "rcu", "wcu", "refused")}

    @classmethod
    def from_json(cls, data: dict) -> "Spent":
        return cls(*(Counter({tuple(k.split("\t")): v for k, v in data[name].items()})
                     for name in ("requests", "items", "rcu", "wcu", "refused")))


class DynamoCounter:
    """Wraps ``botocore.client.BaseClient._make_api_call`` process-wide (as run.py does): every
    DynamoDB request of every boto3 client in the process is counted under the current thread's tag,
    with the capacity its reply reports (``ReturnConsumedCapacity=TOTAL`` is added where missing)."""

    def __init__(self) -> None:
        self.spent = Spent()
        self._lock = threading.Lock()
        self._original: Any = None

    def snapshot(self) -> Spent:
        with self._lock:
            return self.spent.copy()

    def _record(self, operation: str, params: dict, consumed: Any, error: ClientError | None) -> None:
        key = (current_tag(), operation)
        if operation == "BatchGetItem":
            items = sum(len(spec.get("Keys", ())) for spec in params.get("RequestItems", {}).values())
        elif operation in ("TransactWriteItems", "TransactGetItems"):
            items = len(params.get("TransactItems", ()))
        else:
            items = 1
        entries = consumed if isinstance(consumed, list) else [consumed] if consumed else []
        with self._lock:
            self.spent.requests[key] += 1
            self.spent.items[key] += items
            if error is not None:
                self.spent.refused[key] += 1
            for entry in entries:
                units = entry.get("CapacityUnits", 0.0)
                if operation in READ_OPERATIONS:
                    self.spent.rcu[key] += entry.get("ReadCapacityUnits", units)
                else:
                    self.spent.wcu[key] += entry.get("WriteCapacityUnits", units)

    def install(self) -> None:
        original = self._original = botocore.client.BaseClient._make_api_call
        counter = self

        def counted(client: Any, operation_name: str, api_params: dict) -> Any:
            if client.meta.service_model.service_name != "dynamodb":
                return original(client, operation_name, api_params)
            if operation_name in CAPACITY_OPERATIONS and "ReturnConsumedCapacity" not in api_params:
                api_params = {**api_params, "ReturnConsumedCapacity": "TOTAL"}
            try:
                response = original(client, operation_name, api_params)
            except ClientError as error:
                counter._record(operation_name, api_params, error.response.get("ConsumedCapacity"), error)
                raise
            counter._record(operation_name, api_params, response.get("ConsumedCapacity"), None)
            return response

        botocore.client.BaseClient._make_api_call = counted

    def uninstall(self) -> None:
        if self._original is not None:
            botocore.client.BaseClient._make_api_call = self._original

    def settle(self, quiet: float = 0.5, limit: float = 15.0) -> None:
        """Wait until no request other than idle polls has been made for ``quiet`` seconds."""
        deadline = time.monotonic() + limit
        last = self.snapshot().without(IDLE).total
        while time.monotonic() < deadline:
            time.sleep(quiet)
            now = self.snapshot().without(IDLE).total
            if now == last:
                return
            last = now


# -- the app, its one task, and the side channel ------------------------------------------------
def make_app(broker: str, queue: str, options: dict | None = None) -> Celery:
    app = Celery("bench-broker", broker=broker, set_as_current=False)
    app.conf.update(broker_connection_retry_on_startup=True, worker_hijack_root_logger=False,
                    task_default_queue=queue, task_ignore_result=True, result_backend=None,
                    broker_transport_options=dict(options or {}))

    @app.task(name="bench.mark", ignore_result=True, shared=False)
    def mark(tag: str, path: str) -> None:
        started = time.time()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{tag} {started!r}\n".encode())
        finally:
            os.close(fd)

    app.bench_mark = mark
    return app


class Marks:
    """The side channel: lines ``TAG START`` appended by the tasks, read incrementally."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.touch()
        self.seen: dict[str, float] = {}
        self._offset = 0

    def refresh(self) -> None:
        with open(self.path, "rb") as handle:
            handle.seek(self._offset)
            data = handle.read()
        end = data.rfind(b"\n") + 1
        self._offset += end
        for line in data[:end].decode().splitlines():
            tag, started = line.split()
            self.seen[tag] = float(started)

    def wait(self, tags: list[str], timeout: float) -> dict[str, float]:
        deadline = time.monotonic() + timeout
        while True:
            self.refresh()
            if all(tag in self.seen for tag in tags):
                return {tag: self.seen[tag] for tag in tags}
            if time.monotonic() > deadline:
                missing = [tag for tag in tags if tag not in self.seen]
                raise TimeoutError(f"{len(missing)} of {len(tags)} tasks did not run within {timeout:.0f} s")
            time.sleep(0.002)


# -- the worker subprocess side: `celery -A broker worker` imports this module ------------------
def _worker_side() -> Any:
    broker = os.environ.get("BENCH_WORKER_BROKER")
    if not broker:
        return None
    counts = os.environ.get("BENCH_WORKER_COUNTS")
    if counts:
        counter = DynamoCounter()
        counter.install()
        tag_transport()
        parent = os.getpid()

        def dump() -> None:
            while os.getpid() == parent:
                snapshot = {"time": time.time(), "spent": counter.snapshot().to_json()}
                Path(counts + ".tmp").write_text(json.dumps(snapshot))
                os.replace(counts + ".tmp", counts)
                time.sleep(0.25)

        threading.Thread(target=dump, daemon=True, name="bench-counts").start()
    return make_app(broker, os.environ["BENCH_WORKER_QUEUE"], json.loads(os.environ.get("BENCH_WORKER_OPTIONS", "{}")))


if __name__ != "__main__":
    app = _worker_side()


# -- the measurements ---------------------------------------------------------------------------
@dataclass
class Result:
    label: str
    broker: str
    dynamodb: bool = False
    publish_rate: float | None = None
    consume_rate: float | None = None
    throughput_spent: Spent | None = None  # the whole throughput phase (publishing + consuming)
    tasks: int = 0
    latencies: list[float] = field(default_factory=list)
    publish_calls: list[float] = field(default_factory=list)
    per_task: list[Spent] = field(default_factory=list)  # latency windows, idle polls removed
    idle: Spent | None = None
    idle_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    note: str = ""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def failure(result: Result, phase: str) -> None:
    lines = traceback.format_exc().strip().splitlines()
    head = "\n".join(lines[-12:])
    result.errors.append(f"{phase}: {head}")
    log(f"   {phase} FAILED:\n{traceback.format_exc()}")


def publish_burst(app: Any, marks: Marks, n: int, result: Result, counter: DynamoCounter | None) -> list[str]:
    """Warm-up task (untimed, opens the connection and declares the queue), then N tasks, timed."""
    warm = f"warm-{uuid.uuid4().hex[:8]}"
    app.bench_mark.apply_async((warm, str(marks.path)))
    tags = [f"burst-{uuid.uuid4().hex[:8]}-{i}" for i in range(n)]
    started = time.perf_counter()
    for tag in tags:
        app.bench_mark.apply_async((tag, str(marks.path)))
    result.publish_rate = n / (time.perf_counter() - started)
    result.tasks = n
    log(f"   published {n} tasks: {result.publish_rate:.0f} tasks/s")
    return [warm, *tags]


def consume_burst(marks: Marks, tags: list[str], result: Result, timeout: float) -> None:
    starts = sorted(marks.wait(tags, timeout).values())
    result.consume_rate = (len(starts) - 1) / (starts[-1] - starts[0])
    log(f"   consumed: {result.consume_rate:.0f} tasks/s")


def measure_latency(app: Any, marks: Marks, samples: int, result: Result, snapshot: Callable[[], Spent] | None,
                    rng: random.Random) -> None:
    """``snapshot``: every DynamoDB request so far (None: not a DynamoDB broker); the worker is idle
    whenever it is called."""
    time.sleep(3.0)
    for k in range(samples):
        before = snapshot() if snapshot else None
        tag = f"lat-{uuid.uuid4().hex[:8]}-{k}"
        called = time.time()
        app.bench_mark.apply_async((tag, str(marks.path)))
        result.publish_calls.append(time.time() - called)
        started = marks.wait([tag], 60)[tag]
        result.latencies.append(started - called)
        time.sleep(max(0.0, started + rng.uniform(1.0, 4.0) - time.time()))
        if snapshot:
            result.per_task.append((snapshot() - before).without(IDLE).without(HEARTBEAT))
    log(f"   pickup latency over {samples}: median {statistics.median(result.latencies) * 1000:.0f} ms, "
        f"p90 {p90(result.latencies) * 1000:.0f} ms")


def measure_idle(counter: DynamoCounter, seconds: float, result: Result) -> None:
    time.sleep(3.0)
    before, started = counter.snapshot(), time.monotonic()
    time.sleep(seconds)
    result.idle, result.idle_seconds = counter.snapshot() - before, time.monotonic() - started
    log(f"   idle {result.idle_seconds:.1f} s: {result.idle.total} requests")


def in_process(label: str, broker: str, options: dict | None, plan: argparse.Namespace, marks: Marks,
               counter: DynamoCounter, dynamodb: bool, throughput: bool = True, latency_samples: int | None = None,
               ) -> Result:
    from celery.contrib.testing.worker import start_worker

    result = Result(label, broker, dynamodb)
    log(f"== {label}: {broker} {options or ''}")
    app = make_app(broker, f"bench-{uuid.uuid4().hex[:8]}", options)
    rng = random.Random(label)
    tags: list[str] = []
    before = counter.snapshot()
    try:
        if throughput:
            tags = publish_burst(app, marks, plan.tasks, result, counter)
        with start_worker(app, pool="threads", concurrency=4, perform_ping_check=False, shutdown_timeout=60,
                          loglevel="ERROR"):
            if not tags:  # open the publishing connection and declare the queue outside the measured windows
                warm = f"warm-{uuid.uuid4().hex[:8]}"
                app.bench_mark.apply_async((warm, str(marks.path)))
                marks.wait([warm], 60)
            if tags:
                try:
                    consume_burst(marks, tags, result, timeout=600)
                    counter.settle()
                    result.throughput_spent = counter.snapshot() - before
                except Exception:
                    failure(result, "throughput")
            try:
                measure_latency(app, marks, latency_samples or plan.samples, result,
                                counter.snapshot if dynamodb else None, rng)
            except Exception:
                failure(result, "pickup latency")
            if dynamodb:
                measure_idle(counter, plan.idle, result)
    except Exception:
        failure(result, "worker")
    finally:
        app.close()
    return result


@contextlib.contextmanager
def worker_process(broker: str, queue: str, counts: Path, logfile: Path) -> Iterator[subprocess.Popen]:
    env = {**os.environ, "BENCH_WORKER_BROKER": broker, "BENCH_WORKER_QUEUE": queue,
           "BENCH_WORKER_COUNTS": str(counts), "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    with open(logfile, "wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "celery", "-A", "broker", "worker", "-P", "prefork", "-c", "2",
                                    "-Q", queue, "-n", f"bench-{queue}@%h", "--loglevel=WARNING"],
                                   cwd=HERE, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)  # warm shutdown
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def read_counts(path: Path, timeout: float = 30) -> tuple[float, Spent]:
    """The worker process's counts, as it wrote them (every 0.25 s) after this call began."""
    asked = time.time()
    deadline = time.monotonic() + timeout
    while True:
        try:
            data = json.loads(path.read_text())
            if data["time"] >= asked:
                return data["time"], Spent.from_json(data["spent"])
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"the worker process wrote no counts to {path} for {timeout:.0f} s")
        time.sleep(0.05)


def prefork(label: str, broker: str, plan: argparse.Namespace, marks: Marks, counter: DynamoCounter,
            workdir: Path) -> Result:
    result = Result(label, broker, True, note="subprocess")
    log(f"== {label}: {broker}")
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    app = make_app(broker, queue)
    counts, logfile = workdir / f"{queue}.counts.json", workdir / f"{queue}.log"
    rng = random.Random(label)
    try:
        tags = publish_burst(app, marks, plan.tasks, result, counter)
        with worker_process(broker, queue, counts, logfile) as process:
            try:
                consume_burst(marks, tags, result, timeout=600)
            except Exception:
                failure(result, "throughput")
            if process.poll() is not None:
                raise RuntimeError(f"celery worker exited {process.returncode}: "
                                   + logfile.read_text()[-2000:])
            try:
                measure_latency(app, marks, plan.prefork_samples, result,
                                lambda: counter.snapshot() + read_counts(counts)[1], rng)
            except Exception:
                failure(result, "pickup latency")
            time.sleep(3.0)
            t0, s0 = read_counts(counts)
            time.sleep(plan.idle)
            t1, s1 = read_counts(counts)
            result.idle, result.idle_seconds = s1 - s0, t1 - t0
            log(f"   idle {result.idle_seconds:.1f} s: {result.idle.total} requests (counted in the worker process)")
        lines = logfile.read_text().splitlines()
        starts = [i for i, line in enumerate(lines) if line.startswith("Traceback") or " ERROR/" in line]
        if starts:
            first = max(0, starts[0] - 1)
            end = next((i for i in range(starts[0] + 1, len(lines)) if lines[i].startswith("[")), len(lines))
            block = lines[first:end]
            shown = "\n".join(block if len(block) <= 26 else [*block[:5], "  ...", *block[-20:]])
            result.errors.append(f"the celery worker's log has {len(starts)} error(s); the first:\n{shown}")
    except Exception:
        failure(result, "prefork worker")
    finally:
        app.close()
    return result


# -- the servers ---------------------------------------------------------------------------------
# -- output ----------------------------------------------------------------------------------------
def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def fmt(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def per_minute(spent: Spent, seconds: float) -> tuple[float, float, float]:
    scale = 60.0 / seconds
    return spent.total * scale, spent.aws_read_units() * scale, spent.aws_write_units() * scale


def dollars(rru_per_min: float, wru_per_min: float) -> float:
    return (rru_per_min * READ_PRICE + wru_per_min * WRITE_PRICE) * MINUTES_PER_MONTH


def mean_spent(spents: list[Spent]) -> dict[tuple[str, str], tuple[float, float, float, float, str]]:
    """(tag, op) -> (mean requests, mean items, mean RCU, mean WCU, range of requests)."""
    keys = sorted({k for s in spents for k in s.requests})
    out = {}
    for key in keys:
        counts = [s.requests[key] for s in spents]
        spread = f"{min(counts)}–{max(counts)}" if min(counts) != max(counts) else ""
        out[key] = (statistics.mean(counts), statistics.mean(s.items[key] for s in spents),
                    statistics.mean(s.rcu[key] for s in spents), statistics.mean(s.wcu[key] for s in spents), spread)
    return out


def summary_table(results: list[Result]) -> str:
    lines = ["| broker / worker | publish (tasks/s) | consume (tasks/s) | idle pickup latency median (ms) "
             "| p90 (ms) | samples | DynamoDB requests per task | $ per million tasks | idle requests / min "
             "| idle RRU / min | idle WRU / min | idle $ / month |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lat = r.latencies
        per_task = (fmt(statistics.mean(s.total for s in r.per_task), 1) if r.per_task else
                    "—" if not r.dynamodb else "(see below)")
        per_million = (f"${statistics.mean(s.aws_read_units() * READ_PRICE + s.aws_write_units() * WRITE_PRICE for s in r.per_task) * 1e6:,.2f}"
                       if r.per_task else "—")
        if r.idle is not None and r.idle_seconds:
            req, rru, wru = per_minute(r.idle, r.idle_seconds)
            idle = [fmt(req), fmt(rru), fmt(wru), f"${dollars(rru, wru):.2f}"]
        else:
            idle = ["—"] * 4 if not r.dynamodb else ["FAILED"] + ["—"] * 3
        lines.append(f"| {r.label} | {fmt(r.publish_rate)} | {fmt(r.consume_rate)} "
                     f"| {fmt(statistics.median(lat) * 1000) if lat else '—'} | {fmt(p90(lat) * 1000) if lat else '—'} "
                     f"| {len(lat)} | {per_task} | {per_million} | " + " | ".join(idle) + " |")
    return "\n".join(lines)


def breakdown_table(title: str, spents: list[Spent], per: str) -> str:
    rows = mean_spent(spents)
    lines = [f"**{title}**", "", f"| transport method | DynamoDB operation | requests {per} | items {per} "
             f"| RCU {per} (Local) | WCU {per} (Local) | RRU {per} (AWS est.) | WRU {per} (AWS est.) |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for (tag, op), (req, items, rcu, wcu, spread) in sorted(rows.items(), key=lambda kv: -kv[1][0]):
        rru = statistics.mean(s.aws_rru((tag, op)) for s in spents)
        wru = statistics.mean(s.aws_wru((tag, op)) for s in spents)
        lines.append(f"| {tag} | {op} | {short(req)}{f' ({spread})' if spread else ''} | {short(items)} "
                     f"| {short(rcu)} | {short(wcu)} | {short(rru)} | {short(wru)} |")
    total = statistics.mean(s.total for s in spents)
    rru = statistics.mean(s.aws_read_units() for s in spents)
    wru = statistics.mean(s.aws_write_units() for s in spents)
    lines.append(f"| **total** | | **{short(total)}** | | {short(statistics.mean(s.read_units for s in spents))} "
                 f"| {short(statistics.mean(s.write_units for s in spents))} | **{short(rru)}** | **{short(wru)}** |")
    lines += ["", f"At on-demand prices: ${(rru * READ_PRICE + wru * WRITE_PRICE) * 1e6:,.2f} per million tasks."]
    return "\n".join(lines)


def short(value: float) -> str:
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return text or "0"


def idle_table(title: str, spent: Spent, seconds: float) -> str:
    scale = 60.0 / seconds
    lines = [f"**{title}** (over {seconds:.1f} s)", "", "| transport method | DynamoDB operation | requests / min "
             "| requests / s | items / min | RCU / min (Local) | WCU / min (Local) | RRU / min (AWS est.) "
             "| WRU / min (AWS est.) |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for (tag, op), count in sorted(spent.requests.items(), key=lambda kv: -kv[1]):
        key = (tag, op)
        lines.append(f"| {tag} | {op} | {count * scale:,.1f} | {count / seconds:,.2f} | {spent.items[key] * scale:,.1f} "
                     f"| {spent.rcu[key] * scale:,.1f} | {spent.wcu[key] * scale:,.1f} "
                     f"| {spent.aws_rru(key) * scale:,.1f} | {spent.aws_wru(key) * scale:,.1f} |")
    return "\n".join(lines)


NOTES = """\
How to read it:

- **publish**: N `bench.mark.apply_async(...)` from the main thread, one after another, before any worker
  runs (after one untimed warm-up publish). **consume**: a worker is then started; the rate is the N gaps
  between the N+1 task start times (the warm-up task and the N), so worker start-up is not included. The
  in-process worker is `start_worker(app, pool="threads", concurrency=4, perform_ping_check=False)`, which
  runs without heartbeat, mingle and gossip (remote control on); Celery's default prefetch (4 × 4).
- **idle pickup latency**: the worker idle ≥ 3 s, then one task; latency = the task's `time.time()` at its
  start − `time.time()` just before `apply_async` (so the publish itself is included); the next task
  follows a random 1–4 s after the previous one started. The redimo transport backs off from
  `min_polling_interval` (5 ms) to `polling_interval` within ~0.2 s, so every sample finds it at its
  full interval: expect ≈ interval / 2 + one poll + one read. kombu's SQLAlchemy transport polls every
  `polling_interval` = 1 s (kombu's default for virtual transports, not changed here); redis blocks on BRPOP.
- **no result backend** for any broker (`task_ignore_result=True`, `result_backend=None`): the broker
  alone is measured; completion is seen through a side-channel file the task appends to.
- **DynamoDB requests per task** (redimo): every request in the process, counted by a wrapper around
  botocore's `BaseClient._make_api_call` and booked to the transport method that made it; per latency
  sample, the window from just before the publish to just before the next one, less the idle polls
  (`_has_work`'s XLEN) and worker heartbeats in it, which an idle worker makes anyway. The breakdown is below.
- **idle cost**: every DynamoDB request of a worker that has nothing to do, per minute, at on-demand
  prices in us-east-1: **$0.125 per million read request units, $0.625 per million write request units**,
  a month = 730 h. A strongly consistent read of an item ≤ 4 KB is 1 RRU; Redimo reads strongly
  consistently, and a BatchGetItem is billed per item asked for (a missing item at the minimum), so an
  idle poll of k streams is k RRU. WRU: AWS bills 2 WRU per KB of each action's item in a
  TransactWriteItems; DynamoDB Local's figure looks like 2 per KB of the whole transaction, so the
  "AWS est." columns take the larger of it and 2 per action (a lower bound when several items exceed
  1 KB). Storage is not included (a few KB). "items" = keys of a BatchGetItem, actions of a
  TransactWriteItems, else 1.
- The prefork row is a `celery -A broker worker -P prefork -c 2` subprocess with Celery's defaults
  (heartbeat every 2 s, remote control; Celery runs mingle and gossip only on amqp and redis
  transports, so not here), its requests counted in the worker process by the same wrapper and added
  to the publishing process's for the per-task figures; its throughput phase's requests are not split
  out (they are in the subprocess only while it runs).
- A Celery worker consumes its task queue and its remote-control (pidbox) queue on two kombu channels;
  an idle round is one BatchGetItem of the heads (XLEN) of both, run from the worker's event loop.
- Celery acks a task (`acks_late` off) from the thread that runs it; with the threads pool, up to 4
  threads XACK+XDEL on the same stream at once, and Redimo's optimistic MULTI/EXEC refuses all but one
  (the "Refused" line below): each refusal is retried, costing its reads and the transaction again.
  The prefork pool acks from the one consumer thread of the main process.
- Wall times are against DynamoDB Local and SQLite on this machine, not AWS latencies; request and
  capacity counts carry over to AWS.
"""


def markdown(results: list[Result], args: argparse.Namespace, elapsed: float, sqla_version: str) -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    parts = [
        "# Celery brokers: redimo:// vs redis:// vs SQLAlchemy (SQLite)",
        "",
        f"Run on {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z} with "
        f"`benchmarks/celery/broker.py{' --quick' if args.quick else ''}` (N = {args.tasks} tasks, "
        f"{args.samples} latency samples, idle measured over {args.idle:.0f} s; {elapsed / 60:.1f} min in all).",
        f"Machine: {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python "
        f"{platform.python_version()}, SQLAlchemy {sqla_version}; load average at the end {load}. The machine may "
        "have been busy with other work during the run, so rates and latencies are indicative; request and "
        "capacity counts are exact.",
        "",
        summary_table(results),
        "",
        NOTES,
    ]
    for r in results:
        if r.per_task:
            parts += [breakdown_table(f"{r.label}: one task (publish + deliver + ack), mean over {len(r.per_task)} "
                                      f"latency samples (range where they differ)", r.per_task, "/ task"), ""]
    for r in results:
        if r.dynamodb and r.throughput_spent is not None and r.tasks:
            scaled = Spent(*(Counter({k: v / (r.tasks + 1) for k, v in getattr(r.throughput_spent, n).items()})
                             for n in ("requests", "items", "rcu", "wcu", "refused")))
            parts += [breakdown_table(f"{r.label}: throughput phase, per task ({r.tasks + 1} tasks published "
                                      "up front, then consumed; idle polls included)", [scaled], "/ task"), ""]
    for r in results:
        if r.idle is not None and r.idle_seconds:
            parts += [idle_table(f"{r.label}: idle worker", r.idle, r.idle_seconds), ""]
    refused = {r.label: dict(r.throughput_spent.refused) for r in results
               if r.throughput_spent is not None and r.throughput_spent.refused}
    if refused:
        parts += ["Refused (error) DynamoDB replies during throughput: " + json.dumps(
            {label: {" ".join(k): v for k, v in c.items()} for label, c in refused.items()}, ensure_ascii=False), ""]
    errors = [(r.label, e) for r in results for e in r.errors]
    if errors:
        parts += ["## Errors seen (the measurements above are complete unless a cell says FAILED or is missing)", ""]
        for label, error in errors:
            parts += [f"{label}:", "", "```", error, "```", ""]
    return "\n".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N=100, 8 latency samples, 10 s idle")
    parser.add_argument("--only", choices=["redimo", "redis", "sqla"], action="append", help="only this broker")
    parser.add_argument("--no-prefork", action="store_true", help="skip the celery worker -P prefork subprocess")
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/celery/broker-results.md")
    args = parser.parse_args()
    args.tasks = 100 if args.quick else 500
    args.samples = 8 if args.quick else 20
    args.slow_samples = 4 if args.quick else 10  # polling_interval=1.0
    args.prefork_samples = 4 if args.quick else 10
    args.idle = 10.0 if args.quick else 30.0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    logging.getLogger("celery").setLevel(logging.ERROR)

    from redimo import Gateway
    from redimo.gateway import make_client
    from redimo.local import dynamodb_local
    from redimo.table import create_table
    try:
        import sqlalchemy
        sqla_version = sqlalchemy.__version__
    except ImportError:
        sqla_version = None

    started = time.monotonic()
    counter = DynamoCounter()
    counter.install()
    tag_transport()
    chosen = set(args.only or ["redimo", "redis", "sqla"])
    results: list[Result] = []
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="broker-bench-")))
        marks = Marks(workdir / "marks.txt")
        if "redimo" in chosen:
            endpoint = stack.enter_context(dynamodb_local())
            create_table(Gateway(TABLE, make_client(endpoint_url=endpoint)))
            log(f"DynamoDB Local at {endpoint}")

            def redimo_url() -> str:
                return (f"redimo://{TABLE}?namespace=bench-{uuid.uuid4().hex[:8]}"
                        f"&endpoint_url={quote(endpoint, safe='')}")

            results.append(in_process("redimo:// (threads ×4, polling 0.1 s)", redimo_url(), None, args, marks,
                                      counter, True))
            results.append(in_process("redimo:// (threads ×4, polling 1.0 s)", redimo_url(),
                                      {"polling_interval": 1.0}, args, marks, counter, True, throughput=False,
                                      latency_samples=args.slow_samples))
            if not args.no_prefork:
                results.append(prefork("redimo:// (celery worker -P prefork -c 2, polling 0.1 s)", redimo_url(),
                                       args, marks, counter, workdir))
        if "redis" in chosen:
            port = stack.enter_context(redis_server())
            log(f"redis-server at 127.0.0.1:{port}")
            results.append(in_process("redis:// (threads ×4)", f"redis://127.0.0.1:{port}/0", None, args, marks,
                                      counter, False))
        if "sqla" in chosen:
            if sqla_version is None:
                result = Result("sqla+sqlite:// (threads ×4, polling 1 s)", "sqla+sqlite://")
                result.errors.append("sqlalchemy is not installed: .venv/bin/pip install sqlalchemy")
                results.append(result)
            else:
                results.append(in_process("sqla+sqlite:// (threads ×4, polling 1 s)",
                                          f"sqla+sqlite:///{workdir / 'broker.sqlite'}", None, args, marks,
                                          counter, False))
    counter.uninstall()
    text = markdown(results, args, time.monotonic() - started, sqla_version or "not installed")
    print(text)
    if not args.no_write:
        (HERE / "broker-results.md").write_text(text)
        log(f"written to {(HERE / 'broker-results.md').relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
