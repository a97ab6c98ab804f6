"""`parse_pings` decodes a well-formed batch with msgspec and anything else with pydantic-core.

The fast decoder must give exactly what the strict one gives: the same pings, the same values and
the same malformed ones. These tests send both the same bodies, built from values at and beyond
every edge of `PingItem` (time formats, offsets, bounds, lengths, types, unknown and repeated keys).
"""

from __future__ import annotations

import json
import random
from datetime import datetime
from typing import Any

import pytest
from pydantic import ValidationError

from riderwatch.tracking.schemas import ParsedPings, parse_pings, parse_pings_strictly

MISSING = object()

TIMES: list[Any] = [
    "2026-11-29T08:30:00+08:00",
    "2026-11-29T00:30:00Z",
    "2026-11-29t00:30:00z",
    "2026-11-29 00:30:00Z",
    "2026-11-29T08:30:00+0800",
    "2026-11-29T08:30:00+08",
    "2026-11-29T00:30:00-00:00",
    "2026-11-29T08:30:00.5+08:00",
    "2026-11-29T08:30:00.123456+08:00",
    "2026-11-29T08:30:00.1234567+08:00",
    "2026-11-29T08:30:00.123456789Z",
    "2026-11-29T08:30:00.+08:00",
    "2026-11-29T08:30+08:00",
    "2026-11-29T23:59:60Z",
    "2026-11-29T24:00:00Z",
    "2026-02-30T08:30:00Z",
    "2026-11-29T08:30:00+08:00:30",
    "2026-11-29T08:30:00+24:00",
    "2026-11-29T08:30:00+23:59",
    "0001-01-01T00:30:00+05:00",
    "9999-12-31T23:59:59-01:00",
    "2026-11-29T08:30:00",
    "2026-11-29",
    "",
    " 2026-11-29T00:30:00Z",
    1764375000,
    1764375000.5,
    "1764375000",
    None,
    MISSING,
]
NUMBERS: list[Any] = [31.2, 31, -0.0, 0, 1e308, 1e400, -1e400, 91, -181, "31.2", True, None, [], MISSING]
SPEEDS: list[Any] = [0, 7.5, 1000, 1000.0001, -0.0, -1e-9, -1, "5", True, None, MISSING, 10**30]
HEADINGS: list[Any] = [0, 359.9, 360, 360.0001, -1, None, MISSING, "90"]
ACCURACIES: list[Any] = [0, 5, 100_000, 100_000.5, -3, None, MISSING, False]
RIDERS: list[Any] = ["r1", "", "a" * 64, "a" * 65, "骑" * 64, "骑" * 65, "🛵" * 64, "🛵" * 65, None, 5, MISSING]
FIELDS: dict[str, list[Any]] = {
    "ts": TIMES,
    "lat": NUMBERS,
    "lon": NUMBERS,
    "speed_mps": SPEEDS,
    "heading": HEADINGS,
    "accuracy_m": ACCURACIES,
    "rider": RIDERS,
}
GOOD: dict[str, Any] = {
    "ts": "2026-11-29T08:30:00+08:00",
    "lat": 25.43,
    "lon": 119.01,
    "speed_mps": 4.2,
    "heading": 90,
    "accuracy_m": 8,
    "rider": "r1",
}


def _ping(values: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in values.items() if v is not MISSING}, ensure_ascii=False)


def _body(pings: list[str]) -> bytes:
    return ('{"pings": [' + ", ".join(pings) + "]}").encode()


def _moments(ts: Any) -> list[tuple[datetime, Any]]:
    return [(t, t.utcoffset()) for t in ts]


def _same(fast: ParsedPings, strict: ParsedPings, body: bytes) -> None:
    assert (fast.count, list(fast.index), fast.malformed) == (strict.count, list(strict.index), strict.malformed), body
    assert _moments(fast.ts) == _moments(strict.ts), body
    for field in ("lat", "lon", "speed_mps", "heading", "accuracy_m", "rider"):
        got, want = list(getattr(fast, field)), list(getattr(strict, field))
        # repr: -0.0 and 0.0 are equal numbers but not the same value, and NaN is not equal to itself.
        assert [repr(v) for v in got] == [repr(v) for v in want], (field, body)
        assert [type(v) for v in got] == [type(v) for v in want], (field, body)


def _check(body: bytes) -> None:
    try:
        strict = ParsedPings.of(parse_pings_strictly(body))
    except ValidationError:
        with pytest.raises(ValidationError):
            parse_pings(body)
        return
    _same(parse_pings(body), strict, body)


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_each_edge_of_each_field_gets_the_strict_answer(field: str) -> None:
    for value in FIELDS[field]:
        _check(_body([_ping({**GOOD, field: value})]))
        # Between two good pings: a malformed one is left out, the others kept in their places.
        good = _ping(GOOD)
        _check(_body([good, _ping({**GOOD, field: value}), good]))


def test_random_batches_get_the_strict_answer() -> None:
    rng = random.Random(20261130)
    for _ in range(300):
        pings = []
        for _ in range(rng.randint(1, 6)):
            values = {k: (rng.choice(v) if rng.random() < 0.3 else GOOD[k]) for k, v in FIELDS.items()}
            pings.append(_ping(values))
        _check(_body(pings))


def test_unknown_and_repeated_keys_get_the_strict_answer() -> None:
    good = _ping(GOOD)
    for ping in (
        _ping({**GOOD, "altitude": 12}),
        good[:-1] + ', "lat": 26.0}',  # a repeated key: the last one counts
        good[:-1] + ', "rider": null}',
        "{}",
        "[]",
        "null",
        '"ping"',
    ):
        _check(_body([good, ping]))


def test_bodies_of_another_shape_are_refused_the_same_way() -> None:
    good = _ping(GOOD)
    for body in (
        b"",
        b"null",
        b"[]",
        b"{}",
        b'{"pings": null}',
        b'{"pings": "x"}',
        b'{"pings": {}}',
        b'{"pings": [], "more": 1}',
        _body([good])[:-1],  # cut short
        _body([good]) + b" x",
        b'{"pings": [' + good.encode() + b",]}",
        b"\xff\xfe",
    ):
        _check(body)


def test_a_well_formed_batch_takes_the_fast_path() -> None:
    parsed = parse_pings(_body([_ping(GOOD)] * 3))
    assert isinstance(parsed.index, range) and parsed.malformed == []
    # A batch with a malformed ping goes through pydantic, which names it.
    parsed = parse_pings(_body([_ping(GOOD), _ping({**GOOD, "lat": "x"})]))
    assert not isinstance(parsed.index, range) and parsed.malformed == [1]


def _raw_ping(field: str, raw: str) -> str:
    """A good ping with `field` set to `raw` as it is written in the body (not through json.dumps)."""
    return _ping({**GOOD, field: "@@"}).replace('"@@"', raw)


RAW_NUMBERS = [
    "1e400",
    "-1e400",
    "1.7976931348623159e308",
    "1" + "0" * 400,
    str(2**64),
    str(-(2**63) - 1),
    "1e-400",
    "4.9406564584124654e-324",
    "1000.00000000000001",
    "360.00000000000001",
    "100000.00000000001",
    "-0",
    "-0.0e5",
    "NaN",
    "Infinity",
    "-Infinity",
    "01",
    "1.",
    ".5",
    "+1",
    "1e",
    "0x10",
]
RAW_TEXTS = [
    '"\\ud800"',
    '"\\udc00"',
    '"\\ud800x"',
    '"\\ud83d\\udef5"',
    '"a\x01b"',
    '"\x7f"',
    '"\\u0000"',
    '"' + "e\\u0301" * 32 + '"',
    '"' + "e\\u0301" * 33 + '"',
    '"\\u0072\\u0031"',
]
RAW_TIMES = ['"1764375000"', '"-1"', '"２０２６-11-29T00:30:00Z"', '"2026-11-29T00:30:00\\u005a"']


def test_numbers_as_written_get_the_strict_answer() -> None:
    for field in ("lat", "lon", "speed_mps", "heading", "accuracy_m"):
        for raw in RAW_NUMBERS:
            _check(_body([_raw_ping(field, raw)]))


def test_texts_as_written_get_the_strict_answer() -> None:
    for raw in RAW_TEXTS:
        _check(_body([_raw_ping("rider", raw)]))
    for raw in RAW_TIMES:
        _check(_body([_raw_ping("ts", raw)]))
    # Keys written with escapes, and bytes that are not UTF-8 inside a string.
    _check(_body([_ping(GOOD).replace('"ts"', '"\\u0074s"')]))
    _check(_body([_ping(GOOD)]).replace(b'"r1"', b'"r\xff1"'))
    _check(_body([_ping(GOOD)]).replace(b'"r1"', b'"r\xc0\xaf"'))


def test_random_number_spellings_get_the_strict_answer() -> None:
    rng = random.Random(7)
    digits = "0123456789"
    for _ in range(2000):
        text = rng.choice(["", "-"]) + "".join(rng.choice(digits) for _ in range(rng.randint(1, 25)))
        if rng.random() < 0.6:
            text += "." + "".join(rng.choice(digits) for _ in range(rng.randint(1, 25)))
        if rng.random() < 0.4:
            text += rng.choice("eE") + rng.choice(["", "+", "-"]) + str(rng.randint(0, 400))
        _check(_body([_raw_ping(rng.choice(["lat", "speed_mps", "heading", "accuracy_m"]), text)]))


def test_body_shapes_as_written_get_the_strict_answer() -> None:
    good = _ping(GOOD)
    for body in (
        ('{"pings": [5], "pings": [' + good + "]}").encode(),
        ('{"pings": [' + good + '], "pings": []}').encode(),
        ('{"\\u0070ings": [' + good + "]}").encode(),
        b"\xef\xbb\xbf" + _body([good]),
        _body([good]).replace(b"{", b" \n\t{", 1),
    ):
        _check(body)
