"""``redimo://TABLE?option=value`` URLs, and the per-process :class:`~redimo.Redimo` client built
from one, shared by the result backend, the transport, beat and the task locks.

Options come from the URL's query string and from a settings dict (``result_backend_transport_options``
or ``broker_transport_options``); the URL wins. Anything not given comes from boto3's own configuration
(``AWS_ENDPOINT_URL_DYNAMODB``, ``AWS_REGION``, the credentials chain).
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from typing import Any, Iterable
from urllib.parse import parse_qsl, unquote, urlsplit

from redimo import Redimo

SCHEME = "redimo"
DEFAULT_NAMESPACE = "celery"
CLIENT_OPTIONS = frozenset({"namespace", "endpoint_url", "region"})
TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}\Z")


class ConfigurationError(ValueError):
    """A ``redimo://`` URL or its options are wrong."""


@dataclass(frozen=True)
class Location:
    """Where a Celery component keeps its data: a table, a namespace in it, and how to reach DynamoDB."""

    table: str
    namespace: str = DEFAULT_NAMESPACE
    endpoint_url: str | None = None
    region: str | None = None

    def client(self) -> Redimo:
        """A new client (it makes no request until used)."""
        return Redimo(table=self.table, namespace=self.namespace, endpoint_url=self.endpoint_url,
                      region_name=self.region)


def parse_url(url: str, settings: dict[str, Any] | None = None, extra: Iterable[str] = (),
              setting_name: str = "transport options") -> tuple[Location, dict[str, str]]:
    """The location a ``redimo://TABLE?...`` URL names, and the values of the ``extra`` options the
    caller understands (from the query string, else from ``settings``). Unknown options, a missing or
    malformed table name, or another scheme raise :class:`ConfigurationError`."""
    parts = urlsplit(url)
    if parts.scheme != SCHEME:
        raise ConfigurationError(f"not a redimo:// URL: {url!r}")
    table = unquote(parts.netloc or parts.path.lstrip("/"))
    if not table:
        raise ConfigurationError(f"{url!r} names no table: write redimo://TABLE")
    if not TABLE_NAME.match(table):
        raise ConfigurationError(f"{table!r} is not a DynamoDB table name (3 to 255 of A-Z a-z 0-9 _ . -)")
    known = CLIENT_OPTIONS | set(extra)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    options: dict[str, Any] = {}
    for source, values in ((setting_name, settings or {}), ("the URL", query)):
        for name, value in values.items():
            if name not in known:
                if source != "the URL":
                    continue  # transport options are shared with other components; only the URL is ours alone
                raise ConfigurationError(f"unknown option {name!r} in {source} {url!r}; "
                                         f"known: {', '.join(sorted(known))}")
            options[name] = value
    location = Location(table, str(options.pop("namespace", DEFAULT_NAMESPACE)),
                        options.pop("endpoint_url", None), options.pop("region", None))
    if not location.namespace or "\x00" in location.namespace:
        raise ConfigurationError(f"bad namespace {location.namespace!r}")
    return location, options


class ClientHolder:
    """A lazily built client for one location, rebuilt in a forked child so that a prefork worker
    never shares its parent's HTTP connections."""

    def __init__(self, location: Location) -> None:
        self.location = location
        self._client: Redimo | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def get(self) -> Redimo:
        pid = os.getpid()
        if self._client is None or self._pid != pid:
            with self._lock:
                if self._client is None or self._pid != pid:
                    self._client, self._pid = self.location.client(), pid
        return self._client


def app_client(app: Any) -> Redimo:
    """The Redimo client of a Celery app's ``redimo://`` result backend (else of its ``redimo://``
    broker), for the task locks and beat. Raises :class:`ConfigurationError` when neither is Redimo."""
    for url, setting in ((app.conf.result_backend, "result_backend_transport_options"),
                         (app.conf.broker_url, "broker_transport_options")):
        if isinstance(url, str) and url.startswith(f"{SCHEME}://"):
            return _client_for(url, app.conf.get(setting) or {}, setting)
    raise ConfigurationError("the app's result_backend or broker_url must be a redimo:// URL")


_holders: dict[Location, ClientHolder] = {}
_holders_lock = threading.Lock()


def shared_holder(location: Location) -> ClientHolder:
    """The process-wide client holder of a location (a boto3 client is costly to build)."""
    with _holders_lock:
        return _holders.setdefault(location, ClientHolder(location))


def _client_for(url: str, settings: dict[str, Any], setting_name: str) -> Redimo:
    query = dict(parse_qsl(urlsplit(url).query))  # the component that owns the URL checks its other options
    location, _ = parse_url(url, settings, extra={*settings, *query}, setting_name=setting_name)
    return shared_holder(location).get()
