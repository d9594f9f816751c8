"""The compact encoding of small hashes, sets, sorted sets and streams (redimo.compact, docs/data-model.md): costs, promotion
at both limits, both encodings side by side, expiry, COPY/RENAME/DEL, MULTI/EXEC and WATCH, and
concurrent writers across a promotion. The differential state machines of test_hashes.py and
test_sets.py run in every encoding (conftest.ENCODINGS); test_exactly_once.py covers lost replies."""

from __future__ import annotations

import uuid
from typing import Callable

import pytest
import redis

from redimo import Redimo
from redimo.commands.streams import TAILS
from redimo.compact import Limits, item_size
from redimo.storage import HEAD

from conftest import TABLE, run_processes


def spent(r: Redimo, action: Callable[[], object]) -> tuple[object, dict[str, int]]:
    before = r.gateway.usage.snapshot()
    result = action()
    return result, dict((r.gateway.usage - before).requests)


def items_of(r: Redimo, key: bytes) -> list[bytes]:
    return sorted(item["sk"]["B"] for item in r.engine.db.all_items(key))


def test_a_compact_collection_is_one_request_a_read_and_one_or_two_a_write(r: Redimo) -> None:
    assert spent(r, lambda: r.hset("h", mapping={"a": 1, "b": "x"})) == (2, {"update_item": 1, "put_item": 1}), \
        "a new key: the single-request write is refused (no head), and its reply serves as the read"
    assert spent(r, lambda: r.hset("h", "c", 2)) == (1, {"update_item": 1}), "a new field: 1 UpdateItem"
    assert spent(r, lambda: r.hsetnx("h", "d", 2)) == (True, {"update_item": 1})
    assert spent(r, lambda: r.hsetnx("h", "d", 3)) == (False, {"get_item": 1}), \
        "the client saw the field there: nothing to write, which a read confirms"
    assert spent(r, lambda: r.hset("h", "a", 2)) == (0, {"put_item": 1}), \
        "an overwrite: planned from the head this client last saw, 1 PutItem asserting it"
    for read in (lambda: r.hget("h", "a"), lambda: r.hgetall("h"), lambda: r.hmget("h", "a", "z"),
                 lambda: r.hlen("h"), lambda: r.hkeys("h"), lambda: r.hscan("h"), lambda: r.hrandfield("h", 2)):
        assert spent(r, read)[1] == {"get_item": 1}
    assert spent(r, lambda: r.hdel("h", "d")) == (1, {"update_item": 1})
    assert spent(r, lambda: r.hdel("h", "zz")) == (0, {"get_item": 1}), "nothing to change, which a read confirms"
    assert spent(r, lambda: r.hincrby("h", "a", 5)) == (7, {"put_item": 1})
    other = Redimo(table=r.engine.db.gateway.table, namespace=r.engine.db.namespace, client=r.gateway.client)
    assert spent(other, lambda: other.hincrby("h", "a", 1)) == (8, {"get_item": 1, "put_item": 1}), "no hint: a read"
    assert spent(r, lambda: r.hincrby("h", "a", -1)) == (7, {"put_item": 2}), \
        "a stale hint: the refused PutItem returns the head, planned from again"
    assert spent(r, lambda: r.hincrby("h", "a", 1)) == (8, {"get_item": 1, "put_item": 1}), \
        "after a refusal, the key's next writes read first"
    assert r.hgetall("h") == {b"a": b"8", b"b": b"x", b"c": b"2"} and r.hlen("h") == 3
    assert spent(r, lambda: r.sadd("s", "m", "n")) == (2, {"update_item": 1, "put_item": 1})
    assert spent(r, lambda: r.sadd("s", "o")) == (1, {"update_item": 1})
    assert spent(r, lambda: r.sadd("s", "o", "p")) == (1, {"put_item": 1})
    for read in (lambda: r.sismember("s", "m"), lambda: r.smembers("s"), lambda: r.scard("s"),
                 lambda: r.smismember("s", ["m", "q"])):
        assert spent(r, read)[1] == {"get_item": 1}
    assert spent(r, lambda: r.srem("s", "m", "n", "o")) == (3, {"update_item": 1})
    assert spent(r, lambda: r.srem("s", "p")) == (1, {"transact_write_items": 1}), \
        "emptying it deletes the head in a transaction, whose token makes a retry safe"
    assert spent(r, lambda: r.delete("h")) == (1, {"update_item": 1}), "no member items to look for"
    assert items_of(r, b"h") == [HEAD] and items_of(r, b"s") == [], "DEL leaves the head expired, until TTL"
    assert r.exists("h") == 0 and r.hset("h", "a", 1) == 1 and r.hgetall("h") == {b"a": b"1"}


def test_a_compact_sorted_set_is_one_request_a_read(r: Redimo) -> None:
    assert spent(r, lambda: r.zadd("z", {"a": 1, "b": 2})) == (2, {"update_item": 1, "put_item": 1})
    assert spent(r, lambda: r.zadd("z", {"c": 3, "d": 3})) == (2, {"update_item": 1}), "new members: 1 UpdateItem"
    assert spent(r, lambda: r.zadd("z", {"e": 0}, nx=True)) == (1, {"update_item": 1})
    assert spent(r, lambda: r.zincrby("z", 5, "a")) == (6.0, {"put_item": 1}), \
        "a score change: planned from the head this client last saw"
    assert spent(r, lambda: r.zadd("z", {"a": 7}, xx=True, ch=True)) == (1, {"put_item": 1})
    for read in (lambda: r.zrange("z", 0, -1, withscores=True), lambda: r.zrangebyscore("z", 1, 3, start=1, num=1),
                 lambda: r.zrevrangebylex("z", "+", "-"), lambda: r.zcount("z", "(0", "inf"),
                 lambda: r.zlexcount("z", "[b", "+"), lambda: r.zrank("z", "c"), lambda: r.zrevrank("z", "c"),
                 lambda: r.zscore("z", "a"), lambda: r.zmscore("z", ["a", "q"]), lambda: r.zcard("z"),
                 lambda: r.zrandmember("z", 2), lambda: r.zscan("z")):
        assert spent(r, read)[1] == {"get_item": 1}
    assert r.zrange("z", 0, -1, withscores=True) == [(b"e", 0.0), (b"b", 2.0), (b"c", 3.0), (b"d", 3.0), (b"a", 7.0)]
    assert (r.zrank("z", "d"), r.zrevrank("z", "d"), r.zcount("z", "(0", "inf")) == (3, 1, 4)
    assert spent(r, lambda: r.zrem("z", "e")) == (1, {"update_item": 1})
    assert spent(r, lambda: r.zpopmin("z")) == ([(b"b", 2.0)], {"put_item": 1})
    assert spent(r, lambda: r.zremrangebyscore("z", 3, 3)) == (2, {"put_item": 1})
    assert r.object("encoding", "z") == b"listpack" and items_of(r, b"z") == [HEAD]
    assert spent(r, lambda: r.zpopmax("z")) == ([(b"a", 7.0)], {"transact_write_items": 1})
    assert r.exists("z") == 0 and items_of(r, b"z") == []


def test_a_compact_list_is_one_request_a_push_and_two_a_pop(make_redimo: Callable[..., Redimo]) -> None:
    r = make_redimo()
    assert spent(r, lambda: r.rpush("l", "a", "b")) == (2, {"get_item": 1, "put_item": 1})
    assert spent(r, lambda: r.rpush("l", "c")) == (3, {"put_item": 1}), "the cached head is current"
    assert spent(r, lambda: r.lpush("l", "z")) == (4, {"put_item": 1})
    assert spent(r, lambda: r.lpop("l")) == (b"z", {"put_item": 1}), "planned from the cached head, which it asserts"
    assert spent(r, lambda: r.rpop("l", 2)) == ([b"c", b"b"], {"put_item": 1})
    assert spent(r, lambda: r.lset("l", 0, "A")) == (True, {"put_item": 1})
    r.rpush("l", *"bcdefgh")
    for read in (lambda: r.lrange("l", 0, -1), lambda: r.llen("l"), lambda: r.lpos("l", "e")):
        assert spent(r, read)[1] == {"get_item": 1}
    other = make_redimo(namespace=r.engine.db.namespace)  # no cached heads
    assert spent(other, lambda: other.lpop("l")) == (b"A", {"get_item": 1, "put_item": 1})
    assert spent(r, lambda: r.rpush("l", "i")) == (8, {"put_item": 2}), \
        "a stale cached head: the refusal returns the current one, and the push goes again"
    assert spent(r, lambda: r.lmove("l", "m", "LEFT", "RIGHT")) == (b"b", {"batch_get_item": 1, "transact_write_items": 1})
    assert spent(r, lambda: r.linsert("l", "BEFORE", "e", "E")) == (8, {"get_item": 1, "put_item": 1})
    assert spent(r, lambda: r.ltrim("l", 1, -2)) == (True, {"put_item": 1})
    assert r.lrange("l", 0, -1) == [b"d", b"E", b"e", b"f", b"g", b"h"] and r.lrange("m", 0, -1) == [b"b"]
    assert r.object("encoding", "l") == b"listpack" and items_of(r, b"l") == [HEAD]
    assert spent(r, lambda: r.lpop("m")) == (b"b", {"transact_write_items": 1}), "the last element: the head deleted"
    assert r.exists("m") == 0


def test_a_list_promoted_keeps_its_order(make_redimo: Callable[..., Redimo]) -> None:
    r = make_redimo(compact_max_entries=4)
    r.rpush("l", "b", "c")
    r.lpush("l", "a")
    assert r.object("encoding", "l") == b"listpack" and items_of(r, b"l") == [HEAD]
    assert r.rpush("l", "d", "e") == 5 and r.object("encoding", "l") == b"quicklist"
    assert r.lrange("l", 0, -1) == [b"a", b"b", b"c", b"d", b"e"] and len(items_of(r, b"l")) == 6
    assert r.lpop("l") == b"a" and r.rpop("l") == b"e" and r.lindex("l", 1) == b"c"
    assert r.object("encoding", "l") == b"quicklist", "it never goes back"


def test_a_sorted_set_promoted_answers_alike(make_redimo: Callable[..., Redimo]) -> None:
    r = make_redimo(compact_max_entries=4)
    r.zadd("z", {"a": 1, "b": 1, "c": 2, "d": 0})
    r.execute_command("GEOADD", "g", "13.361389", "38.115556", "Palermo")
    before = (r.zrange("z", 0, -1, withscores=True), r.zrank("z", "b"), r.zrangebylex("z", "[b", "+"))
    assert r.object("encoding", "z") == b"listpack" and items_of(r, b"z") == [HEAD]
    assert r.zadd("z", {"e": 9}) == 1 and r.object("encoding", "z") == b"skiplist"
    assert (r.zrange("z", 0, -2, withscores=True), r.zrank("z", "b"), r.zrangebylex("z", "[b", "[d")) == before
    assert len(items_of(r, b"z")) == 6, "the head and one item per member"
    assert r.execute_command("GEORADIUS", "g", "13.36", "38.11", "5", "km") == [b"Palermo"]


def test_the_single_request_write_keeps_every_rule(make_redimo: Callable[..., Redimo]) -> None:
    now = [1_000_000_000_000]
    r = make_redimo(clock=lambda: now[0], compact_max_entries=3)
    r.set("string", "v")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.sadd("string", "m")
    r.sadd("s", "a")
    r.pexpire("s", 100)
    assert r.sadd("s", "b") == 1 and 0 < r.pttl("s") <= 100
    now[0] += 101
    assert r.sadd("s", "c") == 1 and r.smembers("s") == {b"c"} and r.ttl("s") == -1, "an expired set is new"
    assert r.sadd("s", "d", "e") == 2 and r.object("encoding", "s") == b"listpack"
    assert r.sadd("s", "f") == 1 and r.object("encoding", "s") == b"hashtable", "the entry limit holds"
    assert r.smembers("s") == {b"c", b"d", b"e", b"f"}
    assert spent(r, lambda: r.sadd("s", "g"))[1] == {"batch_get_item": 1, "transact_write_items": 1}, \
        "a key known promoted does not try the compact write"
    narrow = make_redimo(compact_max_bytes=1000)
    narrow.hset("wide", "f", "v")
    assert spent(narrow, lambda: narrow.hset("wide", "a", "x" * 600))[1] == {"update_item": 1}
    narrow.hdel("wide", "a")
    assert spent(narrow, lambda: narrow.hset("wide", "b", "x" * 600))[1] == {"update_item": 1, "put_item": 1}, \
        "HDEL left the value's bytes counted: the plan-and-commit path recounts them, and it fits"
    assert narrow.object("encoding", "wide") == b"listpack"
    assert narrow.hset("wide", "c", "x" * 600) == 1 and narrow.object("encoding", "wide") == b"hashtable", \
        "the byte limit holds on the single-request path"
    assert narrow.hgetall("wide") == {b"f": b"v", b"b": b"x" * 600, b"c": b"x" * 600}


@pytest.mark.moto_bug("consumed capacity comes back as fixed numbers")
def test_a_small_compact_write_is_one_write_unit_and_a_read_one_read_unit(r: Redimo) -> None:
    r.hset("h", mapping={f"field{i}": "v" * 20 for i in range(10)})
    before = r.gateway.usage.snapshot()
    r.hset("h", "field10", "w" * 20)
    used = r.gateway.usage - before
    assert (used.requests["update_item"], used.read_units, used.write_units) == (1, 0.0, 1.0)
    before = r.gateway.usage.snapshot()
    r.hset("h", "field3", "w" * 20)  # an overwrite: 1 PutItem planned from the head this client last saw
    used = r.gateway.usage - before
    assert (used.total_requests, used.read_units, used.write_units) == (1, 0.0, 1.0)
    before = r.gateway.usage.snapshot()
    assert len(r.hgetall("h")) == 11
    assert (r.gateway.usage - before).read_units == 1.0


def test_promotion_at_the_entry_limit_keeps_every_member(make_redimo: Callable[..., Redimo]) -> None:
    r = make_redimo(compact_max_entries=4)
    r.hset("h", mapping={f"f{i}": i for i in range(4)})
    assert r.object("encoding", "h") == b"listpack" and items_of(r, b"h") == [HEAD]
    assert r.hset("h", "f4", 4) == 1
    assert r.object("encoding", "h") == b"hashtable"
    assert r.hgetall("h") == {f"f{i}".encode(): str(i).encode() for i in range(5)} and r.hlen("h") == 5
    assert len(items_of(r, b"h")) == 6, "the head and one item per field"
    assert r.hdel("h", "f0", "f1", "f2", "f3") == 4
    assert r.object("encoding", "h") == b"hashtable", "it never goes back, as in Redis"
    assert spent(r, lambda: r.hget("h", "f4")) == (b"4", {"batch_get_item": 1}), "the client knows it is promoted"


def test_promotion_at_the_byte_limit(make_redimo: Callable[..., Redimo]) -> None:
    r = make_redimo(compact_max_bytes=1024)
    r.sadd("s", "a" * 300, "b" * 300)
    assert r.object("encoding", "s") == b"listpack"
    r.sadd("s", "c" * 300)
    assert r.object("encoding", "s") == b"listpack"
    r.sadd("s", "d" * 300)
    assert r.object("encoding", "s") == b"hashtable" and r.scard("s") == 4
    r.sadd("big", "x" * 2000)
    assert r.object("encoding", "big") == b"hashtable", "created promoted when it does not fit"


def test_object_encoding_names(r: Redimo) -> None:
    r.sadd("ints", 1, -5, 9223372036854775807)
    r.sadd("mixed", 1, "a")
    r.hset("h", "f", "v")
    r.set("n", 12)
    r.set("short", "x" * 44)
    r.set("long", "x" * 45)
    r.rpush("l", "a")
    r.zadd("z", {"a": 1})
    r.xadd("x", {"a": 1})
    assert [r.object("encoding", key) for key in ("ints", "mixed", "h", "n", "short", "long", "l", "z", "x")] == \
        [b"intset", b"listpack", b"listpack", b"int", b"embstr", b"raw", b"listpack", b"listpack", b"stream"]
    assert r.object("encoding", "missing") is None
    with pytest.raises(redis.ResponseError, match="unknown subcommand"):
        r.execute_command("OBJECT", "FOO", "h")


def test_a_table_written_in_the_member_layout_keeps_working(make_redimo: Callable[..., Redimo]) -> None:
    namespace = f"test-{uuid.uuid4().hex}"
    old = make_redimo(namespace=namespace, compact=False)
    old.hset("h", mapping={"a": 1, "b": 2})
    old.sadd("s", "x")
    r = make_redimo(namespace=namespace)
    assert r.object("encoding", "h") == b"hashtable" and r.hgetall("h") == {b"a": b"1", b"b": b"2"}
    assert r.hset("h", "c", 3) == 1 and r.hincrby("h", "a", 1) == 2 and r.hdel("h", "b") == 1
    assert r.sadd("s", "y") == 1 and r.smembers("s") == {b"x", b"y"}
    assert r.object("encoding", "s") == b"hashtable" and len(items_of(r, b"s")) == 3
    assert old.hgetall("h") == {b"a": b"2", b"c": b"3"}, "and a client without the encoding reads it too"
    r.hset("new", "f", "v")
    assert old.hget("new", "f") == b"v" and old.hset("new", "g", "w") == 1
    assert old.object("encoding", "new") == b"hashtable", "a client without the encoding promotes on write"
    assert r.hgetall("new") == {b"f": b"v", b"g": b"w"}


def test_a_large_promotion_writes_the_members_first_then_the_head(make_redimo: Callable[..., Redimo]) -> None:
    namespace = f"test-{uuid.uuid4().hex}"
    roomy = make_redimo(namespace=namespace, compact_max_entries=500, compact_max_bytes=100_000)
    fields = {f"f{i}": i for i in range(150)}
    roomy.hset("h", mapping=fields)
    assert roomy.object("encoding", "h") == b"listpack"
    r = make_redimo(namespace=namespace)
    assert spent(r, lambda: r.hset("h", "new", 1))[1] == \
        {"update_item": 1, "batch_write_item": 6, "put_item": 1, "batch_get_item": 1, "transact_write_items": 1}
    assert r.hlen("h") == 151 and len(r.hgetall("h")) == 151 and len(items_of(r, b"h")) == 152


def test_expiry_copy_rename_and_delete(make_redimo: Callable[..., Redimo]) -> None:
    now = [1_000_000_000_000]
    r = make_redimo(clock=lambda: now[0])
    r.hset("h", mapping={"a": 1, "b": 2})
    r.pexpire("h", 100)
    r.hset("h", "c", 3)
    assert 0 < r.pttl("h") <= 100, "a write keeps the expiry"
    assert r.copy("h", "copy") and r.hgetall("copy") == {b"a": b"1", b"b": b"2", b"c": b"3"}
    assert r.rename("copy", "moved") and r.exists("copy") == 0 and items_of(r, b"moved") == [HEAD]
    now[0] += 101
    assert r.hgetall("h") == {} and r.hlen("h") == 0 and r.exists("h", "moved") == 0
    assert r.hset("h", "z", 1) == 1 and r.hgetall("h") == {b"z": b"1"} and r.ttl("h") == -1
    r.sadd("s", "a")
    assert r.sinterstore("dest", ["s"]) == 1 and r.object("encoding", "dest") == b"listpack"
    assert items_of(r, b"dest") == [HEAD] and r.smembers("dest") == {b"a"}


def test_multi_exec_and_watch_on_a_compact_hash(r: Redimo) -> None:
    r.hset("h", "a", 1)
    with r.pipeline() as pipe:
        pipe.hset("h", "b", 2).hincrby("h", "a", 10).sadd("s", "x").hgetall("h")
        assert pipe.execute() == [1, 11, 1, {b"a": b"11", b"b": b"2"}]
    other = Redimo(table=r.gateway.table, namespace=r.engine.db.namespace, client=r.gateway.client)
    with r.pipeline() as pipe:
        pipe.watch("h")
        other.hset("h", "c", 3)
        pipe.multi()
        pipe.hset("h", "d", 4)
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert r.hgetall("h") == {b"a": b"11", b"b": b"2", b"c": b"3"} and r.object("encoding", "h") == b"listpack"


def test_smove_between_the_encodings(make_redimo: Callable[..., Redimo]) -> None:
    r = make_redimo(compact_max_entries=2)
    r.sadd("small", "a", "b")
    r.sadd("other", "c")
    assert spent(r, lambda: r.smove("small", "other", "a")) == (True, {"get_item": 2, "transact_write_items": 1})
    assert r.smove("small", "other", "b") and r.exists("small") == 0
    assert r.object("encoding", "other") == b"hashtable", "promoted on the way"
    assert r.smembers("other") == {b"a", b"b", b"c"}
    r.sadd("back", "z")
    assert r.smove("other", "back", "c") and r.smembers("back") == {b"c", b"z"}
    assert r.spop("other", 5) and r.exists("other") == 0


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        Limits(max_bytes=400_000)
    with pytest.raises(ValueError, match="only for"):
        Limits(types=frozenset({"string"}))


def test_item_size_follows_dynamodbs_rules() -> None:
    item = {"pk": {"B": b"12345"}, "n": {"N": "123"}, "m": {"M": {"ab": {"M": {"v": {"B": b"xyz"}}}}}}
    # pk: 2 + 5; n: 1 + (3 digits: 2 + 1); m: 1 + 3 + ("ab" 2 + inner map 3 + ("v" 1 + 3 + 1) + 1)
    assert item_size(item) == 7 + 4 + (1 + 3 + (2 + (3 + 5) + 1))


def add_members(url: str, namespace: str, worker: int, count: int) -> None:
    r = Redimo(table=TABLE, namespace=namespace, endpoint_url=url, compact_max_entries=20)
    for i in range(count):
        r.sadd("shared", f"w{worker}-{i}")
        r.hincrby("counts", "all", 1)
        r.zadd("board", {f"w{worker}-{i}": i})
        r.zincrby("scores", 1, "all")
        r.rpush("queue", f"w{worker}-{i}")


def test_concurrent_writers_across_a_promotion(shared_endpoint: str) -> None:
    namespace = f"test-{uuid.uuid4().hex}"
    run_processes(add_members, [(shared_endpoint, namespace, worker, 15) for worker in range(4)])
    r = Redimo(table=TABLE, namespace=namespace, endpoint_url=shared_endpoint)
    assert r.smembers("shared") == {f"w{worker}-{i}".encode() for worker in range(4) for i in range(15)}
    assert r.scard("shared") == 60 and r.object("encoding", "shared") == b"hashtable"
    assert r.hget("counts", "all") == b"60", "no increment lost or applied twice"
    assert r.zrange("board", 0, -1, withscores=True) == sorted(
        ((f"w{worker}-{i}".encode(), float(i)) for worker in range(4) for i in range(15)), key=lambda pair: (pair[1], pair[0]))
    assert r.zscore("scores", "all") == 60 and r.object("encoding", "board") == b"skiplist"
    queue = r.lrange("queue", 0, -1)
    assert r.object("encoding", "queue") == b"quicklist" and len(queue) == 60
    for worker in range(4):
        assert [value for value in queue if value.startswith(f"w{worker}-".encode())] == \
            [f"w{worker}-{i}".encode() for i in range(15)], "each worker's pushes in order, none lost"


def test_a_compact_stream_message_cycle(make_redimo: Callable[..., Redimo]) -> None:
    """A queue as Celery's broker uses it: XADD 1 request (2 when another client added last),
    XREADGROUP 2 (1 when this client wrote the stream last), XACK 1: 4 a message, all without a member item; past the limits the stream is
    promoted, and keeps working."""
    r = make_redimo()
    r.xgroup_create("q", "workers", id="$", mkstream=True)
    assert spent(r, lambda: r.xadd("q", {"body": "x" * 200}))[1] == {"put_item": 1}, \
        "planned from the head XGROUP CREATE wrote"
    assert spent(r, lambda: r.xadd("q", {"body": "x" * 200}))[1] == {"update_item": 1}, \
        "this client added the last entry: one UpdateItem"
    tail = (r.gateway.table, r.engine.db.pk(b"q"))
    seen_here = TAILS.get(tail)
    make_redimo(namespace=r.engine.db.namespace).xadd("q", {"body": "from elsewhere"})
    TAILS.put(tail, seen_here)  # as if that XADD came from another process, which this one never saw
    assert spent(r, lambda: r.xadd("q", {"n": 3}))[1] == {"update_item": 1, "put_item": 1}, \
        "another client added since: refused, and its reply serves as the read"
    assert [fields for _, fields in r.xrange("q")][2:] == [{b"body": b"from elsewhere"}, {b"n": b"3"}]
    assert r.xtrim("q", maxlen=0) == 4 and r.xlen("q") == 0
    assert spent(r, lambda: r.xadd("q", {"body": "x" * 200}))[1] == {"update_item": 1}, \
        "trimming keeps the last ID and the count of entries added, which is what XADD assumes"
    delivered = spent(r, lambda: r.xreadgroup("workers", "c1", {"q": ">"}, count=1))
    assert delivered[1] == {"put_item": 1}, "planned from the head of this client's XADD"
    entry_id = delivered[0][0][1][0][0]
    assert spent(r, lambda: r.xack("q", "workers", entry_id)) == (1, {"update_item": 1})
    assert spent(r, lambda: r.xack("q", "workers", entry_id)) == (0, {"get_item": 1}), \
        "this client saw nothing pending: a read confirms it"
    assert r.xdel("q", entry_id) == 1 and r.xlen("q") == 0 and r.exists("q") == 1, "an empty stream stays"
    assert items_of(r, b"q") == [HEAD] and r.object("encoding", "q") == b"stream"
    for index in range(30):
        r.xadd("q", {"body": "y" * 200, "n": index})
    assert len(items_of(r, b"q")) > 30, "promoted past the byte limit"
    assert [fields[b"n"] for _, fields in r.xreadgroup("workers", "c1", {"q": ">"})[0][1]] == \
        [str(index).encode() for index in range(30)]
    assert r.xpending("q", "workers")["pending"] == 30 and r.xinfo_groups("q")[0]["last-delivered-id"]
