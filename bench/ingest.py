"""Positions end to end: batch ingest and OsmAnd through the real server (the coverage query has its
own benchmark, bench/coverage.py).

For each backend (SQLite, and PostgreSQL with --pg-url): a fresh database with the demo district's
areas, a platform account and N riders who consented and are on duty (written directly: the set-up
is not what is measured). Riders move plausibly through the district (a heading that wanders, a
speed of a scooter in town, stops, GPS noise), one fix every ten seconds, so no ping is refused.

- Ingest: `uvicorn riderwatch.asgi:app` on a free loopback port (with --workers 1, then 2);
  concurrent clients POST /api/v1/tracking/pings with pre-built batches (each client owns its
  riders, so each rider's points arrive in order). Sustained pings/s accepted, request latency,
  and the CPU the server processes (and PostgreSQL's backends) used, read from /proc.
- OsmAnd: one position per request in the query string, as Traccar Client sends it.
- Profile: one 5,000-ping batch in-process: time per stage, time per SQL statement, and the top
  functions by cumulative time (cProfile), to show where an ingest request spends its time.

Every phase is bounded by a count and a time cap; servers are stopped afterwards. `--only ingest
profile` runs just those phases (a quick look at the write path).

    python -m bench.ingest [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test] [--riders 10000]
        [--only ingest osmand profile]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import math
import os
import pstats
import resource
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import shapely
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table
from shapely.geometry import Polygon
from sqlalchemy import Engine, event, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from bench.clue_submissions import fresh_pg_database, running_server
from bench.rawhttp import Connection
from riderwatch.accounts.service import create_user
from riderwatch.config import Settings
from riderwatch.coverage.counts import fold_counts
from riderwatch.db import make_engine, make_session_factory, unit_of_work
from riderwatch.demo import OUTLINE, STATIONS, load_organisation
from riderwatch.infra.clock import utcnow
from riderwatch.migrate import upgrade
from riderwatch.models import DutyShift, LocationConsent, Platform, Rider, Station, TrackingDevice, User
from riderwatch.security import hash_password
from riderwatch.tracking.ingest import IngestRules
from riderwatch.tracking.schemas import parse_pings
from riderwatch.tracking.service import ingest_batch

BENCH_DATABASE = "riderwatch_bench_positions"
PASSWORD = "bench-password-1"
PLATFORM_USER = "bench-platform"
DISPATCHER_USER = "bench-dispatcher"
PLATFORM = "meituan"
# The targets, on this 2-core machine.
TARGET_PINGS_PER_S = 100_000
# Issue 10: one position per request, 256 concurrent devices, one server process.
OSMAND_TARGET_PER_S = 5_000
OSMAND_TARGET_P99_MS = 50.0
CORES = os.cpu_count() or 1
FIX_INTERVAL_S = 10.0
PROFILE_ROUNDS = 3  # timed batches in the in-process profile; the fastest is shown
METRES_PER_DEGREE = 111_320.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sizes:
    riders: int = 10_000
    batch: int = 2_000  # pings per request
    fixes_per_rider: int = 10  # a batch holds this many consecutive fixes of each of its riders
    ingest_pings: int = 1_500_000  # pre-built per phase: the phase ends when they are sent or at the time cap
    clients: int = 8
    time_cap_s: float = 60.0
    workers: tuple[int, ...] = (1, 2)
    osmand_requests: int = 120_000
    osmand_clients: int = 256
    osmand_time_cap_s: float = 20.0
    profile_batch: int = 5_000
    seed: int = 1
    phases: tuple[str, ...] = ("ingest", "osmand", "profile")


# --- CPU accounting from /proc --------------------------------------------------------------------------


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of one process, or None once it is gone (or not visible)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: the fields start after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def descendants(root: int) -> set[int]:
    """The process and everything it started (uvicorn --workers N forks worker processes)."""
    parent: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        parent[int(entry.name)] = int(raw[raw.rindex(")") + 2 :].split()[1])
    found, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [p for p, pp in parent.items() if pp == pid and p not in found]
        found.update(children)
        frontier.extend(children)
    return found


def machine_cpu_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # without guest time, which user time already counts
    return (total - idle) / CLK_TCK, total / CLK_TCK


def client_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def server_pid(base: str) -> int:
    """The pid of the uvicorn process this benchmark started for `base` (a child of this process)."""
    port = base.rsplit(":", 1)[1]
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(raw[raw.rindex(")") + 2 :].split()[1]) == me and b"uvicorn" in argv and port.encode() in argv:
            return int(entry.name)
    raise RuntimeError(f"no server process of this benchmark listens on port {port}")


@dataclass
class CpuUse:
    server_s: float
    db_s: float | None
    client_s: float
    machine_busy_s: float
    wall_s: float

    @property
    def others_s(self) -> float:
        """CPU the rest of the machine used meanwhile (other people's work, the OS)."""
        return max(0.0, self.machine_busy_s - self.server_s - (self.db_s or 0.0) - self.client_s)


class CpuMeter:
    """CPU seconds used by the server's processes, PostgreSQL's backends for the bench database, this
    client, and the whole machine, between start() and stop()."""

    def __init__(self, server_root: int, db_pids: Callable[[], set[int]] | None) -> None:
        self.server_root = server_root
        self.db_pids = db_pids
        self._before: dict[int, float] = {}
        self._db_before: dict[int, float] = {}

    def _sample(self, pids: set[int]) -> dict[int, float]:
        out = {}
        for pid in pids:
            cpu = process_cpu_s(pid)
            if cpu is not None:
                out[pid] = cpu
        return out

    def start(self) -> None:
        self._before = self._sample(descendants(self.server_root))
        self._db_before = self._sample(self.db_pids()) if self.db_pids else {}
        self._client = client_cpu_s()
        self._machine = machine_cpu_s()[0]
        self._wall = time.perf_counter()

    def stop(self) -> CpuUse:
        wall = time.perf_counter() - self._wall
        machine = machine_cpu_s()[0] - self._machine
        client = client_cpu_s() - self._client
        after = self._sample(descendants(self.server_root))
        # A process that appeared meanwhile used all of its CPU inside the phase.
        server = sum(cpu - self._before.get(pid, 0.0) for pid, cpu in after.items())
        db: float | None = None
        if self.db_pids:
            db_after = self._sample(self.db_pids())
            db = sum(cpu - self._db_before.get(pid, 0.0) for pid, cpu in db_after.items()) if db_after else None
        return CpuUse(server_s=server, db_s=db, client_s=client, machine_busy_s=machine, wall_s=wall)


def pg_backend_pids(url: str) -> Callable[[], set[int]] | None:
    """PostgreSQL's server processes serving the bench database, when they run on this machine."""
    if not url.startswith("postgresql"):
        return None
    name = make_url(url).database
    # No pool: nothing stays connected to the bench database between samples.
    engine = make_engine(url, poolclass=NullPool)

    def pids() -> set[int]:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = :name AND pid <> pg_backend_pid()"),
                {"name": name},
            )
            return {int(r[0]) for r in rows}

    return pids


# --- the district, the team and their movements -----------------------------------------------------------


@dataclass
class Team:
    """The bench riders as the database knows them."""

    usernames: list[str]
    ids: list[int]
    devices: list[str]


def prepare_database(url: str, riders: int, now: datetime) -> Team:
    """Migrations, the district, a platform account, a dispatcher, and `riders` riders of the platform
    who consented and are on duty since 47 hours ago, each with a Traccar Client device."""
    upgrade(url)
    engine = make_engine(url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            load_organisation(session)
            create_user(
                session, username=PLATFORM_USER, role="platform", password=PASSWORD, links={"platform": PLATFORM}
            )
            create_user(session, username=DISPATCHER_USER, role="dispatcher", password=PASSWORD)
            platform_id = session.scalar(select(Platform.id).where(Platform.code == PLATFORM))
            stations = [
                session.scalar(select(Station.id).where(Station.code == s.code))
                for s in STATIONS
                if s.platform == PLATFORM
            ]
            since = now - timedelta(hours=47)
            # One hash for all: production-strength argon2 per rider would take minutes, and riders
            # of a platform send through the platform's account, not their own logins.
            password_hash = hash_password(PASSWORD)
            names = [f"bench-r{n:05d}" for n in range(riders)]
            session.execute(
                insert(User),
                [
                    {
                        "username": name,
                        "display_name": name,
                        "role": "rider",
                        "password_hash": password_hash,
                        "is_active": True,
                        "platform_id": platform_id,
                        "station_id": stations[n % len(stations)],
                        "token_version": 1,
                        "created_at": since,
                    }
                    for n, name in enumerate(names)
                ],
            )
            ids = {
                name: uid
                for name, uid in session.execute(select(User.username, User.id).where(User.username.like("bench-r%")))
            }
            order = [ids[name] for name in names]
            session.execute(
                insert(Rider),
                [
                    {
                        "user_id": uid,
                        "platform_id": platform_id,
                        "station_id": stations[n % len(stations)],
                        "status": "active",
                        "joined_on": since.date(),
                        "location_consent": True,
                        "location_consent_at": since,
                        "location_consent_text_version": "v1",
                    }
                    for n, uid in enumerate(order)
                ],
            )
            session.execute(
                insert(LocationConsent),
                [{"rider_id": uid, "granted": True, "text_version": "v1", "at": since} for uid in order],
            )
            session.execute(insert(DutyShift), [{"rider_id": uid, "started_at": since} for uid in order])
            devices = [f"bench-dev-{n:05d}" for n in range(riders)]
            session.execute(
                insert(TrackingDevice),
                [{"device_id": d, "rider_id": uid, "created_at": since} for d, uid in zip(devices, order, strict=True)],
            )
    finally:
        engine.dispose()
    return Team(usernames=names, ids=order, devices=devices)


@dataclass
class Fixes:
    """k consecutive fixes of every rider: arrays of shape (riders, k)."""

    t: NDArray[np.float64]  # Unix seconds
    lat: NDArray[np.float64]
    lon: NDArray[np.float64]
    speed: NDArray[np.float64]  # m/s
    heading: NDArray[np.float64]  # degrees
    accuracy: NDArray[np.float64]  # m


class Fleet:
    """Riders riding around the district: each call to advance() moves every rider k fixes on."""

    def __init__(self, riders: int, start: datetime, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.outline = Polygon(OUTLINE)
        shapely.prepare(self.outline)
        n = riders
        # Half start near a station of their platform (riders wait there), half anywhere in the district.
        lat, lon = np.empty(n), np.empty(n)
        todo = np.arange(n)
        stations = np.array([(s.lat, s.lon) for s in STATIONS])
        while todo.size:
            near = self.rng.random(todo.size) < 0.5
            base = stations[self.rng.integers(0, len(stations), todo.size)]
            lo = np.array([p[1] for p in OUTLINE]).min(), np.array([p[0] for p in OUTLINE]).min()
            hi = np.array([p[1] for p in OUTLINE]).max(), np.array([p[0] for p in OUTLINE]).max()
            cand_lat = np.where(
                near, base[:, 0] + self.rng.normal(0, 0.003, todo.size), self.rng.uniform(lo[0], hi[0], todo.size)
            )
            cand_lon = np.where(
                near, base[:, 1] + self.rng.normal(0, 0.003, todo.size), self.rng.uniform(lo[1], hi[1], todo.size)
            )
            inside = shapely.contains_xy(self.outline, cand_lon, cand_lat)
            lat[todo[inside]], lon[todo[inside]] = cand_lat[inside], cand_lon[inside]
            todo = todo[~inside]
        self.lat, self.lon = lat, lon
        self.heading = self.rng.uniform(0, 2 * math.pi, n)
        self.cruise = self.rng.uniform(3.0, 9.0, n)  # m/s: an e-scooter in town
        # Phones fix at their own moments: spread the riders' clocks over one interval.
        self.t = start.timestamp() + self.rng.uniform(0, FIX_INTERVAL_S, n)

    @property
    def riders(self) -> int:
        return int(self.lat.size)

    def advance(self, k: int) -> Fixes:
        n = self.riders
        shape = (n, k)
        out = Fixes(*(np.empty(shape) for _ in range(6)))
        for j in range(k):
            dt = FIX_INTERVAL_S + self.rng.uniform(-0.5, 0.5, n)
            self.heading += self.rng.normal(0, 0.35, n)
            # Some fixes are stops: at a restaurant, a door, a red light.
            speed = np.where(self.rng.random(n) < 0.15, 0.0, np.clip(self.cruise + self.rng.normal(0, 1.0, n), 0.5, 14))
            step = speed * dt
            lat = self.lat + step * np.cos(self.heading) / METRES_PER_DEGREE
            lon = self.lon + step * np.sin(self.heading) / (METRES_PER_DEGREE * np.cos(np.radians(self.lat)))
            inside = shapely.contains_xy(self.outline, lon, lat)
            # At the district's edge the rider turns back instead of leaving it.
            self.lat = np.where(inside, lat, self.lat)
            self.lon = np.where(inside, lon, self.lon)
            self.heading = np.where(inside, self.heading, self.heading + math.pi)
            speed = np.where(inside, speed, 0.0)
            self.t = self.t + dt
            accuracy = self.rng.uniform(3, 15, n)
            # What the phone reports: the true place plus GPS noise of about its accuracy.
            noise = self.rng.normal(0, 1, (2, n)) * accuracy / 2 / METRES_PER_DEGREE
            out.t[:, j] = self.t
            out.lat[:, j] = self.lat + noise[0]
            out.lon[:, j] = self.lon + noise[1] / np.cos(np.radians(self.lat))
            out.speed[:, j] = speed
            out.heading[:, j] = np.degrees(self.heading) % 360
            out.accuracy[:, j] = accuracy
        return out


def iso_times(t: NDArray[np.float64]) -> NDArray[np.str_]:
    """Unix seconds → ISO 8601 with milliseconds and an explicit UTC offset."""
    stamps = np.datetime_as_string((t * 1000).astype("int64").astype("datetime64[ms]"), unit="ms")
    return np.char.add(stamps, "+00:00")


def ping_objects(fixes: Fixes, usernames: list[str], riders: NDArray[np.int64]) -> list[str]:
    """The JSON text of each ping of these riders, in time order across them (as a platform forwards)."""
    k = fixes.t.shape[1]
    cols = np.repeat(np.arange(k), riders.size)
    rows = np.tile(riders, k)
    ts = iso_times(fixes.t[rows, cols])
    lat, lon = fixes.lat[rows, cols], fixes.lon[rows, cols]
    speed, heading, acc = fixes.speed[rows, cols], fixes.heading[rows, cols], fixes.accuracy[rows, cols]
    return [
        f'{{"ts":"{ts[i]}","lat":{lat[i]:.6f},"lon":{lon[i]:.6f},"speed_mps":{speed[i]:.1f},'
        f'"heading":{heading[i]:.0f},"accuracy_m":{acc[i]:.0f},"rider":"{usernames[rows[i]]}"}}'
        for i in range(rows.size)
    ]


def build_batches(fleet: Fleet, team: Team, sizes: Sizes, pings: int, clients: int) -> list[list[bytes]]:
    """Request bodies per client, `pings` in all (rounded up to whole rounds of the fleet).

    Client c owns riders c, c + clients, ...; a round moves every rider fixes_per_rider fixes on and
    gives each client batches of batch // fixes_per_rider riders."""
    per_batch = max(1, sizes.batch // sizes.fixes_per_rider)
    owned = [np.arange(c, fleet.riders, clients) for c in range(clients)]
    bodies: list[list[bytes]] = [[] for _ in range(clients)]
    made = 0
    while made < pings:
        fixes = fleet.advance(sizes.fixes_per_rider)
        for c in range(clients):
            for i in range(0, owned[c].size, per_batch):
                objs = ping_objects(fixes, team.usernames, owned[c][i : i + per_batch])
                bodies[c].append(('{"pings":[' + ",".join(objs) + "]}").encode())
                made += len(objs)
    return bodies


def osmand_paths(fleet: Fleet, team: Team, count: int) -> list[str]:
    """`count` single-position OsmAnd requests (query string, as Traccar Client sends them), riders in turn."""
    paths: list[str] = []
    while len(paths) < count:
        fixes = fleet.advance(1)
        for r in range(fleet.riders):
            knots = fixes.speed[r, 0] * 3600 / 1852
            paths.append(
                f"/osmand/?id={team.devices[r]}&timestamp={int(fixes.t[r, 0])}&lat={fixes.lat[r, 0]:.6f}"
                f"&lon={fixes.lon[r, 0]:.6f}&speed={knots:.1f}&bearing={fixes.heading[r, 0]:.1f}"
                f"&altitude=12.0&accuracy={fixes.accuracy[r, 0]:.1f}&batt=76.0"
            )
            if len(paths) == count:
                break
    return paths


# --- the HTTP phases ---------------------------------------------------------------------------------------


def percentile(values: list[float], q: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


@dataclass
class Phase:
    backend: str
    kind: str  # "batch" or "osmand"
    workers: int
    clients: int
    batch: int = 1
    requests: int = 0
    sent_pings: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    cpu: CpuUse | None = None
    fold_s: float = 0.0  # spent folding appended counts into coverage_cells, within elapsed_s

    @property
    def per_second(self) -> float:
        return self.accepted / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def per_cpu_second(self) -> float | None:
        """Accepted pings per CPU second of the server (and the database server)."""
        if self.cpu is None:
            return None
        spent = self.cpu.server_s + (self.cpu.db_s or 0.0)
        return self.accepted / spent if spent > 0 else None


FOLD_EVERY_S = 5.0


def fold(url: str) -> int:
    """Fold the counts ingest appended (PostgreSQL) into coverage_cells, as the periodic job does."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            return fold_counts(session)
    finally:
        engine.dispose()


def login(base: str, username: str) -> dict[str, str]:
    res = httpx.post(f"{base}/api/v1/auth/token", data={"username": username, "password": PASSWORD}, timeout=30)
    res.raise_for_status()
    return {"Authorization": f"Bearer {res.json()['access_token']}"}


async def drive_batches(
    base: str,
    auth: dict[str, str],
    bodies: list[list[bytes]],
    phase: Phase,
    time_cap_s: float,
    meter: CpuMeter,
    fold: Callable[[], int],
    rate: float | None = None,
) -> Phase:
    """Each client sends its bodies in order; the first one of each is a warm-up outside the measure.

    The counts ingest appends (PostgreSQL) are folded into coverage_cells every FOLD_EVERY_S during
    the run, as the periodic job would, and once more at its end, all within the measured time: the
    write path's deferred work is part of what it costs."""
    headers = {**auth, "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=len(bodies), max_keepalive_connections=len(bodies))
    async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as client:

        async def post(body: bytes, measured: bool) -> None:
            started = time.perf_counter()
            try:
                res = await client.post("/api/v1/tracking/pings", content=body, headers=headers)
            except httpx.HTTPError as exc:
                phase.errors[type(exc).__name__] += 1
                return
            if not measured:
                return
            phase.latencies_ms.append((time.perf_counter() - started) * 1000)
            phase.requests += 1
            if res.status_code != 200:
                phase.errors[f"HTTP {res.status_code}"] += 1
                return
            data = res.json()
            phase.accepted += data["accepted"]
            phase.duplicates += data["duplicates"]
            phase.rejected.update(r["reason"] for r in data["rejections"])

        await asyncio.gather(*(post(own[0], False) for own in bodies if own))
        meter.start()
        started = time.perf_counter()
        deadline = started + time_cap_s

        async def client_loop(own: list[bytes]) -> None:
            sent = 0
            for body in own[1:]:
                if time.perf_counter() >= deadline:
                    return
                if rate is not None:
                    # At most `rate` pings/s in all: each client keeps to its share.
                    due = started + sent / (rate / len(bodies))
                    await asyncio.sleep(max(0.0, due - time.perf_counter()))
                pings = body.count(b'"ts"')
                sent += pings
                phase.sent_pings += pings
                await post(body, True)

        async def timed_fold() -> None:
            t0 = time.perf_counter()
            await asyncio.to_thread(fold)
            phase.fold_s += time.perf_counter() - t0

        async def fold_loop() -> None:
            while True:
                await asyncio.sleep(FOLD_EVERY_S)
                await timed_fold()

        folding = asyncio.create_task(fold_loop())
        await asyncio.gather(*(client_loop(own) for own in bodies))
        folding.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await folding
        await timed_fold()
        phase.elapsed_s = time.perf_counter() - started
        phase.cpu = meter.stop()
    return phase


async def drive_osmand(base: str, paths: list[str], phase: Phase, time_cap_s: float, meter: CpuMeter) -> Phase:
    """Each client is a device on its own keep-alive connection (bench/rawhttp.py: httpx would spend the
    machine's cores on the client) taking the next request in turn; each rider's fixes are `riders`
    requests apart, so one rider's requests never overlap and arrive in order."""
    connections = [Connection(base) for _ in range(phase.clients)]
    warm = phase.clients
    await asyncio.gather(*(c.request("POST", path) for c, path in zip(connections, paths[:warm], strict=False)))
    meter.start()
    started = time.perf_counter()
    deadline = started + time_cap_s
    next_index = warm

    async def worker(connection: Connection) -> None:
        nonlocal next_index
        while next_index < len(paths) and time.perf_counter() < deadline:
            path = paths[next_index]
            next_index += 1
            t0 = time.perf_counter()
            phase.sent_pings += 1
            try:
                res = await connection.request("POST", path)
            except (OSError, asyncio.IncompleteReadError) as exc:
                phase.errors[type(exc).__name__] += 1
                continue
            phase.latencies_ms.append((time.perf_counter() - t0) * 1000)
            phase.requests += 1
            refused = res.headers.get("x-riderwatch-refused")
            if res.status == 200 and refused is None:
                phase.accepted += 1
            elif refused is not None:
                # A point refused for good is answered 200 (ADR 0003); the header names why.
                phase.rejected[refused] += 1
            else:
                phase.rejected[f"HTTP {res.status}: {res.body[:60]!r}"] += 1

    await asyncio.gather(*(worker(c) for c in connections))
    phase.elapsed_s = time.perf_counter() - started
    phase.cpu = meter.stop()
    await asyncio.gather(*(c.close() for c in connections))
    return phase


def top_functions(profiler: cProfile.Profile, n: int, key: pstats.SortKey = pstats.SortKey.CUMULATIVE) -> str:
    buf = io.StringIO()
    stats = pstats.Stats(profiler, stream=buf)
    stats.sort_stats(key).print_stats(n)
    lines = buf.getvalue().splitlines()
    # Keep the header and the rows; shorten the site-packages paths.
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return "\n".join(
        line.replace(str(Path(np.__file__).parents[1]) + "/", "").replace(str(Path.cwd()) + "/", "")
        for line in lines[start:]
        if line.strip()
    )


class SqlClock:
    """Time spent in the database driver per statement, keyed by the statement's first words."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.spent: defaultdict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self._t0: list[float] = []

    @staticmethod
    def key(statement: str) -> str:
        words = " ".join(statement.split())
        # An INSERT names its table after INTO (its SELECT may read FROM unnest(...) before that).
        markers = (" INTO ",) if words.startswith("INSERT") else (" FROM ", " INTO ", "UPDATE ")
        for marker in markers:
            at = words.find(marker)
            if at >= 0:
                table = words[at + len(marker) :].split(" ")[0]
                return f"{words.split(' ')[0]} {table}"
        return words[:40]

    def _before(self, *_args: Any) -> None:
        self._t0.append(time.perf_counter())

    def _after(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        key = self.key(statement)
        self.spent[key] += time.perf_counter() - self._t0.pop()
        self.calls[key] += 1

    def __enter__(self) -> SqlClock:
        event.listen(self.engine, "before_cursor_execute", self._before)
        event.listen(self.engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)


@dataclass
class IngestProfile:
    backend: str
    pings: int
    stages_ms: dict[str, float]
    sql_ms: dict[str, tuple[int, float]]
    top: str  # by cumulative time
    own: str  # by time spent in the function itself
    accepted: int


def profile_ingest(url: str, backend: str, fleet: Fleet, team: Team, pings: int, fixes_per_rider: int) -> IngestProfile:
    """One batch the way the route handles it, in-process: parse, validate, ingest, commit; timed by
    stage and per SQL statement, then a second batch under cProfile."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    rules = IngestRules.from_settings(Settings())
    riders = np.arange(min(max(1, pings // fixes_per_rider), fleet.riders))

    def body() -> bytes:
        fixes = fleet.advance(fixes_per_rider)
        return ('{"pings":[' + ",".join(ping_objects(fixes, team.usernames, riders)) + "]}").encode()

    try:
        with factory() as session:
            sender = session.scalar(select(User).where(User.username == PLATFORM_USER))
            assert sender is not None
            session.expunge(sender)
        # The best of a few batches: the machine is shared, and a stage the scheduler interrupted
        # would say more about the neighbours than about the code.
        best: tuple[float, dict[str, float], dict[str, tuple[int, float]]] | None = None
        for _ in range(PROFILE_ROUNDS):
            raw = body()
            with SqlClock(engine) as clock, factory() as session:
                t0 = time.perf_counter()
                parsed = parse_pings(raw)
                t1 = time.perf_counter()
                result = ingest_batch(session, sender=sender, pings=parsed, rules=rules)
                t2 = time.perf_counter()
                session.commit()
                t3 = time.perf_counter()
            stages = {
                "parse and check the body (parse_pings)": (t1 - t0) * 1000,
                "ingest_batch (service)": (t2 - t1) * 1000,
                "commit": (t3 - t2) * 1000,
            }
            sql = {k: (clock.calls[k], clock.spent[k] * 1000) for k in clock.spent}
            if best is None or t3 - t0 < best[0]:
                best = (t3 - t0, stages, sql)
        assert best is not None
        _, stages, sql = best
        parsed = parse_pings(body())
        profiler = cProfile.Profile()
        with factory() as session:
            profiler.enable()
            ingest_batch(session, sender=sender, pings=parsed, rules=rules)
            profiler.disable()
            session.commit()
    finally:
        engine.dispose()
    return IngestProfile(
        backend,
        len(parsed),
        stages,
        sql,
        top_functions(profiler, 15),
        top_functions(profiler, 12, pstats.SortKey.TIME),
        result.accepted,
    )


# --- the run -----------------------------------------------------------------------------------------------


@dataclass
class BackendResults:
    phases: list[Phase] = field(default_factory=list)
    profile: IngestProfile | None = None


def track_span(sizes: Sizes) -> timedelta:
    """How far back the riders' tracks start: long enough for every fix the run sends to lie in the past
    (pings from the future are refused), never beyond the 48 hours a ping may be late."""
    k = sizes.fixes_per_rider
    rounds = math.ceil(sizes.ingest_pings / (sizes.riders * k))
    fixes = len(sizes.workers) * (rounds * k + math.ceil((sizes.osmand_requests + sizes.osmand_clients) / sizes.riders))
    fixes += (PROFILE_ROUNDS + 1) * k  # the profiled batches
    span = timedelta(seconds=fixes * (FIX_INTERVAL_S + 0.5)) + timedelta(minutes=10)
    if span > timedelta(hours=46):
        raise SystemExit(f"{fixes} fixes per rider do not fit in the last 46 hours: use more riders or fewer pings")
    return max(span, timedelta(hours=2))


def bench_backend(
    backend: str, url: str, data_dir: Path, sizes: Sizes, console: Console | None = None
) -> BackendResults:
    say = console.print if console else (lambda *_a, **_k: None)
    out = BackendResults()
    now = utcnow()
    team = prepare_database(url, sizes.riders, now)
    fleet = Fleet(sizes.riders, now - track_span(sizes), sizes.seed)
    db_pids = pg_backend_pids(url)
    for workers in sizes.workers if {"ingest", "osmand"} & set(sizes.phases) else ():
        with running_server(url, data_dir / f"w{workers}", workers) as base:
            meter = CpuMeter(server_pid(base), db_pids)
            if "ingest" in sizes.phases:
                say(f"  batch ingest, {workers} server process(es): building {sizes.ingest_pings:,} pings …")
                bodies = build_batches(fleet, team, sizes, sizes.ingest_pings, sizes.clients)
                phase = Phase(backend, "batch", workers, sizes.clients, sizes.batch)
                say("  … sending")
                asyncio.run(
                    drive_batches(
                        base, login(base, PLATFORM_USER), bodies, phase, sizes.time_cap_s, meter, lambda: fold(url)
                    )
                )
                out.phases.append(phase)
                del bodies
            if "osmand" in sizes.phases:
                say(f"  OsmAnd, {workers} server process(es) …")
                paths = osmand_paths(fleet, team, sizes.osmand_requests + sizes.osmand_clients)
                osm = Phase(backend, "osmand", workers, sizes.osmand_clients)
                asyncio.run(drive_osmand(base, paths, osm, sizes.osmand_time_cap_s, meter))
                out.phases.append(osm)
    if "profile" in sizes.phases:
        say("  ingest profile …")
        out.profile = profile_ingest(url, backend, fleet, team, sizes.profile_batch, sizes.fixes_per_rider)
    return out


# --- the report --------------------------------------------------------------------------------------------


def _cores(seconds: float | None, wall: float) -> str:
    return "—" if seconds is None or wall <= 0 else f"{seconds / wall:.2f}"


def _ratio(value: float, target: float) -> str:
    return f"{value / target:.3f}" if target else "—"


def _reasons(phase: Phase) -> str:
    parts = [f"{k}×{v}" for k, v in (phase.rejected + phase.errors).most_common(3)]
    return ", ".join(parts) or "0"


def report(results: dict[str, BackendResults], sizes: Sizes, console: Console) -> None:
    phases = [p for r in results.values() for p in r.phases]
    batch = Table(
        title=f"Batch ingest: POST /api/v1/tracking/pings, {sizes.riders:,} riders, {sizes.clients} clients; "
        f"target {TARGET_PINGS_PER_S:,} pings/s; CPU in cores (of {CORES})"
    )
    for col in (
        "backend",
        "server procs",
        "pings/request",
        "requests",
        "accepted",
        "refused / errors",
        "s",
        "folding s",
        "pings/s",
        "ratio to target",
        "p50 ms",
        "p99 ms",
        "server CPU",
        "DB CPU",
        "client CPU",
        "others' CPU",
        "pings per CPU-s",
    ):
        batch.add_column(col, justify="left" if col in ("backend", "refused / errors") else "right")
    osm = Table(
        title=f"OsmAnd: one position per request (query string), {sizes.osmand_clients} devices at once; target "
        f"{OSMAND_TARGET_PER_S:,} requests/s with p99 ≤ {OSMAND_TARGET_P99_MS:.0f} ms (one process); CPU in cores"
    )
    for col in (
        "backend",
        "server procs",
        "requests",
        "accepted",
        "refused / errors",
        "s",
        "requests/s",
        "ratio to target",
        "p50 ms",
        "p99 ms",
        "p99 / target",
        "server CPU",
        "DB CPU",
        "client CPU",
        "others' CPU",
        "requests per CPU-s",
    ):
        osm.add_column(col, justify="left" if col in ("backend", "refused / errors") else "right")
    for p in phases:
        cpu = p.cpu
        wall = cpu.wall_s if cpu else 0.0
        common = [
            _cores(cpu.server_s if cpu else None, wall),
            _cores(cpu.db_s if cpu else None, wall),
            _cores(cpu.client_s if cpu else None, wall),
            _cores(cpu.others_s if cpu else None, wall),
            f"{p.per_cpu_second:,.0f}" if p.per_cpu_second else "—",
        ]
        if p.kind == "batch":
            batch.add_row(
                p.backend,
                str(p.workers),
                f"{p.batch:,}",
                f"{p.requests:,}",
                f"{p.accepted:,}",
                _reasons(p),
                f"{p.elapsed_s:.1f}",
                f"{p.fold_s:.1f}",
                f"{p.per_second:,.0f}",
                _ratio(p.per_second, TARGET_PINGS_PER_S),
                f"{percentile(p.latencies_ms, 50):.0f}",
                f"{percentile(p.latencies_ms, 99):.0f}",
                *common,
            )
        else:
            osm.add_row(
                p.backend,
                str(p.workers),
                f"{p.requests:,}",
                f"{p.accepted:,}",
                _reasons(p),
                f"{p.elapsed_s:.1f}",
                f"{p.requests_per_second:,.0f}",
                _ratio(p.requests_per_second, OSMAND_TARGET_PER_S),
                f"{percentile(p.latencies_ms, 50):.1f}",
                f"{percentile(p.latencies_ms, 99):.1f}",
                f"{percentile(p.latencies_ms, 99) / OSMAND_TARGET_P99_MS:.2f}",
                *common,
            )
    console.print(batch)
    console.print(
        f"To reach {TARGET_PINGS_PER_S:,} pings/s on {CORES} cores, server and database together need "
        f"{TARGET_PINGS_PER_S / CORES:,.0f} pings per CPU-second at full use of every core. 'folding s': time "
        f"spent folding the counts ingest appended (PostgreSQL) into coverage_cells, every {FOLD_EVERY_S:.0f} s "
        "during the run (the periodic job does it every minute) and once after it; it overlaps ingest, and the "
        "run's time 's' includes the last fold."
    )
    console.print(osm)

    for name, r in results.items():
        prof = r.profile
        if prof is None:
            continue
        stages = Table(
            title=f"Where a {prof.pings:,}-ping batch spends its time, in-process, best of {PROFILE_ROUNDS} ({name})"
        )
        stages.add_column("stage")
        stages.add_column("ms", justify="right")
        stages.add_column("µs per ping", justify="right")
        for stage, ms in prof.stages_ms.items():
            stages.add_row(stage, f"{ms:.1f}", f"{ms * 1000 / prof.pings:.1f}")
        total = sum(prof.stages_ms.values())
        stages.add_row("total", f"{total:.1f}", f"{total * 1000 / prof.pings:.1f}")
        console.print(stages)
        sql = Table(title=f"SQL statements of that batch ({name}): time in the driver")
        for col in ("statement", "calls", "ms"):
            sql.add_column(col, justify="left" if col == "statement" else "right")
        for key, (calls, ms) in sorted(prof.sql_ms.items(), key=lambda kv: -kv[1][1]):
            sql.add_row(key, str(calls), f"{ms:.1f}")
        console.print(sql)
        console.print(f"[bold]cProfile of ingest_batch on {prof.pings:,} pings ({name}): by cumulative time[/bold]")
        console.print(prof.top, markup=False, highlight=False)
        console.print(f"[bold]… and by time in the function itself ({name})[/bold]")
        console.print(prof.own, markup=False, highlight=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-url", help="an existing PostgreSQL database URL; its server gets a bench database")
    parser.add_argument("--riders", type=int, default=Sizes.riders)
    parser.add_argument("--batch", type=int, default=Sizes.batch, help="pings per request")
    parser.add_argument("--pings", type=int, default=Sizes.ingest_pings, help="pings built per ingest phase")
    parser.add_argument("--clients", type=int, default=Sizes.clients)
    parser.add_argument("--time-cap", type=float, default=Sizes.time_cap_s, help="seconds per ingest phase at most")
    parser.add_argument("--workers", type=int, nargs="+", default=list(Sizes.workers), help="server processes")
    parser.add_argument("--osmand-requests", type=int, default=Sizes.osmand_requests)
    parser.add_argument("--osmand-clients", type=int, default=Sizes.osmand_clients)
    parser.add_argument("--osmand-time-cap", type=float, default=Sizes.osmand_time_cap_s)
    parser.add_argument("--sqlite", action=argparse.BooleanOptionalAction, default=True, help="bench SQLite too")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=Sizes.phases,
        default=list(Sizes.phases),
        help="run only these phases (e.g. --only ingest profile for a quick look at the write path)",
    )
    args = parser.parse_args(argv)
    sizes = Sizes(
        riders=args.riders,
        batch=args.batch,
        ingest_pings=args.pings,
        clients=args.clients,
        time_cap_s=args.time_cap,
        workers=tuple(args.workers),
        osmand_requests=args.osmand_requests,
        osmand_clients=args.osmand_clients,
        osmand_time_cap_s=args.osmand_time_cap,
        phases=tuple(args.only),
    )
    console = Console(width=max(Console().width, 180))
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    results: dict[str, BackendResults] = {}
    with tempfile.TemporaryDirectory(prefix="riderwatch-bench-") as tmp:
        if args.sqlite:
            console.print("[bold]SQLite[/bold] …")
            results["sqlite"] = bench_backend(
                "sqlite", f"sqlite:///{tmp}/bench.db", Path(tmp) / "sqlite", sizes, console
            )
        if args.pg_url:
            console.print("[bold]PostgreSQL[/bold] …")
            with fresh_pg_database(args.pg_url, BENCH_DATABASE) as url:
                results["postgresql"] = bench_backend("postgresql", url, Path(tmp) / "pg", sizes, console)
    report(results, sizes, console)
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    console.print(
        f"Machine: {CORES} cores; load average (1, 5, 15 min) before {' '.join(load_before)}, "
        f"after {' '.join(load_after)}. 'others' CPU' is what the rest of the machine used during a phase."
    )
    failed = any(p.errors or p.rejected for r in results.values() for p in r.phases)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
