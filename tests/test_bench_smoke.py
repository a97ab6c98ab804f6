"""The clue-submission benchmark, run small against SQLite so its code keeps working."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
from bench.clue_submissions import Load, bench_backend, prepare_database, report, running_server
from rich.console import Console

# The benchmark's server runs in a process of its own, which reads the real clock: so do these tests.
pytestmark = [
    pytest.mark.real_clock,
    pytest.mark.one_database("postgresql", why="the benchmarks measure the PostgreSQL deployment"),
]


def test_bench_drives_the_real_server_and_reports(tmp_path: Path) -> None:
    load = Load(requests=24, photo_requests=3, concurrency=4, time_cap_s=60, riders=2)
    data_dir = tmp_path / "data"
    json_phase, photo_phase = bench_backend("sqlite", f"sqlite:///{tmp_path}/bench.db", data_dir, load)

    assert json_phase.sent == 24 and not json_phase.errors
    # Request 20 retries an earlier report with its Idempotency-Key and must get the same clue back.
    assert json_phase.replayed == 1 and json_phase.created == 23
    assert photo_phase.created == 3 and not photo_phase.errors
    assert len([p for p in (data_dir / "photos").rglob("*") if p.is_file()]) == 3
    assert 0 < json_phase.percentile(50) <= json_phase.percentile(95) <= json_phase.percentile(99)

    out = io.StringIO()
    report([json_phase, photo_phase], load, Console(file=out, width=160))
    assert "created/s" in out.getvalue() and "sqlite" in out.getvalue()


def test_bench_server_is_stopped_afterwards(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/bench.db"
    prepare_database(url, riders=1)
    with running_server(url, tmp_path / "data") as base:
        assert httpx.get(f"{base}/openapi.json").status_code == 200
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base}/openapi.json", timeout=2)
