"""A small seeded generator of clues with planted hotspots, the ground truth for the hotspot tests.

Shaped like what the district simulator will produce, so it can take this module's place: a
`Scenario` holds the area, the window, the clues (position, time, which planted hotspot made
them, if any) and the planted hotspots themselves (place, extent, and the hours of the week
they are active). `store` writes the clues to the database as reports would leave them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from h3.api import basic_int as h3
from sqlalchemy import insert
from sqlalchemy.orm import Session

from riderwatch.infra.clock import utcnow
from riderwatch.models import Clue

EARTH_RADIUS_M = 6371008.8
SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class PlantedHotspot:
    """Clues spread evenly over a disc; at any time, or only in the given local hours of the week."""

    lat: float
    lon: float
    radius_m: float
    clues: int
    hours_of_week: tuple[int, ...] = ()  # 0 = Monday 00:00–01:00 local time; empty: any time


@dataclass(frozen=True)
class SimClue:
    lat: float
    lon: float
    observed_at: datetime
    hotspot: int | None  # index into Scenario.hotspots, None for background clues


@dataclass(frozen=True)
class Scenario:
    cells: list[int]  # the area: these H3 cells
    resolution: int
    start: datetime
    end: datetime
    clues: list[SimClue]
    hotspots: list[PlantedHotspot] = field(default_factory=list)

    def counts(self) -> np.ndarray:
        """Clues per cell of the area, in the order of `cells`."""
        index = {c: i for i, c in enumerate(self.cells)}
        out = np.zeros(len(self.cells), dtype=np.int64)
        for clue in self.clues:
            i = index.get(h3.latlng_to_cell(clue.lat, clue.lon, self.resolution))
            if i is not None:
                out[i] += 1
        return out

    def planted_cells(self, hotspot: int) -> set[int]:
        """The cells the hotspot's clues fell in."""
        area = set(self.cells)
        cells = {h3.latlng_to_cell(c.lat, c.lon, self.resolution) for c in self.clues if c.hotspot == hotspot}
        return cells & area


def _distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    dy = math.radians(lat2 - lat1) * EARTH_RADIUS_M
    dx = math.radians(lon2 - lon1) * EARTH_RADIUS_M * math.cos(math.radians((lat1 + lat2) / 2))
    return math.hypot(dx, dy)


def hexagon_area(centre_lat: float, centre_lon: float, resolution: int, k: int) -> list[int]:
    """The cells within k steps of the cell at a point: a compact area for tests."""
    return sorted(h3.grid_disk(h3.latlng_to_cell(centre_lat, centre_lon, resolution), k))


def area_polygon(cells: Sequence[int]) -> dict[str, Any]:
    """The outline of a compact set of cells as a GeoJSON Polygon (the cells' centres lie inside)."""
    shapes = h3.cells_to_geo(list(cells))
    if shapes["type"] != "Polygon":
        raise ValueError("the cells do not form one polygon")
    return {"type": "Polygon", "coordinates": [[list(p) for p in ring] for ring in shapes["coordinates"]]}


def _uniform_in_cells(
    rng: np.random.Generator, cells: Sequence[int], resolution: int, n: int
) -> list[tuple[float, float]]:
    """Points spread evenly over the union of the cells (rejection sampling on their bounding box)."""
    wanted = set(cells)
    corners = np.array([p for c in cells for p in h3.cell_to_boundary(c)])
    lat0, lon0 = corners.min(axis=0)
    lat1, lon1 = corners.max(axis=0)
    out: list[tuple[float, float]] = []
    while len(out) < n:
        lat = rng.uniform(lat0, lat1, 2 * (n - len(out)) + 16)
        lon = rng.uniform(lon0, lon1, len(lat))
        for a, b in zip(lat.tolist(), lon.tolist(), strict=True):
            if h3.latlng_to_cell(a, b, resolution) in wanted:
                out.append((a, b))
                if len(out) == n:
                    break
    return out


def _in_disc(rng: np.random.Generator, spot: PlantedHotspot) -> tuple[float, float]:
    r = spot.radius_m * math.sqrt(rng.random())
    theta = rng.uniform(0, 2 * math.pi)
    dlat = math.degrees(r * math.sin(theta) / EARTH_RADIUS_M)
    dlon = math.degrees(r * math.cos(theta) / EARTH_RADIUS_M) / math.cos(math.radians(spot.lat))
    return spot.lat + dlat, spot.lon + dlon


def _time(rng: np.random.Generator, start: datetime, end: datetime, hours: tuple[int, ...]) -> datetime:
    span = (end - start).total_seconds()
    if not hours:
        return start + timedelta(seconds=float(rng.uniform(0, span)))
    # Draw evenly over every occurrence in the window of the wanted local hours of the week.
    while True:
        t = start + timedelta(seconds=float(rng.uniform(0, span)))
        local = t.astimezone(SHANGHAI)
        if local.weekday() * 24 + local.hour in hours:
            return t


def generate(
    *,
    cells: Sequence[int],
    resolution: int,
    start: datetime,
    end: datetime,
    background: int,
    hotspots: Sequence[PlantedHotspot] = (),
    seed: int,
) -> Scenario:
    """Background clues spread evenly over the cells and the window, plus each planted hotspot's clues."""
    rng = np.random.default_rng(seed)
    clues = [
        SimClue(lat, lon, _time(rng, start, end, ()), None)
        for lat, lon in _uniform_in_cells(rng, cells, resolution, background)
    ]
    for i, spot in enumerate(hotspots):
        for _ in range(spot.clues):
            lat, lon = _in_disc(rng, spot)
            clues.append(SimClue(lat, lon, _time(rng, start, end, spot.hours_of_week), i))
    return Scenario(
        cells=sorted(cells), resolution=resolution, start=start, end=end, clues=clues, hotspots=list(hotspots)
    )


def store(db: Session, scenario: Scenario, *, category: str = "theft", status: str = "verified") -> None:
    """Write the clues as reports that passed triage (bulk, as the simulator's volume needs)."""
    now = utcnow()
    rows = [
        {
            "category_code": category,
            "lat": c.lat,
            "lon": c.lon,
            "observed_at": c.observed_at,
            "reported_at": c.observed_at,
            "updated_at": now,
            "deadline_at": c.observed_at + timedelta(hours=72),
            "status": status,
            "description": "",
        }
        for c in scenario.clues
    ]
    if rows:
        db.execute(insert(Clue), rows)
    db.commit()
