"""The rider-list import page: check first, import, hand out the codes; bad rows listed in the reader's language."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.models import Rider
from tests.pages import Browser

LIST = "姓名,手机号,站点\n张伟,13800138001,mt-jinding\n李娜,13800138002,美团金鼎站\n".encode()


def _upload(user: Browser, data: bytes, action: str) -> object:
    return user.client.post(
        "/riders/import",
        data={"csrf_token": user.csrf, "action": action},
        files={"file": ("名单.csv", data, "text/csv")},
    )


def _riders(db: Session) -> int:
    n = db.scalar(select(func.count()).select_from(Rider)) or 0
    db.rollback()
    return n


def test_a_station_manager_checks_then_imports_and_gets_the_codes(
    browser: Callable[[str], Browser], db: Session
) -> None:
    manager = browser("station_manager")
    manager.client.headers["Accept-Language"] = "zh-CN"
    assert 'href="/riders/import"' in manager.client.get("/coverage").text
    before = _riders(db)
    checked = _upload(manager, LIST, "check")
    assert checked.status_code == 200  # type: ignore[attr-defined]
    assert "文件无误" in checked.text and 'data-testid="rider-code"' not in checked.text  # type: ignore[attr-defined]
    assert _riders(db) == before
    done = _upload(manager, LIST, "import")
    assert done.status_code == 200 and done.headers["cache-control"] == "no-store"  # type: ignore[attr-defined]
    assert done.text.count('data-testid="rider-code"') == 2  # type: ignore[attr-defined]
    assert _riders(db) == before + 2


def test_bad_rows_are_listed_in_chinese(browser: Callable[[str], Browser], db: Session) -> None:
    admin = browser("admin")
    admin.client.headers["Accept-Language"] = "zh-CN"
    res = _upload(admin, "姓名,手机号,站点\n张伟,12345,mt-jinding\n".encode(), "import")
    assert res.status_code == 422  # type: ignore[attr-defined]
    assert 'data-row="2"' in res.text and "不是中国大陆手机号" in res.text  # type: ignore[attr-defined]


def test_a_huge_file_is_refused_with_the_limit_in_the_managers_layout(browser: Callable[[str], Browser]) -> None:
    manager = browser("station_manager")
    manager.client.headers["Accept-Language"] = "zh-CN"
    page = manager.client.get("/riders/import")
    assert 'data-max-bytes="5242880"' in page.text and "文件大于 5 MiB" in page.text  # refused in the browser first
    res = manager.client.post(
        "/riders/import",
        data={"csrf_token": manager.csrf},
        files={"file": ("big.csv", b"x" * (50 * 1024 * 1024), "text/csv")},
    )
    assert res.status_code == 413 and 'data-testid="error-page"' in res.text
    assert "超过此地址接受的 5 MiB" in res.text
    assert 'data-testid="current-user"' in res.text  # the error page in the manager's own layout, with the menu
