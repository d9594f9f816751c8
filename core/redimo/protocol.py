"""Redis protocol values and the argument parsing shared by commands.

A command returns what a Redis server would reply: ``int`` (integer), ``bytes`` (bulk string),
:class:`SimpleString` (status), ``None`` (nil), ``list`` (array). It raises :class:`ReplyError`
for an error reply.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation


class SimpleString(bytes):
    """A status reply such as ``+OK``."""


OK = SimpleString(b"OK")


class ReplyError(Exception):
    """An error reply; the message starts with its code, e.g. ``ERR syntax error``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


SYNTAX_ERROR = "ERR syntax error"
NOT_INTEGER = "ERR value is not an integer or out of range"
NOT_FLOAT = "ERR value is not a valid float"
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
OVERFLOW = "ERR increment or decrement would overflow"

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_SEVENTEEN_PLACES = Decimal("1e-17")
DECIMALS = Context(prec=400)  # exact for any sum of two long-double-range numbers we format
_CANONICAL_INT = re.compile(rb"(0|-?[1-9][0-9]{0,19})\Z")


def canonical_int(value: bytes) -> int | None:
    """The integer Redis would store ``value`` as (its string2ll), or None."""
    if not _CANONICAL_INT.match(value):
        return None
    number = int(value)
    return number if INT64_MIN <= number <= INT64_MAX else None


def parse_int(value: bytes, error: str = NOT_INTEGER) -> int:
    number = canonical_int(value)
    if number is None:
        raise ReplyError(error)
    return number


def parse_decimal(value: bytes) -> Decimal:
    """Parse a float argument like Redis's strtold: no spaces, no NaN."""
    text = value.decode("latin-1")
    if not text or text != text.strip() or "_" in text:
        raise ReplyError(NOT_FLOAT)
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ReplyError(NOT_FLOAT) from None
    if number.is_nan():
        raise ReplyError(NOT_FLOAT)
    return number


def format_decimal(number: Decimal) -> bytes:
    """Format like Redis's INCRBYFLOAT reply (%.17Lf, trailing zeros removed)."""
    text = format(number.quantize(_SEVENTEEN_PLACES, rounding=ROUND_HALF_EVEN, context=DECIMALS), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return (text if text != "-0" else "0").encode()


def wrong_arity(name: bytes) -> ReplyError:
    return ReplyError(f"ERR wrong number of arguments for '{name.decode(errors='replace').lower()}' command")
