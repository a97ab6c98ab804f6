"""Planted hotspots: incidents land in their areas and hours, over a uniform background."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from h3.api import basic_int as h3

from riderwatch.sim.incidents import Hotspot, default_hotspots, generate_incidents, hours
from riderwatch.sim.world import ZHENHAI
from tests.sim.test_generator import MONDAY

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def four_weeks():  # type: ignore[no-untyped-def]
    return generate_incidents(
        outline=ZHENHAI.outline,
        hotspots=default_hotspots(ZHENHAI.commercial),
        start=MONDAY,
        end=MONDAY + timedelta(days=28),
        seed=2,
        background_per_day=10,
    )


def test_planted_incidents_fall_in_their_area_and_hours(four_weeks) -> None:  # type: ignore[no-untyped-def]
    spots = {h.name: h for h in four_weeks.hotspots}
    assert set(spots) == {"evening-theft", "morning-fraud", "night-fights"}
    for name, spot in spots.items():
        planted = four_weeks.planted(name)
        # Rate × active hours in four weeks, within generous Poisson bounds.
        expected = spot.rate_per_hour * len(spot.hours_of_week) * 4
        assert 0.6 * expected < len(planted) < 1.4 * expected, name
        for inc in planted:
            local = inc.at.astimezone(TZ)
            assert spot.active(local.weekday() * 24 + local.hour)
            assert spot.contains(inc.lat, inc.lon)
            assert inc.category == spot.category
            for res in (9, 10):
                assert h3.latlng_to_cell(inc.lat, inc.lon, res) in spot.cells(res)


def test_hotspot_cells_stand_out_from_the_background(four_weeks) -> None:  # type: ignore[no-untyped-def]
    counts = four_weeks.counts_by_cell(9)
    planted_cells = set().union(*(h.cells(9) for h in four_weeks.hotspots))
    background = [c for cell, c in counts.items() if cell not in planted_cells]
    background_mean = sum(background) / len(background)
    # The busiest cell of every hotspot holds many times the background's average.
    for spot in four_weeks.hotspots:
        top = max(counts.get(c, 0) for c in spot.cells(9))
        assert top > 5 * background_mean, spot.name


def test_background_is_uniform_over_the_district(four_weeks) -> None:  # type: ignore[no-untyped-def]
    background = [i for i in four_weeks.incidents if i.hotspot is None]
    assert 0.8 * 280 < len(background) < 1.2 * 280
    # Halves of the district (west/east of its centre) get shares close to their areas.
    lon0 = sum(p[0] for p in ZHENHAI.outline) / len(ZHENHAI.outline)
    west = sum(i.lon < lon0 for i in background) / len(background)
    assert 0.35 < west < 0.65
    hours_seen = Counter(i.at.astimezone(TZ).hour for i in background)
    assert len(hours_seen) == 24


def test_same_seed_same_incidents() -> None:
    def run(seed: int) -> list[tuple[object, ...]]:
        s = generate_incidents(
            outline=ZHENHAI.outline,
            hotspots=default_hotspots(ZHENHAI.commercial),
            start=MONDAY,
            end=MONDAY + timedelta(days=3),
            seed=seed,
        )
        return [(i.at, i.lat, i.lon, i.category, i.hotspot) for i in s.incidents]

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_hours_of_week_wrap_midnight_and_sunday() -> None:
    assert hours([6], [(23, 1)]) == frozenset({167, 0})
    assert hours(range(5), [(9, 10)]) == frozenset({9, 33, 57, 81, 105})


def test_a_hotspot_needs_exactly_one_area_and_valid_hours() -> None:
    with pytest.raises(ValueError):
        Hotspot("x", "theft", frozenset({1}), 1.0)
    with pytest.raises(ValueError):
        Hotspot("x", "theft", frozenset({1}), 1.0, cell=1, center=(25.43, 119.01))
    with pytest.raises(ValueError):
        Hotspot("x", "theft", frozenset({168}), 1.0, center=(25.43, 119.01))
    with pytest.raises(ValueError):
        generate_incidents(outline=ZHENHAI.outline, hotspots=[], start=MONDAY, end=MONDAY, seed=1)
