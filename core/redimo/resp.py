"""The Redis wire protocol for ``redimo serve``: an incremental request parser (RESP multibulk and
inline commands, with Redis's limits and error messages) and a RESP2/RESP3 reply encoder."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .protocol import ReplyError, SimpleString

INLINE_MAX = 64 * 1024  # bytes of an inline command or a count line (Redis's PROTO_INLINE_MAX_SIZE)
UNAUTHENTICATED_MULTIBULK = 10  # elements an unauthenticated client may send (Redis 7)
UNAUTHENTICATED_BULK = 16384  # bytes of one argument from an unauthenticated client
INT_MAX = 2**31 - 1
ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("a"): b"\a"}
HEX = b"0123456789abcdefABCDEF"
SPACES = b" \n\r\t\v\f"


class ProtocolError(Exception):
    """A malformed request: the server runs the ``commands`` parsed before it, replies
    ``-ERR Protocol error: ...`` and closes the connection."""

    def __init__(self, message: str, commands: list[list[bytes]] | None = None) -> None:
        super().__init__(message)
        self.message, self.commands = message, commands or []


class QueryBufferFull(Exception):
    """More unparsed input than the query buffer limit: the server closes the connection."""


@dataclass
class Limits:
    """Redis's ``proto-max-bulk-len``, ``client-query-buffer-limit`` and the multibulk ceiling."""

    max_bulk: int = 512 * 1024 * 1024
    query_buffer: int = 1024 * 1024 * 1024
    max_multibulk: int = INT_MAX


class Parser:
    """Splits a byte stream into commands, as Redis's processMultibulkBuffer / processInlineBuffer."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.buffer = bytearray()
        self.pos = 0
        self.left = 0  # arguments still to read of the current multibulk (0: none started)
        self.bulk = -1  # length of the bulk argument being read (-1: its header not read yet)
        self.args: list[bytes] = []

    def feed(self, data: bytes) -> None:
        self.buffer += data
        unparsed = len(self.buffer) - self.pos
        if unparsed > self.limits.query_buffer and (self.bulk < 0 or unparsed > self.bulk + 2):
            raise QueryBufferFull(f"query buffer of {unparsed} bytes over the limit")

    def commands(self, authenticated: bool = True, most: int | None = None) -> list[list[bytes]]:
        """The complete commands buffered (at most ``most``); a malformed one raises ProtocolError,
        which carries the commands before it. Unauthenticated clients get Redis's smaller limits."""
        found: list[list[bytes]] = []
        try:
            while self.pos < len(self.buffer) and (most is None or len(found) < most):
                if self.left == 0 and self.buffer[self.pos] != ord("*"):
                    args = self.inline()
                else:
                    args = self.multibulk(authenticated)
                if args is None:
                    break
                if args:
                    found.append(args)
        except ProtocolError as error:
            raise ProtocolError(error.message, found) from None
        finally:
            del self.buffer[:self.pos]
            self.pos = 0
        return found

    def line(self, error: str) -> bytes | None:
        """The line at ``pos`` (without CRLF), advancing past it; None while incomplete."""
        end = self.buffer.find(b"\r\n", self.pos)
        if end < 0:
            if len(self.buffer) - self.pos > INLINE_MAX:
                raise ProtocolError(f"Protocol error: {error}")
            return None
        line = bytes(self.buffer[self.pos + 1:end])
        self.pos = end + 2
        return line

    def inline(self) -> list[bytes] | None:
        end = self.buffer.find(b"\n", self.pos)
        if end < 0:
            if len(self.buffer) - self.pos > INLINE_MAX:
                raise ProtocolError("Protocol error: too big inline request")
            return None
        line = bytes(self.buffer[self.pos:end]).removesuffix(b"\r")
        self.pos = end + 1
        args = split_args(line)
        if args is None:
            raise ProtocolError("Protocol error: unbalanced quotes in request")
        return args

    def multibulk(self, authenticated: bool) -> list[bytes] | None:
        if self.left == 0:
            line = self.line("too big mbulk count string")
            if line is None:
                return None
            count = integer(line)
            if count is None or count > self.limits.max_multibulk:
                raise ProtocolError("Protocol error: invalid multibulk length")
            if count > UNAUTHENTICATED_MULTIBULK and not authenticated:
                raise ProtocolError("Protocol error: unauthenticated multibulk length")
            if count <= 0:
                return []
            self.left, self.args = count, []
        while self.left:
            if self.bulk < 0:
                if self.pos >= len(self.buffer):
                    return None
                if self.buffer[self.pos] != ord("$"):
                    got = chr(self.buffer[self.pos])
                    raise ProtocolError(f"Protocol error: expected '$', got '{got}'")
                line = self.line("too big bulk count string")
                if line is None:
                    return None
                length = integer(line)
                if length is None or length < 0 or length > self.limits.max_bulk:
                    raise ProtocolError("Protocol error: invalid bulk length")
                if length > UNAUTHENTICATED_BULK and not authenticated:
                    raise ProtocolError("Protocol error: unauthenticated bulk length")
                self.bulk = length
            if len(self.buffer) - self.pos < self.bulk + 2:
                return None
            self.args.append(bytes(self.buffer[self.pos:self.pos + self.bulk]))
            self.pos += self.bulk + 2  # as Redis, the two bytes after the bulk are not checked
            self.bulk = -1
            self.left -= 1
        args, self.args = self.args, []
        return args


def integer(text: bytes) -> int | None:
    """A count as Redis's string2ll reads it: optional minus, digits, no spaces or plus."""
    digits = text[1:] if text.startswith(b"-") else text
    if not digits or not digits.isdigit() or len(text) > 20:
        return None
    return int(text)


def split_args(line: bytes) -> list[bytes] | None:
    """Redis's sdssplitargs: words separated by spaces, "double quoted" (with \\n, \\xHH ... escapes)
    or 'single quoted' (\\' only); None for unbalanced quotes or a closing quote not followed by a space."""
    args: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in SPACES:
            i += 1
        if i >= n:
            return args
        current = bytearray()
        quote = 0  # 0, or the quote character being read
        while True:
            if quote:
                if i >= n:
                    return None
                char = line[i]
                if quote == 0x22 and char == 0x5C and i + 3 < n and line[i + 1] == ord("x") \
                        and line[i + 2] in HEX and line[i + 3] in HEX:
                    current.append(int(line[i + 2:i + 4], 16))
                    i += 3
                elif char == 0x5C and i + 1 < n and (quote == 0x22 or line[i + 1] == 0x27):
                    i += 1
                    current += ESCAPES.get(line[i], bytes([line[i]])) if quote == 0x22 else b"'"
                elif char == quote:
                    if i + 1 < n and line[i + 1] not in SPACES:
                        return None
                    i += 1
                    break
                else:
                    current.append(char)
            else:
                if i >= n or line[i] in SPACES:
                    break
                if line[i] in b"\"'":
                    quote = line[i]
                else:
                    current.append(line[i])
            i += 1
        args.append(bytes(current))


class Map(dict):
    """A RESP3 map (a flat array of pairs in RESP2)."""


class Set(list):
    """A RESP3 set (an array in RESP2)."""


class Push(list):
    """A RESP3 push (Pub/Sub messages; an array in RESP2)."""


class Double(bytes):
    """A RESP3 double, holding its text such as ``1.5`` or ``inf`` (a bulk string in RESP2)."""


def encode(reply: Any, protocol: int = 2) -> bytes:
    """The wire form of a reply (an exception is an error reply)."""
    parts: list[bytes] = []
    _encode(reply, protocol, parts)
    return b"".join(parts)


def error_line(error: BaseException) -> bytes:
    message = error.message if isinstance(error, ReplyError) else "ERR " + str(error)
    return b"-" + message.replace("\r", " ").replace("\n", " ").encode() + b"\r\n"


def _encode(reply: Any, protocol: int, parts: list[bytes]) -> None:
    if reply is None:
        parts.append(b"_\r\n" if protocol == 3 else b"$-1\r\n")
    elif isinstance(reply, SimpleString):
        parts.append(b"+" + reply + b"\r\n")
    elif isinstance(reply, Double) and protocol == 3:
        parts.append(b"," + reply + b"\r\n")
    elif isinstance(reply, (bytes, bytearray, memoryview)):
        parts += (b"$%d\r\n" % len(reply), bytes(reply), b"\r\n")
    elif isinstance(reply, bool):
        parts.append((b"#t\r\n" if reply else b"#f\r\n") if protocol == 3 else b":%d\r\n" % reply)
    elif isinstance(reply, int):
        parts.append(b":%d\r\n" % reply)
    elif isinstance(reply, str):
        _encode(reply.encode(), protocol, parts)
    elif isinstance(reply, BaseException):
        parts.append(error_line(reply))
    elif isinstance(reply, dict):
        parts.append((b"%%%d\r\n" if protocol == 3 else b"*%d\r\n") % (len(reply) * (1 if protocol == 3 else 2)))
        for key, value in reply.items():
            _encode(key, protocol, parts)
            _encode(value, protocol, parts)
    elif isinstance(reply, (list, tuple)):
        kind = b"*"
        if protocol == 3 and isinstance(reply, Set):
            kind = b"~"
        elif protocol == 3 and isinstance(reply, Push):
            kind = b">"
        parts.append(kind + b"%d\r\n" % len(reply))
        for element in reply:
            _encode(element, protocol, parts)
    else:
        raise TypeError(f"no RESP encoding for {type(reply).__name__}")
