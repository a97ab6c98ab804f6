"""GET requests: what the public may read, how workflow statuses read in Open311, filters and paging."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from riderwatch.infra.clock import utcnow
from riderwatch.models import Category, Clue
from tests.factories import clue_body, make_district, token
from tests.open311.helpers import BASE, api_key, assert_error, assert_xml_mirrors, both, stored, validate

LAT, LON = 25.431, 119.006  # inside the west grid of the test district


def report(client: TestClient, key: str, code: str = "fire_hazard", **extra: str) -> int:
    data = {"api_key": key, "service_code": code, "lat": str(LAT), "long": str(LON), **extra}
    res = client.post(f"{BASE}/requests.json", data=data)
    assert res.status_code == 200, res.text
    return int(res.json()[0]["service_request_id"])


def rider_clue(client: TestClient, headers: dict[str, str], category: str, **extra: Any) -> int:
    res = client.post("/api/v1/clues", json=clue_body(category=category, **extra), headers=headers)
    assert res.status_code == 201, res.text
    return int(res.json()["id"])


def act(client: TestClient, who: str, clue_id: int, action: str, **body: Any) -> None:
    res = client.post(f"/api/v1/clues/{clue_id}/actions/{action}", json=body, headers=token(client, who))
    assert res.status_code == 200, res.text


def listing(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    """GET requests in both formats: checked against the schema and the XML mirror; the JSON list."""
    res_json, res_xml = both(client, "GET", "requests", params=params)
    assert res_json.status_code == res_xml.status_code == 200, res_json.text
    document = res_json.json()
    validate(document, "requests.json")
    assert_xml_mirrors(res_xml.content, document, root="service_requests", item="request")
    return list(document)


def one(client: TestClient, request_id: int) -> dict[str, Any]:
    res_json, res_xml = both(client, "GET", f"requests/{request_id}")
    assert res_json.status_code == res_xml.status_code == 200, res_json.text
    document = res_json.json()
    validate(document, "requests.json")
    assert_xml_mirrors(res_xml.content, document, root="service_requests", item="request")
    assert len(document) == 1
    return dict(document[0])


def ids(requests: list[dict[str, Any]]) -> list[str]:
    return [r["service_request_id"] for r in requests]


def test_public_sees_public_categories_and_open311_requests_but_never_crime(client: TestClient, db: Session) -> None:
    make_district(db)
    key = api_key(db)
    rider = token(client, "rider")
    app_hazard = rider_clue(client, rider, "traffic_hazard", anonymous=True)
    app_theft = rider_clue(client, rider, "theft")
    app_in_need = rider_clue(client, rider, "person_in_need")
    public_other = report(client, key, "other", description="路边有人摆摊占道")
    public_theft_res = client.post(
        f"{BASE}/requests.json",
        data={"api_key": key, "service_code": "theft", "lat": str(LAT), "long": str(LON), "description": "车被偷"},
    )
    public_theft = int(public_theft_res.json()[0]["service_request_id"])
    assert "not published" not in public_theft_res.json()[0]["service_notice"]  # Chinese by default
    assert "不公开" in public_theft_res.json()[0]["service_notice"]

    listed = listing(client)
    assert set(ids(listed)) == {str(app_hazard), str(public_other)}
    for hidden in (app_theft, app_in_need, public_theft):
        for fmt in ("json", "xml"):
            assert_error(client.get(f"{BASE}/requests/{hidden}.{fmt}"), 404, fmt)
    # Asking by id does not get round the rule either; ids that name nothing are left out.
    asked = f"{app_theft},{app_hazard},{public_theft},999999,2147483648,99999999999999999999"
    assert ids(listing(client, service_request_id=asked)) == [str(app_hazard)]
    # A crime category an admin marks public stays hidden.
    db.get(Category, "theft").is_public = True  # type: ignore[union-attr]
    db.commit()
    assert set(ids(listing(client))) == {str(app_hazard), str(public_other)}
    # Whoever reported never appears: no reporter field, no rider's name anywhere in the answer.
    for fmt in ("json", "xml"):
        text = client.get(f"{BASE}/requests.{fmt}").text
        assert "rider" not in text and "reporter" not in text


def test_admin_marking_a_category_public_publishes_its_clues(client: TestClient, db: Session) -> None:
    make_district(db)
    in_need = rider_clue(client, token(client, "rider"), "person_in_need")
    assert listing(client) == []
    db.get(Category, "person_in_need").is_public = True  # type: ignore[union-attr]
    db.commit()
    assert ids(listing(client)) == [str(in_need)]


def test_request_fields(client: TestClient, db: Session) -> None:
    make_district(db)
    key = api_key(db)
    request_id = report(
        client,
        key,
        description="井盖缺失",
        address_string="金鼎路与环城路口",
        address_id="A-17",
        media_url="https://hotline.example.cn/m/17.jpg",
        **{"attribute[urgency]": "urgent"},
    )
    item = one(client, request_id)
    clue = stored(db, request_id)
    assert item["service_request_id"] == str(request_id)
    assert item["status"] == "open"
    assert item["status_notes"] == "已收到，等待核实"
    assert item["service_code"] == "fire_hazard" and item["service_name"] == "消防隐患"
    assert item["description"] == "井盖缺失"
    assert item["address"] == "金鼎路与环城路口" and item["address_id"] == "A-17"
    assert item["media_url"] == "https://hotline.example.cn/m/17.jpg"
    assert (item["lat"], item["long"]) == (LAT, LON)
    assert item["agency_responsible"] == "金鼎西网格 · 网格员"  # the grid the place falls in, before dispatch
    requested = datetime.fromisoformat(item["requested_datetime"])
    assert requested.utcoffset() == timedelta(hours=8)  # shown in the station's time zone
    assert requested == clue.reported_at.replace(microsecond=0)
    assert datetime.fromisoformat(item["expected_datetime"]) - requested == timedelta(hours=4)
    english = client.get(f"{BASE}/requests/{request_id}.json", headers={"Accept-Language": "en"}).json()[0]
    assert english["service_name"] == "Fire hazard"
    assert english["status_notes"] == "Received; waiting to be checked"
    assert english["agency_responsible"] == "金鼎西网格 · grid staff"


def test_workflow_statuses_map_to_open_and_closed(client: TestClient, db: Session) -> None:
    make_district(db)
    key = api_key(db)
    done = report(client, key, description="电动车在楼道充电")
    act(client, "dispatcher", done, "verify")
    assert one(client, done)["status"] == "open"
    act(client, "dispatcher", done, "dispatch", assignee="grid_staff")
    item = one(client, done)
    assert item["status"] == "open" and item["status_notes"] == "已派遣处置"
    assert item["agency_responsible"] == "金鼎西网格 · 网格员"
    act(client, "grid_staff", done, "accept")
    assert one(client, done)["status_notes"] == "正在处置"
    act(client, "grid_staff", done, "resolve", outcome="已劝导住户移走电池并张贴提示")
    item = one(client, done)
    assert item["status"] == "closed" and item["status_notes"] == "已劝导住户移走电池并张贴提示"
    act(client, "dispatcher", done, "close", value_grade="B")
    item = one(client, done)
    clue = stored(db, done)
    assert clue.closed_at is not None
    assert item["status"] == "closed" and item["status_notes"] == "已劝导住户移走电池并张贴提示"
    assert datetime.fromisoformat(item["updated_datetime"]) == clue.closed_at.replace(microsecond=0)

    rejected = report(client, key)
    act(client, "dispatcher", rejected, "reject", reason="现场核查无此情况")
    item = one(client, rejected)
    assert item["status"] == "closed" and item["status_notes"] == "不予受理：现场核查无此情况"

    duplicate = report(client, key)
    act(client, "dispatcher", duplicate, "mark_duplicate", duplicate_of=done)
    item = one(client, duplicate)
    assert item["status"] == "closed" and item["status_notes"] == f"与请求 {done} 重复"
    english = client.get(f"{BASE}/requests/{duplicate}.json", headers={"Accept-Language": "en"}).json()[0]
    assert english["status_notes"] == f"Duplicate of {done}"

    assert ids(listing(client, status="open")) == []
    assert set(ids(listing(client, status="closed"))) == {str(done), str(rejected), str(duplicate)}
    assert len(listing(client, status="open,closed")) == 3


def test_duplicate_of_a_hidden_clue_does_not_point_at_it(client: TestClient, db: Session) -> None:
    make_district(db)
    key = api_key(db)
    theft = rider_clue(client, token(client, "rider"), "theft")
    duplicate = report(client, key, "other", description="有人偷电瓶")
    act(client, "dispatcher", duplicate, "mark_duplicate", duplicate_of=theft)
    item = one(client, duplicate)
    assert item["status_notes"] == "与已有报告重复"
    assert str(theft) not in item["status_notes"]


def test_patrol_and_police_agencies_are_units_not_people(client: TestClient, db: Session) -> None:
    district = make_district(db)
    key = api_key(db)
    other = report(client, key, "other")  # handled by community police
    assert one(client, other)["agency_responsible"] == "金鼎社区 · 社区民警"
    district.users["patrol"].display_name = "王警官"
    db.commit()
    act(client, "dispatcher", other, "verify")
    act(client, "dispatcher", other, "dispatch", assignee="patrol")
    agency = one(client, other)["agency_responsible"]
    assert agency == "巡防一队 · 巡防队"


def test_filters(client: TestClient, db: Session) -> None:
    make_district(db)
    key = api_key(db)
    fire = report(client, key, "fire_hazard")
    traffic = report(client, key, "traffic_hazard")
    facility = report(client, key, "damaged_facility")
    act(client, "dispatcher", facility, "reject", reason="重复报告")
    assert ids(listing(client)) == [str(facility), str(traffic), str(fire)]  # newest first
    assert ids(listing(client, service_code="traffic_hazard")) == [str(traffic)]
    assert ids(listing(client, service_code="traffic_hazard,fire_hazard")) == [str(traffic), str(fire)]
    assert ids(listing(client, status="closed")) == [str(facility)]
    assert ids(listing(client, status="open", service_code="damaged_facility")) == []
    # A list of ids overrides every other filter.
    assert ids(listing(client, service_request_id=f"{fire},{facility}", status="open", service_code="x")) == [
        str(facility),
        str(fire),
    ]
    # Paging (an extension): page_size, page from 1.
    assert ids(listing(client, page_size=2)) == [str(facility), str(traffic)]
    assert ids(listing(client, page_size=2, page=2)) == [str(fire)]
    assert ids(listing(client, page_size=2, page=3)) == []


def test_date_window(client: TestClient, db: Session) -> None:
    make_district(db)
    key = api_key(db)
    recent = report(client, key)
    old = report(client, key)
    now = utcnow()
    db.execute(update(Clue).where(Clue.id == old).values(reported_at=now - timedelta(days=100)))
    db.commit()
    assert ids(listing(client)) == [str(recent)]  # the default window is the last 90 days
    start = (now - timedelta(days=120)).isoformat()
    end = (now - timedelta(days=60)).isoformat()
    assert ids(listing(client, start_date=start, end_date=end)) == [str(old)]
    assert ids(listing(client, start_date=start)) == [str(old)]  # 90 days from start_date
    assert ids(listing(client, end_date=end)) == [str(old)]  # 90 days up to end_date
    assert ids(listing(client, start_date=(now - timedelta(hours=1)).isoformat())) == [str(recent)]
    # '+08:00' sent unencoded arrives as ' 08:00'.
    local = (now - timedelta(days=1)).astimezone().strftime("%Y-%m-%dT%H:%M:%S")
    offset = (now - timedelta(days=1)).astimezone().strftime("%z")
    if offset.startswith("+"):
        assert ids(listing(client, start_date=f"{local} {offset[1:3]}:{offset[3:]}")) == [str(recent)]
    assert ids(listing(client, start_date=(now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))) == [str(recent)]


BAD_QUERIES: dict[str, tuple[dict[str, str], int, str]] = {
    "window over 90 days": (
        {"start_date": "2026-01-01T00:00:00+08:00", "end_date": "2026-06-01T00:00:00+08:00"},
        400,
        "90 days",
    ),
    "end before start": ({"start_date": "2026-06-01T00:00:00Z", "end_date": "2026-05-01T00:00:00Z"}, 400, "before"),
    "date without timezone": ({"start_date": "2026-06-01T00:00:00"}, 400, "timezone"),
    "date garbage": ({"end_date": "last tuesday"}, 400, "ISO 8601"),
    "date at the end of time": ({"start_date": "9999-12-31T00:00:00+00:00"}, 400, "range"),
    "status unknown": ({"status": "pending"}, 400, "status"),
    "page zero": ({"page": "0"}, 400, "page"),
    "page not a number": ({"page": "two"}, 400, "page"),
    "page_size too big": ({"page_size": "1001"}, 400, "page_size"),
    "ids not numbers": ({"service_request_id": "1,abc"}, 400, "service_request_id"),
    "unknown service_code": ({"service_code": "ufo"}, 404, "ufo"),
    "other jurisdiction": ({"jurisdiction_id": "elsewhere.gov"}, 404, "jurisdiction"),
}


@pytest.mark.parametrize("case", list(BAD_QUERIES))
def test_bad_queries(client: TestClient, case: str) -> None:
    params, status, mentions = BAD_QUERIES[case]
    for fmt in ("json", "xml"):
        assert_error(client.get(f"{BASE}/requests.{fmt}", params=params), status, fmt, mentions=mentions)


def test_repeated_status_joins_and_repeated_dates_are_refused(client: TestClient) -> None:
    assert client.get(f"{BASE}/requests.json?status=open&status=closed").status_code == 200
    res = client.get(f"{BASE}/requests.json?start_date=2026-06-01T00:00:00Z&start_date=2026-06-02T00:00:00Z")
    assert_error(res, 400, "json", mentions="twice")


@pytest.mark.parametrize(
    "request_id", ["999999", "abc", "1.5", "-1", "2147483648", "999999999999999999", "99999999999999999999999", "١٢"]
)
def test_unknown_request_is_404(client: TestClient, request_id: str) -> None:
    for fmt in ("json", "xml"):
        assert_error(client.get(f"{BASE}/requests/{request_id}.{fmt}"), 404, fmt)


def test_text_xml_cannot_carry_is_dropped_not_a_500(client: TestClient, db: Session) -> None:
    make_district(db)
    clue_id = rider_clue(client, token(client, "rider"), "fire_hazard", description="楼道\x01堆\x0b物")
    res_json, res_xml = both(client, "GET", f"requests/{clue_id}")
    assert res_json.status_code == res_xml.status_code == 200
    assert res_json.json()[0]["description"] == "楼道\x01堆\x0b物"
    assert "<description>楼道堆物</description>" in res_xml.text
