"""``redimo serve``: the Redis-protocol server on DynamoDB Local, through redis-py (RESP2 and RESP3),
redis-cli and raw sockets; protocol errors are compared byte for byte with a real redis-server."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import TABLE
from served import Running
from redimo.local import free_port
from redimo.resp import Limits, Parser, ProtocolError, split_args
from redimo.server import Options, is_loopback, refused_by_protected_mode

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def server(serve: Callable[..., Running]) -> Running:
    return serve()


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def read_exactly(sock: socket.socket, expected: bytes) -> bytes:
    data = b""
    while len(data) < len(expected):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


# -- redis-py ------------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", [2, 3])
def test_commands_and_reply_types(server: Running, protocol: int) -> None:
    r = server.redis(protocol=protocol)
    assert r.ping() is True
    assert r.set("greeting", "hello") is True and r.get("greeting") == b"hello"
    assert r.get("missing") is None
    assert r.incr("visits") == 1 and r.incr("visits") == 2
    r.hset("user", mapping={"name": "Ada", "age": "36"})
    assert r.hgetall("user") == {b"name": b"Ada", b"age": b"36"}
    r.sadd("tags", "a", "b")
    assert r.smembers("tags") == {b"a", b"b"}
    r.zadd("scores", {"ada": 1.5, "bob": 3})
    assert r.zscore("scores", "ada") == 1.5
    assert r.zrange("scores", 0, -1, withscores=True) == [(b"ada", 1.5), (b"bob", 3.0)] if protocol == 2 \
        else [[b"ada", 1.5], [b"bob", 3.0]]
    r.rpush("list", "x", "y")
    assert r.lrange("list", 0, -1) == [b"x", b"y"]
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.get("list")
    with pytest.raises(redis.ResponseError, match="unknown command 'NOPE'"):
        r.execute_command("NOPE", "x")
    assert server.redimo().get("greeting") == b"hello"  # the data is in the table, namespace of database 0


def test_pipelines_and_transactions(server: Running) -> None:
    r, other = server.redis(protocol=2), server.redis(protocol=3)
    with r.pipeline(transaction=False) as pipe:
        for i in range(50):
            pipe.set(f"k{i}", i)
        for i in range(50):
            pipe.get(f"k{i}")
        replies = pipe.execute()
    assert replies == [True] * 50 + [str(i).encode() for i in range(50)]
    with other.pipeline() as pipe:  # MULTI/EXEC, RESP3
        assert pipe.incr("counter").sadd("set", "m").smembers("set").execute() == [1, 1, {b"m"}]
    with r.pipeline() as pipe:  # WATCH on one connection, a write on another: EXEC fails
        pipe.watch("counter")
        other.incr("counter")
        pipe.multi()
        pipe.incr("counter")
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert r.get("counter") == b"2"


def test_select_maps_databases_to_namespaces(serve: Callable[..., Running]) -> None:
    server = serve(names={0: f"zero-{uuid.uuid4().hex}", 1: f"one-{uuid.uuid4().hex}"}, databases=3)
    r = server.redis(protocol=2, db=1)
    r.set("k", "in one")
    assert server.redimo(1).get("k") == b"in one" and server.redimo(0).get("k") is None
    assert server.options.namespace(2) == "2"
    raw = server.redis(protocol=2)
    assert raw.get("k") is None
    assert raw.execute_command("SELECT", "1") is True and raw.get("k") == b"in one"
    with pytest.raises(redis.ResponseError, match="DB index is out of range"):
        raw.execute_command("SELECT", "3")
    with pytest.raises(redis.ResponseError, match="not an integer"):
        raw.execute_command("SELECT", "x")


def test_a_blocking_command_does_not_stall_other_connections(server: Running) -> None:
    blocked, other = server.redis(protocol=2), server.redis(protocol=2)
    popped: list[Any] = []
    waiter = threading.Thread(target=lambda: popped.append(blocked.blpop(["jobs"], timeout=20)))
    waiter.start()
    deadline = time.monotonic() + 20
    while not any(client["cmd"] == "blpop" for client in other.client_list()):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    for i in range(20):  # the other connection is served while BLPOP waits
        assert other.set(f"free{i}", i) is True
    other.rpush("jobs", "job-1")  # only this connection can wake the waiter
    waiter.join(30)
    assert popped == [(b"jobs", b"job-1")]


def test_pubsub(server: Running) -> None:
    for protocol in (2, 3):
        subscriber = server.redis(protocol=protocol).pubsub()
        subscriber.subscribe("news")
        assert subscriber.get_message(timeout=10)["type"] == "subscribe"
        publisher = server.redis(protocol=2)
        deadline = time.monotonic() + 20
        message = None
        while message is None:
            assert time.monotonic() < deadline
            publisher.publish("news", f"hello {protocol}")
            message = subscriber.get_message(ignore_subscribe_messages=True, timeout=0.5)
        assert message["data"] == f"hello {protocol}".encode()
        subscriber.close()


# -- raw sockets, redis-cli ----------------------------------------------------------------------
def test_inline_commands(server: Running) -> None:
    with server.raw() as sock:
        sock.sendall(b'SET inline "two words\\x21"\r\nGET inline\nPING\r\n\r\nECHO \'it\\\'s\'\r\n')
        expected = b"+OK\r\n$10\r\ntwo words!\r\n+PONG\r\n$4\r\nit's\r\n"
        assert read_exactly(sock, expected) == expected


def test_hello_switches_to_resp3(server: Running) -> None:
    with server.raw() as sock:
        sock.sendall(b"HELLO 3\r\n")
        reply = b""
        while b"modules\r\n*0\r\n" not in reply:
            reply += sock.recv(4096)
        assert reply.startswith(b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n")
        sock.sendall(b"GET nothing\r\nHELLO 4\r\nHGETALL nothing\r\n")
        expected = b"_\r\n-NOPROTO unsupported protocol version\r\n%0\r\n"
        assert read_exactly(sock, expected) == expected


def test_redis_cli(server: Running) -> None:
    if shutil.which("redis-cli") is None:
        pytest.fail("redis-cli is not installed: run `make test`")

    def cli(*args: str, stdin: bytes | None = None) -> str:
        return subprocess.run(["redis-cli", "-p", str(server.port), *args], input=stdin, capture_output=True,
                              check=True, timeout=120).stdout.decode()

    assert cli("PING") == "PONG\n"
    assert cli("SET", "cli", "value") == "OK\n" and cli("GET", "cli") == "value\n"
    server.redis(protocol=2).execute_command("SELECT", "0")
    mass = b"".join(b"*3\r\n$3\r\nSET\r\n$%d\r\nmass:%d\r\n$%d\r\n%d\r\n" % (len(b"mass:%d" % i), i, len(b"%d" % i), i)
                    for i in range(1000))
    output = cli("-n", "2", "--pipe", stdin=mass)
    assert "errors: 0, replies: 1000" in output
    assert server.redimo(2).mget([f"mass:{i}" for i in (0, 500, 999)]) == [b"0", b"500", b"999"]
    assert cli("-n", "2", "DBSIZE") == "1000\n"


# -- security ------------------------------------------------------------------------------------
def test_requirepass(serve: Callable[..., Running]) -> None:
    server = serve(requirepass="s3cret")
    anonymous = server.redis(protocol=2)
    with pytest.raises(redis.AuthenticationError, match="Authentication required"):
        anonymous.get("k")
    with pytest.raises(redis.AuthenticationError, match="invalid username-password pair"):
        server.redis(protocol=2, password="wrong").ping()
    assert server.redis(protocol=2, password="s3cret").set("k", "v") is True
    assert server.redis(protocol=3, password="s3cret").get("k") == b"v"  # HELLO 3 AUTH default s3cret
    with server.raw() as sock:  # Redis's stricter limits before AUTH
        sock.sendall(b"*11\r\n")
        assert read_all(sock) == b"-ERR Protocol error: unauthenticated multibulk length\r\n"
    with server.raw() as sock:
        sock.sendall(b"AUTH s3cret\r\n*11\r\n" + b"$4\r\nECHO\r\n" + b"$1\r\nx\r\n" * 10)
        expected = b"+OK\r\n-ERR wrong number of arguments for 'echo' command\r\n"
        assert read_exactly(sock, expected) == expected
    plain = serve()
    with pytest.raises(redis.AuthenticationError, match="without any password configured"):
        plain.redis(protocol=2).execute_command("AUTH", "x")


def test_protected_mode_decision() -> None:
    options = Options(table=TABLE)
    assert not refused_by_protected_mode(options, "127.0.0.1")
    assert not refused_by_protected_mode(options, "::1") and not refused_by_protected_mode(options, "::ffff:127.0.0.2")
    assert refused_by_protected_mode(options, "192.0.2.7") and refused_by_protected_mode(options, "fd00::2")
    assert not refused_by_protected_mode(Options(table=TABLE, requirepass="p"), "192.0.2.7")
    assert not refused_by_protected_mode(Options(table=TABLE, protected_mode=False), "192.0.2.7")
    assert is_loopback("127.5.5.5") and not is_loopback("not an address")


def non_loopback_address() -> str | None:
    for family, _, _, _, address in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
        if not is_loopback(address[0]):
            return address[0]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # no packet is sent
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if is_loopback(address) else address


def test_protected_mode_refuses_other_hosts(serve: Callable[..., Running]) -> None:
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address (the decision is tested above)")
    server = serve(host="0.0.0.0")
    with server.raw(address) as sock:
        assert read_all(sock).startswith(b"-DENIED Redis is running in protected mode")
    assert server.redis(protocol=2).ping() is True  # loopback is served
    guarded = serve(host="0.0.0.0", requirepass="p")
    assert redis.Redis(host=address, port=guarded.port, password="p", protocol=2).ping() is True


def test_tls(serve: Callable[..., Running], tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    server = serve(tls_cert=str(cert), tls_key=str(key))
    secure = server.redis(protocol=2, ssl=True, ssl_ca_certs=str(cert))
    assert secure.set("tls", "yes") is True and secure.get("tls") == b"yes"
    with pytest.raises(redis.ConnectionError):
        server.redis(protocol=2, socket_timeout=5).ping()  # plain text is not served


# -- limits --------------------------------------------------------------------------------------
def test_bulk_and_query_buffer_limits(serve: Callable[..., Running]) -> None:
    server = serve(max_bulk=1000, query_buffer=4096)
    with server.raw() as sock:
        sock.sendall(b"PING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1001\r\n")
        assert read_all(sock) == b"+PONG\r\n-ERR Protocol error: invalid bulk length\r\n"
    with server.raw() as sock:  # a count line that never ends: over the query buffer, closed without a reply
        sock.sendall(b"*" + b"1" * 5000)
        assert read_all(sock) == b""
    with server.raw() as sock:  # a 1000-byte argument is within the limit
        sock.sendall(b"*2\r\n$4\r\nECHO\r\n$1000\r\n" + b"x" * 1000 + b"\r\n")
        expected = b"$1000\r\n" + b"x" * 1000 + b"\r\n"
        assert read_exactly(sock, expected) == expected
    assert server.redis(protocol=2).ping() is True


def test_maxclients_and_idle_timeout(serve: Callable[..., Running]) -> None:
    server = serve(maxclients=2, timeout=1)
    first, second = server.raw(), server.raw()
    first.sendall(b"PING\r\n")
    assert read_exactly(first, b"+PONG\r\n") == b"+PONG\r\n"
    second.sendall(b"PING\r\n")
    assert read_exactly(second, b"+PONG\r\n") == b"+PONG\r\n"
    with server.raw() as third:
        assert read_all(third) == b"-ERR max number of clients reached\r\n"
    assert read_all(first) == b"" and read_all(second) == b""  # idle for a second: closed
    first.close()
    second.close()


def test_output_buffer_limit_disconnects_a_slow_reader(serve: Callable[..., Running]) -> None:
    server = serve(output_buffer=1024 * 1024)
    server.redimo().set("big", b"v" * 300_000)
    with server.raw() as sock:
        count = 300  # 90 MB of replies, far more than the socket buffers and the limit hold
        sock.sendall(b"GET big\r\n" * count)  # and no reading until the server gives up
        received = 0
        while chunk := sock.recv(1 << 20):
            received += len(chunk)
        assert received < count * 300_000
    assert server.redis(protocol=2).ping() is True


def test_client_and_server_commands(server: Running) -> None:
    r = server.redis(protocol=2)
    r.client_setname("worker-1")
    assert r.client_getname() == "worker-1"
    with pytest.raises(redis.ResponseError, match="cannot contain spaces"):
        r.client_setname("two words")
    assert any(client["name"] == "worker-1" for client in r.client_list())
    assert r.client_info()["name"] == "worker-1"
    with server.raw() as victim:
        victim.sendall(b"CLIENT ID\r\n")
        reply = b""
        while not reply.endswith(b"\r\n"):
            reply += victim.recv(100)
        assert r.client_kill_filter(_id=int(reply[1:-2])) == 1
        assert read_all(victim) == b""
    assert r.info()["redis_version"] == "7.0.0" and r.info("clients")["connected_clients"] >= 1
    assert r.config_get("maxmemory") == {"maxmemory": "0"}
    assert r.config_get("*")["databases"] == "16"
    seconds, micros = r.time()
    assert abs(seconds - time.time()) < 60 and 0 <= micros < 1_000_000
    assert r.command_count() > 150
    assert r.execute_command("COMMAND", "INFO", "get")["get"]["arity"] == 2
    assert r.execute_command("DBSIZE") >= 0
    with pytest.raises(redis.ResponseError, match="not supported"):
        r.execute_command("CONFIG", "SET", "maxmemory", "1")
    assert r.execute_command("RESET") == "RESET" and r.client_getname() is None
    with pytest.raises(redis.ResponseError, match="SELECT inside MULTI"):
        with r.pipeline() as pipe:
            pipe.execute_command("SELECT", "1").set("x", "1").execute()


# -- protocol errors, byte for byte with Redis ---------------------------------------------------
MALFORMED = [
    b"*abc\r\n", b"*1\r\nfoo\r\n", b"*1\r\n$-5\r\n", b"*1\r\n$x\r\n", b'SET "unbalanced\r\n', b"SET 'a'b c\r\n",
    b"*3000000000\r\n", b"*1\r\n$600000000\r\n", b"*-1\r\nPING\r\n", b"*0\r\nPING\r\n", b"\r\n\r\nPING\r\n",
    b'ECHO "\\x41\\n\\t" \'x\\\'y\'\r\n', b"*2\r\n$4\r\nECHO\r\n$3\r\nabcXYPING\r\n", b"PING\r\n*1\r\n*1\r\n",
]


def exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        return read_all(sock)


def test_protocol_errors_as_redis(server: Running, redis_server: redis.Redis) -> None:
    redis_port = redis_server.connection_pool.connection_kwargs["port"]
    for data in MALFORMED:
        assert exchange(server.port, data) == exchange(redis_port, data), data


def test_parser_units() -> None:
    assert split_args(b' a "b c" \'d e\' "\\x4a\\n" ') == [b"a", b"b c", b"d e", b"J\n"]
    assert split_args(b'"open') is None and split_args(b'"a"b') is None and split_args(b"") == []
    parser = Parser(Limits(max_bulk=10))
    parser.feed(b"*2\r\n$4\r\nECHO\r\n$3\r\nab")
    assert parser.commands() == []
    parser.feed(b"c\r\n*1\r\n$4\r\nPING\r\n*1\r\n$11\r\n")
    with pytest.raises(ProtocolError) as failure:
        parser.commands()
    assert failure.value.commands == [[b"ECHO", b"abc"], [b"PING"]]
    assert failure.value.message == "Protocol error: invalid bulk length"


# -- fuzzing -------------------------------------------------------------------------------------
SAFE_NAMES = [b"PING", b"ECHO", b"GET", b"SET", b"INCR", b"HELLO", b"SELECT", b"CLIENT", b"EXISTS", b"NOPE",
              b"MULTI", b"EXEC", b"QUIT", b"TIME", b"INFO", b"COMMAND"]
words = st.one_of(st.binary(max_size=12), st.sampled_from([b"3", b"2", b"0", b"-1", b"GETNAME", b"SETNAME"]))


def bulk_command(name: bytes, args: list[bytes]) -> bytes:
    parts = [name, *args]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)


frames = st.one_of(
    st.builds(bulk_command, st.sampled_from(SAFE_NAMES), st.lists(words, max_size=4)),
    st.builds(lambda name, args: b" ".join([name, *args]) + b"\r\n", st.sampled_from(SAFE_NAMES),
              st.lists(st.binary(min_size=1, max_size=8).filter(lambda word: b"\n" not in word), max_size=3)),
    st.sampled_from([b"*", b"$", b"\r\n", b"*1\r\n", b"$5\r\n", b"*99999999999999999999\r\n", b"*2147483648\r\n",
                     b"*1\r\n$536870913\r\n", b"*1\r\n$536870912\r\n", b"*-7\r\n", b'"', b"'", b"\x00\xff"]),
    st.binary(max_size=40),
)


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(chunks=st.lists(frames, min_size=1, max_size=6), cut=st.integers(min_value=0, max_value=400))
def test_fuzzed_input_never_hangs_or_mixes_replies(fuzz_server: tuple[Running, socket.socket], chunks: list[bytes],
                                                   cut: int) -> None:
    """Each example's bytes (cut short at random) go to a new connection, which then half-closes: the
    server must answer and close. A steady client's ECHOes always get its own replies, in order."""
    server, steady = fuzz_server
    data = b"".join(chunks)
    exchange(server.port, data[:max(1, len(data) - cut % (len(data) + 1))])
    token = uuid.uuid4().hex.encode()
    steady.sendall(bulk_command(b"ECHO", [token]))
    expected = b"$32\r\n" + token + b"\r\n"
    assert read_exactly(steady, expected) == expected


@pytest.fixture(scope="module")
def fuzz_server(dynamodb_local_client: Any) -> Iterator[tuple[Running, socket.socket]]:
    running = Running(dynamodb_local_client)
    steady = running.raw()
    yield running, steady
    steady.close()
    running.stop()


# -- processes: SIGTERM, --workers ---------------------------------------------------------------
def start_process(endpoint: str, *options: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "redimo.server", "--table", TABLE, "--endpoint-url", endpoint,
                                "--port", str(port), *options], cwd=ROOT, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while True:
        try:
            redis.Redis(port=port, protocol=2, socket_timeout=5).ping()
            return process, port
        except redis.ConnectionError:
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read().decode()
            time.sleep(0.1)


def test_sigterm_finishes_running_commands(dynamodb_local_endpoint: str, dynamodb_local_client: Any) -> None:
    process, port = start_process(dynamodb_local_endpoint, "--db", f"0=sigterm-{uuid.uuid4().hex}")
    try:
        blocked, watcher = redis.Redis(port=port, protocol=2), redis.Redis(port=port, protocol=2)
        replies: list[Any] = []
        waiter = threading.Thread(target=lambda: replies.append(blocked.blpop(["never"], timeout=2)))
        waiter.start()
        deadline = time.monotonic() + 20
        while not any(client["cmd"] == "blpop" for client in watcher.client_list()):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        waiter.join(30)
        assert replies == [None]  # the BLPOP ran to its timeout and got its reply
        assert process.wait(30) == 0
        with pytest.raises(redis.ConnectionError):
            redis.Redis(port=port, protocol=2, socket_timeout=5).ping()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_workers_share_the_port(dynamodb_local_endpoint: str) -> None:
    process, port = start_process(dynamodb_local_endpoint, "--workers", "2")
    try:
        clients: list[redis.Redis] = []
        pids: set[int] = set()
        deadline = time.monotonic() + 60
        while len(pids) < 2:  # the kernel spreads new connections over the listening workers
            assert time.monotonic() < deadline, pids
            clients.append(redis.Redis(port=port, protocol=2))
            pids.add(clients[-1].info("server")["process_id"])
        assert process.pid not in pids
        clients[0].set(f"workers-{uuid.uuid4().hex}", "1")
        for client in clients:
            client.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
