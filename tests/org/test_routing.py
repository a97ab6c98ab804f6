"""Routing rules as data: category × area → party, tried in order, the category's handler as fallback; a
tester that says where a clue would go; a clue keeps the rule whose proposal it was dispatched by."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.models import Clue
from tests.api.helpers import Api, assert_problem
from tests.factories import CENTER_LAT, CENTER_LON, clue_body, square

WEST = {"lat": CENTER_LAT, "lon": CENTER_LON - 0.005}  # in the grid jinding-w, in the community jinding
EAST = {"lat": CENTER_LAT, "lon": CENTER_LON + 0.005}  # in the community, outside every grid


def _test(api: Api, category: str, where: dict[str, float], who: str = "dispatcher") -> dict[str, Any]:
    res = api.client.post(
        "/api/v1/routing/test",
        json={"category": category, **where},
        headers={**api.auth(who), "Accept-Language": "zh-CN"},
    )
    assert res.status_code == 200, res.text
    body: dict[str, Any] = res.json()
    return body


def _rule(api: Api, **body: Any) -> int:
    res = api.client.post("/api/v1/routing-rules", json=body, headers=api.auth("admin"))
    assert res.status_code == 201, res.text
    return int(res.json()["id"])


def test_without_rules_the_category_says_who(api: Api) -> None:
    theft = _test(api, "theft", WEST)
    assert theft["rule"] is None and theft["assignee"]["username"] == "police"
    assert theft["grid"] == "jinding-w" and theft["community"] == "jinding"
    assert theft["explanation"].startswith("no rule applies; the category's handler: community 金鼎社区")
    assert "金鼎社区" in theft["localized_explanation"] and "no rule" not in theft["localized_explanation"]
    assert _test(api, "fire_hazard", WEST)["assignee"]["username"] == "grid_staff"


def test_the_first_matching_rule_that_names_someone_wins(api: Api, db: Session) -> None:
    unit = _rule(
        api, category="theft", area_kind="community", area_code="jinding", party="patrol_unit", patrol_unit="patrol-1"
    )
    routed = _test(api, "theft", WEST)
    assert routed["rule"] == unit and routed["assignee"]["username"] == "patrol"
    assert routed["explanation"] == f"rule {unit}: patrol unit 巡防一队 → its member with the fewest open clues"
    assert _test(api, "drugs", WEST)["rule"] is None  # another category: the fallback

    # A rule before it, for any category in the grid: grid staff, who exist only inside the grid.
    first = _rule(api, area_kind="grid", area_code="jinding-w", party="grid_staff", position=1)
    assert _test(api, "theft", WEST)["rule"] == first
    # Outside the grid the first rule does not match; the unit's rule does.
    assert _test(api, "theft", EAST)["rule"] == unit
    # Retired, a rule no longer applies.
    res = api.client.patch(f"/api/v1/routing-rules/{first}", json={"active": False}, headers=api.auth("admin"))
    assert res.status_code == 200 and res.json()["active"] is False
    assert _test(api, "theft", WEST)["rule"] == unit
    assert [r["id"] for r in api.client.get("/api/v1/routing-rules", headers=api.auth("dispatcher")).json()] == [unit]

    # A clue dispatched as proposed keeps the rule; dispatched to someone else, it keeps none.
    followed = api.report(**clue_body(category="theft", **WEST))
    other = api.report(**clue_body(category="theft", **WEST))
    for clue_id, assignee in ((followed, "patrol"), (other, "police")):
        api.ok("dispatcher", clue_id, "verify")
        api.ok("dispatcher", clue_id, "dispatch", {"assignee": assignee})
    kept = {i: r for i, r in db.execute(select(Clue.id, Clue.routing_rule_id).where(Clue.id.in_([followed, other])))}
    db.rollback()
    assert kept == {followed: unit, other: None}


def test_a_zone_rule_names_a_person(api: Api) -> None:
    zone = {"code": "wanda", "name": "万达商圈", "boundary": square(CENTER_LAT, CENTER_LON + 0.005, 0.002)}
    assert api.client.post("/api/v1/org/zones", json=zone, headers=api.auth("admin")).status_code == 201
    rule = _rule(api, area_kind="zone", area_code="wanda", party="person", person="police2")
    inside = _test(api, "fire_hazard", EAST)
    assert inside["rule"] == rule and inside["assignee"]["username"] == "police2" and inside["zones"] == ["wanda"]
    assert _test(api, "fire_hazard", WEST)["rule"] is None


def test_bad_rules_are_refused_with_the_reason(api: Api) -> None:
    admin = api.auth("admin")
    for body, words in [
        ({"party": "police", "category": "ufo"}, "unknown category"),
        ({"party": "police", "area_kind": "grid", "area_code": "nowhere"}, "no grid with the code 'nowhere'"),
        ({"party": "patrol_unit", "patrol_unit": "nope"}, "patrol unit by its code"),
        ({"party": "person", "person": "rider"}, "police officer, grid worker or patrol member"),
    ]:
        assert (
            words in assert_problem(api.client.post("/api/v1/routing-rules", json=body, headers=admin), 422)["detail"]
        )
    assert_problem(api.client.post("/api/v1/routing-rules", json={"party": "mayor"}, headers=admin), 422)
    assert_problem(
        api.client.post("/api/v1/routing-rules", json={"party": "police"}, headers=api.auth("dispatcher")), 403
    )
    assert_problem(api.client.patch("/api/v1/routing-rules/999999", json={"active": False}, headers=admin), 404)
    res = api.client.post("/api/v1/routing/test", json={"category": "ufo", **WEST}, headers=admin)
    assert_problem(res, 422)
    assert_problem(
        api.client.post("/api/v1/routing/test", json={"category": "theft", **WEST}, headers=api.auth("rider")), 403
    )


def test_the_routing_page_adds_orders_retires_and_tests_rules(api: Api, browser: Any) -> None:
    admin = browser("admin")
    admin.client.headers["Accept-Language"] = "zh-CN"
    added = admin.post(
        "/admin/routing",
        {"category": "theft", "area": "community:jinding", "party": "patrol_unit", "patrol_unit": "patrol-1"},
    )
    assert added.status_code == 200 and "规则已添加" in added.text and "巡防一队" in added.text
    second = admin.post("/admin/routing", {"area": "any:", "party": "person", "person": "police2"})
    assert second.status_code == 200
    ids = [int(i) for i in re.findall(r'data-testid="routing-rule" data-id="(\d+)"', second.text)]
    moved = admin.post(f"/admin/routing/{ids[1]}/move", {"direction": "up"})
    assert [int(i) for i in re.findall(r'data-testid="routing-rule" data-id="(\d+)"', moved.text)] == [ids[1], ids[0]]
    answer = admin.client.get(f"/admin/routing?category=theft&lat={WEST['lat']}&lon={WEST['lon']}")
    assert 'data-testid="routing-answer"' in answer.text and f"规则 {ids[1]}" in answer.text
    typo = admin.client.get("/admin/routing?category=theft&lat=abc&lon=119")
    assert typo.status_code == 422 and "经纬度须为数字" in typo.text and 'data-testid="routing-test"' in typo.text
    retired = admin.post(f"/admin/routing/{ids[1]}/active", {"active": "no"})
    assert "规则已停用" in retired.text
    refused = admin.post("/admin/routing", {"area": "grid:nowhere", "party": "police"})
    assert refused.status_code == 422 and "nowhere" in refused.text
    dispatcher = browser("dispatcher")
    page = dispatcher.client.get("/admin/routing")
    assert page.status_code == 200 and 'data-testid="routing-add"' not in page.text
    assert dispatcher.post("/admin/routing", {"party": "police"}).status_code == 403
