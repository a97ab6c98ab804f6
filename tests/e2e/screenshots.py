"""Screenshots of the demo district for the README and the user guide.

    .venv/bin/python -m tests.e2e.screenshots docs/screenshots

Loads `riderwatch demo` into a temporary SQLite database, serves it, and photographs the pages with
Debian's Chromium as the demo's dispatcher, community police officer and rider. Chinese text needs a
CJK font on the machine (Debian: fonts-wqy-microhei or fonts-noto-cjk), or it shows as empty boxes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import func, select

from riderwatch.db import make_engine, make_session_factory
from riderwatch.models import Clue, ClueEvent, CluePhoto, Grid, PatrolTaskInvite, PatrolTaskResult, Rider, Station, User
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.live import free_port

PASSWORD = "riderwatch-demo"  # the documented demo password (`riderwatch demo --help`)
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}


def _riderwatch_command() -> str:
    beside = Path(sys.executable).with_name("riderwatch")
    found = str(beside) if beside.exists() else shutil.which("riderwatch")
    if not found:
        raise SystemExit("the riderwatch command is missing: pip install -e . first")
    return found


@contextmanager
def demo_server(workdir: Path) -> Iterator[tuple[str, str]]:
    """(base URL, database URL) of a server on a freshly loaded demo district."""
    database_url = f"sqlite:///{workdir / 'riderwatch.db'}"
    env = {
        **os.environ,
        "RIDERWATCH_DATABASE_URL": database_url,
        "RIDERWATCH_DATA_DIR": str(workdir),
        "RIDERWATCH_SECRET_KEY": "screenshots-secret-key",
        "RIDERWATCH_RUN_JOBS": "false",
        # The intranet default: no tile server, the map shows areas and clues on a plain background.
        "RIDERWATCH_TILE_URL": "",
    }
    print("loading the demo district…", flush=True)
    subprocess.run([_riderwatch_command(), "demo", "--password", PASSWORD], env=env, check=True, capture_output=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (workdir / "server.log").open("w")
    command = [sys.executable, "-m", "uvicorn", "riderwatch.asgi:app", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"the server exited: {(workdir / 'server.log').read_text()}")
            try:
                if httpx.get(f"{base}/login", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the server did not start within 30 s")
            time.sleep(0.2)
        yield base, database_url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def _pick(database_url: str) -> tuple[int, float, float]:
    """A clue that went the whole way once (photo, grade A, rated; never reopened) with the longest
    timeline, and the centre of a grid for the rider to stand in."""
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as db:
            events = select(func.count()).where(ClueEvent.clue_id == Clue.id).scalar_subquery()
            has_photo = select(CluePhoto.id).where(CluePhoto.clue_id == Clue.id).exists()
            reopened = select(ClueEvent.id).where(ClueEvent.clue_id == Clue.id, ClueEvent.action == "reopen").exists()
            clue_id = db.scalar(
                select(Clue.id)
                .where(Clue.status == "closed", Clue.value_grade == "A", Clue.rating.is_not(None), has_photo, ~reopened)
                .order_by(events.desc(), Clue.id.desc())
                .limit(1)
            )
            grid = db.scalars(select(Grid).order_by(Grid.id)).first()
            if clue_id is None or grid is None:
                raise SystemExit("the demo has no such clue, or no grid")
            return clue_id, (grid.min_lat + grid.max_lat) / 2, (grid.min_lon + grid.max_lon) / 2
    finally:
        engine.dispose()


def _pick_task(database_url: str) -> tuple[int, str]:
    """The demo task most riders completed (for its detail), and a rider invited through a station to a task
    running now (for the rider's list)."""
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as db:
            done = func.count(PatrolTaskResult.completed_at)
            task_id = db.scalar(
                select(PatrolTaskResult.task_id).group_by(PatrolTaskResult.task_id).order_by(done.desc()).limit(1)
            )
            rider = db.scalar(
                select(User.username)
                .join(Rider, Rider.user_id == User.id)
                .join(Station, Station.id == Rider.station_id)
                .join(PatrolTaskInvite, PatrolTaskInvite.station_id == Station.id)
                .where(User.is_active.is_(True))
                .order_by(PatrolTaskInvite.task_id, User.username)
                .limit(1)
            )
            if task_id is None or rider is None:
                raise SystemExit("the demo has no completed patrol task, or no rider invited by station")
            return int(task_id), rider
    finally:
        engine.dispose()


def _log_in(page: Page, username: str) -> None:
    page.goto("/login")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("current-user")).to_be_visible()


def _shoot(page: Page, path: Path, *, full_page: bool = False) -> None:
    # No error page may end up in the README.
    expect(page.get_by_test_id("error-page")).to_have_count(0)
    page.screenshot(path=path, full_page=full_page, animations="disabled", caret="hide")
    print(f"{path} ({path.stat().st_size // 1024} KB)", flush=True)


def _expect_map(page: Page, testid: str) -> None:
    expect(page.get_by_test_id(testid).locator("path.leaflet-interactive[fill-opacity='0.9']").first).to_be_visible()


def take(browser: Browser, base: str, database_url: str, out: Path) -> None:
    clue_id, lat, lon = _pick(database_url)
    task_id, task_rider = _pick_task(database_url)
    common: dict[str, Any] = {"base_url": base, "timezone_id": "Asia/Shanghai"}

    desk_context = browser.new_context(viewport=DESKTOP, locale="zh-CN", **common)
    desk = desk_context.new_page()
    _log_in(desk, "dispatcher1")
    expect(desk.get_by_test_id("clue-row").first).to_be_visible()
    _expect_map(desk, "desk-map")
    _shoot(desk, out / "desk.png")

    desk.goto(f"/clues/{clue_id}")
    expect(desk.get_by_test_id("timeline-entry").first).to_be_visible()
    _expect_map(desk, "clue-map")
    photo = desk.get_by_test_id("clue-photo").first
    photo.scroll_into_view_if_needed()
    expect(photo).not_to_have_js_property("naturalWidth", 0)
    desk.evaluate("window.scrollTo(0, 0)")
    _shoot(desk, out / "clue-detail.png", full_page=True)

    desk.goto("/coverage")
    desk.get_by_test_id("coverage-area").select_option(label="梅峰社区")
    desk.get_by_test_id("coverage-resolution").select_option("10")
    desk.get_by_test_id("preset-7d").click()
    desk.get_by_test_id("coverage-apply").click()
    expect(desk.get_by_test_id("coverage-map").locator("path.leaflet-interactive").nth(50)).to_be_attached()
    desk.wait_for_load_state("networkidle")
    _shoot(desk, out / "coverage.png", full_page=True)

    desk.goto("/tasks?phase=all")
    expect(desk.get_by_test_id("task-row").first).to_be_visible()
    _shoot(desk, out / "tasks.png")
    desk.goto(f"/tasks/{task_id}")
    expect(desk.get_by_test_id("task-map").locator("path.target-passed").first).to_be_visible()
    _shoot(desk, out / "task-detail.png", full_page=True)

    desk.get_by_test_id("lang-en").click()
    desk.goto("/desk")
    expect(desk.locator("html")).to_have_attribute("lang", "en")
    _expect_map(desk, "desk-map")
    _shoot(desk, out / "desk-en.png")
    desk_context.close()

    police_context = browser.new_context(viewport=DESKTOP, locale="zh-CN", **common)
    police = police_context.new_page()
    _log_in(police, "police1")
    expect(police.get_by_test_id("assignment").first).to_be_visible()
    _shoot(police, out / "assignments.png")
    police_context.close()

    phone_context = browser.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        geolocation={"latitude": lat, "longitude": lon, "accuracy": 12},
        permissions=["geolocation"],
        **common,
    )
    rider = phone_context.new_page()
    _log_in(rider, "rider001")
    rider.goto("/report")
    expect(rider.get_by_test_id("location-status")).to_have_attribute("data-located", "1")
    rider.get_by_test_id("report-category").select_option("theft")
    rider.get_by_test_id("report-description").fill("菜市场东门有人撬电动车锁，两名男子，骑黑色电动车往南走")
    rider.get_by_test_id("report-description").blur()
    _shoot(rider, out / "rider-report.png")

    rider.goto("/my/reports")
    expect(rider.get_by_test_id("my-report").first).to_be_visible()
    _shoot(rider, out / "rider-my-reports.png")
    phone_context.close()

    # A rider invited through their station, standing in a grid of the district.
    tasks_context = browser.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        geolocation={"latitude": lat, "longitude": lon, "accuracy": 12},
        permissions=["geolocation"],
        **common,
    )
    rider = tasks_context.new_page()
    _log_in(rider, task_rider)
    rider.goto("/my/tasks")
    expect(rider.get_by_test_id("my-task").first).to_be_visible()
    expect(rider.get_by_test_id("tasks-order")).to_have_attribute("data-from", "given")
    _shoot(rider, out / "rider-tasks.png", full_page=True)
    tasks_context.close()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.e2e.screenshots OUTDIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    if shutil.which("fc-list") and not subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True).stdout:
        print("warning: no Chinese font installed; Chinese text will show as boxes", file=sys.stderr)
    with (
        tempfile.TemporaryDirectory(prefix="riderwatch-shots-") as tmp,
        demo_server(Path(tmp)) as (base, db_url),
        sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            take(browser, base, db_url, out)
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
