"""A fault-injecting HTTP proxy between botocore and DynamoDB Local.

Tests point a client at ``FaultProxy.endpoint``; the proxy forwards each request to DynamoDB Local and,
with probability ``rate``, injects a fault instead: a 500 InternalServerError or a 400
ThrottlingException without forwarding (nothing was written), or ``drop_reply``: the request *is*
applied upstream but the reply is lost, the connection closed without an answer. botocore retries all
three, so this proves that Redimo's writes stay exactly-once when DynamoDB's reply is lost. A fourth
kind, ``delay_reply`` (not among the default kinds), applies the request and holds its reply for
``delay`` seconds: past the client's read timeout, a reply that comes too late.
"""

from __future__ import annotations

import json
import random
import socket
import ssl
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

import urllib3

KINDS = ("server_error", "throttle", "drop_reply")
ALL_KINDS = KINDS + ("delay_reply",)
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                        "trailer", "trailers", "transfer-encoding", "upgrade", "proxy-connection"})
ERRORS = {"server_error": (500, "InternalServerError"), "throttle": (400, "ThrottlingException")}


class FaultProxy:
    """Forward HTTP to ``upstream``, faulting a fraction ``rate`` of the POSTs to ``operations``
    (``None``: all), with each fault drawn uniformly from ``kinds``; ``delay_reply`` holds a reply ``delay``
    seconds. With a ``tls`` context (its certificate loaded) the proxy serves HTTPS.

    ``counts``: "requests" received, "forwarded" upstream (drop_reply included), and one per fault kind.
    """

    def __init__(self, upstream: str, rate: float = 0.1, seed: int | None = None,
                 kinds: tuple[str, ...] = KINDS, operations: frozenset[str] | None = None,
                 delay: float = 1.0, tls: ssl.SSLContext | None = None) -> None:
        unknown = set(kinds) - set(ALL_KINDS)
        if unknown or not kinds:
            raise ValueError(f"kinds must be a non-empty subset of {ALL_KINDS}, not {kinds}")
        self.upstream = upstream.rstrip("/")
        self.rate = rate
        self.kinds = tuple(kinds)
        self.operations = operations
        self.delay = delay
        self.counts: Counter[str] = Counter()
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._pool = urllib3.PoolManager(maxsize=16, retries=False)
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.proxy = self  # type: ignore[attr-defined]
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._thread: threading.Thread | None = None
        self.endpoint = f"{'https' if tls else 'http'}://127.0.0.1:{self._server.server_port}"

    def decide(self, operation: str) -> str | None:
        """The fault to inject for one request to ``operation``, or ``None`` to forward it."""
        if self.operations is not None and operation not in self.operations:
            return None
        with self._lock:
            return self._random.choice(self.kinds) if self._random.random() < self.rate else None

    def count(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1

    def forward(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> urllib3.BaseHTTPResponse:
        """Send the request upstream once (no retries, no redirects) and read the raw reply."""
        kept = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP | {"host", "content-length"}}
        return self._pool.request(method, self.upstream + path, body=body, headers=kept, retries=False,
                                  redirect=False, decode_content=False, preload_content=True)

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the listening socket and every client connection, join all threads."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()
        with self._lock:
            connections = list(self._connections.items())
        for connection, _ in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for _, thread in connections:
            thread.join(10)
        self._pool.clear()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore expects
    server: ThreadingHTTPServer

    @property
    def proxy(self) -> FaultProxy:
        return self.server.proxy  # type: ignore[attr-defined]

    def setup(self) -> None:
        super().setup()
        # a reply's head and body are two writes: without TCP_NODELAY the body waits for the client's
        # delayed ACK of the head (40 ms a reply on Linux)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.proxy._lock:
            self.proxy._connections[self.connection] = threading.current_thread()

    def finish(self) -> None:
        with self.proxy._lock:
            self.proxy._connections.pop(self.connection, None)
        super().finish()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        self.relay(fault=None)

    def do_POST(self) -> None:
        operation = self.headers.get("X-Amz-Target", "").rpartition(".")[2]
        self.relay(fault=self.proxy.decide(operation))

    def relay(self, fault: str | None) -> None:
        """Answer with the injected ``fault``, or forward upstream and relay (or drop) the reply."""
        self.proxy.count("requests")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if fault is not None:
            self.proxy.count(fault)
        if fault in ERRORS:
            status, code = ERRORS[fault]
            self.reply(status, [("Content-Type", "application/x-amz-json-1.0")], json.dumps(
                {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "injected"}).encode())
            return
        try:
            response = self.proxy.forward(self.command, self.path, body, dict(self.headers.items()))
        except urllib3.exceptions.HTTPError as error:
            self.send_error(502, f"upstream: {error}")
            return
        self.proxy.count("forwarded")
        if fault == "drop_reply":  # applied upstream; the client gets no answer at all
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault == "delay_reply":
            time.sleep(self.proxy.delay)
        headers = [(k, v) for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP | {"content-length"}]
        self.reply(response.status, headers, response.data)

    def reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response_only(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
