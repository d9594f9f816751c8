"""A celery-singleton backend on Redimo: ``singleton_backend_class = "redimo_celery.singleton.Backend"``
with ``singleton_backend_url = "redimo://TABLE?namespace=NS"`` (celery-singleton otherwise passes the
broker URL, unless the result backend's is ``redis://``).

Each operation is plain Redis commands, as in celery-singleton's Redis backend: ``lock`` is one
conditional PutItem (SET NX [EX]), ``get`` one GetItem, ``unlock`` one UpdateItem (DEL), and ``clear`` a
KEYS (a Scan of the whole table) and a DEL of the keys found.
"""

from __future__ import annotations

import re
from typing import Any

from celery_singleton.backends.base import BaseBackend

from .connection import CLIENT_OPTIONS, ConfigurationError, parse_url
from .locks import location_client

KWARGS = "singleton_backend_kwargs"


class Backend(BaseBackend):
    """celery-singleton's backend interface; ``kwargs`` (``singleton_backend_kwargs``) may give
    ``namespace``, ``endpoint_url`` and ``region`` (the URL's options win)."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        if not isinstance(url, str) or not url.startswith("redimo://"):
            raise ConfigurationError(f"celery-singleton passed {url!r}: set singleton_backend_url to a "
                                     "redimo://TABLE URL")
        unknown = set(kwargs) - CLIENT_OPTIONS
        if unknown:
            raise ConfigurationError(f"unknown {KWARGS} {sorted(unknown)}; known: {sorted(CLIENT_OPTIONS)}")
        self.location, _ = parse_url(url, kwargs, setting_name=KWARGS)

    @property
    def redis(self) -> Any:
        """This process's client (rebuilt in a forked child)."""
        return location_client(self.location)

    def lock(self, lock: str, task_id: str, expiry: int | None = None) -> bool:
        """Store ``task_id`` under ``lock`` unless it is held: 1 conditional PutItem."""
        return bool(self.redis.set(lock, task_id, nx=True, ex=expiry))

    def unlock(self, lock: str) -> None:
        """DEL: 1 UpdateItem."""
        self.redis.delete(lock)

    def get(self, lock: str) -> str | None:
        """The task id holding ``lock``: 1 GetItem."""
        value = self.redis.get(lock)
        return None if value is None else value.decode()

    def clear(self, key_prefix: str) -> None:
        """Remove every lock under ``key_prefix``: a Scan of the whole table, and a DEL of the keys found."""
        keys = self.redis.keys(re.sub(r"([*?\[\]\\])", r"\\\1", key_prefix) + "*")
        if keys:
            self.redis.delete(*keys)
