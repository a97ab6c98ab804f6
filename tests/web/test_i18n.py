"""Chinese first, English second: the default, the browser's language, the user's choice; full catalogues."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient

from riderwatch.i18n import LOCALE_COOKIE
from tests.factories import District
from tests.pages import Browser, log_in

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "riderwatch"
PLACEHOLDER = re.compile(r"%\(\w+\)[sdr]")


def test_chinese_by_default(client: TestClient, district: District) -> None:
    html = client.get("/login").text
    assert '<html lang="zh-Hans">' in html
    assert "登录" in html and "用户名" in html
    assert "Username" not in html


@pytest.mark.parametrize(
    ("accept", "lang"),
    [
        ("en-US,en;q=0.9", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-Hans"),
        ("fr-FR,fr;q=0.9", "zh-Hans"),
        ("de, en;q=0.5", "en"),
    ],
)
def test_browser_language(client: TestClient, district: District, accept: str, lang: str) -> None:
    html = client.get("/login", headers={"Accept-Language": accept}).text
    assert f'<html lang="{lang}">' in html


def test_language_switch_sets_a_cookie_and_wins_over_the_browser(client: TestClient, district: District) -> None:
    res = client.get("/lang/en?next=/login", follow_redirects=False)
    assert res.status_code == 303
    assert res.headers["location"] == "/login"
    assert f"{LOCALE_COOKIE}=en" in res.headers["set-cookie"]
    html = client.get("/login", headers={"Accept-Language": "zh-CN"}).text
    assert '<html lang="en">' in html and "Username" in html
    client.get("/lang/zh")
    assert "用户名" in client.get("/login", headers={"Accept-Language": "en"}).text


def test_language_switch_keeps_the_page_and_refuses_other_sites(client: TestClient, district: District) -> None:
    html = client.get("/login?next=/desk").text
    assert 'href="/lang/en?next=/login%3Fnext%3D/desk"' in html
    assert client.get("/lang/en?next=https://evil.example", follow_redirects=False).headers["location"] == "/"
    assert client.get("/lang/fr", follow_redirects=False).status_code == 404


def test_logged_in_pages_follow_the_choice(
    browser: Callable[[str], Browser], client: TestClient, district: District
) -> None:
    rider = log_in(client, "rider")
    assert "上报线索" in rider.client.get("/report", headers={"Accept-Language": "zh"}).text
    rider.client.get("/lang/en")
    page = rider.client.get("/report", headers={"Accept-Language": "zh"}).text
    assert "Report a clue" in page and "Send report" in page
    # Category names come in the page's language too.
    assert "Fire hazard" in page
    english = browser("dispatcher")  # a browser asking for English
    assert "Clue queue" in english.client.get("/desk").text


def test_times_are_shown_in_the_station_time_zone(
    browser: Callable[[str], Browser], report: Callable[..., int]
) -> None:
    clue_id = report(observed_at="2026-11-01T01:30:00+00:00")
    html = browser("dispatcher").client.get(f"/clues/{clue_id}").text
    assert '<time datetime="2026-11-01T09:30:00+08:00">2026-11-01 09:30</time>' in html


def _catalog(lang: str):  # type: ignore[no-untyped-def]
    with (PACKAGE / "locale" / lang / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh)


def test_chinese_catalogue_translates_every_message() -> None:
    catalog = _catalog("zh")
    messages = [m for m in catalog if m.id]
    assert messages
    empty = [m.id for m in messages if not m.string]
    assert empty == []
    fuzzy = [m.id for m in messages if m.fuzzy]
    assert fuzzy == []
    for m in messages:
        assert sorted(PLACEHOLDER.findall(str(m.id))) == sorted(PLACEHOLDER.findall(str(m.string))), m.id


def test_catalogues_hold_every_message_in_the_code() -> None:
    """A new _() in a template or page, or N_() error message in a service, must reach the catalogues.

    Run `make messages`, then translate the new Chinese entries.
    """
    method_map = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
    found = {msg for _file, _line, msg, _comments, _ctx in extract_from_dir(str(PACKAGE), method_map)}
    found_ids = {m if isinstance(m, str) else m[0] for m in found}
    for lang in ("zh", "en"):
        ids = {m.id for m in _catalog(lang) if m.id}
        assert found_ids - ids == set(), lang
