"""HyperLogLog commands. A HyperLogLog is a string (TYPE says ``string``, as in Redis) holding Redis's
own HLL encoding, a port of Redis 7.0's hyperloglog.c: a 16-byte header (``HYLL``, the encoding,
3 unused bytes, the cached cardinality) then either the *sparse* run-length opcodes (a few bytes for
a small HLL; promoted to dense past 3,000 bytes or a register above 32) or the *dense* 16,384 six-bit
registers (12,304 bytes in all). Elements are hashed with MurmurHash64A (seed 0xadc83b19), P = 14,
and the cardinality is Ertl's estimator as in Redis 7, so every PFCOUNT reply equals Redis's.

Difference from Redis: Redis invalidates the cached cardinality on PFADD/PFMERGE and PFCOUNT writes
it back (PFCOUNT is a write there). Redimo stores the fresh cardinality with every PFADD/PFMERGE
that changes the value, so PFCOUNT is one read and never writes. GET therefore returns Redis's
bytes except header bytes 8-15 (the cache), and a value GET from Redis can be SET into Redimo.
"""

from __future__ import annotations

import math
import struct

from ..gateway import ConditionFailed
from ..protocol import OK, WRONGTYPE, ReplyError
from ..storage import ABSENT_OR_EXPIRED, Database, Record
from .base import command
from .strings import modify_string

NOT_HLL = "WRONGTYPE Key is not a valid HyperLogLog string value."
CORRUPT = "INVALIDOBJ Corrupted HLL object detected"
P, Q = 14, 50
REGISTERS = 1 << P
HEADER = 16
DENSE, SPARSE = 0, 1
DENSE_SIZE = HEADER + REGISTERS * 6 // 8
SPARSE_MAX_BYTES = 3000  # Redis's hll-sparse-max-bytes default
SPARSE_VAL_MAX = 32
ALPHA_INF = 0.721347520444481703680
MURMUR_M = 0xC6A4A7935BD1E995
MASK64 = (1 << 64) - 1


class Corrupt(Exception):
    """A sparse representation that does not describe exactly 16,384 registers."""


def murmur64a(data: bytes, seed: int = 0xADC83B19) -> int:
    """Redis's MurmurHash64A (endian-neutral: little-endian words)."""
    h = (seed ^ (len(data) * MURMUR_M)) & MASK64
    whole = len(data) & ~7
    for (k,) in struct.iter_unpack("<Q", data[:whole]):
        k = (k * MURMUR_M) & MASK64
        k ^= k >> 47
        h ^= (k * MURMUR_M) & MASK64
        h = (h * MURMUR_M) & MASK64
    if len(data) & 7:
        h = ((h ^ int.from_bytes(data[whole:], "little")) * MURMUR_M) & MASK64
    h ^= h >> 47
    h = (h * MURMUR_M) & MASK64
    return h ^ (h >> 47)


def pattern(element: bytes) -> tuple[int, int]:
    """(register index, length of the 000..1 run of the remaining hash bits), as hllPatLen."""
    h = murmur64a(element)
    rest = (h >> P) | (1 << Q)
    return h & (REGISTERS - 1), (rest & -rest).bit_length()


# -- dense ---------------------------------------------------------------------------------
def dense_get(hll: bytearray, index: int) -> int:
    byte, shift = divmod(index * 6, 8)
    at = HEADER + byte
    return ((hll[at] | (hll[at + 1] << 8 if at + 1 < DENSE_SIZE else 0)) >> shift) & 63


def dense_set(hll: bytearray, index: int, value: int) -> None:
    byte, shift = divmod(index * 6, 8)
    at = HEADER + byte
    hll[at] = (hll[at] & ~(63 << shift) & 0xFF) | ((value << shift) & 0xFF)
    if at + 1 < DENSE_SIZE:
        hll[at + 1] = (hll[at + 1] & ~(63 >> (8 - shift)) & 0xFF) | (value >> (8 - shift))


def dense_registers(hll: bytes) -> list[int]:
    registers: list[int] = []
    for at in range(HEADER, DENSE_SIZE, 3):
        word = hll[at] | hll[at + 1] << 8 | hll[at + 2] << 16
        registers += (word & 63, (word >> 6) & 63, (word >> 12) & 63, (word >> 18) & 63)
    return registers


# -- sparse --------------------------------------------------------------------------------
def opcode(hll: bytes | bytearray, at: int) -> tuple[str, int, int, int]:
    """(kind, registers covered, value, bytes) of the sparse opcode at ``at``."""
    op = hll[at]
    if op & 0x80:
        return "val", (op & 3) + 1, ((op >> 2) & 0x1F) + 1, 1
    if op & 0x40:
        low = hll[at + 1] if at + 1 < len(hll) else 0
        return "xzero", (((op & 0x3F) << 8) | low) + 1, 0, 2
    return "zero", (op & 0x3F) + 1, 0, 1


def val_op(value: int, run: int) -> int:
    return 0x80 | (value - 1) << 2 | (run - 1)


def zeros_op(run: int) -> bytes:
    if run > 64:
        return bytes([0x40 | (run - 1) >> 8, (run - 1) & 0xFF])
    return bytes([run - 1])


def sparse_runs(hll: bytes) -> list[tuple[int, int]]:
    """(value, run) pairs of a sparse HLL; Corrupt unless they cover exactly 16,384 registers."""
    runs, index, at = [], 0, HEADER
    while at < len(hll):
        kind, run, value, size = opcode(hll, at)
        if kind == "val" and index + run > REGISTERS:
            raise Corrupt
        runs.append((value, run))
        index += run
        at += size
    if index != REGISTERS:
        raise Corrupt
    return runs


def new_hll() -> bytearray:
    """An empty HLL: sparse, one XZERO opcode for all 16,384 registers, cached cardinality 0."""
    return bytearray(b"HYLL" + bytes([SPARSE]) + bytes(11)) + zeros_op(REGISTERS)


def to_dense(hll: bytearray) -> bytearray:
    if hll[4] == DENSE:
        return hll
    dense = bytearray(hll[:HEADER]) + bytearray(DENSE_SIZE - HEADER)
    dense[4] = DENSE
    index = 0
    for value, run in sparse_runs(bytes(hll)):
        for register in range(index, index + run) if value else ():
            dense_set(dense, register, value)
        index += run
    return dense


def sparse_set(hll: bytearray, index: int, count: int) -> tuple[bytearray, int]:
    """hllSparseSet: raise register ``index`` to ``count``; (the HLL, possibly promoted to dense,
    1 if it changed else 0). The resulting bytes are Redis's, opcode for opcode."""
    if count > SPARSE_VAL_MAX:
        return promote(hll, index, count)
    at, end, first, previous, span = HEADER, len(hll), 0, None, 0
    while at < end:
        kind, span, value, size = opcode(hll, at)
        if index <= first + span - 1:
            break
        previous, at, first = at, at + size, first + span
    if span == 0 or at >= end:
        raise Corrupt
    kind, run, value, size = opcode(hll, at)
    if kind == "val" and value >= count:
        return hll, 0
    if run == 1 and kind in ("val", "zero"):
        hll[at] = val_op(count, 1)
    else:
        last = first + span - 1
        if kind == "val":
            sequence = bytes([val_op(value, index - first)] if index != first else [])
            sequence += bytes([val_op(count, 1)])
            sequence += bytes([val_op(value, last - index)] if index != last else [])
        else:
            sequence = (zeros_op(index - first) if index != first else b"") + bytes([val_op(count, 1)])
            sequence += zeros_op(last - index) if index != last else b""
        if len(sequence) > size and len(hll) + len(sequence) - size > SPARSE_MAX_BYTES:
            return promote(hll, index, count)
        hll[at:at + size] = sequence
    merge_values(hll, previous if previous is not None else HEADER)
    return hll, 1


def merge_values(hll: bytearray, at: int) -> None:
    """Step 4 of hllSparseSet: merge adjacent VAL opcodes of equal value, scanning up to 5 opcodes."""
    scan = 5
    while at < len(hll) and scan:
        scan -= 1
        op = hll[at]
        if not op & 0x80:
            at += 2 if op & 0x40 else 1
            continue
        if at + 1 < len(hll) and hll[at + 1] & 0x80:
            _, run1, value1, _ = opcode(hll, at)
            _, run2, value2, _ = opcode(hll, at + 1)
            if value1 == value2 and run1 + run2 <= 4:
                hll[at + 1] = val_op(value1, run1 + run2)
                del hll[at]
                continue
        at += 1


def promote(hll: bytearray, index: int, count: int) -> tuple[bytearray, int]:
    dense = to_dense(hll)
    dense_set(dense, index, count)
    return dense, 1


def raise_register(hll: bytearray, index: int, count: int) -> tuple[bytearray, int]:
    if hll[4] == DENSE:
        if dense_get(hll, index) >= count:
            return hll, 0
        dense_set(hll, index, count)
        return hll, 1
    return sparse_set(hll, index, count)


# -- counting ------------------------------------------------------------------------------
def sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y, z = 1.0, x
    while True:
        x *= x
        previous = z
        z += x * y
        y += y
        if previous == z:
            return z


def tau(x: float) -> float:
    if x == 0.0 or x == 1.0:
        return 0.0
    y, z = 1.0, 1 - x
    while True:
        x = math.sqrt(x)
        previous = z
        y *= 0.5
        z -= (1 - x) * (1 - x) * y  # gcc compiles Redis's pow(1 - x, 2) to this product
        if previous == z:
            return z / 3


def estimate(histogram: list[int]) -> int:
    """Redis 7's hllCount from the register histogram (Ertl's improved estimator)."""
    m = float(REGISTERS)
    z = m * tau((m - histogram[Q + 1]) / m)
    for j in range(Q, 0, -1):
        z += histogram[j]
        z *= 0.5
    z += m * sigma(histogram[0] / m)
    value = ALPHA_INF * m * m / z
    whole = math.floor(value)
    return int(whole) + (1 if value - whole >= 0.5 else 0)  # llroundl: halves away from zero


def histogram_of(registers: list[int]) -> list[int]:
    histogram = [0] * 64
    for register in registers:
        histogram[register] += 1
    return histogram


def registers_of(hll: bytes) -> list[int]:
    if hll[4] == DENSE:
        return dense_registers(hll)
    registers: list[int] = []
    for value, run in sparse_runs(hll):
        registers += [value] * run
    return registers


def cardinality(hll: bytes) -> int:
    """PFCOUNT of one HLL: the cached value when valid, else computed."""
    if not hll[15] & 0x80:
        return int.from_bytes(hll[8:16], "little")
    try:
        return estimate(histogram_of(registers_of(hll)))
    except Corrupt:
        raise ReplyError(CORRUPT) from None


def with_cache(hll: bytearray) -> bytes:
    """The HLL with its fresh cardinality cached (valid) in the header; a corrupt sparse HLL (which
    PFADD can still change, as in Redis) gets an invalid cache instead, so PFCOUNT reports it."""
    try:
        hll[8:16] = estimate(histogram_of(registers_of(bytes(hll)))).to_bytes(8, "little")
    except Corrupt:
        hll[15] |= 0x80
    return bytes(hll)


def checked(value: bytes) -> bytes:
    """isHLLObjectOrReply: the HYLL magic, a known encoding, and the exact dense size."""
    if (len(value) < HEADER or value[:4] != b"HYLL" or value[4] > SPARSE
            or (value[4] == DENSE and len(value) != DENSE_SIZE)):
        raise ReplyError(NOT_HLL)
    return value


def read_hlls(db: Database, keys: list[bytes]) -> dict[bytes, tuple[Record, bytes]]:
    """The live HLLs among ``keys`` (record and value), checked in order as Redis does (WRONGTYPE
    for another type or a string that is no HLL). Cost: ceil(n/100) BatchGetItem."""
    records = db.load_many(set(keys))
    found: dict[bytes, tuple[Record, bytes]] = {}
    for key in keys:
        record = records.get(key)
        if record is None or key in found:
            continue
        if record.type != "string":
            raise ReplyError(WRONGTYPE)
        value = db.string_value(record)
        if value is None:  # a chunked string replaced meanwhile: read it again
            record, value = db.read_string(key)
            if record is None or value is None:
                continue
        found[key] = (record, checked(value))
    return found


def union_of(values: list[bytes]) -> list[int]:
    union = [0] * REGISTERS
    try:
        for value in values:
            union = list(map(max, union, registers_of(value)))
    except Corrupt:
        raise ReplyError(CORRUPT) from None
    return union


@command("pfadd", -2)
def pfadd(db: Database, args: list[bytes]) -> int:
    """PFADD key [element ...]. Cost: 1 GetItem, plus 1 conditional PutItem when a register changes
    or the key is created (see docs/reference/hyperloglog.md for the WCU by cardinality: 1 WCU while
    sparse and small, 13 WCU once dense). Replies 1 when a register changed or the key was created."""
    key, elements = args[0], args[1:]
    result = 0

    def add(old: bytes | None) -> bytes | None:
        nonlocal result
        hll = new_hll() if old is None else bytearray(checked(old))
        changed = old is None
        try:
            for element in elements:
                hll, updated = raise_register(hll, *pattern(element))
                changed = changed or bool(updated)
        except Corrupt:
            raise ReplyError(CORRUPT) from None
        result = int(changed)
        return with_cache(hll) if changed else None

    modify_string(db, key, add)
    return result


@command("pfcount", -2)
def pfcount(db: Database, args: list[bytes]) -> int:
    """PFCOUNT key [key ...]. One key: 1 GetItem and never a write (PFADD keeps the cached
    cardinality fresh). Several keys, the cardinality of their union: ceil(n/100) BatchGetItem."""
    if len(args) == 1:
        value = db.read_string(args[0])[1]
        return cardinality(checked(value)) if value is not None else 0
    return estimate(histogram_of(union_of([value for _, value in read_hlls(db, args).values()])))


@command("pfmerge", -2)
def pfmerge(db: Database, args: list[bytes]) -> bytes:
    """PFMERGE destkey [sourcekey ...]. Cost: 1 BatchGetItem of all the keys + 1 conditional PutItem
    of the destination (none when its value does not change). As in Redis the destination is merged
    too, keeps its TTL, and becomes dense when a source is dense."""
    destination = args[0]
    while True:
        found = read_hlls(db, args)
        union = union_of([value for _, value in found.values()])
        record, old = found.get(destination, (None, None))
        hll = new_hll() if old is None else bytearray(old)
        if any(value[4] == DENSE for _, value in found.values()):
            hll = to_dense(hll)
        for index, value in enumerate(union):
            if value:
                hll = raise_register(hll, index, value)[0]
        new = with_cache(hll)
        if new == old:
            return OK
        condition, values = record.unchanged() if record else (ABSENT_OR_EXPIRED, db.now())
        try:
            db.put_string(destination, new, record.expire_at if record else None, condition, values)
            return OK
        except ConditionFailed:
            continue
