"""Everyone changes their own password; a password someone else chose (a reset, a one-time code) must be
replaced at first login; one-time codes run out; signing out everywhere ends every session and token."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.infra import clock
from riderwatch.models import AuditEntry, User
from tests.api.helpers import Api, assert_problem
from tests.conftest import TEST_NOW
from tests.factories import PASSWORD, District, clue_body
from tests.pages import Browser, log_in

NEW = "a-new-and-long-password"


def _user_id(api: Api, username: str) -> int:
    return int(api.client.get("/api/v1/me", headers=api.auth(username)).json()["id"])


def _actions(db: Session, user_id: int) -> list[str]:
    rows = list(
        db.scalars(
            select(AuditEntry.action).where(AuditEntry.object_type == "user", AuditEntry.object_id == str(user_id))
        )
    )
    db.rollback()
    return rows


def test_a_user_changes_their_password_and_every_token_ends(api: Api, client: TestClient, db: Session) -> None:
    old_token = api.auth("police")
    uid = _user_id(api, "police")
    res = api.client.put(
        "/api/v1/me/password", json={"current_password": "wrong-guess", "new_password": NEW}, headers=old_token
    )
    problem = assert_problem(res, 422)
    assert problem["detail"] == "the current password is wrong" and problem["field"] == "current_password"
    for new, words in [("short", "at least 8"), (PASSWORD, "differ from the current")]:
        res = api.client.put(
            "/api/v1/me/password", json={"current_password": PASSWORD, "new_password": new}, headers=old_token
        )
        assert words in assert_problem(res, 422)["detail"]

    res = api.client.put(
        "/api/v1/me/password", json={"current_password": PASSWORD, "new_password": NEW}, headers=old_token
    )
    assert res.status_code == 204, res.text
    assert_problem(api.client.get("/api/v1/me", headers=old_token), 401)
    assert client.post("/api/v1/auth/token", data={"username": "police", "password": PASSWORD}).status_code == 401
    assert client.post("/api/v1/auth/token", data={"username": "police", "password": NEW}).status_code == 200
    actions = _actions(db, uid)
    assert "user.change_password" in actions and "user.login" in actions


def test_guessing_the_current_password_is_limited_as_logins_are(api: Api) -> None:
    headers = api.auth("grid_staff")
    statuses = [
        api.client.put(
            "/api/v1/me/password", json={"current_password": f"guess-{i}", "new_password": NEW}, headers=headers
        ).status_code
        for i in range(7)
    ]
    assert statuses[:5] == [422] * 5 and statuses[-1] == 429


def test_a_reset_password_must_be_replaced_before_anything_else(api: Api, client: TestClient) -> None:
    rider_id = _user_id(api, "rider")
    res = api.client.post(
        f"/api/v1/admin/users/{rider_id}/password", json={"password": "chosen-by-admin"}, headers=api.auth("admin")
    )
    assert res.status_code == 204
    token = client.post("/api/v1/auth/token", data={"username": "rider", "password": "chosen-by-admin"})
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    assert client.get("/api/v1/me", headers=headers).json()["must_change_password"] is True
    problem = assert_problem(client.post("/api/v1/clues", json=clue_body(), headers=headers), 403)
    assert problem["type"] == "/problems/password-change-required"
    res = client.put(
        "/api/v1/me/password", json={"current_password": "chosen-by-admin", "new_password": NEW}, headers=headers
    )
    assert res.status_code == 204
    token = client.post("/api/v1/auth/token", data={"username": "rider", "password": NEW})
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    assert client.get("/api/v1/me", headers=headers).json()["must_change_password"] is False
    assert client.post("/api/v1/clues", json=clue_body(), headers=headers).status_code == 201


def test_a_one_time_code_signs_in_once_chosen_and_runs_out(api: Api, client: TestClient, db: Session) -> None:
    uid = _user_id(api, "patrol")
    res = api.client.post(f"/api/v1/admin/users/{uid}/one-time-code", headers=api.auth("admin"))
    assert res.status_code == 201 and res.headers["cache-control"] == "no-store"
    code = res.json()["code"]
    assert len(code) == 14 and code.count("-") == 2
    assert_problem(api.client.get("/api/v1/me", headers=api.auth("patrol")), 401)  # the old token has ended
    db.expire_all()
    stored = db.get(User, uid)
    assert stored is not None and code not in stored.password_hash and stored.must_change_password
    db.rollback()
    with clock.frozen(TEST_NOW + timedelta(hours=25)):
        res = client.post("/api/v1/auth/token", data={"username": "patrol", "password": code})
        assert "run out" in assert_problem(res, 401)["detail"]
    res = client.post("/api/v1/auth/token", data={"username": "patrol", "password": code})
    assert res.status_code == 200
    [(entry,)] = db.execute(
        select(AuditEntry.detail).where(AuditEntry.action == "user.reset_password", AuditEntry.object_id == str(uid))
    ).all()
    db.rollback()
    assert entry == {"one_time_code": True}


def test_the_pages_walk_a_user_with_a_one_time_code_to_their_own_password(
    app: object, api: Api, browser: Callable[[str], Browser], district: District
) -> None:
    uid = _user_id(api, "dispatcher")
    admin = browser("admin")
    page = admin.post(f"/admin/users/{uid}/one-time-code")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    code = page.text.split('data-testid="one-time-code">')[1].split("<")[0]

    phone = TestClient(app, headers={"Accept-Language": "zh-CN"})  # type: ignore[arg-type]
    user = log_in(phone, "dispatcher", code)
    home = phone.get("/", follow_redirects=False)
    assert home.headers["location"] == "/account"
    desk = phone.get("/desk", follow_redirects=False)
    assert desk.status_code == 303 and desk.headers["location"] == "/account?next=/desk"
    form = phone.get("/account?next=/desk")
    assert 'data-testid="password-forced"' in form.text and "一次性验证码" in form.text

    res = user.post(
        "/account/password",
        {"current_password": code, "new_password": NEW, "confirm_password": NEW + "x", "next": "/desk"},
    )
    assert res.status_code == 422 and "两次输入的新密码不一致" in res.text
    res = user.post(
        "/account/password",
        {"current_password": code, "new_password": NEW, "confirm_password": NEW, "next": "/desk"},
        follow_redirects=False,
    )
    assert res.status_code == 303 and res.headers["location"] == "/account?done=changed&next=%2Fdesk"
    # This browser stays signed in, now free to work.
    assert phone.get("/desk").status_code == 200


def test_signing_out_everywhere_ends_every_session_and_token(
    app: object, api: Api, browser: Callable[[str], Browser]
) -> None:
    token = api.auth("station_manager")
    laptop = browser("station_manager")
    phone = browser("station_manager")
    res = phone.post("/account/sign-out-everywhere", follow_redirects=False)
    assert res.headers["location"] == "/login?done=everywhere"
    assert "signed out everywhere" in phone.client.get("/login?done=everywhere").text
    assert laptop.client.get("/account", follow_redirects=False).headers["location"].startswith("/login")
    assert_problem(api.client.get("/api/v1/me", headers=token), 401)
