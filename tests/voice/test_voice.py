"""Riders' voice: feedback routed to the community officer with a deadline, answered, rated; anonymity
toward the police; the command centre assigns; visits with riders and follow-up actions; satisfaction."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.infra.clock import utcnow
from riderwatch.models import Notice, Visit
from tests.api.helpers import Api
from tests.factories import District

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _send(api: Api, **body: object) -> dict[str, object]:
    values = {"kind": "complaint", "body": "派出所门口不让停电动车，送餐很难"} | body
    res = api.client.post("/api/v1/me/feedback", json=values, headers=api.auth("rider"))
    assert res.status_code == 201, res.text
    return dict(res.json())


def test_feedback_goes_to_the_community_officer_is_answered_and_rated(
    api: Api, district: District, db: Session
) -> None:
    sent = _send(api)
    due = utcnow() + timedelta(days=3)
    assert abs((due - __import__("datetime").datetime.fromisoformat(str(sent["due_at"]))).total_seconds()) < 5
    police = api.client.get("/api/v1/feedback", headers=api.auth("police")).json()["items"]
    assert [(f["id"], f["rider"]) for f in police] == [(sent["id"], "rider")]
    assert api.client.get("/api/v1/feedback", headers=api.auth("police2")).json()["items"] == []
    assert (
        api.client.post(
            f"/api/v1/feedback/{sent['id']}/answer", json={"answer": "x"}, headers=api.auth("police2")
        ).status_code
        == 404
    )
    told = db.scalar(select(func.count()).select_from(Notice).where(Notice.kind == "feedback_assigned"))
    assert told == 1
    db.rollback()
    answered = api.client.post(
        f"/api/v1/feedback/{sent['id']}/answer", json={"answer": "已协调划出临时停车区"}, headers=api.auth("police")
    )
    assert answered.status_code == 200 and answered.json()["status"] == "answered"
    assert (
        api.client.post(
            f"/api/v1/feedback/{sent['id']}/answer", json={"answer": "再答"}, headers=api.auth("dispatcher")
        ).status_code
        == 409
    )
    mine = api.client.get("/api/v1/me/feedback", headers=api.auth("rider")).json()["items"]
    assert mine[0]["answer"] == "已协调划出临时停车区" and "rider" not in mine[0]
    rated = api.client.post(f"/api/v1/me/feedback/{sent['id']}/rating", json={"rating": 5}, headers=api.auth("rider"))
    assert rated.status_code == 200 and rated.json()["rating"] == 5
    assert (
        api.client.post(
            f"/api/v1/me/feedback/{sent['id']}/rating", json={"rating": 1}, headers=api.auth("rider")
        ).status_code
        == 409
    )
    assert (
        api.client.post(
            f"/api/v1/me/feedback/{sent['id']}/rating", json={"rating": 1}, headers=api.auth("rider2")
        ).status_code
        == 404
    )
    months = api.client.get("/api/v1/voice/satisfaction", headers=api.auth("dispatcher")).json()["months"]
    this = months[-1]
    assert (this["received"], this["answered"], this["in_time"], this["rating"]) == (1, 1, 1, 5.0)


def test_anonymous_feedback_names_nobody_to_the_police(api: Api, district: District, db: Session) -> None:
    district.users["rider"].display_name = "王小明"
    db.commit()
    sent = _send(api, anonymous=True, kind="suggestion")
    for who in ("police", "dispatcher"):
        (item,) = api.client.get("/api/v1/feedback", params={"show": "all"}, headers=api.auth(who)).json()["items"]
        assert item["rider"] is None
        page = api.client.get(f"/feedback/desk/{sent['id']}", headers=api.auth(who))
        assert page.status_code == 200 and "王小明" not in page.text
    named = _send(api, kind="suggestion")
    (item,) = [
        f
        for f in api.client.get("/api/v1/feedback", headers=api.auth("police")).json()["items"]
        if f["id"] == named["id"]
    ]
    assert item["rider"] == "王小明"


def test_the_command_centre_assigns_feedback_nobody_could_be_found_for(
    api: Api, district: District, db: Session
) -> None:
    district.station.lat, district.station.lon = 0.0, 0.0  # a station outside every community
    db.commit()
    sent = _send(api)
    assert (
        api.client.get("/api/v1/feedback", params={"show": "unassigned"}, headers=api.auth("dispatcher")).json()[
            "items"
        ][0]["id"]
        == sent["id"]
    )
    assert (
        api.client.post(
            f"/api/v1/feedback/{sent['id']}/assign", json={"officer": "police2"}, headers=api.auth("police")
        ).status_code
        == 403
    )
    assigned = api.client.post(
        f"/api/v1/feedback/{sent['id']}/assign", json={"officer": "police2"}, headers=api.auth("dispatcher")
    )
    assert assigned.status_code == 200
    assert [f["id"] for f in api.client.get("/api/v1/feedback", headers=api.auth("police2")).json()["items"]] == [
        sent["id"]
    ]


def test_visits_with_riders_and_follow_up_actions(api: Api, district: District, db: Session) -> None:
    today = utcnow().astimezone(SHANGHAI).date()
    body = {
        "kind": "condolence",
        "held_on": today.isoformat(),
        "place": "美团金鼎站",
        "station": "mt-jinding",
        "riders": ["rider", "rider2"],
        "notes": "骑手反映夜间路灯不亮",
        "actions": [{"text": "联系城管修路灯", "owner": "police", "due_on": (today + timedelta(days=7)).isoformat()}],
    }
    bad = api.client.post("/api/v1/visits", json=body | {"riders": ["rider", "nobody"]}, headers=api.auth("police"))
    assert bad.status_code == 422 and "nobody" in bad.json()["detail"]
    future = api.client.post(
        "/api/v1/visits", json=body | {"held_on": (today + timedelta(days=1)).isoformat()}, headers=api.auth("police")
    )
    assert future.status_code == 422
    assert db.scalar(select(func.count()).select_from(Visit)) == 0
    db.rollback()
    made = api.client.post("/api/v1/visits", json=body, headers=api.auth("police"))
    assert made.status_code == 201, made.text
    listed = api.client.get("/api/v1/visits", headers=api.auth("station_manager")).json()["items"]
    assert [(v["kind"], sorted(v["riders"])) for v in listed] == [("condolence", ["rider", "rider2"])]
    action = listed[0]["actions"][0]
    assert api.client.post(f"/api/v1/visit-actions/{action['id']}/done", headers=api.auth("police2")).status_code == 403
    assert api.client.post(f"/api/v1/visit-actions/{action['id']}/done", headers=api.auth("police")).status_code == 200
    assert api.client.get("/api/v1/visits", headers=api.auth("rider")).status_code == 403
    months = api.client.get("/api/v1/voice/satisfaction", headers=api.auth("admin")).json()["months"]
    assert (months[-1]["visits"], months[-1]["riders"]) == (1, 2)
