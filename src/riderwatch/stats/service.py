"""The programme's figures (`GET /api/v1/stats`, the dashboard): clues, riders, patrol tasks over a period,
over what the caller may see.

The command centre sees the whole district; a station manager their own station: its riders, and the clues
its riders reported (counts only). Clues are counted by when they were seen (`observed_at` in [from, to)),
as the desk's list filters them, so `clues.total` is the list's total for the same window. Durations are
hours, as a median and a 90th percentile of the clues that reached the step in the window.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch import policy
from riderwatch.clues import workflow
from riderwatch.errors import N_, InvalidInput
from riderwatch.infra.clock import utcnow
from riderwatch.models import (
    Category,
    Clue,
    ClueEvent,
    Community,
    DutyShift,
    PatrolTask,
    PatrolTaskResult,
    Rider,
    Station,
    User,
)

# Statuses a clue reaches once the command centre has looked at it, and those that say it held no water.
TRIAGED = ("verified", "dispatched", "in_progress", "resolved", "closed", "rejected", "duplicate")
NOT_SUPPORTED = ("rejected", "duplicate")


@dataclass(frozen=True)
class Period:
    start: datetime | None
    end: datetime | None

    def check(self) -> None:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise InvalidInput(N_("'to' must come after 'from'"))


def _spread(hours: list[float]) -> dict[str, float | None]:
    if not hours:
        return {"median": None, "p90": None, "count": 0}
    ordered = sorted(hours)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {"median": round(statistics.median(ordered), 2), "p90": round(p90, 2), "count": len(ordered)}


def figures(
    session: Session, *, user: User, period: Period, locale: str = "zh", timezone: str = "Asia/Shanghai"
) -> dict[str, Any]:
    """Every figure of the dashboard, as the API answers it (days are the programme's local days)."""
    period.check()
    now = utcnow()
    in_window = policy.figures_clues_filter(user)
    if period.start is not None:
        in_window = in_window & (Clue.observed_at >= period.start)
    if period.end is not None:
        in_window = in_window & (Clue.observed_at < period.end)
    clues = session.execute(
        select(
            Clue.id,
            Clue.status,
            Clue.category_code,
            Clue.community_id,
            Clue.reported_at,
            Clue.observed_at,
            Clue.closed_at,
            Clue.deadline_at,
        ).where(in_window)
    ).all()
    by_status = Counter(c.status for c in clues)
    names = {c.code: (c.name_zh if locale == "zh" else c.name_en) for c in session.scalars(select(Category))}
    communities = {i: n for i, n in session.execute(select(Community.id, Community.name))}
    by_category = Counter(names.get(c.category_code, c.category_code) for c in clues)
    by_community = Counter(communities.get(c.community_id, "") if c.community_id else "" for c in clues)
    triaged = sum(by_status[s] for s in TRIAGED)
    supported = triaged - sum(by_status[s] for s in NOT_SUPPORTED)
    first_dispatch = dict(
        session.execute(
            select(ClueEvent.clue_id, func.min(ClueEvent.at))
            .where(ClueEvent.action == "dispatch", ClueEvent.clue_id.in_(select(Clue.id).where(in_window)))
            .group_by(ClueEvent.clue_id)
        ).all()
    )
    to_dispatch = [
        (first_dispatch[c.id] - c.reported_at).total_seconds() / 3600 for c in clues if c.id in first_dispatch
    ]
    to_close = [(c.closed_at - c.reported_at).total_seconds() / 3600 for c in clues if c.closed_at is not None]
    overdue = sum(1 for c in clues if c.status in workflow.OPEN_STATUSES and c.deadline_at < now)
    zone = ZoneInfo(timezone)
    by_day = Counter(c.observed_at.astimezone(zone).date().isoformat() for c in clues)
    return {
        "from": period.start.isoformat() if period.start else None,
        "to": period.end.isoformat() if period.end else None,
        "scope": "station" if user.role == "station_manager" else "district",
        "clues": {
            "total": len(clues),
            "by_status": dict(sorted(by_status.items())),
            "by_category": dict(by_category.most_common()),
            "by_community": {k or "-": v for k, v in by_community.most_common()},
            "by_day": dict(sorted(by_day.items())),
            "open": sum(by_status[s] for s in workflow.OPEN_STATUSES),
            "overdue": overdue,
            "verified_share": round(supported / triaged, 4) if triaged else None,
            "hours_to_dispatch": _spread(to_dispatch),
            "hours_to_close": _spread(to_close),
        },
        "riders": _riders(session, user=user, period=period),
        "tasks": _tasks(session, user=user, period=period),
    }


def _riders(session: Session, *, user: User, period: Period) -> dict[str, Any]:
    scope = policy.visible_riders_filter(user)
    members = session.execute(select(Rider.user_id, Rider.status, Rider.station_id, Rider.joined_on).where(scope)).all()
    ids = [m.user_id for m in members]
    reporters = set(
        session.scalars(
            select(Clue.reporter_id).where(
                Clue.reporter_id.in_(select(Rider.user_id).where(scope)),
                *([Clue.reported_at >= period.start] if period.start else []),
                *([Clue.reported_at < period.end] if period.end else []),
            )
        )
    )
    on_duty = set(
        session.scalars(
            select(DutyShift.rider_id).where(
                DutyShift.rider_id.in_(select(Rider.user_id).where(scope)),
                *([(DutyShift.ended_at.is_(None)) | (DutyShift.ended_at >= period.start)] if period.start else []),
                *([DutyShift.started_at < period.end] if period.end else []),
            )
        )
    )
    active = reporters | on_duty
    stations = {i: n for i, n in session.execute(select(Station.id, Station.name))}
    per_station: dict[str, dict[str, int]] = {}
    for m in members:
        row = per_station.setdefault(
            stations.get(m.station_id, "") if m.station_id else "-", {"members": 0, "active": 0}
        )
        row["members"] += 1
        row["active"] += 1 if m.user_id in active else 0
    start_day: date | None = period.start.date() if period.start else None
    end_day: date | None = period.end.date() if period.end else None
    joined = sum(
        1
        for m in members
        if m.joined_on is not None
        and (start_day is None or m.joined_on >= start_day)
        and (end_day is None or m.joined_on < end_day)
    )
    return {
        "total": len(ids),
        "by_status": dict(sorted(Counter(m.status for m in members).items())),
        "joined": joined,
        "active": len(active),
        "reported": len(reporters),
        "on_duty": len(on_duty),
        "by_station": dict(sorted(per_station.items())),
    }


def _tasks(session: Session, *, user: User, period: Period) -> dict[str, Any]:
    window = []
    if period.start is not None:
        window.append(PatrolTask.ends_at > period.start)
    if period.end is not None:
        window.append(PatrolTask.starts_at < period.end)
    tasks = session.execute(select(PatrolTask.id, PatrolTask.status).where(*window)).all()
    ids = [t.id for t in tasks]
    riders = select(Rider.user_id).where(policy.visible_riders_filter(user))
    completed = (
        session.scalar(
            select(func.count())
            .select_from(PatrolTaskResult)
            .where(
                PatrolTaskResult.task_id.in_(ids),
                PatrolTaskResult.completed_at.is_not(None),
                PatrolTaskResult.rider_id.in_(riders),
            )
        )
        if ids
        else 0
    )
    return {
        "total": len(tasks),
        "cancelled": sum(1 for t in tasks if t.status == "cancelled"),
        "completions": completed or 0,
    }
