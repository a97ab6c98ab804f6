"""Importing the rider list a platform sends: every row checked, all stored or none, riders matched by
mobile number so that a second import creates nobody; new riders get a one-time code to sign in with."""

from __future__ import annotations

import io
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.models import AuditEntry, Rider, User
from riderwatch.riders.imports import normalise_phone
from tests.api.helpers import Api, assert_problem

CSV_TYPE = "text/csv"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HEADER = "姓名,手机号,平台,站点\n"


def _csv(*lines: str, header: str = HEADER, encoding: str = "utf-8") -> bytes:
    return (header + "".join(line + "\n" for line in lines)).encode(encoding)


def _send(api: Api, data: bytes, *, who: str = "admin", name: str = "riders.csv", **fields: str) -> Any:
    kind = XLSX_TYPE if name.endswith(".xlsx") else CSV_TYPE
    return api.client.post(
        "/api/v1/riders/import", files={"file": (name, data, kind)}, data=fields, headers=api.auth(who)
    )


def _riders(db: Session) -> int:
    n = db.scalar(select(func.count()).select_from(Rider)) or 0
    db.rollback()
    return n


THREE = (
    "张伟,13800138001,美团,美团金鼎站",
    "李娜,138-0013-8002,meituan,mt-jinding",
    "王芳,+86 138 0013 8003,,mt-jinding",
)


def test_a_list_is_imported_and_a_second_import_creates_nobody(api: Api, client: TestClient, db: Session) -> None:
    before = _riders(db)
    res = _send(api, _csv(*THREE))
    assert res.status_code == 200, res.text
    body = res.json()
    assert (body["created"], body["updated"], body["unchanged"], body["errors"]) == (3, 0, 0, [])
    assert [a["username"] for a in body["accounts"]] == ["13800138001", "13800138002", "13800138003"]
    assert [a["row"] for a in body["accounts"]] == [2, 3, 4]
    assert _riders(db) == before + 3

    new = db.scalar(select(User).where(User.username == "13800138002"))
    assert new is not None and new.display_name == "李娜" and new.phone == "13800138002" and new.must_change_password
    membership = db.get(Rider, new.id)
    assert membership is not None and membership.status == "applied" and membership.station_id is not None
    db.rollback()

    # The rider signs in with the code, must choose a password, and cannot report before activation.
    code = body["accounts"][1]["one_time_code"]
    token = client.post("/api/v1/auth/token", data={"username": "13800138002", "password": code})
    assert token.status_code == 200
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token.json()['access_token']}"}).json()
    assert me["must_change_password"] is True and me["rider_status"] == "applied"

    again = _send(api, _csv(*THREE)).json()
    assert (again["created"], again["updated"], again["unchanged"], again["accounts"]) == (0, 0, 3, [])
    renamed = _send(api, _csv("张伟伟,13800138001,美团,美团金鼎站", *THREE[1:])).json()
    assert (renamed["created"], renamed["updated"], renamed["unchanged"]) == (0, 1, 2)
    assert _riders(db) == before + 3
    [entry] = db.scalars(select(AuditEntry.detail).where(AuditEntry.action == "rider.import").limit(1)).all()
    db.rollback()
    assert entry == {"created": 3, "updated": 0, "unchanged": 0}


def test_english_headers_gb18030_and_a_workbook_with_numbers_are_read(api: Api) -> None:
    data = _csv("赵敏,13900139001,Meituan,mt-jinding", header="Name,Phone,Platform,Station\n", encoding="gb18030")
    assert _send(api, data).json()["created"] == 1

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["姓名", "手机号", "站点"])
    sheet.append(["周杰", 13900139002, "美团金鼎站"])  # a mobile number typed as a number
    buffer = io.BytesIO()
    book.save(buffer)
    res = _send(api, buffer.getvalue(), name="名单.xlsx")
    assert res.status_code == 200, res.text
    assert res.json()["accounts"][0]["username"] == "13900139002"


def test_a_dry_run_counts_and_stores_nothing(api: Api, db: Session) -> None:
    before = _riders(db)
    res = _send(api, _csv(*THREE), dry_run="true")
    assert res.status_code == 200
    assert res.json()["dry_run"] is True and res.json()["created"] == 3 and res.json()["accounts"] == []
    assert _riders(db) == before


def test_bad_rows_are_named_by_their_row_and_nothing_is_stored(api: Api, db: Session) -> None:
    before = _riders(db)
    data = _csv(
        "张伟,13800138001,美团,美团金鼎站",
        "李娜,12345,美团,美团金鼎站",
        "王芳,13800138001,美团,美团金鼎站",
        "刘洋,13800138004,美团,没有这个站",
        "陈静,13800138005,饿了么,美团金鼎站",
        ",13800138006,美团,美团金鼎站",
        "管理员,admin-phone,美团,美团金鼎站",
    )
    problem = assert_problem(_send(api, data), 422)
    assert problem["detail"] == "6 of 7 rows are refused; nothing was imported"
    assert [(e["row"], e["field"]) for e in problem["errors"]] == [
        (3, "phone"),
        (4, "phone"),
        (5, "station"),
        (6, "platform"),
        (7, "name"),
        (8, "phone"),
    ]
    assert "the same mobile number is on row 2" in problem["errors"][1]["reason"]
    assert _riders(db) == before


def test_a_number_that_belongs_to_staff_is_refused(api: Api, db: Session) -> None:
    police = db.scalar(select(User).where(User.username == "police"))
    assert police is not None
    police.phone = "13700137000"
    db.commit()
    problem = assert_problem(_send(api, _csv("冒名,13700137000,美团,美团金鼎站")), 422)
    assert problem["errors"][0]["reason"] == "the mobile number belongs to an account that is not a rider"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "the file is empty"),
        (HEADER.encode(), "lists no rider"),
        ("名字,电话号码\n张三,13800138001\n".encode(), "unknown columns: 名字"),
        ("姓名,手机号\n张三,13800138001\n".encode(), "missing columns: station"),
        (b"\xff\xfe\x00bad", "NUL"),
        (b"PK\x03\x04not really a workbook", "not a valid Excel workbook"),
    ],
)
def test_a_bad_file_gets_a_clear_reason(api: Api, data: bytes, words: str) -> None:
    assert words in str(assert_problem(_send(api, data), 422))


def test_a_huge_upload_is_refused_before_it_is_read(api: Api) -> None:
    res = _send(api, b"x" * (50 * 1024 * 1024))
    assert_problem(res, 413)


def test_a_station_manager_imports_their_own_station_only(api: Api) -> None:
    admin = api.auth("admin")
    res = api.client.post(
        "/api/v1/org/stations", json={"code": "mt-dongyang", "name": "美团东阳站", "platform": "meituan"}, headers=admin
    )
    assert res.status_code == 201, res.text
    problem = assert_problem(_send(api, _csv("张伟,13800138001,美团,美团东阳站"), who="station_manager"), 422)
    assert problem["errors"][0]["reason"] == "'美团东阳站' is not your station"
    assert _send(api, _csv(*THREE), who="station_manager").json()["created"] == 3
    assert_problem(_send(api, _csv(*THREE), who="dispatcher"), 403)


@pytest.mark.parametrize(
    ("typed", "number"),
    [
        ("13800138000", "13800138000"),
        ("138 0013 8000", "13800138000"),
        ("+8613800138000", "13800138000"),
        ("8613800138000", "13800138000"),
        (13800138000.0, "13800138000"),
        ("23800138000", None),
        ("1380013800", None),
    ],
)
def test_mobile_numbers_are_read_as_people_write_them(typed: Any, number: str | None) -> None:
    assert normalise_phone(typed) == number


def test_a_station_manager_moves_nobody_from_another_station(api: Api) -> None:
    admin = api.auth("admin")
    station = {"code": "mt-dongyang", "name": "美团东阳站", "platform": "meituan"}
    assert api.client.post("/api/v1/org/stations", json=station, headers=admin).status_code == 201
    assert _send(api, _csv("张伟,13800138001,美团,美团东阳站")).json()["created"] == 1
    problem = assert_problem(_send(api, _csv("张伟,13800138001,美团,美团金鼎站"), who="station_manager"), 422)
    assert problem["errors"][0]["reason"] == "this rider belongs to another station; an administrator can move them"
    assert _send(api, _csv("张伟,13800138001,美团,美团金鼎站")).json()["updated"] == 1  # an administrator may
