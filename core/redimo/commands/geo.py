"""Geo commands. A geo key is a sorted set (TYPE says ``zset``, as in Redis): member items
``sk = 04 + member`` whose ``sc`` is the encoded score, and the score is Redis's 52-bit interleaved
geohash of (longitude, latitude), so ZSCORE returns what Redis returns.

The algorithms are a port of Redis 7.0's geohash.c, geohash_helper.c and geo.c (encoding, decoding
to the cell centre, the haversine distance with Redis's earth radius, the precision chosen from the
radius, the centre cell and its 8 neighbours), so every reply, float formatting included, equals
Redis's. A search turns each cell into a score range and Queries the ``by-score`` index for it
(consecutive ranges merged into one Query), so it reads only the members of at most 9 nearby cells,
from the index alone.

Difference from Redis: GEOSEARCH's "exactly one of ..." errors name the command in upper case
(Redis repeats it as the client typed it; the command name does not reach Redimo's handlers).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Iterator

from .. import collection
from ..collection import Change, State, member_attributes, member_of, member_sk
from ..gateway import Item
from ..protocol import SYNTAX_ERROR, ReplyError, canonical_int, format_long_double
from ..scores import decode_score, encode_score
from ..storage import Database
from ..table import SCORE_INDEX_NAME
from .base import c_string, command

ZSET = b"\x04"
LONG_MIN, LONG_MAX = -180.0, 180.0
LAT_MIN, LAT_MAX = -85.05112878, 85.05112878
STEP_MAX = 26
D_R = math.pi / 180.0
EARTH_RADIUS = 6372797.560856
MERCATOR_MAX = 20037726.37
MASK64 = (1 << 64) - 1
UNITS = {b"M": 1.0, b"KM": 1000.0, b"FT": 0.3048, b"MI": 1609.34}
ALPHABET = b"0123456789bcdefghjkmnpqrstuvwxyz"
_DOUBLE = re.compile(rb"[+-]?(?:inf(?:inity)?|0x(?=\.?[0-9a-f])[0-9a-f]*(?:\.[0-9a-f]*)?(?:p[+-]?[0-9]+)?"
                     rb"|(?=\.?[0-9])[0-9]*(?:\.[0-9]*)?(?:e[+-]?[0-9]+)?)\Z", re.IGNORECASE)


# -- C semantics -----------------------------------------------------------------------------
def parse_double(value: bytes, error: str = "ERR value is not a valid float") -> float:
    """A double argument as Redis's string2d reads it (strtod): decimal, hexadecimal, inf; no
    spaces, no NaN, no overflow and no underflow to zero."""
    if not _DOUBLE.match(value):
        raise ReplyError(error)
    body = value.decode().lstrip("+-")
    hexadecimal = body[:2].lower() == "0x"
    try:
        number = float.fromhex(value.decode()) if hexadecimal else float(value)
    except OverflowError:
        raise ReplyError(error) from None
    mantissa = re.split("[pP]" if hexadecimal else "[eE]", body[2:] if hexadecimal else body)[0]
    if (math.isinf(number) and not body[:1].isalpha()) or (number == 0 and mantissa.strip("0.")):
        raise ReplyError(error)
    return number


def _c(function: Callable[[float], float]) -> Callable[[float], float]:
    """A libm function with C's result (NaN) where Python's math raises."""
    def call(x: float) -> float:
        try:
            return function(x)
        except ValueError:
            return math.nan
    return call


sin, cos, asin, sqrt = _c(math.sin), _c(math.cos), _c(math.asin), _c(math.sqrt)


def to_uint64(score: float) -> int:
    """``(uint64_t)score`` as x86-64 computes it."""
    if not math.isfinite(score) or score >= 2.0**64 or score <= -(2.0**63):
        return 1 << 63
    return int(score) & MASK64


# -- geohash.c -------------------------------------------------------------------------------
def interleave(x: int, y: int) -> int:
    """Bits of ``x`` at even positions, of ``y`` at odd ones (both below 2**32)."""
    for shift, mask in ((16, 0x0000FFFF0000FFFF), (8, 0x00FF00FF00FF00FF), (4, 0x0F0F0F0F0F0F0F0F),
                        (2, 0x3333333333333333), (1, 0x5555555555555555)):
        x = (x | (x << shift)) & mask
        y = (y | (y << shift)) & mask
    return x | (y << 1)


def deinterleave(bits: int) -> int:
    x, y = bits, bits >> 1
    for shift, mask in ((0, 0x5555555555555555), (1, 0x3333333333333333), (2, 0x0F0F0F0F0F0F0F0F),
                        (4, 0x00FF00FF00FF00FF), (8, 0x0000FFFF0000FFFF), (16, 0x00000000FFFFFFFF)):
        x = (x | (x >> shift)) & mask
        y = (y | (y >> shift)) & mask
    return x | (y << 32)


def encode(lon: float, lat: float, step: int, lon_range: tuple[float, float] = (LONG_MIN, LONG_MAX),
           lat_range: tuple[float, float] = (LAT_MIN, LAT_MAX)) -> int:
    """geohashEncode: the interleaved cell bits of a position (0 outside the ranges)."""
    if not (LONG_MIN <= lon <= LONG_MAX and LAT_MIN <= lat <= LAT_MAX):
        return 0
    if not (lat_range[0] <= lat <= lat_range[1] and lon_range[0] <= lon <= lon_range[1]):
        return 0
    lat_offset = (lat - lat_range[0]) / (lat_range[1] - lat_range[0]) * float(1 << step)
    lon_offset = (lon - lon_range[0]) / (lon_range[1] - lon_range[0]) * float(1 << step)
    return interleave(int(lat_offset), int(lon_offset))


@dataclass
class Area:
    lon_min: float
    lon_max: float
    lat_min: float
    lat_max: float


def decode(bits: int, step: int) -> Area:
    separated = deinterleave(bits)
    lat_cell, lon_cell = separated & 0xFFFFFFFF, separated >> 32
    lat_scale, lon_scale, cells = LAT_MAX - LAT_MIN, LONG_MAX - LONG_MIN, float(1 << step)
    return Area(LONG_MIN + (lon_cell * 1.0 / cells) * lon_scale,
                LONG_MIN + (((lon_cell + 1) & 0xFFFFFFFF) * 1.0 / cells) * lon_scale,
                LAT_MIN + (lat_cell * 1.0 / cells) * lat_scale,
                LAT_MIN + (((lat_cell + 1) & 0xFFFFFFFF) * 1.0 / cells) * lat_scale)


def position(score: float) -> tuple[float, float]:
    """The (longitude, latitude) a geo score stands for: its cell's centre, clamped to the limits."""
    area = decode(to_uint64(score), STEP_MAX)
    lon = min(max((area.lon_min + area.lon_max) / 2, LONG_MIN), LONG_MAX)
    lat = min(max((area.lat_min + area.lat_max) / 2, LAT_MIN), LAT_MAX)
    return lon, lat


def move(bits: int, step: int, mask: int, direction: int) -> int:
    """geohash_move_x (mask 0xaa..) / geohash_move_y (mask 0x55..)."""
    if direction == 0:
        return bits
    other_mask = mask ^ MASK64
    moved, kept = bits & mask, bits & other_mask
    zz = other_mask >> (64 - step * 2)
    moved = (moved + zz + 1) if direction > 0 else ((moved | zz) - (zz + 1))
    return ((moved & MASK64) & (mask >> (64 - step * 2))) | kept


def neighbour(bits: int, step: int, dx: int, dy: int) -> int:
    return move(move(bits, step, 0xAAAAAAAAAAAAAAAA, dx), step, 0x5555555555555555, dy)


# -- geohash_helper.c ------------------------------------------------------------------------
@dataclass
class Shape:
    lon: float = 0.0
    lat: float = 0.0
    box: bool = False
    radius: float = 0.0
    width: float = 0.0
    height: float = 0.0
    conversion: float = 0.0


def distance(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """geohashGetDistance: haversine on Redis's sphere, in meters."""
    lat1r, lon1r, lat2r, lon2r = lat1 * D_R, lon1 * D_R, lat2 * D_R, lon2 * D_R
    u = sin((lat2r - lat1r) / 2)
    v = sin((lon2r - lon1r) / 2)
    return 2.0 * EARTH_RADIUS * asin(sqrt(u * u + cos(lat1r) * cos(lat2r) * v * v))


def steps_for(range_meters: float, lat: float) -> int:
    """geohashEstimateStepsByRadius."""
    if range_meters == 0:
        return 26
    step = 1
    while range_meters < MERCATOR_MAX:
        range_meters *= 2
        step += 1
    step -= 2
    if lat > 66 or lat < -66:
        step -= 1
        if lat > 80 or lat < -80:
            step -= 1
    return min(max(step, 1), 26)


def bounding_box(shape: Shape) -> tuple[float, float, float, float]:
    """geohashBoundingBox: (min lon, min lat, max lon, max lat)."""
    height = shape.conversion * (shape.height / 2 if shape.box else shape.radius)
    width = shape.conversion * (shape.width / 2 if shape.box else shape.radius)
    lat_delta = (height / EARTH_RADIUS) / D_R
    top = (width / EARTH_RADIUS / cos((shape.lat + lat_delta) * D_R)) / D_R
    bottom = (width / EARTH_RADIUS / cos((shape.lat - lat_delta) * D_R)) / D_R
    lon_delta = bottom if shape.lat < 0 else top
    return shape.lon - lon_delta, shape.lat - lat_delta, shape.lon + lon_delta, shape.lat + lat_delta


def cells(shape: Shape) -> list[tuple[int, int]]:
    """geohashCalculateAreasByShapeWGS84: (bits, step) of the centre cell, then N, S, E, W, NE, NW,
    SE, SW; a cell the search cannot touch is (0, 0)."""
    min_lon, min_lat, max_lon, max_lat = bounding_box(shape)
    radius = shape.radius if not shape.box else sqrt((shape.width / 2) * (shape.width / 2)
                                                     + (shape.height / 2) * (shape.height / 2))
    step = steps_for(radius * shape.conversion, shape.lat)
    moves = ((0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (-1, 1), (1, -1), (-1, -1))
    bits = encode(shape.lon, shape.lat, step)
    north, south, east, west = (decode(neighbour(bits, step, dx, dy), step) for dx, dy in moves[:4])
    if step > 1 and (north.lat_max < max_lat or south.lat_min > min_lat
                     or east.lon_max < max_lon or west.lon_min > min_lon):
        step -= 1
        bits = encode(shape.lon, shape.lat, step)
    area = decode(bits, step)
    found = [(bits, step)] + [(neighbour(bits, step, dx, dy), step) for dx, dy in moves]
    if step >= 2:
        useless = set()
        if area.lat_min < min_lat:
            useless |= {(0, -1), (-1, -1), (1, -1)}
        if area.lat_max > max_lat:
            useless |= {(0, 1), (1, 1), (-1, 1)}
        if area.lon_min < min_lon:
            useless |= {(-1, 0), (-1, -1), (-1, 1)}
        if area.lon_max > max_lon:
            useless |= {(1, 0), (1, -1), (1, 1)}
        found = found[:1] + [(0, 0) if offset in useless else cell for offset, cell in zip(moves, found[1:])]
    return found


def within(shape: Shape, lon: float, lat: float) -> float | None:
    """The distance from the shape's centre to a point inside it, None outside (geoWithinShape)."""
    if not shape.box:
        meters = distance(shape.lon, shape.lat, lon, lat)
        return None if meters > shape.radius * shape.conversion else meters
    if (distance(lon, lat, shape.lon, lat) > shape.width * shape.conversion / 2
            or distance(lon, lat, lon, shape.lat) > shape.height * shape.conversion / 2):
        return None
    return distance(shape.lon, shape.lat, lon, lat)


# -- replies ---------------------------------------------------------------------------------
def format_distance(meters: float) -> bytes:
    """fixedpoint_d2string(d, 4): llrint(d * 10000) printed with 4 decimals."""
    if meters == 0:
        return b"0.0000"
    scaled = meters * 10000.0
    value = round(scaled) if math.isfinite(scaled) and abs(scaled) < 2.0**63 else -(1 << 63)
    sign, value = ("-", -value) if value < 0 else ("", value)
    return f"{sign}{value // 10000}.{value % 10000:04d}".encode()


def format_coordinate(value: float) -> bytes:
    """addReplyHumanLongDouble: %.17Lf without trailing zeros."""
    return format_long_double(Fraction(value))


def geohash_string(score: float) -> bytes:
    lon, lat = position(score)
    bits = encode(lon, lat, 26, (-180.0, 180.0), (-90.0, 90.0))
    return bytes(ALPHABET[(bits >> (52 - (i + 1) * 5)) & 0x1F] if i < 10 else ALPHABET[0] for i in range(11))


# -- helpers ---------------------------------------------------------------------------------
def score_of(item: Item) -> float:
    return decode_score(int(item["sc"]["N"]))


def member_item(member: bytes, score: float) -> Item:
    return {**member_attributes(ZSET, member), "sc": {"N": str(encode_score(score))}}


def parse_position(lon: bytes, lat: bytes) -> tuple[float, float]:
    """extractLongLatOrReply."""
    x, y = parse_double(lon), parse_double(lat)
    if x < LONG_MIN or x > LONG_MAX or y < LAT_MIN or y > LAT_MAX:
        raise ReplyError(f"ERR invalid longitude,latitude pair {x:f},{y:f}")
    return x, y


def parse_unit(unit: bytes) -> float:
    conversion = UNITS.get(c_string(unit).upper())
    if conversion is None:
        raise ReplyError("ERR unsupported unit provided. please use M, KM, FT, MI")
    return conversion


def parse_distance(value: bytes, unit: bytes) -> tuple[float, float]:
    """(radius, conversion to meters), as extractDistanceOrReply."""
    radius = parse_double(value, "ERR need numeric radius")
    if radius < 0:
        raise ReplyError("ERR radius cannot be negative")
    return radius, parse_unit(unit)


def read_positions(db: Database, key: bytes, members: list[bytes]) -> tuple[State, list[tuple[float, float] | None]]:
    """The zset's head and each member's position (None when absent). Cost: 1 BatchGetItem for up
    to 99 members (ceil((n+1)/100) in all)."""
    sks = [member_sk(ZSET, member) for member in members]
    state = collection.read(db, key, "zset", sks)
    return state, [position(score_of(state.members[sk])) if sk in state.members else None for sk in sks]


# -- commands --------------------------------------------------------------------------------
@command("geoadd", -5)
def geoadd(db: Database, args: list[bytes]) -> int:
    """GEOADD key [NX|XX] [CH] longitude latitude member [...]: ZADD of the members' geohash scores.
    Cost: 1 BatchGetItem (head + members) + 1 TransactWriteItems (2 WCU per KB of the head and of
    each member written; none when nothing changes); 99 members a transaction."""
    flags, index = set(), 1
    while index < len(args) and c_string(args[index]).upper() in (b"NX", b"XX", b"CH"):
        flags.add(c_string(args[index]).upper())
        index += 1
    rest = args[index:]
    if len(rest) % 3 or {b"NX", b"XX"} <= flags or not rest:
        raise ReplyError(SYNTAX_ERROR)
    scores = []
    for at in range(0, len(rest), 3):
        lon, lat = parse_position(rest[at], rest[at + 1])
        scores.append((rest[at + 2], float(encode(lon, lat, STEP_MAX) << (52 - 2 * STEP_MAX))))

    def plan(state: State) -> tuple[Change | None, int]:
        if state.head is None and b"XX" in flags:
            return None, 0
        current = {sk: score_of(item) for sk, item in state.members.items()}
        touched: dict[bytes, bytes] = {}
        added = changed = 0
        for member, score in scores:
            sk = member_sk(ZSET, member)
            if sk in current:
                if b"NX" in flags or current[sk] == score:
                    continue
                changed += 1
            elif b"XX" in flags:
                continue
            else:
                added += 1
            current[sk] = score
            touched[sk] = member
        puts = [member_item(member, current[sk]) for sk, member in touched.items()
                if sk not in state.members or score_of(state.members[sk]) != current[sk]]
        return Change(puts=puts), added + changed if b"CH" in flags else added

    return collection.update(db, args[0], "zset", plan, [member_sk(ZSET, member) for member, _ in scores])


@command("geopos", -2)
def geopos(db: Database, args: list[bytes]) -> list[list[bytes] | None]:
    """GEOPOS key [member ...]. Cost: 1 BatchGetItem of the head and the members (1 GetItem for none)."""
    _, positions = read_positions(db, args[0], args[1:])
    return [[format_coordinate(at[0]), format_coordinate(at[1])] if at else None for at in positions]


@command("geohash", -2)
def geohash(db: Database, args: list[bytes]) -> list[bytes | None]:
    """GEOHASH key [member ...]: 11-character standard geohashes. Cost: as GEOPOS."""
    sks = [member_sk(ZSET, member) for member in args[1:]]
    state = collection.read(db, args[0], "zset", sks)
    return [geohash_string(score_of(state.members[sk])) if sk in state.members else None for sk in sks]


@command("geodist", -4)
def geodist(db: Database, args: list[bytes]) -> bytes | None:
    """GEODIST key member1 member2 [M|KM|FT|MI]. Cost: 1 BatchGetItem of the head and both members."""
    if len(args) > 4:
        raise ReplyError(SYNTAX_ERROR)
    conversion = parse_unit(args[3]) if len(args) == 4 else 1.0
    state, (first, second) = read_positions(db, args[0], args[1:3])
    if state.head is None or first is None or second is None:
        return None
    return format_distance(distance(*first, *second) / conversion)


@dataclass
class Search:
    shape: Shape
    store: bytes | None = None
    store_dist: bool = False
    with_dist: bool = False
    with_hash: bool = False
    with_coord: bool = False
    sort: int = 0  # 0 none, 1 ascending, -1 descending
    count: int = 0
    any: bool = False


def parse_search(name: str, args: list[bytes], present: bool, locate: Callable[[bytes], tuple[float, float]]) -> Search:
    """georadiusGeneric's argument parsing, errors in Redis's order. ``locate`` gives a member's
    position (raising Redis's error when it is absent); ``present`` says whether the key exists."""
    shape, geosearch, store_command = Shape(), name.startswith("GEOSEARCH"), name == "GEOSEARCHSTORE"
    search = Search(shape)
    if name.startswith("GEORADIUSBYMEMBER"):
        base = 4
        if present:
            shape.lon, shape.lat = locate(args[1])
            shape.radius, shape.conversion = parse_distance(args[2], args[3])
    elif name.startswith("GEORADIUS"):
        base = 5
        shape.lon, shape.lat = parse_position(args[1], args[2])
        shape.radius, shape.conversion = parse_distance(args[3], args[4])
    else:
        base = 2 if store_command else 1
        search.store = args[0] if store_command else None
    can_store = not geosearch and not name.endswith("_RO")
    from_member = from_position = by_radius = by_box = False
    options = args[base:]
    i = 0
    while i < len(options):
        word, left = c_string(options[i]).upper(), len(options) - i - 1
        if word in (b"WITHDIST", b"WITHHASH", b"WITHCOORD"):
            setattr(search, "with_" + word[4:].lower().decode(), True)
        elif word == b"ANY":
            search.any = True
        elif word in (b"ASC", b"DESC"):
            search.sort = 1 if word == b"ASC" else -1
        elif word == b"COUNT" and left >= 1:
            count = canonical_int(options[i + 1])
            if count is None:
                raise ReplyError("ERR value is not an integer or out of range")
            if count <= 0:
                raise ReplyError("ERR COUNT must be > 0")
            search.count = count
            i += 1
        elif word in (b"STORE", b"STOREDIST") and left >= 1 and can_store:
            search.store, search.store_dist = options[i + 1], word == b"STOREDIST"
            i += 1
        elif word == b"STOREDIST" and store_command:
            search.store_dist = True
        elif word == b"FROMMEMBER" and left >= 1 and geosearch and not from_position:
            if present:
                shape.lon, shape.lat = locate(options[i + 1])
            from_member = True
            i += 1
        elif word == b"FROMLONLAT" and left >= 2 and geosearch and not from_member:
            shape.lon, shape.lat = parse_position(options[i + 1], options[i + 2])
            from_position = True
            i += 2
        elif word == b"BYRADIUS" and left >= 2 and geosearch and not by_box:
            shape.radius, shape.conversion = parse_distance(options[i + 1], options[i + 2])
            shape.box, by_radius = False, True
            i += 2
        elif word == b"BYBOX" and left >= 3 and geosearch and not by_radius:
            shape.width = parse_double(options[i + 1], "ERR need numeric width")
            shape.height = parse_double(options[i + 2], "ERR need numeric height")
            if shape.width < 0 or shape.height < 0:
                raise ReplyError("ERR height or width cannot be negative")
            shape.conversion = parse_unit(options[i + 3])
            shape.box, by_box = True, True
            i += 3
        else:
            raise ReplyError(SYNTAX_ERROR)
        i += 1
    if search.store is not None and (search.with_dist or search.with_hash or search.with_coord):
        raise ReplyError(f"ERR {'GEOSEARCHSTORE' if store_command else 'STORE option in GEORADIUS'} is not "
                         "compatible with WITHDIST, WITHHASH and WITHCOORD options")
    if geosearch and not (from_member or from_position):
        raise ReplyError(f"ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}")
    if geosearch and not (by_radius or by_box):
        raise ReplyError(f"ERR exactly one of BYRADIUS and BYBOX can be specified for {name}")
    if search.any and not search.count:
        raise ReplyError("ERR the ANY argument requires COUNT argument")
    return search


@dataclass
class Point:
    member: bytes
    score: float
    lon: float
    lat: float
    distance: float


def score_ranges(shape: Shape) -> list[tuple[int, int]]:
    """The [min, max) score ranges of the cells to search, in Redis's order (a cell equal to the one
    searched just before is skipped, as Redis does), consecutive ranges merged."""
    found = cells(shape)
    ranges: list[tuple[int, int]] = []
    last = 0
    for index, (bits, step) in enumerate(found):
        if (bits, step) == (0, 0) or (last and (bits, step) == found[last]):
            continue
        low, high = bits << (52 - 2 * step), (bits + 1) << (52 - 2 * step)
        if ranges and ranges[-1][1] == low:
            low = ranges.pop()[0]
        ranges.append((low, high))
        last = index
    return ranges


def members_in(db: Database, key: bytes, head: collection.Head, low: int, high: int) -> Iterator[tuple[float, bytes]]:
    """(score, member) with low <= score < high in Redis's order (score, then member): a Query of
    the ``by-score`` index (its entries carry sk, sc and mb: no table reads). DynamoDB does not order
    equal scores, so each group of them is sorted here. None for a compact sorted set."""
    if head.compact:
        found = [(int(item["sc"]["N"]), member_of(item)) for item in head.members.values()]
        for sc, member in sorted((sc, member) for sc, member in found
                                 if encode_score(float(low)) <= sc < encode_score(float(high))):
            yield decode_score(sc), member
        return
    values = {":pk": {"B": db.pk(key)}, ":low": {"N": str(encode_score(float(low)))},
              ":high": {"N": str(encode_score(float(high)) - 1)}, ":g": {"B": head.generation}}
    items = db.gateway.query("pk = :pk AND sc BETWEEN :low AND :high", values, index=SCORE_INDEX_NAME,
                             filter_expression="g = :g")
    group: list[bytes] = []
    group_sc = None
    for item in items:
        if item["sc"]["N"] != group_sc:
            yield from equal_scores(group_sc, group)
            group, group_sc = [], item["sc"]["N"]
        group.append(member_of(item))
    yield from equal_scores(group_sc, group)


def equal_scores(sc: str | None, members: list[bytes]) -> Iterator[tuple[float, bytes]]:
    for member in sorted(members):
        yield decode_score(int(sc or 0)), member


def points_within(db: Database, key: bytes, head: collection.Head, shape: Shape, limit: int) -> list[Point]:
    """The members inside the shape in Redis's scan order, stopping at ``limit`` (COUNT ... ANY)."""
    points: list[Point] = []
    for low, high in score_ranges(shape):
        for score, member in members_in(db, key, head, low, high):
            lon, lat = position(score)
            meters = within(shape, lon, lat)
            if meters is not None:
                points.append(Point(member, score, lon, lat, meters))
            if limit and len(points) >= limit:
                return points
    return points


def compare(a: Point, b: Point) -> int:
    return (a.distance > b.distance) - (a.distance < b.distance)


def partial_sort(points: list[Point], cmp: Callable[[Point, Point], int], left: int, right: int) -> None:
    """Redis's pqsort (the NetBSD qsort, skipping the parts that do not overlap positions
    left..right), so that even equal distances come out in Redis's order."""

    def med3(a: int, b: int, c: int) -> int:
        if cmp(points[a], points[b]) < 0:
            return b if cmp(points[b], points[c]) < 0 else (c if cmp(points[a], points[c]) < 0 else a)
        return b if cmp(points[b], points[c]) > 0 else (a if cmp(points[a], points[c]) < 0 else c)

    def swap(i: int, j: int) -> None:
        points[i], points[j] = points[j], points[i]

    def insertion(a: int, n: int) -> None:
        for m in range(a + 1, a + n):
            k = m
            while k > a and cmp(points[k - 1], points[k]) > 0:
                swap(k, k - 1)
                k -= 1

    def overlaps(start: int, n: int) -> bool:
        return not ((left < start and right < start) or (left >= start + n and right >= start + n))

    def sort(a: int, n: int) -> None:
        while True:
            if n < 7:
                insertion(a, n)
                return
            pm = a + n // 2
            if n > 7:
                pl, pn = a, a + n - 1
                if n > 40:
                    d = n // 8
                    pl, pm, pn = med3(pl, pl + d, pl + 2 * d), med3(pm - d, pm, pm + d), med3(pn - 2 * d, pn - d, pn)
                pm = med3(pl, pm, pn)
            swap(a, pm)
            pa = pb = a + 1
            pc = pd = a + n - 1
            swapped = False
            while True:
                while pb <= pc and (result := cmp(points[pb], points[a])) <= 0:
                    if result == 0:
                        swapped = True
                        swap(pa, pb)
                        pa += 1
                    pb += 1
                while pb <= pc and (result := cmp(points[pc], points[a])) >= 0:
                    if result == 0:
                        swapped = True
                        swap(pc, pd)
                        pd -= 1
                    pc -= 1
                if pb > pc:
                    break
                swap(pb, pc)
                swapped = True
                pb += 1
                pc -= 1
            if not swapped:
                insertion(a, n)
                return
            pn = a + n
            r = min(pa - a, pb - pa)
            for k in range(r):
                swap(a + k, pb - r + k)
            r = min(pd - pc, pn - pd - 1)
            for k in range(r):
                swap(pb + k, pn - r + k)
            if (r := pb - pa) > 1 and overlaps(a, r):
                sort(a, r)
            if (r := pd - pc) <= 1 or not overlaps(pn - r, r):
                return
            a, n = pn - r, r

    sort(0, len(points))


def search_reply(search: Search, points: list[Point]) -> list:
    reply: list = []
    for point in points:
        extra: list = []
        if search.with_dist:
            extra.append(format_distance(point.distance / search.shape.conversion))
        if search.with_hash:
            extra.append(int(point.score))
        if search.with_coord:
            extra.append([format_coordinate(point.lon), format_coordinate(point.lat)])
        reply.append([point.member, *extra] if extra else point.member)
    return reply


def georadius_generic(db: Database, args: list[bytes], name: str) -> list | int:
    """GEOSEARCH, GEOSEARCHSTORE and the GEORADIUS family. Cost: 1 GetItem of the head (a
    BatchGetItem with the centre member for FROMMEMBER/BYMEMBER), then Query pages of the
    ``by-score`` index for at most 9 cells (merged when consecutive), reading only their members;
    COUNT ... ANY stops reading once it has enough. A STORE writes the results as a new zset
    (BatchWriteItem, 25 a request, then 1 PutItem of the head)."""
    source = args[1] if name == "GEOSEARCHSTORE" else args[0]
    wanted: list[bytes] = []
    try:  # a dry run finds the member whose position is needed, to read it with the head
        parse_search(name, args, True, lambda member: wanted.append(member) or (0.0, 0.0))
    except ReplyError:
        pass
    state = collection.read(db, source, "zset", [member_sk(ZSET, member) for member in wanted])

    def locate(member: bytes) -> tuple[float, float]:
        item = state.members.get(member_sk(ZSET, member))
        if item is None:
            raise ReplyError("ERR could not decode requested zset member")
        return position(score_of(item))

    search = parse_search(name, args, state.head is not None, locate)
    if state.head is None:
        if search.store is not None:
            collection.replace(db, search.store, "zset", [])
            return 0
        return []
    if search.count and not search.sort and not search.any:
        search.sort = 1
    points = points_within(db, source, state.head, search.shape, search.count if search.any else 0)
    returned = len(points) if not search.count or len(points) < search.count else search.count
    if search.sort:
        cmp = compare if search.sort > 0 else (lambda a, b: -compare(a, b))
        if returned == len(points):
            points.sort(key=lambda point: point.distance, reverse=search.sort < 0)  # glibc's qsort is stable
        else:
            partial_sort(points, cmp, 0, returned - 1)
    points = points[:returned]
    if search.store is None:
        return search_reply(search, points)
    items = {point.member: member_item(point.member, point.distance / search.shape.conversion
                                       if search.store_dist else point.score) for point in points}
    collection.replace(db, search.store, "zset", list(items.values()))
    return returned


@command("geosearch", -7)
def geosearch(db: Database, args: list[bytes]) -> list | int:
    """GEOSEARCH key FROMMEMBER m|FROMLONLAT lon lat BYRADIUS r unit|BYBOX w h unit [ASC|DESC]
    [COUNT n [ANY]] [WITHCOORD] [WITHDIST] [WITHHASH]. Cost: see :func:`georadius_generic`."""
    return georadius_generic(db, args, "GEOSEARCH")


@command("geosearchstore", -8)
def geosearchstore(db: Database, args: list[bytes]) -> list | int:
    """GEOSEARCHSTORE destination source ... [STOREDIST]. Cost: see :func:`georadius_generic`."""
    return georadius_generic(db, args, "GEOSEARCHSTORE")


@command("georadius", -6)
def georadius(db: Database, args: list[bytes]) -> list | int:
    """GEORADIUS key lon lat radius unit [options] [STORE key|STOREDIST key] (deprecated in Redis
    6.2 for GEOSEARCH). Cost: see :func:`georadius_generic`."""
    return georadius_generic(db, args, "GEORADIUS")


@command("georadius_ro", -6)
def georadius_ro(db: Database, args: list[bytes]) -> list | int:
    """GEORADIUS_RO: GEORADIUS without STORE."""
    return georadius_generic(db, args, "GEORADIUS_RO")


@command("georadiusbymember", -5)
def georadiusbymember(db: Database, args: list[bytes]) -> list | int:
    """GEORADIUSBYMEMBER key member radius unit [options] [STORE key|STOREDIST key]."""
    return georadius_generic(db, args, "GEORADIUSBYMEMBER")


@command("georadiusbymember_ro", -5)
def georadiusbymember_ro(db: Database, args: list[bytes]) -> list | int:
    """GEORADIUSBYMEMBER_RO: GEORADIUSBYMEMBER without STORE."""
    return georadius_generic(db, args, "GEORADIUSBYMEMBER_RO")
