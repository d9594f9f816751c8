"""A celery-once backend on Redimo: ``app.conf.ONCE = {"backend": "redimo_celery.once.Backend",
"settings": {"url": "redimo://TABLE?namespace=NS", "default_timeout": 3600}}``.

celery-once's ``QueueOnce`` calls ``raise_or_lock`` when a task is queued and ``clear_lock`` after it
has run. Each is plain Redis commands, as in celery-once's Redis backend: ``raise_or_lock`` is one
conditional PutItem (SET NX PX), plus 1 GetItem (PTTL) for a duplicate; ``clear_lock`` is one
UpdateItem (DEL).
"""

from __future__ import annotations

import time
from typing import Any

from celery_once import AlreadyQueued

from .connection import ConfigurationError, parse_url
from .locks import location_client

SETTINGS = "ONCE['settings']"


class Backend:
    """celery-once's backend interface. ``settings``: ``url`` (a ``redimo://`` URL; its
    ``namespace``, ``endpoint_url`` and ``region`` may also be given as settings), and as in
    celery-once's Redis backend ``blocking`` (wait for the lock, default False) and
    ``blocking_timeout`` (seconds, default 1)."""

    def __init__(self, settings: dict[str, Any]) -> None:
        if not settings.get("url"):
            raise ConfigurationError(f"{SETTINGS} needs 'url': a redimo://TABLE URL")
        self.location, _ = parse_url(settings["url"], settings, setting_name=SETTINGS)
        self.blocking = bool(settings.get("blocking", False))
        self.blocking_timeout = float(settings.get("blocking_timeout", 1))

    @property
    def redis(self) -> Any:
        """This process's client (rebuilt in a forked child)."""
        return location_client(self.location)

    def raise_or_lock(self, key: str, timeout: float) -> None:
        """Take the lock for ``timeout`` seconds, or raise celery-once's ``AlreadyQueued`` with the
        seconds it has left: 1 conditional PutItem (+1 GetItem for a duplicate), repeated every
        0.1 s while ``blocking``."""
        deadline = time.monotonic() + self.blocking_timeout
        while True:
            if self.redis.set(key, b"1", nx=True, px=max(1, int(timeout * 1000))):
                return
            remaining = self.redis.pttl(key)
            if remaining == -2:
                continue  # released in between: try again
            if not self.blocking or time.monotonic() + 0.1 > deadline:
                raise AlreadyQueued(remaining / 1000)
            time.sleep(0.1)

    def clear_lock(self, key: str) -> int:
        """Remove the lock: DEL, 1 UpdateItem."""
        return self.redis.delete(key)
