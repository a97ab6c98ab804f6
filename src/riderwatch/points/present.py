"""What a ledger line says, in the reader's words: what earned or took the points. An anonymous reporter's
clue is named only to that rider: to anyone else the line says "an anonymous clue" without its number."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.errors import N_
from riderwatch.models import Clue, Course, PatrolTask, Redemption, Reward, User
from riderwatch.models.points import PointEntry

SOURCE_LABELS = {
    "clue": N_("Clue closed"),
    "task": N_("Patrol task done"),
    "alert": N_("Alert acknowledged"),
    "sighting": N_("Sighting verified"),
    "course": N_("Course passed"),
    "leaflets": N_("Leaflets handed out"),
    "adjustment": N_("Adjustment"),
    "redemption": N_("Reward redeemed"),
}
KIND_LABELS = {
    "earn": N_("Earned"),
    "spend": N_("Spent"),
    "reverse": N_("Reversed"),
    "adjust": N_("Adjusted"),
}


@dataclass(frozen=True)
class EntryView:
    id: int
    kind: str
    points: int
    source: str
    source_id: int | None
    what: str  # the thing's own name: a task's title, a course's title, a reward's name, "#12"
    note: str
    at: datetime
    link: str | None


def entry_views(session: Session, entries: list[PointEntry], *, viewer: User) -> list[EntryView]:
    ids: dict[str, set[int]] = {}
    for e in entries:
        if e.source_id is not None:
            ids.setdefault(e.source, set()).add(e.source_id)
    clues = {
        c.id: c
        for c in session.scalars(select(Clue).where(Clue.id.in_(ids.get("clue", set()) | ids.get("sighting", set()))))
    }
    tasks = {
        t.id: t.title for t in session.scalars(select(PatrolTask).where(PatrolTask.id.in_(ids.get("task", set()))))
    }
    courses = {c.id: c.title for c in session.scalars(select(Course).where(Course.id.in_(ids.get("course", set()))))}
    rewards = {
        r.id: name
        for r, name in session.execute(
            select(Redemption, Reward.name)
            .join(Reward, Reward.id == Redemption.reward_id)
            .where(Redemption.id.in_(ids.get("redemption", set())))
        )
    }
    out: list[EntryView] = []
    for e in entries:
        what, link, source_id = "", None, e.source_id
        if e.source in ("clue", "sighting") and e.source_id is not None:
            clue = clues.get(e.source_id)
            if clue is not None and clue.anonymous and viewer.id != e.rider_id:
                what, source_id = "", None
            else:
                what = f"#{e.source_id}"
                link = f"/clues/{e.source_id}" if viewer.id == e.rider_id else None
        elif e.source == "task" and e.source_id is not None:
            what = tasks.get(e.source_id, f"#{e.source_id}")
        elif e.source == "course" and e.source_id is not None:
            what = courses.get(e.source_id, "")
        elif e.source == "redemption" and e.source_id is not None:
            what = rewards.get(e.source_id, "")
        out.append(
            EntryView(
                id=e.id,
                kind=e.kind,
                points=e.points,
                source=e.source,
                source_id=source_id,
                what=what,
                note=e.note,
                at=e.created_at,
                link=link,
            )
        )
    return out
