"""django-redis 7's cache API on ``RedimoCache`` (docs/django-cache.md, "Switching from django-redis"):
``set(nx=, xx=)``, ``incr(ignore_key_check=)``, ``pexpire``, ``pexpire_at``, the set, hash and
sorted-set helpers, and ``cache.client`` with ``get_client()``.

Keys are made as Django makes them (KEY_PREFIX, VERSION, KEY_FUNCTION); members and values are
serialized as the cache's values are: an int as its digits (not for sorted-set members, as in
django-redis), anything else pickled. Each helper is one Redis command on the cache's ``redimo.Redimo``
and costs what that command costs (docs/commands.md). ``client=`` is accepted for django-redis's
signatures: None or this cache's own client.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Callable, Iterator, Mapping, TypeVar

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.exceptions import ImproperlyConfigured
from django.utils.functional import cached_property

from redis.client import Pipeline

from redimo import Redimo

logger = logging.getLogger("redimo_django.cache")
Method = TypeVar("Method", bound=Callable[..., Any])

COMPRESSORS = {  # django-redis's compressor classes, by the Redimo COMPRESSOR they map to
    "django_redis.compressors.identity.IdentityCompressor": None,
    "django_redis.compressors.zlib.ZlibCompressor": "zlib",
    "django_redis.compressors.zstd.ZStdCompressor": "zstd",
    "django_redis.compressors.lz4.Lz4Compressor": "lz4",
}
SERIALIZERS = {  # django-redis's serializer classes, by the Redimo SERIALIZER they map to (ints: digits)
    "django_redis.serializers.pickle.PickleSerializer": "pickle",
    "django_redis.serializers.json.JSONSerializer": "json",
    "django_redis.serializers.msgpack.MSGPackSerializer": "msgpack",
}
CLIENT_CLASSES = {"django_redis.client.DefaultClient", "django_redis.client.default.DefaultClient"}
IGNORED = {  # django-redis options with no meaning on DynamoDB: what to use instead
    "CONNECTION_POOL_KWARGS": "boto3 pools connections itself; use CLIENT_FACTORY to pass a botocore Config",
    "CONNECTION_POOL_CLASS": "boto3 pools connections itself",
    "CONNECTION_POOL_CLASS_KWARGS": "boto3 pools connections itself",
    "SOCKET_CONNECT_TIMEOUT": "use CLIENT_FACTORY with botocore's Config(connect_timeout=...)",
    "SOCKET_TIMEOUT": "use CLIENT_FACTORY with botocore's Config(read_timeout=...)",
    "PASSWORD": "DynamoDB uses AWS credentials from boto3's chain (or CLIENT_FACTORY)",
    "USERNAME": "DynamoDB uses AWS credentials from boto3's chain (or CLIENT_FACTORY)",
    "PARSER_CLASS": "there is no Redis protocol to parse",
    "REDIS_CLIENT_CLASS": "the client is redimo.Redimo",
    "REDIS_CLIENT_KWARGS": "give Redimo's options as RedimoCache OPTIONS",
    "CLOSE_CONNECTION": "there is no connection to close: each request is self-contained",
}


def django_redis_options(options: dict) -> dict:
    """RedimoCache OPTIONS with django-redis's names mapped: COMPRESSOR and SERIALIZER given as
    django-redis's dotted paths, CLIENT_CLASS (only the default client), and a warning for each
    option that has no meaning on DynamoDB. An option whose silent omission would change behaviour
    raises ImproperlyConfigured."""
    options = dict(options)
    compressor = options.get("COMPRESSOR")
    if isinstance(compressor, str) and compressor.startswith("django_redis."):
        if compressor not in COMPRESSORS:
            raise ImproperlyConfigured(f"RedimoCache: no counterpart for the compressor {compressor}; use "
                                       f"{', '.join(repr(name) for name in COMPRESSORS)} or Redimo's zlib, zstd, lz4")
        options["COMPRESSOR"] = COMPRESSORS[compressor]
    serializer = options.get("SERIALIZER")
    if isinstance(serializer, str) and serializer.startswith("django_redis."):
        if serializer not in SERIALIZERS:
            raise ImproperlyConfigured(f"RedimoCache: no counterpart for the serializer {serializer}; use "
                                       f"{', '.join(repr(name) for name in SERIALIZERS)} or pickle, json, msgpack")
        options["SERIALIZER"] = SERIALIZERS[serializer]
    client_class = options.pop("CLIENT_CLASS", None)
    if client_class is not None and client_class not in CLIENT_CLASSES:
        raise ImproperlyConfigured(f"RedimoCache: CLIENT_CLASS {client_class!r} has no counterpart: there is one "
                                   "DynamoDB table, no shards, replicas or herd to choose between")
    for name, instead in IGNORED.items():
        if name in options:
            options.pop(name)
            logger.warning("RedimoCache: the django-redis option %s does not apply and is ignored: %s", name, instead)
    return options


def costs(command: str) -> Callable[[Method], Method]:
    """Says in a helper's docstring which Redis command it runs, and so what it costs."""
    page = {"S": "sets", "H": "hashes", "Z": "zsets"}[command[0]]

    def mark(method: Method) -> Method:
        note = f"Runs {command} on the made key, at its cost (docs/reference/{page}.md)."
        method.__doc__ = f"{method.__doc__}\n\n{note}" if method.__doc__ else note
        return method
    return mark


class DjangoRedisClient:
    """``cache.client``: what django-redis code reaches for. ``get_client()`` returns the cache's
    ``redimo.Redimo``; every other public method is the cache's own."""

    def __init__(self, cache: Any) -> None:
        self._backend = cache
        self._serializer = cache._serializer  # read by code that picks behaviour by serializer

    def _has_compression_enabled(self) -> bool:
        return self._serializer.codec is not None

    def close(self, **kwargs: Any) -> None:
        """Nothing to release (see RedimoCache.close)."""

    def get_client(self, write: bool = True, tried: Any = None, show_index: bool = False) -> Any:
        """The cache's ``redimo.Redimo`` (one store: reads and writes alike)."""
        return (self._backend.get_client(), 0) if show_index else self._backend.get_client()

    def make_key(self, key: Any, version: int | None = None, prefix: str | None = None) -> str:
        if prefix is None:
            return self._backend.make_key(key, version=version)
        version = self._backend.version if version is None else version
        return self._backend.key_func(key, prefix, version)

    def encode(self, value: Any, allow_int: bool = True) -> bytes:
        return self._backend.encode(value, allow_int)

    def decode(self, value: bytes) -> Any:
        return self._backend.decode(value)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._backend, name)


class DjangoRedisAPI:
    """The django-redis methods of ``RedimoCache`` (mixed into it)."""

    default_timeout: float | None
    make_and_validate_key: Callable[..., str]
    persist: Callable[..., bool]
    has_key: Callable[..., bool]
    get_client: Callable[[], Redimo]
    _call: Callable[..., Any]
    _serializer: Any
    _cache: Any

    @cached_property
    def client(self) -> DjangoRedisClient:
        return DjangoRedisClient(self)

    # -- values and keys ----------------------------------------------------------------------
    def encode(self, value: Any, allow_int: bool = True) -> bytes:
        """A member or value as stored (django-redis's ``encode``)."""
        return self._serializer.dumps(value, allow_int)

    def decode(self, data: bytes) -> Any:
        return self._serializer.loads(data)

    def _own(self, client: Any, pipeline: bool = False) -> Any:
        """The client to run on: this cache's ``redimo.Redimo``, or (where ``pipeline``, as for set())
        a pipeline of it given as ``client=``."""
        own = self.get_client()
        if client is None or client is own:
            return own
        if pipeline and isinstance(client, Pipeline) and client.connection_pool is own.connection_pool:
            return client
        raise ValueError("RedimoCache: client= must be None or this cache's own client (cache.client.get_client())"
                         + (", or a pipeline of it" if pipeline else ""))

    def _run(self, fallback: Any, client: Any, function: Callable[[Redimo], Any]) -> Any:
        """``function(redimo)``, with IGNORE_EXCEPTIONS applied as to Django's methods."""
        redimo = self._own(client)

        def run() -> Any:
            return function(redimo)

        run.__name__ = getattr(function, "__name__", "run")
        return self._call(fallback, run)

    def _key(self, key: Any, version: int | None) -> str:
        return self.make_and_validate_key(key, version=version)

    def _decoded(self, values: Any) -> set:
        return {self.decode(value) for value in values}

    def _decode_reply(self, reply: Any, container: type) -> Any:
        """A reply of one member or None, or of several (``count`` given): decoded into ``container``."""
        if isinstance(reply, list):
            return container(self.decode(value) for value in reply)
        return None if reply is None else self.decode(reply)

    # -- strings and expiry -------------------------------------------------------------------
    def pexpire(self, key: Any, timeout: Any, version: int | None = None, client: Any = None) -> bool:
        """PEXPIRE: milliseconds (or a timedelta; DEFAULT_TIMEOUT: the cache's default timeout); False for
        a missing key. 1 conditional UpdateItem."""
        if timeout is DEFAULT_TIMEOUT:
            timeout = None if self.default_timeout is None else int(self.default_timeout * 1000)
        if timeout is None:
            return self.persist(key, version) or self.has_key(key, version)
        made = self._key(key, version)
        return self._run(False, client, lambda r: bool(r.pexpire(made, timeout)))

    def pexpire_at(self, key: Any, when: datetime | int, version: int | None = None, client: Any = None) -> bool:
        """PEXPIREAT: a datetime, or Unix time in milliseconds. 1 conditional UpdateItem."""
        made = self._key(key, version)
        return self._run(False, client, lambda r: bool(r.pexpireat(made, when)))

    # -- sets ---------------------------------------------------------------------------------
    @costs("SADD")
    def sadd(self, key: Any, *values: Any, version: int | None = None, client: Any = None) -> int:
        made, members = self._key(key, version), [self.encode(value) for value in values]
        return self._run(0, client, lambda r: int(r.sadd(made, *members)))

    @costs("SREM")
    def srem(self, key: Any, *values: Any, version: int | None = None, client: Any = None) -> int:
        made, members = self._key(key, version), [self.encode(value) for value in values]
        return self._run(0, client, lambda r: int(r.srem(made, *members)))

    @costs("SCARD")
    def scard(self, key: Any, version: int | None = None, client: Any = None) -> int:
        made = self._key(key, version)
        return self._run(0, client, lambda r: int(r.scard(made)))

    @costs("SISMEMBER")
    def sismember(self, key: Any, member: Any, version: int | None = None, client: Any = None) -> bool:
        made, encoded = self._key(key, version), self.encode(member)
        return self._run(False, client, lambda r: bool(r.sismember(made, encoded)))

    @costs("SMISMEMBER")
    def smismember(self, key: Any, *members: Any, version: int | None = None, client: Any = None) -> list[bool]:
        made, encoded = self._key(key, version), [self.encode(member) for member in members]
        return self._run([False] * len(members), client, lambda r: [bool(found) for found in r.smismember(made, encoded)])

    @costs("SMEMBERS")
    def smembers(self, key: Any, version: int | None = None, client: Any = None) -> set:
        made = self._key(key, version)
        return self._run(set(), client, lambda r: self._decoded(r.smembers(made)))

    @costs("SMOVE")
    def smove(self, source: Any, destination: Any, member: Any, version: int | None = None, client: Any = None) -> bool:
        made_source, made_destination = self._key(source, version), self._key(destination, None)
        encoded = self.encode(member)
        return self._run(False, client, lambda r: bool(r.smove(made_source, made_destination, encoded)))

    @costs("SPOP")
    def spop(self, key: Any, count: int | None = None, version: int | None = None, client: Any = None) -> Any:
        """One member (None when empty), or a set of ``count``."""
        made = self._key(key, version)
        return self._run(None, client, lambda r: self._decode_reply(r.spop(made, count), set))

    @costs("SRANDMEMBER")
    def srandmember(self, key: Any, count: int | None = None, version: int | None = None, client: Any = None) -> Any:
        """One member (None when empty), or a list of ``count`` (repeating for a negative count)."""
        made = self._key(key, version)
        return self._run(None, client, lambda r: self._decode_reply(r.srandmember(made, count), list))

    @costs("SSCAN")
    def sscan(self, key: Any, match: str | None = None, count: int | None = 10, version: int | None = None,
              client: Any = None) -> set:
        """The members SSCAN's first page returns (MATCH against the stored bytes)."""
        made = self._key(key, version)
        pattern = self._member_pattern(match)
        return self._run(set(), client, lambda r: self._decoded(r.sscan(made, match=pattern, count=count)[1]))

    @costs("SSCAN")
    def sscan_iter(self, key: Any, match: str | None = None, count: int | None = 10, version: int | None = None,
                   client: Any = None) -> Iterator[Any]:
        made = self._key(key, version)
        pattern = self._member_pattern(match)
        for value in self._own(client).sscan_iter(made, match=pattern, count=count):
            yield self.decode(value)

    def _member_pattern(self, match: str | None) -> bytes | None:
        if match and self._serializer.codec is not None:
            raise ValueError("Using match with compression is not supported.")
        return self.encode(match) if match else None

    def _combine(self, command: str, keys: tuple, version: int | None, client: Any) -> set:
        made = [self._key(key, version) for key in keys]
        return self._run(set(), client, lambda r: self._decoded(getattr(r, command)(*made)))

    @costs("SDIFF")
    def sdiff(self, *keys: Any, version: int | None = None, client: Any = None) -> set:
        return self._combine("sdiff", keys, version, client)

    @costs("SINTER")
    def sinter(self, *keys: Any, version: int | None = None, client: Any = None) -> set:
        return self._combine("sinter", keys, version, client)

    @costs("SUNION")
    def sunion(self, *keys: Any, version: int | None = None, client: Any = None) -> set:
        return self._combine("sunion", keys, version, client)

    def _store(self, command: str, dest: Any, keys: tuple, dest_version: int | None, keys_version: int | None,
               client: Any) -> int:
        made_dest, made = self._key(dest, dest_version), [self._key(key, keys_version) for key in keys]
        return self._run(0, client, lambda r: int(getattr(r, command)(made_dest, *made)))

    @costs("SDIFFSTORE")
    def sdiffstore(self, dest: Any, *keys: Any, version_dest: int | None = None, version_keys: int | None = None,
                   client: Any = None) -> int:
        return self._store("sdiffstore", dest, keys, version_dest, version_keys, client)

    @costs("SINTERSTORE")
    def sinterstore(self, dest: Any, *keys: Any, version: int | None = None, client: Any = None) -> int:
        return self._store("sinterstore", dest, keys, version, version, client)

    @costs("SUNIONSTORE")
    def sunionstore(self, destination: Any, *keys: Any, version: int | None = None, client: Any = None) -> int:
        return self._store("sunionstore", destination, keys, version, version, client)

    # -- hashes -------------------------------------------------------------------------------
    @costs("HSET")
    def hset(self, key: Any, field: Any = None, value: Any = None, mapping: Mapping | None = None,
             version: int | None = None, client: Any = None) -> int:
        """HSET of one field or a mapping (values serialized, fields as given); the new fields' count."""
        made = self._key(key, version)
        encoded = {} if mapping is None else {name: self.encode(item) for name, item in mapping.items()}
        single = self.encode(value) if value is not None else None
        return self._run(0, client, lambda r: int(r.hset(made, key=field, value=single, mapping=encoded or None)))

    @costs("HDEL")
    def hdel(self, key: Any, field: Any, version: int | None = None, client: Any = None) -> int:
        made = self._key(key, version)
        return self._run(0, client, lambda r: int(r.hdel(made, field)))

    @costs("HLEN")
    def hlen(self, key: Any, version: int | None = None, client: Any = None) -> int:
        made = self._key(key, version)
        return self._run(0, client, lambda r: int(r.hlen(made)))

    @costs("HKEYS")
    def hkeys(self, key: Any, version: int | None = None, client: Any = None) -> list[str]:
        made = self._key(key, version)
        return self._run([], client, lambda r: [field.decode() for field in r.hkeys(made)])

    @costs("HEXISTS")
    def hexists(self, key: Any, field: Any, version: int | None = None, client: Any = None) -> bool:
        made = self._key(key, version)
        return self._run(False, client, lambda r: bool(r.hexists(made, field)))

    # -- sorted sets --------------------------------------------------------------------------
    @costs("ZADD")
    def zadd(self, key: Any, mapping: Mapping[Any, float], nx: bool = False, xx: bool = False, ch: bool = False,
             incr: bool = False, gt: bool = False, lt: bool = False, version: int | None = None,
             client: Any = None) -> Any:
        """ZADD (members always pickled, as django-redis does): the count, or with ``incr`` the score."""
        made = self._key(key, version)
        encoded = {self.encode(member, allow_int=False): score for member, score in mapping.items()}
        return self._run(0, client, lambda r: r.zadd(made, encoded, nx=nx, xx=xx, ch=ch, incr=incr, gt=gt, lt=lt))

    @costs("ZCARD")
    def zcard(self, key: Any, version: int | None = None, client: Any = None) -> int:
        made = self._key(key, version)
        return self._run(0, client, lambda r: r.zcard(made))

    @costs("ZCOUNT")
    def zcount(self, key: Any, min: float | str, max: float | str, version: int | None = None,
               client: Any = None) -> int:
        made = self._key(key, version)
        return self._run(0, client, lambda r: r.zcount(made, min, max))

    @costs("ZINCRBY")
    def zincrby(self, key: Any, amount: float, value: Any, version: int | None = None, client: Any = None) -> float:
        made, member = self._key(key, version), self.encode(value, allow_int=False)
        return self._run(None, client, lambda r: r.zincrby(made, amount, member))

    @costs("ZSCORE")
    def zscore(self, key: Any, member: Any, version: int | None = None, client: Any = None) -> float | None:
        made, encoded = self._key(key, version), self.encode(member, allow_int=False)
        return self._run(None, client, lambda r: r.zscore(made, encoded))

    @costs("ZRANK")
    def zrank(self, key: Any, value: Any, withscore: bool = False, version: int | None = None,
              client: Any = None) -> Any:
        made, member = self._key(key, version), self.encode(value, allow_int=False)
        return self._run(None, client, lambda r: r.zrank(made, member, withscore=withscore))

    @costs("ZREM")
    def zrem(self, key: Any, *values: Any, version: int | None = None, client: Any = None) -> int:
        made, members = self._key(key, version), [self.encode(value, allow_int=False) for value in values]
        return self._run(0, client, lambda r: r.zrem(made, *members))

    @costs("ZREMRANGEBYSCORE")
    def zremrangebyscore(self, key: Any, min: float | str, max: float | str, version: int | None = None,
                         client: Any = None) -> int:
        made = self._key(key, version)
        return self._run(0, client, lambda r: r.zremrangebyscore(made, min, max))

    def _pop(self, command: str, key: Any, count: int | None, version: int | None, client: Any) -> Any:
        made = self._key(key, version)

        def pop(r: Redimo) -> Any:
            popped = [(self.decode(member), score) for member, score in getattr(r, command)(made, count)]
            if count is None:
                return popped[0] if popped else None
            return popped
        return self._run(None if count is None else [], client, pop)

    @costs("ZPOPMIN")
    def zpopmin(self, key: Any, count: int | None = None, version: int | None = None, client: Any = None) -> Any:
        return self._pop("zpopmin", key, count, version, client)

    @costs("ZPOPMAX")
    def zpopmax(self, key: Any, count: int | None = None, version: int | None = None, client: Any = None) -> Any:
        return self._pop("zpopmax", key, count, version, client)

    def _members(self, withscores: bool) -> Callable[[list], list]:
        if withscores:
            return lambda reply: [(self.decode(member), score) for member, score in reply]
        return lambda reply: [self.decode(member) for member in reply]

    @costs("ZRANGE")
    def zrange(self, key: Any, start: int, end: int, desc: bool = False, withscores: bool = False,
               score_cast_func: type = float, version: int | None = None, client: Any = None) -> list:
        made, decode = self._key(key, version), self._members(withscores)
        return self._run([], client, lambda r: decode(r.zrange(made, start, end, desc=desc, withscores=withscores,
                                                                 score_cast_func=score_cast_func)))

    @costs("ZREVRANGE")
    def zrevrange(self, key: Any, start: int, end: int, withscores: bool = False, score_cast_func: type = float,
                  version: int | None = None, client: Any = None) -> list:
        made, decode = self._key(key, version), self._members(withscores)
        return self._run([], client, lambda r: decode(r.zrevrange(made, start, end, withscores=withscores,
                                                                    score_cast_func=score_cast_func)))

    @costs("ZRANGEBYSCORE")
    def zrangebyscore(self, key: Any, min: float | str, max: float | str, start: int | None = None,
                      num: int | None = None, withscores: bool = False, score_cast_func: type = float,
                      version: int | None = None, client: Any = None) -> list:
        made, decode = self._key(key, version), self._members(withscores)
        return self._run([], client, lambda r: decode(r.zrangebyscore(
            made, min, max, start=start, num=num, withscores=withscores, score_cast_func=score_cast_func)))

    @costs("ZREVRANGEBYSCORE")
    def zrevrangebyscore(self, key: Any, max: float | str, min: float | str, start: int | None = None,
                         num: int | None = None, withscores: bool = False, score_cast_func: type = float,
                         version: int | None = None, client: Any = None) -> list:
        made, decode = self._key(key, version), self._members(withscores)
        return self._run([], client, lambda r: decode(r.zrevrangebyscore(
            made, max, min, start=start, num=num, withscores=withscores, score_cast_func=score_cast_func)))
