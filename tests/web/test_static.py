"""No page loads anything from outside; the rider pages' offline pieces are served and consistent."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from riderwatch.web.templating import STATIC_DIR
from tests.factories import District
from tests.pages import Browser

EXTERNAL = re.compile(r"https?://", re.I)
OWN_STATIC = [
    p for p in STATIC_DIR.rglob("*") if p.is_file() and "vendor" not in p.parts and p.suffix in (".js", ".css")
]


def _pages_for(role: str, clue_id: int) -> list[str]:
    return {
        "dispatcher": ["/desk", "/desk/_queue", f"/clues/{clue_id}", "/report", "/my/reports", "/nope"],
        "admin": ["/desk", f"/clues/{clue_id}"],
        "rider": ["/report", "/my/reports", f"/clues/{clue_id}", "/desk"],
        "police": ["/my/assignments"],
        "platform": ["/"],
    }[role]


def test_no_page_references_an_outside_url(
    browser: Callable[[str], Browser], report: Callable[..., int], client: TestClient
) -> None:
    clue_id = report()
    html = client.get("/login").text
    assert not EXTERNAL.search(html)
    for role in ("dispatcher", "admin", "rider", "police", "platform"):
        user = browser(role)
        for path in _pages_for(role, clue_id):
            html = user.client.get(path).text
            assert not EXTERNAL.search(html), (role, path, EXTERNAL.search(html))


def test_own_static_files_reference_no_outside_url() -> None:
    assert {p.name for p in OWN_STATIC} >= {"app.css", "app.js", "map.js", "queue.js", "report.js", "sw.js"}
    for path in OWN_STATIC:
        assert not EXTERNAL.search(path.read_text()), path


def test_pages_load_scripts_and_styles_only_from_the_app(browser: Callable[[str], Browser]) -> None:
    html = browser("dispatcher").client.get("/desk").text
    for ref in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert ref.startswith(("/", "#", "data:")), ref
    assert "/static/vendor/leaflet/leaflet.js?v=" in html
    assert "/static/vendor/htmx/htmx.min.js?v=" in html


def test_service_worker_is_served_from_the_root(client: TestClient) -> None:
    res = client.get("/sw.js")
    assert res.status_code == 200
    assert "javascript" in res.headers["content-type"]
    assert res.headers["service-worker-allowed"] == "/"
    for asset in re.findall(r"'(/static/[^']+)'", res.text):
        assert (STATIC_DIR / asset.removeprefix("/static/")).exists() or "vendor" in asset, asset
        # Each file the worker keeps for offline use is served by the app under the same path.
        if "vendor" not in asset:
            assert client.get(asset).status_code == 200


def test_rider_pages_carry_the_outbox_pieces(browser: Callable[[str], Browser], district: District) -> None:
    rider = browser("rider")
    page = rider.client.get("/report").text
    for testid in ("report-form", "offline-queue", "offline-queue-count", "report-submit", "report-photos"):
        assert f'data-testid="{testid}"' in page
    assert 'accept="image/*"' in page and "capture" in page and "multiple" in page
    assert f'data-user="{district.users["rider"].id}"' in page
    assert 'id="rider-i18n"' in page and "Waiting to send (%(n)s)" in page
    assert "/static/js/queue.js?v=" in page and "/static/js/report.js?v=" in page
    assert 'data-max-photos="6"' in page
    page = rider.client.get("/my/reports").text
    assert 'data-testid="offline-queue"' in page and "/static/js/queue.js?v=" in page


def test_asset_urls_change_with_the_files(tmp_path: Path) -> None:
    from riderwatch.web import templating

    before = templating.asset_version()
    assert re.fullmatch(r"[0-9a-f]{12}", before)
    assert templating.static_url("css/app.css") == f"/static/css/app.css?v={before}"
