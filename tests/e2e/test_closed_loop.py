"""The issue's acceptance path in real browsers: a rider reports a clue without a connection, it is sent
once the phone is back online, the command centre verifies and dispatches it, community police accept
and resolve it, the dispatcher closes it, and the rider sees the outcome and rates it."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.models import Clue, ClueEvent, CluePhoto
from tests.e2e.conftest import log_in, read_db, wait_until
from tests.factories import CENTER_LAT, CENTER_LON, image_bytes, make_district

pytestmark = pytest.mark.e2e

PHONE = {"width": 360, "height": 740}
HERE = {"latitude": CENTER_LAT + 0.001, "longitude": CENTER_LON - 0.004}
OFFLINE_TEXT = "小区东门有人撬电动车锁，两人，骑黑色电动车往南走了"
ONLINE_TEXT = "楼道里堆着电动车电池在充电"
OUTCOME = "民警到场核查，查获被盗电动车一辆，嫌疑人已带回派出所"


def _clues(db: Session) -> list[Clue]:
    return read_db(db, lambda s: list(s.scalars(select(Clue).order_by(Clue.id))))


def _fill_report(page: Page, category: str, description: str) -> None:
    page.get_by_test_id("report-category").select_option(category)
    page.get_by_test_id("report-description").fill(description)


def _expect_located(page: Page) -> None:
    expect(page.get_by_test_id("location-status")).to_have_attribute("data-located", "1")
    expect(page.get_by_test_id("report-lat")).to_have_value(f"{HERE['latitude']:.6f}")
    expect(page.get_by_test_id("report-lon")).to_have_value(f"{HERE['longitude']:.6f}")


def test_closed_loop(db: Session, new_context: Callable[..., BrowserContext], tmp_path: Path) -> None:
    make_district(db)
    photo = tmp_path / "scene.jpg"
    photo.write_bytes(image_bytes(size=(64, 48), color="navy"))

    # --- the rider, on a phone, without a connection ---------------------------------------------
    phone = new_context(
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        geolocation=HERE,
        permissions=["geolocation"],
    )
    rider = phone.new_page()
    posts: list[str] = []
    rider.on("request", lambda r: posts.append(r.url) if r.method == "POST" and "/api/v1/clues" in r.url else None)
    log_in(rider, "rider")
    expect(rider).to_have_url(re.compile(r"/report$"))
    _expect_located(rider)

    phone.set_offline(True)
    _fill_report(rider, "theft", OFFLINE_TEXT)
    rider.get_by_test_id("report-photos").set_input_files(photo)
    expect(rider.get_by_test_id("report-photo-previews").locator("li")).to_have_count(1)
    rider.get_by_test_id("report-submit").click()

    expect(rider.get_by_test_id("report-status")).to_have_attribute("data-kind", "warn")
    expect(rider.get_by_test_id("offline-queue")).to_be_visible()
    expect(rider.get_by_test_id("offline-queue-count")).to_have_attribute("data-count", "1")
    expect(rider.get_by_test_id("offline-queue-item")).to_have_attribute("data-state", "waiting")
    # The form is ready for the next report; the first one waits in the outbox.
    expect(rider.get_by_test_id("report-description")).to_have_value("")
    assert posts == []
    assert _clues(db) == []

    # --- back online: the outbox sends it by itself, once ------------------------------------------
    phone.set_offline(False)
    expect(rider.get_by_test_id("report-status")).to_have_attribute("data-kind", "success")
    expect(rider.get_by_test_id("offline-queue")).to_be_hidden()
    expect(rider.get_by_test_id("offline-queue-count")).to_have_attribute("data-count", "0")
    sent = wait_until(lambda: _clues(db), what="the offline report to reach the database")
    assert len(sent) == 1 and len(posts) == 1
    offline_clue = sent[0]
    assert offline_clue.description == OFFLINE_TEXT
    assert offline_clue.category_code == "theft"
    assert offline_clue.status == "submitted"
    assert abs(offline_clue.lat - HERE["latitude"]) < 1e-6 and abs(offline_clue.lon - HERE["longitude"]) < 1e-6
    assert offline_clue.idempotency_key
    photos = read_db(db, lambda s: s.scalar(select(func.count()).where(CluePhoto.clue_id == offline_clue.id)))
    assert photos == 1
    cid = offline_clue.id
    expect(rider.get_by_test_id("report-status")).to_contain_text(f"#{cid}")

    # --- and one report sent directly, online ------------------------------------------------------
    rider.get_by_test_id("locate-button").click()
    _expect_located(rider)
    _fill_report(rider, "fire_hazard", ONLINE_TEXT)
    rider.get_by_test_id("report-urgent").check()
    rider.get_by_test_id("report-submit").click()
    expect(rider.get_by_test_id("report-status")).to_have_attribute("data-kind", "success")
    expect(rider.get_by_test_id("offline-queue")).to_be_hidden()
    clues = wait_until(lambda: (c := _clues(db)) and len(c) == 2 and c, what="the online report")
    online_clue = clues[1]
    assert (online_clue.description, online_clue.category_code, online_clue.urgent) == (
        ONLINE_TEXT,
        "fire_hazard",
        True,
    )
    expect(rider.get_by_test_id("report-status")).to_contain_text(f"#{online_clue.id}")
    assert len(posts) == 2

    rider.get_by_test_id("nav-my-reports").click()
    expect(rider.get_by_test_id("my-report")).to_have_count(2)
    mine = rider.locator(f'[data-testid="my-report"][data-clue-id="{cid}"]')
    expect(mine).to_have_attribute("data-status", "submitted")
    expect(mine.get_by_test_id("status-badge")).to_have_attribute("data-status", "submitted")

    # --- the command centre: queue, detail, verify, dispatch ---------------------------------------
    desk = new_context().new_page()
    log_in(desk, "dispatcher")
    expect(desk).to_have_url(re.compile(r"/desk$"))
    expect(desk.get_by_test_id("count-submitted")).to_have_attribute("data-count", "2")
    row = desk.locator(f'[data-testid="clue-row"][data-clue-id="{cid}"]')
    expect(row).to_have_attribute("data-status", "submitted")
    expect(row.get_by_test_id("status-badge")).to_have_attribute("data-status", "submitted")
    row.get_by_test_id("clue-link").click()

    detail = desk.get_by_test_id("clue-detail")
    expect(detail).to_have_attribute("data-status", "submitted")
    expect(desk.get_by_test_id("clue-status")).to_have_attribute("data-status", "submitted")
    expect(desk.get_by_test_id("clue-description")).to_have_text(OFFLINE_TEXT)
    expect(desk.get_by_test_id("clue-photo")).to_have_count(1)
    # The photo the phone kept offline arrives whole: the browser decodes it at its real size.
    clue_photo = desk.get_by_test_id("clue-photo")
    clue_photo.scroll_into_view_if_needed()
    expect(clue_photo).to_have_js_property("naturalWidth", 64)

    desk.get_by_test_id("action-verify").click()
    expect(desk.get_by_test_id("page-message")).to_have_attribute("data-kind", "success")
    expect(detail).to_have_attribute("data-status", "verified")
    expect(desk.get_by_test_id("clue-status")).to_have_attribute("data-status", "verified")

    expect(desk.get_by_test_id("routing-proposal")).to_have_attribute("data-assignee", "police")
    desk.get_by_test_id("dispatch-assignee").select_option("police")
    desk.get_by_test_id("action-dispatch").click()
    expect(desk.get_by_test_id("page-message")).to_have_attribute("data-kind", "success")
    expect(detail).to_have_attribute("data-status", "dispatched")
    expect(desk.get_by_test_id("clue-assignee")).to_contain_text("police")

    # --- community police: accept and resolve ------------------------------------------------------
    police = new_context().new_page()
    log_in(police, "police")
    expect(police).to_have_url(re.compile(r"/my/assignments$"))
    card = police.locator(f'[data-testid="assignment"][data-clue-id="{cid}"]')
    expect(card).to_have_attribute("data-status", "dispatched")
    expect(card.get_by_test_id("status-badge")).to_have_attribute("data-status", "dispatched")
    card.get_by_test_id("action-accept").click()
    expect(police.get_by_test_id("page-message")).to_have_attribute("data-kind", "success")
    expect(card).to_have_attribute("data-status", "in_progress")
    expect(card.get_by_test_id("status-badge")).to_have_attribute("data-status", "in_progress")
    card.get_by_test_id("resolve-outcome").fill(OUTCOME)
    card.get_by_test_id("action-resolve").click()
    expect(police.get_by_test_id("page-message")).to_have_attribute("data-kind", "success")
    # Done, so no longer on the to-do list; still under "all", with its outcome.
    expect(card).to_have_count(0)
    police.get_by_test_id("assignments-all").click()
    expect(card).to_have_attribute("data-status", "resolved")
    expect(card.get_by_test_id("assignment-outcome")).to_contain_text(OUTCOME)

    # --- the dispatcher closes it with a value grade -----------------------------------------------
    desk.goto(f"/clues/{cid}")
    expect(detail).to_have_attribute("data-status", "resolved")
    expect(desk.get_by_test_id("clue-outcome")).to_have_text(OUTCOME)
    desk.get_by_test_id("action-form-close").locator("select[name=value_grade]").select_option("A")
    desk.get_by_test_id("action-close").click()
    expect(desk.get_by_test_id("page-message")).to_have_attribute("data-kind", "success")
    expect(detail).to_have_attribute("data-status", "closed")
    expect(desk.get_by_test_id("clue-status")).to_have_attribute("data-status", "closed")
    expect(desk.get_by_test_id("clue-value-grade")).to_be_visible()
    entries = desk.get_by_test_id("clue-timeline").get_by_test_id("timeline-entry")
    expect(entries).to_have_count(6)
    assert [entries.nth(i).get_attribute("data-action") for i in range(6)] == [
        "submit",
        "verify",
        "dispatch",
        "accept",
        "resolve",
        "close",
    ]

    # --- the rider sees the outcome and rates it ---------------------------------------------------
    rider.reload()
    expect(mine).to_have_attribute("data-status", "closed")
    expect(mine.get_by_test_id("status-badge")).to_have_attribute("data-status", "closed")
    expect(mine.get_by_test_id("report-outcome")).to_contain_text(OUTCOME)
    mine.get_by_test_id("rating-4").check()
    mine.get_by_test_id("action-rate").click()
    expect(rider.get_by_test_id("page-message")).to_have_attribute("data-kind", "success")
    expect(mine.get_by_test_id("report-rating")).to_have_attribute("data-rating", "4")
    expect(mine.get_by_test_id("action-form-rate")).to_have_count(0)
    # The report sent online is untouched, still waiting for the command centre.
    other = rider.locator(f'[data-testid="my-report"][data-clue-id="{online_clue.id}"]')
    expect(other).to_have_attribute("data-status", "submitted")

    final = _clues(db)[0]
    assert (final.status, final.value_grade, final.rating, final.outcome) == ("closed", "A", 4, OUTCOME)
    actions = read_db(
        db, lambda s: list(s.scalars(select(ClueEvent.action).where(ClueEvent.clue_id == cid).order_by(ClueEvent.id)))
    )
    assert actions == ["submit", "verify", "dispatch", "accept", "resolve", "close", "rate"]
    # Sent exactly once, though the outbox tried again on every page the rider opened since.
    assert len(posts) == 2
