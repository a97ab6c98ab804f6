"""POST requests: reports from the public with an API key, in JSON and XML, and every way to get it wrong."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.infra.clock import utcnow
from riderwatch.models import ApiKey, ClueEvent
from tests.conftest import TEST_NOW
from tests.factories import CENTER_LAT, CENTER_LON, make_district, token
from tests.open311.helpers import BASE, api_key, assert_error, clue_count, stored, validate_created

LAT, LON = CENTER_LAT + 0.001, CENTER_LON - 0.004  # inside the west grid of the test district


def form(key: str, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "api_key": key,
        "service_code": "fire_hazard",
        "lat": str(LAT),
        "long": str(LON),
        "description": "楼道里有人给电动车电池充电",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_create_with_single_and_multi_value_attributes(client: TestClient, db: Session) -> None:
    make_district(db)
    key = api_key(db)
    seen = (utcnow() - timedelta(hours=1)).replace(microsecond=0)
    res = client.post(
        f"{BASE}/requests.json",
        data=form(
            key,
            **{
                "attribute[urgency]": "urgent",
                "attribute[at_risk][]": ["pedestrians", "children_elderly"],
                "attribute[observed_at]": seen.isoformat(),
                "email": "zhang.san@example.cn",
                "phone": "+86 138-0000-0000",
                "first_name": "三",
                "last_name": "张",
                "device_id": "ios-42",
                "account_id": "acct-7",
                "address_string": "金鼎路 12 号 3 单元楼道",
                "media_url": "https://hotline.example.cn/media/1.jpg",
            },
        ),
    )
    assert res.status_code == 200, res.text
    answer = res.json()
    validate_created(answer)
    assert answer[0]["account_id"] == "acct-7"
    assert "4" in answer[0]["service_notice"]  # the urgent deadline of fire hazards, in hours
    clue = stored(db, int(answer[0]["service_request_id"]))
    assert clue.source == "open311"
    assert clue.reporter_id is None and clue.anonymous
    assert clue.category_code == "fire_hazard"
    assert (clue.lat, clue.lon) == (LAT, LON)
    assert clue.address == "金鼎路 12 号 3 单元楼道"
    assert clue.urgent
    assert clue.deadline_at - clue.reported_at == timedelta(hours=4)
    assert clue.observed_at == seen
    assert clue.grid_id is not None
    assert clue.attributes == {
        "urgency": "urgent",
        "at_risk": ["pedestrians", "children_elderly"],
        "observed_at": seen.isoformat(),
        "media_url": "https://hotline.example.cn/media/1.jpg",
    }
    assert clue.contact == {
        "email": "zhang.san@example.cn",
        "phone": "+86 138-0000-0000",
        "first_name": "三",
        "last_name": "张",
        "device_id": "ios-42",
        "account_id": "acct-7",
    }
    events = db.scalars(select(ClueEvent).where(ClueEvent.clue_id == clue.id)).all()
    assert [(e.action, e.actor_id) for e in events] == [("submit", None)]


def test_create_in_xml_with_a_single_multi_value(client: TestClient, db: Session) -> None:
    key = api_key(db)
    res = client.post(f"{BASE}/requests.xml", data=form(key, **{"attribute[at_risk][]": "vehicles"}))
    assert res.status_code == 200, res.text
    assert res.headers["content-type"].startswith("text/xml")
    tree = etree.fromstring(res.content)
    assert tree.tag == "service_requests"
    [item] = tree.findall("request")
    assert [c.tag for c in item] == ["service_request_id", "service_notice"]
    clue = stored(db, int(item.findtext("service_request_id") or 0))
    assert clue.attributes == {"at_risk": ["vehicles"]}
    assert not clue.urgent
    assert clue.deadline_at - clue.reported_at == timedelta(hours=48)
    assert clue.contact == {}


def test_defaults_observed_at_to_now_and_ignores_blank_fields(client: TestClient, db: Session) -> None:
    key = api_key(db)
    before = utcnow()
    res = client.post(
        f"{BASE}/requests.json",
        data=form(key, email="", phone="", address_string="", **{"attribute[urgency]": "", "x_client": "v2"}),
    )
    assert res.status_code == 200, res.text
    clue = stored(db, int(res.json()[0]["service_request_id"]))
    assert clue.observed_at >= before - timedelta(seconds=1)
    assert clue.contact == {} and clue.attributes == {} and clue.address == ""


def test_api_key_may_come_in_the_query_string(client: TestClient, db: Session) -> None:
    key = api_key(db)
    data = form(key)
    del data["api_key"]
    res = client.post(f"{BASE}/requests.json", params={"api_key": key}, data=data)
    assert res.status_code == 200, res.text


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("given", [None, "", "not-a-key", "revoked"])
def test_bad_api_key_is_403_and_stores_nothing(client: TestClient, db: Session, fmt: str, given: str | None) -> None:
    key = api_key(db)
    if given == "revoked":
        row = db.scalar(select(ApiKey))
        assert row is not None
        row.revoked_at = utcnow()
        db.commit()
        given = key
    res = client.post(f"{BASE}/requests.{fmt}", data=form(given or "", api_key=given))
    assert_error(res, 403, fmt, mentions="api_key")
    assert clue_count(db) == 0


def test_bad_api_key_wins_over_a_bad_form(client: TestClient, db: Session) -> None:
    res = client.post(f"{BASE}/requests.json", data={"api_key": "nope", "service_code": "no_such", "lat": "x"})
    assert_error(res, 403, "json")


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_unknown_service_is_404_and_stores_nothing(client: TestClient, db: Session, fmt: str) -> None:
    key = api_key(db)
    assert_error(client.post(f"{BASE}/requests.{fmt}", data=form(key, service_code="ufo")), 404, fmt, mentions="ufo")
    assert clue_count(db) == 0


MALFORMED: dict[str, tuple[dict[str, Any], str]] = {
    "missing service_code": ({"service_code": None}, "service_code"),
    "lat not a number": ({"lat": "north"}, "lat"),
    "lat out of range": ({"lat": "91"}, "lat"),
    "lat not finite": ({"lat": "nan"}, "lat"),
    "long out of range": ({"long": "-181"}, "long"),
    "lat without long": ({"long": None}, "together"),
    "no location": ({"lat": None, "long": None}, "lat and long"),
    "address only": ({"lat": None, "long": None, "address_string": "金鼎路 12 号"}, "cannot look up addresses"),
    "address id only": ({"lat": None, "long": None, "address_id": "A-545483"}, "lat and long are required"),
    "description too long": ({"description": "火" * 4001}, "4000"),
    "unknown attribute value": ({"attribute[urgency]": "panic"}, "panic"),
    "unknown multi value": ({"attribute[at_risk][]": ["vehicles", "aliens"]}, "aliens"),
    "two values for a single list": ({"attribute[urgency][]": ["normal", "urgent"]}, "one value"),
    "unknown attribute": ({"attribute[colour]": "red"}, "colour"),
    "attribute the service lacks": ({"service_code": "theft", "attribute[at_risk][]": "vehicles"}, "at_risk"),
    "malformed attribute key": ({"attribute[urgency": "urgent"}, "attribute"),
    "datetime without timezone": ({"attribute[observed_at]": "2026-11-29T08:30:00"}, "timezone"),
    "datetime garbage": ({"attribute[observed_at]": "yesterday"}, "ISO 8601"),
    "observed in the future": ({"attribute[observed_at]": (TEST_NOW + timedelta(days=1)).isoformat()}, "future"),
    "observed too long ago": ({"attribute[observed_at]": "2020-01-01T00:00:00+08:00"}, "90 days"),
    "bad email": ({"email": "not an address"}, "email"),
    "bad phone": ({"phone": "call me maybe"}, "phone"),
    "bad media_url": ({"media_url": "javascript:alert(1)"}, "media_url"),
    "field twice": ({"description": ["a", "b"]}, "twice"),
    "control characters": ({"description": "火\x00灾"}, "control"),
    "address too long": ({"address_string": "路" * 301}, "address_string"),
    "other jurisdiction": ({"jurisdiction_id": "elsewhere.gov"}, "jurisdiction"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_forms_are_400_and_store_nothing(client: TestClient, db: Session, case: str) -> None:
    key = api_key(db)
    overrides, mentions = MALFORMED[case]
    status = 404 if case == "other jurisdiction" else 400
    for fmt in ("json", "xml"):
        res = client.post(f"{BASE}/requests.{fmt}", data=form(key, **overrides))
        assert_error(res, status, fmt, mentions=mentions)
    assert clue_count(db) == 0


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"api_key": "KEY", "service_code": "fire_hazard", "lat": 25.4, "long": 119.0}'),
        ("text/plain", b"api_key=KEY&service_code=fire_hazard&lat=25.4&long=119.0"),
        ("application/x-www-form-urlencoded", b"api_key=KEY&service_code=fire_hazard&lat=%ZZ&long=\xff\xfe"),
        (
            "multipart/form-data; boundary=xyz",
            b'--xyz\r\nContent-Disposition: form-data; name="api_key"\r\n\r\nKEY\r\n--xyz\r\nnot closed',
        ),
        ("multipart/form-data", b"api_key=KEY"),
    ],
)
def test_broken_bodies_are_400_never_500(client: TestClient, db: Session, content_type: str, body: bytes) -> None:
    key = api_key(db)
    res = client.post(
        f"{BASE}/requests.json", content=body.replace(b"KEY", key.encode()), headers={"content-type": content_type}
    )
    assert_error(res, 400, "json")
    assert clue_count(db) == 0


def test_files_are_refused(client: TestClient, db: Session) -> None:
    key = api_key(db)
    res = client.post(f"{BASE}/requests.json", data=form(key), files={"media": ("a.jpg", b"\xff\xd8", "image/jpeg")})
    assert_error(res, 400, "json")
    assert clue_count(db) == 0


def test_dispatcher_sees_the_request_with_an_anonymous_reporter(client: TestClient, db: Session) -> None:
    make_district(db)
    key = api_key(db)
    res = client.post(f"{BASE}/requests.json", data=form(key, email="li.si@example.cn", first_name="四"))
    request_id = int(res.json()[0]["service_request_id"])
    headers = token(client, "dispatcher")
    listed = client.get("/api/v1/clues", headers=headers).json()["items"]
    item = next(i for i in listed if i["id"] == request_id)
    assert item["source"] == "open311"
    assert item["anonymous"] is True
    assert item["reporter"] is None
    assert item["category"] == "fire_hazard"
    assert item["status"] == "submitted"
    detail = client.get(f"/api/v1/clues/{request_id}", headers=headers).json()
    assert detail["reporter"] is None and detail["anonymous"] is True
    assert [e["action"] for e in detail["timeline"]] == ["submit"]
    # The contact details stay with the dispatchers: Open311 readers never see them.
    for fmt in ("json", "xml"):
        public = client.get(f"{BASE}/requests/{request_id}.{fmt}").text
        assert "li.si@example.cn" not in public and "四" not in public
