"""Compare Celery result backends on the same worker and the same stores.

    .venv/bin/python benchmarks/celery/run.py [--quick] [--runs N] [--no-write]

Starts DynamoDB Local and a redis-server of its own (free ports, stopped on exit) and, for each of

* ``redimo://`` (this project, on DynamoDB Local),
* Celery's own ``dynamodb://`` backend (boto3, on the same DynamoDB Local),
* Celery's ``redis://`` backend (db 1 of the same redis-server),

runs the same in-process worker (``start_worker(app, pool="threads", concurrency=4)``) with the same
broker (db 0 of the redis-server), so only the result backend differs, and measures:

* storing 1,000 results (``backend.store_result``, from the main thread, one after another),
* fetching them back (``backend.get_task_meta(id, cache=False)``, likewise),
* 1,000 tasks end to end (1,000 ``add.delay`` from the main thread, then ``.get()`` of each),
* a 100-task group joined (``group(...)().get()``),
* a 100-part chord (``chord(header)(callback).get()``).

Each is run several times; the table shows the median wall time and, for the DynamoDB backends, the
DynamoDB requests by operation and the capacity DynamoDB Local reported, per run (mean over runs).
Requests are counted for every boto3 DynamoDB client in the process (a wrapper around botocore's
``BaseClient._make_api_call``), so the worker threads' own backends are included; it also asks for
``ReturnConsumedCapacity=TOTAL`` on requests that do not ask for it (Celery's backend does not).
For redimo, the count is cross-checked against the sum of every Redimo gateway's own counters.

The table is printed and written to ``benchmarks/celery/results.md`` (unless ``--no-write``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import logging
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import quote

# Never reach for real credentials: everything here talks to DynamoDB Local.
os.environ["AWS_ACCESS_KEY_ID"] = "bench"
os.environ["AWS_SECRET_ACCESS_KEY"] = "bench"
os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = "us-east-1"

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
os.environ.setdefault("REDIMO_DYNAMODB_LOCAL_DIR", str(ROOT / ".cache" / "dynamodb-local"))

import botocore.client  # noqa: E402
import botocore.endpoint  # noqa: E402
from botocore import xform_name  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from celery import Celery, chord, group, states  # noqa: E402
from celery.contrib.testing.worker import start_worker  # noqa: E402

import redimo.gateway  # noqa: E402
from redimo import Gateway  # noqa: E402
from redimo.gateway import Usage, make_client  # noqa: E402
from redimo.local import dynamodb_local, free_port  # noqa: E402
from redimo.table import create_table  # noqa: E402

REDIMO_TABLE = "celery-bench"
CELERY_TABLE = "celery_results"
CAPACITY_OPERATIONS = frozenset({
    "GetItem", "PutItem", "UpdateItem", "DeleteItem", "BatchGetItem", "BatchWriteItem", "Query", "Scan",
    "TransactGetItems", "TransactWriteItems", "ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction"})
READ_OPERATIONS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
GET_TIMEOUT = 300


# -- counting every DynamoDB request in the process ----------------------------------------------
@dataclass
class Spent:
    requests: Counter = field(default_factory=Counter)
    read_units: float = 0.0
    write_units: float = 0.0
    unreported: int = 0  # capacity-bearing requests whose reply carried no ConsumedCapacity
    refused: Counter = field(default_factory=Counter)  # error replies by code (and cancellation reason)
    attempts: int = 0  # HTTP requests sent (botocore's own retries included)

    def copy(self) -> "Spent":
        return Spent(Counter(self.requests), self.read_units, self.write_units, self.unreported,
                     Counter(self.refused), self.attempts)

    def __sub__(self, other: "Spent") -> "Spent":
        return Spent(self.requests - other.requests, self.read_units - other.read_units,
                     self.write_units - other.write_units, self.unreported - other.unreported,
                     self.refused - other.refused, self.attempts - other.attempts)

    @property
    def total(self) -> int:
        return sum(self.requests.values())


class DynamoCounter:
    """Wraps ``botocore.client.BaseClient._make_api_call`` process-wide: every DynamoDB request of
    every boto3 client (Redimo's, Celery's, each worker thread's) is counted with the capacity its
    reply reports. Requests that can report capacity and do not ask for it are made to ask."""

    def __init__(self) -> None:
        self.spent = Spent()
        self._lock = threading.Lock()
        self._original: Any = None

    def snapshot(self) -> Spent:
        with self._lock:
            return self.spent.copy()

    def _record(self, operation: str, consumed: Any, error: ClientError | None = None) -> None:
        entries = consumed if isinstance(consumed, list) else [consumed] if consumed else []
        with self._lock:
            self.spent.requests[operation] += 1
            if error is not None:
                code = error.response.get("Error", {}).get("Code", "?").removesuffix("Exception")
                reasons = {r.get("Code") for r in error.response.get("CancellationReasons") or []} - {"None", None}
                self.spent.refused[f"{operation} {code}" + (f" ({', '.join(sorted(reasons))})" if reasons else "")] += 1
            elif operation in CAPACITY_OPERATIONS and not entries:
                self.spent.unreported += 1  # error replies carry none on DynamoDB Local: not counted
            for entry in entries:
                if "ReadCapacityUnits" in entry or "WriteCapacityUnits" in entry:
                    self.spent.read_units += entry.get("ReadCapacityUnits", 0.0)
                    self.spent.write_units += entry.get("WriteCapacityUnits", 0.0)
                elif operation in READ_OPERATIONS:
                    self.spent.read_units += entry.get("CapacityUnits", 0.0)
                else:
                    self.spent.write_units += entry.get("CapacityUnits", 0.0)

    def install(self) -> None:
        original = self._original = botocore.client.BaseClient._make_api_call
        send = self._original_send = botocore.endpoint.Endpoint._send
        counter = self

        def sent(endpoint: Any, request: Any) -> Any:
            if endpoint._endpoint_prefix == "dynamodb":
                with counter._lock:
                    counter.spent.attempts += 1
            return send(endpoint, request)

        def counted(client: Any, operation_name: str, api_params: dict) -> Any:
            if client.meta.service_model.service_name != "dynamodb":
                return original(client, operation_name, api_params)
            if operation_name in CAPACITY_OPERATIONS and "ReturnConsumedCapacity" not in api_params:
                api_params = {**api_params, "ReturnConsumedCapacity": "TOTAL"}
            try:
                response = original(client, operation_name, api_params)
            except ClientError as error:
                counter._record(operation_name, error.response.get("ConsumedCapacity"), error)
                raise
            counter._record(operation_name, response.get("ConsumedCapacity"))
            return response

        botocore.client.BaseClient._make_api_call = counted
        botocore.endpoint.Endpoint._send = sent

    def uninstall(self) -> None:
        if self._original is not None:
            botocore.client.BaseClient._make_api_call = self._original
            botocore.endpoint.Endpoint._send = self._original_send

    def settle(self, quiet: float = 0.3, limit: float = 10.0) -> None:
        """Wait until no DynamoDB request has been made for ``quiet`` seconds (the worker may still be
        finishing a task's bookkeeping after its result was read), at most ``limit`` seconds."""
        deadline = time.monotonic() + limit
        last = self.snapshot().total
        while time.monotonic() < deadline:
            time.sleep(quiet)
            now = self.snapshot().total
            if now == last:
                return
            last = now


class GatewayRegistry:
    """Every :class:`redimo.Gateway` built in the process (each worker thread's backend has its own
    client), to sum their own usage counters for the cross-check."""

    def __init__(self) -> None:
        self.gateways: list[Gateway] = []
        original = redimo.gateway.Gateway.__init__
        registry = self

        def init(gateway: Gateway, *args: Any, **kwargs: Any) -> None:
            original(gateway, *args, **kwargs)
            registry.gateways.append(gateway)

        redimo.gateway.Gateway.__init__ = init

    def usage(self) -> Usage:
        total = Usage()
        for gateway in list(self.gateways):
            with gateway._lock:
                total.requests.update(gateway.usage.requests)
                total.read_units += gateway.usage.read_units
                total.write_units += gateway.usage.write_units
        return total


# -- the servers -------------------------------------------------------------------------------
@contextlib.contextmanager
def redis_server() -> Iterator[int]:
    port = free_port()
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--protected-mode", "no"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                    probe.sendall(b"PING\r\n")
                    if probe.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {port}")
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


# -- the apps ----------------------------------------------------------------------------------
@dataclass
class BackendSetup:
    label: str
    url: str
    dynamodb: bool
    app: Any = None


def make_app(setup: BackendSetup, broker: str) -> Celery:
    app = Celery(f"bench-{setup.label.split()[0]}", broker=broker, backend=setup.url, set_as_current=False)
    app.conf.update(broker_connection_retry_on_startup=True, worker_hijack_root_logger=False,
                    task_default_queue=f"bench-{uuid.uuid4().hex[:8]}")

    @app.task(name="bench.add", shared=False)
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="bench.tsum", shared=False)
    def tsum(values: list) -> int:
        return sum(values)

    app.bench_add, app.bench_tsum = add, tsum
    return app


# -- the scenarios -----------------------------------------------------------------------------
@dataclass
class Scenario:
    name: str
    run: Callable[[Any, dict], None]  # (app, state shared between scenarios of one run)


def store_results(app: Any, shared: dict, n: int) -> None:
    backend = app.backend
    ids = shared["ids"] = [uuid.uuid4().hex for _ in range(n)]
    for index, task_id in enumerate(ids):
        backend.store_result(task_id, index, states.SUCCESS)


def fetch_results(app: Any, shared: dict, n: int) -> None:
    backend = app.backend
    backend._cache.clear()
    for index, task_id in enumerate(shared["ids"]):
        meta = backend.get_task_meta(task_id, cache=False)
        assert meta["status"] == states.SUCCESS and meta["result"] == index, meta


def tasks_end_to_end(app: Any, shared: dict, n: int) -> None:
    results = [app.bench_add.delay(i, i) for i in range(n)]
    for i, result in enumerate(results):
        assert result.get(timeout=GET_TIMEOUT) == 2 * i


def group_join(app: Any, shared: dict, n: int) -> None:
    assert group(app.bench_add.s(i, i) for i in range(n))().get(timeout=GET_TIMEOUT) == [2 * i for i in range(n)]


def chord_join(app: Any, shared: dict, n: int) -> None:
    result = chord(app.bench_add.s(i, i) for i in range(n))(app.bench_tsum.s())
    assert result.get(timeout=GET_TIMEOUT) == n * (n - 1)


def scenarios(results: int, tasks: int, parts: int) -> list[tuple[str, int, Callable[[Any, dict], None]]]:
    """(name, items, action): the table divides the wall time by ``items`` for its ms / item."""
    return [
        (f"store {results:,} results (store_result)", results, lambda app, s: store_results(app, s, results)),
        (f"fetch {results:,} results (get_task_meta)", results, lambda app, s: fetch_results(app, s, results)),
        (f"{tasks:,} tasks: delay, then .get() each", tasks, lambda app, s: tasks_end_to_end(app, s, tasks)),
        (f"group of {parts} joined", parts, lambda app, s: group_join(app, s, parts)),
        (f"chord of {parts} parts + callback", parts, lambda app, s: chord_join(app, s, parts)),
    ]


@dataclass
class Measured:
    scenario: str
    items: int
    backend: str
    dynamodb: bool
    times: list[float] = field(default_factory=list)
    spent: list[Spent] = field(default_factory=list)
    error: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def run_backend(setup: BackendSetup, broker: str, counter: DynamoCounter, registry: GatewayRegistry,
                plan: list[tuple[str, Callable]], runs: int, warmup: Callable[[Any], None],
                checks: list[str]) -> list[Measured]:
    app = setup.app = make_app(setup, broker)
    measured = [Measured(name, items, setup.label, setup.dynamodb) for name, items, _ in plan]
    log(f"== {setup.label}: {setup.url}")
    with start_worker(app, pool="threads", concurrency=4, perform_ping_check=False, shutdown_timeout=60,
                      loglevel="ERROR"):
        _ = app.backend.client if setup.dynamodb else None  # the main thread's backend (Celery's makes its table)
        warmup(app)
        counter.settle()
        for run in range(runs):
            shared: dict = {}
            for (name, _, action), result in zip(plan, measured):
                if result.error:
                    continue
                before, gateway_before = counter.snapshot(), registry.usage()
                started = time.perf_counter()
                try:
                    action(app, shared)
                except Exception as error:  # report it, and carry on with the other measurements
                    import traceback
                    result.error = "".join(traceback.format_exception_only(type(error), error)).strip()
                    log(f"   {name}: FAILED\n{traceback.format_exc()}")
                    counter.settle()
                    continue
                elapsed = time.perf_counter() - started
                counter.settle()
                spent = counter.snapshot() - before
                result.times.append(elapsed)
                result.spent.append(spent)
                if setup.label.startswith("redimo"):
                    checks.append(cross_check(name, spent, registry.usage() - gateway_before))
                log(f"   run {run + 1}/{runs} {name}: {elapsed:.2f} s, {spent.total} DynamoDB requests")
    app.close()
    return measured


def cross_check(name: str, counted: Spent, gateway: Usage) -> str:
    ours = Counter({xform_name(op): count for op, count in counted.requests.items()})
    same = (ours == +gateway.requests and abs(counted.read_units - gateway.read_units) < 1e-6
            and abs(counted.write_units - gateway.write_units) < 1e-6)
    return "" if same else (f"{name}: botocore count {dict(ours)} RCU {counted.read_units:g} WCU "
                            f"{counted.write_units:g}; Redimo gateways {dict(+gateway.requests)} "
                            f"RCU {gateway.read_units:g} WCU {gateway.write_units:g}")


def warmup(app: Any) -> None:
    """Untimed: every worker thread builds its backend (Celery's DynamoDB backend describes its table
    then), connections open, code paths are imported."""
    results = [app.bench_add.delay(i, i) for i in range(40)]
    for result in results:
        result.get(timeout=GET_TIMEOUT)
    group(app.bench_add.s(i, i) for i in range(10))().get(timeout=GET_TIMEOUT)
    chord(app.bench_add.s(i, i) for i in range(10))(app.bench_tsum.s()).get(timeout=GET_TIMEOUT)


# -- output ------------------------------------------------------------------------------------
def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def number(value: float) -> str:
    return f"{value:,.0f}" if abs(value - round(value)) < 0.05 else f"{value:,.1f}"


def requests_cell(spents: list[Spent]) -> str:
    total = Counter()
    for spent in spents:
        total.update(spent.requests)
    runs = len(spents)
    cell = ", ".join(f"{op} {number(count / runs)}" for op, count in sorted(total.items(), key=lambda kv: -kv[1]))
    refused = Counter()
    for spent in spents:
        refused.update(spent.refused)
    if refused:
        cell += "; of which refused: " + ", ".join(f"{what} {number(count / runs)}" for what, count in
                                                     sorted(refused.items(), key=lambda kv: -kv[1]))
    retries = sum(spent.attempts - spent.total for spent in spents)
    if retries:
        cell += f"; botocore retries {number(retries / runs)}"
    unreported = sum(spent.unreported for spent in spents)
    if unreported:
        cell += f"; {number(unreported / runs)} successful requests reported no capacity"
    return cell


def table_markdown(results: list[Measured]) -> str:
    lines = ["| scenario | backend | median s | ms / item | DynamoDB requests (per run, by operation) "
             "| total requests | RCU | WCU |",
             "|---|---|---:|---:|---|---:|---:|---:|"]
    previous = None
    for result in results:
        scenario = result.scenario if result.scenario != previous else ""
        previous = result.scenario
        if result.error:
            lines.append(f"| {scenario} | {result.backend} | FAILED | | `{result.error[:200]}` | | | |")
            continue
        runs = len(result.spent)
        if result.dynamodb:
            requests = requests_cell(result.spent)
            total = number(sum(s.total for s in result.spent) / runs)
            rcu = number(sum(s.read_units for s in result.spent) / runs)
            wcu = number(sum(s.write_units for s in result.spent) / runs)
        else:
            requests = total = rcu = wcu = "-"
        lines.append(f"| {scenario} | {result.backend} | {result.median:.2f} | {result.median / result.items * 1000:.2f} "
                     f"| {requests} | {total} | {rcu} | {wcu} |")
    return "\n".join(lines)


NOTES = """\
What each row measures (wall time is the median over the runs; requests and capacity are per run,
the mean over the runs, counted for every DynamoDB client in the process, worker threads included):

- **store / fetch N results**: `app.backend.store_result(id, i, SUCCESS)` N times, then
  `app.backend.get_task_meta(id, cache=False)` for each, one after another from the main thread (no
  worker involved): the backend's own cost per result.
- **N tasks**: N `add.delay(i, i)` from the main thread, then `.get()` of each in order; the worker
  stores the results, the main thread reads them. Includes the broker (the same redis-server db 0
  for all three) and the default `.get()` polling interval (0.5 s) of the DynamoDB backends, which
  have no result push; the redis backend is told by pub/sub.
- **group of N joined**: `group(add.s(i, i) for i in range(N))().get()`.
- **chord of N parts**: `chord(add.s(i, i) for i in range(N))(tsum.s()).get()`.

Reading the DynamoDB columns:

- DynamoDB Local reports a flat **2.0 WCU for every TransactWriteItems**, whatever it holds (see
  docs/performance.md); AWS bills 2 WCU per KB of *each* item in a transaction, so redimo's rows
  with TransactWriteItems cost more on AWS than shown. DynamoDB Local also reports no capacity for
  a refused conditional write, which AWS bills as 1 WCU.
- Celery's DynamoDB backend does not ask for `ReturnConsumedCapacity`; the counter adds
  `ReturnConsumedCapacity=TOTAL` to its requests so that its capacity can be shown (this changes
  nothing else in the request).
- Redimo reads strongly consistently (1 RCU a GetItem of up to 4 KB); Celery's DynamoDB backend
  reads eventually consistently (0.5 RCU), so it may miss a result written a moment before.
- "refused" requests are error replies, included in the request counts. A TransactWriteItems
  cancelled with ConditionalCheckFailed in redimo's chord row is the first HSETNX of parts that
  finished together: only one of them can create the chord's record, and the others read again and
  add their field. A refused PutItem is a claim of the callback that another part made first.
  "botocore retries" are HTTP attempts botocore repeated inside one request.
- The chord row's GetItems are mostly the waiter's: Celery's `AsyncResult.get()` checks the state
  of the chord's parents (the header tasks) on every poll cycle, one GetItem each until it is
  SUCCESS, with any synchronous backend.
- Celery's `KeyValueStoreBackend.store_result` reads a result before writing it (a GetItem before
  each PutItem on Celery's DynamoDB backend, a GET before each SET on redis); redimo's backend makes
  that check part of the write's own condition (one conditional PutItem).
- Celery's DynamoDB backend has no native join: a group is joined by `.get()` of each member in
  turn, each polling with a GetItem every 0.5 s until ready, and its `mget` is one GetItem per key.
"""


def markdown(results: list[Measured], args: argparse.Namespace, elapsed: float, checks: list[str]) -> str:
    cpus = os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    mismatches = [check for check in checks if check]
    check_line = ("Redimo's own gateway counters (summed over every backend instance) agree with the "
                  "botocore count in every redimo row." if not mismatches else
                  "Redimo's gateway counters DISAGREE with the botocore count:\n" +
                  "\n".join(f"  - {m}" for m in mismatches))
    return "\n".join([
        "# Celery result backends: redimo:// vs Celery's dynamodb:// and redis://",
        "",
        f"Run on {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z} with "
        f"`benchmarks/celery/run.py{' --quick' if args.quick else ''}` ({args.runs} run(s) per row, "
        f"{elapsed / 60:.1f} min in all).",
        f"Machine: {cpus} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}; "
        f"load average at the end {load}. The machine may have been busy with other work during the run "
        "(other test suites share it), so wall times are indicative; request and capacity counts are "
        "exact.",
        "",
        "Same worker for every backend: an in-process `start_worker(app, pool=\"threads\", concurrency=4)`, "
        "broker redis-server db 0; DynamoDB Local (in memory) for redimo:// and dynamodb://, db 1 of the "
        "same redis-server for redis://. Wall times against DynamoDB Local on this machine are not "
        "latencies against AWS; the request and capacity counts carry over (but see the WCU note).",
        "",
        table_markdown(results),
        "",
        NOTES,
        check_line,
        "",
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one run per row instead of five (under ~2 min)")
    parser.add_argument("--runs", type=int, help="runs per row (default 5, or 1 with --quick)")
    parser.add_argument("--results", type=int, default=1000, help="results stored and fetched (1000)")
    parser.add_argument("--tasks", type=int, default=1000, help="tasks run end to end (1000)")
    parser.add_argument("--parts", type=int, default=100, help="group size and chord header size (100)")
    parser.add_argument("--only", choices=["redimo", "dynamodb", "redis"], action="append",
                        help="benchmark only this backend (repeatable)")
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/celery/results.md")
    args = parser.parse_args()
    args.runs = args.runs or (1 if args.quick else 5)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up the servers on `kill`
    logging.getLogger("celery.backends.dynamodb").setLevel(logging.ERROR)

    started = time.monotonic()
    counter, registry = DynamoCounter(), GatewayRegistry()
    counter.install()
    plan = scenarios(args.results, args.tasks, args.parts)
    results: list[list[Measured]] = []
    checks: list[str] = []
    with contextlib.ExitStack() as stack:
        endpoint = stack.enter_context(dynamodb_local())
        redis_port = stack.enter_context(redis_server())
        log(f"DynamoDB Local at {endpoint}, redis-server at 127.0.0.1:{redis_port}")
        create_table(Gateway(REDIMO_TABLE, make_client(endpoint_url=endpoint)))
        dynamo_host, dynamo_port = endpoint.removeprefix("http://").split(":")
        broker = f"redis://127.0.0.1:{redis_port}/0"
        setups = [
            BackendSetup("redimo://", f"redimo://{REDIMO_TABLE}?namespace=bench-{uuid.uuid4().hex[:8]}"
                                      f"&endpoint_url={quote(endpoint, safe='')}", True),
            BackendSetup("Celery dynamodb://", f"dynamodb://@{dynamo_host}:{dynamo_port}/{CELERY_TABLE}"
                                               f"?read=5&write=5", True),
            BackendSetup("Celery redis://", f"redis://127.0.0.1:{redis_port}/1", False),
        ]
        keys = {"redimo": 0, "dynamodb": 1, "redis": 2}
        chosen = [setups[keys[name]] for name in args.only] if args.only else setups
        for setup in chosen:
            results.append(run_backend(setup, broker, counter, registry, plan, args.runs, warmup, checks))
    counter.uninstall()
    rows = [backend_rows[index] for index in range(len(plan)) for backend_rows in results]
    text = markdown(rows, args, time.monotonic() - started, checks)
    print(text)
    if not args.no_write:
        (HERE / "results.md").write_text(text)
        log(f"written to {(HERE / 'results.md').relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
