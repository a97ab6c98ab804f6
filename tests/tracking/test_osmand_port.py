"""`riderwatch serve --osmand-port`: the OsmAnd protocol alone on a port of its own, as Traccar Client
users configure it (http://host:5055, no path), beside the app in the same process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from riderwatch.cli import app as cli
from riderwatch.infra.clock import utcnow
from riderwatch.models import Position
from riderwatch.tracking.api import REFUSED_HEADER
from tests.api.helpers import Api
from tests.factories import District
from tests.live import free_port
from tests.tracking.helpers import CENTER_LAT, CENTER_LON, backdate, ready

DEVICE = "rw-port-5055"
# `riderwatch serve` runs in a process of its own, which reads the real clock: so do these tests.
pytestmark = pytest.mark.real_clock


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    app: str
    osmand: str


@contextlib.contextmanager
def _serve(database_url: str, data_dir: Path) -> Iterator[Served]:
    """`riderwatch serve --port P --osmand-port Q` in a subprocess on free loopback ports."""
    port, osmand_port = free_port(), free_port()
    env = {
        **os.environ,
        "RIDERWATCH_DATABASE_URL": database_url,
        "RIDERWATCH_DATA_DIR": str(data_dir),
        "RIDERWATCH_SECRET_KEY": "osmand-port-test-key",
        "RIDERWATCH_RUN_JOBS": "false",
    }
    command = [sys.executable, "-c", "from riderwatch.cli import app; app()", "serve"]
    command += ["--port", str(port), "--osmand-port", str(osmand_port)]
    log_path = data_dir / "server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        served = Served(proc, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{osmand_port}")
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited: {log_path.read_text()}")
                try:
                    httpx.get(f"{served.app}/login", timeout=1)
                    httpx.get(served.osmand, timeout=1)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("server did not start within 60 s") from None
                    time.sleep(0.2)
            yield served
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()


@pytest.fixture(scope="module")
def served(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with _serve(database_url, tmp_path_factory.mktemp("osmand-port")) as running:
        yield running


@pytest.fixture
def device(api: Api, db: Session, district: District) -> str:
    res = api.client.post("/api/v1/me/devices", json={"device_id": DEVICE}, headers=api.auth("rider"))
    assert res.status_code == 201, res.text
    ready(api)
    backdate(db, district.users["rider"].id)
    return DEVICE


def _positions(db: Session) -> list[tuple[datetime, float, float, float | None]]:
    rows = [(p.ts, p.lat, p.lon, p.accuracy_m) for p in db.scalars(select(Position).order_by(Position.ts))]
    db.rollback()  # end the read: on SQLite it holds the write lock the server needs
    return rows


def test_traccar_client_posts_to_the_port_root(served: Served, device: str, db: Session) -> None:
    ts = (utcnow() - timedelta(minutes=3)).replace(microsecond=0)
    # As Traccar Client sends it: POST to the server URL, the fields in the query string, no body.
    query = {"id": device, "timestamp": int(ts.timestamp()), "lat": CENTER_LAT, "lon": CENTER_LON}
    query |= {"speed": 10, "bearing": 90, "altitude": 4, "accuracy": 8, "batt": 77}
    res = httpx.post(served.osmand, params=query, timeout=10)
    assert res.status_code == 200 and res.content == b"" and REFUSED_HEADER not in res.headers
    assert _positions(db) == [(ts, CENTER_LAT, CENTER_LON, 8)]
    # Any path of the port is the same endpoint (the app ignores it), GET too.
    later = {**query, "timestamp": int(ts.timestamp()) + 30}
    assert httpx.get(f"{served.osmand}/traccar/any/path", params=later, timeout=10).status_code == 200
    assert len(_positions(db)) == 2
    # The app's own port keeps /osmand.
    again = {**query, "timestamp": int(ts.timestamp()) + 60}
    assert httpx.post(f"{served.app}/osmand", params=again, timeout=10).status_code == 200
    assert len(_positions(db)) == 3


def test_the_osmand_port_serves_nothing_else(served: Served, district: District) -> None:
    app_login = httpx.get(f"{served.app}/login", timeout=10)
    assert app_login.status_code == 200 and "text/html" in app_login.headers["content-type"]
    for method, path in (("GET", "/login"), ("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/api/v1/me")):
        res = httpx.request(method, f"{served.osmand}{path}", timeout=10)
        # An OsmAnd request without a device id: refused in plain text, no page, no API.
        assert res.status_code == 400 and res.headers["content-type"].startswith("text/plain"), (path, res.text)
    token = httpx.post(
        f"{served.osmand}/api/v1/auth/token", data={"username": "rider", "password": "x" * 12}, timeout=10
    )
    assert token.status_code == 400 and "access_token" not in token.text
    assert httpx.put(f"{served.osmand}/api/v1/me/duty", json={"on_duty": True}, timeout=10).status_code == 405


def test_both_ports_stop_together(database_url: str, tmp_path: Path) -> None:
    with _serve(database_url, tmp_path) as running:
        running.proc.send_signal(signal.SIGTERM)
        running.proc.wait(timeout=15)
        for base in (running.app, running.osmand):
            with pytest.raises(httpx.TransportError):
                httpx.get(base, timeout=1)


def test_port_options_are_checked() -> None:
    runner = CliRunner()
    same = runner.invoke(cli, ["serve", "--port", "8123", "--osmand-port", "8123"])
    assert same.exit_code == 2 and "must differ" in same.output
    workers = runner.invoke(cli, ["serve", "--workers", "2", "--osmand-port", "5055"])
    assert workers.exit_code == 2 and "--workers 1" in workers.output
    assert runner.invoke(cli, ["serve", "--osmand-port", "70000"]).exit_code == 2
