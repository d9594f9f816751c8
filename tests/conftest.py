"""Fixtures: DynamoDB Local (the reference store) and moto run every test; a real redis-server is
the reference for Redis semantics."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import boto3
import pytest
import redis
from moto import mock_aws

from differential import Pair, raw
from served import TABLE, Running
from redimo import Redimo
from redimo.gateway import Gateway, make_client
from redimo.local import dynamodb_local, free_port, installed_directory
from redimo.local import redis_server as local_redis_server
from redimo.table import create_table

ROOT = Path(__file__).resolve().parent.parent
for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}.items():
    os.environ.setdefault(name, value)
os.environ.pop("AWS_ENDPOINT_URL_DYNAMODB", None)  # tests choose their endpoint explicitly

# The measured moto 5.2 bugs (DEVELOPERS.md); a test may skip on moto only for one of these.
MOTO_BUGS = {
    "consumed capacity comes back as fixed numbers",
    "items are capped at 405,000 bytes, not 400 KB",
    "the 38-digit number limit is not enforced",
    "a BatchWriteItem of 26 items is accepted",
    "expired items are never deleted",
    "PartiQL UPDATE is broken",
    "PartiQL DELETE takes no ? parameters (an AssertionError in its parser)",
    "TransactWriteItems copies the whole table for each action, so it is slow on large tables",
}


def run_processes(target: Callable[..., Any], argument_lists: list[tuple], timeout: float = 300) -> None:
    """Run ``target(*arguments)`` in one spawned OS process per argument list, all at once; each must
    finish and exit 0 (the stress tests' workers)."""
    spawn = multiprocessing.get_context("spawn")
    processes = [spawn.Process(target=target, args=arguments) for arguments in argument_lists]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout)
        assert process.exitcode == 0, f"{target.__name__}{process.name}: exit code {process.exitcode}"


def wait_until(ready: Callable[[], Any], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if ready():
                return
        except Exception:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start within {seconds} s")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def dynamodb_local_endpoint() -> Iterator[str]:
    """AWS's DynamoDB Local, in memory on a free port, for the whole session."""
    try:
        directory = installed_directory()
    except FileNotFoundError as missing:
        pytest.fail(str(missing))
    with dynamodb_local(directory) as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def dynamodb_local_client(dynamodb_local_endpoint: str) -> Any:
    client = make_client(endpoint_url=dynamodb_local_endpoint)
    create_table(Gateway(TABLE, client))
    return client


@dataclass
class Store:
    name: str
    client: Any
    table: str = TABLE

    @property
    def is_moto(self) -> bool:
        return self.name == "moto"


@pytest.fixture(params=["dynamodb-local", "moto"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    """Each test runs on both stores; DynamoDB Local is the truth where they differ."""
    marker = request.node.get_closest_marker("moto_bug")
    if request.param == "moto":
        if marker:
            assert marker.args[0] in MOTO_BUGS, f"not a measured moto bug: {marker.args[0]}"
            pytest.skip(f"moto bug: {marker.args[0]}")
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            create_table(Gateway(TABLE, client))
            yield Store("moto", client)
    else:
        yield Store("dynamodb-local", request.getfixturevalue("dynamodb_local_client"))


@pytest.fixture
def make_redimo(store: Store, request: pytest.FixtureRequest) -> Callable[..., Redimo]:
    """A factory of clients on the store; each call without a namespace gets a fresh one. Under the
    ``promoted`` mark, the clients write collections in the per-member layout (no compact encoding)."""
    promoted = request.node.get_closest_marker("promoted") is not None

    def make(**options: Any) -> Redimo:
        options.setdefault("namespace", f"test-{uuid.uuid4().hex}")
        if promoted:
            options.setdefault("compact", False)
        options.setdefault("table", store.table)
        return Redimo(client=store.client, **options)

    return make


@pytest.fixture
def r(make_redimo: Callable[..., Redimo]) -> Redimo:
    """A Redimo client in a namespace of its own."""
    return make_redimo()


@pytest.fixture(params=["dynamodb-local", "moto-server"])
def shared_endpoint(request: pytest.FixtureRequest) -> Iterator[str]:
    """A DynamoDB endpoint that threads and OS processes can share, with the test table: DynamoDB
    Local, or moto's server answering one request at a time (as DynamoDB applies each item write
    atomically; in-process moto interleaves concurrent conditional writes and updates)."""
    if request.param == "dynamodb-local":
        url = request.getfixturevalue("dynamodb_local_endpoint")
        create_table(Gateway(TABLE, make_client(endpoint_url=url)))
        yield url
        return
    from threading import Thread

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", free_port(), DomainDispatcherApplication(create_backend_app), threaded=False,
                         request_handler=MotoRequestHandler)
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    create_table(Gateway(TABLE, make_client(endpoint_url=url)))
    try:
        yield url
    finally:
        server.shutdown()
        thread.join()


@pytest.fixture
def table(store: Store) -> Iterator[str]:
    """A table of the test's own (FLUSHALL is then safe), without TTL."""
    name = f"redimo-differential-{uuid.uuid4().hex[:12]}"
    create_table(Gateway(name, store.client), ttl=False)
    yield name
    store.client.delete_table(TableName=name)


@pytest.fixture
def pair(store: Store, table: str, real_redis: redis.Redis, request: pytest.FixtureRequest) -> Pair:
    """Raw clients on a real Redis and on Redimo (a table of its own) for differential tests. Tests of
    hashes and sets take it parametrized (``indirect``) by one of ENCODINGS."""
    limits = ENCODINGS[getattr(request, "param", "default")]
    return Pair(raw(redis.Redis(connection_pool=real_redis.connection_pool)),
                raw(Redimo(table=table, client=store.client, **limits)))


ENCODINGS: dict[str, dict[str, Any]] = {
    "default": {},
    "promoted": {"compact": False},  # every collection in the per-member layout from its first write
    "compact": {"compact_max_entries": 5_000, "compact_max_bytes": 350_000},  # never promoted here
    "promoting": {"compact_max_entries": 2, "compact_max_bytes": 200},  # promoted in mid-sequence
}
ALL_ENCODINGS = pytest.mark.parametrize("pair", list(ENCODINGS)[1:], indirect=True)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[redis.Redis]:
    """A real redis-server on a free port, the reference for Redis semantics."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed: run `make test`")
    with local_redis_server(tmp_path_factory.mktemp("redis")) as port:
        client = redis.Redis(port=port, protocol=2)  # RESP2, as Redimo speaks (redis-py 8 defaults to RESP3)
        wait_until(client.ping, "redis-server", 20)
        yield client


@pytest.fixture
def real_redis(redis_server: redis.Redis) -> redis.Redis:
    redis_server.flushall()
    return redis_server


@pytest.fixture
def serve(dynamodb_local_client: Any) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(**options: Any) -> Running:
        started.append(Running(dynamodb_local_client, **options))
        return started[-1]

    yield start
    for running in started:
        running.stop()
