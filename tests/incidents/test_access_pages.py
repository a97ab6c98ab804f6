"""The page where the command centre imports incidents from a CSV export (/incidents/import)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.models import Incident
from tests.factories import District
from tests.pages import Browser, log_in, scalar

GOOD = (
    "\ufeffsource,external_ref,category,lat,lon,occurred_at,note\n"
    "110,J1,盗窃,25.4301,119.0102,2026-11-20 21:30,金鼎广场电动车被盗\n"
    "110,J2,fight_dispute,25.4302,119.0103,2026-11-20T22:10:00+08:00,\n"
).encode()
BAD = (
    b"source,external_ref,category,lat,lon,occurred_at\n"
    b"110,K1,theft,25.43,119.01,2026-11-20T21:30:00+08:00\n"
    b"110,K2,ufo,25.43,119.01,2026-11-20T21:30:00+08:00\n"
    b"110,K3,theft,95,119.01,tomorrow\n"
)


def _count(db: Session) -> int:
    return int(scalar(db, select(func.count()).select_from(Incident)))


def _upload(b: Browser, data: bytes, source: str = "") -> Response:
    return b.client.post(
        "/incidents/import",
        data={"csrf_token": b.csrf, "source": source},
        files={"file": ("cases.csv", data, "text/csv")},
        follow_redirects=False,
    )


def test_import_a_file_and_again(browser: Callable[[str], Browser], db: Session) -> None:
    b = browser("dispatcher")
    page = b.client.get("/incidents/import")
    assert page.status_code == 200
    assert 'data-testid="incident-import-form"' in page.text and 'data-testid="incident-sources-empty"' in page.text
    res = _upload(b, GOOD)
    assert res.status_code == 303, res.text
    assert res.headers["location"] == "/incidents/import?created=2&updated=0&unchanged=0"
    done = b.client.get(res.headers["location"])
    assert "Imported: 2 new incidents, 0 updated, 0 unchanged." in done.text
    assert re.search(r'data-testid="incident-source-row" data-source="110" data-count="2"', done.text)
    assert _count(db) == 2
    again = _upload(b, GOOD)
    assert again.headers["location"] == "/incidents/import?created=0&updated=0&unchanged=2"
    assert _count(db) == 2


def test_a_bad_file_lists_every_bad_row_and_stores_nothing(browser: Callable[[str], Browser], db: Session) -> None:
    b = browser("admin")
    res = _upload(b, BAD, source="case-system")
    assert res.status_code == 422
    html = res.text
    assert "Nothing was imported: correct the rows below" in html and "2 of 3 rows are refused" in html
    rows = re.findall(r'data-testid="incident-error" data-row="(\d+)" data-field="(\w*)"', html)
    assert rows == [("3", "category"), ("4", "lat"), ("4", "occurred_at")]
    assert "unknown category &#39;ufo&#39;" in html
    assert 'value="case-system"' in html  # the source typed is kept
    assert _count(db) == 0
    empty = _upload(b, b"")
    assert empty.status_code == 422 and "the file is empty" in empty.text


def test_csrf_is_required(browser: Callable[[str], Browser], db: Session) -> None:
    b = browser("dispatcher")
    res = b.client.post("/incidents/import", files={"file": ("cases.csv", GOOD, "text/csv")})
    assert res.status_code == 403
    assert _count(db) == 0


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("dispatcher", True), ("admin", True), ("police", False), ("patrol", False), ("rider", False)],
)
def test_only_the_command_centre_and_admins(browser: Callable[[str], Browser], role: str, allowed: bool) -> None:
    b = browser(role)
    home = b.client.get("/")
    assert ('data-testid="nav-incidents-import"' in home.text) is allowed
    assert b.client.get("/incidents/import").status_code == (200 if allowed else 403)
    if not allowed:
        assert _upload(b, GOOD).status_code == 403


def test_page_in_chinese(client: TestClient, district: District) -> None:
    b = log_in(client, "dispatcher")
    html = b.client.get("/incidents/import", headers={"Accept-Language": "zh-CN"}).text
    assert "导入警情" in html and "需要更正的行" not in html and "尚未导入任何警情" in html


def test_a_refused_file_is_explained_in_the_readers_language(browser: Callable[[str], Browser], db: Session) -> None:
    b = browser("dispatcher")
    assert (
        "the file has a header but no incidents"
        in _upload(b, b"source,external_ref,category,lat,lon,occurred_at\n").text
    )
    b.client.get("/lang/zh")
    refused = _upload(b, BAD)
    assert refused.status_code == 422
    assert "未导入任何数据：请更正下列各行后重新上传文件。" in refused.text
    assert "3 行中有 2 行未通过检查，未导入任何数据" in refused.text and "rows are refused" not in refused.text
    empty = _upload(b, b"")
    assert empty.status_code == 422
    assert "文件为空；第一行必须是列名：source,external_ref,category,lat,lon,occurred_at" in empty.text
    assert "文件只有列名，没有警情" in _upload(b, b"source,external_ref,category,lat,lon,occurred_at\n").text
    assert _count(db) == 0
