"""Importing incidents from an Excel workbook (.xlsx): the first sheet, date cells or text, all rows or none."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.models import AuditEntry, Incident
from tests.api.helpers import Api, assert_problem
from tests.incidents.workbooks import HEADER, XLSX_TYPE, xlsx, zip_of


def stored(db: Session) -> list[Incident]:
    items = list(db.scalars(select(Incident).order_by(Incident.source, Incident.external_ref)))
    db.commit()  # ends the read at once (SQLite: an open one would block the app); objects stay usable
    return items


def upload(api: Api, data: bytes, name: str = "cases.xlsx", kind: str = XLSX_TYPE, source: str | None = None) -> Any:
    form = {"source": source} if source is not None else None
    files = {"file": (name, data, kind)}
    return api.client.post("/api/v1/incidents/import", files=files, data=form, headers=api.auth("dispatcher"))


def test_date_cells_text_times_and_number_cells(api: Api, db: Session) -> None:
    data = xlsx(
        [
            HEADER,
            ["110", "J1", "盗窃", 25.4301, 119.0102, datetime(2026, 11, 20, 21, 30), "金鼎广场，电动车被盗"],
            ["110", "J2", "fight_dispute", 25.4302, 119.0103, "2026-11-20 22:10", None],
            [None] * 7,  # a blank row between records
            ["case-system", 2026112000017, "theft", "25.4303", "119.0104", "2026-11-20T23:00:00+08:00", ""],
            ["case-system", 1.5e12, "Fire hazard", 25.4304, 119.0105, date(2026, 11, 21), "date only"],
        ]
    )
    res = upload(api, data)
    assert res.status_code == 200, res.text
    assert res.json() == {"rows": 4, "created": 4, "updated": 0, "unchanged": 0}
    items = {i.external_ref: i for i in stored(db)}
    assert set(items) == {"J1", "J2", "2026112000017", "1500000000000"}
    # A date cell has no zone: it is the station's local time, as a time written without an offset.
    assert items["J1"].occurred_at == datetime(2026, 11, 20, 13, 30, tzinfo=UTC)
    assert items["J2"].occurred_at == datetime(2026, 11, 20, 14, 10, tzinfo=UTC)
    assert items["2026112000017"].occurred_at == datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    assert items["1500000000000"].occurred_at == datetime(2026, 11, 20, 16, 0, tzinfo=UTC)  # local midnight
    assert (items["J1"].lat, items["J1"].lon) == (25.4301, 119.0102)
    assert (items["2026112000017"].lat, items["2026112000017"].lon) == (25.4303, 119.0104)
    assert items["J1"].category_code == "theft" and items["1500000000000"].category_code == "fire_hazard"
    assert items["J1"].note == "金鼎广场，电动车被盗" and items["J2"].note == ""
    (entry,) = db.scalars(select(AuditEntry).where(AuditEntry.action == "incident.import"))
    db.commit()
    assert entry.detail["origin"] == "xlsx:cases.xlsx" and entry.detail["created"] == 4


def test_source_from_the_form_and_only_the_first_sheet(api: Api, db: Session) -> None:
    first = [
        ("external_ref", "category", "lat", "lon", "occurred_at"),
        ("K1", "theft", 25.43, 119.01, "2026-11-20 21:30"),
    ]
    second = [("anything",), ("not read", "ufo")]
    data = xlsx(first, second)
    assert_problem(upload(api, data), 422)  # no source column and no source given
    res = upload(api, data, source="case-system")
    assert res.status_code == 200, res.text
    assert [(i.source, i.external_ref) for i in stored(db)] == [("case-system", "K1")]


def test_format_is_told_by_content_first(api: Api, db: Session) -> None:
    good = xlsx([HEADER, ["110", "M1", "theft", 25.43, 119.01, "2026-11-20 21:30"]])
    # A workbook sent under a CSV name and type (as some browsers declare spreadsheets) is still a workbook.
    res = upload(api, good, name="cases.csv", kind="text/csv")
    assert res.status_code == 200, res.text
    assert [i.external_ref for i in stored(db)] == ["M1"]
    # CSV text is CSV whatever it is called, unless its name or type says workbook: then it is refused.
    csv_text = b"source,external_ref,category,lat,lon,occurred_at\n110,M2,theft,25.43,119.01,2026-11-20 21:30\n"
    assert upload(api, csv_text, name="export", kind="application/octet-stream").status_code == 200
    problem = assert_problem(upload(api, csv_text, name="cases.xlsx", kind="text/csv"), 422)
    assert "not a valid Excel workbook" in problem["detail"]
    problem = assert_problem(upload(api, csv_text, name="export", kind=XLSX_TYPE), 422)
    assert "not a valid Excel workbook" in problem["detail"]
    assert [i.external_ref for i in stored(db)] == ["M1", "M2"]


def test_a_bad_row_refuses_the_workbook_and_names_sheet_rows(api: Api, db: Session) -> None:
    data = xlsx(
        [
            HEADER,
            ["110", "B1", "theft", 25.43, 119.01, datetime(2026, 11, 20, 21, 30)],
            [None] * 7,
            ["110", "B2", "ufo", 25.43, "north", datetime(2026, 11, 20, 21, 30)],
            ["110", "B3", "theft", 25.43, 119.01, time(21, 30)],
            ["110", "B4", "theft", 25.43, 119.01, 46000],  # a number, not a date cell
            ["110", "B5", "theft", 25.43, 119.01, "2026-11-20 21:30", None, None, "beside the table"],
            ["110", "B6", "theft", 25.43, 119.01, "2026-11-20 21:30", None, None, None],  # empty cells: fine
        ]
    )
    problem = assert_problem(upload(api, data), 422)
    assert problem["detail"] == "4 of 6 rows are refused; nothing was imported"
    found = [(e["row"], e["field"]) for e in problem["errors"]]
    assert found == [(4, "category"), (4, "lon"), (5, "occurred_at"), (6, "occurred_at"), (7, "")]
    reasons = {(e["row"], e["field"]): e["reason"] for e in problem["errors"]}
    assert "unknown category 'ufo'" in reasons[(4, "category")]
    assert "without a date" in reasons[(5, "occurred_at")]
    assert "9 cells but the header names 7 columns" in reasons[(7, "")]
    assert stored(db) == []


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b"this is not a zip at all", "not a valid Excel workbook"),
        (b"PK\x03\x04" + b"\x00" * 60, "not a valid Excel workbook"),
        (zip_of({"readme.txt": b"hello"}), "not a valid Excel workbook"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504, "Excel 97-2003 (.xls)"),
        (xlsx([]), "first sheet is empty"),
        (xlsx([HEADER]), "has a header but no incidents"),
    ],
    ids=["not-a-zip", "broken-zip", "zip-not-workbook", "xls", "no-rows", "header-only"],
)
def test_unreadable_workbooks(api: Api, db: Session, data: bytes, detail: str) -> None:
    problem = assert_problem(upload(api, data), 422)
    assert detail in problem["detail"]
    assert "errors" not in problem
    assert stored(db) == []


def test_a_missing_column_is_named(api: Api, db: Session) -> None:
    data = xlsx([HEADER[:5], ["110", "C1", "theft", 25.43, 119.01]])
    problem = assert_problem(upload(api, data), 422)
    assert [(e["row"], e["field"]) for e in problem["errors"]] == [(1, "header")]
    assert "missing columns: occurred_at" in problem["errors"][0]["reason"]
    assert stored(db) == []
