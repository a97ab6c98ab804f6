"""A rider's training pages: the courses and where they stand, the material, the quiz, the result and
the certificate, in Chinese."""

from __future__ import annotations

import re
from collections.abc import Callable

from tests.api.helpers import Api
from tests.pages import Browser

BANK = [{"text": f"第{i}题", "options": ["对", "错"], "correct": [0]} for i in range(4)]


def test_a_rider_reads_takes_the_quiz_and_gets_a_certificate(api: Api, browser: Callable[[str], Browser]) -> None:
    admin = api.auth("admin")
    body = {
        "code": "legal",
        "title": "法律常识",
        "body": "发现线索及时上报。",
        "questions_per_quiz": 4,
        "valid_months": 12,
    }
    assert api.client.post("/api/v1/courses", json=body, headers=admin).status_code == 201
    assert (
        api.client.post("/api/v1/courses/legal/questions", json={"questions": BANK}, headers=admin).status_code == 201
    )

    rider = browser("rider")
    rider.client.headers["Accept-Language"] = "zh-CN"
    listed = rider.client.get("/training")
    assert listed.status_code == 200 and "法律常识" in listed.text and "未参加" in listed.text
    assert 'href="/training"' in rider.client.get("/my/reports").text
    course = rider.client.get("/training/legal")
    assert "发现线索及时上报。" in course.text
    quiz = rider.post("/training/legal/quiz")
    assert quiz.status_code == 200 and quiz.text.count('data-testid="question"') == 4
    attempt = re.search(r'action="/training/attempts/(\d+)"', quiz.text)
    assert attempt
    names = sorted(set(re.findall(r'name="(q\d+)"', quiz.text)))
    wrong = rider.post(f"/training/attempts/{attempt.group(1)}", {name: "1" for name in names})
    assert 'data-passed="no"' in wrong.text and "未通过" in wrong.text
    again = rider.post("/training/legal/quiz")
    attempt = re.search(r'action="/training/attempts/(\d+)"', again.text)
    assert attempt
    names = sorted(set(re.findall(r'name="(q\d+)"', again.text)))
    right = rider.post(f"/training/attempts/{attempt.group(1)}", {name: "0" for name in names})
    assert 'data-passed="yes"' in right.text and "已通过" in right.text
    certificate = rider.client.get("/training/legal/certificate")
    assert certificate.status_code == 200 and "培训合格证书" in certificate.text and "法律常识" in certificate.text
    assert "已通过" in rider.client.get("/training").text
    assert browser("rider2").client.get("/training/legal/certificate").status_code == 404
    assert browser("dispatcher").client.get("/training").status_code == 403
