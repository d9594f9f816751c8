"""Django integration: ``redimo_django.cache.RedimoCache``, the sessions, the management commands."""

from __future__ import annotations

from typing import Any


def get_redis_connection(alias: str = "default", write: bool = True) -> Any:
    """The ``redimo.Redimo`` client of a RedimoCache alias, as django-redis's
    ``get_redis_connection`` returns a cache's redis client."""
    from django.core.cache import caches

    cache = caches[alias]
    if not hasattr(cache, "client") or not hasattr(cache.client, "get_client"):
        raise NotImplementedError(f"the cache {alias!r} is not a RedimoCache: it has no client to return")
    return cache.client.get_client(write)
