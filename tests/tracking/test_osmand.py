"""The OsmAnd protocol as Traccar Client sends it: every shape, every timestamp format, knots."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.infra.clock import utcnow
from riderwatch.models import Position, PositionRefusal, TrackingDevice
from riderwatch.tracking.api import REFUSED_HEADER as REFUSED
from riderwatch.tracking.osmand import KNOT_MPS, OsmAndError, parse_timestamp
from tests.api.helpers import Api
from tests.conftest import TEST_NOW
from tests.factories import District
from tests.tracking.helpers import CENTER_LAT, CENTER_LON, backdate, count, ready

DEVICE = "483920"


@pytest.fixture
def device(api: Api, db: Session, district: District) -> str:
    res = api.client.post("/api/v1/me/devices", json={"device_id": DEVICE}, headers=api.auth("rider"))
    assert res.status_code == 201, res.text
    ready(api)
    backdate(db, district.users["rider"].id)
    return DEVICE


def stored(db: Session) -> list[Position]:
    rows = list(db.scalars(select(Position).order_by(Position.ts)))
    db.rollback()
    return rows


def _fields(ts: datetime, **extra: Any) -> dict[str, Any]:
    return {"id": DEVICE, "lat": CENTER_LAT, "lon": CENTER_LON, "timestamp": int(ts.timestamp()), **extra}


def recent(minutes: int = 5) -> datetime:
    return (utcnow() - timedelta(minutes=minutes)).replace(microsecond=0)


def test_query_string_post_with_empty_body(api: Api, db: Session, device: str) -> None:
    ts = recent()
    res = api.client.post("/osmand/", params=_fields(ts, speed=10, bearing=270, accuracy=12, altitude=3, batt=80))
    assert res.status_code == 200 and res.content == b""
    [p] = stored(db)
    assert p.ts == ts and p.lat == CENTER_LAT and p.lon == CENTER_LON
    assert p.speed_mps == pytest.approx(10 * 0.514444, rel=1e-4)
    assert p.heading == 270 and p.accuracy_m == 12


def test_get_with_query_string_and_any_path(api: Api, db: Session, device: str) -> None:
    res = api.client.get("/osmand/some/path", params={**_fields(recent()), "deviceid": DEVICE})
    assert res.status_code == 200 and res.content == b""
    assert len(stored(db)) == 1


def test_form_body(api: Api, db: Session, device: str) -> None:
    res = api.client.post("/osmand", data={k: str(v) for k, v in _fields(recent(), speed=1.5, heading=45).items()})
    assert res.status_code == 200, res.text
    [p] = stored(db)
    assert p.speed_mps == pytest.approx(1.5 * KNOT_MPS) and p.heading == 45


def test_json_object(api: Api, db: Session, device: str) -> None:
    res = api.client.post("/osmand", json=_fields(recent(), speed=0))
    assert res.status_code == 200, res.text
    assert stored(db)[0].speed_mps == 0


def test_json_array(api: Api, db: Session, device: str) -> None:
    body = [_fields(recent(3)), _fields(recent(2), lat=CENTER_LAT + 0.0002), _fields(recent(1))]
    res = api.client.post("/osmand", json=body)
    assert res.status_code == 200, res.text
    assert [round(p.lat, 4) for p in stored(db)] == [
        round(CENTER_LAT, 4),
        round(CENTER_LAT + 0.0002, 4),
        round(CENTER_LAT, 4),
    ]


def _geolocation(ts: datetime, lat: float = CENTER_LAT) -> dict[str, Any]:
    return {
        "timestamp": ts.isoformat().replace("+00:00", "Z"),
        "coords": {
            "latitude": lat,
            "longitude": CENTER_LON,
            "speed": 3.2,
            "heading": 180,
            "accuracy": 5,
            "altitude": 7,
        },
        "is_moving": True,
        "battery": {"level": 0.8, "is_charging": False},
    }


def test_background_geolocation_format(api: Api, db: Session, device: str) -> None:
    ts = recent()
    res = api.client.post("/osmand", json={"device_id": DEVICE, "location": _geolocation(ts)})
    assert res.status_code == 200, res.text
    [p] = stored(db)
    # This format reports speed in m/s, not knots.
    assert p.ts == ts and p.speed_mps == 3.2 and p.heading == 180 and p.accuracy_m == 5


def test_background_geolocation_list(api: Api, db: Session, device: str) -> None:
    body = {"device_id": DEVICE, "location": [_geolocation(recent(3)), _geolocation(recent(2), CENTER_LAT + 0.0001)]}
    assert api.client.post("/osmand", content=json.dumps(body)).status_code == 200
    assert len(stored(db)) == 2


@pytest.mark.parametrize(
    "fmt",
    [
        lambda ts: str(int(ts.timestamp())),
        lambda ts: str(int(ts.timestamp() * 1000)),
        lambda ts: ts.isoformat(),
        lambda ts: ts.isoformat().replace("+00:00", "Z"),
        lambda ts: ts.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai")).isoformat(),
        lambda ts: ts.strftime("%Y-%m-%d %H:%M:%S"),  # taken as UTC
    ],
    ids=["seconds", "milliseconds", "iso", "iso-z", "iso-offset", "plain-utc"],
)
def test_timestamp_formats(api: Api, db: Session, device: str, fmt: Any) -> None:
    ts = recent()
    res = api.client.post("/osmand", params={**_fields(ts), "timestamp": fmt(ts)})
    assert res.status_code == 200, res.text
    assert stored(db)[0].ts == ts


def test_parse_timestamp_units() -> None:
    now = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    assert parse_timestamp("1764403200", now=now) == datetime(2025, 11, 29, 8, 0, tzinfo=UTC)
    assert parse_timestamp(1764403200123, now=now) == datetime(2025, 11, 29, 8, 0, 0, 123000, tzinfo=UTC)
    assert parse_timestamp(None, now=now) == now
    for bad in ("soon", "2026-13-01 00:00:00", "-5", True, "nan"):
        with pytest.raises(OsmAndError):
            parse_timestamp(bad, now=now)


def test_duplicate_answers_200_and_stores_once(api: Api, db: Session, device: str) -> None:
    fields = _fields(recent())
    assert api.client.post("/osmand", params=fields).status_code == 200
    assert api.client.post("/osmand", params=fields).status_code == 200
    assert len(stored(db)) == 1


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"lat": CENTER_LAT, "lon": CENTER_LON}, 400),  # no id
        ({"id": DEVICE, "lat": CENTER_LAT}, 400),  # no lon
        ({"id": DEVICE, "lat": "north", "lon": CENTER_LON}, 400),
        ({"id": DEVICE, "lat": CENTER_LAT, "lon": CENTER_LON, "timestamp": "soon"}, 400),
        ({"id": DEVICE, "lat": CENTER_LAT, "lon": CENTER_LON, "speed": "fast"}, 400),
        ({"id": "someone-else", "lat": CENTER_LAT, "lon": CENTER_LON}, 404),
    ],
)
def test_unreadable_requests_and_unknown_devices_are_refused(
    api: Api, db: Session, device: str, params: dict[str, Any], status: int
) -> None:
    res = api.client.post("/osmand", params=params)
    assert res.status_code == status, res.text
    assert res.headers["content-type"].startswith("text/plain") and res.text
    assert REFUSED not in res.headers
    assert stored(db) == []
    # Nothing attributable to a rider was refused, so nothing is counted.
    assert refusals(db) == {}


def refusals(db: Session) -> dict[str, int]:
    rows = {r.reason: r.count for r in db.scalars(select(PositionRefusal))}
    db.rollback()
    return rows


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"lat": 95}, "bad_coordinates"),
        ({"lat": 0, "lon": 0}, "bad_coordinates"),  # a phone without a fix
        ({"timestamp": "2020-01-01T00:00:00Z"}, "too_old"),
        ({"timestamp": int((TEST_NOW + timedelta(days=1)).timestamp())}, "future"),
    ],
)
def test_permanent_refusals_answer_200_and_are_counted(
    api: Api, db: Session, device: str, fields: dict[str, Any], reason: str
) -> None:
    # Traccar Client resends its oldest point until it gets 200: a point that can never be stored
    # must not block the ones behind it.
    for _ in range(2):
        res = api.client.post("/osmand", params={**_fields(recent()), **fields})
        assert res.status_code == 200, res.text
        assert res.headers[REFUSED] == reason and res.text
    assert stored(db) == []
    assert refusals(db) == {reason: 2}


def test_implausible_jump_is_a_permanent_refusal(api: Api, db: Session, device: str) -> None:
    assert api.client.post("/osmand", params=_fields(recent(2))).status_code == 200
    res = api.client.post("/osmand", params=_fields(recent(1), lat=CENTER_LAT + 1))
    assert res.status_code == 200 and res.headers[REFUSED] == "implausible_jump"
    assert len(stored(db)) == 1
    assert refusals(db) == {"implausible_jump": 1}


def test_array_with_some_refused_stores_the_rest(api: Api, db: Session, device: str) -> None:
    body = [
        _fields(recent(3)),
        _fields(recent(2), lat=95),
        _fields(recent(1)),
        {**_fields(recent(1)), "lat": 0, "lon": 0},
    ]
    res = api.client.post("/osmand", json=body)
    assert res.status_code == 200
    assert res.headers[REFUSED] == "bad_coordinates"
    assert res.text.startswith("2 of 4 refused")
    assert len(stored(db)) == 2
    assert refusals(db) == {"bad_coordinates": 2}


def test_bad_json_is_400(api: Api, db: Session, device: str) -> None:
    for body in ("{not json", "[]", "[1]", '{"device_id": "483920", "location": {"coords": {}}}'):
        res = api.client.post("/osmand", content=body, headers={"content-type": "application/json"})
        assert res.status_code == 400, body
    assert stored(db) == []


def test_unknown_device_in_an_array_stores_nothing(api: Api, db: Session, device: str) -> None:
    body = [_fields(recent(2)), {**_fields(recent(1)), "id": "stranger"}]
    assert api.client.post("/osmand", json=body).status_code == 404
    assert stored(db) == []


def test_consent_and_duty_refusals(api: Api, db: Session, device: str) -> None:
    api.client.put("/api/v1/me/duty", json={"on_duty": False}, headers=api.auth("rider"))
    # Whole seconds: a point within the second the shift ended still belongs to it.
    res = api.client.post("/osmand", params=_fields(utcnow() + timedelta(seconds=2)))
    assert res.status_code == 200 and res.headers[REFUSED] == "off_duty" and "duty" in res.text
    api.client.put("/api/v1/me/location-consent", json={"granted": False}, headers=api.auth("rider"))
    res = api.client.post("/osmand", params=_fields(utcnow() + timedelta(seconds=2)))
    assert res.status_code == 200 and res.headers[REFUSED] == "no_consent" and "consent" in res.text
    assert stored(db) == []
    assert refusals(db) == {"off_duty": 1, "no_consent": 1}


def test_devices(api: Api, db: Session, district: District) -> None:
    mine = api.client.post("/api/v1/me/devices", json={"device_id": "abc-1"}, headers=api.auth("rider"))
    assert mine.status_code == 201 and mine.json()["device_id"] == "abc-1"
    again = api.client.post("/api/v1/me/devices", json={"device_id": "abc-1"}, headers=api.auth("rider"))
    assert again.status_code == 200
    taken = api.client.post("/api/v1/me/devices", json={"device_id": "abc-1"}, headers=api.auth("rider2"))
    assert taken.status_code == 409
    for bad in ("", "a b", "x" * 65, "设备"):
        res = api.client.post("/api/v1/me/devices", json={"device_id": bad}, headers=api.auth("rider"))
        assert res.status_code == 422, bad
    assert api.client.delete("/api/v1/me/devices/abc-1", headers=api.auth("rider2")).status_code == 404
    assert api.client.delete("/api/v1/me/devices/abc-1", headers=api.auth("rider")).status_code == 204
    assert count(db, TrackingDevice) == 0


def test_riderwatch_issues_device_ids_and_still_takes_the_apps_own(api: Api, db: Session, district: District) -> None:
    headers = api.auth("rider")
    res = api.client.post("/api/v1/me/devices", json={"label": "工作手机"}, headers=headers)
    assert res.status_code == 201, res.text
    issued = res.json()
    assert issued["issued"] is True and issued["label"] == "工作手机"
    assert len(issued["device_id"]) == 22 and issued["device_id"].startswith("rw-")
    # Two requests, two ids: issuing is not idempotent on the label.
    again = api.client.post("/api/v1/me/devices", json={}, headers=headers).json()
    assert again["device_id"] != issued["device_id"] and again["label"] is None
    # CONTRACT.md: {"device_id"} registers the app's own id, as before.
    own = api.client.post("/api/v1/me/devices", json={"device_id": DEVICE}, headers=headers)
    assert own.status_code == 201 and own.json()["issued"] is False
    for body in ({"label": ""}, {"label": "x" * 65}, {"device_id": "bad id"}, {"label": 5}):
        res = api.client.post("/api/v1/me/devices", json=body, headers=headers)
        assert res.status_code == 422, body
    assert len(list(db.scalars(select(TrackingDevice)))) == 3


def test_positions_go_through_under_an_issued_id(api: Api, db: Session, district: District) -> None:
    device_id = api.client.post("/api/v1/me/devices", json={}, headers=api.auth("rider")).json()["device_id"]
    ready(api)
    backdate(db, district.users["rider"].id)
    assert api.client.post("/osmand", params={**_fields(recent()), "id": device_id}).status_code == 200
    assert len(stored(db)) == 1


def test_an_address_guessing_device_ids_is_made_to_wait(api: Api, db: Session, device: str) -> None:
    """Ten unknown ids from one address, then every request from it waits (even under a real id, so a
    guess that hits is not told apart); the wait doubles with each further miss."""
    for n in range(10):
        res = api.client.post("/osmand", params={**_fields(recent()), "id": f"guess{n}"})
        assert res.status_code == 404, res.text
    res = api.client.post("/osmand", params=_fields(recent()))
    assert res.status_code == 429 and res.headers["retry-after"] == "1"
    assert "try again" in res.text
    assert stored(db) == []
