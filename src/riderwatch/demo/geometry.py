"""The demo district's geometry: community and grid boundaries drawn around the simulator's outline."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry import MultiPoint, Point, Polygon
from shapely.geometry.polygon import orient

from riderwatch.demo.seed import COMMUNITIES, OUTLINE


def polygon_geojson(poly: Polygon) -> dict[str, Any]:
    """RFC 7946: exterior ring counter-clockwise, positions [lon, lat] rounded to ~0.1 m."""
    ring = orient(poly, 1.0).exterior.coords
    return {"type": "Polygon", "coordinates": [[[round(x, 6), round(y, 6)] for x, y in ring]]}


def _voronoi_cells(seeds: list[tuple[float, float]], within: Polygon) -> list[Polygon]:
    """The Voronoi cell of each seed, clipped to `within`, in the order of the seeds."""
    cells = shapely.voronoi_polygons(MultiPoint(seeds), extend_to=within)
    out: list[Polygon] = []
    for seed in seeds:
        cell = next(g for g in cells.geoms if g.covers(Point(seed)))
        clipped = shapely.set_precision(cell.intersection(within), 1e-6)
        if not isinstance(clipped, Polygon):
            raise RuntimeError(f"the demo area around {seed} is not one polygon")
        out.append(clipped)
    return out


def _spread_points(poly: Polygon, n: int, rng: random.Random) -> list[tuple[float, float]]:
    """n well-spread points inside poly (best of several candidates), to shape the grids."""
    min_x, min_y, max_x, max_y = poly.bounds
    points: list[tuple[float, float]] = []
    while len(points) < n:
        best: tuple[float, tuple[float, float]] | None = None
        for _ in range(30):
            p = (rng.uniform(min_x, max_x), rng.uniform(min_y, max_y))
            if not poly.contains(Point(p)):
                continue
            gap = min((((p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2) ** 0.5 for q in points), default=1.0)
            if best is None or gap > best[0]:
                best = (gap, p)
        if best is not None:
            points.append(best[1])
    return points


@dataclass(frozen=True)
class Geometry:
    communities: dict[str, dict[str, Any]]
    grids: dict[str, list[dict[str, Any]]]


def district_geometry() -> Geometry:
    """Community boundaries tiling the station's area, and grids tiling each community (fixed)."""
    outline = Polygon(OUTLINE)
    cells = _voronoi_cells([c.seed for c in COMMUNITIES], outline)
    communities: dict[str, dict[str, Any]] = {}
    grids: dict[str, list[dict[str, Any]]] = {}
    for i, (spec, cell) in enumerate(zip(COMMUNITIES, cells, strict=True)):
        communities[spec.code] = polygon_geojson(cell)
        # A fixed generator: the map is the same whatever --seed says.
        seeds = _spread_points(cell, spec.grids, random.Random(1000 + i))
        grids[spec.code] = [polygon_geojson(g) for g in _voronoi_cells(seeds, cell)]
    return Geometry(communities=communities, grids=grids)
