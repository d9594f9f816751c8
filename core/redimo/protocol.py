"""Redis protocol values and the argument parsing shared by commands.

A command returns what a Redis server would reply: ``int`` (integer), ``bytes`` (bulk string),
:class:`SimpleString` (status), ``None`` (nil), ``list`` (array). It raises :class:`ReplyError`
for an error reply.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction
from typing import Union


class SimpleString(bytes):
    """A status reply such as ``+OK``."""


OK = SimpleString(b"OK")


class ReplyError(Exception):
    """An error reply; the message starts with its code, e.g. ``ERR syntax error``."""

    def __init__(self, message: str) -> None:
        message = message.replace("\r", " ").replace("\n", " ")  # as Redis keeps the protocol intact
        super().__init__(message)
        self.message = message


SYNTAX_ERROR = "ERR syntax error"
NOT_INTEGER = "ERR value is not an integer or out of range"
NOT_FLOAT = "ERR value is not a valid float"
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
OVERFLOW = "ERR increment or decrement would overflow"

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# INCRBYFLOAT computes in C's long double: on x86-64, where Redis runs, the x87 extended format
# with a 64-bit significand and exponents down to 2**-16445 (subnormals). Redimo emulates it
# exactly with fractions; a finite value is a Fraction, an infinite one a float.
LongDouble = Union[Fraction, float]
LONG_DOUBLE_BITS = 64
_LONG_DOUBLE_TINIEST = -16445
_LONG_DOUBLE_OVERFLOW = 2**16384
MAX_LONG_DOUBLE_CHARS = 5 * 1024  # Redis reads no float argument this long
_FLOAT = re.compile(
    rb"(?P<sign>[+-]?)(?:(?P<inf>inf(?:inity)?)"
    rb"|0x(?P<hex>[0-9a-f]*(?:\.[0-9a-f]*)?)(?:p(?P<hex_exp>[+-]?[0-9]+))?"
    rb"|(?P<dec>[0-9]*(?:\.[0-9]*)?)(?:e(?P<dec_exp>[+-]?[0-9]+))?)\Z", re.IGNORECASE)
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


def _digits_value(digits: bytes, base: int) -> int:
    """An integer from (possibly thousands of) digits, past Python's int-string limit."""
    if base == 16 or not digits:
        return int(digits or b"0", base)
    return int(Decimal(digits.decode()))


def _exponent(text: bytes | None) -> int:
    """An exponent, clamped far beyond any long double (Redis's strtold overflows there too)."""
    if not text:
        return 0
    negative = text.startswith(b"-")
    digits = text.lstrip(b"+-").lstrip(b"0") or b"0"
    number = int(digits) if len(digits) <= 9 else 10**9
    return -number if negative else number


def round_long_double(value: Fraction) -> LongDouble:
    """The long double nearest ``value`` (ties to even); infinity beyond the largest one."""
    if value == 0:
        return Fraction(0)
    magnitude = abs(value)
    numerator, denominator = magnitude.numerator, magnitude.denominator
    exponent = numerator.bit_length() - denominator.bit_length()  # floor(log2) or one more
    if (numerator << max(-exponent, 0)) < (denominator << max(exponent, 0)):
        exponent -= 1
    unit = Fraction(2) ** max(exponent - LONG_DOUBLE_BITS + 1, _LONG_DOUBLE_TINIEST)
    rounded = round(magnitude / unit) * unit  # round() of a Fraction ties to even
    if rounded >= _LONG_DOUBLE_OVERFLOW:
        return math.copysign(math.inf, value)
    return rounded if value > 0 else -rounded


def parse_long_double(value: bytes) -> LongDouble:
    """A float argument as Redis's string2ld reads it: strtold (decimal, hexadecimal, inf,
    infinity) rounded to a long double; no spaces, no NaN, no overflow or underflow to zero."""
    match = _FLOAT.match(value) if 0 < len(value) < MAX_LONG_DOUBLE_CHARS else None
    if match is None:
        raise ReplyError(NOT_FLOAT)
    negative = match["sign"] == b"-"
    if match["inf"]:
        return -math.inf if negative else math.inf
    base, mantissa = (16, match["hex"]) if match["hex"] is not None else (10, match["dec"])
    whole, _, fraction = mantissa.partition(b".")
    if not whole and not fraction:
        raise ReplyError(NOT_FLOAT)
    coefficient = _digits_value(whole + fraction, base)
    if coefficient == 0:
        return Fraction(0)
    if base == 16:
        exponent = _exponent(match["hex_exp"]) - 4 * len(fraction)
        order = exponent + coefficient.bit_length()  # the value is below 2**order
        too_big, too_small = order > 16400, order < -16500
        scale = Fraction(2)
    else:
        exponent = _exponent(match["dec_exp"]) - len(fraction)
        order = exponent + len((whole + fraction).lstrip(b"0"))  # the value is below 10**order
        too_big, too_small = order > 4940, order < -4960
        scale = Fraction(10)
    if too_big or too_small:
        raise ReplyError(NOT_FLOAT)
    number = round_long_double(coefficient * scale**exponent)
    if number == 0 or isinstance(number, float):  # strtold's ERANGE: underflow to zero, or overflow
        raise ReplyError(NOT_FLOAT)
    return -number if negative else number


def add_long_double(left: LongDouble, right: LongDouble) -> LongDouble:
    """``left + right`` in long double arithmetic (one correctly rounded addition)."""
    if isinstance(left, float) or isinstance(right, float):
        return float(left) + float(right)  # an infinity is involved: inf or nan
    return round_long_double(left + right)


def format_long_double(number: Fraction) -> bytes:
    """Format like Redis's INCRBYFLOAT reply: printf's %.17Lf (exact, ties to even), trailing
    zeros removed, and "-0" written "0"."""
    scaled = round(number * 10**17)
    if scaled == 0:
        return b"0"
    digits = format(Decimal(abs(scaled)), "f").zfill(18)
    text = (digits[:-17] + "." + digits[-17:]).rstrip("0").rstrip(".")
    return (("-" if scaled < 0 else "") + text).encode()


def wrong_arity(name: bytes) -> ReplyError:
    return ReplyError(f"ERR wrong number of arguments for '{name.decode(errors='replace').lower()}' command")
