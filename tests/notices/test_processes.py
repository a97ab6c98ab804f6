"""Two server processes behind one address, sharing the database and Redis, behave as one: a rider's
stream on one process carries what happens through the other, as it happens."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session

from tests.factories import CENTER_LAT, CENTER_LON, PASSWORD, make_district
from tests.live import server_process
from tests.notices.test_notices import Stream

pytestmark = pytest.mark.one_database("postgresql", why="several server processes are a PostgreSQL deployment")

REDIS = "redis://127.0.0.1:6379/0"


def _token(base: str, username: str) -> dict[str, str]:
    res = httpx.post(f"{base}/api/v1/auth/token", data={"username": username, "password": PASSWORD}, timeout=10)
    assert res.status_code == 200, res.text
    return {"Authorization": f"Bearer {res.json()['access_token']}"}


def test_a_stream_on_one_process_gets_what_happens_on_the_other(db: Session, database_url: str, tmp_path: Path) -> None:
    make_district(db)
    db.commit()
    with (
        server_process(database_url, tmp_path / "a", redis_url=REDIS) as first,
        server_process(database_url, tmp_path / "b", redis_url=REDIS) as second,
    ):
        rider = Stream(second, _token(second, "rider"))
        time.sleep(0.5)  # the second process's Redis listener is subscribed once it has started
        clue = {
            "category": "fire_hazard",
            "lat": CENTER_LAT,
            "lon": CENTER_LON,
            "observed_at": datetime.now(UTC).isoformat(),
            "description": "楼道里堆放电动车电池充电",
        }
        sent = httpx.post(f"{first}/api/v1/clues", json=clue, headers=_token(first, "rider"), timeout=10)
        assert sent.status_code == 201, sent.text
        verified = httpx.post(
            f"{first}/api/v1/clues/{sent.json()['id']}/actions/verify",
            json={},
            headers=_token(first, "dispatcher"),
            timeout=10,
        )
        assert verified.status_code == 200, verified.text
        started = time.monotonic()
        [(_id, event, data)] = rider.wait_for(1)
        assert event == "notice" and data["kind"] == "clue_verified" and data["clue_id"] == sent.json()["id"]
        assert time.monotonic() - started < 2, "the wake-up did not come through Redis (it waited for a heartbeat)"
        rider.close()


def test_a_server_process_sends_a_webhook_as_soon_as_the_event_commits(
    db: Session, database_url: str, tmp_path: Path
) -> None:
    """The worker in the server process is woken by the commit (it would look on its own only every 30 s
    here), and the message reaches the receiver at once."""
    from tests.webhooks.test_webhooks import Receiver, receiving

    make_district(db)
    db.commit()
    found = Receiver()
    with (
        receiving(found),
        server_process(database_url, tmp_path / "a", webhook_worker="true", webhook_poll_seconds="30") as base,
    ):
        admin = _token(base, "admin")
        body = {"name": "民警值班群", "party": "police", "format": "wecom", "url": f"{found.url}/chat"}
        res = httpx.post(f"{base}/api/v1/webhooks", json=body | {"kinds": ["clue_dispatched"]}, headers=admin)
        assert res.status_code == 201, res.text
        time.sleep(0.5)
        clue = {
            "category": "fire_hazard",
            "lat": CENTER_LAT,
            "lon": CENTER_LON,
            "observed_at": datetime.now(UTC).isoformat(),
            "description": "楼道里堆放电动车电池充电",
        }
        sent = httpx.post(f"{base}/api/v1/clues", json=clue, headers=_token(base, "rider"), timeout=10)
        clue_id = sent.json()["id"]
        desk = _token(base, "dispatcher")
        httpx.post(f"{base}/api/v1/clues/{clue_id}/actions/verify", json={}, headers=desk, timeout=10)
        started = time.monotonic()
        res = httpx.post(
            f"{base}/api/v1/clues/{clue_id}/actions/dispatch", json={"assignee": "police"}, headers=desk, timeout=10
        )
        assert res.status_code == 200, res.text
        while not found.bodies("/chat"):
            assert time.monotonic() - started < 5, "the webhook was not sent on commit"
            time.sleep(0.05)
        assert f"#{clue_id}" in found.bodies("/chat")[0]["text"]["content"]
