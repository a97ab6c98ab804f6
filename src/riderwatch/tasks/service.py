"""Patrol tasks: publishing them, who is invited, their phases, and the counts of what riders achieved.

A dispatcher (or a rule, see tasks/rules.py) publishes a task over H3 cells — given directly, or
the cells of a drawn or stored area — or over check-in points with a radius, for a window, to
invited riders or stations or to every rider, with points offered. Riders do nothing but pass:
tasks/verification.py proves from their positions that they did; tasks/views.py shows the results.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from h3.api import basic_int as h3
from sqlalchemy import (
    ColumnElement,
    and_,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session

from riderwatch.audit.service import record
from riderwatch.config import Settings
from riderwatch.coverage.service import CoverageLimits, area_cells, resolve_area
from riderwatch.db import atomic
from riderwatch.errors import N_, Conflict, InvalidInput, NotFound
from riderwatch.geo.coords import coordinates_ok, to_wgs84
from riderwatch.infra.clock import utcnow
from riderwatch.models import (
    PatrolTask,
    PatrolTaskCell,
    PatrolTaskCheckpoint,
    PatrolTaskInvite,
    PatrolTaskResult,
    PatrolTaskVisit,
    Rider,
    Station,
    User,
)
from riderwatch.tasks.schemas import MAX_TITLE, CheckpointDraft, TaskDraft

Phase = Literal["upcoming", "active", "ended", "cancelled"]
PHASES: tuple[Phase, ...] = ("upcoming", "active", "ended", "cancelled")
CHUNK = 1000
MAX_POINTS = 10_000
MAX_RIDERS = 100_000
# A form filled in a few minutes ago still publishes: its start may lie this far in the past.
START_TOLERANCE = timedelta(minutes=10)


@dataclass(frozen=True)
class TaskLimits:
    coverage: CoverageLimits
    max_cells: int = 500
    max_checkpoints: int = 50
    min_radius_m: float = 10.0
    max_radius_m: float = 2000.0
    max_window: timedelta = timedelta(days=7)
    max_ahead: timedelta = timedelta(days=90)
    # Late points (a phone that was offline) may arrive this long after their time; until then a
    # finished task's results can still grow, after it they are final.
    late_points: timedelta = timedelta(hours=48)

    @property
    def finest(self) -> int:
        return max(self.coverage.resolutions)

    @classmethod
    def from_settings(cls, settings: Settings) -> TaskLimits:
        return cls(
            coverage=CoverageLimits.from_settings(settings),
            late_points=min(
                timedelta(hours=settings.max_ping_age_hours), timedelta(days=settings.position_retention_days)
            ),
        )


# --- publishing -----------------------------------------------------------------------------------


def _parse_cells(cells: Sequence[str], limits: TaskLimits) -> tuple[int, list[int]]:
    parsed: set[int] = set()
    for name in cells:
        try:
            cell = h3.str_to_int(name) if isinstance(name, str) else -1
        except (ValueError, TypeError):
            cell = -1
        if cell < 0 or not h3.is_valid_cell(cell):
            raise InvalidInput(N_("cells: %(cell)r is not an H3 cell"), cell=name)
        parsed.add(cell)
    if not parsed:
        raise InvalidInput(N_("cells: give at least one cell"))
    resolutions = {h3.get_resolution(c) for c in parsed}
    if len(resolutions) > 1:
        raise InvalidInput(N_("cells: all cells must have the same resolution"))
    res = resolutions.pop()
    if res not in limits.coverage.resolutions:
        raise InvalidInput(
            N_("cells: resolution must be one of %(choices)s"),
            choices=", ".join(map(str, limits.coverage.resolutions)),
        )
    return res, sorted(parsed)


def _target_cells(session: Session, draft: TaskDraft, limits: TaskLimits) -> tuple[int, list[int]]:
    if draft.cells is not None:
        if draft.resolution is not None:
            raise InvalidInput(N_("resolution: leave it out with cells (the cells carry their resolution)"))
        res, cells = _parse_cells(draft.cells, limits)
    else:
        res = limits.coverage.resolutions[0] if draft.resolution is None else draft.resolution
        if res not in limits.coverage.resolutions:
            raise InvalidInput(
                N_("resolution must be one of %(choices)s"), choices=", ".join(map(str, limits.coverage.resolutions))
            )
        cells = area_cells(resolve_area(session, draft.area), res, limits.max_cells)
    if len(cells) > limits.max_cells:
        raise InvalidInput(
            N_("a task may hold at most %(max)d cells; this one has %(n)d"), max=limits.max_cells, n=len(cells)
        )
    return res, cells


def _checkpoints(draft: TaskDraft, limits: TaskLimits) -> list[CheckpointDraft]:
    points = list(draft.checkpoints or ())
    if not points:
        raise InvalidInput(N_("checkpoints: give at least one"))
    if len(points) > limits.max_checkpoints:
        raise InvalidInput(N_("checkpoints: at most %(max)d"), max=limits.max_checkpoints)
    out = []
    for i, cp in enumerate(points):
        if not coordinates_ok(cp.lat, cp.lon):
            raise InvalidInput(N_("checkpoints[%(i)d]: impossible coordinates"), i=i)
        if not limits.min_radius_m <= cp.radius_m <= limits.max_radius_m:
            raise InvalidInput(
                N_("checkpoints[%(i)d].radius_m must be between %(min)s and %(max)s"),
                i=i,
                min=f"{limits.min_radius_m:g}",
                max=f"{limits.max_radius_m:g}",
            )
        lat, lon = to_wgs84(cp.lat, cp.lon, draft.crs)
        out.append(CheckpointDraft(lat=lat, lon=lon, radius_m=cp.radius_m, name=cp.name.strip()[:MAX_TITLE]))
    return out


def _invitees(session: Session, draft: TaskDraft) -> tuple[list[int], list[int]]:
    names, codes = sorted(set(draft.riders)), sorted(set(draft.stations))
    if draft.open_to_all and (names or codes):
        raise InvalidInput(N_("a task open to all riders takes no invitations"))
    if not draft.open_to_all and not (names or codes):
        raise InvalidInput(N_("invite riders or stations, or open the task to all riders"))
    riders: dict[str, int] = {
        name: uid
        for name, uid in session.execute(
            select(User.username, User.id).where(User.username.in_(names), User.role == "rider", User.is_active)
        )
    }
    missing = [n for n in names if n not in riders]
    if missing:
        raise InvalidInput(N_("riders: no active rider %(names)s"), names=", ".join(map(repr, missing)))
    stations: dict[str, int] = {}
    retired: list[str] = []
    for code, sid, retired_at in session.execute(
        select(Station.code, Station.id, Station.retired_at).where(Station.code.in_(codes))
    ):
        if retired_at is None:
            stations[code] = sid
        else:
            retired.append(code)
    if retired:
        raise InvalidInput(
            N_("stations: %(codes)s retired; invite a station in service"), codes=", ".join(map(repr, retired))
        )
    unknown = [c for c in codes if c not in stations]
    if unknown:
        raise InvalidInput(N_("stations: no station %(codes)s"), codes=", ".join(map(repr, unknown)))
    return [riders[n] for n in names], [stations[c] for c in codes]


def _check_common(draft: TaskDraft, limits: TaskLimits, now: datetime) -> None:
    if not draft.title.strip():
        raise InvalidInput(N_("title: give the task a title"))
    if len(draft.title.strip()) > MAX_TITLE:
        raise InvalidInput(N_("title: at most %(max)d characters"), max=MAX_TITLE)
    if draft.ends_at <= draft.starts_at:
        raise InvalidInput(N_("ends_at must be after starts_at"))
    if draft.ends_at <= now:
        raise InvalidInput(N_("ends_at has passed: a task is for the present or the future"))
    # Riders are asked ahead: passes from before a task was published are not what it asked for.
    if draft.starts_at < now - START_TOLERANCE:
        raise InvalidInput(N_("starts_at has passed: a task starts now or later"))
    if draft.starts_at > now + limits.max_ahead:
        raise InvalidInput(N_("starts_at may be at most %(days)d days ahead"), days=limits.max_ahead.days)
    if draft.ends_at - draft.starts_at > limits.max_window:
        raise InvalidInput(N_("the window may span at most %(days)d days"), days=limits.max_window.days)
    if not 0 <= draft.points <= MAX_POINTS:
        raise InvalidInput(N_("points must be between 0 and %(max)d"), max=MAX_POINTS)
    if not 0 < draft.required_share <= 1:
        raise InvalidInput(N_("required_share must be above 0 and at most 1"))
    if draft.max_riders is not None and not 1 <= draft.max_riders <= MAX_RIDERS:
        raise InvalidInput(N_("max_riders must be between 1 and %(max)d (leave it out for no limit)"), max=MAX_RIDERS)
    if draft.crs is not None and draft.checkpoints is None:
        raise InvalidInput(N_("crs applies to checkpoints only; give areas and cells in WGS-84"))
    targets = sum(x is not None for x in (draft.cells, draft.area, draft.checkpoints))
    if targets != 1:
        raise InvalidInput(N_("give exactly one target: cells, area or checkpoints"))


@atomic
def publish_task(
    session: Session,
    *,
    author: User,
    draft: TaskDraft,
    limits: TaskLimits,
    now: datetime | None = None,
    rule_id: int | None = None,
) -> PatrolTask:
    """Check the draft and store the task; nothing is stored when any part of it is wrong.

    A rule's task names the rule's author as its author; the audit entry then has no actor (the job made it).
    """
    now = now or utcnow()
    _check_common(draft, limits, now)
    rider_ids, station_ids = _invitees(session, draft)
    task = PatrolTask(
        title=draft.title.strip(),
        note=draft.note.strip(),
        starts_at=draft.starts_at,
        ends_at=draft.ends_at,
        points=draft.points,
        required_share=draft.required_share,
        max_riders=draft.max_riders,
        open_to_all=draft.open_to_all,
        status="published",
        created_by_id=author.id,
        created_at=now,
        rule_id=rule_id,
    )
    if draft.checkpoints is not None:
        task.kind = "checkpoints"
        checkpoints = _checkpoints(draft, limits)
    else:
        task.kind = "cells"
        task.resolution, cells = _target_cells(session, draft, limits)
        task.area = draft.area
    session.add(task)
    session.flush()
    if task.kind == "checkpoints":
        session.add_all(
            PatrolTaskCheckpoint(task_id=task.id, seq=i, name=cp.name, lat=cp.lat, lon=cp.lon, radius_m=cp.radius_m)
            for i, cp in enumerate(checkpoints)
        )
    else:
        session.add_all(PatrolTaskCell(task_id=task.id, cell=c) for c in cells)
    session.add_all(PatrolTaskInvite(task_id=task.id, rider_id=r) for r in rider_ids)
    session.add_all(PatrolTaskInvite(task_id=task.id, station_id=s) for s in station_ids)
    session.flush()
    record(
        session,
        actor=None if rule_id else author,
        action="task.publish",
        object_type="patrol_task",
        object_id=task.id,
        kind=task.kind,
        targets=len(checkpoints) if task.kind == "checkpoints" else len(cells),
        rule_id=rule_id,
    )
    return task


def get_task(session: Session, task_id: int) -> PatrolTask:
    task = session.get(PatrolTask, task_id)
    if task is None:
        raise NotFound(N_("no patrol task %(id)d"), id=task_id)
    return task


@atomic
def cancel_task(session: Session, *, actor: User, task_id: int, now: datetime | None = None) -> PatrolTask:
    now = now or utcnow()
    task = get_task(session, task_id)
    if task.status == "cancelled":
        raise Conflict(N_("the task is already cancelled"))
    if task.ends_at <= now:
        raise Conflict(N_("the task has ended; its results stand"))
    task.status = "cancelled"
    task.cancelled_at = now
    session.flush()
    record(session, actor=actor, action="task.cancel", object_type="patrol_task", object_id=task.id)
    return task


def phase_of(task: PatrolTask, now: datetime) -> Phase:
    if task.status == "cancelled":
        return "cancelled"
    if now < task.starts_at:
        return "upcoming"
    return "active" if now < task.ends_at else "ended"


def phase_filter(phase: Phase, now: datetime) -> ColumnElement[bool]:
    published = PatrolTask.status == "published"
    if phase == "cancelled":
        return PatrolTask.status == "cancelled"
    if phase == "upcoming":
        return and_(published, PatrolTask.starts_at > now)
    if phase == "active":
        return and_(published, PatrolTask.starts_at <= now, PatrolTask.ends_at > now)
    return and_(published, PatrolTask.ends_at <= now)


# --- who is invited -----------------------------------------------------------------------------


def invited_filter(rider: User) -> ColumnElement[bool]:
    """The tasks a rider is asked to do: open to all, or inviting them or their station."""
    station_id = select(Rider.station_id).where(Rider.user_id == rider.id).scalar_subquery()
    invited = select(PatrolTaskInvite.task_id).where(
        or_(PatrolTaskInvite.rider_id == rider.id, PatrolTaskInvite.station_id == station_id)
    )
    return or_(PatrolTask.open_to_all.is_(True), PatrolTask.id.in_(invited))


def _active_riders(session: Session, candidates: set[int]) -> dict[int, int | None]:
    """Of the candidate users, the active riders of the team, each with their station (or None)."""
    ids = sorted(candidates)
    out: dict[int, int | None] = {}
    for i in range(0, len(ids), CHUNK):
        rows = session.execute(
            select(Rider.user_id, Rider.station_id)
            .join(User, User.id == Rider.user_id)
            .where(Rider.user_id.in_(ids[i : i + CHUNK]), User.is_active.is_(True), Rider.status == "active")
        )
        for uid, station_id in rows:
            out[uid] = station_id
    return out


def eligible_riders(session: Session, wanted: Sequence[tuple[PatrolTask, set[int]]]) -> dict[int, set[int]]:
    """Per task, of its candidate riders those it counts: active team members it is open to or invites.

    The riders of every task are looked up together, and the invitations of every task in one query.
    """
    riders = _active_riders(session, set().union(*(candidates for _, candidates in wanted)))
    rider_invites: dict[int, set[int]] = defaultdict(set)
    station_invites: dict[int, set[int]] = defaultdict(set)
    ids = sorted({task.id for task, _ in wanted if not task.open_to_all})
    for i in range(0, len(ids), CHUNK):
        for task_id, rider_id, station_id in session.execute(
            select(PatrolTaskInvite.task_id, PatrolTaskInvite.rider_id, PatrolTaskInvite.station_id).where(
                PatrolTaskInvite.task_id.in_(ids[i : i + CHUNK])
            )
        ):
            if rider_id is not None:
                rider_invites[task_id].add(rider_id)
            if station_id is not None:
                station_invites[task_id].add(station_id)
    out: dict[int, set[int]] = {}
    for task, candidates in wanted:
        out[task.id] = {
            uid
            for uid in candidates
            if uid in riders
            and (
                task.open_to_all
                or uid in rider_invites[task.id]
                or (riders[uid] is not None and riders[uid] in station_invites[task.id])
            )
        }
    return out


# --- counts -------------------------------------------------------------------------------------


@dataclass
class TaskStats:
    targets: int = 0
    riders: int = 0
    completed: int = 0
    passed_targets: int = 0


def task_stats(session: Session, tasks: Sequence[PatrolTask]) -> dict[int, TaskStats]:
    ids = [t.id for t in tasks]
    out = {i: TaskStats() for i in ids}
    if not ids:
        return out
    for model in (PatrolTaskCell, PatrolTaskCheckpoint):
        for task_id, n in session.execute(
            select(model.task_id, func.count()).where(model.task_id.in_(ids)).group_by(model.task_id)
        ):
            out[task_id].targets += int(n)
    for task_id, riders, completed in session.execute(
        select(PatrolTaskResult.task_id, func.count(), func.count(PatrolTaskResult.completed_at))
        .where(PatrolTaskResult.task_id.in_(ids))
        .group_by(PatrolTaskResult.task_id)
    ):
        out[task_id].riders, out[task_id].completed = int(riders), int(completed)
    for task_id, n in session.execute(
        select(PatrolTaskVisit.task_id, func.count(PatrolTaskVisit.target.distinct()))
        .where(PatrolTaskVisit.task_id.in_(ids))
        .group_by(PatrolTaskVisit.task_id)
    ):
        out[task_id].passed_targets = int(n)
    return out
