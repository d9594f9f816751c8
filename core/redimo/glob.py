"""Redis glob patterns (KEYS, SCAN MATCH): ``*``, ``?``, ``[abc]``, ``[^a-z]`` and ``\\`` escapes,
matched byte for byte as Redis's stringmatchlen does."""

from __future__ import annotations

import re
from functools import lru_cache


def _byte(value: int) -> bytes:
    return b"\\x%02x" % value


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
                    low, high = sorted((pattern[index], pattern[index + 2]))
                    ranges.append((low, high))
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
    return compile_glob(pattern).match(name) is not None


def literal_prefix(pattern: bytes) -> bytes:
    """The bytes every match starts with (up to the first special character)."""
    for index, char in enumerate(pattern):
        if char in b"*?[\\":
            return pattern[:index]
    return pattern
