"""The lean transport: DynamoDB's JSON protocol sent without boto3's machinery.

For the operations Redimo sends most, :class:`LeanTransport` serializes with orjson, signs with SigV4
(the same bytes as botocore's ``SigV4Auth``), writes each request with one send on a connection from a
urllib3 pool configured as the boto3 client's (urllib3 connects, verifies TLS and detects dropped idle
connections; :func:`read_reply` reads the response in an eighth of the time http.client takes), and
returns what botocore would have parsed; errors are botocore's ``ClientError``
classes and connection exceptions, retried by the gateway's :class:`~redimo.gateway.RetryRule`. A
client it cannot honour (proxies, a non-standard retry mode, no :func:`~redimo.gateway.make_client`
retry rule, a custom endpoint path) gets no transport; a call while a foreign event handler is active
on the client (moto's ``mock_aws``, botocore's ``Stubber``, a test's ``before-send`` hook) goes
through boto3.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import os
import random
import socket
import ssl
import time
import uuid
from http.client import RemoteDisconnected
from typing import TYPE_CHECKING, Any, Callable, NamedTuple
from urllib.parse import quote, urlsplit

import botocore
import orjson
import urllib3
from botocore.awsrequest import HeadersDict
from botocore.client import BaseClient
from botocore.exceptions import (ConnectionClosedError, ConnectTimeoutError, EndpointConnectionError,
                                 HTTPClientError, ReadTimeoutError, SSLError)
from botocore.exceptions import ConnectionError as BotocoreConnectionError
from botocore.httpsession import URLLib3Session, create_urllib3_context, get_cert_path
from botocore.parsers import create_parser
from botocore.retries.standard import ThrottledRetryableChecker, TransientRetryableChecker
from urllib3.exceptions import ConnectTimeoutError as URLLib3ConnectTimeoutError
from urllib3.exceptions import NewConnectionError, ProtocolError
from urllib3.exceptions import ReadTimeoutError as URLLib3ReadTimeoutError
from urllib3.exceptions import SSLError as URLLib3SSLError

if TYPE_CHECKING:
    from .gateway import RetryRule

OPERATIONS = {"get_item": "GetItem", "put_item": "PutItem", "update_item": "UpdateItem",
              "delete_item": "DeleteItem", "batch_get_item": "BatchGetItem", "batch_write_item": "BatchWriteItem",
              "transact_write_items": "TransactWriteItems", "transact_get_items": "TransactGetItems",
              "query": "Query", "scan": "Scan", "batch_execute_statement": "BatchExecuteStatement",
              "execute_statement": "ExecuteStatement"}
# events whose handlers change what boto3 sends or returns: only botocore's own (and Redimo's retry
# rule) may be registered for a call to take the lean path
WATCHED_EVENTS = ("provide-client-params", "before-parameter-build", "before-call", "request-created",
                  "before-sign", "before-send", "needs-retry", "before-parse", "after-call")
# retried by botocore's standard handler beyond the gateway's rule (the gateway's jitter is used here)
MORE_RETRYABLE_CODES = frozenset(TransientRetryableChecker._TRANSIENT_ERROR_CODES
                                 + ThrottledRetryableChecker._THROTTLED_ERROR_CODES)
MORE_RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
CONTENT_TYPE = "application/x-amz-json-1.0"
TRACE_ID_SAFE = "-=;:+&[]{}\"',"  # as botocore quotes the X-Amzn-Trace-Id header
USER_AGENT = f"redimo-lean Botocore/{botocore.__version__}"


# -- SigV4 ----------------------------------------------------------------------------------
class Signer:
    """AWS Signature Version 4 for one region and service, with the signing key cached per date."""

    def __init__(self, region: str, service: str) -> None:
        self.region = region
        self.service = service
        self._keys: dict[tuple[str, str], bytes] = {}

    def _key(self, secret: str, date: str) -> bytes:
        key = self._keys.get((secret, date))
        if key is None:
            key = f"AWS4{secret}".encode()
            for part in (date, self.region, self.service, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            if len(self._keys) > 8:
                self._keys.clear()
            self._keys[(secret, date)] = key
        return key

    def authorization(self, access_key: str, secret: str, amz_date: str, path: str,
                      headers: dict[str, str], body: bytes) -> str:
        """The Authorization header of a request without a query string; ``headers`` are the signed
        ones, by lower-case name, ``host`` included."""
        names = sorted(headers)
        canonical_headers = "".join(f"{name}:{' '.join(headers[name].split())}\n" for name in names)
        signed = ";".join(names)
        canonical = f"POST\n{path}\n\n{canonical_headers}\n{signed}\n{hashlib.sha256(body).hexdigest()}"
        scope = f"{amz_date[:8]}/{self.region}/{self.service}/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self._key(secret, amz_date[:8]), to_sign.encode(), hashlib.sha256).hexdigest()
        return f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"


# -- DynamoDB JSON ----------------------------------------------------------------------------
def _base64(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return binascii.b2a_base64(value, newline=False).decode()
    raise TypeError(f"cannot send {type(value).__name__} to DynamoDB")


def encode(params: dict) -> bytes:
    """A request body: binary values (anywhere) as base64 text, as botocore sends them."""
    return orjson.dumps(params, default=_base64)


def _value(value: dict) -> None:
    if "B" in value:
        value["B"] = binascii.a2b_base64(value["B"])
    elif "BS" in value:
        value["BS"] = [binascii.a2b_base64(element) for element in value["BS"]]
    elif "M" in value:
        _item(value["M"])
    elif "L" in value:
        for element in value["L"]:
            _value(element)


def _item(item: dict) -> None:
    for value in item.values():
        _value(value)


def decode(data: dict) -> dict:
    """Base64 of binary values to bytes, in place, wherever DynamoDB's responses hold items."""
    for name in ("Item", "Attributes", "LastEvaluatedKey"):
        if name in data:
            _item(data[name])
    for item in data.get("Items", ()):
        _item(item)
    responses = data.get("Responses")
    if isinstance(responses, dict):  # BatchGetItem
        for items in responses.values():
            for item in items:
                _item(item)
    elif responses:  # TransactGetItems, BatchExecuteStatement
        for response in responses:
            if "Item" in response:
                _item(response["Item"])
            if "Item" in response.get("Error", ()):
                _item(response["Error"]["Item"])
    for request in data.get("UnprocessedKeys", {}).values():
        for key in request.get("Keys", ()):
            _item(key)
    for writes in data.get("UnprocessedItems", {}).values():
        for write in writes:
            if "PutRequest" in write:
                _item(write["PutRequest"]["Item"])
            if "DeleteRequest" in write:
                _item(write["DeleteRequest"]["Key"])
    metrics = data.get("ItemCollectionMetrics") or {}
    if "ItemCollectionKey" in metrics:  # PutItem, UpdateItem, DeleteItem
        _item(metrics["ItemCollectionKey"])
    else:  # BatchWriteItem, TransactWriteItems: by table
        for table_metrics in metrics.values():
            for metric in table_metrics:
                _item(metric.get("ItemCollectionKey", {}))
    return data


def _module(handler: Callable) -> str:
    return getattr(handler, "__module__", None) or type(handler).__module__


def _own(handler: Callable) -> bool:
    """Registered by botocore itself (not its Stubber) or by Redimo's gateway."""
    module = _module(handler)
    return (module.startswith("botocore.") and module != "botocore.stub") or module == "redimo.gateway"


# -- HTTP/1.1 on urllib3's pooled connections --------------------------------------------------
class Reply(NamedTuple):
    """One HTTP response: its status, its headers by lower-case name (as botocore's ``HTTPHeaders``;
    repeated ones joined by ", ", as http.client joins them), and its body."""

    status: int
    headers: dict[str, str]
    data: bytes


MAX_HEAD = 65536


def _closed() -> ProtocolError:
    return ProtocolError("Connection aborted.", RemoteDisconnected("Remote end closed connection"))


def _receive(sock: socket.socket, buffer: bytes) -> bytes:
    chunk = sock.recv(65536)
    if not chunk:
        raise _closed()
    return buffer + chunk


def _read_exactly(sock: socket.socket, buffer: bytes, size: int) -> tuple[bytes, bytes]:
    """``size`` bytes from ``buffer`` and then ``sock`` (received in place: a 16 MB BatchGetItem reply
    is copied once), and what ``buffer`` held beyond them."""
    if len(buffer) >= size:
        return buffer[:size], buffer[size:]
    data = bytearray(size)
    data[:len(buffer)] = buffer
    view, filled = memoryview(data), len(buffer)
    while filled < size:
        received = sock.recv_into(view[filled:], size - filled)
        if not received:
            raise _closed()
        filled += received
    return bytes(data), b""


def _read_to(sock: socket.socket, buffer: bytes, mark: bytes) -> tuple[bytes, bytes]:
    """What ``buffer`` and then ``sock`` hold before ``mark`` (a line's end, a head's), and what follows it."""
    while (end := buffer.find(mark)) < 0:
        if len(buffer) > MAX_HEAD:
            raise ProtocolError(f"Connection broken: no {mark!r} in {MAX_HEAD} bytes")
        buffer = _receive(sock, buffer)
    return buffer[:end], buffer[end + len(mark):]


def read_reply(sock: socket.socket) -> tuple[Reply, bool]:
    """One HTTP/1.1 response from ``sock`` (a Content-Length, chunked or close-delimited body), and
    whether the connection may be reused. A malformed or cut-off response raises urllib3's
    ``ProtocolError``, as urllib3 reports it; an interim (1xx) response is skipped."""
    try:
        return _read_reply(sock)
    except ValueError as error:  # a length or chunk size that is not a number
        raise ProtocolError("Connection broken: a bad length", error) from error


def _read_reply(sock: socket.socket) -> tuple[Reply, bool]:
    buffer = b""
    while True:
        head, buffer = _read_to(sock, buffer, b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/") or not rest[:3].isdigit():
            raise ProtocolError("Connection broken: a bad status line", lines[0])
        status = int(rest[:3])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                raise ProtocolError("Connection broken: a bad header line", line)
            name, value = name.strip().lower(), value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        if status >= 200:
            break
    keep = version == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts = []
        while True:
            line, buffer = _read_to(sock, buffer, b"\r\n")
            size = int(line.split(b";", 1)[0], 16)
            if size == 0:
                while True:  # trailers, up to the empty line
                    line, buffer = _read_to(sock, buffer, b"\r\n")
                    if not line:
                        break
                break
            part, buffer = _read_exactly(sock, buffer, size + 2)
            parts.append(part[:-2])
        data = b"".join(parts)
    elif "content-length" in headers:
        data, buffer = _read_exactly(sock, buffer, int(headers["content-length"]))
    else:  # delimited by the connection's close
        keep, parts = False, [buffer]
        while chunk := sock.recv(65536):
            parts.append(chunk)
        data, buffer = b"".join(parts), b""
    return Reply(status, headers, data), keep and not buffer


def _metadata(reply: Reply) -> dict[str, Any]:
    """A response's ``ResponseMetadata`` as botocore's JSON parser makes it (without RetryAttempts)."""
    metadata: dict[str, Any] = {}
    if "x-amzn-requestid" in reply.headers:
        metadata["RequestId"] = reply.headers["x-amzn-requestid"]
    metadata.update(HTTPStatusCode=reply.status, HTTPHeaders=reply.headers)
    return metadata


class LeanTransport:
    """Sends the operations in OPERATIONS for one boto3 DynamoDB client (see the module's docstring)."""

    def __init__(self, client: Any, rule: RetryRule, make_pool: Callable[[], urllib3.HTTPConnectionPool],
                 host: str) -> None:
        self.client = client
        self.rule = rule
        self.make_pool = make_pool
        self.pool = make_pool()
        self.pid = os.getpid()
        self.url = client.meta.endpoint_url.rstrip("/") + "/"  # as botocore names it in its exceptions
        self.host = host
        self.read_timeout = self.pool.timeout.read_timeout
        self.signer = Signer(client._request_signer._region_name, client._request_signer._signing_name)
        self._events = client.meta.events._emitter
        self._seen: dict | None = None  # the emitter's lookup cache when `_foreign` was computed
        self._foreign: dict[str, list[Callable]] = {}
        self._parser = create_parser("json")
        self._members: dict[str, frozenset[str]] = {}
        self._error_shapes: dict[str, tuple[tuple[str, str, bool], ...] | None] = {}

    @classmethod
    def for_client(cls, client: Any) -> LeanTransport | None:
        """The transport for ``client``, or None when it must go through boto3."""
        if not isinstance(client, BaseClient):  # a stand-in (a test's, a benchmark's) sees every call
            return None
        rule = getattr(client, "redimo_retries", None)  # set by make_client
        http, signer, meta = client._endpoint.http_session, client._request_signer, client.meta
        if (rule is None or not getattr(client, "redimo_lean", False) or rule.mode != "standard"
                or type(http) is not URLLib3Session or signer._signature_version != "v4"
                or signer._credentials is None or not hasattr(meta.events, "_emitter")):
            return None
        url = meta.endpoint_url
        parts = urlsplit(url)
        if parts.path not in ("", "/") or parts.query or http._proxy_config.proxy_url_for(url):
            return None
        config = meta.config
        options: dict[str, Any] = {
            "timeout": urllib3.Timeout(connect=config.connect_timeout, read=config.read_timeout),
            "maxsize": config.max_pool_connections, "retries": False, "socket_options": http._socket_options}
        if parts.scheme == "https":
            verify = http._verify
            options.update(ssl_context=create_urllib3_context(), cert_file=http._cert_file,
                           key_file=http._key_file, cert_reqs="CERT_REQUIRED" if verify else "CERT_NONE",
                           ca_certs=get_cert_path(verify) if verify else None)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if parts.port is not None and parts.port != {"http": 80, "https": 443}.get(parts.scheme):
            host = f"{host}:{parts.port}"
        return cls(client, rule, lambda: urllib3.connection_from_url(url, **options), host)

    def serves(self, operation: str) -> bool:
        """Whether ``operation`` takes the lean path now: one it knows, no foreign handler active."""
        name = OPERATIONS.get(operation)
        if name is None:
            return False
        if self._events._lookup_cache is not self._seen:  # handlers were (un)registered
            self._seen = self._events._lookup_cache
            self._foreign = {}
        foreign = self._foreign.get(name)
        if foreign is None:
            foreign = self._foreign[name] = [
                handler for event in WATCHED_EVENTS
                for handler in self._events._handlers.prefix_search(f"{event}.dynamodb.{name}")
                if not _own(handler)]
        # moto's BotocoreStubber is registered for every client once moto is imported, enabled only in mock_aws
        return all(getattr(handler, "enabled", None) is False for handler in foreign)

    def call(self, operation: str, params: dict) -> dict:
        """What ``getattr(client, operation)(**params)`` returns, or the exception it raises."""
        name = OPERATIONS[operation]
        if name == "TransactWriteItems" and "ClientRequestToken" not in params:
            params = {**params, "ClientRequestToken": str(uuid.uuid4())}  # as botocore's idempotency token
        body = encode(params)
        attempts = 0
        while True:
            attempts += 1
            response, error, code, bad_checksum = None, None, None, False
            try:
                response = self._send(name, body)
            except (BotocoreConnectionError, HTTPClientError) as caught:
                error = caught
            if response is not None:
                checksum = response.headers.get("x-amz-crc32")
                bad_checksum = checksum is not None and binascii.crc32(response.data) != int(checksum)
                if response.status >= 300:
                    parsed = self._parse_error(name, response)
                    code = parsed["Error"].get("Code")
            delay = self.rule.delay(attempts, code, response.status if response is not None else 0, error)
            if delay is None and attempts <= self.rule.max_attempts and (
                    bad_checksum or error is not None or code in MORE_RETRYABLE_CODES
                    or (response is not None and response.status in MORE_RETRYABLE_STATUSES)):
                delay = random.random() * min(20.0, 0.025 * 2**attempts)  # as the rule's transient errors
            if delay is not None and delay is not False:
                time.sleep(delay)
                continue
            if error is not None:
                raise error
            assert response is not None
            if response.status >= 300:
                parsed["ResponseMetadata"]["RetryAttempts"] = attempts - 1
                raise self.client.exceptions.from_code(code)(parsed, name)
            return self._parse(name, response, attempts - 1)

    def _send(self, name: str, body: bytes) -> Reply:
        """One signed POST on a pooled connection; failures are botocore's exceptions, as botocore's
        URLLib3Session raises them for the same urllib3 and socket errors."""
        credentials = self.client._request_signer._credentials.get_frozen_credentials()  # refreshed if due
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = f"DynamoDB_20120810.{name}"
        signed = {"content-type": CONTENT_TYPE, "host": self.host, "x-amz-date": amz_date, "x-amz-target": target}
        token = credentials.token
        if token:
            signed["x-amz-security-token"] = token
        authorization = self.signer.authorization(credentials.access_key, credentials.secret_key, amz_date, "/",
                                                  signed, body)
        head = (f"POST / HTTP/1.1\r\nHost: {self.host}\r\nAccept-Encoding: identity\r\nX-Amz-Target: {target}\r\n"
                f"Content-Type: {CONTENT_TYPE}\r\nUser-Agent: {USER_AGENT}\r\nX-Amz-Date: {amz_date}\r\n"
                f"Authorization: {authorization}\r\n")
        if token:
            head += f"X-Amz-Security-Token: {token}\r\n"
        trace = os.environ.get("_X_AMZN_TRACE_ID")
        if trace and os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):  # botocore's recursion detection header
            head += f"X-Amzn-Trace-Id: {quote(trace, safe=TRACE_ID_SAFE)}\r\n"
        request = f"{head}Content-Length: {len(body)}\r\n\r\n".encode("latin-1") + body
        if self.pid != os.getpid():  # a forked child: its own connections, never its parent's sockets
            self.pool, self.pid = self.make_pool(), os.getpid()
        connection = self.pool._get_conn()  # a dropped idle connection comes back closed
        keep = False
        try:
            if connection.sock is None:
                connection.connect()
                connection.sock.settimeout(self.read_timeout)
            try:
                connection.sock.sendall(request)
            except BrokenPipeError:  # the server may have replied and closed: read what it sent, as urllib3
                pass
            reply, keep = read_reply(connection.sock)
            return reply
        except (URLLib3SSLError, ssl.SSLError) as error:
            raise SSLError(endpoint_url=self.url, error=error)
        except (NewConnectionError, socket.gaierror) as error:
            raise EndpointConnectionError(endpoint_url=self.url, error=error)
        except URLLib3ConnectTimeoutError as error:
            raise ConnectTimeoutError(endpoint_url=self.url, error=error)
        except TimeoutError as error:
            raise ReadTimeoutError(endpoint_url=self.url, error=URLLib3ReadTimeoutError(
                self.pool, None, f"Read timed out. (read timeout={self.read_timeout})")) from error
        except ProtocolError as error:
            raise ConnectionClosedError(error=error, request=None, endpoint_url=self.url)
        except OSError as error:
            raise ConnectionClosedError(error=ProtocolError("Connection aborted.", error), request=None,
                                        endpoint_url=self.url)
        except Exception as error:
            raise HTTPClientError(error=error)
        finally:
            if not keep:
                connection.close()
            self.pool._put_conn(connection)

    def _response_dict(self, name: str, response: Reply) -> dict:
        return {"headers": HeadersDict(response.headers), "status_code": response.status, "body": response.data,
                "context": {"operation_name": name}}

    def _parse_error(self, name: str, response: Reply) -> dict:
        """An error response as botocore parses it, its modeled members (Item, CancellationReasons) included."""
        parsed = self._parse_client_error(response) if 400 <= response.status < 500 else None
        if parsed is not None:
            return parsed
        model = self.client.meta.service_model
        response_dict = self._response_dict(name, response)
        parsed = self._parser.parse(response_dict, model.operation_model(name).output_shape)
        shape = model.shape_for_error_code(parsed["Error"].get("Code"))
        if shape is not None:
            parsed.update(self._parser.parse(response_dict, shape))
        return parsed

    def _error_members(self, code: str) -> tuple[tuple[str, str, bool], ...] | None:
        """The members of error ``code``'s modeled shape as (name, JSON name, is an item), when each is
        a string or an item; None when one is anything else (botocore parses those)."""
        if code not in self._error_shapes:
            shape = self.client.meta.service_model.shape_for_error_code(code)
            members: list[tuple[str, str, bool]] | None = []
            for member, member_shape in (shape.members if shape is not None else {}).items():
                is_item = member_shape.type_name == "map" and member_shape.value.name == "AttributeValue"
                if member_shape.type_name != "string" and not is_item:
                    members = None
                    break
                members.append((member, member_shape.serialization.get("name", member), is_item))
            self._error_shapes[code] = None if members is None else tuple(members)
        return self._error_shapes[code]

    def _parse_client_error(self, response: Reply) -> dict | None:
        """A 4xx error (a failed condition above all) as botocore's JSON parser reads it, from one orjson
        parse of its body; None for what this does not cover (botocore's parser takes those)."""
        try:
            body = orjson.loads(response.data)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(body, dict) or "x-amzn-query-error" in response.headers:
            return None
        code = body.get("__type", str(response.status))
        if not isinstance(code, str):
            return None
        if ":" in code:
            code = code.split(":", 1)[0]
        if "#" in code:
            code = code.rsplit("#", 1)[1]
        members = self._error_members(code)
        if members is None:
            return None
        parsed: dict[str, Any] = {"Error": {"Message": body.get("message", body.get("Message", "")), "Code": code},
                                  "ResponseMetadata": _metadata(response)}
        for member, json_name, is_item in members:
            value = body.get(json_name)
            if value is not None:
                if is_item:
                    if not isinstance(value, dict):
                        return None
                    _item(value)
                parsed[member] = value
        return parsed

    def _parse(self, name: str, response: Reply, retries: int) -> dict:
        """A successful response as botocore parses it: the output shape's members, then ResponseMetadata."""
        members = self._members.get(name)
        if members is None:
            shape = self.client.meta.service_model.operation_model(name).output_shape
            members = self._members[name] = frozenset(shape.members)
        try:
            data = orjson.loads(response.data) if response.data else {}
        except orjson.JSONDecodeError:  # a corrupted body botocore would still parse (leniently)
            parsed = self._parser.parse(self._response_dict(name, response),
                                        self.client.meta.service_model.operation_model(name).output_shape)
            parsed["ResponseMetadata"]["RetryAttempts"] = retries
            return parsed
        parsed = decode({key: value for key, value in data.items() if key in members and value is not None})
        parsed["ResponseMetadata"] = {**_metadata(response), "RetryAttempts": retries}
        return parsed
