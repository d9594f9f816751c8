"""The session engine redimo_django.sessions: Django's SessionBase contract on both stores, the
per-user session map, and a Django test-client flow."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Callable, Iterator

import pytest
from django.contrib.auth.models import User
from django.contrib.sessions.backends.base import CreateError, UpdateError
from django.core import signing
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import Client, override_settings

from redimo_django import sessions
from redimo_django.sessions import SessionStore

import session_site
from conftest import Store


@pytest.fixture
def session_settings(store: Store) -> Iterator[dict]:
    """REDIMO_SESSIONS pointing at the test store, in a namespace of its own."""
    config = {"TABLE": store.table, "NAMESPACE": f"sessions-{uuid.uuid4().hex}",
              "CLIENT_FACTORY": lambda: store.client}
    with override_settings(REDIMO_SESSIONS=config):
        yield config


def requests_of(action: Callable[[], object]) -> int:
    usage = SessionStore.get_client().gateway.usage
    before = usage.total_requests
    action()
    return usage.total_requests - before


def test_create_save_load_round_trip(session_settings: dict) -> None:
    session = SessionStore()
    session["cart"] = [1, 2, 3]
    assert requests_of(session.save) == 1, "create: one conditional PutItem"
    key = session.session_key
    loaded = SessionStore(key)
    assert requests_of(loaded.load) == 1
    assert loaded["cart"] == [1, 2, 3]
    assert requests_of(lambda: loaded.exists(key)) == 1
    loaded["cart"] = [4]
    assert requests_of(loaded.save) == 1
    assert SessionStore(key)["cart"] == [4]
    assert requests_of(lambda: loaded.delete()) == 1
    assert not SessionStore().exists(key)


def test_unknown_expired_and_tampered_sessions_load_empty_and_write_nothing(session_settings: dict) -> None:
    client = SessionStore.get_client()
    unknown = SessionStore("x" * 32)
    before = client.gateway.usage.snapshot()
    assert unknown.load() == {} and unknown.session_key is None
    assert dict((client.gateway.usage - before).requests) == {"get_item": 1}

    tampered_key = "t" * 32
    client.set(tampered_key, signing.dumps({"evil": 1}, key="not-the-secret", salt="x"))
    before = client.gateway.usage.snapshot()
    assert SessionStore(tampered_key).load() == {}
    assert dict((client.gateway.usage - before).requests) == {"get_item": 1}

    expired = SessionStore()
    expired.set_expiry(1)
    expired["x"] = 1
    expired.save()
    shifted = client.engine.db.clock
    client.engine.db.clock = lambda: shifted() + 2000  # two seconds later
    try:
        assert SessionStore(expired.session_key).load() == {}
        assert not SessionStore().exists(expired.session_key)
    finally:
        client.engine.db.clock = shifted


def test_create_never_overwrites_and_retries_collisions(session_settings: dict, monkeypatch) -> None:
    first = SessionStore()
    first["owner"] = "first"
    first.create()
    taken = first.session_key
    keys = iter([taken, taken, "n" * 32])
    monkeypatch.setattr(SessionStore, "_get_new_session_key", lambda self: next(keys))
    second = SessionStore()
    second["owner"] = "second"
    second.create()
    assert second.session_key == "n" * 32
    assert SessionStore(taken)["owner"] == "first"
    third = SessionStore(taken)
    with pytest.raises(CreateError):
        third.save(must_create=True)


def test_save_after_delete_elsewhere_raises_update_error(session_settings: dict) -> None:
    session = SessionStore()
    session["x"] = 1
    session.save()
    here, elsewhere = SessionStore(session.session_key), SessionStore(session.session_key)
    here.get("x"), elsewhere.get("x")  # both requests have loaded the session
    elsewhere.delete()  # a logout in another request
    here["x"] = 2
    with pytest.raises(UpdateError):
        here.save()
    assert not SessionStore().exists(session.session_key), "the deleted session was not brought back"


def test_expiry_follows_get_expiry_age(session_settings: dict) -> None:
    session = SessionStore()
    session.set_expiry(300)
    session["x"] = 1
    session.save()
    client = SessionStore.get_client()
    assert 295 <= client.ttl(session.session_key) <= 300
    default = SessionStore()
    default["x"] = 1
    default.save()
    from django.conf import settings

    assert settings.SESSION_COOKIE_AGE - 5 <= client.ttl(default.session_key) <= settings.SESSION_COOKIE_AGE


def test_clear_expired_costs_nothing_and_clearsessions_runs(session_settings: dict) -> None:
    assert requests_of(SessionStore.clear_expired) == 0
    call_command("clearsessions")


def test_async_methods(session_settings: dict) -> None:
    async def flow() -> None:
        session = SessionStore()
        await session.aset("k", "v")
        await session.acreate()
        await session.asave()
        key = session.session_key
        assert await SessionStore().aexists(key)
        loaded = SessionStore(key)
        assert await loaded.aget("k") == "v"
        await loaded.adelete()
        assert not await SessionStore().aexists(key)
        await SessionStore.aclear_expired()

    asyncio.run(flow())


def test_user_sessions_and_sign_out_everywhere(session_settings: dict) -> None:
    keys = []
    for _ in range(3):
        session = SessionStore()
        session["_auth_user_id"] = "42"
        assert requests_of(session.save) == 2, "create plus one write to the user's map"
        keys.append(session.session_key)
    resaved = SessionStore(keys[0])
    resaved["more"] = 1
    assert requests_of(resaved.save) == 1, "a session already bound to its user costs one request"
    other = SessionStore()
    other["_auth_user_id"] = "7"
    other.save()
    listed = SessionStore.user_sessions("42")
    assert sorted(listed) == sorted(keys)
    assert all(expiry.tzinfo is not None for expiry in listed.values())
    assert requests_of(lambda: SessionStore(keys[1]).delete()) == 2, "delete plus one write to the user's map"
    assert sorted(SessionStore.user_sessions("42")) == sorted([keys[0], keys[2]])
    assert SessionStore.end_user_sessions("42") == 2
    assert SessionStore.user_sessions("42") == {}
    assert not any(SessionStore().exists(key) for key in keys)
    assert SessionStore().exists(other.session_key), "another user's session is untouched"


def test_default_configuration_uses_the_session_cache_in_its_own_namespace(store: Store) -> None:
    caches_setting = {"default": {"BACKEND": "redimo_django.cache.RedimoCache", "LOCATION": store.table,
                                  "OPTIONS": {"CLIENT_FACTORY": lambda: store.client,
                                              "NAMESPACE": f"cache-{uuid.uuid4().hex}"}}}
    with override_settings(CACHES=caches_setting, REDIMO_SESSIONS=None):  # Django resets its caches
        session = SessionStore()
        session["x"] = 1
        session.save()
        assert SessionStore.get_client().engine.db.namespace == sessions.DEFAULT_NAMESPACE
        caches["default"].set("a", 1)
        caches["default"].clear()
        assert SessionStore(session.session_key)["x"] == 1, "clearing the cache logs nobody out"
        SessionStore(session.session_key).delete()


def test_bad_settings_are_reported(store: Store) -> None:
    with override_settings(REDIMO_SESSIONS={"TABEL": "x"}):
        with pytest.raises(ImproperlyConfigured, match="unknown keys TABEL"):
            SessionStore.get_client()
    with override_settings(REDIMO_SESSIONS=None):
        with pytest.raises(ImproperlyConfigured, match="not a RedimoCache"):
            SessionStore.get_client()


@pytest.mark.django_db
def test_login_write_read_logout_and_no_resurrection(session_settings: dict) -> None:
    User.objects.create_user("ada", password="secret")
    browser = Client()
    assert browser.post("/login", {"username": "ada", "password": "secret"}).status_code == 200
    assert browser.post("/write", {"note": "hello"}).status_code == 200
    assert browser.get("/read").json() == {"note": "hello", "user": "ada"}
    user_id = str(User.objects.get(username="ada").pk)
    key = browser.cookies["sessionid"].value
    assert list(SessionStore.user_sessions(user_id)) == [key]

    second = Client()  # the same session in a second browser tab or device
    second.cookies["sessionid"] = key
    assert second.get("/read").json()["user"] == "ada"
    session_site.LOADED.clear(), session_site.PROCEED.clear()
    responses = []
    late = threading.Thread(target=lambda: responses.append(second.post("/slow-write", {"note": "late"})))
    late.start()
    assert session_site.LOADED.wait(30), "the second request has loaded the session"
    assert browser.post("/logout").status_code == 200
    assert not SessionStore().exists(key)
    session_site.PROCEED.set()
    late.join(30)
    assert responses[0].status_code == 400, "SessionInterrupted: the logged-out session is not saved again"
    assert not SessionStore().exists(key)
    assert SessionStore.user_sessions(user_id) == {}
