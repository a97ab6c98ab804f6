"""Hotspots and gaps from the police's recorded incidents, alone or beside riders' clues (`sources`)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from h3.api import basic_int as h3
from sqlalchemy.orm import Session

from riderwatch.incidents import service as incidents
from tests.api.helpers import Api, assert_problem
from tests.coverage.planted import PlantedHotspot, Scenario, SimClue, area_polygon, generate, hexagon_area, store
from tests.coverage.test_hotspots_stats import END, FRIDAY_NIGHT, RES, START
from tests.factories import CENTER_LAT, CENTER_LON, District

CELLS = hexagon_area(CENTER_LAT, CENTER_LON, RES, 8)
AREA = area_polygon(CELLS)
SPOT = PlantedHotspot(
    lat=CENTER_LAT + 0.006, lon=CENTER_LON - 0.006, radius_m=200, clues=36, hours_of_week=FRIDAY_NIGHT
)
SPOT_CELL = h3.int_to_str(h3.latlng_to_cell(SPOT.lat, SPOT.lon, RES))


def _scenario(background: int) -> Scenario:
    return generate(cells=CELLS, resolution=RES, start=START, end=END, background=background, hotspots=[SPOT], seed=5)


def _import(db: Session, events: list[SimClue], *, category: str = "theft", source: str = "110") -> None:
    """The events as recorded incidents, through the import service (as the command centre would)."""
    rows = [
        (
            n,
            {
                "source": source,
                "external_ref": f"T{n:05d}",
                "category": category,
                "lat": e.lat,
                "lon": e.lon,
                "occurred_at": e.observed_at.isoformat(),
            },
        )
        for n, e in enumerate(events, start=1)
    ]
    incidents.import_incidents(db, actor=None, rows=rows, timezone="Asia/Shanghai", origin="test")
    db.commit()


def _query(api: Api, path: str = "hotspots/query", **extra: Any) -> dict[str, Any]:
    body = {"area": AREA, "from": START.isoformat(), "to": END.isoformat(), "resolution": RES, **extra}
    res = api.client.post(f"/api/v1/{path}", json=body, headers=api.auth("dispatcher"))
    assert res.status_code == 200, res.text
    data: dict[str, Any] = res.json()
    return data


def _hot(data: dict[str, Any]) -> set[str]:
    return {f["properties"]["h3"] for f in data["features"] if f["properties"]["hot"]}


def _near_spot() -> set[str]:
    centre = h3.latlng_to_cell(SPOT.lat, SPOT.lon, RES)
    return {h3.int_to_str(c) for c in h3.grid_disk(centre, 2)}


def test_incidents_alone_make_the_planted_hotspot_hot(api: Api, db: Session, district: District) -> None:
    scenario = _scenario(background=220)
    _import(db, scenario.clues)
    data = _query(api)
    assert data["sources"] == ["clues", "incidents"]
    assert data["summary"]["clues"] == 0 and data["summary"]["incidents"] == len(scenario.clues)
    assert [f["properties"]["count"] for f in data["features"]] == scenario.counts().tolist()
    hot = _hot(data)
    assert SPOT_CELL in hot and hot <= _near_spot()
    assert data["density_unit"] == "incidents/km²"
    # The key periods come from the incidents' times: Friday night, when the cluster was planted.
    kp = data["key_periods"]
    assert kp["incidents"] == sum(kp["counts"]) >= SPOT.clues and kp["clues"] == 0
    assert kp["key_hours"] and set(kp["key_hours"]) <= set(FRIDAY_NIGHT)
    # Riders never pass there: the hot cell is a gap, and its key hours are the incidents' hours.
    gaps = _query(api, "coverage/gaps")
    assert SPOT_CELL in {f["properties"]["h3"] for f in gaps["features"]}
    assert gaps["summary"]["incidents"] == len(scenario.clues) and gaps["basis"] == "key_periods"
    # Only incidents asked for: the same answer.
    alone = _query(api, sources=["incidents"])
    assert alone["features"] == data["features"] and alone["sources"] == ["incidents"]


def test_clues_only_ignores_incidents(api: Api, db: Session, district: District) -> None:
    scenario = _scenario(background=220)
    _import(db, scenario.clues)
    data = _query(api, sources=["clues"])
    assert data["sources"] == ["clues"]
    assert data["summary"] == {"cells": len(CELLS), "clues": 0, "incidents": 0, "hot_cells": []}
    assert all(f["properties"]["count"] == 0 for f in data["features"])
    assert data["density_unit"] == "clues/km²"
    gaps = _query(api, "coverage/gaps", sources=["clues"])
    assert gaps["features"] == [] and gaps["summary"]["hot_cells"] == 0


def test_mixed_sources_add_up(api: Api, db: Session, district: District) -> None:
    """Riders' clues are the background; the police's incidents hold the cluster."""
    scenario = _scenario(background=260)
    background = [c for c in scenario.clues if c.hotspot is None]
    cluster = [c for c in scenario.clues if c.hotspot is not None]
    store(db, replace(scenario, clues=background))
    _import(db, cluster)
    both = _query(api)
    assert both["summary"]["clues"] == len(background) and both["summary"]["incidents"] == len(cluster)
    # One count per cell, whichever history each event came from.
    assert [f["properties"]["count"] for f in both["features"]] == scenario.counts().tolist()
    assert SPOT_CELL in _hot(both) and _hot(both) <= _near_spot()
    assert both["density_unit"] == "clues and incidents/km²"
    kp = both["key_periods"]
    assert kp["clues"] + kp["incidents"] == sum(kp["counts"]) and kp["incidents"] >= SPOT.clues
    # Without the incidents the cluster is gone; without the clues the background is.
    clues_only = _query(api, sources=["clues"])
    assert SPOT_CELL not in _hot(clues_only) and clues_only["summary"]["incidents"] == 0
    incidents_only = _query(api, sources=["incidents"])
    assert incidents_only["summary"] == {
        "cells": len(CELLS),
        "clues": 0,
        "incidents": len(cluster),
        "hot_cells": incidents_only["summary"]["hot_cells"],
    }
    assert SPOT_CELL in _hot(incidents_only)


def test_categories_filter_incidents_too(api: Api, db: Session, district: District) -> None:
    scenario = _scenario(background=0)
    _import(db, scenario.clues, category="fight_dispute")
    fights = _query(api, categories=["fight_dispute"])
    assert fights["summary"]["incidents"] == len(scenario.clues) and SPOT_CELL in _hot(fights)
    thefts = _query(api, categories=["theft"])
    assert thefts["summary"]["incidents"] == 0 and _hot(thefts) == set()


@pytest.mark.parametrize("sources", [[], ["tweets"], ["clues", "clues"], "clues"])
def test_bad_sources(api: Api, district: District, sources: Any) -> None:
    body = {"area": AREA, "from": START.isoformat(), "to": END.isoformat(), "sources": sources}
    for path in ("hotspots/query", "coverage/gaps"):
        res = api.client.post(f"/api/v1/{path}", json=body, headers=api.auth("dispatcher"))
        assert_problem(res, 422)
