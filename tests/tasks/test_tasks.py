"""Patrol tasks through the API: publishing, who is invited, verification from positions, results."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import pytest
from h3.api import basic_int as h3
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.geo.coords import EARTH_RADIUS_M
from riderwatch.infra.clock import utcnow
from riderwatch.models import AuditEntry, PatrolTask, PatrolTaskResult, PatrolTaskVisit, User
from tests.api.helpers import PROBLEM_JSON, Api
from tests.conftest import TEST_NOW
from tests.factories import PASSWORD, District
from tests.tracking.helpers import CENTER_LAT, CENTER_LON, ago, backdate, count, ping, ready, send

# About 500 m north of the centre: another check-in point.
NORTH = (CENTER_LAT + 0.0045, CENTER_LON)


def window(start_ago_s: float = 3600, hours: float = 2, *, now: datetime | None = None) -> dict[str, str]:
    """A task's window starting `start_ago_s` before now (`now`: for parameters, made before the test runs)."""
    start = (now or utcnow()) - timedelta(seconds=start_ago_s)
    return {"starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=hours)).isoformat()}


def checkpoints_task(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "金鼎夜巡",
        **window(),
        "checkpoints": [
            {"lat": CENTER_LAT, "lon": CENTER_LON, "radius_m": 100, "name": "金鼎广场"},
            {"lat": NORTH[0], "lon": NORTH[1], "radius_m": 100, "name": "北门"},
        ],
        "points": 20,
        "riders": ["rider"],
    }
    body.update(overrides)
    return body


def publish(api: Api, db: Session, body: dict[str, Any]) -> dict[str, Any]:
    """Publish through the API; a window that began in the past is published ahead and moved back.

    A task starts now or later, so tests that send points from the last hour publish the task "as of"
    the window's start: the same as a dispatcher who published it then.
    """
    starts = datetime.fromisoformat(body["starts_at"])
    offset = max(timedelta(0), utcnow() - starts)
    ahead = {
        **body,
        "starts_at": (starts + offset).isoformat(),
        "ends_at": (datetime.fromisoformat(body["ends_at"]) + offset).isoformat(),
    }
    res = api.client.post("/api/v1/tasks", json=ahead, headers=api.auth("dispatcher"))
    assert res.status_code == 201, res.text
    data: dict[str, Any] = res.json()
    if offset:
        task = db.get(PatrolTask, data["task"]["id"])
        assert task is not None
        task.starts_at -= offset
        task.ends_at -= offset
        task.created_at -= offset
        db.commit()
        data["task"]["phase"] = "active" if task.ends_at > utcnow() else "ended"
    return data


def verify(api: Api, task_id: int) -> dict[str, Any]:
    res = api.client.post(f"/api/v1/tasks/{task_id}/verify", headers=api.auth("dispatcher"))
    assert res.status_code == 200, res.text
    data: dict[str, Any] = res.json()
    return data


def on_duty(api: Api, db: Session, district: District, *usernames: str) -> None:
    for name in usernames:
        ready(api, name)
        backdate(db, district.users[name].id, hours=3)


def walk(api: Api, username: str, points: list[tuple[float, float]], first_ago_s: float, step_s: float = 60) -> None:
    pings = [ping(ago(first_ago_s - i * step_s), lat, lon) for i, (lat, lon) in enumerate(points)]
    data = send(api, pings, username)
    assert data["accepted"] == len(pings), data


def destination(lat: float, lon: float, *, bearing_deg: float, metres: float) -> tuple[float, float]:
    """The point `metres` away on a great circle (the sphere haversine_m measures on)."""
    d, b, p = metres / EARTH_RADIUS_M, math.radians(bearing_deg), math.radians(lat)
    lat2 = math.asin(math.sin(p) * math.cos(d) + math.cos(p) * math.sin(d) * math.cos(b))
    lon2 = math.radians(lon) + math.atan2(
        math.sin(b) * math.sin(d) * math.cos(p), math.cos(d) - math.sin(p) * math.sin(lat2)
    )
    return math.degrees(lat2), math.degrees(lon2)


def result_of(detail: dict[str, Any], username: str) -> dict[str, Any]:
    found = [r for r in detail["results"] if r.get("rider") == username]
    assert len(found) == 1, detail["results"]
    return found[0]


def test_checkpoints_are_verified_from_positions_in_the_window(api: Api, db: Session, district: District) -> None:
    task = publish(api, db, checkpoints_task())
    task_id = task["task"]["id"]
    assert task["task"]["phase"] == "active" and task["task"]["targets"] == 2
    assert [f["geometry"]["type"] for f in task["features"]] == ["Point", "Point"]
    on_duty(api, db, district, "rider")
    # Through the square, then 150 m short of the north gate: one of two points.
    walk(api, "rider", [(CENTER_LAT, CENTER_LON), (NORTH[0] - 0.00135, NORTH[1])], first_ago_s=1800)
    detail = verify(api, task_id)
    mine = result_of(detail, "rider")
    assert mine["visited"] == 1 and not mine["completed"] and mine["points_awarded"] == 0
    assert [f["properties"]["passed_by"] for f in detail["features"]] == [1, 0]
    # Then through the gate: done, with the time of that point, and the points.
    walk(api, "rider", [NORTH], first_ago_s=1500)
    detail = verify(api, task_id)
    mine = result_of(detail, "rider")
    assert mine["completed"] and mine["points_awarded"] == 20 and mine["visited"] == 2
    completed_at = datetime.fromisoformat(mine["completed_at"])
    assert abs((completed_at - ago(1500)).total_seconds()) < 30
    assert detail["task"]["riders_completed"] == 1 and detail["task"]["passed_targets"] == 2


def test_positions_outside_the_window_do_not_count(api: Api, db: Session, district: District) -> None:
    task_id = publish(api, db, checkpoints_task(**window(start_ago_s=1200)))["task"]["id"]
    on_duty(api, db, district, "rider")
    walk(api, "rider", [(CENTER_LAT, CENTER_LON), NORTH], first_ago_s=2400)  # before the window opened
    detail = verify(api, task_id)
    assert detail["results"] == [] and detail["task"]["passed_targets"] == 0


def test_only_invited_riders_count(api: Api, db: Session, district: District) -> None:
    task_id = publish(api, db, checkpoints_task(riders=["rider"]))["task"]["id"]
    on_duty(api, db, district, "rider", "rider2")
    walk(api, "rider2", [(CENTER_LAT, CENTER_LON), NORTH], first_ago_s=1800)
    assert verify(api, task_id)["results"] == []
    # Invited through their station, both count.
    by_station = publish(api, db, checkpoints_task(riders=[], stations=[district.station.code]))["task"]["id"]
    walk(api, "rider", [(CENTER_LAT, CENTER_LON), NORTH], first_ago_s=1700)
    detail = verify(api, by_station)
    assert {r["rider"] for r in detail["results"] if r["completed"]} == {"rider", "rider2"}
    # rider2 does not see the first task; rider sees both.
    listed = api.client.get("/api/v1/me/tasks", headers=api.auth("rider2")).json()
    assert [t["id"] for t in listed["open"]] == [by_station]
    assert api.client.get(f"/api/v1/me/tasks/{task_id}", headers=api.auth("rider2")).status_code == 404


def test_required_share_and_max_riders(api: Api, db: Session, district: District) -> None:
    task_id = publish(api, db, checkpoints_task(required_share=0.5, max_riders=1, open_to_all=True, riders=[]))["task"][
        "id"
    ]
    on_duty(api, db, district, "rider", "rider2")
    walk(api, "rider2", [NORTH], first_ago_s=1800)
    walk(api, "rider", [(CENTER_LAT, CENTER_LON)], first_ago_s=1700)
    detail = verify(api, task_id)
    assert detail["task"]["required_targets"] == 1
    first, second = result_of(detail, "rider2"), result_of(detail, "rider")
    assert first["completed"] and second["completed"]
    assert (first["points_awarded"], second["points_awarded"]) == (20, 0)
    listed = api.client.get("/api/v1/me/tasks", headers=api.auth("rider")).json()["open"]
    assert listed[0]["spots_left"] == 0 and listed[0]["mine"]["completed"]


def test_cells_task_from_a_stored_area(api: Api, db: Session, district: District) -> None:
    body = {"title": "网格巡查", **window(), "area": {"grid": district.grid.code}, "resolution": 9, "riders": ["rider"]}
    body["required_share"] = 0.01
    detail = publish(api, db, body)
    task = detail["task"]
    assert task["kind"] == "cells" and task["resolution"] == 9 and task["targets"] == len(detail["features"]) > 1
    cell = detail["features"][0]["properties"]["h3"]
    lat, lon = h3.cell_to_latlng(h3.str_to_int(cell))
    on_duty(api, db, district, "rider")
    walk(api, "rider", [(lat, lon)], first_ago_s=1200)
    detail = verify(api, task["id"])
    passed = {f["properties"]["h3"]: f["properties"]["passed_by"] for f in detail["features"]}
    assert passed[cell] == 1 and sum(passed.values()) == 1
    assert result_of(detail, "rider")["completed"]


def test_cells_task_from_cells(api: Api, db: Session, district: District) -> None:
    cell = h3.latlng_to_cell(CENTER_LAT, CENTER_LON, 10)
    ring = sorted(h3.grid_disk(cell, 1))
    body = {"title": "补盲", **window(), "cells": [h3.int_to_str(c) for c in ring], "open_to_all": True}
    detail = publish(api, db, body)
    assert detail["task"]["resolution"] == 10 and detail["task"]["targets"] == 7
    on_duty(api, db, district, "rider")
    walk(api, "rider", [h3.cell_to_latlng(c) for c in ring], first_ago_s=1800, step_s=30)
    mine = result_of(verify(api, detail["task"]["id"]), "rider")
    assert mine["visited"] == 7 and mine["completed"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"title": "  "}, "title"),
        ({"checkpoints": []}, "at least one"),
        ({"checkpoints": [{"lat": 95, "lon": 119, "radius_m": 50}]}, "impossible"),
        ({"checkpoints": [{"lat": CENTER_LAT, "lon": CENTER_LON, "radius_m": 5}]}, "radius_m"),
        ({"cells": ["89411c0e65bffff"]}, "exactly one target"),
        ({"checkpoints": None, "cells": ["not-a-cell"]}, "not an H3 cell"),
        ({"checkpoints": None, "cells": []}, "at least one cell"),
        ({"checkpoints": None, "cells": ["8041fffffffffff"]}, "resolution"),
        ({"checkpoints": None, "area": {"grid": "nowhere"}}, "no grid"),
        ({"checkpoints": None}, "exactly one target"),
        (window(start_ago_s=7200, hours=1, now=TEST_NOW), "has passed"),
        (window(start_ago_s=0, hours=24 * 8, now=TEST_NOW), "at most 7 days"),
        (window(start_ago_s=-7200, hours=-1, now=TEST_NOW), "after starts_at"),
        ({"riders": ["nobody"]}, "no active rider 'nobody'"),
        ({"riders": ["police"]}, "no active rider 'police'"),
        ({"riders": [], "stations": ["nowhere"]}, "no station"),
        ({"riders": []}, "invite riders or stations"),
        ({"open_to_all": True}, "takes no invitations"),
        ({"points": -1}, "points"),
        ({"required_share": 0}, "required_share"),
        ({"max_riders": 0}, "max_riders"),
        ({"max_riders": 2**70}, "max_riders"),
        (window(start_ago_s=1800, now=TEST_NOW), "starts_at has passed"),
        (window(start_ago_s=-91 * 86400, now=TEST_NOW), "at most 90 days ahead"),
        # Its end lies in year 10000 in UTC: refused as it comes in (it was refused as 90 days ahead).
        (
            {"starts_at": "9999-12-31T10:00:00-08:00", "ends_at": "9999-12-31T20:00:00-08:00"},
            "outside the years 1 to 9999",
        ),
        ({"checkpoints": None, "area": {"grid": "jinding-w"}, "crs": "gcj02"}, "crs applies to checkpoints only"),
        ({"starts_at": "2026-11-29T20:00:00"}, "timezone"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_tasks_are_refused_and_nothing_is_stored(
    api: Api, db: Session, district: District, change: dict[str, Any], message: str
) -> None:
    body = {**checkpoints_task(**window(start_ago_s=-60)), **change}
    res = api.client.post("/api/v1/tasks", json=body, headers=api.auth("dispatcher"))
    assert res.status_code == 422, res.text
    assert res.headers["content-type"].startswith(PROBLEM_JSON)
    assert message.lower() in res.text.lower()
    assert count(db, PatrolTask) == 0


def test_cancel(api: Api, db: Session, district: District) -> None:
    task_id = publish(api, db, checkpoints_task())["task"]["id"]
    res = api.client.post(f"/api/v1/tasks/{task_id}/cancel", headers=api.auth("dispatcher"))
    assert res.status_code == 200 and res.json()["task"]["phase"] == "cancelled"
    assert api.client.get("/api/v1/me/tasks", headers=api.auth("rider")).json()["open"] == []
    again = api.client.post(f"/api/v1/tasks/{task_id}/cancel", headers=api.auth("dispatcher"))
    assert again.status_code == 409
    board = api.client.get("/api/v1/tasks", params={"phase": "cancelled"}, headers=api.auth("police")).json()
    assert [t["id"] for t in board["tasks"]] == [task_id]
    assert api.client.get("/api/v1/tasks", params={"phase": "soon"}, headers=api.auth("police")).status_code == 422


def test_rider_sees_open_tasks_nearest_first(api: Api, db: Session, district: District) -> None:
    far = publish(api, db, checkpoints_task(title="远", checkpoints=[{"lat": CENTER_LAT + 0.05, "lon": CENTER_LON}]))
    near = publish(api, db, checkpoints_task(title="近", checkpoints=[{"lat": CENTER_LAT + 0.002, "lon": CENTER_LON}]))
    later = publish(api, db, checkpoints_task(title="明天", **window(start_ago_s=-86400)))
    headers = api.auth("rider")
    listed = api.client.get("/api/v1/me/tasks", params={"lat": CENTER_LAT, "lon": CENTER_LON}, headers=headers).json()
    assert listed["distance_from"] == "given"
    assert [t["title"] for t in listed["open"]] == ["明天", "近", "远"]
    assert listed["open"][0]["distance_m"] == 0 and listed["open"][0]["phase"] == "upcoming"
    assert 5000 < listed["open"][2]["distance_m"] < 6000
    nearby = api.client.get(
        "/api/v1/me/tasks", params={"lat": CENTER_LAT, "lon": CENTER_LON, "within_m": 1000}, headers=headers
    ).json()
    assert {t["id"] for t in nearby["open"]} == {near["task"]["id"], later["task"]["id"]}
    assert far["task"]["id"] not in {t["id"] for t in nearby["open"]}
    # Without a position and with no last position: unsorted by distance, none given.
    plain = api.client.get("/api/v1/me/tasks", headers=headers).json()
    assert plain["distance_from"] == "none" and all(t["distance_m"] is None for t in plain["open"])
    assert api.client.get("/api/v1/me/tasks", params={"lat": CENTER_LAT}, headers=headers).status_code == 422
    detail = api.client.get(f"/api/v1/me/tasks/{near['task']['id']}", headers=headers).json()
    assert detail["task"]["title"] == "近" and detail["features"][0]["properties"]["passed"] is False


def test_results_name_riders_only_for_the_command_centre(api: Api, db: Session, district: District) -> None:
    task_id = publish(api, db, checkpoints_task())["task"]["id"]
    on_duty(api, db, district, "rider")
    walk(api, "rider", [(CENTER_LAT, CENTER_LON)], first_ago_s=1800)
    verify(api, task_id)
    before = count(db, AuditEntry, AuditEntry.action == "task.view_results")
    as_police = api.client.get(f"/api/v1/tasks/{task_id}", headers=api.auth("police")).json()
    assert as_police["results"] and "rider" not in as_police["results"][0]
    assert as_police["invited"]["riders"] == [] and as_police["invited"]["riders_count"] == 1
    as_dispatcher = api.client.get(f"/api/v1/tasks/{task_id}", headers=api.auth("dispatcher")).json()
    assert as_dispatcher["results"][0]["rider"] == "rider"
    assert count(db, AuditEntry, AuditEntry.action == "task.view_results") == before + 1


def test_withdrawn_consent_deletes_visits_but_keeps_the_result(api: Api, db: Session, district: District) -> None:
    task_id = publish(api, db, checkpoints_task())["task"]["id"]
    on_duty(api, db, district, "rider")
    walk(api, "rider", [(CENTER_LAT, CENTER_LON), NORTH], first_ago_s=1800)
    assert result_of(verify(api, task_id), "rider")["completed"]
    res = api.client.put("/api/v1/me/location-consent", json={"granted": False}, headers=api.auth("rider"))
    assert res.status_code == 200, res.text
    assert count(db, PatrolTaskVisit) == 0
    mine = result_of(verify(api, task_id), "rider")
    assert mine["completed"] and mine["points_awarded"] == 20 and mine["visited"] == 2


def test_verification_job_and_finality(api: Api, db: Session, district: District) -> None:
    from riderwatch.jobs import JOBS

    task_id = publish(api, db, checkpoints_task())["task"]["id"]
    on_duty(api, db, district, "rider")
    walk(api, "rider", [(CENTER_LAT, CENTER_LON), NORTH], first_ago_s=1800)
    assert JOBS["verify_patrol_tasks"](db) == 1
    db.commit()
    result = db.get(PatrolTaskResult, (task_id, district.users["rider"].id))
    assert result is not None and result.completed_at is not None
    # Long after the end no late point can arrive: the results become final and are not checked again.
    task = db.get(PatrolTask, task_id)
    assert task is not None
    task.starts_at -= timedelta(days=3)
    task.ends_at -= timedelta(days=3)
    db.commit()
    assert JOBS["verify_patrol_tasks"](db) == 1
    db.commit()
    assert db.scalar(select(PatrolTask.final).where(PatrolTask.id == task_id)) is True
    assert JOBS["verify_patrol_tasks"](db) == 0
    db.rollback()
    n = db.scalar(select(func.count()).select_from(PatrolTaskResult))
    db.rollback()
    assert n == 1


def test_ended_tasks_are_checked_again_now_and_then_for_late_points(
    api: Api, db: Session, district: District, settings: Any
) -> None:
    from riderwatch.tasks.service import TaskLimits
    from riderwatch.tasks.verification import verify_due

    limits = TaskLimits.from_settings(settings)
    task_id = publish(api, db, checkpoints_task())["task"]["id"]
    task = db.get(PatrolTask, task_id)
    assert task is not None
    task.starts_at -= timedelta(hours=1, minutes=30)
    task.ends_at -= timedelta(hours=1, minutes=30)  # ended half an hour ago
    db.commit()
    now = utcnow()
    assert verify_due(db, limits=limits, now=now) == 1  # never checked since it ended
    db.commit()
    assert verify_due(db, limits=limits, now=now + timedelta(minutes=5)) == 0
    db.commit()
    # A late point from a phone that was offline: found at the next check.
    on_duty(api, db, district, "rider")
    walk(api, "rider", [(CENTER_LAT, CENTER_LON), NORTH], first_ago_s=3600)
    assert verify_due(db, limits=limits, now=now + timedelta(minutes=16)) == 1
    db.commit()
    result = db.get(PatrolTaskResult, (task_id, district.users["rider"].id))
    assert result is not None and result.completed_at is not None
    db.rollback()


def test_the_map_layer_of_active_tasks_counts_passes_without_names(api: Api, db: Session, district: District) -> None:
    active = publish(api, db, checkpoints_task())["task"]["id"]
    publish(api, db, checkpoints_task(title="明天", **window(start_ago_s=-86400)))
    on_duty(api, db, district, "rider")
    walk(api, "rider", [(CENTER_LAT, CENTER_LON)], first_ago_s=1800)
    verify(api, active)
    data = api.client.get("/api/v1/tasks/map", headers=api.auth("police")).json()
    assert data["tasks"] == 1 and data["phase"] == "active"
    assert [f["properties"]["task_id"] for f in data["features"]] == [active, active]
    assert [f["properties"]["passed_by"] for f in data["features"]] == [1, 0]
    assert "rider" not in str(data)
    upcoming = api.client.get("/api/v1/tasks/map", params={"phase": "upcoming"}, headers=api.auth("police")).json()
    assert upcoming["tasks"] == 1 and upcoming["features"][0]["properties"]["title"] == "明天"
    bad = api.client.get("/api/v1/tasks/map", params={"phase": "later"}, headers=api.auth("police"))
    assert bad.status_code == 422


def test_a_wide_checkpoint_counts_passes_just_inside_it_in_every_direction(
    api: Api, db: Session, district: District
) -> None:
    radius = 2000.0
    task_id = publish(
        api,
        db,
        checkpoints_task(
            checkpoints=[{"lat": CENTER_LAT, "lon": CENTER_LON, "radius_m": radius}], open_to_all=True, riders=[]
        ),
    )["task"]["id"]
    names = [f"ring{i}" for i in range(24)]
    from riderwatch.accounts.service import create_user

    for name in names:
        create_user(db, username=name, role="rider", password=PASSWORD, station_code=district.station.code)
    db.commit()
    for i, name in enumerate(names):
        ready(api, name)
        backdate(db, db.scalars(select(User.id).where(User.username == name)).one(), hours=3)
        # 10 m inside the circle, every 15 degrees.
        lat, lon = destination(CENTER_LAT, CENTER_LON, bearing_deg=15 * i, metres=radius - 10)
        walk(api, name, [(lat, lon)], first_ago_s=1800)
    detail = verify(api, task_id)
    assert sorted(r["rider"] for r in detail["results"] if r["completed"]) == sorted(names)


def test_a_late_off_duty_takes_back_what_its_points_achieved(api: Api, db: Session, district: District) -> None:
    task_id = publish(api, db, checkpoints_task())["task"]["id"]
    on_duty(api, db, district, "rider")
    walk(api, "rider", [(CENTER_LAT, CENTER_LON)], first_ago_s=2400)
    walk(api, "rider", [NORTH], first_ago_s=1200)
    assert result_of(verify(api, task_id), "rider")["completed"]
    # The rider says they went off duty 30 minutes ago: the point at the north gate was off duty.
    off = api.client.put(
        "/api/v1/me/duty", json={"on_duty": False, "at": ago(1800).isoformat()}, headers=api.auth("rider")
    )
    assert off.status_code == 200, off.text
    mine = result_of(verify(api, task_id), "rider")
    assert mine["visited"] == 1 and not mine["completed"] and mine["points_awarded"] == 0


def test_verify_now_says_when_there_is_nothing_to_check(api: Api, db: Session, district: District) -> None:
    upcoming = publish(api, db, checkpoints_task(**window(start_ago_s=-3600)))["task"]["id"]
    res = api.client.post(f"/api/v1/tasks/{upcoming}/verify", headers=api.auth("dispatcher"))
    assert res.status_code == 409 and "not started" in res.text
    huge = api.client.get("/api/v1/tasks/99999999999999999999", headers=api.auth("dispatcher"))
    assert huge.status_code == 422


def test_a_fix_less_precise_than_the_check_in_circle_does_not_count(api: Api, db: Session, district: District) -> None:
    task_id = publish(api, db, checkpoints_task())["task"]["id"]  # circles of 100 m
    on_duty(api, db, district, "rider")
    data = send(api, [ping(ago(1800), CENTER_LAT, CENTER_LON, accuracy_m=250)])
    assert data["accepted"] == 1
    data = send(api, [ping(ago(1700), NORTH[0], NORTH[1], accuracy_m=20)])
    assert data["accepted"] == 1
    mine = result_of(verify(api, task_id), "rider")
    assert mine["visited"] == 1  # the north gate only


def test_a_task_cancelled_after_the_rider_finished_stays_in_their_recent_list(
    api: Api, db: Session, district: District
) -> None:
    task_id = publish(api, db, checkpoints_task())["task"]["id"]
    on_duty(api, db, district, "rider")
    walk(api, "rider", [(CENTER_LAT, CENTER_LON), NORTH], first_ago_s=1800)
    assert result_of(verify(api, task_id), "rider")["completed"]
    assert api.client.post(f"/api/v1/tasks/{task_id}/cancel", headers=api.auth("dispatcher")).status_code == 200
    mine = api.client.get("/api/v1/me/tasks", headers=api.auth("rider")).json()
    assert mine["open"] == []
    assert [(t["id"], t["phase"], t["mine"]["points_awarded"]) for t in mine["recent"]] == [(task_id, "cancelled", 20)]
    # rider2 made no progress: the cancelled task is simply gone for them.
    assert api.client.get("/api/v1/me/tasks", headers=api.auth("rider2")).json()["recent"] == []


def test_a_retired_station_is_not_invited(api: Api, db: Session) -> None:
    res = api.client.patch("/api/v1/org/stations/mt-jinding", json={"retired": True}, headers=api.auth("admin"))
    assert res.status_code == 200, res.text
    body = {**checkpoints_task(**window(start_ago_s=-60)), "riders": [], "stations": ["mt-jinding"]}
    refused = api.client.post("/api/v1/tasks", json=body, headers=api.auth("dispatcher"))
    assert refused.status_code == 422 and "'mt-jinding' retired" in refused.text
    assert count(db, PatrolTask) == 0
