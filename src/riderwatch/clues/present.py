"""Turning clues into what a given user may see (shared by the API and the pages)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from riderwatch import policy
from riderwatch.audit.service import record
from riderwatch.clues import service, workflow
from riderwatch.clues.schemas import ClueRead, PersonRef, PhotoRead, TimelineEntry
from riderwatch.infra.clock import utcnow
from riderwatch.models import Category, Clue, Community, Grid, User


def person(user: User | None) -> PersonRef | None:
    if user is None:
        return None
    return PersonRef(id=user.id, username=user.username, display_name=user.display_name, role=user.role)


def category_name(category: Category | None, locale: str) -> str:
    if category is None:
        return ""
    return category.name_en if locale.startswith("en") else category.name_zh


def present_clues(
    session: Session, *, user: User, clues: list[Clue], locale: str = "zh", with_timeline: bool = False
) -> list[ClueRead]:
    """ClueRead for each clue. With `with_timeline` (the detail view) the reporter is named where policy
    allows, and that view is audited; lists never name reporters."""
    ids: set[int] = set()
    for clue in clues:
        ids.update(i for i in (clue.reporter_id, clue.assignee_id) if i is not None)
    events = {clue.id: service.timeline(session, clue=clue) for clue in clues} if with_timeline else {}
    for evs in events.values():
        ids.update(e.actor_id for e in evs if e.actor_id is not None)
    people = service.people_by_id(session, ids)
    categories = {c.code: c for c in session.query(Category)}
    grids = {g.id: g.name for g in session.query(Grid)} if clues else {}
    communities = {c.id: c.name for c in session.query(Community)} if clues else {}
    now = utcnow()
    out = []
    for clue in clues:
        show_reporter = policy.may_see_reporter(user, clue)
        # Lists never name reporters (minimal disclosure, and no audit row per list refresh);
        # the detail view does, and each such view is audited.
        name_reporter = show_reporter and with_timeline
        show_contact = with_timeline and bool(clue.contact) and policy.may_see_contact(user, clue)
        if show_contact:
            record(session, actor=user, action="clue.view_contact", object_type="clue", object_id=clue.id)
        if name_reporter:
            service.note_reporter_view(session, user=user, clue=clue)
        timeline = None
        if with_timeline:
            timeline = []
            for ev in events[clue.id]:
                actor = people.get(ev.actor_id) if ev.actor_id else None
                hidden = actor is not None and ev.actor_id == clue.reporter_id and not show_reporter
                if ev.actor_id is None:
                    label = "system" if ev.action == "escalate" else "public (Open311)"
                elif hidden:
                    label = "anonymous reporter"
                else:
                    label = actor.display_name or actor.username if actor else ""
                timeline.append(
                    TimelineEntry(
                        at=ev.at,
                        action=ev.action,
                        from_status=ev.from_status,
                        to_status=ev.to_status,
                        actor=None if hidden else person(actor),
                        actor_label=label,
                        note=ev.note,
                        data=ev.data,
                    )
                )
        out.append(
            ClueRead(
                id=clue.id,
                status=clue.status,
                category=clue.category_code,
                category_name=category_name(categories.get(clue.category_code), locale),
                description=clue.description,
                lat=clue.lat,
                lon=clue.lon,
                address=clue.address,
                observed_at=clue.observed_at,
                reported_at=clue.reported_at,
                updated_at=clue.updated_at,
                source=clue.source,
                anonymous=clue.anonymous,
                reporter=person(people.get(clue.reporter_id)) if name_reporter and clue.reporter_id else None,
                reporter_hidden=not show_reporter and clue.reporter_id is not None,
                urgent=clue.urgent,
                deadline_at=clue.deadline_at,
                overdue=clue.status in workflow.OPEN_STATUSES and clue.deadline_at < now,
                escalation_level=clue.escalation_level,
                assignee=person(people.get(clue.assignee_id)) if clue.assignee_id else None,
                grid=grids.get(clue.grid_id) if clue.grid_id else None,
                community=communities.get(clue.community_id) if clue.community_id else None,
                duplicate_of=clue.duplicate_of_id,
                outcome=clue.outcome,
                reason=clue.reason,
                value_grade=clue.value_grade,
                rating=clue.rating,
                photos=[
                    PhotoRead(
                        id=p.id,
                        url=f"/api/v1/clues/{clue.id}/photos/{p.position}",
                        content_type=p.content_type,
                        width=p.width,
                        height=p.height,
                        sha256=p.sha256,
                    )
                    for p in clue.photos
                ],
                attributes=clue.attributes,
                contact=clue.contact if show_contact else None,
                allowed_actions=service.allowed_actions(user, clue),
                timeline=timeline,
            )
        )
    return out
