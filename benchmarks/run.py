"""Measure each command's DynamoDB cost and latency against DynamoDB Local, next to the bare boto3
call that does the same single request on the same client.

    python benchmarks/run.py [--iterations N] [--write-docs]

Prints a Markdown table: requests, RCU and WCU per call (as DynamoDB reports them), median and p99
latency, and the ratio of the median to the bare boto3 call's median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from redimo import Redimo
from redimo.gateway import make_client
from redimo.local import dynamodb_local
from redimo.table import create_table

ROOT = Path(__file__).resolve().parent.parent
TABLE = "redimo-bench"
VALUE = b"v" * 100


@dataclass
class Case:
    name: str
    run: Callable[[int], Any]  # the Redimo call, given the iteration number
    bare: Callable[[int], Any] | None = None  # the same single request through boto3
    setup: Callable[[], Any] | None = None
    prepare: Callable[[int], Any] | None = None  # untimed, before each iteration


@dataclass
class Result:
    name: str
    requests: float
    read_units: float
    write_units: float
    median_ms: float
    p99_ms: float
    ratio: float | None
    overhead_ms: float | None


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(redimo: Redimo, case: Case, iterations: int) -> Result:
    if case.setup:
        case.setup()
    for warm in range(5):
        if case.prepare:
            case.prepare(warm)
        case.run(warm)
        if case.bare:
            case.bare(warm)
    ours, bare = [], []
    spent_reads = spent_writes = 0.0
    requests = 0
    for index in range(iterations):
        if case.prepare:
            case.prepare(index)
        before = redimo.gateway.usage.snapshot()
        started = time.perf_counter()
        case.run(index)
        ours.append(time.perf_counter() - started)
        spent = redimo.gateway.usage - before
        requests += spent.total_requests
        spent_reads += spent.read_units
        spent_writes += spent.write_units
        if case.bare:
            started = time.perf_counter()
            case.bare(index)
            bare.append(time.perf_counter() - started)
    median = statistics.median(ours)
    bare_median = statistics.median(bare) if bare else None
    return Result(case.name, requests / iterations, spent_reads / iterations, spent_writes / iterations,
                  median * 1000, percentile(ours, 0.99) * 1000, median / bare_median if bare_median else None,
                  (median - bare_median) * 1000 if bare_median else None)


def table_markdown(results: list[Result]) -> str:
    lines = ["| operation | requests | RCU | WCU | median ms | p99 ms | vs bare boto3 | Redimo's own ms |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for result in results:
        ratio = f"{result.ratio:.2f}x" if result.ratio else "-"
        overhead = f"{result.overhead_ms:+.2f}" if result.overhead_ms is not None else "-"
        lines.append(f"| {result.name} | {result.requests:g} | {result.read_units:g} | {result.write_units:g} "
                     f"| {result.median_ms:.2f} | {result.p99_ms:.2f} | {ratio} | {overhead} |")
    return "\n".join(lines)


class Bare:
    """The bare boto3 calls that make the same single request as a Redimo call, on the same client."""

    def __init__(self, redimo: Redimo) -> None:
        self.client, self.db, self.table = redimo.gateway.client, redimo.engine.db, redimo.gateway.table

    def head(self, key: bytes) -> dict:
        return self.db.head_key(key)

    def get(self, key: bytes) -> Callable[[int], Any]:
        return lambda _: self.client.get_item(TableName=self.table, Key=self.head(key), ConsistentRead=True,
                                              ReturnConsumedCapacity="TOTAL")

    def put(self, key: bytes, value: bytes = VALUE) -> Callable[[int], Any]:
        item = {**self.head(key), "t": {"S": "string"}, "v": {"B": value}}
        return lambda _: self.client.put_item(TableName=self.table, Item=item, ReturnConsumedCapacity="TOTAL")

    def update(self, key: bytes, expression: str = "SET n = if_not_exists(n, :z) + :d") -> Callable[[int], Any]:
        values = {":z": {"N": "0"}, ":d": {"N": "1"}}
        return lambda _: self.client.update_item(TableName=self.table, Key=self.head(key), UpdateExpression=expression,
                                                 ExpressionAttributeValues=values, ReturnConsumedCapacity="TOTAL")

    def delete(self, key: bytes) -> Callable[[int], Any]:
        return lambda _: self.client.delete_item(TableName=self.table, Key=self.head(key),
                                                 ReturnConsumedCapacity="TOTAL")

    def batch_get(self, keys: list[bytes]) -> Callable[[int], Any]:
        request = {self.table: {"Keys": [self.head(key) for key in keys], "ConsistentRead": True}}
        return lambda _: self.client.batch_get_item(RequestItems=request, ReturnConsumedCapacity="TOTAL")

    def batch_put(self, keys: list[bytes]) -> Callable[[int], Any]:
        request = {self.table: [{"PutRequest": {"Item": {**self.head(key), "t": {"S": "string"}, "v": {"B": VALUE}}}}
                                for key in keys]}
        return lambda _: self.client.batch_write_item(RequestItems=request, ReturnConsumedCapacity="TOTAL")

    def transaction(self, keys: list[bytes]) -> Callable[[int], Any]:
        items = [{"Put": {"TableName": self.table, "Item": {**self.head(key), "t": {"S": "string"}, "v": {"B": VALUE}}}}
                 for key in keys]
        return lambda _: self.client.transact_write_items(TransactItems=items, ReturnConsumedCapacity="TOTAL")


def core_cases(r: Redimo) -> list[Case]:
    bare = Bare(r)
    keys = [f"m{i}".encode() for i in range(100)]
    items = [{**bare.head(key), "t": {"S": "string"}, "v": {"B": VALUE}} for key in keys[:25]]
    return [
        Case("GET", lambda i: r.get("k"), bare.get(b"k"), lambda: r.set("k", VALUE)),
        Case("SET", lambda i: r.set("k", VALUE), bare.put(b"k")),
        Case("SET EX", lambda i: r.set("k", VALUE, ex=3600), bare.put(b"k")),
        Case("SET NX (key exists)", lambda i: r.set("k", VALUE, nx=True), bare.put(b"k")),
        Case("INCR", lambda i: r.incr("n"), bare.update(b"n")),
        Case("DEL (1 key)", lambda i: r.delete("gone"), bare.delete(b"gone")),
        Case("EXPIRE", lambda i: r.expire("k", 3600), bare.update(b"k", "SET bench = :z + :d")),
        Case("TTL", lambda i: r.ttl("k"), bare.get(b"k")),
        Case("EXISTS (1 key)", lambda i: r.exists("k"), bare.get(b"k")),
        Case("GETDEL (missing)", lambda i: r.getdel("gone"), bare.delete(b"gone")),
        Case("APPEND (2 requests)", lambda i: r.append("a", "x") if i % 50 else r.set("a", "x")),
        Case("INCRBYFLOAT (2 requests)", lambda i: r.incrbyfloat("f", 0.5)),
        Case("MGET 100 keys", lambda i: r.mget(keys), bare.batch_get(keys), lambda: r.mset({key: VALUE for key in keys})),
        Case("MSET 25 keys (transaction)", lambda i: r.mset({key: VALUE for key in keys[:25]}),
             bare.transaction(keys[:25])),
        Case("DEL 25 keys", lambda i: r.delete(*keys[:25]), prepare=lambda i: r.gateway.batch_write(puts=items)),
        Case("GET 1 MB value (3 chunks)", lambda i: r.get("big"), None, lambda: r.set("big", b"b" * 1_000_000)),
    ]


def cache_cases(endpoint: str, client: Any) -> list[Case]:
    """Django cache methods, each next to the bare request it makes."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(CACHES={}, USE_TZ=True, SECRET_KEY="redimo-benchmarks",
                           INSTALLED_APPS=["django.contrib.sessions", "redimo_django"])
        django.setup()
    from redimo_django.cache import RedimoCache

    cache = RedimoCache(TABLE, {"OPTIONS": {"CLIENT_FACTORY": lambda: client, "NAMESPACE": "bench-cache"}})
    bench_cache.instance = cache
    bare = Bare(cache.get_client())

    def made(key: str) -> bytes:
        return cache.make_key(key).encode()

    many = [f"m{j}" for j in range(100)]
    return [
        Case("cache.get", lambda i: cache.get("k"), bare.get(made("k")), lambda: cache.set("k", "value")),
        Case("cache.set", lambda i: cache.set("k", "value"), bare.put(made("k"))),
        Case("cache.add (exists)", lambda i: cache.add("k", "value"), bare.put(made("k"))),
        Case("cache.touch", lambda i: cache.touch("k", 600), bare.update(made("k"), "SET bench = :z + :d")),
        Case("cache.incr", lambda i: cache.incr("n"), bare.update(made("n")), lambda: cache.set("n", 1)),
        Case("cache.delete", lambda i: cache.delete("gone"), bare.delete(made("gone"))),
        Case("cache.has_key", lambda i: cache.has_key("k"), bare.get(made("k"))),
        Case("cache.get_many 100", lambda i: cache.get_many(many), bare.batch_get([made(key) for key in many]),
             lambda: cache.set_many({key: 1 for key in many})),
        Case("cache.set_many 25", lambda i: cache.set_many({key: 1 for key in many[:25]}),
             bare.batch_put([made(key) for key in many[:25]])),
    ]


def lock_cases(r: Redimo) -> list[Case]:
    """Locks and semaphores (each operation one request)."""
    lock = r.lock("bench-lock", timeout=60)
    semaphore = r.semaphore("bench-semaphore", limit=5, timeout=60)
    bare = Bare(r)
    return [
        Case("lock.acquire", lambda i: lock.acquire(blocking=False), bare.update(b"bench-lock-bare"), None,
             lambda i: lock.local.token and lock.release()),
        Case("lock.extend", lambda i: lock.extend(1), bare.update(b"bench-lock-bare"),
             lambda: lock.local.token or lock.acquire()),
        Case("lock.release", lambda i: lock.release(), bare.update(b"bench-lock-bare"), None, lambda i: lock.acquire()),
        Case("semaphore.acquire (free slot)", lambda i: semaphore.acquire(blocking=False), None, None,
             lambda i: semaphore.token and semaphore.release()),
        Case("semaphore.release", lambda i: semaphore.release(), None, None,
             lambda i: semaphore.token or semaphore.acquire()),
    ]


def session_cases(client: Any) -> list[Case]:
    """The Django session engine (load, exists, save, create, delete)."""
    from django.test.utils import override_settings

    from redimo_django.sessions import SessionStore

    override = override_settings(SESSION_ENGINE="redimo_django.sessions",
                                 REDIMO_SESSIONS={"TABLE": TABLE, "NAMESPACE": "bench-sessions",
                                                  "CLIENT_FACTORY": lambda: client})
    override.enable()
    existing = SessionStore()
    existing["user"] = "ada"
    existing.save()
    bench_cache.sessions = SessionStore.get_client()
    bare = Bare(bench_cache.sessions)
    key = existing.session_key.encode()

    def saved(i: int) -> None:
        session = SessionStore(existing.session_key)
        session["n"] = i
        session.save()

    def deleted(i: int) -> None:
        SessionStore().delete(bench_cache.victims.pop())

    def prepare_victim(i: int) -> None:
        victim = SessionStore()
        victim["x"] = 1
        victim.create()
        bench_cache.victims.append(victim.session_key)

    return [
        Case("session.load", lambda i: SessionStore(existing.session_key).load(), bare.get(key)),
        Case("session.exists", lambda i: SessionStore().exists(existing.session_key), bare.get(key)),
        Case("session load + save", saved),
        Case("session.create", lambda i: SessionStore().create(), bare.put(b"s" * 32)),
        Case("session.delete", deleted, bare.delete(b"gone"), None, prepare_victim),
    ]


class bench_cache:  # keeps the cache alive for the run
    instance: Any = None
    sessions: Any = None
    victims: list = []


class StubClient:
    """A boto3 stand-in that answers at once, to time Redimo's own work without a store."""

    class meta:
        endpoint_url = "stub"

    def get_item(self, **params: Any) -> dict:
        key = params["Key"]
        return {"Item": {**key, "t": {"S": "string"}, "v": {"B": VALUE}}, "ConsumedCapacity": {"CapacityUnits": 1.0}}

    def put_item(self, **params: Any) -> dict:
        return {"ConsumedCapacity": {"CapacityUnits": 1.0}}

    def update_item(self, **params: Any) -> dict:
        return {"Attributes": {"n": {"N": "1"}, "t": {"S": "string"}}, "ConsumedCapacity": {"CapacityUnits": 1.0}}

    delete_item = put_item


def own_work(iterations: int = 20_000) -> str:
    """Microseconds of Redimo's own work per call (redis-py's command path, the engine, building the
    request and reading the reply), timed with a client that answers at once."""
    r = Redimo(table=TABLE, client=StubClient())
    calls = {"GET": lambda: r.get("k"), "SET": lambda: r.set("k", VALUE), "SET EX": lambda: r.set("k", VALUE, ex=60),
             "INCR": lambda: r.incr("n"), "DEL": lambda: r.delete("k"), "EXPIRE": lambda: r.expire("k", 60),
             "engine GET (no redis-py)": lambda: r.engine.execute([b"GET", b"k"])}
    lines = ["| call | Redimo's own µs |", "|---|---:|"]
    for name, call in calls.items():
        for _ in range(1000):
            call()
        started = time.perf_counter()
        for _ in range(iterations):
            call()
        lines.append(f"| {name} | {(time.perf_counter() - started) / iterations * 1e6:.1f} |")
    return "\n".join(lines)


def run(iterations: int) -> list[Result]:
    with dynamodb_local() as endpoint:
        client = make_client(endpoint_url=endpoint, region_name=os.environ.get("AWS_REGION", "us-east-1"))
        r = Redimo(table=TABLE, namespace=f"bench-{uuid.uuid4().hex[:8]}", client=client)
        create_table(r.gateway)
        results = []
        cases = core_cases(r)
        for case in cases:
            print(f"measuring {case.name} ...", file=sys.stderr, flush=True)
            results.append(measure(r, case, iterations))
        for case in lock_cases(r):
            print(f"measuring {case.name} ...", file=sys.stderr, flush=True)
            results.append(measure(r, case, iterations))
        for case in cache_cases(endpoint, client):
            print(f"measuring {case.name} ...", file=sys.stderr, flush=True)
            results.append(measure(bench_cache.instance.get_client(), case, iterations))
        for case in session_cases(client):
            print(f"measuring {case.name} ...", file=sys.stderr, flush=True)
            results.append(measure(bench_cache.sessions, case, iterations))
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--write-docs", action="store_true", help="write the table into docs/performance.md")
    arguments = parser.parse_args()
    for name, value in {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_REGION": "us-east-1"}.items():
        os.environ.setdefault(name, value)
    results = run(arguments.iterations)
    table = table_markdown(results) + "\n\nRedimo's own work per call, with a stub client that answers at once:\n\n" + own_work()
    print(table)
    if arguments.write_docs:
        path = ROOT / "docs" / "performance.md"
        text = path.read_text()
        start, end = text.index("<!-- table -->"), text.index("<!-- /table -->")
        path.write_text(text[:start] + "<!-- table -->\n" + table + "\n" + text[end:])
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
