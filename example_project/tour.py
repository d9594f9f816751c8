"""A scripted tour of Redimo on DynamoDB Local: the core client (strings, collections, transactions,
locks), then the Django cache backend and sessions.
Each step prints what it does, the reply, and what it cost in DynamoDB requests and capacity.

    .venv/bin/python example_project/tour.py      (after `make deps`; `make demo` serves the example site)
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from redimo import Redimo
from redimo.local import dynamodb_local

TABLE = "redimo-demo"


@contextmanager
def step(client: Redimo, description: str) -> Iterator[list]:
    """Print one step: its description, reply and cost."""
    box: list = []
    before = client.gateway.usage.snapshot()
    started = time.perf_counter()
    yield box
    elapsed = (time.perf_counter() - started) * 1000
    spent = client.gateway.usage - before
    calls = ", ".join(f"{count} {name}" for name, count in sorted(spent.requests.items())) or "no request"
    reply = box[0] if box else None
    print(f"  {description:<46} -> {reply!r:<28} {calls}; RCU {spent.read_units:g}, WCU {spent.write_units:g}; "
          f"{elapsed:.1f} ms")


def tour_core(r: Redimo) -> None:
    print("\n== redimo.Redimo: redis-py's API on DynamoDB ==")
    commands: list[tuple[str, Any]] = [
        ("SET greeting hello EX 3600", lambda: r.set("greeting", "hello", ex=3600)),
        ("GET greeting", lambda: r.get("greeting")),
        ("TTL greeting", lambda: r.ttl("greeting")),
        ("INCR visits (atomic UpdateItem)", lambda: r.incr("visits")),
        ("INCRBY visits 41", lambda: r.incrby("visits", 41)),
        ("SET lock token NX PX 30000", lambda: r.set("lock", "token", nx=True, px=30000)),
        ("SET lock other NX (refused)", lambda: r.set("lock", "other", nx=True)),
        ("MSET a 1 b 2 c 3 (one transaction)", lambda: r.mset({"a": 1, "b": 2, "c": 3})),
        ("MGET a b c missing (one batch)", lambda: r.mget("a", "b", "c", "missing")),
        ("APPEND greeting ', world'", lambda: r.append("greeting", ", world")),
        ("SET big <1 MB> (chunked)", lambda: r.set("big", b"x" * 1_000_000)),
        ("STRLEN big", lambda: r.strlen("big")),
        ("KEYS *", lambda: sorted(r.keys("*"))),
        ("DEL a b c big", lambda: r.delete("a", "b", "c", "big")),
        ("PEXPIRE greeting 1", lambda: r.pexpire("greeting", 1)),
    ]
    for description, call in commands:
        with step(r, description) as box:
            box.append(call())
    time.sleep(0.01)
    with step(r, "GET greeting (expired: hidden on read)") as box:
        box.append(r.get("greeting"))

    print("\n== Locks with fencing tokens, and a semaphore ==")
    first, second = r.lock("report", timeout=30), r.lock("report", timeout=30)
    with step(r, "lock('report').acquire() -> fencing token") as box:
        box.append(first.acquire() and first.fencing_token)
    with step(r, "a second holder tries (non-blocking)") as box:
        box.append(second.acquire(blocking=False))
    with step(r, "first.release()") as box:
        box.append(first.release())
    with step(r, "second.acquire() -> a larger fencing token") as box:
        box.append(second.acquire() and second.fencing_token)
    slots = [r.semaphore("workers", limit=2, timeout=60) for _ in range(3)]
    for number, slot in enumerate(slots, 1):
        with step(r, f"semaphore('workers', limit=2): holder {number}") as box:
            box.append(slot.acquire(blocking=False))


def tour_collections(r: Redimo) -> None:
    print("\n== Collections: an activity feed, a leaderboard, a job queue, a stream with a consumer group ==")
    commands: list[tuple[str, Any]] = [
        ("HSET user:1 name Ada lang en", lambda: r.hset("user:1", mapping={"name": "Ada", "lang": "en"})),
        ("HGET user:1 name (head + field)", lambda: r.hget("user:1", "name")),
        ("HINCRBY user:1 logins 1", lambda: r.hincrby("user:1", "logins", 1)),
        ("HLEN user:1 (kept count)", lambda: r.hlen("user:1")),
        ("SADD tags:1 python aws redis", lambda: r.sadd("tags:1", "python", "aws", "redis")),
        ("SISMEMBER tags:1 aws", lambda: r.sismember("tags:1", "aws")),
        ("ZADD board ada 42 bob 17 cy 42", lambda: r.zadd("board", {"ada": 42, "bob": 17, "cy": 42})),
        ("ZINCRBY board 5 bob", lambda: r.zincrby("board", 5, "bob")),
        ("ZREVRANGE board 0 1 WITHSCORES", lambda: r.zrevrange("board", 0, 1, withscores=True)),
        ("ZRANK board cy (ties by member)", lambda: r.zrank("board", "cy")),
        ("RPUSH jobs a b c", lambda: r.rpush("jobs", "a", "b", "c")),
        ("LPOP jobs", lambda: r.lpop("jobs")),
        ("LRANGE jobs 0 -1 (the slice only)", lambda: r.lrange("jobs", 0, -1)),
        ("XADD events * type signup", lambda: r.xadd("events", {"type": "signup"}) is not None),
        ("XGROUP CREATE events mailers 0", lambda: r.xgroup_create("events", "mailers", id="0")),
        ("XREADGROUP mailers m1 > (exactly once)", lambda: len(r.xreadgroup("mailers", "m1", {"events": ">"})[0][1])),
        ("GEOADD places Palermo Catania", lambda: r.geoadd("places", [13.361389, 38.115556, "Palermo",
                                                                       15.087269, 37.502669, "Catania"])),
        ("GEOSEARCH places 15 37 200 km", lambda: r.geosearch("places", longitude=15, latitude=37, radius=200,
                                                              unit="km")),
        ("PFADD visitors a b c a", lambda: r.pfadd("visitors", "a", "b", "c", "a")),
        ("PFCOUNT visitors", lambda: r.pfcount("visitors")),
        ("EXPIRE board 60 (one request, any size)", lambda: r.expire("board", 60)),
        ("TYPE events", lambda: r.type("events")),
    ]
    for description, call in commands:
        with step(r, description) as box:
            box.append(call())
    with step(r, "MULTI INCR a INCR b EXEC (one transaction)") as box:
        with r.pipeline() as pipe:
            box.append(pipe.incr("a").incr("b").execute())
    with step(r, "DEL user:1 tags:1 board jobs events") as box:
        box.append(r.delete("user:1", "tags:1", "board", "jobs", "events"))


def tour_cache(endpoint: str) -> None:
    import django
    from django.conf import settings

    settings.configure(SECRET_KEY="redimo-demo", INSTALLED_APPS=["django.contrib.sessions", "redimo_django"],
                       SESSION_ENGINE="redimo_django.sessions", CACHES={"default": {
        "BACKEND": "redimo_django.cache.RedimoCache",
        "LOCATION": TABLE,
        "OPTIONS": {"ENDPOINT_URL": endpoint, "NAMESPACE": "demo-cache"},
    }})
    django.setup()
    from django.core.cache import cache

    client = cache.get_client()
    print("\n== Django cache: CACHES = {'default': {'BACKEND': 'redimo_django.cache.RedimoCache', ...}} ==")
    calls: list[tuple[str, Any]] = [
        ("cache.set('user:1', {'name': 'Ada'}, 300)", lambda: cache.set("user:1", {"name": "Ada"}, 300)),
        ("cache.get('user:1')", lambda: cache.get("user:1")),
        ("cache.add('user:1', 'other')", lambda: cache.add("user:1", "other")),
        ("cache.set('hits', 0)", lambda: cache.set("hits", 0)),
        ("cache.incr('hits', 5)", lambda: cache.incr("hits", 5)),
        ("cache.touch('user:1', 600)", lambda: cache.touch("user:1", 600)),
        ("cache.set_many(50 keys)", lambda: cache.set_many({f"k{i}": i for i in range(50)})),
        ("cache.get_many(50 keys)", lambda: len(cache.get_many([f"k{i}" for i in range(50)]))),
        ("cache.get_or_set('answer', 42)", lambda: cache.get_or_set("answer", 42)),
        ("cache.delete('user:1')", lambda: cache.delete("user:1")),
        ("cache.clear() (this cache's namespace only)", lambda: cache.clear()),
    ]
    for description, call in calls:
        with step(client, description) as box:
            box.append(call())

    from redimo_django.sessions import SessionStore

    print("\n== Django sessions: SESSION_ENGINE = 'redimo_django.sessions' (namespace django-sessions) ==")
    sessions = SessionStore.get_client()
    session = SessionStore()
    session["_auth_user_id"] = "1"
    session["cart"] = ["book"]
    with step(sessions, "session.save() (new; bound to user 1)") as box:
        box.append(session.save())
    with step(sessions, "SessionStore(key).load()") as box:
        box.append(SessionStore(session.session_key).load().get("cart"))
    with step(sessions, "SessionStore.user_sessions(1)") as box:
        box.append(len(SessionStore.user_sessions("1")))
    with step(sessions, "SessionStore.end_user_sessions(1)") as box:
        box.append(SessionStore.end_user_sessions("1"))


def main() -> None:
    installed = Path(__file__).resolve().parents[1] / ".cache" / "dynamodb-local"
    for name, value in {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_REGION": "us-east-1",
                        "REDIMO_DYNAMODB_LOCAL_DIR": str(installed)}.items():
        os.environ[name] = os.environ.get(name) or value
    print("Starting DynamoDB Local ...", flush=True)
    with dynamodb_local() as endpoint:
        print(f"DynamoDB Local is at {endpoint}; creating table {TABLE} (on-demand, TTL on) ...")
        r = Redimo(table=TABLE, namespace="demo", endpoint_url=endpoint)
        r.create_table()
        tour_core(r)
        tour_collections(r)
        tour_cache(endpoint)
    print("\nDone: DynamoDB Local stopped.")


if __name__ == "__main__":
    main()
