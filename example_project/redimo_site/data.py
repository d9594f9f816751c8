"""The site's own data (leaderboard, feed, heartbeat, jobs, sign-ins) in the ``data`` namespace."""

from __future__ import annotations

import os

from redimo import Redimo

from . import config

_clients: dict[int, Redimo] = {}


def data() -> Redimo:
    """This process's client (a forked worker child builds its own: no shared HTTP connections)."""
    client = _clients.get(os.getpid())
    if client is None:
        client = _clients[os.getpid()] = Redimo(table=config.TABLE, namespace=config.namespace("data"),
                                                endpoint_url=config.ENDPOINT, decode_responses=True)
    return client
