"""Training: courses with a question bank, quizzes drawn from it, results kept, required courses before an
applicant is activated, passes that run out, completion per station."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from riderwatch.infra import clock
from tests.api.helpers import Api, assert_problem
from tests.conftest import TEST_NOW

QUESTIONS = [{"text": f"问题{i}", "options": ["对", "错", "不知道"], "correct": [i % 2]} for i in range(6)] + [
    {"text": "哪些是诈骗？", "multiple": True, "options": ["冒充公检法", "刷单返利", "正常外卖"], "correct": [0, 1]}
]


def _course(api: Api, **extra: Any) -> None:
    body = {
        "code": "legal",
        "title": "法律常识",
        "title_en": "Legal basics",
        "body": "……",
        "questions_per_quiz": 5,
        **extra,
    }
    assert api.client.post("/api/v1/courses", json=body, headers=api.auth("admin")).status_code == 201
    res = api.client.post("/api/v1/courses/legal/questions", json={"questions": QUESTIONS}, headers=api.auth("admin"))
    assert res.status_code == 201 and res.json() == {"bank": 7}


def _right(question: dict[str, Any]) -> list[int]:
    for q in QUESTIONS:
        if q["text"] == question["text"]:
            return list(q["correct"])
    raise AssertionError(question)


def _take(api: Api, who: str = "rider", *, well: bool = True) -> dict[str, Any]:
    quiz = api.client.post("/api/v1/courses/legal/quiz", headers=api.auth(who))
    assert quiz.status_code == 201, quiz.text
    body = quiz.json()
    answers = {str(q["id"]): (_right(q) if well else [2]) for q in body["questions"]}
    res = api.client.post(f"/api/v1/quiz-attempts/{body['attempt']}", json={"answers": answers}, headers=api.auth(who))
    assert res.status_code == 200, res.text
    result: dict[str, Any] = res.json()
    return result


def test_a_rider_takes_the_quiz_and_passes(api: Api) -> None:
    _course(api)
    listed = api.client.get("/api/v1/courses", headers=api.auth("rider")).json()
    assert listed[0]["standing"]["status"] == "new"
    quiz = api.client.post("/api/v1/courses/legal/quiz", headers=api.auth("rider")).json()
    assert len(quiz["questions"]) == 5 and "correct" not in quiz["questions"][0]
    again = api.client.post("/api/v1/courses/legal/quiz", headers=api.auth("rider")).json()
    assert again["attempt"] == quiz["attempt"]  # resumed, not drawn again
    answers = {str(q["id"]): _right(q) for q in quiz["questions"]}
    marked = api.client.post(
        f"/api/v1/quiz-attempts/{quiz['attempt']}", json={"answers": answers}, headers=api.auth("rider")
    )
    assert marked.json()["score"] == 100 and marked.json()["passed"] is True
    assert_problem(
        api.client.post(
            f"/api/v1/quiz-attempts/{quiz['attempt']}", json={"answers": answers}, headers=api.auth("rider")
        ),
        409,
    )
    standing = api.client.get("/api/v1/courses/legal", headers=api.auth("rider")).json()["standing"]
    assert standing["status"] == "passed" and standing["best_score"] == 100


def test_a_failed_quiz_is_kept_and_attempts_are_limited_per_day(api: Api) -> None:
    _course(api, attempts_per_day=2)
    assert _take(api, well=False)["passed"] is False
    assert _take(api, well=False)["score"] == 0
    refused = api.client.post("/api/v1/courses/legal/quiz", headers=api.auth("rider"))
    assert "2 attempts a day" in assert_problem(refused, 429)["detail"]
    assert api.client.get("/api/v1/courses/legal", headers=api.auth("rider")).json()["standing"]["status"] == "failed"


def test_an_applicant_is_activated_only_once_trained(api: Api) -> None:
    _course(api)
    rider = api.client.get("/api/v1/me", headers=api.auth("rider2")).json()["id"]
    manager = api.auth("station_manager")
    api.client.post(f"/api/v1/riders/{rider}/status", json={"status": "left", "reason": "测试"}, headers=manager)
    api.client.post(f"/api/v1/riders/{rider}/status", json={"status": "applied"}, headers=manager)
    refused = api.client.post(f"/api/v1/riders/{rider}/status", json={"status": "active"}, headers=manager)
    assert "法律常识" in assert_problem(refused, 409)["detail"]
    assert _take(api, "rider2")["passed"] is True  # applicants take the courses
    assert (
        api.client.post(f"/api/v1/riders/{rider}/status", json={"status": "active"}, headers=manager).status_code == 200
    )


def test_a_pass_runs_out_and_completion_is_counted(api: Api) -> None:
    _course(api, valid_months=12)
    _take(api)
    completion = api.client.get("/api/v1/training/completion", headers=api.auth("station_manager")).json()
    assert completion == [{"code": "legal", "title": "法律常识", "required": True, "passed": 1, "riders": 2}]
    with clock.frozen(TEST_NOW + timedelta(days=400)):
        standing = api.client.get("/api/v1/courses/legal", headers=api.auth("rider")).json()["standing"]
        assert standing["status"] == "expired"


def test_bad_questions_and_wrong_people_are_refused(api: Api) -> None:
    admin = api.auth("admin")
    assert api.client.post("/api/v1/courses", json={"code": "fraud", "title": "反诈"}, headers=admin).status_code == 201
    for question, words in [
        ({"text": "", "options": ["a", "b"], "correct": [0]}, "no text"),
        ({"text": "q", "options": ["a"], "correct": [0]}, "2 to 8 options"),
        ({"text": "q", "options": ["a", "b"], "correct": [0, 1]}, "exactly one"),
        ({"text": "q", "options": ["a", "b"], "correct": [5]}, "right options"),
    ]:
        res = api.client.post("/api/v1/courses/fraud/questions", json={"questions": [question]}, headers=admin)
        assert words in assert_problem(res, 422)["detail"]
    assert (
        "no questions yet"
        in assert_problem(api.client.post("/api/v1/courses/fraud/quiz", headers=api.auth("rider")), 409)["detail"]
    )
    assert_problem(api.client.post("/api/v1/courses", json={"code": "x", "title": "x"}, headers=api.auth("rider")), 403)
    assert_problem(api.client.post("/api/v1/courses/fraud/quiz", headers=api.auth("dispatcher")), 403)
    assert_problem(api.client.post("/api/v1/courses", json={"code": "fraud", "title": "again"}, headers=admin), 409)
