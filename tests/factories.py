"""Factories for tests: an organised district in miniature, users of every role, tokens, clues."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy.orm import Session

from riderwatch.accounts.service import create_user
from riderwatch.geo.areas import bbox
from riderwatch.infra.clock import utcnow
from riderwatch.models import Community, Grid, Jurisdiction, PatrolUnit, Platform, Station, User

PASSWORD = "correct-horse-battery"
# A small square community around Jinding (金鼎), with one grid covering its west half.
CENTER_LAT, CENTER_LON = 25.4300, 119.0100


def square(lat: float, lon: float, half: float) -> dict[str, Any]:
    ring = [
        [lon - half, lat - half],
        [lon + half, lat - half],
        [lon + half, lat + half],
        [lon - half, lat + half],
        [lon - half, lat - half],
    ]
    return {"type": "Polygon", "coordinates": [ring]}


@dataclass
class District:
    community: Community
    grid: Grid
    station: Station
    platform: Platform
    patrol_unit: PatrolUnit
    users: dict[str, User]


def make_district(db: Session) -> District:
    """One jurisdiction, community, grid, platform, station, patrol unit, and one user per role."""
    j = Jurisdiction(code="zhenhai", name="镇海派出所", name_en="Zhenhai Police Station")
    db.add(j)
    db.flush()
    community = Community(
        code="jinding",
        name="金鼎社区",
        name_en="Jinding",
        jurisdiction_id=j.id,
        boundary=square(CENTER_LAT, CENTER_LON, 0.01),
    )
    db.add(community)
    db.flush()
    boundary = square(CENTER_LAT, CENTER_LON - 0.005, 0.005)
    min_lat, min_lon, max_lat, max_lon = bbox(boundary)
    grid = Grid(
        code="jinding-w",
        name="金鼎西网格",
        community_id=community.id,
        boundary=boundary,
        min_lat=min_lat,
        min_lon=min_lon,
        max_lat=max_lat,
        max_lon=max_lon,
    )
    platform = Platform(code="meituan", name="美团", name_en="Meituan")
    db.add_all([grid, platform])
    db.flush()
    station = Station(code="mt-jinding", name="美团金鼎站", platform_id=platform.id, lat=CENTER_LAT, lon=CENTER_LON)
    unit = PatrolUnit(code="patrol-1", name="巡防一队", jurisdiction_id=j.id)
    db.add_all([station, unit])
    db.flush()
    users: dict[str, User] = {}
    for role in ("admin", "dispatcher", "police", "grid_staff", "patrol", "station_manager", "platform", "rider"):
        users[role] = create_user(
            db,
            username=role,
            role=role,
            password=PASSWORD,
            station_code=station.code if role in ("rider", "station_manager") else None,
        )
    users["police"].community_id = community.id
    users["grid_staff"].grid_id = grid.id
    users["patrol"].patrol_unit_id = unit.id
    users["platform"].platform_id = platform.id
    users["rider2"] = create_user(db, username="rider2", role="rider", password=PASSWORD, station_code=station.code)
    users["police2"] = create_user(db, username="police2", role="police", password=PASSWORD)
    db.commit()
    return District(community=community, grid=grid, station=station, platform=platform, patrol_unit=unit, users=users)


def token(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    res = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert res.status_code == 200, res.text
    return {"Authorization": f"Bearer {res.json()['access_token']}"}


def clue_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "category": "fire_hazard",
        "description": "楼道堆放电动车电池充电",
        "lat": CENTER_LAT + 0.001,
        "lon": CENTER_LON - 0.004,
        "observed_at": (utcnow() - timedelta(minutes=30)).isoformat(),
        "anonymous": False,
    }
    body.update(overrides)
    return body


def image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (32, 24), color: str = "red", **save: Any) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt, **save)
    return buf.getvalue()
