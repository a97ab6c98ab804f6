"""The rider's location pages: consent, duty, Traccar Client devices and what was collected, through their forms."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.infra.clock import utcnow
from riderwatch.models import DutyShift, LocationConsent, Position, Rider, TrackingDevice
from tests.api.helpers import Api
from tests.factories import CENTER_LAT, CENTER_LON, District
from tests.pages import Browser, scalar
from tests.tracking.helpers import backdate, ready, send


def _points(db: Session, rider_id: int) -> int:
    return int(scalar(db, select(func.count()).select_from(Position).where(Position.rider_id == rider_id)) or 0)


def _rider(db: Session, rider_id: int) -> Rider:
    rider = db.get(Rider, rider_id)
    assert rider is not None
    db.refresh(rider)
    db.commit()
    return rider


def _open_shifts(db: Session, rider_id: int) -> int:
    stmt = (
        select(func.count()).select_from(DutyShift).where(DutyShift.rider_id == rider_id, DutyShift.ended_at.is_(None))
    )
    return int(scalar(db, stmt) or 0)


def test_consent_is_a_separate_explicit_choice(
    browser: Callable[[str], Browser], db: Session, district: District
) -> None:
    rider = browser("rider")
    rider_id = district.users["rider"].id
    page = rider.client.get("/duty").text
    for heading in ("Why", "What is collected", "Who sees it", "How long it is kept", "Withdrawing"):
        assert f"<h3>{heading}</h3>" in page
    assert "deleted after 30 days" in page
    box = re.search(r'<input type="checkbox" name="agree"[^>]*>', page)
    assert box and "checked" not in box[0] and "required" in box[0]
    assert 'data-testid="duty-form"' not in page  # no duty before consent

    # Not ticked: refused, nothing recorded.
    res = rider.post("/duty/consent", {"text_version": "v1"})
    assert res.status_code == 422
    assert 'data-testid="page-message"' in res.text and "tick the box" in res.text
    # A text other than the current one: refused as well.
    res = rider.post("/duty/consent", {"agree": "yes", "text_version": "v0"})
    assert res.status_code == 422 and "version v1" in res.text
    assert not _rider(db, rider_id).location_consent
    assert scalar(db, select(func.count()).select_from(LocationConsent)) == 0

    res = rider.post("/duty/consent", {"agree": "yes", "text_version": "v1"}, follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"] == "/duty?done=consent"
    page = rider.client.get(res.headers["location"]).text
    assert 'data-testid="page-message" data-kind="success"' in page
    assert 'data-testid="duty-form"' in page and 'data-testid="withdraw-link"' in page
    assert _rider(db, rider_id).location_consent_text_version == "v1"


def test_consent_text_in_chinese(client: TestClient, district: District) -> None:
    from tests.pages import log_in

    rider = log_in(client, "rider")
    page = rider.client.get("/duty", headers={"Accept-Language": "zh-CN"}).text
    assert "<h3>收集哪些信息</h3>" in page and "撤回同意" in page


def test_going_on_and_off_duty_through_the_page(
    browser: Callable[[str], Browser], db: Session, district: District
) -> None:
    rider = browser("rider")
    rider_id = district.users["rider"].id
    # Without consent the server refuses, whatever the form says.
    res = rider.post("/duty/state", {"on_duty": "yes"})
    assert res.status_code == 409 and "consent to location sharing first" in res.text
    assert _open_shifts(db, rider_id) == 0

    rider.post("/duty/consent", {"agree": "yes", "text_version": "v1"})
    res = rider.post("/duty/state", {"on_duty": "yes"}, follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"] == "/duty?done=on"
    assert _open_shifts(db, rider_id) == 1
    page = rider.client.get("/duty").text
    assert 'data-on-duty="1"' in page and 'data-testid="sharing"' in page
    assert f'data-user="{rider_id}"' in page
    assert '<input type="hidden" name="on_duty" value="no">' in page

    assert rider.post("/duty/state", {"on_duty": "maybe"}).status_code == 422
    res = rider.post("/duty/state", {"on_duty": "no"}, follow_redirects=False)
    assert res.headers["location"] == "/duty?done=off"
    assert _open_shifts(db, rider_id) == 0
    page = rider.client.get("/duty").text
    assert 'data-on-duty="0"' in page and 'data-testid="sharing"' not in page


def test_a_suspended_rider_cannot_go_on_duty(
    browser: Callable[[str], Browser], db: Session, district: District
) -> None:
    rider = browser("rider")
    rider.post("/duty/consent", {"agree": "yes", "text_version": "v1"})
    membership = db.get(Rider, district.users["rider"].id)
    assert membership is not None
    membership.status = "suspended"
    db.commit()
    page = rider.client.get("/duty").text
    assert 'data-testid="membership-note"' in page
    res = rider.post("/duty/state", {"on_duty": "yes"})
    assert res.status_code == 403 and "suspended" in res.text
    assert _open_shifts(db, district.users["rider"].id) == 0


def test_withdrawing_consent_asks_first_and_deletes_the_positions(
    browser: Callable[[str], Browser], client: TestClient, db: Session, district: District
) -> None:
    rider_id = district.users["rider"].id
    api = Api(client)
    ready(api)
    backdate(db, rider_id, hours=3)
    now = utcnow()
    send(
        api, [{"ts": (now - timedelta(minutes=m)).isoformat(), "lat": CENTER_LAT, "lon": CENTER_LON} for m in (40, 20)]
    )
    assert _points(db, rider_id) == 2

    rider = browser("rider")
    page = rider.client.get("/duty/withdraw").text
    assert 'data-testid="withdraw-form"' in page
    assert "You go off duty at once." in page and "2 in all" in page
    # A post without the confirmation changes nothing.
    res = rider.post("/duty/withdraw", {}, follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"] == "/duty/withdraw"
    assert _points(db, rider_id) == 2 and _rider(db, rider_id).location_consent

    res = rider.post("/duty/withdraw", {"confirm": "yes"}, follow_redirects=False)
    assert res.headers["location"] == "/duty?done=withdrawn&deleted=2"
    assert _points(db, rider_id) == 0 and _open_shifts(db, rider_id) == 0
    assert not _rider(db, rider_id).location_consent
    page = rider.client.get(res.headers["location"]).text
    assert "2 stored positions were deleted" in page
    assert 'data-testid="consent-form"' in page
    assert "nothing to withdraw" in rider.client.get("/duty/withdraw").text


def test_registering_and_removing_a_traccar_device(
    browser: Callable[[str], Browser], db: Session, district: District
) -> None:
    rider, other = browser("rider"), browser("rider2")
    page = rider.client.get("/duty").text
    # No public address configured: the address the page was asked on (the test client's).
    assert re.search(r'data-testid="osmand-url">http://testserver/osmand<', page)

    res = rider.post("/duty/devices", {"device_id": "bad id!"})
    assert res.status_code == 422 and 'value="bad id!"' in res.text
    assert scalar(db, select(func.count()).select_from(TrackingDevice)) == 0

    res = rider.post("/duty/devices", {"device_id": "rw-phone-1"}, follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"] == "/duty?done=device&device=rw-phone-1#devices"
    page = rider.client.get(res.headers["location"]).text
    assert 'data-device-id="rw-phone-1" class="highlight"' in page
    # An id chosen in the app works, and the rider is asked to replace it with an issued one.
    assert 'data-testid="device-chosen"' in page
    # Somebody else's id is refused, and stays theirs.
    res = other.post("/duty/devices", {"device_id": "rw-phone-1"})
    assert res.status_code == 409 and "another rider" in res.text
    assert other.post("/duty/devices/rw-phone-1/remove").status_code == 404

    res = rider.post("/duty/devices/rw-phone-1/remove", follow_redirects=False)
    assert res.headers["location"] == "/duty?done=device-removed"
    assert scalar(db, select(func.count()).select_from(TrackingDevice)) == 0


def test_a_device_identifier_is_issued_with_the_riders_label(
    browser: Callable[[str], Browser], db: Session, district: District
) -> None:
    rider = browser("rider")
    res = rider.post("/duty/devices", {"label": "  红米 Note  "}, follow_redirects=False)
    assert res.status_code == 303
    device_id, issued, label = db.execute(
        select(TrackingDevice.device_id, TrackingDevice.issued, TrackingDevice.label)
    ).one()
    db.rollback()
    assert re.fullmatch(r"rw(-[2-9a-hjkmnp-z]{4}){4}", device_id), device_id
    assert issued and label == "红米 Note"
    page = rider.client.get(res.headers["location"]).text
    assert f'data-device-id="{device_id}" class="highlight"' in page
    assert "红米 Note" in page and 'data-testid="device-chosen"' not in page
    # Another rider's id in the address is not listed on this rider's page, nor anything picked out.
    other = browser("rider2").client.get(f"/duty?done=device&device={device_id}").text
    assert f'data-device-id="{device_id}"' not in other and 'class="highlight"' not in other
    # A label longer than the column is refused, and nothing is stored.
    res = rider.post("/duty/devices", {"label": "x" * 65})
    assert res.status_code == 422
    assert scalar(db, select(func.count()).select_from(TrackingDevice)) == 1


def test_my_data_shows_what_was_collected_and_who_looked(
    browser: Callable[[str], Browser], client: TestClient, db: Session, district: District
) -> None:
    rider = browser("rider")
    empty = rider.client.get("/my/data").text
    assert 'data-testid="data-points-empty"' in empty and 'data-testid="data-views-empty"' in empty
    assert 'data-testid="data-refusals-empty"' in empty
    assert 'data-count="0"' in empty

    rider_id = district.users["rider"].id
    api = Api(client)
    ready(api)
    backdate(db, rider_id, hours=3)
    now = utcnow()
    sent = [
        {"ts": (now - timedelta(minutes=m)).isoformat(), "lat": CENTER_LAT + m * 1e-5, "lon": CENTER_LON}
        for m in (50, 30, 10)
    ]
    send(api, [*sent, {"ts": (now - timedelta(hours=5)).isoformat(), "lat": CENTER_LAT, "lon": CENTER_LON}])
    track = client.get(
        "/api/v1/riders/rider/track",
        params={"from": (now - timedelta(hours=2)).isoformat(), "to": now.isoformat()},
        headers=api.auth("dispatcher"),
    )
    assert track.status_code == 200

    page = rider.client.get("/my/data").text
    assert 'data-testid="data-position-count" data-count="3"' in page
    assert 'data-testid="track-view" data-role="dispatcher"' in page and "Dispatcher" in page
    assert 'data-testid="consent-record" data-granted="1"' in page
    assert page.count('data-testid="shift"') == 1 and "on duty now" in page
    assert "30 days, then deleted" in page
    # The point from before the consent was refused: the rider sees how many and why, not where.
    assert 'data-testid="refusal" data-reason="no_consent" data-count="1"' in page
    assert "taken while you had not consented" in page
    points: list[dict[str, Any]] = json.loads(
        re.search(r'<script type="application/json" id="my-points">(.*?)</script>', page, re.S)[1]  # type: ignore[index]
    )
    # Oldest first, so the line on the map follows the way the rider went.
    assert [round(p["lat"], 5) for p in points] == [round(CENTER_LAT + m * 1e-5, 5) for m in (50, 30, 10)]


def test_a_refused_consent_is_explained_in_the_readers_language(
    browser: Callable[[str], Browser], district: District
) -> None:
    rider = browser("rider")
    assert "tick the box to agree" in rider.post("/duty/consent", {"text_version": "v1"}).text
    rider.client.get("/lang/zh")
    res = rider.post("/duty/consent", {"text_version": "v1"})
    assert res.status_code == 422 and "请勾选同意；未经您同意不会共享任何数据" in res.text
    stale = rider.post("/duty/consent", {"agree": "yes", "text_version": "v0"}).text
    assert "同意书已更新为第 v1 版，请重新阅读并同意" in stale


def test_a_refused_duty_switch_is_explained_in_the_readers_language(
    browser: Callable[[str], Browser], district: District
) -> None:
    rider = browser("rider")
    res = rider.post("/duty/state", {"on_duty": "yes"})
    assert res.status_code == 409 and "consent to location sharing first" in res.text
    rider.client.get("/lang/zh")
    res = rider.post("/duty/state", {"on_duty": "yes"})
    assert res.status_code == 409 and "请先同意共享位置" in res.text
    assert "consent to location sharing first" not in res.text
    assert "在岗状态只能是“是”或“否”" in rider.post("/duty/state", {"on_duty": "maybe"}).text
