"""The hotspot analysis against the district simulator's planted incidents (riderwatch.sim.incidents).

The simulator plants clusters of one category in a place and during some hours of the week over a
uniform background; stored as triaged clues, POST /api/v1/hotspots/query must find every planted
cluster where and when it was planted, and in a background-only control nothing at p < 0.01.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from h3.api import basic_int as h3
from sqlalchemy import insert
from sqlalchemy.orm import Session

from riderwatch.infra.clock import utcnow
from riderwatch.models import Clue
from riderwatch.sim.incidents import Hotspot, IncidentSet, default_hotspots, generate_incidents
from riderwatch.sim.world import ZHENHAI
from tests.api.helpers import Api
from tests.factories import District

START = datetime(2026, 9, 7, tzinfo=UTC) - timedelta(hours=8)  # Monday 00:00 in Shanghai
END = START + timedelta(weeks=4)
AREA = {"type": "Polygon", "coordinates": [[list(p) for p in (*ZHENHAI.outline, ZHENHAI.outline[0])]]}
HOTSPOTS = default_hotspots(ZHENHAI.commercial)


def _incidents(hotspots: list[Hotspot], seed: int) -> IncidentSet:
    return generate_incidents(
        outline=ZHENHAI.outline,
        hotspots=hotspots,
        start=START,
        end=END,
        seed=seed,
        background_per_day=8.0,
        timezone=ZHENHAI.timezone,
    )


def _store(db: Session, incidents: IncidentSet) -> None:
    """The incidents as reports that passed triage, each in its own category (bulk, as the volume needs)."""
    now = utcnow()
    rows = [
        {
            "category_code": i.category,
            "lat": i.lat,
            "lon": i.lon,
            "observed_at": i.at,
            "reported_at": i.at,
            "updated_at": now,
            "deadline_at": i.at + timedelta(hours=72),
            "status": "verified",
            "description": i.description,
        }
        for i in incidents.incidents
    ]
    db.execute(insert(Clue), rows)
    db.commit()


def _query(api: Api, **extra: Any) -> dict[str, Any]:
    body = {"area": AREA, "from": START.isoformat(), "to": END.isoformat(), **extra}
    res = api.client.post("/api/v1/hotspots/query", json=body, headers=api.auth("dispatcher"))
    assert res.status_code == 200, res.text
    data: dict[str, Any] = res.json()
    return data


def _hot(data: dict[str, Any]) -> set[int]:
    return {h3.str_to_int(c) for c in data["summary"]["hot_cells"]}


def _inside(data: dict[str, Any], incidents: IncidentSet, category: str | None = None) -> int:
    """How many incidents (of the category) fall in the area's cells, those whose centre lies inside the outline."""
    cells = {h3.str_to_int(f["properties"]["h3"]) for f in data["features"]}
    res = data["resolution"]
    return sum(
        1
        for i in incidents.incidents
        if h3.latlng_to_cell(i.lat, i.lon, res) in cells and category in (None, i.category)
    )


def _place(spot: Hotspot, res: int) -> int:
    """The cell at the heart of the planted hotspot."""
    if spot.cell is not None:
        return spot.cell if h3.get_resolution(spot.cell) == res else int(h3.cell_to_center_child(spot.cell, res))
    assert spot.center is not None
    return int(h3.latlng_to_cell(*spot.center, res))


def _near(spot: Hotspot, res: int) -> set[int]:
    """The cells the hotspot's incidents can fall in, and their neighbours (Gi* with k = 1 sees those)."""
    return {d for c in spot.cells(res) for d in h3.grid_disk(c, 1)}


@pytest.fixture(params=[3, 11], ids=lambda seed: f"seed{seed}")
def planted(request: pytest.FixtureRequest, db: Session, district: District) -> IncidentSet:
    incidents = _incidents(HOTSPOTS, request.param)
    assert {s.name for s in incidents.hotspots} == {"evening-theft", "morning-fraud", "night-fights"}
    assert all(incidents.planted(s.name) for s in incidents.hotspots)
    _store(db, incidents)
    return incidents


def _found_where_and_when_planted(data: dict[str, Any], spots: list[Hotspot]) -> None:
    res = data["resolution"]
    hot = _hot(data)
    for spot in spots:
        assert _place(spot, res) in hot, f"{spot.name} missed"
    # Nothing hot away from them: every hot cell holds a cluster or borders one.
    near = set().union(*(_near(spot, res) for spot in spots))
    assert hot <= near, sorted(h3.int_to_str(c) for c in hot - near)
    # The key periods of the hot cells are hours the hotspots were planted in.
    key = set(data["key_periods"]["key_hours"])
    planted_hours = set().union(*(spot.hours_of_week for spot in spots))
    assert key and key <= planted_hours, sorted(key - planted_hours)


@pytest.mark.parametrize("name", [spot.name for spot in HOTSPOTS])
def test_each_planted_hotspot_is_found_in_its_category(api: Api, planted: IncidentSet, name: str) -> None:
    spot = next(s for s in planted.hotspots if s.name == name)
    data = _query(api, categories=[spot.category], resolution=9)
    assert data["summary"]["clues"] == _inside(data, planted, spot.category)
    _found_where_and_when_planted(data, [spot])
    # A good part of the planted incidents falls in the key hours. Not all: the night fights are
    # spread over 28 hours of the week, about three a week-hour in four weeks, and only the hours
    # the draw filled most stand out after the correction.
    kp = data["key_periods"]
    in_key = sum(kp["counts"][h] for h in kp["key_hours"])
    assert in_key >= len(planted.planted(name)) / 3, (in_key, len(planted.planted(name)))


def test_all_planted_hotspots_are_found_in_one_query_of_every_category(api: Api, planted: IncidentSet) -> None:
    # Resolution 10 (cells about 70 m across): each planted cluster (a 110–120 m disc, or one
    # resolution-9 cell) covers several cells, the neighbourhood Gi* looks for.
    data = _query(api, resolution=10)
    assert data["summary"]["clues"] == _inside(data, planted) > 0.9 * len(planted.incidents)
    _found_where_and_when_planted(data, planted.hotspots)


def test_all_planted_hotspots_in_one_default_query(api: Api, planted: IncidentSet) -> None:
    data = _query(api)  # no resolution: the finest, street level
    assert data["resolution"] == 10
    _found_where_and_when_planted(data, planted.hotspots)


@pytest.mark.xfail(
    strict=True,
    reason="Gi* at k = 1 on resolution-9 cells misses single-cell clusters when "
    "several strong ones inflate the variance of the counts (found per category, or at resolution 10)",
)
def test_all_planted_hotspots_in_one_query_on_resolution_9_cells(api: Api, planted: IncidentSet) -> None:
    _found_where_and_when_planted(_query(api, resolution=9), planted.hotspots)


@pytest.mark.parametrize("res", [9, 10])
@pytest.mark.parametrize("seed", [3, 11, 29])
def test_a_background_only_run_shows_nothing_hot(
    api: Api, db: Session, district: District, seed: int, res: int
) -> None:
    control = _incidents([], seed)
    assert control.incidents and not control.planted()
    _store(db, control)
    data = _query(api, resolution=res, alpha=0.01)
    assert data["summary"]["clues"] == _inside(data, control) > 0.9 * len(control.incidents)
    assert data["summary"]["hot_cells"] == []
    assert data["key_periods"]["key_hours"] == []
