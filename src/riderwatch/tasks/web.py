"""Patrol task pages: the command centre's task board, publish form, task detail and rules; the rider's tasks.

Thin like the other pages: parse the form, call tasks.service, .verification, .views and .rules (the services behind
/api/v1/tasks), render. A refused form shows the service's reason with every value kept and stores
nothing (each change is all or nothing: `db.atomic`). Cancelling a task and running a rule ahead of its time
take a confirmation step. Every form works without JavaScript; with it, the publish form's map adds
check-in points and the rider's list is ordered from the phone's position.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any, cast
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from h3.api import basic_int as h3
from sqlalchemy.orm import Session

from riderwatch import policy
from riderwatch.accounts.service import link_options
from riderwatch.coverage.service import cell_feature
from riderwatch.coverage.web import AREA_KIND_LABELS, AREA_KINDS, area_choices
from riderwatch.deps import DbSession, SettingsDep, require, writes_on_read
from riderwatch.errors import DomainError, InvalidInput, NotFound
from riderwatch.i18n import request_locale
from riderwatch.infra.clock import utcnow
from riderwatch.models import User
from riderwatch.org import service as org_service
from riderwatch.tasks import rules, service, verification, views
from riderwatch.tasks.schemas import CheckpointDraft, RuleDraft, TaskDraft
from riderwatch.web.forms import done_message, formatter, refusal, see_other
from riderwatch.web.labels import N_
from riderwatch.web.templating import render

router = APIRouter(include_in_schema=False)

Manager = Annotated[User, Depends(require("task.manage"))]
Reader = Annotated[User, Depends(require("task.read"))]
RiderSelf = Annotated[User, Depends(require("task.self"))]
TaskId = Annotated[int, Path(ge=1, le=2**62)]
RuleId = Annotated[int, Path(ge=1, le=2**62)]

# Form fields are capped well above what the service allows, so a value slightly too long gets the
# service's message on the page; the cap only stops absurd requests.
SHORT = 1000
LONG = 20_000
BOARD_LIMIT = 200
DEFAULT_RADIUS_M = 100
DEFAULT_HOURS = 4

TABS = ("active", "upcoming", "ended", "cancelled", "all")
PHASE_LABELS: dict[str, str] = {
    "active": N_("Active"),
    "upcoming": N_("Upcoming"),
    "ended": N_("Ended"),
    "cancelled": N_("Cancelled"),
    "all": N_("All"),
}
KIND_LABELS: dict[str, str] = {"cells": N_("Cells"), "checkpoints": N_("Check-in points")}
DONE_MESSAGES: dict[str, str] = {
    "published": N_("The task is published. The invited riders see it in their task list."),
    "verified": N_("The riders' positions were checked just now."),
    "cancelled": N_("The task is cancelled. Riders no longer see it."),
    "rule-created": N_("The rule was added. It publishes tasks each day after its publish time."),
    "rule-paused": N_("The rule is paused."),
    "rule-resumed": N_("The rule is active again."),
}
_SPLIT_CELLS = re.compile(r"[\s,，;；]+")


def _limits(request: Request) -> service.TaskLimits:
    return service.TaskLimits.from_settings(request.app.state.settings)


def _when(value: str | None) -> datetime | None:
    """A service's ISO time as a datetime, for the templates' local-time macro."""
    return datetime.fromisoformat(value) if value else None


def _common(request: Request) -> dict[str, Any]:
    """What every task page's template reads: labels in the reader's language and the time parser."""
    _ = formatter(request)._
    return {
        "phase_labels": {k: _(v) for k, v in PHASE_LABELS.items()},
        "kind_labels": {k: _(v) for k, v in KIND_LABELS.items()},
        "when": _when,
        "distance": _distance_text(request),
    }


def _distance_text(request: Request) -> Any:
    _ = formatter(request)._

    def text(metres: float | None) -> str:
        if metres is None:
            return ""
        if metres < 1000:
            return _("%(n)s m away") % {"n": int(metres)}
        return _("%(n)s km away") % {"n": f"{metres / 1000:.1f}"}

    return text


def _resolutions(request: Request) -> list[tuple[int, int]]:
    settings = request.app.state.settings
    return [(r, round(2 * h3.average_hexagon_edge_length(r, "m"))) for r in settings.coverage_resolutions]


def _confirm(request: Request, context: dict[str, Any]) -> HTMLResponse:
    return render(request, "tasks/confirm.html", context)


# --- the task board ------------------------------------------------------------------------------


@router.get("/tasks")
def board(
    request: Request, db: DbSession, user: Reader, phase: Annotated[str, Query(max_length=16)] = "active"
) -> HTMLResponse:
    if phase not in TABS:
        raise InvalidInput(N_("phase must be one of %(choices)s"), choices=", ".join(TABS))
    tasks = views.list_tasks(db, phase=None if phase == "all" else views.visible_phase(phase), limit=BOARD_LIMIT)
    context = {
        "tasks": tasks,
        "phase": phase,
        "tabs": TABS,
        "limit": BOARD_LIMIT,
        "can_manage": policy.has_permission(user, "task.manage"),
        **_common(request),
    }
    return render(request, "tasks/board.html", context)


# --- publishing ----------------------------------------------------------------------------------


def _local_input(value: datetime, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def _default_values(request: Request, cells: str, source: str) -> dict[str, Any]:
    zone = ZoneInfo(request.app.state.settings.timezone)
    start = utcnow().astimezone(zone).replace(second=0, microsecond=0)
    return {
        "title": "",
        "note": "",
        "starts_at": _local_input(start, zone),
        "ends_at": _local_input(start + timedelta(hours=DEFAULT_HOURS), zone),
        "target": "cells" if cells else "area",
        "area": "",
        "resolution": str(request.app.state.settings.coverage_resolutions[0]),
        "cells": cells,
        "checkpoints": "",
        "open_to_all": True,
        "stations": [],
        "riders": "",
        "points": "10",
        "required_pct": "100",
        "max_riders": "",
        "source": source,
    }


def _cell_names(text: str) -> list[str]:
    return [c for c in _SPLIT_CELLS.split(text.strip()) if c]


def _preview_cells(text: str, limit: int) -> dict[str, Any]:
    """The valid cells of the cells field as GeoJSON, for the form's map (wrong ones are the service's to refuse)."""
    features = []
    for name in _cell_names(text)[:limit]:
        try:
            cell = h3.str_to_int(name)
        except (ValueError, TypeError):
            continue
        if h3.is_valid_cell(cell):
            features.append(cell_feature(cell, {}))
    return {"type": "FeatureCollection", "features": features}


def _form_page(
    request: Request, db: Session, values: dict[str, Any], *, status: int = 200, **message: Any
) -> HTMLResponse:
    locale = request_locale(request)
    areas = org_service.areas_geojson(db)
    limits = _limits(request)
    context = {
        "values": values,
        "areas": areas,
        "area_choices": area_choices(areas, locale),
        "area_kind_labels": AREA_KIND_LABELS,
        "resolutions": _resolutions(request),
        "stations": [
            (ref.code, ref.name_en if locale == "en" and ref.name_en else ref.name)
            for ref in link_options(db)["station"]
        ],
        "preview_cells": _preview_cells(values["cells"], limits.max_cells),
        "limits": limits,
        "default_radius": DEFAULT_RADIUS_M,
        **_common(request),
        **message,
    }
    return render(request, "tasks/new.html", context, status=status)


@router.get("/tasks/new")
def new_task_page(
    request: Request,
    db: DbSession,
    _user: Manager,
    cells: Annotated[str, Query(max_length=LONG)] = "",
    source: Annotated[str, Query(alias="from", max_length=16)] = "",
) -> HTMLResponse:
    values = _default_values(request, ", ".join(_cell_names(cells)), "gaps" if source == "gaps" else "")
    return _form_page(request, db, values)


def _number(text: str, refusal: str, *, default: int | None = None) -> int | None:
    """The whole number typed in, `default` for nothing, else InvalidInput(refusal)."""
    text = text.strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise InvalidInput(refusal) from None


def _local_time(text: str, refusal: str, zone: ZoneInfo) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(refusal) from None
    return value.replace(tzinfo=zone) if value.tzinfo is None else value


def _checkpoint_lines(text: str) -> list[CheckpointDraft]:
    """One check-in point a line: "lat, lon, radius_m, name" (radius and name may be left out)."""
    points = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.replace("，", ",").strip()
        if not line:
            continue
        parts = [p.strip() for p in line.split(",", 3)]
        try:
            lat, lon = float(parts[0]), float(parts[1])
            radius = float(parts[2]) if len(parts) > 2 and parts[2] else float(DEFAULT_RADIUS_M)
        except (ValueError, IndexError):
            raise InvalidInput(
                N_("check-in points, line %(line)d: write “lat, lon, radius_m, name”"), line=number
            ) from None
        points.append(
            CheckpointDraft.model_construct(lat=lat, lon=lon, radius_m=radius, name=parts[3] if len(parts) > 3 else "")
        )
    return points


def _draft(values: dict[str, Any], zone: ZoneInfo) -> TaskDraft:
    """The form's values as the task's draft (the API's shape; the service checks it); InvalidInput for what
    cannot even be read."""
    share = _number(values["required_pct"], N_("required share (%): give a whole number"), default=100)
    assert share is not None
    target: dict[str, Any] = {}
    if values["target"] == "area":
        kind, _sep, code = values["area"].partition(":")
        if kind not in AREA_KINDS or not code:
            raise InvalidInput(N_("area: choose a pilot zone, community or grid"))
        target = {
            "area": {kind: code},
            "resolution": _number(values["resolution"], N_("resolution: give a whole number")),
        }
    elif values["target"] == "cells":
        target = {"cells": _cell_names(values["cells"])}
    elif values["target"] == "checkpoints":
        target = {"checkpoints": _checkpoint_lines(values["checkpoints"])}
    else:
        raise InvalidInput(N_("target: choose an area, cells or check-in points"))
    return TaskDraft.model_construct(
        title=values["title"],
        note=values["note"],
        starts_at=_local_time(values["starts_at"], N_("start: give a date and time"), zone),
        ends_at=_local_time(values["ends_at"], N_("end: give a date and time"), zone),
        points=_number(values["points"], N_("points: give a whole number"), default=0) or 0,
        required_share=share / 100,
        max_riders=_number(values["max_riders"], N_("max riders: give a whole number")),
        open_to_all=values["open_to_all"],
        riders=[r for r in _SPLIT_CELLS.split(values["riders"].strip()) if r],
        stations=list(values["stations"]),
        **target,
    )


@router.post("/tasks")
def publish(
    request: Request,
    db: DbSession,
    user: Manager,
    title: Annotated[str, Form(max_length=SHORT)] = "",
    note: Annotated[str, Form(max_length=LONG)] = "",
    starts_at: Annotated[str, Form(max_length=64)] = "",
    ends_at: Annotated[str, Form(max_length=64)] = "",
    target: Annotated[str, Form(max_length=16)] = "",
    area: Annotated[str, Form(max_length=SHORT)] = "",
    resolution: Annotated[str, Form(max_length=8)] = "",
    cells: Annotated[str, Form(max_length=LONG)] = "",
    checkpoints: Annotated[str, Form(max_length=LONG)] = "",
    open_to_all: Annotated[str, Form(max_length=8)] = "",
    stations: Annotated[list[str] | None, Form()] = None,
    riders: Annotated[str, Form(max_length=LONG)] = "",
    points: Annotated[str, Form(max_length=16)] = "",
    required_pct: Annotated[str, Form(max_length=16)] = "",
    max_riders: Annotated[str, Form(max_length=16)] = "",
    source: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    values: dict[str, Any] = {
        "title": title,
        "note": note,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "target": target,
        "area": area,
        "resolution": resolution,
        "cells": cells,
        "checkpoints": checkpoints,
        # A checkbox that is not ticked is not sent at all.
        "open_to_all": bool(open_to_all),
        "stations": [s for s in stations or [] if s],
        "riders": riders,
        "points": points,
        "required_pct": required_pct,
        "max_riders": max_riders,
        "source": source if source == "gaps" else "",
    }
    try:
        draft = _draft(values, ZoneInfo(request.app.state.settings.timezone))
        task = service.publish_task(db, author=user, draft=draft, limits=_limits(request))
    except DomainError as exc:
        message, status = refusal(request, exc)
        return _form_page(request, db, values, status=status, **message)
    return see_other(f"/tasks/{task.id}?done=published")


# --- rules ---------------------------------------------------------------------------------------


def _rule_default(name: str) -> Any:
    """A rule's field as the form first shows it: the schema's default."""
    return RuleDraft.model_fields[name].default


def _rule_defaults(request: Request) -> dict[str, Any]:
    return {
        "name": "",
        "area": "",
        "top_n": str(_rule_default("top_n")),
        "resolution": str(request.app.state.settings.coverage_resolutions[0]),
        "publish_at": _rule_default("publish_at"),
        "window_start": _rule_default("window_start"),
        "window_hours": str(_rule_default("window_hours")),
        "lookback_days": str(_rule_default("lookback_days")),
        "points": str(_rule_default("points")),
    }


def _rules_page(
    request: Request,
    db: Session,
    user: User,
    values: dict[str, Any] | None = None,
    *,
    status: int = 200,
    **message: Any,
) -> HTMLResponse:
    locale = request_locale(request)
    areas = org_service.areas_geojson(db)
    choices = area_choices(areas, locale)
    names = {value: name for _kind, items in choices for value, name in items}
    listed = rules.list_rules(db)
    for rule in listed:
        kind, code = next(iter(rule["area"].items()))
        rule["area_name"] = names.get(f"{kind}:{code}", code)
    context = {
        "rules": listed,
        "values": values or _rule_defaults(request),
        "area_choices": choices,
        "area_kind_labels": AREA_KIND_LABELS,
        "resolutions": _resolutions(request),
        "can_manage": policy.has_permission(user, "task.manage"),
        **_common(request),
        **message,
    }
    return render(request, "tasks/rules.html", context, status=status)


@router.get("/tasks/rules")
def rules_page(
    request: Request,
    db: DbSession,
    user: Reader,
    done: Annotated[str, Query(max_length=32)] = "",
    tasks: Annotated[int, Query(ge=0, le=1000)] = 0,
) -> HTMLResponse:
    extra = done_message(request, done, DONE_MESSAGES)
    if done == "rule-run":
        text = formatter(request)._("The rule ran: %(n)d tasks published. Its note says why when there are fewer.")
        extra = {"message": text % {"n": tasks}, "message_kind": "success"}
    return _rules_page(request, db, user, **extra)


@router.post("/tasks/rules")
def create_rule(
    request: Request,
    db: DbSession,
    user: Manager,
    name: Annotated[str, Form(max_length=SHORT)] = "",
    area: Annotated[str, Form(max_length=SHORT)] = "",
    top_n: Annotated[str, Form(max_length=16)] = "",
    resolution: Annotated[str, Form(max_length=8)] = "",
    publish_at: Annotated[str, Form(max_length=16)] = "",
    window_start: Annotated[str, Form(max_length=16)] = "",
    window_hours: Annotated[str, Form(max_length=16)] = "",
    lookback_days: Annotated[str, Form(max_length=16)] = "",
    points: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    values = {
        "name": name,
        "area": area,
        "top_n": top_n,
        "resolution": resolution,
        "publish_at": publish_at,
        "window_start": window_start,
        "window_hours": window_hours,
        "lookback_days": lookback_days,
        "points": points,
    }
    try:
        kind, _sep, code = area.partition(":")
        draft = RuleDraft.model_construct(
            name=name,
            area_kind=cast(Any, kind),  # the service names a wrong kind in the reader's language
            area_code=code,
            top_n=_number(top_n, N_("top N: give a whole number"), default=_rule_default("top_n")) or 0,
            resolution=_number(resolution, N_("resolution: give a whole number")),
            publish_at=publish_at.strip(),
            window_start=window_start.strip(),
            window_hours=_number(
                window_hours, N_("window hours: give a whole number"), default=_rule_default("window_hours")
            )
            or 0,
            lookback_days=_number(
                lookback_days, N_("lookback days: give a whole number"), default=_rule_default("lookback_days")
            )
            or 0,
            points=_number(points, N_("points: give a whole number"), default=_rule_default("points")) or 0,
        )
        rules.create_rule(db, actor=user, draft=draft, limits=_limits(request))
    except DomainError as exc:
        message, status = refusal(request, exc)
        return _rules_page(request, db, user, values, status=status, **message)
    return see_other("/tasks/rules?done=rule-created")


@router.post("/tasks/rules/{rule_id}/active")
def set_rule_active(
    request: Request,
    rule_id: RuleId,
    db: DbSession,
    user: Manager,
    active: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    if active not in ("yes", "no"):
        message, status = refusal(request, InvalidInput(N_("active must be yes or no")))
        return _rules_page(request, db, user, status=status, **message)
    rules.set_rule_active(db, actor=user, rule_id=rule_id, active=active == "yes")
    return see_other(f"/tasks/rules?done={'rule-resumed' if active == 'yes' else 'rule-paused'}")


def _rule_run(request: Request, db: Session, user: User, rule_id: int, *, confirm: str) -> Response:
    listed = {r["id"]: r for r in rules.list_rules(db)}
    if rule_id not in listed:
        raise NotFound(N_("no task rule %(id)d"), id=rule_id)
    if confirm != "yes":
        # The first step only asks: nothing is published until the confirmation form comes back.
        _ = formatter(request)._
        rule = listed[rule_id]
        question = _(
            "Run the rule “%(name)s” now? It publishes today's tasks for up to %(n)d gaps at once, "
            "instead of at %(time)s; it runs once a day either way."
        ) % {"name": rule["name"], "n": rule["top_n"], "time": rule["publish_at"]}
        return _confirm(
            request,
            {
                "question": question,
                "action_url": f"/tasks/rules/{rule_id}/run",
                "confirm_label": _("Yes, run it now"),
                "danger": False,
                "cancel_url": "/tasks/rules",
                "testid": "confirm-run-rule",
            },
        )
    try:
        run = rules.run_rule_now(db, actor=user, rule_id=rule_id, limits=_limits(request))
    except DomainError as exc:
        message, status = refusal(request, exc)
        return _rules_page(request, db, user, status=status, **message)
    return see_other(f"/tasks/rules?{urlencode({'done': 'rule-run', 'tasks': run.tasks_created})}")


@router.get("/tasks/rules/{rule_id}/run")
def confirm_run_rule(request: Request, rule_id: RuleId, db: DbSession, user: Manager) -> Response:
    return _rule_run(request, db, user, rule_id, confirm="")


@router.post("/tasks/rules/{rule_id}/run")
def run_rule(
    request: Request, rule_id: RuleId, db: DbSession, user: Manager, confirm: Annotated[str, Form(max_length=8)] = ""
) -> Response:
    return _rule_run(request, db, user, rule_id, confirm=confirm)


# --- one task ------------------------------------------------------------------------------------


def _detail_page(
    request: Request, db: Session, user: User, task_id: int, *, status: int = 200, **message: Any
) -> HTMLResponse:
    detail = views.view_task(db, user=user, task_id=task_id)
    task = detail["task"]
    can_manage = policy.has_permission(user, "task.manage")
    context = {
        "task": task,
        "detail": detail,
        "targets": {"type": "FeatureCollection", "features": detail["features"]},
        "named": policy.may_see_task_riders(user),
        "can_manage": can_manage,
        "can_cancel": can_manage and task["phase"] in ("upcoming", "active"),
        "can_verify": can_manage and task["phase"] in ("active", "ended") and not task["final"],
        **_common(request),
        **message,
    }
    return render(request, "tasks/detail.html", context, status=status)


@router.get("/tasks/{task_id}")
@writes_on_read
def task_page(
    request: Request, task_id: TaskId, db: DbSession, user: Reader, done: Annotated[str, Query(max_length=32)] = ""
) -> HTMLResponse:
    return _detail_page(request, db, user, task_id, **done_message(request, done, DONE_MESSAGES))


@router.post("/tasks/{task_id}/verify")
def verify(request: Request, task_id: TaskId, db: DbSession, user: Manager) -> Response:
    task = service.get_task(db, task_id)
    try:
        verification.verify_now(db, task=task, limits=_limits(request))
    except DomainError as exc:
        message, status = refusal(request, exc)
        return _detail_page(request, db, user, task.id, status=status, **message)
    return see_other(f"/tasks/{task_id}?done=verified")


def _cancellation(request: Request, db: Session, user: User, task_id: int, *, confirm: str) -> Response:
    task = service.get_task(db, task_id)
    if confirm != "yes":
        _ = formatter(request)._
        question = _(
            "Cancel the task “%(title)s”? Riders no longer see it and it is no longer verified; this cannot be undone."
        ) % {"title": task.title}
        return _confirm(
            request,
            {
                "question": question,
                "action_url": f"/tasks/{task.id}/cancel",
                "confirm_label": _("Yes, cancel the task"),
                "danger": True,
                "cancel_url": f"/tasks/{task.id}",
                "testid": "confirm-cancel-task",
            },
        )
    try:
        service.cancel_task(db, actor=user, task_id=task.id)
    except DomainError as exc:
        message, status = refusal(request, exc)
        return _detail_page(request, db, user, task.id, status=status, **message)
    return see_other(f"/tasks/{task.id}?done=cancelled")


@router.get("/tasks/{task_id}/cancel")
def confirm_cancel(request: Request, task_id: TaskId, db: DbSession, user: Manager) -> Response:
    return _cancellation(request, db, user, task_id, confirm="")


@router.post("/tasks/{task_id}/cancel")
def cancel(
    request: Request, task_id: TaskId, db: DbSession, user: Manager, confirm: Annotated[str, Form(max_length=8)] = ""
) -> Response:
    return _cancellation(request, db, user, task_id, confirm=confirm)


# --- the rider's tasks ---------------------------------------------------------------------------


@router.get("/my/tasks")
def my_tasks(request: Request, db: DbSession, settings: SettingsDep, user: RiderSelf) -> HTMLResponse:
    found = views.rider_tasks(db, rider=user)
    context = {"open": found.open, "recent": found.recent, "distance_from": found.reference_source, **_common(request)}
    return render(request, "rider/tasks.html", context)


@router.get("/my/tasks/{task_id}")
def my_task(request: Request, task_id: TaskId, db: DbSession, user: RiderSelf) -> HTMLResponse:
    detail = views.rider_task_detail(db, rider=user, task_id=task_id)
    context = {
        "task": detail["task"],
        "targets": {"type": "FeatureCollection", "features": detail["features"]},
        **_common(request),
    }
    return render(request, "rider/task.html", context)
