"""Consent and duty gate every position; withdrawing consent deletes what names the rider."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.coverage.counts import fold_counts
from riderwatch.models import AuditEntry, CoverageCell, DutyShift, LastPosition, LocationConsent, Position, Rider
from tests.api.helpers import Api, assert_problem
from tests.factories import District
from tests.tracking.helpers import ago, backdate, count, ping, ready, rider_cells, send


def test_no_consent_no_positions(api: Api, db: Session) -> None:
    data = send(api, [ping(ago(60))])
    assert data["accepted"] == 0
    assert data["rejections"] == [{"index": 0, "reason": "no_consent", "detail": data["rejections"][0]["detail"]}]
    assert count(db, Position) == 0


def test_duty_needs_consent(api: Api, db: Session) -> None:
    res = api.client.put("/api/v1/me/duty", json={"on_duty": True}, headers=api.auth("rider"))
    assert_problem(res, 409)
    assert count(db, DutyShift) == 0


def test_consent_but_off_duty(api: Api, db: Session) -> None:
    res = api.client.put("/api/v1/me/location-consent", json={"granted": True}, headers=api.auth("rider"))
    assert res.status_code == 200
    assert res.json()["granted"] is True and res.json()["on_duty"] is False
    data = send(api, [ping(ago(0))])
    assert [r["reason"] for r in data["rejections"]] == ["off_duty"]
    assert count(db, Position) == 0


def test_positions_only_inside_a_shift(api: Api, db: Session, district: District) -> None:
    api.client.put("/api/v1/me/location-consent", json={"granted": True}, headers=api.auth("rider"))
    backdate(db, district.users["rider"].id)  # consented two hours ago
    api.client.put("/api/v1/me/duty", json={"on_duty": True}, headers=api.auth("rider"))
    # A point fixed before the shift began (the app ran before the rider went on duty) is refused.
    data = send(api, [ping(ago(600)), ping(ago(0))])
    assert data["accepted"] == 1
    assert [(r["index"], r["reason"]) for r in data["rejections"]] == [(0, "off_duty")]
    off = api.client.put("/api/v1/me/duty", json={"on_duty": False}, headers=api.auth("rider"))
    assert off.json() == {"on_duty": False, "shift": None, "deleted_positions": 0}
    data = send(api, [ping(ago(0))])
    assert [r["reason"] for r in data["rejections"]] == ["off_duty"]
    assert count(db, Position) == 1


def test_duty_is_idempotent_and_recorded(api: Api, db: Session) -> None:
    ready(api)
    again = api.client.put("/api/v1/me/duty", json={"on_duty": True}, headers=api.auth("rider"))
    assert again.status_code == 200 and again.json()["on_duty"] is True
    api.client.put("/api/v1/me/duty", json={"on_duty": False}, headers=api.auth("rider"))
    shifts = db.scalars(select(DutyShift)).all()
    assert len(shifts) == 1 and shifts[0].ended_at is not None and shifts[0].ended_by == "rider"
    db.rollback()


def test_suspended_rider_cannot_go_on_duty(api: Api, db: Session, district: District) -> None:
    api.client.put("/api/v1/me/location-consent", json={"granted": True}, headers=api.auth("rider"))
    rider = db.get(Rider, district.users["rider"].id)
    assert rider is not None
    rider.status = "suspended"
    db.commit()
    assert_problem(api.client.put("/api/v1/me/duty", json={"on_duty": True}, headers=api.auth("rider")), 403)


def test_consent_text_version(api: Api) -> None:
    res = api.client.put(
        "/api/v1/me/location-consent", json={"granted": True, "text_version": "v0"}, headers=api.auth("rider")
    )
    assert_problem(res, 422)
    res = api.client.put(
        "/api/v1/me/location-consent", json={"granted": True, "text_version": "v1"}, headers=api.auth("rider")
    )
    assert res.json()["text_version"] == "v1"


def test_withdrawal_deletes_raw_data_and_keeps_counts(api: Api, db: Session, district: District) -> None:
    ready(api)
    ready(api, "rider2")
    backdate(db, district.users["rider"].id)
    backdate(db, district.users["rider2"].id)
    assert send(api, [ping(ago(30)), ping(ago(20), lat=25.431)])["accepted"] == 2
    assert send(api, [ping(ago(25))], username="rider2")["accepted"] == 1
    fold_counts(db)  # as every reader of the counts does
    passes_before = db.scalars(select(CoverageCell.passes)).all()
    db.rollback()
    res = api.client.put("/api/v1/me/location-consent", json={"granted": False}, headers=api.auth("rider"))
    assert res.status_code == 200
    assert res.json() == {**res.json(), "granted": False, "on_duty": False, "deleted_positions": 2}
    rider_id = district.users["rider"].id
    assert count(db, Position, Position.rider_id == rider_id) == 0
    assert count(db, LastPosition, LastPosition.rider_id == rider_id) == 0
    assert count(db, Position) == 1  # rider2's stays
    assert rider_cells(db) == 2  # rider2's point, at two resolutions
    fold_counts(db)
    assert sorted(db.scalars(select(CoverageCell.passes)).all()) == sorted(passes_before)
    shift = db.scalars(select(DutyShift).where(DutyShift.rider_id == rider_id)).one()
    assert shift.ended_by == "consent_withdrawn"
    consents = db.scalars(select(LocationConsent).where(LocationConsent.rider_id == rider_id)).all()
    assert [(c.granted, c.deleted_positions) for c in consents] == [(True, 0), (False, 2)]
    assert db.scalar(select(AuditEntry).where(AuditEntry.action == "tracking.consent_withdrawn")) is not None
    db.rollback()
    # Nothing more is collected, even points fixed while the consent stood.
    data = send(api, [ping(ago(15))])
    assert [r["reason"] for r in data["rejections"]] == ["no_consent"]
    assert_problem(api.client.put("/api/v1/me/duty", json={"on_duty": True}, headers=api.auth("rider")), 409)


def test_points_from_before_a_new_consent_are_refused(api: Api) -> None:
    ready(api)
    api.client.put("/api/v1/me/location-consent", json={"granted": False}, headers=api.auth("rider"))
    ready(api)
    data = send(api, [ping(ago(120)), ping(ago(0))])
    assert data["accepted"] == 1
    assert [r["reason"] for r in data["rejections"]] == ["no_consent"]
