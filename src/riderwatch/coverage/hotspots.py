"""Hotspot statistics over H3 cells: Getis-Ord Gi*, kernel density and key periods of the week.

Plain functions over numpy arrays, with no database and no web framework, so the numbers can be
checked against PySAL's esda (tests/coverage/test_hotspots_stats.py) and timed (bench/hotspots.py).

Gi* follows esda's `G_Local(y, w, transform="B", star=True)` exactly: binary weights with the cell
itself included, moments under the normality assumption, over all n cells of the area (zeros too):

    G*_i   = Σ_j w_ij y_j / Σ_j y_j
    E[G*_i] = W_i / n                                  (W_i = Σ_j w_ij, the neighbourhood size)
    V[G*_i] = W_i (n − W_i) / (n − 1) / n² · s² / ȳ²  (ȳ, s²: mean and population variance of y)
    z_i    = (G*_i − E[G*_i]) / √V[G*_i]

esda's `p_norm` is the one-tailed `sf(|z|)`; we return the two-sided p-value 2·sf(|z|) = erfc(|z|/√2),
the convention of ArcGIS's Hot Spot Analysis. A cell is hot when z > 0 and its p-value, adjusted for
the number of cells tested, is below alpha, and an exact count test agrees (see `hot_cells`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from h3.api import basic_int as h3

from riderwatch.geo.coords import EARTH_RADIUS_M

Correction = Literal["fdr", "bonferroni", "none"]
CORRECTIONS: tuple[Correction, ...] = ("fdr", "bonferroni", "none")
HOURS_PER_WEEK = 168
# Clue times are bucketed in quarter hours before their local hour of week is looked up: every UTC
# offset in use is a multiple of 15 minutes, so this is exact, and it costs one zone lookup per bucket.
SLOT_SECONDS = 900
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

_erfc = np.vectorize(math.erfc, otypes=[np.float64])


@dataclass(frozen=True)
class Weights:
    """Binary spatial weights as (row, column) index pairs; every cell is its own neighbour."""

    n: int
    rows: IntArray
    cols: IntArray

    @property
    def cardinality(self) -> IntArray:
        return np.bincount(self.rows, minlength=self.n).astype(np.int64)

    def lag(self, y: FloatArray) -> FloatArray:
        """Σ_j w_ij y_j for every i."""
        return np.bincount(self.rows, weights=y[self.cols], minlength=self.n).astype(np.float64)


@dataclass(frozen=True)
class GiStar:
    g: FloatArray  # G*_i
    expected: FloatArray  # E[G*_i]
    variance: FloatArray  # V[G*_i]
    z: FloatArray
    p: FloatArray  # two-sided, from the normal distribution


def kring_weights(cells: Sequence[int] | IntArray, k: int) -> Weights:
    """Binary weights joining each cell to the cells of the list within k grid steps (itself included).

    Neighbours outside the list are left out: the analysis covers the cells of the area only.
    """
    if k < 0:
        raise ValueError("k must be at least 0")
    ids = np.asarray(cells, dtype=np.int64)
    n = len(ids)
    order = np.argsort(ids)
    sorted_ids = ids[order]
    disks = [h3.grid_disk(int(c), k) for c in ids.tolist()]
    sizes = np.fromiter((len(d) for d in disks), dtype=np.int64, count=n)
    flat = np.fromiter((c for d in disks for c in d), dtype=np.int64, count=int(sizes.sum()))
    rows = np.repeat(np.arange(n, dtype=np.int64), sizes)
    pos = np.searchsorted(sorted_ids, flat)
    pos[pos == n] = 0
    found = sorted_ids[pos] == flat
    return Weights(n=n, rows=rows[found], cols=order[pos[found]].astype(np.int64))


def normal_two_sided_p(z: FloatArray) -> FloatArray:
    """P(|Z| ≥ |z|) for a standard normal Z, accurate far into the tails (erfc, not 1 − cdf)."""
    return _erfc(np.abs(z) / math.sqrt(2.0)) if len(z) else np.zeros(0)


def gi_star(y: npt.ArrayLike, weights: Weights) -> GiStar:
    """Getis-Ord Gi* with the normality moments (as esda's G_Local(transform="B", star=True)).

    Where the statistic is undefined (no clue at all, every cell equal, one cell, or a neighbourhood
    spanning the whole area) z is 0 and p is 1: there is no evidence of clustering to report.
    """
    values = np.asarray(y, dtype=np.float64).ravel()
    n = weights.n
    if len(values) != n:
        raise ValueError("y must hold one value per cell")
    card = weights.cardinality.astype(np.float64)
    total = float(values.sum())
    expected = card / n if n else np.zeros(0)
    if n < 2 or total == 0.0:
        zeros = np.zeros(n)
        return GiStar(g=zeros, expected=expected, variance=zeros.copy(), z=zeros.copy(), p=np.ones(n))
    g = weights.lag(values) / total
    mean = total / n
    var_y = float((values**2).sum()) / n - mean**2
    variance = card * (n - card) / (n - 1) / n**2 * (var_y / mean**2)
    defined = variance > 0
    z = np.zeros(n)
    z[defined] = (g[defined] - expected[defined]) / np.sqrt(variance[defined])
    p = np.ones(n)
    p[defined] = normal_two_sided_p(z[defined])
    return GiStar(g=g, expected=expected, variance=variance, z=z, p=p)


def adjust_p(p: FloatArray, correction: Correction) -> FloatArray:
    """p-values adjusted for testing them all at once: Benjamini–Hochberg ("fdr"), Bonferroni, or none."""
    m = len(p)
    if correction == "none" or m == 0:
        return p.copy()
    if correction == "bonferroni":
        return np.minimum(p * m, 1.0)
    order = np.argsort(p)
    scaled = p[order] * m / np.arange(1, m + 1)
    # The adjusted value of the i-th smallest p is the smallest scaled value at or after it.
    monotone = np.minimum.accumulate(scaled[::-1])[::-1]
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(monotone, 1.0)
    return adjusted


def hot_cells(
    values: npt.ArrayLike, weights: Weights, result: GiStar, *, alpha: float, correction: Correction
) -> tuple[BoolArray, FloatArray]:
    """Cells clustering high, and the exact p-value of each candidate's neighbourhood count.

    A cell is hot when z > 0, its two-sided normal p-value (adjusted for the cells tested) is below
    alpha, and so is the exact p-value of its neighbourhood count under complete spatial randomness:
    with N clues spread evenly at random over the n cells, the count within a neighbourhood of W_i
    cells is Binomial(N, W_i / n). The normal approximation behind Gi* is too kind to sparse counts
    (a uniform control with one clue in three cells shows "hot" cells in about one run in six at
    alpha 0.01); the exact check keeps the false alarms at alpha. It is computed only for the cells
    the normal test already retains (others get 1), which makes its correction conservative.
    """
    counts = np.asarray(values, dtype=np.float64).ravel()
    candidate = (result.z > 0) & (adjust_p(result.p, correction) < alpha)
    exact = np.ones(weights.n)
    if candidate.any():
        total = round(float(counts.sum()))
        within = weights.lag(counts)
        card = weights.cardinality
        for i in np.flatnonzero(candidate).tolist():
            exact[i] = binomial_upper_tail(round(float(within[i])), total, float(card[i]) / weights.n)
    return candidate & (adjust_p(exact, correction) < alpha), exact


def cell_index(cells: Sequence[int] | IntArray, clue_cells: IntArray) -> IntArray:
    """The position of each clue's cell in `cells`, or −1 for a cell outside the list."""
    ids = np.asarray(cells, dtype=np.int64)
    order = np.argsort(ids)
    sorted_ids = ids[order]
    pos = np.searchsorted(sorted_ids, clue_cells)
    pos[pos == len(ids)] = 0
    found = sorted_ids[pos] == clue_cells if len(ids) else np.zeros(len(clue_cells), dtype=bool)
    out = np.full(len(clue_cells), -1, dtype=np.int64)
    out[found] = order[pos[found]]
    return out


def latlng_cells(lat: FloatArray, lon: FloatArray, resolution: int) -> IntArray:
    """The H3 cell of each point."""
    return np.fromiter(
        (h3.latlng_to_cell(a, b, resolution) for a, b in zip(lat.tolist(), lon.tolist(), strict=True)),
        dtype=np.int64,
        count=len(lat),
    )


def cell_centres_m(cells: Sequence[int] | IntArray) -> FloatArray:
    """Cell centres as (x, y) metres on a plane tangent at their mean (good to 0.1 % across a city)."""
    ids = np.asarray(cells, dtype=np.int64)
    latlng = np.array([h3.cell_to_latlng(int(c)) for c in ids.tolist()], dtype=np.float64).reshape(-1, 2)
    lat0 = math.radians(float(latlng[:, 0].mean())) if len(latlng) else 0.0
    x = np.radians(latlng[:, 1]) * EARTH_RADIUS_M * math.cos(lat0)
    y = np.radians(latlng[:, 0]) * EARTH_RADIUS_M
    return np.column_stack([x, y])


def kde_ring(resolution: int, bandwidth_m: float) -> int:
    """Grid steps that surely reach every cell centre within the bandwidth.

    A cell k steps away is at least k·√3/2 centre spacings off (the middle of a ring's side); the
    spacing is √3 edge lengths, and edges at a resolution vary, so allow a quarter less.
    """
    spacing = math.sqrt(3) * float(h3.average_hexagon_edge_length(resolution, "m")) * 0.75
    return max(1, math.ceil(bandwidth_m / (spacing * math.sqrt(3) / 2)))


def quartic_density(
    cells: Sequence[int] | IntArray, counts: npt.ArrayLike, *, resolution: int, bandwidth_m: float
) -> FloatArray:
    """Kernel density (clues per km²) at each cell centre: the quartic kernel over the cells' counts.

    K(d) = 3 / (π h²) · (1 − d²/h²)² for d < h, which integrates to one, so the densities of the
    cells sum (times cell area) to about the number of clues. The quartic kernel has finite reach,
    so only the cells within h of a centre contribute.
    """
    ids = np.asarray(cells, dtype=np.int64)
    values = np.asarray(counts, dtype=np.float64)
    weights = kring_weights(ids, kde_ring(resolution, bandwidth_m))
    xy = cell_centres_m(ids)
    d2 = ((xy[weights.rows] - xy[weights.cols]) ** 2).sum(axis=1)
    h2 = bandwidth_m**2
    kernel = np.where(d2 < h2, 3.0 / (math.pi * h2) * (1.0 - d2 / h2) ** 2, 0.0)
    per_m2 = np.bincount(weights.rows, weights=kernel * values[weights.cols], minlength=len(ids))
    return (per_m2 * 1e6).astype(np.float64)


def kde_pairs(cell_count: int, resolution: int, bandwidth_m: float) -> int:
    """How many cell pairs the density would weigh (callers bound the work with it)."""
    ring = kde_ring(resolution, bandwidth_m)
    return cell_count * (3 * ring * (ring + 1) + 1)


# ---------------------------------------------------------------------------------------------
# Key periods: hours of the week when clues concentrate


def hour_of_week(epoch_seconds: npt.ArrayLike, tz: ZoneInfo) -> IntArray:
    """Local hour of the week (0 = Monday 00:00–01:00) of each instant."""
    secs = np.asarray(epoch_seconds, dtype=np.float64)
    slots = np.floor(secs / SLOT_SECONDS).astype(np.int64)
    unique, inverse = np.unique(slots, return_inverse=True)
    local = np.fromiter((_slot_hour_of_week(int(s), tz) for s in unique.tolist()), dtype=np.int64, count=len(unique))
    return local[inverse.ravel()] if len(secs) else np.zeros(0, dtype=np.int64)


def _slot_hour_of_week(slot: int, tz: ZoneInfo) -> int:
    t = datetime.fromtimestamp(slot * SLOT_SECONDS, UTC).astimezone(tz)
    return t.weekday() * 24 + t.hour


def week_exposure(start: datetime, end: datetime, tz: ZoneInfo) -> FloatArray:
    """How many hours of [start, end) fall on each local hour of the week (in quarter hours)."""
    first = math.ceil(start.timestamp() / SLOT_SECONDS)
    last = math.floor(end.timestamp() / SLOT_SECONDS)
    slots = np.arange(first, last, dtype=np.int64) * SLOT_SECONDS
    how = hour_of_week(slots, tz)
    return np.bincount(how, minlength=HOURS_PER_WEEK).astype(np.float64) / (3600 / SLOT_SECONDS)


def binomial_upper_tail(x: int, n: int, p: float) -> float:
    """P(X ≥ x) for X ~ Binomial(n, p), exactly (summing point probabilities, no normal approximation)."""
    if x <= 0:
        return 1.0
    if x > n or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    mode = math.floor((n + 1) * p)
    log_p, log_q = math.log(p), math.log1p(-p)

    def pmf(k: int) -> float:
        return math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_p + (n - k) * log_q)

    ratio = p / (1.0 - p)
    if x > mode:
        # Terms fall from x upwards: sum until they no longer change the total.
        term = total = pmf(x)
        k = x
        while k < n and term > total * 1e-17:
            term *= (n - k) / (k + 1) * ratio
            total += term
            k += 1
        return min(total, 1.0)
    # Below the mode the upper tail is large: one minus the lower tail, whose terms fall downwards.
    k = x - 1
    term = below = pmf(k)
    while k > 0 and term > below * 1e-17:
        term *= k / (n - k + 1) / ratio
        below += term
        k -= 1
    return max(0.0, 1.0 - below)


@dataclass(frozen=True)
class KeyPeriods:
    counts: IntArray  # clues per local hour of the week
    expected: FloatArray  # what an even spread over the window's hours would give
    p: FloatArray  # one-sided: P(at least this many | even spread)
    key: BoolArray  # significantly above the even spread, after the correction


def key_periods(
    hours: IntArray, exposure: FloatArray, *, alpha: float, correction: Correction, min_count: int = 3
) -> KeyPeriods:
    """The hours of the week holding significantly more clues than an even spread over the window.

    Under the null each clue falls on an hour of the week with probability proportional to that
    hour's share of the window (a window of ten days holds some hours of the week twice), so each
    hour's count is binomial; the test is one-sided (only concentrations matter). An hour needs at
    least `min_count` clues besides: with only a handful of clues in a week-long window, one or two
    in the same hour prove nothing a dispatcher could plan for.
    """
    counts = np.bincount(hours, minlength=HOURS_PER_WEEK).astype(np.int64)[:HOURS_PER_WEEK]
    total_exposure = float(exposure.sum())
    n = int(counts.sum())
    share = exposure / total_exposure if total_exposure > 0 else np.zeros(HOURS_PER_WEEK)
    expected = share * n
    p = np.array(
        [binomial_upper_tail(int(c), n, float(s)) if s > 0 else 1.0 for c, s in zip(counts, share, strict=True)]
    )
    tested = share > 0
    adjusted = np.ones(HOURS_PER_WEEK)
    adjusted[tested] = adjust_p(p[tested], correction)
    key = tested & (counts >= min_count) & (counts > expected) & (adjusted < alpha)
    return KeyPeriods(counts=counts, expected=expected, p=p, key=key)


def week_runs(key: BoolArray) -> list[tuple[int, int]]:
    """Runs of consecutive key hours as (first hour of week, length), wrapping from Sunday to Monday."""
    hours = [h for h in range(HOURS_PER_WEEK) if key[h]]
    if not hours:
        return []
    if len(hours) == HOURS_PER_WEEK:
        return [(0, HOURS_PER_WEEK)]
    # Start the walk just after a quiet hour, so a run across Sunday midnight stays whole.
    quiet = next(h for h in range(HOURS_PER_WEEK) if not key[h])
    runs: list[tuple[int, int]] = []
    for step in range(1, HOURS_PER_WEEK + 1):
        h = (quiet + step) % HOURS_PER_WEEK
        if not key[h]:
            continue
        if runs and (runs[-1][0] + runs[-1][1]) % HOURS_PER_WEEK == h:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((h, 1))
    return sorted(runs)


def describe_run(start: int, length: int) -> str:
    """'Fri 22:00–02:00' for a run of key hours."""
    end = (start + length) % HOURS_PER_WEEK
    first = f"{DAY_NAMES[start // 24]} {start % 24:02d}:00"
    last = f"{end % 24:02d}:00" if length < 24 else f"{DAY_NAMES[end // 24]} {end % 24:02d}:00"
    return f"{first}–{last}"


def utc_hours_in(start_hour: int, end_hour: int, key_hours: BoolArray, tz: ZoneInfo) -> IntArray:
    """The UTC hours (epoch hour numbers) of [start_hour, end_hour) whose local start is a key hour of the week."""
    hours = np.arange(start_hour, end_hour, dtype=np.int64)
    how = hour_of_week(hours * 3600, tz)
    return hours[key_hours[how]] if len(hours) else hours
