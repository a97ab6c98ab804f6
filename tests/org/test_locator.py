"""Locating many points at once (a group of reported clues) answers as locating each alone does."""

from __future__ import annotations

from sqlalchemy.orm import Session

from riderwatch.org.service import Locator, locate
from tests.factories import CENTER_LAT, CENTER_LON, District


def test_the_locator_agrees_with_locate_everywhere_around_the_district(db: Session, district: District) -> None:
    locator = Locator(db)
    found = {"grid": 0, "community": 0, "none": 0}
    for i in range(-15, 16):
        for j in range(-15, 16):
            lat, lon = CENTER_LAT + i * 0.001, CENTER_LON + j * 0.001
            one, many = locate(db, lat=lat, lon=lon), locator.locate(lat=lat, lon=lon)
            assert (many.grid and many.grid.id, many.community and many.community.id) == (
                one.grid and one.grid.id,
                one.community and one.community.id,
            ), (lat, lon)
            found["grid" if one.grid else "community" if one.community else "none"] += 1
    # The walk crosses a grid, the community around it and the land outside both.
    assert all(found.values()), found
