"""The gateway: batch splitting and unprocessed retries, retries of throttling and transaction
conflicts, connection errors, and the request / capacity accounting."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections import Counter
from typing import Any, Iterator

import pytest
import redis
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

import redimo
from redimo import Redimo
from redimo.gateway import Gateway, TransactionConditionFailed, make_client

def key(name: str) -> dict:
    return {"pk": {"B": name.encode()}, "sk": {"B": b"\x00"}}


def item(name: str, value: str = "v") -> dict:
    return {**key(name), "t": {"S": "string"}, "v": {"B": value.encode()}}


class PartialBatches:
    """A boto3 client stand-in that, for its first ``partial_calls`` batch requests, has DynamoDB
    process only the first ``take`` keys / items and returns the rest as unprocessed."""

    def __init__(self, client: Any, partial_calls: int, take: int) -> None:
        self._client = client
        self.partial_calls = partial_calls
        self.take = take
        self.calls: Counter = Counter()
        self.sizes: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def _split(self) -> bool:
        if self.partial_calls > 0:
            self.partial_calls -= 1
            return True
        return False

    def batch_get_item(self, RequestItems: dict, **params: Any) -> dict:
        self.calls["batch_get_item"] += 1
        (table, request), = RequestItems.items()
        self.sizes.append(len(request["Keys"]))
        keys, rest = request["Keys"], []
        if self._split():
            keys, rest = keys[:self.take], keys[self.take:]
        response: dict = {"Responses": {table: []}, "UnprocessedKeys": {}}
        if keys:
            response = self._client.batch_get_item(RequestItems={table: {**request, "Keys": keys}}, **params)
            assert not response.get("UnprocessedKeys")
        if rest:
            response["UnprocessedKeys"] = {table: {**request, "Keys": rest}}
        return response

    def batch_write_item(self, RequestItems: dict, **params: Any) -> dict:
        self.calls["batch_write_item"] += 1
        (table, requests), = RequestItems.items()
        self.sizes.append(len(requests))
        rest: list = []
        if self._split():
            requests, rest = requests[:self.take], requests[self.take:]
        response: dict = {"UnprocessedItems": {}}
        if requests:
            response = self._client.batch_write_item(RequestItems={table: requests}, **params)
            assert not response.get("UnprocessedItems")
        if rest:
            response["UnprocessedItems"] = {table: rest}
        return response


@pytest.fixture
def names() -> Iterator[str]:
    """A fresh prefix for raw test items, so tests sharing the table never collide."""
    yield f"gw-{uuid.uuid4().hex}-"


@pytest.fixture
def fresh_client(store: Any) -> Any:
    """A client made by :func:`make_client` (standard retry mode) on the store."""
    endpoint = None if store.is_moto else store.client.meta.endpoint_url
    return make_client(endpoint_url=endpoint, region_name="us-east-1")


def stored(store: Any, keys: list[dict]) -> list[dict]:
    found = []
    for k in keys:
        got = store.client.get_item(TableName=store.table, Key=k, ConsistentRead=True).get("Item")
        if got:
            found.append(got)
    return found


# -- batch sizes and unprocessed retries ------------------------------------------------------

def test_batch_get_is_split_by_100(store: Any, names: str) -> None:
    gateway = Gateway(store.table, store.client)
    gateway.batch_write(puts=[item(f"{names}{i}") for i in range(120)])
    found = gateway.batch_get([key(f"{names}{i}") for i in range(250)])
    assert gateway.usage.requests["batch_get_item"] == 3
    assert sorted(got["pk"]["B"] for got in found) == sorted(f"{names}{i}".encode() for i in range(120))


def test_batch_write_is_split_by_25(store: Any, names: str) -> None:
    gateway = Gateway(store.table, store.client)
    gateway.batch_write(puts=[item(f"{names}{i}") for i in range(60)])
    assert dict(gateway.usage.requests) == {"batch_write_item": 3}
    assert len(stored(store, [key(f"{names}{i}") for i in range(60)])) == 60
    gateway.batch_write(deletes=[key(f"{names}{i}") for i in range(30)], puts=[item(f"{names}x")])
    assert gateway.usage.requests["batch_write_item"] == 5
    assert len(stored(store, [key(f"{names}{i}") for i in range(60)])) == 30


def test_unprocessed_keys_are_retried_until_done(store: Any, names: str) -> None:
    Gateway(store.table, store.client).batch_write(puts=[item(f"{names}{i}", str(i)) for i in range(150)])
    proxy = PartialBatches(store.client, partial_calls=3, take=30)
    gateway = Gateway(store.table, proxy)
    found = gateway.batch_get([key(f"{names}{i}") for i in range(150)])
    # first 100 keys: 30 + 30 + 30 + the last 10; then the other 50 in one request
    assert proxy.sizes == [100, 70, 40, 10, 50]
    assert gateway.usage.requests["batch_get_item"] == proxy.calls["batch_get_item"] == 5
    assert {got["pk"]["B"]: got["v"]["B"] for got in found} == {
        f"{names}{i}".encode(): str(i).encode() for i in range(150)}


def test_fully_unprocessed_batch_get_is_retried(store: Any, names: str) -> None:
    Gateway(store.table, store.client).batch_write(puts=[item(f"{names}{i}") for i in range(5)])
    proxy = PartialBatches(store.client, partial_calls=4, take=0)
    gateway = Gateway(store.table, proxy)
    found = gateway.batch_get([key(f"{names}{i}") for i in range(5)])
    assert len(found) == 5
    assert proxy.sizes == [5] * 5
    assert gateway.usage.requests["batch_get_item"] == 5


def test_unprocessed_items_are_retried_until_done(store: Any, names: str) -> None:
    proxy = PartialBatches(store.client, partial_calls=2, take=10)
    gateway = Gateway(store.table, proxy)
    gateway.batch_write(puts=[item(f"{names}{i}") for i in range(40)])
    # first 25 items: 10 + 10 + the last 5; then the other 15 in one request
    assert proxy.sizes == [25, 15, 5, 15]
    assert gateway.usage.requests["batch_write_item"] == 4
    assert len(stored(store, [key(f"{names}{i}") for i in range(40)])) == 40

    proxy.partial_calls, proxy.take = 3, 0
    gateway.batch_write(deletes=[key(f"{names}{i}") for i in range(40)])
    assert gateway.usage.requests["batch_write_item"] == 4 + 2 + 3
    assert stored(store, [key(f"{names}{i}") for i in range(40)]) == []


def test_chunked_value_survives_unprocessed_batches(store: Any) -> None:
    proxy = PartialBatches(store.client, partial_calls=4, take=1)
    r = Redimo(store.table, namespace=f"test-{uuid.uuid4().hex}", client=proxy)
    value = bytes(range(256)) * 4000  # 1,024,000 bytes: 3 chunks
    r.set("big", value)
    assert r.get("big") == value
    assert proxy.sizes == [3, 2, 1, 3, 2]  # chunk writes, one processed a request; then the reads
    assert dict(proxy.calls) == {"batch_write_item": 3, "batch_get_item": 2}


# -- connection errors --------------------------------------------------------------------------

def test_unreachable_endpoint_raises_connection_error_quickly() -> None:
    client = Redimo("redimo-unreachable", endpoint_url="http://127.0.0.1:1", region_name="us-east-1")
    sent: list[float] = []
    client.gateway.client.meta.events.register("before-send.dynamodb", lambda **_: sent.append(time.monotonic()))
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError, match=r"http://127\.0\.0\.1:1\b") as raised:
        client.get("k")
    elapsed = time.monotonic() - started
    assert elapsed < 5, elapsed
    assert len(sent) == 2  # connect_attempts, not botocore's max_attempts + 1
    assert "DynamoDB" in str(raised.value)


@pytest.fixture
def blackhole() -> Iterator[str]:
    """An endpoint that never completes a TCP handshake: a listening socket whose accept queue
    is full (backlog 0, filled by one connection), so the kernel drops further SYNs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    filler = socket.create_connection(server.getsockname(), timeout=1)
    probe = socket.socket()
    probe.settimeout(0.2)
    try:
        probe.connect(server.getsockname())
        pytest.fail("the accept queue did not fill up: cannot simulate an unreachable host here")
    except (socket.timeout, BlockingIOError):
        pass
    finally:
        probe.close()
    try:
        yield "http://127.0.0.1:%d" % server.getsockname()[1]
    finally:
        filler.close()
        server.close()


def test_connect_timeouts_are_not_retried_max_attempts_times(blackhole: str) -> None:
    client = Redimo("redimo-blackhole", endpoint_url=blackhole, region_name="us-east-1", connect_timeout=0.5)
    sent: list[float] = []
    client.gateway.client.meta.events.register("before-send.dynamodb", lambda **_: sent.append(time.monotonic()))
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError, match="Connect timeout") as raised:
        client.set("k", "v")
    elapsed = time.monotonic() - started
    assert blackhole in str(raised.value)
    assert len(sent) == 2
    assert 0.9 < elapsed < 3, elapsed  # two connect timeouts of 0.5 s, where 6 were made before


@pytest.mark.parametrize("retry_mode", ["standard", "adaptive", "legacy"])
def test_connect_attempts_is_configurable(retry_mode: str) -> None:
    client = make_client(endpoint_url="http://127.0.0.1:1", region_name="us-east-1", connect_attempts=4,
                         retry_mode=retry_mode)
    sent: list[float] = []
    client.meta.events.register("before-send.dynamodb", lambda **_: sent.append(time.monotonic()))
    with pytest.raises(redis.ConnectionError):
        Gateway("redimo-unreachable", client).get(key("k"))
    assert len(sent) == 4


# -- retries of throttling and transaction conflicts ----------------------------------------------

def error_response(request: Any, code: str, status: int = 400, **fields: Any) -> AWSResponse:
    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": code, **fields})

    class Raw:
        def stream(self, **_: Any) -> Iterator[bytes]:
            yield body.encode()

    return AWSResponse(request.url, status, {"x-amzn-RequestId": "injected", "Content-Type":
                                          "application/x-amz-json-1.0"}, Raw())


class Inject:
    """A before-send handler answering the first ``times`` requests with an error."""

    def __init__(self, times: int, code: str, **fields: Any) -> None:
        self.times, self.code, self.fields = times, code, fields
        self.seen = 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        self.seen += 1
        if self.seen <= self.times:
            return error_response(request, self.code, **self.fields)
        return None


@pytest.mark.parametrize("retry_mode", ["standard", "adaptive"])
def test_throttling_is_retried(store: Any, retry_mode: str) -> None:
    endpoint = None if store.is_moto else store.client.meta.endpoint_url
    fresh_client = make_client(endpoint_url=endpoint, region_name="us-east-1", retry_mode=retry_mode)
    r = Redimo(store.table, namespace=f"test-{uuid.uuid4().hex}", client=fresh_client)
    r.set("k", "v")
    throttle = Inject(1, "ProvisionedThroughputExceededException")
    fresh_client.meta.events.register_first("before-send.dynamodb.GetItem", throttle)
    assert r.get("k") == b"v"
    assert throttle.seen == 2
    assert r.gateway.usage.requests["get_item"] == 1  # one logical request; botocore retried inside


def test_throttling_gives_up_after_max_attempts(store: Any) -> None:
    endpoint = None if store.is_moto else store.client.meta.endpoint_url
    client = make_client(endpoint_url=endpoint, region_name="us-east-1", max_attempts=1)
    throttle = Inject(10, "ThrottlingException")
    client.meta.events.register_first("before-send.dynamodb.GetItem", throttle)
    with pytest.raises(ClientError, match="ThrottlingException"):
        Gateway(store.table, client).get(key("k"))
    assert throttle.seen == 2


def test_retries_do_not_run_out_after_a_burst_of_errors(store: Any) -> None:
    """botocore's retry quota (500 units, 14 per retry of a 5xx, refunded only on success) would stop all
    retries after this burst; each request still gets its own max_attempts."""
    endpoint = None if store.is_moto else store.client.meta.endpoint_url
    client = make_client(endpoint_url=endpoint, region_name="us-east-1", max_attempts=1)
    gateway = Gateway(store.table, client)
    burst = Inject(2 * 40 + 1, "InternalServerError", status=500)
    client.meta.events.register_first("before-send.dynamodb.GetItem", burst)
    for _ in range(40):
        with pytest.raises(ClientError, match="InternalServerError"):
            gateway.get(key("k"))
    assert gateway.get(key("k")) is None  # one 500, then the retry
    assert burst.seen == 2 * 40 + 2


def test_transaction_conflict_is_retried(store: Any, fresh_client: Any, names: str) -> None:
    gateway = Gateway(store.table, fresh_client)
    conflict = Inject(2, "TransactionCanceledException",
                      CancellationReasons=[{"Code": "None"}, {"Code": "TransactionConflict"}])
    fresh_client.meta.events.register_first("before-send.dynamodb.TransactWriteItems", conflict)
    gateway.transact_write([{"Put": {"Item": item(f"{names}a", "1")}}, {"Put": {"Item": item(f"{names}b", "2")}}])
    assert conflict.seen == 3
    assert gateway.usage.requests["transact_write_items"] == 3
    assert [got["v"]["B"] for got in stored(store, [key(f"{names}a"), key(f"{names}b")])] == [b"1", b"2"]


def test_transaction_cancelled_otherwise_is_raised(store: Any, fresh_client: Any, names: str) -> None:
    gateway = Gateway(store.table, fresh_client)
    fresh_client.meta.events.register_first(
        "before-send.dynamodb.TransactWriteItems",
        Inject(1, "TransactionCanceledException", CancellationReasons=[{"Code": "ValidationError"}]))
    with pytest.raises(ClientError, match="TransactionCanceledException"):
        gateway.transact_write([{"Put": {"Item": item(f"{names}a")}}])
    assert gateway.usage.requests["transact_write_items"] == 1


def test_transaction_condition_failure_is_mapped(store: Any, names: str) -> None:
    gateway = Gateway(store.table, store.client)
    gateway.put(item(f"{names}exists", "old"))
    with pytest.raises(TransactionConditionFailed) as raised:
        gateway.transact_write([
            {"Put": {"Item": item(f"{names}new", "x")}},
            {"Put": {"Item": item(f"{names}exists", "x"), "ConditionExpression": "attribute_not_exists(pk)"}},
        ])
    assert raised.value.failed == [False, True]
    assert raised.value.items[0] is None
    assert raised.value.items[1]["v"] == {"B": b"old"}
    assert stored(store, [key(f"{names}new")]) == []
    assert gateway.usage.requests["transact_write_items"] == 1


def test_transaction_is_limited_to_100_actions(store: Any, names: str) -> None:
    gateway = Gateway(store.table, store.client)
    with pytest.raises(ValueError, match="at most 100"):
        gateway.transact_write([{"Put": {"Item": item(f"{names}{i}")}} for i in range(101)])
    assert gateway.usage.total_requests == 0


# -- accounting ------------------------------------------------------------------------------------

def head_size(r: Redimo, name: bytes, value_size: int) -> int:
    """DynamoDB's size of a string head item: attribute names plus values (pk, sk, t, w, v)."""
    return (len("pk") + len(r.engine.db.pk(name)) + len("sk") + 1 + len("t") + len("string") + len("w") + 8
            + len("v") + value_size)


def spend(r: Redimo, action) -> tuple[float, float]:
    before = r.gateway.usage.snapshot()
    action()
    spent = r.gateway.usage - before
    return spent.read_units, spent.write_units


@pytest.mark.moto_bug("consumed capacity comes back as fixed numbers")
def test_consumed_capacity_is_counted(make_redimo) -> None:
    r = make_redimo()
    kb = 1024 - head_size(r, b"k1", 0)  # a value making the item exactly 1 KB
    assert spend(r, lambda: r.set("k1", b"x" * kb)) == (0.0, 1.0)
    assert spend(r, lambda: r.set("k2", b"x" * (kb + 1))) == (0.0, 2.0)
    assert spend(r, lambda: r.set("k5", b"x" * (5 * 1024 - head_size(r, b"k5", 0)))) == (0.0, 5.0)
    assert spend(r, lambda: r.get("k1")) == (1.0, 0.0)  # strongly consistent: 1 RCU per 4 KB
    four_kb = 4096 - head_size(r, b"k4", 0)
    r.set("k4", b"x" * four_kb)
    r.set("k4+", b"x" * (four_kb + 1))
    assert spend(r, lambda: r.get("k4")) == (1.0, 0.0)
    assert spend(r, lambda: r.get("k4+")) == (2.0, 0.0)

    eventual = make_redimo(namespace=r.engine.db.namespace, consistent_reads=False)
    assert spend(eventual, lambda: eventual.get("k1")) == (0.5, 0.0)
    assert spend(eventual, lambda: eventual.get("k4+")) == (1.0, 0.0)
    assert dict(eventual.gateway.usage.requests) == {"get_item": 2}
    assert (r.gateway.usage.read_units, r.gateway.usage.write_units) == (4.0, 1.0 + 2.0 + 5.0 + 4.0 + 5.0)


def test_consumed_capacity_of_batches_is_summed(make_redimo, store: Any) -> None:
    r = make_redimo()
    r.mset({f"k{i}": b"x" * 1000 for i in range(3)})
    before = r.gateway.usage.snapshot()
    r.mget("k0", "k1", "k2")
    spent = r.gateway.usage - before
    assert dict(spent.requests) == {"batch_get_item": 1}
    assert spent.read_units > 0 and spent.write_units == 0
    if not store.is_moto:  # moto reports fixed numbers
        assert spent.read_units == 3.0


def test_usage_arithmetic(r: Redimo) -> None:
    before = r.gateway.usage.snapshot()
    r.set("a", "1")
    r.get("a")
    r.get("a")
    spent = r.gateway.usage - before
    assert dict(spent.requests) == {"put_item": 1, "get_item": 2}
    assert spent.total_requests == 3
    assert before.total_requests == 0 and r.gateway.usage.total_requests == 3


def test_failed_requests_are_counted(r: Redimo) -> None:
    r.set("k", "v")
    before = r.gateway.usage.snapshot()
    assert r.set("k", "w", nx=True) is None  # a refused conditional PutItem
    assert dict((r.gateway.usage - before).requests) == {"put_item": 1}


def test_gateway_reports_its_endpoint(dynamodb_local_endpoint: str) -> None:
    gateway = Gateway("any-table", endpoint_url=dynamodb_local_endpoint, region_name="us-east-1")
    assert gateway.endpoint == dynamodb_local_endpoint
    assert redimo.Redimo(endpoint_url=dynamodb_local_endpoint).gateway.endpoint == dynamodb_local_endpoint
