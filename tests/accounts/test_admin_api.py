"""Administration through /api/v1/admin: the same rules as the pages, problem+json for bad input."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.models import ApiKey, AuditEntry, User
from tests.api.helpers import Api, assert_problem
from tests.factories import PASSWORD

NEW_PASSWORD = "another-good-password"


def _counts(db: Session) -> tuple[int, int, int]:
    values = tuple(int(db.scalar(select(func.count()).select_from(m)) or 0) for m in (User, ApiKey, AuditEntry))
    db.rollback()
    return values  # type: ignore[return-value]


def _actions(db: Session, object_id: int) -> list[str]:
    rows = list(
        db.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.object_type == "user", AuditEntry.object_id == str(object_id))
            .order_by(AuditEntry.id)
        )
    )
    db.rollback()
    return rows


def test_create_edit_deactivate_and_reset_through_the_api(api: Api, db: Session) -> None:
    admin = api.auth("admin")
    res = api.client.post(
        "/api/v1/admin/users",
        json={"username": "grid2", "role": "grid_staff", "password": PASSWORD, "grid": "jinding-w", "phone": "0594-1"},
        headers=admin,
    )
    assert res.status_code == 201, res.text
    created = res.json()
    assert (created["role"], created["grid"], created["community"], created["is_active"]) == (
        "grid_staff",
        "jinding-w",
        None,
        True,
    )
    user_id = created["id"]
    headers = api.auth("grid2")
    assert api.client.get("/api/v1/me", headers=headers).json()["grid_id"] is not None

    # PATCH changes only what is sent; null removes a link.
    res = api.client.patch(f"/api/v1/admin/users/{user_id}", json={"grid": None}, headers=admin)
    assert res.status_code == 200, res.text
    assert res.json()["grid"] is None and res.json()["phone"] == "0594-1"

    res = api.client.put(f"/api/v1/admin/users/{user_id}/active", json={"active": False}, headers=admin)
    assert res.status_code == 200 and res.json()["is_active"] is False
    assert_problem(api.client.get("/api/v1/me", headers=headers), 401)
    res = api.client.post("/api/v1/auth/token", data={"username": "grid2", "password": PASSWORD})
    assert_problem(res, 401)

    assert api.client.put(f"/api/v1/admin/users/{user_id}/active", json={"active": True}, headers=admin).is_success
    res = api.client.post(f"/api/v1/admin/users/{user_id}/password", json={"password": NEW_PASSWORD}, headers=admin)
    assert res.status_code == 204
    assert_problem(api.client.post("/api/v1/auth/token", data={"username": "grid2", "password": PASSWORD}), 401)
    assert api.client.post("/api/v1/auth/token", data={"username": "grid2", "password": NEW_PASSWORD}).is_success

    assert _actions(db, user_id) == [
        "user.create",
        "user.login",
        "user.update",
        "user.deactivate",
        "user.reactivate",
        "user.reset_password",
        "user.login",
    ]
    listed = api.client.get("/api/v1/admin/users", params={"role": "grid_staff"}, headers=admin).json()
    assert {u["username"] for u in listed["items"]} == {"grid_staff", "grid2"} and listed["total"] == 2


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"username": "x", "role": "rider"}, 422),  # no password
        ({"username": "x", "role": "rider", "password": "short"}, 422),
        ({"username": "x", "role": "chief", "password": PASSWORD}, 422),
        ({"username": "x y", "role": "rider", "password": PASSWORD}, 422),
        ({"username": "x", "role": "rider", "password": PASSWORD, "community": "jinding"}, 422),
        ({"username": "x", "role": "rider", "password": PASSWORD, "station": "nowhere"}, 422),
        ({"username": "x", "role": "rider", "password": PASSWORD, "rider_status": "retired"}, 422),
        ({"username": "x\x00", "role": "rider", "password": PASSWORD}, 422),
        ({"username": "x", "role": "rider", "password": PASSWORD, "is_active": False}, 422),
        ({"username": "rider", "role": "rider", "password": PASSWORD}, 409),
    ],
)
def test_bad_user_bodies_are_refused_and_store_nothing(
    api: Api, db: Session, body: dict[str, Any], status: int
) -> None:
    before = _counts(db)
    res = api.client.post("/api/v1/admin/users", json=body, headers=api.auth("admin"))
    assert_problem(res, status)
    assert _counts(db) == before


def test_bad_edits_are_refused_and_change_nothing(api: Api, db: Session) -> None:
    admin = api.auth("admin")
    rider = api.client.get("/api/v1/admin/users", params={"q": "rider2"}, headers=admin).json()["items"][0]
    before = _counts(db)
    for body in (
        {"display_name": ""},
        {"grid": "jinding-w"},  # a rider has no grid
        {"rider_status": "gone"},
        {"role": "admin"},  # roles are not edited
        {"phone": "not a phone"},
    ):
        assert_problem(api.client.patch(f"/api/v1/admin/users/{rider['id']}", json=body, headers=admin), 422)
    assert api.client.get(f"/api/v1/admin/users/{rider['id']}", headers=admin).json() == rider
    assert_problem(api.client.get("/api/v1/admin/users/999999", headers=admin), 404)
    me = api.client.get("/api/v1/me", headers=admin).json()["id"]
    assert_problem(api.client.put(f"/api/v1/admin/users/{me}/active", json={"active": False}, headers=admin), 409)
    assert_problem(
        api.client.post(f"/api/v1/admin/users/{me}/password", json={"password": "short"}, headers=admin), 422
    )
    assert _counts(db) == before


def test_keys_through_the_api(api: Api, db: Session) -> None:
    admin = api.auth("admin")
    res = api.client.post("/api/v1/admin/api-keys", json={"name": "hotline"}, headers=admin)
    assert res.status_code == 201 and res.headers["cache-control"] == "no-store"
    issued = res.json()
    assert issued["key"].startswith("rw_") and issued["revoked_at"] is None
    listed = api.client.get("/api/v1/admin/api-keys", headers=admin).json()
    assert [k["id"] for k in listed] == [issued["id"]] and "key" not in listed[0]
    res = api.client.post(f"/api/v1/admin/api-keys/{issued['id']}/revoke", headers=admin)
    assert res.status_code == 200 and res.json()["revoked_at"] is not None
    before = _counts(db)
    assert_problem(api.client.post("/api/v1/admin/api-keys", json={"name": ""}, headers=admin), 422)
    assert_problem(api.client.post("/api/v1/admin/api-keys", json={"name": "   "}, headers=admin), 422)
    assert_problem(api.client.post("/api/v1/admin/api-keys/999999/revoke", headers=admin), 404)
    assert _counts(db) == before


def test_audit_log_through_the_api(api: Api, db: Session) -> None:
    admin = api.auth("admin")
    for n in range(3):
        api.client.post("/api/v1/admin/api-keys", json={"name": f"k{n}"}, headers=admin)
    page = api.client.get("/api/v1/admin/audit", params={"action": "apikey.create", "limit": 2}, headers=admin).json()
    assert page["total"] == 3 and len(page["items"]) == 2
    assert page["items"][0]["id"] > page["items"][1]["id"]
    assert page["items"][0]["actor"] == "admin" and page["items"][0]["detail"] == {"name": "k2"}
    rest = api.client.get(
        "/api/v1/admin/audit",
        params={"action": "apikey.create", "limit": 2, "before": page["next_before"]},
        headers=admin,
    ).json()
    assert [e["detail"]["name"] for e in rest["items"]] == ["k0"] and rest["next_before"] is None
    assert_problem(api.client.get("/api/v1/admin/audit", params={"limit": 0}, headers=admin), 422)
