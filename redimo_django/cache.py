"""``redimo_django.cache.RedimoCache``: Django's cache API on a DynamoDB table, through Redimo.

Modelled on Django's ``django/core/cache/backends/redis.py``: :class:`RedimoCacheClient` does the
storage (made keys in, DynamoDB requests out) and :class:`RedimoCache` is the thin ``BaseCache``
that makes keys, converts timeouts and applies ``IGNORE_EXCEPTIONS``. See docs/django-cache.md.
"""

from __future__ import annotations

import functools
import importlib
import logging
import pickle
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Iterator

from asgiref.sync import sync_to_async
from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache, InvalidCacheKey
from django.core.exceptions import ImproperlyConfigured
from django.utils.functional import cached_property
from django.utils.module_loading import import_string
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from redimo import Redimo, make_client
from redimo.lock import Lock
from redimo.commands import keys as key_commands
from redimo.commands import strings
from redimo.gateway import ConditionFailed
from redimo.glob import glob_match
from redimo.protocol import INT64_MAX, INT64_MIN, ReplyError, canonical_int
from redimo.storage import ABSENT_OR_EXPIRED, MAX_PARTITION_KEY

from .compat import DjangoRedisAPI, django_redis_options

logger = logging.getLogger(__name__)

UNREACHABLE = (RedisConnectionError, RedisTimeoutError)  # what the gateway raises when DynamoDB cannot be reached
MISSING = object()  # "no such key", distinct from a cached None
DEFAULT_NAMESPACE = "django-cache"
DEFAULT_COMPRESS_MIN_LENGTH = 1024
OPTIONS = frozenset({"NAMESPACE", "ENDPOINT_URL", "REGION_NAME", "CLIENT_FACTORY", "CONSISTENT_READS",
                     "SERIALIZER", "COMPRESSOR", "COMPRESS_MIN_LENGTH", "IGNORE_EXCEPTIONS", "LOG_IGNORED_EXCEPTIONS"})
TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}\Z")
KEY_SENTINEL = "\x00redimo-key\x00"  # stands for the user's key when a made key is split into head and tail


# -- storage format -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Codec:
    """A compressor: the marker byte that opens its values and the modules that can provide it."""

    name: str
    marker: int
    modules: tuple[str, ...]
    package: str


CODECS = (Codec("zlib", 0x01, ("zlib",), "zlib"),
          Codec("zstd", 0x02, ("zstandard", "compression.zstd"), "zstandard"),
          Codec("lz4", 0x03, ("lz4.frame",), "lz4"))
CODEC_BY_NAME = {codec.name: codec for codec in CODECS}
CODEC_BY_MARKER = {codec.marker: codec for codec in CODECS}
INT_START = frozenset(b"-0123456789")
PICKLE_START = 0x80  # pickle protocols 2 and later open with the PROTO opcode


def codec_module(codec: Codec) -> Any:
    """The first importable module providing ``compress``/``decompress`` for ``codec``."""
    for name in codec.modules:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImproperlyConfigured(f"the '{codec.name}' compressor needs the {codec.package} package "
                               f"(pip install {codec.package})")


class Serializer:
    """Values as stored: an int64 as its decimal digits (so INCR works natively), anything else in the
    ``format`` (a pickle, opening with 0x80; JSON by orjson; msgpack), compressed when that pays,
    opening then with its codec's marker byte."""

    def __init__(self, compressor: str | None = None, min_length: int = DEFAULT_COMPRESS_MIN_LENGTH,
                 format: str = "pickle") -> None:
        self.codec = CODEC_BY_NAME[compressor] if compressor else None
        self.module = codec_module(self.codec) if self.codec else None
        self.min_length = min_length
        self.format = format
        self.encode, self.decode = FORMATS[format]()

    def dumps(self, value: Any, allow_int: bool = True) -> bytes:
        """``allow_int=False`` encodes ints in the format too (django-redis's sorted-set members)."""
        if allow_int and type(value) is int and INT64_MIN <= value <= INT64_MAX:  # not bool, not a subclass
            return str(value).encode()
        data = self.encode(value)
        if self.codec is not None and len(data) >= self.min_length:
            packed = bytes([self.codec.marker]) + self.module.compress(data)
            if len(packed) < len(data):
                return packed
        return data

    def loads(self, data: bytes) -> Any:
        first = data[0] if data else None
        codec = CODEC_BY_MARKER.get(first)  # type: ignore[arg-type]
        if codec is not None:
            return self.decode(codec_module(codec).decompress(data[1:]))
        if first in INT_START and canonical_int(data) is not None:
            return int(data)
        if self.format == "pickle" and first != PICKLE_START:
            raise ValueError(f"not a RedimoCache value: {data[:16]!r}")
        return self.decode(data)


def _pickle() -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    return lambda value: pickle.dumps(value, pickle.HIGHEST_PROTOCOL), pickle.loads


def _json() -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    """orjson, with Django's JSON encoder for what JSON lacks (Decimal, lazy strings...), as
    django-redis's JSONSerializer does."""
    orjson = _import("orjson", "the json serializer")
    from django.core.serializers.json import DjangoJSONEncoder

    fallback = DjangoJSONEncoder().default
    return lambda value: orjson.dumps(value, default=fallback), orjson.loads


def _msgpack() -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    msgpack = _import("msgpack", "the msgpack serializer")
    return lambda value: msgpack.packb(value, use_bin_type=True), lambda data: msgpack.unpackb(data, raw=False)


def _import(name: str, what: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ImproperlyConfigured(f"{what} needs the {name} package (pip install {name})") from None


FORMATS: dict[str, Callable[[], tuple[Callable[[Any], bytes], Callable[[bytes], Any]]]] = {
    "pickle": _pickle, "json": _json, "msgpack": _msgpack}


# -- the client -----------------------------------------------------------------------------------
class RedimoCacheClient:
    """The storage side: made (str) keys and Python values in, Redimo engine calls out.
    Timeouts are milliseconds to live: None for no expiry, 0 for "already expired"."""

    def __init__(self, redimo: Redimo, serializer: Serializer) -> None:
        self.redimo = redimo
        self.db = redimo.engine.db
        self.serializer = serializer

    @staticmethod
    def _key(key: str) -> bytes:
        return key.encode()

    def _expire_at(self, ttl_ms: int | None) -> int | None:
        return None if ttl_ms is None else self.db.clock() + ttl_ms

    def _load(self, data: bytes | None) -> Any:
        return MISSING if data is None else self.serializer.loads(data)

    def get(self, key: str) -> Any:
        """The value, or MISSING. 1 GetItem."""
        return self._load(self.db.get_string(self._key(key)))

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        """Found values by key: MGET, ceil(n/100) BatchGetItem."""
        found = strings.mget(self.db, [self._key(key) for key in keys])
        return {key: self.serializer.loads(data) for key, data in zip(keys, found) if data is not None}

    def set(self, key: str, value: Any, ttl_ms: int | None) -> bool:
        """SET PX: 1 PutItem (a timeout of 0: 1 UpdateItem, DEL). True."""
        data = self.serializer.dumps(value)
        if ttl_ms == 0:
            self.delete(key)
        else:
            strings.set_string(self.db, self._key(key), data, self._expire_at(ttl_ms), None, False)
        return True

    def add(self, key: str, value: Any, ttl_ms: int | None) -> bool:
        """SET NX PX: 1 conditional PutItem. Already expired: 1 DeleteItem conditional on absence,
        which tells whether the add would have succeeded and stores nothing."""
        data = self.serializer.dumps(value)
        if ttl_ms == 0:
            try:
                old = self.db.gateway.delete(self.db.head_key(self._key(key)), ABSENT_OR_EXPIRED, self.db.now())
            except ConditionFailed:
                return False
            self.db.discard(old)
            return True
        return strings.set_string(self.db, self._key(key), data, self._expire_at(ttl_ms), b"NX", False) is not None

    def replace(self, key: str, value: Any, ttl_ms: int | None) -> bool:
        """SET XX PX: only a live key is replaced. 1 conditional PutItem (a timeout of 0: DEL of a live
        key, 1 UpdateItem)."""
        if ttl_ms == 0:
            return self.delete(key)
        data = self.serializer.dumps(value)
        return strings.set_string(self.db, self._key(key), data, self._expire_at(ttl_ms), b"XX", False) is not None

    def add_or_get(self, key: str, value: Any, ttl_ms: int) -> Any:
        """SET NX GET PX: stores ``value`` unless the key is live; returns the live value, or MISSING
        when ``value`` was stored. 1 conditional PutItem."""
        data = self.serializer.dumps(value)
        old = strings.set_string(self.db, self._key(key), data, self._expire_at(ttl_ms), b"NX", True)
        return self._load(old)

    def set_many(self, data: dict[str, Any], ttl_ms: int | None) -> None:
        """ceil(n/25) BatchWriteItem (1 PutItem for one key); already expired: deletes the keys."""
        mapping = {self._key(key): self.serializer.dumps(value) for key, value in data.items()}
        if ttl_ms == 0:
            key_commands.delete_keys(self.db, list(mapping))
        else:
            strings.write_many(self.db, mapping, self._expire_at(ttl_ms), atomic=False)

    def touch(self, key: str, ttl_ms: int | None) -> bool:
        """Change the expiry of a live key, never creating one: 1 conditional UpdateItem (a time
        already past deletes it as DEL does, also 1 UpdateItem)."""
        if ttl_ms is None:
            return key_commands.remove_expiry(self.db, self._key(key), only_volatile=False)
        return self.expire_at(key, self._expire_at(ttl_ms))  # type: ignore[arg-type]

    def expire_at(self, key: str, at_ms: int) -> bool:
        """PEXPIREAT: 1 conditional UpdateItem (a time already past deletes the key as DEL does)."""
        return bool(key_commands.set_expiry(self.db, self._key(key), at_ms, set()))

    def persist(self, key: str) -> bool:
        """PERSIST: True only when a TTL was removed. 1 conditional UpdateItem."""
        return key_commands.remove_expiry(self.db, self._key(key), only_volatile=True)

    def delete(self, key: str) -> bool:
        """DEL: 1 UpdateItem (the head expired at once, exactly-once)."""
        return bool(key_commands.delete_keys(self.db, [self._key(key)]))

    def delete_many(self, keys: Iterable[str | bytes]) -> int:
        """How many were live: 1 UpdateItem (DEL) for one key, else ceil(n/25) BatchExecuteStatement
        (see keys.delete_keys)."""
        encoded = [key if isinstance(key, bytes) else self._key(key) for key in keys]
        return key_commands.delete_keys(self.db, encoded) if encoded else 0

    def has_key(self, key: str) -> bool:
        """1 GetItem."""
        return self.db.load(self._key(key), "t, x") is not None

    def incr(self, key: str, delta: int, create: bool = False) -> Any:
        """The new value, or None for a missing key (``create``: a missing key starts at 0). An int64
        counter: 1 atomic UpdateItem that keeps the TTL. Any other value (a pickled float, an int past
        int64): 1 GetItem + 1 PutItem conditional on the value being unchanged (retried), also keeping
        the TTL."""
        if INT64_MIN <= delta <= INT64_MAX:
            try:
                return strings.increment(self.db, self._key(key), delta, must_exist=not create)
            except ReplyError:  # not an int64, or the sum overflows int64
                pass
        loads, dumps = self.serializer.loads, self.serializer.dumps
        new = strings.modify_string(self.db, self._key(key), lambda old: dumps(delta) if old is None and create
                                    else None if old is None else dumps(loads(old) + delta))
        return None if new is None else loads(new)

    def move(self, old: str, new: str) -> bool:
        """RENAME, keeping the value bytes and the TTL; False when ``old`` is missing.
        2 GetItem + 1 TransactWriteItems."""
        return key_commands.copy_key(self.db, self._key(old), self.db, self._key(new), replace=True,
                                     move=True) is not None

    def ttl(self, key: str, unit_ms: int) -> int:
        """Redis's TTL (``unit_ms`` 1000) or PTTL (1): -2 missing, -1 no expiry. 1 GetItem."""
        command = key_commands.ttl if unit_ms == 1000 else key_commands.pttl
        return command(self.db, [self._key(key)])

    def keys(self, pattern: bytes) -> list[bytes]:
        """KEYS: a Scan of the whole table, filtered to this namespace."""
        return key_commands.keys(self.db, [pattern])

    def iter_keys(self, pattern: bytes, count: int) -> Iterator[bytes]:
        """SCAN MATCH, one Scan page of ``count`` items examined at a time (paged on DynamoDB's own
        position: the SCAN command's integer cursor cannot hold keys over ~1,780 bytes)."""
        return (key for key in self.db.iter_keys(page_size=count) if glob_match(pattern, key))


    def clear(self) -> None:
        """FLUSHDB of this namespace: a Scan of the whole table and BatchWriteItem deletes."""
        key_commands.flush(self.db, self.db.prefix)


# -- options --------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def shared_client(endpoint_url: str | None, region_name: str | None) -> Any:
    """One boto3 DynamoDB client (thread-safe, pooled) per endpoint and region, shared by the
    per-thread cache instances Django creates."""
    return make_client(endpoint_url=endpoint_url, region_name=region_name)


def _flag(options: dict, name: str, default: bool) -> bool:
    value = options.get(name, default)
    if not isinstance(value, bool):
        raise ImproperlyConfigured(f"RedimoCache OPTIONS['{name}'] must be True or False, not {value!r}")
    return value


def _text(options: dict, name: str, setting: str = "RedimoCache OPTIONS") -> str | None:
    value = options.get(name)
    if value is not None and (not isinstance(value, str) or not value):
        raise ImproperlyConfigured(f"{setting}['{name}'] must be a non-empty string, not {value!r}")
    return value


def client_factory(options: dict, setting: str = "RedimoCache OPTIONS") -> Callable[[], Any]:
    """The boto3 client maker that ``ENDPOINT_URL``/``REGION_NAME`` or ``CLIENT_FACTORY`` in
    ``options`` describe (also used for REDIMO_SESSIONS); ``setting`` names them in errors."""
    factory = options.get("CLIENT_FACTORY")
    endpoint_url, region_name = _text(options, "ENDPOINT_URL", setting), _text(options, "REGION_NAME", setting)
    if factory is None:
        return lambda: shared_client(endpoint_url, region_name)
    if endpoint_url or region_name:
        raise ImproperlyConfigured(f"{setting}: CLIENT_FACTORY configures its own client; "
                                   "do not give ENDPOINT_URL or REGION_NAME with it")
    if isinstance(factory, str):
        try:
            factory = import_string(factory)
        except ImportError as error:
            raise ImproperlyConfigured(f"{setting}['CLIENT_FACTORY']: cannot import {factory!r}: "
                                       f"{error}") from error
    if not callable(factory):
        raise ImproperlyConfigured(f"{setting}['CLIENT_FACTORY'] must be a callable, or the dotted "
                                   f"path of one, returning a boto3 DynamoDB client; got {factory!r}")
    return factory


def glob_escape(text: str) -> str:
    """``text`` as a literal in a Redis glob pattern."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _in_thread(name: str) -> Callable:
    """An async method that runs the sync ``name`` in a thread (so its requests and atomicity are
    the sync method's, not BaseCache's compositions of other async methods)."""

    async def method(self: "RedimoCache", *args: Any, **kwargs: Any) -> Any:
        return await sync_to_async(getattr(self, name), thread_sensitive=True)(*args, **kwargs)

    method.__name__ = method.__qualname__ = f"a{name}"
    method.__doc__ = f"Async {name}(): the same requests as the sync method."
    return method


# -- the backend ----------------------------------------------------------------------------------
class RedimoCache(DjangoRedisAPI, BaseCache):
    """Django's cache on a DynamoDB table: ``LOCATION`` is the table, ``OPTIONS`` as in
    docs/django-cache.md. Backend timeouts are milliseconds, so float timeouts are honoured."""

    def __init__(self, location: str, params: dict[str, Any]) -> None:
        super().__init__(params)
        options = django_redis_options(params.get("OPTIONS") or {})
        unknown = sorted(set(options) - OPTIONS)
        if unknown:
            raise ImproperlyConfigured(f"RedimoCache: unknown OPTIONS {', '.join(unknown)}; "
                                       f"the options are {', '.join(sorted(OPTIONS))}")
        if not isinstance(location, str) or not TABLE_NAME.match(location):
            raise ImproperlyConfigured(f"RedimoCache: LOCATION must name the DynamoDB table (3 to 255 letters, "
                                       f"digits, '_', '-' or '.'), not {location!r}")
        namespace = _text(options, "NAMESPACE") or (
            f"{DEFAULT_NAMESPACE}:{self.key_prefix}" if self.key_prefix else DEFAULT_NAMESPACE)
        if "\x00" in namespace:
            raise ImproperlyConfigured(f"RedimoCache: the namespace cannot contain NUL: {namespace!r}")
        compressor = options.get("COMPRESSOR")
        if compressor is not None and (not isinstance(compressor, str) or compressor not in CODEC_BY_NAME):
            raise ImproperlyConfigured(f"RedimoCache OPTIONS['COMPRESSOR'] must be one of "
                                       f"{', '.join(CODEC_BY_NAME)} or None, not {compressor!r}")
        min_length = options.get("COMPRESS_MIN_LENGTH", DEFAULT_COMPRESS_MIN_LENGTH)
        if type(min_length) is not int or min_length < 0:
            raise ImproperlyConfigured(f"RedimoCache OPTIONS['COMPRESS_MIN_LENGTH'] must be an int >= 0, "
                                       f"not {min_length!r}")
        self._table = location
        self._namespace = namespace
        serializer = options.get("SERIALIZER", "pickle")
        if serializer not in FORMATS:
            raise ImproperlyConfigured(f"RedimoCache OPTIONS['SERIALIZER'] must be one of {', '.join(FORMATS)}, "
                                       f"not {serializer!r}")
        self._serializer = Serializer(compressor, min_length, serializer)
        self._client_factory = client_factory(options)
        self._consistent_reads = _flag(options, "CONSISTENT_READS", True)
        self._ignore_exceptions = _flag(options, "IGNORE_EXCEPTIONS", False)
        self._log_ignored = _flag(options, "LOG_IGNORED_EXCEPTIONS", True)
        self._key_limit = MAX_PARTITION_KEY - len(namespace.encode()) - 1

    @cached_property
    def _cache(self) -> RedimoCacheClient:
        redimo = Redimo(table=self._table, namespace=self._namespace, consistent_reads=self._consistent_reads,
                        client=self._client_factory())
        return RedimoCacheClient(redimo, self._serializer)

    def get_client(self) -> Redimo:
        """The ``redimo.Redimo`` client of this cache's namespace (its ``gateway.usage`` counts requests)."""
        return self._cache.redimo

    @property
    def namespace(self) -> str:
        return self._namespace

    def _call(self, fallback: Any, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)``; with IGNORE_EXCEPTIONS, ``fallback`` when DynamoDB is unreachable."""
        try:
            return function(*args)
        except UNREACHABLE:
            if not self._ignore_exceptions:
                raise
            if self._log_ignored:
                logger.error("RedimoCache %s: DynamoDB unreachable, ignored", function.__name__, exc_info=True)
            return fallback

    # -- keys and timeouts --------------------------------------------------------------------
    def _made(self, key: Any, version: int | None, prefix: str | None) -> str:
        """The made key, with another KEY_PREFIX when ``prefix`` is given (django-redis's delete)."""
        if prefix is None:
            return self.make_and_validate_key(key, version=version)
        made = self.key_func(key, prefix, self.version if version is None else version)
        self.validate_key(made)
        return made

    def validate_key(self, key: str) -> None:
        """Django's memcached portability warnings, and an error past DynamoDB's key size."""
        super().validate_key(key)
        size = len(str(key).encode())
        if size > self._key_limit:
            raise InvalidCacheKey(f"Cache key is too long for DynamoDB: {size} bytes, at most {self._key_limit} "
                                  f"in namespace {self._namespace!r}: {str(key)[:80]!r}...")

    def get_backend_timeout(self, timeout: Any = DEFAULT_TIMEOUT) -> int | None:  # type: ignore[override]
        """Milliseconds to live, 0 meaning "already expired" (timeout 0 or negative), or None for none."""
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        return None if timeout is None else max(0, int(timeout * 1000))

    # -- Django's cache API -------------------------------------------------------------------
    def add(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None,
            client: Any = None) -> bool:
        self._own(client)
        key = self.make_and_validate_key(key, version=version)
        return self._call(False, self._cache.add, key, value, self.get_backend_timeout(timeout))

    def get(self, key: Any, default: Any = None, version: int | None = None, client: Any = None) -> Any:
        self._own(client)
        key = self.make_and_validate_key(key, version=version)
        value = self._call(MISSING, self._cache.get, key)
        return default if value is MISSING else value

    def set(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None,
            client: Any = None, nx: bool = False, xx: bool = False) -> bool:
        """Whether the value was stored (None when DynamoDB was unreachable and ignored, as in
        django-redis): always, unless django-redis's ``nx`` (only if missing) or ``xx`` (only if
        present) says otherwise. A timeout of 0 or less deletes the key (with ``nx``: stores nothing,
        and tells whether the key was missing)."""
        if nx and xx:
            raise ValueError("RedimoCache.set: nx and xx exclude each other")
        target = self._own(client, pipeline=True)
        if target is not self.get_client():  # a pipeline: queued there, as django-redis does
            ttl_ms = self.get_backend_timeout(timeout)
            return bool(target.set(self.make_and_validate_key(key, version=version), self.encode(value), nx=nx,
                                   px=ttl_ms, xx=xx))
        if nx:
            return self.add(key, value, timeout, version)
        made = self.make_and_validate_key(key, version=version)
        ttl_ms = self.get_backend_timeout(timeout)
        if xx:
            return self._call(None, self._cache.replace, made, value, ttl_ms)
        if ttl_ms == 0:
            return self.delete(key, version)
        return self._call(None, self._cache.set, made, value, ttl_ms)

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None, client: Any = None) -> bool:
        self._own(client)
        key = self.make_and_validate_key(key, version=version)
        return self._call(False, self._cache.touch, key, self.get_backend_timeout(timeout))

    def delete(self, key: Any, version: int | None = None, prefix: str | None = None, client: Any = None) -> bool:
        """``prefix``: django-redis's, another KEY_PREFIX than the cache's."""
        self._own(client)
        key = self._made(key, version, prefix)
        return self._call(False, self._cache.delete, key)

    def get_many(self, keys: Iterable[Any], version: int | None = None, client: Any = None) -> dict[Any, Any]:
        self._own(client)
        made = {self.make_and_validate_key(key, version=version): key for key in keys}
        if not made:
            return {}
        found = self._call({}, self._cache.get_many, list(made))
        return {made[key]: value for key, value in found.items()}

    def get_or_set(self, key: Any, default: Any, timeout: Any = DEFAULT_TIMEOUT,
                   version: int | None = None) -> Any:
        """1 GetItem on a hit; on a miss, SET NX GET too, so that a racing writer's value wins."""
        made = self.make_and_validate_key(key, version=version)
        value = self._call(MISSING, self._cache.get, made)
        if value is not MISSING:
            return value
        if callable(default):
            default = default()
        ttl_ms = self.get_backend_timeout(timeout)
        if ttl_ms == 0:
            return default
        existing = self._call(MISSING, self._cache.add_or_get, made, default, ttl_ms)
        return default if existing is MISSING else existing

    def has_key(self, key: Any, version: int | None = None, client: Any = None) -> bool:
        self._own(client)
        key = self.make_and_validate_key(key, version=version)
        return self._call(False, self._cache.has_key, key)

    def incr(self, key: Any, delta: int = 1, version: int | None = None, client: Any = None,
             ignore_key_check: bool = False) -> Any:
        """Atomic; keeps the TTL; ValueError for a missing key (also when DynamoDB is unreachable
        and ignored: the key is then as good as missing), unless django-redis's ``ignore_key_check``,
        which creates it at ``delta`` without expiry (INCRBY)."""
        self._own(client)
        made = self.make_and_validate_key(key, version=version)
        value = self._call(None, self._cache.incr, made, delta, ignore_key_check)
        if value is None:
            raise ValueError(f"Key '{key}' not found")
        return value

    def decr(self, key: Any, delta: int = 1, version: int | None = None, client: Any = None) -> Any:
        return self.incr(key, -delta, version=version, client=client)

    def set_many(self, data: dict[Any, Any], timeout: Any = DEFAULT_TIMEOUT,
                 version: int | None = None, client: Any = None) -> list[Any]:
        """Returns the keys that could not be stored: all of them when DynamoDB was unreachable and
        ignored, else none."""
        self._own(client)
        if not data:
            return []
        made = {self.make_and_validate_key(key, version=version): value for key, value in data.items()}
        failed = self._call(list(data), self._cache.set_many, made, self.get_backend_timeout(timeout))
        return failed or []

    def delete_many(self, keys: Iterable[Any], version: int | None = None, client: Any = None) -> int | None:
        """How many of the keys were live (django-redis's reply; Django ignores it); None when
        DynamoDB was unreachable and ignored."""
        self._own(client)
        made = [self.make_and_validate_key(key, version=version) for key in keys]
        return self._call(None, self._cache.delete_many, made) if made else 0

    def incr_version(self, key: Any, delta: int = 1, version: int | None = None, client: Any = None) -> int:
        """Moves the value to the new version atomically, keeping its TTL (RENAME)."""
        self._own(client)
        version = self.version if version is None else version
        old = self.make_and_validate_key(key, version=version)
        new = self.make_and_validate_key(key, version=version + delta)
        moved = self._call(False, self._cache.move, old, new) if old != new else self.has_key(key, version)
        if not moved:
            raise ValueError(f"Key '{key}' not found")
        return version + delta

    def clear(self) -> bool:
        """Delete every key of this cache's namespace, and nothing else in the table."""
        return self._call(False, self._cache.clear) is None

    def close(self, **kwargs: Any) -> None:
        """Nothing to release: each operation is a self-contained HTTPS request, and the shared boto3
        client keeps its connection pool for the next one (Django calls this after every request).
        Passed on to ``cache.client.close()``, as django-redis does."""
        self.client.close(**kwargs)

    aget_many = _in_thread("get_many")
    aget_or_set = _in_thread("get_or_set")
    ahas_key = _in_thread("has_key")
    aincr = _in_thread("incr")
    adecr = _in_thread("decr")
    aset_many = _in_thread("set_many")
    adelete_many = _in_thread("delete_many")
    aincr_version = _in_thread("incr_version")
    adecr_version = _in_thread("decr_version")

    # -- django-redis's extras ----------------------------------------------------------------
    def ttl(self, key: Any, version: int | None = None, client: Any = None) -> int | None:
        """Seconds to live (rounded as Redis's TTL), None without expiry, 0 for a missing key."""
        self._own(client)
        return self._remaining(key, version, 1000)

    def pttl(self, key: Any, version: int | None = None, client: Any = None) -> int | None:
        """Milliseconds to live, None without expiry, 0 for a missing key."""
        self._own(client)
        return self._remaining(key, version, 1)

    def _remaining(self, key: Any, version: int | None, unit_ms: int) -> int | None:
        made = self.make_and_validate_key(key, version=version)
        left = self._call(-2, self._cache.ttl, made, unit_ms)
        return None if left == -1 else max(left, 0)

    def expire(self, key: Any, timeout: Any, version: int | None = None, client: Any = None) -> bool:
        """touch(), also taking a timedelta: False for a missing key."""
        self._own(client)
        if isinstance(timeout, timedelta):
            timeout = timeout.total_seconds()
        return self.touch(key, timeout, version=version)

    def expire_at(self, key: Any, when: datetime | int | float, version: int | None = None,
                  client: Any = None) -> bool:
        """Expire at a datetime (a naive one is local time, as in redis-py) or a Unix time in seconds."""
        self._own(client)
        seconds = when.timestamp() if isinstance(when, datetime) else when
        made = self.make_and_validate_key(key, version=version)
        return self._call(False, self._cache.expire_at, made, int(seconds * 1000))

    def persist(self, key: Any, version: int | None = None, client: Any = None) -> bool:
        """Remove the expiry; True only if the key had one."""
        self._own(client)
        made = self.make_and_validate_key(key, version=version)
        return self._call(False, self._cache.persist, made)

    def lock(self, key: Any, version: int | None = None, timeout: float | None = None, sleep: float = 0.1,
             blocking_timeout: float | None = None, client: Any = None, thread_local: bool = True,
             blocking: bool = True, auto_renewal: bool = False,
             on_renewal_failure: Callable[..., Any] | None = None) -> Lock:
        """A distributed lock with a fencing token on the made key (django-redis's signature; see
        docs/locks.md). ``client`` is accepted for compatibility and must be None."""
        if client is not None:
            raise ValueError("RedimoCache.lock: there is no other client to choose")
        return self.get_client().lock(self.make_and_validate_key(key, version=version), timeout=timeout, sleep=sleep,
                                      blocking=blocking, blocking_timeout=blocking_timeout, thread_local=thread_local,
                                      auto_renewal=auto_renewal, on_renewal_failure=on_renewal_failure)

    def _pattern(self, search: str, version: int | None, prefix: str | None = None) -> bytes:
        """A glob of made keys: KEY_FUNCTION applied to ``search`` with the prefix and version escaped."""
        version = self.version if version is None else version
        prefix = self.key_prefix if prefix is None else prefix
        return str(self.key_func(search, glob_escape(prefix), glob_escape(str(version)))).encode()

    def _user_key(self, version: int | None) -> Callable[[bytes], str]:
        """The inverse of make_key for one version (KEY_FUNCTION must keep the key verbatim)."""
        made = self.make_key(KEY_SENTINEL, version=version)
        if KEY_SENTINEL not in made:
            raise ImproperlyConfigured("keys(), iter_keys() and delete_pattern() need a KEY_FUNCTION that "
                                       "keeps the key verbatim in the made key")
        head, _, tail = made.partition(KEY_SENTINEL)
        start, cut = len(head.encode()), len(tail.encode())
        return lambda key: key[start:len(key) - cut].decode()

    def keys(self, search: str, version: int | None = None, client: Any = None) -> list[str]:
        """The user keys matching a glob (django-redis's keys()). Scans the whole table."""
        self._own(client)
        user_key = self._user_key(version)
        return [user_key(key) for key in self._call([], self._cache.keys, self._pattern(search, version))]

    def iter_keys(self, search: str, itersize: int | None = None, version: int | None = None,
                  client: Any = None) -> Iterator[str]:
        """keys(), lazily: one Scan page of ``itersize`` items (default 1000) at a time."""
        self._own(client)
        user_key = self._user_key(version)
        pages = self._cache.iter_keys(self._pattern(search, version), itersize or 1000)
        while True:
            key = self._call(MISSING, next, pages, MISSING)
            if key is MISSING:
                return
            yield user_key(key)

    def delete_pattern(self, pattern: str, version: int | None = None, prefix: str | None = None,
                       itersize: int | None = None, client: Any = None) -> int:
        """Delete the keys matching a glob; returns how many were deleted."""
        self._own(client)
        made = self._pattern(pattern, version, prefix)

        def delete() -> int:
            found = list(self._cache.iter_keys(made, itersize or 1000))
            return sum(self._cache.delete_many(found[start:start + 1000]) for start in range(0, len(found), 1000))

        delete.__name__ = "delete_pattern"
        return self._call(0, delete)
