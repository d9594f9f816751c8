"""Sorted-set scores in DynamoDB: a Redis score (a double, ±inf included) is stored in ``sc`` as its
order-preserving 64-bit integer, because a DynamoDB Number has no infinity and only reaches 1E+126.
The mapping is exact and strictly increasing; 0 and -0 both map to 0, as Redis compares them equal."""

from __future__ import annotations

import struct


def encode_score(score: float) -> int:
    """The ``sc`` of a score: its IEEE-754 bits when positive, minus its magnitude's bits when negative."""
    if score == 0:
        return 0
    bits = struct.unpack(">q", struct.pack(">d", abs(score)))[0]
    return bits if score > 0 else -bits


def decode_score(sc: int) -> float:
    value = struct.unpack(">d", struct.pack(">q", abs(sc)))[0]
    return value if sc >= 0 else -value
