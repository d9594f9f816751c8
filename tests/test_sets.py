"""Set commands: unit tests on both stores (replies, request counts, binary and long members, expiry,
WRONGTYPE, randomness, concurrency) and a differential test against a real redis-server."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any, Callable

import pytest
import redis
from hypothesis import strategies as st

from conftest import ALL_ENCODINGS, TABLE, run_processes
from differential import Error, Pair, flat, run_state_machine
from redimo import Redimo
from redimo.commands import hashes, sets
from redimo.storage import millis

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


def spent(r: Redimo, action: Callable[[], Any]) -> tuple[Any, dict]:
    before = r.gateway.usage.snapshot()
    result = action()
    return result, dict((r.gateway.usage - before).requests)


# -- replies -----------------------------------------------------------------------------------
def test_set_commands(r: Redimo) -> None:
    assert r.sadd("s", "a", "b", "c", "a") == 3
    assert r.sadd("s", "c", "d") == 1
    assert r.smembers("s") == {b"a", b"b", b"c", b"d"} and r.smembers("nokey") == set()
    assert r.scard("s") == 4 and r.scard("nokey") == 0
    assert r.sismember("s", "a") == 1 and r.sismember("s", "z") == 0 and r.sismember("nokey", "a") == 0
    assert r.smismember("s", ["a", "z", "d", "a"]) == [1, 0, 1, 1]
    assert r.srem("s", "a", "z", "a") == 1 and r.scard("s") == 3
    assert r.type("s") == b"set"


def test_spop_and_srandmember(r: Redimo) -> None:
    assert r.spop("nokey") is None and r.spop("nokey", 3) == [] and r.srandmember("nokey") is None
    assert r.srandmember("nokey", 5) == []
    members = {f"m{i}".encode() for i in range(10)}
    r.sadd("s", *members)
    assert r.srandmember("s") in members
    picked = r.srandmember("s", 4)
    assert len(picked) == len(set(picked)) == 4 and set(picked) <= members
    assert sorted(r.srandmember("s", 100)) == sorted(members)
    repeated = r.srandmember("s", -25)
    assert len(repeated) == 25 and set(repeated) <= members
    assert r.srandmember("s", 0) == [] and r.scard("s") == 10
    popped = r.spop("s")
    assert popped in members and r.sismember("s", popped) == 0 and r.scard("s") == 9
    more = r.spop("s", 3)
    assert len(set(more)) == 3 and not set(more) & {popped} and r.scard("s") == 6
    assert r.spop("s", 0) == [] and r.scard("s") == 6
    rest = r.spop("s", 100)
    assert {popped, *more, *rest} == members and r.exists("s") == 0
    with pytest.raises(redis.ResponseError, match="value is out of range, must be positive"):
        r.spop("s", -1)
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.execute_command("SRANDMEMBER", "s", "1", "2")


def test_srandmember_is_not_biased_to_the_first_members(r: Redimo) -> None:
    members = [f"member-{i:02}".encode() for i in range(20)]
    r.sadd("s", *members)
    assert Counter(r.srandmember("s") for _ in range(400)).keys() == set(members)
    assert set(r.srandmember("s", -400)) == set(members)
    firsts = Counter(r.srandmember("s", 3)[0] for _ in range(100))
    assert len(firsts) > 5, "a distinct draw is shuffled, not in sort order"


def test_spop_is_not_biased_to_the_first_members(r: Redimo) -> None:
    members = [f"member-{i:02}".encode() for i in range(20)]
    r.sadd("s", *members)
    seen = Counter()
    for _ in range(200):
        popped = r.spop("s")
        seen[popped] += 1
        r.sadd("s", popped)
    assert len(seen) >= 15, seen


@pytest.mark.promoted
def test_large_sets_are_sampled_at_random_points(r: Redimo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hashes, "READ_ALL_LIMIT", 5)
    monkeypatch.setattr(hashes, "READ_ALL_RATIO", 1)
    members = [bytes([8 * i]) for i in range(32)]  # evenly spread sort keys: uniform draws
    r.sadd("s", *members)
    assert spent(r, lambda: r.srandmember("s", -4))[1] == {"get_item": 1, "query": 2 + 4}
    assert set(r.srandmember("s", -400)) == set(members)
    popped = r.spop("s", 3)
    assert len(set(popped)) == 3 and r.scard("s") == 29 and r.smismember("s", popped) == [0, 0, 0]


def test_smove(r: Redimo) -> None:
    r.sadd("a", "x", "y")
    assert r.smove("a", "b", "x") is True
    assert r.smembers("a") == {b"y"} and r.smembers("b") == {b"x"}
    assert r.smove("a", "b", "nope") is False
    assert r.smove("nokey", "b", "x") is False
    r.sadd("b", "y")
    assert r.smove("a", "b", "y") is True, "already in the destination: moved all the same"
    assert r.exists("a") == 0 and r.smembers("b") == {b"x", b"y"} and r.scard("b") == 2
    assert r.smove("b", "b", "x") is True and r.smove("b", "b", "z") is False
    r.set("str", "v")
    with pytest.raises(redis.ResponseError, match=WRONGTYPE):
        r.smove("b", "str", "x")
    with pytest.raises(redis.ResponseError, match=WRONGTYPE):
        r.smove("b", "str", "nope")
    with pytest.raises(redis.ResponseError, match=WRONGTYPE):
        r.smove("str", "b", "x")
    assert r.smove("nokey", "str", "x") is False
    assert r.smembers("b") == {b"x", b"y"}


@pytest.mark.promoted
def test_smove_request_counts(r: Redimo) -> None:
    r.sadd("a", "x", "y")
    assert spent(r, lambda: r.smove("a", "b", "x"))[1] == {"batch_get_item": 2, "transact_write_items": 1}
    assert spent(r, lambda: r.smove("a", "b", "nope"))[1] == {"batch_get_item": 2}


def test_set_algebra(r: Redimo) -> None:
    r.sadd("a", "1", "2", "3", "4")
    r.sadd("b", "3", "4", "5")
    r.sadd("c", "4", "6")
    assert r.sinter("a", "b") == {b"3", b"4"} and r.sinter("a", "b", "c") == {b"4"}
    assert r.sinter("a", "nokey") == set() and r.sinter("a") == {b"1", b"2", b"3", b"4"}
    assert r.sunion("a", "b", "nokey") == {b"1", b"2", b"3", b"4", b"5"}
    assert r.sdiff("a", "b", "c") == {b"1", b"2"} and r.sdiff("nokey", "a") == set() and r.sdiff("a", "nokey") == \
        {b"1", b"2", b"3", b"4"}
    assert r.sinter("a", "a") == r.sunion("a", "a") == r.smembers("a") and r.sdiff("a", "b", "a") == set()
    assert r.sintercard(2, ["a", "b"]) == 2 and r.sintercard(2, ["a", "b"], limit=1) == 1
    assert r.sintercard(3, ["a", "b", "nokey"]) == 0
    r.set("dest", "a string")
    r.expire("dest", 100)
    assert r.sinterstore("dest", ["a", "b"]) == 2
    assert r.smembers("dest") == {b"3", b"4"} and r.ttl("dest") == -1 and r.type("dest") == b"set"
    assert r.sunionstore("dest", ["dest", "c"]) == 3 and r.smembers("dest") == {b"3", b"4", b"6"}
    assert r.sdiffstore("dest", ["a", "b"]) == 2 and r.smembers("dest") == {b"1", b"2"}
    assert r.sinterstore("dest", ["a", "nokey"]) == 0 and r.exists("dest") == 0
    r.set("str", "v")
    with pytest.raises(redis.ResponseError, match=WRONGTYPE):
        r.sinter("a", "str")
    with pytest.raises(redis.ResponseError, match=WRONGTYPE):
        r.sunionstore("dest", ["a", "str"])
    for args, message in [((0, "a"), "numkeys should be greater than 0"),
                          ((3, "a"), "Number of keys can't be greater than number of args"),
                          ((1, "a", "LIMIT", "-1"), "LIMIT can't be negative"), ((1, "a", "FOO"), "syntax error")]:
        with pytest.raises(redis.ResponseError, match=message):
            r.execute_command("SINTERCARD", *args)


@pytest.mark.promoted
def test_sinter_probes_a_large_set(r: Redimo, monkeypatch: pytest.MonkeyPatch) -> None:
    """A small set against a much larger one: the candidates are looked up, not the large set read."""
    monkeypatch.setattr(sets, "PROBE_RATIO", 4)
    r.sadd("small", "3", "nope")
    r.sadd("large", *[str(i) for i in range(20)])
    assert spent(r, lambda: r.sinter("small", "large")) == ({b"3"}, {"batch_get_item": 2, "query": 1})
    assert spent(r, lambda: r.sdiff("small", "large")) == ({b"nope"}, {"batch_get_item": 2, "query": 1})


def test_sscan(r: Redimo) -> None:
    members = {f"m{i}".encode() for i in range(25)}
    r.sadd("s", *members)
    assert r.sscan("nokey") == (0, [])
    cursor, found, rounds = 0, [], 0
    while True:
        cursor, page = r.sscan("s", cursor, count=10)
        found += page
        rounds += 1
        if cursor == 0:
            break
    assert sorted(found) == sorted(members) and rounds == 3
    assert set(r.sscan_iter("s", match="m1?")) == {m for m in members if len(m) == 3 and m.startswith(b"m1")}
    with pytest.raises(redis.ResponseError, match="invalid cursor"):
        r.sscan("s", "x")
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.execute_command("SSCAN", "s", "0", "NOVALUES")


@pytest.mark.promoted
# -- costs -------------------------------------------------------------------------------------
def test_request_counts(r: Redimo) -> None:
    assert spent(r, lambda: r.sadd("s", "a", "b"))[1] == {"batch_get_item": 1, "transact_write_items": 1}
    assert spent(r, lambda: r.sadd("s", "a"))[1] == {"batch_get_item": 1}
    assert spent(r, lambda: r.sismember("s", "a")) == (1, {"batch_get_item": 1})
    assert spent(r, lambda: r.scard("s")) == (2, {"get_item": 1})
    assert spent(r, lambda: r.smismember("s", [f"m{i}" for i in range(99)]))[1] == {"batch_get_item": 1}
    assert spent(r, lambda: r.smismember("s", [f"m{i}" for i in range(100)]))[1] == {"batch_get_item": 2}
    assert spent(r, lambda: r.srem("s", "a", "nope"))[1] == {"batch_get_item": 1, "transact_write_items": 1}
    assert spent(r, lambda: r.smembers("s"))[1] == {"get_item": 1, "query": 1}
    assert spent(r, lambda: r.spop("s"))[1] == {"get_item": 1, "query": 1, "transact_write_items": 1}


def test_binary_and_long_members(r: Redimo) -> None:
    long_a, long_b = b"\xff" * 1000 + b"a" * 500, b"\xff" * 1000 + b"b" * 500  # same first 1000 bytes
    members = {b"", b"\x00", b"\x80\xff", long_a, long_b, b"\xff" * 1000}
    assert r.sadd(b"\xffkey", *members) == 6
    assert r.smembers(b"\xffkey") == members and r.scard(b"\xffkey") == 6
    assert r.smismember(b"\xffkey", [long_a, long_b, b"\xff" * 1001]) == [1, 1, 0]
    assert set(r.sscan_iter(b"\xffkey", count=2)) == members
    assert set(r.srandmember(b"\xffkey", 10)) == members
    r.sadd("other", long_a, b"")
    assert r.sinter(b"\xffkey", "other") == {long_a, b""}
    assert r.smove(b"\xffkey", "other", long_b) is True and r.sismember("other", long_b) == 1
    assert r.sdiffstore("d", [b"\xffkey", "other"]) == 3 and r.smembers("d") == {b"\x00", b"\x80\xff", b"\xff" * 1000}
    assert r.srem(b"\xffkey", long_a) == 1 and r.smembers(b"\xffkey") == members - {long_a, long_b}


def test_empty_set_disappears(r: Redimo) -> None:
    r.sadd("s", "a", "b")
    assert r.srem("s", "a", "b") == 2
    assert r.exists("s") == 0 and r.type("s") == b"none" and r.engine.db.all_items(b"s") == []
    r.sadd("t", "x")
    assert r.smove("t", "u", "x") is True and r.exists("t") == 0 and r.engine.db.all_items(b"t") == []
    assert r.spop("u") == b"x" and r.exists("u") == 0


def test_expiry_hides_the_set(r: Redimo, make_redimo: Callable[..., Redimo]) -> None:
    r.sadd("s", "a", "b")
    r.sadd("t", "b")
    assert r.expire("s", 100) is True
    later = make_redimo(namespace=r.engine.db.namespace, clock=lambda: millis() + 101_000)
    assert later.smembers("s") == set() and later.scard("s") == 0 and later.sismember("s", "a") == 0
    assert later.srandmember("s") is None and later.spop("s") is None and later.sscan("s") == (0, [])
    assert later.sunion("s", "t") == {b"b"} and later.smove("s", "t", "a") is False
    assert later.sadd("s", "z") == 1 and later.smembers("s") == {b"z"} and later.ttl("s") == -1
    assert later.smove("t", "s", "b") is True and later.smembers("s") == {b"b", b"z"}


def test_wrongtype(r: Redimo) -> None:
    r.set("str", "v")
    calls = [lambda: r.sadd("str", "m"), lambda: r.srem("str", "m"), lambda: r.sismember("str", "m"),
             lambda: r.smismember("str", ["m"]), lambda: r.smembers("str"), lambda: r.scard("str"),
             lambda: r.spop("str"), lambda: r.spop("str", 2), lambda: r.srandmember("str"),
             lambda: r.srandmember("str", -2), lambda: r.sscan("str"), lambda: r.sdiff("str"),
             lambda: r.sintercard(1, ["str"])]
    for call in calls:
        with pytest.raises(redis.ResponseError, match=WRONGTYPE):
            call()
    r.sadd("s", "m")
    with pytest.raises(redis.ResponseError, match=WRONGTYPE):
        r.hget("s", "m")
    assert r.sunionstore("str", ["s"]) == 1 and r.smembers("str") == {b"m"}, "STORE replaces any type"


# -- concurrency ---------------------------------------------------------------------------------
def _add_and_move(url: str, namespace: str, worker: int, times: int) -> None:
    r = Redimo(table=TABLE, namespace=namespace, endpoint_url=url)
    for index in range(times):
        r.sadd("members", f"{worker}-{index}")
        r.sadd("source", f"{worker}-{index}")
    for index in range(times):
        r.smove("source", "target", f"{(worker + 1) % 4}-{index}")  # two workers move the same members


def test_sadd_and_smove_are_exact_under_concurrency(shared_endpoint: str) -> None:
    namespace, workers, times = f"sets-{uuid.uuid4().hex}", 4, 10
    run_processes(_add_and_move, [(shared_endpoint, namespace, worker, times) for worker in range(workers)])
    r = Redimo(table=TABLE, namespace=namespace, endpoint_url=shared_endpoint)
    everything = {f"{w}-{i}".encode() for w in range(workers) for i in range(times)}
    assert r.smembers("members") == everything and r.scard("members") == len(everything)
    assert r.smembers("source") | r.smembers("target") == everything
    assert not r.smembers("source") & r.smembers("target")
    assert r.scard("source") + r.scard("target") == len(everything)


# -- differential --------------------------------------------------------------------------------
KEYS = [b"a", b"b", b"\x00"]
MEMBERS = [b"", b"\x00", b"\xff", b"m", b"n", b"a\x00b", b"1", b"-5", b"L" * 1200, b"L" * 1200 + b"x"]
COUNTS = [b"0", b"1", b"2", b"5", b"20", b"-1", b"-3", b"-12", b"abc", b"1.5", b"-9223372036854775808",
          b"9223372036854775807", b"-0", b"+1"]

key = st.sampled_from(KEYS)
member = st.one_of(st.sampled_from(MEMBERS), st.binary(max_size=3))
members = st.lists(member, min_size=1, max_size=4)
keys = st.lists(key, min_size=1, max_size=3)
SET_COMMANDS = [
    st.tuples(st.just(b"SADD"), key, members), st.tuples(st.just(b"SADD"), key, members),
    st.tuples(st.just(b"SREM"), key, members), st.tuples(st.just(b"SISMEMBER"), key, member),
    st.tuples(st.just(b"SMISMEMBER"), key, members), st.tuples(st.just(b"SMEMBERS"), key),
    st.tuples(st.just(b"SCARD"), key),
    st.tuples(st.just(b"SPOP"), key, st.one_of(st.just([]), st.sampled_from(COUNTS).map(lambda c: [c]))),
    st.tuples(st.just(b"SRANDMEMBER"), key, st.one_of(st.just([]), st.sampled_from(COUNTS).map(lambda c: [c]))),
    st.tuples(st.just(b"SMOVE"), key, key, member),
    st.tuples(st.just(b"~SSCAN"), key, st.sampled_from([[], [b"MATCH", b"m*"], [b"COUNT", b"1"], [b"count", b"2"],
                                                        [b"MATCH", b"*", b"COUNT", b"3"], [b"COUNT", b"0"],
                                                        [b"FOO"], [b"MATCH"]])),
    st.tuples(st.just(b"SSCAN"), key, st.sampled_from([b"abc", b"-x"])),
    st.tuples(st.sampled_from([b"SINTER", b"SUNION", b"SDIFF"]), keys),
    st.tuples(st.sampled_from([b"SINTERSTORE", b"SUNIONSTORE", b"SDIFFSTORE"]), key, keys),
    st.tuples(st.just(b"SINTERCARD"), st.sampled_from([b"1", b"2", b"3", b"0", b"x", b"-1"]), keys,
              st.sampled_from([[], [b"LIMIT", b"1"], [b"limit", b"0"], [b"LIMIT", b"-1"], [b"LIMIT"], [b"FOO"]])),
    st.tuples(st.just(b"DEL"), key), st.tuples(st.just(b"EXISTS"), key), st.tuples(st.just(b"TYPE"), key),
    st.tuples(st.just(b"EXPIRE"), key, st.sampled_from([b"1000", b"50000"])),
    st.tuples(st.just(b"EXPIREAT"), key, st.just(b"1000000000")),
    st.tuples(st.just(b"SET"), key, member), st.tuples(st.just(b"HSET"), key, member, member),
]
UNORDERED = {b"SMEMBERS", b"SINTER", b"SUNION", b"SDIFF"}


def scan_all(client: redis.Redis, key: bytes, options: list) -> Any:
    cursor, found = b"0", []
    for _ in range(1000):
        try:
            cursor, page = client.execute_command(b"SSCAN", key, cursor, *options)
        except redis.ResponseError as error:
            return Error(type(error).__name__, str(error))
        found += page
        if cursor == b"0":
            return sorted(found)
    raise AssertionError("SSCAN does not end")


def check_srandmember(pair: Pair, args: tuple) -> None:
    expected, got = pair.both(*args)
    if isinstance(expected, Error) or isinstance(got, Error):
        assert got == expected, f"{args!r}: Redis {expected!r}, Redimo {got!r}"
        return
    contents = set(pair.redis.execute_command(b"SMEMBERS", args[1]))
    if len(args) == 2:
        assert (got is None) == (expected is None) and (got is None or got in contents), args
        return
    count = int(args[2])
    assert len(got) == len(expected) == (min(count, len(contents)) if count >= 0 else -count if contents else 0)
    assert set(got) <= contents and (count < 0 or len(set(got)) == len(got)), args


def check_spop(pair: Pair, args: tuple) -> None:
    """SPOP pops different members on each side: Redis is then made to remove those Redimo popped."""
    if len(args) == 1:
        pair.same(*args)
        return
    size = pair.redis.execute_command(b"SCARD", args[1]) if pair.redis.type(args[1]) == b"set" else 0
    try:
        got = pair.redimo.execute_command(*args)
    except redis.ResponseError as error:
        got = Error(type(error).__name__, str(error))
    if isinstance(got, Error):
        assert pair.both(*args)[0] == got, args
        return
    popped = got if isinstance(got, list) else [] if got is None else [got]
    assert len(popped) == len(set(popped)) == (min(int(args[2]), size) if len(args) == 3 else min(1, size)), args
    if popped:
        assert pair.redis.execute_command(b"SREM", args[1], *popped) == len(popped), "Redimo popped a non-member"


def check(pair: Pair, args: tuple) -> None:
    name = args[0]
    if name == b"~SSCAN":
        assert scan_all(pair.redimo, args[1], list(args[2:])) == scan_all(pair.redis, args[1], list(args[2:])), args
        return
    if name == b"SRANDMEMBER":
        return check_srandmember(pair, args)
    if name == b"SPOP":
        return check_spop(pair, args)
    expected, got = pair.both(*args)
    if name in UNORDERED and isinstance(expected, list) and isinstance(got, list):
        expected, got = sorted(expected), sorted(got)
    assert got == expected, f"{args!r}: Redis replied {expected!r}, Redimo {got!r}"


@ALL_ENCODINGS
def test_set_differential(pair: Pair) -> None:
    run_state_machine(pair, SET_COMMANDS, lambda command: check(pair, flat(command)),
                      lambda: [check(pair, (b"SMEMBERS", key_)) for key_ in KEYS])


def test_set_errors_differential(pair: Pair) -> None:
    pair.same(b"SET", b"str", b"v")
    pair.same(b"SADD", b"s", b"a", b"b", b"c")
    for args in [(b"SADD", b"s"), (b"SREM", b"s"), (b"SISMEMBER", b"s"), (b"SMISMEMBER", b"s"), (b"SMEMBERS",),
                 (b"SCARD",), (b"SPOP",), (b"SRANDMEMBER",), (b"SMOVE", b"s", b"t"), (b"SSCAN", b"s"), (b"SINTER",),
                 (b"SUNION",), (b"SDIFF",), (b"SINTERSTORE", b"d"), (b"SUNIONSTORE", b"d"), (b"SDIFFSTORE", b"d"),
                 (b"SINTERCARD", b"1"), (b"SPOP", b"s", b"1", b"2"), (b"SRANDMEMBER", b"s", b"1", b"2"),
                 (b"SPOP", b"str", b"x"), (b"SPOP", b"str", b"-1"), (b"SPOP", b"str", b"0"), (b"SPOP", b"str"),
                 (b"SRANDMEMBER", b"str", b"x"), (b"SRANDMEMBER", b"str", b"0"), (b"SRANDMEMBER", b"str"),
                 (b"SMOVE", b"str", b"s", b"a"), (b"SMOVE", b"s", b"str", b"a"), (b"SMOVE", b"s", b"str", b"z"),
                 (b"SMOVE", b"nokey", b"str", b"a"), (b"SINTER", b"nokey", b"str"), (b"SINTER", b"s", b"str"),
                 (b"SUNION", b"nokey", b"str"), (b"SDIFF", b"nokey", b"str"), (b"SDIFF", b"s", b"str"),
                 (b"SINTERSTORE", b"d", b"nokey", b"str"), (b"SINTERCARD", b"2", b"nokey", b"str"),
                 (b"SINTERCARD", b"1", b"s", b"LIMIT", b"x"), (b"SINTERCARD", b"2", b"s"),
                 (b"SINTERCARD", b"9223372036854775808", b"s"), (b"SSCAN", b"str", b"0"), (b"SSCAN", b"str", b"x"),
                 (b"SSCAN", b"nokey", b"0", b"FOO"), (b"SSCAN", b"s", b"0", b"COUNT", b"x"),
                 (b"SINTERSTORE", b"str", b"s"), (b"TYPE", b"str"), (b"SMEMBERS", b"str")]:
        check(pair, args)
