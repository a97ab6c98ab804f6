"""The client's address (in login failures and the audit log) comes from X-Forwarded-For only when the
request comes from a configured reverse proxy: otherwise anyone could forge it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.cli import proxy_options
from riderwatch.config import Settings
from riderwatch.models import LoginFailure
from tests.factories import District

FORGED = "203.0.113.7"


@contextmanager
def _served(app: FastAPI, settings: Settings) -> Iterator[str]:
    """The app behind a real uvicorn, with the proxy options `riderwatch serve` gives it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    for name, value in proxy_options(settings).items():
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


def _failed_login_from(url: str, db: Session, username: str) -> str:
    with httpx.Client(base_url=url, timeout=30) as http:
        res = http.post(
            "/api/v1/auth/token",
            data={"username": username, "password": "wrong password"},
            headers={"X-Forwarded-For": FORGED},
        )
    assert res.status_code == 401, res.text
    client = db.scalar(select(LoginFailure.client).where(LoginFailure.username == username))
    db.rollback()
    assert client is not None
    return client


@pytest.mark.parametrize(("trusted", "seen"), [((), "127.0.0.1"), (("127.0.0.1",), FORGED)])
def test_forwarded_for_is_believed_only_from_a_trusted_proxy(
    app: FastAPI, db: Session, district: District, trusted: tuple[str, ...], seen: str
) -> None:
    settings = app.state.settings.model_copy(update={"trusted_proxies": trusted})
    with _served(app, settings) as url:
        assert _failed_login_from(url, db, "dispatcher") == seen
