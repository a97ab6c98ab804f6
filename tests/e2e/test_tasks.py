"""Patrol tasks in a real browser: a dispatcher publishes a check-in task by tapping the map and finds it
on the board; a rider on a phone finds it in their list, nearest first from the phone's position; after
the rider's positions arrive and the dispatcher verifies, the task shows the rider's completion."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy.orm import Session

from riderwatch.infra.clock import utcnow
from tests.e2e.conftest import log_in
from tests.factories import PASSWORD, make_district
from tests.tracking.helpers import backdate

pytestmark = pytest.mark.e2e

PHONE = {"width": 360, "height": 740}


def _client(live_server: str, username: str) -> httpx.Client:
    res = httpx.post(f"{live_server}/api/v1/auth/token", data={"username": username, "password": PASSWORD}, timeout=10)
    res.raise_for_status()
    return httpx.Client(
        base_url=live_server, timeout=10, headers={"Authorization": f"Bearer {res.json()['access_token']}"}
    )


def _publish_by_tapping(page: Page) -> tuple[int, float, float]:
    """The dispatcher's form: a title, a window that began a few minutes ago, one tap on the map."""
    page.get_by_test_id("nav-tasks").click()
    page.get_by_test_id("link-new-task").click()
    form_map = page.get_by_test_id("task-form-map")
    expect(form_map).to_have_attribute("data-ready", "1")
    expect(form_map).to_have_class(re.compile(r"\bno-tiles\b"))
    page.get_by_test_id("task-title").fill("金鼎广场夜巡")
    # Within the few minutes' grace a form filled a moment ago gets (minutes only: up to 6 minutes back).
    start = utcnow().astimezone(ZoneInfo("Asia/Shanghai")) - timedelta(minutes=5)
    page.get_by_test_id("task-starts").fill(start.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_test_id("task-ends").fill((start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_test_id("task-click-radius").fill("150")
    form_map.click()  # the middle of the map: inside the district's community
    expect(form_map).to_have_attribute("data-points", "1")
    expect(form_map.locator("path.target-point")).to_have_count(1)
    expect(page.get_by_test_id("target-checkpoints")).to_be_checked()
    line = page.get_by_test_id("task-checkpoints").input_value().strip()
    lat, lon, radius, _name = (part.strip() for part in line.split(","))
    assert radius == "150", line
    page.get_by_test_id("task-points").fill("30")
    page.get_by_test_id("task-publish").click()
    expect(page.get_by_test_id("page-message")).to_have_attribute("data-kind", "success")
    match = re.search(r"/tasks/(\d+)", page.url)
    assert match, page.url
    return int(match.group(1)), float(lat), float(lon)


def test_dispatcher_publishes_rider_passes_and_the_task_shows_it(
    db: Session, live_server: str, new_context: Callable[..., BrowserContext]
) -> None:
    district = make_district(db)
    desk = new_context().new_page()
    log_in(desk, "dispatcher")
    task_id, lat, lon = _publish_by_tapping(desk)

    # The detail: one check-in point on the map, not passed yet; then the board lists it as active.
    task_map = desk.get_by_test_id("task-map")
    expect(task_map).to_have_attribute("data-drawn", "1")
    expect(task_map.locator("path.target-open")).to_have_count(1)
    expect(desk.get_by_test_id("task-phase")).to_have_attribute("data-phase", "active")
    expect(desk.get_by_test_id("task-results-empty")).to_be_visible()
    desk.get_by_test_id("nav-tasks").click()
    row = desk.locator(f'[data-testid="task-row"][data-task-id="{task_id}"]')
    expect(row).to_contain_text("金鼎广场夜巡")
    expect(row.get_by_test_id("task-passed")).to_contain_text("0 / 1")

    # The rider, on a phone standing at the point, sees the task first, 0 m away, and how it is checked.
    phone = new_context(
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        geolocation={"latitude": lat, "longitude": lon},
        permissions=["geolocation"],
    )
    rider = phone.new_page()
    log_in(rider, "rider")
    rider.get_by_test_id("nav-my-tasks").click()
    card = rider.locator(f'[data-testid="my-task"][data-task-id="{task_id}"]')
    expect(card).to_contain_text("金鼎广场夜巡")
    expect(rider.get_by_test_id("tasks-order")).to_have_attribute("data-from", "given")
    expect(card.get_by_test_id("my-task-distance")).to_have_text("距离 0 米")
    expect(card.get_by_test_id("my-task-progress")).to_contain_text("已经过 0 处")
    expect(rider.get_by_test_id("tasks-how").get_by_test_id("link-duty")).to_have_attribute("href", "/duty")
    width = rider.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width

    # The rider's phone sends positions on duty through the API: one at the point.
    with _client(live_server, "rider") as api:
        assert api.put("/api/v1/me/location-consent", json={"granted": True}).status_code == 200
        assert api.put("/api/v1/me/duty", json={"on_duty": True}).status_code == 200
        backdate(db, district.users["rider"].id, hours=1)
        now = utcnow()
        pings = [
            {"ts": (now - timedelta(minutes=3)).isoformat(), "lat": lat + 0.003, "lon": lon},
            {"ts": (now - timedelta(minutes=2)).isoformat(), "lat": lat + 0.0003, "lon": lon},
        ]
        sent = api.post("/api/v1/tracking/pings", json={"pings": pings})
        assert sent.status_code == 200 and sent.json()["accepted"] == 2, sent.text

    # The dispatcher verifies now: the point turns green, the rider is named with the points.
    desk.goto(f"/tasks/{task_id}")
    desk.get_by_test_id("task-verify").click()
    expect(desk.get_by_test_id("task-completed")).to_have_attribute("data-count", "1")
    result = desk.get_by_test_id("result-row")
    expect(result).to_have_attribute("data-rider", "rider")
    expect(result.get_by_test_id("result-points")).to_have_text("30")
    expect(desk.get_by_test_id("task-map").locator("path.target-passed")).to_have_count(1)

    # The rider sees the task done, and the point passed on their own map.
    rider.reload()
    expect(card.get_by_test_id("my-task-done")).to_be_visible()
    card.get_by_test_id("my-task-link").click()
    expect(rider.get_by_test_id("task-map").locator("path.target-passed")).to_have_count(1)
    expect(rider.get_by_test_id("my-task-progress")).to_contain_text("已经过 1 处")


def test_cancel_on_a_phone_asks_first(
    db: Session, live_server: str, new_context: Callable[..., BrowserContext]
) -> None:
    make_district(db)
    page = new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    log_in(page, "dispatcher")
    task_id, _lat, _lon = _publish_by_tapping(page)
    page.get_by_test_id("task-cancel").click()
    expect(page.get_by_test_id("confirm-cancel-task")).to_be_visible()
    page.get_by_test_id("confirm-cancel").click()
    expect(page.get_by_test_id("task-phase")).to_have_attribute("data-phase", "active")
    page.get_by_test_id("task-cancel").click()
    page.get_by_test_id("confirm-yes").click()
    expect(page.get_by_test_id("task-phase")).to_have_attribute("data-phase", "cancelled")
    page.goto("/tasks?phase=cancelled")
    expect(page.locator(f'[data-testid="task-row"][data-task-id="{task_id}"]')).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width
