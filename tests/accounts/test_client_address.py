"""The client's address (in login failures and the audit log) comes from X-Forwarded-For only when the
request comes from a configured reverse proxy: otherwise anyone could forge it."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.cli import proxy_options
from riderwatch.models import LoginFailure
from tests.factories import District
from tests.live import served

FORGED = "203.0.113.7"


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
    with served(app, **proxy_options(settings)) as url:
        assert _failed_login_from(url, db, "dispatcher") == seen
