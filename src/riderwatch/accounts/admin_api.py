"""Administration under /api/v1/admin: users, Open311 keys, the audit log. Admins only (policy.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from riderwatch.accounts import service
from riderwatch.accounts.schemas import (
    ActiveChange,
    ApiKeyCreate,
    ApiKeyIssued,
    ApiKeyRead,
    AuditEntryRead,
    AuditPage,
    OneTimeCode,
    PasswordReset,
    UserCreate,
    UserList,
    UserRead,
    UserUpdate,
)
from riderwatch.audit.service import AuditFilters
from riderwatch.deps import DbSession, PathId, require
from riderwatch.models import User
from riderwatch.models.accounts import Role

router = APIRouter(prefix="/admin", tags=["administration"])

UserManager = Annotated[User, Depends(require("user.manage"))]
KeyManager = Annotated[User, Depends(require("apikey.manage"))]
AuditReader = Annotated[User, Depends(require("audit.read"))]


def _read(db: DbSession, user: User) -> UserRead:
    return UserRead.of(service.summarise_users(db, [user])[0])


@router.get("/users", response_model=UserList, summary="Users, by role and a search (admin)")
def list_users(
    db: DbSession,
    _admin: UserManager,
    role: Role | None = None,
    q: Annotated[str | None, Query(max_length=200, description="part of a username, name or phone")] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> UserList:
    users, total = service.list_users(db, role=role, query=q, offset=offset, limit=limit)
    return UserList(items=[UserRead.of(s) for s in service.summarise_users(db, users)], total=total)


@router.post("/users", response_model=UserRead, status_code=201, summary="Create a user (admin)")
def create_user(body: UserCreate, db: DbSession, admin: UserManager) -> UserRead:
    user = service.create_user(
        db,
        username=body.username,
        role=body.role,
        password=body.password,
        display_name=body.display_name,
        phone=body.phone,
        rider_status=body.rider_status,
        links=body.links(),
        actor=admin,
    )
    return _read(db, user)


@router.get("/users/{user_id}", response_model=UserRead, summary="One user (admin)")
def get_user(user_id: PathId, db: DbSession, _admin: UserManager) -> UserRead:
    return _read(db, service.get_user(db, user_id=user_id))


@router.patch("/users/{user_id}", response_model=UserRead, summary="Edit a user's name, phone, links, rider status")
def update_user(user_id: PathId, body: UserUpdate, db: DbSession, admin: UserManager) -> UserRead:
    return _read(db, service.update_user(db, actor=admin, user_id=user_id, values=body.changes()))


@router.put(
    "/users/{user_id}/active",
    response_model=UserRead,
    summary="Deactivate (ends every session and token at once) or reactivate a user",
)
def set_active(user_id: PathId, body: ActiveChange, db: DbSession, admin: UserManager) -> UserRead:
    return _read(db, service.set_user_active(db, actor=admin, user_id=user_id, active=body.active))


@router.post(
    "/users/{user_id}/password",
    status_code=204,
    response_class=Response,
    summary="Set a new password (ends the user's sessions and tokens; the user must choose their own at login)",
)
def reset_password(user_id: PathId, body: PasswordReset, db: DbSession, admin: UserManager) -> Response:
    service.reset_password(db, actor=admin, user_id=user_id, password=body.password)
    return Response(status_code=204)


@router.post(
    "/users/{user_id}/one-time-code",
    response_model=OneTimeCode,
    status_code=201,
    summary="Issue a one-time code to sign in with (ends the user's sessions; the user then chooses a password)",
)
def issue_one_time_code(user_id: PathId, db: DbSession, admin: UserManager, response: Response) -> OneTimeCode:
    code = service.reset_password(db, actor=admin, user_id=user_id, password=None)
    user = service.get_user(db, user_id=user_id)
    assert code is not None and user.password_expires_at is not None
    response.headers["Cache-Control"] = "no-store"
    return OneTimeCode(code=code, expires_at=user.password_expires_at)


@router.get("/api-keys", response_model=list[ApiKeyRead], summary="Open311 API keys, newest first (admin)")
def list_api_keys(db: DbSession, _admin: KeyManager) -> list[ApiKeyRead]:
    return [ApiKeyRead.model_validate(k) for k in service.list_api_keys(db)]


@router.post(
    "/api-keys",
    response_model=ApiKeyIssued,
    status_code=201,
    summary="Issue an Open311 API key; the key is in this answer only",
)
def create_api_key(body: ApiKeyCreate, db: DbSession, admin: KeyManager, response: Response) -> ApiKeyIssued:
    row, key = service.issue_api_key(db, name=body.name, actor=admin)
    response.headers["Cache-Control"] = "no-store"
    return ApiKeyIssued(id=row.id, name=row.name, created_at=row.created_at, revoked_at=row.revoked_at, key=key)


@router.post("/api-keys/{key_id}/revoke", response_model=ApiKeyRead, summary="Revoke an Open311 API key at once")
def revoke_api_key(key_id: PathId, db: DbSession, admin: KeyManager) -> ApiKeyRead:
    return ApiKeyRead.model_validate(service.revoke_api_key(db, actor=admin, key_id=key_id))


@router.get("/audit", response_model=AuditPage, summary="The audit log, newest first (read only)")
def audit_log(
    db: DbSession,
    admin: AuditReader,
    action: Annotated[str | None, Query(max_length=64)] = None,
    object_type: Annotated[str | None, Query(max_length=32)] = None,
    object_id: Annotated[str | None, Query(max_length=64)] = None,
    before: Annotated[int | None, Query(ge=1, le=2**62, description="only entries older than this id")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AuditPage:
    filters = AuditFilters(action=action, object_type=object_type, object_id=object_id, before=before, limit=limit)
    rows, total = service.read_audit_log(db, viewer=admin, filters=filters)
    items = [
        AuditEntryRead(
            id=row.entry.id,
            at=row.entry.at,
            actor=row.actor.username if row.actor else None,
            actor_withheld=row.actor_withheld,
            action=row.entry.action,
            object_type=row.entry.object_type,
            object_id=row.entry.object_id,
            detail=row.detail,
        )
        for row in rows
    ]
    next_before = items[-1].id if len(items) == limit else None
    return AuditPage(items=items, total=total, next_before=next_before)
