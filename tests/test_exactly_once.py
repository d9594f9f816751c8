"""Exactly-once writes when DynamoDB's reply is lost (docs/data-model.md, "Exactly-once writes").

Two processes write through tests/fault_proxy.py, which faults 10% of all requests: a 500 or a
throttling error before forwarding, or the reply dropped after DynamoDB Local applied the request.
The stored state must match the acknowledged calls: nothing applied twice, nothing acknowledged lost,
and few calls ending in "outcome unknown" (redis-py's ConnectionError). Django's ``cache.incr`` runs
through it too, and the compact hash, set, sorted set and list writes (one conditional PutItem or
UpdateItem each) across their promotion."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import redis

from conftest import TABLE, run_processes
from fault_proxy import FaultProxy
from redimo import Redimo

CALLS = 150  # of each command, per process
PROCESSES = 2


@pytest.fixture
def proxy(dynamodb_local_client: Any, dynamodb_local_endpoint: str) -> Iterator[FaultProxy]:
    with FaultProxy(dynamodb_local_endpoint, rate=0.1, seed=18) as proxy:
        yield proxy


def call(log: dict, command: str, run: Callable[[], Any]) -> Any:
    """Run one call; record its reply, or that its outcome is unknown."""
    try:
        reply = run()
    except redis.ConnectionError:
        log["unknown"][command] += 1
        return None
    log["replies"].setdefault(command, []).append(reply)
    return reply


def django_cache(endpoint: str, namespace: str) -> Any:
    """Django's cache on Redimo (redimo_django.cache.RedimoCache), as a site configures it."""
    from django.conf import settings

    if not settings.configured:
        settings.configure()
    from redimo_django.cache import RedimoCache

    return RedimoCache(TABLE, {"OPTIONS": {"NAMESPACE": namespace, "ENDPOINT_URL": endpoint}})


def writer(endpoint: str, namespace: str, name: str, output: str) -> None:
    r = Redimo(TABLE, namespace=namespace, endpoint_url=endpoint)
    cache = django_cache(endpoint, namespace)
    log: dict = {"replies": {}, "unknown": Counter(), "appended": [], "unsure_appends": []}
    for index in range(CALLS):
        call(log, "cache_incr", lambda: cache.incr("hits"))
        call(log, "incr", lambda: r.incr("counter"))
        call(log, "incrby", lambda: r.incrby("counter", 10))
        call(log, "hincrby", lambda: r.hincrby("hash", "field", 1))
        call(log, "incrbyfloat", lambda: r.incrbyfloat("float", 0.5))
        token = f"<{name}{index}>"
        if call(log, "append", lambda: r.append("text", token)) is None:
            log["unsure_appends"].append(token)
        else:
            log["appended"].append(token)
        if call(log, "set", lambda: r.set(f"gone:{token}", token)) is not None:
            got = call(log, "getdel", lambda: (r.getdel(f"gone:{token}") or b"").decode())
            if got is not None:
                log["replies"].setdefault("got", []).append([token, got])
            call(log, "del", lambda: r.delete(f"gone:{token}"))  # 0: GETDEL took it (or its outcome is unknown)
        if call(log, "hset_del", lambda: r.hset(f"doomed:{token}", "f", 1)) is not None:
            if call(log, "expire_nx", lambda: r.expire(f"doomed:{token}", 1000, nx=True)) is not None:
                call(log, "persist", lambda: r.persist(f"doomed:{token}"))
            call(log, "del_hash", lambda: r.delete(f"doomed:{token}"))
        call(log, "sadd", lambda: r.sadd("members", token))  # a compact set, promoted past 64 members
        call(log, "hset", lambda: r.hset("fields", token, index))
        call(log, "zadd", lambda: r.zadd("board", {token: index}))  # a compact sorted set, promoted past 64
        call(log, "zincrby", lambda: r.zincrby("scores", 1, "m"))
        call(log, "rpush", lambda: r.rpush("queue", token))
        call(log, "lpop", lambda: (r.lpop("queue") or b"").decode() or None)
        won = call(log, "setnx", lambda: r.set(f"lock:{index}", name, nx=True))
        if won is not None:
            log["replies"].setdefault("won", []).append([f"lock:{index}", bool(won)])
    Path(output).write_text(json.dumps(log))


def test_writes_stay_exactly_once_when_replies_are_lost(proxy: FaultProxy, dynamodb_local_endpoint: str,
                                                        tmp_path: Path) -> None:
    namespace = uuid.uuid4().hex
    django_cache(dynamodb_local_endpoint, namespace).set("hits", 0, timeout=None)
    outputs = [str(tmp_path / f"writer{index}.json") for index in range(PROCESSES)]
    run_processes(writer, [(proxy.endpoint, namespace, f"w{index}-", output)
                           for index, output in enumerate(outputs)])
    logs = [json.loads(Path(output).read_text()) for output in outputs]
    replies = {command: [reply for log in logs for reply in log["replies"].get(command, [])]
               for command in ("cache_incr", "incr", "incrby", "hincrby", "incrbyfloat", "append", "set", "rpush", "lpop", "setnx", "won", "got",
                               "sadd", "hset", "zadd", "zincrby", "del", "del_hash", "expire_nx", "persist")}
    unknown = sum((Counter(log["unknown"]) for log in logs), Counter())
    assert proxy.counts["drop_reply"] >= 50 and proxy.counts["server_error"] >= 50, proxy.counts

    r = Redimo(TABLE, namespace=namespace, endpoint_url=dynamodb_local_endpoint)  # no faults
    counter = int(r.get("counter"))
    unsure = unknown["incr"] + 10 * unknown["incrby"]
    acknowledged = len(replies["incr"]) + 10 * len(replies["incrby"])
    assert acknowledged <= counter <= acknowledged + unsure, "no INCR applied twice or lost"
    counter_replies = replies["incr"] + replies["incrby"]
    assert len(set(counter_replies)) == len(counter_replies), "each increment saw its own value"
    assert max(counter_replies) <= counter

    hits = django_cache(dynamodb_local_endpoint, namespace).get("hits")
    assert len(replies["cache_incr"]) <= hits <= len(replies["cache_incr"]) + unknown["cache_incr"]
    assert len(set(replies["cache_incr"])) == len(replies["cache_incr"]), "Django's cache.incr too"

    field = int(r.hget("hash", "field"))
    assert len(replies["hincrby"]) <= field <= len(replies["hincrby"]) + unknown["hincrby"]
    tokens_sent = {f"<w{process}-{index}>".encode() for process in range(PROCESSES) for index in range(CALLS)}
    for command, key, size, members in (("sadd", "members", r.scard("members"), r.smembers("members")),
                                        ("hset", "fields", r.hlen("fields"), set(r.hkeys("fields"))),
                                        ("zadd", "board", r.zcard("board"), set(r.zrange("board", 0, -1)))):
        assert replies[command] == [1] * len(replies[command]), f"each {command.upper()} added its member once"
        assert len(replies[command]) <= size <= len(replies[command]) + unknown[command] and members <= tokens_sent
        assert r.object("encoding", key) in (b"hashtable", b"skiplist")
    assert replies["del_hash"] == [1] * len(replies["del_hash"]), "DEL of an existing key replies 1, lost reply or not"
    assert all(replies["expire_nx"]) and all(replies["persist"]), "EXPIRE NX and PERSIST reply that they applied"
    assert replies["del"].count(1) <= unknown["getdel"], "DEL finds a key only where GETDEL's outcome was unknown"
    score = r.zscore("scores", "m")
    assert len(replies["zincrby"]) <= score <= len(replies["zincrby"]) + unknown["zincrby"], "ZINCRBY: none twice"
    assert len(set(replies["zincrby"])) == len(replies["zincrby"]), "each ZINCRBY saw its own score"
    total = float(r.get("float"))
    assert len(replies["incrbyfloat"]) * 0.5 <= total <= (len(replies["incrbyfloat"]) + unknown["incrbyfloat"]) * 0.5

    text = r.get("text").decode()
    tokens = Counter(text.replace("><", ">\n<").split("\n"))
    appended = [token for log in logs for token in log["appended"]]
    unsure_appends = {token for log in logs for token in log["unsure_appends"]}
    assert all(tokens[token] == 1 for token in appended), "every acknowledged APPEND is there once"
    assert set(tokens) <= set(appended) | unsure_appends and max(tokens.values()) == 1, "none twice"
    assert sorted(replies["append"]) == sorted(set(replies["append"])), "each APPEND saw its own length"

    popped = [value for value in replies["lpop"] if value is not None]
    left = [value.decode() for value in r.lrange("queue", 0, -1)]
    pushed = set(appended) | unsure_appends  # the same tokens were pushed
    assert len(replies["rpush"]) + unknown["rpush"] == len(pushed)
    assert len(popped) == len(set(popped)) and not set(popped) & set(left), "no element popped twice"
    assert len(popped) + len(left) >= len(replies["rpush"]) - unknown["lpop"], "no popped value lost"
    assert set(popped) | set(left) <= pushed

    assert len(replies["got"]) + unknown["getdel"] == len(replies["set"]) and \
        all(token == value for token, value in replies["got"]), "GETDEL never loses the value to a lost reply"

    winners = Counter(key for key, won in replies["won"] if won)
    for index in range(CALLS):
        key = f"lock:{index}"
        assert winners[key] <= 1, f"{key}: two writers were told they set it"
        answered = [won for name, won in replies["won"] if name == key]
        if len(answered) == PROCESSES:
            assert winners[key] == 1, f"{key}: set, but both writers were told it was not"

    calls = PROCESSES * CALLS * 13
    assert sum(unknown.values()) <= calls / 1000, f"{unknown} of {calls} calls ended with the outcome unknown"


CHORDS, PARTS = 20, 6


def chord_parts(endpoint: str, namespace: str, process: int, output: str) -> None:
    """Report this process's share of every chord's parts through the proxy, as a worker does; a part
    whose outcome is unknown is reported again, as Celery redelivers its task. The callbacks this
    process sent are written to ``output``."""
    import celery_app
    from celery import states
    from redimo_celery.backend import RedimoBackend

    url = f"redimo://{TABLE}?endpoint_url={endpoint}&namespace={namespace}"
    sent: list = []
    celery_app.app.amqp._retry_publish = lambda send, results: sent.append(results)
    with celery_app.settings(result_backend=url, result_expires=3600, result_backend_always_retry=False):
        backend = RedimoBackend(app=celery_app.app, url=url)
        redeliveries = 0
        for number in range(CHORDS):
            for index in range(process, PARTS, PROCESSES):
                request = type("Request", (), {"id": f"c{number}-p{index}", "group": f"chord-{number}",
                                               "group_index": index, "chord": celery_app.identity.s()})()
                for _ in range(5):
                    try:
                        backend.on_chord_part_return(request, states.SUCCESS, number * 1000 + index)
                        break
                    except redis.ConnectionError:
                        redeliveries += 1
    Path(output).write_text(json.dumps({"sent": sent, "redeliveries": redeliveries}))


def test_a_chord_completes_once_when_replies_are_lost(proxy: FaultProxy, dynamodb_local_endpoint: str,
                                                      tmp_path: Path) -> None:
    """Celery chord parts recorded through the faulting proxy by two processes: each chord's callback
    is sent exactly once, with every part's result in header order."""
    import celery_app
    from redimo_celery.backend import RedimoBackend

    namespace = f"chords-{uuid.uuid4().hex}"
    url = f"redimo://{TABLE}?endpoint_url={dynamodb_local_endpoint}&namespace={namespace}"
    with celery_app.settings(result_backend=url, result_expires=3600):
        backend = RedimoBackend(app=celery_app.app, url=url)
        for number in range(CHORDS):
            backend.set_chord_size(f"chord-{number}", PARTS)
    outputs = [str(tmp_path / f"parts{process}.json") for process in range(PROCESSES)]
    before = dict(proxy.counts)
    run_processes(chord_parts, [(proxy.endpoint, namespace, process, output)
                                for process, output in enumerate(outputs)])
    logs = [json.loads(Path(output).read_text()) for output in outputs]
    sent = sorted(results for log in logs for results in log["sent"])
    assert sent == [[number * 1000 + index for index in range(PARTS)] for number in range(CHORDS)], \
        "each chord's callback once, with all its parts in order"
    assert proxy.counts["drop_reply"] > before.get("drop_reply", 0), "replies were lost on the way"
    assert sum(log["redeliveries"] for log in logs) <= 2


def test_getset_never_replies_with_its_own_value(proxy: FaultProxy, dynamodb_local_endpoint: str) -> None:
    """GETSET through the faulting proxy, one writer: each reply is the value written before it. A
    retried attempt that finds its write applied cannot know the old value any more; it says so
    (ConnectionError) rather than reply with its own new value, as a plain retry would."""
    r = Redimo(TABLE, namespace=uuid.uuid4().hex, endpoint_url=proxy.endpoint)
    previous, unknown, lost_reply = None, 0, 0
    for index in range(200):
        token = f"v{index}".encode()
        try:
            assert r.getset("key", token) == previous, f"GETSET #{index}"
        except redis.ConnectionError as error:
            unknown += 1
            lost_reply += "was lost" in str(error)
        previous = token
    assert lost_reply >= 1 and unknown == lost_reply, "only applied writes whose reply was lost end unknown"
    assert r.get("key") == previous
