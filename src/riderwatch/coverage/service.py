"""Coverage of an area over a time window, read from the per-cell, per-hour aggregates.

Nothing here reads raw positions: the counts were kept up to date at ingest (tracking/ingest.py),
so a query costs one indexed lookup per chunk of cells, whatever the number of positions behind it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from h3.api import basic_int as h3
from shapely.geometry.base import BaseGeometry
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.errors import InvalidInput
from riderwatch.geo.areas import AreaError, parse_area
from riderwatch.models import Community, CoverageCell, Grid, Zone
from riderwatch.tracking.ingest import SECONDS_PER_HOUR

STORED_AREAS: dict[str, Any] = {"zone": Zone, "grid": Grid, "community": Community}
# Cells per IN (...) list: well under SQLite's bound-parameter limit, and quick for PostgreSQL.
CHUNK = 2000
KM_PER_DEGREE = 111.32


@dataclass(frozen=True)
class CoverageLimits:
    resolutions: tuple[int, ...]
    max_cells: int
    max_window: timedelta
    timezone: str


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


def _chunks(cells: Sequence[int]) -> list[Sequence[int]]:
    return [cells[i : i + CHUNK] for i in range(0, len(cells), CHUNK)]


def cell_counts(
    session: Session, *, resolution: int, cells: Sequence[int], hours: tuple[int, int]
) -> dict[int, tuple[int, int]]:
    """Passes and rider-hours per cell over the hours."""
    out: dict[int, tuple[int, int]] = {}
    for chunk in _chunks(cells):
        rows = session.execute(
            select(CoverageCell.cell, func.sum(CoverageCell.passes), func.sum(CoverageCell.riders))
            .where(
                CoverageCell.resolution == resolution,
                CoverageCell.cell.in_(chunk),
                CoverageCell.hour >= hours[0],
                CoverageCell.hour < hours[1],
            )
            .group_by(CoverageCell.cell)
        )
        for cell, passes, riders in rows:
            out[int(cell)] = (int(passes or 0), int(riders or 0))
    return out


def hour_profile(
    session: Session, *, resolution: int, cells: Sequence[int], hours: tuple[int, int], tz: ZoneInfo
) -> list[int]:
    """Passes by local hour of day (0–23)."""
    profile = [0] * 24
    for chunk in _chunks(cells):
        rows = session.execute(
            select(CoverageCell.hour, func.sum(CoverageCell.passes))
            .where(
                CoverageCell.resolution == resolution,
                CoverageCell.cell.in_(chunk),
                CoverageCell.hour >= hours[0],
                CoverageCell.hour < hours[1],
            )
            .group_by(CoverageCell.hour)
        )
        for hour, passes in rows:
            profile[datetime.fromtimestamp(int(hour) * SECONDS_PER_HOUR, UTC).astimezone(tz).hour] += int(passes or 0)
    return profile


def summarize(cells: Sequence[int], counts: dict[int, tuple[int, int]], min_passes: int) -> dict[str, Any]:
    blind = [h3.int_to_str(c) for c in cells if counts.get(c, (0, 0))[0] < min_passes]
    covered = len(cells) - len(blind)
    return {
        "cells": len(cells),
        "covered": covered,
        "coverage_ratio": covered / len(cells) if cells else 0.0,
        "blind_cells": blind,
    }


def cell_feature(cell: int, properties: dict[str, Any]) -> dict[str, Any]:
    """A GeoJSON Feature for an H3 cell: its hexagon (lon/lat, closed ring), id and `h3` its string form."""
    name = h3.int_to_str(cell)
    ring = [[lon, lat] for lat, lon in h3.cell_to_boundary(cell)]
    return {
        "type": "Feature",
        "id": name,
        "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
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
    hours = hour_range(start, end)
    counts = cell_counts(session, resolution=res, cells=cells, hours=hours)
    prev_start = start - (end - start)
    previous = summarize(
        cells, cell_counts(session, resolution=res, cells=cells, hours=hour_range(prev_start, start)), min_passes
    )
    summary = summarize(cells, counts, min_passes)
    tz = ZoneInfo(limits.timezone)
    features = []
    for cell in cells:
        passes, riders = counts.get(cell, (0, 0))
        features.append(cell_feature(cell, {"passes": passes, "riders": riders, "covered": passes >= min_passes}))
    return {
        "type": "FeatureCollection",
        "features": features,
        "resolution": res,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "min_passes": min_passes,
        "summary": summary,
        "hour_profile": hour_profile(session, resolution=res, cells=cells, hours=hours, tz=tz),
        "timezone": limits.timezone,
        "previous": {"from": prev_start.isoformat(), "to": start.isoformat(), **previous},
        "trend": summary["coverage_ratio"] - previous["coverage_ratio"],
    }
