"""Coverage of an area over a time window, read from the per-cell, per-hour aggregates and their roll-up.

Nothing here reads raw positions: the counts were kept up to date at ingest (tracking/ingest.py).
Whole sealed days come from the daily roll-up's running totals (coverage/rollup.py): two index probes
per cell for a span of days, however long; only the windows' ragged ends and the days not yet sealed
are summed from coverage_cells. The answer is exactly the one the hourly counts alone would give.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from h3.api import basic_int as h3
from shapely.geometry.base import BaseGeometry
from sqlalchemy import BigInteger, and_, any_, bindparam, case, false, func, literal, or_, select, true, tuple_
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from riderwatch.config import Settings
from riderwatch.coverage.rollup import sealed_before, totals
from riderwatch.errors import InvalidInput
from riderwatch.geo.areas import AreaError, parse_area
from riderwatch.models import Community, CoverageCell, CoverageDay, Grid, Zone
from riderwatch.models.coverage import HOURS_PER_DAY
from riderwatch.tracking.ingest import SECONDS_PER_HOUR

STORED_AREAS: dict[str, Any] = {"zone": Zone, "grid": Grid, "community": Community}
# Cells per IN (...) list where cells are bound one by one (hotspots): well under SQLite's
# bound-parameter limit, and quick for PostgreSQL.
CHUNK = 2000
KM_PER_DEGREE = 111.32


@dataclass(frozen=True)
class CoverageLimits:
    resolutions: tuple[int, ...]
    max_cells: int
    max_window: timedelta
    timezone: str

    @classmethod
    def from_settings(cls, settings: Settings) -> CoverageLimits:
        return cls(
            resolutions=settings.coverage_resolutions,
            max_cells=settings.coverage_max_cells,
            max_window=timedelta(days=settings.coverage_max_window_days),
            timezone=settings.timezone,
        )


def resolve_area(session: Session, area: Any) -> BaseGeometry:
    """A GeoJSON Polygon/MultiPolygon, a Circle, or {"zone"|"grid"|"community": code}."""
    if isinstance(area, dict) and len(area) == 1 and next(iter(area)) in STORED_AREAS:
        kind, code = next(iter(area.items()))
        if not isinstance(code, str) or not code:
            raise InvalidInput(f"area.{kind} must be a code")
        model = STORED_AREAS[kind]
        boundary = session.scalar(select(model.boundary).where(model.code == code))
        if boundary is None:
            raise InvalidInput(f"no {kind} {code!r}")
        area = boundary
    try:
        return parse_area(area)
    except AreaError as exc:
        raise InvalidInput(f"area: {exc}") from exc


def _estimated_cells(geom: BaseGeometry, resolution: int) -> float:
    lat = geom.centroid.y
    km2 = geom.area * KM_PER_DEGREE**2 * max(math.cos(math.radians(lat)), 0.01)
    hexagon: float = h3.average_hexagon_area(resolution, "km^2")
    return float(km2 / hexagon)


def area_cells(geom: BaseGeometry, resolution: int, max_cells: int) -> list[int]:
    """The H3 cells whose centre lies inside the area, refused when there are too many."""
    too_many = InvalidInput(
        f"the area holds more than {max_cells} cells at resolution {resolution}; draw a smaller area "
        "or use a coarser resolution"
    )
    if _estimated_cells(geom, resolution) > max_cells * 1.5:
        raise too_many
    cells = sorted(h3.geo_to_cells(geom, resolution))
    if len(cells) > max_cells:
        raise too_many
    if not cells:
        raise InvalidInput(f"no cell centre at resolution {resolution} lies inside the area; draw a larger area")
    return cells


def hour_range(start: datetime, end: datetime) -> tuple[int, int]:
    """The aggregate hours overlapping [start, end): first inclusive, last exclusive."""
    return math.floor(start.timestamp() / SECONDS_PER_HOUR), math.ceil(end.timestamp() / SECONDS_PER_HOUR)


def _cell_values(session: Session, cells: Sequence[int]) -> Any:
    """The cells as a one-column table, bound as one parameter however many there are: an array on
    PostgreSQL, a JSON list on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        array = bindparam(None, list(cells), type_=postgresql.ARRAY(BigInteger))
        return func.unnest(array).table_valued("cell").render_derived().c.cell
    return func.json_each(json.dumps(list(cells))).table_valued("value").c.value


def among(session: Session, column: Any, cells: Sequence[int]) -> Any:
    """`column IN cells`, the cells bound as one parameter: cheaper to send and plan than one per cell."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(cells), type_=postgresql.ARRAY(BigInteger)))
    return column.in_(select(_cell_values(session, cells)))


def totals_at(session: Session, *, resolution: int, cells: Sequence[int], day: int) -> dict[int, tuple[int, ...]]:
    """Each cell's running totals (passes, riders, p00 … p23) over the rolled-up days up to and including
    `day`: its latest coverage_days row on or before it. Cells without one are left out (all zero).

    Driven by the list of cells, one index probe per cell, however long the history: a LATERAL join on
    PostgreSQL; on SQLite, the keys of the latest rows, found by one probe each, then looked up."""
    table = CoverageDay.__table__
    columns = [table.c[name] for name in totals()]
    if session.get_bind().dialect.name == "postgresql":
        cell = _cell_values(session, cells)
        latest = (
            select(*columns)
            .where(table.c.resolution == resolution, table.c.cell == cell, table.c.day <= day)
            .order_by(table.c.day.desc())
            .limit(1)
            .lateral("latest")
        )
        stmt = select(cell, *(latest.c[name] for name in totals())).join(latest, true())
    else:
        earlier = table.alias("earlier")
        cell = _cell_values(session, cells)
        latest_day = (
            select(func.max(earlier.c.day))
            .where(earlier.c.resolution == resolution, earlier.c.cell == cell, earlier.c.day <= day)
            .scalar_subquery()
        )
        keys = select(literal(resolution), cell, latest_day)
        stmt = select(table.c.cell, *columns).where(tuple_(table.c.resolution, table.c.cell, table.c.day).in_(keys))
    return {int(row[0]): tuple(row[1:]) for row in session.execute(stmt)}  # both drivers give ints


@dataclass(frozen=True)
class Span:
    """How a window of aggregate hours is read: whole sealed days [days[0], days[1]) from the daily
    roll-up, the remaining hour ranges from coverage_cells."""

    days: tuple[int, int]
    hours: tuple[tuple[int, int], ...]

    @property
    def has_days(self) -> bool:
        return self.days[0] < self.days[1]


def split_hours(hours: tuple[int, int], sealed_before: int | None) -> Span:
    """The whole UTC days inside the hours that are rolled up (before sealed_before), and the rest."""
    first, last = hours
    if sealed_before is not None:
        d0 = -(-first // HOURS_PER_DAY)
        d1 = min(last // HOURS_PER_DAY, sealed_before)
        if d0 < d1:
            rest = ((first, d0 * HOURS_PER_DAY), (d1 * HOURS_PER_DAY, last))
            return Span((d0, d1), tuple(r for r in rest if r[0] < r[1]))
    return Span((0, 0), ((first, last),) if first < last else ())


def _segments(*ranges: tuple[int, int]) -> list[tuple[int, int]]:
    """Overlapping or touching ranges merged, in order."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _within(column: Any, ranges: Sequence[tuple[int, int]]) -> Any:
    return or_(false(), *(and_(column >= lo, column < hi) for lo, hi in ranges))


@dataclass
class WindowSums:
    """Passes and rider-hours per cell in the window and in the window before, and the window's
    passes by local hour of day."""

    counts: dict[int, tuple[int, int]]
    previous: dict[int, tuple[int, int]]
    profile: list[int]

    def add(self, rows: Any) -> None:
        """Rows of (cell, passes, rider-hours in the window, the same in the window before)."""
        for cell, passes, riders, prev_passes, prev_riders in rows:
            _add(self.counts, int(cell), int(passes), int(riders))
            _add(self.previous, int(cell), int(prev_passes), int(prev_riders))


def _add(into: dict[int, tuple[int, int]], cell: int, passes: int, riders: int) -> None:
    if passes or riders:
        old = into.get(cell, (0, 0))
        into[cell] = (old[0] + passes, old[1] + riders)


def _column_sums(totals: dict[int, tuple[int, ...]]) -> list[int]:
    return [sum(column) for column in zip(*totals.values(), strict=True)] or [0] * (2 + HOURS_PER_DAY)


def window_sums(
    session: Session,
    *,
    resolution: int,
    cells: Sequence[int],
    window: tuple[int, int],
    previous: tuple[int, int],
    tz: ZoneInfo,
    sealed_before: int | None,
) -> WindowSums:
    """Both windows and the profile: whole sealed days from the roll-up's running totals (the totals at
    a span's last day minus those at the day before its first, per cell), the hours left over (the
    windows' ragged ends, the days not yet sealed) from coverage_cells. With `sealed_before` None
    everything comes from coverage_cells."""
    out = WindowSums({}, {}, [0] * HOURS_PER_DAY)
    now, before = split_hours(window, sealed_before), split_hours(previous, sealed_before)
    at_day: dict[int, dict[int, tuple[int, ...]]] = {}

    def at(day: int) -> dict[int, tuple[int, ...]]:
        if day not in at_day:
            at_day[day] = totals_at(session, resolution=resolution, cells=cells, day=day)
        return at_day[day]

    for span, into in ((now, out.counts), (before, out.previous)):
        if span.has_days:
            earlier = at(span.days[0] - 1)
            for cell, (passes, riders, *_) in at(span.days[1] - 1).items():
                old = earlier.get(cell)
                _add(into, cell, passes - (old[0] if old else 0), riders - (old[1] if old else 0))
    local_hour = _local_hours(tz)
    for first_day, last_day, hours in _runs_of_equal_local_hours(now.days, local_hour):
        upto, earlier_sums = _column_sums(at(last_day)), _column_sums(at(first_day - 1))
        for h, local in enumerate(hours):
            out.profile[local] += upto[2 + h] - earlier_sums[2 + h]
    # One statement per stretch of hours: the ranges of both windows merged where they touch.
    c = CoverageCell
    in_now, in_before = _within(c.hour, now.hours), _within(c.hour, before.hours)
    for lo, hi in _segments(*now.hours, *before.hours):
        where = (c.resolution == resolution, among(session, c.cell, cells), c.hour >= lo, c.hour < hi)
        out.add(
            session.execute(
                select(
                    c.cell,
                    func.sum(case((in_now, c.passes), else_=0)),
                    func.sum(case((in_now, c.riders), else_=0)),
                    func.sum(case((in_before, c.passes), else_=0)),
                    func.sum(case((in_before, c.riders), else_=0)),
                )
                .where(*where)
                .group_by(c.cell)
            )
        )
        if any(a < hi and lo < b for a, b in now.hours):
            rows = session.execute(select(c.hour, func.sum(c.passes)).where(*where, in_now).group_by(c.hour))
            for hour, n in rows:
                out.profile[local_hour(int(hour))] += int(n or 0)
    return out


def _runs_of_equal_local_hours(
    days: tuple[int, int], local_hour: Callable[[int], int]
) -> list[tuple[int, int, tuple[int, ...]]]:
    """The days [first, last] split into runs whose UTC hours 0–23 fall on the same local hours
    (one run unless the timezone changes its offset in between): (first, last, local hour of each)."""
    runs: list[tuple[int, int, tuple[int, ...]]] = []
    for day in range(*days):
        hours = tuple(local_hour(day * HOURS_PER_DAY + h) for h in range(HOURS_PER_DAY))
        if runs and runs[-1][2] == hours:
            runs[-1] = (runs[-1][0], day, hours)
        else:
            runs.append((day, day, hours))
    return runs


def _local_hours(tz: ZoneInfo) -> Callable[[int], int]:
    """The local hour of day (0–23) of an aggregate hour."""

    @lru_cache(maxsize=4096)
    def local_hour(hour: int) -> int:
        return datetime.fromtimestamp(hour * SECONDS_PER_HOUR, UTC).astimezone(tz).hour

    return local_hour


def summarize(cells: Sequence[int], counts: dict[int, tuple[int, int]], min_passes: int) -> dict[str, Any]:
    blind = [h3.int_to_str(c) for c in cells if counts.get(c, (0, 0))[0] < min_passes]
    covered = len(cells) - len(blind)
    return {
        "cells": len(cells),
        "covered": covered,
        "coverage_ratio": covered / len(cells) if cells else 0.0,
        "blind_cells": blind,
    }


@lru_cache(maxsize=20_000)
def _cell_shape(cell: int) -> tuple[str, tuple[tuple[float, float], ...]]:
    """An H3 cell's string form and its hexagon as a closed lon/lat ring. Cells never move, so the last
    20,000 asked for (a district at both resolutions many times over; under 20 MB) are kept."""
    ring = tuple((lon, lat) for lat, lon in h3.cell_to_boundary(cell))
    return h3.int_to_str(cell), (*ring, ring[0])


def cell_feature(cell: int, properties: dict[str, Any]) -> dict[str, Any]:
    """A GeoJSON Feature for an H3 cell: its hexagon (lon/lat, closed ring), id and `h3` its string form."""
    name, ring = _cell_shape(cell)
    return {
        "type": "Feature",
        "id": name,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"h3": name, **properties},
    }


def query_coverage(
    session: Session,
    *,
    area: Any,
    start: datetime,
    end: datetime,
    resolution: int | None,
    min_passes: int,
    limits: CoverageLimits,
) -> dict[str, Any]:
    """Covered and blind cells of an area in a window, its hour-of-day profile and the trend.

    The answer is a GeoJSON FeatureCollection (one Feature per cell) with foreign members
    `summary`, `hour_profile`, `previous` (the window of equal length just before) and `trend`.
    """
    res = limits.resolutions[0] if resolution is None else resolution
    if res not in limits.resolutions:
        raise InvalidInput(f"resolution must be one of {', '.join(map(str, limits.resolutions))}")
    if end <= start:
        raise InvalidInput("'to' must be after 'from'")
    if end - start > limits.max_window:
        raise InvalidInput(f"the window may span at most {limits.max_window.days} days")
    if min_passes < 1:
        raise InvalidInput("min_passes must be at least 1")
    cells = area_cells(resolve_area(session, area), res, limits.max_cells)
    prev_start = start - (end - start)
    tz = ZoneInfo(limits.timezone)
    sums = window_sums(
        session,
        resolution=res,
        cells=cells,
        window=hour_range(start, end),
        previous=hour_range(prev_start, start),
        tz=tz,
        sealed_before=sealed_before(session),
    )
    summary = summarize(cells, sums.counts, min_passes)
    previous = summarize(cells, sums.previous, min_passes)
    features = []
    for cell in cells:
        passes, riders = sums.counts.get(cell, (0, 0))
        features.append(cell_feature(cell, {"passes": passes, "riders": riders, "covered": passes >= min_passes}))
    return {
        "type": "FeatureCollection",
        "features": features,
        "resolution": res,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "min_passes": min_passes,
        "summary": summary,
        "hour_profile": sums.profile,
        "timezone": limits.timezone,
        "previous": {"from": prev_start.isoformat(), "to": start.isoformat(), **previous},
        "trend": summary["coverage_ratio"] - previous["coverage_ratio"],
    }
