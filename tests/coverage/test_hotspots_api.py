"""POST /api/v1/hotspots/query and /api/v1/coverage/gaps against planted clues stored in the database."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from h3.api import basic_int as h3
from sqlalchemy import insert
from sqlalchemy.orm import Session

from riderwatch.coverage import hotspots as hs
from riderwatch.models import CoverageCell
from tests.api.helpers import Api, assert_problem
from tests.coverage.planted import PlantedHotspot, Scenario, area_polygon, generate, hexagon_area, store
from tests.coverage.test_hotspots_stats import END, FRIDAY_NIGHT, RES, SHANGHAI, START, esda_gi_star
from tests.factories import CENTER_LAT, CENTER_LON, District

CELLS = hexagon_area(CENTER_LAT, CENTER_LON, RES, 8)  # 217 cells
AREA = area_polygon(CELLS)
NIGHT_SPOT = PlantedHotspot(
    lat=CENTER_LAT + 0.006, lon=CENTER_LON - 0.006, radius_m=200, clues=36, hours_of_week=FRIDAY_NIGHT
)
DAY_SPOT = PlantedHotspot(lat=CENTER_LAT - 0.007, lon=CENTER_LON + 0.004, radius_m=300, clues=45)


@pytest.fixture
def scenario(db: Session, district: District) -> Scenario:
    s = generate(
        cells=CELLS, resolution=RES, start=START, end=END, background=220, hotspots=[NIGHT_SPOT, DAY_SPOT], seed=7
    )
    store(db, s)
    return s


def body(**extra: Any) -> dict[str, Any]:
    """The planted scenario's query: its area, window and resolution (the API's default is the finest)."""
    return {"area": AREA, "from": START.isoformat(), "to": END.isoformat(), "resolution": RES, **extra}


def post(api: Api, path: str, data: dict[str, Any], who: str = "dispatcher") -> Any:
    return api.client.post(f"/api/v1/{path}", json=data, headers=api.auth(who))


def props(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["properties"]["h3"]: f["properties"] for f in data["features"]}


def test_hotspots_answer(api: Api, scenario: Scenario) -> None:
    res = post(api, "hotspots/query", body())
    assert res.status_code == 200, res.text
    data = res.json()
    assert data["type"] == "FeatureCollection" and data["resolution"] == RES and data["k"] == 1
    # One Feature per cell of the area, counts as the generator placed the clues.
    assert [f["properties"]["h3"] for f in data["features"]] == [h3.int_to_str(c) for c in CELLS]
    assert [f["properties"]["count"] for f in data["features"]] == scenario.counts().tolist()
    assert data["summary"]["clues"] == len(scenario.clues)
    first = data["features"][0]
    assert set(first["properties"]) == {"h3", "count", "z", "p", "hot", "density"}
    assert first["geometry"]["type"] == "Polygon" and first["id"] == first["properties"]["h3"]

    # z and p as esda computes them on the same cells and weights.
    ref = esda_gi_star(CELLS, scenario.counts(), 1)
    np.testing.assert_allclose([f["properties"]["z"] for f in data["features"]], ref.Zs, atol=1e-6, rtol=1e-6)
    np.testing.assert_allclose([f["properties"]["p"] for f in data["features"]], 2 * ref.p_norm, atol=1e-6)

    # Both planted hotspots found; nothing hot away from them.
    hot = {k for k, p in props(data).items() if p["hot"]}
    assert hot == set(data["summary"]["hot_cells"])
    near = set()
    for i, spot in enumerate(scenario.hotspots):
        assert h3.int_to_str(h3.latlng_to_cell(spot.lat, spot.lon, RES)) in hot
        near |= {h3.int_to_str(d) for c in scenario.planted_cells(i) for d in h3.grid_disk(c, 1)}
    assert hot <= near
    assert all(p["z"] > 0 and p["p"] < 0.01 for k, p in props(data).items() if k in hot)

    # Density: highest around the planted clusters, none far from any clue.
    densest = max(data["features"], key=lambda f: f["properties"]["density"])["properties"]["h3"]
    assert densest in near
    assert data["bandwidth_m"] > 0 and data["density_unit"] == "clues/km²"


def test_key_periods_of_the_hot_cells(api: Api, scenario: Scenario) -> None:
    kp = post(api, "hotspots/query", body()).json()["key_periods"]
    assert kp["timezone"] == "Asia/Shanghai"
    assert len(kp["counts"]) == len(kp["expected"]) == len(kp["p"]) == 168
    assert kp["clues"] == sum(kp["counts"]) > NIGHT_SPOT.clues
    assert sum(kp["counts"][h] for h in FRIDAY_NIGHT) >= NIGHT_SPOT.clues
    assert kp["key_hours"] and set(kp["key_hours"]) <= set(FRIDAY_NIGHT)
    period = kp["periods"][0]
    assert period["day"] == 4 and period["label"].startswith("Fri 2")
    assert period["count"] == sum(kp["counts"][h] for h in range(period["start"], period["start"] + period["hours"]))


def test_only_triaged_clues_of_the_chosen_categories(api: Api, db: Session, scenario: Scenario) -> None:
    before = post(api, "hotspots/query", body()).json()
    # Rejected reports and duplicates, piled on one cell, change nothing.
    pile = replace(scenario, clues=[replace(c, lat=CENTER_LAT, lon=CENTER_LON) for c in scenario.clues[:40]])
    store(db, pile, status="rejected")
    store(db, pile, status="duplicate")
    after = post(api, "hotspots/query", body()).json()
    assert [f["properties"] for f in after["features"]] == [f["properties"] for f in before["features"]]
    # Fire hazards elsewhere count for a fire-hazard query only.
    store(db, pile, category="fire_hazard")
    fire = post(api, "hotspots/query", body(categories=["fire_hazard"])).json()
    assert fire["summary"]["clues"] == 40 and fire["categories"] == ["fire_hazard"]
    centre = h3.int_to_str(h3.latlng_to_cell(CENTER_LAT, CENTER_LON, RES))
    assert props(fire)[centre]["count"] == 40
    both = post(api, "hotspots/query", body()).json()
    assert both["summary"]["clues"] == len(scenario.clues) + 40


def test_window_options_and_stored_area(api: Api, scenario: Scenario) -> None:
    # Half the window holds only its clues.
    mid = START + timedelta(weeks=2)
    first = post(api, "hotspots/query", body(to=mid.isoformat())).json()
    assert first["summary"]["clues"] == sum(1 for c in scenario.clues if c.observed_at < mid)
    wider = post(api, "hotspots/query", body(k=2, correction="bonferroni", alpha=0.05, bandwidth_m=400)).json()
    assert wider["k"] == 2 and wider["correction"] == "bonferroni" and wider["bandwidth_m"] == 400
    weights = hs.kring_weights(CELLS, 2)
    expect = hs.gi_star(scenario.counts(), weights)
    np.testing.assert_allclose([f["properties"]["z"] for f in wider["features"]], expect.z, atol=1e-9)
    community = post(api, "hotspots/query", body(area={"community": "jinding"}))
    assert community.status_code == 200, community.text


def _coverage(db: Session, cell: int, hours: list[int], passes: int = 2) -> None:
    db.execute(
        insert(CoverageCell),
        [{"resolution": RES, "cell": cell, "hour": h, "passes": passes, "riders": 1} for h in hours],
    )
    db.commit()


def _key_utc_hours(key_hours: list[int]) -> list[int]:
    mask = np.zeros(168, dtype=bool)
    mask[key_hours] = True
    first, last = int(START.timestamp() // 3600), int(END.timestamp() // 3600)
    return hs.utc_hours_in(first, last, mask, SHANGHAI).tolist()


def test_gaps_are_hot_cells_riders_miss_in_key_periods(api: Api, db: Session, scenario: Scenario) -> None:
    hot_data = post(api, "hotspots/query", body()).json()
    hot = hot_data["summary"]["hot_cells"]
    key = hot_data["key_periods"]["key_hours"]
    assert len(hot) >= 3 and key
    key_utc = _key_utc_hours(key)
    assert len(key_utc) == 4 * len(key)  # four weeks
    covered, half, daytime = (h3.str_to_int(c) for c in hot[:3])
    _coverage(db, covered, key_utc)  # riders pass every key hour
    _coverage(db, half, key_utc[: len(key_utc) // 2 - 1])  # just under half of them
    _coverage(db, daytime, [h + 6 for h in key_utc])  # often, but never in the key hours

    res = post(api, "coverage/gaps", body())
    assert res.status_code == 200, res.text
    data = res.json()
    assert data["basis"] == "key_periods" and data["summary"]["key_hours"] == len(key_utc)
    gaps = props(data)
    assert set(gaps) == set(hot) - {h3.int_to_str(covered)}
    assert data["summary"]["covered_hot_cells"] == [h3.int_to_str(covered)]
    assert data["summary"]["hot_cells"] == len(hot) and data["summary"]["gaps"] == len(hot) - 1
    assert gaps[h3.int_to_str(half)]["covered_hours"] == len(key_utc) // 2 - 1
    assert gaps[h3.int_to_str(half)]["passes"] == 2 * (len(key_utc) // 2 - 1)
    assert gaps[h3.int_to_str(daytime)]["covered_hours"] == 0 and gaps[h3.int_to_str(daytime)]["passes"] == 0
    zs = [f["properties"]["z"] for f in data["features"]]
    assert zs == sorted(zs, reverse=True)
    # A stricter notion of covered (3 passes an hour) turns the covered cell into a gap too.
    strict = post(api, "coverage/gaps", body(min_passes=3)).json()
    assert len(strict["features"]) == len(hot)
    # A looser gap threshold keeps the half-covered cell out.
    loose = post(api, "coverage/gaps", body(max_covered_ratio=0.4)).json()
    assert h3.int_to_str(half) not in props(loose)


def test_gaps_without_key_periods_use_every_hour(api: Api, db: Session, district: District) -> None:
    spot = replace(DAY_SPOT, clues=60)
    store(db, generate(cells=CELLS, resolution=RES, start=START, end=END, background=150, hotspots=[spot], seed=3))
    data = post(api, "coverage/gaps", body()).json()
    assert data["basis"] == "all_hours"
    assert data["summary"]["key_hours"] == 4 * 168
    assert data["summary"]["gaps"] == data["summary"]["hot_cells"] >= 1


def test_no_clues_no_hotspots(api: Api, district: District) -> None:
    data = post(api, "hotspots/query", body()).json()
    assert data["summary"] == {"cells": len(CELLS), "clues": 0, "incidents": 0, "hot_cells": []}
    assert all(f["properties"]["z"] == 0 and f["properties"]["p"] == 1 for f in data["features"])
    assert data["key_periods"]["periods"] == []
    gaps = post(api, "coverage/gaps", body()).json()
    assert gaps["features"] == [] and gaps["summary"]["gaps"] == 0


BAD = [
    {"area": {"zone": "nowhere"}},
    {"area": {"type": "Point", "coordinates": [CENTER_LON, CENTER_LAT]}},
    {"area": {"type": "Circle", "center": [CENTER_LON, CENTER_LAT], "radius_m": 100_000}},
    {"resolution": 8},
    {"k": 0},
    {"k": 6},
    {"k": "one"},
    {"alpha": 0},
    {"alpha": 0.7},
    {"correction": "holm"},
    {"bandwidth_m": 10},
    {"bandwidth_m": 1e9},
    {"categories": ["no_such_category"]},
    {"categories": "theft"},
    {"from": "2026-09-07T00:00:00"},
    {"to": "2020-01-01T00:00:00Z"},
    {"from": "2024-01-01T00:00:00Z"},
    {"from": "9999-12-30T00:00:00Z", "to": "9999-12-31T23:59:00Z"},
    {"from": "1960-01-01T00:00:00Z", "to": "1960-02-01T00:00:00Z"},
    {"colour": "red"},
]


@pytest.mark.parametrize("change", BAD)
@pytest.mark.parametrize("path", ["hotspots/query", "coverage/gaps"])
def test_bad_queries(api: Api, district: District, path: str, change: dict[str, Any]) -> None:
    assert_problem(post(api, path, {**body(), **change}), 422)


@pytest.mark.parametrize("change", [{"min_passes": 0}, {"max_covered_ratio": 0}, {"max_covered_ratio": 1.5}])
def test_bad_gap_queries(api: Api, district: District, change: dict[str, Any]) -> None:
    assert_problem(post(api, "coverage/gaps", {**body(), **change}), 422)
    # Gap settings mean nothing to the hotspot query.
    assert_problem(post(api, "hotspots/query", {**body(), **change}), 422)


def test_missing_fields(api: Api, district: District) -> None:
    for field in ("area", "from", "to"):
        data = body()
        del data[field]
        assert_problem(post(api, "hotspots/query", data), 422)
        assert_problem(post(api, "coverage/gaps", data), 422)


def test_who_may_read_hotspots(api: Api, district: District) -> None:
    for who in ("dispatcher", "admin", "police", "grid_staff", "patrol"):
        assert post(api, "hotspots/query", body(), who).status_code == 200, who
        assert post(api, "coverage/gaps", body(), who).status_code == 200, who
    for who in ("rider", "platform", "station_manager"):
        assert_problem(post(api, "hotspots/query", body(), who), 403)
        assert_problem(post(api, "coverage/gaps", body(), who), 403)
    assert_problem(api.client.post("/api/v1/hotspots/query", json=body()), 401)
