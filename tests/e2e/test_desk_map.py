"""The command centre's map works on an intranet with no tile server: areas and clues on a plain
background, and not one request leaves the RiderWatch server."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import BrowserContext, Request, expect
from sqlalchemy.orm import Session

from tests.e2e.conftest import log_in
from tests.factories import CENTER_LAT, CENTER_LON, PASSWORD, clue_body, make_district

pytestmark = pytest.mark.e2e


def _report(live_server: str, **fields: object) -> int:
    with httpx.Client(base_url=live_server, timeout=10) as client:
        res = client.post("/api/v1/auth/token", data={"username": "rider", "password": PASSWORD})
        res.raise_for_status()
        headers = {"Authorization": f"Bearer {res.json()['access_token']}"}
        created = client.post("/api/v1/clues", json=clue_body(**fields), headers=headers)
        assert created.status_code == 201, created.text
        return int(created.json()["id"])


def test_desk_map_without_tiles_stays_on_the_server(
    db: Session, live_server: str, new_context: Callable[..., BrowserContext]
) -> None:
    make_district(db)
    first = _report(live_server, category="theft", lat=CENTER_LAT + 0.002, lon=CENTER_LON - 0.006)
    second = _report(live_server, category="fire_hazard", lat=CENTER_LAT - 0.003, lon=CENTER_LON + 0.004, urgent=True)

    context = new_context()
    requests: list[Request] = []
    context.on("request", lambda r: requests.append(r))
    page = context.new_page()
    log_in(page, "dispatcher")

    desk_map = page.get_by_test_id("desk-map")
    expect(desk_map).to_have_attribute("data-tile-url", "")
    expect(desk_map).to_have_class(re.compile(r"\bleaflet-container\b"))
    expect(desk_map).to_have_class(re.compile(r"\bno-tiles\b"))
    expect(desk_map.locator("img.leaflet-tile")).to_have_count(0)
    # The community and its grid, and one circle per clue, drawn as SVG.
    clue_circles = desk_map.locator("path.leaflet-interactive[fill-opacity='0.9']")
    expect(clue_circles).to_have_count(2)
    expect(desk_map.locator("path.leaflet-interactive:not([fill-opacity='0.9'])")).to_have_count(2)
    box = desk_map.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 200

    # A clue's circle opens a popup that links to the clue.
    clue_circles.first.click()
    link = desk_map.locator(".leaflet-popup-content a")
    expect(link).to_have_attribute("href", re.compile(rf"^/clues/({first}|{second})$"))
    link.click()
    expect(page.get_by_test_id("clue-detail")).to_have_attribute("data-status", "submitted")

    # The clue page's own map, too.
    expect(page.get_by_test_id("clue-map").locator("path.leaflet-interactive[fill-opacity='0.9']")).to_have_count(1)
    hosts = {urlsplit(r.url).hostname for r in requests}
    assert hosts == {"127.0.0.1"}, hosts
    assert any("/static/vendor/leaflet/leaflet.js" in r.url for r in requests)
