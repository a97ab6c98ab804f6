"""Tracks and live positions are for dispatchers and audited; a rider sees what was collected about them."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.infra.clock import utcnow
from riderwatch.models import AuditEntry
from tests.api.helpers import Api, assert_problem
from tests.factories import District
from tests.tracking.helpers import CENTER_LAT, CENTER_LON, ago, backdate, ping, ready, send


def _audits(db: Session, action: str) -> list[AuditEntry]:
    rows = list(db.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))
    db.expunge_all()  # keep the loaded values: a rollback would expire them
    db.rollback()  # and end the read, which on SQLite holds the write lock
    return rows


def _window(hours: int = 3) -> dict[str, str]:
    now = utcnow()
    return {"from": (now - timedelta(hours=hours)).isoformat(), "to": (now + timedelta(minutes=1)).isoformat()}


def test_track_is_for_dispatchers_and_audited(api: Api, db: Session, district: District) -> None:
    ready(api)
    backdate(db, district.users["rider"].id)
    send(api, [ping(ago(300)), ping(ago(200), lat=CENTER_LAT + 0.001), ping(ago(100), lat=CENTER_LAT + 0.002)])
    res = api.client.get("/api/v1/riders/rider/track", params=_window(), headers=api.auth("dispatcher"))
    assert res.status_code == 200, res.text
    track = res.json()
    assert track["type"] == "FeatureCollection" and track["rider"] == "rider"
    coords = [f["geometry"]["coordinates"] for f in track["features"]]
    assert coords == [[CENTER_LON, CENTER_LAT], [CENTER_LON, CENTER_LAT + 0.001], [CENTER_LON, CENTER_LAT + 0.002]]
    [audit] = _audits(db, "tracking.view_track")
    assert audit.actor_id == district.users["dispatcher"].id
    assert audit.object_type == "rider" and audit.object_id == str(district.users["rider"].id)
    assert audit.detail["points"] == 3
    # A second look is a second audit row, even when it finds nothing.
    empty = {"from": "2020-01-01T00:00:00+08:00", "to": "2020-01-02T00:00:00+08:00"}
    res = api.client.get("/api/v1/riders/rider/track", params=empty, headers=api.auth("dispatcher"))
    assert res.json()["features"] == []
    assert len(_audits(db, "tracking.view_track")) == 2
    for who in ("admin", "police", "rider", "platform", "station_manager"):
        res = api.client.get("/api/v1/riders/rider/track", params=_window(), headers=api.auth(who))
        assert_problem(res, 403)
    assert len(_audits(db, "tracking.view_track")) == 2


def test_track_bad_requests(api: Api, db: Session) -> None:
    d = api.auth("dispatcher")
    assert_problem(api.client.get("/api/v1/riders/nobody/track", params=_window(), headers=d), 404)
    assert_problem(api.client.get("/api/v1/riders/police/track", params=_window(), headers=d), 404)
    backwards = {"from": _window()["to"], "to": _window()["from"]}
    assert_problem(api.client.get("/api/v1/riders/rider/track", params=backwards, headers=d), 422)
    assert_problem(api.client.get("/api/v1/riders/rider/track", params=_window(hours=24 * 8), headers=d), 422)
    naive = {"from": "2026-11-29T08:00:00", "to": "2026-11-29T09:00:00"}
    assert_problem(api.client.get("/api/v1/riders/rider/track", params=naive, headers=d), 422)
    assert_problem(api.client.get("/api/v1/riders/rider/track", headers=d), 422)
    assert _audits(db, "tracking.view_track") == []


def test_live_shows_recent_positions_of_riders_on_duty(api: Api, db: Session, district: District) -> None:
    for name in ("rider", "rider2"):
        ready(api, name)
        backdate(db, district.users[name].id)
    send(api, [ping(ago(120)), ping(ago(60), lat=CENTER_LAT + 0.001)])
    send(api, [ping(ago(40 * 60))], username="rider2")  # too long ago for the live map
    res = api.client.get("/api/v1/tracking/live", headers=api.auth("dispatcher"))
    assert res.status_code == 200
    [feature] = res.json()["features"]
    assert feature["properties"]["rider"] == "rider"
    assert feature["geometry"]["coordinates"] == [CENTER_LON, CENTER_LAT + 0.001]
    wide = api.client.get("/api/v1/tracking/live", params={"minutes": 60}, headers=api.auth("dispatcher"))
    assert {f["properties"]["rider"] for f in wide.json()["features"]} == {"rider", "rider2"}
    # Off duty: off the map.
    api.client.put("/api/v1/me/duty", json={"on_duty": False}, headers=api.auth("rider"))
    wide = api.client.get("/api/v1/tracking/live", params={"minutes": 60}, headers=api.auth("dispatcher"))
    assert {f["properties"]["rider"] for f in wide.json()["features"]} == {"rider2"}
    audits = _audits(db, "tracking.view_live")
    assert len(audits) == 3
    assert audits[0].detail["riders"] == [district.users["rider"].id]
    assert_problem(api.client.get("/api/v1/tracking/live", headers=api.auth("admin")), 403)


def test_rider_sees_what_was_collected(api: Api, db: Session, district: District) -> None:
    ready(api)
    backdate(db, district.users["rider"].id)
    api.client.post("/api/v1/me/devices", json={"device_id": "phone-1"}, headers=api.auth("rider"))
    send(api, [ping(ago(300)), ping(ago(200), lat=CENTER_LAT + 0.001)])
    api.client.get("/api/v1/riders/rider/track", params=_window(), headers=api.auth("dispatcher"))
    res = api.client.get("/api/v1/me/positions", headers=api.auth("rider"))
    assert res.status_code == 200, res.text
    mine = res.json()
    assert mine["consent"] is True and mine["on_duty"] is True and mine["retention_days"] == 30
    assert [c["granted"] for c in mine["consents"]] == [True]
    assert len(mine["shifts"]) == 1 and mine["shifts"][0]["ended_at"] is None
    assert [d["device_id"] for d in mine["devices"]] == ["phone-1"]
    assert mine["position_count"] == 2
    assert [p["lat"] for p in mine["recent_positions"]] == [CENTER_LAT + 0.001, CENTER_LAT]
    assert [v["viewer_role"] for v in mine["track_views"]] == ["dispatcher"]
    # rider2 sees nothing of rider's.
    other = api.client.get("/api/v1/me/positions", headers=api.auth("rider2")).json()
    assert other["position_count"] == 0 and other["recent_positions"] == [] and other["track_views"] == []
