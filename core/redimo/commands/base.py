"""The command registry: each command module registers its handlers with :func:`command`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

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
