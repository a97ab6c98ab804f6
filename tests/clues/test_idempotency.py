"""Idempotency-Key: a retried report returns the first clue and never stores a second one."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.models import Clue, ClueEvent, CluePhoto
from tests.api.helpers import Api, assert_problem
from tests.factories import clue_body, image_bytes
from tests.live import served

CONCURRENT = 20


def _count(db: Session, model: type[Any]) -> int:
    n = db.scalar(select(func.count()).select_from(model)) or 0
    db.rollback()
    return n


def test_retry_returns_the_first_clue(api: Api, db: Session) -> None:
    headers = {**api.auth("rider"), "Idempotency-Key": "retry-1"}
    body = clue_body()
    first = api.client.post("/api/v1/clues", json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = api.client.post("/api/v1/clues", json=body, headers=headers)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert again.headers["location"] == f"/api/v1/clues/{first.json()['id']}"
    assert _count(db, Clue) == 1
    assert _count(db, ClueEvent) == 1


def test_retry_with_photos_returns_the_first_clue(api: Api, db: Session) -> None:
    headers = {**api.auth("rider"), "Idempotency-Key": "retry-photos"}
    files = [("photos", ("a.jpg", image_bytes("JPEG"), "image/jpeg"))]
    body = clue_body()
    first = api.client.post("/api/v1/clues", data=body, files=files, headers=headers)
    assert first.status_code == 201, first.text
    again = api.client.post("/api/v1/clues", data=body, files=files, headers=headers)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    assert _count(db, CluePhoto) == 1


def test_same_key_different_body_is_refused(api: Api, db: Session) -> None:
    headers = {**api.auth("rider"), "Idempotency-Key": "retry-2"}
    assert api.client.post("/api/v1/clues", json=clue_body(), headers=headers).status_code == 201
    res = api.client.post("/api/v1/clues", json=clue_body(description="另一件事"), headers=headers)
    assert_problem(res, 422)
    assert _count(db, Clue) == 1


def test_keys_belong_to_their_reporter(api: Api, db: Session) -> None:
    """Two riders may happen to pick the same key: each gets their own clue."""
    body = clue_body()
    one = api.client.post("/api/v1/clues", json=body, headers={**api.auth("rider"), "Idempotency-Key": "k"})
    two = api.client.post("/api/v1/clues", json=body, headers={**api.auth("rider2"), "Idempotency-Key": "k"})
    assert (one.status_code, two.status_code) == (201, 201)
    assert one.json()["id"] != two.json()["id"]
    assert _count(db, Clue) == 2


def test_without_a_key_each_post_is_a_new_clue(api: Api, db: Session) -> None:
    for _ in range(2):
        assert api.client.post("/api/v1/clues", json=clue_body(), headers=api.auth("rider")).status_code == 201
    assert _count(db, Clue) == 2


@pytest.mark.parametrize("key", ["", "x" * 129])
def test_bad_keys_are_refused(api: Api, db: Session, key: str) -> None:
    res = api.client.post("/api/v1/clues", json=clue_body(), headers={**api.auth("rider"), "Idempotency-Key": key})
    assert_problem(res, 422)
    assert _count(db, Clue) == 0


@pytest.fixture
def live_url(app: FastAPI, api: Api) -> Iterator[str]:
    """The app served by a real uvicorn on a free loopback port, against the test database."""
    with served(app) as url:
        yield url


def _fire(url: str, headers: dict[str, str], send: dict[str, Any]) -> list[httpx.Response]:
    barrier = threading.Barrier(CONCURRENT)

    def post(_: int) -> httpx.Response:
        with httpx.Client(base_url=url, timeout=60) as http:
            barrier.wait()
            return http.post("/api/v1/clues", headers=headers, **send)

    with ThreadPoolExecutor(CONCURRENT) as pool:
        return list(pool.map(post, range(CONCURRENT)))


@pytest.mark.parametrize("shape", ["json", "multipart"])
def test_concurrent_retries_store_one_clue(live_url: str, api: Api, db: Session, shape: str) -> None:
    headers = {**api.auth("rider"), "Idempotency-Key": f"storm-{shape}"}
    if shape == "json":
        send: dict[str, Any] = {"json": clue_body()}
    else:
        photo = image_bytes("JPEG", size=(640, 480))
        send = {"data": clue_body(), "files": [("photos", ("p.jpg", photo, "image/jpeg"))]}
    responses = _fire(live_url, headers, send)
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * (CONCURRENT - 1) + [201], [r.text[:200] for r in responses if r.status_code >= 300]
    assert len({r.json()["id"] for r in responses}) == 1
    assert _count(db, Clue) == 1
    assert _count(db, ClueEvent) == 1
    assert _count(db, CluePhoto) == (1 if shape == "multipart" else 0)
