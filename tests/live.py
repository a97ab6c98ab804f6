"""The app behind a real uvicorn server, in a thread of the test's process, on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def served(app: FastAPI, **options: Any) -> Iterator[str]:
    """The app served (against the test database) with uvicorn's `options`; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    for name, value in options.items():
        setattr(config, name, value)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    assert not thread.is_alive(), "uvicorn did not stop"


@contextmanager
def server_process(database_url: str, data_dir: Path, **env: str) -> Iterator[str]:
    """A RiderWatch server (`riderwatch.asgi:app` under uvicorn) in a process of its own on the test
    database, with extra RIDERWATCH_* settings in `env`; yields its base URL once it answers."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = {
        **os.environ,
        "RIDERWATCH_DATABASE_URL": database_url,
        "RIDERWATCH_DATA_DIR": str(data_dir),
        "RIDERWATCH_SECRET_KEY": "live-secret-key",
        "RIDERWATCH_RUN_JOBS": "false",
        # A server kept for many tests (the browser tests') would send, and so take away, the webhook
        # deliveries of the tests that run beside it on the same database: only a test that asks has one.
        "RIDERWATCH_WEBHOOK_WORKER": "false",
        **{f"RIDERWATCH_{k.upper()}": v for k, v in env.items()},
    }
    log_path = data_dir / f"server-{port}.log"
    with log_path.open("w") as log:
        # Streams are endless: on terminate the server cuts them after a second instead of waiting.
        command = ["-m", "uvicorn", "riderwatch.asgi:app", "--host", "127.0.0.1", "--port", str(port)]
        proc = subprocess.Popen(
            [sys.executable, *command, "--timeout-graceful-shutdown", "1"],
            env=settings,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, f"the server exited: {log_path.read_text()}"
                assert time.monotonic() < deadline, "the server did not start within 30 s"
                try:
                    if httpx.get(f"{base}/login", timeout=1).status_code < 500:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
