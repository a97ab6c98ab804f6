"""What an administrator puts in a course besides its text: pictures and PDFs served by the app, and a
question bank imported from a spreadsheet (checked whole, all or nothing, re-import adds nothing), or
questions retired and restored."""

from __future__ import annotations

import io
from typing import Any

import pytest
from openpyxl import Workbook

from tests.api.helpers import Api, assert_problem
from tests.factories import image_bytes

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
BANK_CSV = (
    "题目,选项A,选项B,选项C,答案,类型\n"
    "遇到可疑人员应当？,立即上报,视而不见,自行抓捕,A,单选\n"
    '哪些是诈骗手法？,冒充公检法,刷单返利,正常订单,"A,B",多选\n'
    "消防通道可以停车吗？,可以,不可以,,B,\n"
).encode()


@pytest.fixture
def course(api: Api) -> str:
    body = {"code": "legal", "title": "法律常识", "questions_per_quiz": 2}
    assert api.client.post("/api/v1/courses", json=body, headers=api.auth("admin")).status_code == 201
    return "legal"


def _import(api: Api, data: bytes, name: str = "bank.csv", **form: str) -> Any:
    return api.client.post(
        "/api/v1/courses/legal/questions/import",
        files={"file": (name, data, "text/csv")},
        data=form,
        headers=api.auth("admin"),
    )


def _bank(api: Api) -> list[dict[str, Any]]:
    res = api.client.get("/api/v1/courses/legal/questions", headers=api.auth("admin"))
    assert res.status_code == 200
    items: list[dict[str, Any]] = res.json()["items"]
    return items


def test_a_question_bank_is_checked_then_imported_once(api: Api, course: str) -> None:
    checked = _import(api, BANK_CSV, dry_run="true")
    assert checked.status_code == 200, checked.text
    assert checked.json() | {"bank": None} == {"dry_run": True, "added": 3, "unchanged": 0, "bank": None, "errors": []}
    assert _bank(api) == []  # a check stores nothing

    imported = _import(api, BANK_CSV).json()
    assert (imported["added"], imported["bank"]) == (3, 3)
    bank = _bank(api)
    assert [q["correct"] for q in bank] == [[0], [0, 1], [1]]
    assert [q["multiple"] for q in bank] == [False, True, False]
    assert [len(q["options"]) for q in bank] == [3, 3, 2]  # an empty option C is no option

    again = _import(api, BANK_CSV).json()
    assert (again["added"], again["unchanged"], again["bank"]) == (0, 3, 3)
    audit = api.client.get("/api/v1/admin/audit", params={"action": "course.questions"}, headers=api.auth("admin"))
    assert len(audit.json()["items"]) == 1  # the second import changed nothing


def test_an_excel_bank_with_english_headers(api: Api, course: str) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["question", "question_en", "A", "B", "answer"])
    sheet.append(["夜间骑行应？", "At night you should?", "开灯", "关灯", "a"])
    buf = io.BytesIO()
    book.save(buf)
    res = _import(api, buf.getvalue(), name="bank.xlsx")
    assert res.status_code == 200, res.text
    [question] = _bank(api)
    assert question["text_en"] == "At night you should?" and question["correct"] == [0]


def test_bad_rows_are_named_and_nothing_is_added(api: Api, course: str) -> None:
    data = (
        "题目,选项A,选项B,选项C,答案\n"
        "好题,对,错,,A\n"
        ",对,错,,A\n"  # row 3: no text
        "缺答案,对,错,,\n"  # row 4
        "答案无选项,对,错,,C\n"  # row 5: C is empty
        "单选多答,对,错,也对,AC\n"  # row 6: fine (two letters: multiple choice)
        "好题,对,错,,B\n"  # row 7: the same as row 2
        "有空缺,对,,错,A\n"  # row 8: a gap at B
    ).encode()
    body = assert_problem(_import(api, data), 422)
    rows = sorted({e["row"] for e in body["errors"]})
    assert rows == [3, 4, 5, 7, 8], body["errors"]
    assert "5 of 7 rows" in body["detail"]
    assert _bank(api) == []


def test_a_header_without_the_needed_columns(api: Api, course: str) -> None:
    body = assert_problem(_import(api, "名字,电话\n张三,1\n".encode()), 422)
    reasons = " ".join(e["reason"] for e in body["errors"])
    assert "题目" in reasons and "答案" in reasons and "option" in reasons
    assert_problem(_import(api, b""), 422)
    assert_problem(_import(api, "题目,选项A,选项B,答案\n".encode()), 422)
    single = assert_problem(_import(api, "题目,选项A,选项B,答案,类型\n问,是,否,AB,单选\n".encode()), 422)
    assert "exactly one" in single["errors"][0]["reason"]


def test_a_retired_question_is_no_longer_drawn(api: Api, course: str) -> None:
    _import(api, BANK_CSV)
    first = _bank(api)[0]
    admin = api.auth("admin")
    res = api.client.patch(f"/api/v1/courses/legal/questions/{first['id']}", json={"active": False}, headers=admin)
    assert res.status_code == 200 and res.json()["active"] is False
    assert api.client.get("/api/v1/courses/legal", headers=admin).json()["questions"] == 2
    for _ in range(3):
        quiz = api.client.post("/api/v1/courses/legal/quiz", headers=api.auth("rider")).json()
        assert first["id"] not in [q["id"] for q in quiz["questions"]]
        answers = {str(q["id"]): [0] for q in quiz["questions"]}
        api.client.post(
            f"/api/v1/quiz-attempts/{quiz['attempt']}", json={"answers": answers}, headers=api.auth("rider")
        )
    back = api.client.patch(f"/api/v1/courses/legal/questions/{first['id']}", json={"active": True}, headers=admin)
    assert back.json()["active"] is True
    assert_problem(api.client.patch("/api/v1/courses/legal/questions/999", json={"active": True}, headers=admin), 404)


def _upload(api: Api, data: bytes, name: str, title: str = "标志", ctype: str = "application/octet-stream") -> Any:
    return api.client.post(
        "/api/v1/courses/legal/materials",
        files={"file": (name, data, ctype)},
        data={"title": title, "title_en": "Sign"},
        headers=api.auth("admin"),
    )


def test_pictures_and_pdfs_are_served_to_riders(api: Api, course: str) -> None:
    png = image_bytes("PNG")
    picture = _upload(api, png, "sign.png")
    assert picture.status_code == 201, picture.text
    assert picture.json()["content_type"] == "image/png"
    pdf = _upload(api, PDF, "law.pdf", title="治安管理处罚法")
    assert pdf.status_code == 201 and pdf.json()["content_type"] == "application/pdf"

    listed = api.client.get("/api/v1/courses/legal", headers=api.auth("rider")).json()["materials"]
    assert [m["title"] for m in listed] == ["标志", "治安管理处罚法"]
    served = api.client.get(listed[0]["url"], headers=api.auth("rider"))
    assert served.status_code == 200 and served.content == png and served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    served_pdf = api.client.get(listed[1]["url"], headers=api.auth("rider"))
    assert served_pdf.content == PDF and served_pdf.headers["content-type"] == "application/pdf"

    retired = api.client.patch(listed[0]["url"], json={"active": False}, headers=api.auth("admin"))
    assert retired.status_code == 200
    assert_problem(api.client.get(listed[0]["url"], headers=api.auth("rider")), 404)
    assert api.client.get(listed[0]["url"], headers=api.auth("admin")).status_code == 200  # kept
    assert len(api.client.get("/api/v1/courses/legal", headers=api.auth("rider")).json()["materials"]) == 1


@pytest.mark.parametrize(
    ("data", "status", "words"),
    [
        (b"just some text", 415, "neither a picture"),
        (PDF[:-7], 422, "not a whole PDF"),
        (b"\x89PNG\r\n\x1a\n" + b"broken", 415, "could not be decoded"),
        (b"", 422, "is empty"),
    ],
)
def test_a_bad_file_is_refused_and_nothing_is_stored(
    api: Api, course: str, data: bytes, status: int, words: str
) -> None:
    body = assert_problem(_upload(api, data, "file.bin"), status)
    assert words in body["detail"]
    assert api.client.get("/api/v1/courses/legal", headers=api.auth("admin")).json()["materials"] == []


def test_a_file_over_the_limit_is_refused_at_the_door(api: Api, course: str) -> None:
    res = _upload(api, PDF + b"0" * (21 * 1024 * 1024), "big.pdf")
    assert_problem(res, 413)
    assert_problem(_upload(api, image_bytes("PNG"), "sign.png", title=" "), 422)
