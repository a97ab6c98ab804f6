"""An early warning in two real browsers: the dispatcher composes it for a community and sees whom it
would reach; the rider, on duty inside the community with the alerts page open on a phone, gets it the
moment it is published and acknowledges it; the dispatcher's board shows the acknowledgement as it comes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from playwright.sync_api import BrowserContext, expect
from sqlalchemy.orm import Session

from tests.e2e.conftest import log_in
from tests.factories import CENTER_LAT, CENTER_LON, PASSWORD, make_district

pytestmark = pytest.mark.e2e

PHONE = {"width": 360, "height": 740}


def _on_duty_at_the_centre(base_url: str) -> None:
    """The rider consents, goes on duty and sends where they are (as the duty page would)."""
    with httpx.Client(base_url=base_url, timeout=10) as client:
        token = client.post("/api/v1/auth/token", data={"username": "rider", "password": PASSWORD}).json()
        auth = {"Authorization": f"Bearer {token['access_token']}"}
        assert client.put("/api/v1/me/location-consent", json={"granted": True}, headers=auth).status_code == 200
        assert client.put("/api/v1/me/duty", json={"on_duty": True}, headers=auth).status_code == 200
        ping = {"ts": datetime.now(UTC).isoformat(), "lat": CENTER_LAT, "lon": CENTER_LON}
        sent = client.post("/api/v1/tracking/pings", json={"pings": [ping]}, headers=auth)
        assert sent.json()["accepted"] == 1, sent.text


def test_a_rider_on_duty_in_the_area_gets_the_alert_live_and_acknowledges(
    db: Session, new_context: Callable[..., BrowserContext], live_server: str
) -> None:
    make_district(db)
    _on_duty_at_the_centre(live_server)
    phone = new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    log_in(phone, "rider")
    phone.goto("/my/alerts")
    expect(phone.get_by_test_id("no-alerts")).to_be_visible()
    expect(phone.get_by_test_id("alert-live")).to_have_attribute("data-state", "on")  # the stream is open

    desk = new_context().new_page()
    log_in(desk, "dispatcher")
    desk.goto("/alerts/new")
    desk.get_by_test_id("alert-event").fill("在逃嫌疑人")
    desk.get_by_test_id("alert-headline").fill("金鼎社区发现在逃嫌疑人")
    desk.get_by_test_id("alert-description").fill("男，约30岁，黑色外套，骑蓝色电动车")
    desk.get_by_test_id("alert-area-select").select_option("community:jinding")
    desk.get_by_test_id("alert-preview").click()
    expect(desk.get_by_test_id("alert-reach")).to_have_attribute("data-riders", "1")
    desk.get_by_test_id("alert-publish").click()
    expect(desk.get_by_test_id("page-message")).to_contain_text("已发布")

    # No reload by the rider: the page shows the alert as it arrives.
    alert = phone.get_by_test_id("my-alert")
    expect(alert).to_contain_text("金鼎社区发现在逃嫌疑人")
    overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the alert scrolls sideways by {overflow} px"
    phone.get_by_test_id("alert-ack").click()
    expect(phone.get_by_test_id("my-alert")).to_have_attribute("data-acknowledged", "yes")

    # The sender's board shows the acknowledgement as it comes, without a reload.
    expect(desk.get_by_test_id("alert-receipts")).to_have_attribute("data-acknowledged", "1")
