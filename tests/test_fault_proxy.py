"""The fault-injecting proxy (fault_proxy.py) in front of DynamoDB Local: it forwards faithfully, its
faults reach botocore as intended, and a lost reply still means the write was applied."""

from __future__ import annotations

import socket
import uuid
from typing import Any, Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError

from fault_proxy import FaultProxy

NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=10)


def client(endpoint: str, config: Config = NO_RETRIES) -> Any:
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1", config=config)


@pytest.fixture
def upstream(dynamodb_local_endpoint: str) -> Any:
    """A client straight to DynamoDB Local."""
    return client(dynamodb_local_endpoint)


@pytest.fixture
def table(upstream: Any) -> Iterator[str]:
    """A table of the test's own, keyed by ``pk``."""
    name = f"fault-proxy-{uuid.uuid4().hex[:12]}"
    upstream.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                          KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    yield name
    upstream.delete_table(TableName=name)


def item(upstream: Any, table: str, pk: str) -> dict | None:
    return upstream.get_item(TableName=table, Key={"pk": {"S": pk}}, ConsistentRead=True).get("Item")


def test_rate_zero_forwards_everything(dynamodb_local_endpoint: str, upstream: Any) -> None:
    name = f"fault-proxy-{uuid.uuid4().hex[:12]}"
    with FaultProxy(dynamodb_local_endpoint, rate=0) as proxy:
        proxied = client(proxy.endpoint)
        proxied.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                             KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                             AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
        assert name in proxied.list_tables()["TableNames"]
        proxied.put_item(TableName=name, Item={"pk": {"S": "a"}, "v": {"B": b"\x00\xff"}, "n": {"N": "42"}})
        got = proxied.get_item(TableName=name, Key={"pk": {"S": "a"}}, ConsistentRead=True)["Item"]
        assert got == {"pk": {"S": "a"}, "v": {"B": b"\x00\xff"}, "n": {"N": "42"}}
        with pytest.raises(ClientError) as error:  # upstream errors are relayed as they are
            proxied.get_item(TableName=f"{name}-missing", Key={"pk": {"S": "a"}})
        assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"
        proxied.delete_table(TableName=name)
        assert proxy.counts == {"requests": 6, "forwarded": 6}
    assert name not in upstream.list_tables()["TableNames"]


def test_drop_reply_loses_the_reply_but_applies_the_write(dynamodb_local_endpoint: str, upstream: Any,
                                                          table: str) -> None:
    with FaultProxy(dynamodb_local_endpoint, rate=1.0, kinds=("drop_reply",)) as proxy:
        with pytest.raises(ConnectionClosedError):
            client(proxy.endpoint).put_item(TableName=table, Item={"pk": {"S": "k"}, "v": {"S": "written"}})
        assert proxy.counts == {"requests": 1, "forwarded": 1, "drop_reply": 1}
    assert item(upstream, table, "k") == {"pk": {"S": "k"}, "v": {"S": "written"}}


@pytest.mark.parametrize("kind, status, code", [("server_error", 500, "InternalServerError"),
                                                ("throttle", 400, "ThrottlingException")])
def test_error_faults_are_not_forwarded(dynamodb_local_endpoint: str, upstream: Any, table: str,
                                        kind: str, status: int, code: str) -> None:
    with FaultProxy(dynamodb_local_endpoint, rate=1.0, kinds=(kind,)) as proxy:
        with pytest.raises(ClientError) as error:
            client(proxy.endpoint).put_item(TableName=table, Item={"pk": {"S": "k"}})
        assert proxy.counts == {"requests": 1, kind: 1}
    assert error.value.response["Error"] == {"Code": code, "Message": "injected"}
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert item(upstream, table, "k") is None


def test_botocore_retries_through_faults(dynamodb_local_endpoint: str, upstream: Any, table: str) -> None:
    """Only writes are faulted, and the rate can be raised once the data is in place."""
    retrying = Config(retries={"total_max_attempts": 10, "mode": "standard"}, connect_timeout=2, read_timeout=10)
    with FaultProxy(dynamodb_local_endpoint, rate=0, seed=1, operations=frozenset({"PutItem"})) as proxy:
        proxied, reader = client(proxy.endpoint, retrying), client(proxy.endpoint)  # reader: no retries
        proxied.put_item(TableName=table, Item={"pk": {"S": "k"}, "n": {"N": "0"}})
        proxy.rate = 0.5
        for n in range(1, 7):
            proxied.put_item(TableName=table, Item={"pk": {"S": "k"}, "n": {"N": str(n)}})
            assert item(reader, table, "k") == {"pk": {"S": "k"}, "n": {"N": str(n)}}
        faults = sum(proxy.counts[kind] for kind in ("server_error", "throttle", "drop_reply"))
    assert faults > 0  # seed 1 faults some of the puts, never a GetItem
    assert proxy.counts["requests"] == 7 + faults + 6
    assert proxy.counts["forwarded"] == 7 + proxy.counts["drop_reply"] + 6


def test_seeded_decisions_are_deterministic(dynamodb_local_endpoint: str) -> None:
    operations = ["PutItem", "GetItem", "UpdateItem", "Query"] * 50
    proxies = [FaultProxy(dynamodb_local_endpoint, rate=0.3, seed=seed) for seed in (1, 1, 2)]
    try:
        first, again, other = ([proxy.decide(op) for op in operations] for proxy in proxies)
    finally:
        for proxy in proxies:
            proxy.stop()
    assert first == again
    assert first != other
    assert {kind for kind in first if kind} == {"server_error", "throttle", "drop_reply"}
    assert 30 < sum(kind is not None for kind in first) < 90  # about 0.3 of 200
    writes_only = FaultProxy(dynamodb_local_endpoint, rate=1.0, seed=1, operations=frozenset({"PutItem"}))
    writes_only.stop()
    assert [writes_only.decide(op) is None for op in ("GetItem", "PutItem", "Query")] == [True, False, True]


def test_stop_closes_every_connection_and_thread(dynamodb_local_endpoint: str) -> None:
    with FaultProxy(dynamodb_local_endpoint, rate=0) as proxy:
        proxied = client(proxy.endpoint)
        proxied.list_tables()
        handlers = list(proxy._connections.values())  # botocore keeps its connection alive
        assert len(handlers) == 1 and handlers[0].is_alive()
        serving = proxy._thread
    assert serving is not None and not serving.is_alive()
    assert not any(thread.is_alive() for thread in handlers)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", int(proxy.endpoint.rsplit(":", 1)[1])), timeout=2).close()
