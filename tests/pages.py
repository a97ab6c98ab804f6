"""Page tests' helpers: browsers (TestClients with cookies) logged in as a given user, the CSRF token,
clues reported through the API; `browser` and `report` are fixtures (registered in tests/conftest.py)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import PASSWORD, District, clue_body, token

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
CSRF_BODY = re.compile(r'data-csrf="([^"]*)"')


def form_csrf(html: str) -> str:
    match = CSRF_FIELD.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


@dataclass
class Browser:
    """A logged-in user's browser: cookies kept, the session's CSRF token at hand."""

    client: TestClient
    csrf: str

    def post(self, url: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return self.client.post(url, data={**(data or {}), "csrf_token": self.csrf}, **kwargs)


def log_in(client: TestClient, username: str, password: str = PASSWORD) -> Browser:
    page = client.get("/login")
    res = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": form_csrf(page.text)},
        follow_redirects=False,
    )
    assert res.status_code == 303, res.text
    home = client.get("/")
    match = CSRF_BODY.search(home.text)
    assert match and match.group(1), "no CSRF token after login"
    return Browser(client=client, csrf=match.group(1))


@pytest.fixture
def browser(app: Any, district: District) -> Iterator[Callable[[str], Browser]]:
    """browser("dispatcher") → a fresh browser (asking for English) logged in as a user of the district."""
    clients: list[TestClient] = []

    def make(username: str) -> Browser:
        client = TestClient(app, headers={"Accept-Language": "en"})
        clients.append(client)
        return log_in(client, username)

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def report(client: TestClient, district: District) -> Callable[..., int]:
    """report(**fields) → the id of a clue the rider reported through the API."""
    headers = token(client, "rider")
    counter = iter(range(1, 10_000))

    def make(reporter_headers: dict[str, str] | None = None, **fields: Any) -> int:
        res = client.post(
            "/api/v1/clues",
            json=clue_body(**fields),
            headers={**(reporter_headers or headers), "Idempotency-Key": f"web-{next(counter)}"},
        )
        assert res.status_code == 201, res.text
        return int(res.json()["id"])

    return make


def scalar(db: Session, stmt: Any) -> Any:
    """Read one value and end the transaction at once: on SQLite an open one would block the app's writes."""
    value = db.scalar(stmt)
    db.commit()  # nothing to write; commit (unlike rollback) leaves loaded objects usable
    return value
