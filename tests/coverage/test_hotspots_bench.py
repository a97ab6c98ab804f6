"""The hotspot benchmark, run small, so its code keeps working and keeps checking itself against esda."""

from __future__ import annotations

import io
from pathlib import Path

from bench.hotspots import main, query_bench, statistics_bench
from rich.console import Console


def test_statistics_bench_reports_agreement_and_ratio() -> None:
    out = io.StringIO()
    figures = statistics_bench(5_000, 1, 1, Console(file=out, width=200))
    text = out.getvalue()
    assert "5,000 clues" in text and "esda / RiderWatch" in text and "Largest |Δz|" in text
    assert figures["ours_ms"] > 0 and figures["esda_ms"] > 0


def test_query_bench_counts_every_clue(tmp_path: Path) -> None:
    backend, elapsed, clues, hot = query_bench("sqlite", f"sqlite:///{tmp_path / 'bench.db'}", 3_000, 1, 1)
    assert backend == "sqlite" and elapsed > 0
    assert clues == 3_000  # every drawn clue lies in the district
    assert hot > 0  # the planted clusters show


def test_main_without_database() -> None:
    assert main(["--clues", "2000", "--repeat", "1", "--no-query"]) == 0
