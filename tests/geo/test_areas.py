"""GeoJSON areas and the contract's Circle: valid ones parse, bad ones are refused with AreaError."""

from __future__ import annotations

import math
from typing import Any

import pytest

from riderwatch.geo.areas import AreaError, circle_polygon, parse_area
from riderwatch.geo.coords import haversine_m
from tests.factories import square


def test_polygon_and_feature() -> None:
    poly = square(25.43, 119.01, 0.01)
    assert parse_area(poly).bounds == pytest.approx((119.0, 25.42, 119.02, 25.44))
    assert parse_area({"type": "Feature", "properties": {}, "geometry": poly}).equals(parse_area(poly))
    multi = {"type": "MultiPolygon", "coordinates": [poly["coordinates"], square(25.5, 119.1, 0.01)["coordinates"]]}
    assert parse_area(multi).area == pytest.approx(2 * parse_area(poly).area)


def test_circle_has_its_radius() -> None:
    geom = parse_area({"type": "Circle", "center": [119.01, 25.43], "radius_m": 500})
    assert geom.contains(geom.centroid)
    for lon, lat in list(geom.exterior.coords)[:-1]:
        assert haversine_m(25.43, 119.01, lat, lon) == pytest.approx(500, rel=0.01)
    area_m2 = geom.area * (111_320**2) * math.cos(math.radians(25.43))
    assert area_m2 == pytest.approx(math.pi * 500**2, rel=0.02)
    assert circle_polygon(119.01, 25.43, 500).equals(geom)


BOWTIE = [[119.0, 25.4], [119.1, 25.5], [119.1, 25.4], [119.0, 25.5], [119.0, 25.4]]
RING = square(25.43, 119.01, 0.01)["coordinates"][0]


@pytest.mark.parametrize(
    "area",
    [
        None,
        "POLYGON((0 0, 1 0, 1 1, 0 0))",
        [],
        {},
        {"type": "Point", "coordinates": [119.0, 25.4]},
        {"type": "LineString", "coordinates": [[119.0, 25.4], [119.1, 25.5]]},
        {"type": "Polygon"},
        {"type": "Polygon", "coordinates": []},
        {"type": "Polygon", "coordinates": [[]]},
        {"type": "Polygon", "coordinates": [RING[:3]]},  # too few positions
        {"type": "Polygon", "coordinates": [[*RING[:-1], [119.5, 25.5]]]},  # not closed
        {"type": "Polygon", "coordinates": [BOWTIE]},  # self-intersecting
        {"type": "Polygon", "coordinates": [[[119.0, 25.4], [119.1, 25.4], [119.2, 25.4], [119.0, 25.4]]]},  # flat
        {"type": "Polygon", "coordinates": [[[181, 25.4], [119.1, 25.4], [119.1, 25.5], [181, 25.4]]]},
        {"type": "Polygon", "coordinates": [[[119.0, 91], [119.1, 25.4], [119.1, 25.5], [119.0, 91]]]},
        {"type": "Polygon", "coordinates": [[["119.0", 25.4], [119.1, 25.4], [119.1, 25.5], ["119.0", 25.4]]]},
        {"type": "Polygon", "coordinates": [[[True, 25.4], [119.1, 25.4], [119.1, 25.5], [True, 25.4]]]},
        {"type": "Polygon", "coordinates": [[[119.0], [119.1, 25.4], [119.1, 25.5], [119.0]]]},
        {"type": "MultiPolygon", "coordinates": [[]]},
        {"type": "Feature", "geometry": None},
        {"type": "Circle", "center": [119.0, 25.4]},
        {"type": "Circle", "center": [119.0, 25.4], "radius_m": 0},
        {"type": "Circle", "center": [119.0, 25.4], "radius_m": -5},
        {"type": "Circle", "center": [119.0, 25.4], "radius_m": 1e9},
        {"type": "Circle", "center": [119.0, 25.4], "radius_m": "500"},
        {"type": "Circle", "center": [119.0, 25.4], "radius_m": True},
        {"type": "Circle", "center": [119.0, 25.4], "radius_m": float("nan")},
        {"type": "Circle", "center": [200.0, 25.4], "radius_m": 500},
        {"type": "Circle", "center": [119.0], "radius_m": 500},
        {"type": "Circle", "center": "119.0,25.4", "radius_m": 500},
        {"type": "Circle", "center": [float("nan"), 25.4], "radius_m": 500},
    ],
)
def test_bad_areas_are_refused(area: Any) -> None:
    with pytest.raises(AreaError):
        parse_area(area)
