"""Who may open which page and send which form: every HTML route × every role (and no login).

The pages' counterpart of tests/api/test_access.py. The table below is the design in policy.py and the
`require(...)` of each domain's web.py, written out by hand. Routes are enumerated from the app, so a new
page or form without an entry here fails `test_every_page_route_has_an_entry`, and so does an entry for a
route that is gone.

Path parameters name real objects (the world's clue, task, rule, user, key, device, category), so an
allowed GET renders a real page; a second entry per route names an object that does not exist (404 for
those allowed, still 403 for the others). Forms are sent empty, with the session's CSRF token: a role
without the permission is refused, one with it gets the form back with its error (or a confirmation
page), never a 500 — and, unless the entry says otherwise, nothing in the database changes. Every form that
a role is not refused anyway is first sent without the token: refused (403), nothing changed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine, Text, cast, func, literal_column, select, union_all
from sqlalchemy.dialects import postgresql, sqlite

from riderwatch.db import Base
from riderwatch.infra.clock import utcnow
from riderwatch.models import AuditEntry
from riderwatch.models.tracking import POSTGRESQL_ONLY
from tests.api.helpers import Api
from tests.factories import CENTER_LAT, CENTER_LON
from tests.pages import Browser, form_csrf

ROLES = ["admin", "dispatcher", "police", "grid_staff", "patrol", "station_manager", "platform", "rider"]
ANON = "anonymous"
MISSING_ID = 999_999

# Routes that are not pages: served by the app but covered elsewhere (the OsmAnd protocol, for phones
# that send positions with a device id in the query: tests/tracking/test_osmand.py).
NOT_PAGES = {("GET", "/osmand"), ("POST", "/osmand"), ("GET", "/osmand/{rest:path}"), ("POST", "/osmand/{rest:path}")}
# Alerts as CAP and Atom documents, for any CAP consumer (tests/alerts/test_alerts.py).
NOT_PAGES |= {("GET", "/alerts/feed.atom"), ("GET", "/alerts/{alert_id}.cap")}
NOT_PAGE_PREFIXES = ("/api/", "/open311/", "/static", "/docs", "/redoc", "/openapi.json")


# --- what a response may be ----------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """An expected answer. The request must change nothing in the database, unless `changes` says it may,
    or but for audit entries of the actions in `audits` (showing a reporter's identity is audited)."""

    changes: bool = field(default=False, kw_only=True)
    audits: tuple[str, ...] = field(default=(), kw_only=True)

    def wrong(self, res: Response, path: str) -> str | None:  # pragma: no cover - overridden
        raise NotImplementedError


def _html(res: Response) -> bool:
    return res.headers.get("content-type", "").startswith("text/html")


def _error_page(res: Response) -> bool:
    return 'data-testid="error-page"' in res.text


def _error_message(res: Response) -> bool:
    return bool(re.search(r'data-testid="page-message" data-kind="error"', res.text))


@dataclass(frozen=True)
class Shown(Outcome):
    """A page (200, HTML, not the error page), holding the element `testid` if one is named."""

    testid: str = ""

    def wrong(self, res: Response, path: str) -> str | None:
        mark = not self.testid or f'data-testid="{self.testid}"' in res.text
        if res.status_code == 200 and _html(res) and not _error_page(res) and mark:
            return None
        return f"a page with {self.testid}" if self.testid else "a page"


@dataclass(frozen=True)
class Refused(Outcome):
    """The error page with this status (a missing permission, a missing object, a bad query value)."""

    status: int = 403

    def wrong(self, res: Response, path: str) -> str | None:
        if res.status_code == self.status and _html(res) and f'data-status="{self.status}"' in res.text:
            return None
        return f"the {self.status} error page"


@dataclass(frozen=True)
class FormError(Outcome):
    """The form's own page again, with this status and an error message (not the error page)."""

    status: int = 422

    def wrong(self, res: Response, path: str) -> str | None:
        if res.status_code == self.status and _html(res) and not _error_page(res) and _error_message(res):
            return None
        return f"the form again with a {self.status} message"


@dataclass(frozen=True)
class SeeOther(Outcome):
    """303 to a URL that `to` (a regular expression) matches whole."""

    to: str = "/"

    def wrong(self, res: Response, path: str) -> str | None:
        if res.status_code == 303 and re.fullmatch(self.to, res.headers.get("location", "")):
            return None
        return f"303 to {self.to}"


@dataclass(frozen=True)
class ToLogin(Outcome):
    """303 to the login page, which comes back to the page asked for."""

    def wrong(self, res: Response, path: str) -> str | None:
        if res.status_code == 303 and res.headers.get("location") == f"/login?next={path}":
            return None
        return f"303 to /login?next={path}"


@dataclass(frozen=True)
class HxLogin(Outcome):
    """204 with HX-Redirect: htmx polling loads the login page instead of swapping it into the queue."""

    def wrong(self, res: Response, path: str) -> str | None:
        if res.status_code == 204 and res.headers.get("hx-redirect", "").startswith("/login"):
            return None
        return "204 with HX-Redirect to /login"


@dataclass(frozen=True)
class Served(Outcome):
    """200 with this content type (a file, not a page)."""

    media_type: str = "text/javascript"

    def wrong(self, res: Response, path: str) -> str | None:
        if res.status_code == 200 and res.headers.get("content-type", "").startswith(self.media_type):
            return None
        return f"200 {self.media_type}"


PAGE = Shown()
LOGIN = ToLogin()
FORBIDDEN = Refused(403)
MISSING = Refused(404)
INVALID = FormError(422)


# --- the world the requests point at ---------------------------------------------------------------


@dataclass
class World:
    """A clue reported by `rider`, verified and dispatched to `police`; the user `police2` (whom the admin
    rows edit); an Open311 key; a patrol task open to all riders; a task rule; a device of `rider`."""

    clue_id: int
    user_id: int
    key_id: int
    task_id: int
    rule_id: int
    rider_id: int = 0
    link_id: int = 0  # a join link that the rows below withdraw
    join_code: str = ""  # another one's code, which stays open
    device_id: str = "matrix-phone"
    category: str = "fire_hazard"
    period: str = ""  # the last month, scored


@dataclass(frozen=True)
class Case:
    method: str
    path: str  # the route's path template, as the app declares it
    url: Callable[[World], str]
    expect: dict[str, Outcome]  # role (or ANON) → outcome
    note: str = ""
    form: dict[str, str] = field(default_factory=dict)  # what the form holds (empty unless named here)
    files: bool = False  # send the form as multipart/form-data (an upload form), with an empty file
    fresh: bool = False  # sent from a browser logged in for this case alone (it ends every session)


def _everyone(outcome: Outcome, anonymous: Outcome = LOGIN, **overrides: Outcome) -> dict[str, Outcome]:
    table: dict[str, Outcome] = dict.fromkeys(ROLES, outcome)
    table[ANON] = anonymous
    table.update(overrides)
    return table


def _only(roles: tuple[str, ...] | frozenset[str], ok: Outcome = PAGE, **overrides: Outcome) -> dict[str, Outcome]:
    """`ok` for `roles`, the 403 page for the other roles, the login page for no login."""
    table = _everyone(FORBIDDEN)
    table.update(dict.fromkeys(roles, ok))
    table.update(overrides)
    return table


ADMIN = ("admin",)
DESK = ("admin", "dispatcher")
STAFF = ("admin", "dispatcher", "station_manager", "police", "grid_staff", "patrol")  # may keep their own webhooks
HANDLERS = ("police", "grid_staff", "patrol")
REPORTERS = ("rider", "dispatcher")
CLUE_READERS = ("rider", "dispatcher", "admin", *HANDLERS)
RIDER = ("rider",)
COVERAGE = ("dispatcher", "admin", "station_manager", *HANDLERS)
TASK_READERS = ("dispatcher", "admin", "station_manager", *HANDLERS)
DISPATCHER = ("dispatcher",)
IMPORTERS = ("dispatcher", "admin")
RIDER_IMPORTERS = ("admin", "station_manager")
ROSTER = ("admin", "dispatcher", "station_manager", "platform")
FIGURES = ("dispatcher", "admin", "station_manager")
SHANGHAI = ZoneInfo("Asia/Shanghai")
POINTS_BOARD = ("rider", "dispatcher", "admin", "station_manager")
EVALUATION_STAFF = ("admin", "dispatcher", "station_manager", "platform")
VOICE = ("police", "dispatcher", "admin")
# Each role's start page (the first of its navigation): a platform account's is its riders' evaluations.
HOMES = {
    "admin": SeeOther(to="/desk"),
    "dispatcher": SeeOther(to="/desk"),
    "police": SeeOther(to="/my/assignments"),
    "grid_staff": SeeOther(to="/my/assignments"),
    "patrol": SeeOther(to="/my/assignments"),
    "station_manager": SeeOther(to="/coverage"),
    "platform": SeeOther(to="/evaluation"),
    "rider": SeeOther(to="/report"),
}
LOGIN_HOMES = HOMES
# Who sees the world's clue: dispatchers and admins all, its assignee, its reporter. Handlers it is not
# assigned to are told it does not exist; those who may not list clues at all are refused the page.
# Its reporter asked for no anonymity: the page names them, and showing them to anyone else is audited.
SHOWN_REPORTER = ("clue.view_reporter",)
SEES_CLUE = {
    "dispatcher": Shown(audits=SHOWN_REPORTER),
    "admin": Shown(audits=SHOWN_REPORTER),
    "police": Shown(audits=SHOWN_REPORTER),
    "rider": PAGE,
}
NOT_THEIRS = {"grid_staff": MISSING, "patrol": MISSING}


CASES: list[Case] = [
    # --- the shell: start page, language, service worker; signing in and out
    Case("GET", "/", lambda w: "/", _everyone(PAGE, anonymous=SeeOther(to="/login"), **HOMES)),
    Case(
        "GET",
        "/lang/{code}",
        lambda w: "/lang/en?next=/tasks",
        _everyone(SeeOther(to="/tasks"), anonymous=SeeOther(to="/tasks")),
        "sets the language cookie and goes back",
    ),
    Case("GET", "/lang/{code}", lambda w: "/lang/xx", _everyone(MISSING, anonymous=MISSING), "no such language"),
    Case("GET", "/sw.js", lambda w: "/sw.js", _everyone(Served(), anonymous=Served())),
    Case("GET", "/login", lambda w: "/login", _everyone(PAGE, anonymous=PAGE, **LOGIN_HOMES)),
    Case("POST", "/login", lambda w: "/login", _everyone(INVALID, anonymous=INVALID), "no username or password"),
    # --- the clue desk, a clue, handlers and riders
    Case("GET", "/desk", lambda w: "/desk", _only(DESK)),
    Case("GET", "/desk/_queue", lambda w: "/desk/_queue", _only(DESK, anonymous=HxLogin())),
    Case(
        "GET",
        "/clues/{clue_id}",
        lambda w: f"/clues/{w.clue_id}",
        _only(CLUE_READERS, **SEES_CLUE, **NOT_THEIRS),
    ),
    Case(
        "GET",
        "/clues/{clue_id}",
        lambda w: f"/clues/{MISSING_ID}",
        _only(CLUE_READERS, ok=MISSING),
    ),
    Case(
        "POST",
        "/clues/{clue_id}/actions/{action}",
        lambda w: f"/clues/{w.clue_id}/actions/dispatch",
        _everyone(
            FormError(403),
            admin=FormError(403, audits=SHOWN_REPORTER),
            dispatcher=FormError(422, audits=SHOWN_REPORTER),
            police=FormError(403, audits=SHOWN_REPORTER),
            grid_staff=MISSING,
            patrol=MISSING,
            station_manager=MISSING,
            platform=MISSING,
        ),
        "dispatch without an assignee: the dispatcher is told what is missing, those who see the clue may not"
        " (the clue page comes back, with the reporter), those who do not see it are told it does not exist",
    ),
    Case(
        "POST",
        "/clues/{clue_id}/actions/{action}",
        lambda w: f"/clues/{MISSING_ID}/actions/dispatch",
        _everyone(MISSING),
    ),
    Case("GET", "/my/assignments", lambda w: "/my/assignments", _only(HANDLERS)),
    Case("GET", "/report", lambda w: "/report", _only(REPORTERS)),
    Case("GET", "/my/reports", lambda w: "/my/reports", _only(REPORTERS)),
    # --- the rider's location pages
    Case("GET", "/duty", lambda w: "/duty", _only(RIDER)),
    Case("POST", "/duty/consent", lambda w: "/duty/consent", _only(RIDER, ok=INVALID), "the box not ticked"),
    Case("GET", "/duty/withdraw", lambda w: "/duty/withdraw", _only(RIDER, ok=Shown("withdraw-confirm"))),
    Case(
        "POST",
        "/duty/withdraw",
        lambda w: "/duty/withdraw",
        _only(RIDER, ok=SeeOther(to="/duty/withdraw")),
        "without the confirmation: back to the confirmation page, nothing deleted",
    ),
    Case("POST", "/duty/state", lambda w: "/duty/state", _only(RIDER, ok=INVALID), "neither on nor off"),
    Case(
        "POST",
        "/duty/devices",
        lambda w: "/duty/devices",
        _only(RIDER, ok=INVALID),
        "a label too long (without one, an identifier is issued)",
        form={"label": "x" * 65},
    ),
    Case(
        "POST",
        "/duty/devices/{device_id}/remove",
        lambda w: "/duty/devices/no-such-phone/remove",
        _only(RIDER, ok=FormError(404)),
        "a device the rider never registered (the real one is removed in the last entry)",
    ),
    Case("GET", "/my/data", lambda w: "/my/data", _only(RIDER)),
    # --- coverage, incidents
    Case("GET", "/coverage", lambda w: "/coverage", _only(COVERAGE)),
    Case("GET", "/incidents/import", lambda w: "/incidents/import", _only(IMPORTERS)),
    Case(
        "POST",
        "/incidents/import",
        lambda w: "/incidents/import",
        _only(IMPORTERS, ok=INVALID),
        "an empty file",
        files=True,
    ),
    # --- the programme's figures
    Case("GET", "/stats", lambda w: "/stats", _only(FIGURES, ok=Shown("kpis"))),
    Case(
        "GET",
        "/stats/export",
        lambda w: "/stats/export?format=csv",
        _only(FIGURES, ok=Served("text/csv", audits=("stats.export",))),
    ),
    # --- riders
    Case("GET", "/riders", lambda w: "/riders", _only(ROSTER, ok=Shown("roster"))),
    Case(
        "GET",
        "/join/{code}",
        lambda w: f"/join/{w.join_code}",
        _everyone(Shown("join-form"), anonymous=Shown("join-form")),
        "the station's open link: anyone may read the form",
    ),
    Case(
        "POST",
        "/join/{code}",
        lambda w: f"/join/{w.join_code}",
        _everyone(INVALID, anonymous=INVALID),
        "an empty application; without the form's token it is refused (403)",
    ),
    Case("GET", "/riders/join-links", lambda w: "/riders/join-links", _only(RIDER_IMPORTERS)),
    Case(
        "POST",
        "/riders/join-links",
        lambda w: "/riders/join-links",
        _only(RIDER_IMPORTERS, ok=INVALID),
        "no station chosen",
    ),
    Case(
        "POST",
        "/riders/join-links/{link_id}/withdraw",
        lambda w: f"/riders/join-links/{w.link_id}/withdraw",
        _only(RIDER_IMPORTERS, ok=SeeOther(to=r"/riders/join-links\?done=withdrawn", changes=True)),
        "the station's link is withdrawn (audited)",
    ),
    Case("GET", "/riders/{rider_id}", lambda w: f"/riders/{w.rider_id}", _only(ROSTER, ok=Shown("rider-path"))),
    Case("GET", "/riders/{rider_id}", lambda w: f"/riders/{MISSING_ID}", _only(ROSTER, ok=MISSING)),
    Case(
        "POST",
        "/riders/{rider_id}/status",
        lambda w: f"/riders/{w.rider_id}/status",
        _only(RIDER_IMPORTERS, ok=INVALID),
        "no standing chosen",
    ),
    Case("GET", "/riders/import", lambda w: "/riders/import", _only(RIDER_IMPORTERS)),
    Case(
        "POST",
        "/riders/import",
        lambda w: "/riders/import",
        _only(RIDER_IMPORTERS, ok=INVALID),
        "an empty file",
        files=True,
    ),
    # --- patrol tasks
    Case("GET", "/tasks", lambda w: "/tasks", _only(TASK_READERS)),
    Case("GET", "/tasks/new", lambda w: "/tasks/new", _only(DISPATCHER)),
    Case("POST", "/tasks", lambda w: "/tasks", _only(DISPATCHER, ok=INVALID), "an empty publish form"),
    Case("GET", "/tasks/rules", lambda w: "/tasks/rules", _only(TASK_READERS)),
    Case("POST", "/tasks/rules", lambda w: "/tasks/rules", _only(DISPATCHER, ok=INVALID), "an empty rule form"),
    Case(
        "POST",
        "/tasks/rules/{rule_id}/active",
        lambda w: f"/tasks/rules/{w.rule_id}/active",
        _only(DISPATCHER, ok=INVALID),
        "neither yes nor no",
    ),
    Case(
        "POST",
        "/tasks/rules/{rule_id}/active",
        lambda w: f"/tasks/rules/{MISSING_ID}/active",
        _only(DISPATCHER, ok=MISSING),
        form={"active": "yes"},
    ),
    Case(
        "GET",
        "/tasks/rules/{rule_id}/run",
        lambda w: f"/tasks/rules/{w.rule_id}/run",
        _only(DISPATCHER, ok=Shown("confirm-run-rule")),
    ),
    Case(
        "GET", "/tasks/rules/{rule_id}/run", lambda w: f"/tasks/rules/{MISSING_ID}/run", _only(DISPATCHER, ok=MISSING)
    ),
    Case(
        "POST",
        "/tasks/rules/{rule_id}/run",
        lambda w: f"/tasks/rules/{w.rule_id}/run",
        _only(DISPATCHER, ok=Shown("confirm-run-rule")),
        "without the confirmation: the confirmation page, nothing published",
    ),
    Case(
        "POST", "/tasks/rules/{rule_id}/run", lambda w: f"/tasks/rules/{MISSING_ID}/run", _only(DISPATCHER, ok=MISSING)
    ),
    Case("GET", "/tasks/{task_id}", lambda w: f"/tasks/{w.task_id}", _only(TASK_READERS)),
    Case("GET", "/tasks/{task_id}", lambda w: f"/tasks/{MISSING_ID}", _only(TASK_READERS, ok=MISSING)),
    Case(
        "POST",
        "/tasks/{task_id}/verify",
        lambda w: f"/tasks/{w.task_id}/verify",
        _only(DISPATCHER, ok=SeeOther(to=r"/tasks/\d+\?done=verified", changes=True)),
        "verifying takes no form: the dispatcher's request checks the positions",
    ),
    Case("POST", "/tasks/{task_id}/verify", lambda w: f"/tasks/{MISSING_ID}/verify", _only(DISPATCHER, ok=MISSING)),
    Case(
        "GET",
        "/tasks/{task_id}/cancel",
        lambda w: f"/tasks/{w.task_id}/cancel",
        _only(DISPATCHER, ok=Shown("confirm-cancel-task")),
    ),
    Case("GET", "/tasks/{task_id}/cancel", lambda w: f"/tasks/{MISSING_ID}/cancel", _only(DISPATCHER, ok=MISSING)),
    Case(
        "POST",
        "/tasks/{task_id}/cancel",
        lambda w: f"/tasks/{w.task_id}/cancel",
        _only(DISPATCHER, ok=Shown("confirm-cancel-task")),
        "without the confirmation: the confirmation page, nothing cancelled",
    ),
    Case("POST", "/tasks/{task_id}/cancel", lambda w: f"/tasks/{MISSING_ID}/cancel", _only(DISPATCHER, ok=MISSING)),
    Case("GET", "/my/tasks", lambda w: "/my/tasks", _only(RIDER)),
    Case("GET", "/my/tasks/{task_id}", lambda w: f"/my/tasks/{w.task_id}", _only(RIDER)),
    Case("GET", "/my/tasks/{task_id}", lambda w: f"/my/tasks/{MISSING_ID}", _only(RIDER, ok=MISSING)),
    # --- administration: users, keys, categories, the audit log
    Case("GET", "/admin/users", lambda w: "/admin/users", _only(ADMIN)),
    Case("GET", "/admin/users/new", lambda w: "/admin/users/new", _only(ADMIN)),
    Case("POST", "/admin/users", lambda w: "/admin/users", _only(ADMIN, ok=INVALID), "an empty new-user form"),
    Case("GET", "/admin/users/{user_id}", lambda w: f"/admin/users/{w.user_id}", _only(ADMIN)),
    Case("GET", "/admin/users/{user_id}", lambda w: f"/admin/users/{MISSING_ID}", _only(ADMIN, ok=MISSING)),
    Case("POST", "/admin/users/{user_id}", lambda w: f"/admin/users/{w.user_id}", _only(ADMIN, ok=INVALID)),
    Case("POST", "/admin/users/{user_id}", lambda w: f"/admin/users/{MISSING_ID}", _only(ADMIN, ok=MISSING)),
    Case(
        "POST",
        "/admin/users/{user_id}/password",
        lambda w: f"/admin/users/{w.user_id}/password",
        _only(ADMIN, ok=INVALID),
        "no password",
    ),
    Case(
        "POST",
        "/admin/users/{user_id}/password",
        lambda w: f"/admin/users/{MISSING_ID}/password",
        _only(ADMIN, ok=MISSING),
    ),
    Case(
        "POST",
        "/admin/users/{user_id}/one-time-code",
        lambda w: f"/admin/users/{w.user_id}/one-time-code",
        _only(ADMIN, ok=Shown("one-time-code", changes=True)),
        "the code is shown in the answer, once",
    ),
    Case(
        "POST",
        "/admin/users/{user_id}/one-time-code",
        lambda w: f"/admin/users/{MISSING_ID}/one-time-code",
        _only(ADMIN, ok=MISSING),
    ),
    # --- the district
    Case("GET", "/admin/district", lambda w: "/admin/district", _only(ADMIN, ok=Shown("district-map"))),
    Case(
        "POST",
        "/admin/district/import",
        lambda w: "/admin/district/import",
        _only(ADMIN, ok=INVALID),
        "an empty file",
        files=True,
    ),
    Case("POST", "/admin/district/{kind}", lambda w: "/admin/district/platforms", _only(ADMIN, ok=INVALID), "no code"),
    Case("GET", "/admin/district/{kind}/{code}", lambda w: "/admin/district/platforms/meituan", _only(ADMIN)),
    Case("GET", "/admin/district/{kind}/{code}", lambda w: "/admin/district/zones/nowhere", _only(ADMIN, ok=MISSING)),
    Case(
        "POST",
        "/admin/district/{kind}/{code}",
        lambda w: "/admin/district/platforms/meituan",
        _only(ADMIN, ok=SeeOther(to=r"/admin/district/platforms/meituan\?done=saved")),
        "an empty form changes nothing",
    ),
    Case(
        "POST",
        "/admin/district/{kind}/{code}/retire",
        lambda w: "/admin/district/platforms/meituan/retire",
        _only(ADMIN, ok=FormError(409)),
        "its station is in use",
    ),
    Case(
        "POST",
        "/admin/district/{kind}/{code}/restore",
        lambda w: "/admin/district/platforms/meituan/restore",
        _only(ADMIN, ok=SeeOther(to=r"/admin/district/platforms/meituan\?done=restored")),
        "in use already: nothing changes",
    ),
    # --- routing rules
    Case("GET", "/admin/routing", lambda w: "/admin/routing", _only(DESK, ok=Shown("routing-test"))),
    Case("POST", "/admin/routing", lambda w: "/admin/routing", _only(ADMIN, ok=INVALID), "no party"),
    Case(
        "POST",
        "/admin/routing/{rule_id}/move",
        lambda w: f"/admin/routing/{MISSING_ID}/move",
        _only(ADMIN, ok=MISSING),
    ),
    Case(
        "POST",
        "/admin/routing/{rule_id}/active",
        lambda w: f"/admin/routing/{MISSING_ID}/active",
        _only(ADMIN, ok=MISSING),
    ),
    # --- training
    Case("GET", "/training", lambda w: "/training", _only(RIDER, ok=Shown("courses"))),
    Case("GET", "/training/{code}", lambda w: "/training/world", _only(RIDER, ok=Shown("course-body"))),
    Case("GET", "/training/{code}", lambda w: "/training/nowhere", _only(RIDER, ok=MISSING)),
    Case(
        "POST",
        "/training/{code}/quiz",
        lambda w: "/training/world/quiz",
        _only(RIDER, ok=Shown("quiz-form", changes=True)),
        "a quiz is drawn (an attempt is kept)",
    ),
    Case(
        "POST",
        "/training/attempts/{attempt_id}",
        lambda w: f"/training/attempts/{MISSING_ID}",
        _only(RIDER, ok=MISSING),
    ),
    Case(
        "GET",
        "/training/{code}/certificate",
        lambda w: "/training/world/certificate",
        _only(RIDER, ok=MISSING),
        "not passed: no certificate",
    ),
    Case("GET", "/riders/training", lambda w: "/riders/training", _only(ROSTER, ok=Shown("completion"))),
    Case("GET", "/admin/courses", lambda w: "/admin/courses", _only(ADMIN, ok=Shown("courses"))),
    Case("GET", "/admin/courses/new", lambda w: "/admin/courses/new", _only(ADMIN, ok=Shown("course-form"))),
    Case("POST", "/admin/courses", lambda w: "/admin/courses", _only(ADMIN, ok=INVALID), "no code, no title"),
    Case("GET", "/admin/courses/{code}", lambda w: "/admin/courses/world", _only(ADMIN, ok=Shown("questions"))),
    Case("GET", "/admin/courses/{code}", lambda w: "/admin/courses/nowhere", _only(ADMIN, ok=MISSING)),
    Case("POST", "/admin/courses/{code}", lambda w: "/admin/courses/world", _only(ADMIN, ok=INVALID), "no title"),
    Case("POST", "/admin/courses/{code}/active", lambda w: "/admin/courses/nowhere/active", _only(ADMIN, ok=MISSING)),
    Case(
        "POST",
        "/admin/courses/{code}/questions",
        lambda w: "/admin/courses/world/questions",
        _only(ADMIN, ok=INVALID),
        "no text, no options",
    ),
    Case(
        "POST",
        "/admin/courses/{code}/questions/{question_id}/active",
        lambda w: f"/admin/courses/world/questions/{MISSING_ID}/active",
        _only(ADMIN, ok=MISSING),
    ),
    Case(
        "POST",
        "/admin/courses/{code}/questions/import",
        lambda w: "/admin/courses/world/questions/import",
        _only(ADMIN, ok=INVALID),
        "an empty file",
        files=True,
    ),
    Case(
        "POST",
        "/admin/courses/{code}/materials",
        lambda w: "/admin/courses/world/materials",
        _only(ADMIN, ok=INVALID),
        "an empty file",
        files=True,
    ),
    Case(
        "POST",
        "/admin/courses/{code}/materials/{material_id}/active",
        lambda w: f"/admin/courses/world/materials/{MISSING_ID}/active",
        _only(ADMIN, ok=MISSING),
    ),
    # --- alerts and notices
    Case("GET", "/alerts", lambda w: "/alerts", _only(DESK, ok=Shown("alerts"))),
    Case("GET", "/alerts/new", lambda w: "/alerts/new", _only(DESK, ok=Shown("alert-form"))),
    Case("POST", "/alerts", lambda w: "/alerts", _only(DESK, ok=INVALID), "no text, no area"),
    Case(
        "GET",
        "/alerts/{alert_id}",
        lambda w: f"/alerts/{MISSING_ID}",
        _only((*DESK, *HANDLERS), ok=MISSING),
        "handlers read the alerts that also go to their party",
    ),
    Case("POST", "/alerts/{alert_id}/update", lambda w: f"/alerts/{MISSING_ID}/update", _only(DESK, ok=MISSING)),
    Case("POST", "/alerts/{alert_id}/cancel", lambda w: f"/alerts/{MISSING_ID}/cancel", _only(DESK, ok=MISSING)),
    Case("POST", "/alerts/{alert_id}/approve", lambda w: f"/alerts/{MISSING_ID}/approve", _only(DESK, ok=MISSING)),
    Case("GET", "/my/alerts", lambda w: "/my/alerts", _only(RIDER, ok=Shown("my-alerts"))),
    Case("POST", "/my/alerts/{alert_id}/ack", lambda w: f"/my/alerts/{MISSING_ID}/ack", _only(RIDER, ok=MISSING)),
    Case("GET", "/notices", lambda w: "/notices", _everyone(Shown("notices"))),
    Case(
        "POST",
        "/notices/read",
        lambda w: "/notices/read",
        _everyone(SeeOther(to="/notices", changes=True)),
        "marks the caller's notices read (the police user has one: the world's clue was dispatched to them)",
    ),
    Case("GET", "/admin/webhooks", lambda w: "/admin/webhooks", _only(ADMIN, ok=Shown("channel-form"))),
    Case("GET", "/notices/webhooks", lambda w: "/notices/webhooks", _only(STAFF, ok=Shown("channel-form"))),
    Case("POST", "/webhooks", lambda w: "/webhooks", _only(STAFF, ok=INVALID), "no name, no address"),
    Case("GET", "/webhooks/{channel_id}", lambda w: f"/webhooks/{MISSING_ID}", _everyone(MISSING)),
    Case("POST", "/webhooks/{channel_id}", lambda w: f"/webhooks/{MISSING_ID}", _everyone(MISSING)),
    Case("POST", "/webhooks/{channel_id}/test", lambda w: f"/webhooks/{MISSING_ID}/test", _everyone(MISSING)),
    Case("GET", "/webhooks/{channel_id}/retire", lambda w: f"/webhooks/{MISSING_ID}/retire", _everyone(MISSING)),
    Case("POST", "/webhooks/{channel_id}/retire", lambda w: f"/webhooks/{MISSING_ID}/retire", _everyone(MISSING)),
    Case("POST", "/webhooks/{channel_id}/restore", lambda w: f"/webhooks/{MISSING_ID}/restore", _everyone(MISSING)),
    Case(
        "POST",
        "/webhooks/deliveries/{delivery_id}/retry",
        lambda w: f"/webhooks/deliveries/{MISSING_ID}/retry",
        _everyone(MISSING),
    ),
    Case("GET", "/account", lambda w: "/account", _everyone(Shown("password-form"))),
    Case("POST", "/account/password", lambda w: "/account/password", _everyone(INVALID), "no passwords"),
    Case(
        "GET",
        "/admin/users/{user_id}/deactivate",
        lambda w: f"/admin/users/{w.user_id}/deactivate",
        _only(ADMIN, ok=Shown("confirm-deactivate")),
    ),
    Case(
        "GET",
        "/admin/users/{user_id}/deactivate",
        lambda w: f"/admin/users/{MISSING_ID}/deactivate",
        _only(ADMIN, ok=MISSING),
    ),
    Case(
        "POST",
        "/admin/users/{user_id}/deactivate",
        lambda w: f"/admin/users/{w.user_id}/deactivate",
        _only(ADMIN, ok=Shown("confirm-deactivate")),
        "without the confirmation: the confirmation page, nobody deactivated",
    ),
    Case(
        "POST",
        "/admin/users/{user_id}/deactivate",
        lambda w: f"/admin/users/{MISSING_ID}/deactivate",
        _only(ADMIN, ok=MISSING),
    ),
    Case(
        "GET",
        "/admin/users/{user_id}/reactivate",
        lambda w: f"/admin/users/{w.user_id}/reactivate",
        _only(ADMIN, ok=Shown("confirm-reactivate")),
    ),
    Case(
        "GET",
        "/admin/users/{user_id}/reactivate",
        lambda w: f"/admin/users/{MISSING_ID}/reactivate",
        _only(ADMIN, ok=MISSING),
    ),
    Case(
        "POST",
        "/admin/users/{user_id}/reactivate",
        lambda w: f"/admin/users/{w.user_id}/reactivate",
        _only(ADMIN, ok=Shown("confirm-reactivate")),
        "without the confirmation: the confirmation page",
    ),
    Case(
        "POST",
        "/admin/users/{user_id}/reactivate",
        lambda w: f"/admin/users/{MISSING_ID}/reactivate",
        _only(ADMIN, ok=MISSING),
    ),
    Case("GET", "/admin/keys", lambda w: "/admin/keys", _only(ADMIN)),
    Case("POST", "/admin/keys", lambda w: "/admin/keys", _only(ADMIN, ok=INVALID), "a key without a name"),
    Case(
        "GET",
        "/admin/keys/{key_id}/revoke",
        lambda w: f"/admin/keys/{w.key_id}/revoke",
        _only(ADMIN, ok=Shown("confirm-revoke")),
    ),
    Case("GET", "/admin/keys/{key_id}/revoke", lambda w: f"/admin/keys/{MISSING_ID}/revoke", _only(ADMIN, ok=MISSING)),
    Case(
        "POST",
        "/admin/keys/{key_id}/revoke",
        lambda w: f"/admin/keys/{w.key_id}/revoke",
        _only(ADMIN, ok=Shown("confirm-revoke")),
        "without the confirmation: the confirmation page, the key still works",
    ),
    Case("POST", "/admin/keys/{key_id}/revoke", lambda w: f"/admin/keys/{MISSING_ID}/revoke", _only(ADMIN, ok=MISSING)),
    Case("GET", "/admin/audit", lambda w: "/admin/audit", _only(ADMIN)),
    Case("GET", "/admin/categories", lambda w: "/admin/categories", _only(ADMIN)),
    Case("GET", "/admin/categories/new", lambda w: "/admin/categories/new", _only(ADMIN)),
    Case(
        "POST", "/admin/categories", lambda w: "/admin/categories", _only(ADMIN, ok=INVALID), "an empty category form"
    ),
    Case("GET", "/admin/categories/{code}", lambda w: f"/admin/categories/{w.category}", _only(ADMIN)),
    Case("GET", "/admin/categories/{code}", lambda w: "/admin/categories/no_such_code", _only(ADMIN, ok=MISSING)),
    Case("POST", "/admin/categories/{code}", lambda w: f"/admin/categories/{w.category}", _only(ADMIN, ok=INVALID)),
    Case("POST", "/admin/categories/{code}", lambda w: "/admin/categories/no_such_code", _only(ADMIN, ok=MISSING)),
    # --- points, rewards and the platforms' evaluation
    Case("GET", "/points", lambda w: "/points", _only(RIDER, ok=Shown("nickname-form"))),
    Case(
        "POST",
        "/points/nickname",
        lambda w: "/points/nickname",
        _only(RIDER, ok=SeeOther(to=r"/points\?done=nickname")),
        "an empty nickname: the rider's masked name (as it was)",
    ),
    Case("GET", "/points/board", lambda w: "/points/board", _only(POINTS_BOARD, ok=Shown("board"))),
    Case("GET", "/rewards", lambda w: "/rewards", _only(RIDER, ok=Shown("catalogue"))),
    Case("GET", "/rewards/{reward_id}/redeem", lambda w: f"/rewards/{MISSING_ID}/redeem", _only(RIDER, ok=MISSING)),
    Case("POST", "/rewards/{reward_id}/redeem", lambda w: f"/rewards/{MISSING_ID}/redeem", _only(RIDER, ok=MISSING)),
    Case(
        "POST",
        "/redemptions/{redemption_id}/cancel",
        lambda w: f"/redemptions/{MISSING_ID}/cancel",
        _only(RIDER, ok=MISSING),
    ),
    Case("GET", "/admin/points", lambda w: "/admin/points", _only(ADMIN, ok=Shown("rule-form"))),
    Case("POST", "/admin/points/rules", lambda w: "/admin/points/rules", _only(ADMIN, ok=INVALID), "an empty form"),
    Case("POST", "/admin/points/adjustments", lambda w: "/admin/points/adjustments", _only(ADMIN, ok=INVALID), "empty"),
    Case("GET", "/admin/rewards", lambda w: "/admin/rewards", _only(ADMIN, ok=Shown("reward-form"))),
    Case("POST", "/admin/rewards", lambda w: "/admin/rewards", _only(ADMIN, ok=INVALID), "an empty reward"),
    Case(
        "POST",
        "/admin/redemptions/{redemption_id}/{decision}",
        lambda w: f"/admin/redemptions/{MISSING_ID}/approve",
        _only(ADMIN, ok=MISSING),
    ),
    Case("POST", "/admin/cash-awards", lambda w: "/admin/cash-awards", _only(ADMIN, ok=INVALID), "an empty proposal"),
    Case(
        "POST",
        "/admin/cash-awards/{award_id}/{decision}",
        lambda w: f"/admin/cash-awards/{MISSING_ID}/approve",
        _only(ADMIN, ok=MISSING),
    ),
    Case("POST", "/admin/cash-payouts", lambda w: "/admin/cash-payouts", _only(ADMIN, ok=INVALID), "no claim code"),
    Case("GET", "/admin/evaluation", lambda w: "/admin/evaluation", _only(ADMIN, ok=Shown("scheme-form"))),
    Case(
        "POST",
        "/admin/evaluation/consistency",
        lambda w: "/admin/evaluation/consistency",
        _only(ADMIN, ok=Shown("ahp-matrix")),
        "the matrix editor's fragment as the form stands",
    ),
    Case(
        "POST",
        "/admin/evaluation/scheme",
        lambda w: "/admin/evaluation/scheme",
        _only(ADMIN, ok=INVALID),
        "no indicator included",
    ),
    Case("POST", "/admin/evaluation/runs", lambda w: "/admin/evaluation/runs", _only(ADMIN, ok=INVALID), "no month"),
    Case(
        "GET",
        "/evaluation",
        lambda w: "/evaluation",
        _only(EVALUATION_STAFF, ok=Shown("months"), rider=SeeOther(to="/my/evaluation")),
    ),
    Case(
        "GET",
        "/evaluation/{period}",
        lambda w: f"/evaluation/{w.period}",
        _only(EVALUATION_STAFF, ok=Shown("evaluation-rows"), rider=SeeOther(to=r"/my/evaluation/\d{4}-\d{2}")),
    ),
    Case(
        "GET",
        "/evaluation/{period}/file.{file_format}",
        lambda w: f"/evaluation/{w.period}/file.xlsx",
        _only(EVALUATION_STAFF, ok=Served("application/vnd.openxmlformats"), rider=FORBIDDEN),
    ),
    Case(
        "GET",
        "/evaluation/{period}/riders/{rider_id}",
        lambda w: f"/evaluation/{w.period}/riders/{w.rider_id}",
        _only((*EVALUATION_STAFF, "rider"), ok=Shown("explain-lines")),
        "the world's rider: in the platform's and the station's sight, and their own",
    ),
    Case("GET", "/my/evaluation", lambda w: "/my/evaluation", _only(RIDER, ok=Shown("my-months"))),
    Case("GET", "/feedback", lambda w: "/feedback", _only(RIDER, ok=Shown("feedback-form"))),
    Case("POST", "/feedback", lambda w: "/feedback", _only(RIDER, ok=INVALID), "nothing written"),
    Case(
        "POST",
        "/feedback/{feedback_id}/rating",
        lambda w: f"/feedback/{MISSING_ID}/rating",
        _only(RIDER, ok=MISSING),
    ),
    Case("GET", "/feedback/desk", lambda w: "/feedback/desk", _only(VOICE, ok=Shown("feedback-desk"))),
    Case("GET", "/feedback/desk/{feedback_id}", lambda w: f"/feedback/desk/{MISSING_ID}", _only(VOICE, ok=MISSING)),
    Case(
        "POST",
        "/feedback/desk/{feedback_id}/answer",
        lambda w: f"/feedback/desk/{MISSING_ID}/answer",
        _only(VOICE, ok=MISSING),
    ),
    Case(
        "POST",
        "/feedback/desk/{feedback_id}/assign",
        lambda w: f"/feedback/desk/{MISSING_ID}/assign",
        _only(VOICE, ok=MISSING),
    ),
    Case("GET", "/visits", lambda w: "/visits", _only((*VOICE, "station_manager"), ok=Shown("visits"))),
    Case("POST", "/visits", lambda w: "/visits", _only(VOICE, ok=INVALID), "no date"),
    Case(
        "POST",
        "/visits/actions/{action_id}/done",
        lambda w: f"/visits/actions/{MISSING_ID}/done",
        _only(VOICE, ok=MISSING),
    ),
    Case("GET", "/voice/satisfaction", lambda w: "/voice/satisfaction", _only(DESK, ok=Shown("satisfaction"))),
    Case("GET", "/leaflets", lambda w: "/leaflets", _only(RIDER, ok=Shown("my-leaflets"))),
    Case("POST", "/leaflets", lambda w: "/leaflets", _only(RIDER, ok=INVALID), "no count, no place"),
    Case("GET", "/leaflets/overview", lambda w: "/leaflets/overview", _only(FIGURES, ok=Shown("leaflets-map"))),
    Case(
        "GET",
        "/admin/leaflets",
        lambda w: "/admin/leaflets",
        _only(("admin", "station_manager"), ok=Shown("campaigns")),
    ),
    Case(
        "POST",
        "/admin/leaflets/campaigns",
        lambda w: "/admin/leaflets/campaigns",
        _only(ADMIN, ok=INVALID),
        "an empty campaign",
    ),
    Case(
        "POST",
        "/admin/leaflets/stock",
        lambda w: "/admin/leaflets/stock",
        _only(("admin", "station_manager"), ok=INVALID),
        "an empty stock form",
    ),
    Case(
        "GET",
        "/my/evaluation/{period}",
        lambda w: f"/my/evaluation/{w.period}",
        _only(RIDER, ok=Shown("explain-lines")),
    ),
    # --- last: the rows that change what the ones above read
    Case(
        "POST",
        "/duty/devices/{device_id}/remove",
        lambda w: f"/duty/devices/{w.device_id}/remove",
        _only(RIDER, ok=SeeOther(to=r"/duty\?done=device-removed", changes=True)),
        "the rider's own device: removed (the rows before it are refused and leave it)",
    ),
    Case(
        "POST",
        "/logout",
        lambda w: "/logout",
        _everyone(SeeOther(to="/login", changes=True), anonymous=SeeOther(to="/login")),
        "takes no form; ends the session (its row, audited)",
    ),
    Case(
        "POST",
        "/account/sign-out-everywhere",
        lambda w: "/account/sign-out-everywhere",
        _everyone(SeeOther(to=r"/login\?done=everywhere", changes=True)),
        "ends every session of the user: last, from a browser of its own",
        fresh=True,
    ),
]


# --- the routes ---------------------------------------------------------------------------------------


def _routes(app: FastAPI) -> dict[tuple[str, str], bool | None]:
    """(method, path) → include_in_schema, for every route of the app outside the API, Open311, static
    files and the API's docs (whether it is in the OpenAPI document or not: a page that forgot
    include_in_schema=False is still a page)."""
    found: dict[tuple[str, str], bool | None] = {}
    for route in iter_route_contexts(app.routes):
        path = route.path
        if path is None or path.startswith(NOT_PAGE_PREFIXES):
            continue
        for method in route.methods or ():
            if method != "HEAD":
                found[(method, path)] = route.include_in_schema
    return found


def test_every_page_route_has_an_entry(app: FastAPI) -> None:
    routes = _routes(app)
    assert set(routes) >= NOT_PAGES, "NOT_PAGES names routes the app no longer has"
    pages = set(routes) - NOT_PAGES
    covered = {(c.method, c.path) for c in CASES}
    assert pages - covered == set(), "page routes without an access-matrix entry: add them to CASES"
    assert covered - pages == set(), "entries for page routes the app no longer has"
    assert [r for r in pages if routes[r] is not False] == [], "pages are not part of the API's OpenAPI document"
    for case in CASES:
        assert set(case.expect) == {*ROLES, ANON}, f"{case.method} {case.path} must name every role"


# --- the matrix -----------------------------------------------------------------------------------------


def _world(api: Api) -> World:
    clue_id = api.report("rider")
    api.ok("dispatcher", clue_id, "verify")
    api.ok("dispatcher", clue_id, "dispatch", {"assignee": "police"})
    admin, dispatcher, rider = api.auth("admin"), api.auth("dispatcher"), api.auth("rider")
    users = api.client.get("/api/v1/admin/users", params={"q": "police2"}, headers=admin).json()["items"]
    key = api.client.post("/api/v1/admin/api-keys", json={"name": "matrix"}, headers=admin)
    assert key.status_code == 201, key.text
    now = utcnow()
    task_body = {
        "title": "matrix",
        "starts_at": now.isoformat(),
        "ends_at": (now + timedelta(hours=2)).isoformat(),
        "checkpoints": [{"lat": CENTER_LAT, "lon": CENTER_LON, "radius_m": 100}],
        "open_to_all": True,
    }
    task = api.client.post("/api/v1/tasks", json=task_body, headers=dispatcher)
    assert task.status_code == 201, task.text
    rule_body = {"name": "matrix", "area_kind": "grid", "area_code": "jinding-w"}
    rule = api.client.post("/api/v1/task-rules", json=rule_body, headers=dispatcher)
    assert rule.status_code == 201, rule.text
    course = {"code": "world", "title": "世界课", "questions_per_quiz": 1}
    assert api.client.post("/api/v1/courses", json=course, headers=admin).status_code == 201
    bank = {"questions": [{"text": "问", "options": ["是", "否"], "correct": [0]}]}
    assert api.client.post("/api/v1/courses/world/questions", json=bank, headers=admin).status_code == 201
    link = api.client.post("/api/v1/join-links", json={"station": "mt-jinding"}, headers=admin)
    spare = api.client.post("/api/v1/join-links", json={"station": "mt-jinding"}, headers=admin)
    assert link.status_code == spare.status_code == 201, link.text
    period = (utcnow().astimezone(SHANGHAI).replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    assert api.client.post(f"/api/v1/evaluations/{period}/runs", headers=admin).status_code == 201
    world = World(
        clue_id=clue_id,
        user_id=users[0]["id"],
        key_id=key.json()["id"],
        task_id=task.json()["task"]["id"],
        rule_id=rule.json()["id"],
        rider_id=api.client.get("/api/v1/me", headers=rider).json()["id"],
        link_id=spare.json()["id"],
        join_code=link.json()["code"],
        period=period,
    )
    device = api.client.post("/api/v1/me/devices", json={"device_id": world.device_id}, headers=rider)
    assert device.status_code in (200, 201), device.text
    return world


@cache
def _dump_sql(dialect: str) -> str:
    """One statement that reads every row of every table as (table, JSON text of the row)."""
    tables = [*Base.metadata.sorted_tables]
    as_json = func.json_array
    if dialect == "postgresql":
        tables += POSTGRESQL_ONLY.sorted_tables
        as_json = func.json_build_array
    rows = union_all(*(select(literal_column(f"'{t.name}'"), cast(as_json(*t.columns), Text)) for t in tables))
    return str(rows.compile(dialect=postgresql.dialect() if dialect == "postgresql" else sqlite.dialect()))


def _state(engine: Engine) -> dict[str, list[str]]:
    """Every row of every table: what a refused request must leave as it was."""
    state: dict[str, list[str]] = {}
    with engine.connect() as conn:  # closed at once: on SQLite a transaction holds the write lock
        for name, row in conn.exec_driver_sql(_dump_sql(engine.dialect.name)):
            state.setdefault(name, []).append(row)
    return {name: sorted(found) for name, found in state.items()}


AUDIT_ACTION = [c.name for c in AuditEntry.__table__.columns].index("action")


def _unexpected(before: dict[str, list[str]], after: dict[str, list[str]], expected: Outcome) -> list[str]:
    """The changes between two states that `expected` does not allow."""
    if expected.changes:
        return []
    found = []
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name, []), after.get(name, [])
        if old == new:
            continue
        if name == "audit_log" and set(old) <= set(new):
            added = sorted(json.loads(row)[AUDIT_ACTION] for row in set(new) - set(old))
            if not set(added) <= set(expected.audits):
                found.append(f"audit_log gained {added}")
        else:
            found.append(name)
    return found


def _anonymous(app: FastAPI) -> Browser:
    """A browser without a login; it has the login form's CSRF token (which logs nobody in)."""
    client = TestClient(app, headers={"Accept-Language": "en"})
    return Browser(client=client, csrf=form_csrf(client.get("/login").text))


def _send(user: Browser, case: Case, url: str, *, csrf: bool) -> Response:
    if case.method == "GET":
        return user.client.get(url, follow_redirects=False)
    assert case.method == "POST", case
    data = {**case.form, "csrf_token": user.csrf} if csrf else dict(case.form)
    files = {"file": ("empty.csv", b"", "text/csv")} if case.files else None
    return user.client.post(url, data=data, files=files, follow_redirects=False)


def _without_token(case: Case, role: str) -> Outcome:
    """A form sent without the CSRF token: refused for a logged-in session before anything is read; the
    login form refuses it too; without a login, the other forms send the visitor to the login page."""
    if case.path == "/login":
        return FormError(403)
    if case.path == "/join/{code}":
        return FORBIDDEN
    return case.expect[ANON] if role == ANON else FORBIDDEN


def _describe(res: Response) -> str:
    kind = "error page" if _error_page(res) else "form error" if _error_message(res) else "page"
    where = res.headers.get("location") or res.headers.get("hx-redirect") or ""
    detail = re.search(r'data-testid="(?:error|page-message)-detail">([^<]*)<', res.text)
    said = f" ({detail.group(1)})" if detail else ""
    return f"{res.status_code} {kind}{said} {where}".strip()


@pytest.mark.one_database("sqlite", why="who may open each page is decided in Python, the same over both databases")
def test_page_access_matrix(app: FastAPI, api: Api, browser: Callable[[str], Browser], engine: Engine) -> None:
    """Each role (and no login) in turn, every entry of CASES in order: the outcome, and what changed."""
    world = _world(api)
    wrong: list[str] = []
    for role in [*ROLES, ANON]:
        user = _anonymous(app) if role == ANON else browser(role)  # logged in before the first state is read
        state = _state(engine)
        for case in CASES:
            url = case.url(world)
            path = url.split("?")[0]
            if case.fresh and role != ANON:
                user = browser(role)
                state = _state(engine)
            tries = [(True, case.expect[role])]
            if case.method == "POST" and case.expect[role] != FORBIDDEN:
                # Where the token is what stands between the form and its effect, it is tried without it first.
                tries.insert(0, (False, _without_token(case, role)))
            for csrf, expected in tries:
                res = _send(user, case, url, csrf=csrf)
                label = f"{role}: {case.method} {url}{'' if csrf or case.method == 'GET' else ' (no CSRF token)'}"
                problem = expected.wrong(res, path)
                if problem is not None:
                    wrong.append(f"{label}: {_describe(res)}, want {problem}")
                after = _state(engine)
                changed = _unexpected(state, after, expected)
                if changed:
                    wrong.append(f"{label}: changed {', '.join(changed)}")
                state = after
    assert not wrong, "\n".join(wrong)
