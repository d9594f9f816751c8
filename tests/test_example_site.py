"""The example site (example_project/) through Django's test client, on DynamoDB Local, with its
own settings (override_settings) and an in-process Celery worker on the redimo:// broker."""

from __future__ import annotations

import importlib
import json
import re
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import pytest
from celery.contrib.testing.worker import start_worker
from django.test import Client, override_settings

from redimo import Redimo

EXAMPLE = Path(__file__).resolve().parent.parent / "example_project"
FOOTER = re.compile(r'<strong id="dynamodb-cost"><span title="([^"]*)">'
                    r'((\d+) requests? · ([\d.]+) RCU · ([\d.]+) WCU)</span>')
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 "
          "Safari/605.1.15")

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def site(dynamodb_local_endpoint: str, django_db_setup: Any) -> Iterator[SimpleNamespace]:
    """The example site's settings in force, on a table of DynamoDB Local, in namespaces of its own."""
    with pytest.MonkeyPatch.context() as patch:  # the config is read when redimo_site.config is imported
        for name, value in {"REDIMO_DEMO_ENDPOINT": dynamodb_local_endpoint, "REDIMO_DEMO_TABLE": "redimo-example-site",
                            "REDIMO_DEMO_NAMESPACE": f"site-{uuid.uuid4().hex[:8]}",
                            "REDIMO_DEMO_PART_SECONDS": "0.4"}.items():
            patch.setenv(name, value)
        patch.syspath_prepend(str(EXAMPLE))
        settings = importlib.import_module("redimo_site.settings")
        Redimo(table="redimo-example-site", endpoint_url=dynamodb_local_endpoint).create_table()
        skip = {"DATABASES", "LOGGING", "SECRET_KEY", "DEBUG", "WSGI_APPLICATION", "BASE_DIR"}
        with override_settings(**{name: getattr(settings, name) for name in dir(settings)
                                  if name.isupper() and name not in skip}):
            yield SimpleNamespace(tasks=importlib.import_module("reports.tasks"),
                                  tracking=importlib.import_module("accounts.tracking"),
                                  data=importlib.import_module("redimo_site.data").data,
                                  app=importlib.import_module("redimo_site").celery_app)


@pytest.fixture
def user(site: SimpleNamespace, django_user_model: Any) -> Iterator[Any]:
    """The user demo/demo; their sessions end with the test (user ids are reused after a rollback)."""
    from redimo_django.sessions import SessionStore

    demo = django_user_model.objects.create_user("demo", password="demo")
    yield demo
    SessionStore.end_user_sessions(demo.pk)
    site.data().delete(site.tracking.hash_key(demo.pk))


def sign_in(agent: str = FIREFOX) -> Client:
    client = Client(HTTP_USER_AGENT=agent)
    response = client.post("/accounts/login/", {"username": "demo", "password": "demo"})
    assert response.status_code == 302 and response["Location"] == "/"
    return client


def footer(response: Any) -> tuple[str, str, int, float, float]:
    """The page's footer: operations (its title), text, requests, RCU, WCU."""
    match = FOOTER.search(response.content.decode())
    assert match, "no cost footer"
    return match[1], match[2], int(match[3]), float(match[4]), float(match[5])


def test_sign_in(user: Any) -> None:
    """Pages need a sign-in; the login page of an anonymous visitor costs nothing; a sign-in makes a
    session in DynamoDB, bound to the user."""
    from redimo_django.sessions import SessionStore

    client = Client()
    assert client.get("/jobs/")["Location"] == "/accounts/login/?next=/jobs/"
    page = client.get("/accounts/login/")
    assert page.status_code == 200 and footer(page)[1] == "0 requests · 0.0 RCU · 0.0 WCU"
    wrong = client.post("/accounts/login/", {"username": "demo", "password": "nope"})
    assert wrong.status_code == 200 and b"do not match" in wrong.content
    signed_in = sign_in()
    assert list(SessionStore.user_sessions(user.pk)) == [signed_in.cookies["sessionid"].value]
    home = signed_in.get("/")
    assert home.status_code == 200 and b"Leaderboard" in home.content and b"Activity feed" in home.content


@pytest.mark.parametrize("saves_session", [False, True])
def test_footer_counts_every_request(site: SimpleNamespace, user: Any, monkeypatch: pytest.MonkeyPatch,
                                     saves_session: bool) -> None:
    """The footer and the X-DynamoDB-Cost header hold what every client spent on the request, each
    shared client once, the session save (after the view) included."""
    from django.core.cache import caches
    from redimo_celery.connection import app_client
    from redimo_django.sessions import SessionStore

    client = sign_in()
    monkeypatch.setattr(site.tracking, "SEEN_EVERY", 0.0 if saves_session else 3600.0)
    gateways = {id(c.gateway): c.gateway for c in (caches["default"].get_client(), SessionStore.get_client(),
                                                  site.data(), app_client(site.app))}.values()
    before = [gateway.usage.snapshot() for gateway in gateways]
    page = client.get("/sessions/")
    spent = [gateway.usage - start for gateway, start in zip(gateways, before)]
    operations, text, requests, read, write = footer(page)
    assert requests == sum(sum(usage.requests.values()) for usage in spent) > 0
    assert (read, write) == (round(sum(u.read_units for u in spent), 1), round(sum(u.write_units for u in spent), 1))
    assert page["X-DynamoDB-Cost"] == text.replace(" · ", ", ")
    assert ("PutItem" in operations) is saves_session  # the session's save, after the view


def test_unknown_region_is_refused(user: Any) -> None:
    page = sign_in().post("/jobs/", {"region": "Atlantis", "weeks": "4"})
    assert page.status_code == 200 and b"Select a valid choice" in page.content
    assert sign_in().get("/jobs/no-such-job/").status_code == 404


def wait_for_report(client: Client, job_id: str, seconds: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        status = client.get(f"/jobs/{job_id}/status/").json()
        if status["done"] or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def test_report_job(site: SimpleNamespace, user: Any) -> None:
    """A report runs as a chord of limited parts and a callback; a duplicate is refused while it runs
    and accepted once it is done; the leaderboard, the feed and the job pages show the result."""
    client = sign_in()
    with start_worker(site.app, pool="threads", concurrency=4, perform_ping_check=False, shutdown_timeout=30):
        started = client.post("/jobs/", {"region": "Africa", "weeks": "4"})
        job_id = started["Location"].split("/")[2]
        assert started["Location"] == f"/jobs/{job_id}/"
        refused = client.post("/jobs/", {"region": "Africa", "weeks": "4"}, follow=True)
        assert b"A 4-week report for Africa is already running" in refused.content
        status = wait_for_report(client, job_id)
        assert status["state"] == "SUCCESS" and [p["state"] for p in status["parts"]] == ["SUCCESS"] * 4
        parts = [site.app.AsyncResult(site.tasks.part_id(job_id, i)).result for i in range(4)]
        assert status["result"]["revenue"] == round(sum(p["revenue"] for p in parts), 2)
        edges = sorted([(p["started"], 1) for p in parts] + [(p["finished"], -1) for p in parts])
        running = [sum(step for _, step in edges[:n + 1]) for n in range(len(edges))]
        assert max(running) <= site.tasks.PARTS_AT_ONCE  # Limited: never more parts at once
        page = client.get(f"/jobs/{job_id}/").content.decode()
        assert 'id="report-state" class="badge SUCCESS"' in page and f"${status['result']['revenue']:,.0f}" in page
        home = client.get("/").content.decode()
        assert "Africa" in re.search(r'<ol class="board" id="leaderboard">.*?</ol>', home, re.S)[0]
        assert "Report done: Africa, 4 weeks" in home and "demo started a 4-week report for Africa" in home
        again = client.post("/jobs/", {"region": "Africa", "weeks": "4"})  # the lock was released
        assert again["Location"] != "/jobs/"
        assert wait_for_report(client, again["Location"].split("/")[2])["state"] == "SUCCESS"
    listing = client.get("/jobs/").content.decode()
    assert listing.count('<span class="badge SUCCESS">SUCCESS</span>') == 2 and job_id in listing


def test_heartbeat_on_dashboard(site: SimpleNamespace, user: Any) -> None:
    """The beat's task records each run; the dashboard shows the last one."""
    client = sign_in()
    runs = int(site.data().get("heartbeat:runs") or 0)
    site.tasks.heartbeat.apply()
    site.tasks.heartbeat.apply()
    page = client.get("/").content.decode()
    assert f"run #{runs + 2} at" in page and re.search(r'<p class="big">[0-5] s ago</p>', page)
    assert site.app.conf.beat_schedule["heartbeat"] == {"task": "reports.tasks.heartbeat", "schedule": 5.0}


def test_cached_page(user: Any) -> None:
    """cache_page keeps the page per browser; the page tells a hit from a miss, and the footer is
    the cost of this response (a hit reads the cache only)."""
    client, other = sign_in(), sign_in(SAFARI)
    first, second, elsewhere = client.get("/cached/"), client.get("/cached/"), other.get("/cached/")
    assert (first["X-Cache"], second["X-Cache"], elsewhere["X-Cache"]) == ("MISS", "HIT", "MISS")
    assert b"cache MISS" in first.content and b"cache HIT" in second.content
    rendered = re.compile(rb"Rendered at ([\d:.]+) UTC")
    assert rendered.search(first.content)[1] == rendered.search(second.content)[1]
    operations, _, requests, _, _ = footer(second)
    missed = footer(first)
    assert "PutItem" in missed[0] and "PutItem" not in operations and missed[2] > requests >= 2, \
        "a miss renders and stores the page; a hit only reads"


def test_sign_out_everywhere(site: SimpleNamespace, user: Any) -> None:
    """The sessions page lists each browser's session; "Sign out everywhere" ends them all."""
    from redimo_django.sessions import SessionStore

    here, there = sign_in(FIREFOX), sign_in(SAFARI)
    page = here.get("/sessions/").content.decode()
    assert page.count('<tr class="session') == 2 and page.count("this browser") == 1
    assert "Firefox 128 on Windows" in page and "Safari 17 on macOS" in page
    out = here.post("/sessions/end-all/", follow=True)
    assert out.redirect_chain == [("/accounts/login/", 302)]
    assert b"Signed out everywhere: 2 sessions ended." in out.content
    assert there.get("/sessions/")["Location"] == "/accounts/login/?next=/sessions/"
    assert here.get("/")["Location"] == "/accounts/login/?next=/"
    assert SessionStore.user_sessions(user.pk) == {} and not site.data().exists(site.tracking.hash_key(user.pk))


def test_sign_out(site: SimpleNamespace, user: Any) -> None:
    """Signing out ends this session only, and forgets its browser."""
    from redimo_django.sessions import SessionStore

    here, there = sign_in(FIREFOX), sign_in(SAFARI)
    assert here.post("/accounts/logout/")["Location"] == "/accounts/login/"
    assert list(SessionStore.user_sessions(user.pk)) == [there.cookies["sessionid"].value]
    stored = site.data().hgetall(site.tracking.hash_key(user.pk))
    assert sorted(stored) == sorted([there.cookies["sessionid"].value, there.cookies["sessionid"].value + ":seen"])
    assert json.loads(stored[there.cookies["sessionid"].value])["agent"] == SAFARI
    assert there.get("/").status_code == 200
