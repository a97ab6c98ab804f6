"""Chinese first, English second: what a browser shows by default, after a switch, and by its own setting."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy.orm import Session

from tests.e2e.conftest import log_in
from tests.factories import make_district

pytestmark = pytest.mark.e2e


def _expect_chinese(page: Page) -> None:
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
    expect(page.get_by_test_id("nav-desk")).to_have_text("线索队列")
    expect(page.locator("h1")).to_have_text(re.compile("^线索队列"))
    expect(page.get_by_test_id("logout-button")).to_have_text("退出")


def _expect_english(page: Page) -> None:
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_test_id("nav-desk")).to_have_text("Clue queue")
    expect(page.locator("h1")).to_have_text(re.compile("^Clue queue"))
    expect(page.get_by_test_id("logout-button")).to_have_text("Log out")


def test_chinese_by_default_and_english_on_request(db: Session, new_context: Callable[..., BrowserContext]) -> None:
    make_district(db)
    # A browser set to a language RiderWatch does not have gets the default: Chinese.
    page = new_context(locale="fr-FR").new_page()
    page.goto("/login")
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
    expect(page.get_by_test_id("login-submit")).to_have_text("登录")
    log_in(page, "dispatcher")
    _expect_chinese(page)
    expect(page.get_by_test_id("lang-zh")).to_have_attribute("aria-current", "true")

    page.get_by_test_id("lang-en").click()
    expect(page).to_have_url(re.compile(r"/desk$"))
    _expect_english(page)
    expect(page.get_by_test_id("lang-en")).to_have_attribute("aria-current", "true")
    # The choice is kept: other pages, and the same page later, stay in English.
    page.goto("/desk?status=all")
    _expect_english(page)
    expect(page.get_by_test_id("count-submitted")).to_contain_text("Submitted")

    page.get_by_test_id("lang-zh").click()
    expect(page).to_have_url(re.compile(r"/desk\?status=all$"))
    _expect_chinese(page)


def test_english_browser_sees_english(db: Session, new_context: Callable[..., BrowserContext]) -> None:
    make_district(db)
    context = new_context(locale="en-US")
    assert not [c for c in context.cookies() if c["name"] == "rw_lang"]
    page = context.new_page()
    page.goto("/login")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_test_id("login-submit")).to_have_text("Log in")
    log_in(page, "dispatcher")
    _expect_english(page)
    assert not [c for c in context.cookies() if c["name"] == "rw_lang"]

    # A Chinese browser, also without a cookie, sees Chinese.
    zh = new_context(locale="zh-CN").new_page()
    log_in(zh, "dispatcher")
    _expect_chinese(zh)
