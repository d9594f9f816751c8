"""The lean transport against bare boto3 on DynamoDB Local: GET and SET through Redimo (lean, and with
``lean=False``) next to a bare boto3 GetItem / PutItem of the same item (the attributes a SET writes),
and the lean transport's GetItem / PutItem alone (the gateway, without redis-py and the engine),
interleaved, with the client CPU time per call (``time.process_time``).

    python benchmarks/transport.py [--iterations N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable

from redimo import Redimo
from redimo.gateway import make_client
from redimo.local import dynamodb_local, use_local_credentials
from redimo.table import create_table

TABLE = "redimo-bench-transport"
VALUE = b"v" * 100


def measure(calls: dict[str, Callable[[], Any]], iterations: int) -> dict[str, tuple[float, float]]:
    """Per call: (median wall ms, mean client CPU ms), the calls interleaved round by round."""
    wall: dict[str, list[float]] = {name: [] for name in calls}
    cpu: dict[str, float] = dict.fromkeys(calls, 0.0)
    for _ in range(iterations):
        for name, call in calls.items():
            started, started_cpu = time.perf_counter(), time.process_time()
            call()
            cpu[name] += time.process_time() - started_cpu
            wall[name].append(time.perf_counter() - started)
    return {name: (statistics.median(wall[name]) * 1e3, cpu[name] / iterations * 1e3) for name in calls}


def main() -> None:
    use_local_credentials()  # everything here talks to DynamoDB Local
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2000)
    iterations = parser.parse_args().iterations
    with dynamodb_local() as endpoint:
        lean = Redimo(TABLE, endpoint_url=endpoint, namespace="lean")
        assert lean.gateway.transport is not None
        create_table(lean.gateway)
        boto3_redimo = Redimo(TABLE, endpoint_url=endpoint, namespace="boto3", lean=False)
        bare = make_client(endpoint_url=endpoint)
        lean.set("k", VALUE)
        boto3_redimo.set("k", VALUE)
        key = {"pk": {"B": b"bare"}, "sk": {"B": b"\x00"}}
        item = {**key, "t": {"S": "string"}, "w": {"B": b"version!"}, "v": {"B": VALUE}}
        bare.put_item(TableName=TABLE, Item=item)
        gateway = lean.gateway
        calls = {
            "GET lean": lambda: lean.get("k"),
            "GET boto3 (lean=False)": lambda: boto3_redimo.get("k"),
            "lean GetItem alone": lambda: gateway.call("get_item", TableName=TABLE, Key=key, ConsistentRead=True),
            "bare GetItem": lambda: bare.get_item(TableName=TABLE, Key=key, ConsistentRead=True),
            "SET lean": lambda: lean.set("k", VALUE),
            "SET boto3 (lean=False)": lambda: boto3_redimo.set("k", VALUE),
            "lean PutItem alone": lambda: gateway.call("put_item", TableName=TABLE, Item=item),
            "bare PutItem": lambda: bare.put_item(TableName=TABLE, Item=item),
        }
        measure(calls, 200)  # warm-up: connections, caches
        results = measure(calls, iterations)
    print(f"{iterations} interleaved rounds on DynamoDB Local\n")
    print("| call | median ms | vs bare boto3 | client CPU ms/call |\n|---|---|---|---|")
    for name, (median, cpu) in results.items():
        bare_name = "bare GetItem" if "GET" in name or "GetItem" in name else "bare PutItem"
        print(f"| {name} | {median:.3f} | {median / results[bare_name][0]:.2f}x | {cpu:.3f} |")


if __name__ == "__main__":
    main()
