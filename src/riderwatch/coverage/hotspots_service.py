"""Hotspots of clues and incidents, their key periods, and the coverage gaps where both meet few riders.

Two histories feed the analysis (`HotspotOptions.sources`): riders' clues and the police's own
recorded incidents (imported, see incidents/). Each is read once (lat, lon, time, on the area's
bounding box), put in H3 cells in Python and counted with numpy; the statistics are in
coverage/hotspots.py. Rejected clues and duplicates are left out: they would count one incident
twice or count what did not happen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from h3.api import basic_int as h3
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Float, cast, extract, select
from sqlalchemy.orm import Session

from riderwatch.coverage import hotspots as stats
from riderwatch.coverage.counts import hourly_counts
from riderwatch.coverage.service import CHUNK, CoverageLimits, area_cells, cell_feature, hour_range, resolve_area
from riderwatch.errors import N_, InvalidInput
from riderwatch.geo.coords import EARTH_RADIUS_M
from riderwatch.models import Category, Clue, Incident

EXCLUDED_STATUSES = ("rejected", "duplicate")
SOURCES = ("clues", "incidents")
MAX_K = 5
EARLIEST, LATEST = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
MIN_BANDWIDTH_M, MAX_BANDWIDTH_M = 50.0, 5000.0
# Bounds on the cell pairs the weights and the density may hold (memory and time of one request).
MAX_PAIRS = 6_000_000
P_VALUE_NOTE = (
    "two-sided p from the normal distribution, 2·sf(|z|) (esda G_Local(star=True).p_norm is sf(|z|)); "
    "hot: z > 0, p adjusted by the correction below alpha, confirmed by an exact binomial count test"
)


@dataclass(frozen=True)
class HotspotOptions:
    k: int = 1
    alpha: float = 0.01
    correction: stats.Correction = "fdr"
    bandwidth_m: float | None = None
    categories: tuple[str, ...] = ()
    sources: tuple[str, ...] = SOURCES


@dataclass(frozen=True)
class Analysis:
    resolution: int
    start: datetime
    end: datetime
    tz: ZoneInfo
    options: HotspotOptions
    bandwidth_m: float
    cells: stats.IntArray
    counts: stats.IntArray
    gi: stats.GiStar
    hot: stats.BoolArray
    density: stats.FloatArray
    periods: stats.KeyPeriods
    exposure: stats.FloatArray
    # Per source: events in the area's cells, and in its hot cells (those the key periods count).
    by_source: dict[str, int]
    hot_by_source: dict[str, int]


def _check(
    session: Session,
    *,
    start: datetime,
    end: datetime,
    resolution: int | None,
    options: HotspotOptions,
    limits: CoverageLimits,
) -> int:
    # Street level by default: clusters of clues are a corner or a block, and Gi* over k-rings of the
    # coarser cells dilutes a cluster that fills one cell (tests/coverage/test_hotspots_sim.py).
    res = max(limits.resolutions) if resolution is None else resolution
    if res not in limits.resolutions:
        raise InvalidInput(N_("resolution must be one of %(choices)s"), choices=", ".join(map(str, limits.resolutions)))
    if end <= start:
        raise InvalidInput(N_("'to' must be after 'from'"))
    if start < EARLIEST or end > LATEST:
        # Local hours of the week are looked up per quarter hour; year 9999 plus eight hours overflows.
        raise InvalidInput(
            N_("the window must lie between %(first)d and %(last)d"), first=EARLIEST.year, last=LATEST.year
        )
    if end - start > limits.max_window:
        raise InvalidInput(N_("the window may span at most %(days)d days"), days=limits.max_window.days)
    if not 1 <= options.k <= MAX_K:
        raise InvalidInput(N_("k must be between 1 and %(max)d"), max=MAX_K)
    if not 0 < options.alpha < 0.5:
        raise InvalidInput(N_("alpha must be between 0 and 0.5"))
    if options.correction not in stats.CORRECTIONS:
        raise InvalidInput(N_("correction must be one of %(choices)s"), choices=", ".join(stats.CORRECTIONS))
    bw = options.bandwidth_m
    if bw is not None and not (MIN_BANDWIDTH_M <= bw <= MAX_BANDWIDTH_M and math.isfinite(bw)):
        raise InvalidInput(
            N_("bandwidth_m must be between %(min)s and %(max)s"),
            min=f"{MIN_BANDWIDTH_M:g}",
            max=f"{MAX_BANDWIDTH_M:g}",
        )
    if not options.sources or len(set(options.sources)) != len(options.sources):
        raise InvalidInput(N_("sources must name some of %(choices)s, each once"), choices=", ".join(SOURCES))
    unknown_sources = sorted(set(options.sources) - set(SOURCES))
    if unknown_sources:
        raise InvalidInput(
            N_("unknown sources: %(unknown)s; use %(choices)s"),
            unknown=", ".join(unknown_sources),
            choices=", ".join(SOURCES),
        )
    if options.categories:
        known = set(session.scalars(select(Category.code).where(Category.code.in_(options.categories))))
        unknown = sorted(set(options.categories) - known)
        if unknown:
            raise InvalidInput(N_("unknown categories: %(unknown)s"), unknown=", ".join(unknown))
    return int(res)


def default_bandwidth(resolution: int) -> float:
    """Three edge lengths: the density spreads each cell's clues over its neighbours and theirs."""
    return round(3 * float(h3.average_hexagon_edge_length(resolution, "m")), 1)


def _box(geom: BaseGeometry, resolution: int) -> tuple[float, float, float, float]:
    """(min_lat, max_lat, min_lon, max_lon) of the area, widened to hold every point of its cells."""
    # A cell whose centre lies inside the area reaches beyond it by up to its circumradius (an edge
    # length; edges vary by a few tens of percent across a resolution), so widen the box by two.
    pad_deg = math.degrees(2 * float(h3.average_hexagon_edge_length(resolution, "m")) / EARTH_RADIUS_M)
    min_lon, min_lat, max_lon, max_lat = geom.bounds
    lat_pad = pad_deg
    lon_pad = pad_deg / max(math.cos(math.radians(max(abs(min_lat), abs(max_lat)))), 0.01)
    return min_lat - lat_pad, max_lat + lat_pad, min_lon - lon_pad, max_lon + lon_pad


def _read_sample(session: Session, query: Any, resolution: int) -> tuple[stats.IntArray, stats.FloatArray]:
    rows = session.connection().execute(query).all()
    lat = np.fromiter((r[0] for r in rows), dtype=np.float64, count=len(rows))
    lon = np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows))
    when = np.fromiter((r[2] for r in rows), dtype=np.float64, count=len(rows))
    return stats.latlng_cells(lat, lon, resolution), when


def clue_sample(
    session: Session, geom: BaseGeometry, *, resolution: int, start: datetime, end: datetime, categories: Sequence[str]
) -> tuple[stats.IntArray, stats.FloatArray]:
    """The H3 cell and the time (epoch seconds) of every clue observed in the window near the area."""
    min_lat, max_lat, min_lon, max_lon = _box(geom, resolution)
    # Epoch seconds straight from the database: building a hundred thousand datetimes costs more than the query.
    epoch = cast(extract("epoch", Clue.observed_at), Float)
    query = select(Clue.lat, Clue.lon, epoch).where(
        Clue.lat.between(min_lat, max_lat),
        Clue.lon.between(min_lon, max_lon),
        Clue.observed_at >= start,
        Clue.observed_at < end,
        Clue.status.not_in(EXCLUDED_STATUSES),
    )
    if categories:
        query = query.where(Clue.category_code.in_(categories))
    return _read_sample(session, query, resolution)


def incident_sample(
    session: Session, geom: BaseGeometry, *, resolution: int, start: datetime, end: datetime, categories: Sequence[str]
) -> tuple[stats.IntArray, stats.FloatArray]:
    """The H3 cell and the time (epoch seconds) of every recorded incident in the window near the area."""
    min_lat, max_lat, min_lon, max_lon = _box(geom, resolution)
    epoch = cast(extract("epoch", Incident.occurred_at), Float)
    query = select(Incident.lat, Incident.lon, epoch).where(
        Incident.occurred_at >= start,
        Incident.occurred_at < end,
        Incident.lat.between(min_lat, max_lat),
        Incident.lon.between(min_lon, max_lon),
    )
    if categories:
        query = query.where(Incident.category_code.in_(categories))
    return _read_sample(session, query, resolution)


def event_sample(
    session: Session,
    geom: BaseGeometry,
    *,
    resolution: int,
    start: datetime,
    end: datetime,
    categories: Sequence[str],
    sources: Sequence[str],
) -> tuple[stats.IntArray, stats.FloatArray, stats.IntArray]:
    """Cells and times of the chosen sources' events, and each event's source (its index in SOURCES)."""
    readers = {"clues": clue_sample, "incidents": incident_sample}
    cells, when, kind = [], [], []
    for i, name in enumerate(SOURCES):
        if name not in sources:
            continue
        c, w = readers[name](session, geom, resolution=resolution, start=start, end=end, categories=categories)
        cells.append(c)
        when.append(w)
        kind.append(np.full(len(c), i, dtype=np.int64))
    if not cells:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64), np.zeros(0, dtype=np.int64)
    return np.concatenate(cells), np.concatenate(when), np.concatenate(kind)


def analyse(
    session: Session,
    *,
    area: Any,
    start: datetime,
    end: datetime,
    resolution: int | None,
    options: HotspotOptions,
    limits: CoverageLimits,
) -> Analysis:
    """Counts per cell of the area, Gi*, hot cells, the density surface and the key periods."""
    res = _check(session, start=start, end=end, resolution=resolution, options=options, limits=limits)
    geom = resolve_area(session, area)
    cells = np.asarray(area_cells(geom, res, limits.max_cells), dtype=np.int64)
    disk = 3 * options.k * (options.k + 1) + 1
    if len(cells) * disk > MAX_PAIRS:
        raise InvalidInput(
            N_("k = %(k)d over %(n)d cells is too much work; use a smaller k or area"), k=options.k, n=len(cells)
        )
    bandwidth = options.bandwidth_m if options.bandwidth_m is not None else default_bandwidth(res)
    if stats.kde_pairs(len(cells), res, bandwidth) > MAX_PAIRS:
        raise InvalidInput(
            N_("bandwidth_m = %(bandwidth)s over %(n)d cells is too much work; use a smaller one"),
            bandwidth=f"{bandwidth:g}",
            n=len(cells),
        )

    event_cells, when, kind = event_sample(
        session,
        geom,
        resolution=res,
        start=start,
        end=end,
        categories=options.categories,
        sources=options.sources,
    )
    where = stats.cell_index(cells, event_cells)
    inside = where >= 0
    counts = np.bincount(where[inside], minlength=len(cells)).astype(np.int64)

    weights = stats.kring_weights(cells, options.k)
    gi = stats.gi_star(counts, weights)
    hot, _exact = stats.hot_cells(counts, weights, gi, alpha=options.alpha, correction=options.correction)
    density = stats.quartic_density(cells, counts, resolution=res, bandwidth_m=bandwidth)

    tz = ZoneInfo(limits.timezone)
    in_hot = inside.copy()
    in_hot[inside] = hot[where[inside]]
    exposure = stats.week_exposure(start, end, tz)
    periods = stats.key_periods(
        stats.hour_of_week(when[in_hot], tz), exposure, alpha=options.alpha, correction=options.correction
    )
    by_source = {name: int((inside & (kind == i)).sum()) for i, name in enumerate(SOURCES)}
    hot_by_source = {name: int((in_hot & (kind == i)).sum()) for i, name in enumerate(SOURCES)}
    return Analysis(
        resolution=res,
        start=start,
        end=end,
        tz=tz,
        options=options,
        bandwidth_m=bandwidth,
        cells=cells,
        counts=counts,
        gi=gi,
        hot=hot,
        density=density,
        periods=periods,
        exposure=exposure,
        by_source=by_source,
        hot_by_source=hot_by_source,
    )


def _key_periods_json(a: Analysis) -> dict[str, Any]:
    kp = a.periods
    periods = []
    for first, length in stats.week_runs(kp.key):
        hours = [(first + i) % stats.HOURS_PER_WEEK for i in range(length)]
        end = (first + length) % stats.HOURS_PER_WEEK
        periods.append(
            {
                "start": first,
                "hours": length,
                "day": first // 24,
                "start_hour": first % 24,
                "end_day": end // 24,
                "end_hour": end % 24,
                "label": stats.describe_run(first, length),
                "count": int(sum(int(kp.counts[h]) for h in hours)),
                "expected": float(sum(float(kp.expected[h]) for h in hours)),
            }
        )
    return {
        "timezone": a.tz.key,
        # The events counted by hour: those of the hot cells, per source.
        **a.hot_by_source,
        "counts": kp.counts.tolist(),
        "expected": kp.expected.tolist(),
        "p": kp.p.tolist(),
        "key_hours": [int(h) for h in np.flatnonzero(kp.key)],
        "periods": periods,
    }


def _common(a: Analysis) -> dict[str, Any]:
    return {
        "resolution": a.resolution,
        "from": a.start.isoformat(),
        "to": a.end.isoformat(),
        "k": a.options.k,
        "alpha": a.options.alpha,
        "correction": a.options.correction,
        "p_value": P_VALUE_NOTE,
        "categories": list(a.options.categories),
        "sources": list(a.options.sources),
    }


def _density_unit(a: Analysis) -> str:
    """What the density counts: the sources that put events in the area."""
    counted = [name for name in SOURCES if a.by_source[name]] or list(a.options.sources)
    return " and ".join(counted) + "/km²"


def query_hotspots(
    session: Session,
    *,
    area: Any,
    start: datetime,
    end: datetime,
    resolution: int | None,
    options: HotspotOptions,
    limits: CoverageLimits,
) -> dict[str, Any]:
    """Gi* per cell of the area (GeoJSON), the density surface and the key periods of the hot cells."""
    a = analyse(session, area=area, start=start, end=end, resolution=resolution, options=options, limits=limits)
    features = []
    for i, cell in enumerate(a.cells.tolist()):
        features.append(
            cell_feature(
                cell,
                {
                    "count": int(a.counts[i]),
                    "z": float(a.gi.z[i]),
                    "p": float(a.gi.p[i]),
                    "hot": bool(a.hot[i]),
                    "density": float(a.density[i]),
                },
            )
        )
    return {
        "type": "FeatureCollection",
        "features": features,
        **_common(a),
        "bandwidth_m": a.bandwidth_m,
        "density_unit": _density_unit(a),
        "summary": {
            "cells": len(a.cells),
            **a.by_source,
            "hot_cells": [h3.int_to_str(int(c)) for c in a.cells[a.hot].tolist()],
        },
        "key_periods": _key_periods_json(a),
    }


def _key_coverage(
    session: Session, *, resolution: int, cells: Sequence[int], key_hours: stats.IntArray, min_passes: int
) -> dict[int, tuple[int, int, int]]:
    """Per cell: key hours with at least `min_passes` passes, and the passes and rider-hours in all key hours."""
    out: dict[int, tuple[int, int, int]] = {}
    if not len(key_hours) or not cells:
        return out
    lo, hi = int(key_hours.min()), int(key_hours.max()) + 1
    for i in range(0, len(cells), CHUNK):
        rows = session.execute(
            hourly_counts(session, resolution=resolution, cells=cells[i : i + CHUNK], lo=lo, hi=hi)
        ).all()
        if not rows:
            continue
        table = np.array([[int(c), int(h), int(p), int(r)] for c, h, p, r in rows], dtype=np.int64)
        table = table[np.isin(table[:, 1], key_hours)]
        for cell in np.unique(table[:, 0]).tolist():
            mine = table[table[:, 0] == cell]
            covered = int((mine[:, 2] >= min_passes).sum())
            out[int(cell)] = (covered, int(mine[:, 2].sum()), int(mine[:, 3].sum()))
    return out


def query_gaps(
    session: Session,
    *,
    area: Any,
    start: datetime,
    end: datetime,
    resolution: int | None,
    options: HotspotOptions,
    limits: CoverageLimits,
    min_passes: int = 1,
    max_covered_ratio: float = 0.5,
) -> dict[str, Any]:
    """Hot cells that riders seldom pass during the key periods: where patrols would count most.

    A key hour of a cell is covered when the cell had at least `min_passes` passes in it (from the
    per-cell-hour aggregates); a hot cell is a gap when fewer than `max_covered_ratio` of the key
    hours in the window were covered. Without key periods (clues in hot cells spread over the whole
    week) every hour of the window counts. Features: the gaps, worst (highest z) first.
    """
    if min_passes < 1:
        raise InvalidInput(N_("min_passes must be at least 1"))
    if not 0 < max_covered_ratio <= 1:
        raise InvalidInput(N_("max_covered_ratio must be above 0 and at most 1"))
    a = analyse(session, area=area, start=start, end=end, resolution=resolution, options=options, limits=limits)
    basis = "key_periods" if a.periods.key.any() else "all_hours"
    mask = a.periods.key if basis == "key_periods" else np.ones(stats.HOURS_PER_WEEK, dtype=bool)
    # Aggregates are whole UTC hours; an hour counts by the local hour of week it starts in.
    first, last = hour_range(a.start, a.end)
    key_hours = stats.utc_hours_in(first, last, mask, a.tz)
    hot_idx = np.flatnonzero(a.hot)
    hot_cells = [int(a.cells[i]) for i in hot_idx.tolist()]
    coverage = _key_coverage(
        session, resolution=a.resolution, cells=hot_cells, key_hours=key_hours, min_passes=min_passes
    )
    n_key = len(key_hours)
    features = []
    covered_hot = []
    for i in hot_idx.tolist():
        cell = int(a.cells[i])
        covered, passes, riders = coverage.get(cell, (0, 0, 0))
        ratio = covered / n_key if n_key else 0.0
        name = h3.int_to_str(cell)
        if ratio >= max_covered_ratio:
            covered_hot.append(name)
            continue
        features.append(
            cell_feature(
                cell,
                {
                    "count": int(a.counts[i]),
                    "z": float(a.gi.z[i]),
                    "p": float(a.gi.p[i]),
                    "hot": True,
                    "key_hours": n_key,
                    "covered_hours": covered,
                    "coverage_ratio": ratio,
                    "passes": passes,
                    "rider_hours": riders,
                },
            )
        )
    features.sort(key=lambda f: (-f["properties"]["z"], f["properties"]["h3"]))
    return {
        "type": "FeatureCollection",
        "features": features,
        **_common(a),
        "min_passes": min_passes,
        "max_covered_ratio": max_covered_ratio,
        "basis": basis,
        "summary": {
            "cells": len(a.cells),
            **a.by_source,
            "hot_cells": len(hot_idx),
            "gaps": len(features),
            "key_hours": n_key,
            "covered_hot_cells": covered_hot,
        },
        "key_periods": _key_periods_json(a),
    }
