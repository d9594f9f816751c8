"""django-redis 7's cache API on RedimoCache (redimo_django.compat): ``set(nx=, xx=)``,
``incr(ignore_key_check=)``, ``pexpire``, the set, hash and sorted-set helpers, ``cache.client`` and
``get_redis_connection``. django-redis's own suite runs in test_django_redis_suite.py."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import pytest

from redimo import Redimo
from redimo_django.cache import RedimoCache


@pytest.fixture
def cache(store) -> RedimoCache:
    options = {"CLIENT_FACTORY": lambda: store.client, "NAMESPACE": f"django-{uuid.uuid4().hex}"}
    return RedimoCache(store.table, {"OPTIONS": options, "VERSION": 2, "KEY_PREFIX": "site"})


def spent(cache: RedimoCache, action: Callable[[], Any]) -> tuple[Any, dict[str, int]]:
    before = cache.get_client().gateway.usage.snapshot()
    result = action()
    return result, dict((cache.get_client().gateway.usage - before).requests)


def test_set_nx_xx_and_incr_ignore_key_check(cache: RedimoCache) -> None:
    assert cache.set("k", 1, nx=True) is True and cache.set("k", 2, nx=True) is False and cache.get("k") == 1
    assert cache.set("k", 3, xx=True) is True and cache.get("k") == 3
    assert cache.set("other", 3, xx=True) is False and cache.get("other") is None
    assert cache.set("k", 4, timeout=0) is True and cache.get("k") is None, "a timeout of 0 deletes"
    assert cache.set("k", 4, timeout=0, nx=True) is True and cache.get("k") is None, "nx stores nothing"
    with pytest.raises(ValueError):
        cache.incr("counter")
    assert cache.incr("counter", 5, ignore_key_check=True) == 5 and cache.incr("counter") == 6
    assert cache.decr("counter", 2) == 4
    with pytest.raises(ValueError, match="nx and xx"):
        cache.set("k", 1, nx=True, xx=True)


def test_expiry_helpers(cache: RedimoCache) -> None:
    cache.set("k", "v", timeout=None)
    assert cache.pexpire("k", 20_000) is True and 19_000 < cache.pttl("k") <= 20_000
    assert cache.pexpire("k", timedelta(seconds=30)) and 29_000 < cache.pttl("k") <= 30_000
    at = datetime.now(timezone.utc) + timedelta(seconds=60)
    assert cache.pexpire_at("k", at) and 58 <= cache.ttl("k") <= 60
    assert cache.pexpire("missing", 1000) is False and cache.pexpire_at("missing", at) is False


def test_client_and_connection(cache: RedimoCache, settings: Any) -> None:
    raw = cache.client.get_client()
    assert isinstance(raw, Redimo) and raw is cache.get_client() and cache.client.get_client(write=False) is raw
    cache.set("k", 7)
    made = cache.client.make_key("k")
    assert made == "site:2:k" and raw.get(made) == b"7" and raw.ttl(made) > 0
    assert cache.client.decode(cache.client.encode({"a": 1})) == {"a": 1}
    assert cache.client.get("k") == 7, "the client's other methods are the cache's"
    with pytest.raises(ValueError, match="client="):
        cache.get("k", client=object())
    assert cache.get("k", client=raw) == 7
    settings.CACHES = {"default": {"BACKEND": "redimo_django.cache.RedimoCache", "LOCATION": cache._table,
                                   "OPTIONS": {"CLIENT_FACTORY": lambda: raw.gateway.client,
                                               "NAMESPACE": cache.namespace}}}
    from redimo_django import get_redis_connection

    connection = get_redis_connection("default")
    assert isinstance(connection, Redimo) and connection.engine.db.namespace == cache.namespace


def test_set_helpers(cache: RedimoCache) -> None:
    assert cache.sadd("s", 1, "two", (3,)) == 3 and cache.sadd("s", 1) == 0
    assert cache.smembers("s") == {1, "two", (3,)} and cache.scard("s") == 3
    assert cache.sismember("s", "two") and not cache.sismember("s", "nope")
    assert cache.smismember("s", 1, "nope") == [True, False]
    assert spent(cache, lambda: cache.sadd("s", "new"))[1] == {"update_item": 1}, "SADD's own cost"
    assert cache.srem("s", "new", "absent") == 1
    cache.sadd("t", "two", 9)
    assert cache.sinter("s", "t") == {"two"} and cache.sunion("s", "t") == {1, "two", (3,), 9}
    assert cache.sdiff("s", "t") == {1, (3,)}
    assert cache.sinterstore("both", "s", "t") == 1 and cache.smembers("both") == {"two"}
    assert cache.sunionstore("all", "s", "t") == 4 and cache.sdiffstore("only", "s", "t") == 2
    assert cache.smove("s", "t", 1) and cache.sismember("t", 1)
    assert cache.srandmember("s") in {"two", (3,)} and len(cache.srandmember("s", -5)) == 5
    assert cache.sscan("t") == {"two", 9, 1} and set(cache.sscan_iter("t")) == {"two", 9, 1}
    assert cache.spop("empty") is None and cache.spop("s", 5) == {"two", (3,)} and cache.scard("s") == 0


def test_hash_helpers(cache: RedimoCache) -> None:
    assert cache.hset("h", "a", {"x": 1}) == 1 and cache.hset("h", mapping={"b": 2, "c": "three"}) == 2
    assert cache.hlen("h") == 3 and sorted(cache.hkeys("h")) == ["a", "b", "c"]
    assert cache.hexists("h", "a") and not cache.hexists("h", "z")
    assert cache.hdel("h", "a") == 1 and cache.hdel("h", "a") == 0
    raw, made = cache.client.get_client(), cache.make_key("h")
    assert cache.decode(raw.hget(made, "c")) == "three" and raw.hget(made, "b") == b"2"


def test_sorted_set_helpers(cache: RedimoCache) -> None:
    assert cache.zadd("z", {"a": 1, "b": 2, 3: 3.5}) == 3 and cache.zcard("z") == 3
    assert cache.zadd("z", {"a": 10}, xx=True, ch=True) == 1 and cache.zscore("z", "a") == 10
    assert cache.zadd("z", {"b": 1}, incr=True) == 3.0 and cache.zincrby("z", 0.5, "b") == 3.5
    assert cache.zrange("z", 0, -1) == [3, "b", "a"] or cache.zrange("z", 0, -1) == ["b", 3, "a"]
    assert cache.zrange("z", 0, 0, withscores=True)[0][1] == 3.5
    assert cache.zrevrange("z", 0, 0) == ["a"] and cache.zrank("z", "a") == 2
    assert cache.zcount("z", 3, 4) == 2 and cache.zrangebyscore("z", 10, 10) == ["a"]
    assert cache.zrevrangebyscore("z", "+inf", 10, withscores=True) == [("a", 10.0)]
    assert cache.zpopmax("z") == ("a", 10.0) and cache.zpopmin("z", 5)[0][1] == 3.5
    assert cache.zpopmin("z") is None and cache.zpopmax("z", 2) == []
    cache.zadd("z", {"x": 1, "y": 5})
    assert cache.zremrangebyscore("z", 0, 2) == 1 and cache.zrem("z", "y", "absent") == 1 and cache.zcard("z") == 0
    assert cache.client.get_client().zrange(cache.make_key("z"), 0, -1) == []


def test_django_redis_option_names(store, caplog: pytest.LogCaptureFixture) -> None:
    from django.core.exceptions import ImproperlyConfigured

    def make(**options: Any) -> RedimoCache:
        return RedimoCache(store.table, {"OPTIONS": {"CLIENT_FACTORY": lambda: store.client, **options}})

    with caplog.at_level(logging.WARNING, logger="redimo_django.cache"):  # whatever earlier tests set
        cache = make(COMPRESSOR="django_redis.compressors.zlib.ZlibCompressor", COMPRESS_MIN_LENGTH=10,
                     SERIALIZER="django_redis.serializers.pickle.PickleSerializer",
                     CLIENT_CLASS="django_redis.client.DefaultClient", SOCKET_TIMEOUT=5)
    assert cache._serializer.codec.name == "zlib"
    assert "SOCKET_TIMEOUT does not apply" in caplog.text and "read_timeout" in caplog.text
    assert make(COMPRESSOR="django_redis.compressors.identity.IdentityCompressor")._serializer.codec is None
    for options, message in (({"CLIENT_CLASS": "django_redis.client.ShardClient"}, "no counterpart"),
                             ({"SERIALIZER": "django_redis.serializers.dill.DillSerializer"}, "no counterpart"),
                             ({"SERIALIZER": "yaml"}, "must be one of"),
                             ({"COMPRESSOR": "django_redis.compressors.gzip.GzipCompressor"}, "no counterpart")):
        with pytest.raises(ImproperlyConfigured, match=message):
            make(**options)


def test_client_and_prefix_arguments(cache: RedimoCache) -> None:
    raw = cache.client.get_client()
    cache.set("k", 1)
    assert cache.has_key("k", client=raw) and cache.ttl("k", client=raw) > 0 and cache.touch("k", 100, client=raw)
    assert cache.get_many(["k"], client=raw) == {"k": 1} and cache.keys("k", client=raw) == ["k"]
    with pytest.raises(ValueError, match="client="):
        cache.delete("k", client=object())
    raw.set("other:2:k", b"5")
    assert cache.delete("k", prefix="other") is True and raw.exists("other:2:k") == 0 and cache.get("k") == 1


@pytest.mark.parametrize("serializer", ["django_redis.serializers.json.JSONSerializer", "json",
                                        "django_redis.serializers.msgpack.MSGPackSerializer", "msgpack"])
def test_json_and_msgpack_serializers(store, serializer: str) -> None:
    from decimal import Decimal

    cache = RedimoCache(store.table, {"OPTIONS": {"CLIENT_FACTORY": lambda: store.client, "SERIALIZER": serializer,
                                                  "COMPRESSOR": "zlib", "COMPRESS_MIN_LENGTH": 100,
                                                  "NAMESPACE": f"django-{uuid.uuid4().hex}"}})
    value = {"name": "Ada", "tags": ["a", "b"], "n": 1.5, "big": "x" * 500}
    cache.set("k", value)
    assert cache.get("k") == value and cache._serializer.format in ("json", "msgpack")
    raw = cache.get_client().get(cache.make_key("k"))
    assert raw[:1] == b"\x01", "compressed past COMPRESS_MIN_LENGTH"
    cache.set("n", 5)
    assert cache.incr("n", 2) == 7 and cache.get("n") == 7, "ints are digits in every format"
    for plain in ("text", -2.5, True, None, [1, 2]):
        cache.set("p", plain)
        assert cache.get("p") == plain
    if cache._serializer.format == "json":
        cache.set("d", Decimal("1.25"))
        assert cache.get("d") == "1.25", "Django's JSON encoder turns a Decimal into a string, as django-redis"
