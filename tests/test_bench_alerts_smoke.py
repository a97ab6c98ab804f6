"""The alerts' stream benchmark, run small so its code keeps working: every rider inside the area gets the
alert once, nobody outside gets it, over one server process and over two sharing Redis."""

from __future__ import annotations

import io
import os

import pytest
from bench.alerts_stream import measure, report
from rich.console import Console

from tests.conftest import PG_ADMIN_URL

# The benchmark's servers run in processes of their own, which read the real clock: so does this test.
pytestmark = [
    pytest.mark.real_clock,
    pytest.mark.one_database("postgresql", why="the benchmarks measure the PostgreSQL deployment"),
]


def test_every_rider_inside_gets_the_alert_and_nobody_outside() -> None:
    """Two server processes sharing Redis: the riders on the publishing process get the alert from its own
    bus, the others through Redis."""
    setup = "two processes, Redis"
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    row = measure(PG_ADMIN_URL, 20, setup, procs=2, settle_s=1.0, database=f"riderwatch_bench_alerts_{worker}")
    assert (row.inside, row.received, row.outside_received) == (10, 10, 0)
    assert len(row.latencies_ms) == 10 and all(0 < ms < 30_000 for ms in row.latencies_ms)
    out = io.StringIO()
    report([row], Console(file=out, width=160))
    assert "p99" in out.getvalue() and setup.split(",")[0] in out.getvalue()
