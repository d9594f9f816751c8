"""Bit commands on strings (GETBIT, SETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD, BITFIELD_RO) and LCS,
with Redis 7.0's replies, errors and argument order. A bitmap is a string: bit 0 is the high bit of
byte 0, and writes grow the value with zero bytes. Each docstring gives the DynamoDB cost of a value
that fits in one item; a chunked value (over 350,000 bytes) is read and written by the chunks a
command touches (Database.read_window, Database.modify_window; docs/reference/bitmaps.md)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

from ..protocol import SYNTAX_ERROR, WRONGTYPE, ReplyError, canonical_int, parse_int
from ..storage import Database, Window
from .base import c_string, command, options
from .keys import delete_one
from .strings import set_string

OFFSET_ERROR = "ERR bit offset is not an integer or out of range"
MAX_BYTES = 512 * 1024 * 1024  # Redis's proto-max-bulk-len: bit offsets are below 2**32
TYPE_ERROR = "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."
NOT_STRINGS = "ERR The specified keys must contain string values"


def bit_offset(arg: bytes, width: int = 0) -> int:
    """A bit offset as getBitOffsetFromArgument reads it; for BITFIELD (``width``) ``#n`` is n fields
    of that width, multiplied in 64 bits as Redis's C does."""
    hashed = width > 0 and arg[:1] == b"#"
    number = canonical_int(arg[1:] if hashed else arg)
    if number is None:
        raise ReplyError(OFFSET_ERROR)
    if hashed:
        number = (number * width + 2**63) % 2**64 - 2**63
    if number < 0 or number >> 3 >= MAX_BYTES:
        raise ReplyError(OFFSET_ERROR)
    return number


def get_bits(window: Window, offset: int, width: int) -> int:
    """The unsigned integer in bits ``offset`` .. ``offset + width - 1`` (big-endian)."""
    first, last = offset >> 3, (offset + width - 1) >> 3
    number = int.from_bytes(bytes(window.byte(at) for at in range(first, last + 1)), "big")
    return (number >> ((last + 1) * 8 - offset - width)) & ((1 << width) - 1)


def set_bits(window: Window, offset: int, width: int, value: int) -> None:
    """Store the low ``width`` bits of ``value`` at ``offset`` (the window holds those bytes)."""
    offset -= window.base * 8
    first, last = offset >> 3, (offset + width - 1) >> 3
    shift = (last + 1) * 8 - offset - width
    mask = ((1 << width) - 1) << shift
    number = int.from_bytes(window.data[first:last + 1], "big")
    window.data[first:last + 1] = ((number & ~mask) | ((value << shift) & mask)).to_bytes(last - first + 1, "big")


def read_strings(db: Database, keys: list[bytes], wrong_type: str = WRONGTYPE) -> list[bytes | None]:
    """The values of ``keys`` (None: missing), ``wrong_type`` if one holds another type.
    Cost: ceil(n/100) BatchGetItem (a chunked value adds its chunks)."""
    records = db.load_many(set(keys))
    if any(record.type != "string" for record in records.values()):
        raise ReplyError(wrong_type)
    values = {key: db.string_value(record) for key, record in records.items()}
    for key, value in values.items():
        if value is None:  # a chunked value replaced meanwhile: read it again
            values[key] = db.read_string(key)[1]
    return [values.get(key) for key in keys]


@command("getbit", 3)
def getbit(db: Database, args: list[bytes]) -> int:
    """GETBIT key offset. Cost: 1 GetItem (a chunked value: + 1 GetItem of the chunk holding the bit)."""
    offset = bit_offset(args[1])
    return get_bits(db.read_window(args[0], offset >> 3, offset >> 3), offset, 1)


@command("setbit", 4)
def setbit(db: Database, args: list[bytes]) -> int:
    """SETBIT key offset value. Cost: 1 GetItem + 1 conditional PutItem, none when neither the bit
    nor the length changes (a chunked value: 1 GetItem of the head + 1 GetItem of the chunk + 1
    TransactWriteItems of the head and that chunk). Keeps the TTL."""
    offset = bit_offset(args[1])
    value = parse_int(args[2], "ERR bit is not an integer or out of range")
    if value not in (0, 1):
        raise ReplyError("ERR bit is not an integer or out of range")

    def change(window: Window) -> int:
        old = get_bits(window, offset, 1)
        set_bits(window, offset, 1, value)
        return old

    byte = offset >> 3
    return db.modify_window(args[0], byte, byte, byte + 1, change)


def in_bits(args: list[bytes], index: int) -> bool:
    """Whether the optional BYTE|BIT word at ``index`` says BIT."""
    if len(args) <= index:
        return False
    word = options(args, index)[0]
    if word not in (b"BIT", b"BYTE"):
        raise ReplyError(SYNTAX_ERROR)
    return word == b"BIT"


def bit_range(length: int, start: int, end: int, bits: bool) -> tuple[int, int]:
    """The bits ``first`` .. ``last`` that a start/end range (in bytes or bits, negative from the
    end) covers in a value of ``length`` bytes; first > last when it is empty."""
    size = length * 8 if bits else length
    start, end = max(start + size if start < 0 else start, 0), max(end + size if end < 0 else end, 0)
    end = min(end, size - 1)
    return (start, end) if bits else (start * 8, end * 8 + 7)


def count_bits(value: bytes, first: int, last: int) -> int:
    if first > last:
        return 0
    number = int.from_bytes(value[first >> 3:(last >> 3) + 1], "big") >> (7 - (last & 7))
    return (number & ((1 << (last - first + 1)) - 1)).bit_count()


@command("bitcount", -2)
def bitcount(db: Database, args: list[bytes]) -> int:
    """BITCOUNT key [start end [BYTE|BIT]]. Cost: 1 GetItem (a chunked value: + its chunks)."""
    value = db.read_string(args[0])[1]  # as Redis 7.0: the key first, then the arguments
    if value is None:
        return 0
    if len(args) == 1:
        return count_bits(value, 0, len(value) * 8 - 1)
    if len(args) not in (3, 4):
        raise ReplyError(SYNTAX_ERROR)
    start, end = parse_int(args[1]), parse_int(args[2])
    if start < 0 and end < 0 and start > end:  # before the BYTE|BIT word, as in Redis 7.0
        return 0
    return count_bits(value, *bit_range(len(value), start, end, in_bits(args, 3)))


def first_bit(value: bytes, first: int, last: int, bit: int) -> int | None:
    """The position of the first ``bit`` in bits ``first`` .. ``last`` of ``value``, or None."""
    if first > last:
        return None
    segment = bytearray(value[first >> 3:(last >> 3) + 1])
    before, after = first & 7, 7 - (last & 7)  # bits of the edge bytes outside the range
    if bit:
        segment[0] &= 0xFF >> before
        segment[-1] &= (0xFF << after) & 0xFF
    else:
        segment[0] |= (0xFF << (8 - before)) & 0xFF
        segment[-1] |= (1 << after) - 1
    rest = segment.lstrip(b"\x00" if bit else b"\xff")
    if not rest:
        return None
    byte = rest[0] if bit else rest[0] ^ 0xFF
    return ((first >> 3) + len(segment) - len(rest)) * 8 + 8 - byte.bit_length()


@command("bitpos", -3)
def bitpos(db: Database, args: list[bytes]) -> int:
    """BITPOS key bit [start [end [BYTE|BIT]]]. Cost: 1 GetItem (a chunked value: + its chunks)."""
    bit = parse_int(args[1])
    if bit not in (0, 1):
        raise ReplyError("ERR The bit argument must be 1 or 0.")
    value = db.read_string(args[0])[1]
    if value is None:  # an endless run of zeros
        return -1 if bit else 0
    if len(args) > 5:
        raise ReplyError(SYNTAX_ERROR)
    start = parse_int(args[2]) if len(args) > 2 else 0
    bits = in_bits(args, 4)
    end = parse_int(args[3]) if len(args) > 3 else -1
    first, last = bit_range(len(value), start, end, bits)
    found = first_bit(value, first, last, bit)
    if found is not None:
        return found
    # Looking for a 0 without an end: the bits after the value count as zeros.
    return last + 1 if bit == 0 and len(args) <= 3 and first <= last else -1


BITOPS = {b"AND": int.__and__, b"OR": int.__or__, b"XOR": int.__xor__, b"NOT": None}


@command("bitop", -4)
def bitop(db: Database, args: list[bytes]) -> int:
    """BITOP AND|OR|XOR|NOT destkey key [key ...]. Cost: ceil(n/100) BatchGetItem of the sources +
    1 PutItem of the result (as SET: any old value goes, and its TTL), or, when every source is
    empty or missing, DEL's 1 UpdateItem of the destination."""
    operation = c_string(args[0]).upper()
    if operation not in BITOPS:
        raise ReplyError(SYNTAX_ERROR)
    if operation == b"NOT" and len(args) != 3:
        raise ReplyError("ERR BITOP NOT must be called with a single source key.")
    values = [value or b"" for value in read_strings(db, args[2:])]
    length = max(map(len, values))
    if not length:
        delete_one(db, args[1])
        return 0
    numbers = [int.from_bytes(value.ljust(length, b"\x00"), "big") for value in values]
    if operation == b"NOT":
        result = ~numbers[0] & ((1 << length * 8) - 1)
    else:
        result = reduce(BITOPS[operation], numbers)
    set_string(db, args[1], result.to_bytes(length, "big"), None, None, False)
    return length


@dataclass(frozen=True)
class Field:
    """One BITFIELD operation."""

    operation: bytes  # GET, SET or INCRBY
    signed: bool
    width: int
    offset: int
    value: int
    overflow: bytes  # WRAP, SAT or FAIL

    def run(self, window: Window) -> int | None:
        """Its reply (None: refused by OVERFLOW FAIL), writing the window for SET and INCRBY."""
        old = get_bits(window, self.offset, self.width)
        if self.signed and old >> (self.width - 1):
            old -= 1 << self.width
        if self.operation == b"GET":
            return old
        if self.operation == b"INCRBY":
            target = old + self.value
        else:  # an unsigned SET takes the value as C's uint64_t
            target = self.value if self.signed else self.value % 2**64
        half = 1 << (self.width - 1)
        low, high = (-half, half - 1) if self.signed else (0, 2 * half - 1)
        new = target
        if not low <= target <= high:
            if self.overflow == b"FAIL":
                return None
            if self.overflow == b"SAT":
                new = high if target > high else low
            else:  # WRAP: modulo 2**width, read back with its sign
                new = target % (1 << self.width)
                if self.signed and new > high:
                    new -= 1 << self.width
        set_bits(window, self.offset, self.width, new)
        return new if self.operation == b"INCRBY" else old


def field_type(arg: bytes) -> tuple[bool, int]:
    text = c_string(arg)
    width = canonical_int(text[1:]) if text[:1] in (b"i", b"u") else None
    if width is None or not 1 <= width <= (64 if text[:1] == b"i" else 63):
        raise ReplyError(TYPE_ERROR)
    return text[:1] == b"i", width


def parse_fields(args: list[bytes]) -> list[Field]:
    """BITFIELD's operations, parsed (and refused) as Redis does, before the key is read."""
    fields, overflow, index = [], b"WRAP", 1
    while index < len(args):
        word, remaining = c_string(args[index]).upper(), len(args) - index - 1
        if word == b"OVERFLOW" and remaining >= 1:
            overflow = c_string(args[index + 1]).upper()
            if overflow not in (b"WRAP", b"SAT", b"FAIL"):
                raise ReplyError("ERR Invalid OVERFLOW type specified")
            index += 2
            continue
        if not ((word == b"GET" and remaining >= 2) or (word in (b"SET", b"INCRBY") and remaining >= 3)):
            raise ReplyError(SYNTAX_ERROR)
        signed, width = field_type(args[index + 1])
        offset = bit_offset(args[index + 2], width)
        value = parse_int(args[index + 3]) if word != b"GET" else 0
        fields.append(Field(word, signed, width, offset, value, overflow))
        index += 3 if word == b"GET" else 4
    return fields


def bitfield_command(db: Database, args: list[bytes], read_only: bool) -> list[int | None]:
    fields = parse_fields(args)
    writes = [field for field in fields if field.operation != b"GET"]
    if writes and read_only:
        raise ReplyError("ERR BITFIELD_RO only supports the GET subcommand")
    low = min((field.offset >> 3 for field in fields), default=0)
    high = max(((field.offset + field.width - 1) >> 3 for field in fields), default=-1)
    if not writes:
        window = db.read_window(args[0], low, high)
        return [field.run(window) for field in fields]
    length = (max(field.offset + field.width - 1 for field in writes) >> 3) + 1
    return db.modify_window(args[0], low, high, length, lambda window: [field.run(window) for field in fields])


@command("bitfield", -2)
def bitfield(db: Database, args: list[bytes]) -> list[int | None]:
    """BITFIELD key [GET type offset] [SET type offset value] [INCRBY type offset increment]
    [OVERFLOW WRAP|SAT|FAIL] ... Only GETs: 1 GetItem. With SET or INCRBY: 1 GetItem + 1 conditional
    PutItem (none when no byte changes), keeping the TTL; a chunked value: 1 GetItem of the head, 1
    GetItem (or BatchGetItem) of the chunks the fields touch, 1 TransactWriteItems of those that change
    and the head."""
    return bitfield_command(db, args, read_only=False)


@command("bitfield_ro", -2)
def bitfield_ro(db: Database, args: list[bytes]) -> list[int | None]:
    """BITFIELD_RO key [GET type offset] ... Cost: 1 GetItem (a chunked value: + the chunks read)."""
    return bitfield_command(db, args, read_only=True)


def lcs_rows(a: bytes, b: bytes) -> list[int]:
    """Row i of the LCS table of a[:i] and b as a bit vector whose zero bits (among len(b)) mark
    where the row grows: LCS(a[:i], b[:j]) = j - popcount(row & (2**j - 1)) (Hyyrö's algorithm)."""
    masks: dict[int, int] = {}
    for index, char in enumerate(b):
        masks[char] = masks.get(char, 0) | 1 << index
    full = (1 << len(b)) - 1
    rows = [full]
    for char in a:
        row = rows[-1]
        matched = row & masks.get(char, 0)
        rows.append(((row + matched) | (row - matched)) & full)
    return rows


def lcs_matches(a: bytes, b: bytes, rows: list[int], min_length: int, with_length: bool) -> tuple[bytes, list]:
    """The common subsequence and its matching ranges, walked back from the end as Redis's lcsCommand
    does (so that ties resolve as there)."""
    def table(i: int, j: int) -> int:
        return j - (rows[i] & ((1 << j) - 1)).bit_count()

    i, j, result, matches = len(a), len(b), bytearray(), []
    a_start = a_end = b_start = b_end = None
    while i > 0 and j > 0:
        emit = False
        if a[i - 1] == b[j - 1]:
            result.append(a[i - 1])
            if a_start is None:
                a_start = a_end = i - 1
                b_start = b_end = j - 1
            else:  # contiguous with the range so far
                a_start, b_start = a_start - 1, b_start - 1
            emit = a_start == 0 or b_start == 0
            i, j = i - 1, j - 1
        else:
            if table(i - 1, j) > table(i, j - 1):
                i -= 1
            else:
                j -= 1
            emit = a_start is not None
        if emit:
            length = a_end - a_start + 1
            if length >= min_length:
                matches.append([[a_start, a_end], [b_start, b_end]] + ([length] if with_length else []))
            a_start = None
    return bytes(reversed(result)), matches


@command("lcs", -3)
def lcs(db: Database, args: list[bytes]) -> bytes | int | list:
    """LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]. Cost: 1 BatchGetItem of both keys
    (chunked values add their chunks). Computed in the client in O(len1 * len2 / 64) word operations
    and len1 * len2 / 8 bytes (Redis's table takes 4 bytes a cell)."""
    a, b = (value or b"" for value in read_strings(db, args[:2], NOT_STRINGS))
    words, index, min_length, plain = options(args, 2), 0, 0, set()
    while index < len(words):
        if words[index] == b"MINMATCHLEN" and index + 1 < len(words):
            min_length = max(parse_int(args[index + 3]), 0)
            index += 1
        elif words[index] in (b"IDX", b"LEN", b"WITHMATCHLEN"):
            plain.add(words[index])
        else:
            raise ReplyError(SYNTAX_ERROR)
        index += 1
    if {b"IDX", b"LEN"} <= plain:
        raise ReplyError("ERR If you want both the length and indexes, please just use IDX.")
    rows = lcs_rows(a, b)
    if b"LEN" in plain:
        return len(b) - rows[-1].bit_count()
    common, matches = lcs_matches(a, b, rows, min_length, b"WITHMATCHLEN" in plain)
    if b"IDX" in plain:
        return [b"matches", matches, b"len", len(common)]
    return common
