"""The differential harness: the same raw commands on a real redis-server and on Redimo.

Replies are compared raw (redis-py's response callbacks are off, so ``OK`` is ``b"OK"``), errors by
exception class and message. The ``pair`` fixture (conftest.py) gives each test a table of its own, so
FLUSHALL is safe and scans stay small.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
from hypothesis import strategies as st

from redimo import Redimo


@dataclass(frozen=True)
class Error:
    kind: str
    message: str


def cmd(*parts: Any) -> st.SearchStrategy:
    """A command: fixed words and strategies; a list-valued part is spliced in."""
    def flatten(drawn: tuple) -> tuple:
        out: list = []
        for part in drawn:
            out.extend(part if isinstance(part, list) else [part])
        return tuple(out)

    return st.tuples(*[part if isinstance(part, st.SearchStrategy) else st.just(part) for part in parts]).map(flatten)


def reply(client: redis.Redis, args: tuple) -> Any:
    try:
        return client.execute_command(*args)
    except redis.ResponseError as error:
        return Error(type(error).__name__, str(error))


def raw(client: redis.Redis) -> redis.Redis:
    client.response_callbacks.clear()
    return client


@dataclass
class Pair:
    """A raw redis-py client on the real Redis and one on Redimo; the same commands go to both."""

    redis: redis.Redis
    redimo: Redimo

    def reset(self) -> None:
        self.redis.flushall()
        self.redimo.execute_command("FLUSHALL")

    def both(self, *args: Any) -> tuple[Any, Any]:
        return reply(self.redis, args), reply(self.redimo, args)

    def same(self, *args: Any) -> Any:
        expected, got = self.both(*args)
        assert got == expected, f"{args!r}: Redis replied {expected!r}, Redimo {got!r}"
        return got

    def make_type(self, key: bytes, kind: str) -> None:
        """Make ``key`` a one-member collection of the kind on both."""
        self.same(b"DEL", key)
        name, *arguments = MAKERS[kind]
        self.same(name, key, *arguments)


MAKERS = {"hash": (b"HSET", b"f", b"v"), "list": (b"RPUSH", b"x"), "set": (b"SADD", b"m"),
          "zset": (b"ZADD", b"1", b"m"), "stream": (b"XADD", b"1-1", b"f", b"v")}
