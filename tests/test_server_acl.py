"""``redimo serve --aclfile``: ACL users, their command and key rules, Redis 7's errors."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
import redis

from redimo.acl import User, command_keys, parse_acl
from redimo.server import Options, refused_by_protected_mode
from conftest import TABLE
from served import Running

ACL = """\
# sessions and cache only
user alice on >wonderland ~cache:* ~session:* +@read +set +del +multi +exec -flushdb +client -client|kill +publish
user bob off >builder allkeys +@all
user carol on nopass allkeys +@all -@dangerous &*
"""


@pytest.fixture
def acl_server(serve: Callable[..., Running], tmp_path: Path) -> Running:  # noqa: F811
    path = tmp_path / "users.acl"
    path.write_text(ACL)
    return serve(aclfile=str(path), requirepass="root")


def test_users_and_passwords(acl_server: Running) -> None:
    alice = acl_server.redis(protocol=2, username="alice", password="wonderland")
    assert alice.set("cache:1", "v") is True and alice.get("cache:1") == b"v"
    assert alice.client_info()["user"] == "alice"
    assert acl_server.redis(protocol=3, username="alice", password="wonderland").get("cache:1") == b"v"  # HELLO AUTH
    for username, password in (("alice", "wrong"), ("nobody", "wonderland"), ("bob", "builder")):  # bob is off
        with pytest.raises(redis.AuthenticationError, match="^invalid username-password pair or user is disabled.$"):
            acl_server.redis(protocol=2, username=username, password=password).ping()
    with pytest.raises(redis.AuthenticationError, match="Authentication required"):
        acl_server.redis(protocol=2).get("cache:1")  # --requirepass: the default user needs a password
    assert acl_server.redis(protocol=2, password="root").get("cache:1") == b"v"  # the default user: every command
    assert acl_server.redis(protocol=2, username="carol", password="anything").get("cache:1") == b"v"  # nopass


def test_command_and_key_rules(acl_server: Running) -> None:
    alice = acl_server.redis(protocol=2, username="alice", password="wonderland")
    with pytest.raises(redis.exceptions.NoPermissionError,
                       match="^User alice has no permissions to run the 'flushdb' command$"):
        alice.flushdb()
    with pytest.raises(redis.exceptions.NoPermissionError, match="'lpush' command"):
        alice.lpush("cache:list", "x")
    with pytest.raises(redis.exceptions.NoPermissionError, match="^No permissions to access a key$"):
        alice.get("secret")
    with pytest.raises(redis.exceptions.NoPermissionError, match="access a key"):
        alice.mget("cache:1", "secret")  # every key counts
    with pytest.raises(redis.exceptions.NoPermissionError, match="access a key"):
        alice.keys("*")  # KEYS is @read, its keys cannot be told: refused with key patterns
    assert alice.mget("cache:1", "session:9") == [None, None]
    with pytest.raises(redis.exceptions.NoPermissionError, match=r"'client\|kill' command"):
        alice.execute_command("CLIENT", "KILL", "ID", "1")
    with pytest.raises(redis.exceptions.NoPermissionError, match="'eval' command"):
        alice.eval("return 1", 0)
    with pytest.raises(redis.exceptions.NoPermissionError, match="access a channel"):
        alice.publish("news", "x")
    with alice.pipeline(transaction=False) as pipe:  # a refusal in a pipeline replies in its place
        replies = pipe.set("cache:2", "a").set("other", "b").get("cache:2").execute(raise_on_error=False)
    assert replies[0] is True and isinstance(replies[1], redis.exceptions.NoPermissionError) and replies[2] == b"a"
    with pytest.raises(redis.exceptions.NoPermissionError, match="SET other"):  # refused in MULTI: EXEC aborts
        with alice.pipeline() as pipe:
            pipe.set("cache:3", "x").set("other", "y").execute()
    assert alice.get("cache:3") is None
    carol = acl_server.redis(protocol=2, username="carol", password="")
    with pytest.raises(redis.exceptions.NoPermissionError, match="'flushall' command"):
        carol.flushall()
    assert carol.publish("news", "x") == 0 and carol.set("any", "1") is True


def test_acl_file_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.acl"
    for text, error in (("user alice on +nosuch", "line 1: unknown command 'nosuch'"),
                        ("\nuser alice on +@nosuch", "line 2: unknown ACL category"),
                        ("user alice &cache:*", "unsupported ACL rule '&cache:\\*'"),
                        ("alice on", "line 1: a line must be"),
                        ("user a on\nuser a off", "defined twice")):
        path.write_text(text)
        with pytest.raises(ValueError, match=error):
            Options(table=TABLE, aclfile=str(path))


def test_rules_and_key_positions() -> None:
    users = parse_acl("user u on >p resetpass #" + "ab" * 32 + " ~a* +@all -@write +set reset on nopass +get ~k")
    user = users["u"]
    assert user.enabled and user.nopass and user.patterns == [b"k"] and user.allowed == {b"get"}
    assert users["default"].unrestricted and not User("x").enabled
    assert command_keys([b"MSET", b"a", b"1", b"b", b"2"]) == [b"a", b"b"]
    assert command_keys([b"BLPOP", b"a", b"b", b"0"]) == [b"a", b"b"]
    assert command_keys([b"ZUNIONSTORE", b"d", b"2", b"a", b"b", b"WEIGHTS", b"1", b"2"]) == [b"d", b"a", b"b"]
    assert command_keys([b"EVAL", b"s", b"1", b"k", b"arg"]) == [b"k"]
    assert command_keys([b"XREAD", b"COUNT", b"1", b"STREAMS", b"s1", b"s2", b"0", b"0"]) == [b"s1", b"s2"]
    assert command_keys([b"GEORADIUS", b"g", b"0", b"0", b"1", b"km", b"STORE", b"d"]) == [b"g", b"d"]
    assert command_keys([b"OBJECT", b"ENCODING", b"k"]) == [b"k"]
    assert command_keys([b"ZINTER", b"5", b"a"]) is None  # numkeys beyond the arguments: refused
    assert command_keys([b"KEYS", b"*"]) is None
    assert command_keys([b"SORT", b"l", b"BY", b"nosort", b"STORE", b"d", b"LIMIT", b"0", b"1"]) == [b"l", b"d"]
    assert command_keys([b"SORT", b"l", b"BY", b"w_*"]) is None  # BY and GET read other keys: refused
    assert command_keys([b"SORT_RO", b"l", b"GET", b"#"]) is None
    open_default = Options(table=TABLE, users=parse_acl("user default on >pw"))
    assert not refused_by_protected_mode(open_default, "192.0.2.7")  # a password on the default user
