"""The riders' path (who changed a rider's standing, when, why), the roster each party may see, and
applying through a station's join link."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from riderwatch.errors import Conflict
from riderwatch.infra import clock
from riderwatch.models import AuditEntry
from riderwatch.riders import path
from tests.api.helpers import Api, assert_problem
from tests.conftest import BACKEND, TEST_NOW


def _rider_id(api: Api, username: str = "rider") -> int:
    return int(api.client.get("/api/v1/me", headers=api.auth(username)).json()["id"])


def test_each_party_lists_the_riders_it_may_see_without_positions(api: Api) -> None:
    for who in ("station_manager", "platform", "dispatcher", "admin"):
        res = api.client.get("/api/v1/riders", headers=api.auth(who))
        assert res.status_code == 200, (who, res.text)
        items = res.json()["items"]
        assert {i["name"] for i in items} == {"rider", "rider2"}
        assert not any(k in items[0] for k in ("lat", "lon", "positions"))
    for who in ("police", "rider"):
        assert_problem(api.client.get("/api/v1/riders", headers=api.auth(who)), 403)
    found = api.client.get("/api/v1/riders", params={"q": "rider2"}, headers=api.auth("dispatcher")).json()
    assert [i["name"] for i in found["items"]] == ["rider2"]


def test_a_station_manager_suspends_a_rider_with_a_reason_kept_in_the_path(api: Api, db: Session) -> None:
    rider = _rider_id(api)
    manager = api.auth("station_manager")
    res = api.client.post(f"/api/v1/riders/{rider}/status", json={"status": "suspended"}, headers=manager)
    assert "say why" in assert_problem(res, 422)["detail"]
    res = api.client.post(
        f"/api/v1/riders/{rider}/status", json={"status": "suspended", "reason": "多次虚假上报"}, headers=manager
    )
    assert res.status_code == 200 and res.json()["status"] == "suspended"
    res = api.client.post(f"/api/v1/riders/{rider}/status", json={"status": "applied"}, headers=manager)
    assert "cannot become" in assert_problem(res, 409)["detail"]
    assert api.client.post(
        f"/api/v1/riders/{rider}/status", json={"status": "active", "reason": "已谈话"}, headers=manager
    ).json() == {"id": rider, "status": "active"}
    steps = api.client.get(f"/api/v1/riders/{rider}", headers=api.auth("dispatcher")).json()["path"]
    assert [(s["from"], s["to"], s["by"], s["reason"]) for s in steps][-2:] == [
        ("active", "suspended", "station_manager", "多次虚假上报"),
        ("suspended", "active", "station_manager", "已谈话"),
    ]
    assert steps[0]["from"] is None and steps[0]["to"] == "active"
    actions = list(db.scalars(select(AuditEntry.action).where(AuditEntry.action == "rider.status")))
    db.rollback()
    assert actions == ["rider.status", "rider.status"]
    assert_problem(
        api.client.post(
            f"/api/v1/riders/{rider}/status", json={"status": "left", "reason": "x"}, headers=api.auth("dispatcher")
        ),
        403,
    )


def test_a_rider_applies_through_a_join_link_and_waits_for_activation(api: Api, client: TestClient) -> None:
    link = api.client.post(
        "/api/v1/join-links",
        json={"station": "mt-jinding", "days": 7, "max_uses": 2},
        headers=api.auth("station_manager"),
    )
    assert link.status_code == 201, link.text
    body = link.json()
    assert body["url"].endswith(f"/join/{body['code']}") and len(body["code"]) == 16
    qr = api.client.get(body["qr_svg"], headers=api.auth("station_manager"))
    assert qr.status_code == 200 and qr.headers["content-type"] == "image/svg+xml" and b"<svg" in qr.content

    form = {"name": "赵六", "phone": "139 0013 9001", "password": "my-own-password-1", "agree": True}
    res = client.post(f"/api/v1/join/{body['code']}", json=form)
    assert res.status_code == 201, res.text
    assert res.json()["username"] == "13900139001" and res.json()["status"] == "applied"
    token = client.post("/api/v1/auth/token", data={"username": "13900139001", "password": "my-own-password-1"})
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token.json()['access_token']}"}).json()
    assert me["rider_status"] == "applied" and me["must_change_password"] is False

    assert "exists already" in assert_problem(client.post(f"/api/v1/join/{body['code']}", json=form), 409)["detail"]
    assert (
        "agree"
        in assert_problem(
            client.post(f"/api/v1/join/{body['code']}", json={**form, "phone": "13900139002", "agree": False}), 422
        )["detail"]
    )
    assert client.post(f"/api/v1/join/{body['code']}", json={**form, "phone": "13900139003"}).status_code == 201
    assert (
        "used up"
        in assert_problem(client.post(f"/api/v1/join/{body['code']}", json={**form, "phone": "13900139004"}), 409)[
            "detail"
        ]
    )
    assert_problem(client.post("/api/v1/join/no-such-code", json={**form, "phone": "13900139005"}), 404)


def test_a_withdrawn_or_run_out_link_admits_nobody(api: Api, client: TestClient) -> None:
    manager = api.auth("station_manager")
    first = api.client.post("/api/v1/join-links", json={"station": "mt-jinding", "days": 1}, headers=manager).json()
    second = api.client.post("/api/v1/join-links", json={"station": "mt-jinding"}, headers=manager).json()
    form = {"name": "钱七", "phone": "13900139011", "password": "my-own-password-1", "agree": True}
    with clock.frozen(TEST_NOW + timedelta(days=2)):
        assert "run out" in assert_problem(client.post(f"/api/v1/join/{first['code']}", json=form), 409)["detail"]
    withdrawn = api.client.post(f"/api/v1/join-links/{second['id']}/withdraw", headers=manager)
    assert withdrawn.json()["withdrawn"] is True
    assert "withdrawn" in assert_problem(client.post(f"/api/v1/join/{second['code']}", json=form), 409)["detail"]
    assert [link["id"] for link in api.client.get("/api/v1/join-links", headers=manager).json()] == [
        second["id"],
        first["id"],
    ]
    other = api.client.post("/api/v1/join-links", json={"station": "nowhere"}, headers=manager)
    assert_problem(other, 422)


def test_a_robot_filling_the_form_is_slowed_down(api: Api, client: TestClient) -> None:
    statuses = [
        client.post(
            "/api/v1/join/no-such-code", json={"name": "x", "phone": "1", "password": "p", "agree": True}
        ).status_code
        for _ in range(12)
    ]
    assert statuses[:10] == [422] * 10 and statuses[-1] == 429


@pytest.mark.skipif(BACKEND != "postgresql", reason="SQLite's write lock lets one application in at a time anyway")
def test_the_last_place_of_a_link_goes_to_one_of_two_applicants_at_the_same_moment(
    api: Api, session_factory: sessionmaker[Session]
) -> None:
    """Two applications through a link with one place left, each in its own transaction, at once: one is
    admitted, the other told the link is used up (on PostgreSQL both used to read "one place left")."""
    manager = api.auth("station_manager")
    link = api.client.post("/api/v1/join-links", json={"station": "mt-jinding", "max_uses": 1}, headers=manager).json()
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def apply(phone: str) -> None:
        session = session_factory()
        try:
            path.open_link(session, link["code"])  # both read the link while it has a place left
            start.wait(timeout=10)
            path.apply_to_join(session, code=link["code"], name="甲", phone=phone, password_hash="x", client="t")
            session.commit()
            outcomes.append("admitted")
        except Conflict as exc:
            session.rollback()
            outcomes.append(exc.detail)
        finally:
            session.close()

    threads = [threading.Thread(target=apply, args=(phone,)) for phone in ("13900139021", "13900139022")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes)[0] == "admitted" and outcomes.count("admitted") == 1, outcomes
    listed = api.client.get("/api/v1/join-links", headers=manager).json()
    assert [x["uses"] for x in listed if x["id"] == link["id"]] == [1]


def test_a_join_link_carries_the_servers_public_address(api: Api, app: FastAPI) -> None:
    manager = api.auth("station_manager")
    link = api.client.post("/api/v1/join-links", json={"station": "mt-jinding"}, headers=manager).json()
    assert link["url"].startswith("http://testserver/join/")  # the address the request came in on
    app.state.settings.public_base_url = "https://riders.zhenhai.example/"
    again = api.client.post("/api/v1/join-links", json={"station": "mt-jinding"}, headers=manager).json()
    assert again["url"] == f"https://riders.zhenhai.example/join/{again['code']}"
