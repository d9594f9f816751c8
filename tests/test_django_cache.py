"""redimo_django.cache.RedimoCache: Django's cache contract, django-redis's extras and the exact
DynamoDB requests of each method, on both stores."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import pickle
import sys
import threading
import time
import types
import uuid
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Callable, Iterator

import pytest
import redis
from django.conf import settings
from django.core.cache import CacheKeyWarning, InvalidCacheKey, caches
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.test import override_settings

from redimo import Redimo
from redimo.local import free_port
from redimo_django.cache import RedimoCache, Serializer

BACKEND = "redimo_django.cache.RedimoCache"




@pytest.fixture
def make_cache(store) -> Callable[..., RedimoCache]:
    """Caches on the store's table, each in a namespace of its own unless OPTIONS name one."""

    def make(options: dict | None = None, **params: Any) -> RedimoCache:
        options = {"CLIENT_FACTORY": lambda: store.client, "NAMESPACE": f"django-{uuid.uuid4().hex}",
                   **(options or {})}
        return RedimoCache(store.table, {"OPTIONS": options, **params})

    return make


@pytest.fixture
def cache(make_cache: Callable[..., RedimoCache]) -> RedimoCache:
    return make_cache()


@contextmanager
def requests(cache: RedimoCache) -> Iterator[Counter]:
    """The DynamoDB requests made inside the block, by operation."""
    usage = cache.get_client().gateway.usage
    before = usage.snapshot()
    spent: Counter = Counter()
    yield spent
    spent.update((usage - before).requests)


def stored(cache: RedimoCache, key: str) -> bytes | None:
    """The raw bytes of a cache key, read by a plain Redimo client of the same namespace."""
    return cache.get_client().get(cache.make_key(key))


class Exploding:
    """Pickles fine, fails to unpickle."""

    def __reduce__(self) -> tuple:
        return (explode, ())


def explode() -> None:
    raise RuntimeError("cannot unpickle")


# -- values and storage format ----------------------------------------------------------------
@pytest.mark.parametrize("value", ["text", "välue", b"\x00\xff", 0, -17, 2**63 - 1, 2**70, 1.5, True, False,
                                   None, [1, "a"], {"nested": {"x": (1, 2)}}, {1, 2}, datetime(2024, 1, 2)])
def test_values_round_trip(cache: RedimoCache, value: Any) -> None:
    cache.set("k", value)
    assert cache.get("k", "default") == value
    assert type(cache.get("k")) is type(value)


def test_cached_none_is_a_hit(cache: RedimoCache) -> None:
    cache.set("none", None)
    assert cache.get("none", "default") is None
    assert cache.has_key("none") and "none" in cache
    assert cache.get_many(["none", "missing"]) == {"none": None}
    assert cache.get_or_set("none", "other") is None
    assert cache.get("missing", "default") == "default"


def test_storage_format(cache: RedimoCache) -> None:
    cache.set_many({"int": 42, "negative": -7, "bool": True, "big": 2**64, "text": "42"})
    assert stored(cache, "int") == b"42" and stored(cache, "negative") == b"-7"
    assert stored(cache, "bool") == pickle.dumps(True, pickle.HIGHEST_PROTOCOL)
    assert stored(cache, "big") == pickle.dumps(2**64, pickle.HIGHEST_PROTOCOL)
    assert stored(cache, "text") == pickle.dumps("42", pickle.HIGHEST_PROTOCOL)
    assert cache.get("text") == "42" and cache.get("int") == 42
    assert cache.get_client().incr(cache.make_key("int")) == 43, "ints are native Redis integers"
    assert cache.get("int") == 43
    with pytest.raises(ValueError, match="not a RedimoCache value"):
        Serializer().loads(b"plain text")


def test_compression_round_trip(make_cache: Callable[..., RedimoCache]) -> None:
    cache = make_cache({"COMPRESSOR": "zlib", "COMPRESS_MIN_LENGTH": 100})
    text = "compressible " * 1000
    cache.set("big", text)
    raw = stored(cache, "big")
    assert raw[:1] == b"\x01" and pickle.loads(zlib.decompress(raw[1:])) == text
    assert len(raw) < len(text) // 10
    assert cache.get("big") == text
    cache.set("small", "x" * 10)
    assert stored(cache, "small")[:1] == b"\x80", "under COMPRESS_MIN_LENGTH: not compressed"
    cache.set("noise", os.urandom(2000))  # incompressible: kept as it is, since compressing would not shrink it
    assert stored(cache, "noise")[:1] == b"\x80"
    cache.set("int", 10**15)
    assert stored(cache, "int") == b"1000000000000000", "ints are never compressed"
    plain = make_cache({"NAMESPACE": cache.namespace})
    assert plain.get("big") == text, "the marker says how to read a value, whatever the reader's COMPRESSOR"
    assert cache.get_many(["big", "small", "int"]) == {"big": text, "small": "x" * 10, "int": 10**15}


def test_optional_compressors(make_cache: Callable[..., RedimoCache], monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("zstandard", "compression.zstd", "lz4.frame"):
        monkeypatch.setitem(sys.modules, module, None)  # not installed
    with pytest.raises(ImproperlyConfigured, match="'zstd' compressor needs the zstandard package"):
        make_cache({"COMPRESSOR": "zstd"})
    with pytest.raises(ImproperlyConfigured, match="'lz4' compressor needs the lz4 package"):
        make_cache({"COMPRESSOR": "lz4"})
    calls = []
    fake = types.ModuleType("zstandard")
    fake.compress = lambda data: calls.append("compress") or zlib.compress(data)  # type: ignore[attr-defined]
    fake.decompress = lambda data: calls.append("decompress") or zlib.decompress(data)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "zstandard", fake)
    cache = make_cache({"COMPRESSOR": "zstd", "COMPRESS_MIN_LENGTH": 0})
    cache.set("k", "z" * 5000)
    assert stored(cache, "k")[:1] == b"\x02"
    assert cache.get("k") == "z" * 5000
    assert calls == ["compress", "decompress"]


def test_pickle_errors_propagate(cache: RedimoCache) -> None:
    with requests(cache) as spent:
        with pytest.raises(TypeError, match="pickle"):
            cache.set("lock", threading.Lock())
        with pytest.raises(TypeError, match="pickle"):
            cache.add("lock", threading.Lock())
        with pytest.raises(TypeError, match="pickle"):
            cache.set_many({"a": 1, "lock": threading.Lock()})
    assert spent == Counter(), "nothing is sent when a value cannot be pickled"
    cache.set("exploding", Exploding())
    with pytest.raises(RuntimeError, match="cannot unpickle"):
        cache.get("exploding")
    with pytest.raises(RuntimeError, match="cannot unpickle"):
        cache.get_many(["exploding"])


def test_large_value_is_chunked(cache: RedimoCache) -> None:
    value = bytes(range(256)) * 4000  # about 1 MB: three chunk items
    with requests(cache) as spent:
        cache.set("big", value)
    assert spent == Counter(batch_write_item=1, put_item=1)
    with requests(cache) as spent:
        assert cache.get("big") == value
    assert spent == Counter(get_item=1, batch_get_item=1)


# -- request counts ---------------------------------------------------------------------------
def test_each_single_key_method_is_one_request(cache: RedimoCache) -> None:
    cache.set("counter", 1, None)
    steps: list[tuple[Callable[[], Any], Any, str]] = [
        (lambda: cache.set("k", "v"), True, "put_item"),
        (lambda: cache.get("k"), "v", "get_item"),
        (lambda: cache.get("missing"), None, "get_item"),
        (lambda: cache.add("k", "w"), False, "put_item"),
        (lambda: cache.add("new", "w"), True, "put_item"),
        (lambda: cache.add("never", "w", 0), True, "delete_item"),
        (lambda: cache.touch("k", 100), True, "update_item"),
        (lambda: cache.touch("k", None), True, "update_item"),
        (lambda: cache.touch("missing"), False, "update_item"),
        (lambda: cache.has_key("k"), True, "get_item"),
        (lambda: cache.has_key("missing"), False, "get_item"),
        (lambda: cache.incr("counter"), 2, "update_item"),
        (lambda: cache.decr("counter", 5), -3, "update_item"),
        (lambda: cache.get_or_set("k", "other"), "v", "get_item"),
        (lambda: cache.delete("k"), True, "update_item"),
        (lambda: cache.delete("k"), False, "update_item"),
        (lambda: cache.set("k", "v", 0), False, "update_item"),
        (lambda: cache.ttl("counter"), None, "get_item"),
        (lambda: cache.pttl("missing"), 0, "get_item"),
        (lambda: cache.expire("counter", 50), True, "update_item"),
        (lambda: cache.persist("counter"), True, "update_item"),
    ]
    for step, expected, operation in steps:
        with requests(cache) as spent:
            assert step() == expected
        assert spent == Counter({operation: 1})
    with requests(cache) as spent:
        with pytest.raises(ValueError, match="Key 'missing' not found"):
            cache.incr("missing")
    assert spent == Counter(update_item=1), "a missing key is found out in the same request"


def test_get_or_set(cache: RedimoCache, make_cache: Callable[..., RedimoCache]) -> None:
    with requests(cache) as spent:
        assert cache.get_or_set("k", lambda: "computed", 100) == "computed"
    assert spent == Counter(get_item=1, put_item=1)
    assert cache.get("k") == "computed" and 99 <= cache.ttl("k") <= 100
    with requests(cache) as spent:
        assert cache.get_or_set("k", "other") == "computed"
    assert spent == Counter(get_item=1)
    rival = make_cache({"NAMESPACE": cache.namespace})

    def racing_default() -> str:
        rival.set("raced", "theirs")  # another writer gets in between our GET and our SET NX
        return "mine"

    with requests(cache) as spent:
        assert cache.get_or_set("raced", racing_default) == "theirs"
    assert spent == Counter(get_item=1, put_item=1)
    assert cache.get("raced") == "theirs"
    assert cache.get_or_set("zero", "value", timeout=0) == "value"
    assert not cache.has_key("zero")
    assert cache.get_or_set("none", None) is None and cache.has_key("none")


def test_add_is_atomic(cache: RedimoCache) -> None:
    def attempt(index: int) -> bool:
        return cache.add("lock", index)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(16)))
    assert results.count(True) == 1
    assert cache.get("lock") == results.index(True)
    assert cache.add("lock", "again", 0) is False
    assert cache.has_key("lock"), "add with timeout 0 never removes a live key"


def test_bulk_methods_are_batched(cache: RedimoCache, store) -> None:
    data = {f"key{i}": i * 1.5 for i in range(60)}
    with requests(cache) as spent:
        assert cache.set_many(data, 100) == []
    assert spent == Counter(batch_write_item=3)
    keys = [f"key{i}" for i in range(250)]
    with requests(cache) as spent:
        assert cache.get_many(keys) == data
    assert spent == Counter(batch_get_item=3)
    assert 99 <= cache.ttl("key7") <= 100
    with requests(cache) as spent:
        assert cache.delete_many(keys[:30]) == 30
    if store.is_moto:  # "PartiQL DELETE takes no ? parameters": the fallback reads, then deletes
        assert spent == Counter(batch_get_item=1, batch_write_item=2)
    else:
        assert spent == Counter(batch_execute_statement=2), "ceil(30/25) deletes returning the old heads"
    assert len(cache.get_many(keys)) == 30
    cache.set_many(data, 100)
    with requests(cache) as spent:
        assert cache.delete_many(list(data)) == 60
    if not store.is_moto:
        assert spent == Counter(batch_execute_statement=3), "the issue's 60 keys: 3 requests, not 4"
    assert cache.get_many(keys) == {}
    cache.set_many(data, 100)
    with requests(cache) as spent:
        cache.set_many({"one": 1})
        cache.delete_many(["one"])
        assert cache.get_many([]) == {} and cache.set_many({}) == []
        cache.delete_many([])
    assert spent == Counter(put_item=1, update_item=1)
    cache.set_many({"key40": 1, "key41": 2}, timeout=0)
    assert cache.get_many(["key40", "key41", "key42"]) == {"key42": 63.0}, "timeout 0 in set_many deletes"
    cache.set_many({"key42": 1, "key43": 2}, timeout=-5)
    assert not cache.has_key("key42") and not cache.has_key("key43")


# -- timeouts ---------------------------------------------------------------------------------
def test_timeouts(make_cache: Callable[..., RedimoCache]) -> None:
    cache = make_cache(TIMEOUT=120)
    cache.set("default", 1)
    assert 119 <= cache.ttl("default") <= 120
    cache.set("forever", 1, None)
    assert cache.ttl("forever") is None
    cache.set("forever", 1, 0)
    assert not cache.has_key("forever"), "timeout 0 expires at once"
    cache.set("k", 1)
    cache.set("k", 2, -1)
    assert cache.get("k") is None, "a negative timeout expires at once"
    assert cache.add("k", 3, -1) is True and cache.get("k") is None
    persistent = make_cache(TIMEOUT=None)
    persistent.set("p", 1)
    assert persistent.ttl("p") is None


def test_float_timeouts_are_honoured(cache: RedimoCache) -> None:
    cache.set("short", "v", 0.4)
    cache.set_many({"many": 1}, 0.4)
    cache.add("added", "v", 0.4)
    assert 0 < cache.pttl("short") <= 400
    assert cache.get("short") == "v" and cache.get("many") == 1 and cache.get("added") == "v"
    cache.set("touched", "v")
    assert cache.touch("touched", 0.4)
    time.sleep(0.5)
    assert cache.get_many(["short", "many", "added", "touched"]) == {}
    assert not cache.has_key("short")


def test_touch_never_creates(cache: RedimoCache) -> None:
    assert cache.touch("missing", 100) is False
    assert cache.touch("missing", None) is False
    assert cache.touch("missing", 0) is False
    assert not cache.has_key("missing") and cache.ttl("missing") == 0
    cache.set("k", "v", 10)
    assert cache.touch("k", 1000) and 999 <= cache.ttl("k") <= 1000
    assert cache.touch("k", None) and cache.ttl("k") is None
    assert cache.touch("k", None), "touch(None) of a key without expiry still reports the key exists"
    assert cache.touch("k") and 299 <= cache.ttl("k") <= 300
    assert cache.touch("k", 0) is True and not cache.has_key("k")


# -- incr and decr ----------------------------------------------------------------------------
def test_incr_decr(cache: RedimoCache) -> None:
    cache.set("n", 10, 100)
    assert cache.incr("n") == 11 and cache.incr("n", 10) == 21 and cache.decr("n", 22) == -1
    assert cache.get("n") == -1
    assert 99 <= cache.ttl("n") <= 100, "incr keeps the TTL"
    cache.set("n", 2**63 - 1)
    assert cache.incr("n") == 2**63, "past int64 it goes on as a Python int"
    assert cache.decr("n") == 2**63 - 1 and stored(cache, "n") == str(2**63 - 1).encode()
    assert cache.incr("n", 2**80) == 2**63 - 1 + 2**80
    with pytest.raises(ValueError, match="Key 'missing' not found"):
        cache.decr("missing")
    assert not cache.has_key("missing")
    cache.set("gone", 1, 0.05)
    time.sleep(0.1)
    with pytest.raises(ValueError):
        cache.incr("gone")


def test_incr_of_a_pickled_number_keeps_ttl(cache: RedimoCache) -> None:
    cache.set("f", 1.5, 100)
    with requests(cache) as spent:
        assert cache.incr("f") == 2.5
    assert spent == Counter(update_item=1, get_item=1, put_item=1)
    assert cache.get("f") == 2.5 and 99 <= cache.ttl("f") <= 100
    cache.set("s", "text")
    with pytest.raises(TypeError):
        cache.incr("s")
    assert cache.get("s") == "text"


def test_incr_is_atomic(shared_endpoint: str) -> None:
    from redimo.gateway import make_client

    cache = RedimoCache("redimo-tests", {"OPTIONS": {"CLIENT_FACTORY": lambda: make_client(endpoint_url=shared_endpoint),
                                                      "NAMESPACE": f"django-{uuid.uuid4().hex}"}})
    cache.set("n", 0)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: cache.incr("n"), range(80)))
    assert cache.get("n") == 80


# -- keys, prefixes and versions --------------------------------------------------------------
def test_key_prefix_version_and_key_function(make_cache: Callable[..., RedimoCache]) -> None:
    cache = make_cache(KEY_PREFIX="site", VERSION=3)
    cache.set("k", "v3")
    assert cache.make_key("k") == "site:3:k" and stored(cache, "k") is not None
    assert cache.get("k", version=2) is None
    cache.set("k", "v2", version=2)
    assert cache.get("k") == "v3" and cache.get("k", version=2) == "v2"
    custom = make_cache({"NAMESPACE": cache.namespace}, KEY_FUNCTION=lambda key, prefix, version: f"custom/{key}")
    custom.set("k", "c")
    assert cache.get_client().get("custom/k") == pickle.dumps("c", pickle.HIGHEST_PROTOCOL)
    assert custom.get("k") == "c" and cache.get("k") == "v3"


def test_versions(cache: RedimoCache) -> None:
    cache.set("k", "value", 100)
    with requests(cache) as spent:
        assert cache.incr_version("k") == 2
    assert spent == Counter(get_item=2, transact_write_items=1)
    assert cache.get("k") is None and cache.get("k", version=2) == "value"
    assert 99 <= cache.ttl("k", version=2) <= 100, "incr_version keeps the TTL"
    assert cache.decr_version("k", version=2) == 1
    assert cache.get("k") == "value" and cache.get("k", version=2) is None
    assert cache.incr_version("k", 0) == 1
    with pytest.raises(ValueError, match="Key 'missing' not found"):
        cache.incr_version("missing")
    with pytest.raises(ValueError):
        cache.decr_version("missing")


def test_key_warnings(cache: RedimoCache) -> None:
    for key in ("with space", "x" * 251, "tab\there"):
        with pytest.warns(CacheKeyWarning):
            cache.set(key, 1)
        with pytest.warns(CacheKeyWarning):
            assert cache.get(key) == 1
    with requests(cache) as spent, pytest.warns(CacheKeyWarning, match="longer than 250"):
        with pytest.raises(InvalidCacheKey, match="too long for DynamoDB"):
            cache.get("x" * 2100)
        with pytest.raises(InvalidCacheKey):
            cache.set_many({"ok": 1, "y" * 2100: 2})
    assert spent == Counter()
    with pytest.warns(CacheKeyWarning):
        cache.set("é" * 1000, 1)  # 2000 bytes: under DynamoDB's limit, whatever memcached says
        assert cache.get("é" * 1000) == 1
        assert cache.delete("é" * 1000)  # a key this long breaks SCAN's integer cursor for other tests


def test_clear_is_limited_to_its_namespace(make_cache: Callable[..., RedimoCache], store) -> None:
    first, second = make_cache(), make_cache()
    plain = Redimo(table=store.table, namespace=f"plain-{uuid.uuid4().hex}", client=store.client)
    prefix = uuid.uuid4().hex
    options = {"CLIENT_FACTORY": lambda: store.client}  # no NAMESPACE: derived from KEY_PREFIX
    default_a = RedimoCache(store.table, {"KEY_PREFIX": f"{prefix}-a", "OPTIONS": options})
    default_b = RedimoCache(store.table, {"KEY_PREFIX": f"{prefix}-b", "OPTIONS": options})
    assert default_a.namespace == f"django-cache:{prefix}-a"
    for cache in (first, second, default_a, default_b):
        cache.set_many({"a": 1, "b": "two"})
    plain.set("a", "session")
    assert first.clear() is True
    assert first.get_many(["a", "b"]) == {}
    assert second.get_many(["a", "b"]) == {"a": 1, "b": "two"}
    assert plain.get("a") == b"session"
    assert default_a.clear()
    assert default_a.get("a") is None and default_b.get("a") == 1


# -- django-redis's extras --------------------------------------------------------------------
def test_ttl_expire_persist(cache: RedimoCache) -> None:
    assert cache.ttl("missing") == 0 and cache.pttl("missing") == 0
    cache.set("k", "v", None)
    assert cache.ttl("k") is None and cache.pttl("k") is None
    assert cache.persist("k") is False, "no expiry to remove"
    assert cache.expire("k", timedelta(seconds=50)) is True
    assert 49 <= cache.ttl("k") <= 50 and 49_000 < cache.pttl("k") <= 50_000
    assert cache.persist("k") is True and cache.ttl("k") is None
    assert cache.expire_at("k", datetime.now() + timedelta(seconds=30)) is True
    assert 29 <= cache.ttl("k") <= 30
    assert cache.expire_at("k", time.time() + 60.5) is True
    assert 60_000 <= cache.pttl("k") <= 60_500
    assert cache.expire("missing", 10) is False and cache.expire_at("missing", time.time() + 10) is False
    assert cache.expire_at("k", time.time() - 1) is True and not cache.has_key("k")


def test_keys_iter_keys_delete_pattern(make_cache: Callable[..., RedimoCache]) -> None:
    cache = make_cache(KEY_PREFIX="p[1]*")
    cache.set_many({"user:1": 1, "user:2": 2, "user:10": 3, "other": 4, "us*er": 5})
    cache.set("user:3", 6, version=2)
    unescaped = make_cache({"NAMESPACE": cache.namespace}, KEY_PREFIX="p1x")
    unescaped.set("user:9", 7)
    assert sorted(cache.keys("user:*")) == ["user:1", "user:10", "user:2"]
    assert sorted(cache.keys("user:?")) == ["user:1", "user:2"]
    assert cache.keys("us\\*er") == ["us*er"]
    assert cache.keys("user:*", version=2) == ["user:3"]
    assert sorted(cache.iter_keys("*", itersize=2)) == ["other", "us*er", "user:1", "user:10", "user:2"]
    assert cache.delete_pattern("user:1*") == 2
    assert sorted(cache.keys("*")) == ["other", "us*er", "user:2"]
    assert cache.delete_pattern("nothing*") == 0
    assert cache.get("user:3", version=2) == 6 and unescaped.get("user:9") == 7
    hashed = make_cache({"NAMESPACE": cache.namespace}, KEY_FUNCTION=lambda key, prefix, version: str(hash(key)))
    with pytest.raises(ImproperlyConfigured, match="KEY_FUNCTION"):
        hashed.keys("*")


def test_async_methods(cache: RedimoCache, store) -> None:
    async def scenario() -> None:
        await cache.aset("n", 1, 100)
        assert await cache.aincr("n", 4) == 5 and await cache.adecr("n") == 4
        assert await cache.aget_or_set("g", "value") == "value"
        await cache.aset_many({"a": 1, "b": 2})
        assert await cache.aget_many(["a", "b", "c"]) == {"a": 1, "b": 2}
        assert await cache.ahas_key("a") and await cache.aincr_version("a") == 2
        assert await cache.adecr_version("a", version=2) == 1
        await cache.adelete_many(["a", "b"])
        assert await cache.aget_many(["a", "b"]) == {}

    with requests(cache) as spent:
        asyncio.run(scenario())
    deletes = Counter(batch_get_item=1, batch_write_item=1) if store.is_moto else Counter(batch_execute_statement=1)
    assert spent == Counter(put_item=2, update_item=2, get_item=6, batch_write_item=1, batch_get_item=2,
                            transact_write_items=2) + deletes
    assert 99 <= cache.ttl("n") <= 100, "aincr is the atomic incr, keeping the TTL"


def test_close_then_use(cache: RedimoCache) -> None:
    cache.set("k", 1)
    cache.close()
    assert cache.get("k") == 1


@pytest.mark.moto_bug("consumed capacity comes back as fixed numbers")
def test_capacity_units(make_cache: Callable[..., RedimoCache]) -> None:
    cache = make_cache()
    usage = cache.get_client().gateway.usage
    cache.set("k", "v")
    assert usage.write_units == 1.0
    cache.get("k")
    assert usage.read_units == 1.0, "a strongly consistent read of an item under 4 KB"
    eventual = make_cache({"NAMESPACE": cache.namespace, "CONSISTENT_READS": False})
    assert eventual.get("k") == "v"
    assert eventual.get_client().gateway.usage.read_units == 0.5


# -- configuration ----------------------------------------------------------------------------
@pytest.mark.parametrize("location, options, message", [
    ("t", {}, "LOCATION must name the DynamoDB table"),
    ("", {}, "LOCATION must name the DynamoDB table"),
    ("table", {"MAX_ENTRIES": 10}, "unknown OPTIONS MAX_ENTRIES"),
    ("table", {"COMPRESSOR": "brotli"}, "COMPRESSOR'] must be one of zlib, zstd, lz4"),
    ("table", {"COMPRESS_MIN_LENGTH": -1}, "COMPRESS_MIN_LENGTH'] must be an int"),
    ("table", {"COMPRESS_MIN_LENGTH": "10"}, "COMPRESS_MIN_LENGTH'] must be an int"),
    ("table", {"CONSISTENT_READS": "yes"}, "CONSISTENT_READS'] must be True or False"),
    ("table", {"IGNORE_EXCEPTIONS": 1}, "IGNORE_EXCEPTIONS'] must be True or False"),
    ("table", {"NAMESPACE": ""}, "NAMESPACE'] must be a non-empty string"),
    ("table", {"NAMESPACE": "a\x00b"}, "cannot contain NUL"),
    ("table", {"ENDPOINT_URL": 8000}, "ENDPOINT_URL'] must be a non-empty string"),
    ("table", {"CLIENT_FACTORY": "no.such.factory"}, "cannot import 'no.such.factory'"),
    ("table", {"CLIENT_FACTORY": 42}, "must be a callable"),
    ("table", {"CLIENT_FACTORY": "redimo.make_client", "REGION_NAME": "eu-west-1"}, "do not give ENDPOINT_URL"),
])
def test_bad_options(location: str, options: dict, message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message.replace("[", r"\[").replace("]", r"\]")):
        RedimoCache(location, {"OPTIONS": options})


def test_options_reach_the_client() -> None:
    cache = RedimoCache("table", {"OPTIONS": {"CLIENT_FACTORY": "redimo.make_client",
                                                  "CONSISTENT_READS": False}})
    assert cache.namespace == "django-cache"
    assert cache.get_client().gateway.consistent_reads is False
    endpoint = RedimoCache("table", {"OPTIONS": {"ENDPOINT_URL": "http://127.0.0.1:9", "REGION_NAME": "eu-west-1"}})
    client = endpoint.get_client().gateway.client
    assert client.meta.endpoint_url == "http://127.0.0.1:9" and client.meta.region_name == "eu-west-1"
    again = RedimoCache("table", {"OPTIONS": {"ENDPOINT_URL": "http://127.0.0.1:9", "REGION_NAME": "eu-west-1"}})
    assert again.get_client().gateway.client is client, "one boto3 client for every instance of an endpoint"


def unreachable(**options: Any) -> RedimoCache:
    return RedimoCache("table", {"OPTIONS": {"ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
                                             "REGION_NAME": "us-east-1", **options}})


def test_ignore_exceptions(caplog: pytest.LogCaptureFixture) -> None:
    cache = unreachable(IGNORE_EXCEPTIONS=True)
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="redimo_django.cache"):
        assert cache.get("k", "default") == "default"
        assert cache.get_many(["a", "b"]) == {}
        assert cache.set("k", 1) is None
        assert cache.add("k", 1) is False
        assert cache.set_many({"a": 1, "b": 2}) == ["a", "b"]
        assert cache.touch("k") is False and cache.delete("k") is False and cache.has_key("k") is False
        assert cache.delete_many(["a", "b"]) is None
        assert cache.get_or_set("k", lambda: "computed") == "computed"
        with pytest.raises(ValueError, match="not found"):
            cache.incr("k")
        with pytest.raises(ValueError, match="not found"):
            cache.incr_version("k")
        assert cache.ttl("k") == 0 and cache.persist("k") is False and cache.expire("k", 5) is False
        assert cache.keys("*") == [] and list(cache.iter_keys("*")) == [] and cache.delete_pattern("*") == 0
        assert cache.clear() is False
    assert time.monotonic() - started < 10
    assert len(caplog.records) == 20 and "DynamoDB unreachable" in caplog.records[0].getMessage()
    assert caplog.records[0].exc_info[0] is redis.ConnectionError
    caplog.clear()
    quiet = unreachable(IGNORE_EXCEPTIONS=True, LOG_IGNORED_EXCEPTIONS=False)
    with caplog.at_level(logging.ERROR, logger="redimo_django.cache"):
        assert quiet.get("k") is None
    assert caplog.records == []
    strict = unreachable()
    with pytest.raises(redis.ConnectionError, match="Error connecting to DynamoDB"):
        strict.get("k")
    with pytest.raises(redis.ConnectionError):
        strict.set("k", 1)


def test_caches_setting_and_createtable_command(store) -> None:
    table = f"django-{uuid.uuid4().hex[:12]}"
    factory = lambda: store.client  # noqa: E731
    config = {
        "default": {"BACKEND": BACKEND, "LOCATION": table, "KEY_PREFIX": "site",
                    "OPTIONS": {"CLIENT_FACTORY": factory, "COMPRESSOR": "zlib"}},
        "bare": {"BACKEND": BACKEND, "LOCATION": f"{table}-nottl", "OPTIONS": {"CLIENT_FACTORY": factory}},
        "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    try:
        apps = list(settings.INSTALLED_APPS)
        overrides = {} if "redimo_django" in apps else {"INSTALLED_APPS": [*apps, "redimo_django"]}
        with override_settings(CACHES=config, **overrides):
            out = io.StringIO()
            call_command("redimo_createtable", stdout=out)
            assert f"Table '{table}' created." in out.getvalue() and "TTL is on" in out.getvalue()
            ttl = store.client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
            assert ttl["TimeToLiveStatus"] in ("ENABLED", "ENABLING") and ttl["AttributeName"] == "tx"
            out = io.StringIO()
            call_command("redimo_createtable", "default", stdout=out)
            assert f"Table '{table}' already exists." in out.getvalue()
            caches["default"].set("k", "v", 10)
            assert caches["default"].get("k") == "v" and caches["default"].namespace == "django-cache:site"
            call_command("redimo_createtable", "bare", "--no-ttl", stdout=io.StringIO())
            ttl = store.client.describe_time_to_live(TableName=f"{table}-nottl")["TimeToLiveDescription"]
            assert ttl["TimeToLiveStatus"] == "DISABLED"
            with pytest.raises(CommandError, match="not a RedimoCache"):
                call_command("redimo_createtable", "local", stdout=io.StringIO())
            with pytest.raises(CommandError, match="nope"):
                call_command("redimo_createtable", "nope", stdout=io.StringIO())
    finally:
        for name in (table, f"{table}-nottl"):
            try:
                store.client.delete_table(TableName=name)
            except store.client.exceptions.ResourceNotFoundException:
                pass
