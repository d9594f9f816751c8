"""ACL users for ``redimo serve`` (``--aclfile``): a subset of Redis's ACL file syntax, the command
categories it names, and each command's key positions. See docs/server.md, "ACL users"."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from pathlib import Path

from .commands import COMMANDS
from .commands.transactions import SESSION_COMMANDS
from .glob import glob_match

# Commands taking a subcommand: ACL rules and errors name them "client|kill" (as Redis).
SUBCOMMANDS: dict[bytes, tuple[bytes, ...]] = {
    b"client": (b"id", b"setname", b"getname", b"setinfo", b"info", b"list", b"kill"),
    b"config": (b"get", b"set", b"resetstat", b"rewrite"),
    b"command": (b"count", b"info", b"docs", b"list"),
}
SERVER_NAMES = (b"quit", b"reset", b"select", b"auth", b"hello", b"client", b"config", b"command", b"info", b"time")
ALWAYS = frozenset((b"auth", b"hello", b"quit", b"reset"))  # Redis's no-auth commands: every user runs them
SCRIPTS = frozenset((b"eval", b"eval_ro", b"evalsha", b"evalsha_ro", b"fcall", b"fcall_ro", b"script", b"function"))
CHANNELS = frozenset((b"publish", b"subscribe", b"psubscribe"))


def names(text: str) -> frozenset[bytes]:
    return frozenset(name.encode() for name in text.split())


WRITE = names(
    "append blmove blmpop blpop brpop brpoplpush bzmpop bzpopmax bzpopmin copy decr decrby del expire expireat "
    "flushall flushdb geoadd georadius georadiusbymember geosearchstore getdel getex getset hdel hincrby "
    "hincrbyfloat hmset hset hsetnx incr incrby incrbyfloat linsert lmove lmpop lpop lpush lpushx lrem lset ltrim "
    "mset msetnx move persist pexpire pexpireat pfadd pfmerge psetex rename renamenx restore rpop rpoplpush rpush "
    "rpushx sadd sdiffstore set setex setnx setrange sinterstore smove sort spop srem sunionstore unlink xack xadd "
    "xautoclaim xclaim xdel xgroup xreadgroup xsetid xtrim zadd zdiffstore zincrby zinterstore zmpop zpopmax zpopmin "
    "zrangestore zrem zremrangebylex zremrangebyrank zremrangebyscore zunionstore")
NOT_DATA = names("ping echo publish pubsub") | SESSION_COMMANDS.keys() | set(SERVER_NAMES)
READ = frozenset(COMMANDS) - WRITE - NOT_DATA
DANGEROUS = names("flushdb flushall keys sort restore info config client|kill client|list config|set config|get "
                  "config|resetstat config|rewrite")
CATEGORIES: dict[bytes, frozenset[bytes]] = {
    b"read": READ,
    b"write": WRITE,
    b"admin": names("config config|get config|set config|resetstat config|rewrite client|kill client|list"),
    b"dangerous": DANGEROUS,
    b"keyspace": names("del unlink exists touch type expire expireat pexpire pexpireat persist ttl pttl expiretime "
                       "pexpiretime rename renamenx copy move dump restore keys scan randomkey dbsize flushdb flushall "
                       "object"),
    b"pubsub": names("publish pubsub subscribe psubscribe unsubscribe punsubscribe"),
    b"transaction": names("multi exec discard watch unwatch"),
    b"scripting": SCRIPTS,
    b"connection": names("ping echo select auth hello quit reset client client|id client|setname client|getname "
                         "client|setinfo client|info command command|count command|info command|docs command|list"),
}


def universe() -> frozenset[bytes]:
    """Every name a rule can grant: the commands and the server's subcommands (``client|kill``)."""
    subs = {name + b"|" + sub for name, subs in SUBCOMMANDS.items() for sub in subs}
    return frozenset(COMMANDS) | SESSION_COMMANDS.keys() | set(SERVER_NAMES) | subs


ALL = universe()
CATEGORIES[b"all"] = ALL

# Key positions (Redis's key specs, for the commands Redimo has). Default: the first argument.
KEYLESS = names("ping echo dbsize publish pubsub multi exec discard unwatch "
                "subscribe psubscribe unsubscribe punsubscribe script function") | set(SERVER_NAMES)
EVERY = names("del unlink exists touch mget watch sinter sunion sdiff sinterstore sunionstore sdiffstore pfcount "
              "pfmerge")
FIRST_TWO = names("rename renamenx copy smove rpoplpush lmove brpoplpush blmove geosearchstore zrangestore")
BUT_LAST = names("blpop brpop bzpopmin bzpopmax")  # the last argument is the timeout
NUMKEYS = {name: at for at, text in ((1, "lmpop zmpop zdiff zinter zunion zintercard sintercard"),
                                     (2, "blmpop bzmpop eval eval_ro evalsha evalsha_ro fcall fcall_ro"))
           for name in names(text)}
STORE_NUMKEYS = names("zdiffstore zinterstore zunionstore")  # destination, numkeys, keys
# Commands on every key: refused to users with key patterns (Redis lets KEYS and SCAN show every name).
WHOLE_KEYSPACE = names("keys scan randomkey flushdb flushall")
SUBCOMMAND_KEY = names("object xinfo xgroup")  # OBJECT ENCODING key, XINFO STREAM key, XGROUP CREATE key ...


def command_keys(args: list[bytes]) -> list[bytes] | None:
    """The keys a command (name first) names; None when they cannot be told (a malformed command, or
    one that acts on the whole keyspace)."""
    name, rest = args[0].lower(), args[1:]
    if name in WHOLE_KEYSPACE:
        return None
    try:
        if name in KEYLESS:
            return []
        if name in EVERY:
            return rest
        if name in (b"mset", b"msetnx"):
            return rest[::2]
        if name in FIRST_TWO:
            return rest[:2]
        if name in BUT_LAST:
            return rest[:-1]
        if name in NUMKEYS:
            at = NUMKEYS[name]
            return rest[at:at + int(rest[at - 1])] if len(rest) >= at + int(rest[at - 1]) else None
        if name in STORE_NUMKEYS:
            return rest[:1] + rest[2:2 + int(rest[1])] if len(rest) >= 2 + int(rest[1]) else None
        if name in (b"xread", b"xreadgroup"):
            words = [arg.upper() for arg in rest]
            streams = rest[words.index(b"STREAMS") + 1:]
            return streams[:len(streams) // 2]
        if name in (b"georadius", b"georadiusbymember"):  # ... [STORE key] [STOREDIST key]
            return rest[:1] + [rest[i + 1] for i in range(len(rest) - 1) if rest[i].upper() in (b"STORE", b"STOREDIST")]
        if name in (b"sort", b"sort_ro"):
            return sort_keys(rest)
        if name in SUBCOMMAND_KEY:
            return rest[1:2] if rest and rest[0].upper() != b"HELP" else []
        return rest[:1]
    except (ValueError, IndexError):
        return None


def sort_keys(rest: list[bytes]) -> list[bytes] | None:
    """SORT's key and STORE destination; None (refused to users with key patterns, as Redis refuses
    them BY and GET) when BY or GET patterns name other keys."""
    words = [arg.upper() for arg in rest]
    named = [(word, rest[index + 1]) for index, word in enumerate(words[:-1]) if word in (b"BY", b"GET", b"STORE")]
    if any(word == b"GET" or (word == b"BY" and b"*" in value) for word, value in named):
        return None
    return rest[:1] + [value for word, value in named if word == b"STORE"]


def hashed(password: bytes) -> str:
    return hashlib.sha256(password).hexdigest()


@dataclass
class User:
    """One ACL user: whether it is on, its password hashes, the names it may run and its key patterns."""

    name: str
    enabled: bool = False
    nopass: bool = False
    passwords: set[str] = field(default_factory=set)  # SHA-256 hex digests, as Redis keeps them
    allowed: set[bytes] = field(default_factory=set)
    patterns: list[bytes] = field(default_factory=list)
    allkeys: bool = False
    allchannels: bool = False

    def apply(self, rule: str) -> None:
        """One ACL rule, as Redis's ACL SETUSER and ACL file take it."""
        lower = rule.lower()
        if lower in ("on", "off"):
            self.enabled = lower == "on"
        elif lower == "nopass":
            self.nopass, self.passwords = True, set()
        elif lower == "resetpass":
            self.nopass, self.passwords = False, set()
        elif rule.startswith(">"):
            self.passwords.add(hashed(rule[1:].encode()))
            self.nopass = False
        elif rule.startswith("<"):
            self.passwords.discard(hashed(rule[1:].encode()))
        elif rule.startswith("#"):
            if len(rule) != 65 or any(c not in "0123456789abcdef" for c in lower[1:]):
                raise ValueError(f"{rule!r} is not a SHA-256 hash (64 hex digits)")
            self.passwords.add(lower[1:])
            self.nopass = False
        elif lower in ("allkeys", "~*"):
            self.allkeys, self.patterns = True, []
        elif lower == "resetkeys":
            self.allkeys, self.patterns = False, []
        elif rule.startswith("~"):
            if not self.allkeys:
                self.patterns.append(rule[1:].encode())
        elif lower in ("allchannels", "&*"):
            self.allchannels = True
        elif lower == "resetchannels":
            self.allchannels = False
        elif lower in ("allcommands", "+@all"):
            self.allowed = set(ALL)
        elif lower in ("nocommands", "-@all"):
            self.allowed = set()
        elif rule[:1] in "+-" and len(rule) > 1:
            self.command_rule(rule[0] == "+", lower[1:].encode())
        elif lower == "reset":  # resetpass resetkeys resetchannels off -@all
            self.enabled = self.nopass = self.allkeys = self.allchannels = False
            self.passwords, self.allowed, self.patterns = set(), set(), []
        else:
            raise ValueError(f"unsupported ACL rule {rule!r}")

    def command_rule(self, add: bool, what: bytes) -> None:
        if what.startswith(b"@"):
            if what[1:] not in CATEGORIES:
                raise ValueError(f"unknown ACL category {what.decode()!r} (known: "
                                 + ", ".join("@" + name.decode() for name in CATEGORIES) + ")")
            chosen = set(CATEGORIES[what[1:]])
        elif what in ALL:
            chosen = {what} | {name for name in ALL if name.startswith(what + b"|")}
        else:
            raise ValueError(f"unknown command {what.decode()!r} in an ACL rule")
        if add:
            self.allowed |= chosen
        else:
            self.allowed -= chosen

    def check_password(self, password: bytes) -> bool:
        """Whether this user is on and ``password`` opens it."""
        digest = hashed(password)
        return self.enabled and (self.nopass or any(hmac.compare_digest(digest, known) for known in self.passwords))

    @property
    def unrestricted(self) -> bool:
        return self.allkeys and self.allchannels and self.allowed >= ALL

    def denial(self, args: list[bytes]) -> str | None:
        """Redis 7's NOPERM error for running ``args`` (name first), or None when this user may."""
        name = args[0].lower()
        if self.unrestricted or name in ALWAYS or name not in ALL:  # unknown commands get their own error
            return None
        shown = name + b"|" + args[1].lower() if name in SUBCOMMANDS and len(args) > 1 \
            and name + b"|" + args[1].lower() in ALL else name
        if shown not in self.allowed or name in SCRIPTS:  # a script's own commands are not checked
            return f"NOPERM User {self.name} has no permissions to run the '{shown.decode()}' command"
        if name in CHANNELS and not self.allchannels:
            return "NOPERM No permissions to access a channel"
        if not self.allkeys:
            keys = command_keys(args)
            if keys is None or not all(any(glob_match(pattern, key) for pattern in self.patterns) for key in keys):
                return "NOPERM No permissions to access a key"
        return None


def default_user() -> User:
    """Redis's default user: ``on nopass ~* &* +@all``."""
    return User("default", enabled=True, nopass=True, allowed=set(ALL), allkeys=True, allchannels=True)


def parse_acl(text: str) -> dict[str, User]:
    """The users of an ACL file (lines ``user NAME RULE ...``; blank lines and ``#`` comments are skipped),
    with the default user as Redis has it unless the file defines it."""
    users = {"default": default_user()}
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        try:
            if words[0] != "user" or len(words) < 2:
                raise ValueError("a line must be 'user NAME RULE ...'")
            if words[1] in seen:
                raise ValueError(f"user {words[1]!r} is defined twice")
            seen.add(words[1])
            user = users[words[1]] = User(words[1])
            for rule in words[2:]:
                user.apply(rule)
        except ValueError as error:
            raise ValueError(f"ACL file line {number}: {error}") from None
    return users


def load_users(path: str | None, requirepass: str | None) -> dict[str, User]:
    """The users of ``--aclfile`` (or only Redis's default user); ``--requirepass`` is the default user's
    password, as in Redis."""
    users = parse_acl(Path(path).read_text()) if path else {"default": default_user()}
    if requirepass:
        default = users["default"]
        default.nopass, default.passwords = False, {hashed(requirepass.encode())}
    return users
