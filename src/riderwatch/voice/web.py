"""The voice pages: a rider tells the police and reads the answers (/feedback); officers and the command
centre answer (/feedback/desk); visits and condolences with their follow-up actions (/visits); satisfaction
over the months (/voice/satisfaction).

Thin like the other pages: the rules are voice.service, behind /api/v1 too.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch import policy
from riderwatch.deps import DbSession, PathId, require
from riderwatch.errors import N_, DomainError, NotFound
from riderwatch.infra.clock import utcnow
from riderwatch.models import Feedback, Station, User
from riderwatch.points.service import local_today
from riderwatch.voice import service
from riderwatch.voice.schemas import VisitIn
from riderwatch.web.forms import LONG, done_message, form_text, labels_in, refusal, see_other
from riderwatch.web.templating import render

router = APIRouter(include_in_schema=False)

Speaker = Annotated[User, Depends(require("voice.speak"))]
Handler = Annotated[User, Depends(require("voice.answer"))]
Recorder = Annotated[User, Depends(require("visit.record"))]
VisitReader = Annotated[User, Depends(require("visit.read"))]
Watcher = Annotated[User, Depends(require("voice.satisfaction"))]

KIND_LABELS = {"suggestion": N_("Suggestion"), "complaint": N_("Complaint")}
STATUS_LABELS = {"open": N_("Waiting for an answer"), "answered": N_("Answered")}
VISIT_LABELS = {"visit": N_("Visit"), "condolence": N_("Condolence"), "forum": N_("Forum")}
DONE = {
    "sent": N_("Sent. The police will answer here; you will find a notice."),
    "rated": N_("Thank you for rating the answer."),
    "answered": N_("Answered: the rider is told."),
    "assigned": N_("Given to the officer: they are told."),
    "visit": N_("The visit is recorded."),
    "action": N_("The action is marked done."),
}


def _labels(request: Request) -> dict[str, dict[str, str]]:
    return {
        "kinds": labels_in(request, KIND_LABELS),
        "statuses": labels_in(request, STATUS_LABELS),
        "visits": labels_in(request, VISIT_LABELS),
    }


# --- the rider's feedback -------------------------------------------------------------------------------


def _mine(
    request: Request, db: Session, user: User, *, values: dict[str, Any] | None = None, status: int = 200, **extra: Any
) -> HTMLResponse:
    context = {
        "items": service.mine(db, rider=user),
        "values": {"kind": "suggestion", "body": "", "anonymous": False} | (values or {}),
        "labels": _labels(request),
        **extra,
    }
    return render(request, "voice/mine.html", context, status=status)


@router.get("/feedback")
def my_feedback(request: Request, db: DbSession, user: Speaker, done: str = "") -> HTMLResponse:
    return _mine(request, db, user, **done_message(request, done, DONE))


@router.post("/feedback")
def send(
    request: Request,
    db: DbSession,
    user: Speaker,
    kind: Annotated[str, form_text()] = "suggestion",
    body: Annotated[str, form_text(LONG)] = "",
    anonymous: Annotated[str, form_text()] = "",
) -> Response:
    values = {"kind": kind, "body": body, "anonymous": anonymous == "1"}
    try:
        service.submit(db, rider=user, kind=kind, body=body, anonymous=anonymous == "1")
    except DomainError as exc:
        message, status = refusal(request, exc)
        return _mine(request, db, user, values=values, status=status, **message)
    return see_other("/feedback?done=sent")


@router.post("/feedback/{feedback_id}/rating")
def rate(
    request: Request,
    feedback_id: PathId,
    db: DbSession,
    user: Speaker,
    rating: Annotated[str, form_text()] = "",
    note: Annotated[str, form_text()] = "",
) -> Response:
    try:
        value = int(rating) if rating.isdigit() else 0
        service.rate(db, rider=user, feedback_id=feedback_id, rating=value, note=note)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        message, status = refusal(request, exc)
        return _mine(request, db, user, status=status, **message)
    return see_other("/feedback?done=rated")


# --- the officers' desk ---------------------------------------------------------------------------------


@router.get("/feedback/desk")
def desk(
    request: Request,
    db: DbSession,
    user: Handler,
    show: Annotated[Literal["open", "unassigned", "all"], Query()] = "open",
    done: str = "",
) -> HTMLResponse:
    items = service.desk(db, user=user, show=show)
    context = {
        "items": items,
        "authors": {f.id: service.author_name(db, f, viewer=user) for f in items},
        "assignees": _names(db, {f.assignee_id for f in items if f.assignee_id}),
        "show": show,
        "labels": _labels(request),
        "now": utcnow(),
        **done_message(request, done, DONE),
    }
    return render(request, "voice/desk.html", context)


def _names(db: Session, ids: set[int]) -> dict[int, str]:
    return {u.id: u.display_name or u.username for u in db.scalars(select(User).where(User.id.in_(ids)))}


def _one(
    request: Request, db: Session, user: User, feedback: Feedback, *, status: int = 200, **extra: Any
) -> HTMLResponse:
    officers = list(
        db.scalars(select(User).where(User.role == "police", User.is_active.is_(True)).order_by(User.display_name))
    )
    context = {
        "f": feedback,
        "author": service.author_name(db, feedback, viewer=user),
        "assignee": _names(db, {feedback.assignee_id}).get(feedback.assignee_id or 0) if feedback.assignee_id else None,
        "officers": officers,
        "may_assign": policy.may_assign_feedback(user),
        "labels": _labels(request),
        **extra,
    }
    return render(request, "voice/one.html", context, status=status)


@router.get("/feedback/desk/{feedback_id}")
def one(request: Request, feedback_id: PathId, db: DbSession, user: Handler) -> HTMLResponse:
    return _one(request, db, user, service.for_handler(db, feedback_id, user=user))


@router.post("/feedback/desk/{feedback_id}/answer")
def answer(
    request: Request,
    feedback_id: PathId,
    db: DbSession,
    user: Handler,
    answer: Annotated[str, form_text(LONG)] = "",
) -> Response:
    feedback = service.for_handler(db, feedback_id, user=user)
    try:
        service.answer(db, user=user, feedback_id=feedback.id, text=answer)
    except DomainError as exc:
        message, status = refusal(request, exc)
        return _one(request, db, user, feedback, status=status, **message)
    return see_other("/feedback/desk?done=answered")


@router.post("/feedback/desk/{feedback_id}/assign")
def assign(
    request: Request,
    feedback_id: PathId,
    db: DbSession,
    user: Handler,
    officer: Annotated[str, form_text()] = "",
) -> Response:
    feedback = service.for_handler(db, feedback_id, user=user)
    try:
        service.assign(db, user=user, feedback_id=feedback.id, officer_username=officer)
    except DomainError as exc:
        message, status = refusal(request, exc)
        return _one(request, db, user, feedback, status=status, **message)
    return see_other("/feedback/desk?done=assigned")


# --- visits ---------------------------------------------------------------------------------------------


def _visits(
    request: Request, db: Session, user: User, *, values: dict[str, Any] | None = None, status: int = 200, **extra: Any
) -> HTMLResponse:
    rows = service.visits(db, user=user)
    riders, actions = service.visit_details(db, [v.id for v in rows])
    today = local_today(request.app.state.settings.timezone)
    context = {
        "rows": rows,
        "riders": riders,
        "actions": actions,
        "officers": _names(db, {v.officer_id for v in rows}),
        "owners": _names(db, {a.owner_id for acts in actions.values() for a in acts}),
        "stations": list(db.scalars(select(Station).where(Station.retired_at.is_(None)).order_by(Station.name))),
        "may_record": policy.has_permission(user, "visit.record"),
        "today": today,
        "values": {
            "kind": "visit",
            "held_on": today.isoformat(),
            "place": "",
            "station": "",
            "riders": "",
            "notes": "",
            "action_text": "",
            "action_owner": user.username,
            "action_due": "",
        }
        | (values or {}),
        "labels": _labels(request),
        **extra,
    }
    return render(request, "voice/visits.html", context, status=status)


@router.get("/visits")
def visits(request: Request, db: DbSession, user: VisitReader, done: str = "") -> HTMLResponse:
    return _visits(request, db, user, **done_message(request, done, DONE))


@router.post("/visits")
def record_visit(
    request: Request,
    db: DbSession,
    user: Recorder,
    kind: Annotated[str, form_text()] = "visit",
    held_on: Annotated[str, form_text()] = "",
    place: Annotated[str, form_text()] = "",
    station: Annotated[str, form_text()] = "",
    riders: Annotated[str, form_text(LONG)] = "",
    notes: Annotated[str, form_text(LONG)] = "",
    action_text: Annotated[list[str], Form()] = [],  # noqa: B006 (FastAPI copies defaults)
    action_owner: Annotated[list[str], Form()] = [],  # noqa: B006
    action_due: Annotated[list[str], Form()] = [],  # noqa: B006
) -> Response:
    values = {
        "kind": kind,
        "held_on": held_on,
        "place": place,
        "station": station,
        "riders": riders,
        "notes": notes,
        "action_text": (action_text or [""])[0],
        "action_owner": (action_owner or [""])[0],
        "action_due": (action_due or [""])[0],
    }
    try:
        actions = [
            {"text": t, "owner": o, "due_on": d}
            for t, o, d in zip(action_text, action_owner, action_due, strict=False)
            if t.strip()
        ]
        body = VisitIn.model_validate(
            {
                "kind": kind,
                "held_on": held_on or None,
                "place": place,
                "station": station or None,
                "riders": [r for r in riders.replace("，", ",").replace("\n", ",").split(",") if r.strip()],
                "notes": notes,
                "actions": actions,
            }
        )
        service.record_visit_from(db, user=user, body=body, timezone=request.app.state.settings.timezone)
    except (DomainError, ValidationError) as exc:
        message, status = refusal(request, exc)
        return _visits(request, db, user, values=values, status=status, **message)
    return see_other("/visits?done=visit")


@router.post("/visits/actions/{action_id}/done")
def action_done(request: Request, action_id: PathId, db: DbSession, user: Recorder) -> Response:
    try:
        service.finish_action(db, user=user, action_id=action_id)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        message, status = refusal(request, exc)
        return _visits(request, db, user, status=status, **message)
    return see_other("/visits?done=action")


# --- satisfaction ---------------------------------------------------------------------------------------


@router.get("/voice/satisfaction")
def satisfaction(request: Request, db: DbSession, user: Watcher) -> HTMLResponse:
    months = service.satisfaction(db, timezone=request.app.state.settings.timezone)
    return render(request, "voice/satisfaction.html", {"months": months})
