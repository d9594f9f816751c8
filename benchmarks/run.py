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
from redimo.compact import item_size
from redimo.gateway import make_client
from redimo.local import dynamodb_local, use_local_credentials
from redimo.table import create_table

ROOT = Path(__file__).resolve().parent.parent
TABLE = "redimo-bench"
VALUE = b"v" * 100
WARM_UP = 50  # rounds of each case before it is measured (DynamoDB Local compiles as it goes)


@dataclass
class Case:
    name: str
    run: Callable[[int], Any]  # the Redimo call, given the iteration number
    bare: bool = False  # time the same single request through boto3 too
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


class Recorder:
    """Stands in for the boto3 client and notes each request Redimo makes through it."""

    def __init__(self, client: Any) -> None:
        self.client, self.requests = client, []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.client, name)
        if name in ("meta", "exceptions") or not callable(attribute):
            return attribute

        def call(**params: Any) -> Any:
            self.requests.append((name, params))
            return attribute(**params)

        return call


class LeanAlone:
    """Sends a request through the gateway's lean transport alone: no redis-py, no engine."""

    def __init__(self, send: Callable[[str, dict], Any], client: Any) -> None:
        self.send, self.exceptions = send, client.exceptions

    def __getattr__(self, operation: str) -> Callable[..., Any]:
        return lambda **params: self.send(operation, params)


def on_twin(value: Any, pk: bytes, twin: bytes) -> Any:
    """``value`` with the partition key ``pk`` replaced by ``twin`` wherever it occurs."""
    if isinstance(value, dict):
        if value == {"B": pk}:
            return {"B": twin}
        return {key: on_twin(item, pk, twin) for key, item in value.items()}
    if isinstance(value, list):
        return [on_twin(item, pk, twin) for item in value]
    return value


TWINS = (b"twin:", b"lean:")  # the bare boto3 replay's item, the lean transport's


def bare_twin(client: Any, request: tuple[str, dict], prefix: bytes) -> Callable[[], Any]:
    """The bare call that makes ``request`` again: a single-item request on a twin item put in the
    state the original item had (untimed), so that both meet the same conditions."""
    operation, params = request
    key = params.get("Key") or params.get("Item")
    if key is None:  # a batch or a transaction of puts and reads: replaying it meets the same state
        replay = {name: value for name, value in params.items() if name != "ClientRequestToken"}
        return lambda: _call(client, operation, replay)
    pk = key["pk"]["B"]
    replay = on_twin(params, pk, prefix + pk)
    return lambda: _call(client, operation, replay)


def _call(client: Any, operation: str, params: dict) -> None:
    try:
        getattr(client, operation)(**params)
    except client.exceptions.ConditionalCheckFailedException:
        pass  # a refused condition, as it was for Redimo


def copy_to_twin(client: Any, table: str, key: dict) -> None:
    """Put the twin items in the state the item has now (untimed)."""
    pk = key["pk"]["B"]
    item = client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
    for prefix in TWINS:
        twin_key = {"pk": {"B": prefix + pk}, "sk": key["sk"]}
        if item is None:
            client.delete_item(TableName=table, Key=twin_key)
        else:
            client.put_item(TableName=table, Item={**item, **twin_key})


def measure(redimo: Redimo, case: Case, iterations: int) -> Result:
    """Time ``case`` on Redimo; a case that makes one request also times that request, interleaved,
    sent again by bare boto3 and by the lean transport alone (on a twin item in the same state)."""
    gateway = redimo.gateway
    client, table, transport = gateway.client, gateway.table, gateway.transport
    recorder = gateway.client = Recorder(client)
    if transport is not None:  # the lean transport sends most requests: note them there too
        send = transport.call

        def recorded(operation: str, params: dict) -> Any:
            recorder.requests.append((operation, params))
            return send(operation, params)

        transport.call = recorded  # type: ignore[method-assign]
        alone: Any = LeanAlone(send, client)
    else:
        alone = client
    try:
        if case.setup:
            case.setup()
        ours, bare, lean = [], [], []
        requests = 0
        spent_reads = spent_writes = 0.0
        for index in range(-WARM_UP, iterations):
            if case.prepare:
                case.prepare(index)
            state = recorder.requests[-1][1] if case.bare and recorder.requests else None
            if state is not None and ("Key" in state or "Item" in state):
                copy_to_twin(client, table, {name: value for name, value in (state.get("Key") or state["Item"]).items()
                                             if name in ("pk", "sk")})
            recorder.requests = []
            before = gateway.usage.snapshot()
            started = time.perf_counter()
            case.run(index)
            elapsed = time.perf_counter() - started
            spent = gateway.usage - before
            request = recorder.requests[0] if case.bare and len(recorder.requests) == 1 else None
            if index < 0:
                continue
            ours.append(elapsed)
            requests += spent.total_requests
            spent_reads += spent.read_units
            spent_writes += spent.write_units
            if request is not None:
                for replay, samples in ((bare_twin(client, request, TWINS[0]), bare),
                                        (bare_twin(alone, request, TWINS[1]), lean)):
                    started = time.perf_counter()
                    replay()
                    samples.append(time.perf_counter() - started)
    finally:
        gateway.client = client
        if transport is not None:
            del transport.call
    median = statistics.median(ours)
    bare_median = statistics.median(bare) if bare else None
    lean_median = statistics.median(lean) if lean else None
    return Result(case.name, requests / iterations, spent_reads / iterations, spent_writes / iterations,
                  median * 1000, percentile(ours, 0.99) * 1000, median / bare_median if bare_median else None,
                  (median - lean_median) * 1000 if lean_median else None)


def table_markdown(results: list[Result]) -> str:
    lines = ["| operation | requests | RCU | WCU | median ms | p99 ms | vs bare boto3 | Redimo's own ms |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for result in results:
        ratio = f"{result.ratio:.2f}x" if result.ratio else "-"
        overhead = f"{result.overhead_ms:+.2f}" if result.overhead_ms is not None else "-"
        lines.append(f"| {result.name} | {result.requests:g} | {result.read_units:g} | {result.write_units:g} "
                     f"| {result.median_ms:.2f} | {result.p99_ms:.2f} | {ratio} | {overhead} |")
    return "\n".join(lines)


def core_cases(r: Redimo) -> list[Case]:
    keys = [f"m{i}".encode() for i in range(100)]
    items = [{**r.engine.db.head_key(key), "t": {"S": "string"}, "v": {"B": VALUE}} for key in keys[:25]]
    return [
        Case("GET", lambda i: r.get("k"), True, lambda: r.set("k", VALUE)),
        Case("SET", lambda i: r.set("k", VALUE), True),
        Case("SET EX", lambda i: r.set("k", VALUE, ex=3600), True),
        Case("SET NX (key exists)", lambda i: r.set("k", VALUE, nx=True), True),
        Case("INCR", lambda i: r.incr("n"), True),
        Case("DEL (1 key)", lambda i: r.delete("gone"), True),
        Case("EXPIRE", lambda i: r.expire("k", 3600), True),
        Case("TTL", lambda i: r.ttl("k"), True),
        Case("EXISTS (1 key)", lambda i: r.exists("k"), True),
        Case("GETDEL (missing)", lambda i: r.getdel("gone"), True),
        Case("APPEND (2 requests)", lambda i: r.append("a", "x") if i % 50 else r.set("a", "x")),
        Case("INCRBYFLOAT (2 requests)", lambda i: r.incrbyfloat("f", 0.5)),
        Case("MGET 100 keys", lambda i: r.mget(keys), True, lambda: r.mset({key: VALUE for key in keys})),
        Case("MSET 25 keys (transaction)", lambda i: r.mset({key: VALUE for key in keys[:25]}),
             True),
        Case("DEL 25 keys", lambda i: r.delete(*keys[:25]), prepare=lambda i: r.gateway.batch_write(puts=items)),
        Case("GET 1 MB value (3 chunks)", lambda i: r.get("big"), None, lambda: r.set("big", b"b" * 1_000_000)),
    ]


def collection_cases(r: Redimo) -> list[Case]:
    """Every collection command on a collection of 100 small members (keys prepared once)."""
    members = {f"m{i:03}": i for i in range(100)}

    def setup() -> None:
        r.delete("h", "s", "s2", "z", "z2", "l", "x", "geo", "hll")
        r.hset("h", mapping=members)
        r.sadd("s", *members)
        r.sadd("s2", *list(members)[:50])
        r.zadd("z", members)
        r.zadd("z2", dict(list(members.items())[:50]))
        r.rpush("l", *members)
        for i in range(100):
            r.xadd("x", {"f": "v"}, id=f"1-{i + 1}")
        r.xgroup_create("x", "g", id="0")
        r.geoadd("geo", [13.361389, 38.115556, "Palermo", 15.087269, 37.502669, "Catania"])
        r.pfadd("hll", *members)

    return [
        Case("HSET (new field)", lambda i: r.hset("h", f"n{i}", "v"), setup=setup),
        Case("HSET (existing field)", lambda i: r.hset("h", "m001", i)),
        Case("HGET", lambda i: r.hget("h", "m001"), True),
        Case("HMGET 10", lambda i: r.hmget("h", list(members)[:10]), True),
        Case("HLEN", lambda i: r.hlen("h"), True),
        Case("HINCRBY", lambda i: r.hincrby("h", "m002", 1)),
        Case("HGETALL 100+", lambda i: r.hgetall("h")),
        Case("HDEL", lambda i: r.hdel("h", f"n{i}")),
        Case("SADD", lambda i: r.sadd("s", f"n{i}")),
        Case("SISMEMBER", lambda i: r.sismember("s", "m001"), True),
        Case("SCARD", lambda i: r.scard("s"), True),
        Case("SMEMBERS 100+", lambda i: r.smembers("s")),
        Case("SRANDMEMBER", lambda i: r.srandmember("s")),
        Case("SINTER 100 x 50", lambda i: r.sinter("s", "s2")),
        Case("SREM", lambda i: r.srem("s", f"n{i}")),
        Case("ZADD", lambda i: r.zadd("z", {f"n{i}": i})),
        Case("ZSCORE", lambda i: r.zscore("z", "m001"), True),
        Case("ZCARD", lambda i: r.zcard("z"), True),
        Case("ZINCRBY", lambda i: r.zincrby("z", 1, "m003")),
        Case("ZRANK", lambda i: r.zrank("z", "m050")),
        Case("ZRANGE 0 9", lambda i: r.zrange("z", 0, 9)),
        Case("ZRANGEBYSCORE 10", lambda i: r.zrangebyscore("z", 10, 19)),
        Case("ZCOUNT", lambda i: r.zcount("z", 10, 59)),
        Case("ZREM", lambda i: r.zrem("z", f"n{i}")),
        Case("ZUNIONSTORE 100 + 50", lambda i: r.zunionstore("z3", ["z", "z2"])),
        Case("RPUSH", lambda i: r.rpush("l", i)),
        Case("LPUSH", lambda i: r.lpush("l", i)),
        Case("LPOP", lambda i: r.lpop("l")),
        Case("RPOP", lambda i: r.rpop("l")),
        Case("LLEN", lambda i: r.llen("l"), True),
        Case("LINDEX 0", lambda i: r.lindex("l", 0)),
        Case("LINDEX 50", lambda i: r.lindex("l", 50)),
        Case("LRANGE 0 9", lambda i: r.lrange("l", 0, 9)),
        Case("LSET", lambda i: r.lset("l", 10, i)),
        Case("XADD", lambda i: r.xadd("x", {"f": "v"})),
        Case("XLEN", lambda i: r.xlen("x"), True),
        Case("XRANGE 10", lambda i: r.xrange("x", "-", "+", count=10)),
        Case("XREADGROUP 1 + XACK", lambda i: [r.xack("x", "g", entry_id) for _, entries in
                                                r.xreadgroup("g", "c", {"x": ">"}, count=1)
                                                for entry_id, _ in entries]),
        Case("GEOADD", lambda i: r.geoadd("geo", [13.0 + i / 1000, 38.0, f"p{i}"])),
        Case("GEOSEARCH 200 km", lambda i: r.geosearch("geo", longitude=15, latitude=37, radius=200, unit="km")),
        Case("GEODIST", lambda i: r.geodist("geo", "Palermo", "Catania")),
        Case("PFADD", lambda i: r.pfadd("hll", f"n{i}")),
        Case("PFCOUNT", lambda i: r.pfcount("hll"), True),
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

    def made(key: str) -> bytes:
        return cache.make_key(key).encode()

    many = [f"m{j}" for j in range(100)]
    return [
        Case("cache.get", lambda i: cache.get("k"), True, lambda: cache.set("k", "value")),
        Case("cache.set", lambda i: cache.set("k", "value"), True),
        Case("cache.add (exists)", lambda i: cache.add("k", "value"), True),
        Case("cache.touch", lambda i: cache.touch("k", 600), True),
        Case("cache.incr", lambda i: cache.incr("n"), True, lambda: cache.set("n", 1)),
        Case("cache.delete", lambda i: cache.delete("gone"), True),
        Case("cache.has_key", lambda i: cache.has_key("k"), True),
        Case("cache.get_many 100", lambda i: cache.get_many(many), True,
             lambda: cache.set_many({key: 1 for key in many})),
        Case("cache.set_many 25", lambda i: cache.set_many({key: 1 for key in many[:25]}),
             True),
    ]


def lock_cases(r: Redimo) -> list[Case]:
    """Locks and semaphores (each operation one request)."""
    lock = r.lock("bench-lock", timeout=60)
    semaphore = r.semaphore("bench-semaphore", limit=5, timeout=60)
    return [
        Case("lock.acquire", lambda i: lock.acquire(blocking=False), True, None,
             lambda i: lock.local.token and lock.release()),
        Case("lock.extend", lambda i: lock.extend(1), True,
             lambda: lock.local.token or lock.acquire()),
        Case("lock.release", lambda i: lock.release(), True, None, lambda i: lock.local.token or lock.acquire()),
        Case("semaphore.acquire (free slot)", lambda i: semaphore.acquire(blocking=False), True, None,
             lambda i: semaphore.token and semaphore.release()),
        Case("semaphore.release", lambda i: semaphore.release(), True, None,
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
        Case("session.load", lambda i: SessionStore(existing.session_key).load(), True),
        Case("session.exists", lambda i: SessionStore().exists(existing.session_key), True),
        Case("session load + save", saved),
        Case("session.create", lambda i: SessionStore().create(), True),
        Case("session.delete", deleted, True, None, prepare_victim),
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


def compact_cases(r: Redimo) -> list[Case]:
    """The same commands on a compact hash, set, sorted set and list of 10 small members, and a message
    cycle on a compact stream (docs/data-model.md)."""
    fields = {f"f{i:03}": i for i in range(10)}

    def setup() -> None:
        r.delete("hc", "sc", "zc", "lc", "xc")
        r.hset("hc", mapping=fields)
        r.sadd("sc", *fields)
        r.zadd("zc", fields)
        r.rpush("lc", *fields)
        r.xgroup_create("xc", "g", id="$", mkstream=True)

    def cycle(i: int) -> None:  # a queue as Celery's broker uses it, kept near empty
        r.xadd("xc", {"body": "v" * 100})
        for _, entries in r.xreadgroup("g", "c", {"xc": ">"}, count=1):
            for entry_id, _ in entries:
                r.xack("xc", "g", entry_id)
                r.xdel("xc", entry_id)

    return [
        Case("HSET (new field), compact 10", lambda i: r.hset("hc", "new", i), setup=setup,
             prepare=lambda i: r.hdel("hc", "new")),
        Case("HSET (existing field), compact", lambda i: r.hset("hc", "f001", i)),
        Case("HGET, compact", lambda i: r.hget("hc", "f001"), True),
        Case("HGETALL, compact 10", lambda i: r.hgetall("hc"), True),
        Case("HINCRBY, compact", lambda i: r.hincrby("hc", "f002", 1)),
        Case("HDEL, compact", lambda i: r.hdel("hc", "gone"), prepare=lambda i: r.hset("hc", "gone", 1)),
        Case("SADD, compact 10", lambda i: r.sadd("sc", "new"), prepare=lambda i: r.srem("sc", "new")),
        Case("SISMEMBER, compact", lambda i: r.sismember("sc", "f001"), True),
        Case("SMEMBERS, compact 10", lambda i: r.smembers("sc"), True),
        Case("SREM, compact", lambda i: r.srem("sc", "gone"), prepare=lambda i: r.sadd("sc", "gone")),
        Case("ZADD (new member), compact 10", lambda i: r.zadd("zc", {"new": i}), prepare=lambda i: r.zrem("zc", "new")),
        Case("ZINCRBY, compact", lambda i: r.zincrby("zc", 1, "f003")),
        Case("ZSCORE, compact", lambda i: r.zscore("zc", "f001"), True),
        Case("ZRANK, compact", lambda i: r.zrank("zc", "f005")),
        Case("ZRANGE 0 9, compact 10", lambda i: r.zrange("zc", 0, 9)),
        Case("ZRANGEBYSCORE, compact", lambda i: r.zrangebyscore("zc", 2, 5)),
        Case("ZREM, compact", lambda i: r.zrem("zc", "gone"), prepare=lambda i: r.zadd("zc", {"gone": 1})),
        Case("RPUSH, compact", lambda i: r.rpush("lc", i), prepare=lambda i: r.rpop("lc")),
        Case("LPOP, compact", lambda i: r.lpop("lc"), prepare=lambda i: r.lpush("lc", i)),
        Case("LRANGE 0 -1, compact 10", lambda i: r.lrange("lc", 0, -1)),
        Case("LINDEX 5, compact", lambda i: r.lindex("lc", 5)),
        Case("XADD + XREADGROUP + XACK + XDEL, compact", cycle),
    ]


def crossover(client: Any, iterations: int = 20) -> str:
    """Units of one HSET of an existing field, compact against promoted, as the hash grows (fields of
    60-byte values): where the compact head's size makes it the dearer encoding."""
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    compact = Redimo(table=TABLE, namespace=namespace, client=client, compact_max_entries=10_000,
                     compact_max_bytes=350_000)
    promoted = Redimo(table=TABLE, namespace=namespace, client=client, compact=False)
    lines = ["| fields | compact head KB | compact RCU | compact WCU | promoted RCU | promoted WCU (transaction) |",
             "|---:|---:|---:|---:|---:|---:|"]
    for size in (8, 16, 32, 48, 56, 64, 80):
        fields = {f"field{i:03}": "v" * 60 for i in range(size)}
        units = []
        for client_, key in ((compact, f"c{size}"), (promoted, f"p{size}")):
            client_.hset(key, mapping=fields)
            before = client_.gateway.usage.snapshot()
            for i in range(iterations):
                client_.hset(key, "field001", "w" * 60)
            spent = client_.gateway.usage - before
            units += [spent.read_units / iterations, spent.write_units / iterations]
        head = compact.gateway.get(compact.engine.db.head_key(f"c{size}".encode()))
        kb = item_size(head) / 1024
        lines.append(f"| {size} | {kb:.2f} | {units[0]:g} | {units[1]:g} | {units[2]:g} | {units[3]:g} |")
    return "\n".join(lines)


def run(iterations: int) -> tuple[list[Result], str]:
    with dynamodb_local() as endpoint:
        client = make_client(endpoint_url=endpoint, region_name=os.environ.get("AWS_REGION", "us-east-1"))
        r = Redimo(table=TABLE, namespace=f"bench-{uuid.uuid4().hex[:8]}", client=client)
        create_table(r.gateway)
        results = []
        cases = core_cases(r)
        for case in cases:
            print(f"measuring {case.name} ...", file=sys.stderr, flush=True)
            results.append(measure(r, case, iterations))
        for case in collection_cases(r):
            print(f"measuring {case.name} ...", file=sys.stderr, flush=True)
            results.append(measure(r, case, iterations))
        for case in compact_cases(r):
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
        print("measuring the compact encoding's crossover ...", file=sys.stderr, flush=True)
        return results, crossover(client)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--write-docs", action="store_true", help="write the table into docs/performance.md")
    arguments = parser.parse_args()
    use_local_credentials()
    results, crossover_table = run(arguments.iterations)
    table = table_markdown(results) + "\n\nRedimo's own work per call, with a stub client that answers at once:\n\n" + own_work()
    print(table + "\n\n" + crossover_table)
    if arguments.write_docs:
        path = ROOT / "docs" / "performance.md"
        text = path.read_text()
        for name, content in (("table", table), ("crossover", crossover_table)):
            start, end = text.index(f"<!-- {name} -->"), text.index(f"<!-- /{name} -->")
            text = text[:start] + f"<!-- {name} -->\n" + content + "\n" + text[end:]
        path.write_text(text)
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
