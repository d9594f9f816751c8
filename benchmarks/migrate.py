"""Measure `redimo migrate` against a bare boto3 BatchWriteItem loop writing the same items.

    python benchmarks/migrate.py [--keys 100000] [--write-docs]

Fills a real redis-server with mixed keys (strings, hashes, sets, sorted sets, lists, streams; small
ones compact, one in fifty large), saves its dump.rdb, and copies it into DynamoDB Local three ways,
each into a fresh table, after an untimed warm-up: the bare loop (the same items, computed untimed
beforehand, 25 to a request, unprocessed items sent again) in 1 process, `redimo migrate` with 1 worker,
the bare loop in 2 processes, and `redimo migrate` with 2 workers. Prints keys/s, items, requests and WCU as DynamoDB reported them; --write-docs also writes
benchmarks/migrate-results.md.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import tempfile
import time
import uuid
from pathlib import Path

import redis

from redimo import rdb
from redimo.gateway import Gateway, make_client
from redimo.local import dynamodb_local, redis_server
from redimo.migrate import Options, generation_of, items_of, migrate, offline_database
from redimo.table import create_table

ROOT = Path(__file__).resolve().parent.parent


def fill(client: redis.Redis, keys: int) -> None:
    """``keys`` mixed keys: 60% strings, 10% each hashes, sets, sorted sets and lists; 1% streams."""
    rng = random.Random(7)
    pipe = client.pipeline(transaction=False)
    for i in range(keys):
        kind, large = rng.random(), i % 50 == 0
        size = 200 if large else rng.randint(1, 8)
        if kind < 0.6:
            pipe.set(f"string:{i}", os.urandom(rng.randint(10, 300)))
        elif kind < 0.7:
            pipe.hset(f"hash:{i}", mapping={f"field{j}": f"value {j} of {i}" for j in range(size)})
        elif kind < 0.8:
            pipe.sadd(f"set:{i}", *[f"member{j}" for j in range(size)])
        elif kind < 0.9:
            pipe.zadd(f"zset:{i}", {f"member{j}": rng.random() * 100 for j in range(size)})
        elif kind < 0.99:
            pipe.rpush(f"list:{i}", *[f"element {j}" for j in range(size)])
        else:
            for j in range(size):
                pipe.xadd(f"stream:{i}", {"task": f"job {j}", "args": "[1, 2]"})
        if i % 10 == 0:
            pipe.expire(f"string:{i}", 86_400)
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()


def items_of_file(path: Path) -> list[dict]:
    """Every item migrate writes for the file, in the bare loop's order (untimed)."""
    db, run = offline_database("0"), os.urandom(16)
    items: list[dict] = []
    with path.open("rb") as file:
        for entry in rdb.read_rdb(file):
            items += items_of(db, entry, generation_of(run, db.pk(entry.key)))
    return items


def bare_loop(endpoint: str, table: str, items: list[dict]) -> tuple[int, float]:
    """A bare boto3 loop: BatchWriteItem of 25 items at a time; returns requests and WCU."""
    client = make_client(endpoint_url=endpoint)
    requests, units = 0, 0.0
    for start in range(0, len(items), 25):
        pending = {table: [{"PutRequest": {"Item": item}} for item in items[start:start + 25]]}
        while pending:
            response = client.batch_write_item(RequestItems=pending, ReturnConsumedCapacity="TOTAL")
            requests += 1
            units += sum(entry.get("CapacityUnits", 0.0) for entry in response.get("ConsumedCapacity", []))
            pending = response.get("UnprocessedItems") or {}
    return requests, units


def fresh_table(endpoint: str) -> str:
    name = f"bench-migrate-{uuid.uuid4().hex[:8]}"
    create_table(Gateway(name, make_client(endpoint_url=endpoint)))
    return name


def drop(endpoint: str, table: str) -> None:
    make_client(endpoint_url=endpoint).delete_table(TableName=table)


def run_migrate(endpoint: str, dump: Path, keys: int, workers: int) -> tuple[str, dict]:
    table = fresh_table(endpoint)
    result = migrate(Options(str(dump), {0: "0"}, table, {"endpoint_url": endpoint}, workers=workers,
                             checkpoint=Path(tempfile.mkdtemp()) / "checkpoint"))
    assert result["keys"] == keys and not result["unsupported"], result
    drop(endpoint, table)
    return (f"redimo migrate, {workers} worker{'s' * (workers > 1)}",
            {"seconds": result["seconds"], "items": result["items"], "requests": result["requests"],
             "wcu": result["write_units"]})


def run_bare(endpoint: str, items: list[dict], processes: int) -> tuple[str, dict]:
    table = fresh_table(endpoint)
    started = time.monotonic()
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        parts = pool.starmap(bare_loop, [(endpoint, table, items[index::processes]) for index in range(processes)])
    seconds = time.monotonic() - started
    drop(endpoint, table)
    return (f"bare boto3 BatchWriteItem loop, {processes} process{'es' * (processes > 1)}",
            {"seconds": round(seconds, 2), "items": len(items), "requests": sum(p[0] for p in parts),
             "wcu": sum(p[1] for p in parts)})


def measure(endpoint: str, dump: Path, keys: int, items: list[dict]) -> list[tuple[str, dict]]:
    """Each way in turn, after an untimed warm-up of DynamoDB Local's JVM (a bare loop of the items)."""
    run_bare(endpoint, items, 1)
    return [run_bare(endpoint, items, 1), run_migrate(endpoint, dump, keys, 1),
            run_bare(endpoint, items, 2), run_migrate(endpoint, dump, keys, 2)]


def table_text(rows: list[tuple[str, dict]], keys: int) -> str:
    lines = ["| Run | Keys/s | Seconds | Items | Requests | WCU |", "|---|---|---|---|---|---|"]
    for name, row in rows:
        lines.append(f"| {name} | {keys / row['seconds']:,.0f} | {row['seconds']} | {row['items']:,} | "
                     f"{row['requests']:,} | {row['wcu']:,.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--write-docs", action="store_true")
    arguments = parser.parse_args()
    directory = Path(tempfile.mkdtemp())
    with redis_server(directory) as port:
        client = redis.Redis(port=port)
        fill(client, arguments.keys)
        client.save()
        keys = client.dbsize()
    dump = directory / "dump.rdb"
    items = items_of_file(dump)
    with dynamodb_local() as endpoint:
        rows = measure(endpoint, dump, keys, items)
    text = table_text(rows, keys)
    print(text)
    if arguments.write_docs:
        (ROOT / "benchmarks" / "migrate-results.md").write_text(
            f"# `redimo migrate`: measured\n\n{keys:,} mixed keys from a dump.rdb ({dump.stat().st_size:,} bytes) "
            f"into DynamoDB Local on this machine ({os.cpu_count()} cores), each run into a fresh table "
            f"(`python benchmarks/migrate.py --keys {arguments.keys} --write-docs`).\n\n{text}\n")


if __name__ == "__main__":
    main()
