"""OsmAnd under concurrency, through a real server on each database: requests that arrive together are
written together (group commit), each answered only once its position is stored, each on its own
terms (an unknown device is refused alone)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.models import Position
from tests.api.helpers import Api
from tests.factories import District
from tests.live import served
from tests.tracking.helpers import CENTER_LAT, CENTER_LON, backdate, ready
from tests.tracking.test_osmand import recent


def test_concurrent_positions_are_all_stored_and_answered_each_on_their_own(
    api: Api, app: FastAPI, db: Session, district: District
) -> None:
    devices = {}
    for username in ("rider", "rider2"):
        res = api.client.post("/api/v1/me/devices", json={}, headers=api.auth(username))
        devices[username] = res.json()["device_id"]
        ready(api, username)
        backdate(db, district.users[username].id)
    start = recent(30)
    requests: list[dict[str, Any]] = [
        {
            "id": devices[username],
            "lat": CENTER_LAT + n * 0.0001,
            "lon": CENTER_LON,
            "timestamp": int((start + timedelta(seconds=10 * n)).timestamp()),
        }
        for n in range(40)
        for username in ("rider", "rider2")
    ]
    requests.insert(37, {"id": "nobody-has-this", "lat": CENTER_LAT, "lon": CENTER_LON})

    def send(params: dict[str, Any]) -> int:
        with httpx.Client(base_url=url, timeout=30) as http:
            return http.post("/osmand", params=params).status_code

    with served(app) as url, ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(send, requests))
    writer = app.state.osmand_writer
    assert answers.count(404) == 1 and answers[37] == 404
    assert answers.count(200) == 80
    assert db.scalar(select(func.count()).select_from(Position)) == 80
    db.rollback()
    # Every request went through the writer (how it groups them: tests/infra/test_groupcommit.py).
    assert writer.items == 81
