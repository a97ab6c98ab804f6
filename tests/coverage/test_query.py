"""Coverage queries against cells and counts worked out by hand from the points sent."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from h3.api import basic_int as h3
from shapely.geometry import Point, shape
from sqlalchemy.orm import Session

from riderwatch.coverage.rollup import roll_up, sealed_before
from riderwatch.infra.clock import utcnow
from tests.api.helpers import Api, assert_problem
from tests.factories import CENTER_LAT, CENTER_LON, District, square
from tests.tracking.helpers import backdate, ready, send

AREA = square(CENTER_LAT, CENTER_LON, 0.004)


def cells_by_hand(area: dict[str, Any], res: int) -> list[int]:
    """Cells whose centre lies in the area, found by walking the neighbourhood of its centre."""
    polygon = shape(area)
    around = h3.grid_disk(h3.latlng_to_cell(CENTER_LAT, CENTER_LON, res), 12)
    inside = []
    for cell in around:
        lat, lon = h3.cell_to_latlng(cell)
        if polygon.contains(Point(lon, lat)):
            inside.append(cell)
    return sorted(inside)


def hour_floor(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


@pytest.fixture
def scene(api: Api, db: Session, district: District) -> dict[str, Any]:
    """Three passes (two riders) in cell A an hour ago, one pass in cell B seven hours earlier."""
    for name in ("rider", "rider2"):
        ready(api, name)
        backdate(db, district.users[name].id, hours=30)
    cells = cells_by_hand(AREA, 9)
    a, b = cells[len(cells) // 2], cells[0]
    (alat, alon), (blat, blon) = h3.cell_to_latlng(a), h3.cell_to_latlng(b)
    now = utcnow()
    hour = hour_floor(now) - timedelta(hours=2)
    t = hour + timedelta(minutes=10)
    send(
        api,
        [
            {"ts": t.isoformat(), "lat": alat, "lon": alon},
            {"ts": (t + timedelta(minutes=5)).isoformat(), "lat": alat + 1e-5, "lon": alon},
        ],
    )
    send(api, [{"ts": (t + timedelta(minutes=1)).isoformat(), "lat": alat, "lon": alon - 1e-5}], username="rider2")
    send(api, [{"ts": (t - timedelta(hours=7)).isoformat(), "lat": blat, "lon": blon}], username="rider2")
    start = hour_floor(now) - timedelta(hours=5)
    return {"cells": cells, "a": a, "b": b, "hour": hour, "from": start, "to": start + timedelta(hours=6)}


def query(api: Api, body: dict[str, Any], who: str = "dispatcher") -> Any:
    return api.client.post("/api/v1/coverage/query", json=body, headers=api.auth(who))


def _body(scene: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"area": AREA, "from": scene["from"].isoformat(), "to": scene["to"].isoformat(), **extra}


def test_coverage_numbers(api: Api, scene: dict[str, Any]) -> None:
    res = query(api, _body(scene))
    assert res.status_code == 200, res.text
    data = res.json()
    cells, a, b = scene["cells"], scene["a"], scene["b"]
    assert data["type"] == "FeatureCollection" and data["resolution"] == 9
    assert [f["properties"]["h3"] for f in data["features"]] == [h3.int_to_str(c) for c in cells]
    props = {f["properties"]["h3"]: f["properties"] for f in data["features"]}
    assert props[h3.int_to_str(a)] == {"h3": h3.int_to_str(a), "passes": 3, "riders": 2, "covered": True}
    assert all(p["passes"] == 0 and p["riders"] == 0 for k, p in props.items() if k != h3.int_to_str(a))
    summary = data["summary"]
    assert summary["cells"] == len(cells) >= 5
    assert summary["covered"] == 1
    assert summary["coverage_ratio"] == pytest.approx(1 / len(cells))
    assert summary["blind_cells"] == [h3.int_to_str(c) for c in cells if c != a]
    local_hour = scene["hour"].astimezone(ZoneInfo("Asia/Shanghai")).hour
    assert data["hour_profile"] == [3 if h == local_hour else 0 for h in range(24)]
    previous = data["previous"]
    assert previous["covered"] == 1 and previous["blind_cells"] == [h3.int_to_str(c) for c in cells if c != b]
    assert data["trend"] == pytest.approx(0.0)
    geometry = data["features"][0]["geometry"]
    assert geometry["type"] == "Polygon" and geometry["coordinates"][0][0] == geometry["coordinates"][0][-1]


def test_threshold_and_trend(api: Api, scene: dict[str, Any]) -> None:
    data = query(api, _body(scene, min_passes=4)).json()
    assert data["summary"]["covered"] == 0 and len(data["summary"]["blind_cells"]) == len(scene["cells"])
    # A window that holds only the earlier pass: coverage fell from nothing to B, trend up.
    earlier = {"from": (scene["from"] - timedelta(hours=6)).isoformat(), "to": scene["from"].isoformat()}
    data = query(api, {**_body(scene), **earlier}).json()
    assert data["summary"]["covered"] == 1
    assert data["previous"]["covered"] == 0
    assert data["trend"] == pytest.approx(1 / len(scene["cells"]))


def test_finer_resolution(api: Api, scene: dict[str, Any]) -> None:
    data = query(api, _body(scene, resolution=10)).json()
    assert data["summary"]["cells"] == len(cells_by_hand(AREA, 10))
    assert sum(f["properties"]["passes"] for f in data["features"]) == 3


def test_stored_areas(api: Api, scene: dict[str, Any], district: District) -> None:
    community = query(api, _body(scene, area={"community": "jinding"})).json()
    assert community["summary"]["cells"] == len(cells_by_hand(district.community.boundary, 9))
    assert sum(f["properties"]["passes"] for f in community["features"]) == 3
    grid = query(api, _body(scene, area={"grid": "jinding-w"})).json()
    assert grid["summary"]["cells"] == len(cells_by_hand(district.grid.boundary, 9))
    circle = {"type": "Circle", "center": [CENTER_LON, CENTER_LAT], "radius_m": 500}
    assert query(api, _body(scene, area=circle)).status_code == 200


@pytest.mark.parametrize(
    "change",
    [
        {"area": {"zone": "nowhere"}},
        {"area": {"grid": 7}},
        {"area": {"type": "Point", "coordinates": [CENTER_LON, CENTER_LAT]}},
        {"area": {"type": "Circle", "center": [CENTER_LON, CENTER_LAT], "radius_m": 100_000}},  # too many cells
        {"area": square(CENTER_LAT, CENTER_LON, 0.0002)},  # no cell centre inside
        {"resolution": 8},
        {"resolution": "nine"},
        {"min_passes": 0},
        {"from": "2026-11-29T08:00:00"},
        {"to": "2020-01-01T00:00:00Z"},  # before from
        {"from": "2024-01-01T00:00:00Z"},  # more than a year
        {"colour": "red"},
    ],
)
def test_bad_queries(api: Api, scene: dict[str, Any], change: dict[str, Any]) -> None:
    assert_problem(query(api, {**_body(scene), **change}), 422)


def test_missing_fields(api: Api, scene: dict[str, Any]) -> None:
    for field in ("area", "from", "to"):
        body = _body(scene)
        del body[field]
        assert_problem(query(api, body), 422)


def test_who_may_read_coverage(api: Api, scene: dict[str, Any]) -> None:
    for who in ("dispatcher", "admin", "police", "grid_staff", "patrol", "station_manager"):
        assert query(api, _body(scene), who).status_code == 200, who
    for who in ("rider", "platform"):
        assert_problem(query(api, _body(scene), who), 403)


def test_same_answer_once_the_days_are_rolled_up(api: Api, scene: dict[str, Any], db: Session) -> None:
    """Days sealed into the daily roll-up (here: as seen four days on) answer exactly as the hourly counts."""
    bodies = [
        _body(scene),
        _body(scene, resolution=10),
        {**_body(scene), "from": (scene["from"] - timedelta(days=2)).isoformat()},
    ]
    before = [query(api, body).json() for body in bodies]
    # Four days on: the window may end an hour into tomorrow (UTC), and that day seals 49 h after it ends.
    later = utcnow() + timedelta(days=4)
    while roll_up(db, now=later, max_age=timedelta(hours=48)):
        pass
    # Every pass is in the roll-up: the window ends (exclusive) no later than the first unsealed day,
    # which is exactly where it ends when the test runs in the last hour of a UTC day.
    assert (sealed_before(db) or 0) * 24 * 3600 >= scene["to"].timestamp()
    db.commit()  # on SQLite the session holds the write lock until then
    assert [query(api, body).json() for body in bodies] == before
