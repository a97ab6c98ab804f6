"""Clue submissions per second and their latency, through the real server, on SQLite and PostgreSQL.

For each backend: a fresh database (PostgreSQL: `riderwatch_bench` on the server of --pg-url),
migrations, the demo district's areas (so every report is located in a grid), a few riders, then
`uvicorn riderwatch.asgi:app` in a subprocess on a free loopback port. Concurrent clients post
JSON clues with an Idempotency-Key (one in twenty is a retry of an earlier report, which must
return the first clue), then a smaller run posts multipart clues with one photo each. Every run
is bounded by a request count and a time cap, and the server is stopped afterwards.

    python -m bench.clue_submissions [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from PIL import Image, ImageDraw
from rich.console import Console
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bench.rawhttp import Connection
from riderwatch.accounts.service import create_user
from riderwatch.db import make_engine, make_session_factory, unit_of_work
from riderwatch.demo import OUTLINE, load_organisation
from riderwatch.migrate import upgrade

PASSWORD = "bench-password-1"
BENCH_DATABASE = "riderwatch_bench"
CATEGORIES = ("theft", "suspicious", "fire_hazard", "traffic_hazard", "damaged_facility", "fight_dispute")
RETRY_EVERY = 20


@dataclass
class PhaseResult:
    backend: str
    mode: str
    elapsed_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    created: int = 0
    replayed: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def sent(self) -> int:
        return len(self.latencies_ms)

    @property
    def per_second(self) -> float:
        return self.created / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def percentile(self, q: int) -> float:
        if not self.latencies_ms:
            return float("nan")
        if len(self.latencies_ms) == 1:
            return self.latencies_ms[0]
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[q - 1]


@dataclass(frozen=True)
class Load:
    requests: int
    photo_requests: int
    concurrency: int
    time_cap_s: float
    riders: int
    workers: int = 1


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare_database(url: str, riders: int) -> None:
    """Migrations, the district's areas and `riders` rider accounts (bench01, bench02, ...)."""
    upgrade(url)
    engine = make_engine(url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            load_organisation(session)
            for n in range(1, riders + 1):
                create_user(
                    session, username=f"bench{n:02d}", role="rider", password=PASSWORD, station_code="mt-jinding"
                )
    finally:
        engine.dispose()


@contextmanager
def fresh_pg_database(admin_url: str, name: str = BENCH_DATABASE) -> Iterator[str]:
    """A new, empty database on the server of admin_url; dropped afterwards."""
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def running_server(
    database_url: str, data_dir: Path, workers: int = 1, env_extra: dict[str, str] | None = None
) -> Iterator[str]:
    """`uvicorn riderwatch.asgi:app` on a free loopback port (with more RIDERWATCH_* settings in `env_extra`);
    yields its base URL, stops it after."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIDERWATCH_")}
    env.update(
        RIDERWATCH_DATABASE_URL=database_url,
        RIDERWATCH_DATA_DIR=str(data_dir),
        RIDERWATCH_SECRET_KEY=uuid.uuid4().hex,
        # Periodic jobs would compete with the measured writes; they are not what is measured.
        RIDERWATCH_RUN_JOBS="false",
        # A few riders send thousands of clues here: the per-rider pace (tests/clues/test_pace.py) would
        # refuse all but the first of each hour; throughput is what is measured.
        RIDERWATCH_CLUES_PER_RIDER_PER_HOUR="1000000",
    )
    env.update(env_extra or {})
    log_path = data_dir / f"server-{port}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "uvicorn", "riderwatch.asgi:app", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--log-level", "warning", "--no-access-log", "--workers", str(workers)]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/openapi.json", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start within 60 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield base
    finally:
        if proc.poll() is None:
            # The whole process group: with --workers N uvicorn has children.
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


def make_photos(n: int, rng: random.Random) -> list[bytes]:
    """n different phone-sized JPEGs (about 30-60 kB), so the store cannot dedupe them."""
    photos = []
    for i in range(n):
        img = Image.new("RGB", (640, 480), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
        draw = ImageDraw.Draw(img)
        for _ in range(40):
            x, y = rng.randrange(600), rng.randrange(440)
            colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
            draw.rectangle((x, y, x + rng.randrange(10, 160), y + rng.randrange(10, 120)), fill=colour)
        draw.text((10, 10), f"bench photo {i}", fill=(255, 255, 255))
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=85)
        photos.append(buf.getvalue())
    return photos


def clue_fields(rng: random.Random) -> dict[str, Any]:
    lons = [p[0] for p in OUTLINE]
    lats = [p[1] for p in OUTLINE]
    return {
        "category": rng.choice(CATEGORIES),
        "description": rng.choice(("楼道电动车充电", "路灯不亮", "可疑人员徘徊", "井盖缺失", "路口积水")),
        "lat": round(rng.uniform(min(lats), max(lats)), 6),
        "lon": round(rng.uniform(min(lons), max(lons)), 6),
        "observed_at": (datetime.now(UTC) - timedelta(minutes=rng.randint(1, 120))).isoformat(),
        "anonymous": rng.random() < 0.15,
    }


async def _tokens(client: httpx.AsyncClient, riders: int) -> list[dict[str, str]]:
    headers = []
    for n in range(1, riders + 1):
        res = await client.post("/api/v1/auth/token", data={"username": f"bench{n:02d}", "password": PASSWORD})
        res.raise_for_status()
        headers.append({"Authorization": f"Bearer {res.json()['access_token']}"})
    return headers


async def drive(
    base: str, *, backend: str, mode: str, count: int, concurrency: int, time_cap_s: float, riders: int, seed: int = 1
) -> PhaseResult:
    """Post `count` clues (or as many as fit in the time cap) with `concurrency` clients at once."""
    rng = random.Random(seed)
    result = PhaseResult(backend=backend, mode=mode)
    photos = make_photos(count, rng) if mode == "photo" else []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        auth = await _tokens(client, riders)
        sent: dict[int, list[tuple[str, dict[str, Any], int]]] = {i: [] for i in range(riders)}
        next_index = 0
        deadline = 0.0

        async def one(i: int, connection: Connection) -> None:
            rider = i % riders
            fields = clue_fields(rng)
            key = uuid.uuid4().hex
            expect: int | None = None
            retry = mode == "json" and i % RETRY_EVERY == RETRY_EVERY - 1 and bool(sent[rider])
            if retry:
                key, fields, expect = rng.choice(sent[rider])
            headers = {**auth[rider], "Idempotency-Key": key}
            # httpx encodes the body (JSON, or multipart with the photo); a lean client sends it
            # (bench/rawhttp.py: httpx's own sending would take the cores the server is measured on).
            if mode == "photo":
                form = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in fields.items()}
                files = {"photos": (f"p{i}.jpg", photos[i % len(photos)], "image/jpeg")}
                request = client.build_request("POST", "/api/v1/clues", data=form, files=files, headers=headers)
            else:
                request = client.build_request("POST", "/api/v1/clues", json=fields, headers=headers)
            body = request.read()
            headers["Content-Type"] = request.headers["content-type"]
            started = time.perf_counter()
            try:
                res = await connection.request("POST", "/api/v1/clues", body, headers)
            except (OSError, asyncio.IncompleteReadError) as exc:
                result.latencies_ms.append((time.perf_counter() - started) * 1000)
                result.errors[type(exc).__name__] += 1
                return
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            answer = json.loads(res.body) if res.body else {}
            if retry:
                if res.status == 200 and answer.get("id") == expect:
                    result.replayed += 1
                else:
                    result.errors[f"retry answered {res.status}"] += 1
            elif res.status == 201:
                result.created += 1
                sent[rider].append((key, fields, answer["id"]))
            else:
                result.errors[f"HTTP {res.status}"] += 1

        async def worker(connection: Connection) -> None:
            nonlocal next_index
            while next_index < count and time.perf_counter() < deadline:
                i = next_index
                next_index += 1
                await one(i, connection)

        connections = [Connection(base) for _ in range(concurrency)]
        started = time.perf_counter()
        deadline = started + time_cap_s
        await asyncio.gather(*(worker(c) for c in connections))
        result.elapsed_s = time.perf_counter() - started
        await asyncio.gather(*(c.close() for c in connections))
    return result


def bench_backend(backend: str, database_url: str, data_dir: Path, load: Load) -> list[PhaseResult]:
    """Prepare the database, start the server, run the JSON and the photo phase; the server is stopped."""
    prepare_database(database_url, load.riders)
    with running_server(database_url, data_dir, load.workers) as base:
        results = []
        for mode, count in (("json", load.requests), ("photo", load.photo_requests)):
            if count <= 0:
                continue
            results.append(
                asyncio.run(
                    drive(
                        base,
                        backend=backend,
                        mode=mode,
                        count=count,
                        concurrency=load.concurrency,
                        time_cap_s=load.time_cap_s,
                        riders=load.riders,
                    )
                )
            )
        return results


# Issue 10, at 32 riders at once and one server process: (created/s, p99 ms) per mode.
TARGETS = {"json": (1_000, 100.0), "photo": (300, 250.0)}


def report(results: list[PhaseResult], load: Load, console: Console) -> None:
    table = Table(
        title=f"clue submissions: {load.concurrency} concurrent clients, {load.workers} server process(es); "
        "latency in ms; targets: JSON ≥ 1,000/s with p99 ≤ 100 ms, with a photo ≥ 300/s with p99 ≤ 250 ms"
    )
    for column in ("backend", "mode", "sent", "created", "retries ok", "errors", "seconds", "created/s"):
        table.add_column(column, justify="left" if column in ("backend", "mode", "errors") else "right")
    for q in ("p50", "p95", "p99", "rate / target", "p99 / target"):
        table.add_column(q, justify="right")
    for r in results:
        errors = ", ".join(f"{k}×{v}" for k, v in r.errors.most_common()) or "0"
        table.add_row(
            r.backend,
            r.mode,
            str(r.sent),
            str(r.created),
            str(r.replayed),
            errors,
            f"{r.elapsed_s:.1f}",
            f"{r.per_second:.1f}",
            f"{r.percentile(50):.0f}",
            f"{r.percentile(95):.0f}",
            f"{r.percentile(99):.0f}",
            f"{r.per_second / TARGETS[r.mode][0]:.2f}",
            f"{r.percentile(99) / TARGETS[r.mode][1]:.2f}",
        )
    console.print(table)
    by = {(r.backend, r.mode): r for r in results}
    for mode in ("json", "photo"):
        pg, lite = by.get(("postgresql", mode)), by.get(("sqlite", mode))
        if pg and lite and lite.per_second > 0:
            console.print(
                f"{mode}: PostgreSQL/SQLite ratio: throughput {pg.per_second / lite.per_second:.2f}, "
                f"p50 {pg.percentile(50) / lite.percentile(50):.2f}, p95 {pg.percentile(95) / lite.percentile(95):.2f}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-url", help="an existing PostgreSQL database URL; its server gets riderwatch_bench")
    parser.add_argument("--requests", type=int, default=2000, help="JSON clue submissions per backend")
    parser.add_argument("--photo-requests", type=int, default=200, help="multipart submissions with one photo")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--time-cap", type=float, default=60.0, help="seconds per phase at most")
    parser.add_argument("--riders", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    args = parser.parse_args(argv)
    load = Load(
        requests=args.requests,
        photo_requests=args.photo_requests,
        concurrency=args.concurrency,
        time_cap_s=args.time_cap,
        riders=args.riders,
        workers=args.workers,
    )
    # Wide enough for the table when the output is a file or a CI log.
    console = Console(width=max(Console().width, 130))
    results: list[PhaseResult] = []
    with tempfile.TemporaryDirectory(prefix="riderwatch-bench-") as tmp:
        console.print("[bold]SQLite[/bold] …")
        results += bench_backend("sqlite", f"sqlite:///{tmp}/bench.db", Path(tmp) / "sqlite-data", load)
        if args.pg_url:
            console.print("[bold]PostgreSQL[/bold] …")
            with fresh_pg_database(args.pg_url) as url:
                results += bench_backend("postgresql", url, Path(tmp) / "pg-data", load)
    report(results, load, console)
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
