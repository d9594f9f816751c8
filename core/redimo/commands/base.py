"""The command registry: each command module registers its handlers with :func:`command`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable

from ..protocol import ReplyError
from ..storage import Database

Reply = Any  # int | bytes | SimpleString | None | list
Handler = Callable[[Database, list[bytes]], Reply]


@dataclass(frozen=True)
class Command:
    name: bytes
    arity: int  # as in Redis: the exact argument count with the name, or -minimum
    handler: Handler


COMMANDS: dict[bytes, Command] = {}


def command(name: str, arity: int) -> Callable[[Handler], Handler]:
    """Register ``handler(db, args)`` for ``name``; ``args`` excludes the command name."""

    def register(handler: Handler) -> Handler:
        COMMANDS[name.encode()] = Command(name.encode(), arity, handler)
        return handler

    return register


def c_string(arg: bytes) -> bytes:
    """An argument as Redis's C string functions (strcasecmp, %s) see it: up to its first NUL."""
    return arg.split(b"\x00", 1)[0]


def options(args: list[bytes], start: int) -> list[bytes]:
    """Upper-cased option words from ``start`` on, compared as Redis's strcasecmp does."""
    return [c_string(arg).upper() for arg in args[start:]]



def text(arg: bytes) -> str:
    """An argument as Redis's %s shows it in a message."""
    return c_string(arg).decode(errors="replace")


def subcommand(args: list[bytes], arities: dict[bytes, int], container: str) -> bytes:
    """The upper-cased subcommand of a container command (XGROUP, XINFO, PUBSUB), its arity checked (Redis arity: with the container)."""
    sub = c_string(args[0]).upper()
    arity = arities.get(sub)
    if arity is None:
        raise ReplyError(f"ERR unknown subcommand '{text(args[0])[:128]}'. Try {container} HELP.")
    if (arity >= 0 and len(args) + 1 != arity) or len(args) + 1 < -arity:
        raise ReplyError(f"ERR wrong number of arguments for '{container.lower()}|{sub.decode().lower()}' command")
    return sub


_CURSOR = re.compile(rb"[+-]?[0-9]*\Z")  # what Redis's strtoul takes; "" is 0


def cursor_of(raw: bytes) -> bytes:
    """A scan position as a cursor: ``raw`` (starting with a non-zero byte) as a decimal integer,
    written with Decimal because it can be longer than Python's int-string limit."""
    return format(Decimal(int.from_bytes(raw, "big")), "f").encode()


def position_of(cursor: bytes, max_digits: int) -> bytes | None:
    """The bytes a cursor encodes (None for 0, the start). A cursor Redimo cannot have handed out (not
    a number, negative, too long) is ``ERR invalid cursor``; the caller checks the bytes further."""
    if not _CURSOR.match(cursor) or cursor in (b"+", b"-") or len(cursor) > max_digits:
        raise ReplyError("ERR invalid cursor")
    digits = cursor.lstrip(b"+-")
    number = int(Decimal(digits.decode())) if digits else 0
    if number == 0:
        return None
    if cursor.startswith(b"-"):
        raise ReplyError("ERR invalid cursor")
    return number.to_bytes((number.bit_length() + 7) // 8, "big")
