"""The clue pages: the command centre's queue, a clue and its workflow actions, handlers' assignments,
and the rider's report form and reports."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from riderwatch import policy
from riderwatch.clues import service, workflow
from riderwatch.clues.present import category_name, present_clues
from riderwatch.clues.schemas import ActionBody, ClueRead
from riderwatch.config import Settings
from riderwatch.deps import CurrentUser, DbSession, OptionalUser, PathId, SettingsDep, require, writes_on_read
from riderwatch.errors import (
    N_,
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    TransitionNotAllowed,
)
from riderwatch.i18n import request_locale
from riderwatch.infra.fields import MAX_ID
from riderwatch.models import User
from riderwatch.models.clues import STATUSES
from riderwatch.org import service as org_service
from riderwatch.training import service as training
from riderwatch.web.forms import in_reader_language, see_other
from riderwatch.web.templating import Formatter, render, safe_next

router = APIRouter(include_in_schema=False)

DeskUser = Annotated[User, Depends(require("clue.desk"))]
HandlerUser = Annotated[User, Depends(require("clue.handle"))]
ReporterUser = Annotated[User, Depends(require("clue.report"))]
OwnReportsReader = Annotated[User, Depends(require("clue.own_reports"))]
ClueReader = Annotated[User, Depends(require("clue.list"))]

DESK_PAGE_SIZE = 50
LIST_LIMIT = 200
ACTION_FIELDS = ("reason", "duplicate_of", "assignee", "outcome", "value_grade", "rating", "urgent", "note")
_AREA = re.compile(r"^([cg])([0-9]{1,9})$")


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
    policy.ensure(user, "clue.desk")
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
@writes_on_read
def clue_page(request: Request, clue_id: PathId, db: DbSession, user: ClueReader, done: str = "") -> HTMLResponse:
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
    clue_id: PathId,
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
    return see_other(f"{target}{separator}{urlencode({'done': action, 'clue': clue.id})}")


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
def report_page(
    request: Request,
    db: DbSession,
    settings: SettingsDep,
    user: ReporterUser,
    alert: Annotated[int | None, Query(ge=1, le=MAX_ID, description="a sighting for this alert")] = None,
) -> HTMLResponse:
    locale = request_locale(request)
    groups: dict[str, list[tuple[str, str]]] = {}
    for category in org_service.list_categories(db):
        groups.setdefault(category.group, []).append((category.code, category_name(category, locale)))
    context = {
        "category_groups": groups,
        "max_photos": settings.max_photos,
        "max_photo_bytes": settings.max_photo_bytes,
        "refreshers": [
            {"title": in_reader_language(request, c.title, c.title_en), "code": c.code, "standing": held}
            for c, held in training.refreshers_due(db, rider_id=user.id)
        ],
        "sighting": _sighting_of(request, db, user, alert) if alert is not None else None,
    }
    return render(request, "rider/report.html", context)


def _sighting_of(request: Request, db: Session, user: User, alert_id: int) -> dict[str, Any] | None:
    """The alert a report answers, if the rider received it (else the report is an ordinary one)."""
    alert = service.received_alert(db, rider_id=user.id, alert_id=alert_id)
    if alert is None:
        return None
    return {"id": alert.id, "headline": in_reader_language(request, alert.headline, alert.headline_en)}


@router.get("/my/reports")
def my_reports(
    request: Request, db: DbSession, user: OwnReportsReader, done: str = "", clue: int | None = None
) -> HTMLResponse:
    filters = service.ClueFilters(reporter_id=user.id, limit=LIST_LIMIT)
    clues, total, _counts, _overdue = service.list_clues(db, user=user, filters=filters)
    items = present_clues(db, user=user, clues=clues, locale=request_locale(request))
    context = {
        "clues": items,
        "total": total,
        "membership_refusal": policy.member_refusal(user),
        "message": _done_message(request, done, clue),
        "message_kind": "success",
    }
    return render(request, "rider/my_reports.html", context)
