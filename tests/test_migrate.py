"""`redimo migrate` and `redimo verify` against a real redis-server (filled with every type, TTLs, binary
keys and a 2 MB value), from the live server and from its dump.rdb, into DynamoDB Local."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import psutil
import pytest
import redis

from conftest import TABLE, wait_until
from redimo import Engine, Gateway, Redimo
from redimo.cli import main
from redimo.local import free_port, redis_server
from redimo.migrate import RDBSource, Selection
from redimo.verify import verify

PASSWORD = "s3cret"
BIG = bytes(range(256)) * 8192  # 2 MB, chunked in Redimo


def fill(client: redis.Redis) -> dict[str, Any]:
    """Every type in small (compact) and large (per-member) sizes, with TTLs and binary keys."""
    client.set(b"plain", b"hello")
    client.set(b"number", 42)
    client.set(b"\x00bin\xffkey", b"\xff\x00\xfe value")
    client.set(b"empty", b"")
    client.set(b"big", BIG)
    client.set(b"expiring", b"soon", px=3_600_000)
    client.pfadd(b"visitors", *[f"user{i}" for i in range(500)])
    client.pfcount(b"visitors")  # caches the count in the value, as a later PFCOUNT would (it rewrites the bytes)
    client.hset(b"small-hash", mapping={b"name": b"Ada", b"visits": b"3", b"\xff": b"\x00"})
    client.hset(b"large-hash", mapping={f"field{i}".encode(): f"value{i}".encode() * 3 for i in range(300)})
    client.expire(b"large-hash", 7200)
    client.sadd(b"small-set", b"a", b"b", b"\xfe")
    client.sadd(b"int-set", *range(100))
    client.sadd(b"large-set", *[f"member{i}" for i in range(1000)])
    client.zadd(b"small-zset", {b"inf": float("inf"), b"ninf": float("-inf"), b"half": 0.5})
    client.zadd(b"large-zset", {f"m{i}".encode(): i / 7 for i in range(400)} | {b"negzero": -0.0, b"top": float("inf")})
    client.rpush(b"small-list", b"x", b"y", b"x")
    client.rpush(b"large-list", *[f"element{i}".encode() * 20 for i in range(2000)])
    for i in range(150):
        client.xadd(b"stream", {b"n": str(i).encode(), b"dup": b"a"}, id=f"{1000 + i}-{i % 3}")
    client.xdel(b"stream", "1005-2", "1010-1")
    client.xgroup_create(b"stream", b"workers", id="0")
    client.xreadgroup(b"workers", b"alice", {b"stream": ">"}, count=3)
    client.xreadgroup(b"workers", b"bob", {b"stream": ">"}, count=2)
    client.xack(b"stream", b"workers", "1000-0")
    client.xgroup_create(b"stream", b"idle", id="$")
    client.xgroup_createconsumer(b"stream", b"idle", b"carol")
    client.xadd(b"small-stream", {b"k": b"v"}, id="5-5")
    client.xgroup_create(b"small-stream", b"g", id="0")
    client.xreadgroup(b"g", b"c", {b"small-stream": ">"})
    client.xadd(b"empty-stream", {b"k": b"v"}, id="7-0")
    client.xdel(b"empty-stream", "7-0")
    return {"keys": client.dbsize()}


@contextmanager
def redis_server_in(directory: Path, *options: str) -> Iterator[redis.Redis]:
    """A redis-server saving its dump.rdb in ``directory``."""
    password = options[options.index("--requirepass") + 1] if "--requirepass" in options else None
    with redis_server(directory, *options) as port:
        yield redis.Redis(port=port, password=password, protocol=2)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A redis-server with a password, filled, and its dump.rdb; database 3 holds one more key."""
    directory = tmp_path_factory.mktemp("redis")
    with redis_server_in(directory, "--requirepass", PASSWORD) as client:
        facts = fill(client)
        port = client.connection_pool.connection_kwargs["port"]
        redis.Redis(port=port, password=PASSWORD, db=3).set(b"in-db-3", b"three")
        client.save()
        shutil.copy(directory / "dump.rdb", directory / "copy.rdb")
        yield {**facts, "url": f"redis://:{PASSWORD}@127.0.0.1:{port}/0", "client": client,
               "rdb": str(directory / "copy.rdb")}


@pytest.fixture
def target(dynamodb_local_endpoint: str, dynamodb_local_client: Any, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A fresh namespace of the test table; the commands run in tmp_path (their checkpoint files)."""
    monkeypatch.chdir(tmp_path)
    namespace = f"migrate-{uuid.uuid4().hex[:10]}"
    return {"namespace": namespace, "endpoint": dynamodb_local_endpoint,
            "args": ["--table", TABLE, "--endpoint-url", dynamodb_local_endpoint],
            "redimo": Redimo(table=TABLE, namespace=namespace, client=dynamodb_local_client)}


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse's usage errors
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def summary(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, dict]:
    code, out, err = run(capsys, *argv, "--json", "--no-progress")
    assert out, err
    return code, json.loads(out)


@pytest.mark.parametrize("kind,workers", [("url", "1"), ("rdb", "2")])
def test_migrate_copies_every_type_and_verify_agrees(source: dict, target: dict, capsys: pytest.CaptureFixture,
                                                     kind: str, workers: str) -> None:
    code, result = summary(capsys, "migrate", source[kind], *target["args"], "--namespace", target["namespace"],
                           "--workers", workers)
    assert code == 0, result
    assert result["keys"] == source["keys"] and not result["unsupported"] and result["stopped"] is None
    assert result["keys_by_type"] == {"string": 7, "hash": 2, "set": 3, "zset": 2, "list": 2, "stream": 3}
    assert result["requests"] >= result["items"] / 25 and result["write_units"] >= result["items"]
    r, real = target["redimo"], source["client"]
    assert r.get(b"big") == BIG and r.get(b"\x00bin\xffkey") == b"\xff\x00\xfe value"
    assert r.get(b"visitors") == real.get(b"visitors") and r.pfcount(b"visitors") == real.pfcount(b"visitors")
    assert r.zscore(b"small-zset", b"ninf") == float("-inf") and r.zscore(b"large-zset", b"top") == float("inf")
    assert r.zscore(b"large-zset", b"negzero") == 0.0  # Redimo keeps no -0 (docs/migration.md)
    assert r.object("encoding", b"small-hash") == b"listpack" and r.object("encoding", b"large-set") == b"hashtable"
    assert r.lrange(b"large-list", 0, -1) == real.lrange(b"large-list", 0, -1)
    assert abs(r.pttl(b"expiring") - real.pttl(b"expiring")) < 5000 and r.ttl(b"plain") == -1
    assert r.xpending(b"stream", b"workers") == real.xpending(b"stream", b"workers")
    assert r.xrange(b"stream") == real.xrange(b"stream") and r.xlen(b"empty-stream") == 0
    assert not list(Path(".").glob(".redimo-migrate-*")), "a finished migration leaves no checkpoint"
    code, out, _ = run(capsys, "verify", source[kind], *target["args"], "--namespace", target["namespace"])
    assert (code, out.strip()) == (0, f"All {source['keys']} keys match (0 expiring or expired keys not compared)."), out


def test_verify_names_the_key_that_differs(source: dict, target: dict, capsys: pytest.CaptureFixture) -> None:
    assert summary(capsys, "migrate", source["rdb"], *target["args"], "--namespace", target["namespace"],
                   "--workers", "1")[0] == 0
    target["redimo"].hset(b"large-hash", b"field7", b"changed")
    target["redimo"].persist(b"expiring")
    code, out, _ = run(capsys, "verify", source["url"], *target["args"], "--namespace", target["namespace"])
    assert code == 1 and out.splitlines()[0] == f"2 of {source['keys']} keys differ:"
    assert "  db 0 'large-hash': contents differ" in out.splitlines()
    [line] = [line for line in out.splitlines() if "'expiring'" in line]
    assert line.startswith("  db 0 'expiring': TTL: source expires at ") and line.endswith("Redimo at never")
    code, result = summary(capsys, "verify", source["url"], *target["args"], "--namespace", target["namespace"],
                           "--sample", "5")
    assert result["checked"] == 5


def test_db_map_match_type_and_dry_run(source: dict, target: dict, capsys: pytest.CaptureFixture) -> None:
    ns = target["namespace"]
    code, result = summary(capsys, "migrate", source["rdb"], *target["args"], "--db-map", f"0={ns},3={ns}-3",
                           "--type", "hash", "--dry-run")
    assert code == 0 and result["keys_by_type"] == {"hash": 2} and result["write_units"] > 0
    assert result["estimated_dollars"] > 0 and target["redimo"].exists(b"small-hash") == 0  # nothing written
    code, result = summary(capsys, "migrate", source["url"], *target["args"], "--db-map", f"0={ns},3={ns}-3",
                           "--match", "small-*", "--workers", "1")
    assert code == 0 and result["keys_by_type"] == {"hash": 1, "set": 1, "zset": 1, "list": 1, "stream": 1}
    assert Redimo(table=TABLE, namespace=f"{ns}-3", client=target["redimo"].gateway.client).get(b"in-db-3") is None
    code, result = summary(capsys, "migrate", source["url"], *target["args"], "--db-map", f"3={ns}-3", "--workers", "1")
    assert result["keys"] == 1
    assert Redimo(table=TABLE, namespace=f"{ns}-3", client=target["redimo"].gateway.client).get(b"in-db-3") == b"three"


def test_to_files_writes_dynamodb_json_for_import(source: dict, target: dict, capsys: pytest.CaptureFixture,
                                                  tmp_path: Path) -> None:
    code, dry = summary(capsys, "migrate", source["rdb"], "--dry-run", "--workers", "1")
    code, result = summary(capsys, "migrate", source["rdb"], "--to-files", str(tmp_path / "out"), "--workers", "1")
    assert code == 0 and result["items"] == dry["items"]
    lines = [json.loads(line) for path in sorted((tmp_path / "out").glob("*.json.gz"))
             for line in gzip.open(path, "rt")]
    assert len(lines) == result["items"] and all(set(line) == {"Item"} for line in lines)
    heads = [line["Item"] for line in lines if line["Item"]["sk"]["B"] == "AA=="]
    assert len(heads) == source["keys"] and {head["t"]["S"] for head in heads} >= {"string", "stream", "zset"}


def test_bad_input_gives_one_line_and_a_non_zero_exit(source: dict, target: dict, capsys: pytest.CaptureFixture,
                                                      tmp_path: Path) -> None:
    ns = ["--namespace", target["namespace"], "--workers", "1", "--no-progress"]
    closed = f"redis://127.0.0.1:{free_port()}/0"
    wrong = source["url"].replace(PASSWORD, "wrong")
    garbage = tmp_path / "garbage.rdb"
    garbage.write_bytes(b"NOTREDIS" * 10)
    for argv, expected in [([closed], "cannot read Redis at"), ([wrong], "refused the password"),
                           (["redis://host:notaport/0"], "bad Redis URL"), ([str(tmp_path / "missing.rdb")], "no such RDB file"),
                           ([str(garbage)], "RDB")]:
        code, out, err = run(capsys, "migrate", *argv, *target["args"], *ns)
        assert code == 1 and expected in err and len(err.strip().splitlines()) == 1, (argv, out, err)
    code, out, err = run(capsys, "migrate", source["rdb"], "--table", "no-such-table", "--endpoint-url",
                         target["endpoint"], *ns)
    assert code == 1 and "does not exist" in err and len(err.strip().splitlines()) == 1


def test_truncated_rdb_copies_what_precedes_the_damage(source: dict, target: dict, capsys: pytest.CaptureFixture,
                                                        tmp_path: Path) -> None:
    data = Path(source["rdb"]).read_bytes()
    cut = tmp_path / "cut.rdb"
    cut.write_bytes(data[:len(data) - 50])  # into the last keys
    code, out, _ = run(capsys, "migrate", str(cut), *target["args"], "--namespace", target["namespace"],
                       "--workers", "1", "--no-progress")
    assert code == 1 and "Stopped: truncated RDB file" in out
    copied = int(out.split("Copied ")[1].split(" keys")[0])
    assert 0 < copied < source["keys"]


def test_unsupported_and_expired_keys_are_reported(target: dict, capsys: pytest.CaptureFixture,
                                                   tmp_path: Path) -> None:
    with redis_server_in(tmp_path) as redis_server:
        check_unsupported_and_expired(redis_server, target, capsys, tmp_path)


def check_unsupported_and_expired(redis_server: redis.Redis, target: dict, capsys: pytest.CaptureFixture,
                                  tmp_path: Path) -> None:
    redis_server.hset(b"huge-value", b"f", b"x" * 400_000)
    redis_server.set(b"gone", b"v", px=300)
    redis_server.set(b"stays", b"v")
    port = redis_server.connection_pool.connection_kwargs["port"]
    time.sleep(0.1)
    code, result = summary(capsys, "migrate", f"redis://127.0.0.1:{port}/0", *target["args"], "--namespace",
                           target["namespace"], "--workers", "1")
    assert code == 3 and result["keys"] in (1, 2)
    assert result["unsupported"] == [{"db": 0, "key": "huge-value", "type": "hash",
                                      "reason": "value exceeds the 350000 bytes a collection member can hold in Redimo"}]
    redis_server.set(b"gone", b"v", px=300)
    redis_server.save()
    time.sleep(0.4)
    code, result = summary(capsys, "migrate", str(tmp_path / "dump.rdb"), *target["args"], "--namespace",
                           target["namespace"] + "-rdb", "--workers", "1")
    assert result["skipped_expired"] == 1 and result["keys"] == 1


def ended(process: psutil.Process) -> bool:
    """Whether a process has ended (a zombie has: a container's init may reap it late)."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_killed_migration_resumes_without_writing_a_key_twice(target: dict, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    with redis_server_in(tmp_path) as redis_server:
        pipe = redis_server.pipeline(transaction=False)
        for i in range(6000):
            pipe.set(f"key:{i}", f"value {i}" * 10)
            if i % 10 == 0:
                pipe.hset(f"hash:{i}", mapping={"a": i, "b": "x" * 50})
        pipe.execute()
        redis_server.save()
        total = redis_server.dbsize()
    argv = ["migrate", str(tmp_path / "dump.rdb"), *target["args"], "--namespace", target["namespace"],
            "--workers", "2", "--checkpoint", str(tmp_path / "ckpt"), "--no-progress", "--json"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "redimo.cli", *argv], env=env, stdout=subprocess.PIPE)
    checkpoint = tmp_path / "ckpt"
    wait_until(lambda: checkpoint.exists() and checkpoint.read_text().count("\n") > 20, "first batches", 120)
    workers = psutil.Process(process.pid).children()
    assert len(workers) >= 2
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    wait_until(lambda: not any(ended(worker) is False for worker in workers), "the workers' end", 30)
    done = len(set(" ".join(checkpoint.read_text().splitlines()[1:]).split()))
    assert 0 < done < total
    code, result = summary(capsys, *argv[:-2])
    assert (code, result["skipped_already_copied"], result["keys"]) == (0, done, total - done)
    assert not checkpoint.exists()
    code, out, _ = run(capsys, "verify", str(tmp_path / "dump.rdb"), *target["args"], "--namespace",
                       target["namespace"])
    assert code == 0, out


def test_shards_split_the_keys_and_together_copy_all(source: dict, target: dict,
                                                     capsys: pytest.CaptureFixture) -> None:
    counts = []
    for shard in ("0/2", "1/2"):
        code, result = summary(capsys, "migrate", source["rdb"], *target["args"], "--namespace", target["namespace"],
                               "--workers", "1", "--shard", shard)
        assert code == 0
        counts.append(result["keys"])
    assert sum(counts) == source["keys"] and 0 < counts[0] < source["keys"]
    code, out, _ = run(capsys, "verify", source["rdb"], *target["args"], "--namespace", target["namespace"])
    assert code == 0, out
    code, _, err = run(capsys, "migrate", source["rdb"], *target["args"], "--shard", "2/2")
    assert code == 2 and "--shard '2/2': give I/N" in err


def test_verify_reads_fifty_keys_a_batch_get(source: dict, target: dict, capsys: pytest.CaptureFixture,
                                             dynamodb_local_client: Any) -> None:
    assert summary(capsys, "migrate", source["rdb"], *target["args"], "--namespace", target["namespace"],
                   "--workers", "1", "--type", "string")[0] == 0
    gateway = Gateway(TABLE, dynamodb_local_client)
    engines = {0: Engine(gateway, target["namespace"])}
    report = verify(RDBSource(source["rdb"]), Selection({0: target["namespace"]}, type="string"), engines)
    assert (report.checked, report.differences) == (7, [])
    assert gateway.usage.requests == {"batch_get_item": 2}  # the 7 heads, then the 2 MB value's 6 chunks
