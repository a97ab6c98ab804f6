"""In a browser, on a phone, in Chinese: a rider redeems points (after a confirmation), logs leaflets with
the place from the phone, and sends the police a suggestion; an administrator fills in an AHP matrix and
sees its consistency as they go, then saves the weights."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.infra.clock import utcnow
from riderwatch.models import EvaluationScheme, Feedback, LeafletDistribution, Redemption, User
from riderwatch.outreach import service as outreach
from riderwatch.points import rewards
from riderwatch.points import service as points
from tests.e2e.conftest import log_in, read_db
from tests.factories import CENTER_LAT, CENTER_LON, make_district

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}


def _fits(page: Page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"{page.url} scrolls sideways by {overflow} px on a phone"


def test_a_rider_redeems_logs_leaflets_and_speaks_from_a_phone(
    db: Session, new_context: Callable[..., BrowserContext]
) -> None:
    district = make_district(db)
    admin, rider = district.users["admin"], district.users["rider"]
    points.adjust(db, actor=admin, rider_id=rider.id, points=150, note="协助抓获盗窃嫌疑人")
    reward = rewards.save_reward(
        db,
        user=admin,
        reward_id=None,
        name="雨衣",
        name_en="Raincoat",
        kind="goods",
        cost=120,
        cash_fen=None,
        stock=3,
        active=True,
    )
    today = utcnow().date()
    outreach.save_campaign(db, user=admin, code="fanzha", name="反电诈宣传", starts_on=today - timedelta(days=2))
    outreach.move_stock(db, user=admin, campaign_code="fanzha", station_code="mt-jinding", kind="issue", count=100)
    db.commit()

    context = new_context(
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        geolocation={"latitude": CENTER_LAT + 0.001, "longitude": CENTER_LON - 0.003, "accuracy": 20},
        permissions=["geolocation"],
    )
    page = context.new_page()
    log_in(page, "rider")

    page.get_by_test_id("nav-points").click()
    expect(page.get_by_test_id("points-balance")).to_have_text("150")
    expect(page.get_by_test_id("ledger-entry")).to_contain_text("协助抓获盗窃嫌疑人")
    _fits(page)
    page.get_by_test_id("link-rewards").click()
    page.locator(f'[data-reward-id="{reward.id}"]').get_by_test_id("redeem").click()
    expect(page.get_by_test_id("confirm-question")).to_contain_text("雨衣")
    _fits(page)
    page.get_by_test_id("confirm-yes").click()
    expect(page.get_by_test_id("page-message")).to_contain_text("积分已预扣")
    expect(page.get_by_test_id("my-redemption")).to_have_attribute("data-status", "requested")
    expect(page.get_by_test_id("rewards-balance")).to_contain_text("30")
    assert read_db(db, lambda s: s.scalar(select(Redemption.status))) == "requested"

    page.get_by_test_id("nav-leaflets").click()
    expect(page.get_by_test_id("leaflet-place")).to_contain_text("已获取位置")
    page.get_by_test_id("leaflet-count").fill("12")
    _fits(page)
    page.get_by_test_id("leaflet-submit").click()
    expect(page.get_by_test_id("page-message")).to_contain_text("已登记")
    expect(page.get_by_test_id("leaflets-total")).to_contain_text("12")
    logged = read_db(db, lambda s: s.scalars(select(LeafletDistribution)).one())
    assert logged.count == 12 and abs(logged.lat - (CENTER_LAT + 0.001)) < 1e-5

    page.get_by_test_id("nav-feedback").click()
    page.get_by_test_id("feedback-body").fill("希望夜间多安排巡逻")
    page.get_by_test_id("feedback-anonymous").check()
    _fits(page)
    page.get_by_test_id("feedback-send").click()
    expect(page.get_by_test_id("page-message")).to_contain_text("已发送")
    expect(page.get_by_test_id("my-feedback-item")).to_contain_text("希望夜间多安排巡逻")
    sent = read_db(db, lambda s: s.scalars(select(Feedback)).one())
    police_id = read_db(db, lambda s: s.scalar(select(User.id).where(User.username == "police")))
    assert sent.anonymous and sent.assignee_id == police_id


def test_the_ahp_matrix_shows_its_consistency_as_it_is_filled_in(
    db: Session, new_context: Callable[..., BrowserContext]
) -> None:
    make_district(db)
    page = new_context().new_page()
    log_in(page, "admin")
    page.goto("/admin/evaluation")
    for key in (
        "value_grades",
        "verified_share",
        "report_minutes",
        "duty_hours",
        "tasks_done",
        "alert_ack_share",
        "alert_ack_minutes",
        "training_score",
        "leaflets",
    ):
        box = page.get_by_test_id(f"include-{key}")
        if box.is_checked():
            box.uncheck()
    page.get_by_test_id("include-value_grades").check()
    page.get_by_test_id("include-duty_hours").check()
    page.get_by_test_id("method-ahp").check()
    judgements = page.get_by_test_id("judgement")
    expect(judgements).to_have_count(3)  # three indicators: the pairs above the diagonal
    page.wait_for_load_state("networkidle")  # the matrix as the last change left it
    judgements.nth(0).select_option("3")  # verified clues over value: 3
    judgements.nth(1).select_option("5")  # verified clues over hours: 5
    judgements.nth(2).select_option("1/5")  # value against hours: 1/5 — contradicts the two above
    expect(page.get_by_test_id("ahp-consistency")).to_have_attribute("data-consistent", "0")
    expect(page.get_by_test_id("ahp-consistency")).to_contain_text("一致性不足")
    page.get_by_test_id("judgement").nth(2).select_option("2")
    expect(page.get_by_test_id("ahp-consistency")).to_have_attribute("data-consistent", "1")
    page.get_by_test_id("scheme-save").click()
    expect(page.get_by_test_id("page-message")).to_contain_text("设置已保存")
    scheme = read_db(db, lambda s: s.scalars(select(EvaluationScheme)).one())
    assert scheme.method == "ahp" and [i["key"] for i in scheme.indicators] == [
        "verified_clues",
        "value_grades",
        "duty_hours",
    ]
    assert scheme.consistency is not None and scheme.consistency["cr"] < 0.1
