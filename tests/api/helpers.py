"""Shared helpers for the clue-desk API tests: logging in, reporting, driving clues through the workflow."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.models import AuditEntry, Clue, ClueEvent
from tests.factories import PASSWORD, clue_body

PROBLEM_JSON = "application/problem+json"


@dataclass
class Api:
    """A test client that logs each user in once and remembers the bearer headers."""

    client: TestClient
    _headers: dict[str, dict[str, str]] = field(default_factory=dict)

    def auth(self, username: str | None) -> dict[str, str]:
        if username is None:
            return {}
        if username not in self._headers:
            res = self.client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
            assert res.status_code == 200, res.text
            self._headers[username] = {"Authorization": f"Bearer {res.json()['access_token']}"}
        return self._headers[username]

    def report(self, username: str = "rider", **overrides: Any) -> int:
        res = self.client.post("/api/v1/clues", json=clue_body(**overrides), headers=self.auth(username))
        assert res.status_code == 201, res.text
        return int(res.json()["id"])

    def act(self, username: str, clue_id: int, action: str, body: dict[str, Any] | None = None) -> Response:
        return self.client.post(
            f"/api/v1/clues/{clue_id}/actions/{action}", json=body or {}, headers=self.auth(username)
        )

    def ok(self, username: str, clue_id: int, action: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        res = self.act(username, clue_id, action, body)
        assert res.status_code == 200, f"{action} by {username}: {res.status_code} {res.text}"
        data: dict[str, Any] = res.json()
        return data

    def get(self, username: str, clue_id: int) -> dict[str, Any]:
        res = self.client.get(f"/api/v1/clues/{clue_id}", headers=self.auth(username))
        assert res.status_code == 200, res.text
        data: dict[str, Any] = res.json()
        return data


# The body each action needs to succeed (the dispatch target is the district's community police).
GOOD_BODIES: dict[str, dict[str, Any]] = {
    "verify": {},
    "reject": {"reason": "无法核实"},
    "mark_duplicate": {},  # duplicate_of is filled in with a real other clue
    "dispatch": {"assignee": "police"},
    "accept": {},
    "resolve": {"outcome": "已清理楼道电池"},
    "close": {"value_grade": "B"},
    "reopen": {"reason": "问题复现"},
    "rate": {"rating": 4},
}
# Who takes each action when it is allowed.
ACTORS: dict[str, str] = {
    "verify": "dispatcher",
    "reject": "dispatcher",
    "mark_duplicate": "dispatcher",
    "dispatch": "dispatcher",
    "close": "dispatcher",
    "reopen": "dispatcher",
    "accept": "police",
    "resolve": "police",
    "rate": "rider",
}
# How to bring a fresh clue into each status through the API. Statuses other than `submitted` go
# through a dispatch and a reopen where they can, so the clue has an assignee who may try the
# handler's actions and be refused for the status alone.
PATHS: dict[str, list[str]] = {
    "submitted": [],
    "verified": ["verify", "dispatch", "accept", "resolve", "reopen"],
    "dispatched": ["verify", "dispatch"],
    "in_progress": ["verify", "dispatch", "accept"],
    "resolved": ["verify", "dispatch", "accept", "resolve"],
    "closed": ["verify", "dispatch", "accept", "resolve", "close"],
    "rejected": ["verify", "dispatch", "accept", "resolve", "reopen", "reject"],
    "duplicate": ["verify", "dispatch", "accept", "resolve", "reopen", "mark_duplicate"],
}


def body_for(api: Api, action: str, clue_id: int) -> dict[str, Any]:
    body = dict(GOOD_BODIES[action])
    if action == "mark_duplicate":
        body["duplicate_of"] = api.report("rider2")
    return body


def drive(api: Api, status: str, **overrides: Any) -> int:
    """A new clue reported by `rider`, brought into `status` through the API."""
    clue_id = api.report("rider", **overrides)
    for action in PATHS[status]:
        api.ok(ACTORS[action], clue_id, action, body_for(api, action, clue_id))
    assert api.get("dispatcher", clue_id)["status"] == status
    return clue_id


@dataclass(frozen=True)
class Snapshot:
    status: str
    events: int
    audit: int
    row: dict[str, Any]


def snapshot(db: Session, clue_id: int) -> Snapshot:
    """What a refused request must leave untouched: the clue row, its timeline and the audit log."""
    db.expire_all()
    clue = db.get(Clue, clue_id)
    assert clue is not None
    row = {c.key: getattr(clue, c.key) for c in Clue.__table__.columns}
    events = db.scalar(select(func.count()).select_from(ClueEvent).where(ClueEvent.clue_id == clue_id)) or 0
    audit = db.scalar(select(func.count()).select_from(AuditEntry)) or 0
    # End the read transaction: on SQLite it holds the write lock (BEGIN IMMEDIATE) the app needs.
    db.rollback()
    return Snapshot(status=row["status"], events=events, audit=audit, row=row)


def assert_problem(res: Response, status: int) -> dict[str, Any]:
    """An RFC 9457 problem document with the given status."""
    assert res.status_code == status, f"expected {status}, got {res.status_code}: {res.text}"
    assert res.headers["content-type"].startswith(PROBLEM_JSON), res.headers["content-type"]
    body: dict[str, Any] = res.json()
    for key in ("type", "title", "status", "detail"):
        assert key in body, f"problem document lacks {key!r}: {body}"
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body
