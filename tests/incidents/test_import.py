"""Importing incidents (the police's recorded cases): JSON and CSV, all rows or none, re-import without duplicates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.errors import InvalidInput
from riderwatch.geo.coords import wgs84_to_gcj02
from riderwatch.incidents import files, rows, service
from riderwatch.models import AuditEntry, Incident
from tests.api.helpers import Api, assert_problem
from tests.conftest import TEST_NOW
from tests.factories import CENTER_LAT, CENTER_LON, District

HEADER = "source,external_ref,category,lat,lon,occurred_at,note"


def row(ref: str = "A1", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "source": "110",
        "external_ref": ref,
        "category": "theft",
        "lat": CENTER_LAT,
        "lon": CENTER_LON,
        "occurred_at": "2026-11-20T21:30:00+08:00",
    }
    body.update(overrides)
    return body


def stored(db: Session) -> list[Incident]:
    items = list(db.scalars(select(Incident).order_by(Incident.source, Incident.external_ref)))
    db.commit()  # ends the read at once (SQLite: an open one would block the app); objects stay usable
    return items


def audits(db: Session) -> list[AuditEntry]:
    items = list(db.scalars(select(AuditEntry).where(AuditEntry.action == "incident.import").order_by(AuditEntry.id)))
    db.commit()  # ends the read at once (SQLite: an open one would block the app); objects stay usable
    return items


def post_json(api: Api, rows: list[dict[str, Any]], who: str = "dispatcher", **extra: Any) -> Any:
    return api.client.post("/api/v1/incidents", json={"incidents": rows, **extra}, headers=api.auth(who))


def post_csv(api: Api, data: bytes, who: str = "dispatcher", source: str | None = None) -> Any:
    form = {"source": source} if source is not None else None
    files = {"file": ("cases.csv", data, "text/csv")}
    return api.client.post("/api/v1/incidents/import", files=files, data=form, headers=api.auth(who))


def test_json_import_and_reimport(api: Api, db: Session) -> None:
    rows = [row("A1"), row("A2", category="fight_dispute", note="烧烤摊酒后闹事"), row("7", source="case-system")]
    res = post_json(api, rows)
    assert res.status_code == 200, res.text
    assert res.json() == {"rows": 3, "created": 3, "updated": 0, "unchanged": 0}
    items = stored(db)
    assert [(i.source, i.external_ref, i.category_code) for i in items] == [
        ("110", "A1", "theft"),
        ("110", "A2", "fight_dispute"),
        ("case-system", "7", "theft"),
    ]
    first = items[0]
    # Local time without loss, stored as aware UTC; the importer is recorded.
    assert first.occurred_at == datetime(2026, 11, 20, 13, 30, tzinfo=UTC)
    assert (first.lat, first.lon) == (CENTER_LAT, CENTER_LON)
    dispatcher_id = api.client.get("/api/v1/me", headers=api.auth("dispatcher")).json()["id"]
    assert {i.imported_by_id for i in items} == {dispatcher_id}
    assert items[1].note == "烧烤摊酒后闹事"

    # The same export again adds nothing; a new case beside old ones is added alone.
    again = post_json(api, [*rows, row("A3")])
    assert again.json() == {"rows": 4, "created": 1, "updated": 0, "unchanged": 3}
    assert len(stored(db)) == 4
    entries = audits(db)
    assert [e.detail["created"] for e in entries] == [3, 1]
    assert entries[1].detail["unchanged"] == 3 and entries[1].actor_id == dispatcher_id
    assert entries[0].detail["sources"] == ["110", "case-system"]


def test_defaults_names_and_local_times(api: Api, db: Session) -> None:
    rows = [
        row("B1", source=None, category="盗窃", occurred_at="2026-11-20 21:30"),
        row("B2", source="", category="Telecom fraud", occurred_at="2026/11/20 9:05:00"),
        row("B3", source=None, category=" THEFT ", occurred_at="2026-11-20T13:30:00Z", external_ref=12345),
    ]
    rows[2]["external_ref"] = 12345
    for r in rows:
        if r["source"] is None:
            del r["source"]
    res = post_json(api, rows, source="110")
    assert res.status_code == 200, res.text
    items = {i.external_ref: i for i in stored(db)}
    assert set(items) == {"B1", "B2", "12345"}
    assert {i.source for i in items.values()} == {"110"}
    assert items["B1"].category_code == "theft" and items["B2"].category_code == "telecom_fraud"
    # A time without an offset is the station's local time (Asia/Shanghai).
    assert items["B1"].occurred_at == items["12345"].occurred_at == datetime(2026, 11, 20, 13, 30, tzinfo=UTC)
    assert items["B2"].occurred_at == datetime(2026, 11, 20, 1, 5, tzinfo=UTC)


def test_gcj02_positions_are_stored_in_wgs84(api: Api, db: Session) -> None:
    glat, glon = wgs84_to_gcj02(CENTER_LAT, CENTER_LON)
    assert abs(glat - CENTER_LAT) > 1e-4  # the datums differ by hundreds of metres here
    res = post_json(api, [row("G1", lat=glat, lon=glon, crs="gcj02")])
    assert res.status_code == 200, res.text
    (item,) = stored(db)
    assert item.lat == pytest.approx(CENTER_LAT, abs=1e-7) and item.lon == pytest.approx(CENTER_LON, abs=1e-7)


BAD_ROWS: list[tuple[dict[str, Any], str, str]] = [
    (row(category="ufo"), "category", "unknown category"),
    (row(category=""), "category", "missing"),
    (row(lat=95), "lat", "out of range"),
    (row(lon=-181), "lon", "out of range"),
    (row(lat="north"), "lat", "not a number"),
    (row(lat=None), "lat", "must be a number"),
    (row(lat=True), "lat", "must be a number"),
    (row(lat=0, lon=0), "lat", "no place"),
    (row(crs="bd09"), "crs", "unknown crs"),
    (row(occurred_at="yesterday"), "occurred_at", "not a date"),
    (row(occurred_at=12), "occurred_at", "must be a date"),
    (row(occurred_at=(TEST_NOW + timedelta(hours=1)).isoformat()), "occurred_at", "in the future"),
    (row(occurred_at="1999-12-31T23:00:00+00:00"), "occurred_at", "before 2000"),
    (row(source="x" * 33), "source", "at most 32"),
    (row(source=""), "source", "missing"),
    (row(external_ref=""), "external_ref", "missing"),
    (row(external_ref="r" * 65), "external_ref", "at most 64"),
    (row(note="n" * 501), "note", "at most 500"),
    (row(note=["a"]), "note", "must be text"),
    (row(note="a\x00b"), "note", "NUL"),
    ({**row(), "place": "x"}, "place", "unknown fields"),
]


@pytest.mark.parametrize(("bad", "field", "reason"), BAD_ROWS, ids=[f"{f}-{r}" for _b, f, r in BAD_ROWS])
def test_a_bad_row_refuses_the_whole_batch(api: Api, db: Session, bad: dict[str, Any], field: str, reason: str) -> None:
    res = post_json(api, [row("G1"), bad, row("G2")])
    problem = assert_problem(res, 422)
    assert problem["detail"] == "1 of 3 rows are refused; nothing was imported"
    assert [(e["row"], e["field"]) for e in problem["errors"]] == [(2, field)]
    assert reason in problem["errors"][0]["reason"]
    assert stored(db) == [] and audits(db) == []


def test_every_bad_row_is_named(api: Api, db: Session) -> None:
    rows = [row("C1"), row("C2", lat="x", category="ufo"), row("C1"), row("C4"), row("C5", occurred_at="soon")]
    problem = assert_problem(post_json(api, rows), 422)
    assert problem["detail"] == "3 of 5 rows are refused; nothing was imported"
    assert [(e["row"], e["field"]) for e in problem["errors"]] == [
        (2, "category"),
        (2, "lat"),
        (3, "external_ref"),
        (5, "occurred_at"),
    ]
    assert "also in row 1" in problem["errors"][2]["reason"]
    assert stored(db) == []


def test_batch_shape_is_checked(api: Api, db: Session) -> None:
    assert_problem(post_json(api, []), 422)
    assert_problem(api.client.post("/api/v1/incidents", json=[row()], headers=api.auth("dispatcher")), 422)
    res = api.client.post("/api/v1/incidents", json={"incidents": ["x"]}, headers=api.auth("dispatcher"))
    assert_problem(res, 422)
    assert stored(db) == []


def test_csv_with_bom_and_chinese(api: Api, db: Session) -> None:
    text = (
        f"{HEADER},crs\r\n"
        '110,J2026112000017,盗窃,25.4301,119.0102,2026-11-20 21:30,"金鼎广场，电动车被盗",\r\n'
        "110,J2026112000018,fight_dispute,25.4302,119.0103,2026-11-20T22:10:00+08:00,酒后纠纷,wgs84\r\n"
        "\r\n"
    )
    res = post_csv(api, "\ufeff".encode() + text.encode("utf-8"))
    assert res.status_code == 200, res.text
    assert res.json() == {"rows": 2, "created": 2, "updated": 0, "unchanged": 0}
    items = stored(db)
    assert [i.note for i in items] == ["金鼎广场，电动车被盗", "酒后纠纷"]
    assert items[0].category_code == "theft"
    assert audits(db)[0].detail["origin"] == "csv:cases.csv"
    # The same file saved by a Chinese spreadsheet (GB 18030, no BOM) is the same two cases.
    again = post_csv(api, text.encode("gb18030"))
    assert again.json() == {"rows": 2, "created": 0, "updated": 0, "unchanged": 2}


def test_csv_source_from_the_form(api: Api, db: Session) -> None:
    data = b"external_ref,category,lat,lon,occurred_at\nK1,theft,25.43,119.01,2026-11-20T21:30:00+08:00\n"
    assert_problem(post_csv(api, data), 422)  # no source column and no source given
    res = post_csv(api, data, source="case-system")
    assert res.status_code == 200, res.text
    assert [i.source for i in stored(db)] == ["case-system"]


@pytest.mark.parametrize(
    ("data", "row_no", "field", "reason"),
    [
        (b"source,external_ref,category,lat\n110,1,theft,25\n", 1, "header", "missing columns: lon, occurred_at"),
        (f"{HEADER},place\n".encode(), 1, "header", "unknown columns: place"),
        (f"{HEADER},note\n".encode(), 1, "header", "columns named twice: note"),
        (f"{HEADER}\n110,1,theft,25.43,119.01,2026-11-20T21:30:00+08:00,,extra\n".encode(), 2, "", "8 cells"),
        (f"{HEADER}\n110,1,theft,25.43,119.01,2026-11-20T21:30:00+08:00\n110,2,theft,x,119,\n".encode(), 3, "lat", ""),
    ],
)
def test_bad_csv_files(api: Api, db: Session, data: bytes, row_no: int, field: str, reason: str) -> None:
    problem = assert_problem(post_csv(api, data), 422)
    first = problem["errors"][0]
    assert (first["row"], first["field"]) == (row_no, field) and reason in first["reason"]
    assert stored(db) == []


@pytest.mark.parametrize(
    "data",
    [b"", b"\xff\xfe\x00s\x00o", HEADER.encode() + b"\n", b"\x89PNG\r\n\x1a\n" + bytes(range(256))],
    ids=["empty", "utf16", "header-only", "binary"],
)
def test_unreadable_files(api: Api, db: Session, data: bytes) -> None:
    assert_problem(post_csv(api, data), 422)
    assert stored(db) == []


def test_upload_needs_a_file(api: Api) -> None:
    headers = api.auth("dispatcher")
    assert_problem(api.client.post("/api/v1/incidents/import", json={"x": 1}, headers=headers), 415)
    res = api.client.post(
        "/api/v1/incidents/import", data={"source": "110"}, files={"other": ("a", b"")}, headers=headers
    )
    assert_problem(res, 422)


def test_list_filters(api: Api, db: Session) -> None:
    rows = [
        row("L1", occurred_at="2026-11-01T10:00:00+08:00"),
        row("L2", occurred_at="2026-11-02T10:00:00+08:00", category="fire_hazard"),
        row("L3", occurred_at="2026-11-03T10:00:00+08:00"),
    ]
    assert post_json(api, rows).status_code == 200

    def get(who: str = "police", **params: Any) -> Any:
        return api.client.get("/api/v1/incidents", params=params, headers=api.auth(who))

    data = get().json()
    assert data["total"] == 3 and [i["external_ref"] for i in data["items"]] == ["L3", "L2", "L1"]
    assert data["items"][0]["occurred_at"] == "2026-11-03T02:00:00+00:00" and data["items"][0]["category"] == "theft"
    window = get(**{"from": "2026-11-02T00:00:00+08:00", "to": "2026-11-03T00:00:00+08:00"}).json()
    assert [i["external_ref"] for i in window["items"]] == ["L2"]
    theft = get(category="theft", limit=1).json()
    assert theft["total"] == 2 and [i["external_ref"] for i in theft["items"]] == ["L3"]
    assert_problem(get(category="ufo"), 422)
    assert_problem(get(limit=0), 422)
    assert_problem(get(**{"from": "2026-11-02T00:00:00"}), 422)  # naive: which time zone?
    assert_problem(get(**{"from": "2026-11-03T00:00:00+08:00", "to": "2026-11-02T00:00:00+08:00"}), 422)


@pytest.mark.parametrize(
    ("who", "may_import", "may_read"),
    [
        ("dispatcher", True, True),
        ("admin", True, True),
        ("police", False, True),
        ("grid_staff", False, True),
        ("patrol", False, True),
        ("station_manager", False, False),
        ("platform", False, False),
        ("rider", False, False),
    ],
)
def test_permissions(api: Api, db: Session, who: str, may_import: bool, may_read: bool) -> None:
    def check(res: Any, allowed: bool) -> None:
        if allowed:
            assert res.status_code == 200, res.text
        else:
            assert_problem(res, 403)

    check(post_json(api, [row(f"P-{who}")], who=who), may_import)
    csv = f"{HEADER}\n110,Q-{who},theft,25.43,119.01,2026-11-20T21:30:00+08:00,\n".encode()
    check(post_csv(api, csv, who=who), may_import)
    assert len(stored(db)) == (2 if may_import else 0)
    check(api.client.get("/api/v1/incidents", headers=api.auth(who)), may_read)
    assert_problem(api.client.get("/api/v1/incidents"), 401)


def test_service_limits(db: Session, district: District) -> None:
    with pytest.raises(InvalidInput, match="at most"):
        service.import_incidents(
            db,
            actor=None,
            rows=[(i, row(str(i))) for i in range(rows.MAX_ROWS + 1)],
            timezone="Asia/Shanghai",
            origin="test",
        )
    with pytest.raises(InvalidInput, match="larger than"):
        files.parse_csv(b"x" * (rows.MAX_FILE_BYTES + 1))
    # The command line imports with no actor; the audit entry says so.
    result = service.import_incidents(
        db, actor=None, rows=[(1, row("S1"))], timezone="Asia/Shanghai", origin="cli:cases.csv"
    )
    db.commit()
    assert result.created == 1
    entry = audits(db)[0]
    assert entry.actor_id is None and entry.detail["origin"] == "cli:cases.csv"
    assert db.scalar(select(func.count()).select_from(Incident)) == 1
