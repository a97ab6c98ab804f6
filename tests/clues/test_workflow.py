"""The clue workflow through the API: every action in every status, who may act, what each action needs."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.infra.clock import utcnow
from riderwatch.models import AuditEntry, Category, Clue
from tests.api.helpers import ACTORS, Api, assert_problem, body_for, drive, snapshot

STATUSES = ["submitted", "verified", "dispatched", "in_progress", "resolved", "closed", "rejected", "duplicate"]
# The designed workflow, written out independently of workflow.py: action → (from statuses, to status).
# `None` as target: the status stays.
DESIGN: dict[str, tuple[set[str], str | None]] = {
    "verify": ({"submitted"}, "verified"),
    "reject": ({"submitted", "verified"}, "rejected"),
    "mark_duplicate": ({"submitted", "verified"}, "duplicate"),
    "dispatch": ({"verified", "dispatched", "in_progress"}, "dispatched"),
    "accept": ({"dispatched"}, "in_progress"),
    "resolve": ({"in_progress"}, "resolved"),
    "close": ({"resolved"}, "closed"),
    "reopen": ({"resolved", "closed", "rejected", "duplicate"}, "verified"),
    "rate": ({"resolved", "closed"}, None),
}
# What the timeline's note must say for actions that carry a why.
NOTE_FIELD = {"reject": "reason", "reopen": "reason", "resolve": "outcome"}


def _parse(ts: str) -> datetime:
    value = datetime.fromisoformat(ts)
    assert value.tzinfo is not None, f"naive timestamp {ts!r}"
    return value


def _action_audits(db: Session, clue_id: int, action: str) -> int:
    stmt = select(func.count()).select_from(AuditEntry)
    stmt = stmt.where(AuditEntry.action == f"clue.{action}", AuditEntry.object_id == str(clue_id))
    n = db.scalar(stmt) or 0
    db.rollback()
    return n


@pytest.mark.parametrize("status", STATUSES)
def test_every_action_in_status(api: Api, db: Session, status: str) -> None:
    """Allowed actions move the clue and record who/when/what/why; the rest answer 409 and change nothing."""
    refused_on = drive(api, status)
    for action, (sources, target) in DESIGN.items():
        actor = ACTORS[action]
        if status not in sources:
            body = body_for(api, action, refused_on)
            before = snapshot(db, refused_on)
            res = api.act(actor, refused_on, action, body)
            if status == "submitted" and actor == "police":
                # Never dispatched: the clue is not the handler's to see at all.
                assert_problem(res, 404)
            else:
                problem = assert_problem(res, 409)
                assert problem["type"] == "/problems/transition-not-allowed"
                assert problem["status_now"] == status
            assert snapshot(db, refused_on) == before, f"refused {action} in {status} changed the clue"
            continue
        clue_id = drive(api, status)
        if action == "dispatch" and status != "verified":
            body = {"assignee": "patrol"}  # a hand-over to another party
        else:
            body = body_for(api, action, clue_id)
        before = snapshot(db, clue_id)
        started = utcnow()
        data = api.ok(actor, clue_id, action, body)
        finished = utcnow()
        expected = target or status
        assert data["status"] == expected, f"{action} from {status}"
        after = snapshot(db, clue_id)
        assert after.status == expected
        assert after.events == before.events + 1
        assert _action_audits(db, clue_id, action) >= 1
        entry = data["timeline"][-1]
        assert entry["action"] == action
        assert entry["from_status"] == status
        assert entry["to_status"] == expected
        assert entry["actor"]["username"] == actor
        assert started - timedelta(seconds=1) <= _parse(entry["at"]) <= finished + timedelta(seconds=1)
        if action in NOTE_FIELD:
            assert entry["note"] == body[NOTE_FIELD[action]]
        if action == "dispatch":
            assert data["assignee"]["username"] == body["assignee"]
            assert entry["data"]["assignee"] == body["assignee"]
        if action == "close":
            assert data["value_grade"] == "B" and entry["data"]["value_grade"] == "B"
        if action == "rate":
            assert data["rating"] == 4


def test_happy_path_closes_the_loop_for_the_rider(api: Api) -> None:
    clue_id = api.report()
    assert api.get("rider", clue_id)["allowed_actions"] == []
    api.ok("dispatcher", clue_id, "verify", {"note": "已电话核实"})
    api.ok("dispatcher", clue_id, "dispatch", {"assignee": "police"})
    assert api.get("police", clue_id)["allowed_actions"] == ["accept"]
    api.ok("police", clue_id, "accept")
    assert api.get("rider", clue_id)["outcome"] is None
    api.ok("police", clue_id, "resolve", {"outcome": "  已督促物业清理  "})
    mine = api.get("rider", clue_id)
    assert mine["status"] == "resolved"
    assert mine["outcome"] == "已督促物业清理"
    assert "rate" in mine["allowed_actions"]
    listed = api.client.get("/api/v1/clues", headers=api.auth("rider")).json()["items"]
    assert [(c["id"], c["outcome"]) for c in listed] == [(clue_id, "已督促物业清理")]
    api.ok("dispatcher", clue_id, "close", {"value_grade": "A"})
    api.ok("rider", clue_id, "rate", {"rating": 5, "note": "处理很快"})
    final = api.get("rider", clue_id)
    assert (final["status"], final["value_grade"], final["rating"]) == ("closed", "A", 5)
    assert [e["action"] for e in final["timeline"]] == [
        "submit",
        "verify",
        "dispatch",
        "accept",
        "resolve",
        "close",
        "rate",
    ]
    assert final["timeline"][1]["note"] == "已电话核实"
    assert "rate" not in final["allowed_actions"]


def test_rate_only_once_and_only_by_the_reporter(api: Api, db: Session) -> None:
    clue_id = drive(api, "resolved")
    before = snapshot(db, clue_id)
    assert_problem(api.act("dispatcher", clue_id, "rate", {"rating": 3}), 403)
    assert_problem(api.act("police", clue_id, "rate", {"rating": 3}), 403)
    assert_problem(api.act("rider2", clue_id, "rate", {"rating": 3}), 404)  # not theirs to see
    assert snapshot(db, clue_id) == before
    api.ok("rider", clue_id, "rate", {"rating": 2})
    rated = snapshot(db, clue_id)
    assert_problem(api.act("rider", clue_id, "rate", {"rating": 5}), 409)
    api.ok("dispatcher", clue_id, "close", {"value_grade": "C"})
    closed = snapshot(db, clue_id)
    assert_problem(api.act("rider", clue_id, "rate", {"rating": 5}), 409)
    assert snapshot(db, clue_id) == closed
    assert rated.row["rating"] == closed.row["rating"] == 2


@pytest.mark.parametrize(
    ("status", "who", "action", "body", "expected"),
    [
        ("dispatched", "police2", "accept", {}, 404),  # another officer: the clue is invisible to them
        ("dispatched", "grid_staff", "accept", {}, 404),
        ("dispatched", "dispatcher", "accept", {}, 403),
        ("in_progress", "dispatcher", "resolve", {"outcome": "x"}, 403),
        ("in_progress", "police", "close", {"value_grade": "A"}, 403),
        ("in_progress", "police", "dispatch", {"assignee": "police2"}, 403),
        ("submitted", "rider", "verify", {}, 403),
        ("submitted", "admin", "verify", {}, 403),
        ("submitted", "admin", "reject", {"reason": "x"}, 403),
        ("submitted", "rider2", "verify", {}, 404),
        ("resolved", "rider", "close", {"value_grade": "A"}, 403),
        ("resolved", "rider", "reopen", {"reason": "x"}, 403),
        ("resolved", "police", "rate", {"rating": 5}, 403),
        ("closed", "station_manager", "reopen", {"reason": "x"}, 404),  # clues are not theirs to see
        ("closed", "platform", "reopen", {"reason": "x"}, 404),
    ],
)
def test_wrong_person_is_refused_and_nothing_changes(
    api: Api, db: Session, status: str, who: str, action: str, body: dict[str, Any], expected: int
) -> None:
    clue_id = drive(api, status)
    before = snapshot(db, clue_id)
    assert_problem(api.act(who, clue_id, action, body), expected)
    assert snapshot(db, clue_id) == before


@pytest.mark.parametrize(
    ("status", "action", "body"),
    [
        ("submitted", "reject", {}),
        ("submitted", "reject", {"reason": "   "}),
        ("verified", "dispatch", {}),
        ("verified", "dispatch", {"assignee": "rider"}),
        ("verified", "dispatch", {"assignee": "dispatcher"}),
        ("verified", "dispatch", {"assignee": "nobody-here"}),
        ("in_progress", "resolve", {}),
        ("in_progress", "resolve", {"outcome": ""}),
        ("resolved", "close", {}),
        ("resolved", "close", {"value_grade": "D"}),
        ("resolved", "rate", {}),
        ("resolved", "rate", {"rating": 0}),
        ("resolved", "rate", {"rating": 6}),
        ("resolved", "rate", {"rating": "five"}),
        ("closed", "reopen", {}),
        ("submitted", "mark_duplicate", {}),
        ("submitted", "mark_duplicate", {"duplicate_of": "self"}),
        ("submitted", "mark_duplicate", {"duplicate_of": 999_999}),
        ("submitted", "mark_duplicate", {"duplicate_of": 2**70}),
        ("submitted", "verify", {"colour": "red"}),
    ],
)
def test_missing_or_bad_body_is_422_and_nothing_changes(
    api: Api, db: Session, status: str, action: str, body: dict[str, Any]
) -> None:
    clue_id = drive(api, status)
    if body.get("duplicate_of") == "self":
        body = {"duplicate_of": clue_id}
    before = snapshot(db, clue_id)
    assert_problem(api.act(ACTORS[action], clue_id, action, body), 422)
    assert snapshot(db, clue_id) == before


def test_duplicate_of_a_duplicate_is_refused(api: Api, db: Session) -> None:
    original = api.report("rider2")
    copy = api.report("rider2")
    api.ok("dispatcher", copy, "mark_duplicate", {"duplicate_of": original})
    clue_id = api.report()
    before = snapshot(db, clue_id)
    assert_problem(api.act("dispatcher", clue_id, "mark_duplicate", {"duplicate_of": copy}), 422)
    assert snapshot(db, clue_id) == before
    data = api.ok("dispatcher", clue_id, "mark_duplicate", {"duplicate_of": original})
    assert data["duplicate_of"] == original


def test_redispatch_to_the_same_person_is_a_conflict(api: Api, db: Session) -> None:
    clue_id = drive(api, "dispatched")
    before = snapshot(db, clue_id)
    assert_problem(api.act("dispatcher", clue_id, "dispatch", {"assignee": "police"}), 409)
    assert snapshot(db, clue_id) == before


@pytest.mark.parametrize("status", ["resolved", "closed", "rejected", "duplicate"])
def test_reopen_returns_to_verified_with_a_new_deadline(api: Api, db: Session, status: str) -> None:
    clue_id = drive(api, status)
    # The clue had run late: long past its deadline and escalated.
    clue = db.get(Clue, clue_id)
    assert clue is not None
    clue.deadline_at = utcnow() - timedelta(days=3)
    clue.escalation_level = 2
    hours = db.get(Category, clue.category_code).deadline_hours  # type: ignore[union-attr]
    db.commit()
    started = utcnow()
    data = api.ok("dispatcher", clue_id, "reopen", {"reason": "群众再次反映"})
    assert data["status"] == "verified"
    assert data["overdue"] is False
    assert data["escalation_level"] == 0
    assert data["value_grade"] is None
    deadline = _parse(data["deadline_at"])
    assert started + timedelta(hours=hours) - timedelta(seconds=2) <= deadline
    assert deadline <= utcnow() + timedelta(hours=hours) + timedelta(seconds=2)
    assert data["timeline"][-1]["note"] == "群众再次反映"
    # The reopened clue can be worked again to the end.
    if data["assignee"] is None:
        api.ok("dispatcher", clue_id, "dispatch", {"assignee": "police"})
    else:
        api.ok("dispatcher", clue_id, "dispatch", {"assignee": "grid_staff"})


def test_unknown_action_and_unknown_clue(api: Api, db: Session) -> None:
    clue_id = api.report()
    before = snapshot(db, clue_id)
    assert_problem(api.act("dispatcher", clue_id, "approve"), 404)
    assert_problem(api.act("dispatcher", clue_id + 1000, "verify"), 404)
    assert_problem(api.act("dispatcher", 2**70, "verify"), 422)
    assert snapshot(db, clue_id) == before
