"""Geo commands: unit tests on both stores (replies, request counts, reading only nearby cells,
WRONGTYPE, expiry, binary and long members) and differential tests against a real redis-server
(hypothesis-generated points, radii and boxes; every reply, float formatting included)."""

from __future__ import annotations

import random
from typing import Any, Callable, Iterator

import pytest
import redis
from hypothesis import strategies as st

from conftest import ALL_ENCODINGS
from differential import Pair, flat, run_state_machine
from redimo import Redimo
from redimo.storage import millis

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
SICILY = ["13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"]


def spent(r: Redimo, action: Callable[[], Any]) -> tuple[Any, dict]:
    before = r.gateway.usage.snapshot()
    result = action()
    return result, dict((r.gateway.usage - before).requests)


def scores(r: Redimo, key: bytes) -> dict[bytes, float]:
    return dict(r.zrange(key, 0, -1, withscores=True))


# -- replies -----------------------------------------------------------------------------------
def test_geoadd_scores_are_redis_geohashes(r: Redimo) -> None:
    assert r.execute_command("GEOADD", "Sicily", *SICILY) == 2
    assert r.type("Sicily") == b"zset"
    assert scores(r, b"Sicily") == {b"Palermo": 3479099956230698.0, b"Catania": 3479447370796909.0}
    assert r.execute_command("GEOPOS", "Sicily", "Palermo", "nope") == \
        [(13.361389338970184, 38.1155563954963), None]
    assert r.execute_command("GEODIST", "Sicily", "Palermo", "Catania") == 166274.1516
    assert r.execute_command("GEODIST", "Sicily", "Palermo", "Catania", "km") == 166.2742
    assert r.execute_command("GEOHASH", "Sicily", "Palermo", "Catania", "x") == ["sqc8b49rny0", "sqdtr74hyu0", None]
    assert r.geosearch("Sicily", longitude=15, latitude=37, radius=200, unit="km", withdist=True, sort="ASC") == \
        [[b"Catania", 56.4413], [b"Palermo", 190.4424]]
    assert r.geosearch("Sicily", member="Palermo", width=400, height=400, unit="km", withcoord=True,
                       withhash=True, sort="DESC") == \
        [[b"Catania", 3479447370796909, (15.087267458438873, 37.50266842333162)],
         [b"Palermo", 3479099956230698, (13.361389338970184, 38.1155563954963)]]


@pytest.mark.promoted
def test_geoadd_options(r: Redimo) -> None:
    r.execute_command("GEOADD", "g", *SICILY)
    assert r.execute_command("GEOADD", "g", "XX", "1", "1", "Palermo", "2", "2", "new") == 0
    assert r.execute_command("GEOPOS", "g", "new") == [None]
    assert r.execute_command("GEOADD", "g", "XX", "CH", "1", "1", "Palermo", "2", "2", "new") == 0
    assert r.execute_command("GEOADD", "g", "XX", "CH", "3", "3", "Palermo", "2", "2", "new") == 1
    assert r.execute_command("GEOADD", "g", "NX", "CH", "5", "5", "Palermo", "2", "2", "new") == 1
    assert r.execute_command("GEOADD", "g", "CH", "2", "2", "new", "3", "3", "new") == 1
    assert spent(r, lambda: r.execute_command("GEOADD", "g", "CH", "2", "2", "Palermo", "3", "3", "Palermo")) == \
        (2, {"batch_get_item": 1}), "changed twice as Redis counts, but back where it was: nothing written"
    assert r.execute_command("GEOADD", "missing", "XX", "1", "1", "a") == 0 and r.exists("missing") == 0


def test_geosearchstore(r: Redimo) -> None:
    r.execute_command("GEOADD", "g", *SICILY)
    r.set("dest", "old")
    assert r.geosearchstore("dest", "g", longitude=15, latitude=37, radius=100, unit="km") == 1
    assert r.type("dest") == b"zset" and scores(r, b"dest") == {b"Catania": 3479447370796909.0}
    assert r.geosearchstore("dest", "g", longitude=15, latitude=37, radius=200, unit="km", storedist=True) == 2
    assert {member: round(score, 4) for member, score in scores(r, b"dest").items()} == \
        {b"Catania": 56.4413, b"Palermo": 190.4424}
    assert r.geosearchstore("dest", "g", longitude=0, latitude=0, radius=1, unit="km") == 0
    assert r.exists("dest") == 0
    r.set("dest", "x")
    assert r.geosearchstore("dest", "nokey", longitude=0, latitude=0, radius=1, unit="km") == 0
    assert r.exists("dest") == 0


def test_binary_and_long_members(r: Redimo) -> None:
    long_a, long_b = b"\x00" * 1000 + b"a" * 300, b"\x00" * 1000 + b"b" * 300  # same first 1000 bytes
    members = [b"", b"\x00", b"\xff\xfe", long_a, long_b]
    for index, member in enumerate(members):
        r.execute_command("GEOADD", b"\x00geo\xff", "10", str(10 + index * 0.001), member)
    found = r.geosearch(b"\x00geo\xff", longitude=10, latitude=10, radius=10, unit="km", sort="ASC")
    assert found == members
    assert r.execute_command("GEOPOS", b"\x00geo\xff", long_b, b"\x00" * 1000)[1] is None
    assert r.geosearch(b"\x00geo\xff", member=long_b, radius=1, unit="m") == [long_b]


# -- costs -------------------------------------------------------------------------------------
@pytest.mark.promoted
def test_request_counts(r: Redimo) -> None:
    assert spent(r, lambda: r.execute_command("GEOADD", "g", *SICILY))[1] == \
        {"batch_get_item": 1, "transact_write_items": 1}
    assert spent(r, lambda: r.execute_command("GEOADD", "g", *SICILY))[1] == {"batch_get_item": 1}
    for read in (lambda: r.execute_command("GEOPOS", "g", "Palermo", "x"),
                 lambda: r.execute_command("GEOHASH", "g", "Palermo"),
                 lambda: r.execute_command("GEODIST", "g", "Palermo", "Catania")):
        assert spent(r, read)[1] == {"batch_get_item": 1}
    _, used = spent(r, lambda: r.geosearch("g", longitude=15, latitude=37, radius=200, unit="km"))
    assert used["get_item"] == 1 and 1 <= used["query"] <= 9 and set(used) == {"get_item", "query"}
    _, used = spent(r, lambda: r.geosearch("g", member="Palermo", radius=200, unit="km"))
    assert used["batch_get_item"] == 1 and 1 <= used["query"] <= 9 and set(used) == {"batch_get_item", "query"}
    assert spent(r, lambda: r.geosearch("nokey", longitude=15, latitude=37, radius=200, unit="km"))[1] == \
        {"get_item": 1}


def test_search_reads_only_nearby_members(r: Redimo, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(1)
    far = [x for i in range(120) for x in (str(rng.uniform(-120, -60)), str(rng.uniform(-50, 50)), f"far{i}")]
    near = [x for i in range(5) for x in (str(2 + i * 0.01), str(48 + i * 0.01), f"near{i}")]
    r.execute_command("GEOADD", "g", *far, *near)
    read: list[dict] = []
    query = r.gateway.query

    def counting(*args: Any, **kwargs: Any) -> Iterator[dict]:
        for item in query(*args, **kwargs):
            read.append(item)
            yield item

    monkeypatch.setattr(r.gateway, "query", counting)
    assert sorted(r.geosearch("g", longitude=2, latitude=48, radius=20, unit="km")) == \
        [f"near{i}".encode() for i in range(5)]
    assert len(read) == 5, "only the members of the nearby cells are read"
    read.clear()
    assert len(r.geosearch("g", longitude=2, latitude=48, radius=20, unit="km", count=2, any=True)) == 2
    assert len(read) == 3, "COUNT ... ANY stops reading once it has enough (and has seen the next score)"


# -- WRONGTYPE and expiry ------------------------------------------------------------------------
def test_wrongtype(r: Redimo) -> None:
    r.set("s", "v")
    for args in [("GEOADD", "s", "1", "1", "m"), ("GEOPOS", "s", "m"), ("GEOHASH", "s"), ("GEODIST", "s", "a", "b"),
                 ("GEOSEARCH", "s", "FROMLONLAT", "1", "1", "BYRADIUS", "1", "m"),
                 ("GEOSEARCH", "s", "FROMMEMBER", "m", "BYRADIUS", "1", "m", "BAD"),
                 ("GEOSEARCHSTORE", "d", "s", "FROMLONLAT", "1", "1", "BYRADIUS", "1", "m"),
                 ("GEORADIUS", "s", "1", "1", "1", "m"), ("GEORADIUSBYMEMBER", "s", "m", "1", "m")]:
        with pytest.raises(redis.ResponseError, match=WRONGTYPE):
            r.execute_command(*args)
    assert r.get("s") == b"v" and r.exists("d") == 0


def test_expiry(r: Redimo, make_redimo: Callable[..., Redimo]) -> None:
    r.execute_command("GEOADD", "g", *SICILY)
    assert r.expire("g", 100) is True
    r.execute_command("GEOADD", "g", "1", "1", "x")
    assert 99 <= r.ttl("g") <= 100, "GEOADD keeps the TTL"
    later = make_redimo(namespace=r.engine.db.namespace, clock=lambda: millis() + 101_000)
    assert later.execute_command("GEOPOS", "g", "Palermo") == [None]
    assert later.execute_command("GEODIST", "g", "Palermo", "Catania") is None
    assert later.geosearch("g", longitude=15, latitude=37, radius=500, unit="km") == []
    assert later.execute_command("GEOADD", "g", "1", "1", "y") == 1 and later.ttl("g") == -1
    assert later.geosearch("g", longitude=1, latitude=1, radius=500, unit="km") == [b"y"]


# -- differential --------------------------------------------------------------------------------
def compare(pair: Pair, *args: Any) -> Any:
    expected, got = pair.both(*args)
    assert got == expected, f"{args!r}: Redis replied {expected!r}, Redimo {got!r}"
    return got


@ALL_ENCODINGS
def test_random_searches_differential(pair: Pair) -> None:
    rng = random.Random(7)
    points = []
    for i in range(150):
        if i % 2:
            lon, lat = rng.gauss(13, 1.5), rng.gauss(38, 1.5)
        else:
            lon, lat = rng.uniform(-180, 180), rng.uniform(-85.05112878, 85.05112878)
        points.append((repr(lon), repr(lat), b"m%d" % i))
    points += [("13.361389", "38.115556", b"tie%d" % i) for i in range(12)]  # equal distances
    for at in range(0, len(points), 40):
        compare(pair, b"GEOADD", b"g", *[x for p in points[at:at + 40] for x in p])
    compare(pair, b"GEOPOS", b"g", *[p[2] for p in points])
    compare(pair, b"GEOHASH", b"g", *[p[2] for p in points])
    for _ in range(40):
        a, b = rng.sample(points, 2)
        compare(pair, b"GEODIST", b"g", a[2], b[2], rng.choice([b"m", b"km", b"mi", b"ft"]))
    for _ in range(120):
        centre = rng.choice(points)
        origin = rng.choice([[b"FROMMEMBER", centre[2]], [b"FROMLONLAT", centre[0], centre[1]]])
        scale = rng.choice([1, 100, 1000, 5000, 20000])
        shape = rng.choice([[b"BYRADIUS", repr(scale * rng.random()), rng.choice([b"km", b"mi"])],
                            [b"BYBOX", repr(scale * rng.random()), repr(scale * rng.random()), b"km"]])
        options = [rng.choice([b"ASC", b"DESC"])] if rng.random() < 0.6 else []
        if rng.random() < 0.6:
            options += [b"COUNT", str(rng.randint(1, 15)).encode()] + ([b"ANY"] if rng.random() < 0.3 else [])
        options += [word for word in (b"WITHDIST", b"WITHHASH", b"WITHCOORD") if rng.random() < 0.5]
        compare(pair, b"GEOSEARCH", b"g", *origin, *shape, *options)
        if rng.random() < 0.2:
            plain = [o for o in options if not o.startswith(b"WITH")]
            compare(pair, b"GEOSEARCHSTORE", b"d", b"g", *origin, *shape, *plain, b"STOREDIST")
            compare(pair, b"GEOPOS", b"d", *[p[2] for p in points[:40]])
            compare(pair, b"GEORADIUSBYMEMBER", b"g", centre[2], b"300", b"km", *options)


def test_scores_read_by_zset_commands_differential(pair: Pair) -> None:
    compare(pair, b"GEOADD", b"g", *SICILY)
    compare(pair, b"GEOSEARCHSTORE", b"d", b"g", b"FROMLONLAT", b"15", b"37", b"BYRADIUS", b"200", b"km",
            b"ASC", b"STOREDIST")
    for args in [(b"ZSCORE", b"g", b"Palermo"), (b"ZRANGE", b"g", b"0", b"-1", b"WITHSCORES"),
                 (b"ZRANGE", b"d", b"0", b"-1", b"WITHSCORES"), (b"TYPE", b"d"), (b"ZCARD", b"g")]:
        compare(pair, *args)
    compare(pair, b"ZADD", b"z", b"1e15", b"a", b"-3", b"b", b"5e15", b"c")
    compare(pair, b"GEOPOS", b"z", b"a", b"b", b"c")
    compare(pair, b"GEOHASH", b"z", b"a", b"b", b"c")


def test_errors_differential(pair: Pair) -> None:
    compare(pair, b"GEOADD", b"g", *SICILY)
    compare(pair, b"SET", b"s", b"v")
    cases = [
        (b"GEOADD", b"g", b"1", b"2"), (b"GEOADD", b"g", b"NX", b"XX", b"1", b"2", b"m"),
        (b"GEOADD", b"g", b"ch", b"ch", b"ch"), (b"GEOADD", b"g", b"200", b"1", b"m"),
        (b"GEOADD", b"g", b"1", b"86", b"m"), (b"GEOADD", b"g", b"abc", b"1", b"m"), (b"GEOADD", b"g", b"1", b"", b"m"),
        (b"GEOADD", b"g", b"inf", b"1", b"m"), (b"GEOADD", b"g", b"nan", b"1", b"m"), (b"GEOADD", b"g", b"1e400", b"1", b"m"),
        (b"GEOADD", b"g", b" 1", b"1", b"m"), (b"GEOADD", b"g", b"0x10", b"0x1p-3", b"hex"),
        (b"GEOADD", b"g", b"1", b"1", b"a", b"x", b"1", b"b"), (b"GEOADD", b"s", b"1", b"1", b"m"),
        (b"GEOADD", b"g", b"GT", b"1", b"1", b"m"), (b"GEOADD", b"g", b"1e-400", b"1", b"m"),
        (b"GEODIST", b"g", b"Palermo", b"Catania", b"yards"), (b"GEODIST", b"g", b"Palermo", b"Catania", b"km", b"x"),
        (b"GEODIST", b"nokey", b"a", b"b", b"KM"), (b"GEODIST", b"nokey", b"a", b"b", b"bad"),
        (b"GEODIST", b"g", b"Palermo", b"nobody"), (b"GEODIST", b"g", b"Palermo", b"Palermo", b"ft"),
        (b"GEOPOS", b"nokey", b"a"), (b"GEOHASH", b"nokey", b"a"), (b"GEOPOS", b"g"), (b"GEOHASH", b"s", b"a"),
        (b"GEOSEARCH", b"g", b"FROMLONLAT", b"15", b"37", b"BYRADIUS", b"-1", b"km"),
        (b"GEOSEARCH", b"g", b"FROMLONLAT", b"15", b"37", b"BYRADIUS", b"x", b"km"),
        (b"GEOSEARCH", b"g", b"FROMLONLAT", b"15", b"37", b"BYRADIUS", b"1", b"parsec"),
        (b"GEOSEARCH", b"g", b"FROMLONLAT", b"15", b"37", b"BYBOX", b"1", b"x", b"km"),
        (b"GEOSEARCH", b"g", b"FROMLONLAT", b"15", b"37", b"BYBOX", b"-1", b"1", b"km"),
        (b"GEOSEARCH", b"g", b"FROMLONLAT", b"15", b"37", b"BYBOX", b"1", b"1"),
        (b"GEOSEARCH", b"g", b"FROMLONLAT", b"15", b"37", b"BYRADIUS", b"1", b"km", b"BYBOX", b"1", b"1", b"km"),
        (b"GEOSEARCH", b"g", b"FROMMEMBER", b"Palermo", b"FROMLONLAT", b"15", b"37", b"BYRADIUS", b"1", b"km"),
        (b"GEOSEARCH", b"g", b"FROMMEMBER", b"nobody", b"BYRADIUS", b"1", b"km"),
        (b"GEOSEARCH", b"nokey", b"FROMMEMBER", b"nobody", b"BYRADIUS", b"1", b"km"),
        (b"GEOSEARCH", b"g", b"BYRADIUS", b"1", b"km", b"ASC"), (b"GEOSEARCH", b"g", b"FROMMEMBER", b"Palermo", b"ASC", b"x"),
        (b"GEOSEARCH", b"g", b"FROMMEMBER", b"Palermo", b"BYRADIUS", b"1", b"km", b"ANY"),
        (b"GEOSEARCH", b"g", b"FROMMEMBER", b"Palermo", b"BYRADIUS", b"1", b"km", b"COUNT", b"0"),
        (b"GEOSEARCH", b"g", b"FROMMEMBER", b"Palermo", b"BYRADIUS", b"1", b"km", b"COUNT", b"x"),
        (b"GEOSEARCH", b"g", b"FROMMEMBER", b"Palermo", b"BYRADIUS", b"1", b"km", b"COUNT"),
        (b"GEOSEARCH", b"g", b"FROMMEMBER", b"Palermo", b"BYRADIUS", b"1", b"km", b"STORE", b"x"),
        (b"GEOSEARCH", b"g", b"FROMMEMBER", b"Palermo", b"BYRADIUS", b"1", b"km", b"STOREDIST"),
        (b"GEOSEARCH", b"g", b"FROMLONLAT", b"181", b"0", b"BYRADIUS", b"1", b"km"),
        (b"GEOSEARCH", b"g", b"FROMLONLAT", b"15", b"37", b"BYRADIUS", b"0", b"km", b"WITHDIST"),
        (b"GEOSEARCH", b"g", b"FROMLONLAT", b"15", b"37", b"BYRADIUS", b"inf", b"km", b"WITHDIST", b"ASC"),
        (b"GEOSEARCH", b"g", b"fromlonlat", b"15", b"37", b"byradius", b"1000", b"KM", b"count", b"1", b"any"),
        (b"GEOSEARCH", b"s", b"FROMLONLAT", b"15", b"37"),
        (b"GEOSEARCHSTORE", b"d", b"g", b"FROMLONLAT", b"15", b"37", b"BYRADIUS", b"200", b"km", b"WITHDIST"),
        (b"GEOSEARCHSTORE", b"d", b"g", b"FROMLONLAT", b"15", b"37", b"BYRADIUS", b"200", b"km", b"STORE", b"x"),
        (b"GEOSEARCHSTORE", b"s", b"g", b"FROMLONLAT", b"15", b"37", b"BYRADIUS", b"200", b"km"), (b"TYPE", b"s"),
        (b"GEOSEARCHSTORE", b"d", b"nokey", b"FROMLONLAT", b"15", b"37", b"BYRADIUS", b"200", b"km"),
        (b"GEORADIUS", b"g", b"15", b"37", b"200", b"km", b"WITHDIST", b"STORE", b"x"),
        (b"GEORADIUS", b"g", b"15", b"37", b"200", b"km", b"STORE", b"x"), (b"GEOPOS", b"x", b"Palermo"),
        (b"GEORADIUS_RO", b"g", b"15", b"37", b"200", b"km", b"STORE", b"x"),
        (b"GEORADIUSBYMEMBER", b"g", b"nobody", b"1", b"km"), (b"GEORADIUSBYMEMBER", b"nokey", b"a", b"x", b"km"),
        (b"GEORADIUSBYMEMBER", b"g", b"Palermo", b"200", b"km", b"STOREDIST", b"y", b"DESC"),
        (b"GEORADIUSBYMEMBER_RO", b"g", b"Palermo", b"200", b"km", b"WITHCOORD", b"WITHHASH", b"COUNT", b"1"),
        (b"GEOPOS", b"y", b"Palermo", b"Catania"),
    ]
    for args in cases:
        compare(pair, *args)


KEYS = [b"a", b"b"]
MEMBERS = [b"", b"\x00", b"\xff\xfe", b"m", b"n", b"a\x00b", b"L" * 1100]
EDGE_COORDS = [(b"180", b"85.05112878"), (b"-180", b"-85.05112878"), (b"0", b"0"), (b"13.361389", b"38.115556"),
               (b"181", b"0"), (b"0", b"86"), (b"abc", b"1"), (b"inf", b"0"), (b"-0", b"-0")]
longitude = st.floats(-180, 180, allow_nan=False).map(lambda x: repr(x).encode())
latitude = st.floats(-85.05112878, 85.05112878, allow_nan=False).map(lambda x: repr(x).encode())
coords = st.one_of(st.tuples(longitude, latitude), st.sampled_from(EDGE_COORDS),
                   st.tuples(st.floats(10, 16), st.floats(36, 40)).map(lambda p: (repr(p[0]).encode(), repr(p[1]).encode())))
member = st.one_of(st.sampled_from(MEMBERS), st.binary(max_size=4))
key = st.sampled_from(KEYS)
unit = st.sampled_from([b"m", b"km", b"mi", b"ft", b"KM", b"furlong"])
radius = st.one_of(st.floats(0, 2e7, allow_nan=False).map(lambda x: repr(x).encode()),
                   st.sampled_from([b"0", b"1", b"500", b"-1", b"abc", b"1e400"]))
triples = st.lists(st.tuples(coords, member).map(lambda t: [t[0][0], t[0][1], t[1]]), min_size=1, max_size=4).map(
    lambda ts: [x for t in ts for x in t])
origin = st.one_of(st.tuples(st.just(b"FROMMEMBER"), member).map(list),
                   st.tuples(st.just(b"FROMLONLAT"), coords).map(lambda t: [t[0], *t[1]]))
shape = st.one_of(st.tuples(st.just(b"BYRADIUS"), radius, unit).map(list),
                  st.tuples(st.just(b"BYBOX"), radius, radius, unit).map(list))
search_options = st.lists(st.sampled_from([[b"ASC"], [b"DESC"], [b"COUNT", b"1"], [b"COUNT", b"3"], [b"ANY"],
                                           [b"WITHDIST"], [b"WITHHASH"], [b"WITHCOORD"], [b"withdist"]]),
                          max_size=4).map(lambda parts: [x for part in parts for x in part])
GEO_COMMANDS = [
    st.tuples(st.just(b"GEOADD"), key, st.sampled_from([[], [b"NX"], [b"XX"], [b"CH"], [b"XX", b"CH"]]), triples),
    st.tuples(st.just(b"GEOADD"), key, triples), st.tuples(st.just(b"GEOPOS"), key, st.lists(member, max_size=4)),
    st.tuples(st.just(b"GEOHASH"), key, st.lists(member, max_size=4)),
    st.tuples(st.just(b"GEODIST"), key, member, member, st.one_of(st.just([]), unit.map(lambda u: [u]))),
    st.tuples(st.just(b"GEOSEARCH"), key, origin, shape, search_options),
    st.tuples(st.just(b"GEOSEARCHSTORE"), key, key, origin, shape,
              st.sampled_from([[], [b"STOREDIST"], [b"COUNT", b"2"], [b"DESC", b"COUNT", b"1", b"STOREDIST"]])),
    st.tuples(st.just(b"GEORADIUS"), key, coords.map(list), radius, unit, search_options),
    st.tuples(st.just(b"GEORADIUSBYMEMBER"), key, member, radius, unit, search_options),
    st.tuples(st.just(b"DEL"), key), st.tuples(st.just(b"TYPE"), key), st.tuples(st.just(b"EXISTS"), key),
    st.tuples(st.just(b"EXPIRE"), key, st.sampled_from([b"1000", b"50000"])),
    st.tuples(st.just(b"EXPIREAT"), key, st.just(b"1000000000")),
    st.tuples(st.just(b"SET"), key, st.just(b"v")), st.tuples(st.just(b"HSET"), key, st.just(b"f"), st.just(b"v")),
]


def test_geo_differential(pair: Pair) -> None:
    run_state_machine(pair, GEO_COMMANDS, lambda command: compare(pair, *flat(command)),
                      lambda: [compare(pair, b"GEOPOS", key_, *MEMBERS) for key_ in KEYS])
