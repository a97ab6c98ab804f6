"""The dashboard page: the same figures as the API, a chosen period, the figures and the clues as files."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable

from openpyxl import load_workbook

from tests.api.helpers import Api
from tests.pages import Browser


def _figures(html: str) -> dict[str, object]:
    match = re.search(r'<script type="application/json" id="figures-data">(.*?)</script>', html, re.S)
    assert match
    data: dict[str, object] = json.loads(match.group(1))
    return data


def test_the_page_shows_the_apis_figures_and_exports_them(api: Api, browser: Callable[[str], Browser]) -> None:
    for _ in range(3):
        api.report()
    dispatcher = browser("dispatcher")
    dispatcher.client.headers["Accept-Language"] = "zh-CN"
    page = dispatcher.client.get("/stats")
    assert page.status_code == 200 and "群防群治数据看板" in page.text
    shown = _figures(page.text)
    assert shown["clues"]["total"] == 3  # type: ignore[index]
    assert 'data-testid="kpi-clues"><span class="num">3</span>' in page.text
    assert "vendor/chartjs/chart.umd.min.js" in page.text

    everything = dispatcher.client.get("/stats?preset=all")
    assert _figures(everything.text)["clues"]["total"] == 3  # type: ignore[index]
    custom = dispatcher.client.get("/stats?preset=custom&day_from=2020-01-01&day_to=2020-01-31")
    assert _figures(custom.text)["clues"]["total"] == 0  # type: ignore[index]
    bad = dispatcher.client.get("/stats?preset=custom&day_from=2020-02-01&day_to=2020-01-01")
    assert bad.status_code == 422 and "结束日期早于开始日期" in bad.text

    workbook = dispatcher.client.get("/stats/export?format=xlsx&preset=all")
    assert workbook.status_code == 200
    sheet = load_workbook(io.BytesIO(workbook.content)).active
    assert sheet is not None
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0] == ["类别", "指标", "数值"]
    assert ["线索", "合计", 3] in rows
    text = dispatcher.client.get("/stats/export?format=csv&preset=all").content.decode("utf-8-sig")
    assert ["线索", "合计", "3"] in list(csv.reader(io.StringIO(text)))


def test_a_station_manager_sees_their_station(api: Api, browser: Callable[[str], Browser]) -> None:
    api.report()
    manager = browser("station_manager")
    manager.client.headers["Accept-Language"] = "zh-CN"
    page = manager.client.get("/stats")
    assert page.status_code == 200 and "本站点" in page.text
    assert browser("rider").client.get("/stats").status_code == 403
