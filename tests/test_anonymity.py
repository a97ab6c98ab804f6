"""Anonymity in every view (issue 10): a rider who reports anonymously is named to nobody but dispatchers
(and themselves) — in no page, API answer, Open311 document, audit entry or log line.

The walk takes every GET route the app has (pages, the API, Open311 in JSON and XML), with its path filled
in for an anonymous clue that went the whole loop (verified, dispatched, accepted, resolved, closed, rated
by its reporter), as every role that is not a dispatcher. A route added later is walked too.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy.orm import Session

from riderwatch.accounts.service import create_user
from riderwatch.models import User
from tests.api.helpers import Api
from tests.factories import PASSWORD, District
from tests.pages import Browser

USERNAME = "anon-reporter-x7"
DISPLAY_NAME = "匿名测试人甲"
PHONE = "13900007777"
WALKERS = ("admin", "police", "grid_staff", "patrol", "station_manager", "platform", "rider2")
# Directories of accounts, which name every user and say nothing of clues; and the whole audit log, which
# names whoever logged in (walked below for the entries about clues).
ACCOUNT_DIRECTORIES = {
    "/admin/users",
    "/api/v1/admin/users",
    "/admin/audit",
    "/api/v1/admin/audit",
    # The riders' roster names every rider of a station; it shows no anonymous report (not even its time).
    "/riders",
    "/api/v1/riders",
}
# The platforms' evaluation names riders with their monthly figures for pay: its counts take in anonymous
# reports too (a rider's work), never one report, its time or its place (ADR 0011).
EVALUATIONS = ("/evaluation/", "/api/v1/evaluations/")
# Routes that answer no GET with content worth reading (they redirect, or take a POST's confirmation).
# The live stream is endless; what it carries is each user's own notices (tests/notices checks them).
SKIPPED = {"/osmand", "/osmand/{rest:path}", "/lang/{code}", "/logout", "/api/v1/alerts/stream"}


def _paths(app: FastAPI, values: dict[str, str]) -> list[str]:
    paths = []
    for route in iter_route_contexts(app.routes):
        path = route.path
        if not path or "GET" not in (route.methods or ()) or path in SKIPPED or path.startswith("/static"):
            continue
        for fmt in ("json", "xml") if "{fmt}" in path else ("",):
            filled = {**values, "fmt": fmt}
            paths.append(re.sub(r"{(\w+)(:\w+)?}", lambda m, filled=filled: filled[m.group(1)], path))
    return paths


@pytest.fixture
def reporter(db: Session, district: District) -> User:
    user = create_user(
        db,
        username=USERNAME,
        role="rider",
        password=PASSWORD,
        display_name=DISPLAY_NAME,
        phone=PHONE,
        station_code=district.station.code,
    )
    db.commit()
    return user


@pytest.mark.one_database("sqlite", why="what the views show is decided in Python, the same over both databases")
def test_no_view_names_an_anonymous_reporter(
    app: FastAPI,
    api: Api,
    reporter: User,
    browser: Callable[[str], Browser],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    clue_id = api.report(USERNAME, anonymous=True, description="楼道里有人兜售假证")
    api.ok("dispatcher", clue_id, "verify")
    api.ok("dispatcher", clue_id, "dispatch", {"assignee": "police"})
    api.ok("police", clue_id, "accept")
    api.ok("police", clue_id, "resolve", {"outcome": "已查处"})
    api.ok("dispatcher", clue_id, "close", {"value_grade": "A"})
    api.ok(USERNAME, clue_id, "rate", {"rating": 5})
    values = {
        "clue_id": str(clue_id),
        "service_request_id": str(clue_id),
        "position": "0",
        "user_id": str(reporter.id),
        "rider_id": str(reporter.id),
        "username": "rider2",  # a rider's track is about that rider, not about clues (and is for dispatchers)
        "key_id": "1",
        "task_id": "1",
        "rule_id": "1",
        "code": "fire_hazard",
        "service_code": "fire_hazard",
        "rest": "x",
        "kind": "communities",
        "link_id": "1",
        "material_id": "1",
        "alert_id": "1",
        "channel_id": "1",
        "period": "2026-01",
        "reward_id": "1",
        "redemption_id": "1",
        "award_id": "1",
        "decision": "approve",
        "file_format": "csv",
        "feedback_id": "1",
        "action_id": "1",
    }
    paths = _paths(app, values)
    paths += [
        f"{prefix}/admin/audit?{query}"
        for prefix in ("", "/api/v1")
        for query in ("object_type=clue", "action=clue.submit", "action=clue.rate", f"object_id={clue_id}")
    ]
    assert len(paths) > 60

    # Positive controls: the check finds the name where the policy shows it.
    for who in ("dispatcher", USERNAME):
        page = browser(who).client.get(f"/clues/{clue_id}").text
        assert DISPLAY_NAME in page, f"{who} should see the reporter"

    leaks = []
    for role in WALKERS:
        client = browser(role).client
        for path in paths:
            if path.split("?")[0] in ACCOUNT_DIRECTORIES or path.startswith(
                ("/admin/users/", "/api/v1/admin/users/", "/riders/", "/api/v1/riders/", *EVALUATIONS)
            ):
                continue
            res = client.get(path)
            if res.url.path in ACCOUNT_DIRECTORIES:
                continue  # a start page that is a directory of accounts (the platform's: its riders)
            body = res.text
            if "audit" in path and role == "admin":
                # The audit views answer, and list the clue's entries with their actors withheld.
                assert res.status_code == 200 and f"clue.{'rate' if 'rate' in path else 'submit'}" in body, path
            for secret in (USERNAME, DISPLAY_NAME, PHONE):
                if secret in body:
                    leaks.append(f"{role}: GET {path} shows {secret!r}")
    assert leaks == [], "\n".join(leaks)
    for secret in (USERNAME, DISPLAY_NAME, PHONE):
        assert secret not in caplog.text, "a log line names the reporter"
