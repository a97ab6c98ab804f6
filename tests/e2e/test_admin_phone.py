"""The administrator's pages on a phone: no sideways scrolling, the new-user form offers only the links
that fit the chosen role, deactivation and a new key work by tapping through."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.models import User
from tests.e2e.conftest import log_in, read_db
from tests.factories import make_district

pytestmark = pytest.mark.e2e

PHONE = {"width": 360, "height": 740}


def _fits_the_screen(page: Page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"{page.url} scrolls sideways by {overflow} px on a phone"


def test_admin_works_from_a_phone(db: Session, new_context: Callable[..., BrowserContext]) -> None:
    make_district(db)
    page = new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="en-US").new_page()
    log_in(page, "admin")

    page.get_by_test_id("nav-admin-users").click()
    expect(page.get_by_test_id("user-row")).to_have_count(10)
    _fits_the_screen(page)

    page.get_by_test_id("user-new").click()
    page.get_by_test_id("user-role").select_option("grid_staff")
    expect(page.get_by_test_id("link-grid")).to_be_visible()
    for other in ("community", "patrol_unit", "station", "platform"):
        expect(page.get_by_test_id(f"link-{other}")).to_be_hidden()
    page.get_by_test_id("user-role").select_option("rider")
    expect(page.get_by_test_id("link-station")).to_be_visible()
    expect(page.get_by_test_id("link-grid")).to_be_hidden()
    page.get_by_test_id("user-role").select_option("grid_staff")
    page.get_by_test_id("user-username").fill("grid9")
    page.get_by_test_id("user-password").fill("grid9-password")
    page.get_by_test_id("user-display-name").fill("林网格员")
    page.locator("#link-grid").select_option("jinding-w")
    _fits_the_screen(page)
    page.get_by_test_id("user-create").click()
    expect(page.get_by_test_id("page-message")).to_contain_text("created")
    expect(page.get_by_test_id("user-detail")).to_have_attribute("data-username", "grid9")
    _fits_the_screen(page)

    page.get_by_test_id("user-deactivate-button").click()
    expect(page.get_by_test_id("confirm-deactivate")).to_be_visible()
    _fits_the_screen(page)
    page.get_by_test_id("confirm-yes").click()
    expect(page.get_by_test_id("user-detail")).to_have_attribute("data-active", "no")
    active = read_db(db, lambda s: s.scalar(select(User.is_active).where(User.username == "grid9")))
    assert active is False

    page.get_by_test_id("nav-admin-keys").click()
    page.get_by_test_id("key-name").fill("12345 city hotline")
    page.get_by_test_id("key-create").click()
    expect(page.get_by_test_id("key-issued")).to_be_visible()
    assert page.get_by_test_id("key-value").input_value().startswith("rw_")
    expect(page.get_by_test_id("key-copy")).to_be_visible()
    _fits_the_screen(page)

    page.get_by_test_id("nav-admin-categories").click()
    # The categories page, loaded: measured mid-navigation, the document had no root element yet.
    expect(page.get_by_test_id("category-edit").first).to_be_visible()
    _fits_the_screen(page)
    page.get_by_test_id("category-edit").first.click()
    expect(page.get_by_test_id("category-form")).to_be_visible()
    _fits_the_screen(page)
    page.get_by_test_id("nav-admin-audit").click()
    expect(page.get_by_test_id("audit-entry").first).to_have_attribute("data-action", "apikey.create")
    _fits_the_screen(page)
