"""The administrator's pages: categories (and their routing rules), users, Open311 keys, the audit log.

Thin like the other pages: parse the form, call the same services as /api/v1/admin, render. A refused
change shows its reason on the page and stores nothing (each change runs in a savepoint); changes
that end someone's access (deactivation, revoking a key) take a second, explicit confirmation.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from riderwatch.accounts import service as accounts
from riderwatch.accounts.schemas import UserCreate
from riderwatch.audit.service import AuditFilters, list_entries, vocabulary
from riderwatch.deps import DbSession, require
from riderwatch.errors import Conflict, DomainError, InvalidInput, NotFound
from riderwatch.i18n import request_locale
from riderwatch.models import Category, User
from riderwatch.models.accounts import RIDER_STATUSES, ROLES
from riderwatch.org import service as org_service
from riderwatch.org.api import CategoryCreate, CategoryUpdate
from riderwatch.web.labels import GROUP_LABELS, N_
from riderwatch.web.templating import Formatter, render

router = APIRouter(prefix="/admin", include_in_schema=False)

CategoryManager = Annotated[User, Depends(require("category.manage"))]
UserManager = Annotated[User, Depends(require("user.manage"))]
KeyManager = Annotated[User, Depends(require("apikey.manage"))]
AuditReader = Annotated[User, Depends(require("audit.read"))]

PAGE_SIZE = 50
HANDLER_ROLES = ("police", "grid_staff", "patrol")
# Form fields are capped well above what the schemas allow, so that a value slightly too long gets
# the schema's message on the page instead of an error page; the cap only stops absurd requests.
SHORT = 1000
LONG = 8000

RIDER_STATUS_LABELS: dict[str, str] = {
    "applied": N_("Applied"),
    "active": N_("Active member"),
    "suspended": N_("Suspended"),
    "left": N_("Left the team"),
}
LINK_LABELS: dict[str, str] = {
    "community": N_("Community"),
    "grid": N_("Grid"),
    "patrol_unit": N_("Patrol unit"),
    "station": N_("Delivery station"),
    "platform": N_("Platform"),
}
DONE_MESSAGES: dict[str, str] = {
    "category-created": N_("The category was added."),
    "category-updated": N_("The category was saved."),
    "user-created": N_("The user was created and can log in now."),
    "user-updated": N_("The user was saved."),
    "password": N_("The new password is set; the user's sessions and tokens have ended."),
    "deactivated": N_("The user was deactivated; their sessions and tokens have ended."),
    "reactivated": N_("The user was reactivated and can log in again."),
    "revoked": N_("The key was revoked; requests with it are refused from now on."),
}


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _fmt(request: Request) -> Formatter:
    return Formatter(request_locale(request), request.app.state.settings.timezone)


def _done(request: Request, done: str) -> dict[str, Any]:
    if done not in DONE_MESSAGES:
        return {}
    return {"message": _fmt(request)._(DONE_MESSAGES[done]), "message_kind": "success"}


def _refusal(request: Request, exc: DomainError | ValidationError) -> tuple[dict[str, Any], int]:
    """The page message for a refused change (a lead in the reader's language, the reason), and the status."""
    _ = _fmt(request)._
    if isinstance(exc, ValidationError):
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in exc.errors())
        lead, status = _("Please correct the form."), 422
    elif isinstance(exc, Conflict):
        lead, detail, status = _("Not possible now."), exc.translated(_), exc.status
    else:
        lead, detail, status = _("Please correct the form."), exc.translated(_), exc.status
    return {"message": lead, "message_detail": detail, "message_kind": "error"}, status


def _labels(request: Request, table: dict[str, str]) -> dict[str, str]:
    _ = _fmt(request)._
    return {code: _(label) for code, label in table.items()}


# --- categories (the taxonomy and its routing rules) -------------------------------------------


def _category(db: Session, code: str) -> Category:
    for category in org_service.list_categories(db, include_inactive=True):
        if category.code == code:
            return category
    raise NotFound(N_("no category %(code)r"), code=code)


def _category_values(category: Category | None) -> dict[str, Any]:
    if category is None:
        return {
            "code": "",
            "name_zh": "",
            "name_en": "",
            "description_zh": "",
            "description_en": "",
            "group": "hazard",
            "handler_role": "grid_staff",
            "deadline_hours": 72,
            "urgent_deadline_hours": 4,
            "is_public": False,
            "active": True,
            "sort_order": 0,
        }
    return {key: getattr(category, key) for key in CategoryCreate.model_fields}


def _category_form(
    request: Request, values: dict[str, Any], *, is_new: bool, status: int = 200, **message: Any
) -> HTMLResponse:
    context = {
        "values": values,
        "is_new": is_new,
        "groups": list(GROUP_LABELS),
        "handler_roles": HANDLER_ROLES,
        **message,
    }
    return render(request, "admin/category_form.html", context, status=status)


def _form_text(max_length: int = SHORT) -> Any:
    return Form(max_length=max_length)


# FastAPI reads each Form parameter of a dependency like a route's own.
def category_form(
    name_zh: Annotated[str, _form_text()] = "",
    name_en: Annotated[str, _form_text()] = "",
    description_zh: Annotated[str, _form_text(LONG)] = "",
    description_en: Annotated[str, _form_text(LONG)] = "",
    group: Annotated[str, _form_text()] = "",
    handler_role: Annotated[str, _form_text()] = "",
    deadline_hours: Annotated[str, _form_text()] = "",
    urgent_deadline_hours: Annotated[str, _form_text()] = "",
    is_public: Annotated[str, _form_text()] = "",
    active: Annotated[str, _form_text()] = "",
    sort_order: Annotated[str, _form_text()] = "",
) -> dict[str, Any]:
    return {
        "name_zh": name_zh.strip(),
        "name_en": name_en.strip(),
        "description_zh": description_zh.strip(),
        "description_en": description_en.strip(),
        "group": group,
        "handler_role": handler_role,
        "deadline_hours": deadline_hours.strip(),
        "urgent_deadline_hours": urgent_deadline_hours.strip(),
        # A checkbox that is not ticked is not sent at all.
        "is_public": bool(is_public),
        "active": bool(active),
        "sort_order": sort_order.strip() or "0",
    }


CategoryFields = Annotated[dict[str, Any], Depends(category_form)]


@router.get("/categories")
def categories_page(request: Request, db: DbSession, _admin: CategoryManager, done: str = "") -> HTMLResponse:
    context = {"categories": org_service.list_categories(db, include_inactive=True), **_done(request, done)}
    return render(request, "admin/categories.html", context)


@router.get("/categories/new")
def new_category_page(request: Request, _admin: CategoryManager) -> HTMLResponse:
    return _category_form(request, _category_values(None), is_new=True)


@router.post("/categories")
def create_category(
    request: Request,
    db: DbSession,
    admin: CategoryManager,
    fields: CategoryFields,
    code: Annotated[str, _form_text()] = "",
) -> Response:
    values = {"code": code.strip(), **fields}
    try:
        body = CategoryCreate.model_validate(values)
        with db.begin_nested():
            category = org_service.create_category(db, actor=admin, values=body.model_dump(exclude_none=True))
    except (ValidationError, DomainError) as exc:
        message, status = _refusal(request, exc)
        return _category_form(request, values, is_new=True, status=status, **message)
    return _see_other(f"/admin/categories?{urlencode({'done': 'category-created', 'code': category.code})}")


@router.get("/categories/{code}")
def category_page(request: Request, code: str, db: DbSession, _admin: CategoryManager) -> HTMLResponse:
    return _category_form(request, _category_values(_category(db, code)), is_new=False)


@router.post("/categories/{code}")
def update_category(
    request: Request, code: str, db: DbSession, admin: CategoryManager, fields: CategoryFields
) -> Response:
    category = _category(db, code)
    try:
        body = CategoryUpdate.model_validate(fields)
        with db.begin_nested():
            org_service.update_category(db, actor=admin, code=category.code, values=body.model_dump(exclude_none=True))
    except (ValidationError, DomainError) as exc:
        message, status = _refusal(request, exc)
        return _category_form(request, {"code": category.code, **fields}, is_new=False, status=status, **message)
    return _see_other(f"/admin/categories?{urlencode({'done': 'category-updated', 'code': category.code})}")


# --- users --------------------------------------------------------------------------------------


def _user_choices(request: Request, db: Session) -> dict[str, Any]:
    """What the user forms offer: roles, rider statuses, and the org units to link, by kind."""
    locale = request_locale(request)
    options = {
        kind: [(ref.code, ref.name_en if locale == "en" and ref.name_en else ref.name) for ref in refs]
        for kind, refs in accounts.link_options(db).items()
    }
    return {
        "roles": ROLES,
        "rider_statuses": RIDER_STATUSES,
        "rider_status_labels": _labels(request, RIDER_STATUS_LABELS),
        "link_labels": _labels(request, LINK_LABELS),
        "link_roles": {kind: sorted(roles) for kind, roles in accounts.LINK_ROLES.items()},
        "link_options": options,
    }


def _link_name(request: Request, ref: accounts.OrgRef) -> str:
    return ref.name_en if request_locale(request) == "en" and ref.name_en else ref.name


@router.get("/users")
def users_page(
    request: Request,
    db: DbSession,
    _admin: UserManager,
    role: Annotated[str, Query(max_length=32)] = "",
    q: Annotated[str, Query(max_length=200)] = "",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> HTMLResponse:
    if role and role not in ROLES:
        raise InvalidInput(N_("unknown role %(role)r; roles are: %(choices)s"), role=role, choices=", ".join(ROLES))
    users, total = accounts.list_users(db, role=role or None, query=q, offset=offset, limit=PAGE_SIZE)
    rows = [
        {
            "summary": s,
            "links": [(_labels(request, LINK_LABELS)[k], _link_name(request, ref)) for k, ref in s.links.items()],
        }
        for s in accounts.summarise_users(db, users)
    ]

    def page(new_offset: int) -> str:
        return "/admin/users?" + urlencode({k: v for k, v in {"role": role, "q": q, "offset": new_offset}.items() if v})

    context = {
        "rows": rows,
        "total": total,
        "roles": ROLES,
        "role": role,
        "q": q,
        "offset": offset,
        "page_size": PAGE_SIZE,
        "previous_url": page(max(0, offset - PAGE_SIZE)) if offset else "",
        "next_url": page(offset + PAGE_SIZE) if offset + PAGE_SIZE < total else "",
        "rider_status_labels": _labels(request, RIDER_STATUS_LABELS),
    }
    return render(request, "admin/users.html", context)


def _new_user_form(
    request: Request, db: Session, values: dict[str, Any], *, status: int = 200, **message: Any
) -> HTMLResponse:
    context = {"values": values, **_user_choices(request, db), **message}
    return render(request, "admin/user_new.html", context, status=status)


@router.get("/users/new")
def new_user_page(request: Request, db: DbSession, _admin: UserManager) -> HTMLResponse:
    values = {"username": "", "role": "rider", "display_name": "", "phone": "", "rider_status": "active"}
    return _new_user_form(request, db, values | dict.fromkeys(accounts.LINKS, ""))


@router.post("/users")
def create_user(
    request: Request,
    db: DbSession,
    admin: UserManager,
    username: Annotated[str, _form_text()] = "",
    role: Annotated[str, _form_text()] = "",
    password: Annotated[str, _form_text(2000)] = "",
    display_name: Annotated[str, _form_text()] = "",
    phone: Annotated[str, _form_text()] = "",
    rider_status: Annotated[str, _form_text()] = "active",
    community: Annotated[str, _form_text()] = "",
    grid: Annotated[str, _form_text()] = "",
    patrol_unit: Annotated[str, _form_text()] = "",
    station: Annotated[str, _form_text()] = "",
    platform: Annotated[str, _form_text()] = "",
) -> Response:
    values: dict[str, Any] = {
        "username": username.strip(),
        "role": role,
        "display_name": display_name.strip(),
        "phone": phone.strip() or None,
        "rider_status": rider_status,
        "community": community,
        "grid": grid,
        "patrol_unit": patrol_unit,
        "station": station,
        "platform": platform,
    }
    try:
        body = UserCreate.model_validate({**values, "password": password})
        with db.begin_nested():
            user = accounts.create_user(
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
    except (ValidationError, DomainError) as exc:
        message, status = _refusal(request, exc)
        # The password is never sent back into the page.
        return _new_user_form(request, db, {**values, "phone": phone}, status=status, **message)
    return _see_other(f"/admin/users/{user.id}?done=user-created")


def _user_page(
    request: Request, db: Session, admin: User, user_id: int, *, status: int = 200, **message: Any
) -> HTMLResponse:
    user = accounts.get_user(db, user_id=user_id)
    summary = accounts.summarise_users(db, [user])[0]
    context = {
        "target": user,
        "summary": summary,
        "is_self": user.id == admin.id,
        "own_links": [kind for kind in accounts.LINKS if user.role in accounts.LINK_ROLES[kind]],
        "linked": {kind: ref.code for kind, ref in summary.links.items()},
        "open_assignments": accounts.open_assignments(db, user_id=user.id) if user.role in HANDLER_ROLES else 0,
        **_user_choices(request, db),
        **message,
    }
    return render(request, "admin/user.html", context, status=status)


@router.get("/users/{user_id}")
def user_page(request: Request, user_id: int, db: DbSession, admin: UserManager, done: str = "") -> HTMLResponse:
    return _user_page(request, db, admin, user_id, **_done(request, done))


@router.post("/users/{user_id}")
def update_user(
    request: Request,
    user_id: int,
    db: DbSession,
    admin: UserManager,
    display_name: Annotated[str, _form_text()] = "",
    phone: Annotated[str, _form_text()] = "",
    rider_status: Annotated[str, _form_text()] = "",
    community: Annotated[str, _form_text()] = "",
    grid: Annotated[str, _form_text()] = "",
    patrol_unit: Annotated[str, _form_text()] = "",
    station: Annotated[str, _form_text()] = "",
    platform: Annotated[str, _form_text()] = "",
) -> Response:
    user = accounts.get_user(db, user_id=user_id)
    given = {"community": community, "grid": grid, "patrol_unit": patrol_unit, "station": station, "platform": platform}
    # An empty form field is not told apart from a missing one: the form holds exactly the links of
    # the user's role, so those are taken as sent (empty: unlink) and the others as not sent.
    values: dict[str, Any] = {"display_name": display_name, "phone": phone}
    values |= {kind: code or None for kind, code in given.items() if user.role in accounts.LINK_ROLES[kind]}
    if user.role == "rider":
        values["rider_status"] = rider_status
    try:
        with db.begin_nested():
            accounts.update_user(db, actor=admin, user_id=user.id, values=values)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        message, status = _refusal(request, exc)
        return _user_page(request, db, admin, user.id, status=status, **message)
    return _see_other(f"/admin/users/{user.id}?done=user-updated")


@router.post("/users/{user_id}/password")
def reset_password(
    request: Request,
    user_id: int,
    db: DbSession,
    admin: UserManager,
    password: Annotated[str, _form_text(2000)] = "",
) -> Response:
    try:
        with db.begin_nested():
            accounts.reset_password(db, actor=admin, user_id=user_id, password=password)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        message, status = _refusal(request, exc)
        return _user_page(request, db, admin, user_id, status=status, **message)
    return _see_other(f"/admin/users/{user_id}?done=password")


def _confirm_page(request: Request, context: dict[str, Any], *, status: int = 200) -> HTMLResponse:
    return render(request, "admin/confirm.html", context, status=status)


def _activation(request: Request, db: Session, admin: User, user_id: int, *, active: bool, confirm: str) -> Response:
    user = accounts.get_user(db, user_id=user_id)
    verb = "reactivate" if active else "deactivate"
    if confirm != "yes":
        # The first step only asks: nothing changes until the confirmation form comes back.
        _ = _fmt(request)._
        name = user.display_name or user.username
        if active:
            question = _("Reactivate %(name)s? They can log in again with their password.") % {"name": name}
        else:
            question = _("Deactivate %(name)s? They are logged out everywhere at once and cannot log in.") % {
                "name": name
            }
        open_count = accounts.open_assignments(db, user_id=user.id)
        context = {
            "question": question,
            "warning": _("%(n)d open clues are assigned to them: dispatch them to someone else from the queue.")
            % {"n": open_count}
            if open_count and not active
            else "",
            "action_url": f"/admin/users/{user.id}/{verb}",
            "confirm_label": _("Yes, reactivate") if active else _("Yes, deactivate"),
            "danger": not active,
            "cancel_url": f"/admin/users/{user.id}",
            "testid": f"confirm-{verb}",
        }
        return _confirm_page(request, context)
    try:
        with db.begin_nested():
            accounts.set_user_active(db, actor=admin, user_id=user.id, active=active)
    except DomainError as exc:
        message, status = _refusal(request, exc)
        return _user_page(request, db, admin, user.id, status=status, **message)
    return _see_other(f"/admin/users/{user.id}?done={verb}d")


@router.get("/users/{user_id}/deactivate")
def confirm_deactivate(request: Request, user_id: int, db: DbSession, admin: UserManager) -> Response:
    return _activation(request, db, admin, user_id, active=False, confirm="")


@router.post("/users/{user_id}/deactivate")
def deactivate_user(
    request: Request, user_id: int, db: DbSession, admin: UserManager, confirm: Annotated[str, _form_text()] = ""
) -> Response:
    return _activation(request, db, admin, user_id, active=False, confirm=confirm)


@router.get("/users/{user_id}/reactivate")
def confirm_reactivate(request: Request, user_id: int, db: DbSession, admin: UserManager) -> Response:
    return _activation(request, db, admin, user_id, active=True, confirm="")


@router.post("/users/{user_id}/reactivate")
def reactivate_user(
    request: Request, user_id: int, db: DbSession, admin: UserManager, confirm: Annotated[str, _form_text()] = ""
) -> Response:
    return _activation(request, db, admin, user_id, active=True, confirm=confirm)


# --- Open311 API keys ---------------------------------------------------------------------------


def _keys_page(
    request: Request,
    db: Session,
    *,
    issued: dict[str, Any] | None = None,
    name: str = "",
    status: int = 200,
    **extra: Any,
) -> HTMLResponse:
    context = {"keys": accounts.list_api_keys(db), "issued": issued, "name": name, **extra}
    # A page showing a new key must not be kept by the browser or anything in between.
    headers = {"Cache-Control": "no-store"} if issued else None
    return render(request, "admin/keys.html", context, status=status, headers=headers)


@router.get("/keys")
def keys_page(request: Request, db: DbSession, _admin: KeyManager, done: str = "") -> HTMLResponse:
    return _keys_page(request, db, **_done(request, done))


@router.post("/keys")
def create_key(
    request: Request, db: DbSession, admin: KeyManager, name: Annotated[str, _form_text()] = ""
) -> HTMLResponse:
    try:
        with db.begin_nested():
            row, key = accounts.issue_api_key(db, name=name, actor=admin)
    except DomainError as exc:
        message, status = _refusal(request, exc)
        return _keys_page(request, db, name=name, status=status, **message)
    # Shown in this answer only (no redirect): only the key's hash is stored, nothing could show it again.
    issued = {"id": row.id, "name": row.name, "key": key}
    return _keys_page(request, db, issued=issued)


@router.get("/keys/{key_id}/revoke")
def confirm_revoke(request: Request, key_id: int, db: DbSession, _admin: KeyManager) -> Response:
    return _revocation(request, db, _admin, key_id, confirm="")


@router.post("/keys/{key_id}/revoke")
def revoke_key(
    request: Request, key_id: int, db: DbSession, admin: KeyManager, confirm: Annotated[str, _form_text()] = ""
) -> Response:
    return _revocation(request, db, admin, key_id, confirm=confirm)


def _revocation(request: Request, db: Session, admin: User, key_id: int, *, confirm: str) -> Response:
    row = accounts.get_api_key(db, key_id=key_id)
    _ = _fmt(request)._
    if row.revoked_at is not None:
        return _keys_page(request, db, message=_("This key is already revoked."), message_kind="info")
    if confirm != "yes":
        context = {
            "question": _("Revoke the key “%(name)s”? Every system using it is refused at once; this cannot be undone.")
            % {"name": row.name},
            "warning": "",
            "action_url": f"/admin/keys/{row.id}/revoke",
            "confirm_label": _("Yes, revoke"),
            "danger": True,
            "cancel_url": "/admin/keys",
            "testid": "confirm-revoke",
        }
        return _confirm_page(request, context)
    with db.begin_nested():
        accounts.revoke_api_key(db, actor=admin, key_id=row.id)
    return _see_other("/admin/keys?done=revoked")


# --- the audit log (read only) -------------------------------------------------------------------


@router.get("/audit")
def audit_page(
    request: Request,
    db: DbSession,
    _admin: AuditReader,
    action: Annotated[str, Query(max_length=64)] = "",
    object_type: Annotated[str, Query(max_length=32)] = "",
    object_id: Annotated[str, Query(max_length=64)] = "",
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> HTMLResponse:
    filters = AuditFilters(
        action=action or None,
        object_type=object_type or None,
        object_id=object_id.strip() or None,
        before=before,
        limit=PAGE_SIZE,
    )
    rows, total = list_entries(db, filters=filters)
    actions, object_types = vocabulary(db)
    kept = {"action": action, "object_type": object_type, "object_id": object_id.strip()}
    kept = {k: v for k, v in kept.items() if v}
    older = ""
    if len(rows) == PAGE_SIZE:
        older = "/admin/audit?" + urlencode({**kept, "before": rows[-1][0].id})
    entries = [
        {
            "entry": entry,
            "actor": actor,
            "detail": json.dumps(entry.detail, ensure_ascii=False, sort_keys=True, default=str) if entry.detail else "",
        }
        for entry, actor in rows
    ]
    context = {
        "entries": entries,
        "total": total,
        "actions": actions,
        "object_types": object_types,
        "action": action,
        "object_type": object_type,
        "object_id": object_id.strip(),
        "paged": before is not None,
        "newest_url": "/admin/audit" + ("?" + urlencode(kept) if kept else ""),
        "older_url": older,
    }
    return render(request, "admin/audit.html", context)
