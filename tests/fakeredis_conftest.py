"""The conftest that scripts/fakeredis-tests.sh puts in place of fakeredis's own ``test/conftest.py``.

Every test that takes the ``r`` fixture runs twice: on ``redimo.Redimo`` (a fresh namespace of the table
FAKEREDIS_TESTS_TABLE, on AWS_ENDPOINT_URL_DYNAMODB) and on fakeredis's own FakeStrictRedis, both RESP2
and both as Redis 7.0 (the version Redimo is checked against), so one report shows where they differ. The
suite's markers keep their meaning: version ranges outside 7.0, ``fake_only``, ``resp3_only`` and
unsupported server types skip, as they would against a real Redis 7.0.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Any, Iterator

import fakeredis
import pytest
import redis

from redimo import Redimo

VERSION = (7, 0)
TABLE = os.environ.get("FAKEREDIS_TESTS_TABLE", "fakeredis-tests")


@dataclass
class ServerDetails:
    """What the suite's tests read of the server they run against (``from test.conftest import
    ServerDetails``)."""

    server_type: str = "redis"
    redis_version: tuple[int, ...] = VERSION

    @property
    def server_version(self) -> tuple[int, ...]:
        return self.redis_version


@pytest.fixture(scope="session")
def real_server_details() -> ServerDetails:
    return ServerDetails()


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in str(text).split("."))


def _skip_for_markers(node: pytest.Item, target: str) -> None:
    if target == "redimo" and node.get_closest_marker("fake_only"):
        pytest.skip("Test is only applicable to fakeredis")
    if node.get_closest_marker("resp3_only"):
        pytest.skip("Test is for RESP3 only")
    unsupported = node.get_closest_marker("unsupported_server_types")
    if unsupported and "redis" in unsupported.args:
        pytest.skip("Test does not apply to Redis")
    versions = node.get_closest_marker("supported_server_versions")
    if versions:
        low = _version(versions.kwargs.get("min_redis_ver", "0"))
        high = _version(versions.kwargs.get("max_redis_ver", "100"))
        if not low <= VERSION[:len(low)] or VERSION[:len(high)] > high:
            pytest.skip(f"Test is for Redis {low}..{high}, not {VERSION}")


@pytest.fixture(params=["redimo", "fakeredis"])
def create_connection(request: pytest.FixtureRequest) -> Any:
    target = request.param
    _skip_for_markers(request.node, target)
    decode_responses = request.node.get_closest_marker("decode_responses") is not None
    namespace = f"fakeredis-{uuid.uuid4().hex}"
    server = fakeredis.FakeServer(server_type="redis", version=VERSION)

    def factory(**kwargs: Any) -> redis.Redis:
        kwargs.pop("db", None)  # Redimo's databases are namespaces; the fixture gives each test its own
        if target == "redimo":
            return Redimo(table=TABLE, namespace=namespace, decode_responses=decode_responses)
        return fakeredis.FakeStrictRedis(server=server, decode_responses=decode_responses, protocol=2, **kwargs)

    return factory


@pytest.fixture
def r(create_connection: Any) -> Iterator[redis.Redis]:
    connection = create_connection(db=2)
    yield connection
    connection.close()
