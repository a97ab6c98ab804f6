"""Getis-Ord Gi* on 100,000 clues: RiderWatch's numpy code against PySAL's esda on the same input.

Clues are drawn over a district of H3 cells (a background everywhere plus planted clusters), put
in cells and counted. Both sides get the same counts and the same binary k-ring weights (the cell
included); esda's weights object is built from the same neighbour lists, and esda runs without
permutations (its analytical z and p, the ones RiderWatch reproduces). The figures: time to put the
clues in cells, to build the weights, to compute Gi*, and the largest differences in z and p.

Then the whole query as the API runs it (`query_hotspots`: SQL on the bounding box, cells, Gi*,
density, key periods, GeoJSON) on SQLite and, with --pg-url, PostgreSQL, over the same clues.

    python -m bench.hotspots [--clues 100000] [--k 1] [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from esda.getisord import G_Local
from h3.api import basic_int as h3
from libpysal.weights import W
from rich.console import Console
from rich.table import Table
from sqlalchemy import insert

from bench.clue_submissions import fresh_pg_database
from riderwatch.coverage import hotspots as hs
from riderwatch.coverage import hotspots_service
from riderwatch.coverage.service import CoverageLimits
from riderwatch.db import make_engine, make_session_factory
from riderwatch.migrate import upgrade
from riderwatch.models import Clue

CENTER_LAT, CENTER_LON = 25.4300, 119.0100
RESOLUTION = 9
RINGS = 40  # 4,921 cells of resolution 9: about 520 km², a large urban district
START = datetime(2026, 9, 7, tzinfo=UTC)
WINDOW = timedelta(days=90)
T = TypeVar("T")


def timed(fn: Callable[[], T], repeat: int) -> tuple[T, float]:
    """The result and the best wall time of `repeat` runs, in seconds."""
    best = math.inf
    result: Any = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return result, best


def district_cells() -> list[int]:
    return sorted(h3.grid_disk(h3.latlng_to_cell(CENTER_LAT, CENTER_LON, RESOLUTION), RINGS))


def draw_clues(cells: list[int], n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Latitudes, longitudes and epoch seconds of n clues inside the cells: 70 % spread evenly, 30 % in
    twenty planted clusters (points that land outside the district are drawn again)."""
    rng = np.random.default_rng(seed)
    centres = np.array([h3.cell_to_latlng(c) for c in cells])
    lat0, lon0 = centres.min(axis=0)
    lat1, lon1 = centres.max(axis=0)
    spots = centres[rng.choice(len(cells), 20, replace=False)]
    spread = 0.003  # degrees: a few hundred metres
    lats: list[np.ndarray] = []
    lons: list[np.ndarray] = []
    for share in (0.7, 0.3):
        want = round(n * 0.7) if share > 0.5 else n - round(n * 0.7)
        got = 0
        while got < want:
            m = 2 * (want - got) + 64
            if share > 0.5:
                lat, lon = rng.uniform(lat0, lat1, m), rng.uniform(lon0, lon1, m)
            else:
                which = rng.integers(0, 20, m)
                lat = spots[which, 0] + rng.normal(0, spread, m)
                lon = spots[which, 1] + rng.normal(0, spread, m)
            inside = hs.cell_index(cells, hs.latlng_cells(lat, lon, RESOLUTION)) >= 0
            take = min(int(inside.sum()), want - got)
            lats.append(lat[inside][:take])
            lons.append(lon[inside][:take])
            got += take
    when = START.timestamp() + rng.uniform(0, WINDOW.total_seconds(), n)
    return np.concatenate(lats), np.concatenate(lons), when


def esda_weights(cells: list[int], weights: hs.Weights) -> W:
    """A libpysal W with the same neighbours (G_Local(star=True) puts the cell itself back with weight 1)."""
    neighbours: dict[int, list[int]] = {i: [] for i in range(len(cells))}
    for i, j in zip(weights.rows.tolist(), weights.cols.tolist(), strict=True):
        if i != j:
            neighbours[i].append(j)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return W(neighbours)


def statistics_bench(n: int, k: int, repeat: int, console: Console) -> dict[str, float]:
    cells = district_cells()
    lat, lon, _when = draw_clues(cells, n, seed=1)

    def count() -> np.ndarray:
        where = hs.cell_index(cells, hs.latlng_cells(lat, lon, RESOLUTION))
        return np.bincount(where[where >= 0], minlength=len(cells))

    counts, t_count = timed(count, repeat)
    weights, t_weights = timed(lambda: hs.kring_weights(cells, k), repeat)
    ours, t_gi = timed(lambda: hs.gi_star(counts, weights), repeat)
    _, t_hot = timed(lambda: hs.hot_cells(counts, weights, ours, alpha=0.01, correction="fdr"), repeat)
    w, t_w = timed(lambda: esda_weights(cells, weights), repeat)
    ref, t_esda = timed(lambda: G_Local(counts, w, transform="B", star=True, permutations=0), repeat)

    dz = float(np.abs(ours.z - ref.Zs).max())
    dp = float(np.abs(ours.p - 2 * ref.p_norm).max())
    table = Table(title=f"Gi* on {int(counts.sum()):,} clues over {len(cells):,} H3 cells (res {RESOLUTION}, k = {k})")
    table.add_column("step")
    table.add_column("RiderWatch (ms)", justify="right")
    table.add_column("esda (ms)", justify="right")
    table.add_row("clues → cells, counts", f"{t_count * 1e3:.1f}", "—")
    table.add_row("weights (k-rings)", f"{t_weights * 1e3:.1f}", f"{t_w * 1e3:.1f} (W from the same lists)")
    table.add_row("Gi* (z, p)", f"{t_gi * 1e3:.2f}", f"{t_esda * 1e3:.2f}")
    table.add_row("hot cells (FDR + exact check)", f"{t_hot * 1e3:.2f}", "—")
    ours_total = t_weights + t_gi
    esda_total = t_w + t_esda
    table.add_row("weights + Gi*", f"{ours_total * 1e3:.1f}", f"{esda_total * 1e3:.1f}")
    console.print(table)
    console.print(
        f"Gi* alone: esda / RiderWatch = {t_esda / t_gi:.1f}×; weights + Gi*: {esda_total / ours_total:.1f}×. "
        f"Largest |Δz| = {dz:.2e}, |Δp| = {dp:.2e} (p two-sided = 2 × esda p_norm). "
        f"Hot cells: {int(hs.hot_cells(counts, weights, ours, alpha=0.01, correction='fdr')[0].sum())}."
    )
    if dz > 1e-6 or dp > 1e-6:
        raise SystemExit("RiderWatch's Gi* disagrees with esda beyond 1e-6")
    return {"ours_ms": t_gi * 1e3, "esda_ms": t_esda * 1e3}


def load_clues(url: str, n: int) -> None:
    upgrade(url)
    engine = make_engine(url)
    try:
        lat, lon, when = draw_clues(district_cells(), n, seed=1)
        now = datetime.now(UTC)
        rows = []
        for a, b, t in zip(lat.tolist(), lon.tolist(), when.tolist(), strict=True):
            at = datetime.fromtimestamp(t, UTC)
            rows.append(
                {
                    "category_code": "theft",
                    "lat": a,
                    "lon": b,
                    "observed_at": at,
                    "reported_at": at,
                    "updated_at": now,
                    "deadline_at": at + timedelta(hours=72),
                    "status": "closed",
                    "description": "",
                }
            )
        with engine.begin() as conn:
            for i in range(0, len(rows), 10_000):
                conn.execute(insert(Clue), rows[i : i + 10_000])
    finally:
        engine.dispose()


def query_bench(backend: str, url: str, n: int, k: int, repeat: int) -> tuple[str, float, int, int]:
    load_clues(url, n)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    cells = district_cells()
    area = {"type": "Polygon", "coordinates": [[list(p) for p in h3.cells_to_geo(cells)["coordinates"][0]]]}
    limits = CoverageLimits(
        resolutions=(RESOLUTION,), max_cells=50_000, max_window=timedelta(days=366), timezone="Asia/Shanghai"
    )
    options = hotspots_service.HotspotOptions(k=k)

    def run() -> dict[str, Any]:
        with factory() as session:
            return hotspots_service.query_hotspots(
                session,
                area=area,
                start=START,
                end=START + WINDOW,
                resolution=RESOLUTION,
                options=options,
                limits=limits,
            )

    try:
        data, elapsed = timed(run, repeat)
    finally:
        engine.dispose()
    return backend, elapsed, data["summary"]["clues"], len(data["summary"]["hot_cells"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clues", type=int, default=100_000)
    parser.add_argument("--k", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing; the best is shown")
    parser.add_argument("--pg-url", help="a PostgreSQL server URL; the query runs on riderwatch_bench_hotspots there")
    parser.add_argument("--no-query", action="store_true", help="only the statistics, no database")
    args = parser.parse_args(argv)
    console = Console()
    statistics_bench(args.clues, args.k, args.repeat, console)
    if args.no_query:
        return 0
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(query_bench("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}", args.clues, args.k, args.repeat))
    if args.pg_url:
        with fresh_pg_database(args.pg_url, "riderwatch_bench_hotspots") as url:
            results.append(query_bench("postgresql", url, args.clues, args.k, args.repeat))
    table = Table(title="POST /api/v1/hotspots/query as the service runs it (90-day window, whole district)")
    for col in ("backend", "clues", "hot cells", "time (ms)"):
        table.add_column(col, justify="right")
    for backend, elapsed, clues, hot in results:
        table.add_row(backend, f"{clues:,}", str(hot), f"{elapsed * 1e3:.0f}")
    console.print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
