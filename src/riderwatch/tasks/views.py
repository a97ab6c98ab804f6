"""What the pages and the API show of patrol tasks: the board, a task with its targets and results, the
running tasks' map, and a rider's own tasks nearest first."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from h3.api import basic_int as h3
from sqlalchemy import (
    and_,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session

from riderwatch import policy
from riderwatch.audit.service import record
from riderwatch.coverage.service import cell_feature
from riderwatch.errors import N_, Forbidden, InvalidInput, NotFound
from riderwatch.geo.coords import haversine_m
from riderwatch.infra.clock import utcnow
from riderwatch.models import (
    LastPosition,
    PatrolTask,
    PatrolTaskCell,
    PatrolTaskCheckpoint,
    PatrolTaskInvite,
    PatrolTaskResult,
    PatrolTaskVisit,
    Station,
    User,
)
from riderwatch.tasks.service import (
    CHUNK,
    PHASES,
    Phase,
    TaskStats,
    get_task,
    invited_filter,
    phase_filter,
    phase_of,
    task_stats,
)
from riderwatch.tasks.verification import required_count

# --- reading ------------------------------------------------------------------------------------


def task_summary(task: PatrolTask, stats: TaskStats, now: datetime) -> dict[str, Any]:
    return {
        "id": task.id,
        "title": task.title,
        "note": task.note,
        "kind": task.kind,
        "resolution": task.resolution,
        "starts_at": task.starts_at.isoformat(),
        "ends_at": task.ends_at.isoformat(),
        "phase": phase_of(task, now),
        "points": task.points,
        "required_share": task.required_share,
        "required_targets": required_count(task, stats.targets) if stats.targets else 0,
        "max_riders": task.max_riders,
        "open_to_all": task.open_to_all,
        "rule_id": task.rule_id,
        "targets": stats.targets,
        "passed_targets": stats.passed_targets,
        "riders_with_progress": stats.riders,
        "riders_completed": stats.completed,
        "verified_until": task.verified_until.isoformat() if task.verified_until else None,
        "final": task.final,
        "created_at": task.created_at.isoformat(),
    }


def list_tasks(
    session: Session, *, phase: Phase | None = None, limit: int = 100, now: datetime | None = None
) -> list[dict[str, Any]]:
    """The task board: newest window first."""
    now = now or utcnow()
    query = select(PatrolTask).order_by(PatrolTask.starts_at.desc(), PatrolTask.id.desc()).limit(limit)
    if phase is not None:
        query = query.where(phase_filter(phase, now))
    tasks = session.scalars(query).all()
    stats = task_stats(session, tasks)
    return [task_summary(t, stats[t.id], now) for t in tasks]


def _targets_of(
    session: Session, task_ids: Sequence[int]
) -> tuple[dict[int, list[int]], dict[int, list[PatrolTaskCheckpoint]]]:
    """The cells and the checkpoints of many tasks, in two queries."""
    cells: dict[int, list[int]] = defaultdict(list)
    checkpoints: dict[int, list[PatrolTaskCheckpoint]] = defaultdict(list)
    for i in range(0, len(task_ids), CHUNK):
        chunk = task_ids[i : i + CHUNK]
        for task_id, cell in session.execute(
            select(PatrolTaskCell.task_id, PatrolTaskCell.cell)
            .where(PatrolTaskCell.task_id.in_(chunk))
            .order_by(PatrolTaskCell.task_id, PatrolTaskCell.cell)
        ):
            cells[task_id].append(int(cell))
        for cp in session.scalars(
            select(PatrolTaskCheckpoint)
            .where(PatrolTaskCheckpoint.task_id.in_(chunk))
            .order_by(PatrolTaskCheckpoint.task_id, PatrolTaskCheckpoint.seq)
        ):
            checkpoints[cp.task_id].append(cp)
    return cells, checkpoints


def _features_of(
    session: Session, tasks: Sequence[PatrolTask], rider_id: int | None = None
) -> dict[int, list[dict[str, Any]]]:
    """Per task, one Feature per target with the riders who passed it (only `rider_id`'s own visit, if given)."""
    ids = [t.id for t in tasks]
    cells, checkpoints = _targets_of(session, ids)
    passed: dict[tuple[int, int], tuple[int, datetime]] = {}
    for i in range(0, len(ids), CHUNK):
        visits = select(
            PatrolTaskVisit.task_id, PatrolTaskVisit.target, func.count(), func.min(PatrolTaskVisit.first_at)
        ).where(PatrolTaskVisit.task_id.in_(ids[i : i + CHUNK]))
        if rider_id is not None:
            visits = visits.where(PatrolTaskVisit.rider_id == rider_id)
        for task_id, target, n, first in session.execute(
            visits.group_by(PatrolTaskVisit.task_id, PatrolTaskVisit.target)
        ):
            passed[(task_id, int(target))] = (int(n), first)

    def props(task_id: int, target: int) -> dict[str, Any]:
        n, first = passed.get((task_id, target), (0, None))
        return {"passed_by": n, "first_pass_at": first.isoformat() if first else None, "passed": n > 0}

    out: dict[int, list[dict[str, Any]]] = {}
    for task in tasks:
        if task.kind == "cells":
            out[task.id] = [cell_feature(c, props(task.id, c)) for c in cells[task.id]]
            continue
        out[task.id] = [
            {
                "type": "Feature",
                "id": f"checkpoint-{cp.seq}",
                "geometry": {"type": "Point", "coordinates": [cp.lon, cp.lat]},
                "properties": {"seq": cp.seq, "name": cp.name, "radius_m": cp.radius_m, **props(task.id, cp.id)},
            }
            for cp in checkpoints[task.id]
        ]
    return out


def _target_features(session: Session, task: PatrolTask, rider_id: int | None = None) -> list[dict[str, Any]]:
    return _features_of(session, [task], rider_id)[task.id]


def tasks_map(
    session: Session, *, phase: Phase = "active", limit: int = 200, now: datetime | None = None
) -> dict[str, Any]:
    """The targets of the tasks in a phase as one GeoJSON layer, with how many riders passed each.

    Counts only, no rider named: the coverage map draws it for everyone who reads the task board.
    """
    now = now or utcnow()
    tasks = session.scalars(
        select(PatrolTask).where(phase_filter(phase, now)).order_by(PatrolTask.starts_at, PatrolTask.id).limit(limit)
    ).all()
    features = []
    targets = _features_of(session, tasks)
    for task in tasks:
        about = {"task_id": task.id, "title": task.title, "phase": phase_of(task, now), "points": task.points}
        for feature in targets[task.id]:
            feature["id"] = f"{task.id}:{feature['id']}"
            feature["properties"] = {**about, **feature["properties"]}
            features.append(feature)
    return {"type": "FeatureCollection", "features": features, "phase": phase, "tasks": len(tasks)}


def task_detail(session: Session, *, user: User, task_id: int, now: datetime | None = None) -> dict[str, Any]:
    """A task as GeoJSON (its targets with who passed them) plus the results; riders named only if allowed."""
    now = now or utcnow()
    task = get_task(session, task_id)
    stats = task_stats(session, [task])[task.id]
    invites = session.execute(
        select(User.username, Station.code)
        .select_from(PatrolTaskInvite)
        .outerjoin(User, User.id == PatrolTaskInvite.rider_id)
        .outerjoin(Station, Station.id == PatrolTaskInvite.station_id)
        .where(PatrolTaskInvite.task_id == task.id)
    ).all()
    named = policy.may_see_task_riders(user)
    results = []
    for result, username, display in session.execute(
        select(PatrolTaskResult, User.username, User.display_name)
        .join(User, User.id == PatrolTaskResult.rider_id)
        .where(PatrolTaskResult.task_id == task.id)
        .order_by(PatrolTaskResult.completed_at.is_(None), PatrolTaskResult.completed_at, PatrolTaskResult.rider_id)
    ):
        entry = _result_json(result, stats.targets)
        if named:
            entry = {"rider": username, "display_name": display, **entry}
        results.append(entry)
    return {
        "type": "FeatureCollection",
        "features": _target_features(session, task),
        "task": task_summary(task, stats, now),
        "area": task.area,
        "invited": {
            "riders": sorted(u for u, _ in invites if u) if named else [],
            "riders_count": sum(1 for u, _ in invites if u),
            "stations": sorted(s for _, s in invites if s),
        },
        "results": results,
    }


def view_task(session: Session, *, user: User, task_id: int, now: datetime | None = None) -> dict[str, Any]:
    """`task_detail` for a reader (API or page); named results are personal data, so each view is recorded."""
    detail = task_detail(session, user=user, task_id=task_id, now=now)
    if policy.may_see_task_riders(user) and detail["results"]:
        # Who passed which place when, by name: the audit log keeps who looked.
        record(session, actor=user, action="task.view_results", object_type="patrol_task", object_id=task_id)
    return detail


def _result_json(result: PatrolTaskResult | None, targets: int) -> dict[str, Any]:
    return {
        "visited": result.visited if result else 0,
        "targets": targets,
        "completed": bool(result and result.completed_at),
        "completed_at": result.completed_at.isoformat() if result and result.completed_at else None,
        "points_awarded": result.points_awarded if result else 0,
    }


@dataclass
class RiderTasks:
    reference: tuple[float, float] | None
    reference_source: str
    open: list[dict[str, Any]] = field(default_factory=list)
    recent: list[dict[str, Any]] = field(default_factory=list)


def _distances(session: Session, tasks: Sequence[PatrolTask], lat: float, lon: float) -> dict[int, float]:
    """From the rider to each task's nearest target (a cell's centre, or a checkpoint's edge)."""
    cells, checkpoints = _targets_of(session, [t.id for t in tasks])
    out: dict[int, float] = {}
    for task in tasks:
        if task.kind == "cells":
            near = (haversine_m(lat, lon, *h3.cell_to_latlng(c)) for c in cells[task.id])
        else:
            near = (max(0.0, haversine_m(lat, lon, cp.lat, cp.lon) - cp.radius_m) for cp in checkpoints[task.id])
        out[task.id] = min(near, default=math.inf)
    return out


def rider_tasks(
    session: Session,
    *,
    rider: User,
    near: tuple[float, float] | None = None,
    within_m: float | None = None,
    recent_days: int = 7,
    now: datetime | None = None,
) -> RiderTasks:
    """The rider's open tasks, nearest first, and those that ended lately with the rider's own result.

    Distances are from `near` (the phone's position, not stored), else the rider's last position.
    """
    if rider.role != "rider":
        raise Forbidden(N_("only riders have patrol tasks"))
    now = now or utcnow()
    source = "given"
    if near is None:
        last = session.get(LastPosition, rider.id)
        near, source = ((last.lat, last.lon), "last_position") if last else (None, "none")
    invited = and_(PatrolTask.status == "published", invited_filter(rider))
    open_tasks = session.scalars(
        select(PatrolTask).where(invited, PatrolTask.ends_at > now).order_by(PatrolTask.starts_at)
    ).all()
    since = now - timedelta(days=recent_days)
    # Also a task cancelled after the rider had made progress on it: what they achieved stays visible.
    cancelled_with_progress = and_(
        PatrolTask.status == "cancelled",
        PatrolTask.cancelled_at > since,
        PatrolTask.id.in_(select(PatrolTaskResult.task_id).where(PatrolTaskResult.rider_id == rider.id)),
        invited_filter(rider),
    )
    recent_tasks = session.scalars(
        select(PatrolTask)
        .where(or_(and_(invited, PatrolTask.ends_at <= now, PatrolTask.ends_at > since), cancelled_with_progress))
        .order_by(PatrolTask.ends_at.desc())
    ).all()
    stats = task_stats(session, [*open_tasks, *recent_tasks])
    mine = {
        r.task_id: r
        for r in session.scalars(
            select(PatrolTaskResult).where(
                PatrolTaskResult.rider_id == rider.id,
                PatrolTaskResult.task_id.in_([t.id for t in (*open_tasks, *recent_tasks)] or [-1]),
            )
        )
    }
    out = RiderTasks(reference=near, reference_source=source)
    distances = _distances(session, open_tasks, *near) if near else {}
    for task in open_tasks:
        distance = distances.get(task.id)
        if within_m is not None and distance is not None and distance > within_m:
            continue
        out.open.append(_rider_entry(task, stats[task.id], mine.get(task.id), distance, now))
    out.open.sort(key=lambda e: (e["distance_m"] is None, e["distance_m"] or 0, e["starts_at"]))
    out.recent = [_rider_entry(t, stats[t.id], mine.get(t.id), None, now) for t in recent_tasks]
    return out


def _rider_entry(
    task: PatrolTask, stats: TaskStats, result: PatrolTaskResult | None, distance: float | None, now: datetime
) -> dict[str, Any]:
    summary = task_summary(task, stats, now)
    keep = ("id", "title", "note", "kind", "starts_at", "ends_at", "phase", "points", "required_targets", "targets")
    return {
        **{k: summary[k] for k in keep},
        "distance_m": round(distance) if distance is not None and math.isfinite(distance) else None,
        "mine": _result_json(result, stats.targets),
        "spots_left": (
            None if task.max_riders is None else max(0, task.max_riders - min(stats.completed, task.max_riders))
        ),
    }


def rider_task_detail(session: Session, *, rider: User, task_id: int, now: datetime | None = None) -> dict[str, Any]:
    """One of the rider's tasks on the map: its targets, which the rider has passed, the rider's result."""
    now = now or utcnow()
    task = session.scalar(
        select(PatrolTask).where(PatrolTask.id == task_id, PatrolTask.status == "published", invited_filter(rider))
    )
    if task is None:
        raise NotFound(N_("you have no patrol task %(id)d"), id=task_id)
    stats = task_stats(session, [task])[task.id]
    result = session.get(PatrolTaskResult, (task.id, rider.id))
    return {
        "type": "FeatureCollection",
        "features": _target_features(session, task, rider_id=rider.id),
        "task": _rider_entry(task, stats, result, None, now),
    }


def visible_phase(value: str | None) -> Phase | None:
    if value is None or value == "":
        return None
    if value not in PHASES:
        raise InvalidInput(N_("phase must be one of %(choices)s"), choices=", ".join(PHASES))
    return value
