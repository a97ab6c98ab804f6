"""Request bodies: limited per route (413, nothing stored), and read before any database work, so a
client that sends slowly holds no lock and no pooled connection (tests/api/test_bad_input.py has the
other bad bodies)."""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.app import body_limits
from riderwatch.bodies import DEFAULT_LIMIT
from riderwatch.models import Clue, PatrolTask, Position
from tests.api.helpers import Api, assert_problem
from tests.factories import clue_body, image_bytes
from tests.live import served


def _count(db: Session, model: type[Any]) -> int:
    n = db.scalar(select(func.count()).select_from(model)) or 0
    db.rollback()
    return int(n)


def test_a_ping_batch_beyond_its_limit_is_refused_unread(api: Api, app: FastAPI, db: Session) -> None:
    limit = body_limits(app.state.settings)[("POST", "/api/v1/tracking/pings")]
    body = b'{"pings": [' + b" " * limit + b"]}"
    res = api.client.post(
        "/api/v1/tracking/pings", content=body, headers={**api.auth("rider"), "Content-Type": "application/json"}
    )
    problem = assert_problem(res, 413)
    assert f"{limit / (1024 * 1024):.0f} MiB" in problem["detail"]
    assert _count(db, Position) == 0


def test_other_routes_take_the_default_limit(api: Api, db: Session) -> None:
    big = {"title": "巡逻" * DEFAULT_LIMIT}
    assert_problem(api.client.post("/api/v1/tasks", json=big, headers=api.auth("dispatcher")), 413)
    assert _count(db, PatrolTask) == 0


def test_a_page_form_beyond_the_limit_gets_a_page(browser: Any) -> None:
    dispatcher = browser("dispatcher")
    res = dispatcher.post("/tasks", data={"title": "x" * (DEFAULT_LIMIT + 1)})
    assert res.status_code == 413 and 'data-testid="error-page"' in res.text


def test_a_slow_upload_holds_up_no_one_else(app: FastAPI, api: Api, db: Session) -> None:
    """A rider on a poor link starts a batch and stalls; meanwhile another rider's clue is stored at once
    (on SQLite the stalled request would otherwise hold the write lock: every write waited 30 s, then failed)."""
    token = api.auth("rider")["Authorization"]
    with served(app) as url:
        host, port = url.removeprefix("http://").split(":")
        stalled = socket.create_connection((host, int(port)))
        try:
            stalled.sendall(
                b"POST /api/v1/tracking/pings HTTP/1.1\r\nHost: " + host.encode() + b"\r\n"
                b"Authorization: " + token.encode() + b"\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100000\r\n\r\n" + b'{"pings": ['
            )
            time.sleep(0.5)  # the server has the headers and waits for the rest
            started = time.monotonic()
            with httpx.Client(base_url=url, timeout=25) as http:
                res = http.post("/api/v1/clues", json=clue_body(), headers=api.auth("rider2"))
            assert res.status_code == 201, res.text
            assert time.monotonic() - started < 20  # SQLite's busy timeout is 30 s
        finally:
            stalled.close()
    assert _count(db, Clue) == 1


def test_a_nul_character_in_json_or_a_form_is_refused_on_both_databases(api: Api, db: Session, browser: Any) -> None:
    """PostgreSQL cannot store NUL in text and SQLite would: both refuse it at the door, with the same 422."""
    headers = api.auth("dispatcher")
    for body in ({"title": "巡逻\x00"}, {"title": "ok", "note": "a\x00b"}):
        res = api.client.post("/api/v1/tasks", json=body, headers=headers)
        problem = assert_problem(res, 422)
        assert "NUL" in problem["detail"]
    res = api.client.post("/api/v1/categories", json={"code": "x", "name": "火\x00灾"}, headers=api.auth("admin"))
    assert_problem(res, 422)
    # Forms: the page says why, in the reader's language.
    dispatcher = browser("dispatcher")
    res = dispatcher.post("/tasks", data={"title": "巡\x00逻"})
    assert res.status_code == 422 and 'data-testid="error-page"' in res.text and "NUL" in res.text
    assert _count(db, PatrolTask) == 0
    # A photo's bytes hold NULs and are still taken (multipart is checked by the routes' own schemas).
    res = api.client.post(
        "/api/v1/clues",
        data={key: str(value) for key, value in clue_body().items()},
        files=[("photos", ("a.png", image_bytes(), "image/png"))],
        headers={**api.auth("rider"), "Idempotency-Key": "nul-photo"},
    )
    assert res.status_code == 201, res.text
    assert _count(db, Clue) == 1
