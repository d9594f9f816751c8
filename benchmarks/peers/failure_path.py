"""The failure path of a conditional write against its success path and a read, on DynamoDB Local:
SET NX of an existing key (refused) with the lean transport's own error parsing and with botocore's
parser (how the lean transport read every error before), SET NX of a new key (applied), SET and GET,
interleaved, with the client CPU time per call (``time.process_time``).

    python benchmarks/peers/failure_path.py [--iterations N]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(BENCHMARKS.parent / "core"), str(BENCHMARKS)]

from redimo import Redimo  # noqa: E402
from redimo.local import dynamodb_local, use_local_credentials  # noqa: E402
from redimo.table import create_table  # noqa: E402
from transport import measure  # noqa: E402  (benchmarks/transport.py: interleaved medians and client CPU)

TABLE = "redimo-bench-failure-path"
VALUE = b"v" * 100


def main() -> None:
    use_local_credentials()  # everything here talks to DynamoDB Local
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3000)
    iterations = parser.parse_args().iterations
    with dynamodb_local() as endpoint:
        lean = Redimo(TABLE, endpoint_url=endpoint, namespace="lean")
        create_table(lean.gateway)
        botocore_parsed = Redimo(TABLE, endpoint_url=endpoint, namespace="botocore")
        assert lean.gateway.transport is not None and botocore_parsed.gateway.transport is not None
        botocore_parsed.gateway.transport._parse_client_error = lambda response: None  # type: ignore[method-assign]
        for r in (lean, botocore_parsed):
            r.set("exists", VALUE)
        new_keys = itertools.count()
        calls = {
            "GET": lambda: lean.get("exists"),
            "SET": lambda: lean.set("plain", VALUE),
            "SET NX, new key (applied)": lambda: lean.set(f"new-{next(new_keys)}", VALUE, nx=True),
            "SET NX, existing key (refused)": lambda: lean.set("exists", VALUE, nx=True),
            "the same, errors parsed by botocore": lambda: botocore_parsed.set("exists", VALUE, nx=True),
        }
        measure(calls, 300)  # warm-up: connections, caches
        results = measure(calls, iterations)
    print(f"{iterations} interleaved rounds on DynamoDB Local\n")
    print("| call | median ms | vs GET | client CPU ms/call |\n|---|---|---|---|")
    for name, (median, cpu) in results.items():
        print(f"| {name} | {median:.3f} | {median / results['GET'][0]:.2f}x | {cpu:.3f} |")


if __name__ == "__main__":
    main()
