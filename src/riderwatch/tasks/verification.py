"""Verifying patrol tasks from riders' positions: who passed which target, when, and who completed.

`verify_task` reads the positions riders sent while on duty inside the window and records, per
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
import logging
import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from h3.api import basic_int as h3
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    and_,
    cast,
    delete,
    func,
    literal,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

from riderwatch.db import UTCDateTime, atomic, sqlite_time
from riderwatch.errors import N_, Conflict
from riderwatch.geo.coords import EARTH_RADIUS_M, haversine_m
from riderwatch.infra.bulk import upsert_rows
from riderwatch.infra.clock import utcnow
from riderwatch.infra.sqlparams import values_table
from riderwatch.infra.timecodes import MICROS_PER_SECOND, SECONDS_PER_HOUR, hour_of, micros
from riderwatch.models import (
    CoverageRiderCell,
    PatrolTask,
    PatrolTaskCell,
    PatrolTaskCheckpoint,
    PatrolTaskResult,
    PatrolTaskVisit,
    Position,
)
from riderwatch.points import service as points
from riderwatch.tasks.service import CHUNK, TaskLimits, eligible_riders, task_stats

log = logging.getLogger(__name__)

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
    eligible = eligible_riders(session, [(task, set(hours)) for task, _, _, hours in found])
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
        chunk = ranges[i : i + RANGES_PER_READ]
        table, (rider, lo, hi) = values_table(
            session,
            {
                "rider": ([r[0] for r in chunk], BigInteger()),
                "lo": ([r[1] for r in chunk], UTCDateTime()),
                "hi": ([r[2] for r in chunk], UTCDateTime()),
            },
        )
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
        upsert_rows(
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


@atomic
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
        upsert_rows(
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
    for r in changed:
        # The ledger follows the result: points earned, or taken back when an earlier finisher took the place.
        points.settle(session, rider_id=r, source="task", source_id=task.id, points=results[r][2])
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
        targets = task_stats(session, [task])[task.id].targets
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
