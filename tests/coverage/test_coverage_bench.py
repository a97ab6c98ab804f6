"""The coverage-query benchmark, run small against SQLite, so its code keeps working and keeps checking
that the roll-up answers as the hourly counts do."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from bench.coverage import Sizes, bench_backend, report
from rich.console import Console

# The benchmark also queries a server in a process of its own, which reads the real clock: so does this test.
pytestmark = pytest.mark.real_clock


def test_coverage_bench_measures_both_paths_and_compares_them(tmp_path: Path) -> None:
    sizes = Sizes(riders=50, days=3, repeats=2)
    url = f"sqlite:///{tmp_path}/bench.db"
    # In its own thread: a browser test earlier in this worker may have left an event loop running.
    with ThreadPoolExecutor(1) as pool:
        results = pool.submit(bench_backend, "sqlite", url, tmp_path / "data", sizes, lambda _m: None).result()
    assert results.rows > 0 and results.rollup_days > 0 and not results.mismatches
    paths = {(t.query.window, t.query.area_name, t.query.resolution, t.path) for t in results.timings}
    assert len(paths) == len(results.timings) == 2 * 2 * 2 * 3  # windows × areas × resolutions × paths
    for t in results.timings:
        assert t.times_ms and all(ms > 0 for ms in t.times_ms) and t.cells > 0
    out = io.StringIO()
    report([results], sizes, Console(file=out, width=200))
    text = out.getvalue()
    assert "median ms" in text and "answers with and without the roll-up are equal" in text
    assert "cProfile of query_coverage" in text
