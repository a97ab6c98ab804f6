"""The closed loop's notices (the assignee of a dispatch, the reporter of a verdict and a close, the next
level of an overdue clue) in each user's inbox, and the live stream that carries them as they happen,
resuming after Last-Event-ID."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from riderwatch.clues.service import escalate_overdue
from riderwatch.infra.clock import utcnow
from riderwatch.notices import service as notices
from tests.api.helpers import Api
from tests.factories import District
from tests.live import served


def _notices(api: Api, who: str, **params: Any) -> dict[str, Any]:
    res = api.client.get("/api/v1/me/notices", params=params, headers=api.auth(who))
    assert res.status_code == 200, res.text
    body: dict[str, Any] = res.json()
    return body


def test_the_closed_loop_tells_the_assignee_and_the_reporter(api: Api) -> None:
    clue_id = api.report("rider", anonymous=True)
    api.ok("dispatcher", clue_id, "verify")
    api.ok("dispatcher", clue_id, "dispatch", {"assignee": "police"})
    police = _notices(api, "police")
    assert [(n["kind"], n["clue_id"], n["read"]) for n in police["items"]] == [("clue_dispatched", clue_id, False)]
    assert police["unread"] == 1 and set(police["items"][0]) >= {"id", "kind", "clue_id", "created_at", "read"}
    api.ok("police", clue_id, "accept")
    api.ok("police", clue_id, "resolve", {"outcome": "已查处"})
    api.ok("dispatcher", clue_id, "close", {"value_grade": "A"})
    rider = _notices(api, "rider")
    assert [n["kind"] for n in rider["items"]] == ["clue_closed", "clue_verified"]
    closed = rider["items"][0]
    assert closed["params"] == {"outcome": "已查处"}  # the outcome, never who handled it
    assert "police" not in json.dumps(rider, ensure_ascii=False)
    assert _notices(api, "dispatcher")["items"] == []  # nobody else is told

    marked = api.client.post("/api/v1/me/notices/read", json={"ids": [closed["id"]]}, headers=api.auth("rider"))
    assert marked.json() == {"marked": 1}
    assert _notices(api, "rider")["unread"] == 1
    assert [n["kind"] for n in _notices(api, "rider", unread=True)["items"]] == ["clue_verified"]
    # Another user's notice is not mine to mark.
    other = api.client.post(
        "/api/v1/me/notices/read", json={"ids": [police["items"][0]["id"]]}, headers=api.auth("rider")
    )
    assert other.json() == {"marked": 0}
    everything = api.client.post("/api/v1/me/notices/read", json={}, headers=api.auth("police"))
    assert everything.json() == {"marked": 1}


def test_a_rejected_clue_tells_its_reporter_why(api: Api) -> None:
    clue_id = api.report("rider")
    api.ok("dispatcher", clue_id, "reject", {"reason": "位置不在辖区内"})
    [notice] = _notices(api, "rider")["items"]
    assert notice["kind"] == "clue_rejected" and notice["params"] == {"reason": "位置不在辖区内"}


def test_an_overdue_clue_tells_its_handler_then_the_command_centre(api: Api, db: Session) -> None:
    clue_id = api.report("rider")
    api.ok("dispatcher", clue_id, "verify")
    api.ok("dispatcher", clue_id, "dispatch", {"assignee": "police"})
    first = _notices(api, "police")["unread"]
    # A fire hazard is due in 48 hours: half a day past it is level 1, the handler's.
    assert escalate_overdue(db, now=utcnow() + timedelta(days=2, hours=12)) == 1
    db.commit()
    police = _notices(api, "police")["items"]
    assert police[0]["kind"] == "clue_escalated" and _notices(api, "police")["unread"] == first + 1
    escalate_overdue(db, now=utcnow() + timedelta(days=30))
    db.commit()
    escalated = _notices(api, "dispatcher")["items"]
    assert escalated and escalated[0]["kind"] == "clue_escalated" and escalated[0]["params"]["level"] >= 2


class Stream:
    """A user's live stream read in a thread: the events as (id, event, data)."""

    def __init__(self, url: str, token: dict[str, str], last_event_id: str | None = None) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []
        self.ready_id = ""
        self.opened = threading.Event()  # set when the server says the stream is subscribed ("ready")
        self.got = threading.Condition()
        headers = {**token, **({"Last-Event-ID": last_event_id} if last_event_id else {})}
        self.client = httpx.Client(base_url=url, timeout=httpx.Timeout(30.0, read=60.0))
        self.thread = threading.Thread(target=self._read, args=(headers,), daemon=True)
        self.thread.start()
        assert self.opened.wait(10), "the stream did not open"

    def _read(self, headers: dict[str, str]) -> None:
        try:
            with self.client.stream("GET", "/api/v1/alerts/stream", headers=headers) as res:
                assert res.status_code == 200 and res.headers["content-type"].startswith("text/event-stream")
                fields: dict[str, str] = {}
                for line in res.iter_lines():
                    if line == "":
                        if fields.get("event") == "ready":
                            self.ready_id = fields["id"]
                            self.opened.set()
                        elif "data" in fields:
                            with self.got:
                                self.events.append(
                                    (fields.get("id", ""), fields.get("event", ""), json.loads(fields["data"]))
                                )
                                self.got.notify_all()
                        fields = {}
                    elif not line.startswith(":"):
                        name, _, value = line.partition(":")
                        fields[name] = value.removeprefix(" ")
        except (httpx.HTTPError, RuntimeError):
            return  # closed by the test

    def wait_for(self, count: int, timeout: float = 10) -> list[tuple[str, str, dict[str, Any]]]:
        with self.got:
            assert self.got.wait_for(lambda: len(self.events) >= count, timeout), f"got {self.events}"
            return list(self.events)

    def close(self) -> None:
        self.client.close()


def test_the_stream_carries_notices_as_they_happen_and_resumes(api: Api, app: FastAPI) -> None:
    clue_id = api.report("rider")
    # Streams are endless: the server's shutdown cuts them after a second instead of waiting for them.
    with served(app, timeout_graceful_shutdown=1) as url:
        rider = Stream(url, api.auth("rider"))
        api.ok("dispatcher", clue_id, "verify")
        [(first_id, event, data)] = rider.wait_for(1)
        assert event == "notice" and data["kind"] == "clue_verified" and data["clue_id"] == clue_id
        police = Stream(url, api.auth("police"))
        api.ok("dispatcher", clue_id, "dispatch", {"assignee": "police"})
        assert police.wait_for(1)[0][2]["kind"] == "clue_dispatched"
        assert len(rider.events) == 1  # the rider's stream carries the rider's events only
        rider.close()
        # While the rider is away the clue is handled and closed; coming back after the last event seen,
        # the stream replays what was missed, in order.
        api.ok("police", clue_id, "accept")
        api.ok("police", clue_id, "resolve", {"outcome": "已查处"})
        api.ok("dispatcher", clue_id, "close", {"value_grade": "B"})
        again = Stream(url, api.auth("rider"), last_event_id=first_id)
        replayed = again.wait_for(1)
        assert [d["kind"] for _, _, d in replayed] == ["clue_closed"]
        assert int(replayed[0][0]) > int(first_id)
        police.close()
        again.close()


def test_every_signed_in_user_may_open_their_stream(api: Api, app: FastAPI) -> None:
    with served(app, timeout_graceful_shutdown=1) as url:
        for role in ("admin", "dispatcher", "police", "grid_staff", "patrol", "station_manager", "platform", "rider"):
            Stream(url, api.auth(role)).close()  # opened, and said it is ready
        refused = httpx.get(f"{url}/api/v1/alerts/stream", timeout=10)
        assert refused.status_code == 401 and refused.headers["content-type"].startswith("application/problem+json")


def test_an_event_of_a_savepoint_that_rolled_back_is_never_sent(
    api: Api, app: FastAPI, session_factory: sessionmaker[Session], district: District
) -> None:
    rider = district.users["rider"].id
    with served(app, timeout_graceful_shutdown=1) as url:
        stream = Stream(url, api.auth("rider"))
        with session_factory() as session:
            try:
                with session.begin_nested():
                    notices.emit(session, user_id=rider, event="notice", data={"n": "undone"})
                    raise RuntimeError
            except RuntimeError:
                pass
            notices.emit(session, user_id=rider, event="notice", data={"n": "kept"})
            session.commit()
        [(_id, _event, data)] = stream.wait_for(1)
        time.sleep(0.3)
        assert data == {"n": "kept"} and len(stream.events) == 1
        stream.close()


@pytest.mark.one_database(
    "postgresql", why="SQLite lets one writing transaction in at a time: none commit out of order"
)
def test_an_event_whose_transaction_commits_after_a_later_ones_is_not_skipped(
    api: Api, app: FastAPI, session_factory: sessionmaker[Session], district: District
) -> None:
    """Ids are drawn at insert, transactions commit in their own order: the stream gets both, whatever the
    order, live and when it resumes."""
    dispatcher = district.users["dispatcher"].id
    with served(app, timeout_graceful_shutdown=1) as url:
        stream = Stream(url, api.auth("dispatcher"))
        slow, quick = session_factory(), session_factory()
        first = notices.emit(slow, user_id=dispatcher, event="receipt", data={"n": "first"})
        second = notices.emit(quick, user_id=dispatcher, event="receipt", data={"n": "second"})
        assert first < second
        quick.commit()
        stream.wait_for(1)
        slow.commit()
        got = stream.wait_for(2)
        assert [e[2]["n"] for e in got] == ["second", "first"]
        slow.close()
        quick.close()
        stream.close()
        # Resuming from before both replays both, in id order.
        again = Stream(url, api.auth("dispatcher"), last_event_id=stream.ready_id)
        assert [e[2]["n"] for e in again.wait_for(2)] == ["first", "second"]
        again.close()
