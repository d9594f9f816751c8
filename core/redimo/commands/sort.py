"""SORT and SORT_RO (docs/reference/keys-extra.md): Redis 7.0's sort.c on Redimo's items.

The key to sort (a list, set or sorted set) is read whole, or only the LIMIT range when nothing is
sorted (``BY`` a pattern without ``*`` on a list or sorted set). The keys that ``BY`` and ``GET``
patterns name are read in batches, never one by one: BatchGetItem of their heads, 100 a request (a
compact hash's fields come with its head), then BatchGetItem of the fields of promoted hashes. ``BY``
keys are read for every element before sorting; ``GET`` keys only for the elements LIMIT returns.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import collection
from ..collection import Head, member_of, member_sk
from ..gateway import Item
from ..protocol import SYNTAX_ERROR, WRONGTYPE, ReplyError, parse_int
from ..storage import MAX_PARTITION_KEY, Database
from .base import c_string, command, options
from .hashes import FIELD, value_of
from .lists import bounds, element_sk
from .sets import all_members
from .zsets import c_strtod, rank_range

NOT_DOUBLE = "ERR One or more scores can't be converted into double"


@dataclass(frozen=True)
class Pattern:
    """A BY or GET pattern as lookupKeyByPattern reads it: ``#`` (the element itself), or a key made of
    ``prefix + element + suffix``, with ``field`` for a hash field (``->field``)."""

    own: bool
    prefix: bytes = b""
    suffix: bytes = b""
    field: bytes | None = None

    def key(self, element: bytes) -> bytes:
        return self.prefix + element + self.suffix


def parse_pattern(pattern: bytes) -> Pattern | None:
    """The pattern, or None when it names no key (no ``*``: Redis looks up nothing). Redis reads it as
    a C string up to its first NUL to find ``#``, ``*`` and ``->``, but substitutes the whole of it."""
    text = c_string(pattern)
    if text == b"#":
        return Pattern(own=True)
    star = text.find(b"*")
    if star < 0:
        return None
    arrow = text.find(b"->", star + 1)
    if arrow < 0 or arrow + 2 == len(text):
        return Pattern(False, pattern[:star], pattern[star + 1:])
    return Pattern(False, pattern[:star], pattern[star + 1:arrow], pattern[arrow + 2:])


class Lookups:
    """The values patterns name, read in batches and kept for the whole command (a key BY and GET both
    name is read once)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.heads: dict[bytes, Item | None] = {}
        self.fields: dict[tuple[bytes, bytes], bytes | None] = {}

    def fetch(self, pattern: Pattern, elements: list[bytes]) -> list[bytes | None]:
        """What ``pattern`` names for each element. Cost: ceil(k/100) BatchGetItem for the k keys not
        read yet, then ceil(f/100) for the fields of promoted hashes (and the chunks of strings over
        350,000 bytes)."""
        if pattern.own:
            return list(elements)
        keys = [pattern.key(element) for element in elements]
        missing = [key for key in dict.fromkeys(keys) if key not in self.heads]
        possible = [key for key in missing if len(self.db.prefix) + len(key) <= MAX_PARTITION_KEY]  # others: none
        heads = self.db.gateway.batch_get([self.db.head_key(key) for key in possible])
        found = {self.db.key_of(item): item for item in heads}
        self.heads.update({key: found.get(key) for key in missing})
        if pattern.field is None:
            return [self.string(key) for key in keys]
        wanted = [(key, pattern.field) for key in dict.fromkeys(keys) if (key, pattern.field) not in self.fields]
        self.read_fields(wanted)
        return [self.fields[key, pattern.field] for key in keys]

    def string(self, key: bytes) -> bytes | None:
        record = self.db.record(self.heads[key])
        if record is None or record.type != "string":
            return None
        return self.db.string_value(record)

    def read_fields(self, wanted: list[tuple[bytes, bytes]]) -> None:
        promoted: dict[tuple[bytes, bytes], Head] = {}
        for key, field in wanted:
            record = self.db.record(self.heads[key])
            self.fields[key, field] = None
            if record is None or record.type != "hash":
                continue
            head = collection.head_of(self.db, record.item, "hash")[0]
            if head.compact:
                item = head.members.get(member_sk(FIELD, field))
                self.fields[key, field] = value_of(item) if item else None
            else:
                promoted[key, field] = head
        requests = {(self.db.pk(key), member_sk(FIELD, field)): (key, field) for key, field in promoted}
        for item in self.db.gateway.batch_get([{"pk": {"B": pk}, "sk": {"B": sk}} for pk, sk in requests]):
            key, field = requests[item["pk"]["B"], item["sk"]["B"]]
            if item.get("g", {}).get("B") == promoted[key, field].generation:
                self.fields[key, field] = value_of(item)


def sort_score(value: bytes | None) -> float:
    """The score of a BY value (missing: 0) or an element as sort.c reads it with strtod; NaN and
    out-of-range values are refused."""
    parsed = (0.0, False) if value is None else c_strtod(value)
    if parsed is None or parsed[1]:
        raise ReplyError(NOT_DOUBLE)
    return parsed[0]


@dataclass
class Request:
    by: Pattern | None = None
    dontsort: bool = False
    gets: tuple[Pattern | None, ...] = ()
    offset: int = 0
    count: int = -1
    desc: bool = False
    alpha: bool = False
    store: bytes | None = None


def parse(args: list[bytes], readonly: bool) -> Request:
    """The options, as sortCommandGeneric parses them (the last ASC/DESC, LIMIT, BY wins)."""
    request, gets, words, index = Request(), [], options(args, 1), 0
    while index < len(words):
        word, left = words[index], len(words) - index - 1
        if word in (b"ASC", b"DESC"):
            request.desc = word == b"DESC"
        elif word == b"ALPHA":
            request.alpha = True
        elif word == b"LIMIT" and left >= 2:
            request.offset, request.count = parse_int(args[index + 2]), parse_int(args[index + 3])
            index += 2
        elif word == b"STORE" and left >= 1 and not readonly:
            request.store = args[index + 2]
            index += 1
        elif word == b"BY" and left >= 1:
            request.by = parse_pattern(args[index + 2])
            request.dontsort = b"*" not in c_string(args[index + 2])
            index += 1
        elif word == b"GET" and left >= 1:
            gets.append(parse_pattern(args[index + 2]))
            index += 1
        else:
            raise ReplyError(SYNTAX_ERROR)
        index += 1
    request.gets = tuple(gets)
    return request


def window(request: Request, size: int) -> tuple[int, int]:
    """LIMIT as Redis clamps it: the first and last index of the output (last < first: none)."""
    start = max(request.offset, 0)
    end = size - 1 if request.count < 0 else start + request.count - 1
    if start >= size:
        start, end = size - 1, size - 2
    return start, min(end, size - 1)


def read_list(db: Database, key: bytes, head: Head, first: int, last: int) -> list[bytes]:
    """Elements ``first..last`` of a list (1 Query of the slice; read again if the list changed)."""
    while True:
        l, _ = bounds(head)
        items = list(collection.members(db, key, head, element_sk(l + first), element_sk(l + last)))
        if len(items) == last - first + 1:
            return [item["v"]["B"] for item in items]
        head = collection.load(db, key, "list")
        if head is None:
            return []
        last = min(last, head.size - 1)
        if last < first:
            return []


def elements(db: Database, key: bytes, request: Request) -> tuple[list[bytes], int, int]:
    """The elements to sort and the output window over them. A list or sorted set under BY without
    ``*`` is read in the window alone, in the requested direction (as Redis does); a set under it is
    given in byte order (Redis's is its hash table's, undefined), and sorted by byte when stored, as Redis
    does in that case."""
    item = db.gateway.get(db.head_key(key))
    record = db.record(item)
    if record is None:
        return [], 0, -1
    if record.type not in ("list", "set", "zset"):
        raise ReplyError(WRONGTYPE)
    head = collection.head_of(db, item, record.type)[0]
    start, end = window(request, head.size)
    if record.type == "set":
        members = sorted(all_members(db, key, head))
        if request.dontsort and request.store is not None:
            request.dontsort, request.alpha, request.by = False, True, None
        return members, start, end
    if not request.dontsort:
        start_all, end_all = 0, head.size - 1
    elif end < start:
        return [], 0, -1
    else:  # only the window, from the end DESC names
        start_all, end_all = (head.size - 1 - end, head.size - 1 - start) if request.desc else (start, end)
    if record.type == "list":
        found = read_list(db, key, head, start_all, end_all)
    else:
        found = [member_of(item) for item in rank_range(db, key, head, start_all, end_all, False)]
    if not request.dontsort:
        return found, start, end
    return (found[::-1] if request.desc else found), 0, end - start


def sort_elements(found: list[bytes], request: Request, lookups: Lookups) -> list[bytes]:
    """sortCompare's order: numbers then bytes; ALPHA by bytes (by C string, up to a NUL, unless
    STORE); BY values missing first. Python's sort is stable, as glibc's qsort (a merge sort) is."""
    if request.dontsort:
        return found
    by = lookups.fetch(request.by, found) if request.by is not None else None
    stored = request.store is not None
    if request.alpha:
        if by is None:
            keys = found if stored else [c_string(element) for element in found]
            order = sorted(range(len(found)), key=keys.__getitem__, reverse=request.desc)
        else:
            keys = [(False, b"") if value is None else (True, value if stored else c_string(value)) for value in by]
            order = sorted(range(len(found)), key=keys.__getitem__, reverse=request.desc)
    else:
        scores = [sort_score(value) for value in (by if by is not None else found)]
        order = sorted(range(len(found)), key=lambda index: (scores[index], found[index]), reverse=request.desc)
    return [found[index] for index in order]


def sort(db: Database, args: list[bytes], readonly: bool) -> list | int:
    request = parse(args, readonly)
    found, start, end = elements(db, args[0], request)
    lookups = Lookups(db)
    chosen = sort_elements(found, request, lookups)[start:end + 1] if end >= start else []
    if not request.gets:
        values: list[bytes | None] = chosen
    else:
        columns = [lookups.fetch(pattern, chosen) if pattern else [None] * len(chosen) for pattern in request.gets]
        values = [column[row] for row in range(len(chosen)) for column in columns]
    if request.store is None:
        return values
    items = [{"sk": {"B": element_sk(index)}, "v": {"B": collection.check_value(value or b"")}}
             for index, value in enumerate(values)]
    collection.replace(db, request.store, "list", items, {"l": {"N": "0"}, "r": {"N": str(len(items))}})
    return len(items)


@command("sort", -2)
def sort_command(db: Database, args: list[bytes]) -> list | int:
    """SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA] [STORE destination].
    Cost: 1 GetItem of the key + Query pages of its members (none for a compact one; the LIMIT slice
    alone when nothing is sorted); BY and GET keys: ceil(k/100) BatchGetItem for k distinct keys, plus
    ceil(f/100) for the fields of promoted hashes; STORE: as :func:`redimo.collection.replace` (1 GetItem
    + 1 PutItem or TransactWriteItems up to 98 elements; more: 25 a BatchWriteItem first)."""
    return sort(db, args, readonly=False)


@command("sort_ro", -2)
def sort_ro(db: Database, args: list[bytes]) -> list:
    """SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]: SORT without
    STORE (a syntax error here). Cost: as SORT's reads."""
    return sort(db, args, readonly=True)
