"""GeoJSON areas (Polygon, MultiPolygon or the contract's Circle) as shapely geometry."""

from __future__ import annotations

import math
from typing import Any

from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

from riderwatch.geo.coords import EARTH_RADIUS_M


class AreaError(ValueError):
    """An area that is not a valid GeoJSON Polygon/MultiPolygon or Circle."""


def _check_position(pos: Any) -> tuple[float, float]:
    if not (isinstance(pos, list | tuple) and len(pos) >= 2):
        raise AreaError("a position must be [lon, lat]")
    lon, lat = pos[0], pos[1]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lon, lat)):
        raise AreaError("a position must hold numbers")
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise AreaError(f"position {pos!r} is outside WGS-84 bounds")
    return float(lon), float(lat)


def circle_polygon(lon: float, lat: float, radius_m: float, segments: int = 64) -> BaseGeometry:
    """A circle as a polygon in lon/lat (good to centimetres at city scale)."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    dlon = dlat / max(math.cos(math.radians(lat)), 1e-9)
    pts = [
        (lon + dlon * math.cos(2 * math.pi * i / segments), lat + dlat * math.sin(2 * math.pi * i / segments))
        for i in range(segments)
    ]
    return shape({"type": "Polygon", "coordinates": [[*pts, pts[0]]]})


def parse_area(area: Any) -> BaseGeometry:
    """Validate a GeoJSON Polygon/MultiPolygon (or a Feature of one) or a Circle."""
    if not isinstance(area, dict):
        raise AreaError("area must be a GeoJSON object")
    if area.get("type") == "Feature":
        return parse_area(area.get("geometry"))
    kind = area.get("type")
    if kind == "Circle":
        lon, lat = _check_position(area.get("center"))
        radius = area.get("radius_m")
        if not isinstance(radius, int | float) or isinstance(radius, bool) or not 0 < radius <= 100_000:
            raise AreaError("radius_m must be a number between 0 and 100000")
        return circle_polygon(lon, lat, float(radius))
    if kind not in ("Polygon", "MultiPolygon"):
        raise AreaError("area type must be Polygon, MultiPolygon or Circle")
    coords = area.get("coordinates")
    rings = [coords] if kind == "Polygon" else coords
    if not isinstance(rings, list) or not rings:
        raise AreaError("area has no coordinates")
    for poly in rings:
        if not isinstance(poly, list) or not poly:
            raise AreaError("a polygon needs at least one ring")
        for ring in poly:
            if not isinstance(ring, list) or len(ring) < 4:
                raise AreaError("a ring needs at least 4 positions")
            pts = [_check_position(p) for p in ring]
            if pts[0] != pts[-1]:
                raise AreaError("a ring must end where it starts")
    try:
        geom = shape(area)
    except Exception as exc:  # shapely raises several types for malformed input
        raise AreaError(f"invalid geometry: {exc}") from exc
    if not geom.is_valid or geom.area == 0:
        raise AreaError("area polygon is not valid (self-intersecting or empty)")
    return geom


def contains(geojson: dict[str, Any], lat: float, lon: float) -> bool:
    return bool(shape(geojson).covers(Point(lon, lat)))


def bbox(geojson: dict[str, Any]) -> tuple[float, float, float, float]:
    """(min_lat, min_lon, max_lat, max_lon)."""
    min_lon, min_lat, max_lon, max_lat = shape(geojson).bounds
    return min_lat, min_lon, max_lat, max_lon
