"""``redimo serve`` in a test: a server on a free port of DynamoDB Local, run in a background thread
(the ``serve`` fixture of conftest.py starts them)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from redimo import Redimo
from redimo.gateway import Gateway
from redimo.server import Options, Server

TABLE = "redimo-tests"


class Running:
    """A server on a free port, its event loop in a background thread."""

    def __init__(self, client: Any, **options: Any) -> None:
        prefix = f"srv-{uuid.uuid4().hex[:10]}"
        options.setdefault("names", {database: f"{prefix}-{database}" for database in range(4)})
        self.options = Options(table=TABLE, port=0, **options)
        self.client = client
        self.server = Server(self.options, Gateway(TABLE, client))
        self.thread = threading.Thread(target=asyncio.run, args=(self.server.serve(),), daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while self.server.port == 0:
            assert time.monotonic() < deadline and self.thread.is_alive(), "the server did not start"
            time.sleep(0.01)
        self.port = self.server.port

    def redis(self, **options: Any) -> redis.Redis:
        options.setdefault("socket_timeout", 30)
        options.setdefault("retry", Retry(NoBackoff(), 0))  # redis-py retries NOAUTH (a ConnectionError) otherwise
        return redis.Redis(port=self.port, **options)

    def redimo(self, database: int = 0) -> Redimo:
        """An in-process client on the namespace of ``database``."""
        return Redimo(table=TABLE, client=self.client, namespace=self.options.namespace(database))

    def raw(self, host: str = "127.0.0.1") -> socket.socket:
        return socket.create_connection((host, self.port), timeout=30)

    def stop(self) -> None:
        assert self.server.loop is not None
        self.server.loop.call_soon_threadsafe(self.server.stop)
        self.thread.join(30)
        assert not self.thread.is_alive()
