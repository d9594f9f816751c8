"""Lua scripting: the script API against a real redis-server, atomicity under concurrency, limits, and
real libraries (redis-py's Lock and register_script) running unchanged on Redimo."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import redis
from redis.exceptions import LockNotOwnedError
from redis.lock import Lock

from conftest import TABLE, run_processes
from differential import Pair
from redimo import Redimo
from redimo.commands import scripting

SCRIPTS = [
    "return 1", "return 3.99", "return -3.7", "return 'text'", "return {1, 2, nil, 4}", "return {1, {2, {3}}}",
    "return {true, false, 'a'}", "return true", "return false", "return nil",
    "return {err='My Error'}", "return redis.error_reply('x y')", "return redis.status_reply('FINE')",
    "return redis.call('set', KEYS[1], ARGV[1])", "return redis.call('get', KEYS[1])",
    "return type(redis.call('get', 'missing'))", "return redis.call('incr', KEYS[1])",
    "return redis.pcall('incr', 'text')", "return redis.call('incr', 'text')",
    "return redis.call('hset', 'h', 'a', 1, 'b', 2.5)", "return redis.call('hgetall', 'h')",
    "return redis.call('nosuch')", "return redis.call()", "return redis.call('get')",
    "return redis.call('get', {})", "return redis.call('eval', 'return 1', 0)",
    "local ok = redis.pcall('incr', 'text'); return ok.err", "return pcall(redis.call, 'incr', 'text')",
    "x = 1", "return y", "return error('boom')", "return (", "return redis.sha1hex('abc')",
    "return cjson.encode({1, 2, {a = 1}})", "return cjson.decode('[1,2,{\"a\":3}]')[3].a",
    "return cmsgpack.unpack(cmsgpack.pack({1, 2, 'x'}))", "return {bit.band(7, 3), bit.bor(1, 6), bit.bxor(5, 1),"
    " bit.lshift(1, 4), bit.rshift(-1, 28), bit.bnot(0), bit.tohex(255)}",
    "return KEYS", "return ARGV", "return #KEYS + #ARGV",
    "redis.call('set', 'before-error', 1); return error('after a write')",
    "return redis.call('lrange', 'nolist', 0, -1)", "return redis.call('zadd', 'z', 1.5, 'm')",
    "return redis.call('zscore', 'z', 'm')",
]


def test_script_replies_match_redis(pair: Pair) -> None:
    pair.same(b"SET", b"text", b"abc")
    for script in SCRIPTS:
        pair.same(b"EVAL", script.encode(), b"1", b"key", b"value")
    pair.same(b"GET", b"before-error")  # a script's writes before its error stay, as in Redis


@pytest.mark.parametrize("name", ["os", "io", "require", "loadfile", "dofile", "package", "debug"])
def test_the_sandbox_refuses_what_redis_refuses(pair: Pair, name: str) -> None:
    pair.same(b"EVAL", f"return {name}".encode(), b"0")


def test_script_cache_and_its_errors_match_redis(pair: Pair) -> None:
    sha = pair.same(b"SCRIPT", b"LOAD", b"return ARGV[1]")
    pair.same(b"EVALSHA", sha, b"0", b"hello")
    pair.same(b"EVALSHA", sha.upper(), b"0", b"hello")
    pair.same(b"SCRIPT", b"EXISTS", sha, b"0" * 40)
    pair.same(b"EVALSHA", b"f" * 40, b"0")
    pair.same(b"EVAL", b"return 1", b"-1")
    pair.same(b"EVAL", b"return 1", b"3", b"a")
    pair.same(b"EVAL", b"return 1", b"x")
    pair.same(b"SCRIPT", b"FLUSH")
    pair.same(b"SCRIPT", b"EXISTS", sha)
    pair.same(b"SCRIPT", b"LOAD", b"return (")
    pair.same(b"EVAL_RO", b"return redis.call('get', KEYS[1])", b"1", b"k")
    pair.same(b"SCRIPT", b"NOPE")


def test_functions_match_redis(pair: Pair) -> None:
    library = (b"#!lua name=mylib\n"
               b"redis.register_function('myfunc', function(keys, args) return redis.call('incr', keys[1]) end)\n"
               b"redis.register_function{function_name='ro', callback=function(keys, args) "
               b"return redis.call('get', keys[1]) end, flags={'no-writes'}}")
    pair.same(b"FUNCTION", b"FLUSH")  # FLUSHALL leaves Redis's functions
    pair.same(b"FUNCTION", b"LOAD", library)
    pair.same(b"FUNCTION", b"LOAD", library)
    pair.same(b"FCALL", b"myfunc", b"1", b"counter")
    pair.same(b"FCALL_RO", b"myfunc", b"1", b"counter")
    pair.same(b"FCALL_RO", b"ro", b"1", b"counter")
    pair.same(b"FCALL", b"nofunc", b"0")
    expected, got = pair.both(b"FUNCTION", b"LIST")
    assert [[*entry[:5], sorted(entry[5])] for entry in got] == [[*entry[:5], sorted(entry[5])] for entry in expected]
    # (the order of a library's functions is Redis's hash order; Redimo lists them as registered)
    pair.same(b"FUNCTION", b"LIST", b"LIBRARYNAME", b"other*")
    pair.same(b"FUNCTION", b"LOAD", b"REPLACE", library.replace(b"'myfunc'", b"'renamed'"))
    pair.same(b"FCALL", b"renamed", b"1", b"counter")
    pair.same(b"FUNCTION", b"DELETE", b"nolib")
    pair.same(b"FUNCTION", b"DELETE", b"mylib")
    pair.same(b"FCALL", b"renamed", b"1", b"counter")
    pair.same(b"FUNCTION", b"LOAD", b"return 1")


def test_read_only_scripts_write_nothing(r: Redimo) -> None:
    with pytest.raises(redis.ResponseError, match="^Write commands are not allowed from read-only scripts"):
        r.eval_ro("redis.call('set', KEYS[1], 'x'); return 1", 1, "k")
    with pytest.raises(redis.ResponseError, match="^Write commands are not allowed from read-only scripts"):
        r.eval_ro("redis.pcall('set', KEYS[1], 'x'); return 1", 1, "k")  # caught inside, still refused
    assert r.get("k") is None


def test_a_script_costs_a_read_of_its_keys_and_one_transaction(r: Redimo) -> None:
    r.set("counter", 5)
    before = r.gateway.usage.snapshot()
    assert r.eval("redis.call('incr', KEYS[1]); return redis.call('get', KEYS[1])", 1, "counter") == b"6"
    assert (r.gateway.usage - before).requests == {"get_item": 1, "transact_write_items": 1}  # 1 key: GetItem
    before = r.gateway.usage.snapshot()
    assert r.eval("return redis.call('get', KEYS[1])", 1, "counter") == b"6"
    assert (r.gateway.usage - before).requests == {"get_item": 1}  # a read-only script commits nothing
    r.set("other", 1)
    before = r.gateway.usage.snapshot()
    assert r.eval("return redis.call('mget', KEYS[1], KEYS[2])", 2, "counter", "other") == [b"6", b"1"]
    assert (r.gateway.usage - before).requests == {"batch_get_item": 1}


def test_limits_stop_a_script_and_write_nothing(r: Redimo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scripting, "TIME_LIMIT", 0.3)
    with pytest.raises(redis.ResponseError, match="ran for more than 0.3 s and was stopped; nothing was written"):
        r.eval("redis.call('set', KEYS[1], 'x'); while true do end", 1, "looping")
    assert r.get("looping") is None
    with pytest.raises(redis.ResponseError, match="do not fit one DynamoDB transaction"):
        r.eval("for i = 1, 150 do redis.call('set', 'key' .. i, i) end", 0)
    assert r.exists("key1", "key150") == 0
    assert r.eval("return 1", 0) == 1  # the Lua state is usable after a stopped script


def test_scripts_are_refused_inside_multi(r: Redimo) -> None:
    pipe = r.pipeline(transaction=True)
    pipe.set("a", 1)
    pipe.eval("return 1", 0)
    with pytest.raises(redis.ResponseError, match="Redimo does not run scripts inside MULTI"):
        pipe.execute()  # EXEC aborted: the queue-time error is what redis-py raises
    assert r.get("a") is None


def test_scripts_run_in_threads_of_one_client(r: Redimo) -> None:
    def work() -> None:
        for _ in range(10):
            r.eval("return redis.call('incr', KEYS[1])", 1, "shared")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert r.get("shared") == b"40"


INCREMENT_BELOW = """
local value = tonumber(redis.call('get', KEYS[1]) or '0')
if value < tonumber(ARGV[1]) then
  redis.call('incr', KEYS[1])
  return 1
end
return 0
"""


def increment_below(endpoint: str, namespace: str, runs: int, limit: int, results: Any) -> None:
    r = Redimo(table=TABLE, namespace=namespace, endpoint_url=endpoint)
    results.put(sum(r.eval(INCREMENT_BELOW, 1, "counter", limit) for _ in range(runs)))


def test_four_processes_increment_below_a_limit_exactly(shared_endpoint: str) -> None:
    import multiprocessing
    import uuid

    namespace, results = f"scripts-{uuid.uuid4().hex}", multiprocessing.get_context("spawn").Queue()
    run_processes(increment_below, [(shared_endpoint, namespace, 200, 500, results)] * 4, timeout=600)
    granted = sum(results.get(timeout=10) for _ in range(4))
    assert granted == 500
    assert Redimo(table=TABLE, namespace=namespace, endpoint_url=shared_endpoint).get("counter") == b"500"


def test_redis_py_lock_runs_unchanged(r: Redimo) -> None:
    lock = Lock(r, "resource", timeout=10, blocking_timeout=0)
    assert lock.acquire() and lock.owned() and lock.locked()
    other = Lock(r, "resource", timeout=10, blocking_timeout=0)
    assert not other.acquire()
    assert lock.extend(5) and 10_000 < r.pttl("resource") <= 15_000
    assert lock.reacquire() and r.pttl("resource") > 9_000
    other.local.token = b"not-the-owner"
    with pytest.raises(LockNotOwnedError):
        other.release()
    lock.release()
    assert not lock.locked() and other.acquire()
    other.release()


RATE_LIMIT = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window)
  return 1
end
return 0
"""


def test_a_register_script_rate_limiter_runs_unchanged(r: Redimo) -> None:
    limiter = r.register_script(RATE_LIMIT)
    now = int(time.time() * 1000)
    allowed = [limiter(keys=["rate:user"], args=[now + i, 60_000, 5, f"request-{i}"]) for i in range(12)]
    assert allowed == [1] * 5 + [0] * 7
    assert r.zcard("rate:user") == 5 and 0 < r.pttl("rate:user") <= 60_000
    assert limiter(keys=["rate:user"], args=[now + 70_000, 60_000, 5, "later"]) == 1  # the window moved on


def test_python_objects_are_not_reachable_from_lua(r: Redimo) -> None:
    for script in ("return tostring(cjson.encode.__class__)", "return python", "return cjson.encode.__globals__"):
        with pytest.raises(redis.ResponseError, match="not accessible from scripts|nonexistent global variable"):
            r.eval(script, 0)
