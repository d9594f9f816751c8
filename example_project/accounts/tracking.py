"""What the sessions page shows of each session: its browser and sign-in time (written at sign-in)
and when it was last seen (written at most every ``SEEN_EVERY`` seconds), in the hash
``user-sessions:<user id>`` of the data namespace: the field ``<key>`` holds JSON, ``<key>:seen`` a time."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from django.http import HttpRequest, HttpResponse

from redimo_django.sessions import SessionStore
from redimo_site.data import data

SEEN_EVERY = 10.0
SEEN_KEY = "_seen_at"  # in the session: when its last-seen time was last written


def hash_key(user_id: object) -> str:
    return f"user-sessions:{user_id}"


def browser(agent: str) -> str:
    """A short name for a user agent: ``Chrome 120 on Linux``."""
    name = next((f"{label} {match.group(1)}" for label, pattern in (
        ("Edge", r"Edg/(\d+)"), ("Firefox", r"Firefox/(\d+)"), ("Headless Chrome", r"HeadlessChrome/(\d+)"),
        ("Chrome", r"Chrome/(\d+)"), ("Safari", r"Version/(\d+).*Safari"))
        if (match := re.search(pattern, agent))), "Unknown browser")
    system = next((label for label, token in (("Android", "Android"), ("iOS", "iPhone"), ("Windows", "Windows"),
                                              ("macOS", "Mac OS X"), ("Linux", "Linux")) if token in agent), None)
    return f"{name} on {system}" if system else name


def record_sign_in(request: HttpRequest) -> None:
    """After login(): the new session's browser and sign-in time (1 HSET)."""
    now = time.time()
    info = {"agent": request.META.get("HTTP_USER_AGENT", ""), "signed_in": now}
    data().hset(hash_key(request.user.pk), mapping={request.session.session_key: json.dumps(info),
                                                    f"{request.session.session_key}:seen": now})
    request.session[SEEN_KEY] = now


def forget(request: HttpRequest) -> None:
    """Before logout(): drop this session's entry (1 HDEL)."""
    if request.user.is_authenticated and request.session.session_key:
        key = request.session.session_key
        data().hdel(hash_key(request.user.pk), key, f"{key}:seen")


@dataclass
class SessionRow:
    key: str
    browser: str
    agent: str
    signed_in: datetime | None
    last_seen: datetime | None
    expires: datetime
    current: bool


def _at(stamp: str | float | None) -> datetime | None:
    return datetime.fromtimestamp(float(stamp), timezone.utc) if stamp is not None else None


def user_sessions(request: HttpRequest) -> list[SessionRow]:
    """The user's live sessions, newest sign-in first; entries of sessions that ended are removed."""
    live = SessionStore.user_sessions(request.user.pk)
    stored = data().hgetall(hash_key(request.user.pk))
    rows = []
    for key, expires in live.items():
        info = json.loads(stored.get(key, "{}"))
        rows.append(SessionRow(key, browser(info.get("agent", "")), info.get("agent", ""),
                               _at(info.get("signed_in")), _at(stored.get(f"{key}:seen")), expires,
                               key == request.session.session_key))
    stale = [field for field in stored if field.split(":")[0] not in live]
    if stale:
        data().hdel(hash_key(request.user.pk), *stale)
    epoch = datetime.min.replace(tzinfo=timezone.utc)
    return sorted(rows, key=lambda row: row.signed_in or epoch, reverse=True)


class LastSeenMiddleware:
    """Records when a signed-in session was last seen, at most every SEEN_EVERY seconds (then: 1 HSET
    and the session's save)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated and request.session.session_key:
            now = time.time()
            if now - request.session.get(SEEN_KEY, 0) >= SEEN_EVERY:
                request.session[SEEN_KEY] = now
                data().hset(hash_key(request.user.pk), f"{request.session.session_key}:seen", now)
        return self.get_response(request)
