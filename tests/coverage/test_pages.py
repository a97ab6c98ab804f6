"""The coverage map page (and who may open it and the rider's location pages): layers, areas, the API calls."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from riderwatch.infra.clock import utcnow
from tests.api.helpers import Api
from tests.factories import CENTER_LAT, CENTER_LON, District
from tests.pages import Browser
from tests.tracking.helpers import backdate, ready, send

ROLES = ("admin", "dispatcher", "police", "grid_staff", "patrol", "station_manager", "platform", "rider")
PAGES: dict[str, set[str]] = {
    "/coverage": {"admin", "dispatcher", "police", "grid_staff", "patrol", "station_manager"},
    "/duty": {"rider"},
    "/duty/withdraw": {"rider"},
    "/my/data": {"rider"},
}
REFS = re.compile(r'(?:src|href)="([^"]+)"')


def test_pages_by_role(browser: Callable[[str], Browser]) -> None:
    for role in ROLES:
        user = browser(role)
        for path, allowed in PAGES.items():
            res = user.client.get(path, follow_redirects=False)
            if role in allowed:
                assert res.status_code == 200, (path, role, res.text[:300])
                # Scripts, styles and links stay on the server (the intranet has nothing else).
                for ref in REFS.findall(res.text):
                    assert ref.startswith(("/", "#", "data:")), (path, ref)
            else:
                assert res.status_code == 403, (path, role)
                assert 'data-testid="error-page"' in res.text


@pytest.mark.parametrize("path", list(PAGES))
def test_pages_send_anonymous_visitors_to_login(client: TestClient, district: District, path: str) -> None:
    res = client.get(path, follow_redirects=False)
    assert res.status_code == 303
    assert res.headers["location"] == f"/login?next={path}"


def test_navigation_offers_the_pages(browser: Callable[[str], Browser]) -> None:
    rider = browser("rider").client.get("/report").text
    assert 'data-testid="nav-duty"' in rider and 'data-testid="nav-my-data"' in rider
    assert 'data-testid="nav-coverage"' not in rider
    police = browser("police").client.get("/my/assignments").text
    assert 'data-testid="nav-coverage"' in police and 'data-testid="nav-duty"' not in police
    # Each role still starts on its own first page.
    assert browser("rider").client.get("/", follow_redirects=False).headers["location"] == "/report"
    assert browser("dispatcher").client.get("/", follow_redirects=False).headers["location"] == "/desk"
    assert browser("station_manager").client.get("/", follow_redirects=False).headers["location"] == "/coverage"


def test_coverage_page_offers_the_layers_each_role_may_load(browser: Callable[[str], Browser]) -> None:
    pages = {role: browser(role).client.get("/coverage").text for role in ("dispatcher", "police", "station_manager")}
    for testid, holders in {
        "layer-coverage": {"dispatcher", "police", "station_manager"},
        "layer-blind": {"dispatcher", "police", "station_manager"},
        "layer-hotspots": {"dispatcher", "police"},
        "layer-gaps": {"dispatcher", "police"},
        "layer-clues": {"dispatcher", "police"},
        "layer-live": {"dispatcher"},
    }.items():
        for role, html in pages.items():
            assert (f'data-testid="{testid}"' in html) == (role in holders), (testid, role)
    # Riders on duty now are fetched only when asked for: each look is audited.
    assert re.search(r'data-testid="layer-live"(?! checked)', pages["dispatcher"])


def test_coverage_page_picks_zones_communities_and_grids(browser: Callable[[str], Browser]) -> None:
    html = browser("dispatcher").client.get("/coverage").text
    assert '<option value="community:jinding">Jinding</option>' in html
    assert '<option value="grid:jinding-w">' in html
    areas = json.loads(re.search(r'<script type="application/json" id="areas-data">(.*?)</script>', html, re.S)[1])  # type: ignore[index]
    assert {f["properties"]["code"] for f in areas["features"]} == {"jinding", "jinding-w"}
    assert 'data-testid="coverage-no-areas"' not in html
    # Resolutions as configured, with the size of a cell.
    assert re.findall(r'<option value="(\d+)"[^>]*>Level \1: cells about \d+ m across', html) == ["9", "10"]


def test_the_page_calls_the_api_with_its_session_and_csrf_token(
    browser: Callable[[str], Browser], db: Session, district: District, client: TestClient
) -> None:
    """What coverage.js does: the session cookie plus the page's CSRF token in a header."""
    api = Api(client)
    ready(api)
    backdate(db, district.users["rider"].id, hours=3)
    send(api, [{"ts": (utcnow() - timedelta(minutes=30)).isoformat(), "lat": CENTER_LAT, "lon": CENTER_LON}])
    dispatcher = browser("dispatcher")
    now = utcnow()
    body = {
        "area": {"community": "jinding"},
        "from": (now - timedelta(days=1)).isoformat(),
        "to": (now + timedelta(hours=1)).isoformat(),
        "resolution": 9,
    }
    refused = dispatcher.client.post("/api/v1/coverage/query", json=body)
    assert refused.status_code == 403
    res = dispatcher.client.post("/api/v1/coverage/query", json=body, headers={"X-CSRF-Token": dispatcher.csrf})
    assert res.status_code == 200, res.text
    data = res.json()
    assert data["summary"]["covered"] == 1 and sum(data["hour_profile"]) == 1
    # Every cell comes with its hexagon (lon/lat, closed ring), which the page draws as it is.
    for feature in data["features"]:
        ring = feature["geometry"]["coordinates"][0]
        assert feature["geometry"]["type"] == "Polygon" and len(ring) == 7 and ring[0] == ring[-1]
        assert all(abs(lon - CENTER_LON) < 0.02 and abs(lat - CENTER_LAT) < 0.02 for lon, lat in ring)


def test_clues_filtered_by_the_time_they_were_seen(
    client: TestClient, district: District, report: Callable[..., int]
) -> None:
    """The map's clue layer asks for the clues seen in its window."""
    now = utcnow()
    recent = report(observed_at=(now - timedelta(hours=2)).isoformat())
    older = report(observed_at=(now - timedelta(days=3)).isoformat())
    headers = Api(client).auth("dispatcher")

    def ids(**params: str) -> list[int]:
        res = client.get("/api/v1/clues", params=params, headers=headers)
        assert res.status_code == 200, res.text
        return sorted(c["id"] for c in res.json()["items"])

    assert ids(observed_from=(now - timedelta(days=1)).isoformat()) == [recent]
    assert ids(observed_to=(now - timedelta(days=1)).isoformat()) == [older]
    window = {"observed_from": (now - timedelta(days=4)).isoformat(), "observed_to": now.isoformat()}
    assert ids(**window) == sorted([recent, older])
    res = client.get("/api/v1/clues", params={"observed_from": "2026-11-01T10:00:00"}, headers=headers)
    assert res.status_code == 422 and res.headers["content-type"].startswith("application/problem+json")


# --- the rider: consent, duty, devices ---------------------------------------------------------


def test_a_refused_coverage_query_is_explained_in_the_pages_language(
    browser: Callable[[str], Browser], district: District
) -> None:
    """coverage.js shows `localized_detail` when the problem has one; `detail` stays English."""
    dispatcher = browser("dispatcher")
    now = utcnow()
    body = {
        "area": {"zone": "no-such-zone"},
        "from": (now - timedelta(days=1)).isoformat(),
        "to": now.isoformat(),
        "resolution": 9,
    }
    headers = {"X-CSRF-Token": dispatcher.csrf}
    english = dispatcher.client.post("/api/v1/coverage/query", json=body, headers=headers)
    assert english.status_code == 422
    assert english.json()["detail"] == "no zone 'no-such-zone'"
    assert "localized_detail" not in english.json()
    # The page's script sends the page's language.
    page_language = {**headers, "Accept-Language": "zh-Hans"}
    sent = dispatcher.client.post("/api/v1/coverage/query", json=body, headers=page_language).json()
    assert sent["localized_detail"] == "没有编号为 'no-such-zone' 的试点区域"
    dispatcher.client.get("/lang/zh")
    chinese = dispatcher.client.post("/api/v1/coverage/query", json=body, headers=headers).json()
    assert chinese["detail"] == "no zone 'no-such-zone'"
    assert chinese["localized_detail"] == "没有编号为 'no-such-zone' 的试点区域"
    backwards = dispatcher.client.post(
        "/api/v1/coverage/query", json={**body, "area": {"community": "jinding"}, "to": body["from"]}, headers=headers
    ).json()
    assert (
        backwards["detail"] == "'to' must be after 'from'"
        and backwards["localized_detail"] == "结束时间必须晚于开始时间"
    )
