"""`kill -9` under load: every position and clue the server acknowledged is stored, once (issue 10).

A real server process (uvicorn, on this test's database, SQLite or PostgreSQL) takes OsmAnd positions
and JSON clues from several threads at once and is killed with SIGKILL mid-stream, three times over.
After each kill, what was acknowledged is counted against what is stored; at the end every clue is
sent again under its Idempotency-Key, as a phone's queue does, and each is stored exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.infra.clock import system_time
from riderwatch.models import Clue, Position
from tests.api.helpers import Api
from tests.factories import PASSWORD, District, clue_body
from tests.live import free_port
from tests.tracking.helpers import CENTER_LAT, CENTER_LON, backdate, ready

pytestmark = pytest.mark.real_clock  # the server runs in a process of its own, on the real clock

CYCLES = 3
LOAD_SECONDS = 0.8


@contextmanager
def server(database_url: str, data_dir: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIDERWATCH_")}
    env.update(
        RIDERWATCH_DATABASE_URL=database_url,
        RIDERWATCH_DATA_DIR=str(data_dir),
        RIDERWATCH_SECRET_KEY="crash-test",
        RIDERWATCH_RUN_JOBS="false",
        RIDERWATCH_CLUES_PER_RIDER_PER_HOUR="100000",
    )
    command = [sys.executable, "-m", "uvicorn", "riderwatch.asgi:app", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "the server exited at start"
            try:
                if httpx.get(f"{url}/login", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield proc, url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _token(url: str) -> dict[str, str]:
    res = httpx.post(f"{url}/api/v1/auth/token", data={"username": "rider", "password": PASSWORD}, timeout=30)
    assert res.status_code == 200, res.text
    return {"Authorization": f"Bearer {res.json()['access_token']}"}


class Load:
    """Threads sending positions (each a new second) and clues (each a new key) until stopped."""

    def __init__(self, url: str, device: str, start: datetime, cycle: int) -> None:
        self.url, self.device, self.cycle = url, device, cycle
        self.headers = _token(url)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.next_second = start
        self.acked_positions: set[datetime] = set()
        self.sent_clues: dict[str, dict[str, object]] = {}  # key → body, as a phone's queue keeps them
        self.acked_clues: dict[str, int] = {}

    def positions(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            while not self.stop.is_set():
                with self.lock:
                    ts = self.next_second
                    self.next_second += timedelta(seconds=1)
                params = {"id": self.device, "lat": CENTER_LAT, "lon": CENTER_LON, "timestamp": int(ts.timestamp())}
                try:
                    res = http.post("/osmand", params=params)
                except httpx.TransportError:
                    return
                if res.status_code == 200 and "X-RiderWatch-Refused" not in res.headers:
                    with self.lock:
                        self.acked_positions.add(ts)

    def clues(self, lane: int) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            n = 0
            while not self.stop.is_set():
                key = f"crash-{self.cycle}-{lane}-{n}"
                n += 1
                body = clue_body(observed_at=(system_time() - timedelta(minutes=5)).isoformat())
                with self.lock:
                    self.sent_clues[key] = body
                try:
                    res = http.post("/api/v1/clues", json=body, headers={**self.headers, "Idempotency-Key": key})
                except httpx.TransportError:
                    return
                if res.status_code in (200, 201):
                    with self.lock:
                        self.acked_clues[key] = res.json()["id"]


def _stored_positions(db: Session, rider_id: int) -> list[datetime]:
    rows = [ts.astimezone(UTC) for ts in db.scalars(select(Position.ts).where(Position.rider_id == rider_id))]
    db.rollback()
    return rows


def _stored_clues(db: Session) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for key, clue_id in db.execute(select(Clue.idempotency_key, Clue.id)):
        found.setdefault(key, []).append(clue_id)
    db.rollback()
    return found


def test_what_was_acknowledged_survives_kill_9(
    api: Api, db: Session, district: District, database_url: str, tmp_path: Path
) -> None:
    device = api.client.post("/api/v1/me/devices", json={}, headers=api.auth("rider")).json()["device_id"]
    ready(api)
    rider_id = district.users["rider"].id
    backdate(db, rider_id)  # consent and shift from two hours ago: the positions below fall inside
    start = system_time().replace(microsecond=0) - timedelta(hours=1)
    sent: dict[str, dict[str, object]] = {}
    acked_total = 0
    for cycle in range(CYCLES):
        with server(database_url, tmp_path / "data") as (proc, url):
            load = Load(url, device, start + timedelta(minutes=10 * cycle), cycle)
            threads = [threading.Thread(target=load.positions) for _ in range(4)]
            threads += [threading.Thread(target=load.clues, args=(lane,)) for lane in range(3)]
            for t in threads:
                t.start()
            # Killed once both kinds of write have been acknowledged (however busy the machine), in the
            # middle of more of them.
            deadline = time.monotonic() + 30
            while not (load.acked_positions and load.acked_clues) and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(LOAD_SECONDS)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            load.stop.set()
            for t in threads:
                t.join(timeout=30)
        assert load.acked_positions and load.acked_clues, "the load did not get going before the kill"
        stored = set(_stored_positions(db, rider_id))
        assert load.acked_positions <= stored, f"cycle {cycle}: acknowledged positions lost"
        clues = _stored_clues(db)
        for key, clue_id in load.acked_clues.items():
            assert clues.get(key) == [clue_id], f"cycle {cycle}: clue {key} lost or stored twice"
        assert all(len(clues.get(key, [])) <= 1 for key in load.sent_clues)
        sent.update(load.sent_clues)
        acked_total += len(load.acked_clues)

    # The phones' queues send again what was not acknowledged (and some that was): each clue once.
    with server(database_url, tmp_path / "data") as (_proc, url), httpx.Client(base_url=url, timeout=30) as http:
        headers = _token(url)
        for key, body in sent.items():
            res = http.post("/api/v1/clues", json=body, headers={**headers, "Idempotency-Key": key})
            assert res.status_code in (200, 201), res.text
    clues = _stored_clues(db)
    assert sorted(clues) == sorted(sent)
    assert all(len(ids) == 1 for ids in clues.values())
    assert db.scalar(select(func.count()).select_from(Clue)) == len(sent) > acked_total
    db.rollback()
