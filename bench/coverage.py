"""The coverage query (POST /api/v1/coverage/query) at district scale, with and without the daily roll-up.

For each backend (SQLite, and PostgreSQL with --pg-url): a fresh database with the demo district's
areas and a dispatcher, and per-cell, per-hour aggregates as N riders would leave them over
2 × D days plus the hours up to now (written straight into coverage_cells: what is measured is the
query, not ingest). Riders are on duty by local hour of day (meal peaks, quiet nights) and busiest
around the pilot districts and stations.

Two windows of D days, both widened to whole hours as the map's presets do:
- "ending now": up to the end of the current hour, so its last days are not yet sealed and come from
  coverage_cells;
- "historical": ending a week ago at a mid-day hour, so nearly all of it comes from the roll-up.

Each is asked for the whole district and a pilot zone at every configured resolution: through the
service function before the roll-up job has run (everything from coverage_cells), through the service
after it, and over HTTP from a real server after it. Answers with and without the roll-up must be
equal; the run fails otherwise. A cProfile of the slowest service call closes the report.

    python -m bench.coverage [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test] [--riders 10000]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import math
import pstats
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from h3.api import basic_int as h3
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table
from shapely.geometry import Polygon
from sqlalchemy import text

from bench.clue_submissions import fresh_pg_database, running_server
from riderwatch.accounts.service import create_user
from riderwatch.config import Settings
from riderwatch.coverage.rollup import roll_up
from riderwatch.coverage.service import CoverageLimits, query_coverage
from riderwatch.db import make_engine, make_session_factory, unit_of_work
from riderwatch.demo import OUTLINE, STATIONS, ZONES, load_organisation
from riderwatch.infra.clock import utcnow
from riderwatch.migrate import upgrade
from riderwatch.tracking.ingest import IngestRules

BENCH_DATABASE = "riderwatch_bench_coverage"
DISPATCHER = "bench-dispatcher"
PASSWORD = "bench-password-1"
TARGET_MS = 200.0
METRES_PER_DEGREE = 111_320.0
# One fix every 30 s per rider on duty (what platforms forward), and the share of the team on duty by
# local hour of day (meal peaks at lunch and dinner, few riders at night).
FIXES_PER_HOUR = 120
ON_DUTY_BY_HOUR = (
    0.06, 0.04, 0.03, 0.03, 0.03, 0.04, 0.08, 0.15, 0.22, 0.28, 0.40, 0.58,
    0.60, 0.45, 0.30, 0.28, 0.35, 0.55, 0.62, 0.55, 0.38, 0.25, 0.15, 0.09,
)  # fmt: skip
TZ_OFFSET_HOURS = 8  # the district's local time (Asia/Shanghai) is UTC+8 all year


@dataclass(frozen=True)
class Sizes:
    riders: int = 10_000
    days: int = 30
    repeats: int = 15
    seed: int = 1


# --- the data ----------------------------------------------------------------------------------------------


def district_cells(resolution: int) -> list[int]:
    """The district's cells plus a rim of about 300 m: riders also pass just outside the outline."""
    rim = Polygon(OUTLINE).buffer(0.003)
    return sorted(h3.geo_to_cells(rim, resolution))


def cell_weights(cells: list[int], rng: np.random.Generator) -> NDArray[np.float64]:
    """Where riders are, as a share per cell: busiest at the pilot districts' centres and the stations,
    some everywhere (customers live all over the district)."""
    centres = np.array([h3.cell_to_latlng(c) for c in cells])
    hubs = [(sum(p[1] for p in z.ring) / len(z.ring), sum(p[0] for p in z.ring) / len(z.ring), 6.0) for z in ZONES]
    hubs += [(s.lat, s.lon, 2.0) for s in STATIONS]
    w = np.full(len(cells), 1.0)
    for lat, lon, strength in hubs:
        dy = (centres[:, 0] - lat) * METRES_PER_DEGREE
        dx = (centres[:, 1] - lon) * METRES_PER_DEGREE * math.cos(math.radians(lat))
        w += strength * np.exp(-(dx**2 + dy**2) / (2 * 350.0**2))
    w *= rng.lognormal(0, 0.4, len(cells))  # streets and blocks differ
    return np.asarray(w / w.sum(), dtype=np.float64)


def aggregate_rows(
    *, riders: int, first_hour: int, last_hour: int, resolutions: tuple[int, ...], seed: int
) -> list[tuple[int, int, int, int, int]]:
    """(resolution, cell, hour, passes, riders) rows as `riders` riders would leave them in the hours
    [first_hour, last_hour)."""
    rng = np.random.default_rng(seed)
    finest = max(resolutions)
    fine = district_cells(finest)
    w_fine = cell_weights(fine, rng)
    # A coarser cell's share: that of the finest cells whose centres lie in it.
    shares: dict[int, tuple[NDArray[np.int64], NDArray[np.float64]]] = {}
    for res in resolutions:
        if res == finest:
            shares[res] = (np.array(fine, dtype=np.int64), w_fine)
            continue
        parent = np.array([h3.latlng_to_cell(*h3.cell_to_latlng(c), res) for c in fine], dtype=np.int64)
        coarse, inverse = np.unique(parent, return_inverse=True)
        shares[res] = (coarse, np.asarray(np.bincount(inverse, weights=w_fine), dtype=np.float64))
    rows: list[tuple[int, int, int, int, int]] = []
    for hour in range(first_hour, last_hour):
        local = (hour + TZ_OFFSET_HOURS) % 24
        weekend = ((hour + TZ_OFFSET_HOURS) // 24 + 3) % 7 >= 5  # 1970-01-01 was a Thursday
        on_duty = rng.binomial(riders, min(1.0, ON_DUTY_BY_HOUR[local] * (1.1 if weekend else 1.0)))
        for res, (cells, w) in shares.items():
            passes = rng.poisson(on_duty * FIXES_PER_HOUR * w)
            # A rider seen in a cell this hour: at least one of their fixes fell in it.
            seen = np.minimum(rng.binomial(on_duty, 1 - (1 - w) ** FIXES_PER_HOUR), passes)
            keep = passes > 0
            n = int(keep.sum())
            columns = ([res] * n, cells[keep].tolist(), [hour] * n, passes[keep].tolist(), seen[keep].tolist())
            rows.extend(zip(*columns, strict=True))
    return rows


def prepare(url: str, sizes: Sizes, now_hour: int) -> int:
    """Migrations, the district's areas, a dispatcher, and the aggregates; returns the rows written."""
    upgrade(url)
    engine = make_engine(url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            load_organisation(session)
            create_user(session, username=DISPATCHER, role="dispatcher", password=PASSWORD)
        rows = aggregate_rows(
            riders=sizes.riders,
            first_hour=now_hour + 1 - (2 * sizes.days + 10) * 24,  # both windows of the oldest query
            last_hour=now_hour + 1,
            resolutions=Settings().coverage_resolutions,
            seed=sizes.seed,
        )
        with engine.begin() as conn:
            raw: Any = conn.connection.dbapi_connection
            columns = "resolution, cell, hour, passes, riders"
            if engine.dialect.name == "postgresql":
                with raw.cursor().copy(f"COPY coverage_cells ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                raw.cursor().executemany(f"INSERT INTO coverage_cells ({columns}) VALUES (?, ?, ?, ?, ?)", rows)
        analyze(engine.url.render_as_string(hide_password=False))
    finally:
        engine.dispose()
    return len(rows)


def analyze(url: str) -> None:
    """What autovacuum would soon do after a load this size: the planner needs the statistics."""
    engine = make_engine(url)
    try:
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE coverage_cells"))
                conn.execute(text("VACUUM ANALYZE coverage_days"))
        else:
            with engine.begin() as conn:
                conn.execute(text("ANALYZE"))
    finally:
        engine.dispose()


def run_rollup(url: str) -> tuple[int, float]:
    """The periodic job, run until it has caught up; returns the days rolled up and the seconds taken."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    max_age = IngestRules.from_settings(Settings()).max_age
    days, started = 0, time.perf_counter()
    try:
        while True:
            with unit_of_work(factory) as session:
                done = roll_up(session, now=utcnow(), max_age=max_age)
            if not done:
                break
            days += done
    finally:
        engine.dispose()
    analyze(url)
    return days, time.perf_counter() - started


# --- the queries -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    window: str
    area_name: str
    area: dict[str, Any]
    resolution: int
    start: datetime
    end: datetime

    def body(self) -> dict[str, Any]:
        return {
            "area": self.area,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "resolution": self.resolution,
        }


def queries(now: datetime, days: int) -> list[Query]:
    ring = [list(p) for p in OUTLINE]
    areas = {
        "district": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
        f"zone {ZONES[0].code}": {"zone": ZONES[0].code},
    }
    end_now = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    # A week back, at 15:00 local time: neither end falls on a UTC day's boundary.
    historical = (end_now - timedelta(days=7)).replace(hour=7)
    windows = {"ending now": end_now, "historical": historical}
    return [
        Query(window, name, area, res, end - timedelta(days=days), end)
        for window, end in windows.items()
        for name, area in areas.items()
        for res in Settings().coverage_resolutions
    ]


def coverage_limits() -> CoverageLimits:
    return CoverageLimits.from_settings(Settings())


@dataclass
class Timing:
    backend: str
    query: Query
    path: str  # "service, no roll-up", "service" or "HTTP"
    cells: int
    covered: int
    times_ms: list[float]
    size_kb: float | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.times_ms)
        return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def time_service(url: str, backend: str, qs: list[Query], repeats: int, path: str) -> tuple[list[Timing], list[Any]]:
    """query_coverage called directly, a fresh session per call; returns the timings and the answers."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    limits = coverage_limits()
    out: list[Timing] = []
    answers: list[Any] = []
    try:
        for q in qs:
            answer = service_once(factory, limits, q)
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                service_once(factory, limits, q)
                times.append((time.perf_counter() - t0) * 1000)
            summary = answer["summary"]
            out.append(Timing(backend, q, path, summary["cells"], summary["covered"], times))
            answers.append(answer)
    finally:
        engine.dispose()
    return out, answers


def service_once(factory: Callable[[], Any], limits: CoverageLimits, q: Query) -> dict[str, Any]:
    with factory() as session:
        answer: dict[str, Any] = query_coverage(
            session, area=q.area, start=q.start, end=q.end, resolution=q.resolution, min_passes=1, limits=limits
        )
        session.rollback()
        return answer


def profile_service(url: str, q: Query) -> str:
    engine = make_engine(url)
    factory = make_session_factory(engine)
    try:
        service_once(factory, coverage_limits(), q)
        profiler = cProfile.Profile()
        profiler.enable()
        service_once(factory, coverage_limits(), q)
        profiler.disable()
    finally:
        engine.dispose()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats(pstats.SortKey.CUMULATIVE).print_stats(14)
    return out.getvalue().split("\n\n", 1)[-1].strip()


def time_http(base: str, backend: str, qs: list[Query], repeats: int) -> list[Timing]:
    res = httpx.post(f"{base}/api/v1/auth/token", data={"username": DISPATCHER, "password": PASSWORD}, timeout=30)
    res.raise_for_status()
    headers = {"Authorization": f"Bearer {res.json()['access_token']}"}
    out: list[Timing] = []
    with httpx.Client(base_url=base, timeout=60, headers=headers) as client:
        for q in qs:
            first = client.post("/api/v1/coverage/query", json=q.body())
            first.raise_for_status()
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                client.post("/api/v1/coverage/query", json=q.body()).raise_for_status()
                times.append((time.perf_counter() - t0) * 1000)
            summary = first.json()["summary"]
            out.append(
                Timing(backend, q, "HTTP", summary["cells"], summary["covered"], times, len(first.content) / 1024)
            )
    return out


# --- the run -----------------------------------------------------------------------------------------------


@dataclass
class Results:
    backend: str
    rows: int = 0
    rollup_days: int = 0
    rollup_s: float = 0.0
    timings: list[Timing] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    profile: str = ""
    profiled: str = ""


def bench_backend(backend: str, url: str, data_dir: Path, sizes: Sizes, say: Callable[[str], None]) -> Results:
    out = Results(backend)
    now = utcnow()
    now_hour = math.floor(now.timestamp() / 3600)
    say(f"  filling {2 * sizes.days + 10} days of aggregates for {sizes.riders:,} riders …")
    out.rows = prepare(url, sizes, now_hour)
    qs = queries(now, sizes.days)
    say("  the query without the roll-up …")
    hourly, before = time_service(url, backend, qs, max(1, sizes.repeats // 3), "service, no roll-up")
    say("  the roll-up job …")
    out.rollup_days, out.rollup_s = run_rollup(url)
    say("  the query with the roll-up …")
    rolled, after = time_service(url, backend, qs, sizes.repeats, "service")
    for q, a, b in zip(qs, before, after, strict=True):
        if a != b:
            out.mismatches.append(f"{q.window}, {q.area_name}, resolution {q.resolution}")
    with running_server(url, data_dir, 1) as base:
        out.timings = hourly + rolled + time_http(base, backend, qs, sizes.repeats)
    slowest = max(rolled, key=lambda t: t.median)
    out.profiled = f"{slowest.query.window}, {slowest.query.area_name}, resolution {slowest.query.resolution}"
    out.profile = profile_service(url, slowest.query)
    return out


def report(results: list[Results], sizes: Sizes, console: Console) -> None:
    table = Table(
        title=f"Coverage query over {sizes.days} days, {sizes.riders:,} riders' aggregates; "
        f"target {TARGET_MS:.0f} ms (ratio < 1 meets it)"
    )
    for col in ("backend", "window", "area", "res", "cells", "covered", "path", "median ms", "p95 ms", "ratio", "kB"):
        table.add_column(col, justify="left" if col in ("backend", "window", "area", "path") else "right")
    for r in results:
        for t in sorted(r.timings, key=lambda t: (t.query.window, t.query.area_name, t.query.resolution)):
            table.add_row(
                t.backend,
                t.query.window,
                t.query.area_name,
                str(t.query.resolution),
                f"{t.cells:,}",
                f"{t.covered:,}",
                t.path,
                f"{t.median:.1f}",
                f"{t.p95:.1f}",
                f"{t.median / TARGET_MS:.3f}",
                f"{t.size_kb:.0f}" if t.size_kb is not None else "—",
            )
    console.print(table)
    for r in results:
        verdict = (
            f"[red]answers differ with the roll-up: {'; '.join(r.mismatches)}[/red]"
            if r.mismatches
            else "answers with and without the roll-up are equal"
        )
        console.print(
            f"{r.backend}: {r.rows:,} aggregate rows; the roll-up job sealed {r.rollup_days} days "
            f"in {r.rollup_s:.1f} s; {verdict}"
        )
        console.print(f"[bold]cProfile of query_coverage, {r.profiled} ({r.backend}): by cumulative time[/bold]")
        console.print(r.profile, markup=False, highlight=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-url", help="an existing PostgreSQL database URL; its server gets a bench database")
    parser.add_argument("--riders", type=int, default=Sizes.riders)
    parser.add_argument("--days", type=int, default=Sizes.days, help="the window in days")
    parser.add_argument("--repeats", type=int, default=Sizes.repeats)
    parser.add_argument("--sqlite", action=argparse.BooleanOptionalAction, default=True, help="bench SQLite too")
    args = parser.parse_args(argv)
    sizes = Sizes(riders=args.riders, days=args.days, repeats=args.repeats)
    console = Console(width=max(Console().width, 160))
    results: list[Results] = []
    with tempfile.TemporaryDirectory(prefix="riderwatch-bench-coverage-") as tmp:
        if args.sqlite:
            console.print("[bold]SQLite[/bold] …")
            results.append(
                bench_backend("sqlite", f"sqlite:///{tmp}/bench.db", Path(tmp) / "sqlite", sizes, console.print)
            )
        if args.pg_url:
            console.print("[bold]PostgreSQL[/bold] …")
            with fresh_pg_database(args.pg_url, BENCH_DATABASE) as url:
                results.append(bench_backend("postgresql", url, Path(tmp) / "pg", sizes, console.print))
    report(results, sizes, console)
    return 1 if any(r.mismatches for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
