"""Browser tests: a real server process on the test database, driven by Debian's Chromium via Playwright."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Request, expect, sync_playwright
from sqlalchemy.orm import Session

from tests.factories import PASSWORD
from tests.live import server_process

T = TypeVar("T")

CHROMIUM = "/usr/bin/chromium"
# Chromium's own background traffic is refused on the intranet (and here); keep it quiet.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="session")
def live_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`riderwatch serve`'s app under uvicorn in a subprocess, on a free loopback port."""
    # The map must work without tiles (the intranet default), whatever the developer's shell says.
    with server_process(database_url, tmp_path_factory.mktemp("live-data"), tile_url="", tile_attribution="") as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Per module, not per session: Playwright's sync API keeps an event loop running in this thread
    while it is open, and later tests in the same worker (the bench, the simulator's feed) run their
    own loops with asyncio.run."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (make test installs it)")

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


LOOPBACK_HOSTS = {"127.0.0.1"}


@dataclass
class PageWatch:
    """What the pages of one test did that a user would see as broken, or that leaves the intranet."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)
    # Console errors the test provokes on purpose (e.g. a request failing while offline).
    expected: list[re.Pattern[str]] = field(default_factory=list)

    def expect_console_error(self, pattern: str) -> None:
        self.expected.append(re.compile(pattern))

    def on_console(self, msg: ConsoleMessage) -> None:
        if msg.type != "error":
            return
        loc = msg.location
        text = f"{msg.text} ({loc.get('url', '')}:{loc.get('lineNumber', '')})"
        if not any(p.search(text) for p in self.expected):
            self.console_errors.append(text)

    def on_request(self, request: Request) -> None:
        url = urlsplit(request.url)
        if url.scheme in ("data", "blob", "about"):
            return
        if url.scheme not in ("http", "https", "ws", "wss") or url.hostname not in LOOPBACK_HOSTS:
            self.outside_requests.append(f"{request.method} {request.url}")

    def problems(self) -> list[str]:
        return (
            [f"console error: {e}" for e in self.console_errors]
            + [f"page error: {e}" for e in self.page_errors]
            + [f"request outside the server: {r}" for r in self.outside_requests]
        )


@pytest.fixture
def watch() -> PageWatch:
    return PageWatch()


@pytest.fixture
def new_context(browser: Browser, live_server: str, watch: PageWatch) -> Iterator[Callable[..., BrowserContext]]:
    """new_context(**options) → a fresh browser context on the live server (Chinese, Shanghai time unless
    told otherwise). The test fails on any console error, uncaught page error or request that is not
    to the server itself."""
    contexts: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        options.setdefault("base_url", live_server)
        options.setdefault("locale", "zh-CN")
        options.setdefault("timezone_id", "Asia/Shanghai")
        options.setdefault("viewport", {"width": 1280, "height": 800})
        context = browser.new_context(**options)
        context.set_default_timeout(10_000)
        context.on("console", watch.on_console)
        context.on("weberror", lambda err: watch.page_errors.append(str(err.error)))
        context.on("request", watch.on_request)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()
    problems = watch.problems()
    if problems:
        pytest.fail("the pages misbehaved:\n" + "\n".join(problems), pytrace=False)


def log_in(page: Page, username: str, password: str = PASSWORD) -> None:
    """Log in through the login form and wait for the first page of the user's role."""
    page.goto("/login")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("current-user")).to_contain_text(username)


def wait_until(check: Callable[[], Any], *, timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll the database (or anything else outside the page) until check() is truthy; return its value.
    Pages have expect() for this; the database has no such thing."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def read_db(db: Session, query: Callable[[Session], T]) -> T:
    """Run query(db) in a transaction of its own and end it at once. On SQLite every transaction here
    begins IMMEDIATE (takes the write lock), so a test that kept one open would stall the server."""
    db.rollback()
    db.expire_all()  # objects read earlier are reloaded, not served from the identity map
    try:
        return query(db)
    finally:
        db.commit()
