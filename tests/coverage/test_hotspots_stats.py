"""The hotspot statistics against PySAL's esda, planted ground truth and uniform controls.

What the uniform-control tests claim, precisely:
- Per cell, the uncorrected two-sided p-value is calibrated: in uniform controls dense enough for
  the normal approximation, the share of cells with p < 0.05 is 0.05 (± 0.015 over 200 runs).
- Per run, after the correction (Benjamini–Hochberg by default, or Bonferroni), the chance that
  any cell is reported hot at alpha = 0.01 stays at alpha: at most 6 of 200 seeded uniform
  controls show a hot cell (if the true rate were 0.01, 7 or more would happen 0.5 % of the time),
  at sparse and dense intensities, for k = 1 and 2.
- Without the correction nearly every uniform control shows "hot" cells, and without the exact
  count check sparse controls do too: both safeguards are needed.
"""

from __future__ import annotations

import math
import warnings
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from esda.getisord import G_Local
from h3.api import basic_int as h3
from libpysal.weights import W
from scipy import stats as scipy_stats

from riderwatch.coverage import hotspots as hs
from tests.coverage.planted import PlantedHotspot, generate, hexagon_area
from tests.factories import CENTER_LAT, CENTER_LON

SHANGHAI = ZoneInfo("Asia/Shanghai")
RES = 9
AREA = hexagon_area(CENTER_LAT, CENTER_LON, RES, 11)  # 397 cells, about 20 km²
START = datetime(2026, 9, 7, tzinfo=SHANGHAI)  # a Monday
END = START + timedelta(weeks=4)


def esda_gi_star(cells: list[int], y: np.ndarray, k: int) -> G_Local:
    """esda's Gi* on binary k-ring weights built here from h3 directly (not from our weights)."""
    index = {c: i for i, c in enumerate(cells)}
    neighbours = {i: [index[d] for d in h3.grid_disk(c, k) if d in index and d != c] for i, c in enumerate(cells)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # islands and disconnected parts are expected in the irregular areas
        weights = W(neighbours)
        return G_Local(y, weights, transform="B", star=True, permutations=0)


def _inputs(seed: int) -> tuple[list[int], np.ndarray]:
    """Varied areas and counts: compact or ragged (holes, islands); sparse, dense, clustered, planted."""
    rng = np.random.default_rng(seed)
    cells = hexagon_area(CENTER_LAT, CENTER_LON, RES, int(rng.integers(3, 10)))
    if seed % 2:
        cells = [c for c in cells if rng.random() < 0.7]
    kind = seed % 4
    n = len(cells)
    if kind == 0:
        y = rng.poisson(0.4, n)
    elif kind == 1:
        y = rng.poisson(30, n)
    elif kind == 2:
        y = rng.negative_binomial(1, 0.2, n)  # overdispersed, like real clue counts
    else:
        y = rng.poisson(2, n)
        y[rng.integers(0, n, 3)] += 40
    y[0] += 1  # never all zero
    return cells, y


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("seed", range(8))
def test_gi_star_agrees_with_esda(seed: int, k: int) -> None:
    cells, y = _inputs(seed)
    ours = hs.gi_star(y, hs.kring_weights(cells, k))
    ref = esda_gi_star(cells, y, k)
    np.testing.assert_allclose(ours.g, ref.Gs, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(ours.expected, ref.EGs, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(ours.variance, ref.VGs, rtol=1e-6, atol=1e-15)
    np.testing.assert_allclose(ours.z, ref.Zs, rtol=1e-6, atol=1e-6)
    # esda's p_norm is one tail of |z|; ours is two-sided.
    np.testing.assert_allclose(ours.p, 2 * ref.p_norm, rtol=1e-6, atol=1e-6)
    assert np.abs(ours.z).max() > 1  # the inputs are not all trivially null


def test_weights_are_k_rings_within_the_area_including_the_cell() -> None:
    cells = hexagon_area(CENTER_LAT, CENTER_LON, RES, 3)  # 37 cells
    for k, interior in [(1, 7), (2, 19)]:
        w = hs.kring_weights(cells, k)
        pairs = set(zip(w.rows.tolist(), w.cols.tolist(), strict=True))
        expect = {(i, cells.index(d)) for i, c in enumerate(cells) for d in h3.grid_disk(c, k) if d in set(cells)}
        assert pairs == expect
        assert all((i, i) in pairs for i in range(len(cells)))
        centre = cells.index(h3.latlng_to_cell(CENTER_LAT, CENTER_LON, RES))
        assert w.cardinality[centre] == interior
        assert w.cardinality.min() < interior  # edge cells lose the neighbours outside the area


def test_cell_order_does_not_matter() -> None:
    cells, y = _inputs(3)
    perm = np.random.default_rng(0).permutation(len(cells))
    shuffled = [cells[i] for i in perm]
    a = hs.gi_star(y, hs.kring_weights(cells, 2))
    b = hs.gi_star(y[perm], hs.kring_weights(shuffled, 2))
    np.testing.assert_allclose(a.z[perm], b.z)


@pytest.mark.parametrize("y", [np.zeros(37), np.full(37, 4.0)])
def test_undefined_statistic_reports_no_evidence(y: np.ndarray) -> None:
    cells = hexagon_area(CENTER_LAT, CENTER_LON, RES, 3)
    result = hs.gi_star(y, hs.kring_weights(cells, 1))
    assert np.all(result.z == 0) and np.all(result.p == 1)
    hot, _ = hs.hot_cells(y, hs.kring_weights(cells, 1), result, alpha=0.01, correction="none")
    assert not hot.any()


def test_neighbourhood_spanning_the_area_is_not_evidence() -> None:
    cells = hexagon_area(CENTER_LAT, CENTER_LON, RES, 1)  # 7 cells, all within 2 steps of each other
    y = np.array([9, 0, 0, 1, 0, 0, 0])
    result = hs.gi_star(y, hs.kring_weights(cells, 2))
    assert np.all(result.z == 0) and np.all(result.p == 1)


def test_adjusted_p_values() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.2, 0.001])
    np.testing.assert_allclose(hs.adjust_p(p, "bonferroni"), [0.05, 0.2, 0.15, 1.0, 0.005])
    # Benjamini–Hochberg by hand: sorted 0.001 0.01 0.03 0.04 0.2 → ×5/rank, then running minimum from the top.
    np.testing.assert_allclose(hs.adjust_p(p, "fdr"), [0.025, 0.05, 0.05, 0.2, 0.005])
    np.testing.assert_allclose(hs.adjust_p(p, "none"), p)


# ---------------------------------------------------------------------------------------------
# Planted hotspots (ground truth) and uniform controls

PLANTED = [
    PlantedHotspot(lat=CENTER_LAT + 0.006, lon=CENTER_LON - 0.008, radius_m=250, clues=40),
    PlantedHotspot(lat=CENTER_LAT - 0.010, lon=CENTER_LON + 0.004, radius_m=400, clues=60),
    PlantedHotspot(lat=CENTER_LAT + 0.001, lon=CENTER_LON + 0.012, radius_m=150, clues=25),
]


# k = 2 looks at ~700 m neighbourhoods of 19 cells: it finds clusters of that scale, while a tight
# 150 m spike of 25 clues is diluted below significance there (k = 1 finds it). Pick k to the scale sought.
@pytest.mark.parametrize(("k", "found"), [(1, (0, 1, 2)), (2, (0, 1))])
@pytest.mark.parametrize("seed", range(5))
def test_planted_hotspots_are_found_and_nothing_else(seed: int, k: int, found: tuple[int, ...]) -> None:
    # About one background clue per cell over four weeks, and three planted clusters.
    scenario = generate(cells=AREA, resolution=RES, start=START, end=END, background=400, hotspots=PLANTED, seed=seed)
    y = scenario.counts()
    weights = hs.kring_weights(scenario.cells, k)
    hot, _ = hs.hot_cells(y, weights, hs.gi_star(y, weights), alpha=0.01, correction="fdr")
    hot_set = {scenario.cells[i] for i in np.flatnonzero(hot)}
    for i in found:
        spot = PLANTED[i]
        planted = scenario.planted_cells(i)
        centre = h3.latlng_to_cell(spot.lat, spot.lon, RES)
        assert centre in hot_set, f"hotspot {i} missed"
        assert planted & hot_set
    # A hot cell is a planted cell or within k steps of one (its neighbourhood holds the cluster).
    near = {d for i in range(len(PLANTED)) for c in scenario.planted_cells(i) for d in h3.grid_disk(c, k)}
    assert hot_set <= near, "a cell far from every planted hotspot was reported hot"


def _uniform_runs(
    *, runs: int, per_cell: float, k: int, correction: hs.Correction, alpha: float = 0.01
) -> tuple[int, int, float]:
    """Seeded uniform controls: (runs with a hot cell, runs with a cell passing the normal test alone,
    share of cells with raw p < 0.05)."""
    weights = hs.kring_weights(AREA, k)
    n = len(AREA)
    with_hot = normal_only = 0
    raw = 0.0
    rng = np.random.default_rng(int(per_cell * 1000) + k)
    for _ in range(runs):
        # Complete spatial randomness over the cells: each clue in any cell with equal chance.
        y = rng.multinomial(round(per_cell * n), np.full(n, 1 / n))
        result = hs.gi_star(y, weights)
        hot, _ = hs.hot_cells(y, weights, result, alpha=alpha, correction=correction)
        with_hot += bool(hot.any())
        normal_only += bool(((result.z > 0) & (hs.adjust_p(result.p, correction) < alpha)).any())
        raw += float((result.p < 0.05).mean())
    return with_hot, normal_only, raw / runs


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("per_cell", [0.3, 1.0, 5.0])
@pytest.mark.parametrize("correction", ["fdr", "bonferroni"])
def test_uniform_controls_stay_at_alpha(per_cell: float, k: int, correction: hs.Correction) -> None:
    with_hot, _, _ = _uniform_runs(runs=200, per_cell=per_cell, k=k, correction=correction)
    assert with_hot <= 6, f"{with_hot} of 200 uniform controls showed a hot cell at alpha 0.01"


def test_uniform_control_of_the_planted_scenario_has_no_hot_cell() -> None:
    for seed in range(5):
        scenario = generate(cells=AREA, resolution=RES, start=START, end=END, background=525, seed=seed)
        y = scenario.counts()
        weights = hs.kring_weights(scenario.cells, 1)
        result = hs.gi_star(y, weights)
        hot, _ = hs.hot_cells(y, weights, result, alpha=0.01, correction="fdr")
        assert not hot.any(), f"seed {seed}"


def test_raw_p_is_calibrated_and_safeguards_are_needed() -> None:
    _, _, raw_rate = _uniform_runs(runs=200, per_cell=5.0, k=1, correction="none")
    assert 0.035 <= raw_rate <= 0.065
    with_hot, _, _ = _uniform_runs(runs=200, per_cell=5.0, k=1, correction="none")
    assert with_hot > 100, "without a correction most uniform controls show a hot cell"
    _, normal_only, _ = _uniform_runs(runs=200, per_cell=0.3, k=1, correction="fdr")
    assert normal_only > 12, "at sparse counts the normal test alone raises false alarms beyond alpha"


# ---------------------------------------------------------------------------------------------
# Kernel density


def test_quartic_density_matches_a_direct_sum() -> None:
    cells = hexagon_area(CENTER_LAT, CENTER_LON, RES, 6)
    y = np.random.default_rng(5).poisson(3, len(cells))
    h = 700.0
    density = hs.quartic_density(cells, y, resolution=RES, bandwidth_m=h)
    centres = [h3.cell_to_latlng(c) for c in cells]
    for i in range(0, len(cells), 9):
        total = 0.0
        for j, other in enumerate(centres):
            d = h3.great_circle_distance(centres[i], other, "m")
            if d < h:
                total += y[j] * 3 / (math.pi * h * h) * (1 - d * d / (h * h)) ** 2
        assert density[i] == pytest.approx(total * 1e6, rel=5e-3)


def test_density_holds_the_clues() -> None:
    cells = hexagon_area(CENTER_LAT, CENTER_LON, RES, 10)
    y = np.zeros(len(cells))
    y[cells.index(h3.latlng_to_cell(CENTER_LAT, CENTER_LON, RES))] = 50
    density = hs.quartic_density(cells, y, resolution=RES, bandwidth_m=900)
    km2 = np.array([h3.cell_area(c, "km^2") for c in cells])
    assert (density * km2).sum() == pytest.approx(50, rel=0.03)
    assert density.argmax() == int(np.flatnonzero(y)[0])


# ---------------------------------------------------------------------------------------------
# Key periods


@pytest.mark.parametrize(
    ("x", "n", "p"),
    [
        (0, 10, 0.1),
        (3, 10, 0.1),
        (1, 500, 1 / 168),
        (12, 500, 1 / 168),
        (40, 100_000, 1 / 168),
        (700, 100_000, 1 / 168),
        (595, 100_000, 1 / 168),
        (9, 9, 0.5),
        (10, 9, 0.5),
    ],
)
def test_binomial_tail_is_exact(x: int, n: int, p: float) -> None:
    assert hs.binomial_upper_tail(x, n, p) == pytest.approx(scipy_stats.binom.sf(x - 1, n, p), rel=1e-9, abs=1e-300)


def test_hour_of_week_in_local_time() -> None:
    monday = datetime(2026, 11, 30, 0, 30, tzinfo=SHANGHAI)
    stamps = [monday, monday + timedelta(hours=23), monday - timedelta(hours=1), monday + timedelta(days=4, hours=22)]
    got = hs.hour_of_week([t.timestamp() for t in stamps], SHANGHAI)
    assert got.tolist() == [0, 23, 167, 4 * 24 + 22]
    # The same instant in UTC is eight hours earlier on the clock, the same hour of the week here.
    assert hs.hour_of_week([monday.astimezone(UTC).timestamp()], SHANGHAI).tolist() == [0]


def test_exposure_counts_each_hour_of_the_week_in_the_window() -> None:
    exposure = hs.week_exposure(START, START + timedelta(days=10), SHANGHAI)
    assert exposure.sum() == 240
    assert set(exposure.tolist()) == {1.0, 2.0}
    assert exposure[0] == 2 and exposure[3 * 24] == 1  # Monday twice, Thursday once


def test_week_runs_wrap_around_sunday_midnight() -> None:
    key = np.zeros(168, dtype=bool)
    key[[166, 167, 0, 30, 31]] = True
    assert hs.week_runs(key) == [(30, 2), (166, 3)]
    assert hs.describe_run(166, 3) == "Sun 22:00–01:00"
    assert hs.describe_run(30, 2) == "Tue 06:00–08:00"


FRIDAY_NIGHT = (4 * 24 + 22, 4 * 24 + 23, 5 * 24 + 0)  # Fri 22:00 – Sat 01:00


@pytest.mark.parametrize("seed", range(5))
def test_planted_time_concentration_is_found(seed: int) -> None:
    spot = PlantedHotspot(lat=CENTER_LAT, lon=CENTER_LON, radius_m=300, clues=30, hours_of_week=FRIDAY_NIGHT)
    scenario = generate(cells=AREA, resolution=RES, start=START, end=END, background=0, hotspots=[spot], seed=seed)
    # Clues of the hot area: the planted ones plus as many again at any time.
    extra = generate(
        cells=sorted(scenario.planted_cells(0)), resolution=RES, start=START, end=END, background=30, seed=seed + 50
    )
    when = [c.observed_at.timestamp() for c in scenario.clues + extra.clues]
    exposure = hs.week_exposure(START, END, SHANGHAI)
    periods = hs.key_periods(hs.hour_of_week(when, SHANGHAI), exposure, alpha=0.01, correction="fdr")
    key = set(np.flatnonzero(periods.key).tolist())
    assert key <= set(FRIDAY_NIGHT)
    assert len(key) >= 2
    assert periods.counts.sum() == 60
    assert periods.expected.sum() == pytest.approx(60)


def test_uniform_times_give_no_key_period() -> None:
    rng = np.random.default_rng(11)
    exposure = hs.week_exposure(START, END, SHANGHAI)
    found = 0
    for _ in range(200):
        when = rng.uniform(START.timestamp(), END.timestamp(), 300)
        periods = hs.key_periods(hs.hour_of_week(when, SHANGHAI), exposure, alpha=0.01, correction="fdr")
        found += bool(periods.key.any())
    assert found <= 6
