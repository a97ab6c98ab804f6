"""Importing an export again: changed cases are updated (and counted and audited as such), identical ones
left alone; hotspots read the updated cases at once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.geo.coords import wgs84_to_gcj02
from riderwatch.incidents import service
from riderwatch.models import AuditEntry, Incident
from tests.api.helpers import Api, assert_problem
from tests.factories import CENTER_LAT, CENTER_LON, District
from tests.incidents.workbooks import HEADER, XLSX_TYPE, xlsx

WHEN = datetime(2026, 11, 20, 21, 30)  # local time, as a date cell holds it


def sheet(changes: dict[str, dict[int, Any]] | None = None) -> list[list[Any]]:
    """Three cases of the 110 system; `changes` maps a case number to {column index: new value}."""
    rows: list[list[Any]] = [
        ["110", "R1", "theft", CENTER_LAT, CENTER_LON, WHEN, "电动车被盗"],
        ["110", "R2", "theft", CENTER_LAT + 0.001, CENTER_LON, WHEN, ""],
        ["110", "R3", "fight_dispute", CENTER_LAT, CENTER_LON + 0.001, "2026-11-20 22:10", "酒后纠纷"],
    ]
    for row in rows:
        for column, value in (changes or {}).get(row[1], {}).items():
            row[column] = value
    return [list(HEADER), *rows]


def upload(api: Api, data: bytes, who: str = "dispatcher") -> Any:
    files = {"file": ("cases.xlsx", data, XLSX_TYPE)}
    return api.client.post("/api/v1/incidents/import", files=files, headers=api.auth(who))


def stored(db: Session) -> dict[str, Incident]:
    items = {i.external_ref: i for i in db.scalars(select(Incident))}
    db.commit()  # ends the read at once (SQLite: an open one would block the app); objects stay usable
    db.expunge_all()  # as read now: the next read loads fresh objects instead of these
    return items


def audits(db: Session) -> list[AuditEntry]:
    items = list(db.scalars(select(AuditEntry).where(AuditEntry.action == "incident.import").order_by(AuditEntry.id)))
    db.commit()
    return items


def test_one_changed_row_is_updated_the_rest_unchanged(api: Api, db: Session) -> None:
    first = upload(api, xlsx(sheet()))
    assert first.json() == {"rows": 3, "created": 3, "updated": 0, "unchanged": 0}
    before = stored(db)
    # The police corrected one case's category in their system; the admin imports the export again.
    again = upload(api, xlsx(sheet({"R2": {2: "fire_hazard"}})), who="admin")
    assert again.status_code == 200, again.text
    assert again.json() == {"rows": 3, "created": 0, "updated": 1, "unchanged": 2}
    after = stored(db)
    assert after["R2"].category_code == "fire_hazard" and after["R2"].id == before["R2"].id
    admin_id = api.client.get("/api/v1/me", headers=api.auth("admin")).json()["id"]
    assert after["R2"].imported_by_id == admin_id and after["R2"].imported_at > before["R2"].imported_at
    for ref in ("R1", "R3"):  # untouched: not even the import time moves
        assert after[ref].imported_by_id == before[ref].imported_by_id != admin_id
        assert after[ref].imported_at == before[ref].imported_at
    entries = audits(db)
    assert [(e.detail["created"], e.detail["updated"], e.detail["unchanged"]) for e in entries] == [
        (3, 0, 0),
        (0, 1, 2),
    ]
    assert entries[1].actor_id == admin_id
    assert entries[1].detail["updated_cases"] == [
        {"source": "110", "external_ref": "R2", "changed": {"category": ["theft", "fire_hazard"]}}
    ]
    # The change is what the API lists now.
    listed = api.client.get("/api/v1/incidents", params={"category": "fire_hazard"}, headers=api.auth("police"))
    assert [i["external_ref"] for i in listed.json()["items"]] == ["R2"]
    # The same file a third time changes nothing.
    third = upload(api, xlsx(sheet({"R2": {2: "fire_hazard"}})))
    assert third.json() == {"rows": 3, "created": 0, "updated": 0, "unchanged": 3}
    assert audits(db)[-1].detail["updated_cases"] == []


def test_every_imported_field_counts_as_a_change(api: Api, db: Session) -> None:
    assert upload(api, xlsx(sheet())).status_code == 200
    changes: dict[str, dict[int, Any]] = {
        "R1": {3: CENTER_LAT + 0.002, 6: "电动车被盗（已追回）"},
        "R2": {4: CENTER_LON + 1e-6},  # about ten centimetres
        "R3": {5: datetime(2026, 11, 20, 22, 15)},
    }
    res = upload(api, xlsx(sheet(changes)))
    assert res.json() == {"rows": 3, "created": 0, "updated": 3, "unchanged": 0}
    items = stored(db)
    assert items["R1"].lat == CENTER_LAT + 0.002 and items["R1"].note == "电动车被盗（已追回）"
    assert items["R2"].lon == CENTER_LON + 1e-6
    assert items["R3"].occurred_at == datetime(2026, 11, 20, 14, 15, tzinfo=UTC)
    changed = {c["external_ref"]: c["changed"] for c in audits(db)[-1].detail["updated_cases"]}
    assert changed["R1"] == {"lat": [CENTER_LAT, CENTER_LAT + 0.002], "note": ["电动车被盗", "电动车被盗（已追回）"]}
    assert changed["R3"] == {"occurred_at": ["2026-11-20T14:10:00+00:00", "2026-11-20T14:15:00+00:00"]}


def test_the_same_case_written_differently_is_unchanged(api: Api, db: Session) -> None:
    """Name for code, text for a date cell, another offset for the same instant, GCJ-02 for the same place."""
    assert upload(api, xlsx(sheet())).status_code == 200
    glat, glon = wgs84_to_gcj02(CENTER_LAT, CENTER_LON + 0.001)
    rows: list[dict[str, Any]] = [
        {"external_ref": "R1", "category": "盗窃", "lat": CENTER_LAT, "lon": CENTER_LON,
         "occurred_at": "2026-11-20T13:30:00Z", "note": "电动车被盗"},
        {"external_ref": "R2", "category": "Theft", "lat": str(CENTER_LAT + 0.001), "lon": CENTER_LON,
         "occurred_at": "2026/11/20 21:30"},
        {"external_ref": "R3", "category": "fight_dispute", "lat": glat, "lon": glon, "crs": "gcj02",
         "occurred_at": "2026-11-20T22:10:00+08:00", "note": " 酒后纠纷 "},
    ]  # fmt: skip
    res = api.client.post(
        "/api/v1/incidents", json={"source": "110", "incidents": rows}, headers=api.auth("dispatcher")
    )
    assert res.status_code == 200, res.text
    # GCJ-02 converts back to the stored WGS-84 position only to within a hair's breadth: the same place.
    assert res.json() == {"rows": 3, "created": 0, "updated": 0, "unchanged": 3}
    items = stored(db)
    assert items["R1"].category_code == "theft" and items["R2"].category_code == "theft"


def test_a_bad_row_in_a_reimport_updates_nothing(api: Api, db: Session) -> None:
    assert upload(api, xlsx(sheet())).status_code == 200
    bad = sheet({"R1": {2: "fire_hazard"}, "R3": {3: "north"}})
    problem = assert_problem(upload(api, xlsx(bad)), 422)
    assert [(e["row"], e["field"]) for e in problem["errors"]] == [(4, "lat")]
    assert stored(db)["R1"].category_code == "theft"
    assert len(audits(db)) == 1


def test_new_and_changed_together_via_the_service(db: Session, district: District) -> None:
    def rows(category: str, refs: range) -> list[tuple[int, dict[str, Any]]]:
        return [
            (n, {"source": "110", "external_ref": f"S{i}", "category": category, "lat": CENTER_LAT,
                 "lon": CENTER_LON, "occurred_at": "2026-11-20T21:30:00+08:00"})
            for n, i in enumerate(refs, start=1)
        ]  # fmt: skip

    first = service.import_incidents(db, actor=None, rows=rows("theft", range(0, 1500)), timezone="Asia/Shanghai",
                                     origin="test")  # fmt: skip
    assert (first.created, first.updated, first.unchanged) == (1500, 0, 0)
    # More rows than one statement takes (CHUNK), half of them new, the others changed.
    mixed = rows("theft", range(0, 500)) + rows("fire_hazard", range(500, 1500)) + rows("theft", range(1500, 3000))
    mixed = [(n, r) for n, (_old, r) in enumerate(mixed, start=1)]
    second = service.import_incidents(db, actor=None, rows=mixed, timezone="Asia/Shanghai", origin="test")
    assert (second.rows, second.created, second.updated, second.unchanged) == (3000, 1500, 1000, 500)
    db.commit()
    counts = dict(
        db.execute(select(Incident.category_code, service.func.count()).group_by(Incident.category_code)).all()
    )
    assert counts == {"theft": 2000, "fire_hazard": 1000}
    entry = audits(db)[-1]
    assert len(entry.detail["updated_cases"]) == service.AUDIT_UPDATED and entry.detail["updated"] == 1000


def test_hotspots_see_the_updated_case(api: Api, db: Session) -> None:
    assert upload(api, xlsx(sheet())).status_code == 200

    def hotspot_incidents(category: str) -> int:
        body = {
            "area": {"type": "Circle", "center": [CENTER_LON, CENTER_LAT], "radius_m": 800},
            "from": "2026-11-20T00:00:00+08:00",
            "to": "2026-11-21T00:00:00+08:00",
            "sources": ["incidents"],
            "categories": [category],
        }
        res = api.client.post("/api/v1/hotspots/query", json=body, headers=api.auth("dispatcher"))
        assert res.status_code == 200, res.text
        return int(res.json()["summary"]["incidents"])

    assert (hotspot_incidents("theft"), hotspot_incidents("fire_hazard")) == (2, 0)
    assert upload(api, xlsx(sheet({"R2": {2: "fire_hazard"}}))).json()["updated"] == 1
    assert (hotspot_incidents("theft"), hotspot_incidents("fire_hazard")) == (1, 1)
    # Moved out of the window: no longer counted.
    moved = sheet({"R1": {5: "2026-11-21 09:00"}, "R2": {2: "fire_hazard"}})
    assert upload(api, xlsx(moved)).json() == {"rows": 3, "created": 0, "updated": 1, "unchanged": 2}
    assert (hotspot_incidents("theft"), hotspot_incidents("fire_hazard")) == (0, 1)
