"""A rider's clue reports are paced: so many an hour, then 429 until the oldest is an hour old; retries of
a stored clue and staff's reports are not counted against it (issue 10, finding 6)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.infra import clock
from riderwatch.models import Clue
from tests.api.helpers import Api, assert_problem
from tests.conftest import TEST_NOW
from tests.factories import clue_body


def _post(api: Api, username: str, key: str) -> int:
    headers = {**api.auth(username), "Idempotency-Key": key}
    return api.client.post("/api/v1/clues", json=clue_body(), headers=headers).status_code


def test_a_riders_reports_are_paced_per_hour(api: Api, app: FastAPI, db: Session) -> None:
    app.state.settings.clues_per_rider_per_hour = 3
    with clock.frozen(TEST_NOW, tick=False):
        assert [_post(api, "rider", f"k{n}") for n in range(3)] == [201, 201, 201]
        res = api.client.post("/api/v1/clues", json=clue_body(), headers={**api.auth("rider"), "Idempotency-Key": "k3"})
        problem = assert_problem(res, 429)
        assert res.headers["retry-after"] == "3600"
        assert "3" in problem["detail"]
        # A retry of a report already stored is answered as ever; other riders and staff go on.
        assert _post(api, "rider", "k0") == 200
        assert _post(api, "rider2", "k0") == 201
        assert _post(api, "dispatcher", "d0") == 201
    assert db.scalar(select(func.count()).select_from(Clue)) == 5
    db.rollback()
    with clock.frozen(TEST_NOW + timedelta(minutes=59), tick=False):
        assert _post(api, "rider", "k3") == 429
    with clock.frozen(TEST_NOW + timedelta(hours=1, seconds=1), tick=False):
        assert _post(api, "rider", "k3") == 201
