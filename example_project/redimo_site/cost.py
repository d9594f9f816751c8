"""The footer's DynamoDB cost of each request.

The middleware reads the usage counters of every Redimo client a request can use (the cache's, the
sessions', the site's data client and Celery's) before and after the rest of the request, and puts
the difference in place of ``MARKER`` in the page, and in the ``X-DynamoDB-Cost`` header. It is the
outermost middleware, so the session save and a cache_page hit are counted too. The clients are
shared by the server's threads, so requests are served one at a time (a lock): each request's
counters are then its own.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Callable

from django.core.cache import caches
from django.http import HttpRequest, HttpResponse

from redimo.gateway import Gateway
from redimo_celery.connection import app_client
from redimo_django.sessions import SessionStore

from . import celery_app
from .data import data

MARKER = b"<!--dynamodb-cost-->"
_one_at_a_time = threading.Lock()


def gateways() -> list[Gateway]:
    """The gateways of the clients a request may use, each once (clients may share one)."""
    clients = [caches["default"].get_client(), SessionStore.get_client(), data(), app_client(celery_app)]
    return list({id(client.gateway): client.gateway for client in clients}.values())


def describe(requests: Counter, read_units: float, write_units: float) -> str:
    """``4 requests · 2.0 RCU · 1.0 WCU``."""
    count = sum(requests.values())
    return f"{count} request{'' if count == 1 else 's'} · {read_units:.1f} RCU · {write_units:.1f} WCU"


class CostFooterMiddleware:
    """Puts the request's DynamoDB cost in its page footer and its ``X-DynamoDB-Cost`` header."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with _one_at_a_time:
            watched = gateways()
            before = [gateway.usage.snapshot() for gateway in watched]
            response = self.get_response(request)
            spent = [gateway.usage - start for gateway, start in zip(watched, before)]
        requests = sum((usage.requests for usage in spent), Counter())
        text = describe(requests, sum(u.read_units for u in spent), sum(u.write_units for u in spent))
        response["X-DynamoDB-Cost"] = text.replace(" · ", ", ")  # headers are ASCII
        if not response.streaming and MARKER in response.content:
            calls = ", ".join(f"{n} {name.title().replace('_', '')}" for name, n in sorted(requests.items()))
            response.content = response.content.replace(
                MARKER, f'<span title="{calls or "no request"}">{text}</span>'.encode())
            if response.has_header("Content-Length"):
                response["Content-Length"] = str(len(response.content))
        return response
