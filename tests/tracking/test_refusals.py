"""Refused points are counted per rider, day and reason on every path; the rider and the desk read the counts."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from riderwatch.config import Settings
from riderwatch.infra.clock import utcnow
from riderwatch.models import PositionRefusal
from riderwatch.tracking.ingest import REASONS
from tests.api.helpers import Api, assert_problem
from tests.factories import District
from tests.tracking.helpers import CENTER_LAT, ago, backdate, ping, ready, send

DEVICE = "phone-77"


def counted(db: Session) -> dict[tuple[int, str], int]:
    rows = {(r.rider_id, r.reason): r.count for r in db.scalars(select(PositionRefusal))}
    db.rollback()
    return rows


def today(settings: Settings) -> date:
    return utcnow().astimezone(ZoneInfo(settings.timezone)).date()


def test_batch_refusals_are_counted_for_the_rider_they_belong_to(
    api: Api, db: Session, district: District, settings: Settings
) -> None:
    rider, rider2 = district.users["rider"].id, district.users["rider2"].id
    api.client.put("/api/v1/me/location-consent", json={"granted": True}, headers=api.auth("rider"))
    backdate(db, rider)
    data = send(
        api,
        [ping(ago(30)), ping(ago(20)), {"ts": "yesterday", "lat": 1, "lon": 2}, ping(ago(10), rider="rider2")],
    )
    assert [r["reason"] for r in data["rejections"]] == ["off_duty", "off_duty", "invalid", "rider_not_allowed"]
    # A platform's own mistakes (a rider it does not know, one of another platform) name no rider of
    # ours; a point of its rider that is refused counts for that rider.
    data = send(
        api,
        [ping(ago(10), rider="nobody"), ping(ago(10), rider="rider2"), ping(ago(5), rider="rider2", lat=91)],
        username="platform",
    )
    assert [r["reason"] for r in data["rejections"]] == ["unknown_rider", "no_consent", "bad_coordinates"]
    assert counted(db) == {
        (rider, "off_duty"): 2,
        (rider, "invalid"): 1,
        (rider, "rider_not_allowed"): 1,
        (rider2, "no_consent"): 1,
        (rider2, "bad_coordinates"): 1,
    }
    # A second batch adds to the same day's counts.
    send(api, [ping(ago(3))])
    assert counted(db)[(rider, "off_duty")] == 3
    days = set(db.scalars(select(PositionRefusal.day)))
    db.rollback()
    # The day is the deployment's local day, not UTC's.
    assert days == {today(settings)}


def test_accepted_points_and_duplicates_are_not_refusals(api: Api, db: Session, district: District) -> None:
    ready(api)
    backdate(db, district.users["rider"].id)
    first = ping(ago(60))
    assert send(api, [first, ping(ago(50), lat=CENTER_LAT + 0.0001)])["accepted"] == 2
    assert send(api, [first])["duplicates"] == 1
    assert counted(db) == {}


def test_the_rider_sees_their_refusals(api: Api, db: Session, district: District, settings: Settings) -> None:
    assert api.client.post("/api/v1/me/devices", json={"device_id": DEVICE}, headers=api.auth("rider")).status_code
    api.client.put("/api/v1/me/location-consent", json={"granted": True}, headers=api.auth("rider"))
    backdate(db, district.users["rider"].id)
    for minutes in (3, 2, 1):
        ts = int((utcnow() - timedelta(minutes=minutes)).timestamp())
        res = api.client.post("/osmand", params={"id": DEVICE, "lat": CENTER_LAT, "lon": 119.0, "timestamp": ts})
        assert res.status_code == 200 and res.headers["X-RiderWatch-Refused"] == "off_duty"
    # An older day, as the purge would find it.
    db.execute(
        insert(PositionRefusal).values(
            rider_id=district.users["rider"].id, day=today(settings) - timedelta(days=2), reason="too_old", count=4
        )
    )
    db.commit()
    mine = api.client.get("/api/v1/me/positions", headers=api.auth("rider")).json()
    assert mine["refused_total"] == 7
    assert mine["refusals"] == [
        {"day": today(settings).isoformat(), "reason": "off_duty", "count": 3, "detail": REASONS["off_duty"]},
        {
            "day": (today(settings) - timedelta(days=2)).isoformat(),
            "reason": "too_old",
            "count": 4,
            "detail": REASONS["too_old"],
        },
    ]
    # Nobody else's counts show.
    other = api.client.get("/api/v1/me/positions", headers=api.auth("rider2")).json()
    assert other["refused_total"] == 0 and other["refusals"] == []


def _seed(db: Session, district: District, day: date) -> None:
    rows: list[dict[str, Any]] = [
        {"rider_id": district.users["rider"].id, "day": day, "reason": "off_duty", "count": 40},
        {"rider_id": district.users["rider"].id, "day": day - timedelta(days=1), "reason": "off_duty", "count": 2},
        {"rider_id": district.users["rider"].id, "day": day, "reason": "too_old", "count": 1},
        {"rider_id": district.users["rider2"].id, "day": day, "reason": "no_consent", "count": 5},
        {"rider_id": district.users["rider2"].id, "day": day - timedelta(days=30), "reason": "future", "count": 9},
    ]
    db.execute(insert(PositionRefusal), rows)
    db.commit()


def test_dispatchers_read_the_totals(api: Api, db: Session, district: District, settings: Settings) -> None:
    day = today(settings)
    _seed(db, district, day)
    res = api.client.get("/api/v1/tracking/refusals", headers=api.auth("dispatcher"))
    assert res.status_code == 200, res.text
    data = res.json()
    # The default window is the last seven days: the count from a month ago is outside it.
    assert data["from"] == (day - timedelta(days=6)).isoformat() and data["to"] == day.isoformat()
    assert data["total"] == 48
    assert data["by_reason"] == {"no_consent": 5, "off_duty": 42, "too_old": 1}
    assert data["reasons"]["off_duty"] == REASONS["off_duty"]
    assert data["by_day"] == [
        {"day": (day - timedelta(days=1)).isoformat(), "reason": "off_duty", "count": 2},
        {"day": day.isoformat(), "reason": "no_consent", "count": 5},
        {"day": day.isoformat(), "reason": "off_duty", "count": 40},
        {"day": day.isoformat(), "reason": "too_old", "count": 1},
    ]
    assert [(r["rider"], r["total"], r["by_reason"]) for r in data["riders"]] == [
        ("rider", 43, {"off_duty": 42, "too_old": 1}),
        ("rider2", 5, {"no_consent": 5}),
    ]
    one_day = api.client.get(
        "/api/v1/tracking/refusals",
        params={"from": (day - timedelta(days=30)).isoformat(), "to": (day - timedelta(days=30)).isoformat()},
        headers=api.auth("dispatcher"),
    ).json()
    assert one_day["total"] == 9 and [r["rider"] for r in one_day["riders"]] == ["rider2"]


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-11-29", "to": "2026-11-28"},
        {"from": "2026-01-01", "to": "2026-11-28"},
        {"from": "someday"},
        {"to": "0001-01-02"},
        {"from": "0001-01-01", "to": "9999-12-31"},
    ],
)
def test_bad_windows_are_refused(api: Api, params: dict[str, str]) -> None:
    assert_problem(api.client.get("/api/v1/tracking/refusals", params=params, headers=api.auth("dispatcher")), 422)
