"""The duty switch on a phone without a connection: kept on the phone with the moment of the tap and
sent (PUT /api/v1/me/duty with "at") when the phone is back online, so the shift begins and ends when
the rider said."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.infra.clock import utcnow
from riderwatch.models import DutyShift
from tests.e2e.conftest import PageWatch, log_in, read_db, wait_until
from tests.factories import CENTER_LAT, CENTER_LON, PASSWORD, make_district

pytestmark = pytest.mark.e2e

PHONE = {"width": 360, "height": 740}
OFFLINE_FOR_S = 3.0


def _consent(live_server: str) -> None:
    res = httpx.post(f"{live_server}/api/v1/auth/token", data={"username": "rider", "password": PASSWORD}, timeout=10)
    headers = {"Authorization": f"Bearer {res.json()['access_token']}"}
    put = httpx.put(f"{live_server}/api/v1/me/location-consent", json={"granted": True}, headers=headers, timeout=10)
    assert put.status_code == 200, put.text


def _shifts(db: Session, rider_id: int) -> list[tuple[datetime, datetime | None]]:
    return read_db(
        db,
        lambda s: [
            (sh.started_at, sh.ended_at)
            for sh in s.scalars(select(DutyShift).where(DutyShift.rider_id == rider_id).order_by(DutyShift.started_at))
        ],
    )


def _tap_offline(page: Page, phone: BrowserContext) -> tuple[datetime, datetime]:
    """Tap the duty switch without a connection; returns the moments just before and after the tap."""
    phone.set_offline(True)
    before = utcnow()
    page.get_by_test_id("duty-toggle").click()
    expect(page.get_by_test_id("duty-status")).to_have_attribute("data-kind", "warn")
    after = utcnow()
    expect(page.get_by_test_id("duty-state")).to_have_attribute("data-pending", "1")
    return before, after


def test_duty_switched_offline_counts_from_the_tap(
    db: Session, live_server: str, new_context: Callable[..., BrowserContext], watch: PageWatch
) -> None:
    district = make_district(db)
    rider_id = district.users["rider"].id
    _consent(live_server)
    # Requests the page tries while the phone has no connection fail, as they should.
    watch.expect_console_error(r"ERR_INTERNET_DISCONNECTED")
    here = {"latitude": CENTER_LAT + 0.002, "longitude": CENTER_LON + 0.001}
    phone = new_context(viewport=PHONE, is_mobile=True, has_touch=True, geolocation=here, permissions=["geolocation"])
    page = phone.new_page()
    log_in(page, "rider")
    page.get_by_test_id("nav-duty").click()
    expect(page.get_by_test_id("duty-state")).to_have_attribute("data-on-duty", "0")

    # On duty without a connection: the page says so and the server has no shift yet.
    tap_before, tap_after = _tap_offline(page, phone)
    expect(page.get_by_test_id("duty-state")).to_have_attribute("data-on-duty", "1")
    expect(page.get_by_test_id("duty-toggle")).to_have_text(re.compile("结束值守"))
    page.wait_for_timeout(OFFLINE_FOR_S * 1000)
    assert _shifts(db, rider_id) == []

    # Back online: the switch goes out by itself and the page shows the shift from the tap.
    reconnected = utcnow()
    phone.set_offline(False)
    expect(page).to_have_url(re.compile(r"/duty\?done=on$"))
    expect(page.get_by_test_id("duty-state")).to_have_attribute("data-on-duty", "1")
    expect(page.get_by_test_id("duty-state")).not_to_have_attribute("data-pending", "1")
    [(started, ended)] = wait_until(lambda: _shifts(db, rider_id), what="the shift")
    assert ended is None
    assert tap_before - timedelta(milliseconds=5) <= started <= tap_after, (tap_before, started, tap_after)
    assert started < reconnected - timedelta(seconds=OFFLINE_FOR_S - 1)

    # Off duty without a connection, the same way: the shift ends at the tap.
    tap_before, tap_after = _tap_offline(page, phone)
    expect(page.get_by_test_id("duty-state")).to_have_attribute("data-on-duty", "0")
    page.wait_for_timeout(OFFLINE_FOR_S * 1000)
    assert _shifts(db, rider_id)[0][1] is None
    reconnected = utcnow()
    phone.set_offline(False)
    expect(page).to_have_url(re.compile(r"/duty\?done=off$"))
    expect(page.get_by_test_id("duty-state")).to_have_attribute("data-on-duty", "0")
    [(started_again, ended)] = _shifts(db, rider_id)
    assert started_again == started and ended is not None
    assert tap_before - timedelta(milliseconds=5) <= ended <= tap_after, (tap_before, ended, tap_after)
    assert ended < reconnected - timedelta(seconds=OFFLINE_FOR_S - 1)
    # Nothing is left waiting on the phone.
    assert page.evaluate("Object.keys(localStorage).filter(function (k) { return k.indexOf('rw-duty-') === 0; })") == []
