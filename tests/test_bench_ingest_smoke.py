"""The positions benchmark (batch ingest, OsmAnd, profile), run small against SQLite
so its code keeps working."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from bench.ingest import (
    FIX_INTERVAL_S,
    PROFILE_ROUNDS,
    Fleet,
    Sizes,
    Team,
    bench_backend,
    build_batches,
    descendants,
    process_cpu_s,
    report,
)
from rich.console import Console
from sqlalchemy import func, select

from riderwatch.db import make_engine
from riderwatch.infra.clock import utcnow
from riderwatch.models import CoverageCell, Position

pytestmark = pytest.mark.one_database("postgresql", why="the benchmarks measure the PostgreSQL deployment")

SIZES = Sizes(
    riders=12,
    batch=40,
    fixes_per_rider=4,
    ingest_pings=240,
    clients=2,
    time_cap_s=60,
    workers=(1,),
    osmand_requests=24,
    osmand_clients=3,
    osmand_time_cap_s=60,
    profile_batch=40,
)


@pytest.mark.real_clock  # the bench's server runs in a process of its own, on the real clock
def test_positions_bench_drives_the_real_server_and_reports(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/bench.db"
    # In its own thread: the bench runs its own event loops, and a browser test earlier in this worker
    # may have left Playwright's loop running in the main thread.
    with ThreadPoolExecutor(1) as pool:
        results = pool.submit(bench_backend, "sqlite", url, tmp_path / "data", SIZES).result()

    batch, osmand = results.phases
    # 5 rounds of 12 riders × 4 fixes, one body per client and round; each client's first is the warm-up.
    assert batch.kind == "batch" and batch.requests == 8 and batch.sent_pings == 192
    assert batch.accepted == 192 and batch.duplicates == 0 and not batch.rejected and not batch.errors
    assert batch.elapsed_s > 0 and len(batch.latencies_ms) == 8
    assert batch.cpu is not None and batch.cpu.server_s > 0 and batch.cpu.db_s is None
    assert osmand.kind == "osmand" and osmand.requests == 24 and osmand.accepted == 24 and not osmand.rejected

    assert results.profile is not None and results.profile.accepted == 40
    assert set(results.profile.stages_ms) >= {"ingest_batch (service)", "commit"}
    assert "INSERT positions" in results.profile.sql_ms
    assert "store_positions" in results.profile.top

    engine = make_engine(url)
    with engine.connect() as conn:
        # Warm-up bodies, the measured ones, OsmAnd (warm-up included) and the profiled batches.
        stored = conn.scalar(select(func.count()).select_from(Position))
        assert stored == 2 * 24 + 192 + 3 + 24 + (PROFILE_ROUNDS + 1) * 40
        # The aggregates were kept at ingest: one pass per stored point at each resolution.
        passes = conn.scalar(select(func.sum(CoverageCell.passes)).where(CoverageCell.resolution == 10))
        assert passes == stored
    engine.dispose()

    out = io.StringIO()
    report({"sqlite": results}, SIZES, Console(file=out, width=220))
    text = out.getvalue()
    assert "pings/s" in text and "ratio to target" in text and "requests/s" in text
    assert "cProfile of ingest_batch" in text


def test_fleet_moves_plausibly_inside_time_order() -> None:
    team = Team([f"r{i}" for i in range(50)], list(range(50)), [f"d{i}" for i in range(50)])
    fleet = Fleet(50, utcnow(), seed=3)
    fixes = fleet.advance(30)
    gaps = fixes.t[:, 1:] - fixes.t[:, :-1]
    assert gaps.min() >= FIX_INTERVAL_S - 0.5 and gaps.max() <= FIX_INTERVAL_S + 0.5
    # Well under the ingest's limit of 40 m/s plus 150 m of slack.
    step_m = ((fixes.lat[:, 1:] - fixes.lat[:, :-1]) ** 2 + (fixes.lon[:, 1:] - fixes.lon[:, :-1]) ** 2) ** 0.5
    assert step_m.max() * 111_320 < 40 * FIX_INTERVAL_S
    bodies = build_batches(fleet, team, Sizes(riders=50, batch=100, fixes_per_rider=5), 500, clients=2)
    assert sum(body.count(b'"ts"') for own in bodies for body in own) == 500
    # A rider belongs to one client only, so its points arrive in order.
    assert b'"rider":"r1"' in bodies[1][0] and not any(b'"rider":"r1"' in b for b in bodies[0])


def test_cpu_accounting_follows_child_processes() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 0.3: pass"])
    try:
        time.sleep(0.05)
        assert child.pid in descendants(os.getpid())
        child.wait(timeout=10)
    finally:
        child.kill()
    assert process_cpu_s(os.getpid()) is not None
    assert process_cpu_s(child.pid) is None  # gone
