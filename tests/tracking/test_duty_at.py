"""Duty switched on a phone that was offline: `PUT /api/v1/me/duty` with the time the rider tapped it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.infra.clock import utcnow
from riderwatch.models import CoverageRiderCell, DutyShift, LastPosition, Position
from tests.api.helpers import Api, assert_problem
from tests.factories import District
from tests.tracking.helpers import CENTER_LAT, backdate, count, hour_of, ping, send


def hours_ago(hours: float) -> datetime:
    return (utcnow() - timedelta(hours=hours)).replace(microsecond=0)


def duty(api: Api, on: bool, at: datetime | str | None = None, username: str = "rider") -> Any:
    body: dict[str, Any] = {"on_duty": on}
    if at is not None:
        body["at"] = at if isinstance(at, str) else at.isoformat()
    return api.client.put("/api/v1/me/duty", json=body, headers=api.auth(username))


def shifts(db: Session, rider_id: int) -> list[tuple[datetime, datetime | None]]:
    rows = [
        (s.started_at, s.ended_at)
        for s in db.scalars(select(DutyShift).where(DutyShift.rider_id == rider_id).order_by(DutyShift.started_at))
    ]
    db.rollback()
    return rows


@pytest.fixture
def consented(api: Api, db: Session, district: District) -> int:
    """The rider consented ten hours ago."""
    res = api.client.put("/api/v1/me/location-consent", json={"granted": True}, headers=api.auth("rider"))
    assert res.status_code == 200
    rider_id = district.users["rider"].id
    backdate(db, rider_id, hours=10)
    return rider_id


def test_a_shift_tapped_offline_takes_the_points_recorded_in_it(api: Api, db: Session, consented: int) -> None:
    on, off = hours_ago(3), hours_ago(1)
    res = duty(api, True, on)
    assert res.status_code == 200, res.text
    assert res.json()["on_duty"] is True and res.json()["shift"]["started_at"] == on.isoformat().replace("+00:00", "Z")
    res = duty(api, False, off)
    assert res.json() == {"on_duty": False, "shift": None, "deleted_positions": 0}
    assert shifts(db, consented) == [(on, off)]
    data = send(
        api, [ping(on - timedelta(minutes=1)), ping(on + timedelta(minutes=5)), ping(off + timedelta(seconds=1))]
    )
    assert data["accepted"] == 1
    assert [r["reason"] for r in data["rejections"]] == ["off_duty", "off_duty"]


def test_a_clock_a_little_ahead_means_now(api: Api, db: Session, consented: int) -> None:
    before = utcnow()
    assert duty(api, True, utcnow() + timedelta(seconds=60)).status_code == 200
    [(started, ended)] = shifts(db, consented)
    assert before <= started <= utcnow() and ended is None


@pytest.mark.parametrize(
    ("at", "status"),
    [
        (lambda: utcnow() + timedelta(hours=1), 422),  # the future
        (lambda: hours_ago(49), 422),  # older than the oldest point still accepted
        (lambda: "2026-11-29T08:00:00", 422),  # no timezone
        (lambda: "yesterday", 422),
        (lambda: hours_ago(11), 409),  # before the current consent
        (lambda: "0001-01-01T00:00:00+14:00", 422),
        (lambda: "9999-12-31T23:59:59-14:00", 422),
    ],
    ids=["future", "too-old", "naive", "not-a-time", "before-consent", "year-1", "year-9999"],
)
def test_impossible_times_store_nothing(api: Api, db: Session, consented: int, at: Any, status: int) -> None:
    assert_problem(duty(api, True, at()), status)
    assert shifts(db, consented) == []


def test_no_shift_inside_or_before_an_earlier_one(api: Api, db: Session, consented: int) -> None:
    t5, t4 = hours_ago(5), hours_ago(4)
    assert duty(api, True, t5).status_code == 200
    assert duty(api, False, t4).status_code == 200
    for at in (t4 + timedelta(minutes=-30), hours_ago(6)):
        body = assert_problem(duty(api, True, at), 409)
        assert "earlier shift" in body["detail"]
    assert duty(api, True, t4).status_code == 200  # right where the last one ended
    assert_problem(duty(api, False, t4 - timedelta(minutes=12)), 409)  # ends before it began
    assert shifts(db, consented) == [(t5, t4), (t4, None)]


def test_repeats_and_late_retries_change_nothing(api: Api, db: Session, consented: int) -> None:
    t1, t2, t3 = hours_ago(6), hours_ago(5), hours_ago(2)
    for on, at in ((True, t1), (True, t1), (False, t2), (False, t2), (True, t3)):
        assert duty(api, on, at).status_code == 200
    # The phone retries switches it sent before (its answers were lost): nothing moves.
    retry_on = duty(api, True, t1)
    assert retry_on.status_code == 200 and retry_on.json()["on_duty"] is True
    assert retry_on.json()["shift"]["started_at"].startswith(t3.isoformat()[:19])
    assert duty(api, False, t2).json()["on_duty"] is True
    assert duty(api, True).json()["on_duty"] is True  # on while on: the same shift
    assert shifts(db, consented) == [(t1, t2), (t3, None)]
    assert duty(api, False).status_code == 200
    assert duty(api, False, hours_ago(1)).json() == {"on_duty": False, "shift": None, "deleted_positions": 0}
    assert len(shifts(db, consented)) == 2


def test_an_earlier_tap_arriving_late_moves_the_start_back(api: Api, db: Session, consented: int) -> None:
    # Online the rider switched on a moment ago; the phone's offline tap of an hour ago arrives now.
    assert duty(api, True).status_code == 200
    tapped = hours_ago(1)
    assert duty(api, True, tapped).status_code == 200
    [(started, ended)] = shifts(db, consented)
    assert started == tapped and ended is None


def test_a_late_off_deletes_what_was_stored_after_it(api: Api, db: Session, consented: int) -> None:
    assert duty(api, True, hours_ago(4)).status_code == 200
    before, after = hours_ago(3), hours_ago(0.5)
    assert send(api, [ping(before), ping(after, lat=CENTER_LAT + 0.001)])["accepted"] == 2
    assert count(db, CoverageRiderCell, CoverageRiderCell.hour == hour_of(after)) == 2
    res = duty(api, False, hours_ago(2))
    assert res.json() == {"on_duty": False, "shift": None, "deleted_positions": 1}
    assert [p.ts for p in db.scalars(select(Position))] == [before]
    db.rollback()
    # What named the rider after the end goes; the point before it stays in its hour.
    assert count(db, CoverageRiderCell, CoverageRiderCell.hour == hour_of(after)) == 0
    assert count(db, CoverageRiderCell, CoverageRiderCell.hour == hour_of(before)) == 2
    assert count(db, LastPosition) == 0


def test_a_platform_or_dispatcher_cannot_switch_a_rider(api: Api) -> None:
    for username in ("platform", "dispatcher"):
        assert_problem(duty(api, True, hours_ago(1), username=username), 403)
