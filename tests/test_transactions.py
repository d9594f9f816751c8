"""Transactions (MULTI/EXEC/DISCARD/WATCH/UNWATCH) and pipelines, as redis-py drives them: replies,
atomicity (also against other OS processes), WATCH, request counts, and differential tests of the
error cases and of generated command sequences against a real redis-server."""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid
from typing import Any, Callable

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from differential import Error, Pair
from redimo import Redimo
from redimo.gateway import make_client
from redimo.staging import apply_update, condition_holds

from conftest import ALL_ENCODINGS, TABLE, run_processes

FORK = multiprocessing.get_context("fork")
EXAMPLES = int(os.environ.get("REDIMO_DIFFERENTIAL_EXAMPLES", "50"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def requests(r: Redimo, action: Callable[[], Any]) -> tuple[Any, dict]:
    before = r.gateway.usage.snapshot()
    result = action()
    return result, dict((r.gateway.usage - before).requests)


# -- replies ------------------------------------------------------------------------------------
def test_transaction_replies_match_redis_py_types(r: Redimo) -> None:
    pipe = r.pipeline()
    pipe.set("a", 1).incr("a").get("a").hset("h", mapping={"f": "v", "g": "w"}).hget("h", "f")
    pipe.hdel("h", "g").hlen("h").hgetall("h").expire("a", 100).ttl("a").delete("h").exists("h")
    assert pipe.execute() == [True, 2, b"2", 2, b"v", 1, 1, {b"f": b"v"}, True, 100, 1, 0]
    assert r.get("a") == b"2" and r.exists("h") == 0 and 0 < r.ttl("a") <= 100


def test_reads_in_a_transaction_see_its_earlier_writes(r: Redimo) -> None:
    r.hset("h", "old", "1")
    pipe = r.pipeline()
    pipe.hset("h", "new", "2").hgetall("h").hlen("h").delete("h").hgetall("h").set("h", "s").get("h")
    pipe.append("h", "t").getrange("h", 0, -1).getdel("h").exists("h")
    assert pipe.execute() == [1, {b"old": b"1", b"new": b"2"}, 2, 1, {}, True, b"s", 2, b"st", b"st", 0]
    assert r.exists("h") == 0


def test_errors_inside_exec_are_per_command(r: Redimo) -> None:
    r.set("s", "text")
    pipe = r.pipeline()
    pipe.set("a", 1).hset("s", "f", "v").incr("s").set("b", 2)
    with pytest.raises(redis.ResponseError, match="Command # 2 .*WRONGTYPE"):
        pipe.execute()
    assert r.mget("a", "b") == [b"1", b"2"], "the other commands were applied, as in Redis"
    pipe = r.pipeline()
    pipe.set("c", 3).incr("s").get("c")
    replies = pipe.execute(raise_on_error=False)
    assert replies[0] is True and replies[2] == b"3"
    assert isinstance(replies[1], redis.ResponseError) and "not an integer" in str(replies[1])


def test_queue_time_error_aborts_everything(r: Redimo) -> None:
    pipe = r.pipeline()
    pipe.set("a", 1).execute_command("NOSUCH", "x").set("b", 2)
    with pytest.raises(redis.ResponseError, match="unknown command 'NOSUCH'"):
        pipe.execute()
    pipe = r.pipeline()
    pipe.set("a", 1).execute_command("GET").set("b", 2)
    with pytest.raises(redis.ResponseError, match="wrong number of arguments for 'get'"):
        pipe.execute()
    assert r.exists("a", "b") == 0, "EXECABORT: nothing was applied"


def test_discard_and_connection_state(r: Redimo) -> None:
    pipe = r.pipeline()
    pipe.multi()
    pipe.set("a", 1)
    pipe.reset()  # drops the queued commands without sending them
    assert r.exists("a") == 0
    connection = r.connection_pool.get_connection()
    try:
        for command, reply in [(("MULTI",), b"OK"), (("SET", "a", "1"), b"QUEUED"), (("DISCARD",), b"OK")]:
            connection.send_command(*command)
            assert connection.read_response() == reply
        connection.send_command("MULTI")
        connection.read_response()
        connection.send_command("SET", "a", "2")
        connection.read_response()
        connection.disconnect()  # a closed connection loses its transaction, as with Redis
        connection.send_command("EXEC")
        with pytest.raises(redis.ResponseError, match="EXEC without MULTI"):
            connection.read_response()
    finally:
        r.connection_pool.release(connection)
    assert r.exists("a") == 0


def test_a_connection_returned_with_unread_replies_is_reset(r: Redimo) -> None:
    """As redis-py's pool resets a connection with unread data: the next command neither reads a
    stale reply nor runs in the stale connection's transaction."""
    connection = r.connection_pool.get_connection()
    connection.send_command("SET", "a", "1")
    connection.send_command("MULTI")
    r.connection_pool.release(connection)
    assert r.connection_pool.get_connection() is connection
    r.connection_pool.release(connection)
    assert r.set("a", "2") is True and r.get("a") == b"2"


@pytest.mark.promoted
# -- atomicity ----------------------------------------------------------------------------------
def test_exec_is_one_transaction(r: Redimo) -> None:
    pipe = r.pipeline()
    for index in range(5):
        pipe.set(f"k{index}", index)
    replies, used = requests(r, pipe.execute)
    assert replies == [True] * 5
    assert used == {"batch_get_item": 1, "transact_write_items": 1}, "1 read of the 5 heads, 1 transaction"
    pipe = r.pipeline()
    pipe.get("k1").incr("k2").hset("h", "f", "v").expire("k3", 50)
    replies, used = requests(r, pipe.execute)
    assert replies == [b"1", 3, 1, True]
    assert used == {"batch_get_item": 1, "get_item": 1, "transact_write_items": 1}, \
        "the heads; HSET's field; the transaction"
    pipe = r.pipeline()
    pipe.get("k1").exists("k2").ttl("k3")
    assert requests(r, pipe.execute)[1] == {"batch_get_item": 1}, "read-only: no transaction"


def test_a_conflict_reruns_the_exec_and_applies_nothing_twice(r: Redimo, make_redimo: Callable[..., Redimo]) -> None:
    other = make_redimo(namespace=r.engine.db.namespace)
    r.set("counter", 1)
    real = r.gateway.transact_write
    calls = []

    def interfere(actions: list) -> None:
        calls.append(len(actions))
        if len(calls) == 1:
            other.set("counter", 10)  # another client writes between the EXEC's read and its commit
        real(actions)

    r.gateway.transact_write = interfere  # type: ignore[method-assign]
    pipe = r.pipeline()
    pipe.incr("counter").set("side", "x")
    assert pipe.execute() == [11, True], "the EXEC ran again on the new value"
    assert calls == [2, 2]
    assert r.get("counter") == b"11" and r.get("side") == b"x"


def test_a_failed_condition_applies_nothing(r: Redimo, make_redimo: Callable[..., Redimo]) -> None:
    other = make_redimo(namespace=r.engine.db.namespace)
    r.set("w", "0")
    real = r.gateway.transact_write

    def interfere(actions: list) -> None:
        other.set("w", "changed")
        real(actions)

    with r.pipeline() as pipe:
        pipe.watch("w")
        pipe.multi()
        pipe.set("a", 1).hset("h", "f", "v").set("w", "mine")
        r.gateway.transact_write = interfere  # type: ignore[method-assign]
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert r.exists("a", "h") == 0 and r.get("w") == b"changed"


@pytest.mark.parametrize("transaction", [True, False])
def test_a_value_replaced_while_a_pipeline_reads_it(r: Redimo, make_redimo: Callable[..., Redimo],
                                                    transaction: bool) -> None:
    """The head was read ahead and the chunks it names are gone when the command reads them: an EXEC
    starts over (nothing was applied), a pipeline's command reads the head anew."""
    other = make_redimo(namespace=r.engine.db.namespace)
    old, new = b"o" * 400_000, b"n" * 400_000  # two chunk items each
    r.set("big", old)
    real = r.gateway.batch_get
    calls = []

    def interfere(keys: list, *args: Any) -> list:
        calls.append(len(keys))
        if len(calls) == 2:  # the EXEC read the head, and now reads its chunks: replaced meanwhile
            other.set("big", new)
        return real(keys, *args)

    r.gateway.batch_get = interfere  # type: ignore[method-assign]
    pipe = r.pipeline(transaction=transaction)
    pipe.get("big").get("after").set("after", 1)
    assert pipe.execute() == [new, None, True]
    assert r.get("after") == b"1"


def _writer(url: str, namespace: str, rounds: int) -> None:
    r = Redimo(table=TABLE, namespace=namespace, client=make_client(endpoint_url=url))
    for index in range(1, rounds + 1):
        pipe = r.pipeline()
        pipe.set("a", index).hset("h", "n", index).set("b", index)
        assert pipe.execute() == [True, int(index == 1), True]


def _incrementer(url: str, namespace: str, rounds: int) -> None:
    r = Redimo(table=TABLE, namespace=namespace, client=make_client(endpoint_url=url))
    for _ in range(rounds):
        pipe = r.pipeline()
        pipe.incr("c").incr("d")
        first, second = pipe.execute()
        assert first == second, "the two counters move together"


def test_readers_never_see_half_an_exec(shared_endpoint: str) -> None:
    namespace, rounds = f"tx-{uuid.uuid4().hex}", 25
    r = Redimo(table=TABLE, namespace=namespace, client=make_client(endpoint_url=shared_endpoint))
    writer = FORK.Process(target=_writer, args=(shared_endpoint, namespace, rounds))
    writer.start()
    seen = set()
    while writer.is_alive() or not seen:
        a = int(r.get("a") or 0)  # a first, then h and b: written together, so never older than a
        h = int(r.hget("h", "n") or 0)
        b = int(r.get("b") or 0)
        assert a <= h and a <= b, f"saw a={a}, h={h}, b={b}: half of an EXEC"
        seen.add(a)
    writer.join(timeout=120)
    assert writer.exitcode == 0
    assert r.mget("a", "b") == [str(rounds).encode()] * 2 and len(seen) > 1


def test_concurrent_execs_are_serialized(shared_endpoint: str) -> None:
    namespace, workers, rounds = f"tx-{uuid.uuid4().hex}", 3, 10
    run_processes(_incrementer, [(shared_endpoint, namespace, rounds)] * workers)
    r = Redimo(table=TABLE, namespace=namespace, client=make_client(endpoint_url=shared_endpoint))
    assert r.mget("c", "d") == [str(workers * rounds).encode()] * 2


def _watching_incrementer(url: str, namespace: str, rounds: int) -> None:
    r = Redimo(table=TABLE, namespace=namespace, client=make_client(endpoint_url=url))

    def add_one(pipe: redis.client.Pipeline) -> None:
        value = int(pipe.get("counter") or 0)  # read under WATCH, written in MULTI: no lost update
        pipe.multi()
        pipe.set("counter", value + 1)

    for _ in range(rounds):
        r.transaction(add_one, "counter")


def test_watch_makes_read_modify_write_safe_across_processes(shared_endpoint: str) -> None:
    namespace, workers, rounds = f"tx-{uuid.uuid4().hex}", 3, 8
    run_processes(_watching_incrementer, [(shared_endpoint, namespace, rounds)] * workers)
    r = Redimo(table=TABLE, namespace=namespace, client=make_client(endpoint_url=shared_endpoint))
    assert r.get("counter") == str(workers * rounds).encode()


def test_too_large_for_one_transaction_runs_in_order(r: Redimo) -> None:
    pipe = r.pipeline()
    for index in range(120):
        pipe.set(f"big{index}", index)
    pipe.get("big119")
    replies, used = requests(r, pipe.execute)
    assert replies == [True] * 120 + [b"119"]
    assert used.get("transact_write_items", 0) == 0 and used["put_item"] == 120, "applied one by one"


def test_members_and_chunks_beyond_the_limits_go_around_the_transaction(r: Redimo) -> None:
    r.hset("big", mapping={f"f{index}": index for index in range(150)})
    pipe = r.pipeline()
    pipe.hlen("big").delete("big").set("a", 1).exists("big")
    replies, used = requests(r, pipe.execute)
    assert replies == [150, 1, True, 0]
    assert used["transact_write_items"] == 1 and used["batch_write_item"] == 6, \
        "the head in the transaction, then the 150 members deleted 25 a request"
    assert r.exists("big") == 0 and r.get("a") == b"1"
    value = os.urandom(4_500_000)  # 13 chunks of 350 KB: more than 4 MB
    pipe = r.pipeline()
    pipe.set("huge", value).strlen("huge").set("b", 2)
    replies, used = requests(r, pipe.execute)
    assert replies == [True, len(value), True]
    assert used["transact_write_items"] == 1 and used["batch_write_item"] == 1, "the chunks first, then the heads"
    assert r.get("huge") == value


# -- WATCH --------------------------------------------------------------------------------------
CHANGES: dict[str, Callable[[Redimo], Any]] = {
    "SET same value": lambda r: r.set("w", "v"),
    "SET other": lambda r: r.set("w", "other"),
    "DEL": lambda r: r.delete("w"),
    "EXPIRE": lambda r: r.expire("w", 1000),
    "PERSIST": lambda r: (r.expire("w", 1000), r.persist("w")),
    "INCR": lambda r: (r.set("w", 1), r.incr("w")),
    "GETEX": lambda r: r.getex("w", ex=500),
    "APPEND": lambda r: r.append("w", "x"),
    "HSET": lambda r: (r.delete("w"), r.hset("w", "f", "v")),
}


@pytest.mark.parametrize("change", list(CHANGES))
@pytest.mark.parametrize("by", ["other client", "same connection"])
def test_watch_detects_every_change(r: Redimo, make_redimo: Callable[..., Redimo], change: str, by: str) -> None:
    other = make_redimo(namespace=r.engine.db.namespace)
    r.set("w", "v")
    if change == "INCR":
        r.set("w", 1)
    with r.pipeline() as pipe:
        pipe.watch("w")
        CHANGES[change](other if by == "other client" else pipe)
        pipe.multi()
        pipe.set("result", "applied")
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert r.exists("result") == 0


def test_watch_detects_hash_field_changes(r: Redimo, make_redimo: Callable[..., Redimo]) -> None:
    other = make_redimo(namespace=r.engine.db.namespace)
    r.hset("h", mapping={"f": "1", "g": "2"})
    for change in (lambda: other.hset("h", "f", "1"), lambda: other.hdel("h", "g"), lambda: other.delete("h")):
        with r.pipeline() as pipe:
            pipe.watch("h")
            change()
            pipe.multi()
            pipe.hset("h", "mine", "x")
            with pytest.raises(redis.WatchError):
                pipe.execute()
    assert r.exists("h") == 0


def test_watch_passes_when_nothing_changed(r: Redimo, make_redimo: Callable[..., Redimo]) -> None:
    other = make_redimo(namespace=r.engine.db.namespace)
    r.set("w", "v")
    r.hset("h", "f", "1")
    with r.pipeline() as pipe:
        pipe.watch("w", "h", "missing")
        assert pipe.get("w") == b"v" and pipe.hget("h", "f") == b"1"
        other.set("unrelated", 1)
        other.delete("missing")  # deleting what does not exist changes nothing
        pipe.multi()
        pipe.set("w", "new").hset("h", "f", "2")
        assert pipe.execute() == [True, 0]
    assert r.get("w") == b"new"
    with r.pipeline() as pipe:  # UNWATCH forgets
        pipe.watch("w")
        other.set("w", "changed")
        pipe.unwatch()
        pipe.multi()
        pipe.get("w")
        assert pipe.execute() == [b"changed"]
    with r.pipeline() as pipe:  # the connection's own write before it WATCHes the key (found by hypothesis)
        pipe.watch("a")
        pipe.set("b", "")
        pipe.watch("b")
        pipe.multi()
        pipe.get("b")
        assert pipe.execute() == [b""]


def test_watch_detects_expiry(r: Redimo) -> None:
    r.set("w", "v", px=300)
    with r.pipeline() as pipe:
        pipe.watch("w")
        time.sleep(0.4)
        pipe.multi()
        pipe.set("result", 1)
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert r.exists("result") == 0


def test_watch_cost_and_check_in_the_transaction(r: Redimo) -> None:
    r.set("w", 1)
    with r.pipeline() as pipe:
        _, used = requests(r, lambda: pipe.watch("w", "x", "y"))
        assert used == {"batch_get_item": 1}
        pipe.multi()
        pipe.set("z", 1)
        _, used = requests(r, pipe.execute)
        assert used == {"batch_get_item": 1, "transact_write_items": 1}, "one read; the checks ride in the transaction"


# -- pipelines without a transaction -----------------------------------------------------------
def test_pipeline_of_reads_is_one_batch_get(r: Redimo) -> None:
    r.mset({f"k{index}": index for index in range(50)})
    pipe = r.pipeline(transaction=False)
    for index in range(50):
        pipe.get(f"k{index}")
    replies, used = requests(r, pipe.execute)
    assert replies == [str(index).encode() for index in range(50)]
    assert used == {"batch_get_item": 1}, "50 GETs: 1 BatchGetItem instead of 50 GetItem"


def test_pipeline_reads_see_its_earlier_writes(r: Redimo) -> None:
    r.set("a", "old")
    pipe = r.pipeline(transaction=False)
    pipe.get("a").set("a", "new").get("a").incr("n").get("n").delete("a").exists("a").ttl("n").type("n")
    replies, used = requests(r, pipe.execute)
    assert replies == [b"old", True, b"new", 1, b"1", 1, 0, -1, b"string"]
    assert used == {"batch_get_item": 1, "put_item": 1, "update_item": 2}, \
        "reads after a write see the item as written"


def test_pipeline_errors_stay_with_their_command(r: Redimo) -> None:
    r.hset("h", "f", "v")
    pipe = r.pipeline(transaction=False)
    pipe.get("h").get("x").execute_command("NOSUCH")
    replies = pipe.execute(raise_on_error=False)
    assert "WRONGTYPE" in str(replies[0]) and replies[1] is None and "unknown command" in str(replies[2])


# -- the expression evaluator --------------------------------------------------------------------
def test_evaluator_on_the_expressions_redimo_writes() -> None:
    item = {"pk": {"B": b"k"}, "sk": {"B": b"\x00"}, "t": {"S": "string"}, "n": {"N": "5"}, "x": {"N": "100"},
            "e:a": {"N": "1"}}
    values = {":now": {"N": "50"}, ":string": {"S": "string"}, ":low": {"N": "0"}, ":high": {"N": "9"},
              ":zero": {"N": "0"}, ":delta": {"N": "-7"}, ":one": {"N": "1"}}
    assert condition_holds(item, "(attribute_not_exists(t) OR (t = :string AND attribute_exists(n) AND n BETWEEN "
                                 ":low AND :high)) AND (attribute_not_exists(x) OR x > :now)", values, None)
    assert not condition_holds(item, "NOT (x > :now)", values, None)
    assert condition_holds(item, "q <> :now AND attribute_exists(#e)", values, {"#e": "e:a"})
    assert condition_holds(None, "attribute_not_exists(t) OR x <= :now", values, None)
    new = apply_update(item, {"pk": item["pk"], "sk": item["sk"]},
                       "SET n = if_not_exists(n, :zero) + :delta, m = if_not_exists(m, :zero) + :one "
                       "REMOVE x, #e ADD c :one", values, {"#e": "e:a"})
    assert new["n"] == {"N": "-2"} and new["m"] == {"N": "1"} and new["c"] == {"N": "1"}
    assert "x" not in new and "e:a" not in new


# -- differential: error cases and generated sequences against a real redis-server --------------
def normal(reply: Any) -> Any:
    if isinstance(reply, redis.ResponseError):
        return Error(type(reply).__name__, str(reply))
    if isinstance(reply, list):
        return [normal(element) for element in reply]
    return reply


def same(pair: Pair, *args: Any) -> Any:
    expected, got = (normal(reply) for reply in pair.both(*args))
    assert got == expected, f"{args!r}: Redis replied {expected!r}, Redimo {got!r}"
    return got


def test_multi_exec_discard_errors_match_redis(pair: Pair) -> None:
    same(pair, "EXEC")
    same(pair, "DISCARD")
    same(pair, "UNWATCH")
    same(pair, "WATCH")
    same(pair, "MULTI", "x")
    for script in (
        [("MULTI",), ("MULTI",), ("SET", "a", "1"), ("EXEC",)],  # nested MULTI: an error, the queue stays
        [("MULTI",), ("WATCH", "a"), ("GET", "a"), ("EXEC",)],
        [("MULTI",), ("SET", "a", "2"), ("NOSUCH", "a"), ("SET", "b", "1"), ("EXEC",)],  # EXECABORT
        [("MULTI",), ("SET", "a", "3"), ("GET",), ("EXEC",)],
        [("MULTI",), ("SET", "a", "4"), ("EXEC", "x"), ("EXEC",)],
        [("MULTI",), ("SET", "a", "5"), ("DISCARD",), ("EXEC",), ("GET", "a")],
        [("MULTI",), ("SET", "s", "x"), ("HSET", "s", "f", "v"), ("INCR", "s"), ("GET", "s"), ("EXEC",)],
        [("MULTI",), ("EXEC",)],
        [("MULTI",), ("BLPOP", "nolist", "0"), ("RPUSH", "l", "x"), ("BRPOP", "l", "0"), ("BLPOP", "l", "-1"),
         ("BLMOVE", "l", "m", "LEFT", "LEFT", "0"), ("XREAD", "BLOCK", "0", "STREAMS", "s", "$"),
         ("XADD", "s", "1-1", "f", "v"), ("XREAD", "block", "0", "STREAMS", "s", "0"), ("EXEC",)],  # never block
        [("SET", "w", "1"), ("WATCH", "w"), ("SET", "w", "1"), ("MULTI",), ("GET", "w"), ("EXEC",)],
        [("WATCH", "n"), ("SET", "n", "1"), ("DEL", "n"), ("MULTI",), ("PING",), ("EXEC",)],
        [("WATCH", "n"), ("DEL", "n"), ("SET", "n", "1", "NX"), ("SET", "n", "2", "NX"), ("MULTI",), ("EXEC",)],
        [("WATCH", "w"), ("UNWATCH",), ("SET", "w", "2"), ("MULTI",), ("GET", "w"), ("EXEC",)],
        [("WATCH", "w"), ("EXPIRE", "w", "100"), ("MULTI",), ("GET", "w"), ("EXEC",)],
        [("WATCH", "q"), ("EXPIRE", "q", "100"), ("PERSIST", "q"), ("MULTI",), ("EXEC",)],
        [("WATCH", "w"), ("MULTI",), ("SET", "w", "3"), ("EXEC",), ("MULTI",), ("GET", "w"), ("EXEC",)],
    ):
        for args in script:
            same(pair, *args)
        pair.reset()


@st.composite
def sessions(draw: st.DrawFn) -> list[tuple]:
    key = st.sampled_from([b"a", b"b", b"\x00", b"\xff"])
    value = st.sampled_from([b"", b"1", b"-3", b"x", b"\x00\xff", b"9223372036854775807"])
    field = st.sampled_from([b"f", b"", b"\x00"])
    command = st.one_of(
        st.tuples(st.just(b"SET"), key, value), st.tuples(st.just(b"GET"), key), st.tuples(st.just(b"INCR"), key),
        st.tuples(st.just(b"DEL"), key), st.tuples(st.just(b"EXPIRE"), key, st.sampled_from([b"1000", b"2000"])),
        st.tuples(st.just(b"PERSIST"), key), st.tuples(st.just(b"APPEND"), key, value),
        st.tuples(st.just(b"HSET"), key, field, value), st.tuples(st.just(b"HGET"), key, field),
        st.tuples(st.just(b"HDEL"), key, field), st.tuples(st.just(b"HLEN"), key), st.tuples(st.just(b"HGETALL"), key),
        st.tuples(st.just(b"EXISTS"), key, key), st.tuples(st.just(b"MGET"), key, key),
        st.tuples(st.just(b"MULTI")), st.tuples(st.just(b"EXEC")), st.tuples(st.just(b"DISCARD")),
        st.tuples(st.just(b"WATCH"), key), st.tuples(st.just(b"UNWATCH")),
        st.sampled_from([(b"NOSUCH",), (b"GET",), (b"SET", b"a"), (b"HSET", b"a", b"f")]),
    )
    return draw(st.lists(command, min_size=1, max_size=25))


def canonical(name: bytes, reply: Any) -> Any:
    """HGETALL's reply as sorted pairs (the real server's client may read it as a RESP3 map)."""
    if name.upper() != b"HGETALL" or not isinstance(reply, (dict, list)):
        return reply
    return sorted(reply.items() if isinstance(reply, dict) else zip(reply[::2], reply[1::2]))


@ALL_ENCODINGS
@SETTINGS
@given(script=sessions())
def test_generated_transactions_match_redis(pair: Pair, script: list[tuple]) -> None:
    pair.both(b"DISCARD")  # a failed example may have left a transaction open
    pair.both(b"UNWATCH")
    pair.reset()
    queued: list[bytes] = []
    for args in [*script, (b"EXEC",), (b"UNWATCH",)]:  # at the end, no transaction is left open
        expected, got = (normal(reply) for reply in pair.both(*args))
        if args[0] == b"EXEC" and isinstance(expected, list) and isinstance(got, list):
            expected = [canonical(name, reply) for name, reply in zip(queued, expected)]
            got = [canonical(name, reply) for name, reply in zip(queued, got)]
        expected, got = canonical(args[0], expected), canonical(args[0], got)
        assert got == expected, f"{args!r} in {script!r}: Redis replied {expected!r}, Redimo {got!r}"
        if args[0] == b"MULTI" and got == b"OK":
            queued = []
        elif got == b"QUEUED":
            queued.append(args[0])


# -- the staging overlay against DynamoDB ------------------------------------------------------
@SETTINGS
@given(existing=st.dictionaries(st.binary(min_size=1, max_size=3), st.integers(-3, 3), max_size=8),
       staged=st.dictionaries(st.binary(min_size=1, max_size=3), st.one_of(st.none(), st.integers(-3, 3)), max_size=6),
       forward=st.booleans(), limit=st.one_of(st.none(), st.integers(1, 6)),
       bounds=st.tuples(st.binary(max_size=2), st.binary(max_size=2)))
def test_staged_queries_equal_the_committed_table(make_redimo: Callable[..., Redimo], existing: dict, staged: dict,
                                                   forward: bool, limit: int | None, bounds: tuple) -> None:
    """Whatever a staged EXEC writes, its queries (by sort key, by score, filtered, limited, counted)
    return what DynamoDB returns once those writes are applied."""
    from redimo.staging import Staging
    from redimo.table import SCORE_INDEX_NAME

    r = make_redimo()
    pk = {"B": r.engine.db.pk(b"q")}

    def member(sk: bytes, score: int) -> dict:
        return {"pk": pk, "sk": {"B": b"\x02" + sk}, "sc": {"N": str(score)}, "g": {"B": b"g" if score % 2 else b"h"}}

    r.gateway.batch_write(puts=[member(sk, score) for sk, score in existing.items()])
    staging = Staging(r.gateway)
    for sk, score in staged.items():
        if score is None:
            staging.delete({"pk": pk, "sk": {"B": b"\x02" + sk}})
        else:
            staging.put(member(sk, score))
    low, high = sorted(bounds)
    queries = [
        ("pk = :pk", {":pk": pk}, {}),
        ("pk = :pk AND sk BETWEEN :low AND :high", {":pk": pk, ":low": {"B": b"\x02" + low}, ":high": {"B": b"\x02" + high}},
         {"filter_expression": "g = :g"}),
        ("pk = :pk AND sc BETWEEN :low AND :high", {":pk": pk, ":low": {"N": "-1"}, ":high": {"N": "2"}},
         {"index": SCORE_INDEX_NAME}),
    ]

    def run(gateway: Any) -> list:
        found = []
        for condition, values, options in queries:
            values = {**values, ":g": {"B": b"g"}} if "filter_expression" in options else values
            found.append(list(gateway.query(condition, values, limit=limit, forward=forward, **options)))
            found.append(gateway.count(condition, values, **options))
        return found

    seen = run(staging)
    changes = list(staging.changes())
    r.gateway.batch_write(puts=[item for _, item in changes if item is not None],
                          deletes=[{"pk": {"B": key[0]}, "sk": {"B": key[1]}} for key, item in changes if item is None])
    expected = run(r.gateway)

    def comparable(found: list) -> list:  # by score, items of equal score come in no defined order
        by_key = [[item["sk"]["B"] for item in page] if isinstance(page, list) else page for page in found[:4]]
        scores = [int(item["sc"]["N"]) for item in found[4]]
        return by_key + [scores, found[5]] + ([sorted(item["sk"]["B"] for item in found[4])] if limit is None else [])

    assert comparable(seen) == comparable(expected)
    r.gateway.batch_write(deletes=[{"pk": pk, "sk": {"B": b"\x02" + sk}} for sk in set(existing) | set(staged)])


@ALL_ENCODINGS
@SETTINGS
@given(script=sessions())
def test_generated_commands_in_one_exec_match_redis(pair: Pair, script: list[tuple]) -> None:
    """The same commands queued in one MULTI on both: EXEC's replies (errors in place), then the data."""
    session_words = {b"MULTI", b"EXEC", b"DISCARD", b"WATCH", b"UNWATCH"}
    commands = [args for args in script if args[0] not in session_words]
    pair.both(b"DISCARD")
    pair.both(b"UNWATCH")
    pair.reset()
    for args in [(b"HSET", b"a", b"f", b"1"), (b"SET", b"b", b"2"), (b"EXPIRE", b"b", b"5000")]:
        same(pair, *args)
    same(pair, b"MULTI")
    for args in commands:
        same(pair, *args)
    expected, got = (normal(reply) for reply in pair.both(b"EXEC"))
    if isinstance(expected, list) and isinstance(got, list):
        expected = [canonical(args[0], reply) for args, reply in zip(commands, expected)]
        got = [canonical(args[0], reply) for args, reply in zip(commands, got)]
    assert got == expected, f"EXEC of {commands!r}: Redis replied {expected!r}, Redimo {got!r}"
    for key in (b"a", b"b", b"\x00", b"\xff"):
        kind = same(pair, b"TYPE", key)
        reads = {b"string": (b"GET", key), b"hash": (b"HGETALL", key)}
        if kind in reads:
            expected, got = (canonical(reads[kind][0], reply) for reply in pair.both(*reads[kind]))
            assert got == expected


# -- every type inside EXEC: the same replies as outside ------------------------------------------
def all_types_commands() -> st.SearchStrategy:
    key = st.sampled_from([b"a", b"b", b"\x00"])
    member = st.sampled_from([b"m", b"n", b"", b"\x00", b"\xff", b"1"])
    number = st.sampled_from([b"0", b"1", b"-1", b"2", b"10", b"x"])
    score = st.sampled_from([b"1", b"2", b"-1.5", b"0", b"inf", b"nan"])
    stream_id = st.sampled_from([b"1-1", b"2-0", b"5-3", b"0-0", b"3"])
    words = [
        (b"LPUSH", key, member, member), (b"RPUSH", key, member), (b"LPOP", key), (b"RPOP", key, number),
        (b"LRANGE", key, number, number), (b"LLEN", key), (b"LINDEX", key, number), (b"LSET", key, number, member),
        (b"LREM", key, number, member), (b"LTRIM", key, number, number), (b"LINSERT", key, b"BEFORE", member, member),
        (b"LPOS", key, member), (b"RPOPLPUSH", key, key), (b"LMOVE", key, key, b"LEFT", b"RIGHT"),
        (b"SADD", key, member, member), (b"SREM", key, member), (b"SMEMBERS", key), (b"SISMEMBER", key, member),
        (b"SCARD", key), (b"SMOVE", key, key, member), (b"SINTERSTORE", key, key, key), (b"SUNIONSTORE", key, key, key),
        (b"SDIFF", key, key), (b"ZADD", key, score, member), (b"ZADD", key, b"NX", score, member, score, member),
        (b"ZINCRBY", key, score, member), (b"ZREM", key, member), (b"ZRANGE", key, b"0", b"-1", b"WITHSCORES"),
        (b"ZRANGEBYSCORE", key, b"-inf", b"+inf"), (b"ZREVRANGE", key, b"0", number), (b"ZCOUNT", key, score, b"+inf"),
        (b"ZRANK", key, member), (b"ZSCORE", key, member), (b"ZCARD", key), (b"ZPOPMIN", key),
        (b"ZREMRANGEBYSCORE", key, b"-inf", score), (b"ZUNIONSTORE", key, b"2", key, key),
        (b"XADD", key, stream_id, member, member), (b"XLEN", key), (b"XRANGE", key, b"-", b"+"), (b"XDEL", key, stream_id),
        (b"XTRIM", key, b"MAXLEN", number), (b"HSET", key, member, number), (b"HINCRBY", key, member, number),
        (b"HSETNX", key, member, number), (b"HMGET", key, member, member), (b"HGETALL", key), (b"HDEL", key, member),
        (b"PFADD", key, member, member), (b"PFCOUNT", key), (b"GEOADD", key, b"13.36", b"38.11", member),
        (b"GEOPOS", key, member), (b"SET", key, number), (b"INCR", key), (b"APPEND", key, member), (b"GET", key),
        (b"DEL", key), (b"EXISTS", key, key), (b"TYPE", key), (b"RENAME", key, key), (b"COPY", key, key, b"REPLACE"),
        (b"EXPIRE", key, b"1000"), (b"PERSIST", key),
    ]
    return st.one_of([st.tuples(*[part if isinstance(part, st.SearchStrategy) else st.just(part) for part in parts])
                      for parts in words])


UNORDERED = {b"SMEMBERS", b"SDIFF", b"HGETALL"}


def settled(name: bytes, reply: Any) -> Any:
    """A reply with order-free parts sorted, errors as Error."""
    reply = normal(reply)
    if name in UNORDERED and isinstance(reply, list):
        return sorted(zip(reply[::2], reply[1::2])) if name == b"HGETALL" else sorted(reply)
    return reply


@SETTINGS
@given(commands=st.lists(all_types_commands(), min_size=1, max_size=15))
def test_every_type_replies_the_same_inside_exec(make_redimo: Callable[..., Redimo], commands: list[tuple]) -> None:
    """The staging's overlay and expression evaluation against DynamoDB itself: the same commands run
    one by one in one namespace and in one EXEC in another give the same replies and data."""
    from differential import raw, reply

    direct, staged = raw(make_redimo()), raw(make_redimo())
    expected = [settled(args[0], reply(direct, args)) for args in commands]
    pipe = staged.pipeline()
    for args in commands:
        pipe.execute_command(*args)
    got = [settled(args[0], result) for args, result in zip(commands, pipe.execute(raise_on_error=False))]
    assert got == expected, f"{commands!r}"
    reads = {b"string": (b"GET",), b"list": (b"LRANGE", 0, -1), b"set": (b"SMEMBERS",), b"hash": (b"HGETALL",),
             b"zset": (b"ZRANGE", 0, -1, b"WITHSCORES"), b"stream": (b"XRANGE", b"-", b"+")}
    for key in (b"a", b"b", b"\x00"):
        kind = reply(direct, (b"TYPE", key))
        assert reply(staged, (b"TYPE", key)) == kind
        if kind in reads:
            name, *rest = reads[kind]
            assert settled(name, reply(staged, (name, key, *rest))) == settled(name, reply(direct, (name, key, *rest)))
