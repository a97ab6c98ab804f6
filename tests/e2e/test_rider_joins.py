"""A rider joins from a phone by the station's QR link, passes the required course, is activated by the
station manager and reports a first clue: the join link with its QR code, the join form with what the
data is for, the training pages, the roster with where the rider stands and the rider's path, and the
rider's pages before and after activation — in Chromium, at a phone's size where riders are."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.models import Clue, Grid, Rider, User
from riderwatch.training import service as training
from tests.e2e.conftest import log_in, read_db
from tests.factories import CENTER_LAT, CENTER_LON, make_district

pytestmark = pytest.mark.e2e

PHONE = {"width": 360, "height": 740}
HERE = {"latitude": CENTER_LAT + 0.001, "longitude": CENTER_LON - 0.004}


def _fits_the_screen(page: Page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"{page.url} scrolls sideways by {overflow} px on a phone"


def _required_course(db: Session) -> None:
    admin = db.scalar(select(User).where(User.username == "admin"))
    assert admin is not None
    values = {
        "code": "legal",
        "title": "法律常识",
        "body": "发现违法线索，及时上报，不要自行处置。",
        "questions_per_quiz": 1,
    }
    training.create_course(db, actor=admin, values=values)
    question = {"text": "发现有人撬电动车锁，应当？", "options": ["及时上报", "上前抓捕"], "correct": [0]}
    training.add_questions(db, actor=admin, code="legal", questions=[question])
    db.commit()


def test_a_rider_joins_by_qr_link_is_trained_activated_and_reports(
    db: Session, new_context: Callable[..., BrowserContext]
) -> None:
    make_district(db)
    _required_course(db)
    manager = new_context().new_page()
    log_in(manager, "station_manager")
    manager.goto("/riders/join-links")
    manager.get_by_test_id("join-link-create").click()
    expect(manager.get_by_test_id("page-message")).to_contain_text("加入链接已生成")
    qr = manager.locator("img.qr").first
    expect(qr).to_be_visible()
    # Drawn once it has loaded (the page is shown before its image has come).
    manager.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=qr.element_handle())
    url = manager.locator("code.url").first.inner_text()
    code = re.sub(r".*/join/", "", url)

    phone = new_context(
        viewport=PHONE, is_mobile=True, has_touch=True, geolocation=HERE, permissions=["geolocation"]
    ).new_page()
    phone.goto(f"/join/{code}")
    expect(phone.get_by_test_id("join-purpose")).to_be_visible()
    _fits_the_screen(phone)
    phone.locator("#join-name").fill("周小明")
    phone.locator("#join-phone").fill("139 0013 9088")
    phone.locator("#join-password").fill("zhou-xiaoming-2026")
    phone.locator("#join-password-again").fill("zhou-xiaoming-2026")
    phone.get_by_test_id("join-agree").check()
    phone.get_by_test_id("join-submit").click()
    expect(phone.get_by_test_id("joined")).to_contain_text("13900139088")

    # Signed in as an applicant: their own pages, with the reason they cannot report yet.
    phone.goto("/login")
    phone.get_by_test_id("login-username").fill("13900139088")
    phone.get_by_test_id("login-password").fill("zhou-xiaoming-2026")
    phone.get_by_test_id("login-submit").click()
    expect(phone.get_by_test_id("current-user")).to_contain_text("周小明")
    expect(phone.get_by_test_id("nav-report")).to_have_count(0)
    phone.goto("/my/reports")
    expect(phone.get_by_test_id("membership-note")).to_contain_text("尚未激活")
    _fits_the_screen(phone)

    # The required course: read, quiz, passed.
    phone.get_by_test_id("nav-training").click()
    expect(phone.get_by_test_id("course")).to_have_attribute("data-status", "new")
    phone.get_by_role("link", name="法律常识").click()
    expect(phone.get_by_test_id("course-body")).to_contain_text("及时上报")
    phone.get_by_test_id("quiz-start").click()
    phone.get_by_label("及时上报").check()
    _fits_the_screen(phone)
    phone.get_by_test_id("quiz-submit").click()
    expect(phone.get_by_test_id("quiz-result")).to_have_attribute("data-passed", "yes")

    manager.goto("/riders?status=applied")
    expect(manager.get_by_test_id("roster-training")).to_contain_text("必修课 1 / 1")
    manager.get_by_role("link", name="周小明").click()
    manager.locator("#status-new").select_option("active")
    manager.locator("#status-reason").fill("已完成法律常识培训")
    manager.get_by_test_id("status-save").click()
    expect(manager.get_by_test_id("rider-status")).to_contain_text("正式队员")
    expect(manager.get_by_test_id("rider-path")).to_contain_text("已完成法律常识培训")

    phone.goto("/my/reports")
    expect(phone.get_by_test_id("link-report")).to_be_visible()
    phone.get_by_test_id("link-report").click()
    expect(phone).to_have_url(re.compile(r"/report$"))
    expect(phone.get_by_test_id("location-status")).to_have_attribute("data-located", "1")
    phone.get_by_test_id("report-category").select_option("theft")
    phone.get_by_test_id("report-description").fill("小区东门有人撬电动车锁")
    phone.get_by_test_id("report-submit").click()
    expect(phone.get_by_test_id("report-status")).to_have_attribute("data-kind", "success")
    status = read_db(
        db,
        lambda s: s.scalar(
            select(Rider.status).join(User, User.id == Rider.user_id).where(User.username == "13900139088")
        ),
    )
    assert status == "active"
    reporter = read_db(db, lambda s: s.scalar(select(User.username).join(Clue, Clue.reporter_id == User.id)))
    assert reporter == "13900139088"


def test_the_district_page_draws_the_areas_on_a_phone(db: Session, new_context: Callable[..., BrowserContext]) -> None:
    make_district(db)
    page = new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    log_in(page, "admin")
    page.goto("/admin/district")
    expect(page.locator("#district-map path.leaflet-interactive").first).to_be_visible()
    _fits_the_screen(page)
    page.goto("/stats")
    expect(page.locator("#chart-days")).to_be_visible()
    drawn = page.evaluate("document.getElementById('chart-days').width")
    assert drawn > 0, "the chart was not drawn"
    _fits_the_screen(page)


def test_a_grids_corner_is_moved_on_the_map(db: Session, new_context: Callable[..., BrowserContext]) -> None:
    district = make_district(db)
    before = district.grid.boundary["coordinates"][0]
    page = new_context().new_page()
    log_in(page, "admin")
    page.goto("/admin/district/grids/jinding-w")
    page.get_by_test_id("draw-edit").click()
    handles = page.locator(".vertex-handle")
    expect(handles).to_have_count(len(before) - 1)
    # Drag the first corner a third of the way towards the middle of the grid: it stays inside its community.
    box = page.locator("#org-map path.leaflet-interactive").first.bounding_box()
    corner = handles.first.bounding_box()
    assert box and corner
    x, y = corner["x"] + corner["width"] / 2, corner["y"] + corner["height"] / 2
    middle = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + (middle[0] - x) / 3, y + (middle[1] - y) / 3, steps=8)
    page.mouse.up()
    assert page.locator("#org-boundary").input_value().startswith('{"type":"Polygon"')
    page.get_by_test_id("org-save").click()
    expect(page.get_by_test_id("page-message")).to_have_attribute("data-kind", "success")
    after = read_db(db, lambda s: s.scalar(select(Grid.boundary).where(Grid.code == "jinding-w")))
    moved = [
        p for p, q in zip(after["coordinates"][0], before, strict=True) if abs(p[0] - q[0]) + abs(p[1] - q[1]) > 1e-5
    ]
    assert len(moved) in (1, 2), moved  # the corner dragged (and the ring's closing copy of it, if it was first)
