"""Setting up a district through /api/v1/org/{kind}: administrators write, the command centre reads, every
boundary is checked before anything is stored, retiring keeps history, every change is audited."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.models import AuditEntry, Community, Grid, Zone
from tests.api.helpers import Api, assert_problem
from tests.factories import CENTER_LAT, CENTER_LON, District, clue_body, square

EAST = square(CENTER_LAT, CENTER_LON + 0.03, 0.01)  # a community beside the district's Jinding


def _count(db: Session, model: Any) -> int:
    n = db.scalar(select(func.count()).select_from(model)) or 0
    db.rollback()  # the test's session holds no lock while the server writes
    return n


def _audit(db: Session, action: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(object type, object id, detail) of each entry of an action, read without holding a lock."""
    rows = [
        (e.object_type, e.object_id, e.detail)
        for e in db.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))
    ]
    db.rollback()
    return rows


def test_an_administrator_adds_a_community_and_its_grid_and_the_command_centre_reads_them(
    api: Api, db: Session, district: District
) -> None:
    res = api.client.post(
        "/api/v1/org/communities",
        json={"code": "dongyang", "name": "东阳社区", "name_en": "Dongyang", "boundary": EAST},
        headers=api.auth("admin"),
    )
    assert res.status_code == 201, res.text
    body = res.json()
    assert body["code"] == "dongyang" and body["jurisdiction"] == "zhenhai" and body["warnings"] == []
    assert body["dry_run"] is False and body["retired"] is False
    grid = square(CENTER_LAT, CENTER_LON + 0.025, 0.004)
    res = api.client.post(
        "/api/v1/org/grids",
        json={"code": "dongyang-1", "name": "东阳第一网格", "community": "dongyang", "boundary": grid},
        headers=api.auth("admin"),
    )
    assert res.status_code == 201, res.text

    listed = api.client.get("/api/v1/org/communities", headers=api.auth("dispatcher"))
    assert listed.status_code == 200
    assert [c["code"] for c in listed.json()] == ["dongyang", "jinding"]
    one = api.client.get("/api/v1/org/grids/dongyang-1", headers=api.auth("dispatcher")).json()
    assert one["community"] == "dongyang" and one["boundary"]["type"] == "Polygon"

    # A clue reported there is placed in the new grid at once.
    clue = api.client.post(
        "/api/v1/clues",
        json=clue_body(lat=CENTER_LAT, lon=CENTER_LON + 0.025),
        headers=api.auth("rider"),
    )
    assert api.get("dispatcher", clue.json()["id"])["grid"] == "东阳第一网格"

    created = _audit(db, "org.create")
    assert [(kind, code) for kind, code, _ in created] == [("community", "dongyang"), ("grid", "dongyang-1")]
    assert created[0][2]["values"]["boundary"] == "…"


@pytest.mark.parametrize(("who", "status"), [("dispatcher", 403), ("rider", 403), ("station_manager", 403)])
def test_only_administrators_write_and_only_the_command_centre_reads(api: Api, who: str, status: int) -> None:
    res = api.client.post("/api/v1/org/platforms", json={"code": "eleme", "name": "饿了么"}, headers=api.auth(who))
    assert_problem(res, status)
    if who != "dispatcher":
        assert_problem(api.client.get("/api/v1/org/platforms", headers=api.auth(who)), 403)


BOW_TIE = {
    "type": "Polygon",
    "coordinates": [
        [
            [CENTER_LON + 0.02, CENTER_LAT - 0.01],
            [CENTER_LON + 0.04, CENTER_LAT + 0.01],
            [CENTER_LON + 0.04, CENTER_LAT - 0.01],
            [CENTER_LON + 0.02, CENTER_LAT + 0.01],
            [CENTER_LON + 0.02, CENTER_LAT - 0.01],
        ]
    ],
}


@pytest.mark.parametrize(
    ("boundary", "words"),
    [
        (BOW_TIE, "crosses itself near 119.040000, 25.430000"),
        ({"type": "Polygon", "coordinates": [EAST["coordinates"][0][:-1]]}, "ring 1 is not closed"),
        ({"type": "MultiPolygon", "coordinates": [EAST["coordinates"]]}, "not MultiPolygon"),
        ({"type": "Polygon", "coordinates": [[[119.0, 25.4], [119.1, 25.4], [119.0, 25.4]]]}, "at least 4"),
        ({"type": "Polygon", "coordinates": [[[119.0, 25.4], [219.1, 25.4], [119.0, 25.5], [119.0, 25.4]]]}, "WGS-84"),
        ({"type": "Polygon", "coordinates": [[[119.0, 25.4], ["a", 25.4], [119.0, 25.5], [119.0, 25.4]]]}, "numbers"),
        ({"type": "Polygon", "coordinates": [[[119.0, 25.4], [119.1, 25.4], [119.2, 25.4], [119.0, 25.4]]]}, "no area"),
        ({"type": "Point", "coordinates": [119.0, 25.4]}, "not Point"),
        ({"type": "Polygon"}, "no coordinates"),
    ],
)
def test_a_bad_boundary_is_refused_with_the_reason_and_nothing_is_stored(
    api: Api, db: Session, boundary: dict[str, Any], words: str
) -> None:
    before = _count(db, Community)
    res = api.client.post(
        "/api/v1/org/communities",
        json={"code": "bad", "name": "坏边界", "boundary": boundary},
        headers=api.auth("admin"),
    )
    problem = assert_problem(res, 422)
    assert words in problem["detail"], problem["detail"]
    assert _count(db, Community) == before
    assert _audit(db, "org.create") == []


def test_areas_must_lie_inside_the_jurisdiction_and_a_grid_inside_its_community(api: Api, db: Session) -> None:
    admin = api.auth("admin")
    outline = square(CENTER_LAT, CENTER_LON, 0.05)
    res = api.client.patch("/api/v1/org/jurisdictions/zhenhai", json={"boundary": outline}, headers=admin)
    assert res.status_code == 200, res.text
    far = square(CENTER_LAT + 0.2, CENTER_LON, 0.01)
    res = api.client.post(
        "/api/v1/org/communities", json={"code": "far", "name": "远方", "boundary": far}, headers=admin
    )
    assert "outside the jurisdiction" in assert_problem(res, 422)["detail"]
    res = api.client.post(
        "/api/v1/org/zones", json={"code": "far-zone", "name": "远方商圈", "boundary": far}, headers=admin
    )
    assert "outside the jurisdiction" in assert_problem(res, 422)["detail"]
    # The grid is set beside Jinding, not in it.
    res = api.client.post(
        "/api/v1/org/grids",
        json={"code": "astray", "name": "越界网格", "community": "jinding", "boundary": EAST},
        headers=admin,
    )
    assert "outside its community" in assert_problem(res, 422)["detail"]
    # A jurisdiction cannot shrink away from its communities.
    res = api.client.patch(
        "/api/v1/org/jurisdictions/zhenhai", json={"boundary": square(CENTER_LAT, CENTER_LON, 0.005)}, headers=admin
    )
    assert "would lie outside" in assert_problem(res, 422)["detail"]
    assert _count(db, Grid) == 1 and _count(db, Zone) == 0


def test_overlapping_grids_are_reported_not_refused(api: Api) -> None:
    # The district's grid covers Jinding's west half; this one covers its middle.
    res = api.client.post(
        "/api/v1/org/grids",
        json={
            "code": "middle",
            "name": "中网格",
            "community": "jinding",
            "boundary": square(CENTER_LAT, CENTER_LON, 0.003),
        },
        headers=api.auth("admin"),
    )
    assert res.status_code == 201, res.text
    [warning] = res.json()["warnings"]
    assert warning.startswith("金鼎西网格 (jinding-w): ") and warning.endswith(" m²")


def test_a_dry_run_answers_as_if_stored_and_stores_nothing(api: Api, db: Session) -> None:
    res = api.client.post(
        "/api/v1/org/communities?dry_run=true",
        json={"code": "dongyang", "name": "东阳社区", "boundary": EAST},
        headers=api.auth("admin"),
    )
    assert res.status_code == 200, res.text
    assert res.json()["dry_run"] is True and res.json()["code"] == "dongyang"
    res = api.client.patch(
        "/api/v1/org/communities/jinding?dry_run=true", json={"name": "金鼎新社区"}, headers=api.auth("admin")
    )
    assert res.status_code == 200 and res.json()["name"] == "金鼎新社区"
    assert api.client.get("/api/v1/org/communities/jinding", headers=api.auth("admin")).json()["name"] == "金鼎社区"
    assert _count(db, Community) == 1
    assert _audit(db, "org.create") == [] and _audit(db, "org.update") == []


def test_codes_are_unique_and_references_must_exist(api: Api) -> None:
    admin = api.auth("admin")
    res = api.client.post(
        "/api/v1/org/communities", json={"code": "jinding", "name": "again", "boundary": EAST}, headers=admin
    )
    assert_problem(res, 409)
    res = api.client.post("/api/v1/org/stations", json={"code": "s1", "name": "站", "platform": "nope"}, headers=admin)
    assert "no platform with the code 'nope'" in assert_problem(res, 422)["detail"]
    res = api.client.post(
        "/api/v1/org/stations", json={"code": "s1", "name": "站", "platform": "meituan", "lat": 25.4}, headers=admin
    )
    assert "both lat and lon" in assert_problem(res, 422)["detail"]
    res = api.client.post("/api/v1/org/stations", json={"code": "bad code!", "name": "站"}, headers=admin)
    assert_problem(res, 422)
    res = api.client.post("/api/v1/org/platforms", json={"code": "x", "name": "x", "colour": "red"}, headers=admin)
    assert_problem(res, 422)
    assert_problem(api.client.get("/api/v1/org/platforms/nope", headers=admin), 404)
    assert_problem(api.client.patch("/api/v1/org/platforms/nope", json={"name": "x"}, headers=admin), 404)


def test_a_zone_keeps_its_stage_and_dates(api: Api, db: Session) -> None:
    admin = api.auth("admin")
    body = {"code": "wanda", "name": "万达商圈", "boundary": EAST, "rollout_stage": "pilot", "pilot_on": "2026-03-01"}
    res = api.client.post("/api/v1/org/zones", json=body, headers=admin)
    assert res.status_code == 201, res.text
    assert res.json()["kind"] == "commercial" and res.json()["pilot_on"] == "2026-03-01"
    res = api.client.patch("/api/v1/org/zones/wanda", json={"rollout_stage": "rolled_out"}, headers=admin)
    assert "rollout date" in assert_problem(res, 422)["detail"]
    res = api.client.patch(
        "/api/v1/org/zones/wanda", json={"rollout_stage": "rolled_out", "rolled_out_on": "2026-02-01"}, headers=admin
    )
    assert "before the pilot's start" in assert_problem(res, 422)["detail"]
    res = api.client.patch(
        "/api/v1/org/zones/wanda", json={"rollout_stage": "rolled_out", "rolled_out_on": "2026-09-01"}, headers=admin
    )
    assert res.status_code == 200 and res.json()["rolled_out_on"] == "2026-09-01"
    [(_, _, detail)] = _audit(db, "org.update")
    assert detail["changes"] == {"rollout_stage": ["pilot", "rolled_out"], "rolled_out_on": [None, "2026-09-01"]}
    res = api.client.patch("/api/v1/org/zones/wanda", json={"kind": "harbour"}, headers=admin)
    assert_problem(res, 422)


def test_retiring_keeps_history_but_takes_no_new_clue_or_link(api: Api, db: Session, district: District) -> None:
    admin = api.auth("admin")
    west = {"lat": CENTER_LAT, "lon": CENTER_LON - 0.005}
    old = api.client.post("/api/v1/clues", json=clue_body(**west), headers=api.auth("rider")).json()["id"]
    res = api.client.patch("/api/v1/org/communities/jinding", json={"retired": True}, headers=admin)
    assert "retire its grids first: jinding-w" in assert_problem(res, 409)["detail"]

    res = api.client.patch("/api/v1/org/grids/jinding-w", json={"retired": True}, headers=admin)
    assert res.status_code == 200 and res.json()["retired"] is True and res.json()["retired_at"]
    assert [code for _, code, _ in _audit(db, "org.retire")] == ["jinding-w"]
    assert api.client.get("/api/v1/org/grids", headers=admin).json() == []
    assert [g["code"] for g in api.client.get("/api/v1/org/grids?include_retired=true", headers=admin).json()] == [
        "jinding-w"
    ]
    areas = api.client.get("/api/v1/areas", headers=admin).json()["features"]
    assert "jinding-w" not in {f["properties"]["code"] for f in areas}

    new = api.client.post("/api/v1/clues", json=clue_body(**west), headers=api.auth("rider")).json()["id"]
    assert api.get("dispatcher", new)["grid"] is None and api.get("dispatcher", new)["community"] == "金鼎社区"
    assert api.get("dispatcher", old)["grid"] == "金鼎西网格"  # the old clue keeps its place name

    res = api.client.post(
        "/api/v1/admin/users",
        json={"username": "gs2", "role": "grid_staff", "password": "a-long-enough-pass-1", "grid": "jinding-w"},
        headers=admin,
    )
    assert "retired" in assert_problem(res, 422)["detail"]

    res = api.client.patch("/api/v1/org/grids/jinding-w", json={"retired": False}, headers=admin)
    assert res.status_code == 200 and res.json()["retired"] is False
    assert [code for _, code, _ in _audit(db, "org.restore")] == ["jinding-w"]


def test_a_boundary_change_is_checked_stored_and_audited(api: Api, db: Session) -> None:
    admin = api.auth("admin")
    smaller = square(CENTER_LAT, CENTER_LON - 0.005, 0.004)
    res = api.client.patch("/api/v1/org/grids/jinding-w", json={"boundary": smaller}, headers=admin)
    assert res.status_code == 200, res.text
    db.expire_all()
    grid = db.scalar(select(Grid).where(Grid.code == "jinding-w"))
    assert grid is not None and round(grid.max_lat, 4) == round(CENTER_LAT + 0.004, 4)
    db.rollback()
    [(_, _, detail)] = _audit(db, "org.update")
    assert detail["changes"] == {"boundary": ["…", "…"]}
    res = api.client.patch("/api/v1/org/grids/jinding-w", json={"boundary": BOW_TIE}, headers=admin)
    assert_problem(res, 422)


def test_refusals_name_the_kind_in_the_readers_language(api: Api) -> None:
    res = api.client.post(
        "/api/v1/org/grids",
        json={"code": "g9", "name": "九号网格", "community": "nowhere", "boundary": EAST},
        headers={**api.auth("admin"), "Accept-Language": "zh-CN"},
    )
    problem = assert_problem(res, 422)
    assert problem["detail"] == "no community with the code 'nowhere'"
    assert problem["localized_detail"] == "没有代码为 'nowhere' 的社区"
