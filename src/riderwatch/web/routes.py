"""HTML routes: parse, call the same services as the JSON API, render. Access via deps.require / policy."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from riderwatch import policy
from riderwatch.accounts.service import authenticate
from riderwatch.clues import service, workflow
from riderwatch.clues.present import category_name, present_clues
from riderwatch.clues.schemas import ActionBody, ClueRead
from riderwatch.config import Settings
from riderwatch.deps import CurrentUser, DbSession, OptionalUser, SettingsDep, client_id, require
from riderwatch.errors import (
    N_,
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    TooManyRequests,
    TransitionNotAllowed,
)
from riderwatch.i18n import LOCALE_COOKIE, LOCALES, request_locale, translations
from riderwatch.models import User
from riderwatch.models.clues import STATUSES
from riderwatch.org import service as org_service
from riderwatch.security import new_csrf_token
from riderwatch.web.admin import router as admin_router
from riderwatch.web.coverage import router as coverage_router
from riderwatch.web.incidents import router as incidents_router
from riderwatch.web.tasks import router as tasks_router
from riderwatch.web.templating import STATIC_DIR, Formatter, navigation, render, safe_next

router = APIRouter(include_in_schema=False)
router.include_router(admin_router)
router.include_router(coverage_router)
router.include_router(incidents_router)
router.include_router(tasks_router)

DeskUser = Annotated[User, Depends(require("clue.desk"))]
HandlerUser = Annotated[User, Depends(require("clue.handle"))]
ReporterUser = Annotated[User, Depends(require("clue.report"))]
ClueReader = Annotated[User, Depends(require("clue.list"))]

DESK_PAGE_SIZE = 50
LIST_LIMIT = 200
ACTION_FIELDS = ("reason", "duplicate_of", "assignee", "outcome", "value_grade", "rating", "urgent", "note")
_AREA = re.compile(r"^([cg])([0-9]{1,9})$")


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def home_path(user: User) -> str | None:
    """The first page of the user's role: the queue, their assignments, or the report form."""
    nav = navigation(user)
    return nav[0][0] if nav else None


# --- home, login, logout, language -------------------------------------------------------------


@router.get("/")
def home(request: Request, user: OptionalUser) -> Response:
    if user is None:
        return _see_other("/login")
    target = home_path(user)
    if target is not None:
        return _see_other(target)
    return render(request, "home.html")


@router.get("/login")
def login_page(request: Request, user: OptionalUser, next: str = "") -> Response:
    if user is not None:
        return _see_other(safe_next(next, home_path(user) or "/"))
    return render(request, "auth/login.html", {"next": safe_next(next, ""), "username": ""})


@router.post("/login")
def login(
    request: Request,
    db: DbSession,
    settings: SettingsDep,
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
        result = authenticate(
            db,
            username=username.strip(),
            password=password,
            client=client_id(request),
            max_failures=settings.login_max_failures,
            window_seconds=settings.login_window_seconds,
        )
    except TooManyRequests as exc:
        minutes = max(1, settings.login_window_seconds // 60)
        context["message"] = _("Too many failed logins. Try again in %(minutes)d minutes.") % {"minutes": minutes}
        headers = {"Retry-After": str(exc.extra.get("retry_after", settings.login_window_seconds))}
        return render(request, "auth/login.html", context, status=429, headers=headers)
    if isinstance(result, NotAuthenticated):
        # Returned normally so the request commits the recorded failure (the rate limit counts it).
        context["message"] = _("Wrong username or password.")
        return render(request, "auth/login.html", context)
    request.session.clear()
    request.session["uid"] = result.id
    request.session["v"] = result.token_version
    request.session["csrf"] = new_csrf_token()
    return _see_other(safe_next(next, home_path(result) or "/"))


@router.post("/logout")
def logout(request: Request, user: OptionalUser) -> Response:
    # optional_user has already refused a logged-in session without the CSRF token.
    request.session.clear()
    return _see_other("/login")


@router.get("/lang/{code}")
def choose_language(code: str, settings: SettingsDep, next: str = "/") -> Response:
    if code not in LOCALES:
        raise NotFound(N_("no language %(code)r; choose one of: %(choices)s"), code=code, choices=", ".join(LOCALES))
    response = _see_other(safe_next(next))
    response.set_cookie(
        LOCALE_COOKIE,
        code,
        max_age=365 * 24 * 3600,
        path="/",
        samesite="lax",
        httponly=True,
        secure=settings.secure_cookies,
    )
    return response


@router.get("/sw.js")
def service_worker() -> Response:
    """The rider pages' service worker, served from the root so its scope covers them."""
    return FileResponse(
        STATIC_DIR / "js" / "sw.js",
        media_type="text/javascript",
        headers={"Service-Worker-Allowed": "/", "Cache-Control": "no-cache"},
    )


# --- the command-centre queue ------------------------------------------------------------------


@dataclass(frozen=True)
class DeskQuery:
    """The queue's filters as the form sends them; `status` is 'open', 'all' or one status."""

    status: str = "open"
    category: str = ""
    area: str = ""
    overdue: str = ""
    offset: int = 0

    def filters(self) -> service.ClueFilters:
        if self.status == "open":
            statuses = list(workflow.OPEN_STATUSES)
        elif self.status == "all":
            statuses = []
        else:
            statuses = [self.status]
        match = _AREA.match(self.area)
        kind, area_id = (match.group(1), int(match.group(2))) if match else ("", 0)
        return service.ClueFilters(
            status=statuses,
            category=self.category or None,
            community_id=area_id if kind == "c" else None,
            grid_id=area_id if kind == "g" else None,
            overdue={"yes": True, "no": False}.get(self.overdue),
            limit=DESK_PAGE_SIZE,
            offset=self.offset,
        )

    def query(self, **changes: Any) -> str:
        values = replace(self, **changes)
        pairs = {
            "status": values.status,
            "category": values.category,
            "area": values.area,
            "overdue": values.overdue,
            "offset": str(values.offset) if values.offset else "",
        }
        return urlencode({k: v for k, v in pairs.items() if v})


def desk_query(
    status: str = "open",
    category: Annotated[str, Query(max_length=64)] = "",
    area: Annotated[str, Query(max_length=12)] = "",
    overdue: str = "",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> DeskQuery:
    if status not in ("open", "all", *STATUSES):
        raise InvalidInput(
            N_("unknown status %(status)r; statuses are: open, all, %(choices)s"),
            status=status,
            choices=", ".join(STATUSES),
        )
    if area and not _AREA.match(area):
        raise InvalidInput(N_("area must be a community (c<id>) or a grid (g<id>)"))
    if overdue not in ("", "yes", "no"):
        raise InvalidInput(N_("overdue must be yes, no or empty"))
    return DeskQuery(status=status, category=category, area=area, overdue=overdue, offset=offset)


DeskQueryDep = Annotated[DeskQuery, Depends(desk_query)]


def _markers(clues: list[ClueRead], fmt: Formatter) -> list[dict[str, Any]]:
    return [
        {
            "id": c.id,
            "lat": c.lat,
            "lon": c.lon,
            "status": c.status,
            "status_label": fmt.status(c.status),
            "category": c.category_name,
            "overdue": c.overdue,
            "urgent": c.urgent,
            "url": f"/clues/{c.id}",
        }
        for c in clues
    ]


def _queue_context(request: Request, db: Session, user: User, query: DeskQuery) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    locale = request_locale(request)
    clues, total, counts, overdue = service.list_clues(db, user=user, filters=query.filters())
    items = present_clues(db, user=user, clues=clues, locale=locale)
    fmt = Formatter(locale, settings.timezone)
    return {
        "clues": items,
        "total": total,
        "counts": counts,
        "overdue_count": overdue,
        "open_count": sum(counts.get(s, 0) for s in workflow.OPEN_STATUSES),
        "all_count": sum(counts.values()),
        "query": query,
        "statuses": STATUSES,
        "page_size": DESK_PAGE_SIZE,
        "markers": _markers(items, fmt),
    }


def _area_options(areas: dict[str, Any], locale: str) -> list[tuple[str, str, str]]:
    """(value, label, kind) for the area filter: each community followed by its grids."""
    features = [f["properties"] for f in areas["features"]]
    options: list[tuple[str, str, str]] = []
    for community in (p for p in features if p["kind"] == "community"):
        name = community["name_en"] if locale == "en" and community.get("name_en") else community["name"]
        options.append((f"c{community['id']}", name, "community"))
        for grid in (p for p in features if p["kind"] == "grid" and p.get("community_id") == community["id"]):
            options.append((f"g{grid['id']}", grid["name"], "grid"))
    return options


@router.get("/desk")
def desk(request: Request, db: DbSession, user: DeskUser, query: DeskQueryDep) -> HTMLResponse:
    locale = request_locale(request)
    areas = org_service.areas_geojson(db)
    context = _queue_context(request, db, user, query)
    context.update(
        {
            "areas": areas,
            "area_options": _area_options(areas, locale),
            "categories": [(c.code, category_name(c, locale)) for c in org_service.list_categories(db)],
        }
    )
    return render(request, "desk/queue.html", context)


@router.get("/desk/_queue")
def desk_fragment(request: Request, db: DbSession, user: OptionalUser, query: DeskQueryDep) -> Response:
    """The live part of the queue (counts, table, markers), polled by htmx."""
    if user is None:
        # htmx follows redirects silently; ask it to load the login page instead of swapping it in.
        return Response(status_code=204, headers={"HX-Redirect": "/login?next=/desk"})
    if not policy.has_permission(user, "clue.desk"):
        raise Forbidden(N_("a %(role)s may not do this (%(permission)s)"), role=user.role, permission="clue.desk")
    return render(request, "desk/_queue.html", _queue_context(request, db, user, query))


# --- one clue ----------------------------------------------------------------------------------


def _clue_page(
    request: Request,
    db: Session,
    user: User,
    clue_id: int,
    *,
    message: str | None = None,
    detail: str = "",
    kind: str = "info",
    status: int = 200,
) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    locale = request_locale(request)
    clue = service.get_clue(db, user=user, clue_id=clue_id)
    view = present_clues(db, user=user, clues=[clue], locale=locale, with_timeline=True)[0]
    names = {c.code: category_name(c, locale) for c in org_service.list_categories(db, include_inactive=True)}
    duplicates: list[dict[str, Any]] = []
    if "mark_duplicate" in view.allowed_actions:
        found = service.suggest_duplicates(
            db, clue=clue, radius_m=settings.duplicate_radius_m, window_hours=settings.duplicate_window_hours
        )
        duplicates = [
            {
                "id": other.id,
                "category": names.get(other.category_code, other.category_code),
                "status": other.status,
                "distance_m": round(distance),
                "hours_apart": round(hours, 1),
                "description": other.description[:200],
            }
            for other, distance, hours in found
        ]
    proposal = handlers = None
    if "dispatch" in view.allowed_actions:
        proposal = service.propose_routing(db, clue=clue)[0]
        handlers = service.search_handlers(db)
    fmt = Formatter(locale, settings.timezone)
    context = {
        "clue": view,
        "duplicates": duplicates,
        "proposal": proposal,
        "handlers": handlers,
        "areas": org_service.areas_geojson(db),
        "markers": _markers([view], fmt),
        "message": message,
        "message_detail": detail,
        "message_kind": kind,
        "grades": ("A", "B", "C", "none"),
    }
    return render(request, "clues/detail.html", context, status=status)


@router.get("/clues/{clue_id}")
def clue_page(request: Request, clue_id: int, db: DbSession, user: ClueReader, done: str = "") -> HTMLResponse:
    message = None
    if done in workflow.ACTIONS:
        fmt = Formatter(request_locale(request), request.app.state.settings.timezone)
        message = fmt._("Done: %(action)s.") % {"action": fmt.action(done)}
    return _clue_page(request, db, user, clue_id, message=message, kind="success")


def _action_error_message(request: Request, exc: DomainError | ValidationError, status_now: str) -> tuple[str, str]:
    """A lead in the reader's language and the service's own explanation."""
    fmt = Formatter(request_locale(request), request.app.state.settings.timezone)
    _ = fmt._
    if isinstance(exc, ValidationError):
        return _("Please correct the form."), "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
    if isinstance(exc, TransitionNotAllowed):
        return _("This action is not possible while the clue is “%(status)s”.") % {
            "status": fmt.status(status_now)
        }, exc.translated(_)
    if isinstance(exc, Forbidden):
        return _("You may not take this action on this clue."), exc.translated(_)
    if isinstance(exc, Conflict):
        return _("Not possible now."), exc.translated(_)
    if isinstance(exc, InvalidInput):
        return _("Please correct the form."), exc.translated(_)
    return _("The action was not taken."), exc.translated(_)


@router.post("/clues/{clue_id}/actions/{action}")
def clue_action(
    request: Request,
    clue_id: int,
    action: str,
    db: DbSession,
    user: CurrentUser,
    reason: Annotated[str, Form(max_length=4000)] = "",
    duplicate_of: Annotated[str, Form(max_length=20)] = "",
    assignee: Annotated[str, Form(max_length=200)] = "",
    outcome: Annotated[str, Form(max_length=8000)] = "",
    value_grade: Annotated[str, Form(max_length=10)] = "",
    rating: Annotated[str, Form(max_length=10)] = "",
    urgent: Annotated[str, Form(max_length=10)] = "",
    note: Annotated[str, Form(max_length=4000)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    given = {
        "reason": reason,
        "duplicate_of": duplicate_of,
        "assignee": assignee,
        "outcome": outcome,
        "value_grade": value_grade,
        "rating": rating,
        "urgent": urgent,
        "note": note,
    }
    raw = {k: v for k, v in given.items() if v.strip()}
    try:
        body = ActionBody.model_validate(raw)
        # A savepoint: whatever the service did before refusing is undone, so a refusal changes nothing.
        with db.begin_nested():
            clue = service.take_action(db, user=user, clue_id=clue_id, action=action, body=body)
    except (ValidationError, DomainError) as exc:
        if isinstance(exc, NotFound) and action in workflow.ACTIONS:
            raise  # the clue itself is missing or invisible: the 404 page
        current = service.get_clue(db, user=user, clue_id=clue_id).status
        lead, detail = _action_error_message(request, exc, current)
        status = 422 if isinstance(exc, ValidationError) else exc.status
        return _clue_page(request, db, user, clue_id, message=lead, detail=detail, kind="error", status=status)
    target = safe_next(next, f"/clues/{clue.id}")
    separator = "&" if "?" in target else "?"
    return _see_other(f"{target}{separator}{urlencode({'done': action, 'clue': clue.id})}")


# --- handlers ----------------------------------------------------------------------------------


def _done_message(request: Request, done: str, clue: int | None) -> str | None:
    if done not in workflow.ACTIONS or clue is None:
        return None
    fmt = Formatter(request_locale(request), request.app.state.settings.timezone)
    return fmt._("Clue #%(id)d: %(action)s done.") % {"id": clue, "action": fmt.action(done)}


@router.get("/my/assignments")
def my_assignments(
    request: Request,
    db: DbSession,
    user: HandlerUser,
    show: str = "open",
    done: str = "",
    clue: int | None = None,
) -> HTMLResponse:
    if show not in ("open", "all"):
        raise InvalidInput(N_("show must be open or all"))
    statuses = ["dispatched", "in_progress"] if show == "open" else []
    filters = service.ClueFilters(status=statuses, assignee_id=user.id, limit=LIST_LIMIT)
    clues, total, counts, overdue = service.list_clues(db, user=user, filters=filters)
    items = present_clues(db, user=user, clues=clues, locale=request_locale(request))
    context = {
        "clues": items,
        "total": total,
        "counts": counts,
        "overdue_count": overdue,
        "show": show,
        "message": _done_message(request, done, clue),
        "message_kind": "success",
    }
    return render(request, "handler/assignments.html", context)


# --- riders ------------------------------------------------------------------------------------


@router.get("/report")
def report_page(request: Request, db: DbSession, settings: SettingsDep, user: ReporterUser) -> HTMLResponse:
    locale = request_locale(request)
    groups: dict[str, list[tuple[str, str]]] = {}
    for category in org_service.list_categories(db):
        groups.setdefault(category.group, []).append((category.code, category_name(category, locale)))
    context = {
        "category_groups": groups,
        "max_photos": settings.max_photos,
        "max_photo_bytes": settings.max_photo_bytes,
    }
    return render(request, "rider/report.html", context)


@router.get("/my/reports")
def my_reports(
    request: Request, db: DbSession, user: ReporterUser, done: str = "", clue: int | None = None
) -> HTMLResponse:
    filters = service.ClueFilters(reporter_id=user.id, limit=LIST_LIMIT)
    clues, total, _counts, _overdue = service.list_clues(db, user=user, filters=filters)
    items = present_clues(db, user=user, clues=clues, locale=request_locale(request))
    context = {
        "clues": items,
        "total": total,
        "message": _done_message(request, done, clue),
        "message_kind": "success",
    }
    return render(request, "rider/my_reports.html", context)
