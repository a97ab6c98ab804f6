"""The roster, a rider's path, join links with their QR codes, and the public join form, as pages."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.pages import Browser, form_csrf


def _zh(browser: Callable[[str], Browser], who: str) -> Browser:
    user = browser(who)
    user.client.headers["Accept-Language"] = "zh-CN"
    return user


def test_a_station_manager_suspends_a_rider_from_the_roster(browser: Callable[[str], Browser]) -> None:
    manager = _zh(browser, "station_manager")
    roster = manager.client.get("/riders")
    assert roster.status_code == 200 and 'data-total="2"' in roster.text and "正式队员" in roster.text
    rider_id = re.search(r'href="/riders/(\d+)">rider<', roster.text)
    assert rider_id
    url = f"/riders/{rider_id.group(1)}"
    refused = manager.post(f"{url}/status", {"status": "suspended", "reason": ""})
    assert refused.status_code == 422 and "请说明原因" in refused.text
    done = manager.post(f"{url}/status", {"status": "suspended", "reason": "多次虚假上报"})
    assert done.status_code == 200 and "暂停" in done.text and "多次虚假上报" in done.text
    suspended = manager.client.get("/riders?status=suspended")
    assert 'data-total="1"' in suspended.text
    # The platform sees its riders' standing, and cannot change it.
    platform = _zh(browser, "platform")
    page = platform.client.get(url)
    assert page.status_code == 200 and 'data-testid="status-form"' not in page.text


def test_a_rider_joins_by_the_stations_link(browser: Callable[[str], Browser], app: Any) -> None:
    manager = _zh(browser, "station_manager")
    made = manager.post("/riders/join-links", {"station": "mt-jinding", "days": "7", "max_uses": "20"})
    assert made.status_code == 200 and "加入链接已生成" in made.text
    url = re.search(r'<code class="url">[^<]*/join/([^<]+)</code>', made.text)
    assert url
    qr = re.search(r'src="(/api/v1/join-links/\d+/qr.svg)"', made.text)
    assert qr and manager.client.get(qr.group(1)).headers["content-type"] == "image/svg+xml"

    phone = TestClient(app, headers={"Accept-Language": "zh-CN"})  # type: ignore[arg-type]
    form_page = phone.get(f"/join/{url.group(1)}")
    assert form_page.status_code == 200 and "美团金鼎站" in form_page.text and "您的数据用于" in form_page.text
    fields = {
        "csrf_token": form_csrf(form_page.text),
        "name": "孙八",
        "phone": "13900139021",
        "password": "my-own-password-1",
        "password_again": "my-own-password-1",
        "agree": "yes",
    }
    mismatch = phone.post(f"/join/{url.group(1)}", data={**fields, "password_again": "other-password-1"})
    assert mismatch.status_code == 422 and "两次输入的密码不一致" in mismatch.text
    assert phone.post(f"/join/{url.group(1)}", data={**fields, "csrf_token": "forged"}).status_code == 403
    joined = phone.post(f"/join/{url.group(1)}", data=fields)
    assert joined.status_code == 200 and 'data-testid="joined"' in joined.text and "13900139021" in joined.text
    assert "孙八" in manager.client.get("/riders?status=applied").text

    withdrawn = manager.post(re.search(r'action="(/riders/join-links/\d+/withdraw)"', made.text).group(1))  # type: ignore[union-attr]
    assert withdrawn.status_code == 200 and "已撤回" in withdrawn.text
    closed = phone.get(f"/join/{url.group(1)}")
    assert closed.status_code == 409 and 'data-testid="join-closed"' in closed.text
    assert phone.get("/join/nothing-like-it").status_code == 404
