"""Patrol task verification: how long the job takes to check every running task against positions.

For each backend (SQLite, and PostgreSQL with --pg-url): a fresh database, N riders on duty who
wander the district for four hours (one fix every ten seconds, written straight into `positions`
and the per-rider cell-hour aggregates, as ingest would), and T tasks running over that window —
half over a block of H3 cells, half over check-in points — open to every rider. On PostgreSQL the
tables are then analysed, as autovacuum would have done by the time a server verifies them. Then
the periodic job (`verify_due`, which reads the positions of all due tasks together) runs once
from scratch — four hours of points at once, the worst case — and once more (when every visit is
already known: the job as it runs every minute), and one task is verified alone. Printed:
positions, visits and completions found, the times, and the load average (the figures are only
comparable on an otherwise idle machine).

    python -m bench.tasks [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test] [--riders 500]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from h3.api import basic_int as h3
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, insert, select, text

from bench.clue_submissions import fresh_pg_database
from riderwatch.accounts.service import create_user
from riderwatch.config import Settings
from riderwatch.db import make_engine, make_session_factory, unit_of_work
from riderwatch.migrate import upgrade
from riderwatch.models import (
    CoverageRiderCell,
    DutyShift,
    PatrolTask,
    PatrolTaskResult,
    PatrolTaskVisit,
    Position,
    Rider,
    User,
)
from riderwatch.tasks.schemas import CheckpointDraft, TaskDraft
from riderwatch.tasks.service import TaskLimits, publish_task
from riderwatch.tasks.verification import verify_due, verify_task

CENTRE = (25.4320, 119.0100)  # the demo district
SPAN_M = 3000.0
STEP_S = 10
HOURS = 4
METRES_PER_DEGREE = 111_320.0


def _walks(riders: int, steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(lat, lon) arrays of shape (riders, steps): scooters wandering inside a 6 km square."""
    rng = np.random.default_rng(seed)
    heading = rng.uniform(0, 2 * math.pi, riders)
    x = rng.uniform(-SPAN_M, SPAN_M, riders)
    y = rng.uniform(-SPAN_M, SPAN_M, riders)
    xs, ys = np.empty((riders, steps)), np.empty((riders, steps))
    for t in range(steps):
        heading += rng.normal(0, 0.3, riders)
        speed = rng.uniform(0, 8, riders)  # m/s, stops included
        x = np.clip(x + np.cos(heading) * speed * STEP_S, -SPAN_M, SPAN_M)
        y = np.clip(y + np.sin(heading) * speed * STEP_S, -SPAN_M, SPAN_M)
        xs[:, t], ys[:, t] = x, y
    lat = CENTRE[0] + ys / METRES_PER_DEGREE
    lon = CENTRE[1] + xs / (METRES_PER_DEGREE * math.cos(math.radians(CENTRE[0])))
    return lat, lon


def _load(url: str, riders: int, tasks: int, settings: Settings, start: datetime) -> tuple[int, float]:
    """Riders, their positions and aggregates, and the tasks; returns (positions, seconds)."""
    t0 = time.perf_counter()
    upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    limits = TaskLimits.from_settings(settings)
    finest = limits.finest
    steps = HOURS * 3600 // STEP_S
    lat, lon = _walks(riders, steps, seed=1)
    with unit_of_work(factory) as session:
        dispatcher = create_user(session, username="dispatcher", role="dispatcher", password="bench-password")
        for i in range(riders):
            session.add(User(username=f"r{i}", role="rider", password_hash="x", display_name=""))
        session.flush()
        ids = list(session.scalars(select(User.id).where(User.role == "rider").order_by(User.id)))
        session.execute(
            insert(Rider),
            [
                {"user_id": uid, "status": "active", "location_consent": True, "location_consent_at": start}
                for uid in ids
            ],
        )
        session.execute(insert(DutyShift), [{"rider_id": uid, "started_at": start} for uid in ids])
    total = 0
    for r, uid in enumerate(ids):
        rows, seen = [], set()
        for t in range(steps):
            ts = start + timedelta(seconds=t * STEP_S)
            cell = h3.latlng_to_cell(float(lat[r, t]), float(lon[r, t]), finest)
            rows.append(
                {
                    "rider_id": uid,
                    "ts": ts,
                    "lat": float(lat[r, t]),
                    "lon": float(lon[r, t]),
                    "cell": cell,
                    "received_at": ts,
                }
            )
            hour = math.floor(ts.timestamp() / 3600)
            for res in limits.coverage.resolutions:
                c = cell if res == finest else h3.latlng_to_cell(float(lat[r, t]), float(lon[r, t]), res)
                seen.add((res, c, hour))
        with unit_of_work(factory) as session:
            session.execute(insert(Position), rows)
            session.execute(
                insert(CoverageRiderCell),
                [{"resolution": res, "cell": c, "hour": h, "rider_id": uid} for res, c, h in sorted(seen)],
            )
        total += len(rows)
    rng = np.random.default_rng(2)
    with unit_of_work(factory) as session:
        author = session.get(User, dispatcher.id)
        assert author is not None
        for i in range(tasks):
            dx, dy = rng.uniform(-SPAN_M * 0.8, SPAN_M * 0.8, 2)
            plat = CENTRE[0] + dy / METRES_PER_DEGREE
            plon = CENTRE[1] + dx / (METRES_PER_DEGREE * math.cos(math.radians(CENTRE[0])))
            title, starts_at, ends_at = f"task {i}", start, start + timedelta(hours=HOURS + 1)
            if i % 2:
                cells = h3.grid_disk(h3.latlng_to_cell(plat, plon, 9), 2)  # 19 cells, ~1.3 km across
                draft = TaskDraft(
                    title=title,
                    starts_at=starts_at,
                    ends_at=ends_at,
                    cells=[h3.int_to_str(c) for c in cells],
                    open_to_all=True,
                )
            else:
                spots = [CheckpointDraft(lat=plat + k * 0.002, lon=plon, radius_m=100, name=f"p{k}") for k in range(3)]
                draft = TaskDraft(
                    title=title,
                    starts_at=starts_at,
                    ends_at=ends_at,
                    checkpoints=spots,
                    required_share=0.67,
                    open_to_all=True,
                )
            publish_task(session, author=author, draft=draft, limits=limits, now=start)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
    engine.dispose()
    return total, time.perf_counter() - t0


def _measure(url: str, settings: Settings, now: datetime) -> dict[str, float]:
    engine = make_engine(url)
    factory = make_session_factory(engine)
    limits = TaskLimits.from_settings(settings)
    out: dict[str, float] = {}
    with unit_of_work(factory) as session:
        t0 = time.perf_counter()
        out["tasks"] = verify_due(session, limits=limits, now=now)
        out["first_s"] = time.perf_counter() - t0
    with unit_of_work(factory) as session:
        t0 = time.perf_counter()
        verify_due(session, limits=limits, now=now)
        out["again_s"] = time.perf_counter() - t0
    with unit_of_work(factory) as session:
        task = session.scalars(select(PatrolTask).order_by(PatrolTask.id).limit(1)).one()
        t0 = time.perf_counter()
        verify_task(session, task=task, limits=limits, now=now)
        out["one_s"] = time.perf_counter() - t0
        out["visits"] = session.scalar(select(func.count()).select_from(PatrolTaskVisit)) or 0
        out["completed"] = (
            session.scalar(
                select(func.count()).select_from(PatrolTaskResult).where(PatrolTaskResult.completed_at.is_not(None))
            )
            or 0
        )
    engine.dispose()
    return out


@contextmanager
def _sqlite() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="rw-bench-tasks-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'bench.db'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-url", help="PostgreSQL admin URL; a fresh database is made beside it")
    parser.add_argument("--riders", type=int, default=500)
    parser.add_argument("--tasks", type=int, default=20)
    args = parser.parse_args()
    console = Console(width=140)
    settings = Settings()
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(hours=HOURS)
    table = Table(title=f"patrol task verification: {args.riders} riders × {HOURS} h, {args.tasks} tasks")
    for column in (
        "database",
        "positions",
        "load s",
        "tasks",
        "visits",
        "completed",
        "job, first s",
        "job, again s",
        "one task s",
    ):
        table.add_column(column, justify="right")
    backends: list[tuple[str, Callable[[], AbstractContextManager[str]]]] = [("SQLite", _sqlite)]
    if args.pg_url:
        pg_url: str = args.pg_url
        backends.append(("PostgreSQL", lambda: fresh_pg_database(pg_url, "riderwatch_bench_tasks")))
    for name, backend in backends:
        with backend() as url:
            console.print(f"[bold]{name}[/]: loading …")
            positions, load_s = _load(url, args.riders, args.tasks, settings, start)
            m = _measure(url, settings, now)
            table.add_row(
                name,
                f"{positions:,}",
                f"{load_s:.0f}",
                f"{m['tasks']:.0f}",
                f"{m['visits']:,.0f}",
                f"{m['completed']:,.0f}",
                f"{m['first_s']:.2f}",
                f"{m['again_s']:.2f}",
                f"{m['one_s']:.3f}",
            )
    console.print(table)
    console.print(f"load average (1, 5, 15 min): {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")


if __name__ == "__main__":
    main()
