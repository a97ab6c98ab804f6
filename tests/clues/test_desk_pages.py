"""The command-centre queue: filters, live counts, the map's data."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.orm import Session

from riderwatch.infra.clock import utcnow
from riderwatch.models import Clue
from tests.factories import CENTER_LAT, CENTER_LON, District
from tests.pages import Browser


def _rows(html: str) -> list[int]:
    return [int(m) for m in re.findall(r'data-testid="clue-row" data-clue-id="(\d+)"', html)]


def _count(html: str, name: str) -> int:
    match = re.search(rf'data-testid="count-{name}" data-count="(\d+)"', html)
    assert match, name
    return int(match.group(1))


def _markers(html: str) -> list[dict[str, object]]:
    match = re.search(r'<script type="application/json" id="queue-markers">(.*?)</script>', html, re.S)
    assert match
    data: list[dict[str, object]] = json.loads(match.group(1))
    return data


def test_queue_filters_and_counts(
    browser: Callable[[str], Browser], report: Callable[..., int], db: Session, district: District
) -> None:
    in_grid = report(category="fire_hazard")
    # East half of the community: inside the community but outside its only grid.
    in_community = report(category="fire_hazard", lon=CENTER_LON + 0.005)
    elsewhere = report(category="fire_hazard", lat=CENTER_LAT + 0.5)
    dispatcher = browser("dispatcher")
    dispatcher.post(f"/clues/{in_community}/actions/verify", {})
    dispatcher.post(f"/clues/{elsewhere}/actions/reject", {"reason": "不在辖区"})
    db.execute(update(Clue).where(Clue.id == in_grid).values(deadline_at=utcnow() - timedelta(hours=1)))
    db.commit()

    html = dispatcher.client.get("/desk").text  # default: the open clues
    assert sorted(_rows(html)) == sorted([in_grid, in_community])
    assert _count(html, "submitted") == 1
    assert _count(html, "verified") == 1
    assert _count(html, "rejected") == 1
    assert _count(html, "open") == 2
    assert _count(html, "overdue") == 1
    assert html.count('data-testid="overdue-flag"') == 1

    assert _rows(dispatcher.client.get("/desk?status=all").text).__len__() == 3
    assert _rows(dispatcher.client.get("/desk?status=rejected").text) == [elsewhere]
    assert _rows(dispatcher.client.get("/desk?status=verified").text) == [in_community]
    assert _rows(dispatcher.client.get("/desk?overdue=yes").text) == [in_grid]
    assert _rows(dispatcher.client.get("/desk?overdue=no&status=all").text).__len__() == 2
    assert sorted(_rows(dispatcher.client.get(f"/desk?status=all&area=c{district.community.id}").text)) == sorted(
        [in_grid, in_community]
    )
    assert _rows(dispatcher.client.get(f"/desk?status=all&area=g{district.grid.id}").text) == [in_grid]
    assert _rows(dispatcher.client.get("/desk?status=all&category=theft").text) == []
    assert 'data-testid="queue-empty"' in dispatcher.client.get("/desk?status=all&category=theft").text
    page = dispatcher.client.get("/desk?status=all&category=fire_hazard").text
    assert len(_rows(page)) == 3
    assert '<option value="fire_hazard" selected>' in page


def test_the_live_fragment_polls_with_the_same_filters(
    browser: Callable[[str], Browser], report: Callable[..., int]
) -> None:
    first = report()
    dispatcher = browser("dispatcher")
    page = dispatcher.client.get("/desk?status=submitted&overdue=no").text
    assert 'hx-get="/desk/_queue?status=submitted&amp;overdue=no"' in page
    assert 'hx-trigger="every 10s"' in page
    second = report()
    fragment = dispatcher.client.get("/desk/_queue?status=submitted&overdue=no")
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert sorted(_rows(fragment.text)) == sorted([first, second])
    assert _count(fragment.text, "submitted") == 2
    markers = _markers(fragment.text)
    assert {m["id"] for m in markers} == {first, second}
    assert all(m["url"] == f"/clues/{m['id']}" for m in markers)


def test_the_map_gets_areas_and_no_tiles_unless_configured(
    browser: Callable[[str], Browser], report: Callable[..., int], district: District
) -> None:
    report()
    html = browser("dispatcher").client.get("/desk").text
    match = re.search(r'<script type="application/json" id="areas-data">(.*?)</script>', html, re.S)
    assert match
    kinds = {f["properties"]["kind"] for f in json.loads(match.group(1))["features"]}
    assert kinds == {"community", "grid"}
    assert 'data-tile-url=""' in html
    assert f'value="c{district.community.id}"' in html and f'value="g{district.grid.id}"' in html


def test_tiles_from_the_configured_server(browser: Callable[[str], Browser], app: Any, district: District) -> None:
    settings = app.state.settings
    settings.tile_url = "http://tiles.intranet/{z}/{x}/{y}.png"
    settings.tile_attribution = "Station tiles"
    res = browser("dispatcher").client.get("/desk")
    assert 'data-tile-url="http://tiles.intranet/{z}/{x}/{y}.png"' in res.text
    assert "http://tiles.intranet" in res.headers["content-security-policy"]


def test_queue_pages_through_many_clues(
    browser: Callable[[str], Browser], report: Callable[..., int], app: FastAPI
) -> None:
    app.state.settings.clues_per_rider_per_hour = 100  # one rider reports them all
    ids = [report(description=f"线索 {i}") for i in range(52)]
    dispatcher = browser("dispatcher")
    first = dispatcher.client.get("/desk").text
    assert len(_rows(first)) == 50
    assert 'data-testid="page-next"' in first
    second = dispatcher.client.get("/desk?offset=50").text
    assert len(_rows(second)) == 2
    assert set(_rows(first)) | set(_rows(second)) == set(ids)
    assert 'data-testid="page-previous"' in second
