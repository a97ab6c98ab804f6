"""Publish-to-receipt latency of an early warning on riders' live streams (issue 12: p99 ≤ 250 ms at 10,000
clients in one server process, ≤ 1 s over Redis; no client outside the area receives anything).

N riders on duty hold `GET /api/v1/alerts/stream` open, from client processes of their own (lean asyncio
connections, so the clients leave the server as much of the machine as they can). Half of the riders'
last positions are inside a circle, half outside. When every stream has said `ready`, a dispatcher
publishes an alert for the circle; each client notes when `event: alert` arrives. The latency is from just
before the publishing request to the arrival (one clock: the same machine). Then the same with two server
processes sharing Redis, the clients split between them and the alert published through the first.

    python -m bench.alerts_stream [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
                                  [--clients 1000 10000] [--client-procs 4]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table
from sqlalchemy import insert

from bench.clue_submissions import fresh_pg_database, running_server
from bench.ingest import DISPATCHER_USER, PASSWORD, percentile, prepare_database
from riderwatch.db import make_engine, make_session_factory, unit_of_work
from riderwatch.infra.clock import utcnow
from riderwatch.models import LastPosition
from riderwatch.security import issue_token

TARGET_ONE_P99_MS = 250.0
TARGET_REDIS_P99_MS = 1000.0
REDIS = "redis://127.0.0.1:6379/0"
# The alert's circle, in the middle of the bench district (bench/ingest.py's Licheng outline).
CENTER = (25.4360, 119.0120)
RADIUS_M = 800.0
BENCH_DATABASE = "riderwatch_bench_alerts"
READY_WAIT_S = 180  # for every stream to say "ready"; those that did not by then are counted as failed


@dataclass
class Row:
    setup: str
    clients: int
    inside: int
    received: int
    outside_received: int
    latencies_ms: list[float]


def place_riders(url: str, ids: list[int]) -> list[bool]:
    """Last positions of a minute ago: even riders inside the circle, odd ones 3 km away."""
    rng = np.random.default_rng(7)
    now = utcnow() - timedelta(minutes=1)
    inside = [i % 2 == 0 for i in range(len(ids))]
    rows = []
    for uid, inner in zip(ids, inside, strict=True):
        r = rng.uniform(0, RADIUS_M * 0.8) if inner else rng.uniform(3000, 3500)
        a = rng.uniform(0, 2 * np.pi)
        lat = CENTER[0] + r * np.cos(a) / 111_320
        lon = CENTER[1] + r * np.sin(a) / (111_320 * np.cos(np.radians(CENTER[0])))
        rows.append({"rider_id": uid, "ts": now, "lat": float(lat), "lon": float(lon)})
    engine = make_engine(url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            session.execute(insert(LastPosition), rows)
    finally:
        engine.dispose()
    return inside


# --- the clients, in processes of their own ---------------------------------------------------------------


async def _stream(base: str, token: str, ready: asyncio.Event, arrivals: list[float], failures: list[str]) -> None:
    url = urlsplit(base)
    try:
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
    except OSError as exc:
        failures.append(f"connect: {exc}")
        ready.set()
        return
    writer.write(
        (
            f"GET /api/v1/alerts/stream HTTP/1.1\r\nHost: {url.hostname}\r\nAuthorization: Bearer {token}\r\n"
            "Accept: text/event-stream\r\n\r\n"
        ).encode()
    )
    tail = b""
    try:
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                failures.append("closed")
                ready.set()
                return
            now = time.time()
            data = tail + chunk
            if not ready.is_set() and b"event: ready" in data:
                ready.set()
            if not ready.is_set() and data.startswith(b"HTTP/1.1 ") and not data.startswith(b"HTTP/1.1 200"):
                failures.append(data[:40].decode(errors="replace"))
                ready.set()
                return
            arrivals.extend([now] * data.count(b"event: alert"))
            tail = data[-16:]
    except asyncio.CancelledError:
        writer.close()
    except (OSError, ValueError) as exc:  # reset, refused, …: a failed stream, counted
        failures.append(f"{type(exc).__name__}: {exc}")
        ready.set()
        writer.close()


async def _clients(targets: list[tuple[str, str]], pipe: Connection) -> None:
    readies = [asyncio.Event() for _ in targets]
    arrivals: list[list[float]] = [[] for _ in targets]
    failures: list[str] = []
    tasks = []
    for (base, token), ready, got in zip(targets, readies, arrivals, strict=True):
        tasks.append(asyncio.create_task(_stream(base, token, ready, got, failures)))
        await asyncio.sleep(0.002)  # open gradually, as phones come on duty, not in one burst
    try:
        async with asyncio.timeout(READY_WAIT_S):
            for ready in readies:
                await ready.wait()
    except TimeoutError:
        failures.append(f"{sum(not r.is_set() for r in readies)} not ready within {READY_WAIT_S} s")
    pipe.send(("ready", len(failures), failures[:3]))
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, pipe.recv)  # "stop"
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    pipe.send(("done", arrivals))


def client_process(targets: list[tuple[str, str]], pipe: Connection) -> None:
    asyncio.run(_clients(targets, pipe))


# --- one run -------------------------------------------------------------------------------------------------


def run(
    setup: str, bases: list[str], tokens: list[str], inside: list[bool], dispatcher: str, procs: int, settle_s: float
) -> Row:
    targets = [(bases[i % len(bases)], token) for i, token in enumerate(tokens)]
    shares = [targets[k::procs] for k in range(procs)]
    flags = [inside[k::procs] for k in range(procs)]
    ctx = mp.get_context("spawn")
    pipes, workers = [], []
    for share in shares:
        mine, theirs = ctx.Pipe()
        proc = ctx.Process(target=client_process, args=(share, theirs), daemon=True)
        proc.start()
        pipes.append(mine)
        workers.append(proc)
    failed = 0
    for pipe in pipes:
        _tag, n, sample = pipe.recv()
        failed += n
        if n:
            print(f"  {n} streams failed to open, e.g. {sample}")
    time.sleep(1.0)  # the second process's Redis listener, the last streams' first reads
    body = {
        "event": "在逃嫌疑人",
        "headline": "基准测试：金鼎一带发现在逃嫌疑人",
        "category": "Security",
        "urgency": "Immediate",
        "severity": "Severe",
        "certainty": "Observed",
        "expires": (utcnow() + timedelta(hours=1)).isoformat(),
        "area": {"type": "Circle", "center": [CENTER[1], CENTER[0]], "radius_m": RADIUS_M},
    }
    started = time.time()
    res = httpx.post(
        f"{bases[0]}/api/v1/alerts", json=body, headers={"Authorization": f"Bearer {dispatcher}"}, timeout=120
    )
    answered = time.time() - started
    assert res.status_code == 201, res.text
    time.sleep(settle_s)
    arrivals: list[list[float]] = []
    for pipe in pipes:
        pipe.send("stop")
    for pipe in pipes:
        _tag, got = pipe.recv()
        arrivals.append(got)
    for proc in workers:
        proc.join(timeout=30)
    latencies, received, outside = [], 0, 0
    for k in range(procs):
        for flag, got in zip(flags[k], arrivals[k], strict=True):
            if flag and got:
                received += 1
                latencies.append((got[0] - started) * 1000)
            if not flag and got:
                outside += 1
    took = answered * 1000
    print(f"  {setup}: {len(tokens)} streams ({failed} failed), the publishing request answered in {took:.0f} ms")
    return Row(setup, len(tokens), sum(inside), received, outside, sorted(latencies))


def measure(
    pg_url: str, clients: int, setup: str, *, procs: int, settle_s: float, database: str = BENCH_DATABASE
) -> Row:
    """One run: a fresh database of `clients` riders, the servers of `setup` ("one process" or "two processes,
    Redis"), the clients, one alert."""
    servers, extra = (2, {"RIDERWATCH_REDIS_URL": REDIS}) if "Redis" in setup else (1, {})
    secret = uuid.uuid4().hex
    env = {"RIDERWATCH_SECRET_KEY": secret, "RIDERWATCH_WEBHOOK_WORKER": "false"} | extra
    tmp = tempfile.mkdtemp(prefix="riderwatch-bench-alerts-")  # kept: the servers' logs
    with ExitStack() as stack:
        url = stack.enter_context(fresh_pg_database(pg_url, database))
        team = prepare_database(url, clients, utcnow())
        inside = place_riders(url, team.ids)
        bases = [stack.enter_context(running_server(url, Path(tmp) / f"s{n}", env_extra=env)) for n in range(servers)]
        tokens = [issue_token(secret, uid, 1) for uid in team.ids]
        login = httpx.post(f"{bases[0]}/api/v1/auth/token", data={"username": DISPATCHER_USER, "password": PASSWORD})
        dispatcher = login.json()["access_token"]
        return run(setup, bases, tokens, inside, dispatcher, procs, settle_s)


def report(rows: list[Row], console: Console) -> None:
    table = Table(title="An alert to riders' live streams: publish to receipt (half the riders inside its area)")
    for name in (
        "setup",
        "streams",
        "inside",
        "received",
        "outside got it",
        "p50 ms",
        "p99 ms",
        "max ms",
        "p99 target",
    ):
        table.add_column(name, justify="right")
    for row in rows:
        target = TARGET_ONE_P99_MS if row.setup == "one process" else TARGET_REDIS_P99_MS
        p99 = percentile(row.latencies_ms, 99)
        table.add_row(
            row.setup,
            f"{row.clients:,}",
            f"{row.inside:,}",
            f"{row.received:,}",
            str(row.outside_received),
            f"{percentile(row.latencies_ms, 50):.0f}",
            f"{p99:.0f}",
            f"{max(row.latencies_ms, default=float('nan')):.0f}",
            f"{target:.0f} ({p99 / target:.2f}×)",
        )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--clients", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--client-procs", type=int, default=4)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds to wait for arrivals after publishing")
    parser.add_argument("--no-redis", action="store_true", help="one server process only")
    args = parser.parse_args()
    setups = ["one process"] + ([] if args.no_redis else ["two processes, Redis"])
    rows = [
        measure(args.pg_url, clients, setup, procs=args.client_procs, settle_s=args.settle)
        for clients in args.clients
        for setup in setups
    ]
    report(rows, Console())


if __name__ == "__main__":
    main()
