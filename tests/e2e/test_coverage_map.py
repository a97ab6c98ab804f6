"""The coverage map in a real browser: hexagons from riders' positions, blind cells, the hour chart,
clues and (audited) riders on duty, all from the server alone; and a rider who consents, goes on duty,
lets the phone send its position, looks at their data and withdraws."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from h3.api import basic_int as h3
from playwright.sync_api import BrowserContext, Page, expect
from shapely.geometry import Point, shape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.infra.clock import utcnow
from riderwatch.models import AuditEntry, DutyShift, Position, Rider, TrackingDevice
from tests.e2e.conftest import PageWatch, log_in, read_db, wait_until
from tests.factories import CENTER_LAT, CENTER_LON, PASSWORD, clue_body, make_district, square
from tests.tracking.helpers import backdate

pytestmark = pytest.mark.e2e

PHONE = {"width": 360, "height": 740}
COMMUNITY = square(CENTER_LAT, CENTER_LON, 0.01)  # make_district's community


def _cells(res: int) -> list[int]:
    polygon = shape(COMMUNITY)
    around = h3.grid_disk(h3.latlng_to_cell(CENTER_LAT, CENTER_LON, res), 25)
    return sorted(c for c in around if polygon.contains(Point(h3.cell_to_latlng(c)[1], h3.cell_to_latlng(c)[0])))


def _client(live_server: str, username: str) -> httpx.Client:
    res = httpx.post(f"{live_server}/api/v1/auth/token", data={"username": username, "password": PASSWORD}, timeout=10)
    res.raise_for_status()
    headers = {"Authorization": f"Bearer {res.json()['access_token']}"}
    return httpx.Client(base_url=live_server, timeout=10, headers=headers)


def _arrange(db: Session, live_server: str) -> dict[str, Any]:
    """Two riders' positions in three cells (one in the last minutes, so the rider shows as on duty now)
    and one clue."""
    district = make_district(db)
    cells = _cells(9)
    chosen = [cells[3], cells[len(cells) // 2], cells[-4]]
    now = utcnow()
    with _client(live_server, "rider") as rider, _client(live_server, "rider2") as rider2:
        for client in (rider, rider2):
            assert client.put("/api/v1/me/location-consent", json={"granted": True}).status_code == 200
            assert client.put("/api/v1/me/duty", json={"on_duty": True}).status_code == 200
        for name in ("rider", "rider2"):
            backdate(db, district.users[name].id, hours=30)

        def at(cell: int, minutes_ago: float) -> dict[str, Any]:
            lat, lon = h3.cell_to_latlng(cell)
            return {"ts": (now - timedelta(minutes=minutes_ago)).isoformat(), "lat": lat, "lon": lon}

        sent = rider.post("/api/v1/tracking/pings", json={"pings": [at(chosen[0], 600), at(chosen[1], 3)]})
        assert sent.json()["accepted"] == 2, sent.text
        sent = rider2.post("/api/v1/tracking/pings", json={"pings": [at(chosen[2], 1200), at(chosen[2], 1190)]})
        assert sent.json()["accepted"] == 2, sent.text
        created = rider.post("/api/v1/clues", json=clue_body(category="theft"))
        assert created.status_code == 201, created.text
    with _client(live_server, "dispatcher") as dispatcher:
        lat, lon = h3.cell_to_latlng(chosen[1])
        task = {
            "title": "e2e",
            "starts_at": (utcnow() - timedelta(minutes=1)).isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat(),
            "checkpoints": [{"lat": lat, "lon": lon, "radius_m": 50}],
            "open_to_all": True,
        }
        published = dispatcher.post("/api/v1/tasks", json=task)
        assert published.status_code == 201, published.text
    return {"cells": cells, "covered": chosen}


def _open_map(page: Page) -> None:
    page.get_by_test_id("nav-coverage").click()
    expect(page.get_by_test_id("coverage-map")).to_have_attribute("data-loaded", re.compile(r"^\d+$"))


def _no_sideways_scrolling(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width


def test_dispatcher_sees_coverage_blind_cells_clues_and_riders_on_duty(
    db: Session, live_server: str, new_context: Callable[..., BrowserContext]
) -> None:
    scene = _arrange(db, live_server)
    page = new_context().new_page()
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(live_server) else None)
    log_in(page, "dispatcher")
    _open_map(page)

    box = page.get_by_test_id("coverage-map")
    expect(box).to_have_class(re.compile(r"\bno-tiles\b"))
    expect(box.locator("img.leaflet-tile")).to_have_count(0)
    n = len(scene["cells"])
    expect(box).to_have_attribute("data-cells", str(n))
    expect(box.locator("path.cell-covered")).to_have_count(3)
    expect(box.locator("path.cell-blind")).to_have_count(n - 3)
    expect(page.get_by_test_id("summary-cells")).to_have_text(str(n))
    expect(page.get_by_test_id("summary-covered")).to_have_text("3")
    expect(page.get_by_test_id("summary-ratio")).to_have_text(f"{100 * 3 / n:.1f}%")
    # Nothing in the week before: coverage went up.
    expect(page.get_by_test_id("summary-trend")).to_have_attribute("data-trend", "up")
    # 24 bars, holding the four passes.
    chart = page.get_by_test_id("hour-chart")
    expect(chart.locator("rect.bar")).to_have_count(24)
    expect(chart).to_have_attribute("data-total", "4")
    # The clue, as a marker that links to it; hotspots and gaps were asked for too.
    expect(box.locator("path.clue-marker")).to_have_count(1)
    expect(page.get_by_test_id("summary-clues")).to_have_text("1")
    expect(page.get_by_test_id("summary-incidents")).to_have_text("0")
    expect(page.get_by_test_id("summary-gaps")).to_have_text(re.compile(r"^\d+$"))
    # The running patrol task: its check-in circle, linked to the task.
    expect(box).to_have_attribute("data-tasks", "1")
    expect(box.locator("path.task-target")).to_have_count(1)

    # A layer switched off leaves the map.
    page.get_by_test_id("layer-blind").uncheck()
    expect(box.locator("path.cell-blind")).to_have_count(0)
    page.get_by_test_id("layer-blind").check()
    expect(box.locator("path.cell-blind")).to_have_count(n - 3)

    # Riders on duty now: only on request, and each look is in the audit log.
    def live_views() -> int:
        stmt = select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "tracking.view_live")
        return int(read_db(db, lambda s: s.scalar(stmt)) or 0)

    assert live_views() == 0
    page.get_by_test_id("layer-live").check()
    expect(box.locator("path.live-marker")).to_have_count(1)  # rider2's last point is twenty hours old
    expect(page.get_by_test_id("summary-live")).to_have_text("1")
    assert live_views() == 1

    # The slider steps through the days of the week; the last day holds the rider's recent pass.
    slider = page.get_by_test_id("coverage-slider")
    expect(slider).to_have_attribute("max", "7")
    before = box.get_attribute("data-loaded")
    slider.evaluate("(el) => { el.value = '7'; el.dispatchEvent(new Event('input', { bubbles: true })); }")
    expect(page.get_by_test_id("coverage-slider-label")).not_to_have_text("整个时间窗口")
    expect(box).not_to_have_attribute("data-loaded", before or "")
    expect(box).to_have_attribute("data-covered", re.compile(r"^[123]$"))
    expect(page.get_by_test_id("summary-cells")).to_have_text(str(n))

    # The 24-hour preset (all four passes lie in it) and the finer resolution ask again.
    page.get_by_test_id("preset-24h").click()
    expect(page.get_by_test_id("coverage-slider")).to_have_attribute("max", "24")
    expect(page.get_by_test_id("coverage-slider-label")).to_have_text("整个时间窗口")
    expect(box.locator("path.cell-covered")).to_have_count(3)
    page.get_by_test_id("coverage-resolution").select_option("10")
    expect(box).to_have_attribute("data-cells", str(len(_cells(10))))
    expect(page.get_by_test_id("coverage-status")).to_be_hidden()
    assert outside == []


def test_refusals_are_shown_on_the_page(
    db: Session, live_server: str, new_context: Callable[..., BrowserContext], watch: PageWatch
) -> None:
    make_district(db)
    # Chromium logs every refused request; here the refusals are the point.
    watch.expect_console_error(r"status of 422 .*/api/v1/(coverage|hotspots)/")
    page = new_context().new_page()
    log_in(page, "police")
    _open_map(page)
    status = page.get_by_test_id("coverage-status")
    # A window longer than the server allows: the page says so without asking.
    page.get_by_test_id("coverage-from").fill("2020-01-01T00:00")
    page.get_by_test_id("coverage-apply").click()
    expect(status).to_have_attribute("data-kind", "error")
    expect(status).to_contain_text("366")
    page.get_by_test_id("preset-7d").click()
    expect(status).to_be_hidden()
    # An area the server does not know (removed since the page was loaded): its explanation is shown,
    # in the page's language (Chinese here), with the code as it is.
    page.get_by_test_id("coverage-area").evaluate(
        "(el) => { el.add(new Option('gone', 'zone:gone')); el.value = 'zone:gone';"
        " el.dispatchEvent(new Event('change')); }"
    )
    expect(status).to_have_attribute("data-kind", "error")
    expect(status).to_contain_text("没有编号为 'gone' 的试点区域")


def test_coverage_map_on_a_phone(db: Session, live_server: str, new_context: Callable[..., BrowserContext]) -> None:
    _arrange(db, live_server)
    page = new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    log_in(page, "grid_staff")
    _open_map(page)
    box = page.get_by_test_id("coverage-map")
    expect(box.locator("path.cell-covered")).to_have_count(3)
    expect(page.get_by_test_id("layer-live")).to_have_count(0)
    map_box = box.bounding_box()
    assert map_box is not None and map_box["width"] >= 300 and map_box["height"] >= 300
    _no_sideways_scrolling(page)


def test_rider_consents_goes_on_duty_shares_and_withdraws(
    db: Session, live_server: str, new_context: Callable[..., BrowserContext]
) -> None:
    district = make_district(db)
    rider_id = district.users["rider"].id
    here = {"latitude": CENTER_LAT + 0.002, "longitude": CENTER_LON + 0.001}
    phone = new_context(viewport=PHONE, is_mobile=True, has_touch=True, geolocation=here, permissions=["geolocation"])
    page = phone.new_page()
    log_in(page, "rider")
    page.get_by_test_id("nav-duty").click()
    expect(page.get_by_test_id("consent-text")).to_contain_text("收集哪些信息")
    _no_sideways_scrolling(page)

    # The consent is not pre-ticked; without the tick nothing is sent.
    expect(page.get_by_test_id("consent-agree")).not_to_be_checked()
    page.get_by_test_id("consent-agree").check()
    page.get_by_test_id("consent-submit").click()
    expect(page.get_by_test_id("page-message")).to_have_attribute("data-kind", "success")
    assert read_db(db, lambda s: s.get(Rider, rider_id).location_consent)  # type: ignore[union-attr]

    page.get_by_test_id("duty-toggle").click()
    expect(page.get_by_test_id("duty-state")).to_have_attribute("data-on-duty", "1")
    sharing = page.get_by_test_id("sharing")
    # The phone's position from before the shift is not taken; the rider moves, and the new one is.
    expect(sharing).to_have_attribute("data-state", "starting")
    phone.set_geolocation({"latitude": CENTER_LAT + 0.003, "longitude": CENTER_LON + 0.002})
    here = {"latitude": CENTER_LAT + 0.003, "longitude": CENTER_LON + 0.002}
    expect(sharing).to_have_attribute("data-state", "sharing")
    expect(page.get_by_test_id("sharing-waiting")).to_have_attribute("data-count", "1")

    # Going off duty sends what the phone holds first, so the position lands inside the shift.
    page.get_by_test_id("duty-toggle").click()
    expect(page.get_by_test_id("duty-state")).to_have_attribute("data-on-duty", "0")
    stored = read_db(db, lambda s: list(s.scalars(select(Position).where(Position.rider_id == rider_id))))
    assert len(stored) == 1
    assert (round(stored[0].lat, 6), round(stored[0].lon, 6)) == (here["latitude"], here["longitude"])
    ended = read_db(db, lambda s: s.scalar(select(DutyShift.ended_by).where(DutyShift.rider_id == rider_id)))
    assert ended == "rider"

    # A Traccar Client device: RiderWatch issues the identifier, shown large to be typed into the app.
    page.get_by_test_id("device-label").fill("Redmi")
    page.get_by_test_id("device-submit").click()
    expect(page.get_by_test_id("device")).to_have_attribute("data-new", "1")
    issued = page.get_by_test_id("device").get_attribute("data-device-id")
    assert issued and issued.startswith("rw-")
    device = read_db(db, lambda s: s.get(TrackingDevice, issued))
    assert device is not None and device.issued and device.label == "Redmi"
    expect(page.get_by_test_id("device-code")).to_have_text(issued)
    expect(page.get_by_test_id("osmand-url")).to_contain_text("/osmand")

    # "My data": the count, and the position on a small map without tiles.
    page.get_by_test_id("nav-my-data").click()
    expect(page.get_by_test_id("data-position-count")).to_have_attribute("data-count", "1")
    expect(page.get_by_test_id("my-data-map").locator("path.my-point")).to_have_count(1)
    _no_sideways_scrolling(page)

    # Withdrawing asks first and says what goes.
    page.get_by_test_id("link-duty").click()
    page.get_by_test_id("withdraw-link").click()
    expect(page.get_by_test_id("confirm-warning")).to_contain_text("1")
    page.get_by_test_id("withdraw-yes").click()
    expect(page.get_by_test_id("page-message")).to_contain_text("1")
    expect(page.get_by_test_id("consent-form")).to_be_visible()
    wait_until(
        lambda: read_db(db, lambda s: s.scalar(select(func.count()).select_from(Position))) == 0,
        what="positions deleted",
    )
    assert not read_db(db, lambda s: s.get(Rider, rider_id).location_consent)  # type: ignore[union-attr]


def test_map_times_are_the_programmes_whatever_zone_the_browser_is_in(
    db: Session, live_server: str, new_context: Callable[..., BrowserContext]
) -> None:
    """A dispatcher's browser set to New York: the window's inputs, the slider and the popups speak
    Shanghai time (the programme's zone, as the server's own pages and the hour-of-day chart do)."""
    _arrange(db, live_server)
    page = new_context(timezone_id="America/New_York").new_page()
    log_in(page, "dispatcher")

    def end_of_hour() -> str:
        now = utcnow().astimezone(ZoneInfo("Asia/Shanghai")).replace(minute=0, second=0, microsecond=0)
        return (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")

    before = end_of_hour()
    _open_map(page)
    box = page.get_by_test_id("coverage-map")
    expect(box.locator("path.cell-covered")).to_have_count(3)  # the window read in Shanghai time holds the passes
    assert page.get_by_test_id("coverage-to").input_value() in {before, end_of_hour()}
    assert page.evaluate("RW.zoneText(new Date('2026-03-08T02:30:00Z'))") == "2026-03-08 10:30"
    assert page.evaluate("RW.fromZoneInput('2026-03-08T10:30').toISOString()") == "2026-03-08T02:30:00.000Z"
    assert page.evaluate("RW.fromZoneInput('2026-11-29T00:05').toISOString()") == "2026-11-28T16:05:00.000Z"
    assert page.evaluate("isNaN(RW.fromZoneInput('yesterday').getTime())")
