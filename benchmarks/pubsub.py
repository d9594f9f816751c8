"""Measure Pub/Sub latency and idle cost against DynamoDB Local.

    python benchmarks/pubsub.py [--messages N] [--idle SECONDS]

A subscriber client (its own Redimo, so its own poller) listens on one channel; a publisher client
publishes one message at a time, each after a random pause so that the subscriber is idle, carrying
its send time. Latency is from just before PUBLISH to get_message returning it. The idle cost is the
subscriber's DynamoDB requests over ``--idle`` seconds with nothing published, per minute.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import uuid

from redimo import Redimo
from redimo.gateway import Gateway, make_client
from redimo.local import dynamodb_local
from redimo.pubsub import INTERVAL
from redimo.table import create_table

TABLE = "redimo-bench"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--idle", type=float, default=20.0)
    options = parser.parse_args()
    with dynamodb_local() as endpoint:
        client = make_client(endpoint_url=endpoint)
        create_table(Gateway(TABLE, client))
        namespace = f"bench-{uuid.uuid4().hex}"
        publisher = Redimo(TABLE, namespace, client=client)
        subscriber = Redimo(TABLE, namespace, client=make_client(endpoint_url=endpoint))
        pubsub = subscriber.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe("bench")
        time.sleep(1)
        before = subscriber.gateway.usage.snapshot()
        time.sleep(options.idle)
        idle = (subscriber.gateway.usage - before).total_requests * 60 / options.idle
        latencies = []
        for _ in range(options.messages):
            time.sleep(random.uniform(0.1, 0.3))
            sent = time.perf_counter()
            publisher.publish("bench", str(sent))
            message = None
            while message is None:
                message = pubsub.get_message(timeout=5)
            latencies.append((time.perf_counter() - float(message["data"])) * 1000)
        pubsub.close()
        deciles = statistics.quantiles(latencies, n=10)
        print(f"poll interval {INTERVAL * 1000:.0f} ms, {options.messages} messages to an idle subscriber "
              "(DynamoDB Local)")
        print(f"latency: median {statistics.median(latencies):.1f} ms, p90 {deciles[8]:.1f} ms, "
              f"max {max(latencies):.1f} ms")
        print(f"idle subscriber, 1 channel: {idle:.0f} requests per minute")


if __name__ == "__main__":
    main()
