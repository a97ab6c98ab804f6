"""Riders' voice and the police's visits.

A rider's suggestion or complaint goes to the community police officer of the community their station
lies in (the least loaded, if several), with a deadline: three days for a complaint, seven for a
suggestion; with no such officer it waits for the command centre to give it to one. The officer answers,
the rider is told and rates the answer. Anonymous feedback names its writer to nobody but the writer.
Visits record who led them, when, which riders were there, what was said, and the follow-up actions
promised, each with an owner and a deadline, until done.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from riderwatch import policy
from riderwatch.audit.service import record
from riderwatch.db import atomic
from riderwatch.errors import N_, Conflict, Forbidden, InvalidInput, NotFound
from riderwatch.infra.clock import utcnow
from riderwatch.infra.sqlparams import rows_changed
from riderwatch.models import Feedback, Rider, Station, User, Visit, VisitAction, VisitRider
from riderwatch.models.voice import FEEDBACK_KINDS, VISIT_KINDS
from riderwatch.notices import service as notices
from riderwatch.org import service as org_service
from riderwatch.voice.schemas import VisitIn

DEADLINE_DAYS = {"complaint": 3, "suggestion": 7}
MAX_TEXT = 2000


# --- feedback -------------------------------------------------------------------------------------------


def responsible_officer(session: Session, rider: User) -> User | None:
    """The community police officer for a rider: of the community their station lies in, least loaded."""
    membership = session.get(Rider, rider.id)
    station = session.get(Station, membership.station_id) if membership and membership.station_id else None
    if station is None or station.lat is None or station.lon is None:
        return None
    place = org_service.locate(session, lat=station.lat, lon=station.lon)
    if place.community is None:
        return None
    officers = list(
        session.scalars(
            select(User).where(User.role == "police", User.is_active.is_(True), User.community_id == place.community.id)
        )
    )
    return org_service.least_loaded(session, officers) if officers else None


def submit(session: Session, *, rider: User, kind: str, body: str, anonymous: bool) -> Feedback:
    body = body.strip()
    if kind not in FEEDBACK_KINDS:
        raise InvalidInput(N_("feedback is a suggestion or a complaint, not %(kind)r"), kind=kind)
    if not body:
        raise InvalidInput(N_("write what you want to tell the police"))
    if len(body) > MAX_TEXT:
        raise InvalidInput(N_("at most %(max)s characters"), max=MAX_TEXT)
    now = utcnow()
    officer = responsible_officer(session, rider)
    feedback = Feedback(
        rider_id=rider.id,
        kind=kind,
        body=body,
        anonymous=anonymous,
        assignee_id=officer.id if officer else None,
        due_at=now + timedelta(days=DEADLINE_DAYS[kind]),
        created_at=now,
    )
    session.add(feedback)
    session.flush()
    if officer is not None:
        notices.notify(session, user_id=officer.id, kind="feedback_assigned", params={"feedback": feedback.id})
    return feedback


def get(session: Session, feedback_id: int) -> Feedback:
    found = session.get(Feedback, feedback_id)
    if found is None:
        raise NotFound(N_("no feedback %(id)s"), id=feedback_id)
    return found


def for_handler(session: Session, feedback_id: int, *, user: User) -> Feedback:
    feedback = get(session, feedback_id)
    if not policy.may_handle_feedback(user, feedback.assignee_id):
        raise NotFound(N_("no feedback %(id)s"), id=feedback_id)
    return feedback


def assign(session: Session, *, user: User, feedback_id: int, officer_username: str) -> Feedback:
    """The command centre gives feedback to an officer (or to another)."""
    if not policy.may_assign_feedback(user):
        raise Forbidden(N_("the command centre assigns feedback"))
    feedback = get(session, feedback_id)
    officer = session.scalars(
        select(User).where(User.username == officer_username.strip(), User.is_active.is_(True))
    ).first()
    if officer is None or officer.role not in ("police", "dispatcher"):
        raise InvalidInput(N_("no active officer %(username)r"), username=officer_username)
    if feedback.status != "open":
        raise Conflict(N_("this feedback was already answered"))
    feedback.assignee_id = officer.id
    session.flush()
    notices.notify(session, user_id=officer.id, kind="feedback_assigned", params={"feedback": feedback.id})
    record(session, actor=user, action="feedback.assign", object_type="feedback", object_id=feedback.id)
    return feedback


def answer(session: Session, *, user: User, feedback_id: int, text: str) -> Feedback:
    text = text.strip()
    if not text:
        raise InvalidInput(N_("write the answer the rider will read"))
    if len(text) > MAX_TEXT:
        raise InvalidInput(N_("at most %(max)s characters"), max=MAX_TEXT)
    feedback = for_handler(session, feedback_id, user=user)
    moved = rows_changed(
        session.execute(
            update(Feedback)
            .where(Feedback.id == feedback.id, Feedback.status == "open")
            .values(status="answered", answer=text, answered_by_id=user.id, answered_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    )
    session.refresh(feedback)
    if not moved:
        raise Conflict(N_("this feedback was already answered"))
    notices.notify(session, user_id=feedback.rider_id, kind="feedback_answered", params={"feedback": feedback.id})
    record(session, actor=user, action="feedback.answer", object_type="feedback", object_id=feedback.id)
    return feedback


def rate(session: Session, *, rider: User, feedback_id: int, rating: int, note: str = "") -> Feedback:
    feedback = get(session, feedback_id)
    if feedback.rider_id != rider.id:
        raise NotFound(N_("no feedback %(id)s"), id=feedback_id)
    if feedback.status != "answered":
        raise Conflict(N_("an answer is rated once it has come"))
    if feedback.rating is not None:
        raise Conflict(N_("you have rated this answer already"))
    if not 1 <= rating <= 5:
        raise InvalidInput(N_("a rating is 1 to 5"))
    feedback.rating, feedback.rating_note, feedback.rated_at = rating, note.strip()[:500], utcnow()
    session.flush()
    return feedback


def mine(session: Session, *, rider: User) -> list[Feedback]:
    return list(
        session.scalars(
            select(Feedback).where(Feedback.rider_id == rider.id).order_by(Feedback.created_at.desc()).limit(100)
        )
    )


def desk(session: Session, *, user: User, show: str = "open") -> list[Feedback]:
    """Feedback for a handler: their own (police), or all (the command centre); open first by deadline."""
    query = select(Feedback).where(policy.feedback_desk_filter(user))
    if show == "open":
        query = query.where(Feedback.status == "open").order_by(Feedback.due_at, Feedback.id)
    elif show == "unassigned":
        query = query.where(Feedback.status == "open", Feedback.assignee_id.is_(None)).order_by(Feedback.due_at)
    else:
        query = query.order_by(Feedback.created_at.desc())
    return list(session.scalars(query.limit(200)))


def author_name(session: Session, feedback: Feedback, *, viewer: User) -> str | None:
    """Who wrote it, for a handler: None when it is anonymous (the rider alone knows)."""
    if feedback.anonymous and viewer.id != feedback.rider_id:
        return None
    author = session.get(User, feedback.rider_id)
    return (author.display_name or author.username) if author else None


# --- visits ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionIn:
    text: str
    owner: str  # username
    due_on: date


@atomic
def record_visit(
    session: Session,
    *,
    user: User,
    kind: str,
    held_on: date,
    place: str,
    station_code: str | None,
    riders: list[str],
    notes: str,
    actions: list[ActionIn],
    timezone: str,
) -> Visit:
    if kind not in VISIT_KINDS:
        raise InvalidInput(N_("a visit is a visit, a condolence or a forum, not %(kind)r"), kind=kind)
    today = utcnow().astimezone(ZoneInfo(timezone)).date()
    if held_on > today:
        raise InvalidInput(N_("a visit is recorded once it has taken place"))
    station = None
    if station_code:
        station = session.scalars(select(Station).where(Station.code == station_code)).first()
        if station is None:
            raise NotFound(N_("no station %(code)r"), code=station_code)
    names = sorted({r.strip() for r in riders if r.strip()})
    found = (
        {u.username: u for u in session.scalars(select(User).where(User.username.in_(names), User.role == "rider"))}
        if names
        else {}
    )
    missing = [n for n in names if n not in found]
    if missing:
        raise InvalidInput(N_("no rider %(username)r"), username=missing[0])
    visit = Visit(
        kind=kind,
        held_on=held_on,
        place=place.strip()[:200],
        station_id=station.id if station else None,
        officer_id=user.id,
        notes=notes.strip()[: MAX_TEXT * 2],
        created_at=utcnow(),
    )
    session.add(visit)
    session.flush()
    session.add_all(VisitRider(visit_id=visit.id, rider_id=u.id) for u in found.values())
    for action in actions:
        if not action.text.strip():
            continue
        owner = session.scalars(select(User).where(User.username == action.owner.strip())).first()
        if owner is None or owner.role in ("rider", "platform"):
            raise InvalidInput(
                N_("a follow-up action needs an owner among the staff, not %(username)r"), username=action.owner
            )
        if action.due_on < held_on:
            raise InvalidInput(N_("a follow-up action is due after the visit"))
        session.add(
            VisitAction(visit_id=visit.id, text=action.text.strip()[:MAX_TEXT], owner_id=owner.id, due_on=action.due_on)
        )
    session.flush()
    record(session, actor=user, action="visit.record", object_type="visit", object_id=visit.id, riders=len(found))
    return visit


def record_visit_from(session: Session, *, user: User, body: VisitIn, timezone: str) -> Visit:
    """A visit as the API and the page send it."""
    return record_visit(
        session,
        user=user,
        kind=body.kind,
        held_on=body.held_on,
        place=body.place,
        station_code=body.station,
        riders=body.riders,
        notes=body.notes,
        actions=[ActionIn(text=a.text, owner=a.owner, due_on=a.due_on) for a in body.actions],
        timezone=timezone,
    )


def visits(session: Session, *, user: User, limit: int = 100) -> list[Visit]:
    query = select(Visit).where(policy.visible_visits_filter(user))
    return list(session.scalars(query.order_by(Visit.held_on.desc(), Visit.id.desc()).limit(limit)))


def visit_details(session: Session, visit_ids: list[int]) -> tuple[dict[int, list[str]], dict[int, list[VisitAction]]]:
    riders: dict[int, list[str]] = defaultdict(list)
    for visit_id, name, username in session.execute(
        select(VisitRider.visit_id, User.display_name, User.username)
        .join(User, User.id == VisitRider.rider_id)
        .where(VisitRider.visit_id.in_(visit_ids))
        .order_by(User.username)
    ):
        riders[visit_id].append(name or username)
    actions: dict[int, list[VisitAction]] = defaultdict(list)
    for action in session.scalars(
        select(VisitAction).where(VisitAction.visit_id.in_(visit_ids)).order_by(VisitAction.due_on)
    ):
        actions[action.visit_id].append(action)
    return riders, actions


def finish_action(session: Session, *, user: User, action_id: int, note: str = "") -> VisitAction:
    action = session.get(VisitAction, action_id)
    if action is None:
        raise NotFound(N_("no follow-up action %(id)s"), id=action_id)
    if not policy.may_finish_visit_action(user, action.owner_id):
        raise Forbidden(N_("the action's owner, or the command centre, marks it done"))
    if action.done_at is not None:
        raise Conflict(N_("this action is already done"))
    action.done_at, action.done_note = utcnow(), note.strip()[:500]
    session.flush()
    record(session, actor=user, action="visit.action_done", object_type="visit", object_id=action.visit_id)
    return action


# --- satisfaction ---------------------------------------------------------------------------------------


@dataclass
class Month:
    month: str
    received: int = 0
    answered: int = 0
    in_time: int = 0
    ratings: list[int] = field(default_factory=list)
    visits: int = 0
    riders: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "received": self.received,
            "answered": self.answered,
            "in_time": self.in_time,
            "rated": len(self.ratings),
            "rating": round(sum(self.ratings) / len(self.ratings), 2) if self.ratings else None,
            "visits": self.visits,
            "riders": self.riders,
        }


def satisfaction(session: Session, *, timezone: str, months: int = 12) -> list[dict[str, Any]]:
    """Per month (oldest first): feedback received, answered, answered in time, the mean rating of the
    answers rated that month, visits held and riders visited."""
    tz = ZoneInfo(timezone)
    now = utcnow().astimezone(tz)
    keys: list[str] = []
    year, month = now.year, now.month
    for _ in range(months):
        keys.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    rows = {k: Month(month=k) for k in reversed(keys)}

    def key(moment: datetime | date) -> str:
        local = moment.astimezone(tz) if isinstance(moment, datetime) else moment
        return f"{local.year:04d}-{local.month:02d}"

    for f in session.scalars(select(Feedback)):
        if (row := rows.get(key(f.created_at))) is not None:
            row.received += 1
        if f.answered_at is not None and (row := rows.get(key(f.answered_at))) is not None:
            row.answered += 1
            row.in_time += int(f.answered_at <= f.due_at)
        if f.rated_at is not None and f.rating is not None and (row := rows.get(key(f.rated_at))) is not None:
            row.ratings.append(f.rating)
    visit_riders = {
        k: v for k, v in session.execute(select(VisitRider.visit_id, func.count()).group_by(VisitRider.visit_id))
    }
    for v in session.scalars(select(Visit)):
        if (row := rows.get(key(v.held_on))) is not None:
            row.visits += 1
            row.riders += visit_riders.get(v.id, 0)
    return [row.as_dict() for row in rows.values()]
