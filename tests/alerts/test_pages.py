"""The alert pages in Chinese: the dispatcher composes (whom it would reach first), publishes, sees who
received and acknowledged, updates and cancels; the rider reads and acknowledges; everyone's inbox."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.api.helpers import Api
from tests.pages import Browser
from tests.tracking.helpers import ago, ping, ready, send


def _chinese(browser: Callable[[str], Browser], who: str) -> Browser:
    user = browser(who)
    user.client.headers["Accept-Language"] = "zh-CN"
    return user


FORM = {
    "kind": "warning",
    "category": "Security",
    "event": "在逃嫌疑人",
    "headline": "金鼎社区发现在逃嫌疑人",
    "description": "男，约30岁，黑色外套",
    "instruction": "请勿接近，发现后立即上报",
    "severity": "Severe",
    "urgency": "Immediate",
    "certainty": "Likely",
    "hours": "4",
    "audience": "area",
    "area_mode": "stored",
    "area": "community:jinding",
}


def test_a_dispatcher_publishes_and_a_rider_acknowledges(api: Api, browser: Callable[[str], Browser]) -> None:
    ready(api, "rider")
    send(api, [ping(ago(0))])
    desk = _chinese(browser, "dispatcher")
    assert desk.client.get("/alerts/new").status_code == 200
    preview = desk.post("/alerts", {**FORM, "action": "preview"})
    assert preview.status_code == 200 and 'data-riders="1"' in preview.text and "将送达 1 名骑手" in preview.text
    # The map shows the area and where the rider is (a dot to about 100 m, unnamed).
    assert "&#34;kind&#34;: &#34;rider&#34;" in preview.text and "&#34;kind&#34;: &#34;preview&#34;" in preview.text
    assert "rider001" not in preview.text and "在岗骑手" in preview.text
    no_drawing = desk.post("/alerts", {**FORM, "area_mode": "polygon", "action": "publish"})
    assert no_drawing.status_code == 422 and "请在地图上绘制区域" in no_drawing.text
    published = desk.post("/alerts", {**FORM, "parties": ["patrol"], "action": "publish"}, follow_redirects=False)
    assert published.status_code == 303
    board = desk.client.get(published.headers["location"])
    assert "已发布" in board.text and 'data-received="1"' in board.text and 'data-acknowledged="0"' in board.text
    alert_id = int(re.search(r"/alerts/(\d+)", published.headers["location"]).group(1))  # type: ignore[union-attr]

    # The patrol (another party it also goes to) has it in their inbox and may read it; the grid staff not.
    patrol = _chinese(browser, "patrol")
    inbox = patrol.client.get("/notices")
    assert "预警：金鼎社区发现在逃嫌疑人" in inbox.text and f'href="/alerts/{alert_id}"' in inbox.text
    read = patrol.client.get(f"/alerts/{alert_id}")
    assert read.status_code == 200 and "金鼎社区发现在逃嫌疑人" in read.text
    assert 'data-testid="alert-receipts"' not in read.text and 'data-testid="alert-cancel"' not in read.text
    assert _chinese(browser, "grid_staff").client.get(f"/alerts/{alert_id}").status_code == 404

    rider = _chinese(browser, "rider")
    mine = rider.client.get("/my/alerts")
    assert 'data-count="1"' in mine.text and "金鼎社区发现在逃嫌疑人" in mine.text and "严重" in mine.text
    acked = rider.post(f"/my/alerts/{alert_id}/ack")
    assert "谢谢" in acked.text and 'data-acknowledged="yes"' in acked.text
    assert 'data-acknowledged="1"' in desk.client.get(f"/alerts/{alert_id}").text
    assert 'data-count="0"' in _chinese(browser, "rider2").client.get("/my/alerts").text

    updated = desk.post(f"/alerts/{alert_id}/update", {"headline": "嫌疑人已向南逃离", "severity": "Extreme"})
    assert "更新已发布" in updated.text and "嫌疑人已向南逃离" in updated.text
    new_id = int(re.search(r'action="/alerts/(\d+)/cancel"', updated.text).group(1))  # type: ignore[union-attr]
    assert "嫌疑人已向南逃离" in rider.client.get("/my/alerts").text
    cancelled = desk.post(f"/alerts/{new_id}/cancel", {"headline": "嫌疑人已落网"})
    assert "预警已取消" in cancelled.text
    assert 'data-count="0"' in rider.client.get("/my/alerts").text
    listing = desk.client.get("/alerts").text
    assert "嫌疑人已落网" in listing and "已取消" in listing


def test_the_inbox_tells_in_the_readers_words(api: Api, browser: Callable[[str], Browser]) -> None:
    clue_id = api.report("rider")
    api.ok("dispatcher", clue_id, "verify")
    api.ok("dispatcher", clue_id, "dispatch", {"assignee": "police"})
    police = _chinese(browser, "police")
    page = police.client.get("/my/assignments")
    assert 'data-testid="notices-count">1<' in page.text
    inbox = police.client.get("/notices")
    assert f"线索 #{clue_id} 已分派给您处置" in inbox.text and f'href="/clues/{clue_id}"' in inbox.text
    read = police.post("/notices/read")
    assert 'data-unread="0"' in read.text and 'data-testid="notices-count"' not in read.text
    rider = _chinese(browser, "rider")
    assert f"您上报的线索 #{clue_id} 已核实" in rider.client.get("/notices").text


def test_a_sighting_is_reported_from_the_alert(api: Api, browser: Callable[[str], Browser]) -> None:
    ready(api, "rider")
    send(api, [ping(ago(0))])
    desk = _chinese(browser, "dispatcher")
    published = desk.post("/alerts", {**FORM, "parties": ["patrol"], "action": "publish"}, follow_redirects=False)
    alert_id = int(published.headers["location"].split("/")[2].split("?")[0])
    rider = _chinese(browser, "rider")
    assert f'href="/report?alert={alert_id}"' in rider.client.get("/my/alerts").text
    page = rider.client.get(f"/report?alert={alert_id}")
    assert "预警的发现：金鼎社区发现在逃嫌疑人" in page.text and f'data-alert="{alert_id}"' in page.text
    other = _chinese(browser, "rider2").client.get(f"/report?alert={alert_id}")
    assert 'data-alert=""' in other.text  # not received: an ordinary report
    clue_id = api.report("rider", alert_id=alert_id)
    board = desk.client.get(f"/alerts/{alert_id}")
    assert 'data-testid="alert-sightings" data-count="1"' in board.text and f'href="/clues/{clue_id}"' in board.text


def test_an_extreme_alert_is_approved_on_its_board(api: Api, app: Any, browser: Callable[[str], Browser]) -> None:
    app.state.settings.alert_extreme_needs_approval = True
    desk = _chinese(browser, "dispatcher")
    sent = desk.post("/alerts", {**FORM, "severity": "Extreme", "action": "publish"}, follow_redirects=False)
    board_url = sent.headers["location"].split("?")[0]
    own = desk.client.get(board_url).text
    assert 'data-testid="alert-pending"' in own and 'data-testid="alert-approve"' not in own
    admin = _chinese(browser, "admin")
    assert 'data-testid="alert-approve"' in admin.client.get(board_url).text
    approved = admin.post(f"{board_url}/approve")
    assert "已批准并发布" in approved.text and 'data-testid="alert-pending"' not in approved.text
