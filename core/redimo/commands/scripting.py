"""Lua scripting: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT LOAD/EXISTS/FLUSH, FUNCTION
LOAD/LIST/DELETE/FLUSH, FCALL, FCALL_RO (docs/scripting.md).

Scripts run in an embedded Lua 5.1 (lupa), sandboxed as Redis sandboxes them, with Redis's ``redis``
library (``call``, ``pcall``, ``error_reply``, ``status_reply``, ``sha1hex``, ``log``) and ``cjson``,
``cmsgpack`` and ``bit``. A script is atomic, as in Redis: it runs on the staging gateway of MULTI/EXEC
(``transactions.atomically``), its reads go to DynamoDB and are recorded, its writes stay staged, and
they are committed in one TransactWriteItems conditioned on what it read. When another client got in
between, nothing is applied and the script runs again. Scripts and function libraries are cached per
client (``Engine``), by SHA1.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

import lupa.lua51 as lua51
import msgpack

from ..glob import glob_match
from ..protocol import OK, ReplyError, SimpleString, parse_int
from ..storage import Database
from .base import COMMANDS, Reply
from .transactions import SESSION_COMMANDS, atomically, without_blocking

if TYPE_CHECKING:
    from ..engine import Engine, Session

TIME_LIMIT = 5.0  # seconds a script may run (Redis's busy-reply-threshold); then it is stopped
NOT_FROM_SCRIPTS = frozenset(name.encode() for name in (
    "eval evalsha eval_ro evalsha_ro script fcall fcall_ro function multi exec discard watch unwatch "
    "subscribe psubscribe unsubscribe punsubscribe ssubscribe sunsubscribe").split())
LIBRARY_HEADER = re.compile(rb"#!(\w+)([^\n]*)\n")
log = logging.getLogger("redimo.scripts")

BOOTSTRAP = r"""
local bridge, sha1hex, log, expired, json_encode, json_decode, pack, unpack_, bits = ...
local loadstring, setfenv, pcall, error, rawset, tostring = loadstring, setfenv, pcall, error, rawset, tostring
local sethook = debug.sethook

local this_line, last_line = 0, 0  -- lines of the running script, kept by the hook (a tail call loses its frame)
local function command(raise, line, ...)
  local ok, reply = bridge(...)
  if ok then return reply end
  if raise then error({err = reply, line = line}, 0) end
  return {err = reply}
end
local redis = {
  call = function(...) return command(true, last_line, ...) end,  -- one line each: see run's hook
  pcall = function(...) return command(false, last_line, ...) end,
  error_reply = function(message) return {err = message} end,
  status_reply = function(message) return {ok = message} end,
  sha1hex = function(text) return sha1hex(text) end,
  log = function(level, ...) log(level, ...) end,
  setresp = function() error("Redimo scripts speak RESP2 only", 2) end,
  set_repl = function() end,
  replicate_commands = function() return true end,
  breakpoint = function() return false end,
  debug = function() end,
  LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
  REPL_NONE = 0, REPL_AOF = 1, REPL_SLAVE = 2, REPL_REPLICA = 2, REPL_ALL = 3,
}

-- the scripts' globals: what Redis leaves them (no os, io, require, loadfile, dofile), read-only
local sandbox = {redis = redis, cjson = {encode = json_encode, decode = json_decode},
                 cmsgpack = {pack = pack, unpack = unpack_}, bit = bits}
for _, name in ipairs({"assert", "error", "ipairs", "next", "pairs", "pcall", "rawequal", "rawget", "rawset",
                       "select", "setmetatable", "getmetatable", "tonumber", "tostring", "type", "unpack",
                       "xpcall", "string", "table", "math", "_VERSION"}) do
  sandbox[name] = _G[name]
end
sandbox._G = sandbox
setmetatable(sandbox, {
  __index = function(_, name) error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2) end,
  __newindex = function() error("Attempt to modify a readonly table", 2) end,
  __metatable = false,
})

local function compile(body, chunk)
  local fn, message = loadstring(body, chunk)
  if not fn then return false, message end
  setfenv(fn, sandbox)
  return true, fn
end

local function run(fn, keys, argv)
  rawset(sandbox, "KEYS", keys)
  rawset(sandbox, "ARGV", argv)
  sethook(function(event, line)
    if event == "line" then last_line, this_line = this_line, line
    elseif expired() then error("script time limit", 0) end
  end, "l", 10000)
  local ok, result = pcall(fn, keys, argv)  -- a script reads KEYS and ARGV, a function its arguments
  sethook()
  return ok, result
end

return compile, run, redis
"""


def lua_number(value: float) -> bytes:
    """A Lua number as Lua 5.1's tostring writes it (``%.14g``), as redis.call passes it."""
    return b"%d" % value if value == int(value) and abs(value) < 2**53 else b"%.14g" % value


class Runtime:
    """One Lua state (per thread: a Lua state is not thread-safe) with the sandbox and the libraries."""

    def __init__(self) -> None:
        self.lua = lua51.LuaRuntime(encoding=None, register_eval=False, register_builtins=False,
                                    unpack_returned_tuples=True, attribute_filter=self._no_attributes)
        self.deadline = 0.0
        self.timed_out = False
        self.call: Any = None  # the current script's redis.call, set by Script.run
        self.compiled: dict[bytes, Any] = {}  # script bodies' functions
        self.libraries: dict[bytes, dict[bytes, tuple[Any, list[bytes]]]] = {}  # by library code
        bits = self.lua.table_from({b"band": self._band, b"bor": self._bor, b"bxor": self._bxor,
                                    b"bnot": lambda a: self._bit(~int(a)), b"tobit": lambda a: self._bit(int(a)),
                                    b"lshift": lambda a, n: self._bit(int(a) << (int(n) & 31)),
                                    b"rshift": lambda a, n: self._bit((int(a) & 0xFFFFFFFF) >> (int(n) & 31)),
                                    b"arshift": lambda a, n: self._bit(self._bit(int(a)) >> (int(n) & 31)),
                                    b"tohex": lambda a, n=8: b"%0*x" % (int(n), int(a) & (16 ** int(n) - 1))})
        self.tostring = self.lua.globals()[b"tostring"]
        self._compile, self._run, self.redis = self.lua.execute(
            BOOTSTRAP, self._bridge, lambda text: hashlib.sha1(self._bytes(text)).hexdigest().encode(), self._log,
            self._expired, self._json_encode, self._json_decode, self._pack, self._unpack, bits)

    @staticmethod
    def _no_attributes(obj: Any, name: Any, setting: bool) -> Any:
        raise AttributeError("not accessible from scripts")

    @staticmethod
    def _bit(value: int) -> int:
        value &= 0xFFFFFFFF
        return value - 2**32 if value >= 2**31 else value

    def _band(self, *values: float) -> int:
        result = -1
        for value in values:
            result &= int(value)
        return self._bit(result)

    def _bor(self, *values: float) -> int:
        result = 0
        for value in values:
            result |= int(value)
        return self._bit(result)

    def _bxor(self, *values: float) -> int:
        result = 0
        for value in values:
            result ^= int(value)
        return self._bit(result)

    @staticmethod
    def _bytes(value: Any) -> bytes:
        return value if isinstance(value, bytes) else lua_number(value) if isinstance(value, (int, float)) else b""

    def _expired(self) -> bool:
        if time.monotonic() > self.deadline:
            self.timed_out = True
            return True
        return False

    @staticmethod
    def _log(level: Any, *parts: Any) -> None:
        log.log({0: logging.DEBUG, 1: logging.INFO, 2: logging.INFO}.get(level, logging.WARNING),
                b" ".join(part if isinstance(part, bytes) else str(part).encode() for part in parts).decode(errors="replace"))

    def _bridge(self, *args: Any) -> tuple[bool, Any]:
        """redis.call's arguments to a command, its reply to Lua (or False and the error message)."""
        if not args:
            return False, b"ERR Please specify at least one argument for this redis lib call"
        command = []
        for arg in args:
            if isinstance(arg, bytes):
                command.append(arg)
            elif isinstance(arg, (int, float)) and not isinstance(arg, bool):
                command.append(lua_number(arg))
            else:
                return False, b"ERR Lua redis lib command arguments must be strings or integers"
        try:
            return True, self.to_lua(self.call(command))
        except ReplyError as error:
            return False, error.message.encode()

    def to_lua(self, reply: Reply) -> Any:
        """A Redis reply as Redis hands it to Lua: nil bulk is false, a status {ok=...}, an array a table."""
        if reply is None:
            return False
        if isinstance(reply, SimpleString):
            return self.lua.table_from({b"ok": bytes(reply)})
        if isinstance(reply, ReplyError):
            return self.lua.table_from({b"err": reply.message.encode()})
        if isinstance(reply, list):
            return self.lua.table_from([self.to_lua(element) for element in reply])
        return reply

    def from_lua(self, value: Any) -> Reply:
        """A Lua value as Redis replies it: a number truncated to an integer, false nil, true 1, a table
        an array up to its first nil (or an error or status reply)."""
        if value is None or value is False:
            return None
        if value is True:
            return 1
        if isinstance(value, (int, float)):
            return int(value)
        if isinstance(value, bytes):
            return value
        if lua51.lua_type(value) != "table":
            return None
        error, status = value[b"err"], value[b"ok"]
        if isinstance(error, bytes):
            return ReplyError(error.decode(errors="replace"))
        if isinstance(status, bytes):
            return SimpleString(status)
        items, index = [], 1
        while (element := value[index]) is not None:
            items.append(self.from_lua(element))
            index += 1
        return items

    # -- cjson and cmsgpack -------------------------------------------------------------------------
    def to_python(self, value: Any, depth: int = 0) -> Any:
        if depth > 1000:
            raise ValueError("Cannot serialise, excessive nesting (1001)")
        if lua51.lua_type(value) != "table":
            return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value
        keys = list(value.keys())
        if all(isinstance(key, (int, float)) and key == int(key) and key > 0 for key in keys) and keys:
            return [self.to_python(value[index], depth + 1) if value[index] is not None else None
                    for index in range(1, int(max(keys)) + 1)]
        if not keys:
            return {}
        return {self._bytes(key).decode("utf-8", "surrogateescape"): self.to_python(value[key], depth + 1)
                for key in keys}

    def from_python(self, value: Any) -> Any:
        if isinstance(value, dict):
            return self.lua.table_from({self.from_python(key): self.from_python(item) for key, item in value.items()})
        if isinstance(value, (list, tuple)):
            return self.lua.table_from([self.from_python(item) for item in value])
        if isinstance(value, str):
            return value.encode("utf-8", "surrogateescape")
        return value

    def _json_encode(self, value: Any) -> bytes:
        return json.dumps(self.to_python(value), separators=(",", ":"), ensure_ascii=False).encode(
            "utf-8", "surrogateescape")

    def _json_decode(self, text: Any) -> Any:
        return self.from_python(json.loads(self._bytes(text).decode("utf-8", "surrogateescape")))

    def _pack(self, *values: Any) -> bytes:
        return b"".join(msgpack.packb(self.to_python(value), use_bin_type=False) for value in values)

    def _unpack(self, data: Any) -> tuple:
        unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
        unpacker.feed(self._bytes(data))
        return tuple(self.from_python(value) for value in unpacker)

    # -- running ------------------------------------------------------------------------------------
    def function(self, body: bytes, chunk: bytes) -> Any:
        """The compiled function of a script body (compiled once per state)."""
        fn = self.compiled.get(body)
        if fn is None:
            ok, fn = self._compile(body, chunk)
            if not ok:
                raise ReplyError(f"ERR Error compiling script (new function): {fn.decode(errors='replace')}")
            self.compiled[body] = fn
        return fn


@dataclass
class Library:
    """A function library: its code, and its functions' flags by name."""

    name: bytes
    code: bytes
    functions: dict[bytes, list[bytes]] = field(default_factory=dict)


class Scripts:
    """A client's script cache (SHA1 to body), function libraries, and Lua states (one per thread)."""

    def __init__(self) -> None:
        self.bodies: dict[bytes, bytes] = {}
        self.libraries: dict[bytes, Library] = {}
        self.functions: dict[bytes, Library] = {}
        self._local = threading.local()

    @property
    def runtime(self) -> Runtime:
        runtime = getattr(self._local, "runtime", None)
        if runtime is None:
            runtime = self._local.runtime = Runtime()
        return runtime


_scripts: WeakKeyDictionary[Engine, Scripts] = WeakKeyDictionary()
_scripts_lock = threading.Lock()


def scripts_of(engine: Engine) -> Scripts:
    with _scripts_lock:
        if engine not in _scripts:
            _scripts[engine] = Scripts()
        return _scripts[engine]


class ScriptError(ReplyError):
    """An error a script raised: its writes before it stay, as in Redis (committed by ``atomically``)."""

    commit = True


def sha1(body: bytes) -> bytes:
    return hashlib.sha1(body).hexdigest().encode()


def script_args(args: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """KEYS and ARGV from ``numkeys key ... arg ...``."""
    count = parse_int(args[0])
    if count < 0:
        raise ReplyError("ERR Number of keys can't be negative")
    if count > len(args) - 1:
        raise ReplyError("ERR Number of keys can't be greater than number of args")
    return args[1:1 + count], args[1 + count:]


def run_script(engine: Engine, fn_of: Any, where: str, keys: list[bytes], argv: list[bytes],
               read_only: bool, chunk: str = "user_script") -> Reply:
    """Run a compiled script atomically (see the module's docstring)."""
    runtime = scripts_of(engine).runtime

    def body(db: Database, staging: Any) -> Reply:
        def call(command: list[bytes]) -> Reply:
            name = command[0].lower()
            if name in NOT_FROM_SCRIPTS:
                raise ReplyError("ERR This Redis command is not allowed from script")
            if name not in COMMANDS:
                raise ReplyError("ERR Unknown Redis command called from script")
            try:
                engine.resolve(command)
            except ReplyError:
                raise ReplyError("ERR Wrong number of args calling Redis command from script") from None
            staging.next_command()
            reply = engine.run(db, without_blocking(command))
            if read_only and any(True for _ in staging.changes()):
                raise ReplyError("ERR Write commands are not allowed from read-only scripts.")
            return reply

        runtime.call, runtime.timed_out = call, False
        runtime.deadline = time.monotonic() + TIME_LIMIT
        ok, result = runtime._run(fn_of(runtime), runtime.lua.table_from(keys), runtime.lua.table_from(argv))
        runtime.call = None
        if runtime.timed_out:
            raise ReplyError(f"ERR script ran for more than {TIME_LIMIT:g} s and was stopped; nothing was "
                             f"written ({where})")
        if read_only and any(True for _ in staging.changes()):  # nothing is committed
            raise ReplyError(error_message(runtime, result, where, chunk) if not ok else
                             "ERR Write commands are not allowed from read-only scripts.")
        if not ok:
            raise ScriptError(error_message(runtime, result, where, chunk))
        reply = runtime.from_lua(result)
        if isinstance(reply, ReplyError):
            raise ScriptError(reply.message)
        return reply

    def too_large() -> Reply:
        raise ReplyError("ERR the script's writes do not fit one DynamoDB transaction (100 items, 4 MB); "
                         "nothing was written")

    return atomically(engine, body, keys, {}, too_large)


def error_message(runtime: Runtime, error: Any, where: str, chunk: str) -> str:
    """A script's uncaught error as Redis 7.0 words it: the message, then where it was raised."""
    if lua51.lua_type(error) == "table" and isinstance(error[b"err"], bytes):
        line = int(error[b"line"]) if isinstance(error[b"line"], (int, float)) else 0
        return f"{error[b'err'].decode(errors='replace')} script: {where}, on @{chunk}:{line}."
    text = (error if isinstance(error, bytes) else runtime.tostring(error)).decode(errors="replace")
    found = re.match(chunk + r":(\d+):", text)
    return f"ERR {text} script: {where}, on @{chunk}:{found.group(1) if found else 0}."


# -- EVAL and SCRIPT --------------------------------------------------------------------------------
def outside_multi(session: Session) -> None:
    """Scripts do not run inside MULTI in Redimo (a script is atomic by itself): EXEC then aborts."""
    if session.queue is not None:
        session.dirty = True
        raise ReplyError("ERR Redimo does not run scripts inside MULTI; send them outside it (each is atomic)")


def eval_(engine: Engine, session: Session, args: list[bytes], read_only: bool = False) -> Reply:
    """EVAL script numkeys [key ...] [arg ...] (and EVAL_RO). Cost: the commands it runs, as inside
    MULTI/EXEC: 1 BatchGetItem of the KEYS' heads, the reads its commands make, and 1 TransactWriteItems
    of what it wrote (none when it wrote nothing)."""
    outside_multi(session)
    body = args[0]
    keys, argv = script_args(args[1:])
    digest = sha1(body)
    scripts_of(engine).bodies[digest] = body
    return run_script(engine, lambda runtime: runtime.function(body, b"@user_script"), digest.decode(), keys, argv,
                      read_only)


def evalsha(engine: Engine, session: Session, args: list[bytes], read_only: bool = False) -> Reply:
    """EVALSHA sha1 numkeys [key ...] [arg ...] (and EVALSHA_RO): a script this client loaded. Cost: as EVAL."""
    body = scripts_of(engine).bodies.get(args[0].lower())
    if body is None:
        raise ReplyError("NOSCRIPT No matching script. Please use EVAL.")
    return eval_(engine, session, [body, *args[1:]], read_only)


def script(engine: Engine, session: Session, args: list[bytes]) -> Reply:
    """SCRIPT LOAD body | EXISTS sha ... | FLUSH [ASYNC|SYNC]. Cost: none (the cache is the client's)."""
    scripts, sub = scripts_of(engine), args[0].upper()
    if sub == b"LOAD" and len(args) == 2:
        scripts.runtime.function(args[1], b"@user_script")  # a body that does not compile is refused now
        scripts.bodies[sha1(args[1])] = args[1]
        return sha1(args[1])
    if sub == b"EXISTS" and len(args) >= 2:
        return [int(sha.lower() in scripts.bodies) for sha in args[1:]]
    if sub == b"FLUSH" and len(args) <= 2 and (len(args) == 1 or args[1].upper() in (b"ASYNC", b"SYNC")):
        scripts.bodies.clear()
        return OK
    if sub in (b"LOAD", b"EXISTS", b"FLUSH"):
        raise ReplyError(f"ERR unknown subcommand or wrong number of arguments for '{sub.decode(errors='replace')}'"
                         f". Try SCRIPT HELP.")
    raise ReplyError(f"ERR unknown subcommand '{args[0].decode(errors='replace')}'. Try SCRIPT HELP.")


# -- FUNCTION and FCALL ------------------------------------------------------------------------------
def parse_library(code: bytes) -> tuple[bytes, bytes]:
    """A library's name and body, from its ``#!lua name=...`` header."""
    header = LIBRARY_HEADER.match(code)
    if header is None:
        raise ReplyError("ERR Missing library metadata")
    if header.group(1) != b"lua":
        raise ReplyError(f"ERR Engine '{header.group(1).decode(errors='replace')}' not found")
    name = dict(re.findall(rb"(\w+)=(\S+)", header.group(2))).get(b"name")
    if not name:
        raise ReplyError("ERR Library name was not given")
    return name, code[header.end():]


def load_library(runtime: Runtime, code: bytes) -> dict[bytes, tuple[Any, list[bytes]]]:
    """Run a library's code in a Lua state, collecting what it registers with ``redis.register_function``:
    each function and its flags, by name (cached per state)."""
    loaded = runtime.libraries.get(code)
    if loaded is not None:
        return loaded
    functions: dict[bytes, tuple[Any, list[bytes]]] = {}

    def register(*arguments: Any) -> None:
        if len(arguments) == 1 and lua51.lua_type(arguments[0]) == "table":
            table = arguments[0]
            name, callback, flags = table[b"function_name"], table[b"callback"], table[b"flags"]
            flags = list(flags.values()) if lua51.lua_type(flags) == "table" else []
        elif len(arguments) == 2:
            (name, callback), flags = arguments, []
        else:
            raise ReplyError("ERR wrong number of arguments to redis.register_function")
        if not isinstance(name, bytes) or lua51.lua_type(callback) != "function":
            raise ReplyError("ERR redis.register_function needs a function name and a function")
        if name in functions:
            raise ReplyError("ERR Function already exists in the library")
        functions[name] = (callback, [bytes(flag) for flag in flags])

    _, body = parse_library(code)
    ok, compiled = runtime._compile(body, b"@user_function")
    if not ok:
        raise ReplyError(f"ERR Error compiling function: {compiled.decode(errors='replace')}")
    redis_table = runtime.redis
    redis_table[b"register_function"] = register
    runtime.call = lambda command: (_ for _ in ()).throw(ReplyError("ERR redis.call is not allowed while loading"))
    runtime.deadline, runtime.timed_out = time.monotonic() + TIME_LIMIT, False
    try:
        ok, error = runtime._run(compiled, runtime.lua.table_from([]), runtime.lua.table_from([]))
    finally:
        redis_table[b"register_function"], runtime.call = None, None
    if not ok:
        message = error[b"err"] if lua51.lua_type(error) == "table" else error
        raise ReplyError(f"ERR Error registering functions: {runtime._bytes(message).decode(errors='replace')}")
    if not functions:
        raise ReplyError("ERR No functions registered")
    runtime.libraries[code] = functions
    return functions


def function(engine: Engine, session: Session, args: list[bytes]) -> Reply:
    """FUNCTION LOAD [REPLACE] code | DELETE name | LIST [LIBRARYNAME pattern] [WITHCODE] | FLUSH.
    Cost: none (libraries are the client's)."""
    scripts, sub = scripts_of(engine), args[0].upper()
    if sub == b"LOAD" and len(args) in (2, 3):
        replace = len(args) == 3
        if replace and args[1].upper() != b"REPLACE":
            raise ReplyError(f"ERR Unknown option given: {args[1].decode(errors='replace')}")
        name, _ = parse_library(args[-1])
        functions = load_library(scripts.runtime, args[-1])
        library = Library(name, args[-1], {function: flags for function, (_, flags) in functions.items()})
        old = scripts.libraries.get(library.name)
        if old is not None and not replace:
            raise ReplyError(f"ERR Library '{library.name.decode()}' already exists")
        for name in library.functions:
            owner = scripts.functions.get(name)
            if owner is not None and owner.name != library.name:
                raise ReplyError(f"ERR Function {name.decode()} already exists")
        if old is not None:
            for name in old.functions:
                scripts.functions.pop(name, None)
        scripts.libraries[library.name] = library
        scripts.functions.update({name: library for name in library.functions})
        return library.name
    if sub == b"DELETE" and len(args) == 2:
        library = scripts.libraries.pop(args[1], None)
        if library is None:
            raise ReplyError("ERR Library not found")
        for name in library.functions:
            scripts.functions.pop(name, None)
        return OK
    if sub == b"FLUSH" and len(args) <= 2:
        scripts.libraries.clear()
        scripts.functions.clear()
        return OK
    if sub == b"LIST":
        words, pattern, with_code, index = [arg.upper() for arg in args], None, False, 1
        while index < len(args):
            if words[index] == b"WITHCODE":
                with_code, index = True, index + 1
            elif words[index] == b"LIBRARYNAME" and index + 1 < len(args):
                pattern, index = args[index + 1], index + 2
            else:
                raise ReplyError(f"ERR Unknown argument {args[index].decode(errors='replace')}")
        listed = []
        for library in scripts.libraries.values():
            if pattern is not None and not glob_match(pattern, library.name):
                continue
            entry = [b"library_name", library.name, b"engine", b"LUA", b"functions",
                     [[b"name", name, b"description", None, b"flags", [SimpleString(flag) for flag in flags]]
                      for name, flags in library.functions.items()]]
            listed.append(entry + ([b"library_code", library.code] if with_code else []))
        return listed
    raise ReplyError(f"ERR unknown subcommand or wrong number of arguments for '{args[0].decode(errors='replace')}'"
                     f". Try FUNCTION HELP.")


def fcall(engine: Engine, session: Session, args: list[bytes], read_only: bool = False) -> Reply:
    """FCALL function numkeys [key ...] [arg ...] (and FCALL_RO). Cost: as EVAL."""
    outside_multi(session)
    library = scripts_of(engine).functions.get(args[0])
    if library is None:
        raise ReplyError("ERR Function not found")
    keys, argv = script_args(args[1:])
    flags = library.functions[args[0]]
    if read_only and b"no-writes" not in flags:
        raise ReplyError("ERR Can not execute a script with write flag using *_ro command.")

    return run_script(engine, lambda runtime: load_library(runtime, library.code)[args[0]][0],
                      args[0].decode(errors="replace"), keys, argv, read_only or b"no-writes" in flags, "user_function")


SESSION_COMMANDS.update({
    b"eval": (-3, eval_),
    b"evalsha": (-3, evalsha),
    b"eval_ro": (-3, lambda engine, session, args: eval_(engine, session, args, read_only=True)),
    b"evalsha_ro": (-3, lambda engine, session, args: evalsha(engine, session, args, read_only=True)),
    b"script": (-2, script),
    b"function": (-2, function),
    b"fcall": (-3, fcall),
    b"fcall_ro": (-3, lambda engine, session, args: fcall(engine, session, args, read_only=True)),
})
