"""The task-verification benchmark, run small against SQLite so its code keeps working."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from bench.tasks import HOURS, _load, _measure

from riderwatch.config import Settings
from riderwatch.infra.clock import utcnow

pytestmark = pytest.mark.one_database("postgresql", why="the benchmarks measure the PostgreSQL deployment")


def test_bench_loads_riders_and_tasks_and_the_job_finds_visits(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/bench.db"
    settings = Settings(data_dir=tmp_path / "data")
    now = utcnow().replace(microsecond=0)
    positions, _seconds = _load(url, riders=20, tasks=4, settings=settings, start=now - timedelta(hours=HOURS))
    assert positions == 20 * HOURS * 3600 // 10
    measured = _measure(url, settings, now)
    assert measured["tasks"] == 4
    # Twenty riders wandering a 6 km square for four hours pass some of the targets.
    assert measured["visits"] > 0
    assert measured["first_s"] > 0 and measured["again_s"] > 0 and measured["one_s"] > 0
