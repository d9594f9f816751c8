"""The differential harness: the same raw commands on a real redis-server and on Redimo.

Replies are compared raw (redis-py's response callbacks are off, so ``OK`` is ``b"OK"``), errors by
exception class and message. The ``pair`` fixture (conftest.py) gives each test a table of its own, so
FLUSHALL is safe and scans stay small.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from redimo import Redimo


@dataclass(frozen=True)
class Error:
    kind: str
    message: str


def cmd(*parts: Any) -> st.SearchStrategy:
    """A command: fixed words and strategies; a list-valued part is spliced in."""
    return st.tuples(*[part if isinstance(part, st.SearchStrategy) else st.just(part) for part in parts]).map(flat)


def flat(command: tuple) -> tuple:
    """A drawn command with its list-valued parts spliced in."""
    return tuple(part for piece in command for part in (piece if isinstance(piece, list) else [piece]))


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


EXAMPLES = int(os.environ.get("REDIMO_DIFFERENTIAL_EXAMPLES", "50"))
# The state machines draw the same examples on every run, so that CI passes or fails reproducibly;
# REDIMO_DIFFERENTIAL_EXPLORE=1 draws new ones (with more EXAMPLES, to hunt for differences).
EXPLORE = os.environ.get("REDIMO_DIFFERENTIAL_EXPLORE") == "1"


def run_state_machine(pair: Pair, commands: list[st.SearchStrategy], step: Callable[[tuple], None],
                      compare_state: Callable[[], None], prelude: Callable[[], None] = lambda: None,
                      steps: int = 30) -> None:
    """A hypothesis state machine on both servers: each example starts from empty servers (and the
    ``prelude``), then runs up to ``steps`` rules. One rule draws a command and compares its replies
    (``step``); the other compares the whole state (``compare_state``, e.g. every key's contents).
    Hypothesis shrinks a failure to the shortest sequence of rules that shows it."""

    class Commands(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            pair.reset()
            prelude()

        @rule(command=st.one_of(*commands))
        def run_command(self, command: tuple) -> None:
            step(command)

        @rule()
        def compare_everything(self) -> None:
            compare_state()

    run_state_machine_as_test(Commands, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=steps, deadline=None, database=None, derandomize=not EXPLORE,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                               HealthCheck.data_too_large]))
