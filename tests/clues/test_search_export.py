"""Finding clues by number, words or address (`GET /api/v1/clues?q=`), and the list as a spreadsheet
(`GET /api/v1/clues/export`): the same clues as the list for the same filters, nobody named who reported."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.infra.clock import utcnow
from riderwatch.models import AuditEntry
from tests.api.helpers import Api, assert_problem


def _ids(api: Api, who: str = "dispatcher", **params: str) -> list[int]:
    res = api.client.get("/api/v1/clues", params=params, headers=api.auth(who))
    assert res.status_code == 200, res.text
    return sorted(c["id"] for c in res.json()["items"])


def test_words_numbers_and_addresses_find_clues(api: Api) -> None:
    battery = api.report(description="楼道堆放电动车电池充电", address="金鼎广场3号楼")
    theft = api.report(description="电动车被盗，车主在找", address="正荣财富中心")
    fight = api.report(description="Two men fighting outside the KTV", address="")
    assert _ids(api, q="电动车") == sorted([battery, theft])
    assert _ids(api, q="电动车 广场") == [battery]  # every word must match
    assert _ids(api, q="财富") == [theft]
    assert _ids(api, q="ktv FIGHTING") == [fight]  # any case
    assert _ids(api, q=f"#{fight}") == [fight] and _ids(api, q=str(theft)) == [theft]
    assert _ids(api, q="%") == [] and _ids(api, q="_") == []  # wildcards are plain characters
    assert _ids(api, "rider", q="电动车") == sorted([battery, theft])  # within what the caller may see
    assert _ids(api, "rider2", q="电动车") == []
    assert_problem(api.client.get("/api/v1/clues", params={"q": "x" * 201}, headers=api.auth("dispatcher")), 422)


def test_the_export_holds_the_lists_clues_in_the_readers_language(api: Api, db: Session) -> None:
    first = api.report(description='=HYPERLINK("http://evil")', anonymous=True)
    second = api.report(description="路灯不亮", urgent=True)
    api.ok("dispatcher", second, "verify")
    headers = {**api.auth("dispatcher"), "Accept-Language": "zh-CN"}
    res = api.client.get("/api/v1/clues/export", params={"format": "csv"}, headers=headers)
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/csv")
    assert res.headers["content-disposition"].startswith('attachment; filename="clues-')
    assert res.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(res.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["编号", "类别", "状态", "紧急"]
    by_id = {int(r[0]): r for r in rows[1:]}
    assert set(by_id) == {first, second} == set(_ids(api))
    assert by_id[second][2] == "已核实" and by_id[second][3] == "是"
    assert by_id[first][13].startswith("'=")  # a formula typed by a reporter stays text
    assert by_id[first][18] == "是"  # anonymous, and nobody is named in any column
    assert not any("rider" in cell for row in rows for cell in row)

    only_verified = api.client.get(
        "/api/v1/clues/export", params={"format": "xlsx", "status": "verified"}, headers=headers
    )
    assert only_verified.status_code == 200
    sheet = load_workbook(io.BytesIO(only_verified.content)).active
    assert sheet is not None and sheet.freeze_panes == "A2"
    values = list(sheet.iter_rows(values_only=True))
    assert values[0][0] == "编号" and [v[0] for v in values[1:]] == [second]

    [entry] = db.scalars(select(AuditEntry.detail).where(AuditEntry.action == "clue.export").limit(1)).all()
    db.rollback()
    assert entry["rows"] == 2 and entry["format"] == "csv"


def test_a_rider_exports_their_own_clues_and_sees_handlers_by_role_only(api: Api) -> None:
    clue = api.report()
    api.ok("dispatcher", clue, "verify")
    api.ok("dispatcher", clue, "dispatch", {"assignee": "police"})
    res = api.client.get("/api/v1/clues/export", headers={**api.auth("rider"), "Accept-Language": "en"})
    rows = list(csv.reader(io.StringIO(res.content.decode("utf-8-sig"))))
    assert rows[0][0] == "Number" and [int(r[0]) for r in rows[1:]] == [clue]
    assert rows[1][14] == "Community police"
    empty = api.client.get("/api/v1/clues/export", headers={**api.auth("rider2"), "Accept-Language": "en"})
    assert empty.content.decode("utf-8-sig").strip().splitlines() == [",".join(rows[0])]
    assert_problem(api.client.get("/api/v1/clues/export", headers=api.auth("platform")), 403)
    assert_problem(api.client.get("/api/v1/clues/export?format=pdf", headers=api.auth("dispatcher")), 422)


def test_an_export_over_a_period_is_audited_with_its_dates(api: Api, db: Session) -> None:
    """A period's export (the figures page links one) writes its dates into the audit entry as text."""
    api.report("rider")
    start, end = (utcnow() - timedelta(days=7)).isoformat(), (utcnow() + timedelta(days=1)).isoformat()
    for fmt in ("xlsx", "csv"):
        res = api.client.get(
            "/api/v1/clues/export",
            params={"format": fmt, "observed_from": start, "observed_to": end},
            headers=api.auth("dispatcher"),
        )
        assert res.status_code == 200, res.text
    details = db.scalars(select(AuditEntry.detail).where(AuditEntry.action == "clue.export")).all()
    assert len(details) == 2 and all(isinstance(d["filters"]["observed_from"], str) for d in details), details
