"""Batch ingest: per-ping reasons, nothing stored for refused pings, duplicates once, jumps flagged."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.models import Platform, Position, Rider
from tests.api.helpers import Api, assert_problem
from tests.conftest import TEST_NOW
from tests.factories import District
from tests.tracking.helpers import CENTER_LAT, CENTER_LON, ago, backdate, count, ping, ready, send


@pytest.fixture
def on_duty(api: Api, db: Session, district: District) -> int:
    ready(api)
    rider_id = district.users["rider"].id
    backdate(db, rider_id, hours=72)
    return rider_id


def reasons(data: dict[str, Any]) -> list[tuple[int, str]]:
    return [(r["index"], r["reason"]) for r in data["rejections"]]


def test_good_pings_are_stored(api: Api, db: Session, on_duty: int) -> None:
    pings = [ping(ago(60 - i), lat=CENTER_LAT + i * 1e-5, speed_mps=4.5, heading=90, accuracy_m=8) for i in range(5)]
    data = send(api, pings)
    assert data == {"accepted": 5, "rejected": 0, "duplicates": 0, "rejections": []}
    rows = db.scalars(select(Position).order_by(Position.ts)).all()
    assert [round(r.lat, 6) for r in rows] == [round(CENTER_LAT + i * 1e-5, 6) for i in range(5)]
    assert all(r.speed_mps == 4.5 and r.heading == 90 and r.accuracy_m == 8 for r in rows)
    assert all(r.ts.tzinfo is not None for r in rows)
    db.rollback()


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"lat": 91}, "bad_coordinates"),
        ({"lat": -90.0001}, "bad_coordinates"),
        ({"lon": 180.5}, "bad_coordinates"),
        ({"lat": 0, "lon": 0}, "bad_coordinates"),
        ({"ts": (TEST_NOW + timedelta(minutes=30)).isoformat()}, "future"),
        ({"ts": (TEST_NOW - timedelta(hours=49)).isoformat()}, "too_old"),
        ({"ts": "2026-11-29T08:30:00"}, "invalid"),  # no time zone
        ({"ts": "yesterday"}, "invalid"),
        ({"lat": "north"}, "invalid"),
        ({"lat": None}, "invalid"),
        ({"speed_mps": -3}, "invalid"),
        ({"heading": 400}, "invalid"),
        ({"colour": "red"}, "invalid"),
        ({"rider": "rider2"}, "rider_not_allowed"),
    ],
)
def test_refused_pings_store_nothing(api: Api, db: Session, on_duty: int, bad: dict[str, Any], reason: str) -> None:
    good = ping(ago(10))
    data = send(api, [good, {**ping(ago(5)), **bad}])
    assert data["accepted"] == 1 and data["rejected"] == 1
    assert reasons(data) == [(1, reason)]
    assert data["rejections"][0]["detail"]
    assert count(db, Position) == 1


def test_missing_fields_are_invalid(api: Api, db: Session, on_duty: int) -> None:
    for field in ("ts", "lat", "lon"):
        p = ping(ago(5))
        del p[field]
        assert reasons(send(api, [p])) == [(0, "invalid")]
    assert count(db, Position) == 0


def test_own_username_is_allowed(api: Api, db: Session, on_duty: int) -> None:
    assert send(api, [ping(ago(5), rider="rider")])["accepted"] == 1


@pytest.mark.parametrize(
    "body",
    [[], {"pings": "many"}, {"pings": [1, 2]}, {"pings": [], "extra": 1}, {"ping": []}, "text", None],
)
def test_malformed_body_is_422(api: Api, db: Session, on_duty: int, body: Any) -> None:
    res = api.client.post("/api/v1/tracking/pings", json=body, headers=api.auth("rider"))
    assert_problem(res, 422)
    assert count(db, Position) == 0


def test_batch_size_is_capped(api: Api, db: Session, on_duty: int) -> None:
    pings = [ping(ago(1000 - i * 0.1)) for i in range(5001)]
    res = api.client.post("/api/v1/tracking/pings", json={"pings": pings}, headers=api.auth("rider"))
    assert_problem(res, 413)
    assert count(db, Position) == 0


def test_duplicates_are_stored_once(api: Api, db: Session, on_duty: int) -> None:
    ts = ago(30)
    first = send(api, [ping(ts), ping(ts), ping(ago(20))])
    assert (first["accepted"], first["duplicates"], first["rejected"]) == (2, 1, 0)
    # The same instant again, even at another place, is the same ping resent.
    again = send(api, [ping(ts), ping(ts, lat=CENTER_LAT + 0.0001), ping(ago(25))])
    assert (again["accepted"], again["duplicates"], again["rejected"]) == (1, 2, 0)
    assert count(db, Position) == 3
    # Equal instants written in other time zones are duplicates too.
    shanghai = ts.astimezone(ZoneInfo("Asia/Shanghai")).isoformat()
    assert shanghai.endswith("+08:00")
    assert send(api, [{"ts": shanghai, "lat": CENTER_LAT, "lon": CENTER_LON}])["duplicates"] == 1


def test_implausible_jump_is_refused(api: Api, db: Session, on_duty: int) -> None:
    base = ago(600)
    pings = [
        ping(base),
        ping(base + timedelta(seconds=10), lat=CENTER_LAT + 0.5),  # 55 km in 10 s
        ping(base + timedelta(seconds=20), lat=CENTER_LAT + 0.0005),  # 55 m from the first: fine
    ]
    data = send(api, pings)
    assert data["accepted"] == 2
    assert reasons(data) == [(1, "implausible_jump")]
    # The next batch is checked against the last stored point.
    later = base + timedelta(seconds=30)
    assert reasons(send(api, [ping(later, lat=CENTER_LAT - 0.3)])) == [(0, "implausible_jump")]
    # After long enough, a long way is plausible (a ride across town).
    assert send(api, [ping(base + timedelta(seconds=500), lat=CENTER_LAT + 0.05)])["accepted"] == 1
    assert count(db, Position) == 3


def test_platform_sends_for_its_riders(api: Api, db: Session, district: District, on_duty: int) -> None:
    ready(api, "rider2")
    backdate(db, district.users["rider2"].id)
    other = Platform(code="eleme", name="饿了么")
    db.add(other)
    db.flush()
    rider2 = db.get(Rider, district.users["rider2"].id)
    assert rider2 is not None
    rider2.platform_id = other.id
    db.commit()
    pings = [
        ping(ago(30), rider="rider"),
        ping(ago(30), rider="rider2"),
        ping(ago(30), rider="nobody"),
        ping(ago(30), rider="dispatcher"),
        ping(ago(30)),
    ]
    data = send(api, pings, username="platform")
    assert data["accepted"] == 1
    assert reasons(data) == [(1, "other_platform"), (2, "unknown_rider"), (3, "unknown_rider"), (4, "unknown_rider")]
    assert count(db, Position) == 1
    assert count(db, Position, Position.rider_id == district.users["rider"].id) == 1
