"""redis-benchmark against ``redimo serve`` on DynamoDB Local and against a real redis-server: GET, SET,
LPUSH and SET pipelined 16 deep (``-P 16``), requests per second and their ratio.

    python benchmarks/server.py [--requests N] [--clients C]

Starts DynamoDB Local (unless AWS_ENDPOINT_URL_DYNAMODB is set), ``redimo serve`` on a fresh table and
a redis-server on free ports, and prints a Markdown table. Needs redis-benchmark and redis-server
(Debian's redis-tools and redis-server).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Iterator

from redimo.gateway import Gateway, make_client
from redimo.local import dynamodb_local, free_port
from redimo.table import create_table

# (name, redis-benchmark arguments, clients or None for --clients). redis-benchmark's LPUSH pushes onto
# one list: with 50 clients on one key Redimo's conditional writes collide until the engine gives up
# ("ERR too much contention on this key"), so that test runs with 4 clients, and LPUSH onto random
# lists with all of them.
TESTS = (("GET", ["-t", "get"], None), ("SET", ["-t", "set"], None),
         ("LPUSH, one list, 4 clients", ["-t", "lpush"], 4),
         ("LPUSH, random lists", ["LPUSH", "list:__rand_int__", "x"], None),
         ("SET, -P 16", ["-t", "set", "-P", "16"], None))


def wait_for_ping(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while subprocess.run(["redis-cli", "-p", str(port), "PING"], capture_output=True, text=True).stdout.strip() \
            != "PONG":
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the server on port {port} did not start")
        time.sleep(0.2)


@contextlib.contextmanager
def started(command: list[str], port: int) -> Iterator[None]:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_ping(port, process)
        yield
    finally:
        process.terminate()
        process.wait(30)


@contextlib.contextmanager
def endpoint() -> Iterator[str]:
    if os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"):
        yield os.environ["AWS_ENDPOINT_URL_DYNAMODB"]
    else:
        with dynamodb_local() as url:
            yield url


def measure(port: int, requests: int, clients: int) -> dict[str, float]:
    """Requests per second of each test (redis-benchmark's CSV)."""
    figures = {}
    for name, arguments, fixed_clients in TESTS:
        run = subprocess.run(["redis-benchmark", "-p", str(port), "-n", str(requests),
                              "-c", str(fixed_clients or clients),
                              "-d", "100", "-r", "10000", "--csv", *arguments],
                             capture_output=True, text=True, timeout=1800)
        if run.returncode:
            raise RuntimeError(f"redis-benchmark {name} failed: {run.stdout[-2000:]} {run.stderr[-2000:]}")
        rows = [row for row in csv.reader(io.StringIO(run.stdout)) if row and row[0] != "test"]
        figures[name] = float(rows[-1][1])
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per test (default 2000)")
    parser.add_argument("--clients", type=int, default=50, help="parallel connections (default 50)")
    arguments = parser.parse_args()
    for tool in ("redis-benchmark", "redis-server", "redis-cli"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (Debian: redis-tools, redis-server)", file=sys.stderr)
            return 2
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_REGION", "us-east-1")
    redis_port, redimo_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as directory, \
            started(["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no", "--dir",
                     directory], redis_port):
        redis_figures = measure(redis_port, arguments.requests, arguments.clients)
    with endpoint() as url:
        table = f"bench-server-{uuid.uuid4().hex[:8]}"
        create_table(Gateway(table, make_client(endpoint_url=url)))
        with started([sys.executable, "-m", "redimo.server", "--table", table, "--port", str(redimo_port),
                      "--endpoint-url", url, "--log-level", "WARNING"], redimo_port):
            redimo_figures = measure(redimo_port, arguments.requests, arguments.clients)
    print(f"redis-benchmark -n {arguments.requests} -c {arguments.clients} -d 100 -r 10000, requests/s\n")
    print("| Test | redis-server | redimo serve on DynamoDB Local | Ratio |")
    print("|---|---:|---:|---:|")
    for name, _, _ in TESTS:
        print(f"| {name} | {redis_figures[name]:,.0f} | {redimo_figures[name]:,.0f} | "
              f"{redis_figures[name] / redimo_figures[name]:,.0f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
