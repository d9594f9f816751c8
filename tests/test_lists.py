"""Lists: behaviour and request counts on both stores, a differential test against a real Redis, blocking
commands served by another client, and producers and consumers in real OS processes."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

import pytest
import redis
from hypothesis import strategies as st

from redimo import Redimo
from redimo.collection import VALUE_LIMIT
from redimo.commands.lists import POLL_MAX, element_sk
from redimo.gateway import make_client

from conftest import ALL_ENCODINGS, TABLE
from differential import Pair, run_state_machine

SPAWN = multiprocessing.get_context("spawn")


def requests(r: Redimo, call: Callable[[], object]) -> tuple[object, dict[str, int]]:
    """A call's result and the DynamoDB requests it made, by operation."""
    before = r.gateway.usage.snapshot()
    result = call()
    return result, dict((r.gateway.usage - before).requests)


def items_of(r: Redimo, key: bytes) -> list[dict]:
    return r.engine.db.all_items(key)


# -- behaviour ----------------------------------------------------------------------------------
def test_push_pop_and_read(r: Redimo) -> None:
    assert r.rpush("l", "b", "c") == 2
    assert r.lpush("l", "a", "z") == 4  # z then a pushed in turn to the left: z is first
    assert r.lrange("l", 0, -1) == [b"z", b"a", b"b", b"c"]
    assert r.llen("l") == 4
    assert [r.lindex("l", i) for i in (0, 3, -1, -4, 4, -5)] == [b"z", b"c", b"c", b"z", None, None]
    assert r.lpop("l") == b"z" and r.rpop("l") == b"c"
    assert r.lpop("l", 5) == [b"a", b"b"]
    assert r.exists("l") == 0 and items_of(r, b"l") == []
    assert r.lpop("l") is None and r.lpop("l", 2) is None and r.llen("l") == 0 and r.lrange("l", 0, -1) == []
    assert r.lpushx("l", "x") == 0 and r.rpushx("l", "x") == 0 and r.exists("l") == 0
    r.rpush("l", "m")
    assert r.lpushx("l", "a") == 2 and r.rpushx("l", "z", "zz") == 4
    assert r.lrange("l", 1, 2) == [b"m", b"z"] and r.lrange("l", -100, 100) == [b"a", b"m", b"z", b"zz"]


def test_multi_key_pops(r: Redimo) -> None:
    r.rpush("l1", "a", "b", "c")
    r.rpush("l2", "x")
    assert r.lmpop(2, "nokey", "l1", direction="LEFT") == [b"l1", [b"a"]]
    assert r.lmpop(2, "l2", "l1", direction="RIGHT", count=5) == [b"l2", [b"x"]] and r.exists("l2") == 0
    assert r.lmpop(1, "nokey", direction="LEFT") is None
    assert r.blmpop(0.05, 2, "nokey", "l1", direction="RIGHT", count=5) == [b"l1", [b"c", b"b"]]
    assert r.exists("l1") == 0 and r.blmpop(0.05, 1, "l1", direction="LEFT") is None
    r.set("s", "v")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.lmpop(2, "nokey", "s", direction="LEFT")


def test_set_insert_remove_trim_pos(r: Redimo) -> None:
    r.rpush("l", *"abcabcab")
    assert r.lset("l", 1, "B") and r.lset("l", -1, "E")
    with pytest.raises(redis.ResponseError, match="index out of range"):
        r.lset("l", 8, "x")
    with pytest.raises(redis.ResponseError, match="no such key"):
        r.lset("missing", 0, "x")
    assert r.lrange("l", 0, -1) == [b"a", b"B", b"c", b"a", b"b", b"c", b"a", b"E"]
    assert r.linsert("l", "BEFORE", "c", "X") == 9 and r.linsert("l", "AFTER", "E", "Y") == 10
    assert r.linsert("l", "AFTER", "nope", "Y") == -1 and r.linsert("missing", "AFTER", "a", "Y") == 0
    assert r.lrange("l", 0, -1) == [b"a", b"B", b"X", b"c", b"a", b"b", b"c", b"a", b"E", b"Y"]
    assert r.lpos("l", "a") == 0 and r.lpos("l", "a", rank=-1) == 7 and r.lpos("l", "a", rank=2, count=0) == [4, 7]
    assert r.lpos("l", "a", count=0, maxlen=5) == [0, 4] and r.lpos("l", "zz") is None
    assert r.lrem("l", -2, "a") == 2 and r.lrem("l", 0, "c") == 2
    assert r.lrange("l", 0, -1) == [b"a", b"B", b"X", b"b", b"E", b"Y"]
    assert r.ltrim("l", 1, -2) and r.lrange("l", 0, -1) == [b"B", b"X", b"b", b"E"]
    assert r.ltrim("l", 5, 10) and r.exists("l") == 0 and items_of(r, b"l") == []


def test_move(r: Redimo) -> None:
    r.rpush("src", "a", "b", "c")
    assert r.lmove("src", "dst", "LEFT", "RIGHT") == b"a"
    assert r.lmove("src", "dst", "RIGHT", "LEFT") == b"c"
    assert r.rpoplpush("src", "dst") == b"b"
    assert r.exists("src") == 0 and r.lrange("dst", 0, -1) == [b"b", b"c", b"a"]
    assert r.lmove("dst", "dst", "LEFT", "RIGHT") == b"b" and r.lrange("dst", 0, -1) == [b"c", b"a", b"b"]
    assert r.lmove("dst", "dst", "RIGHT", "LEFT") == b"b" and r.lrange("dst", 0, -1) == [b"b", b"c", b"a"]
    assert r.lmove("dst", "dst", "LEFT", "LEFT") == b"b" and r.lrange("dst", 0, -1) == [b"b", b"c", b"a"]
    assert r.lmove("missing", "dst", "LEFT", "LEFT") is None and r.llen("dst") == 3


def test_binary_values(r: Redimo) -> None:
    values = [b"", b"\x00", b"\xff\xfe", b"a\x00b", b"1", b"-0", b"x" * 300_000]
    r.rpush(b"\x00key\xff", *values)
    assert r.lrange(b"\x00key\xff", 0, -1) == values
    assert r.lpos(b"\x00key\xff", b"\x00") == 1 and r.lindex(b"\x00key\xff", -1) == values[-1]
    with pytest.raises(redis.ResponseError, match="350000 bytes"):
        r.rpush(b"\x00key\xff", b"x" * (VALUE_LIMIT + 1))
    assert r.llen(b"\x00key\xff") == len(values)


def test_wrong_type(r: Redimo) -> None:
    r.set("s", "1")
    r.rpush("l", "a")
    for call in (lambda: r.lpush("s", "x"), lambda: r.rpushx("s", "x"), lambda: r.lpop("s"), lambda: r.rpop("s", 2),
                 lambda: r.llen("s"), lambda: r.lindex("s", 0), lambda: r.lrange("s", 0, -1), lambda: r.lset("s", 0, "x"),
                 lambda: r.lrem("s", 0, "x"), lambda: r.linsert("s", "BEFORE", "a", "b"), lambda: r.ltrim("s", 0, 1),
                 lambda: r.lpos("s", "a"), lambda: r.lmove("s", "l", "LEFT", "LEFT"),
                 lambda: r.lmove("l", "s", "LEFT", "LEFT"), lambda: r.blpop(["s"], 1), lambda: r.blmove("l", "s", 1)):
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            call()
    assert r.lrange("l", 0, -1) == [b"a"] and r.get("s") == b"1"
    r.set("l", "string now")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.rpush("l", "x")  # the cached list head is refused, and the refusal shows the string


@pytest.mark.promoted
def test_expiry(make_redimo: Callable[..., Redimo]) -> None:
    now = [1_800_000_000_000]
    r = make_redimo(clock=lambda: now[0])
    r.rpush("l", "a", "b", "c")
    assert r.expire("l", 10)
    now[0] += 9_000
    assert r.lrange("l", 0, -1) == [b"a", b"b", b"c"] and r.ttl("l") == 1
    now[0] += 1_000
    assert r.llen("l") == 0 and r.lindex("l", 0) is None and r.lpop("l") is None and r.lrange("l", 0, -1) == []
    assert r.lpushx("l", "x") == 0
    assert r.rpush("l", "new") == 1, "a push on the expired list starts a new one"
    assert r.lrange("l", 0, -1) == [b"new"] and r.ttl("l") == -1
    assert [item["sk"]["B"] for item in items_of(r, b"l")] == [b"\x00", element_sk(0)], "the old elements are gone"


@pytest.mark.promoted
def test_request_counts(make_redimo: Callable[..., Redimo]) -> None:
    r = make_redimo()
    assert requests(r, lambda: r.rpush("l", "a", "b")) == (2, {"get_item": 1, "transact_write_items": 1})
    assert requests(r, lambda: r.rpush("l", "c")) == (3, {"transact_write_items": 1})
    assert requests(r, lambda: r.lpush("l", "z")) == (4, {"transact_write_items": 1})
    assert requests(r, lambda: r.lpop("l")) == (b"z", {"batch_get_item": 1, "transact_write_items": 1})
    assert requests(r, lambda: r.rpop("l", 2)) == ([b"c", b"b"], {"batch_get_item": 1, "transact_write_items": 1})
    assert requests(r, lambda: r.llen("l")) == (1, {"get_item": 1})
    assert requests(r, lambda: r.lindex("l", -1)) == (b"a", {"batch_get_item": 1})
    assert requests(r, lambda: r.lset("l", 0, "A")) == (True, {"transact_write_items": 1})
    r.rpush("l", *"bcdefgh")
    assert requests(r, lambda: r.lrange("l", 2, 4)) == ([b"c", b"d", b"e"], {"get_item": 1, "query": 1})
    other = make_redimo(namespace=r.engine.db.namespace)  # no cached heads
    assert requests(other, lambda: other.lindex("l", 1)) == (b"b", {"get_item": 1, "batch_get_item": 1})
    third = make_redimo(namespace=r.engine.db.namespace)
    assert requests(third, lambda: third.lpop("l")) == (b"A", {"get_item": 1, "batch_get_item": 1,
                                                               "transact_write_items": 1})
    # r's cached head is now stale: the refusal returns the current head, and the push goes again.
    assert requests(r, lambda: r.rpush("l", "i")) == (8, {"transact_write_items": 2})
    assert requests(r, lambda: r.lpop("l")) == (b"b", {"batch_get_item": 1, "transact_write_items": 1})
    assert requests(r, lambda: r.lmpop(1, "l", direction="LEFT", count=2)) == (
        [b"l", [b"c", b"d"]], {"batch_get_item": 1, "transact_write_items": 1}), "as LPOP with a count"
    assert requests(r, lambda: r.lmpop(2, "nokey", "l", direction="RIGHT")) == (
        [b"l", [b"i"]], {"batch_get_item": 2, "transact_write_items": 1}), "+ 1 BatchGetItem of the heads"
    r.delete("l")
    assert requests(r, lambda: r.lpop("l")) == (None, {"batch_get_item": 1})  # the head and the cached end


def test_big_operations_leave_no_garbage(r: Redimo) -> None:
    values = [str(i).encode() for i in range(260)]
    assert r.rpush("l", *values) == 260  # three transactions of at most 99 elements
    assert r.lrange("l", 0, -1) == values
    assert r.ltrim("l", 120, 239) and r.lrange("l", 0, -1) == values[120:240]
    assert len(items_of(r, b"l")) == 121, "the 140 trimmed elements are deleted"
    assert r.lpop("l", 105) == values[120:225] and r.lrange("l", 0, -1) == values[225:240]
    assert len(items_of(r, b"l")) == 16
    r.lpush("l", *values[:150])
    expected = values[:150][::-1] + values[225:240]
    assert r.linsert("l", "AFTER", b"75", b"new") == 166  # 75 elements move on either side: a rewrite
    expected.insert(expected.index(b"75") + 1, b"new")
    assert r.lrange("l", 0, -1) == expected and r.lindex("l", 75) == expected[75]
    assert len(items_of(r, b"l")) == 167, "the old generation's elements are deleted"
    assert r.lrem("l", 0, b"new") == 1 and r.lrange("l", 0, -1) == [v for v in expected if v != b"new"]
    assert r.lpop("l", 1000) == [v for v in expected if v != b"new"]
    assert r.exists("l") == 0 and items_of(r, b"l") == []


def test_pushes_onto_a_missing_key_from_two_clients(make_redimo: Callable[..., Redimo]) -> None:
    first = make_redimo()
    second = make_redimo(namespace=first.engine.db.namespace)
    assert first.rpush("l", "x") == 1 and first.lpop("l") == b"x"  # first caches nothing after the delete
    second.rpush("l", "a")
    assert first.rpush("l", "b") == 2 and second.lpush("l", "c") == 3
    assert first.lrange("l", 0, -1) == [b"c", b"a", b"b"]


# -- differential against a real Redis ---------------------------------------------------------------
KEYS = [b"a", b"b", b"\x00"]
key = st.sampled_from(KEYS)
value = st.one_of(st.sampled_from([b"x", b"y", b"", b"\x00", b"\xff", b"1", b"a\x00b"]), st.binary(max_size=3))
values = st.lists(value, min_size=1, max_size=4)
index = st.one_of(st.integers(-6, 6).map(lambda n: str(n).encode()),
                  st.sampled_from([b"abc", b"", b"1.5", b"-0", b"9223372036854775807", b"-9223372036854775808"]))
count = st.sampled_from([b"0", b"1", b"2", b"5", b"-1", b"abc", b"9223372036854775807"])
side = st.sampled_from([b"LEFT", b"RIGHT", b"left", b"Right", b"UP"])
timeout = st.sampled_from([b"0.01", b"-1", b"abc", b"1e30", b"inf", b"nan"])
lpos_option = st.one_of(
    st.tuples(st.sampled_from([b"RANK", b"rank"]), st.sampled_from([b"1", b"2", b"-1", b"-2", b"0", b"x",
                                                                    b"-9223372036854775808"])),
    st.tuples(st.sampled_from([b"COUNT", b"MAXLEN"]), st.sampled_from([b"0", b"1", b"2", b"-1", b"x"])),
    st.just((b"FOO",)), st.just((b"COUNT",)))


def command(*parts: object) -> st.SearchStrategy:
    """A command of fixed words and strategies; a drawn list or tuple is spliced in."""
    def flatten(drawn: tuple) -> tuple:
        out: list = []
        for part in drawn:
            out.extend(part if isinstance(part, (list, tuple)) else [part])
        return tuple(out)
    return st.tuples(*[p if isinstance(p, st.SearchStrategy) else st.just(p) for p in parts]).map(flatten)


LIST_COMMANDS = [
    command(st.sampled_from([b"LPUSH", b"RPUSH", b"LPUSHX", b"RPUSHX"]), key, values),
    command(st.sampled_from([b"LPOP", b"RPOP"]), key), command(st.sampled_from([b"LPOP", b"RPOP"]), key, count),
    command(b"LLEN", key), command(b"LINDEX", key, index), command(b"LRANGE", key, index, index),
    command(b"LSET", key, index, value), command(b"LREM", key, index, value),
    command(b"LINSERT", key, st.sampled_from([b"BEFORE", b"after", b"MIDDLE"]), value, value),
    command(b"LTRIM", key, index, index),
    command(b"LPOS", key, value, st.lists(lpos_option, max_size=3).map(lambda opts: [w for o in opts for w in o])),
    command(b"LMOVE", key, key, side, side), command(b"RPOPLPUSH", key, key),
    command(st.sampled_from([b"BLPOP", b"BRPOP"]), st.lists(key, min_size=1, max_size=3), timeout),
    command(b"BLMOVE", key, key, side, side, timeout), command(b"BRPOPLPUSH", key, key, timeout),
    st.builds(lambda keys, where, opts: (b"LMPOP", str(len(keys)).encode(), *keys, where, *opts),
              st.lists(key, min_size=1, max_size=3), side, st.sampled_from([[], [b"COUNT"], [b"count"]]).flatmap(
                  lambda word: st.just(word) if not word else count.map(lambda n: [word[0], n]))),
    st.builds(lambda timeout_, keys, where, opts: (b"BLMPOP", timeout_, str(len(keys)).encode(), *keys, where, *opts),
              timeout, st.lists(key, min_size=1, max_size=3), side,
              st.sampled_from([[], [b"COUNT", b"2"], [b"COUNT", b"0"], [b"FOO"]])),
]
OTHER_COMMANDS = [
    command(b"DEL", key), command(b"EXPIRE", key, b"100000"), command(b"SET", key, value), command(b"TYPE", key),
    command(b"EXISTS", key), command(b"PERSIST", key),
]


@ALL_ENCODINGS
def test_differential_list_commands(pair: Pair) -> None:
    run_state_machine(pair, [*LIST_COMMANDS, *LIST_COMMANDS[:1] * 3, *OTHER_COMMANDS],
                      lambda args: pair.same(*args), lambda: [pair.same(b"LRANGE", name, b"0", b"-1") for name in KEYS])


def test_differential_arity_and_edges(pair: Pair) -> None:
    for args in [(b"LPUSH", b"k"), (b"LPOP",), (b"LPOP", b"k", b"1", b"2"), (b"LRANGE", b"k", b"0"), (b"LINSERT", b"k"),
                 (b"LMOVE", b"a", b"b", b"LEFT"), (b"BLPOP", b"k"), (b"BLMOVE", b"a", b"b", b"LEFT", b"LEFT"),
                 (b"LPOS", b"k"), (b"LSET", b"k", b"0"), (b"RPOPLPUSH", b"a"), (b"BRPOPLPUSH", b"a", b"b"),
                 (b"LMPOP", b"1", b"k"), (b"LMPOP", b"0", b"k", b"LEFT"), (b"LMPOP", b"x", b"k", b"LEFT"),
                 (b"LMPOP", b"-1", b"k", b"LEFT"), (b"LMPOP", b"2", b"k", b"LEFT"), (b"LMPOP", b"1", b"k", b"UP"),
                 (b"LMPOP", b"1", b"k", b"LEFT", b"COUNT"), (b"LMPOP", b"1", b"k", b"LEFT", b"COUNT", b"0"),
                 (b"LMPOP", b"1", b"k", b"LEFT", b"COUNT", b"1", b"COUNT", b"1"), (b"LMPOP", b"1", b"k", b"LEFT", b"X"),
                 (b"BLMPOP", b"0.01", b"1", b"k"), (b"BLMPOP", b"x", b"1", b"k", b"LEFT"),
                 (b"BLMPOP", b"-1", b"1", b"k", b"LEFT"), (b"BLMPOP", b"0.01", b"0", b"k", b"LEFT"),
                 (b"BLMPOP", b"0.01", b"1", b"k", b"LEFT", b"COUNT", b"-5")]:
        pair.same(*args)
    pair.same(b"RPUSH", b"k", b"a", b"b", b"a", b"c", b"a")
    for args in [(b"LPOS", b"k", b"a", b"RANK", b"-9223372036854775808", b"COUNT", b"1"),
                 (b"LPOS", b"k", b"a", b"RANK", b"9223372036854775807"), (b"LPOS", b"k", b"a", b"COUNT", b"0", b"MAXLEN", b"3"),
                 (b"LRANGE", b"k", b"9223372036854775807", b"-9223372036854775808"), (b"BLPOP", b"k", b"1e15"),
                 (b"BLPOP", b"k", b"1e16"), (b"BLPOP", b"k", b"0x10"), (b"LMPOP", b"2", b"no", b"k", b"RIGHT", b"COUNT", b"2"),
                 (b"BLMPOP", b"0", b"2", b"no", b"k", b"left", b"count", b"9223372036854775807"),
                 (b"LTRIM", b"k", b"-1", b"0"), (b"EXISTS", b"k")]:
        pair.same(*args)


# -- blocking commands, served by another client --------------------------------------------------
def client(url: str, namespace: str) -> Redimo:
    return Redimo(table=TABLE, namespace=namespace, client=make_client(endpoint_url=url))


def push_later(url: str, namespace: str, delay: float, *args: bytes) -> threading.Thread:
    def run() -> None:
        time.sleep(delay)
        client(url, namespace).execute_command(*args)
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_blocking_pops_wait_for_a_push(shared_endpoint: str) -> None:
    namespace = f"blocking-{uuid.uuid4().hex}"
    r = client(shared_endpoint, namespace)
    pusher = push_later(shared_endpoint, namespace, 0.3, b"RPUSH", b"second", b"v1", b"v2")
    assert r.blpop(["first", "second"], timeout=0) == (b"second", b"v1"), "timeout 0 waits as long as it takes"
    pusher.join()
    assert r.brpop(["first", "second"], timeout=5) == (b"second", b"v2")
    assert r.blpop(["first", "second"], timeout=0.2) is None
    pusher = push_later(shared_endpoint, namespace, 0.3, b"LPUSH", b"source", b"m")
    assert r.blmove("source", "target", 0, "RIGHT", "LEFT") == b"m"
    pusher.join()
    pusher = push_later(shared_endpoint, namespace, 0.3, b"LPUSH", b"source", b"n")
    assert r.brpoplpush("source", "target", 0) == b"n"
    pusher.join()
    assert r.lrange("target", 0, -1) == [b"n", b"m"] and r.exists("source") == 0
    assert r.brpoplpush("source", "target", 0.1) is None and r.blmove("source", "target", 0.1) is None


def test_blmpop_waits_for_a_push(shared_endpoint: str) -> None:
    namespace = f"blmpop-{uuid.uuid4().hex}"
    r = client(shared_endpoint, namespace)
    pusher = push_later(shared_endpoint, namespace, 0.3, b"RPUSH", b"second", b"v1", b"v2", b"v3")
    assert r.blmpop(0, 2, "first", "second", direction="RIGHT", count=2) == [b"second", [b"v3", b"v2"]]
    pusher.join()
    assert r.blmpop(0.2, 1, "first", direction="LEFT") is None


def test_blocking_poll_cost(r: Redimo) -> None:
    """While nothing arrives, each poll is one request, spaced 10 ms doubling up to POLL_MAX."""
    _, used = requests(r, lambda: r.blpop(["nothing"], timeout=0.5))
    assert 1 <= used["get_item"] <= 0.5 / 0.01 and set(used) == {"get_item"}
    assert POLL_MAX == 0.2
    _, used = requests(r, lambda: r.blpop(["nothing", "else"], timeout=0.1))
    assert set(used) == {"batch_get_item"}


def test_simultaneous_first_pushes_both_succeed(shared_endpoint: str) -> None:
    namespace, rounds = f"first-{uuid.uuid4().hex}", 8
    barrier = threading.Barrier(2)
    replies: list[int] = []

    def push(name: str) -> None:
        r = client(shared_endpoint, namespace)
        for round_ in range(rounds):
            barrier.wait()
            replies.append(r.rpush(f"key{round_}", name))

    threads = [threading.Thread(target=push, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    r = client(shared_endpoint, namespace)
    assert sorted(replies) == [1] * rounds + [2] * rounds, "each round: one push made the list, the other joined it"
    assert all(sorted(r.lrange(f"key{round_}", 0, -1)) == [b"a", b"b"] for round_ in range(rounds))


# -- producers and consumers in real processes ----------------------------------------------------
def produce(url: str, namespace: str, producer: int, count: int) -> None:
    r = client(url, namespace)
    for start in range(0, count, 3):
        r.rpush("queue", *[f"{producer}:{n}" for n in range(start, min(start + 3, count))])


def consume(url: str, namespace: str, path: str, blocking: bool) -> None:
    r = client(url, namespace)
    consumed = []
    while not r.exists("done") or r.llen("queue"):
        if blocking:
            popped = r.blpop(["queue"], timeout=0.2)
            consumed += [popped[1]] if popped else []
        else:
            consumed += r.lpop("queue", 2) or []
    Path(path).write_bytes(b"\n".join(consumed))


def test_producers_and_consumers_lose_and_duplicate_nothing(shared_endpoint: str, tmp_path: Path) -> None:
    namespace, producers, per_producer = f"queue-{uuid.uuid4().hex}", 3, 20
    consumers = [SPAWN.Process(target=consume, args=(shared_endpoint, namespace, str(tmp_path / f"c{i}"), i == 0))
                 for i in range(3)]
    writers = [SPAWN.Process(target=produce, args=(shared_endpoint, namespace, i, per_producer)) for i in range(producers)]
    for process in consumers + writers:
        process.start()
    for process in writers:
        process.join(timeout=240)
        assert process.exitcode == 0
    client(shared_endpoint, namespace).set("done", "1")
    for process in consumers:
        process.join(timeout=240)
        assert process.exitcode == 0
    consumed = [line for i in range(3) for line in (tmp_path / f"c{i}").read_bytes().split(b"\n") if line]
    expected = [f"{p}:{n}".encode() for p in range(producers) for n in range(per_producer)]
    assert sorted(consumed) == sorted(expected), "every value consumed exactly once"
    assert client(shared_endpoint, namespace).exists("queue") == 0
