"""The webhook pages in Chinese: an administrator adds the police's duty group chat, sends a test, sees
it in the log (a refusal with the receiver's answer), sends a given-up one again, changes and retires
the channel; a police officer sends their own dispatches to their own robot; a bad form is answered on
the page and stores nothing."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from riderwatch.models import WebhookChannel
from riderwatch.webhooks.service import Retries
from riderwatch.webhooks.worker import Worker, WorkerSettings
from tests.api.helpers import Api
from tests.pages import Browser
from tests.webhooks.test_webhooks import Receiver, receiver  # noqa: F401 (the fixture)


def _chinese(browser: Callable[[str], Browser], who: str) -> Browser:
    user = browser(who)
    user.client.headers["Accept-Language"] = "zh-CN"
    return user


def _drain(factory: sessionmaker[Session], attempts: int = 10) -> None:
    worker = Worker(factory, WorkerSettings(retries=Retries(max_attempts=attempts)))
    asyncio.run(worker.drain())


def test_an_administrator_sets_up_a_duty_chat_and_reads_its_log(
    api: Api,
    browser: Callable[[str], Browser],
    receiver: Receiver,  # noqa: F811
    session_factory: sessionmaker[Session],
    db: Session,
) -> None:
    admin = _chinese(browser, "admin")
    page = admin.client.get("/admin/webhooks")
    assert "值班群" in page.text and "还没有通道" in page.text
    form = {
        "scope": "parties",
        "party": "police",
        "name": "金鼎社区民警值班群",
        "format": "wecom",
        "url": f"{receiver.url}/chat",
        "locale": "zh",
        "kinds": ["clue_dispatched", "alert"],
    }
    bad = admin.post("/webhooks", {**form, "url": "robot.example"})
    assert bad.status_code == 422 and "地址必须是完整的" in bad.text and 'value="金鼎社区民警值班群"' in bad.text
    assert db.scalar(select(func.count()).select_from(WebhookChannel)) == 0
    db.rollback()

    created = admin.post("/webhooks", form, follow_redirects=False)
    assert created.status_code == 303
    channel_url = created.headers["location"].split("?")[0]
    shown = admin.client.get(created.headers["location"])
    assert "通道已保存" in shown.text and "尚未发送任何消息" in shown.text

    receiver.answers["/chat"] = [(200, {"errcode": 93000, "errmsg": "invalid webhook url"})]
    tested = admin.post(f"{channel_url}/test", follow_redirects=True)
    assert "测试消息正在发送" in tested.text
    _drain(session_factory, attempts=1)
    log = admin.client.get(f"{channel_url}?show=dead")
    assert 'data-status="dead"' in log.text and "invalid webhook url" in log.text and "已放弃" in log.text
    delivery_id = re.search(r'action="/webhooks/deliveries/(\d+)/retry"', log.text).group(1)  # type: ignore[union-attr]

    receiver.answers["/chat"] = [(200, {"errcode": 0, "errmsg": "ok"})]
    again = admin.post(f"/webhooks/deliveries/{delivery_id}/retry", follow_redirects=True)
    assert "稍后将重新发送" in again.text
    _drain(session_factory)
    log = admin.client.get(channel_url)
    assert 'data-status="delivered"' in log.text and "送达于" in log.text
    assert "测试消息" in receiver.bodies("/chat")[-1]["text"]["content"]

    changed = admin.post(channel_url, {**form, "name": "金鼎民警值班群", "kinds": ["alert"]}, follow_redirects=True)
    assert "通道已修改" in changed.text and "金鼎民警值班群" in changed.text
    confirm = admin.client.get(f"{channel_url}/retire")
    assert "停用通道" in confirm.text
    retired = admin.post(f"{channel_url}/retire", {"confirm": "yes"}, follow_redirects=True)
    assert "通道已停用" in retired.text and 'data-testid="channel-restore"' in retired.text
    restored = admin.post(f"{channel_url}/restore", follow_redirects=True)
    assert "通道已恢复使用" in restored.text


def test_a_police_officer_sends_their_dispatches_to_their_own_robot(
    api: Api,
    browser: Callable[[str], Browser],
    receiver: Receiver,  # noqa: F811
    session_factory: sessionmaker[Session],
) -> None:
    police = _chinese(browser, "police")
    page = police.client.get("/notices/webhooks")
    assert "我的消息推送" in page.text and 'value="clue_verified"' in page.text and 'name="party"' not in page.text
    form = {"name": "我的钉钉", "format": "dingtalk", "url": f"{receiver.url}/ding", "kinds": ["clue_dispatched"]}
    created = police.post("/webhooks", {**form, "scope": "mine", "secret": "SECabc"}, follow_redirects=True)
    assert "通道已保存" in created.text
    clue_id = api.report("rider")
    api.ok("dispatcher", clue_id, "verify")
    api.ok("dispatcher", clue_id, "dispatch", {"assignee": "police"})
    _drain(session_factory)
    [message] = receiver.bodies("/ding")
    assert f"线索 #{clue_id} 已分派给您处置" in message["text"]["content"]
    # The secret is never shown again: the form says one is saved.
    channel_page = police.client.get(
        re.search(r'href="(/webhooks/\d+)"', police.client.get("/notices/webhooks").text).group(1)
    )  # type: ignore[union-attr]
    assert "SECabc" not in channel_page.text and "已保存；留空则不变" in channel_page.text
    # Another officer's robot is not theirs to see.
    assert _chinese(browser, "police2").client.get(channel_page.url.path).status_code == 404
