"""The dispatcher's desk while the server is busy: its pages' latency alone, during batch ingest, and during a
login flood (issue 10: p99 ≤ 100 ms in both).

For each backend: the ingest benchmark's district and riders (bench/ingest.py), 60 clues reported through
the API, one server process (`--workers` for more). A dispatcher, logged in through the login form, reads
in turn the desk page, the clue list of the API and one clue's page, one request after another, as a person
clicking does:
- quiet: nothing else runs (the baseline, measured in the same run);
- ingest: platform clients post position batches at 50,000 pings/s (or what the server takes, if less);
- login flood: 32 clients post wrong passwords for made-up names as fast as they are answered.

    python -m bench.desk [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from bench.clue_submissions import clue_fields, fresh_pg_database, running_server
from bench.ingest import (
    CORES,
    DISPATCHER_USER,
    PASSWORD,
    PLATFORM_USER,
    CpuMeter,
    Fleet,
    Phase,
    Sizes,
    build_batches,
    drive_batches,
    fold,
    login,
    percentile,
    prepare_database,
    server_pid,
)
from riderwatch.infra.clock import utcnow

TARGET_P99_MS = 100.0
# Issue 10: the desk during batch ingest at this rate (as much as the server takes, if less).
INGEST_RATE = 50_000
FLOOD_CLIENTS = 32
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Probe:
    """The dispatcher's requests and their latencies."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)


@dataclass
class Row:
    backend: str
    load: str
    probe: Probe
    load_figure: str


def dispatcher_browser(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=60)
    page = client.get("/login")
    match = CSRF.search(page.text)
    assert match, "no CSRF token on the login page"
    res = client.post("/login", data={"username": DISPATCHER_USER, "password": PASSWORD, "csrf_token": match.group(1)})
    assert res.status_code in (200, 303), res.text[:200]
    return client


def report_clues(base: str, rider: str, n: int) -> list[int]:
    rng = random.Random(7)
    headers = login(base, rider)
    ids = []
    with httpx.Client(base_url=base, timeout=60) as http:
        for i in range(n):
            res = http.post("/api/v1/clues", json=clue_fields(rng), headers={**headers, "Idempotency-Key": f"desk-{i}"})
            res.raise_for_status()
            ids.append(int(res.json()["id"]))
    return ids


def probe_until(client: httpx.Client, clue_id: int, stop: threading.Event, probe: Probe, count: int | None) -> None:
    paths = ["/desk", "/api/v1/clues?limit=50", f"/clues/{clue_id}"]
    n = 0
    while not stop.is_set() and (count is None or n < count):
        path = paths[n % len(paths)]
        n += 1
        started = time.perf_counter()
        try:
            res = client.get(path)
        except httpx.HTTPError as exc:
            probe.errors[type(exc).__name__] += 1
            continue
        probe.latencies_ms.append((time.perf_counter() - started) * 1000)
        if res.status_code != 200:
            probe.errors[f"HTTP {res.status_code}"] += 1


async def flood(base: str, seconds: float) -> Counter[str]:
    answers: Counter[str] = Counter()
    deadline = time.perf_counter() + seconds
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:

        async def one(lane: int) -> None:
            n = 0
            while time.perf_counter() < deadline:
                n += 1
                try:
                    res = await client.post(
                        "/api/v1/auth/token", data={"username": f"nobody-{lane}-{n}", "password": "wrong password"}
                    )
                except httpx.HTTPError as exc:
                    answers[type(exc).__name__] += 1
                    continue
                answers[str(res.status_code)] += 1

        await asyncio.gather(*(one(lane) for lane in range(FLOOD_CLIENTS)))
    return answers


def bench_backend(backend: str, url: str, data_dir: Path, workers: int, seconds: float, console: Console) -> list[Row]:
    sizes = Sizes(riders=2_000, ingest_pings=3_000_000, time_cap_s=seconds, workers=(workers,))
    now = utcnow()
    team = prepare_database(url, sizes.riders, now)
    fleet = Fleet(sizes.riders, now - timedelta(hours=40), sizes.seed)
    rows = []
    with running_server(url, data_dir, workers) as base:
        console.print(f"  {backend}: reporting clues, logging in …")
        ids = report_clues(base, team.usernames[0], 60)
        desk = dispatcher_browser(base)
        probe_until(desk, ids[0], threading.Event(), Probe(), 30)  # warm-up
        quiet = Probe()
        probe_until(desk, ids[0], threading.Event(), quiet, 300)
        rows.append(Row(backend, "quiet", quiet, "—"))

        console.print(f"  {backend}: during batch ingest …")
        bodies = build_batches(fleet, team, sizes, sizes.ingest_pings, sizes.clients)
        phase = Phase(backend, "batch", workers, sizes.clients, sizes.batch)
        stop, during = threading.Event(), Probe()
        prober = threading.Thread(target=probe_until, args=(desk, ids[1], stop, during, None))
        meter = CpuMeter(server_pid(base), None)
        prober.start()
        auth = login(base, PLATFORM_USER)
        asyncio.run(drive_batches(base, auth, bodies, phase, seconds, meter, lambda: fold(url), rate=INGEST_RATE))
        stop.set()
        prober.join()
        del bodies
        rows.append(Row(backend, f"batch ingest ≤ {INGEST_RATE:,} pings/s", during, f"{phase.per_second:,.0f} pings/s"))

        console.print(f"  {backend}: during a login flood …")
        stop, during = threading.Event(), Probe()
        prober = threading.Thread(target=probe_until, args=(desk, ids[2], stop, during, None))
        prober.start()
        started = time.perf_counter()
        answers = asyncio.run(flood(base, seconds))
        elapsed = time.perf_counter() - started
        stop.set()
        prober.join()
        total = sum(answers.values())
        shape = ", ".join(f"{k}×{v}" for k, v in sorted(answers.items()))
        rows.append(
            Row(backend, f"login flood ({FLOOD_CLIENTS} clients)", during, f"{total / elapsed:,.0f} logins/s ({shape})")
        )
        desk.close()
    return rows


def report(rows: list[Row], workers: int, console: Console) -> None:
    table = Table(
        title=f"The desk under load: a dispatcher's page views one after another, {workers} server process(es); "
        f"target p99 ≤ {TARGET_P99_MS:.0f} ms; ms"
    )
    for col in ("backend", "load", "views", "errors", "p50", "p95", "p99", "p99 / target", "the load"):
        table.add_column(col, justify="left" if col in ("backend", "load", "errors", "the load") else "right")
    for r in rows:
        lat = r.probe.latencies_ms
        table.add_row(
            r.backend,
            r.load,
            f"{len(lat):,}",
            ", ".join(f"{k}×{v}" for k, v in r.probe.errors.items()) or "0",
            f"{percentile(lat, 50):.1f}",
            f"{percentile(lat, 95):.1f}",
            f"{percentile(lat, 99):.1f}",
            f"{percentile(lat, 99) / TARGET_P99_MS:.2f}",
            r.load_figure,
        )
    console.print(table)
    console.print(
        f"Machine: {CORES} cores; the load, the dispatcher and the server share them. The views are the desk page, "
        "the API's clue list and one clue's page, in turn."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-url", help="an existing PostgreSQL database URL; its server gets a bench database")
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of each load")
    parser.add_argument("--sqlite", action=argparse.BooleanOptionalAction, default=True, help="bench SQLite too")
    args = parser.parse_args(argv)
    console = Console(width=max(Console().width, 160))
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="riderwatch-desk-") as tmp:
        if args.sqlite:
            rows += bench_backend(
                "sqlite", f"sqlite:///{tmp}/desk.db", Path(tmp) / "sqlite", args.workers, args.seconds, console
            )
        if args.pg_url:
            with fresh_pg_database(args.pg_url, "riderwatch_bench_desk") as url:
                rows += bench_backend("postgresql", url, Path(tmp) / "pg", args.workers, args.seconds, console)
    report(rows, args.workers, console)
    failed = any(sum(r.probe.errors.values()) for r in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
