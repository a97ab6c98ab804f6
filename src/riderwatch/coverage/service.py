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
from sqlalchemy import (
    BigInteger,
    Integer,
    and_,
    bindparam,
    case,
    false,
    func,
    literal,
    or_,
    select,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from riderwatch.config import Settings
from riderwatch.coverage.counts import count_sources
from riderwatch.coverage.rollup import hour_columns, sealed_before, totals
from riderwatch.errors import N_, InvalidInput
from riderwatch.geo.areas import AreaError, parse_area
from riderwatch.infra.sqlparams import one_of, values_column
from riderwatch.infra.timecodes import SECONDS_PER_HOUR
from riderwatch.models import Community, CoverageCell, CoverageDay, Grid, Zone
from riderwatch.models.coverage import HOURS_PER_DAY

STORED_AREAS: dict[str, Any] = {"zone": Zone, "grid": Grid, "community": Community}
# The refusal for a stored area's unknown code, one sentence per kind (they read differently in Chinese).
NO_AREA: dict[str, str] = {
    "zone": N_("no zone %(code)r"),
    "grid": N_("no grid %(code)r"),
    "community": N_("no community %(code)r"),
}
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
            raise InvalidInput(N_("area.%(kind)s must be a code"), kind=kind)
        model = STORED_AREAS[kind]
        boundary = session.scalar(select(model.boundary).where(model.code == code))
        if boundary is None:
            raise InvalidInput(NO_AREA[kind], code=code)
        area = boundary
    try:
        return parse_area(area)
    except AreaError as exc:
        raise InvalidInput(N_("area: %(reason)s"), reason=str(exc)) from exc


def _estimated_cells(geom: BaseGeometry, resolution: int) -> float:
    lat = geom.centroid.y
    km2 = geom.area * KM_PER_DEGREE**2 * max(math.cos(math.radians(lat)), 0.01)
    hexagon: float = h3.average_hexagon_area(resolution, "km^2")
    return float(km2 / hexagon)


def area_cells(geom: BaseGeometry, resolution: int, max_cells: int) -> list[int]:
    """The H3 cells whose centre lies inside the area, refused when there are too many."""
    too_many = InvalidInput(
        N_(
            "the area holds more than %(max)d cells at resolution %(res)d; draw a smaller area "
            "or use a coarser resolution"
        ),
        max=max_cells,
        res=resolution,
    )
    if _estimated_cells(geom, resolution) > max_cells * 1.5:
        raise too_many
    cells = sorted(h3.geo_to_cells(geom, resolution))
    if len(cells) > max_cells:
        raise too_many
    if not cells:
        raise InvalidInput(
            N_("no cell centre at resolution %(res)d lies inside the area; draw a larger area"), res=resolution
        )
    return cells


def hour_range(start: datetime, end: datetime) -> tuple[int, int]:
    """The aggregate hours overlapping [start, end): first inclusive, last exclusive."""
    return math.floor(start.timestamp() / SECONDS_PER_HOUR), math.ceil(end.timestamp() / SECONDS_PER_HOUR)


def _cell_values(session: Session, cells: Sequence[int]) -> Any:
    """The cells as a one-column table, bound as one parameter however many there are."""
    return values_column(session, cells, BigInteger(), name="cell")


def _latest_rows(session: Session, *, resolution: int, cells: Sequence[int], days: Sequence[int]) -> Any:
    """For each cell and each of `days`, the cell's latest coverage_days row on or before that day, as a
    subquery with the columns `probe` (the day asked for), `cell` and the row's totals. Cells without
    such a row are left out (all zero).

    Driven by the lists of cells and days, one index probe per pair, however long the history: a
    LATERAL join on PostgreSQL; on SQLite, the keys of the latest rows, found by one probe each, then
    looked up."""
    table = CoverageDay.__table__
    columns = [table.c[name] for name in totals()]
    if session.get_bind().dialect.name == "postgresql":
        cell = _cell_values(session, cells)
        probes = func.unnest(bindparam(None, list(days), type_=postgresql.ARRAY(Integer))).table_valued("day")
        probe = probes.render_derived().c.day
        latest = (
            select(*columns)
            .where(table.c.resolution == resolution, table.c.cell == cell, table.c.day <= probe)
            .order_by(table.c.day.desc())
            .limit(1)
            .lateral("latest")
        )
        return (
            select(probe.label("probe"), cell.label("cell"), *latest.c)
            .select_from(cell.table.join(probe.table, true()).join(latest, true()))
            .subquery("latest_rows")
        )
    earlier = table.alias("earlier")
    cell = _cell_values(session, cells)
    probes = func.json_each(json.dumps(list(days))).table_valued("value").alias("probe")
    probe = probes.c.value
    latest_day = (
        select(func.max(earlier.c.day))
        .where(earlier.c.resolution == resolution, earlier.c.cell == cell, earlier.c.day <= probe)
        .scalar_subquery()
    )
    # Materialized: found first, then looked up (flattened, SQLite would probe once per row of each cell).
    keys = (
        select(probe.label("probe"), cell.label("cell"), latest_day.label("day"))
        .select_from(cell.table.join(probes, true()))
        .cte("keys")
        .prefix_with("MATERIALIZED")
    )
    return (
        select(keys.c.probe, keys.c.cell, *columns)
        .join_from(
            keys, table, and_(table.c.resolution == resolution, table.c.cell == keys.c.cell, table.c.day == keys.c.day)
        )
        .subquery("latest_rows")
    )


def totals_at(
    session: Session, *, resolution: int, cells: Sequence[int], days: Sequence[int]
) -> dict[int, dict[int, tuple[int, int]]]:
    """Each cell's running totals of passes and rider-hours over the rolled-up days up to and including
    each of `days`, by day and cell: its latest coverage_days row on or before the day. Cells without
    one are left out (all zero). One statement for every day asked for."""
    out: dict[int, dict[int, tuple[int, int]]] = {day: {} for day in days}
    if not days:
        return out
    rows = _latest_rows(session, resolution=resolution, cells=cells, days=days)
    for day, cell, passes, riders in session.execute(select(rows.c.probe, rows.c.cell, rows.c.passes, rows.c.riders)):
        out[int(day)][int(cell)] = (int(passes), int(riders))  # both drivers give ints
    return out


def hour_totals_at(
    session: Session, *, resolution: int, cells: Sequence[int], days: Sequence[int]
) -> dict[int, list[int]]:
    """The area's running totals of passes per UTC hour of the day (p00 … p23, summed over its cells)
    up to and including each of `days`: one row per day, summed by the database."""
    out = {day: [0] * HOURS_PER_DAY for day in days}
    if not days:
        return out
    rows = _latest_rows(session, resolution=resolution, cells=cells, days=days)
    stmt = select(rows.c.probe, *(func.sum(rows.c[name]) for name in hour_columns())).group_by(rows.c.probe)
    for day, *sums in session.execute(stmt):
        out[int(day)] = [int(n or 0) for n in sums]
    return out


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
    spans = [(span, into) for span, into in ((now, out.counts), (before, out.previous)) if span.has_days]
    at = totals_at(
        session,
        resolution=resolution,
        cells=cells,
        days=sorted({day for span, _ in spans for day in (span.days[0] - 1, span.days[1] - 1)}),
    )
    for span, into in spans:
        earlier = at[span.days[0] - 1]
        for cell, (passes, riders) in at[span.days[1] - 1].items():
            old = earlier.get(cell, (0, 0))
            _add(into, cell, passes - old[0], riders - old[1])
    local_hour = _local_hours(tz)
    runs = _runs_of_equal_local_hours(now.days, local_hour)
    by_hour = hour_totals_at(
        session,
        resolution=resolution,
        cells=cells,
        days=sorted({day for first, last, _ in runs for day in (first - 1, last)}),
    )
    for first_day, last_day, hours in runs:
        upto, earlier_sums = by_hour[last_day], by_hour[first_day - 1]
        for h, local in enumerate(hours):
            out.profile[local] += upto[h] - earlier_sums[h]
    _add_hourly(
        session, out, resolution=resolution, cells=cells, now=now.hours, before=before.hours, local_hour=local_hour
    )
    return out


def _add_hourly(
    session: Session,
    out: WindowSums,
    *,
    resolution: int,
    cells: Sequence[int],
    now: Sequence[tuple[int, int]],
    before: Sequence[tuple[int, int]],
    local_hour: Callable[[int], int],
) -> None:
    """The hours of both windows not in the roll-up, from coverage_cells: sums per cell for both
    windows, and the window's passes per hour, read by stretches of hours (the ranges of both windows
    merged where they touch), one index range each.

    PostgreSQL reads every stretch once, in one statement (UNION ALL), grouped both ways at once
    (GROUPING SETS): per cell, and per hour. SQLite, in the same process, gains nothing from fewer
    statements and loses the index's order by cell to a union: there each stretch is grouped per cell
    in one statement, and per hour in another where the window has hours in it."""
    c = CoverageCell
    segments = _segments(*now, *before)

    def sums(hour: Any, passes: Any, riders: Any) -> tuple[Any, ...]:
        in_now, in_before = _within(hour, now), _within(hour, before)

        def sum_in(value: Any, inside: Any, mine: Sequence[tuple[int, int]], others: Sequence[tuple[int, int]]) -> Any:
            if not mine:
                return literal(0)
            return func.sum(case((inside, value), else_=0) if others else value)

        return (
            sum_in(passes, in_now, now, before),
            sum_in(riders, in_now, now, before),
            sum_in(passes, in_before, before, now),
            sum_in(riders, in_before, before, now),
        )

    def stretch(lo: int, hi: int, t: Any = c) -> tuple[Any, ...]:
        return (t.resolution == resolution, one_of(session, t.cell, cells), t.hour >= lo, t.hour < hi)

    if not segments:
        return
    if session.get_bind().dialect.name == "postgresql":
        # coverage_cells and the counts appended since the last fold: their sums add up.
        read = union_all(
            *(
                select(t.c.cell, t.c.hour, t.c.passes, t.c.riders).where(*stretch(lo, hi, t.c))
                for t in count_sources(session)
                for lo, hi in segments
            )
        )
        rows = read.subquery("hourly")
        stmt = select(rows.c.cell, rows.c.hour, *sums(rows.c.hour, rows.c.passes, rows.c.riders)).group_by(
            func.grouping_sets(tuple_(rows.c.cell), tuple_(rows.c.hour))
        )
        for cell, hour, passes, riders, prev_passes, prev_riders in session.execute(stmt):
            if cell is not None:  # a cell's row (grouped by cell; hour is NULL)
                out.add([(cell, passes, riders, prev_passes, prev_riders)])
            elif passes:  # an hour's row
                out.profile[local_hour(int(hour))] += int(passes)
        return
    for lo, hi in segments:
        out.add(
            session.execute(select(c.cell, *sums(c.hour, c.passes, c.riders)).where(*stretch(lo, hi)).group_by(c.cell))
        )
        if any(a < hi and lo < b for a, b in now):
            stmt = select(c.hour, func.sum(c.passes)).where(*stretch(lo, hi), _within(c.hour, now)).group_by(c.hour)
            for hour, passes in session.execute(stmt):
                out.profile[local_hour(int(hour))] += int(passes or 0)


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
        raise InvalidInput(N_("resolution must be one of %(choices)s"), choices=", ".join(map(str, limits.resolutions)))
    if end <= start:
        raise InvalidInput(N_("'to' must be after 'from'"))
    if end - start > limits.max_window:
        raise InvalidInput(N_("the window may span at most %(days)d days"), days=limits.max_window.days)
    if min_passes < 1:
        raise InvalidInput(N_("min_passes must be at least 1"))
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
