"""The training pages beyond a rider's quiz: an administrator writes a course on the pages (its text, a
question, a question bank from a spreadsheet, a picture); station managers and platforms see where riders
stand (the roster's column, completion per station); a rider is reminded of a refresher in time."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

from riderwatch.infra import clock
from tests.api.helpers import Api
from tests.conftest import TEST_NOW
from tests.factories import image_bytes
from tests.pages import Browser

BANK = "题目,选项A,选项B,答案\n夜间骑行应当？,开灯,关灯,A\n消防通道能停车吗？,能,不能,B\n".encode()
BAD_BANK = "题目,选项A,选项B,答案\n夜间骑行应当？,开灯,关灯,A\n没有答案的题,能,不能,\n".encode()


def _chinese(browser: Callable[[str], Browser], who: str) -> Browser:
    user = browser(who)
    user.client.headers["Accept-Language"] = "zh-CN"
    return user


def test_an_administrator_writes_a_course_on_the_pages(browser: Callable[[str], Browser]) -> None:
    admin = _chinese(browser, "admin")
    assert 'href="/admin/courses"' in admin.client.get("/admin/courses").text
    refused = admin.post("/admin/courses", {"code": "Bad Code", "title": "反诈"})
    assert refused.status_code == 422 and 'data-kind="error"' in refused.text
    made = admin.post(
        "/admin/courses",
        {
            "code": "anti-fraud",
            "title": "反诈骗",
            "body": "不要轻信陌生来电。",
            "questions_per_quiz": "2",
            "pass_mark": "50",
            "attempts_per_day": "3",
            "required": "1",
            "valid_months": "12",
        },
        follow_redirects=False,
    )
    assert made.status_code == 303 and made.headers["location"] == "/admin/courses/anti-fraud?done=created"
    page = admin.client.get(made.headers["location"])
    assert "课程已新建" in page.text and 'data-bank="0"' in page.text

    no_right = admin.post("/admin/courses/anti-fraud/questions", {"text": "问", "option_0": "是", "option_1": "否"})
    assert no_right.status_code == 422 and "请勾选正确选项" in no_right.text and "问" in no_right.text
    added = admin.post(
        "/admin/courses/anti-fraud/questions",
        {"text": "接到“公检法”电话要求转账，应当？", "option_0": "立即转账", "option_1": "挂断并报警", "correct": "1"},
    )
    assert added.status_code == 200 and "题目已加入题库" in added.text and 'data-bank="1"' in added.text

    bad = admin.client.post(
        "/admin/courses/anti-fraud/questions/import",
        data={"csrf_token": admin.csrf, "action": "import"},
        files={"file": ("bank.csv", BAD_BANK, "text/csv")},
    )
    assert bad.status_code == 422 and 'data-testid="question-error" data-row="3"' in bad.text
    assert "请填写正确选项的字母" in bad.text and 'data-bank="1"' in bad.text
    good = admin.client.post(
        "/admin/courses/anti-fraud/questions/import",
        data={"csrf_token": admin.csrf, "action": "import"},
        files={"file": ("bank.csv", BANK, "text/csv")},
    )
    assert good.status_code == 200 and "新增 2 道题" in good.text and 'data-bank="3"' in good.text

    question = re.search(r'id="question-(\d+)"', good.text)
    assert question
    retired = admin.post(f"/admin/courses/anti-fraud/questions/{question.group(1)}/active", {"active": "0"})
    assert "题目已停用" in retired.text and 'data-bank="2"' in retired.text

    picture = admin.client.post(
        "/admin/courses/anti-fraud/materials",
        data={"csrf_token": admin.csrf, "title": "反诈宣传单"},
        files={"file": ("leaflet.png", image_bytes("PNG"), "image/png")},
    )
    assert picture.status_code == 200 and "文件已添加到课程" in picture.text
    not_a_picture = admin.client.post(
        "/admin/courses/anti-fraud/materials",
        data={"csrf_token": admin.csrf, "title": "坏文件"},
        files={"file": ("notes.txt", "随便写写".encode(), "text/plain")},
    )
    assert not_a_picture.status_code == 415 and "既不是图片" in not_a_picture.text

    rider = _chinese(browser, "rider")
    course = rider.client.get("/training/anti-fraud")
    assert "不要轻信陌生来电。" in course.text and 'alt="反诈宣传单"' in course.text
    url = re.search(r'<img src="([^"]+)"', course.text)
    assert url and rider.client.get(url.group(1)).status_code == 200

    saved = admin.post(
        "/admin/courses/anti-fraud",
        {"title": "反诈骗知识", "questions_per_quiz": "2", "pass_mark": "50", "attempts_per_day": "3"},
    )
    assert "已保存" in saved.text
    retired_course = admin.post("/admin/courses/anti-fraud/active", {"active": "0"})
    assert "课程已停用" in retired_course.text
    assert rider.client.get("/training/anti-fraud").status_code == 404
    listed = admin.client.get("/admin/courses").text
    assert "反诈骗知识" in listed and "停用" in listed


def _passed(api: Api, who: str) -> None:
    quiz = api.client.post("/api/v1/courses/legal/quiz", headers=api.auth(who)).json()
    answers = {str(q["id"]): [0] for q in quiz["questions"]}
    res = api.client.post(f"/api/v1/quiz-attempts/{quiz['attempt']}", json={"answers": answers}, headers=api.auth(who))
    assert res.json()["passed"] is True


def _course(api: Api) -> None:
    admin = api.auth("admin")
    body = {"code": "legal", "title": "法律常识", "questions_per_quiz": 1, "valid_months": 12}
    assert api.client.post("/api/v1/courses", json=body, headers=admin).status_code == 201
    optional = {"code": "first-aid", "title": "急救", "required": False}
    assert api.client.post("/api/v1/courses", json=optional, headers=admin).status_code == 201
    bank = {"questions": [{"text": "问", "options": ["对", "错"], "correct": [0]}]}
    assert api.client.post("/api/v1/courses/legal/questions", json=bank, headers=admin).status_code == 201


def test_the_roster_and_completion_show_who_is_trained(api: Api, browser: Callable[[str], Browser]) -> None:
    _course(api)
    _passed(api, "rider")
    manager = _chinese(browser, "station_manager")
    roster = manager.client.get("/riders").text
    trained = dict(
        re.findall(r'data-testid="roster-training" data-passed="(\d)"><span class="label">培训</span>([^<]+)', roster)
    )
    assert trained == {"1": "必修课 1 / 1", "0": "必修课 0 / 1"}, trained
    api_rows = api.client.get("/api/v1/riders", headers=api.auth("platform")).json()["items"]
    assert sorted(r["training"]["passed"] for r in api_rows) == [0, 1]  # rider passed, rider2 did not
    assert {r["training"]["required"] for r in api_rows} == {1}
    assert all("lat" not in r and "position" not in r for r in api_rows)

    completion = manager.client.get("/riders/training")
    assert completion.status_code == 200
    cells = dict(re.findall(r'data-course="([\w-]+)" data-passed="(\d+)"', completion.text))
    assert cells == {"legal": "1", "first-aid": "0"}
    assert "美团金鼎站" in completion.text and "1 / 2" in completion.text

    with clock.frozen(TEST_NOW + timedelta(days=400)):
        later = manager.client.get("/riders").text
        assert "需复训" in later
        assert 'data-passed="0"' in manager.client.get("/riders/training").text


def test_a_rider_is_reminded_of_a_refresher_in_time(api: Api, browser: Callable[[str], Browser]) -> None:
    _course(api)
    _passed(api, "rider")
    rider = _chinese(browser, "rider")
    assert 'data-testid="refresher-due"' not in rider.client.get("/report").text
    with clock.frozen(TEST_NOW + timedelta(days=345)):  # a pass of 12 months runs out within 30 days
        soon = rider.client.get("/report").text
        assert 'data-testid="refresher-due"' in soon and "请在此前完成复训" in soon
        assert 'data-testid="runs-out-soon"' in rider.client.get("/training").text
    with clock.frozen(TEST_NOW + timedelta(days=400)):
        gone = rider.client.get("/report").text
        assert "已于" in gone and "过期" in gone
