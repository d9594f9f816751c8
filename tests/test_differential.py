"""Differential tests: the same raw commands on a real redis-server and on Redimo (on both stores).

Replies are compared raw (redis-py's response callbacks are off, so ``OK`` is ``b"OK"`` and
INCRBYFLOAT's reply is the bulk string Redis formatted), errors by exception class and message.
Each test uses a table of its own, so FLUSHALL is safe and scans stay small.

Expiry stays honest and fast: relative TTLs are long (so nothing expires while a test runs) and
differ between steps by seconds (so GT/LT never race); absolute times are far in the past (the key
goes at once, in both) or fixed far in the future; TTL-like replies are compared with a tolerance.
One targeted test sleeps through a short PX.

Where DynamoDB forces Redimo to differ from Redis, the difference is named in
``FORCED_DIFFERENCES`` and checked as what it is, never skipped.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redimo import Redimo
from redimo.glob import glob_match
from differential import Error, Pair, cmd, raw
from redimo.storage import MAX_PARTITION_KEY, MAX_VALUE

EXAMPLES = int(os.environ.get("REDIMO_DIFFERENTIAL_EXAMPLES", "50"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])

# The differences from Redis that DynamoDB forces. Each is asserted where it shows.
FORCED_DIFFERENCES = {
    "value limit": "a string is at most 64 MB in Redimo (chunked into DynamoDB items), 512 MB in Redis, "
                   "so the size error names Redimo's limit",
    "key limit": "a key is at most 2048 bytes minus the namespace prefix (DynamoDB's partition key "
                 "limit); Redis takes keys up to 512 MB",
    "scan cursor": "a SCAN cursor is DynamoDB's scan position as an integer, so cursor values differ "
                   "and a cursor Redimo did not hand out is invalid, where Redis takes any unsigned number",
    "copy db": "COPY's DB names a Redimo namespace (any string), where Redis wants a database number",
    "msetnx limit": "MSETNX takes at most 100 keys (one DynamoDB transaction)",
}

INT64_MAX, INT64_MIN = 2**63 - 1, -(2**63)
FUTURE_S = 4_102_444_800  # 2100-01-01, fixed so both servers store the same absolute time
PAST_S = 1_000_000_000  # 2001


# -- generated command sequences ----------------------------------------------------------------
@dataclass(frozen=True)
class Later:
    """A relative expiry, far enough out that nothing expires during a test. Each step adds 10 s,
    so two steps never ask for the same expiry time and GT/LT replies cannot race the clock."""

    seconds: int
    milliseconds: bool

    def at(self, step: int) -> bytes:
        amount = self.seconds + 10 * step
        return str(amount * 1000 if self.milliseconds else amount).encode()


KEYS = [b"a", b"b", b"", b"\x00", b"\xff", b"a\x00b", b"*?"]
EDGE_VALUES = [
    b"", b"\x00", b"\xff", b"a\x00b", b"0", b"1", b"-1", b"-0", b"007", b" 1", b"1 ", b"+1", b"10",
    b"1e3", b"1.5", b"-1.5", b"0.1", b"1e20", b"3.0", b"0x10", b"inf", b"-inf", b"nan", b"abc",
    b"9223372036854775807", b"-9223372036854775808", b"9223372036854775808", b"-9223372036854775809",
    b"9223372036854775806", b"-9223372036854775807", b"123456.789", b"1e-20", b"5e-324",
]
INT_ARGS = [
    b"0", b"1", b"-1", b"2", b"5", b"-5", b"100", b"-100", b"007", b"-0", b"+1", b" 1", b"1.5", b"",
    b"abc", b"9223372036854775807", b"-9223372036854775808", b"9223372036854775808", b"4611686018427387904",
]
FLOAT_ARGS = [
    b"0", b"1", b"-1", b"0.1", b"-0.1", b"1.5", b"1e3", b"1E-3", b"-0", b"-0.0", b".5", b"5.", b"+.5e+1",
    b"inf", b"-inf", b"+inf", b"Infinity", b"nan", b"-nan", b"0x10", b"0x1p-3", b"1e", b"e1", b".", b"",
    b" 1", b"1 ", b"1_0", b"1e400", b"1e5000", b"-1e5000", b"1e-5000", b"1e-4940", b"123456789012345678901",
    b"9223372036854775807", b"3.14159265358979323846264338327950288", b"abc", b"1\x00",
]

key = st.sampled_from(KEYS)
value = st.one_of(st.sampled_from(EDGE_VALUES), st.binary(max_size=6))
integer = st.one_of(st.sampled_from(INT_ARGS), st.integers(-20, 20).map(lambda n: str(n).encode()))
small_offset = st.one_of(st.integers(0, 12).map(lambda n: str(n).encode()),
                         st.sampled_from([b"-1", b"abc", b"536870912", b"9223372036854775807"]))
float_arg = st.one_of(
    st.sampled_from(FLOAT_ARGS),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda x: repr(x).encode()),
    st.decimals(allow_nan=False, allow_infinity=False, places=4).map(lambda d: str(d).encode()),
    st.integers(-10**20, 10**20).map(lambda n: str(n).encode()),
)
seconds = st.one_of(
    st.builds(Later, st.sampled_from([1000, 50_000, 3_000_000]), st.just(False)),
    st.sampled_from([b"0", b"-1", b"-1000", b"abc", b"1.5", b"", b"+100000", str(INT64_MAX).encode(),
                     str(INT64_MIN).encode(), b"9223372036854775", b"9223372036854", b"-9223372036854775"]))
milliseconds = st.one_of(
    st.builds(Later, st.sampled_from([1000, 50_000, 3_000_000]), st.just(True)),
    st.sampled_from([b"0", b"-1", b"abc", str(INT64_MAX).encode(), str(INT64_MIN).encode(),
                     b"9223372036854775806"]))
at_seconds = st.sampled_from([b"1", str(PAST_S).encode(), str(FUTURE_S).encode(), str(FUTURE_S + 1).encode(),
                              b"0", b"-1", str(INT64_MAX).encode(), b"9223372036854775"])
at_milliseconds = st.sampled_from([b"1", str(PAST_S * 1000).encode(), str(FUTURE_S * 1000).encode(),
                                   str(FUTURE_S * 1000 + 500).encode(), str(FUTURE_S * 1000 + 1499).encode(),
                                   str(INT64_MAX).encode(), str(INT64_MIN).encode()])
pattern = st.lists(st.sampled_from([b"a", b"b", b"*", b"?", b"[", b"]", b"^", b"-", b"\\", b"\x00", b"\xff"]),
                   max_size=6).map(b"".join)


def word(*names: bytes) -> st.SearchStrategy:
    """An option word, in any letter case."""
    return st.sampled_from(names).flatmap(lambda name: st.sampled_from([name, name.lower(), name.title()]))


expiry_option = st.one_of(
    st.tuples(word(b"EX"), seconds).map(list), st.tuples(word(b"PX"), milliseconds).map(list),
    st.tuples(word(b"EXAT"), at_seconds).map(list), st.tuples(word(b"PXAT"), at_milliseconds).map(list))
set_option = st.one_of(expiry_option, word(b"NX", b"XX", b"GET", b"KEEPTTL").map(lambda w: [w]),
                       st.sampled_from([[b"EX"], [b"FOO"], [b"PERSIST"], [b"NX\x00junk"]]))
getex_option = st.one_of(expiry_option, word(b"PERSIST").map(lambda w: [w]),
                         st.sampled_from([[b"KEEPTTL"], [b"NX"], [b"PX"], [b"GET"]]))
expire_flag = st.one_of(*[word(b"NX", b"XX", b"GT", b"LT")] * 4, st.sampled_from([b"FOO", b"gt\x00x", b"a\r\nb"]))
flags = st.lists(expire_flag, max_size=2)
keys = st.lists(key, min_size=1, max_size=4)
key_values = st.lists(st.tuples(key, value), min_size=1, max_size=3).map(
    lambda pairs: [part for pair in pairs for part in pair])

STRING_COMMANDS = [
    cmd(b"GET", key),
    cmd(b"SET", key, value, st.lists(set_option, max_size=3).map(lambda opts: [w for o in opts for w in o])),
    cmd(b"SETNX", key, value),
    cmd(b"SETEX", key, seconds, value),
    cmd(b"PSETEX", key, milliseconds, value),
    cmd(b"GETSET", key, value),
    cmd(b"GETDEL", key),
    cmd(b"GETEX", key, st.lists(getex_option, max_size=2).map(lambda opts: [w for o in opts for w in o])),
    cmd(b"MGET", keys),
    cmd(b"MSET", key_values),
    cmd(b"MSETNX", key_values),
    cmd(b"INCR", key),
    cmd(b"DECR", key),
    cmd(b"INCRBY", key, integer),
    cmd(b"DECRBY", key, integer),
    cmd(b"INCRBYFLOAT", key, float_arg),
    cmd(b"APPEND", key, value),
    cmd(b"STRLEN", key),
    cmd(st.sampled_from([b"GETRANGE", b"SUBSTR"]), key, integer, integer),
    cmd(b"SETRANGE", key, small_offset, value),
]
KEY_COMMANDS = [
    cmd(b"DEL", keys),
    cmd(b"UNLINK", keys),
    cmd(st.sampled_from([b"EXISTS", b"TOUCH"]), keys),
    cmd(b"TYPE", key),
    cmd(b"EXPIRE", key, seconds, flags),
    cmd(b"PEXPIRE", key, milliseconds, flags),
    cmd(b"EXPIREAT", key, at_seconds, flags),
    cmd(b"PEXPIREAT", key, at_milliseconds, flags),
    cmd(st.sampled_from([b"TTL", b"PTTL", b"EXPIRETIME", b"PEXPIRETIME"]), key),
    cmd(b"PERSIST", key),
    cmd(b"RENAME", key, key),
    cmd(b"RENAMENX", key, key),
    cmd(b"COPY", key, key, st.sampled_from([[], [b"REPLACE"], [b"replace"], [b"REPLACE", b"REPLACE"], [b"FOO"]])),
    cmd(st.sampled_from([b"~hash", b"~list", b"~set", b"~zset", b"~stream"]), key),
    cmd(b"FLUSHALL", st.sampled_from([[], [b"SYNC"], [b"async"], [b"FOO"]])),
    cmd(b"PING", st.sampled_from([[], [b"hi"], [b""], [b"\x00\xff"]])),
    cmd(b"ECHO", value),
]
SCANNING_COMMANDS = [
    cmd(b"DBSIZE"),
    cmd(b"KEYS", pattern),
    # (no TYPE none here: Redis 7.0's SCAN returns a key it finds expired under TYPE none)
    cmd(b"~scan", st.sampled_from([None, b"*", b"a*", b"?", b"[ab]", b"\\*?", b"*\x00*"]),
        st.sampled_from([None, b"1", b"2", b"1000"]),
        st.sampled_from([None, b"string", b"STRING", b"hash", b"list", b"set", b"zset", b"stream", b"nosuch"])),
    cmd(b"~randomkey"),
    cmd(b"FLUSHDB", st.sampled_from([[], [b"SYNC"], [b"async"], [b"FOO"]])),
]
WRITERS = [  # drawn more often, so that the other commands meet keys that exist
    cmd(b"SET", key, value), cmd(b"SET", key, value, expiry_option), cmd(b"MSET", key_values),
    cmd(b"INCRBY", key, integer), cmd(b"APPEND", key, value),
]

# Replies that are times: compared with a tolerance (Redis and Redimo read their clocks apart).
TIME_REPLIES = {b"TTL": 2, b"EXPIRETIME": 2, b"PTTL": 2000, b"PEXPIRETIME": 2000}


def run(pair: Pair, sequence: list[tuple]) -> None:
    pair.reset()
    for step, command in enumerate(sequence):
        args = tuple(part.at(step) if isinstance(part, Later) else part for part in command)
        check(pair, args, f"step {step} of {sequence!r}")


def check(pair: Pair, args: tuple, where: str) -> None:
    name = args[0].upper()
    if name == b"~SCAN":
        return check_scan(pair, *args[1:])
    if name == b"~RANDOMKEY":
        return check_randomkey(pair)
    if name in (b"~HASH", b"~LIST", b"~SET", b"~ZSET", b"~STREAM"):
        return pair.make_type(args[1], name[1:].decode().lower())
    if name == b"DBSIZE" and len(args) == 1:
        return check_dbsize(pair)
    expected, got = pair.both(*args)
    if name == b"KEYS" and isinstance(expected, list) and isinstance(got, list):
        expected, got = sorted(expected), sorted(got)
    if name in TIME_REPLIES and isinstance(expected, int) and isinstance(got, int) and min(expected, got) >= 0:
        assert abs(got - expected) <= TIME_REPLIES[name], f"{args!r} at {where}: Redis {expected}, Redimo {got}"
        return
    if name == b"SETRANGE" and isinstance(expected, Error) and "proto-max-bulk-len" in expected.message:
        assert got == Error("ResponseError", f"string exceeds maximum allowed size ({MAX_VALUE} bytes in Redimo)"), \
            FORCED_DIFFERENCES["value limit"]
        return
    assert got == expected, f"{args!r} at {where}: Redis replied {expected!r}, Redimo {got!r}"


def scan_all(client: redis.Redis, match: bytes | None, count: bytes | None, type_name: bytes | None) -> list:
    options: list = []
    for option, argument in ((b"MATCH", match), (b"COUNT", count), (b"TYPE", type_name)):
        if argument is not None:
            options += [option, argument]
    cursor, found, rounds = b"0", [], 0
    while True:
        cursor, keys_ = client.execute_command(b"SCAN", cursor, *options)
        found.extend(keys_)
        rounds += 1
        assert rounds < 1000, "SCAN does not end"
        if cursor == b"0":
            return found


def check_scan(pair: Pair, match: bytes | None, count: bytes | None, type_name: bytes | None) -> None:
    """The cursors differ by design (``FORCED_DIFFERENCES["scan cursor"]``): compare what a full
    iteration returns. Redis may return a key twice; Redimo returns each once."""
    expected = scan_all(pair.redis, match, count, type_name)
    got = scan_all(pair.redimo, match, count, type_name)
    assert sorted(got) == sorted(set(got)), "Redimo's SCAN returned a key twice"
    assert sorted(got) == sorted(set(expected)), (match, count, type_name)


def check_dbsize(pair: Pair) -> None:
    """Redis's DBSIZE counts a key that has expired until Redis reclaims it (lazily, or by its
    active expiry cycle 10 times a second), so it may be more than the live keys; Redimo counts
    live keys, as KEYS * does on Redis."""
    counted = pair.redis.execute_command(b"DBSIZE")
    live = len(pair.redis.execute_command(b"KEYS", b"*"))
    got = pair.redimo.execute_command(b"DBSIZE")
    assert got == live <= counted, f"DBSIZE: Redimo {got}, Redis {counted} with {live} live keys"


def check_randomkey(pair: Pair) -> None:
    live = set(pair.redis.execute_command(b"KEYS", b"*"))
    expected, got = pair.both(b"RANDOMKEY")
    assert (expected is None) == (got is None) == (not live)
    assert got is None or got in live


@SETTINGS
@given(sequence=st.lists(st.one_of(*STRING_COMMANDS, *KEY_COMMANDS, *SCANNING_COMMANDS, *WRITERS, *WRITERS),
                         min_size=10, max_size=30))
def test_command_sequences(pair: Pair, sequence: list[tuple]) -> None:
    run(pair, sequence)


@SETTINGS
@given(sequence=st.lists(st.one_of(
    cmd(b"GET", key), cmd(b"SET", key, value), cmd(b"APPEND", key, value), cmd(b"~hash", key),
    cmd(b"INCR", key), cmd(b"DECR", key), cmd(b"INCRBY", key, integer), cmd(b"DECRBY", key, integer),
    cmd(b"INCRBYFLOAT", key, float_arg)), min_size=4, max_size=15))
def test_counters_and_floats(pair: Pair, sequence: list[tuple]) -> None:
    """GET, SET and the INCR family on edge numbers: int64 bounds, non-canonical integers, floats
    in long double arithmetic formatted to 17 places."""
    run(pair, sequence)


# -- targeted tests -----------------------------------------------------------------------------
@given(start=st.one_of(st.sampled_from(EDGE_VALUES), float_arg), increment=float_arg)
@SETTINGS
def test_incrbyfloat_values(pair: Pair, start: bytes, increment: bytes) -> None:
    pair.reset()
    pair.same(b"SET", b"f", start)
    pair.same(b"INCRBYFLOAT", b"f", increment)
    pair.same(b"INCRBYFLOAT", b"f", increment)
    pair.same(b"GET", b"f")


ARITY = {
    b"GET": 2, b"SET": -3, b"SETNX": 3, b"SETEX": 4, b"PSETEX": 4, b"GETSET": 3, b"GETDEL": 2, b"GETEX": -2,
    b"MGET": -2, b"MSET": -3, b"MSETNX": -3, b"INCR": 2, b"INCRBY": 3, b"DECR": 2, b"DECRBY": 3,
    b"INCRBYFLOAT": 3, b"APPEND": 3, b"STRLEN": 2, b"GETRANGE": 4, b"SETRANGE": 4, b"DEL": -2, b"UNLINK": -2,
    b"EXISTS": -2, b"TYPE": 2, b"EXPIRE": -3, b"PEXPIRE": -3, b"EXPIREAT": -3, b"PEXPIREAT": -3, b"TTL": 2,
    b"PTTL": 2, b"EXPIRETIME": 2, b"PEXPIRETIME": 2, b"PERSIST": 2, b"RENAME": 3, b"RENAMENX": 3, b"COPY": -3,
    b"RANDOMKEY": 1, b"SCAN": -2, b"KEYS": 2, b"DBSIZE": 1, b"FLUSHDB": -1, b"FLUSHALL": -1, b"PING": -1,
    b"ECHO": 2,
}


def test_arity_errors(pair: Pair) -> None:
    """Every command with one argument too few and (for a fixed arity) one too many."""
    for name, arity in ARITY.items():
        for spelled in (name, name.lower(), name.title()):
            needed = abs(arity) - 1  # arguments after the name
            if needed:
                pair.same(spelled, *[b"1"] * (needed - 1))
            if arity > 0:
                pair.same(spelled, *[b"1"] * (needed + 1))
    for args in [(b"PING", b"a", b"b"), (b"MSET", b"a", b"1", b"b"), (b"MSETNX", b"a"), (b"FLUSHDB", b"SYNC", b"x"),
                 (b"FLUSHALL", b"ASYNC", b"ASYNC"), (b"FLUSHDB", b"SYNC\x00x"), (b"ECHO", b"")]:
        pair.same(*args)


@pytest.mark.parametrize("args", [
    (b"NOSUCH",),
    (b"nosuch",),
    (b"NOSUCH", b"a", b"b"),
    (b"nosuch", b"x" * 200, b"y"),
    (b"nosuch", b"a\r\nb"),
    (b"nosuch", b"a\x00b", b"c"),
])
def test_unknown_command(pair: Pair, args: tuple) -> None:
    pair.same(*args)


def test_wrong_type(pair: Pair) -> None:
    pair.make_type(b"h", "hash")
    pair.make_type(b"l", "list")
    pair.same(b"SET", b"s", b"1")
    for other in (b"h", b"l"):
        for args in [(b"GET", other), (b"SET", other, b"v", b"GET"), (b"SET", other, b"v", b"NX", b"GET"),
                     (b"SET", other, b"v", b"XX", b"GET"), (b"GETSET", other, b"v"), (b"GETDEL", other),
                     (b"GETEX", other), (b"GETEX", other, b"PERSIST"), (b"GETEX", other, b"EX", b"100"),
                     (b"GETEX", other, b"EX", b"0"), (b"GETEX", other, b"EX", b"abc"), (b"INCR", other),
                     (b"DECR", other), (b"INCRBY", other, b"1"), (b"INCRBY", other, b"x"), (b"DECRBY", other, b"2"),
                     (b"INCRBYFLOAT", other, b"1.5"), (b"INCRBYFLOAT", other, b"x"), (b"APPEND", other, b"x"),
                     (b"STRLEN", other), (b"GETRANGE", other, b"0", b"-1"), (b"GETRANGE", other, b"x", b"1"),
                     (b"SETRANGE", other, b"0", b"x"), (b"SETRANGE", other, b"0", b""),
                     (b"SETRANGE", other, b"536870912", b"x"), (b"SETRANGE", other, b"-1", b"x"),
                     (b"MGET", other, b"s", b"nokey"), (b"TYPE", other), (b"EXISTS", other, other),
                     (b"TTL", other), (b"EXPIRE", other, b"1000"), (b"PERSIST", other), (b"PTTL", other)]:
            check(pair, args, "wrong type")
    pair.same(b"COPY", b"h", b"h2")
    pair.same(b"TYPE", b"h2")
    pair.same(b"RENAME", b"l", b"s")
    pair.same(b"TYPE", b"s")
    pair.same(b"SET", b"h", b"v")  # a plain SET replaces any type
    pair.same(b"TYPE", b"h")
    pair.same(b"MSET", b"l2", b"x", b"s", b"y")
    pair.same(b"MGET", b"s", b"h", b"h2")


def test_scans_see_every_type(pair: Pair) -> None:
    pair.make_type(b"h", "hash")
    pair.make_type(b"l", "list")
    pair.same(b"SET", b"s", b"1")
    for type_name in (None, b"hash", b"list", b"string", b"LIST", b"none"):
        check_scan(pair, None, b"1", type_name)
    for args in [(b"KEYS", b"*"), (b"KEYS", b"[hl]"), (b"DBSIZE",), (b"~randomkey",)]:
        check(pair, args, "several types")


def test_short_px_expires(pair: Pair) -> None:
    """A real short expiry: the keys live, and soon after their 400 ms they are gone from both."""
    started = time.monotonic()
    pair.same(b"SET", b"k", b"v", b"PX", b"400")
    pair.same(b"PSETEX", b"p", b"400", b"v")
    pair.same(b"SET", b"n", b"5", b"PX", b"400")
    pair.same(b"GET", b"k")
    pair.same(b"EXISTS", b"k", b"p")
    check(pair, (b"PTTL", b"n"), "before expiry")
    assert time.monotonic() - started < 0.4, "too slow to see the keys alive"
    time.sleep(max(0.0, started + 0.5 - time.monotonic()))
    for args in [(b"GET", b"k"), (b"EXISTS", b"k", b"p"), (b"TTL", b"k"), (b"PTTL", b"p"), (b"TYPE", b"k"),
                 (b"INCR", b"n"), (b"TTL", b"n"), (b"SET", b"p", b"w", b"XX"), (b"SET", b"k", b"w", b"NX", b"GET"),
                 (b"TTL", b"k"), (b"MGET", b"k", b"p", b"n"), (b"PERSIST", b"p"), (b"RENAME", b"p", b"q")]:
        pair.same(*args)


def test_short_px_expires_from_scans(pair: Pair) -> None:
    started = time.monotonic()
    pair.same(b"SET", b"k", b"v", b"PX", b"400")
    pair.same(b"SET", b"s", b"v")
    check(pair, (b"DBSIZE",), "before expiry")
    assert time.monotonic() - started < 0.4, "too slow to see the key alive"
    time.sleep(max(0.0, started + 0.5 - time.monotonic()))
    for args in [(b"DBSIZE",), (b"KEYS", b"*"), (b"~randomkey",), (b"~scan", None, b"1", None)]:
        check(pair, args, "after expiry")


def test_expiry_times(pair: Pair) -> None:
    """Absolute expiry times compare exactly, relative ones with a tolerance."""
    pair.same(b"SET", b"k", b"v", b"PXAT", str(FUTURE_S * 1000 + 499).encode())
    pair.same(b"PEXPIRETIME", b"k")
    pair.same(b"EXPIRETIME", b"k")
    pair.same(b"SET", b"k", b"v", b"PXAT", str(FUTURE_S * 1000 + 500).encode())
    pair.same(b"EXPIRETIME", b"k")
    pair.same(b"EXPIREAT", b"k", str(FUTURE_S).encode(), b"GT")
    pair.same(b"EXPIREAT", b"k", str(FUTURE_S + 1).encode(), b"GT")
    pair.same(b"PEXPIRETIME", b"k")
    pair.same(b"EXPIREAT", b"k", str(FUTURE_S + 1).encode(), b"LT")
    pair.same(b"EXPIREAT", b"k", str(FUTURE_S).encode(), b"LT", b"XX")
    pair.same(b"EXPIREAT", b"k", str(FUTURE_S).encode(), b"NX")
    pair.same(b"PEXPIREAT", b"k", str(INT64_MIN).encode())  # far in the past: deleted
    pair.same(b"EXISTS", b"k")
    pair.same(b"SET", b"k", b"v")
    pair.same(b"PEXPIRE", b"k", str(INT64_MIN).encode())
    pair.same(b"EXISTS", b"k")
    pair.same(b"SET", b"k", b"v")
    pair.same(b"EXPIRE", b"k", b"abc", b"FOO")  # options are checked before the number
    pair.same(b"EXPIRE", b"k", b"100", b"GT")  # no TTL counts as infinite: GT fails, LT succeeds
    pair.same(b"EXPIRE", b"k", b"100", b"LT")
    for name in TIME_REPLIES:
        check(pair, (name, b"k"), "after EXPIRE k 100 LT")


def test_scan_options_and_errors(pair: Pair) -> None:
    for index in range(30):
        pair.same(b"SET", f"key:{index}".encode(), b"v")
    pair.make_type(b"key:h", "hash")
    for match in (None, b"key:1*", b"key:?", b"*h", b"nomatch"):
        for count in (None, b"1", b"7", b"100"):
            for type_name in (None, b"string", b"HASH", b"list"):
                check_scan(pair, match, count, type_name)
    for args in [(b"SCAN", b"0", b"COUNT", b"0"), (b"SCAN", b"0", b"COUNT", b"-1"), (b"SCAN", b"0", b"COUNT", b"x"),
                 (b"SCAN", b"0", b"COUNT"), (b"SCAN", b"0", b"MATCH"), (b"SCAN", b"0", b"TYPE"),
                 (b"SCAN", b"0", b"FOO", b"bar"), (b"SCAN", b"x"), (b"SCAN", b"1.5"), (b"SCAN", b" 0"),
                 (b"SCAN", b"0 "), (b"SCAN", b"+"), (b"SCAN", b"0", b"COUNT", b"x", b"FOO"),
                 (b"SCAN", str(2**64).encode()), (b"SCAN", b"1" * 30)]:
        pair.same(*args)
    check_scan(pair, None, None, b"")
    check_scan(pair, None, None, b"nosuch")
    for cursor in (b"", b"+0", b"-0", b"000"):  # all read as 0 (Redis uses strtoul)
        for client in (pair.redis, pair.redimo):
            assert client.execute_command(b"SCAN", cursor, b"COUNT", b"1000")[1], cursor
    check_scan(pair, None, str(INT64_MAX).encode(), None)
    check_scan(pair, b"key:1?", b"3", b"String\x00junk")
    # FORCED_DIFFERENCES["scan cursor"]: any unsigned number is a cursor to Redis, not to Redimo.
    for cursor in (b"5", b"-1", str(2**64 - 1).encode(), str(2**70).encode(), b"9" * 5000):
        assert pair.redis.execute_command(b"SCAN", b"5")[0].isdigit()
        with pytest.raises(redis.ResponseError, match="^invalid cursor$"):
            pair.redimo.execute_command(b"SCAN", cursor)


def test_scan_past_long_keys(pair: Pair, store, table: str) -> None:
    """A cursor at a key near DynamoDB's 2048-byte limit would have more digits than redis-py's
    int() reads; Redimo's SCAN goes on past such a key instead of handing out that cursor."""
    long_keys = [bytes([65 + index]) * 2000 for index in range(5)]
    short_keys = [f"s{index}".encode() for index in range(10)]
    for name in long_keys + short_keys:
        pair.same(b"SET", name, b"v")
    for count in (b"1", b"2", b"5"):
        check_scan(pair, None, count, None)
    client = Redimo(table=table, client=store.client)  # with redis-py's own parsing of SCAN
    assert sorted(client.scan_iter(count=1)) == sorted(long_keys + short_keys)


@given(patterns=st.lists(pattern, min_size=1, max_size=20))
@SETTINGS
def test_glob_patterns(pair: Pair, patterns: list[bytes]) -> None:
    """Redis's glob (stringmatchlen) against redimo.glob, on many keys at once, and KEYS end to end."""
    if not pair.redis.execute_command(b"DBSIZE"):
        names = {b"", b"a", b"b", b"ab", b"ba", b"aab", b"a*", b"a?", b"[", b"]", b"^", b"-", b"\\", b"a\\b",
                 b"\x00", b"\xff", b"a\x00", b"[a]", b"^a", b"a-b", b"*", b"?", b"a]", b"]a", b"-a", b"\xffa"}
        pair.redis.execute_command(b"MSET", *[part for name in names for part in (name, b"1")])
        pair.redimo.execute_command(b"MSET", *[part for name in names for part in (name, b"1")])
    names = pair.redis.execute_command(b"KEYS", b"*")
    for pattern_ in patterns:
        expected = sorted(pair.redis.execute_command(b"KEYS", pattern_))
        assert sorted(name for name in names if glob_match(pattern_, name)) == expected, pattern_
    assert sorted(pair.redimo.execute_command(b"KEYS", patterns[0])) == sorted(
        pair.redis.execute_command(b"KEYS", patterns[0]))


def test_flushall_and_flushdb(pair: Pair, store, table: str, real_redis: redis.Redis) -> None:
    """FLUSHDB clears one database (namespace), FLUSHALL all of them (this test's own table)."""
    other_redis = raw(redis.Redis(connection_pool=redis.ConnectionPool(
        port=real_redis.connection_pool.connection_kwargs["port"], db=1)))
    other_redimo = raw(Redimo(table=table, namespace="1", client=store.client))
    other = Pair(other_redis, other_redimo)
    for client_pair in (pair, other):
        client_pair.same(b"MSET", b"a", b"1", b"b", b"2")
    pair.same(b"FLUSHDB")
    pair.same(b"DBSIZE")
    other.same(b"DBSIZE")
    pair.same(b"SET", b"c", b"3")
    pair.same(b"FLUSHALL", b"SYNC")
    pair.same(b"DBSIZE")
    other.same(b"DBSIZE")
    other.same(b"KEYS", b"*")
    assert list(store.client.scan(TableName=table)["Items"]) == []


def test_copy_to_another_database(pair: Pair, store, table: str, real_redis: redis.Redis) -> None:
    """COPY ... DB n: a Redis database number is a Redimo namespace name."""
    other = Pair(raw(redis.Redis(connection_pool=redis.ConnectionPool(
        port=real_redis.connection_pool.connection_kwargs["port"], db=1))),
        raw(Redimo(table=table, namespace="1", client=store.client)))
    pair.same(b"SET", b"a", b"1", b"PXAT", str(FUTURE_S * 1000).encode())
    pair.same(b"COPY", b"a", b"a", b"DB", b"1")
    other.same(b"GET", b"a")
    other.same(b"PEXPIRETIME", b"a")
    pair.same(b"COPY", b"a", b"a", b"DB", b"1")
    pair.same(b"SET", b"a", b"2")
    pair.same(b"COPY", b"a", b"a", b"DB", b"1", b"REPLACE")
    other.same(b"GET", b"a")
    other.same(b"TTL", b"a")
    pair.same(b"COPY", b"a", b"b", b"DB")
    pair.same(b"COPY", b"a", b"b", b"FOO")
    # FORCED_DIFFERENCES["copy db"]: a namespace is any string, a Redis database a number.
    expected, got = pair.both(b"COPY", b"a", b"b", b"DB", b"x")
    assert expected == Error("ResponseError", "value is not an integer or out of range") and got == 1
    assert raw(Redimo(table=table, namespace="x", client=store.client)).execute_command(b"GET", b"b") == b"2"


def test_forced_size_limits(pair: Pair) -> None:
    # FORCED_DIFFERENCES["key limit"]
    long_key = b"k" * MAX_PARTITION_KEY
    expected, got = pair.both(b"SET", long_key, b"v")
    assert expected == b"OK" and isinstance(got, Error) and "key is too long for DynamoDB" in got.message
    # FORCED_DIFFERENCES["value limit"]: between 64 MB and 512 MB only Redimo refuses.
    expected, got = pair.both(b"SETRANGE", b"s", str(MAX_VALUE).encode(), b"")
    assert expected == got == 0
    expected, got = pair.both(b"SETRANGE", b"s", str(512 * 1024 * 1024).encode(), b"x")
    assert expected.message == "string exceeds maximum allowed size (proto-max-bulk-len)"
    assert got.message == f"string exceeds maximum allowed size ({MAX_VALUE} bytes in Redimo)"
    # FORCED_DIFFERENCES["msetnx limit"]
    pair.reset()
    many = [part for index in range(101) for part in (f"k{index}".encode(), b"v")]
    expected, got = pair.both(b"MSETNX", *many)
    assert expected == 1 and isinstance(got, Error) and "at most 100 keys" in got.message
    pair.same(b"MSET", *many)  # MSET has no limit (beyond 100 keys it is not atomic)
    pair.same(b"EXISTS", *many[::2])


def test_chunked_values(pair: Pair) -> None:
    """Values past one item (350 KB inline) are chunked in Redimo: the same replies as Redis."""
    big = bytes(range(256)) * 1400 + b"\x00\xff"  # 358,402 bytes
    for args in [
        (b"SET", b"big", big), (b"STRLEN", b"big"), (b"APPEND", b"big", b"tail"), (b"GETRANGE", b"big", b"349990", b"350010"),
        (b"GETRANGE", b"big", b"-5", b"-1"), (b"SETRANGE", b"big", b"349998", b"XYZ"), (b"SETRANGE", b"big", b"358410", b"!"),
        (b"GET", b"big"), (b"SET", b"big", b"small", b"GET"), (b"SET", b"big", big, b"GET"), (b"SET", b"big", big + b"2", b"GET"),
        (b"EXPIREAT", b"big", str(FUTURE_S).encode()), (b"EXPIRETIME", b"big"), (b"COPY", b"big", b"copy"),
        (b"EXPIRETIME", b"copy"), (b"RENAME", b"copy", b"moved"), (b"GET", b"moved"), (b"EXISTS", b"copy", b"moved"),
        (b"GETEX", b"moved", b"PERSIST"), (b"TTL", b"moved"), (b"EXPIREAT", b"moved", str(FUTURE_S).encode(), b"NX"),
        (b"PERSIST", b"moved"), (b"MGET", b"big", b"moved", b"nokey"), (b"INCR", b"big"), (b"INCRBYFLOAT", b"big", b"1"),
        (b"GETDEL", b"big"), (b"GET", b"big"), (b"MSET", b"x", big, b"y", b"1"), (b"MSETNX", b"x", b"1", b"z", big),
        (b"GETSET", b"x", b"2"), (b"APPEND", b"y", big), (b"STRLEN", b"y"), (b"DEL", b"x", b"y", b"moved"),
    ]:
        expected, got = pair.both(*args)
        assert got == expected, f"{args[:2]!r}: Redis {str(expected)[:80]}, Redimo {str(got)[:80]}"
    left = pair.redimo.gateway.client.scan(TableName=pair.redimo.gateway.table)["Items"]
    now = time.time() * 1000
    assert all(item["sk"]["B"] == b"\x00" and int(item["x"]["N"]) <= now for item in left), \
        "no chunk is left behind: only GETDEL's expired head, which keeps the value for a retried call until the TTL"
