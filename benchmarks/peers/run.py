"""Redimo against other DynamoDB libraries for Django and Celery, on one DynamoDB Local, in one run.

    python benchmarks/peers/run.py [--rounds N] [--many-every K]

(``make bench-peers`` installs the peers and runs it.) Compared, each operation interleaved with its
peer's round by round:

* Django's cache API: ``redimo_django.cache.RedimoCache`` against django-dynamodb-cache 0.6.0;
* Django sessions: ``redimo_django.sessions`` against Django's own cache session engine
  (``django.contrib.sessions.backends.cache``) on django-dynamodb-cache (django-dynamodb-sessions 0.6
  cannot run: see docs/performance.md);
* Celery's result backend: ``redimo://`` against Celery's ``dynamodb://`` (celery.backends.dynamodb).

Per operation and library: ops/s (calls / their total wall time), p50 and p99 wall ms, client CPU ms
per call (``time.process_time``), DynamoDB requests by operation, RCU and WCU per call (see measure.py
for how each side is counted). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote, urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path[:0] = [str(HERE), str(ROOT / "core"), str(ROOT)]
# Never reach for real credentials: everything here talks to DynamoDB Local.
os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1",
                  AWS_DEFAULT_REGION="us-east-1")
os.environ.setdefault("REDIMO_DYNAMODB_LOCAL_DIR", str(ROOT / ".cache" / "dynamodb-local"))

import django  # noqa: E402
from celery import Celery, states  # noqa: E402
from django.conf import settings  # noqa: E402

from measure import BotocoreCounter, Operation, Side, gateway_spent, measure  # noqa: E402
from redimo.gateway import Gateway, make_client  # noqa: E402
from redimo.local import dynamodb_local  # noqa: E402
from redimo.table import create_table  # noqa: E402

TABLE = "redimo-bench-peers"
PEER_CACHE_TABLE = "peer-django-cache"
PEER_CELERY_TABLE = "peer-celery-results"
VALUE = {"user": 42, "name": "x" * 80}  # a small pickled dict, as a typical cached value
MANY = 100


def configure(endpoint: str) -> None:
    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint  # django-dynamodb-cache takes no endpoint of its own
    settings.configure(
        SECRET_KEY="bench", USE_TZ=True,
        INSTALLED_APPS=["django.contrib.sessions"],
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
                "redimo": {"BACKEND": "redimo_django.cache.RedimoCache", "LOCATION": TABLE,
                           "OPTIONS": {"ENDPOINT_URL": endpoint}},
                "peer": {"BACKEND": "django_dynamodb_cache.backend.DjangoCacheBackend",
                         "LOCATION": PEER_CACHE_TABLE}},
        SESSION_CACHE_ALIAS="peer",  # for the peer's sessions (Django's cache engine)
        REDIMO_SESSIONS={"TABLE": TABLE, "ENDPOINT_URL": endpoint},
    )
    django.setup()


def cache_operations(redimo_side: Callable, peer_side: Callable, many_every: int) -> list[Operation]:
    """get (hit, miss), set, add (of an existing key, of a new one), incr, delete, get_many(100)."""
    from django.core.cache import caches
    redimo, peer = caches["redimo"], caches["peer"]
    for cache in (redimo, peer):
        cache.set("hit", VALUE, None)
        cache.set("exists", VALUE, None)
        cache.set("counter", 0, None)
        for i in range(MANY):
            cache.set(f"many-{i}", VALUE, None)
    keys = [f"many-{i}" for i in range(MANY)]

    def pair(name: str, call: Callable[[Any, int], Any], every: int = 1) -> Operation:
        return Operation(name, [redimo_side(lambda i: lambda: call(redimo, i)),
                                peer_side(lambda i: lambda: call(peer, i))], every)

    def get_hit(cache: Any, _: int) -> None:
        assert cache.get("hit") == VALUE

    def get_miss(cache: Any, _: int) -> None:
        assert cache.get("missing") is None

    def add_existing(cache: Any, _: int) -> None:
        assert cache.add("exists", VALUE, None) is False

    def get_many(cache: Any, _: int) -> None:
        assert len(cache.get_many(keys)) == MANY

    def delete(cache: Any, i: int) -> None:  # of the key that "set" wrote in this round
        cache.delete(f"set-{i}")

    return [pair("cache.get (hit)", get_hit), pair("cache.get (miss)", get_miss),
            pair("cache.set", lambda cache, i: cache.set(f"set-{i}", VALUE, 300)),
            pair("cache.add (existing key)", add_existing),
            pair("cache.add (new key)", lambda cache, i: cache.add(f"add-{i}", VALUE, 300)),
            pair("cache.incr", lambda cache, _: cache.incr("counter")),
            pair("cache.delete", delete),
            pair(f"cache.get_many ({MANY} keys)", get_many, many_every)]


def session_operations(redimo_side: Callable, peer_side: Callable) -> list[Operation]:
    """load of an existing session (a new SessionStore, as a request makes one); save of a loaded,
    modified session."""
    from django.contrib.sessions.backends.cache import SessionStore as PeerStore
    from redimo_django.sessions import SessionStore as RedimoStore
    created = {}
    for store in (RedimoStore, PeerStore):
        session = store()
        session["user"] = 42
        session["cart"] = list(range(20))
        session.create()
        session.save()
        created[store] = session.session_key

    def load(store: type) -> Callable[[int], Callable[[], Any]]:
        def prepare(_: int) -> Callable[[], Any]:
            session = store(created[store])

            def call() -> None:
                assert session.load()["user"] == 42
            return call
        return prepare

    def save(store: type) -> Callable[[int], Callable[[], Any]]:
        def prepare(i: int) -> Callable[[], Any]:
            session = store(created[store])
            session.load()  # as a request's middleware does before the view changes it
            session["visits"] = i
            return session.save
        return prepare

    return [Operation("session load", [redimo_side(load(RedimoStore)), peer_side(load(PeerStore))]),
            Operation("session save", [redimo_side(save(RedimoStore)), peer_side(save(PeerStore))])]


def celery_operations(endpoint: str, counter: BotocoreCounter) -> list[Operation]:
    """store_result (SUCCESS) of a new task id; get_task_meta of a stored one (not from the cache)."""
    host = urlsplit(endpoint)
    redimo_app = Celery("bench-redimo", broker="memory://", set_as_current=False,
                        backend=f"redimo://{TABLE}?namespace=celery&endpoint_url={quote(endpoint, safe='')}")
    peer_app = Celery("bench-peer", broker="memory://", set_as_current=False,
                      backend=f"dynamodb://@{host.hostname}:{host.port}/{PEER_CELERY_TABLE}?read=5&write=5")
    redimo_backend, peer_backend = redimo_app.backend, peer_app.backend
    counter.attach(peer_backend.client)  # (creates the peer's table)
    stored = {}
    for backend in (redimo_backend, peer_backend):
        stored[backend] = task_id = uuid.uuid4().hex
        backend.store_result(task_id, {"sum": 42}, states.SUCCESS)

    def store(backend: Any) -> Callable[[int], Callable[[], Any]]:
        return lambda i: lambda: backend.store_result(uuid.uuid4().hex, {"sum": i}, states.SUCCESS)

    def fetch(backend: Any) -> Callable[[int], Callable[[], Any]]:
        def call() -> None:
            assert backend.get_task_meta(stored[backend], cache=False)["status"] == states.SUCCESS
        return lambda _: call

    redimo_spent = gateway_spent(redimo_backend.client.gateway)
    sides = lambda make: [Side("Redimo", make(redimo_backend), redimo_spent),  # noqa: E731
                          Side("Celery dynamodb://", make(peer_backend), counter.snapshot)]
    return [Operation("celery store_result", sides(store)), Operation("celery get_task_meta", sides(fetch))]


def requests_text(requests: dict[str, float]) -> str:
    return ", ".join(f"{op} {count:g}" for op, count in requests.items()) or "-"


def report(operations: list[Operation], rounds: int, seconds: float) -> str:
    lines = [f"{rounds} interleaved rounds ({seconds / 60:.1f} min), load average at the end "
             f"{', '.join(f'{load:.2f}' for load in os.getloadavg())}\n",
             "| operation | library | ops/s | p50 ms | p99 ms | client CPU ms | requests per call | RCU | WCU "
             "| p50 vs peer |", "|---|---|---:|---:|---:|---:|---|---:|---:|---:|"]
    for operation in operations:
        rows = [side.row() for side in operation.sides]
        for index, row in enumerate(rows):
            ratio = f"{row['p50'] / rows[1]['p50']:.2f}x" if index == 0 else ""
            lines.append(f"| {operation.name if index == 0 else ''} | {row['library']} | {row['ops/s']:,.0f} "
                         f"| {row['p50']:.2f} | {row['p99']:.2f} | {row['cpu']:.2f} | {requests_text(row['requests'])} "
                         f"| {row['rcu']:g} | {row['wcu']:g} | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4000, help="rounds of the single-key operations")
    parser.add_argument("--many-every", type=int, default=10, help="get_many runs in one round out of this many")
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()
    started = time.monotonic()
    with dynamodb_local() as endpoint:
        create_table(Gateway(TABLE, make_client(endpoint_url=endpoint)))
        configure(endpoint)
        from django.core.cache import caches
        from django_dynamodb_cache.dynamodb import create_table as create_peer_table
        from redimo_django.sessions import session_client
        peer = caches["peer"]
        create_peer_table(peer.settings, peer.dynamodb)
        counter = BotocoreCounter()
        counter.attach(peer.table.meta.client)
        redimo_cache = gateway_spent(caches["redimo"].get_client().gateway)
        redimo_sessions = gateway_spent(session_client().gateway)
        operations = cache_operations(lambda prepare: Side("Redimo", prepare, redimo_cache),
                                      lambda prepare: Side("django-dynamodb-cache", prepare, counter.snapshot),
                                      args.many_every)
        operations += session_operations(
            lambda prepare: Side("Redimo", prepare, redimo_sessions),
            lambda prepare: Side("Django cache sessions on django-dynamodb-cache", prepare, counter.snapshot))
        operations += celery_operations(endpoint, counter)
        measure(operations, args.warmup, first=args.rounds)  # connections, caches, DynamoDB Local's JIT
        for operation in operations:
            for side in operation.sides:
                side.reset()
        measure(operations, args.rounds)
    print(report(operations, args.rounds, time.monotonic() - started))


if __name__ == "__main__":
    main()
