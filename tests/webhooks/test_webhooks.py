"""Webhooks: the parties' duty group chats and users' own robots are told of the closed loop's events and
of alerts, in each receiver's format (signed as WeCom, DingTalk, Feishu and RiderWatch's JSON document
it), by a worker that retries with growing waits, gives up into a dead state that can be sent again, and
is never held up by a slow receiver. The receivers are real HTTP servers on loopback."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest
from fastapi import FastAPI, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from riderwatch.infra.clock import utcnow
from riderwatch.models import WebhookDelivery
from riderwatch.webhooks.service import Retries
from riderwatch.webhooks.worker import Worker, WorkerSettings
from tests.api.helpers import Api, assert_problem
from tests.live import served
from tests.tracking.helpers import ago, ping, ready, send

SECRET = "a-shared-secret-of-some-length"


@dataclass
class Receiver:
    """What the receivers were sent, and how each path answers (a list of answers, the last repeated)."""

    url: str = ""
    got: list[tuple[str, dict[str, str], bytes, str]] = field(default_factory=list)
    answers: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    delay: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(body) for p, _h, body, _q in self.got if p == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    with receiving(found):
        yield found


@contextmanager
def receiving(found: Receiver) -> Iterator[None]:
    """Receivers for every path on a real server on loopback, recording into `found`."""
    app = FastAPI()

    @app.post("/{path:path}")
    async def take(path: str, request: Request) -> Response:
        body = await request.body()
        with found.lock:
            found.got.append((f"/{path}", dict(request.headers), body, request.url.query))
            answers = found.answers.get(f"/{path}", [(200, {"errcode": 0, "errmsg": "ok", "code": 0})])
            status, answer = answers.pop(0) if len(answers) > 1 else answers[0]
        await asyncio.sleep(found.delay.get(f"/{path}", 0))
        return Response(json.dumps(answer), status_code=status, media_type="application/json")

    with served(app, timeout_graceful_shutdown=1) as url:
        found.url = url
        yield


def _channel(api: Api, who: str = "admin", **fields: Any) -> dict[str, Any]:
    body = {"name": "社区民警值班群", "party": "police", "format": "wecom", "kinds": ["clue_dispatched"], **fields}
    res = api.client.post("/api/v1/webhooks", json=body, headers=api.auth(who))
    assert res.status_code == 201, res.text
    data: dict[str, Any] = res.json()
    return data


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


def _drain(factory: sessionmaker[Session], clock: Clock | None = None, **settings: Any) -> int:
    worker = Worker(factory, WorkerSettings(**settings), clock=clock or utcnow)
    return asyncio.run(worker.drain())


def _rows(db: Session) -> list[WebhookDelivery]:
    """The deliveries as they are now, detached (reading them later opens no transaction)."""
    rows = list(db.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))
    db.expunge_all()
    db.rollback()
    return rows


def _dispatch(api: Api) -> int:
    clue_id = api.report("rider")
    api.ok("dispatcher", clue_id, "verify")
    api.ok("dispatcher", clue_id, "dispatch", {"assignee": "police"})
    return clue_id


def test_a_dispatch_reaches_the_handlers_duty_chat_in_each_format(
    api: Api, receiver: Receiver, session_factory: sessionmaker[Session]
) -> None:
    _channel(api, url=f"{receiver.url}/wecom", format="wecom")
    _channel(api, url=f"{receiver.url}/dingtalk?access_token=t0k", format="dingtalk", secret=SECRET)
    _channel(api, url=f"{receiver.url}/feishu", format="feishu", secret=SECRET, locale="en")
    _channel(api, url=f"{receiver.url}/json", format="json", secret=SECRET)
    _channel(api, url=f"{receiver.url}/grid", party="grid_staff")  # another party's chat
    _channel(api, url=f"{receiver.url}/alerts-only", kinds=["alert"])  # another kind
    clue_id = _dispatch(api)
    assert _drain(session_factory) == 4

    [wecom] = receiver.bodies("/wecom")
    assert wecom["msgtype"] == "text"
    text = wecom["text"]["content"]
    assert f"线索 #{clue_id}" in text and "police" in text and "截止" in text, text
    assert "rider" not in text  # never the reporter

    [(_, _, body, query)] = [g for g in receiver.got if g[0] == "/dingtalk"]
    params = parse_qs(query)
    assert params["access_token"] == ["t0k"]
    [stamp], [sign] = params["timestamp"], params["sign"]
    assert abs(int(stamp) / 1000 - utcnow().timestamp()) < 60
    # DingTalk's documented check: Base64(HMAC-SHA256(secret, "timestamp\nsecret")).
    expected = hmac.new(SECRET.encode(), f"{stamp}\n{SECRET}".encode(), hashlib.sha256).digest()
    assert base64.b64decode(sign) == expected and json.loads(body)["text"]["content"] == text

    [feishu] = receiver.bodies("/feishu")
    # Feishu's documented check: HMAC-SHA256 keyed with "timestamp\nsecret" over nothing, Base64.
    key = f"{feishu['timestamp']}\n{SECRET}".encode()
    assert feishu["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    assert feishu["msg_type"] == "text" and f"Clue #{clue_id}" in feishu["content"]["text"]  # in English

    [(_, headers, body, _q)] = [g for g in receiver.got if g[0] == "/json"]
    signed = f"{headers['x-riderwatch-timestamp']}.".encode() + body
    assert (
        headers["x-riderwatch-signature"] == "sha256=" + hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    )
    document = json.loads(body)
    assert document["kind"] == "clue_dispatched" and document["data"]["clue_id"] == clue_id
    assert headers["x-riderwatch-event"] == "clue_dispatched"
    assert receiver.bodies("/grid") == [] and receiver.bodies("/alerts-only") == []


def test_a_failing_receiver_is_tried_again_later_then_given_up_and_sent_again(
    api: Api, receiver: Receiver, session_factory: sessionmaker[Session], db: Session
) -> None:
    channel = _channel(api, url=f"{receiver.url}/flaky")
    receiver.answers["/flaky"] = [(500, {"error": "busy"}), (200, {"errcode": 93000, "errmsg": "invalid webhook url"})]
    _dispatch(api)
    clock = Clock()
    retries = Retries(max_attempts=3, first_wait_s=10)
    assert _drain(session_factory, clock, retries=retries) == 1
    [row] = _rows(db)
    assert row.status == "pending" and row.attempts == 1 and row.last_status == 500 and "busy" in row.last_error
    assert timedelta(seconds=10) <= row.next_attempt_at - clock.now <= timedelta(seconds=11)
    assert _drain(session_factory, clock, retries=retries) == 0  # not due yet

    clock.now += timedelta(seconds=11)
    _drain(session_factory, clock, retries=retries)
    [row] = _rows(db)
    # The robot answered 200 with an error code: that is a refusal, not a delivery.
    assert row.status == "pending" and row.attempts == 2 and "93000" in row.last_error
    assert timedelta(seconds=20) <= row.next_attempt_at - clock.now <= timedelta(seconds=22)
    clock.now += timedelta(seconds=22)
    _drain(session_factory, clock, retries=retries)
    [row] = _rows(db)
    assert row.status == "dead" and row.attempts == 3

    listed = api.client.get(f"/api/v1/webhooks/{channel['id']}/deliveries", headers=api.auth("admin")).json()
    assert [d["status"] for d in listed["items"]] == ["dead"]
    assert api.client.get("/api/v1/webhooks", params={"scope": "parties"}, headers=api.auth("admin")).json()["items"][
        0
    ]["deliveries"] == {"pending": 0, "delivered": 0, "dead": 1}
    receiver.answers["/flaky"] = [(200, {"errcode": 0})]
    again = api.client.post(f"/api/v1/webhooks/deliveries/{row.id}/retry", headers=api.auth("admin"))
    assert again.status_code == 200 and again.json()["status"] == "pending"
    assert_problem(api.client.post(f"/api/v1/webhooks/deliveries/{row.id}/retry", headers=api.auth("admin")), 409)
    _drain(session_factory, clock, retries=retries)
    [row] = _rows(db)
    assert row.status == "delivered" and row.attempts == 1 and row.delivered_at is not None


def test_a_slow_receiver_holds_up_nobody_else(
    api: Api, receiver: Receiver, session_factory: sessionmaker[Session], db: Session
) -> None:
    _channel(api, url=f"{receiver.url}/slow", name="slow")
    _channel(api, url=f"{receiver.url}/fast", name="fast")
    receiver.delay["/slow"] = 3
    _dispatch(api)
    worker = Worker(session_factory, WorkerSettings(timeout_s=1))
    done: dict[str, float] = {}

    async def run() -> None:
        async with worker._client() as client:
            started = time.monotonic()
            await worker.run_once(client)
            while worker._running:
                await asyncio.sleep(0.02)
                fast = [r for r in _rows(db) if r.status == "delivered"]
                if fast and "fast" not in done:
                    done["fast"] = time.monotonic() - started
            done["all"] = time.monotonic() - started

    asyncio.run(run())
    assert done["fast"] < 1, done  # delivered while the slow one was still waiting
    rows = {r.channel_id: r for r in _rows(db)}
    assert sorted(r.status for r in rows.values()) == ["delivered", "pending"]
    [slow] = [r for r in rows.values() if r.status == "pending"]
    assert slow.last_error == "no answer in time" and slow.attempts == 1, (slow.last_error, slow.attempts, done)


def test_escalation_close_alerts_and_sightings_reach_their_chats(
    api: Api, receiver: Receiver, session_factory: sessionmaker[Session], db: Session
) -> None:
    from riderwatch.clues.service import escalate_overdue

    kinds = ["clue_dispatched", "clue_escalated", "clue_closed", "alert", "sighting"]
    _channel(api, url=f"{receiver.url}/command", party="command", kinds=kinds)
    _channel(api, url=f"{receiver.url}/police", party="police", kinds=kinds)
    _channel(api, url=f"{receiver.url}/patrol", party="patrol", kinds=kinds)
    clue_id = _dispatch(api)
    assert escalate_overdue(db, now=utcnow() + timedelta(days=2, hours=12)) == 1
    db.commit()
    api.ok("police", clue_id, "accept")
    api.ok("police", clue_id, "resolve", {"outcome": "已清理"})
    api.ok("dispatcher", clue_id, "close", {"value_grade": "B"})

    ready(api, "rider")
    send(api, [ping(ago(0))])
    alert = api.client.post(
        "/api/v1/alerts",
        json={
            "event": "在逃嫌疑人",
            "headline": "金鼎一带发现在逃嫌疑人",
            "category": "Security",
            "urgency": "Immediate",
            "severity": "Severe",
            "certainty": "Observed",
            "expires": (utcnow() + timedelta(hours=2)).isoformat(),
            "audience": "all",
            "parties": ["patrol"],
        },
        headers=api.auth("dispatcher"),
    )
    assert alert.status_code == 201, alert.text
    alert_id = alert.json()["id"]
    assert alert.json()["parties"] == ["patrol"]
    sighting = api.report("rider", alert_id=alert_id)
    _drain(session_factory)

    def kinds_at(path: str) -> list[str]:
        return [b["text"]["content"][:40] for b in receiver.bodies(path)]

    command, police, patrol = kinds_at("/command"), kinds_at("/police"), kinds_at("/patrol")
    assert len(police) == 3, police  # dispatched to them, overdue at level 1, closed
    assert len(command) == 4, command  # overdue, closed, the alert, the sighting
    assert len(patrol) == 1 and "金鼎一带发现在逃嫌疑人" in receiver.bodies("/patrol")[0]["text"]["content"]
    assert any(f"#{sighting}" in b["text"]["content"] for b in receiver.bodies("/command"))
    # The patrol's users have the alert in their inbox.
    notices = api.client.get("/api/v1/me/notices", headers=api.auth("patrol")).json()["items"]
    assert [(n["kind"], n.get("alert_id")) for n in notices] == [("alert", alert_id)]
    assert api.client.get("/api/v1/me/notices", headers=api.auth("grid_staff")).json()["items"] == []


def test_my_own_robot_gets_the_notices_i_choose(
    api: Api, receiver: Receiver, session_factory: sessionmaker[Session]
) -> None:
    mine = _channel(api, "police", party=None, name="我的机器人", url=f"{receiver.url}/mine", kinds=["clue_escalated"])
    assert mine["party"] is None and "secret" not in mine
    _channel(api, "police", party=None, name="派单", url=f"{receiver.url}/dispatches", kinds=["clue_dispatched"])
    clue_id = _dispatch(api)
    _drain(session_factory)
    assert receiver.bodies("/mine") == []
    [message] = receiver.bodies("/dispatches")
    assert f"线索 #{clue_id} 已分派给您" in message["text"]["content"], message
    # Another user sees neither; a rider may not have one; nor may anyone but an administrator keep a party's.
    assert api.client.get("/api/v1/webhooks", headers=api.auth("grid_staff")).json()["items"] == []
    assert_problem(api.client.get(f"/api/v1/webhooks/{mine['id']}", headers=api.auth("grid_staff")), 404)
    assert_problem(api.client.get("/api/v1/webhooks", headers=api.auth("rider")), 403)
    body = {"name": "x", "party": "police", "format": "wecom", "url": f"{receiver.url}/x", "kinds": ["alert"]}
    assert_problem(api.client.post("/api/v1/webhooks", json=body, headers=api.auth("dispatcher")), 403)


@pytest.mark.parametrize(
    ("fields", "field_name"),
    [
        ({"url": "ftp://robot.example/hook"}, "url"),
        ({"url": "not an address"}, "url"),
        ({"format": "json", "secret": "short"}, "secret"),
        ({"kinds": ["clue_verified"]}, "kinds"),  # a reporter's notice is no party's event
        ({"kinds": []}, "kinds"),
        ({"format": "telegram"}, "format"),
    ],
)
def test_a_bad_channel_is_refused_and_nothing_is_stored(
    api: Api, db: Session, fields: dict[str, Any], field_name: str
) -> None:
    body = {
        "name": "值班群",
        "party": "police",
        "format": "wecom",
        "url": "http://robot.example/hook",
        "kinds": ["alert"],
    }
    res = api.client.post("/api/v1/webhooks", json=body | fields, headers=api.auth("admin"))
    problem = assert_problem(res, 422)
    assert field_name in json.dumps(problem), problem
    assert api.client.get("/api/v1/webhooks", params={"scope": "parties"}, headers=api.auth("admin")).json() == {
        "items": []
    }


def test_a_retired_channel_is_sent_nothing_until_restored(
    api: Api, receiver: Receiver, session_factory: sessionmaker[Session], db: Session
) -> None:
    channel = _channel(api, url=f"{receiver.url}/chat", secret="")
    retired = api.client.patch(f"/api/v1/webhooks/{channel['id']}", json={"active": False}, headers=api.auth("admin"))
    assert retired.status_code == 200 and retired.json()["active"] is False
    _dispatch(api)
    assert _drain(session_factory) == 0 and _rows(db) == []  # a retired channel takes no new events
    assert_problem(api.client.post(f"/api/v1/webhooks/{channel['id']}/test", headers=api.auth("admin")), 409)
    api.client.patch(f"/api/v1/webhooks/{channel['id']}", json={"active": True}, headers=api.auth("admin"))
    test = api.client.post(f"/api/v1/webhooks/{channel['id']}/test", headers=api.auth("admin"))
    assert test.status_code == 202
    assert _drain(session_factory) == 1
    [message] = receiver.bodies("/chat")
    assert "社区民警值班群" in message["text"]["content"] and "测试" in message["text"]["content"]


def test_two_workers_never_send_one_delivery_twice(
    api: Api, receiver: Receiver, session_factory: sessionmaker[Session], db: Session
) -> None:
    _channel(api, url=f"{receiver.url}/once")
    for _ in range(6):
        _dispatch(api)

    async def both() -> None:
        a = Worker(session_factory, WorkerSettings(at_once=2))
        b = Worker(session_factory, WorkerSettings(at_once=2))
        await asyncio.gather(a.drain(), b.drain())

    asyncio.run(both())
    assert len(receiver.bodies("/once")) == 6
    assert [r.status for r in _rows(db)] == ["delivered"] * 6


def test_a_delivery_held_by_a_worker_that_died_is_taken_over(
    api: Api, receiver: Receiver, session_factory: sessionmaker[Session], db: Session
) -> None:
    from riderwatch.webhooks import service

    _channel(api, url=f"{receiver.url}/chat")
    _dispatch(api)
    clock = Clock()
    with session_factory() as session:  # a worker takes it, then its process is killed mid-send
        [(_taken, _channel_row)] = service.claim_due(
            session, worker="dead-worker", now=clock.now, limit=5, hold=timedelta(seconds=50)
        )
        session.commit()
    assert _drain(session_factory, clock) == 0  # held: nobody else sends it
    clock.now += timedelta(seconds=51)
    assert _drain(session_factory, clock) == 1
    [row] = _rows(db)
    assert row.status == "delivered" and row.attempts == 1 and len(receiver.bodies("/chat")) == 1
