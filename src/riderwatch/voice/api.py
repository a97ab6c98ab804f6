"""Riders' voice under /api/v1: feedback to the police and its answers, visits and their follow-up
actions, satisfaction per month."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from riderwatch.deps import DbSession, PathId, SettingsDep, require
from riderwatch.models import Feedback, User
from riderwatch.voice import service
from riderwatch.voice.schemas import AnswerIn, AssignIn, FeedbackIn, RatingIn, VisitIn

router = APIRouter(prefix="/api/v1", tags=["voice"])

Speaker = Annotated[User, Depends(require("voice.speak"))]
Handler = Annotated[User, Depends(require("voice.answer"))]
Recorder = Annotated[User, Depends(require("visit.record"))]
VisitReader = Annotated[User, Depends(require("visit.read"))]
Watcher = Annotated[User, Depends(require("voice.satisfaction"))]


def present(db: DbSession, f: Feedback, *, viewer: User) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": f.id,
        "kind": f.kind,
        "body": f.body,
        "anonymous": f.anonymous,
        "status": f.status,
        "due_at": f.due_at.isoformat(),
        "answer": f.answer,
        "answered_at": f.answered_at.isoformat() if f.answered_at else None,
        "rating": f.rating,
        "created_at": f.created_at.isoformat(),
    }
    if viewer.id != f.rider_id:
        out["rider"] = service.author_name(db, f, viewer=viewer)
    return out


@router.post("/me/feedback", status_code=201, summary="Send the police a suggestion or a complaint")
def send(body: FeedbackIn, db: DbSession, user: Speaker) -> dict[str, Any]:
    feedback = service.submit(db, rider=user, kind=body.kind, body=body.body, anonymous=body.anonymous)
    return present(db, feedback, viewer=user)


@router.get("/me/feedback", summary="My feedback and the answers")
def my_feedback(db: DbSession, user: Speaker) -> dict[str, Any]:
    return {"items": [present(db, f, viewer=user) for f in service.mine(db, rider=user)]}


@router.post("/me/feedback/{feedback_id}/rating", summary="Rate an answer (1 to 5, once)")
def rate(feedback_id: PathId, body: RatingIn, db: DbSession, user: Speaker) -> dict[str, Any]:
    return present(
        db, service.rate(db, rider=user, feedback_id=feedback_id, rating=body.rating, note=body.note), viewer=user
    )


@router.get("/feedback", summary="Feedback to answer: an officer's own, the command centre's all")
def desk(
    db: DbSession,
    user: Handler,
    show: Annotated[Literal["open", "unassigned", "all"], Query()] = "open",
) -> dict[str, Any]:
    return {"items": [present(db, f, viewer=user) for f in service.desk(db, user=user, show=show)]}


@router.post("/feedback/{feedback_id}/answer", summary="Answer feedback (the rider is told)")
def answer(feedback_id: PathId, body: AnswerIn, db: DbSession, user: Handler) -> dict[str, Any]:
    return present(db, service.answer(db, user=user, feedback_id=feedback_id, text=body.answer), viewer=user)


@router.post("/feedback/{feedback_id}/assign", summary="Give feedback to an officer (the command centre)")
def assign(feedback_id: PathId, body: AssignIn, db: DbSession, user: Handler) -> dict[str, Any]:
    feedback = service.assign(db, user=user, feedback_id=feedback_id, officer_username=body.officer)
    return present(db, feedback, viewer=user)


@router.post("/visits", status_code=201, summary="Record a visit, a condolence or a forum with riders")
def record_visit(body: VisitIn, db: DbSession, user: Recorder, settings: SettingsDep) -> dict[str, Any]:
    visit = service.record_visit_from(db, user=user, body=body, timezone=settings.timezone)
    return {"id": visit.id, "kind": visit.kind, "held_on": visit.held_on.isoformat()}


@router.get("/visits", summary="Visits, with their riders and follow-up actions")
def list_visits(db: DbSession, user: VisitReader) -> dict[str, Any]:
    rows = service.visits(db, user=user)
    riders, actions = service.visit_details(db, [v.id for v in rows])
    return {
        "items": [
            {
                "id": v.id,
                "kind": v.kind,
                "held_on": v.held_on.isoformat(),
                "place": v.place,
                "notes": v.notes,
                "riders": riders.get(v.id, []),
                "actions": [
                    {
                        "id": a.id,
                        "text": a.text,
                        "due_on": a.due_on.isoformat(),
                        "done": a.done_at is not None,
                    }
                    for a in actions.get(v.id, [])
                ],
            }
            for v in rows
        ]
    }


@router.post("/visit-actions/{action_id}/done", summary="Mark a follow-up action done")
def action_done(action_id: PathId, db: DbSession, user: Recorder) -> dict[str, Any]:
    action = service.finish_action(db, user=user, action_id=action_id)
    return {"id": action.id, "done": True}


@router.get("/voice/satisfaction", summary="Per month: feedback received and answered, mean rating, visits")
def satisfaction(db: DbSession, user: Watcher, settings: SettingsDep) -> dict[str, Any]:
    return {"months": service.satisfaction(db, timezone=settings.timezone)}
