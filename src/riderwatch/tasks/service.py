"""Patrol tasks: places riders are asked to pass in a time window, and the proof that they did.

A dispatcher (or a rule, see tasks/rules.py) publishes a task over H3 cells — given directly, or
the cells of a drawn or stored area — or over check-in points with a radius, for a window, to
invited riders or stations or to every rider, with points offered. Riders do nothing but pass:
`verify_task` reads the positions they sent while on duty inside the window and records, per
rider and target, the first time they passed it. A task is done for a rider once they passed the
required share of its targets; the first `max_riders` to finish earn the points.

Verification finds its candidates in the per-rider cell-hour aggregates (an index lookup on the
task's few cells) and then reads only those riders' positions in the hours they were near, inside
the targets' bounding box, so it costs the same however many riders are on the street elsewhere;
later checks read only the points that arrived since. It runs as a periodic job, and on demand.
The job checks the due tasks together (`verify_due`): each rider's points in the spans of all the
tasks are read once, in one statement for many riders, and handed to every task they fit.
A withdrawal of consent deletes the rider's raw positions and visits, but not what they had already
achieved; a late "off duty" takes back what the points after it achieved (forget_visits_after). Points
for the first `max_riders` are provisional until the task is final: a late batch can reveal an earlier
finisher.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NamedTuple

from h3.api import basic_int as h3
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    and_,
    bindparam,
    cast,
    delete,
    func,
    literal,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

from riderwatch import policy
from riderwatch.audit.service import record
from riderwatch.config import Settings
from riderwatch.coverage.service import CoverageLimits, area_cells, cell_feature, resolve_area
from riderwatch.db import UTCDateTime, sqlite_time, upsert, utcnow
from riderwatch.errors import N_, Conflict, Forbidden, InvalidInput, NotFound
from riderwatch.geo.coords import EARTH_RADIUS_M, haversine_m, to_wgs84
from riderwatch.models import (
    CoverageRiderCell,
    LastPosition,
    PatrolTask,
    PatrolTaskCell,
    PatrolTaskCheckpoint,
    PatrolTaskInvite,
    PatrolTaskResult,
    PatrolTaskVisit,
    Position,
    Rider,
    Station,
    User,
)
from riderwatch.tracking.ingest import MICROS_PER_SECOND, SECONDS_PER_HOUR, coordinates_ok, hour_of, micros

log = logging.getLogger(__name__)

Phase = Literal["upcoming", "active", "ended", "cancelled"]
PHASES: tuple[Phase, ...] = ("upcoming", "active", "ended", "cancelled")
CHUNK = 1000
# The job reads the positions of this many due tasks at once, and this many (rider, time span) ranges
# per statement.
TASKS_PER_READ = 200
RANGES_PER_READ = 500
ROWS_PER_FETCH = 5000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# On the sphere haversine_m measures on.
METRES_PER_DEGREE = math.radians(1) * EARTH_RADIUS_M
RECHECK_ENDED = timedelta(minutes=15)
COMMIT_MARGIN = timedelta(minutes=5)
MAX_TITLE = 120
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


@dataclass(frozen=True)
class CheckpointDraft:
    lat: float
    lon: float
    radius_m: float
    name: str = ""


@dataclass(frozen=True)
class TaskDraft:
    """What a dispatcher asks for. Exactly one target: `cells`, `area` or `checkpoints`."""

    title: str
    starts_at: datetime
    ends_at: datetime
    note: str = ""
    cells: Sequence[str] | None = None
    area: Any = None
    resolution: int | None = None
    checkpoints: Sequence[CheckpointDraft] | None = None
    crs: str | None = None
    points: int = 0
    required_share: float = 1.0
    max_riders: int | None = None
    open_to_all: bool = False
    riders: Sequence[str] = ()
    stations: Sequence[str] = ()


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
    stations: dict[str, int] = {
        code: sid for code, sid in session.execute(select(Station.code, Station.id).where(Station.code.in_(codes)))
    }
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


def _phase_filter(phase: Phase, now: datetime) -> ColumnElement[bool]:
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


def _eligible(session: Session, wanted: Sequence[tuple[PatrolTask, set[int]]]) -> dict[int, set[int]]:
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


# --- verification -------------------------------------------------------------------------------


class _Spot(NamedTuple):
    """A check-in point as verification tests it (plain values: it is tested against many points)."""

    id: int
    lat: float
    lon: float
    radius_m: float


@dataclass(frozen=True)
class _Targets:
    """What a rider must pass: cells (at the task's resolution) or checkpoints (by id)."""

    resolution: int
    cells: frozenset[int] = frozenset()
    checkpoints: tuple[_Spot, ...] = ()
    # Cells (at `resolution`) in which a pass can count: the lookup keys for candidate riders.
    search_cells: tuple[int, ...] = ()
    # (south, west, north, east) around every target: positions outside are not read.
    bbox: tuple[float, float, float, float] = (-90.0, -180.0, 90.0, 180.0)

    @property
    def count(self) -> int:
        return len(self.cells) if self.cells else len(self.checkpoints)


def _targets(session: Session, task: PatrolTask, limits: TaskLimits) -> _Targets:
    if task.kind == "cells":
        assert task.resolution is not None
        cells = session.scalars(select(PatrolTaskCell.cell).where(PatrolTaskCell.task_id == task.id)).all()
        boundary = [corner for c in cells for corner in h3.cell_to_boundary(c)]
        return _Targets(
            resolution=task.resolution,
            cells=frozenset(cells),
            search_cells=tuple(sorted(cells)),
            bbox=_bbox(boundary),
        )
    checkpoints = tuple(
        _Spot(*row)
        for row in session.execute(
            select(
                PatrolTaskCheckpoint.id,
                PatrolTaskCheckpoint.lat,
                PatrolTaskCheckpoint.lon,
                PatrolTaskCheckpoint.radius_m,
            )
            .where(PatrolTaskCheckpoint.task_id == task.id)
            .order_by(PatrolTaskCheckpoint.seq)
        )
    )
    res = limits.finest
    search: set[int] = set()
    corners: list[tuple[float, float]] = []
    for cp in checkpoints:
        # A metre of margin, or a hundredth of the radius (the box is in degrees, the radius on a sphere).
        reach = cp.radius_m + max(1.0, cp.radius_m / 100)
        dlat = reach / METRES_PER_DEGREE
        dlon = dlat / max(math.cos(math.radians(cp.lat)), 0.01)
        corners += [(cp.lat - dlat, cp.lon - dlon), (cp.lat + dlat, cp.lon + dlon)]
        centre = h3.latlng_to_cell(cp.lat, cp.lon, res)
        # Every cell with a point within the radius lies within k steps of the centre's cell: k rings
        # reach at least 1.5·k edges, measured with the shortest edge here (cells vary over the globe).
        ring = h3.cell_to_boundary(centre)
        edge = min(haversine_m(*ring[i - 1], *ring[i]) for i in range(len(ring)))
        k = math.ceil(reach / (edge * 1.5)) + 2
        search.update(h3.grid_disk(centre, k))
    return _Targets(resolution=res, checkpoints=checkpoints, search_cells=tuple(sorted(search)), bbox=_bbox(corners))


def _bbox(points: Sequence[tuple[float, float]]) -> tuple[float, float, float, float]:
    """(south, west, north, east) of (lat, lon) points, widened by a metre for rounding."""
    if not points:
        return (0.0, 0.0, 0.0, 0.0)
    margin = 1 / METRES_PER_DEGREE  # the checkpoints' corners carry their own margin
    lats, lons = [p[0] for p in points], [p[1] for p in points]
    return (min(lats) - margin, min(lons) - margin, max(lats) + margin, max(lons) + margin)


def _candidates(session: Session, targets: _Targets, start: datetime, end: datetime) -> dict[int, set[int]]:
    """Rider → the hours of the window in which they passed any of the cells (from the per-rider aggregates)."""
    first, last = hour_of(start), hour_of(end) + 1
    out: dict[int, set[int]] = defaultdict(set)
    cells = targets.search_cells
    for i in range(0, len(cells), CHUNK):
        rows = session.execute(
            select(CoverageRiderCell.rider_id, CoverageRiderCell.hour)
            .where(
                CoverageRiderCell.resolution == targets.resolution,
                CoverageRiderCell.cell.in_(cells[i : i + CHUNK]),
                CoverageRiderCell.hour >= first,
                CoverageRiderCell.hour < last,
            )
            .distinct()
        )
        for rider_id, hour in rows:
            out[rider_id].add(hour)
    return out


def _spans(hours: set[int], start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Runs of consecutive hours as time spans, cut to [start, end)."""
    spans: list[tuple[datetime, datetime]] = []
    for hour in sorted(hours):
        lo = max(start, datetime.fromtimestamp(hour * SECONDS_PER_HOUR, UTC))
        hi = min(end, datetime.fromtimestamp((hour + 1) * SECONDS_PER_HOUR, UTC))
        if lo >= hi:
            continue
        if spans and spans[-1][1] >= lo:
            spans[-1] = (spans[-1][0], hi)
        else:
            spans.append((lo, hi))
    return spans


@dataclass(frozen=True)
class _Check:
    """One task's part of a verification run: what it counts, and which riders' points it reads when."""

    task_id: int
    targets: _Targets
    end: datetime
    # Points received up to this instant were counted by an earlier check (None: the first check).
    since: datetime | None
    # Each eligible candidate rider → the spans of the window in which they were near the targets.
    spans: dict[int, list[tuple[datetime, datetime]]]


def _checkable(task: PatrolTask, now: datetime) -> bool:
    return task.status == "published" and not task.final and now >= task.starts_at


def _checks(session: Session, tasks: Sequence[PatrolTask], limits: TaskLimits, now: datetime) -> list[_Check]:
    """For each task: its targets, and its eligible candidate riders with the spans they were near them."""
    found: list[tuple[PatrolTask, _Targets, datetime, dict[int, set[int]]]] = []
    for task in tasks:
        end = min(now, task.ends_at)
        targets = _targets(session, task, limits)
        found.append((task, targets, end, _candidates(session, targets, task.starts_at, end)))
    eligible = _eligible(session, [(task, set(hours)) for task, _, _, hours in found])
    checks = []
    for task, targets, end, hours in found:
        spans = {r: _spans(hours[r], task.starts_at, end) for r in sorted(eligible[task.id])}
        # Points counted at an earlier check need not be read again; the margin covers requests that
        # were still being stored (received, not yet committed) when that check ran.
        since = None if task.verified_at is None else task.verified_at - COMMIT_MARGIN
        checks.append(
            _Check(task_id=task.id, targets=targets, end=end, since=since, spans={r: s for r, s in spans.items() if s})
        )
    return checks


def _ranges(checks: Sequence[_Check]) -> list[tuple[int, datetime, datetime]]:
    """(rider, from, until): every check's spans, each rider's spans of all the tasks merged, so that
    a point several tasks want is read once."""
    wanted: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for check in checks:
        for rider, spans in check.spans.items():
            wanted[rider] += spans
    out: list[tuple[int, datetime, datetime]] = []
    for rider in sorted(wanted):
        merged: list[tuple[datetime, datetime]] = []
        for lo, hi in sorted(wanted[rider]):
            if merged and lo <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            else:
                merged.append((lo, hi))
        out += [(rider, lo, hi) for lo, hi in merged]
    return out


class _Times:
    """Times of positions in a form the many points read need no conversion for, and that sorts as
    time does: on SQLite the text `UTCDateTime` stores (fixed width; SQLite itself compares it so),
    on PostgreSQL whole microseconds since 1970 (computed exactly by the server). Only the first
    visits found are turned back into datetimes."""

    def __init__(self, session: Session) -> None:
        self.sqlite = session.get_bind().dialect.name == "sqlite"

    def column(self) -> ColumnElement[Any]:
        if self.sqlite:
            return type_coerce(Position.ts, NullType())
        return cast(func.extract("epoch", Position.ts) * MICROS_PER_SECOND, BigInteger)

    def raw(self, moment: datetime) -> Any:
        if self.sqlite:
            return sqlite_time(moment)
        return micros(moment)

    def aware(self, value: Any) -> datetime:
        if self.sqlite:
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        return EPOCH + timedelta(microseconds=value)


def _range_table(session: Session, ranges: Sequence[tuple[int, datetime, datetime]]) -> tuple[Any, Any, Any, Any]:
    """The ranges as a table (rider, lo, hi) bound as one parameter per column: arrays on PostgreSQL,
    one JSON list on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        times = postgresql.ARRAY(UTCDateTime())
        table = (
            func.unnest(
                bindparam(None, [r[0] for r in ranges], type_=postgresql.ARRAY(BigInteger)),
                bindparam(None, [r[1] for r in ranges], type_=times),
                bindparam(None, [r[2] for r in ranges], type_=times),
            )
            .table_valued("rider", "lo", "hi")
            .render_derived()
        )
        return table, table.c.rider, table.c.lo, table.c.hi
    raw = _Times(session).raw
    table = func.json_each(json.dumps([[rider, raw(lo), raw(hi)] for rider, lo, hi in ranges])).table_valued("value")
    value = table.c.value
    return (
        table,
        func.json_extract(value, "$[0]"),
        func.json_extract(value, "$[1]"),
        func.json_extract(value, "$[2]"),
    )


def _read_positions(session: Session, checks: Sequence[_Check], sinces: Sequence[datetime]) -> Iterator[Any]:
    """The points any of the checks may count, each read once.

    Rows (rider, ts as `_Times` gives it, lat, lon, cell, accuracy, received): `received` counts the
    instants of `sinces` (ascending) the point was received after. One statement per RANGES_PER_READ
    ranges; each range is one index range (rider, time) of positions, and only points inside some
    task's bounding box and received after that task's `since` come back.
    """
    near: list[ColumnElement[bool]] = []
    boxes = {(c.targets.bbox, c.since) for c in checks}
    for box, since in sorted(boxes, key=lambda b: (b[0], b[1] is not None, b[1] or EPOCH)):
        south, west, north, east = box
        inside = and_(Position.lat.between(south, north), Position.lon.between(west, east))
        near.append(inside if since is None else and_(Position.received_at > since, inside))
    conditions = [or_(*near)]
    if all(c.since is not None for c in checks):
        conditions.insert(0, Position.received_at > sinces[0])  # cheap, and enough to pass over most points
    received: ColumnElement[int] = sum(
        (cast(Position.received_at > since, Integer) for since in sinces), literal(0, Integer)
    )
    columns = (
        Position.rider_id,
        _Times(session).column(),
        Position.lat,
        Position.lon,
        Position.cell,
        Position.accuracy_m,
        received,
    )
    ranges = _ranges(checks)
    for i in range(0, len(ranges), RANGES_PER_READ):
        table, rider, lo, hi = _range_table(session, ranges[i : i + RANGES_PER_READ])
        query = (
            select(*columns)
            .select_from(table)
            .join(Position, and_(Position.rider_id == rider, Position.ts >= lo, Position.ts < hi))
            .where(*conditions)
        )
        for rows in session.connection().execute(query).partitions(ROWS_PER_FETCH):
            yield from rows


class _Wants(NamedTuple):
    """What one task takes from the points read, in plain values (it is tested against many points)."""

    task_id: int
    spans: dict[int, list[tuple[Any, Any]]]  # rider → spans, in the form of `_Times`
    after: int  # a point counts if received after this many of the run's `sinces` (0: any point)
    south: float
    west: float
    north: float
    east: float
    resolution: int
    cells: frozenset[int]
    checkpoints: tuple[_Spot, ...]


class _BoxIndex:
    """The tasks whose bounding box may hold a point, looked up by squares of a grid (about a kilometre).

    A point lies in a box only if its square lies in the box's squares (multiplying by a positive
    constant and flooring keep the order), so the lookup never misses a task; it only saves testing
    every box for every point. A box over too many squares is tried for every point.
    """

    PER_DEGREE = 100
    MAX_SQUARES = 400

    def __init__(self, wants: Sequence[_Wants]) -> None:
        self.everywhere: list[_Wants] = []
        squares: dict[tuple[int, int], list[_Wants]] = defaultdict(list)
        for want in wants:
            rows = range(math.floor(want.south * self.PER_DEGREE), math.floor(want.north * self.PER_DEGREE) + 1)
            columns = range(math.floor(want.west * self.PER_DEGREE), math.floor(want.east * self.PER_DEGREE) + 1)
            if len(rows) * len(columns) > self.MAX_SQUARES:
                self.everywhere.append(want)
                continue
            for row in rows:
                for column in columns:
                    squares[(row, column)].append(want)
        self.squares = {key: [*found, *self.everywhere] for key, found in squares.items()}


def _first_visits(
    session: Session, checks: Sequence[_Check], *, finest: int
) -> dict[int, dict[tuple[int, int], datetime]]:
    """Per task, (rider, target) → the first time the rider's positions in the task's spans passed the target.

    The tasks' points are read together (each point once, see _read_positions) and handed to every
    task whose rider, spans, bounding box and `since` they fit: each task gets exactly the points it
    would read alone.
    """
    times = _Times(session)
    raw = functools.cache(times.raw)  # spans of many riders and tasks share their hours
    sinces = sorted({c.since for c in checks if c.since is not None})
    wants = [
        _Wants(
            c.task_id,
            {r: [(raw(lo), raw(hi)) for lo, hi in spans] for r, spans in c.spans.items()},
            0 if c.since is None else sinces.index(c.since) + 1,
            *c.targets.bbox,
            c.targets.resolution,
            c.targets.cells,
            c.targets.checkpoints,
        )
        for c in checks
    ]
    first: dict[int, dict[tuple[int, int], Any]] = {c.task_id: {} for c in checks}
    if not any(c.spans for c in checks):
        return first
    index = _BoxIndex(wants)
    squares, everywhere, per_degree = index.squares, index.everywhere, _BoxIndex.PER_DEGREE
    floor = math.floor
    for rider, ts, lat, lon, stored_cell, accuracy, received in _read_positions(session, checks, sinces):
        # The point's cell at `resolution`, worked out once for all the tasks of that resolution.
        resolution, cell = -1, 0
        for want in squares.get((floor(lat * per_degree), floor(lon * per_degree)), everywhere):
            task_id, spans, after, south, west, north, east, task_resolution, cells, checkpoints = want
            if received < after or not (south <= lat <= north and west <= lon <= east):
                continue
            mine = spans.get(rider)
            if mine is None:
                continue
            for lo, hi in mine:
                if lo <= ts < hi:
                    break
            else:
                continue
            found = first[task_id]
            if cells:
                if task_resolution != resolution:
                    # As the aggregates do: the cell the point lies in at the task's resolution.
                    resolution = task_resolution
                    cell = stored_cell if resolution == finest else h3.latlng_to_cell(lat, lon, resolution)
                hits: Iterable[int] = (cell,) if cell in cells else ()
            else:
                # A fix less precise than a check-in circle is wide may have been taken anywhere near it.
                hits = [
                    spot.id
                    for spot in checkpoints
                    if (accuracy is None or accuracy <= spot.radius_m)
                    and haversine_m(spot.lat, spot.lon, lat, lon) <= spot.radius_m
                ]
            for target in hits:
                key = (rider, target)
                if key not in found or ts < found[key]:
                    found[key] = ts
    return {task_id: {key: times.aware(ts) for key, ts in found.items()} for task_id, found in first.items()}


def required_count(task: PatrolTask, targets: int) -> int:
    return max(1, math.ceil(task.required_share * targets - 1e-9))


def _record(
    session: Session,
    task: PatrolTask,
    check: _Check,
    visits: dict[tuple[int, int], datetime],
    limits: TaskLimits,
    now: datetime,
) -> int:
    """Store a task's first visits and results, and how far it has been checked."""
    if visits:
        rows = [
            {"task_id": task.id, "rider_id": r, "target": t, "first_at": ts} for (r, t), ts in sorted(visits.items())
        ]
        _upsert_rows(
            session,
            PatrolTaskVisit,
            rows,
            keys=("task_id", "rider_id", "target"),
            replace=("first_at",),
            earlier="first_at",
        )
    # Only riders with a point read now can have new visits; the others' results stand.
    progress = _update_results(session, task, check.targets.count, now, riders={r for r, _ in visits})
    task.verified_until = check.end
    task.verified_at = now
    if now >= task.ends_at + limits.late_points + COMMIT_MARGIN:
        task.final = True
    session.flush()
    return progress


def verify_task(session: Session, *, task: PatrolTask, limits: TaskLimits, now: datetime | None = None) -> int:
    """Check the invited riders' positions in the task's window; returns how many riders have progress."""
    now = now or utcnow()
    if not _checkable(task, now):
        return 0
    (check,) = _checks(session, [task], limits, now)
    visits = _first_visits(session, [check], finest=limits.finest)
    return _record(session, task, check, visits[task.id], limits, now)


def verify_now(session: Session, *, task: PatrolTask, limits: TaskLimits, now: datetime | None = None) -> int:
    """A dispatcher's "verify now": refused (409) when there is nothing a check could change."""
    now = now or utcnow()
    if task.status == "cancelled":
        raise Conflict(N_("the task is cancelled: it is no longer verified"))
    if now < task.starts_at:
        raise Conflict(N_("the task has not started: there are no positions to check yet"))
    if task.final:
        raise Conflict(N_("the task's results are final: no late point can arrive any more"))
    return verify_task(session, task=task, limits=limits, now=now)


def _upsert_rows(
    session: Session,
    model: type[PatrolTaskVisit] | type[PatrolTaskResult],
    rows: Sequence[dict[str, Any]],
    *,
    keys: Sequence[str],
    replace: Sequence[str],
    earlier: str | None = None,
) -> None:
    """INSERT many rows, a row already there (same `keys`) taking the new values of `replace` (only
    when the new `earlier` is earlier, if given). Straight to the connection, without the ORM's
    per-row bookkeeping: on PostgreSQL as one statement with an array per column, unnested (its text
    does not change with the number of rows); on SQLite through the driver's executemany."""
    stmt = upsert(session, model)
    table = model.__table__
    names = list(rows[0])
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        arrays = [bindparam(None, [row[n] for row in rows], type_=postgresql.ARRAY(table.c[n].type)) for n in names]
        source = func.unnest(*arrays).table_valued(*names).render_derived()
        stmt = stmt.from_select(names, select(*source.c))
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={n: stmt.excluded[n] for n in replace},
        where=None if earlier is None else stmt.excluded[earlier] < table.c[earlier],
    )
    if postgres:
        session.connection().execute(stmt)
    else:
        session.connection().execute(stmt, rows)


def _update_results(
    session: Session, task: PatrolTask, target_count: int, now: datetime, riders: Collection[int] | None = None
) -> int:
    """Sum the task's visits into its riders' results and award the points; returns how many riders have one.

    Only the results of `riders` (all riders, if None) are counted again from their visits: a check
    passes those that may have new visits, as the others' results cannot change but for the points.
    Set-at-a-time: the results whose numbers change are written in one statement, and one more marks
    every rider with visits as checked now (`updated_at`).
    """
    need = required_count(task, target_count)
    times: dict[int, list[datetime]] = defaultdict(list)
    visits = (
        select(PatrolTaskVisit.rider_id, PatrolTaskVisit.first_at)
        .where(PatrolTaskVisit.task_id == task.id)
        .order_by(PatrolTaskVisit.rider_id, PatrolTaskVisit.first_at)
    )
    ids = sorted(riders) if riders is not None else None
    for i in [0] if ids is None else range(0, len(ids), CHUNK):
        chunk = visits if ids is None else visits.where(PatrolTaskVisit.rider_id.in_(ids[i : i + CHUNK]))
        for rider_id, first_at in session.execute(chunk):
            times[rider_id].append(first_at)
    stored: dict[int, tuple[int, datetime | None, int]] = {
        rider_id: (visited, completed_at, points)
        for rider_id, visited, completed_at, points in session.execute(
            select(
                PatrolTaskResult.rider_id,
                PatrolTaskResult.visited,
                PatrolTaskResult.completed_at,
                PatrolTaskResult.points_awarded,
            ).where(PatrolTaskResult.task_id == task.id)
        )
    }
    visited = {r: v for r, (v, _, _) in stored.items()}
    completed = {r: c for r, (_, c, _) in stored.items()}
    for rider_id, seen in times.items():
        # Results only grow: visits deleted with a withdrawn consent do not undo what was achieved.
        visited[rider_id] = max(visited.get(rider_id, 0), len(seen))
        before = completed.get(rider_id)
        if len(seen) >= need and (before is None or seen[need - 1] < before):
            before = seen[need - 1]
        completed[rider_id] = before
    done = sorted((at, rider_id) for rider_id, at in completed.items() if at is not None)
    winners = {rider_id for _, rider_id in (done if task.max_riders is None else done[: task.max_riders])}
    results = {r: (visited[r], completed[r], task.points if r in winners else 0) for r in visited}
    changed = sorted(r for r, values in results.items() if stored.get(r) != values)
    rows = [
        {
            "task_id": task.id,
            "rider_id": r,
            "visited": results[r][0],
            "completed_at": results[r][1],
            "points_awarded": results[r][2],
            "updated_at": now,
        }
        for r in changed
        if r in times
    ]
    if rows:
        _upsert_rows(
            session,
            PatrolTaskResult,
            rows,
            keys=("task_id", "rider_id"),
            replace=("visited", "completed_at", "points_awarded", "updated_at"),
        )
    for r in changed:
        if r not in times:
            # Not counted again (no new visits, or visits gone with a withdrawn consent, which does not
            # undo what was achieved): only the points can move, when an earlier finisher turns up.
            session.execute(
                update(PatrolTaskResult)
                .where(PatrolTaskResult.task_id == task.id, PatrolTaskResult.rider_id == r)
                .values(points_awarded=results[r][2])
                .execution_options(synchronize_session=False)
            )
    session.execute(
        update(PatrolTaskResult)
        .where(
            PatrolTaskResult.task_id == task.id,
            PatrolTaskResult.rider_id.in_(select(PatrolTaskVisit.rider_id).where(PatrolTaskVisit.task_id == task.id)),
        )
        .values(updated_at=now)
        .execution_options(synchronize_session=False)
    )
    # Results loaded earlier in this session would show the old numbers.
    for obj in list(session.identity_map.values()):
        if isinstance(obj, PatrolTaskResult) and obj.task_id == task.id:
            session.expire(obj)
    return len(results)


def verify_due(session: Session, *, limits: TaskLimits, now: datetime | None = None) -> int:
    """The periodic job: verify the running tasks, and now and then those that ended but are not final.

    An ended task can only change through late points (phones that were offline), so it is checked
    again every `RECHECK_ENDED`, and a last time once no late point can arrive, which makes it final.
    The due tasks are checked together: each rider's points are read once for all of them.
    """
    now = now or utcnow()
    running = and_(PatrolTask.starts_at <= now, PatrolTask.ends_at > now)
    ended_due = and_(
        PatrolTask.ends_at <= now,
        or_(
            PatrolTask.verified_at.is_(None),
            PatrolTask.verified_at < now - RECHECK_ENDED,
            PatrolTask.ends_at <= now - limits.late_points - COMMIT_MARGIN,
        ),
    )
    tasks = session.scalars(
        select(PatrolTask)
        .where(PatrolTask.status == "published", PatrolTask.final.is_(False), or_(running, ended_due))
        .order_by(PatrolTask.id)
    ).all()
    checked = 0
    for i in range(0, len(tasks), TASKS_PER_READ):
        checked += _verify_together(session, tasks[i : i + TASKS_PER_READ], limits, now)
    return checked


def _verify_together(session: Session, tasks: Sequence[PatrolTask], limits: TaskLimits, now: datetime) -> int:
    """Verify the tasks from one shared read of positions; returns how many were verified.

    One task that cannot be checked must not hold up the others (nor roll back their results): each
    task's results are stored in a savepoint of their own, and should the shared read fail, the tasks
    are verified one by one, so that only the task at fault is left out.
    """
    try:
        with session.begin_nested():
            due = [t for t in tasks if _checkable(t, now)]
            checks = _checks(session, due, limits, now)
            visits = _first_visits(session, checks, finest=limits.finest)
    except Exception:
        log.exception("patrol tasks %s could not be read together; verifying them one by one", [t.id for t in tasks])
        return _verify_each(session, tasks, limits, now)
    checked = len(tasks) - len(checks)  # those that need no check (verify_task would return at once)
    for task, check in zip(due, checks, strict=True):
        try:
            with session.begin_nested():
                _record(session, task, check, visits[task.id], limits, now)
            checked += 1
        except Exception:
            log.exception("patrol task %s could not be verified", task.id)
    return checked


def _verify_each(session: Session, tasks: Sequence[PatrolTask], limits: TaskLimits, now: datetime) -> int:
    checked = 0
    for task in tasks:
        try:
            with session.begin_nested():
                verify_task(session, task=task, limits=limits, now=now)
            checked += 1
        except Exception:
            log.exception("patrol task %s could not be verified", task.id)
    return checked


def forget_rider_visits(session: Session, *, rider_id: int) -> int:
    """Visits place a rider at a time: they go with the raw positions (consent withdrawn)."""
    result = session.execute(delete(PatrolTaskVisit).where(PatrolTaskVisit.rider_id == rider_id))
    return int(getattr(result, "rowcount", 0) or 0)


def forget_visits_after(session: Session, *, rider_id: int, after: datetime, now: datetime | None = None) -> int:
    """A late "off duty": the rider's points after `after` were never valid, so neither are visits from them.

    Unlike a withdrawn consent (which deletes valid data), this takes back what those points achieved:
    the rider's results on the tasks concerned are counted again from the visits that remain.
    """
    now = now or utcnow()
    task_ids = sorted(
        set(
            session.scalars(
                select(PatrolTaskVisit.task_id).where(
                    PatrolTaskVisit.rider_id == rider_id, PatrolTaskVisit.first_at > after
                )
            )
        )
    )
    if not task_ids:
        return 0
    result = session.execute(
        delete(PatrolTaskVisit).where(PatrolTaskVisit.rider_id == rider_id, PatrolTaskVisit.first_at > after)
    )
    for task in session.scalars(select(PatrolTask).where(PatrolTask.id.in_(task_ids))):
        targets = _stats(session, [task])[task.id].targets
        mine = session.get(PatrolTaskResult, (task.id, rider_id))
        if mine is not None:
            seen = session.scalars(
                select(PatrolTaskVisit.first_at)
                .where(PatrolTaskVisit.task_id == task.id, PatrolTaskVisit.rider_id == rider_id)
                .order_by(PatrolTaskVisit.first_at)
            ).all()
            need = required_count(task, targets)
            mine.visited = len(seen)
            mine.completed_at = seen[need - 1] if len(seen) >= need else None
        _update_results(session, task, targets, now)
    return int(getattr(result, "rowcount", 0) or 0)


def purge_visits(session: Session, *, before: datetime) -> int:
    """Visits of tasks that ended before the retention cut-off go with the raw positions."""
    ended = select(PatrolTask.id).where(PatrolTask.ends_at < before)
    result = session.execute(delete(PatrolTaskVisit).where(PatrolTaskVisit.task_id.in_(ended)))
    return int(getattr(result, "rowcount", 0) or 0)


# --- reading ------------------------------------------------------------------------------------


@dataclass
class TaskStats:
    targets: int = 0
    riders: int = 0
    completed: int = 0
    passed_targets: int = 0


def _stats(session: Session, tasks: Sequence[PatrolTask]) -> dict[int, TaskStats]:
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
        query = query.where(_phase_filter(phase, now))
    tasks = session.scalars(query).all()
    stats = _stats(session, tasks)
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
        select(PatrolTask).where(_phase_filter(phase, now)).order_by(PatrolTask.starts_at, PatrolTask.id).limit(limit)
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
    stats = _stats(session, [task])[task.id]
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
    stats = _stats(session, [*open_tasks, *recent_tasks])
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
    stats = _stats(session, [task])[task.id]
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
