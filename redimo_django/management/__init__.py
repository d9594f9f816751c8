"""Redimo's management commands (``redimo_createtable``, ``redimo_sweep``) and what they share."""

from __future__ import annotations

from django.core.cache import InvalidCacheBackendError, caches
from django.core.management.base import CommandError

from redimo_django.cache import RedimoCache


def redimo_cache(alias: str) -> RedimoCache:
    """The RedimoCache of a CACHES alias, or a CommandError saying why there is none."""
    try:
        cache = caches[alias]
    except InvalidCacheBackendError as error:
        raise CommandError(str(error)) from error
    if not isinstance(cache, RedimoCache):
        raise CommandError(f"The cache '{alias}' is a {type(cache).__name__}, not a RedimoCache")
    return cache
