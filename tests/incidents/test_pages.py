"""The import page (/incidents/import) with Excel workbooks and re-imports that update cases."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.models import Incident
from tests.factories import District
from tests.incidents.workbooks import HEADER, XLSX_TYPE, xlsx
from tests.pages import Browser, log_in

ROWS: list[list[Any]] = [
    ["110", "W1", "盗窃", 25.4301, 119.0102, datetime(2026, 11, 20, 21, 30), "金鼎广场电动车被盗"],
    ["110", "W2", "theft", 25.4302, 119.0103, "2026-11-20 22:10", None],
]


@pytest.fixture
def dispatcher(app: Any, district: District) -> Iterator[Browser]:
    """The dispatcher's browser, asking for English pages unless a request says otherwise."""
    with TestClient(app, headers={"Accept-Language": "en"}) as client:
        yield log_in(client, "dispatcher")


def _upload(b: Browser, data: bytes, name: str = "cases.xlsx", kind: str = XLSX_TYPE) -> Response:
    return b.client.post(
        "/incidents/import",
        data={"csrf_token": b.csrf, "source": ""},
        files={"file": (name, data, kind)},
        follow_redirects=False,
    )


def _categories(db: Session) -> dict[str, str]:
    found = {i.external_ref: i.category_code for i in db.scalars(select(Incident))}
    db.commit()
    return found


def test_a_workbook_then_a_changed_one(dispatcher: Browser, db: Session) -> None:
    page = dispatcher.client.get("/incidents/import")
    assert 'accept=".csv,.xlsx,' in page.text and "File (CSV or Excel .xlsx)" in page.text
    res = _upload(dispatcher, xlsx([HEADER, *ROWS]))
    assert res.status_code == 303, res.text
    assert res.headers["location"] == "/incidents/import?created=2&updated=0&unchanged=0"
    done = dispatcher.client.get(res.headers["location"])
    assert "Imported: 2 new incidents, 0 updated, 0 unchanged." in done.text
    assert re.search(r'data-testid="incident-source-row" data-source="110" data-count="2"', done.text)
    changed = [list(r) for r in ROWS]
    changed[1][2] = "fire_hazard"
    again = _upload(dispatcher, xlsx([HEADER, *changed]))
    assert again.headers["location"] == "/incidents/import?created=0&updated=1&unchanged=1"
    assert "Imported: 0 new incidents, 1 updated, 1 unchanged." in dispatcher.client.get(again.headers["location"]).text
    assert _categories(db) == {"W1": "theft", "W2": "fire_hazard"}


def test_bad_workbooks_store_nothing_and_say_why(dispatcher: Browser, db: Session) -> None:
    bad = [list(r) for r in ROWS]
    bad[1][3] = "north"
    res = _upload(dispatcher, xlsx([HEADER, *bad]))
    assert res.status_code == 422
    assert re.findall(r'data-testid="incident-error" data-row="(\d+)" data-field="(\w*)"', res.text) == [("3", "lat")]
    assert "1 of 2 rows are refused" in res.text
    fake = _upload(dispatcher, b"not a workbook", name="cases.xlsx")
    assert fake.status_code == 422
    assert "Nothing was imported." in fake.text and "not a valid Excel workbook (.xlsx)" in fake.text
    old = _upload(dispatcher, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504), name="cases.xls")
    assert old.status_code == 422 and "Excel 97-2003 (.xls)" in old.text
    assert _categories(db) == {}


def test_counts_in_chinese(dispatcher: Browser) -> None:
    html = dispatcher.client.get(
        "/incidents/import?created=3&updated=1&unchanged=2", headers={"Accept-Language": "zh-CN"}
    ).text
    assert "导入完成：新增 3 条警情，更新 1 条，2 条无变化。" in html
    assert "文件（CSV 或 Excel .xlsx）" in html and "日期单元格" in html
