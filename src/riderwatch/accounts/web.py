"""The accounts' pages: signing in and out; the administrator's users, Open311 keys and the audit log.

Thin like the other pages: parse the form, call the same services as /api/v1/admin, render. A refused
change shows its reason on the page and stores nothing; changes that end someone's access
(deactivation, revoking a key) take a second, explicit confirmation.
"""

from __future__ import annotations

import json
import math
import secrets
from typing import Annotated, Any
from urllib.parse import urlencode

import anyio
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from riderwatch import policy
from riderwatch.accounts import service as accounts
from riderwatch.accounts.login import LoginLimits, change_own_password, end_session, known_waits, sign_in
from riderwatch.accounts.schemas import UserCreate
from riderwatch.audit.service import AuditFilters, vocabulary
from riderwatch.deps import (
    CurrentUser,
    DbSession,
    OptionalUser,
    PathId,
    SettingsDep,
    client_id,
    login_hashes,
    reads_only,
    require,
)
from riderwatch.errors import (
    DomainError,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    TooManyRequests,
)
from riderwatch.i18n import request_locale, translations
from riderwatch.models import User
from riderwatch.models.accounts import RIDER_STATUSES, ROLES
from riderwatch.security import new_csrf_token
from riderwatch.web.forms import done_message, form_text, formatter, labels_in, refusal, see_other
from riderwatch.web.labels import N_
from riderwatch.web.shell import home_path
from riderwatch.web.templating import render, safe_next

router = APIRouter(include_in_schema=False)

UserManager = Annotated[User, Depends(require("user.manage"))]
KeyManager = Annotated[User, Depends(require("apikey.manage"))]
AuditReader = Annotated[User, Depends(require("audit.read"))]

PAGE_SIZE = 50

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
    "user-created": N_("The user was created and can log in now."),
    "user-updated": N_("The user was saved."),
    "password": N_(
        "The new password is set; the user's sessions and tokens have ended. They choose their own at their next login."
    ),
    "deactivated": N_("The user was deactivated; their sessions and tokens have ended."),
    "reactivated": N_("The user was reactivated and can log in again."),
    "revoked": N_("The key was revoked; requests with it are refused from now on."),
}


# --- signing in and out ----------------------------------------------------------------------


LOGIN_MESSAGES: dict[str, str] = {
    "everywhere": N_("You are signed out everywhere: every session and token of yours has ended."),
}
ACCOUNT_MESSAGES: dict[str, str] = {
    "changed": N_("Your password is changed. Your other sessions and devices are signed out."),
}


@router.get("/login")
def login_page(request: Request, user: OptionalUser, next: str = "", done: str = "") -> Response:
    if user is not None:
        return see_other(safe_next(next, home_path(user) or "/"))
    context = {"next": safe_next(next, ""), "username": "", **done_message(request, done, LOGIN_MESSAGES)}
    return render(request, "auth/login.html", context)


@router.post("/login")
async def login(
    request: Request,
    settings: SettingsDep,
    hashes: Annotated[anyio.CapacityLimiter, Depends(login_hashes)],
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    _ = translations(request_locale(request)).gettext
    context: dict[str, Any] = {"next": safe_next(next, ""), "username": username, "message_kind": "error"}
    expected = request.session.get("csrf")
    # The login form carries a token too, so another site cannot log a browser into its own account.
    if not isinstance(expected, str) or not csrf_token or not secrets.compare_digest(expected, csrf_token):
        context["message"] = _("The form has expired. Please try again.")
        return render(request, "auth/login.html", context, status=403)
    if not username.strip() or not password:
        context["message"] = _("Enter your username and password.")
        return render(request, "auth/login.html", context, status=422)
    try:
        # No request transaction: sign_in keeps its own two short ones, and checks the password between them.
        result = await sign_in(
            request.app.state.session_factory,
            request.app.state.read_session_factory,
            hashes,
            known_waits(request.app.state),
            username=username.strip(),
            password=password,
            client=client_id(request),
            limits=LoginLimits.of(settings),
            start_session=True,
            session_ttl=settings.token_ttl_seconds,
        )
    except TooManyRequests as exc:
        seconds = int(exc.extra.get("retry_after", settings.login_window_seconds))
        if seconds < 120:
            wait = _("Too many failed logins. Try again in %(seconds)d seconds.") % {"seconds": seconds}
        else:
            wait = _("Too many failed logins. Try again in %(minutes)d minutes.") % {"minutes": math.ceil(seconds / 60)}
        context["message"] = wait
        return render(request, "auth/login.html", context, status=429, headers={"Retry-After": str(seconds)})
    if isinstance(result, NotAuthenticated):
        context["message"] = _("Wrong username or password.")
        return render(request, "auth/login.html", context)
    request.session.clear()
    request.session["uid"] = result.user.id
    request.session["v"] = result.user.token_version
    request.session["sid"] = result.session_key
    request.session["csrf"] = new_csrf_token()
    return see_other(safe_next(next, home_path(result.user) or "/"))


def _account_page(
    request: Request,
    user: User,
    *,
    next: str,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> HTMLResponse:
    context = {
        "forced": user.must_change_password,
        "expires_at": user.password_expires_at,
        "next": safe_next(next, ""),
        "min_length": accounts.MIN_PASSWORD,
        "done_changed": False,
        **extra,
    }
    return render(request, "auth/account.html", context, status=status, headers=headers)


@router.get("/account")
def account_page(request: Request, user: CurrentUser, next: str = "", done: str = "") -> HTMLResponse:
    message = done_message(request, done, ACCOUNT_MESSAGES)
    return _account_page(request, user, next=next, done_changed=bool(message), **message)


@router.post("/account/password")
@reads_only
async def change_password(
    request: Request,
    user: CurrentUser,
    settings: SettingsDep,
    hashes: Annotated[anyio.CapacityLimiter, Depends(login_hashes)],
    current_password: Annotated[str, Form(max_length=1000)] = "",
    new_password: Annotated[str, Form(max_length=1000)] = "",
    confirm_password: Annotated[str, Form(max_length=1000)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    # `reads_only`: the caller was read in a transaction that has ended; the change keeps its own short
    # ones and hashes outside them (change_own_password).
    _ = formatter(request)._
    if new_password != confirm_password:
        lead, detail = _("Please correct the form."), _("The two new passwords differ.")
        return _account_page(
            request, user, next=next, status=422, message=lead, message_detail=detail, message_kind="error"
        )
    try:
        version = await change_own_password(
            request.app.state.session_factory,
            request.app.state.read_session_factory,
            hashes,
            known_waits(request.app.state),
            user=user,
            current=current_password,
            new=new_password,
            client=client_id(request),
            limits=LoginLimits.of(settings),
        )
    except DomainError as exc:
        message, status = refusal(request, exc)
        headers = {"Retry-After": str(exc.extra["retry_after"])} if "retry_after" in exc.extra else None
        return _account_page(request, user, next=next, status=status, headers=headers, **message)
    # This browser's session goes on under the new version; every other one has ended.
    request.session["v"] = version
    return see_other("/account?" + urlencode({"done": "changed", **({"next": next} if safe_next(next, "") else {})}))


@router.post("/account/sign-out-everywhere")
def sign_out_everywhere(request: Request, db: DbSession, user: CurrentUser) -> Response:
    accounts.sign_out_everywhere(db, user=user)
    request.session.clear()
    return see_other("/login?done=everywhere")


@router.post("/logout")
def logout(request: Request, db: DbSession, user: OptionalUser) -> Response:
    # optional_user has already refused a logged-in session without the CSRF token.
    if user is not None:
        end_session(db, user=user, session_key=request.session.get("sid"))
    request.session.clear()
    return see_other("/login")


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
        "rider_status_labels": labels_in(request, RIDER_STATUS_LABELS),
        "link_labels": labels_in(request, LINK_LABELS),
        "link_roles": {kind: sorted(roles) for kind, roles in accounts.LINK_ROLES.items()},
        "link_options": options,
    }


def _link_name(request: Request, ref: accounts.OrgRef) -> str:
    return ref.name_en if request_locale(request) == "en" and ref.name_en else ref.name


@router.get("/admin/users")
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
            "links": [(labels_in(request, LINK_LABELS)[k], _link_name(request, ref)) for k, ref in s.links.items()],
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
        "rider_status_labels": labels_in(request, RIDER_STATUS_LABELS),
    }
    return render(request, "admin/users.html", context)


def _new_user_form(
    request: Request, db: Session, values: dict[str, Any], *, status: int = 200, **message: Any
) -> HTMLResponse:
    context = {"values": values, **_user_choices(request, db), **message}
    return render(request, "admin/user_new.html", context, status=status)


@router.get("/admin/users/new")
def new_user_page(request: Request, db: DbSession, _admin: UserManager) -> HTMLResponse:
    values = {"username": "", "role": "rider", "display_name": "", "phone": "", "rider_status": "active"}
    return _new_user_form(request, db, values | dict.fromkeys(accounts.LINKS, ""))


@router.post("/admin/users")
def create_user(
    request: Request,
    db: DbSession,
    admin: UserManager,
    username: Annotated[str, form_text()] = "",
    role: Annotated[str, form_text()] = "",
    password: Annotated[str, form_text(2000)] = "",
    display_name: Annotated[str, form_text()] = "",
    phone: Annotated[str, form_text()] = "",
    rider_status: Annotated[str, form_text()] = "active",
    community: Annotated[str, form_text()] = "",
    grid: Annotated[str, form_text()] = "",
    patrol_unit: Annotated[str, form_text()] = "",
    station: Annotated[str, form_text()] = "",
    platform: Annotated[str, form_text()] = "",
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
        message, status = refusal(request, exc)
        # The password is never sent back into the page.
        return _new_user_form(request, db, {**values, "phone": phone}, status=status, **message)
    return see_other(f"/admin/users/{user.id}?done=user-created")


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
        "open_assignments": accounts.open_assignments(db, user_id=user.id) if user.role in policy.HANDLER_ROLES else 0,
        "one_time_code": None,
        **_user_choices(request, db),
        **message,
    }
    return render(request, "admin/user.html", context, status=status)


@router.get("/admin/users/{user_id}")
def user_page(request: Request, user_id: PathId, db: DbSession, admin: UserManager, done: str = "") -> HTMLResponse:
    return _user_page(request, db, admin, user_id, **done_message(request, done, DONE_MESSAGES))


@router.post("/admin/users/{user_id}")
def update_user(
    request: Request,
    user_id: PathId,
    db: DbSession,
    admin: UserManager,
    display_name: Annotated[str, form_text()] = "",
    phone: Annotated[str, form_text()] = "",
    rider_status: Annotated[str, form_text()] = "",
    community: Annotated[str, form_text()] = "",
    grid: Annotated[str, form_text()] = "",
    patrol_unit: Annotated[str, form_text()] = "",
    station: Annotated[str, form_text()] = "",
    platform: Annotated[str, form_text()] = "",
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
        accounts.update_user(db, actor=admin, user_id=user.id, values=values)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        message, status = refusal(request, exc)
        return _user_page(request, db, admin, user.id, status=status, **message)
    return see_other(f"/admin/users/{user.id}?done=user-updated")


@router.post("/admin/users/{user_id}/password")
def reset_password(
    request: Request,
    user_id: PathId,
    db: DbSession,
    admin: UserManager,
    password: Annotated[str, form_text(2000)] = "",
) -> Response:
    try:
        accounts.reset_password(db, actor=admin, user_id=user_id, password=password)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        message, status = refusal(request, exc)
        return _user_page(request, db, admin, user_id, status=status, **message)
    return see_other(f"/admin/users/{user_id}?done=password")


@router.post("/admin/users/{user_id}/one-time-code")
def issue_one_time_code(request: Request, user_id: PathId, db: DbSession, admin: UserManager) -> HTMLResponse:
    # The code is shown in this answer only (not through a redirect: it must not sit in an address or
    # the browser's history), and never stored in clear.
    code = accounts.reset_password(db, actor=admin, user_id=user_id, password=None)
    _ = formatter(request)._
    message = _("Give the user this one-time code. They sign in with it and choose their own password.")
    page = _user_page(request, db, admin, user_id, one_time_code=code, message=message, message_kind="success")
    page.headers["Cache-Control"] = "no-store"
    return page


def _confirm_page(request: Request, context: dict[str, Any], *, status: int = 200) -> HTMLResponse:
    return render(request, "admin/confirm.html", context, status=status)


def _activation(request: Request, db: Session, admin: User, user_id: int, *, active: bool, confirm: str) -> Response:
    user = accounts.get_user(db, user_id=user_id)
    verb = "reactivate" if active else "deactivate"
    if confirm != "yes":
        # The first step only asks: nothing changes until the confirmation form comes back.
        _ = formatter(request)._
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
        accounts.set_user_active(db, actor=admin, user_id=user.id, active=active)
    except DomainError as exc:
        message, status = refusal(request, exc)
        return _user_page(request, db, admin, user.id, status=status, **message)
    return see_other(f"/admin/users/{user.id}?done={verb}d")


@router.get("/admin/users/{user_id}/deactivate")
def confirm_deactivate(request: Request, user_id: PathId, db: DbSession, admin: UserManager) -> Response:
    return _activation(request, db, admin, user_id, active=False, confirm="")


@router.post("/admin/users/{user_id}/deactivate")
def deactivate_user(
    request: Request, user_id: PathId, db: DbSession, admin: UserManager, confirm: Annotated[str, form_text()] = ""
) -> Response:
    return _activation(request, db, admin, user_id, active=False, confirm=confirm)


@router.get("/admin/users/{user_id}/reactivate")
def confirm_reactivate(request: Request, user_id: PathId, db: DbSession, admin: UserManager) -> Response:
    return _activation(request, db, admin, user_id, active=True, confirm="")


@router.post("/admin/users/{user_id}/reactivate")
def reactivate_user(
    request: Request, user_id: PathId, db: DbSession, admin: UserManager, confirm: Annotated[str, form_text()] = ""
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


@router.get("/admin/keys")
def keys_page(request: Request, db: DbSession, _admin: KeyManager, done: str = "") -> HTMLResponse:
    return _keys_page(request, db, **done_message(request, done, DONE_MESSAGES))


@router.post("/admin/keys")
def create_key(
    request: Request, db: DbSession, admin: KeyManager, name: Annotated[str, form_text()] = ""
) -> HTMLResponse:
    try:
        row, key = accounts.issue_api_key(db, name=name, actor=admin)
    except DomainError as exc:
        message, status = refusal(request, exc)
        return _keys_page(request, db, name=name, status=status, **message)
    # Shown in this answer only (no redirect): only the key's hash is stored, nothing could show it again.
    issued = {"id": row.id, "name": row.name, "key": key}
    return _keys_page(request, db, issued=issued)


@router.get("/admin/keys/{key_id}/revoke")
def confirm_revoke(request: Request, key_id: PathId, db: DbSession, _admin: KeyManager) -> Response:
    return _revocation(request, db, _admin, key_id, confirm="")


@router.post("/admin/keys/{key_id}/revoke")
def revoke_key(
    request: Request, key_id: PathId, db: DbSession, admin: KeyManager, confirm: Annotated[str, form_text()] = ""
) -> Response:
    return _revocation(request, db, admin, key_id, confirm=confirm)


def _revocation(request: Request, db: Session, admin: User, key_id: int, *, confirm: str) -> Response:
    row = accounts.get_api_key(db, key_id=key_id)
    _ = formatter(request)._
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
    accounts.revoke_api_key(db, actor=admin, key_id=row.id)
    return see_other("/admin/keys?done=revoked")


# --- the audit log (read only) -------------------------------------------------------------------


@router.get("/admin/audit")
def audit_page(
    request: Request,
    db: DbSession,
    admin: AuditReader,
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
    rows, total = accounts.read_audit_log(db, viewer=admin, filters=filters)
    actions, object_types = vocabulary(db)
    kept = {"action": action, "object_type": object_type, "object_id": object_id.strip()}
    kept = {k: v for k, v in kept.items() if v}
    older = ""
    if len(rows) == PAGE_SIZE:
        older = "/admin/audit?" + urlencode({**kept, "before": rows[-1].entry.id})
    entries = [
        {
            "entry": row.entry,
            "actor": row.actor,
            "actor_withheld": row.actor_withheld,
            "detail": json.dumps(row.detail, ensure_ascii=False, sort_keys=True, default=str) if row.detail else "",
        }
        for row in rows
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
