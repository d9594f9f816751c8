"""The lean transport (redimo/transport.py): the same signatures, responses, errors, retries and counters
as boto3, and boto3 wherever the lean path cannot stand in for it."""

from __future__ import annotations

import datetime
import json
import os
import socket
import ssl
import threading
import uuid
from typing import Any, Callable

import boto3
import pytest
import trustme
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, RefreshableCredentials
from botocore.exceptions import ClientError, EndpointConnectionError, SSLError
from botocore.parsers import create_parser
from botocore.stub import Stubber
from moto import mock_aws
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from urllib3.exceptions import ProtocolError

import fault_proxy
from conftest import TABLE
from fault_proxy import FaultProxy
from redimo import Redimo
from redimo.gateway import Gateway, make_client
from redimo.table import create_table
from redimo.transport import Reply, Signer, decode, encode, read_reply

NOW = datetime.datetime(2026, 3, 9, 23, 59, 58, tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize("credentials", [Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
                                         Credentials("ASIA123", "secret/with+chars", "token=with/long+value  x")])
@pytest.mark.parametrize("url, region, target, body", [
    ("http://127.0.0.1:8000", "us-east-1", "GetItem", b'{"TableName":"t","Key":{"pk":{"B":"AP8="}}}'),
    ("https://dynamodb.eu-west-2.amazonaws.com", "eu-west-2", "PutItem", b"{}"),
    ("https://dynamodb.us-west-2.amazonaws.com:8443", "us-west-2", "Query", "{\"é\":\"ü\"}".encode()),
    ("http://localhost:80", "ap-south-1", "TransactWriteItems", b""),
])
def test_signature_is_botocores(monkeypatch: pytest.MonkeyPatch, credentials: Credentials, url: str, region: str,
                                target: str, body: bytes) -> None:
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: NOW)
    headers = {"X-Amz-Target": f"DynamoDB_20120810.{target}", "Content-Type": "application/x-amz-json-1.0",
               "User-Agent": "anything"}
    request = AWSRequest(method="POST", url=url + "/", data=body, headers=headers)
    SigV4Auth(credentials, "dynamodb", region).add_auth(request)
    amz_date = NOW.strftime("%Y%m%dT%H%M%SZ")
    host = url.split("://")[1].removesuffix(":80").removesuffix(":443")
    signed = {"content-type": headers["Content-Type"], "host": host, "x-amz-date": amz_date,
              "x-amz-target": headers["X-Amz-Target"]}
    if credentials.token:
        signed["x-amz-security-token"] = credentials.token
    signer = Signer(region, "dynamodb")
    for _ in range(2):  # the second from the cached signing key
        assert signer.authorization(credentials.access_key, credentials.secret_key, amz_date, "/", signed,
                                    body) == request.headers["Authorization"]
    assert signer.authorization(credentials.access_key, credentials.secret_key, "20260310T000001Z", "/", signed,
                                body) != request.headers["Authorization"]


def test_binary_values_are_sent_as_base64() -> None:
    assert encode({"Key": {"pk": {"B": b"\x00\xff"}, "s": {"BS": [b"a", bytearray(b"b")]}}}) == \
        b'{"Key":{"pk":{"B":"AP8="},"s":{"BS":["YQ==","Yg=="]}}}'
    with pytest.raises(TypeError):
        encode({"Key": {"pk": {"SS": {"a"}}}})


@pytest.mark.parametrize("operation, body", [
    ("PutItem", {"ItemCollectionMetrics": {"ItemCollectionKey": {"pk": {"B": "AP8="}}, "SizeEstimateRangeGB": [1.0]}}),
    ("BatchWriteItem", {"UnprocessedItems": {"t": [{"PutRequest": {"Item": {"a": {"B": "AQ=="}}}},
                                                   {"DeleteRequest": {"Key": {"a": {"BS": ["Ag==", "Aw=="]}}}}]},
                        "ItemCollectionMetrics": {"t": [{"ItemCollectionKey": {"pk": {"B": "BA=="}}}]}}),
    ("BatchGetItem", {"Responses": {"t": [{"a": {"L": [{"M": {"b": {"B": "BQ=="}}}]}}]},
                      "UnprocessedKeys": {"t": {"Keys": [{"a": {"B": "Bg=="}}], "ConsistentRead": True}}}),
    ("TransactGetItems", {"Responses": [{"Item": {"a": {"B": "Bw=="}}}, {}]}),
    ("ExecuteStatement", {"Items": [{"a": {"B": "CA=="}}], "LastEvaluatedKey": {"a": {"B": "CQ=="}},
                          "NotInTheModel": 1}),
])
def test_responses_decode_as_botocore_parses_them(operation: str, body: dict) -> None:
    """Response members DynamoDB Local does not send (item collection metrics, unprocessed items)."""
    model = boto3.client("dynamodb").meta.service_model.operation_model(operation)
    raw = json.dumps(body).encode()
    parsed = create_parser("json").parse({"headers": {}, "status_code": 200, "body": raw, "context": {}},
                                         model.output_shape)
    del parsed["ResponseMetadata"]
    assert decode({k: v for k, v in json.loads(raw).items() if k in model.output_shape.members}) == parsed
    assert b"NotInTheModel" not in raw or "NotInTheModel" not in parsed


@pytest.fixture(autouse=True)
def lean_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests compare the lean path with boto3's, so they run it whatever REDIMO_LEAN the suite runs
    under (`make test-boto3`); the tests of the switch set it themselves."""
    monkeypatch.delenv("REDIMO_LEAN", raising=False)


@pytest.fixture
def lean(dynamodb_local_client: Any, dynamodb_local_endpoint: str) -> Gateway:
    gateway = Gateway(TABLE, make_client(endpoint_url=dynamodb_local_endpoint))
    assert gateway.transport is not None and gateway.transport.serves("get_item")
    return gateway


def normalized(response: dict) -> dict:
    """A parsed response without what differs between two requests (request ids, dates, lengths)."""
    metadata = response["ResponseMetadata"]
    return {**response, "ResponseMetadata": {"HTTPStatusCode": metadata["HTTPStatusCode"],
                                             "RetryAttempts": metadata["RetryAttempts"],
                                             "RequestId": bool(metadata.get("RequestId")),
                                             "HTTPHeaders": sorted(metadata["HTTPHeaders"])}}


def outcome(send: Callable[[], dict]) -> tuple:
    try:
        return "ok", normalized(send())
    except ClientError as error:
        return type(error).__name__, str(error), error.operation_name, normalized(error.response)


def key(name: bytes) -> dict:
    return {"pk": {"B": name}, "sk": {"B": b"\x00"}}


def test_every_operation_parses_as_boto3s(lean: Gateway, dynamodb_local_client: Any) -> None:
    boto = dynamodb_local_client
    base = uuid.uuid4().hex.encode()
    names = [base + bytes([i, 0xff]) for i in range(3)]
    item = {"v": {"B": b"\x00\x01\xfe"}, "bs": {"BS": [b"\x00", b"\xff"]}, "n": {"N": "1.5"}, "s": {"S": "é"},
            "m": {"M": {"b": {"B": b"\x80"}, "l": {"L": [{"B": b"\x81"}, {"NULL": True}, {"BOOL": False}]}}},
            "ns": {"NS": ["1", "2"]}}

    def reset() -> None:
        for name in names:
            boto.put_item(TableName=TABLE, Item={**key(name), **item})

    def same(operation: str, **params: Any) -> tuple:
        params.setdefault("ReturnConsumedCapacity", "TOTAL")
        reset()
        got = outcome(lambda: lean.transport.call(operation, dict(params)))
        reset()
        assert got == outcome(lambda: getattr(boto, operation)(**params)), operation
        return got

    written = {"ReturnValues": "ALL_OLD", "ReturnItemCollectionMetrics": "SIZE"}
    assert same("get_item", TableName=TABLE, Key=key(names[0]), ConsistentRead=True)[1]["Item"]["m"]["M"]["b"] == \
        {"B": b"\x80"}
    assert same("put_item", TableName=TABLE, Item={**key(names[0]), "x": {"B": b"\x02"}}, **written)[1][
        "Attributes"]["v"] == {"B": b"\x00\x01\xfe"}
    same("update_item", TableName=TABLE, Key=key(names[0]), UpdateExpression="SET v = :v, bs = :bs",
         ExpressionAttributeValues={":v": {"B": b"\x03"}, ":bs": {"BS": [b"\x04"]}}, ReturnValues="ALL_NEW")
    same("delete_item", TableName=TABLE, Key=key(names[1]), **written)
    assert len(same("batch_get_item", RequestItems={TABLE: {"Keys": [key(n) for n in names],
                                                            "ConsistentRead": True}})[1]["Responses"][TABLE]) == 3
    same("batch_write_item", RequestItems={TABLE: [{"PutRequest": {"Item": {**key(names[0]), **item}}},
                                                   {"DeleteRequest": {"Key": key(names[2])}}]},
         ReturnItemCollectionMetrics="SIZE")
    same("transact_write_items", TransactItems=[{"Put": {"TableName": TABLE, "Item": {**key(names[0]), **item}}},
                                                {"Delete": {"TableName": TABLE, "Key": key(names[1])}}],
         ClientRequestToken=uuid.uuid4().hex)
    page = same("query", TableName=TABLE, KeyConditionExpression="pk = :pk", Limit=1, ConsistentRead=True,
                ExpressionAttributeValues={":pk": {"B": names[0]}})[1]
    assert page["LastEvaluatedKey"] == key(names[0])
    same("query", TableName=TABLE, KeyConditionExpression="pk = :pk", ExclusiveStartKey=page["LastEvaluatedKey"],
         ExpressionAttributeValues={":pk": {"B": names[0]}})
    same("scan", TableName=TABLE, FilterExpression="pk IN (:a, :b)", Limit=5000,
         ExpressionAttributeValues={":a": {"B": names[0]}, ":b": {"B": names[1]}})
    selected = same("batch_execute_statement", Statements=[
        {"Statement": f'SELECT * FROM "{TABLE}" WHERE pk = ? AND sk = ?', "Parameters": list(key(names[0]).values())}])
    assert selected[1]["Responses"][0]["Item"]["v"] == {"B": b"\x00\x01\xfe"}
    statements = same("batch_execute_statement", Statements=[
        {"Statement": f'INSERT INTO "{TABLE}" VALUE {{\'pk\': ?, \'sk\': ?}}',
         "Parameters": list(key(names[1]).values())},
        {"Statement": f'UPDATE "{TABLE}" SET v = ? WHERE pk = ? AND sk = ? AND n = ?',
         "Parameters": [{"B": b"\x05"}, *key(names[2]).values(), {"N": "2"}],
         "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}])[1]["Responses"]
    assert [response.get("Error", {}).get("Code") for response in statements] == \
        ["DuplicateItem", "ConditionalCheckFailed"]
    assert sorted(statements[1]["Error"]["Item"]["bs"]["BS"]) == [b"\x00", b"\xff"]


def test_errors_are_boto3s(lean: Gateway, dynamodb_local_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    boto = dynamodb_local_client
    name = uuid.uuid4().hex.encode() + b"\xff"
    boto.put_item(TableName=TABLE, Item={**key(name), "v": {"B": b"\x01"}})
    cases = [("put_item", {"TableName": TABLE, "Item": key(name), "ConditionExpression": "attribute_not_exists(pk)",
                           "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}),
             ("transact_write_items", {"TransactItems": [
                 {"Put": {"TableName": TABLE, "Item": key(name + b"x")}},
                 {"ConditionCheck": {"TableName": TABLE, "Key": key(name), "ConditionExpression": "v = :v",
                                     "ExpressionAttributeValues": {":v": {"B": b"\x02"}},
                                     "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}]}),
             ("get_item", {"TableName": "redimo-missing-table", "Key": key(name)}),
             ("query", {"TableName": TABLE, "KeyConditionExpression": "nonsense"})]
    for operation, params in cases:
        with pytest.raises(ClientError) as raised:
            lean.transport.call(operation, dict(params))
        assert type(raised.value) is lean.client.exceptions.from_code(raised.value.response["Error"]["Code"])
        got = outcome(lambda: lean.transport.call(operation, dict(params, ClientRequestToken="t")
                                                  if operation == "transact_write_items" else dict(params)))
        assert got == outcome(lambda: getattr(boto, operation)(
            **(dict(params, ClientRequestToken="t") if operation == "transact_write_items" else params)))
    with monkeypatch.context() as patched:  # a failed condition is read without botocore's parser
        patched.setattr(lean.transport._parser, "parse", None)
        conditional = outcome(lambda: lean.transport.call(*cases[0]))[3]
    assert conditional["Item"] == {**key(name), "v": {"B": b"\x01"}}
    cancelled = outcome(lambda: lean.transport.call(*cases[1]))[3]
    assert [reason["Code"] for reason in cancelled["CancellationReasons"]] == ["None", "ConditionalCheckFailed"]
    assert cancelled["CancellationReasons"][1]["Item"]["v"] == {"B": b"\x01"}


def test_counters_are_the_same(lean: Gateway, dynamodb_local_client: Any) -> None:
    usages = []
    for gateway in (lean, Gateway(TABLE, dynamodb_local_client, lean=False)):
        assert (gateway.transport is None) == (gateway is not lean)
        r = Redimo(TABLE, namespace=f"test-{uuid.uuid4().hex}", client=gateway.client,
                   lean=gateway.transport is not None)
        r.set("s", b"\x00" * 3000)
        r.get("s")
        r.hset("h", mapping={f"f{i}": i for i in range(40)})
        r.hgetall("h")
        r.mget(["s", "h", "missing"])
        r.delete("s", "h")
        usages.append(r.gateway.usage)
    assert usages[0] == usages[1]
    assert usages[0].total_requests > 5 and usages[0].read_units > 0 and usages[0].write_units > 0


class CorruptingHandler(fault_proxy._Handler):
    """Replies with a wrong x-amz-crc32 while the proxy's ``corrupt`` count lasts."""

    def reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        with self.proxy._lock:
            corrupt = self.proxy.corrupt > 0  # type: ignore[attr-defined]
            self.proxy.corrupt -= corrupt  # type: ignore[attr-defined]
        if corrupt:
            headers = [(k, str(int(v) ^ 1) if k.lower() == "x-amz-crc32" else v) for k, v in headers]
        super().reply(status, headers, body)


def through_proxy(upstream: str, lean: bool, kinds: tuple[str, ...] = fault_proxy.KINDS, rate: float = 1.0,
                  corrupt: int = 0, delay: float = 1.0, **options: Any) -> tuple[FaultProxy, Gateway]:
    proxy = FaultProxy(upstream, rate=rate, seed=7, kinds=kinds, delay=delay)
    proxy._server.RequestHandlerClass = CorruptingHandler
    proxy.corrupt = corrupt  # type: ignore[attr-defined]
    gateway = Gateway(TABLE, make_client(endpoint_url=proxy.endpoint, **options), lean=lean)
    assert (gateway.transport is not None) == lean
    return proxy, gateway


ERRORS = {"server_error": "InternalServerError", "throttle": "ThrottlingException",
          "drop_reply": "ConnectionClosedError", "delay_reply": "ReadTimeoutError"}


@pytest.mark.parametrize("kind", ["server_error", "throttle", "drop_reply", "delay_reply"])
def test_faults_are_reported_as_boto3_reports_them(dynamodb_local_client: Any, dynamodb_local_endpoint: str,
                                                   kind: str) -> None:
    results = []
    for lean in (True, False):
        proxy, gateway = through_proxy(dynamodb_local_endpoint, lean, (kind,), delay=0.6, max_attempts=2,
                                       read_timeout=0.3)
        with proxy:
            try:
                gateway.put({**key(b"faulted"), "v": {"S": kind}})
                results.append(None)
            except (ClientError, RedisConnectionError, RedisTimeoutError) as error:
                cause = error if isinstance(error, ClientError) else error.__cause__
                response = normalized(cause.response) if isinstance(cause, ClientError) else None
                results.append((type(error).__name__, type(cause).__name__, response, dict(proxy.counts)))
    assert results[0] == results[1]
    assert results[0][3]["requests"] == 3  # max_attempts=2: retried twice
    assert results[0][1] == ERRORS[kind]


def test_a_late_reply_within_the_read_timeout_is_read(dynamodb_local_client: Any,
                                                      dynamodb_local_endpoint: str) -> None:
    proxy, gateway = through_proxy(dynamodb_local_endpoint, True, ("delay_reply",), delay=0.3, read_timeout=5)
    with proxy:
        gateway.put({**key(b"late"), "v": {"S": "late"}})
        assert gateway.get(key(b"late"))["v"] == {"S": "late"}
    assert proxy.counts["requests"] == 2 and proxy.counts["delay_reply"] == 2


def test_random_faults_are_survived(dynamodb_local_client: Any, dynamodb_local_endpoint: str) -> None:
    """Idempotent writes and reads through 30 % faults (exactly-once writes: test_exactly_once.py)."""
    proxy, gateway = through_proxy(dynamodb_local_endpoint, True, rate=0.3)
    name = uuid.uuid4().hex.encode()
    with proxy:
        for i in range(20):
            gateway.update(key(name), "SET n = :n", {":n": {"N": str(i)}}, once=i % 2 == 0)
            gateway.put({**key(name + b"p"), "v": {"B": bytes([i])}})
            assert gateway.get(key(name + b"p"))["v"] == {"B": bytes([i])}
    assert sum(proxy.counts[kind] for kind in fault_proxy.KINDS) > 5
    assert Gateway(TABLE, dynamodb_local_client, lean=False).get(key(name)) == {**key(name), "n": {"N": "19"}}


@pytest.mark.parametrize("corrupt, attempts", [(1, 2), (100, 2)])  # max_attempts=1: 2 attempts at most
def test_a_bad_checksum_is_retried_as_boto3_does(dynamodb_local_client: Any, dynamodb_local_endpoint: str,
                                                 corrupt: int, attempts: int) -> None:
    name = uuid.uuid4().hex.encode()
    dynamodb_local_client.put_item(TableName=TABLE, Item={**key(name), "v": {"B": b"\x07"}})
    results = []
    for lean in (True, False):
        proxy, gateway = through_proxy(dynamodb_local_endpoint, lean, rate=0, corrupt=corrupt, max_attempts=1)
        with proxy:
            response = gateway.call("get_item", TableName=TABLE, Key=key(name), ConsistentRead=True)
        results.append((normalized(response), proxy.counts["requests"]))
    assert results[0] == results[1]
    assert results[0][1] == attempts and results[0][0]["Item"]["v"] == {"B": b"\x07"}
    assert results[0][0]["ResponseMetadata"]["RetryAttempts"] == attempts - 1


def test_an_unreachable_endpoint_is_reported_as_with_boto3() -> None:
    errors = []
    for lean in (True, False):
        client = make_client(endpoint_url="http://127.0.0.1:1", connect_attempts=1)
        gateway = Gateway("t-unreachable", client, lean=lean)
        with pytest.raises(RedisConnectionError) as error:
            gateway.get(key(b"k"))
        errors.append((str(error.value), type(error.value.__cause__)))
    assert errors[0] == errors[1] and errors[0][1] is EndpointConnectionError


def test_moto_stubber_and_hooks_go_through_boto3(dynamodb_local_endpoint: str) -> None:
    with mock_aws():
        client = make_client()
        gateway = Gateway(TABLE, client)
        assert gateway.transport is not None and not gateway.transport.serves("get_item")
        create_table(gateway)
        gateway.put({**key(b"m"), "v": {"B": b"\x01"}})
        assert gateway.get(key(b"m")) == {**key(b"m"), "v": {"B": b"\x01"}}  # moto's table, not a real one
    assert gateway.transport.serves("get_item")
    gateway = Gateway(TABLE, make_client(endpoint_url=dynamodb_local_endpoint))
    sent: list[str] = []
    hook = lambda **_: sent.append("sent")  # noqa: E731
    gateway.client.meta.events.register("before-send.dynamodb", hook)
    assert not gateway.transport.serves("get_item")
    gateway.get(key(b"k"))
    assert sent == ["sent"]
    gateway.client.meta.events.unregister("before-send.dynamodb", hook)
    assert gateway.transport.serves("get_item") and not gateway.transport.serves("describe_table")
    with Stubber(gateway.client) as stubber:
        stubber.add_response("get_item", {"Item": {"v": {"S": "stubbed"}}})
        assert gateway.get(key(b"k")) == {"v": {"S": "stubbed"}}


def test_switched_off(monkeypatch: pytest.MonkeyPatch, dynamodb_local_endpoint: str) -> None:
    assert Gateway(TABLE, boto3.client("dynamodb", endpoint_url=dynamodb_local_endpoint)).transport is None
    assert Gateway(TABLE, make_client(endpoint_url=dynamodb_local_endpoint, lean=False)).transport is None
    assert Redimo(TABLE, endpoint_url=dynamodb_local_endpoint, lean=False).gateway.transport is None
    assert Gateway(TABLE, make_client(endpoint_url=dynamodb_local_endpoint, retry_mode="adaptive")).transport is None
    assert Redimo(TABLE, endpoint_url=dynamodb_local_endpoint).gateway.transport is not None
    monkeypatch.setenv("REDIMO_LEAN", "0")
    assert Redimo(TABLE, endpoint_url=dynamodb_local_endpoint).gateway.transport is None


def reply_of(*parts: bytes) -> tuple[Reply, bool]:
    """What read_reply makes of ``parts`` sent one by one (the sender closes after the last)."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        for part in parts:
            theirs.sendall(part)
        theirs.shutdown(socket.SHUT_WR)
        return read_reply(ours)


@pytest.mark.parametrize("parts, expected", [
    ((b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\nhel", b"lo"),
     (Reply(200, {"content-length": "5", "x-a": "1, 2"}, b"hello"), True)),
    ((b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nhel\r\n", b"2\r\nlo\r\n0\r\nT: 1\r\n\r\n"),
     (Reply(200, {"transfer-encoding": "chunked"}, b"hello"), True)),
    ((b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 400 Bad\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",),
     (Reply(400, {"connection": "close", "content-length": "0"}, b""), False)),
    ((b"HTTP/1.0 200 OK\r\n\r\nuntil ", b"the end"), (Reply(200, {}, b"until the end"), False)),
    ((b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA",), (Reply(200, {"content-length": "2"}, b"ok"), False)),
])
def test_replies_are_read_as_http_1_1(parts: tuple[bytes, ...], expected: tuple[Reply, bool]) -> None:
    assert reply_of(*parts) == expected


def test_a_large_reply_arrives_whole() -> None:
    """16 MB (a BatchGetItem's most) received in pieces, while a writer thread sends it."""
    body = os.urandom(16 * 1024 * 1024)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        writer = threading.Thread(target=theirs.sendall, args=(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body,))
        writer.start()
        reply, keep = read_reply(ours)
        writer.join()
    assert reply.data == body and keep


@pytest.mark.parametrize("parts", [(b"",), (b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort",),
                                   (b"SMTP ready\r\n\r\n",), (b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",),
                                   (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",),
                                   (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",),
                                   (b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n",)])
def test_cut_off_or_malformed_replies_are_protocol_errors(parts: tuple[bytes, ...]) -> None:
    with pytest.raises(ProtocolError):
        reply_of(*parts)


def test_tls_is_verified_as_boto3_verifies_it(dynamodb_local_client: Any, dynamodb_local_endpoint: str,
                                              tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through an HTTPS proxy whose certificate a test CA issued: served alike once the CA is trusted
    (boto3's AWS_CA_BUNDLE), refused alike while it is not."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    name = uuid.uuid4().hex.encode()
    with FaultProxy(dynamodb_local_endpoint, rate=0, tls=context) as proxy:
        errors = []
        for lean in (True, False):
            gateway = Gateway(TABLE, make_client(endpoint_url=proxy.endpoint, connect_attempts=1), lean=lean)
            assert (gateway.transport is not None) == lean
            with pytest.raises(RedisConnectionError) as error:
                gateway.get(key(name))
            errors.append(type(error.value.__cause__))
        assert errors == [SSLError, SSLError]
        ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
        monkeypatch.setenv("AWS_CA_BUNDLE", str(tmp_path / "ca.pem"))
        replies = []
        for lean in (True, False):
            gateway = Gateway(TABLE, make_client(endpoint_url=proxy.endpoint), lean=lean)
            assert (gateway.transport is not None) == lean
            gateway.put({**key(name), "v": {"B": bytes([lean])}})
            replies.append(gateway.get(key(name)))
        assert replies == [{**key(name), "v": {"B": b"\x01"}}, {**key(name), "v": {"B": b"\x00"}}]
        requests = proxy.counts["requests"]
    assert requests == 4  # the refused handshakes sent none


def idle_ports(gateway: Gateway) -> set[int]:
    """The local ports of the lean transport's idle pooled connections."""
    return {connection.sock.getsockname()[1] for connection in gateway.transport.pool.pool.queue
            if connection is not None and connection.sock is not None}


def test_a_forked_child_never_uses_its_parents_connections(lean: Gateway) -> None:
    """Two processes on one keep-alive socket could read each other's replies: a child (a prefork
    worker, a server forked after start-up) opens its own."""
    name = uuid.uuid4().hex.encode()
    lean.put({**key(name), "v": {"B": b"\x01"}})
    parent_ports = idle_ports(lean)
    assert parent_ports
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child reports through the pipe)
        try:
            read = lean.get(key(name))
            os.write(write_end, json.dumps({"read": read == {**key(name), "v": {"B": b"\x01"}},
                                            "ports": sorted(idle_ports(lean))}).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        report = json.loads(pipe.read() or "{}")
    os.waitpid(child, 0)
    assert report["read"] and report["ports"] and not set(report["ports"]) & parent_ports
    assert lean.get(key(name)) == {**key(name), "v": {"B": b"\x01"}} and idle_ports(lean) == parent_ports


class RecordingHandler(fault_proxy._Handler):
    """Records each request's access key id and security token (the credentials it was signed with)."""

    def relay(self, fault: str | None) -> None:
        credential = self.headers.get("Authorization", "").split("Credential=", 1)[-1].split("/", 1)[0]
        self.proxy.signed.append((credential, self.headers.get("X-Amz-Security-Token")))  # type: ignore[attr-defined]
        super().relay(fault)


def temporary(token: str) -> dict:
    """Credentials for an hour, as a refresh returns them (DynamoDB Local keeps tables per access key id,
    so the key stays the suite's)."""
    expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    return {"access_key": "testing", "secret_key": "secret", "token": token, "expiry_time": expiry.isoformat()}


def test_refreshed_credentials_sign_the_next_request(dynamodb_local_client: Any, dynamodb_local_endpoint: str) -> None:
    """Temporary credentials (a role's, SSO's) are refreshed by boto3's provider when due, and the lean
    path signs with what it returns, as boto3 does."""
    signed_by_mode = []
    for lean in (True, False):
        issued = iter(["token-2"])

        proxy = FaultProxy(dynamodb_local_endpoint, rate=0)
        proxy._server.RequestHandlerClass = RecordingHandler
        proxy.signed = []  # type: ignore[attr-defined]
        with proxy:
            gateway = Gateway(TABLE, make_client(endpoint_url=proxy.endpoint), lean=lean)
            assert (gateway.transport is not None) == lean
            credentials = RefreshableCredentials.create_from_metadata(
                temporary("token-1"), lambda: temporary(next(issued)), "test")
            gateway.client._request_signer._credentials = credentials
            gateway.get(key(b"k"))
            credentials._expiry_time = datetime.datetime.now(datetime.timezone.utc)  # due: refreshed on use
            gateway.get(key(b"k"))
            gateway.get(key(b"k"))
        signed_by_mode.append(proxy.signed)  # type: ignore[attr-defined]
    assert signed_by_mode[0] == signed_by_mode[1] == [("testing", "token-1"), ("testing", "token-2"),
                                                      ("testing", "token-2")]


def test_boto3s_endpoint_variable_and_proxies(monkeypatch: pytest.MonkeyPatch, dynamodb_local_client: Any,
                                              dynamodb_local_endpoint: str) -> None:
    """The endpoint comes from boto3's own configuration (AWS_ENDPOINT_URL_DYNAMODB); a proxy that boto3
    would use for the endpoint sends every request through boto3 instead."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_local_endpoint)
    r = Redimo(TABLE, namespace=uuid.uuid4().hex)
    assert r.gateway.transport is not None and r.gateway.transport.url == dynamodb_local_endpoint + "/"
    r.set("k", "v")
    assert r.get("k") == b"v"
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert Redimo(TABLE).gateway.transport is None
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert Redimo(TABLE).gateway.transport is not None
