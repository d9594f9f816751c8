"""Redis glob patterns (KEYS, SCAN MATCH): ``*``, ``?``, ``[abc]``, ``[^a-z]`` and ``\\`` escapes,
matched byte for byte as Redis's stringmatchlen does. A range compares C ``char``s, signed on
x86-64, so ``[\\xff-a]`` runs from -1 up to ``a``. No pattern but the empty one matches the empty
key, except the lone ``*`` that KEYS and SCAN take as "all keys"."""

from __future__ import annotations

import re
from functools import lru_cache


def _byte(value: int) -> bytes:
    return b"\\x%02x" % value


def _signed(value: int) -> int:
    return value - 256 if value >= 128 else value


def _range(first: int, last: int) -> list[tuple[int, int]]:
    """The bytes in a range, compared as signed chars (as Redis on x86-64 does)."""
    low, high = sorted((_signed(first), _signed(last)))
    if low >= 0 or high < 0:
        return [(low % 256, high % 256)]
    return [(0, high), (low + 256, 255)]


@lru_cache(maxsize=256)
def compile_glob(pattern: bytes) -> re.Pattern[bytes]:
    out, index, size = [], 0, len(pattern)
    while index < size:
        char = pattern[index]
        if char == ord("*"):
            out.append(b".*")
        elif char == ord("?"):
            out.append(b".")
        elif char == ord("\\") and index + 1 < size:
            index += 1
            out.append(_byte(pattern[index]))
        elif char == ord("["):
            index += 1
            negate = index < size and pattern[index] == ord("^")
            index += negate
            ranges = []
            while index < size and pattern[index] != ord("]"):
                if pattern[index] == ord("\\") and index + 1 < size:
                    index += 1
                    ranges.append((pattern[index], pattern[index]))
                elif index + 2 < size and pattern[index + 1] == ord("-"):
                    ranges.extend(_range(pattern[index], pattern[index + 2]))
                    index += 2
                else:
                    ranges.append((pattern[index], pattern[index]))
                index += 1
            body = b"".join(_byte(low) + b"-" + _byte(high) for low, high in ranges)
            if body:
                out.append(b"[" + (b"^" if negate else b"") + body + b"]")
            else:
                out.append(b"." if negate else b"(?!)")
        else:
            out.append(_byte(char))
        index += 1
    return re.compile(b"".join(out) + b"\\Z", re.DOTALL)


def glob_match(pattern: bytes, name: bytes) -> bool:
    if not name:  # stringmatchlen compares nothing against an empty string
        return pattern in (b"", b"*")
    return compile_glob(pattern).match(name) is not None
