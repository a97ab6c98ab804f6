"""The patrol task pages: who may open each, the publish form (refusals keep the values and store
nothing), the detail with named results only for the command centre, cancelling with confirmation,
the rules page, the rider's task list, and the coverage map's link to the publish form."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from h3.api import basic_int as h3
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.infra.clock import utcnow
from riderwatch.models import AuditEntry, PatrolTask, PatrolTaskCheckpoint, PatrolTaskInvite, PatrolTaskRule
from tests.api.helpers import Api
from tests.factories import CENTER_LAT, CENTER_LON, District
from tests.pages import Browser, scalar
from tests.tasks.test_tasks import NORTH, checkpoints_task, on_duty, publish, walk

ROLES = ("admin", "dispatcher", "police", "grid_staff", "patrol", "station_manager", "platform", "rider")
READERS = {"admin", "dispatcher", "police", "grid_staff", "patrol", "station_manager"}
SHANGHAI = ZoneInfo("Asia/Shanghai")
REFS = re.compile(r'(?:src|href)="([^"]+)"')


def _local(dt: datetime) -> str:
    return dt.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")


def _count(db: Session, model: type[Any], *where: Any) -> int:
    return int(scalar(db, select(func.count()).select_from(model).where(*where)) or 0)


def _audits(db: Session, action: str) -> int:
    return _count(db, AuditEntry, AuditEntry.action == action)


def _form(**overrides: Any) -> dict[str, Any]:
    """A publish form with two check-in points, open to all, for the next hours."""
    start = utcnow() - timedelta(minutes=5)
    values: dict[str, Any] = {
        "title": "金鼎夜巡",
        "note": "Look at the bike racks",
        "starts_at": _local(start),
        "ends_at": _local(start + timedelta(hours=3)),
        "target": "checkpoints",
        "checkpoints": f"{CENTER_LAT}, {CENTER_LON}, 100, 金鼎广场\n{NORTH[0]}, {NORTH[1]}, 120, 北门",
        "open_to_all": "1",
        "points": "20",
        "required_pct": "100",
        "max_riders": "",
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def _published(res: Any) -> int:
    assert res.status_code == 303, res.text[:2000]
    match = re.fullmatch(r"/tasks/(\d+)\?done=published", res.headers["location"])
    assert match, res.headers["location"]
    return int(match.group(1))


@pytest.fixture
def task_id(api: Api, db: Session) -> int:
    return int(publish(api, db, checkpoints_task(riders=[], open_to_all=True))["task"]["id"])


def test_pages_by_role(browser: Callable[[str], Browser], task_id: int) -> None:
    pages = {
        "/tasks": READERS,
        "/tasks?phase=all": READERS,
        "/tasks/rules": READERS,
        f"/tasks/{task_id}": READERS,
        "/tasks/new": {"dispatcher"},
        f"/tasks/{task_id}/cancel": {"dispatcher"},
        "/my/tasks": {"rider"},
        f"/my/tasks/{task_id}": {"rider"},
    }
    for role in ROLES:
        user = browser(role)
        for path, allowed in pages.items():
            res = user.client.get(path, follow_redirects=False)
            if role in allowed:
                assert res.status_code == 200, (path, role, res.text[:300])
                # Scripts, styles and links stay on the server (the intranet has nothing else).
                for ref in REFS.findall(res.text):
                    assert ref.startswith(("/", "#", "data:")), (path, ref)
            else:
                assert res.status_code == 403, (path, role)
                assert 'data-testid="error-page"' in res.text


@pytest.mark.parametrize("path", ["/tasks", "/tasks/new", "/tasks/rules", "/my/tasks"])
def test_pages_send_anonymous_visitors_to_login(client: TestClient, district: District, path: str) -> None:
    res = client.get(path, follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"] == f"/login?next={path}"


def test_navigation_and_manager_links(browser: Callable[[str], Browser], task_id: int) -> None:
    dispatcher = browser("dispatcher").client.get("/tasks").text
    assert 'data-testid="nav-tasks"' in dispatcher and 'data-testid="link-new-task"' in dispatcher
    police = browser("police").client.get("/tasks").text
    assert 'data-testid="nav-tasks"' in police and 'data-testid="link-new-task"' not in police
    detail = browser("police").client.get(f"/tasks/{task_id}").text
    assert 'data-testid="task-cancel"' not in detail and 'data-testid="task-verify"' not in detail
    rider = browser("rider").client.get("/report").text
    assert 'data-testid="nav-my-tasks"' in rider and 'data-testid="nav-tasks"' not in rider
    # Each role still starts on its own first page.
    assert browser("rider").client.get("/", follow_redirects=False).headers["location"] == "/report"
    assert browser("dispatcher").client.get("/", follow_redirects=False).headers["location"] == "/desk"


def test_board_tabs_by_phase(browser: Callable[[str], Browser], api: Api, db: Session) -> None:
    now = utcnow()
    active = publish(api, db, checkpoints_task(title="Now"))["task"]["id"]
    upcoming = publish(
        api,
        db,
        checkpoints_task(
            title="Later",
            starts_at=(now + timedelta(hours=5)).isoformat(),
            ends_at=(now + timedelta(hours=7)).isoformat(),
        ),
    )["task"]["id"]
    page = browser("police")

    def ids(phase: str) -> list[int]:
        text = page.client.get(f"/tasks?phase={phase}").text
        return [int(x) for x in re.findall(r'data-testid="task-row" data-task-id="(\d+)"', text)]

    assert ids("active") == [active]
    assert ids("upcoming") == [upcoming]
    assert ids("ended") == [] and ids("cancelled") == []
    assert sorted(ids("all")) == sorted([active, upcoming])
    row = page.client.get("/tasks").text
    assert "0 / 2" in row and "Check-in points" in row
    assert page.client.get("/tasks?phase=soon").status_code == 422


def test_publish_refusals_keep_the_values_and_store_nothing(
    browser: Callable[[str], Browser], db: Session, district: District
) -> None:
    page = browser("dispatcher")
    cases: list[tuple[dict[str, Any], str]] = [
        (_form(checkpoints="29.9, not a number, 100"), "line 1"),
        (_form(title=" "), "title"),
        (_form(open_to_all=None, riders="rider, nobody"), "nobody"),
        (_form(open_to_all=None), "invite riders or stations"),
        (_form(ends_at=_local(utcnow() - timedelta(hours=1))), "ends_at"),
        (_form(points="many"), "points"),
        (_form(target="cells", cells="not-a-cell"), "H3"),
        (_form(target="area", area=""), "area"),
        (_form(checkpoints=f"{CENTER_LAT}, {CENTER_LON}, 5000, far"), "radius_m"),
    ]
    for form, reason in cases:
        res = page.post("/tasks", data=form)
        assert res.status_code == 422, (form, res.status_code)
        text = html.unescape(res.text)
        assert 'data-testid="page-message"' in res.text and reason in text, (reason, text[:3000])
        # Every value typed is back in the form.
        assert f'value="{form["title"]}"' in text
        assert form["checkpoints"] in text and form["starts_at"] in text
        if form.get("riders"):
            assert f'value="{form["riders"]}"' in text
    assert _count(db, PatrolTask) == 0 and _count(db, PatrolTaskCheckpoint) == 0
    # Stations ticked stay ticked.
    res = page.post("/tasks", data=_form(open_to_all="1", stations=district.station.code))
    assert res.status_code == 422 and "no invitations" in res.text
    assert re.search(r'value="mt-jinding" data-testid="task-station" checked', res.text)


def test_publish_checkpoints_and_see_them(browser: Callable[[str], Browser], db: Session) -> None:
    page = browser("dispatcher")
    assert 'name="csrf_token"' in page.client.get("/tasks/new").text
    # Without the CSRF token the form is refused.
    assert page.client.post("/tasks", data=_form()).status_code == 403
    task_id = _published(page.post("/tasks", data=_form(max_riders="3", required_pct="50"), follow_redirects=False))
    task = db.get(PatrolTask, task_id)
    assert task is not None
    assert task.kind == "checkpoints" and task.open_to_all and task.points == 20
    assert task.max_riders == 3 and task.required_share == 0.5
    # The window was typed in Shanghai time.
    assert abs((task.ends_at - task.starts_at) - timedelta(hours=3)) < timedelta(minutes=1)
    points = db.scalars(select(PatrolTaskCheckpoint).where(PatrolTaskCheckpoint.task_id == task_id)).all()
    assert [(p.name, p.radius_m) for p in sorted(points, key=lambda p: p.seq)] == [("金鼎广场", 100), ("北门", 120)]
    db.commit()
    detail = page.client.get(f"/tasks/{task_id}?done=published").text
    assert "The task is published" in detail and 'data-testid="task-verify"' in detail
    assert '"radius_m": 120' in detail or '"radius_m":120' in detail.replace(" ", "")
    assert task_id in [int(x) for x in re.findall(r'data-task-id="(\d+)"', page.client.get("/tasks").text)]


def test_publish_over_an_area_to_a_station(browser: Callable[[str], Browser], db: Session, district: District) -> None:
    page = browser("dispatcher")
    form = _form(
        target="area", area="community:jinding", resolution="9", open_to_all=None, stations=district.station.code
    )
    task_id = _published(page.post("/tasks", data=form, follow_redirects=False))
    task = db.get(PatrolTask, task_id)
    assert task is not None and task.kind == "cells" and task.resolution == 9 and not task.open_to_all
    invites = db.scalars(select(PatrolTaskInvite.station_id).where(PatrolTaskInvite.task_id == task_id)).all()
    assert invites == [district.station.id]
    db.commit()
    # Both riders of the station see it; the list names its distance from their last position (none yet).
    text = browser("rider2").client.get("/my/tasks").text
    assert f'data-task-id="{task_id}"' in text and 'data-from="none"' in text


def test_cells_from_the_coverage_map(browser: Callable[[str], Browser], db: Session) -> None:
    cell = h3.int_to_str(h3.latlng_to_cell(CENTER_LAT, CENTER_LON, 10))
    page = browser("dispatcher")
    text = page.client.get(f"/tasks/new?cells={cell}&from=gaps").text
    assert 'data-testid="from-gaps"' in text and cell in text
    assert re.search(r'value="cells" data-testid="target-cells" checked', text)
    assert f'"h3": "{cell}"' in text or f'"h3":"{cell}"' in text  # drawn on the form's map
    task_id = _published(
        page.post("/tasks", data=_form(target="cells", cells=cell, source="gaps"), follow_redirects=False)
    )
    task = db.get(PatrolTask, task_id)
    assert task is not None and task.kind == "cells" and task.resolution == 10
    db.commit()


def test_only_dispatchers_publish(browser: Callable[[str], Browser], db: Session) -> None:
    for role in ("police", "admin", "rider"):
        assert browser(role).post("/tasks", data=_form()).status_code == 403
    assert _count(db, PatrolTask) == 0


def test_detail_names_riders_for_the_command_centre_and_records_the_look(
    browser: Callable[[str], Browser], api: Api, db: Session, district: District
) -> None:
    task_id = publish(api, db, checkpoints_task(points=20))["task"]["id"]
    on_duty(api, db, district, "rider")
    walk(api, "rider", [(CENTER_LAT, CENTER_LON), NORTH], first_ago_s=1800)
    dispatcher = browser("dispatcher")
    before = _audits(db, "task.view_results")
    # Verify now: a plain form, then back to the detail with the result.
    res = dispatcher.post(f"/tasks/{task_id}/verify", follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"] == f"/tasks/{task_id}?done=verified"
    text = dispatcher.client.get(res.headers["location"]).text
    assert 'data-testid="result-row" data-completed="1" data-rider="rider"' in text
    assert 'data-testid="task-completed" data-count="1"' in text
    assert _audits(db, "task.view_results") == before + 1
    police = browser("police").client.get(f"/tasks/{task_id}").text
    assert 'data-testid="result-row" data-completed="1">' in police and "data-rider=" not in police
    assert _audits(db, "task.view_results") == before + 1
    # The rider sees their own completion.
    mine = browser("rider").client.get("/my/tasks").text
    assert re.search(rf'data-task-id="{task_id}" data-phase="active" data-completed="1"', mine)
    assert "Passed 2 of 2 places needed" in mine
    assert browser("police").post(f"/tasks/{task_id}/verify").status_code == 403


def test_cancel_takes_a_confirmation(browser: Callable[[str], Browser], db: Session, task_id: int) -> None:
    page = browser("dispatcher")
    confirm = page.client.get(f"/tasks/{task_id}/cancel")
    assert confirm.status_code == 200 and 'data-testid="confirm-cancel-task"' in confirm.text
    # Asking, and a post without the confirmation, change nothing.
    res = page.post(f"/tasks/{task_id}/cancel", follow_redirects=False)
    assert res.status_code == 200 and 'data-testid="confirm-cancel-task"' in res.text
    task = db.get(PatrolTask, task_id)
    assert task is not None and task.status == "published"
    db.commit()
    res = page.post(f"/tasks/{task_id}/cancel", data={"confirm": "yes"}, follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"] == f"/tasks/{task_id}?done=cancelled"
    db.refresh(task)
    assert task.status == "cancelled"
    db.commit()
    text = page.client.get(res.headers["location"]).text
    assert 'data-phase="cancelled"' in text and 'data-testid="task-cancel"' not in text
    # Again: refused on the page, with the reason.
    again = page.post(f"/tasks/{task_id}/cancel", data={"confirm": "yes"})
    assert again.status_code == 409 and "already cancelled" in again.text
    assert browser("police").post(f"/tasks/{task_id}/cancel", data={"confirm": "yes"}).status_code == 403
    assert page.client.get("/tasks/999999/cancel").status_code == 404


def _rule_form(**overrides: str) -> dict[str, str]:
    form = {
        "name": "金鼎晚巡",
        "area": "community:jinding",
        "top_n": "3",
        "resolution": "9",
        "publish_at": "17:00",
        "window_start": "18:00",
        "window_hours": "4",
        "lookback_days": "28",
        "points": "10",
    }
    form.update(overrides)
    return form


def test_rules_form_pause_and_run(browser: Callable[[str], Browser], db: Session) -> None:
    page = browser("dispatcher")
    for form, reason in [
        (_rule_form(publish_at="25:00"), "publish_at"),
        (_rule_form(area="community:nowhere"), "nowhere"),
        (_rule_form(top_n="lots"), "top N"),
        (_rule_form(name=""), "name"),
    ]:
        res = page.post("/tasks/rules", data=form)
        assert res.status_code == 422, (form, res.text[:500])
        text = html.unescape(res.text)
        assert reason in text and f'value="{form["window_start"]}"' in text and f'value="{form["top_n"]}"' in text
    assert _count(db, PatrolTaskRule) == 0
    res = page.post("/tasks/rules", data=_rule_form(), follow_redirects=False)
    assert res.status_code == 303
    rule_id = scalar(db, select(PatrolTaskRule.id))
    text = page.client.get(res.headers["location"]).text
    assert 'data-testid="rule-row"' in text and "Jinding" in text and "never" in text
    # Pause and resume.
    page.post(f"/tasks/rules/{rule_id}/active", data={"active": "no"})
    assert scalar(db, select(PatrolTaskRule.active)) is False
    page.post(f"/tasks/rules/{rule_id}/active", data={"active": "yes"})
    assert scalar(db, select(PatrolTaskRule.active)) is True
    # Run now: asked first; then once a day.
    confirm = page.client.get(f"/tasks/rules/{rule_id}/run")
    assert 'data-testid="confirm-run-rule"' in confirm.text and "金鼎晚巡" in confirm.text
    res = page.post(f"/tasks/rules/{rule_id}/run", data={"confirm": "yes"}, follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"].startswith("/tasks/rules?done=rule-run")
    text = page.client.get(res.headers["location"]).text
    assert "The rule ran" in text and 'data-testid="rule-last-run"' in text and "never" not in text
    again = page.post(f"/tasks/rules/{rule_id}/run", data={"confirm": "yes"})
    assert again.status_code == 409 and "already ran" in again.text
    # Readers see the rules without the controls; they may not change them.
    police = browser("police")
    assert 'data-testid="rule-form"' not in police.client.get("/tasks/rules").text
    assert police.post("/tasks/rules", data=_rule_form()).status_code == 403
    assert police.post(f"/tasks/rules/{rule_id}/active", data={"active": "no"}).status_code == 403
    assert police.post(f"/tasks/rules/{rule_id}/run", data={"confirm": "yes"}).status_code == 403


def test_rider_sees_only_invited_tasks(browser: Callable[[str], Browser], api: Api, db: Session) -> None:
    mine = publish(api, db, checkpoints_task(title="For rider", riders=["rider"]))["task"]["id"]
    rider2 = browser("rider2").client
    text = rider2.get("/my/tasks").text
    assert f'data-task-id="{mine}"' not in text and 'data-testid="open-tasks-empty"' in text
    assert rider2.get(f"/my/tasks/{mine}").status_code == 404
    page = browser("rider").client.get(f"/my/tasks/{mine}").text
    assert 'data-testid="task-map"' in page and 'href="/duty"' in page


def test_coverage_map_links_gaps_to_the_publish_form(browser: Callable[[str], Browser]) -> None:
    assert 'data-task-link="1"' in browser("dispatcher").client.get("/coverage").text
    assert 'data-task-link="0"' in browser("police").client.get("/coverage").text


def test_task_pages_in_chinese(browser: Callable[[str], Browser], task_id: int) -> None:
    page = browser("dispatcher")
    page.client.get("/lang/zh")
    text = page.client.get("/tasks").text
    assert "巡逻任务" in text and "任务看板" in text and "打卡点" in text


def test_a_cancelled_task_the_rider_finished_shows_without_a_link(
    browser: Callable[[str], Browser], api: Api, db: Session, district: District
) -> None:
    task_id = publish(api, db, checkpoints_task(points=20))["task"]["id"]
    on_duty(api, db, district, "rider")
    walk(api, "rider", [(CENTER_LAT, CENTER_LON), NORTH], first_ago_s=1800)
    api.client.post(f"/api/v1/tasks/{task_id}/verify", headers=api.auth("dispatcher"))
    assert api.client.post(f"/api/v1/tasks/{task_id}/cancel", headers=api.auth("dispatcher")).status_code == 200
    text = browser("rider").client.get("/my/tasks").text
    assert f'data-testid="recent-task" data-task-id="{task_id}" data-completed="1"' in text
    assert f'href="/my/tasks/{task_id}"' not in text and "phase-cancelled" in text


def test_publish_refusals_are_explained_in_the_readers_language(
    browser: Callable[[str], Browser], db: Session, district: District
) -> None:
    page = browser("dispatcher")
    start = utcnow() + timedelta(hours=2)
    backwards = _form(starts_at=_local(start), ends_at=_local(start - timedelta(hours=1)))
    nobody = _form(open_to_all=None, riders="rider, nobody")
    english = html.unescape(page.post("/tasks", data=backwards).text)
    assert "Please correct the form." in english and "ends_at must be after starts_at" in english
    page.client.get("/lang/zh")
    res = page.post("/tasks", data=backwards)
    assert res.status_code == 422
    chinese = html.unescape(res.text)
    assert "请修改表单。" in chinese and "结束时间必须晚于开始时间" in chinese
    assert "ends_at must be after starts_at" not in chinese
    # The rider's name typed in is shown as typed, inside the Chinese sentence.
    assert "骑手：没有在岗账号为 'nobody' 的骑手" in html.unescape(page.post("/tasks", data=nobody).text)
    assert "打卡点第 1 行：" in html.unescape(page.post("/tasks", data=_form(checkpoints="x")).text)
    assert _count(db, PatrolTask) == 0
