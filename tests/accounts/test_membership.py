"""A rider acts for the programme only while their membership is active: an applied, suspended or departed
rider is refused clues, duty and patrol tasks with a message saying why (403), and keeps their own data."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.models import Clue, DutyShift
from tests.api.helpers import Api, assert_problem
from tests.factories import District, clue_body
from tests.pages import Browser


def _set_status(api: Api, status: str, district: District) -> None:
    res = api.client.get("/api/v1/me", headers=api.auth("rider"))
    res = api.client.patch(
        f"/api/v1/admin/users/{res.json()['id']}", json={"rider_status": status}, headers=api.auth("admin")
    )
    assert res.status_code == 200, res.text
    assert res.json()["rider_status"] == status


@pytest.mark.parametrize(
    ("status", "words"), [("applied", "not active yet"), ("suspended", "suspended"), ("left", "left the rider team")]
)
def test_a_rider_who_is_not_an_active_member_is_refused_with_the_reason(
    api: Api, db: Session, district: District, status: str, words: str
) -> None:
    rider = api.auth("rider")
    assert api.client.put("/api/v1/me/location-consent", json={"granted": True}, headers=rider).status_code == 200
    before = db.scalar(select(func.count()).select_from(Clue))
    db.rollback()  # the test's session holds no lock while the server writes
    _set_status(api, status, district)

    # The bearer token issued before the change is refused at once (no new login needed).
    res = api.client.post("/api/v1/clues", json=clue_body(), headers={**rider, "Idempotency-Key": "k-1"})
    problem = assert_problem(res, 403)
    assert words in problem["detail"] and problem["rider_status"] == status
    assert db.scalar(select(func.count()).select_from(Clue)) == before
    db.rollback()

    assert_problem(api.client.put("/api/v1/me/duty", json={"on_duty": True}, headers=rider), 403)
    assert db.scalar(select(func.count()).select_from(DutyShift)) == 0
    db.rollback()
    assert_problem(api.client.get("/api/v1/me/tasks", headers=rider), 403)

    # What is theirs stays theirs: their clues, what was collected about them, their consent.
    assert api.client.get("/api/v1/clues", headers=rider).status_code == 200
    assert api.client.get("/api/v1/me", headers=rider).status_code == 200
    assert api.client.put("/api/v1/me/location-consent", json={"granted": False}, headers=rider).status_code == 200

    # Reactivated, the same rider reports again.
    _set_status(api, "active", district)
    res = api.client.post("/api/v1/clues", json=clue_body(), headers={**rider, "Idempotency-Key": "k-1"})
    assert res.status_code == 201, res.text


def test_staff_reporting_clues_have_no_membership_to_check(api: Api) -> None:
    res = api.client.post("/api/v1/clues", json=clue_body(), headers=api.auth("dispatcher"))
    assert res.status_code == 201, res.text


def test_the_report_page_tells_a_suspended_rider_why_in_chinese(
    browser: Callable[[str], Browser], api: Api, district: District
) -> None:
    _set_status(api, "suspended", district)
    rider = browser("rider")
    rider.client.headers["Accept-Language"] = "zh-CN"
    res = rider.client.get("/report")
    assert res.status_code == 403
    assert "暂停" in res.text
    # The menu no longer offers what the rider cannot do.
    home = rider.client.get("/").text
    assert 'href="/report"' not in home and 'href="/my/tasks"' not in home and 'href="/my/reports"' in home
    own = rider.client.get("/my/reports")
    assert own.status_code == 200 and 'data-testid="membership-note"' in own.text and "暂停" in own.text


def test_a_rider_joins_on_the_programmes_calendar_day(db: Session) -> None:
    """07:30 in Putian is 23:30 of the day before in UTC: the rider joined on Putian's day."""
    from datetime import UTC, date, datetime

    from riderwatch.accounts.service import create_user
    from riderwatch.infra import clock
    from riderwatch.models import Rider

    with clock.frozen(datetime(2026, 12, 7, 23, 30, tzinfo=UTC)):
        user = create_user(db, username="early", role="rider", password="early-rider-2026")
        db.flush()
        member = db.get(Rider, user.id)
        assert member is not None and member.joined_on == date(2026, 12, 8)
    db.rollback()
