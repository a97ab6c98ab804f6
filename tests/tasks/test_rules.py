"""Task rules: "fill the top N coverage gaps each evening", run by the job once a day or by hand."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from h3.api import basic_int as h3
from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.config import Settings
from riderwatch.infra.clock import utcnow
from riderwatch.models import PatrolTask, PatrolTaskCell, PatrolTaskRule, PatrolTaskRuleRun
from riderwatch.tasks.rules import run_due_rules
from riderwatch.tasks.service import TaskLimits
from tests.api.helpers import PROBLEM_JSON, Api
from tests.coverage.planted import generate, hexagon_area, store
from tests.coverage.test_hotspots_api import DAY_SPOT
from tests.factories import CENTER_LAT, CENTER_LON, District
from tests.tracking.helpers import count

SHANGHAI = ZoneInfo("Asia/Shanghai")
CELLS = hexagon_area(CENTER_LAT, CENTER_LON, 9, 8)


@pytest.fixture
def history(db: Session, district: District) -> None:
    """Four weeks of clues up to now in the community, with a planted hotspot and no rider coverage."""
    now = utcnow()
    spot = replace(DAY_SPOT, clues=60)
    store(
        db,
        generate(
            cells=CELLS, resolution=9, start=now - timedelta(days=28), end=now, background=150, hotspots=[spot], seed=3
        ),
    )


def rule_body(**extra: Any) -> dict[str, Any]:
    # A window from local midnight for 24 hours never lies wholly in the past.
    return {
        "name": "金鼎补盲",
        "area_kind": "community",
        "area_code": "jinding",
        "top_n": 2,
        "resolution": 9,
        "publish_at": "00:00",
        "window_start": "00:00",
        "window_hours": 24,
        "points": 15,
        **extra,
    }


def create(api: Api, **extra: Any) -> dict[str, Any]:
    res = api.client.post("/api/v1/task-rules", json=rule_body(**extra), headers=api.auth("dispatcher"))
    assert res.status_code == 201, res.text
    data: dict[str, Any] = res.json()
    return data


def test_a_rule_publishes_one_task_per_top_gap(api: Api, db: Session, history: None) -> None:
    rule = create(api)
    headers = api.auth("dispatcher")
    now = utcnow()
    gaps = api.client.post(
        "/api/v1/coverage/gaps",
        json={
            "area": {"community": "jinding"},
            "from": (now - timedelta(days=28)).isoformat(),
            "to": now.isoformat(),
            "resolution": 9,
        },
        headers=headers,
    ).json()
    assert len(gaps["features"]) >= 2
    res = api.client.post(f"/api/v1/task-rules/{rule['id']}/run", headers=headers)
    assert res.status_code == 200, res.text
    assert res.json()["tasks_created"] == 2
    tasks = db.scalars(select(PatrolTask).where(PatrolTask.rule_id == rule["id"]).order_by(PatrolTask.id)).all()
    cells = [db.scalars(select(PatrolTaskCell.cell).where(PatrolTaskCell.task_id == t.id)).all() for t in tasks]
    top = [f["properties"]["h3"] for f in gaps["features"][:2]]
    assert [[h3.int_to_str(c) for c in cs] for cs in cells] == [[top[0]], [top[1]]]
    assert [t.title for t in tasks] == ["金鼎补盲 #1", "金鼎补盲 #2"]
    assert all(t.open_to_all and t.points == 15 and t.kind == "cells" for t in tasks)
    local_midnight = utcnow().astimezone(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
    assert all(t.ends_at == local_midnight + timedelta(days=1) for t in tasks)
    db.rollback()  # end the read: on SQLite it holds the write lock the app needs
    # Riders see them; the rule ran today and will not run again today.
    assert len(api.client.get("/api/v1/me/tasks", headers=api.auth("rider")).json()["open"]) == 2
    again = api.client.post(f"/api/v1/task-rules/{rule['id']}/run", headers=headers)
    assert again.status_code == 409 and again.headers["content-type"].startswith(PROBLEM_JSON)
    listed = api.client.get("/api/v1/task-rules", headers=api.auth("police")).json()["rules"]
    assert listed[0]["last_run"]["tasks_created"] == 2


def test_the_job_runs_each_active_rule_once_a_day_after_its_time(
    api: Api, db: Session, history: None, settings: Settings
) -> None:
    limits = TaskLimits.from_settings(settings)
    local = utcnow().astimezone(SHANGHAI)
    # A publish time later today: the tests' instant leaves hours of the local day after it.
    later = f"{local.hour + 1:02d}:00"
    rule = create(api, publish_at=later, top_n=1)
    assert run_due_rules(db, limits=limits) == 0
    db.commit()
    assert count(db, PatrolTaskRuleRun) == 0
    publish_time = local.replace(hour=local.hour + 1, minute=1)
    assert run_due_rules(db, limits=limits, now=publish_time.astimezone(UTC)) == 1
    db.commit()
    assert run_due_rules(db, limits=limits, now=publish_time.astimezone(UTC)) == 0
    db.commit()
    # Paused rules do not run.
    paused = api.client.patch(
        f"/api/v1/task-rules/{rule['id']}", json={"active": False}, headers=api.auth("dispatcher")
    )
    assert paused.status_code == 200 and paused.json()["active"] is False
    assert run_due_rules(db, limits=limits, now=(publish_time + timedelta(days=1)).astimezone(UTC)) == 0
    db.commit()
    assert count(db, PatrolTask) == 1


def test_a_rule_without_history_makes_no_task_and_says_why(api: Api, db: Session, district: District) -> None:
    rule = create(api)
    res = api.client.post(f"/api/v1/task-rules/{rule['id']}/run", headers=api.auth("dispatcher"))
    assert res.status_code == 200, res.text
    assert res.json()["tasks_created"] == 0 and res.json()["note"]
    assert count(db, PatrolTask) == 0


def test_a_window_already_over_today_is_published_for_tomorrow(api: Api, db: Session, history: None) -> None:
    local = utcnow().astimezone(SHANGHAI)
    # The tests' instant is past 01:00 in Shanghai: today's window from midnight, an hour long, is over.
    rule = create(api, window_start="00:00", window_hours=1, top_n=1)
    res = api.client.post(f"/api/v1/task-rules/{rule['id']}/run", headers=api.auth("dispatcher"))
    assert res.json()["tasks_created"] == 1, res.text
    task = db.scalars(select(PatrolTask).where(PatrolTask.rule_id == rule["id"])).one()
    tomorrow = local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    assert (task.starts_at, task.ends_at) == (tomorrow, tomorrow + timedelta(hours=1))
    # The note riders read says why, without the clue statistics (those are for the police side).
    assert "骑手较少经过" in task.note and "z" not in task.note
    db.rollback()


def test_one_broken_rule_does_not_stop_the_others(
    api: Api, db: Session, history: None, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from riderwatch.errors import InvalidInput
    from riderwatch.tasks import rules as rules_module

    good, bad = create(api, name="好", top_n=1), create(api, name="坏", top_n=1)
    real = rules_module.query_gaps

    calls: list[int] = []

    def flaky(session: Session, **kwargs: Any) -> dict[str, Any]:
        calls.append(1)
        if len(calls) == 2:  # the second rule, by id
            raise InvalidInput("broken on purpose")
        return real(session, **kwargs)

    monkeypatch.setattr(rules_module, "query_gaps", flaky)
    assert run_due_rules(db, limits=TaskLimits.from_settings(settings)) == 1
    db.commit()
    runs = {r.rule_id: r for r in db.scalars(select(PatrolTaskRuleRun))}
    assert runs[good["id"]].tasks_created == 1
    assert runs[bad["id"]].tasks_created == 0 and "broken on purpose" in runs[bad["id"]].note
    db.rollback()


def test_a_long_rule_name_still_leaves_room_in_task_titles(api: Api, db: Session, history: None) -> None:
    too_long = api.client.post("/api/v1/task-rules", json=rule_body(name="金" * 120), headers=api.auth("dispatcher"))
    assert too_long.status_code == 422 and "at most 116" in too_long.text
    rule = create(api, name="金" * 116, top_n=2)
    res = api.client.post(f"/api/v1/task-rules/{rule['id']}/run", headers=api.auth("dispatcher"))
    assert res.status_code == 200 and res.json()["tasks_created"] == 2, res.text


@pytest.mark.parametrize(
    "change",
    [
        {"publish_at": "25:00"},
        {"window_start": "7pm"},
        {"area_code": "nowhere"},
        {"area_kind": "city"},
        {"top_n": 0},
        {"window_hours": 25},
        {"lookback_days": 0},
        {"points": -5},
        {"resolution": 7},
        {"name": ""},
    ],
)
def test_bad_rules_are_refused(api: Api, db: Session, district: District, change: dict[str, Any]) -> None:
    res = api.client.post("/api/v1/task-rules", json=rule_body(**change), headers=api.auth("dispatcher"))
    assert res.status_code == 422, res.text
    assert res.headers["content-type"].startswith(PROBLEM_JSON)
    assert count(db, PatrolTaskRule) == 0
