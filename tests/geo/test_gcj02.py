"""WGS-84 ⇄ GCJ-02: reference points, round trips, no offset outside China, and clues posted in GCJ-02."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.geo.coords import gcj02_to_wgs84, haversine_m, to_wgs84, wgs84_to_gcj02
from riderwatch.models import Clue
from tests.factories import CENTER_LAT, CENTER_LON, clue_body, make_district, token

# WGS-84 → GCJ-02 test vectors of the eviltransform project (googollee/eviltransform, transform_test.go),
# which implementations in many languages share.
VECTORS = [
    ((31.1774276, 121.5272106), (31.17530398364597, 121.531541859215)),  # Shanghai
    ((22.543847, 113.912316), (22.540796131694766, 113.9171764808363)),  # Shenzhen
    ((39.911954, 116.377817), (39.91334545536069, 116.38404722455657)),  # Beijing
]


@pytest.mark.parametrize(("wgs", "gcj"), VECTORS)
def test_published_vectors(wgs: tuple[float, float], gcj: tuple[float, float]) -> None:
    assert wgs84_to_gcj02(*wgs) == pytest.approx(gcj, abs=1e-9)
    assert gcj02_to_wgs84(*gcj) == pytest.approx(wgs, abs=1e-8)


# Tiananmen: the commonly quoted pair, given to five decimals (about a metre).
REFERENCE = [((39.9087, 116.3975), (39.91011, 116.40374))]


@pytest.mark.parametrize(("wgs", "gcj"), REFERENCE)
def test_reference_points(wgs: tuple[float, float], gcj: tuple[float, float]) -> None:
    lat, lon = wgs84_to_gcj02(*wgs)
    assert haversine_m(lat, lon, *gcj) < 2.0, (lat, lon)
    back = gcj02_to_wgs84(*gcj)
    assert haversine_m(*back, *wgs) < 2.0, back


def test_offset_is_tens_to_hundreds_of_metres() -> None:
    lat, lon = wgs84_to_gcj02(39.9087, 116.3975)
    assert 100 < haversine_m(39.9087, 116.3975, lat, lon) < 1000


def _grid() -> list[tuple[float, float]]:
    return [(lat / 2, lon / 2) for lat in range(2 * 18, 2 * 53, 3) for lon in range(2 * 75, 2 * 134, 3)]


def test_round_trip_is_sub_millimetre_across_china() -> None:
    worst = 0.0
    for lat, lon in _grid():
        glat, glon = wgs84_to_gcj02(lat, lon)
        wlat, wlon = gcj02_to_wgs84(glat, glon)
        worst = max(worst, haversine_m(lat, lon, wlat, wlon))
    assert worst < 0.001, f"worst round trip error {worst * 1000:.3f} mm"


@pytest.mark.parametrize(
    "point",
    [(51.5074, -0.1278), (40.7128, -74.0060), (-33.8688, 151.2093), (1.3521, 103.8198), (35.6762, 139.6503), (0, 0)],
)
def test_no_offset_outside_china(point: tuple[float, float]) -> None:
    assert wgs84_to_gcj02(*point) == point
    assert gcj02_to_wgs84(*point) == point
    assert to_wgs84(*point, "gcj02") == point


def test_crs_names() -> None:
    assert to_wgs84(25.43, 119.01, None) == (25.43, 119.01)
    assert to_wgs84(25.43, 119.01, "wgs84") == (25.43, 119.01)
    assert to_wgs84(25.43, 119.01, "gcj02") == gcj02_to_wgs84(25.43, 119.01)
    with pytest.raises(ValueError, match="crs"):
        to_wgs84(25.43, 119.01, "bd09")


def test_clue_in_gcj02_is_stored_in_wgs84(client: TestClient, db: Session) -> None:
    make_district(db)
    rider = token(client, "rider")
    wgs = (CENTER_LAT + 0.001, CENTER_LON - 0.004)
    glat, glon = wgs84_to_gcj02(*wgs)
    assert haversine_m(*wgs, glat, glon) > 100
    res = client.post("/api/v1/clues", json=clue_body(lat=glat, lon=glon, crs="gcj02"), headers=rider)
    assert res.status_code == 201, res.text
    clue_id = res.json()["id"]
    stored = db.scalar(select(Clue).where(Clue.id == clue_id))
    assert stored is not None
    assert haversine_m(stored.lat, stored.lon, *wgs) < 0.001
    db.rollback()
    shown = client.get(f"/api/v1/clues/{clue_id}", headers=token(client, "dispatcher")).json()
    assert haversine_m(shown["lat"], shown["lon"], *wgs) < 0.001
    # Located in WGS-84 too: the point is in the west grid, which the GCJ-02 position would miss by ~500 m.
    assert shown["grid"] == "金鼎西网格"
    plain = client.post("/api/v1/clues", json=clue_body(lat=wgs[0], lon=wgs[1]), headers=rider).json()["id"]
    again = db.get(Clue, plain)
    assert again is not None and (again.lat, again.lon) == wgs
