"""Counting and timing for the peer benchmark: the same measures for Redimo and for a boto3 peer.

A peer's DynamoDB requests are counted by botocore event hooks on its own client (``after-call``,
one per API call, failed ones included; each request asks for ``ReturnConsumedCapacity=TOTAL``,
which changes what DynamoDB reports, not what it charges). Redimo's lean transport bypasses botocore's
events, so Redimo's side is read from its gateway's own counters (``Gateway.usage``), which count the
same things: one per request, the capacity DynamoDB reported.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

from redimo.gateway import Gateway

# operations whose requests take ReturnConsumedCapacity
CAPACITY = frozenset({"GetItem", "PutItem", "UpdateItem", "DeleteItem", "BatchGetItem", "BatchWriteItem",
                      "Query", "Scan", "TransactGetItems", "TransactWriteItems"})
READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})


@dataclass
class Spent:
    """Requests by operation and capacity units: a running total or the difference of two."""

    requests: Counter = field(default_factory=Counter)
    read_units: float = 0.0
    write_units: float = 0.0

    def __sub__(self, other: Spent) -> Spent:
        return Spent(self.requests - other.requests, self.read_units - other.read_units,
                     self.write_units - other.write_units)

    def __add__(self, other: Spent) -> Spent:
        return Spent(self.requests + other.requests, self.read_units + other.read_units,
                     self.write_units + other.write_units)


class BotocoreCounter:
    """Counts the requests of boto3 clients (a peer's) through their own event hooks."""

    def __init__(self) -> None:
        self.spent = Spent()

    def attach(self, client: Any) -> None:
        events = client.meta.events
        events.register("before-parameter-build.dynamodb", self._ask_capacity)
        events.register("after-call.dynamodb", self._count)

    @staticmethod
    def _ask_capacity(params: dict, model: Any, **_: Any) -> None:
        if model.name in CAPACITY:
            params["ReturnConsumedCapacity"] = "TOTAL"  # the peer's has_key asks for NONE

    def _count(self, parsed: dict, model: Any, **_: Any) -> None:
        self.spent.requests[model.name] += 1
        consumed = parsed.get("ConsumedCapacity")  # present on errors too (a failed conditional write)
        for entry in consumed if isinstance(consumed, list) else [consumed] if consumed else []:
            units = entry.get("CapacityUnits", 0.0)
            if model.name in READS:
                self.spent.read_units += units
            else:
                self.spent.write_units += units

    def snapshot(self) -> Spent:
        return Spent(Counter(self.spent.requests), self.spent.read_units, self.spent.write_units)


def gateway_spent(*gateways: Gateway) -> Callable[[], Spent]:
    """What Redimo's gateways have spent, as their own counters say (names as DynamoDB's operations)."""
    names = {"get_item": "GetItem", "put_item": "PutItem", "update_item": "UpdateItem", "delete_item": "DeleteItem",
             "batch_get_item": "BatchGetItem", "batch_write_item": "BatchWriteItem", "query": "Query",
             "scan": "Scan", "transact_write_items": "TransactWriteItems", "transact_get_items": "TransactGetItems"}

    def spent() -> Spent:
        total = Spent()
        for gateway in gateways:
            usage = gateway.usage.snapshot()
            total += Spent(Counter({names.get(op, op): count for op, count in usage.requests.items()}),
                           usage.read_units, usage.write_units)
        return total
    return spent


@dataclass
class Side:
    """One library's way of doing an operation: ``prepare(i)`` (untimed) returns the call to time."""

    library: str
    prepare: Callable[[int], Callable[[], Any]]
    spent: Callable[[], Spent]
    wall: list[float] = field(default_factory=list)
    cpu: float = 0.0
    used: Spent = field(default_factory=Spent)

    def run(self, index: int) -> None:
        call = self.prepare(index)
        before = self.spent()
        started, started_cpu = time.perf_counter(), time.process_time()
        call()
        self.cpu += time.process_time() - started_cpu
        self.wall.append(time.perf_counter() - started)
        self.used += self.spent() - before

    def reset(self) -> None:
        self.wall, self.cpu, self.used = [], 0.0, Spent()

    def row(self) -> dict[str, Any]:
        n = len(self.wall)
        ordered = sorted(self.wall)
        return {"library": self.library, "calls": n, "ops/s": n / sum(self.wall),
                "p50": statistics.median(ordered) * 1e3, "p99": ordered[min(n - 1, int(n * 0.99))] * 1e3,
                "cpu": self.cpu / n * 1e3,
                "requests": {op: count / n for op, count in sorted(self.used.requests.items())},
                "rcu": self.used.read_units / n, "wcu": self.used.write_units / n}


@dataclass
class Operation:
    """An operation measured on Redimo and on its peer; ``every``: run in one round out of that many."""

    name: str
    sides: list[Side]
    every: int = 1


def measure(operations: list[Operation], rounds: int, first: int = 0) -> None:
    """Every operation on every side, round by round (the sides' order alternating between rounds);
    rounds are numbered from ``first`` (keys that a round writes are named after its number)."""
    for index in range(first, first + rounds):
        for operation in operations:
            if index % operation.every == 0:
                for side in operation.sides if (index // operation.every) % 2 == 0 else operation.sides[::-1]:
                    side.run(index)
