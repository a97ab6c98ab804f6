"""The clue desk: reporting, triage, dispatch, handling, closure and feedback (the closed loop).

Services flush, never commit: the request, CLI command or job that calls them owns the
transaction. Every state change appends to the clue's timeline and to the audit log.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from riderwatch import policy
from riderwatch.audit.service import record
from riderwatch.clues import workflow
from riderwatch.clues.schemas import ActionBody, ClueCreate
from riderwatch.db import atomic
from riderwatch.errors import N_, Conflict, Forbidden, InvalidInput, NotFound, TooManyRequests, TransitionNotAllowed
from riderwatch.geo.coords import haversine_m, to_wgs84
from riderwatch.infra.clock import utcnow
from riderwatch.infra.files import FileStore
from riderwatch.infra.images import CheckedPhoto
from riderwatch.models import Alert, AlertReceipt, Category, Clue, ClueEvent, CluePhoto, Community, Grid, User
from riderwatch.notices import service as notices
from riderwatch.org import routing
from riderwatch.org import service as org_service
from riderwatch.points import service as points
from riderwatch.webhooks import service as webhooks

FUTURE_SKEW = timedelta(minutes=10)
MAX_AGE = timedelta(days=90)
# A reporter's pace is counted over the last hour (settings.clues_per_rider_per_hour).
PACE_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class ClueFilters:
    status: list[str] = field(default_factory=list)
    category: str | None = None
    community_id: int | None = None
    grid_id: int | None = None
    overdue: bool | None = None
    assignee_id: int | None = None
    reporter_id: int | None = None
    observed_from: datetime | None = None
    observed_to: datetime | None = None
    query: str | None = None  # words, all of which a clue's number, description or address holds
    limit: int = 100
    offset: int = 0


MAX_QUERY_WORDS = 8


def matches_words(query: str) -> ColumnElement[bool]:
    """Clues whose number, description or address hold every word of `query` (any case; Chinese words
    match as substrings, so 盗窃 finds 电动车盗窃). A word like 123 or #123 also matches clue 123."""
    words = query.split()[:MAX_QUERY_WORDS]
    conditions = []
    for word in words:
        pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        found = or_(Clue.description.ilike(pattern, escape="\\"), Clue.address.ilike(pattern, escape="\\"))
        number = word.lstrip("#")
        if number.isdigit() and len(number) <= 18:
            found = or_(found, Clue.id == int(number))
        conditions.append(found)
    return and_(*conditions) if conditions else true()


def get_category(session: Session, code: str) -> Category:
    category = session.get(Category, code)
    if category is None or not category.active:
        raise InvalidInput(N_("unknown category %(code)r: use a service_code from the Open311 service list"), code=code)
    return category


def deadline_for(category: Category, *, start: datetime, urgent: bool) -> datetime:
    return start + timedelta(hours=category.urgent_deadline_hours if urgent else category.deadline_hours)


def request_fingerprint(data: ClueCreate, photos: list[CheckedPhoto]) -> str:
    payload = data.model_dump(mode="json")
    payload["photos"] = [p.sha256 for p in photos]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _append(
    session: Session,
    clue: Clue,
    *,
    actor: User | None,
    action: str,
    from_status: str | None,
    note: str = "",
    at: datetime | None = None,
    **data: object,
) -> ClueEvent:
    event = ClueEvent(
        clue_id=clue.id,
        # The time the step happened (the caller's `now`), so replays and imports keep true timelines.
        at=at or utcnow(),
        actor_id=actor.id if actor else None,
        action=action,
        from_status=from_status,
        to_status=clue.status,
        note=note,
        data=data,
    )
    session.add(event)
    record(
        session,
        actor=actor,
        action=f"clue.{action}",
        object_type="clue",
        object_id=clue.id,
        from_status=from_status,
        to_status=clue.status,
    )
    return event


def submit_clue(
    session: Session,
    *,
    reporter: User | None,
    data: ClueCreate,
    photos: list[CheckedPhoto],
    store: FileStore | None,
    max_photos: int,
    idempotency_key: str | None = None,
    source: str = "app",
    contact: dict[str, str] | None = None,
    attributes: dict[str, object] | None = None,
    hourly_limit: int | None = None,
    now: datetime | None = None,
    locator: org_service.Locator | None = None,
) -> tuple[Clue, bool]:
    """Record a reported clue. With an idempotency key a retry returns the first clue (created=False).

    With `hourly_limit`, a reporter who has sent that many clues in the last hour is refused (429) until
    the oldest of them is an hour old; a retry of a clue already stored is answered all the same."""
    now = now or utcnow()
    check_submission(data, photos, idempotency_key=idempotency_key, max_photos=max_photos)
    fingerprint = request_fingerprint(data, photos)
    if reporter is not None and idempotency_key:
        existing = _by_idempotency_key(session, reporter, idempotency_key)
        if existing is not None:
            return replay(existing, fingerprint), False
    if reporter is not None and hourly_limit is not None:
        _check_pace(session, reporter, hourly_limit, now)
    if data.alert_id is not None:
        check_sighting(session, reporter, data.alert_id)
    clue = Clue(
        **clue_row(
            get_category(session, data.category),
            data,
            reporter=reporter,
            now=now,
            place=lambda lat, lon: (
                locator.locate(lat=lat, lon=lon) if locator else org_service.locate(session, lat=lat, lon=lon)
            ),
            fingerprint=fingerprint,
            idempotency_key=idempotency_key,
            source=source,
            contact=contact,
            attributes=attributes,
        )
    )
    if store is not None:  # else the caller has stored the photos already
        for photo in photos:
            # Content-addressed and atomic: a rolled-back clue leaves only an orphan file.
            store.put(photo.sha256, photo.data)
    try:
        with session.begin_nested():
            session.add(clue)
            session.flush()
    except IntegrityError:
        # A concurrent retry with the same key won the race: answer with its clue.
        if reporter is not None and idempotency_key:
            existing = _by_idempotency_key(session, reporter, idempotency_key)
            if existing is not None:
                return replay(existing, fingerprint), False
        raise
    for position, photo in enumerate(photos):
        session.add(
            CluePhoto(
                clue_id=clue.id,
                position=position,
                sha256=photo.sha256,
                content_type=photo.content_type,
                size=len(photo.data),
                width=photo.width,
                height=photo.height,
            )
        )
    _append(session, clue, actor=reporter, action="submit", from_status=None, at=now, photos=len(photos), source=source)
    session.flush()
    if clue.alert_id is not None:
        tell_sighting(
            session, clue_id=clue.id, alert_id=clue.alert_id, category=clue.category_code, lat=clue.lat, lon=clue.lon
        )
    return clue, True


def received_alert(session: Session, *, rider_id: int, alert_id: int) -> Alert | None:
    """The alert, if the rider received it (a sighting can answer it)."""
    return session.scalar(
        select(Alert)
        .join(AlertReceipt, AlertReceipt.alert_id == Alert.id)
        .where(Alert.id == alert_id, AlertReceipt.rider_id == rider_id)
    )


def check_sighting(session: Session, reporter: User | None, alert_id: int) -> None:
    """A sighting answers an alert its reporter received."""
    if reporter is None or received_alert(session, rider_id=reporter.id, alert_id=alert_id) is None:
        raise InvalidInput(N_("alert_id: you did not receive alert %(id)d"), id=alert_id)


def tell_sighting(session: Session, *, clue_id: int, alert_id: int, category: str, lat: float, lon: float) -> None:
    """The alert's sender and the command centre's dispatchers see the sighting on the alert's live board
    (where and what, not who); the command centre's duty group chat is told."""
    sender = session.scalar(select(Alert.sender_id).where(Alert.id == alert_id))
    if sender is None:
        return
    data = {"alert_id": alert_id, "clue_id": clue_id, "category": category, "lat": lat, "lon": lon}
    notices.emit_many(session, user_ids=notices.command_centre(session, also=sender), event="sighting", data=data)
    webhooks.enqueue(session, kind="sighting", parties=["command"], data={"alert_id": alert_id, "clue_id": clue_id})


def check_submission(
    data: ClueCreate, photos: list[CheckedPhoto], *, idempotency_key: str | None, max_photos: int
) -> None:
    """What a report must be before anything is looked up."""
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 128:
        raise InvalidInput(N_("Idempotency-Key must be 1 to 128 characters"))
    if len(photos) > max_photos:
        raise InvalidInput(N_("at most %(max)d photos per clue; %(n)d were sent"), max=max_photos, n=len(photos))


def clue_row(
    category: Category,
    data: ClueCreate,
    *,
    reporter: User | None,
    now: datetime,
    place: Callable[[float, float], org_service.Place],
    fingerprint: str,
    idempotency_key: str | None,
    source: str = "app",
    contact: dict[str, str] | None = None,
    attributes: dict[str, object] | None = None,
) -> dict[str, Any]:
    """A new clue's columns, or the refusal of its place or time (one writer of a clue's row, alone or in a
    group)."""
    try:
        lat, lon = to_wgs84(data.lat, data.lon, data.crs)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    if data.observed_at > now + FUTURE_SKEW:
        raise InvalidInput(N_("observed_at is in the future"))
    if data.observed_at < now - MAX_AGE:
        raise InvalidInput(N_("observed_at is more than 90 days ago; report recent observations only"))
    found = place(lat, lon)
    return {
        "category_code": category.code,
        "description": data.description,
        "lat": lat,
        "lon": lon,
        "address": data.address,
        "observed_at": data.observed_at,
        "reported_at": now,
        "updated_at": now,
        "reporter_id": reporter.id if reporter else None,
        "anonymous": data.anonymous or reporter is None,
        "source": source,
        "contact": contact or {},
        "attributes": attributes or {},
        "idempotency_key": idempotency_key if reporter is not None else None,
        "request_fingerprint": fingerprint,
        "urgent": data.urgent,
        "status": "submitted",
        "grid_id": found.grid.id if found.grid else None,
        "community_id": found.community.id if found.community else None,
        "deadline_at": deadline_for(category, start=now, urgent=data.urgent),
        "alert_id": data.alert_id,
    }


def pace_refusal(limit: int, sent: int, oldest: datetime | None, now: datetime) -> TooManyRequests | None:
    """The refusal for a reporter who sent `sent` clues in the last hour, the oldest at `oldest`, if any."""
    if sent < limit or oldest is None:
        return None
    seconds = max(1, math.ceil((oldest + PACE_WINDOW - now).total_seconds()))
    return TooManyRequests(
        N_("at most %(n)d clues an hour from one reporter; try again in %(minutes)d minutes"),
        n=limit,
        minutes=math.ceil(seconds / 60),
        retry_after=seconds,
    )


def _check_pace(session: Session, reporter: User, limit: int, now: datetime) -> None:
    sent, oldest = session.execute(
        select(func.count(), func.min(Clue.reported_at)).where(
            Clue.reporter_id == reporter.id, Clue.reported_at > now - PACE_WINDOW
        )
    ).one()
    refusal = pace_refusal(limit, sent, oldest, now)
    if refusal is not None:
        raise refusal


def _by_idempotency_key(session: Session, reporter: User, key: str) -> Clue | None:
    return session.scalar(select(Clue).where(Clue.reporter_id == reporter.id, Clue.idempotency_key == key))


def replay(existing: Clue, fingerprint: str) -> Clue:
    if existing.request_fingerprint != fingerprint:
        raise InvalidInput(N_("this Idempotency-Key was already used for a different report"))
    return existing


def _base_query(user: User) -> Select[Clue]:
    return select(Clue).where(policy.visible_clues_filter(user))


def list_clues(
    session: Session, *, user: User, filters: ClueFilters, now: datetime | None = None
) -> tuple[list[Clue], int, dict[str, int], int]:
    """The clues the user may see, filtered; with the total and live counts by status and overdue."""
    now = now or utcnow()
    stmt = _base_query(user)
    scope = stmt
    if filters.category:
        stmt = stmt.where(Clue.category_code == filters.category)
    if filters.community_id is not None:
        stmt = stmt.where(Clue.community_id == filters.community_id)
    if filters.grid_id is not None:
        stmt = stmt.where(Clue.grid_id == filters.grid_id)
    if filters.assignee_id is not None:
        stmt = stmt.where(Clue.assignee_id == filters.assignee_id)
    if filters.reporter_id is not None:
        stmt = stmt.where(Clue.reporter_id == filters.reporter_id)
    if filters.observed_from is not None:
        stmt = stmt.where(Clue.observed_at >= filters.observed_from)
    if filters.observed_to is not None:
        stmt = stmt.where(Clue.observed_at < filters.observed_to)
    if filters.query and filters.query.strip():
        stmt = stmt.where(matches_words(filters.query))
    counts_stmt = stmt
    if filters.status:
        stmt = stmt.where(Clue.status.in_(filters.status))
    overdue_cond = Clue.status.in_(workflow.OPEN_STATUSES) & (Clue.deadline_at < now)
    if filters.overdue is True:
        stmt = stmt.where(overdue_cond)
    elif filters.overdue is False:
        stmt = stmt.where(~overdue_cond)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(
        stmt.options(selectinload(Clue.photos))
        .order_by(Clue.reported_at.desc(), Clue.id.desc())
        .limit(filters.limit)
        .offset(filters.offset)
    ).all()
    sub = counts_stmt.subquery()
    counts = {status: n for status, n in session.execute(select(sub.c.status, func.count()).group_by(sub.c.status))}
    osub = scope.where(overdue_cond).subquery()
    overdue = session.scalar(select(func.count()).select_from(osub)) or 0
    return list(rows), total, counts, overdue


def get_clue(session: Session, *, user: User, clue_id: int) -> Clue:
    """One clue the user may see; an invisible clue is reported as missing, not as forbidden."""
    clue = session.get(Clue, clue_id)
    if clue is None or not policy.may_view_clue(user, clue):
        raise NotFound(N_("clue %(id)d not found"), id=clue_id)
    return clue


def note_reporter_view(session: Session, *, user: User, clue: Clue) -> None:
    """Audit every time someone other than the reporter is shown who reported a clue."""
    if clue.reporter_id is not None and clue.reporter_id != user.id and policy.may_see_reporter(user, clue):
        record(
            session,
            actor=user,
            action="clue.view_reporter",
            object_type="clue",
            object_id=clue.id,
            reporter_id=clue.reporter_id,
            anonymous=clue.anonymous,
        )


def allowed_actions(user: User, clue: Clue) -> list[str]:
    return [
        a
        for a in workflow.ACTIONS
        if workflow.allowed_from(a, clue.status)
        and policy.may_take_action(user, clue, a)
        and not (a == "rate" and clue.rating is not None)
    ]


def _require(value: object, message: str) -> None:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidInput(message)


@atomic
def take_action(
    session: Session, *, user: User, clue_id: int, action: str, body: ActionBody, now: datetime | None = None
) -> Clue:
    """Apply one workflow action, or refuse it (403 wrong person, 409 wrong status, 422 bad body)."""
    now = now or utcnow()
    if action not in workflow.TRANSITIONS:
        raise NotFound(
            N_("unknown action %(action)r; actions are: %(choices)s"),
            action=action,
            choices=", ".join(workflow.ACTIONS),
        )
    clue = get_clue(session, user=user, clue_id=clue_id)
    if not policy.may_take_action(user, clue, action):
        raise Forbidden(N_("a %(role)s may not %(action)s this clue"), role=user.role, action=action)
    if not workflow.allowed_from(action, clue.status):
        raise TransitionNotAllowed(
            N_("cannot %(action)s a clue that is %(status)s"),
            action=action,
            status=clue.status,
            status_now=clue.status,
            allowed_from=list(workflow.TRANSITIONS[action].sources),
        )
    before = clue.status
    note = ""
    data: dict[str, object] = {}
    if action == "verify":
        if body.urgent is not None and body.urgent != clue.urgent:
            clue.urgent = body.urgent
            clue.deadline_at = deadline_for(
                get_category(session, clue.category_code), start=clue.reported_at, urgent=body.urgent
            )
            data["urgent"] = body.urgent
        note = body.note or ""
    elif action == "reject":
        _require(body.reason, N_("reject needs a reason"))
        clue.reason = note = (body.reason or "").strip()
    elif action == "mark_duplicate":
        _require(body.duplicate_of, N_("mark_duplicate needs duplicate_of (the id of the original clue)"))
        original = session.get(Clue, body.duplicate_of)
        if original is None:
            raise InvalidInput(N_("clue %(id)d (duplicate_of) does not exist"), id=body.duplicate_of)
        if original.id == clue.id:
            raise InvalidInput(N_("a clue cannot be a duplicate of itself"))
        if original.status == "duplicate":
            raise InvalidInput(N_("clue %(id)d is itself a duplicate; point to the original clue"), id=original.id)
        clue.duplicate_of_id = original.id
        data["duplicate_of"] = original.id
        note = body.note or ""
    elif action == "dispatch":
        _require(body.assignee, N_("dispatch needs assignee (a username of police, grid staff or patrol)"))
        assignee = session.scalar(select(User).where(User.username == body.assignee))
        if assignee is None or not assignee.is_active:
            raise InvalidInput(N_("no active user %(username)r"), username=body.assignee)
        if assignee.role not in policy.HANDLER_ROLES:
            raise InvalidInput(
                N_("%(username)s is a %(role)s; dispatch to police, grid staff or patrol"),
                username=body.assignee,
                role=assignee.role,
            )
        if assignee.id == clue.assignee_id and clue.status != "verified":
            raise Conflict(N_("the clue is already with %(username)s"), username=assignee.username)
        clue.assignee_id = assignee.id
        data["assignee"] = assignee.username
        data["assignee_role"] = assignee.role
        # The clue keeps the routing rule whose proposal the dispatcher followed (none if they chose another).
        proposal = propose_routing(session, clue=clue)[0]
        followed = proposal.assignee is not None and proposal.assignee.id == assignee.id
        clue.routing_rule_id = proposal.rule_id if followed else None
        if clue.routing_rule_id is not None:
            data["routing_rule"] = clue.routing_rule_id
        note = body.note or ""
    elif action == "accept":
        note = body.note or ""
    elif action == "resolve":
        _require(body.outcome, N_("resolve needs an outcome: what was found and done"))
        clue.outcome = note = (body.outcome or "").strip()
        clue.resolved_at = now
    elif action == "close":
        _require(body.value_grade, N_("close needs value_grade: A, B, C or none"))
        clue.value_grade = body.value_grade
        clue.closed_at = now
        data["value_grade"] = body.value_grade
        note = body.note or ""
    elif action == "reopen":
        _require(body.reason, N_("reopen needs a reason"))
        clue.reason = note = (body.reason or "").strip()
        # The earlier outcome, grade and rating stay in the timeline; the clue is being worked again.
        clue.outcome = None
        clue.rating = None
        clue.value_grade = None
        clue.closed_at = None
        clue.resolved_at = None
        clue.escalation_level = 0
        clue.deadline_at = deadline_for(get_category(session, clue.category_code), start=now, urgent=clue.urgent)
    elif action == "rate":
        _require(body.rating, N_("rate needs rating: 1 to 5"))
        if clue.rating is not None:
            raise Conflict(N_("this clue has already been rated"))
        clue.rating = body.rating
        data["rating"] = body.rating
        note = body.note or ""
    clue.status = workflow.target_of(action, clue.status)
    clue.updated_at = now
    event = _append(session, clue, actor=user, action=action, from_status=before, note=note, at=now, **data)
    session.flush()
    _award(session, clue, action, event_id=event.id, actor=user, at=now)
    _tell(session, clue, action)
    return clue


def _award(session: Session, clue: Clue, action: str, *, event_id: int, actor: User, at: datetime) -> None:
    """The reporter's points: a closed clue earns by its value grade; a sighting (a clue answering an alert)
    earns when verified. Reopening a clue reverses what its close earned; rejecting it or marking it a
    duplicate after all reverses a sighting's points."""
    if clue.reporter_id is None:
        return
    if action == "close" and clue.value_grade in ("A", "B", "C"):
        points.award(
            session,
            rider_id=clue.reporter_id,
            key=f"clue_{clue.value_grade}",
            source="clue",
            source_id=clue.id,
            award_key=f"clue:{clue.id}:close:{event_id}",
            at=at,
        )
    elif action == "reopen":
        points.reverse_source(session, source="clue", source_id=clue.id, note=clue.reason or "", actor=actor, at=at)
    elif action == "verify" and clue.alert_id is not None:
        points.award(
            session,
            rider_id=clue.reporter_id,
            key="sighting",
            source="sighting",
            source_id=clue.id,
            award_key=f"sighting:{clue.id}",
            at=at,
        )
    elif action in ("reject", "mark_duplicate"):
        points.reverse_source(session, source="sighting", source_id=clue.id, note=clue.reason or "", actor=actor, at=at)


# The reporter's notices: what became of their clue (the outcome or the reason, never who handled it).
REPORTER_NOTICES = {"verify": "clue_verified", "reject": "clue_rejected", "close": "clue_closed"}


def _tell(session: Session, clue: Clue, action: str) -> None:
    """The closed loop's notices: the assignee of a dispatch, the reporter of a verdict or a close; and the
    duty group chat of the handler's party of a dispatch and a close."""
    assignee = session.get(User, clue.assignee_id) if clue.assignee_id is not None else None
    if action == "dispatch" and assignee is not None:
        notices.notify(
            session,
            user_id=assignee.id,
            kind="clue_dispatched",
            clue_id=clue.id,
            params={"category": clue.category_code, "urgent": clue.urgent, "deadline": clue.deadline_at.isoformat()},
        )
        chat = _chat_data(session, clue) | {"handler": assignee.display_name or assignee.username}
        webhooks.enqueue(session, kind="clue_dispatched", parties=[assignee.role], data=chat)
    elif action in REPORTER_NOTICES and clue.reporter_id is not None:
        params = {"outcome": clue.outcome} if action == "close" and clue.outcome else {}
        if action == "reject":
            params = {"reason": clue.reason or ""}
        notices.notify(session, user_id=clue.reporter_id, kind=REPORTER_NOTICES[action], clue_id=clue.id, params=params)
    if action == "close":
        parties = ["command"] + ([assignee.role] if assignee is not None else [])
        chat = _chat_data(session, clue) | {"outcome": clue.outcome or ""}
        webhooks.enqueue(session, kind="clue_closed", parties=parties, data=chat)


def _chat_data(session: Session, clue: Clue) -> dict[str, Any]:
    """What a duty group chat is told of a clue: its number, category, urgency and deadline; never the
    reporter, the place or the photos (the link opens the clue for those who may see it)."""
    category = session.get(Category, clue.category_code)
    return {
        "clue_id": clue.id,
        "category": {"zh": category.name_zh, "en": category.name_en} if category else clue.category_code,
        "urgent": clue.urgent,
        "deadline": clue.deadline_at.isoformat(),
    }


def suggest_duplicates(
    session: Session, *, clue: Clue, radius_m: float, window_hours: int, limit: int = 5
) -> list[tuple[Clue, float, float]]:
    """Earlier or later clues near in space and time, nearest first: (clue, metres, hours apart)."""
    dlat = radius_m / 111_320.0
    dlon = dlat / max(math.cos(math.radians(clue.lat)), 1e-6)
    window = timedelta(hours=window_hours)
    candidates = session.scalars(
        select(Clue).where(
            Clue.id != clue.id,
            Clue.status != "duplicate",
            Clue.lat.between(clue.lat - dlat, clue.lat + dlat),
            Clue.lon.between(clue.lon - dlon, clue.lon + dlon),
            Clue.observed_at.between(clue.observed_at - window, clue.observed_at + window),
        )
    ).all()
    found = []
    for other in candidates:
        dist = haversine_m(clue.lat, clue.lon, other.lat, other.lon)
        if dist <= radius_m:
            hours = abs((other.observed_at - clue.observed_at).total_seconds()) / 3600
            same = 0 if other.category_code == clue.category_code else 1
            found.append((same, dist, other, hours))
    found.sort(key=lambda t: (t[0], t[1]))
    return [(other, dist, hours) for _same, dist, other, hours in found[:limit]]


def propose_routing(session: Session, *, clue: Clue) -> tuple[org_service.Proposal, Grid | None, Community | None]:
    """Who the routing rules send this clue to, with the reason (org/routing.py)."""
    category = session.get(Category, clue.category_code)
    assert category is not None
    grid = session.get(Grid, clue.grid_id) if clue.grid_id else None
    community = session.get(Community, clue.community_id) if clue.community_id else None
    at = routing.Where(org_service.Place(grid=grid, community=community), routing.zones_at(session, clue.lat, clue.lon))
    return routing.propose(session, category=category, at=at), grid, community


def escalate_overdue(session: Session, *, now: datetime | None = None) -> int:
    """Raise the escalation level of open clues past their deadline; one timeline entry per step."""
    now = now or utcnow()
    changed = 0
    overdue = session.scalars(select(Clue).where(Clue.status.in_(workflow.OPEN_STATUSES), Clue.deadline_at < now)).all()
    categories = {c.code: c for c in session.scalars(select(Category))}
    for clue in overdue:
        period = timedelta(hours=max(1, categories[clue.category_code].deadline_hours))
        # Level 1 at the deadline, one more for each further deadline period, up to 3.
        level = min(3, 1 + int((now - clue.deadline_at) / period))
        if level > clue.escalation_level:
            # One entry for every level reached, even when a run was missed and several are crossed
            # at once: each level is its own step up the chain and must show in the timeline.
            for step in range(clue.escalation_level + 1, level + 1):
                clue.escalation_level = step
                _append(
                    session,
                    clue,
                    actor=None,
                    action="escalate",
                    from_status=clue.status,
                    note=f"overdue since {clue.deadline_at.isoformat()}",
                    at=now,
                    level=step,
                    previous=step - 1,
                )
            for user_id in _next_level(session, clue, level):
                notices.notify(
                    session,
                    user_id=user_id,
                    kind="clue_escalated",
                    clue_id=clue.id,
                    params={"level": level, "deadline": clue.deadline_at.isoformat()},
                )
            webhooks.enqueue(
                session,
                kind="clue_escalated",
                parties=_escalation_parties(session, clue, level),
                data=_chat_data(session, clue) | {"level": level},
            )
            changed += 1
    session.flush()
    return changed


def _escalation_parties(session: Session, clue: Clue, level: int) -> list[str]:
    """Whose duty group chat hears of an overdue clue: the command centre's, and at level 1 also the party of
    the handler it waits for."""
    assignee = session.get(User, clue.assignee_id) if level == 1 and clue.assignee_id is not None else None
    return ["command"] + ([assignee.role] if assignee is not None else [])


def _next_level(session: Session, clue: Clue, level: int) -> list[int]:
    """Who an overdue clue's escalation tells: at level 1 the handler it waits for (the command centre if
    nobody has it yet); from level 2 on, the command centre's dispatchers."""
    if level == 1 and clue.assignee_id is not None:
        return [clue.assignee_id]
    return list(session.scalars(select(User.id).where(User.role == "dispatcher", User.is_active.is_(True))))


def people_by_id(session: Session, ids: set[int]) -> dict[int, User]:
    if not ids:
        return {}
    return {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))}


def timeline(session: Session, *, clue: Clue) -> list[ClueEvent]:
    return list(session.scalars(select(ClueEvent).where(ClueEvent.clue_id == clue.id).order_by(ClueEvent.id)))


def search_handlers(session: Session, *, query: str | None = None) -> list[User]:
    stmt = select(User).where(User.is_active.is_(True), User.role.in_(policy.HANDLER_ROLES))
    if query:
        like = f"%{query}%"
        stmt = stmt.where(or_(User.username.ilike(like), User.display_name.ilike(like)))
    return list(session.scalars(stmt.order_by(User.role, User.username)))
