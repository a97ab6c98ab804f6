"""Who may call what: every /api/v1 route × every role (and no login), plus the object-level rules.

The table below is the design in policy.py written out by hand. Routes are enumerated from the app,
so a new route without an entry here fails `test_every_api_route_has_an_entry`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.infra.clock import utcnow
from riderwatch.models import AuditEntry
from tests.api.helpers import Api, drive
from tests.factories import CENTER_LAT, CENTER_LON, PASSWORD, image_bytes, square

ROLES = ["admin", "dispatcher", "police", "grid_staff", "patrol", "station_manager", "platform", "rider"]
ANON = "anonymous"
OK, UNAUTH, FORBIDDEN, INVISIBLE = "ok", 401, 403, 404
SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass
class World:
    """What the requests in the table point at: a clue by `rider`, dispatched to `police`, with a photo;
    the user `police2` (whom admin rows edit), an Open311 key (which the admin row revokes), a patrol task
    open to all riders and a task rule."""

    clue_id: int
    user_id: int = 0
    api_key_id: int = 0
    task_id: int = 0
    rule_id: int = 0
    rider_id: int = 0
    link_id: int = 0
    routing_rule_id: int = 0
    alert_id: int = 0  # an alert to the station's riders (rider receives it)
    channel_id: int = 0  # the police's duty group chat, with a test message waiting to be sent
    delivery_id: int = 0
    reward_id: int = 0  # a reward of 1 point; rider has 5 points and a redemption waiting (redemption_id)
    redemption_id: int = 0
    period: str = ""  # the last month, scored


@dataclass(frozen=True)
class Case:
    method: str
    path: str  # the route's path template, as the app declares it
    request: Callable[[World], tuple[str, dict[str, Any]]]  # → (url, httpx keyword arguments)
    expect: dict[str, Any]  # role (or ANON) → OK / 401 / 403 / 404
    note: str = ""


def _everyone(outcome: Any, **overrides: Any) -> dict[str, Any]:
    table = dict.fromkeys(ROLES, outcome)
    table[ANON] = UNAUTH
    table.update(overrides)
    return table


def _only(*roles: str, others: Any = FORBIDDEN, **overrides: Any) -> dict[str, Any]:
    table = _everyone(others)
    table.update(dict.fromkeys(roles, OK))
    table.update(overrides)
    return table


# Who can see the world's clue: dispatchers and admins all, its assignee, its reporter.
SEES_CLUE = {"dispatcher": OK, "admin": OK, "police": OK, "rider": OK}
BLIND = {"grid_staff": INVISIBLE, "patrol": INVISIBLE, "station_manager": INVISIBLE, "platform": INVISIBLE}
NEW_CATEGORY = {
    "code": "stray_dogs",
    "name_zh": "流浪犬",
    "name_en": "Stray dogs",
    "group": "hazard",
    "handler_role": "grid_staff",
}

TASK_READERS = ("dispatcher", "admin", "station_manager", "police", "grid_staff", "patrol")
DESK = ("dispatcher", "admin")
STAFF = ("admin", "dispatcher", "station_manager", "police", "grid_staff", "patrol")  # may keep their own webhooks
RIDER_LIST = "姓名,手机号,站点\n张伟,13800138001,mt-jinding\n".encode()
QUESTION_BANK = "题目,选项A,选项B,答案\n遇到可疑人员应？,报告,不管,A\n".encode()
# For each kind of the district: a code the world has, and a new row an administrator may add.
ORG_NEW: dict[str, tuple[str, dict[str, Any]]] = {
    "jurisdictions": ("zhenhai", {"code": "j2", "name": "二号派出所"}),
    "communities": (
        "jinding",
        {
            "code": "c2",
            "name": "二号社区",
            "jurisdiction": "zhenhai",
            "boundary": square(CENTER_LAT + 0.05, CENTER_LON, 0.01),
        },
    ),
    "grids": (
        "jinding-w",
        {
            "code": "g2",
            "name": "二号网格",
            "community": "jinding",
            "boundary": square(CENTER_LAT, CENTER_LON + 0.005, 0.004),
        },
    ),
    "zones": ("world-zone", {"code": "z2", "name": "二号商圈", "boundary": square(CENTER_LAT, CENTER_LON, 0.002)}),
    "stations": ("mt-jinding", {"code": "s2", "name": "二号站", "platform": "meituan"}),
    "platforms": ("meituan", {"code": "p2", "name": "二号平台"}),
    "patrol-units": ("patrol-1", {"code": "u2", "name": "二号巡防队", "jurisdiction": "zhenhai"}),
}


def _org_cases(kind: str, new: tuple[str, dict[str, Any]]) -> list[Case]:
    code, body = new
    readers = ("admin", "dispatcher")
    return [
        Case("GET", f"/api/v1/org/{kind}", lambda w: (f"/api/v1/org/{kind}", {}), _only(*readers)),
        Case("GET", f"/api/v1/org/{kind}/{{code}}", lambda w: (f"/api/v1/org/{kind}/{code}", {}), _only(*readers)),
        Case("POST", f"/api/v1/org/{kind}", lambda w: (f"/api/v1/org/{kind}", {"json": body}), _only("admin")),
        Case(
            "PATCH",
            f"/api/v1/org/{kind}/{{code}}",
            lambda w: (f"/api/v1/org/{kind}/{code}", {"json": {"name_en": "Matrix"}}),
            _only("admin"),
        ),
        *(
            [
                Case(
                    "POST",
                    f"/api/v1/org/{kind}/import",
                    lambda w: (f"/api/v1/org/{kind}/import", _area_file(code, body)),
                    _only("admin"),
                    "the file's one area exists: a dry run previews its update",
                )
            ]
            if "boundary" in body or kind == "jurisdictions"
            else []
        ),
    ]


def _area_file(code: str, body: dict[str, Any]) -> dict[str, Any]:
    boundary = body.get("boundary") or square(CENTER_LAT, CENTER_LON, 0.1)
    feature = {"type": "Feature", "geometry": boundary, "properties": {"code": code, "name": body["name"]}}
    data = json.dumps({"type": "FeatureCollection", "features": [feature]}).encode()
    return {"files": {"file": ("a.geojson", data, "application/geo+json")}, "data": {"dry_run": "true"}}


CASES: list[Case] = [
    Case(
        "POST",
        "/api/v1/auth/token",
        lambda w: ("/api/v1/auth/token", {"data": {"username": "rider", "password": PASSWORD}}),
        _everyone(OK, anonymous=OK),
        "logging in needs no login",
    ),
    Case("GET", "/api/v1/me", lambda w: ("/api/v1/me", {}), _everyone(OK)),
    Case(
        "POST",
        "/api/v1/clues",
        lambda w: ("/api/v1/clues", {"json": _clue()}),
        _only("rider", "dispatcher"),
    ),
    Case(
        "GET",
        "/api/v1/clues",
        lambda w: ("/api/v1/clues", {}),
        _only("rider", "dispatcher", "admin", "police", "grid_staff", "patrol"),
    ),
    Case(
        "GET",
        "/api/v1/riders",
        lambda w: ("/api/v1/riders", {}),
        _only("admin", "dispatcher", "station_manager", "platform"),
    ),
    Case(
        "GET",
        "/api/v1/riders/{rider_id}",
        lambda w: (f"/api/v1/riders/{w.rider_id}", {}),
        _only("admin", "dispatcher", "station_manager", "platform"),
        "the district's rider: of the station manager's station and of the platform",
    ),
    Case(
        "POST",
        "/api/v1/riders/{rider_id}/status",
        lambda w: (f"/api/v1/riders/{w.rider_id}/status", {"json": {"status": "active"}}),
        _only("admin", "station_manager"),
        "active already: nothing changes",
    ),
    Case("GET", "/api/v1/join-links", lambda w: ("/api/v1/join-links", {}), _only("admin", "station_manager")),
    Case(
        "POST",
        "/api/v1/join-links",
        lambda w: ("/api/v1/join-links", {"json": {"station": "mt-jinding"}}),
        _only("admin", "station_manager"),
    ),
    Case(
        "GET",
        "/api/v1/join-links/{link_id}/qr.svg",
        lambda w: (f"/api/v1/join-links/{w.link_id}/qr.svg", {}),
        _only("admin", "station_manager"),
    ),
    Case(
        "POST",
        "/api/v1/join-links/{link_id}/withdraw",
        lambda w: (f"/api/v1/join-links/{w.link_id}/withdraw", {}),
        _only("admin", "station_manager"),
    ),
    Case(
        "POST",
        "/api/v1/join/{code}",
        lambda w: (
            "/api/v1/join/no-such-code",
            {"json": {"name": "x", "phone": "13900139999", "password": "pw-long-enough", "agree": True}},
        ),
        _everyone(404, anonymous=404),
        "no login needed: an unknown code is answered the same to all",
    ),
    Case("GET", "/api/v1/routing-rules", lambda w: ("/api/v1/routing-rules", {}), _only("admin", "dispatcher")),
    Case(
        "POST",
        "/api/v1/routing-rules",
        lambda w: ("/api/v1/routing-rules", {"json": {"party": "police", "category": "theft"}}),
        _only("admin"),
    ),
    Case(
        "PATCH",
        "/api/v1/routing-rules/{rule_id}",
        lambda w: (f"/api/v1/routing-rules/{w.routing_rule_id}", {"json": {"active": True}}),
        _only("admin"),
    ),
    Case(
        "POST",
        "/api/v1/routing/test",
        lambda w: ("/api/v1/routing/test", {"json": {"category": "theft", "lat": CENTER_LAT, "lon": CENTER_LON}}),
        _only("admin", "dispatcher"),
    ),
    Case("GET", "/api/v1/courses", lambda w: ("/api/v1/courses", {}), _everyone(OK)),
    Case(
        "POST",
        "/api/v1/courses",
        lambda w: ("/api/v1/courses", {"json": {"code": "matrix", "title": "矩阵课"}}),
        _only("admin"),
    ),
    Case("GET", "/api/v1/courses/{code}", lambda w: ("/api/v1/courses/world", {}), _everyone(OK)),
    Case(
        "PATCH",
        "/api/v1/courses/{code}",
        lambda w: ("/api/v1/courses/world", {"json": {"title_en": "World"}}),
        _only("admin"),
    ),
    Case(
        "POST",
        "/api/v1/courses/{code}/questions",
        lambda w: (
            "/api/v1/courses/world/questions",
            {"json": {"questions": [{"text": "q", "options": ["a", "b"], "correct": [0]}]}},
        ),
        _only("admin"),
    ),
    Case("GET", "/api/v1/courses/{code}/questions", lambda w: ("/api/v1/courses/world/questions", {}), _only("admin")),
    Case(
        "PATCH",
        "/api/v1/courses/{code}/questions/{question_id}",
        lambda w: ("/api/v1/courses/world/questions/999999", {"json": {"active": False}}),
        _only("admin", admin=INVISIBLE),
        "no such question: the administrator is told so, the others are refused first",
    ),
    Case(
        "POST",
        "/api/v1/courses/{code}/questions/import",
        lambda w: ("/api/v1/courses/world/questions/import", {"files": {"file": ("q.csv", QUESTION_BANK, "text/csv")}}),
        _only("admin"),
    ),
    Case(
        "POST",
        "/api/v1/courses/{code}/materials",
        lambda w: (
            "/api/v1/courses/world/materials",
            {"files": {"file": ("sign.png", image_bytes("PNG"), "image/png")}, "data": {"title": "标志"}},
        ),
        _only("admin"),
    ),
    Case(
        "GET",
        "/api/v1/courses/{code}/materials/{material_id}",
        lambda w: ("/api/v1/courses/world/materials/999999", {}),
        _everyone(INVISIBLE),
        "no such file: nobody's, so not found for whoever may read the courses",
    ),
    Case(
        "PATCH",
        "/api/v1/courses/{code}/materials/{material_id}",
        lambda w: ("/api/v1/courses/world/materials/999999", {"json": {"active": False}}),
        _only("admin", admin=INVISIBLE),
    ),
    Case("POST", "/api/v1/courses/{code}/quiz", lambda w: ("/api/v1/courses/world/quiz", {}), _only("rider")),
    Case(
        "POST",
        "/api/v1/quiz-attempts/{attempt_id}",
        lambda w: ("/api/v1/quiz-attempts/999999", {"json": {"answers": {}}}),
        _only("rider", rider=INVISIBLE),
        "nobody's quiz: the rider is told it does not exist",
    ),
    Case(
        "GET",
        "/api/v1/training/completion",
        lambda w: ("/api/v1/training/completion", {}),
        _only("admin", "dispatcher", "station_manager", "platform"),
    ),
    Case("POST", "/api/v1/alerts/preview", lambda w: ("/api/v1/alerts/preview", {"json": _alert()}), _only(*DESK)),
    Case("GET", "/api/v1/alerts", lambda w: ("/api/v1/alerts", {}), _only(*DESK, "rider")),
    Case(
        "GET",
        "/api/v1/alerts/{alert_id}",
        lambda w: (f"/api/v1/alerts/{w.alert_id}", {}),
        _only(*DESK, "rider"),
        "the rider received it (the station's alert)",
    ),
    Case(
        "POST",
        "/api/v1/alerts/{alert_id}/ack",
        lambda w: (f"/api/v1/alerts/{w.alert_id}/ack", {}),
        _only("rider"),
    ),
    Case(
        "POST",
        "/api/v1/alerts/{alert_id}/update",
        lambda w: (f"/api/v1/alerts/{w.alert_id}/update", {"json": {"headline": "已找到"}}),
        _only(*DESK),
    ),
    Case(
        "POST",
        "/api/v1/alerts/{alert_id}/cancel",
        lambda w: ("/api/v1/alerts/999999/cancel", {"json": {}}),
        _only(*DESK, admin=INVISIBLE, dispatcher=INVISIBLE),
    ),
    Case(
        "POST",
        "/api/v1/alerts/{alert_id}/approve",
        lambda w: (f"/api/v1/alerts/{w.alert_id}/approve", {}),
        _only(*DESK, dispatcher=409, admin=409),
        "the world's alert is not waiting for approval",
    ),
    Case("POST", "/api/v1/alerts", lambda w: ("/api/v1/alerts", {"json": _alert()}), _only(*DESK)),
    Case("GET", "/api/v1/me/notices", lambda w: ("/api/v1/me/notices", {}), _everyone(OK)),
    Case("GET", "/api/v1/webhooks", lambda w: ("/api/v1/webhooks", {}), _only(*STAFF)),
    Case("POST", "/api/v1/webhooks", lambda w: ("/api/v1/webhooks", {"json": _channel(None)}), _only(*STAFF)),
    Case(
        "GET",
        "/api/v1/webhooks/{channel_id}",
        lambda w: (f"/api/v1/webhooks/{w.channel_id}", {}),
        _only("admin", others=INVISIBLE),
        "a party's channel: administrators only; others do not learn it exists",
    ),
    Case(
        "PATCH",
        "/api/v1/webhooks/{channel_id}",
        lambda w: (f"/api/v1/webhooks/{w.channel_id}", {"json": {"name": "改名"}}),
        _only("admin", others=INVISIBLE),
    ),
    Case(
        "POST",
        "/api/v1/webhooks/{channel_id}/test",
        lambda w: (f"/api/v1/webhooks/{w.channel_id}/test", {}),
        _only("admin", others=INVISIBLE),
    ),
    Case(
        "GET",
        "/api/v1/webhooks/{channel_id}/deliveries",
        lambda w: (f"/api/v1/webhooks/{w.channel_id}/deliveries", {}),
        _only("admin", others=INVISIBLE),
    ),
    Case(
        "POST",
        "/api/v1/webhooks/deliveries/{delivery_id}/retry",
        lambda w: (f"/api/v1/webhooks/deliveries/{w.delivery_id}/retry", {}),
        _only(others=INVISIBLE, admin=409),
        "only a given-up delivery is sent again: the world's is waiting (409 for the administrator)",
    ),
    Case("POST", "/api/v1/me/notices/read", lambda w: ("/api/v1/me/notices/read", {"json": {}}), _everyone(OK)),
    Case("GET", "/api/v1/stats", lambda w: ("/api/v1/stats", {}), _only("dispatcher", "admin", "station_manager")),
    Case(
        "GET",
        "/api/v1/clues/export",
        lambda w: ("/api/v1/clues/export", {"params": {"format": "csv"}}),
        _only("rider", "dispatcher", "admin", "police", "grid_staff", "patrol"),
    ),
    Case(
        "GET",
        "/api/v1/clues/{clue_id}",
        lambda w: (f"/api/v1/clues/{w.clue_id}", {}),
        _everyone(OK, **SEES_CLUE, **BLIND),
    ),
    Case(
        "POST",
        "/api/v1/clues/{clue_id}/actions/{action}",
        lambda w: (f"/api/v1/clues/{w.clue_id}/actions/accept", {"json": {}}),
        _everyone(FORBIDDEN, police=OK, **BLIND),
        "accept: only the assignee; those who cannot see the clue get 404",
    ),
    Case(
        "GET",
        "/api/v1/clues/{clue_id}/duplicates",
        lambda w: (f"/api/v1/clues/{w.clue_id}/duplicates", {}),
        _only("dispatcher"),
    ),
    Case(
        "GET",
        "/api/v1/clues/{clue_id}/routing",
        lambda w: (f"/api/v1/clues/{w.clue_id}/routing", {}),
        _only("dispatcher"),
    ),
    Case(
        "GET",
        "/api/v1/clues/{clue_id}/photos/{position}",
        lambda w: (f"/api/v1/clues/{w.clue_id}/photos/0", {}),
        _everyone(OK, **SEES_CLUE, **BLIND),
    ),
    Case(
        "GET",
        "/api/v1/clues/{clue_id}/photos/{position}",
        lambda w: (f"/api/v1/clues/{w.clue_id}/photos/0", {"params": {"original": "true"}}),
        _everyone(FORBIDDEN, dispatcher=OK, **BLIND),
        "the original (with its metadata) is for dispatchers only",
    ),
    Case("GET", "/api/v1/categories", lambda w: ("/api/v1/categories", {}), _everyone(OK)),
    Case(
        "POST",
        "/api/v1/categories",
        lambda w: ("/api/v1/categories", {"json": NEW_CATEGORY}),
        _only("admin"),
    ),
    Case(
        "PATCH",
        "/api/v1/categories/{code}",
        lambda w: ("/api/v1/categories/fire_hazard", {"json": {"sort_order": 7}}),
        _only("admin"),
    ),
    Case("GET", "/api/v1/handlers", lambda w: ("/api/v1/handlers", {}), _only("dispatcher", "admin")),
    Case("GET", "/api/v1/areas", lambda w: ("/api/v1/areas", {}), _everyone(OK)),
    # Positions: the rider's own settings and data; bulk ingest by riders and platforms; tracks and
    # the live map for dispatchers only; aggregate coverage for everyone who plans or runs patrols.
    Case(
        "PUT",
        "/api/v1/me/location-consent",
        lambda w: ("/api/v1/me/location-consent", {"json": {"granted": False}}),
        _only("rider"),
    ),
    Case("PUT", "/api/v1/me/duty", lambda w: ("/api/v1/me/duty", {"json": {"on_duty": False}}), _only("rider")),
    Case(
        "POST",
        "/api/v1/me/devices",
        lambda w: ("/api/v1/me/devices", {"json": {"device_id": "matrix-phone"}}),
        _only("rider"),
    ),
    Case(
        "DELETE",
        "/api/v1/me/devices/{device_id}",
        lambda w: ("/api/v1/me/devices/matrix-phone", {}),
        _only("rider"),
        "the rider's device registered by the row above",
    ),
    Case("GET", "/api/v1/me/positions", lambda w: ("/api/v1/me/positions", {}), _only("rider")),
    Case(
        "POST",
        "/api/v1/tracking/pings",
        lambda w: ("/api/v1/tracking/pings", {"json": {"pings": []}}),
        _only("rider", "platform"),
    ),
    Case(
        "GET",
        "/api/v1/riders/{username}/track",
        lambda w: (
            "/api/v1/riders/rider/track",
            {"params": {"from": "2026-11-28T00:00:00+08:00", "to": "2026-11-29T00:00:00+08:00"}},
        ),
        _only("dispatcher"),
    ),
    Case("GET", "/api/v1/tracking/live", lambda w: ("/api/v1/tracking/live", {}), _only("dispatcher")),
    Case(
        "GET",
        "/api/v1/tracking/refusals",
        lambda w: ("/api/v1/tracking/refusals", {}),
        _only("dispatcher"),
        "refused points per rider: the desk helps a rider whose phone sends off duty",
    ),
    Case(
        "POST",
        "/api/v1/coverage/query",
        lambda w: (
            "/api/v1/coverage/query",
            {
                "json": {
                    "area": {"type": "Circle", "center": [119.01, 25.43], "radius_m": 800},
                    "from": "2026-11-28T00:00:00+08:00",
                    "to": "2026-11-29T00:00:00+08:00",
                }
            },
        ),
        _only("dispatcher", "admin", "police", "grid_staff", "patrol", "station_manager"),
    ),
    # Hotspots of clues show where and when crimes are reported: the police side only.
    Case(
        "POST",
        "/api/v1/hotspots/query",
        lambda w: (
            "/api/v1/hotspots/query",
            {
                "json": {
                    "area": {"type": "Circle", "center": [119.01, 25.43], "radius_m": 800},
                    "from": "2026-11-28T00:00:00+08:00",
                    "to": "2026-11-29T00:00:00+08:00",
                }
            },
        ),
        _only("dispatcher", "admin", "police", "grid_staff", "patrol"),
    ),
    Case(
        "POST",
        "/api/v1/coverage/gaps",
        lambda w: (
            "/api/v1/coverage/gaps",
            {
                "json": {
                    "area": {"type": "Circle", "center": [119.01, 25.43], "radius_m": 800},
                    "from": "2026-11-28T00:00:00+08:00",
                    "to": "2026-11-29T00:00:00+08:00",
                }
            },
        ),
        _only("dispatcher", "admin", "police", "grid_staff", "patrol"),
    ),
    # Incidents (the police's recorded cases): the command centre imports them; they are read as hotspots are.
    Case(
        "POST",
        "/api/v1/incidents",
        lambda w: ("/api/v1/incidents", {"json": {"incidents": [_incident("matrix-json")]}}),
        _only("dispatcher", "admin"),
        "the second importer finds the case already present: still 200",
    ),
    Case(
        "POST",
        "/api/v1/incidents/import",
        lambda w: (
            "/api/v1/incidents/import",
            {"files": {"file": ("cases.csv", _incident_csv("matrix-csv"), "text/csv")}},
        ),
        _only("dispatcher", "admin"),
    ),
    Case(
        "GET",
        "/api/v1/incidents",
        lambda w: ("/api/v1/incidents", {"params": {"category": "theft", "limit": 10}}),
        _only("dispatcher", "admin", "police", "grid_staff", "patrol"),
    ),
    # Patrol tasks: the command centre publishes and manages them; those who plan patrols read the
    # board; riders see the tasks they are invited to.
    Case(
        "POST",
        "/api/v1/tasks",
        lambda w: ("/api/v1/tasks", {"json": _task()}),
        _only("dispatcher"),
    ),
    Case("GET", "/api/v1/tasks", lambda w: ("/api/v1/tasks", {}), _only(*TASK_READERS)),
    Case("GET", "/api/v1/tasks/map", lambda w: ("/api/v1/tasks/map", {}), _only(*TASK_READERS)),
    Case("GET", "/api/v1/tasks/{task_id}", lambda w: (f"/api/v1/tasks/{w.task_id}", {}), _only(*TASK_READERS)),
    Case(
        "POST",
        "/api/v1/tasks/{task_id}/verify",
        lambda w: (f"/api/v1/tasks/{w.task_id}/verify", {}),
        _only("dispatcher"),
    ),
    Case(
        "POST",
        "/api/v1/tasks/{task_id}/cancel",
        lambda w: (f"/api/v1/tasks/{w.task_id}/cancel", {}),
        _only("dispatcher"),
        "after the rows that read the task",
    ),
    Case("GET", "/api/v1/task-rules", lambda w: ("/api/v1/task-rules", {}), _only(*TASK_READERS)),
    Case(
        "POST",
        "/api/v1/task-rules",
        lambda w: (
            "/api/v1/task-rules",
            {"json": {"name": "matrix", "area_kind": "community", "area_code": "jinding"}},
        ),
        _only("dispatcher"),
    ),
    Case(
        "PATCH",
        "/api/v1/task-rules/{rule_id}",
        lambda w: (f"/api/v1/task-rules/{w.rule_id}", {"json": {"active": True}}),
        _only("dispatcher"),
    ),
    Case(
        "POST",
        "/api/v1/task-rules/{rule_id}/run",
        lambda w: (f"/api/v1/task-rules/{w.rule_id}/run", {}),
        _only("dispatcher"),
    ),
    Case("GET", "/api/v1/me/tasks", lambda w: ("/api/v1/me/tasks", {}), _only("rider")),
    Case("GET", "/api/v1/me/tasks/{task_id}", lambda w: (f"/api/v1/me/tasks/{w.task_id}", {}), _only("rider")),
    # Administration: users, Open311 keys and the audit log are for admins alone.
    Case("GET", "/api/v1/admin/users", lambda w: ("/api/v1/admin/users", {}), _only("admin")),
    Case(
        "POST",
        "/api/v1/admin/users",
        lambda w: ("/api/v1/admin/users", {"json": {"username": "matrix-new", "role": "rider", "password": PASSWORD}}),
        _only("admin"),
    ),
    Case("GET", "/api/v1/admin/users/{user_id}", lambda w: (f"/api/v1/admin/users/{w.user_id}", {}), _only("admin")),
    Case(
        "PATCH",
        "/api/v1/admin/users/{user_id}",
        lambda w: (f"/api/v1/admin/users/{w.user_id}", {"json": {"display_name": "Matrix"}}),
        _only("admin"),
    ),
    Case(
        "PUT",
        "/api/v1/admin/users/{user_id}/active",
        lambda w: (f"/api/v1/admin/users/{w.user_id}/active", {"json": {"active": True}}),
        _only("admin"),
        "police2 is active already: nothing changes, nobody is logged out",
    ),
    Case(
        "POST",
        "/api/v1/admin/users/{user_id}/password",
        lambda w: (f"/api/v1/admin/users/{w.user_id}/password", {"json": {"password": PASSWORD}}),
        _only("admin"),
    ),
    Case("GET", "/api/v1/admin/api-keys", lambda w: ("/api/v1/admin/api-keys", {}), _only("admin")),
    Case(
        "POST",
        "/api/v1/admin/api-keys",
        lambda w: ("/api/v1/admin/api-keys", {"json": {"name": "matrix hotline"}}),
        _only("admin"),
    ),
    Case(
        "POST",
        "/api/v1/admin/api-keys/{key_id}/revoke",
        lambda w: (f"/api/v1/admin/api-keys/{w.api_key_id}/revoke", {}),
        _only("admin"),
    ),
    Case("GET", "/api/v1/admin/audit", lambda w: ("/api/v1/admin/audit", {}), _only("admin")),
    Case(
        "POST",
        "/api/v1/admin/users/{user_id}/one-time-code",
        lambda w: (f"/api/v1/admin/users/{w.user_id}/one-time-code", {}),
        _only("admin"),
    ),
    Case(
        "POST",
        "/api/v1/riders/import",
        lambda w: ("/api/v1/riders/import", {"files": {"file": ("r.csv", RIDER_LIST, "text/csv")}}),
        _only("admin", "station_manager"),
        "a station manager imports riders of their own station (the district's one)",
    ),
    *[case for kind, new in ORG_NEW.items() for case in _org_cases(kind, new)],
    Case(
        "PUT",
        "/api/v1/me/password",
        lambda w: ("/api/v1/me/password", {"json": {"current_password": "not-it", "new_password": "x" * 12}}),
        _everyone(422),
        "every user may try; the wrong current password is answered after the login check",
    ),
    Case(
        "POST",
        "/api/v1/me/sign-out-everywhere",
        lambda w: ("/api/v1/me/sign-out-everywhere", {}),
        _everyone(OK),
        "ends the caller's token too, so it comes last",
    ),
]


def _task() -> dict[str, Any]:
    from tests.factories import CENTER_LAT, CENTER_LON

    now = utcnow()
    return {
        "title": "matrix",
        "starts_at": now.isoformat(),
        "ends_at": (now + timedelta(hours=2)).isoformat(),
        "checkpoints": [{"lat": CENTER_LAT, "lon": CENTER_LON, "radius_m": 100}],
        "open_to_all": True,
    }


def _alert(**overrides: Any) -> dict[str, Any]:
    return {
        "event": "走失儿童",
        "headline": "金鼎社区走失一名儿童",
        "category": "Rescue",
        "urgency": "Immediate",
        "severity": "Moderate",
        "certainty": "Observed",
        "expires": (utcnow() + timedelta(hours=3)).isoformat(),
        "audience": "stations",
        "stations": ["mt-jinding"],
        **overrides,
    }


def _incident(ref: str) -> dict[str, Any]:
    from tests.factories import CENTER_LAT, CENTER_LON

    return {
        "source": "110",
        "external_ref": ref,
        "category": "theft",
        "lat": CENTER_LAT,
        "lon": CENTER_LON,
        "occurred_at": "2026-11-28T21:30:00+08:00",
    }


def _incident_csv(ref: str) -> bytes:
    row = _incident(ref)
    return (",".join(row) + "\n" + ",".join(str(v) for v in row.values()) + "\n").encode()


def _clue(**overrides: Any) -> dict[str, Any]:
    from tests.factories import clue_body

    return clue_body(**overrides)


def _api_routes(app: FastAPI) -> set[tuple[str, str]]:
    found = set()
    for route in iter_route_contexts(app.routes):
        path = route.path
        if path is None or not path.startswith("/api/v1"):
            continue
        for method in route.methods or ():
            if method != "HEAD":
                found.add((method, path))
    return found


POINTS_BOARD = ("rider", "dispatcher", "admin", "station_manager")
EVALUATION_READERS = ("admin", "dispatcher", "station_manager", "platform", "rider")
LEAFLET_READERS = ("rider", "admin", "dispatcher", "station_manager")
# First: the rows further down change accounts (passwords, sign-outs) that these rows log in as.
CASES[0:0] = [
    # Points: a rider's own; leaderboards for the team and its staff; rules, adjustments and the reward
    # desk for administrators.
    Case("GET", "/api/v1/me/points", lambda w: ("/api/v1/me/points", {}), _only("rider")),
    Case("PUT", "/api/v1/me/nickname", lambda w: ("/api/v1/me/nickname", {"json": {"nickname": ""}}), _only("rider")),
    Case("GET", "/api/v1/points/board", lambda w: ("/api/v1/points/board", {}), _only(*POINTS_BOARD)),
    Case("GET", "/api/v1/points/rules", lambda w: ("/api/v1/points/rules", {}), _only("admin")),
    Case(
        "POST",
        "/api/v1/points/rules",
        lambda w: ("/api/v1/points/rules", {"json": {"key": "alert_ack", "points": 2, "effective_from": "2999-01-01"}}),
        _only("admin"),
    ),
    Case(
        "POST",
        "/api/v1/points/adjustments",
        lambda w: ("/api/v1/points/adjustments", {"json": {"rider": "rider2", "points": 1, "note": "矩阵"}}),
        _only("admin"),
    ),
    Case(
        "GET", "/api/v1/riders/{rider_id}/points", lambda w: (f"/api/v1/riders/{w.rider_id}/points", {}), _only("admin")
    ),
    Case("GET", "/api/v1/rewards", lambda w: ("/api/v1/rewards", {}), _only(*POINTS_BOARD)),
    Case(
        "POST",
        "/api/v1/rewards",
        lambda w: ("/api/v1/rewards", {"json": {"name": "雨衣", "kind": "goods", "cost": 10}}),
        _only("admin"),
    ),
    Case(
        "PUT",
        "/api/v1/rewards/{reward_id}",
        lambda w: (f"/api/v1/rewards/{w.reward_id}", {"json": {"name": "矩阵奖品", "kind": "goods", "cost": 1}}),
        _only("admin"),
    ),
    Case(
        "POST",
        "/api/v1/rewards/{reward_id}/redeem",
        lambda w: (f"/api/v1/rewards/{w.reward_id}/redeem", {}),
        _only("rider"),
    ),
    Case("GET", "/api/v1/me/rewards", lambda w: ("/api/v1/me/rewards", {}), _only("rider")),
    Case("GET", "/api/v1/redemptions", lambda w: ("/api/v1/redemptions", {}), _only("admin")),
    Case(
        "POST",
        "/api/v1/redemptions/{redemption_id}/approve",
        lambda w: (f"/api/v1/redemptions/{w.redemption_id}/approve", {"json": {}}),
        _only("admin"),
    ),
    Case(
        "POST",
        "/api/v1/redemptions/{redemption_id}/reject",
        lambda w: (f"/api/v1/redemptions/{w.redemption_id}/reject", {"json": {"note": "矩阵"}}),
        _only("admin", admin=409),
        "the row above approved it",
    ),
    Case(
        "POST",
        "/api/v1/redemptions/{redemption_id}/cancel",
        lambda w: (f"/api/v1/redemptions/{w.redemption_id}/cancel", {}),
        _only("rider"),
    ),
    Case("GET", "/api/v1/cash-awards", lambda w: ("/api/v1/cash-awards", {}), _only("admin")),
    Case(
        "POST",
        "/api/v1/cash-awards",
        lambda w: ("/api/v1/cash-awards", {"json": {"clue_id": w.clue_id, "amount_yuan": 100, "reason": "矩阵"}}),
        _only("admin", admin=409),
        "the world's clue is not closed",
    ),
    Case(
        "POST",
        "/api/v1/cash-awards/{award_id}/approve",
        lambda w: (f"/api/v1/cash-awards/{MISSING}/approve", {}),
        _only("admin", admin=INVISIBLE),
    ),
    Case(
        "POST",
        "/api/v1/cash-awards/{award_id}/reject",
        lambda w: (f"/api/v1/cash-awards/{MISSING}/reject", {}),
        _only("admin", admin=INVISIBLE),
    ),
    Case(
        "POST",
        "/api/v1/cash-awards/pay",
        lambda w: ("/api/v1/cash-awards/pay", {"json": {"claim_code": "AAAA-BBBB-CCCC"}}),
        _only("admin", admin=INVISIBLE),
    ),
    # Leaflets: administrators run campaigns, stock for stations (a station manager their own), riders log.
    Case("GET", "/api/v1/leaflets/campaigns", lambda w: ("/api/v1/leaflets/campaigns", {}), _only(*LEAFLET_READERS)),
    Case(
        "POST",
        "/api/v1/leaflets/campaigns",
        lambda w: (
            "/api/v1/leaflets/campaigns",
            {"json": {"code": "matrix", "name": "矩阵", "starts_on": "2026-01-01"}},
        ),
        _only("admin"),
    ),
    Case(
        "POST",
        "/api/v1/leaflets/stock",
        lambda w: (
            "/api/v1/leaflets/stock",
            {"json": {"campaign": "world", "station": "mt-jinding", "kind": "issue", "count": 5}},
        ),
        _only("admin", "station_manager"),
    ),
    Case(
        "POST",
        "/api/v1/me/leaflets",
        lambda w: (
            "/api/v1/me/leaflets",
            {
                "json": {"campaign": "world", "count": 1, "lat": CENTER_LAT, "lon": CENTER_LON},
                "headers": {"Idempotency-Key": "matrix-leaflets"},
            },
        ),
        _only("rider"),
    ),
    Case("GET", "/api/v1/me/leaflets", lambda w: ("/api/v1/me/leaflets", {}), _only("rider")),
    Case(
        "GET",
        "/api/v1/leaflets/totals",
        lambda w: ("/api/v1/leaflets/totals", {}),
        _only("admin", "dispatcher", "station_manager"),
    ),
    # Riders' voice: riders speak; the police and the command centre answer; visits; satisfaction.
    Case(
        "POST",
        "/api/v1/me/feedback",
        lambda w: ("/api/v1/me/feedback", {"json": {"kind": "suggestion", "body": "矩阵"}}),
        _only("rider"),
    ),
    Case("GET", "/api/v1/me/feedback", lambda w: ("/api/v1/me/feedback", {}), _only("rider")),
    Case(
        "POST",
        "/api/v1/me/feedback/{feedback_id}/rating",
        lambda w: (f"/api/v1/me/feedback/{MISSING}/rating", {"json": {"rating": 5}}),
        _only("rider", rider=INVISIBLE),
    ),
    Case("GET", "/api/v1/feedback", lambda w: ("/api/v1/feedback", {}), _only("police", "dispatcher", "admin")),
    Case(
        "POST",
        "/api/v1/feedback/{feedback_id}/answer",
        lambda w: (f"/api/v1/feedback/{MISSING}/answer", {"json": {"answer": "矩阵"}}),
        _only("police", "dispatcher", "admin", police=INVISIBLE, dispatcher=INVISIBLE, admin=INVISIBLE),
    ),
    Case(
        "POST",
        "/api/v1/feedback/{feedback_id}/assign",
        lambda w: (f"/api/v1/feedback/{MISSING}/assign", {"json": {"officer": "police"}}),
        _only("police", "dispatcher", "admin", police=FORBIDDEN, dispatcher=INVISIBLE, admin=INVISIBLE),
    ),
    Case(
        "POST",
        "/api/v1/visits",
        lambda w: ("/api/v1/visits", {"json": {"kind": "visit", "held_on": "2026-11-01", "riders": ["rider"]}}),
        _only("police", "dispatcher", "admin"),
    ),
    Case(
        "GET",
        "/api/v1/visits",
        lambda w: ("/api/v1/visits", {}),
        _only("police", "dispatcher", "admin", "station_manager"),
    ),
    Case(
        "POST",
        "/api/v1/visit-actions/{action_id}/done",
        lambda w: (f"/api/v1/visit-actions/{MISSING}/done", {}),
        _only("police", "dispatcher", "admin", police=INVISIBLE, dispatcher=INVISIBLE, admin=INVISIBLE),
    ),
    Case(
        "GET", "/api/v1/voice/satisfaction", lambda w: ("/api/v1/voice/satisfaction", {}), _only("dispatcher", "admin")
    ),
    # The platforms' evaluation: administrators set it and score months; the results for each reader's riders.
    Case(
        "POST",
        "/api/v1/evaluation/ahp",
        lambda w: ("/api/v1/evaluation/ahp", {"json": {"matrix": [[1, 3], [1 / 3, 1]]}}),
        _only("admin"),
    ),
    Case(
        "GET",
        "/api/v1/evaluation/indicators",
        lambda w: ("/api/v1/evaluation/indicators", {}),
        _only(*EVALUATION_READERS),
    ),
    Case("GET", "/api/v1/evaluation/scheme", lambda w: ("/api/v1/evaluation/scheme", {}), _only("admin")),
    Case(
        "POST",
        "/api/v1/evaluation/scheme",
        lambda w: (
            "/api/v1/evaluation/scheme",
            {
                "json": {
                    "method": "entropy",
                    "indicators": [{"key": "verified_clues"}, {"key": "duty_hours"}],
                    "grades": {"A": 80, "B": 60, "C": 40},
                }
            },
        ),
        _only("admin"),
    ),
    Case(
        "POST",
        "/api/v1/evaluations/{period}/runs",
        lambda w: (f"/api/v1/evaluations/{w.period}/runs", {}),
        _only("admin"),
    ),
    Case(
        "GET",
        "/api/v1/evaluations/{period}",
        lambda w: (f"/api/v1/evaluations/{w.period}", {}),
        _only(*EVALUATION_READERS),
    ),
]
MISSING = 999_999


# Endless streams: a test client waits for a whole answer, so who may open them is tested against a real
# server (tests/notices/test_notices.py).
STREAMS = {("GET", "/api/v1/alerts/stream")}


def test_every_api_route_has_an_entry(app: FastAPI) -> None:
    routes = _api_routes(app)
    covered = {(c.method, c.path) for c in CASES} | STREAMS
    assert routes - covered == set(), "routes without an access-matrix entry: add them to CASES"
    assert covered - routes == set(), "entries for routes the app no longer has"
    for case in CASES:
        assert set(case.expect) == {*ROLES, ANON}, f"{case.method} {case.path} must name every role"


def _world(api: Api) -> World:
    files = [("photos", ("p.jpg", image_bytes("JPEG"), "image/jpeg"))]
    res = api.client.post("/api/v1/clues", data=_clue(), files=files, headers=api.auth("rider"))
    assert res.status_code == 201, res.text
    clue_id = int(res.json()["id"])
    api.ok("dispatcher", clue_id, "verify")
    api.ok("dispatcher", clue_id, "dispatch", {"assignee": "police"})
    admin = api.auth("admin")
    users = api.client.get("/api/v1/admin/users", params={"q": "police2"}, headers=admin).json()["items"]
    key = api.client.post("/api/v1/admin/api-keys", json={"name": "matrix"}, headers=admin)
    assert key.status_code == 201, key.text
    dispatcher = api.auth("dispatcher")
    task = api.client.post("/api/v1/tasks", json=_task(), headers=dispatcher)
    assert task.status_code == 201, task.text
    rule_body = {"name": "world", "area_kind": "grid", "area_code": "jinding-w"}
    rule = api.client.post("/api/v1/task-rules", json=rule_body, headers=dispatcher)
    assert rule.status_code == 201, rule.text
    link = api.client.post("/api/v1/join-links", json={"station": "mt-jinding"}, headers=admin)
    assert link.status_code == 201, link.text
    course = {"code": "world", "title": "世界课", "questions_per_quiz": 1}
    assert api.client.post("/api/v1/courses", json=course, headers=admin).status_code == 201
    bank = {"questions": [{"text": "问", "options": ["是", "否"], "correct": [0]}]}
    assert api.client.post("/api/v1/courses/world/questions", json=bank, headers=admin).status_code == 201
    routing_rule = api.client.post(
        "/api/v1/routing-rules", json={"party": "patrol", "category": "drugs"}, headers=admin
    )
    assert routing_rule.status_code == 201, routing_rule.text
    zone = {"code": "world-zone", "name": "世界商圈", "boundary": square(CENTER_LAT, CENTER_LON, 0.003)}
    assert api.client.post("/api/v1/org/zones", json=zone, headers=admin).status_code == 201
    alert = api.client.post("/api/v1/alerts", json=_alert(), headers=dispatcher)
    assert alert.status_code == 201, alert.text
    channel = api.client.post("/api/v1/webhooks", json=_channel("police"), headers=admin)
    assert channel.status_code == 201, channel.text
    delivery = api.client.post(f"/api/v1/webhooks/{channel.json()['id']}/test", headers=admin)
    assert delivery.status_code == 202, delivery.text
    reward = api.client.post("/api/v1/rewards", json={"name": "矩阵奖品", "kind": "goods", "cost": 1}, headers=admin)
    assert reward.status_code == 201, reward.text
    given = {"rider": "rider", "points": 5, "note": "矩阵"}
    assert api.client.post("/api/v1/points/adjustments", json=given, headers=admin).status_code == 201
    redemption = api.client.post(f"/api/v1/rewards/{reward.json()['id']}/redeem", headers=api.auth("rider"))
    assert redemption.status_code == 201, redemption.text
    period = (utcnow().astimezone(SHANGHAI).replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    assert api.client.post(f"/api/v1/evaluations/{period}/runs", headers=admin).status_code == 201
    campaign = {"code": "world", "name": "世界宣传", "starts_on": "2026-01-01"}
    assert api.client.post("/api/v1/leaflets/campaigns", json=campaign, headers=admin).status_code == 200
    stock = {"campaign": "world", "station": "mt-jinding", "kind": "issue", "count": 50}
    assert api.client.post("/api/v1/leaflets/stock", json=stock, headers=admin).status_code == 201
    return World(
        clue_id=clue_id,
        user_id=users[0]["id"],
        api_key_id=key.json()["id"],
        task_id=task.json()["task"]["id"],
        rule_id=rule.json()["id"],
        rider_id=api.client.get("/api/v1/me", headers=api.auth("rider")).json()["id"],
        link_id=link.json()["id"],
        routing_rule_id=routing_rule.json()["id"],
        alert_id=alert.json()["id"],
        channel_id=channel.json()["id"],
        delivery_id=delivery.json()["id"],
        reward_id=reward.json()["id"],
        redemption_id=redemption.json()["id"],
        period=period,
    )


def _channel(party: str | None) -> dict[str, Any]:
    body = {"name": "值班群", "format": "wecom", "url": "http://127.0.0.1:9/hook", "kinds": ["alert"], "party": party}
    return body


@pytest.mark.parametrize("role", [*ROLES, ANON])
def test_access_matrix(api: Api, role: str) -> None:
    world = _world(api)
    headers = {} if role == ANON else api.auth(role)
    wrong = []
    for case in CASES:
        url, kwargs = case.request(world)
        extra = kwargs.pop("headers", {})  # a row's own headers (an Idempotency-Key) beside the caller's
        res = api.client.request(case.method, url, headers=headers | extra, **kwargs)
        expected = case.expect[role]
        if expected == OK:
            good = 200 <= res.status_code < 300
        else:
            good = res.status_code == expected and res.headers["content-type"].startswith("application/problem+json")
        if not good:
            wrong.append(
                f"{case.method} {url} {kwargs.get('params', '')}: {res.status_code} (want {expected}) {res.text[:120]}"
            )
    assert not wrong, f"{role}:\n" + "\n".join(wrong)


def _audits(db: Session, action: str) -> int:
    n = db.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)) or 0
    db.rollback()
    return n


def _ids(api: Api, username: str) -> set[int]:
    res = api.client.get("/api/v1/clues", headers=api.auth(username))
    assert res.status_code == 200, res.text
    return {c["id"] for c in res.json()["items"]}


def test_each_sees_only_their_own_clues(api: Api) -> None:
    mine = drive(api, "dispatched")  # rider's, with police
    theirs = api.report("rider2")
    api.ok("dispatcher", theirs, "verify")
    api.ok("dispatcher", theirs, "dispatch", {"assignee": "grid_staff"})
    unhandled = api.report("rider2")
    assert _ids(api, "rider") == {mine}
    assert _ids(api, "rider2") == {theirs, unhandled}
    assert _ids(api, "police") == {mine}
    assert _ids(api, "grid_staff") == {theirs}
    assert _ids(api, "patrol") == set()
    assert _ids(api, "police2") == set()
    assert _ids(api, "dispatcher") == _ids(api, "admin") == {mine, theirs, unhandled}
    for who, clue_id in [("rider", theirs), ("rider2", mine), ("police", theirs), ("grid_staff", mine)]:
        res = api.client.get(f"/api/v1/clues/{clue_id}", headers=api.auth(who))
        assert res.status_code == 404, f"{who} must not see clue {clue_id}"
    # Handing the clue over to someone else takes it out of the first handler's view.
    api.ok("dispatcher", mine, "dispatch", {"assignee": "patrol"})
    assert _ids(api, "police") == set()
    assert _ids(api, "patrol") == {mine}


@pytest.mark.parametrize("anonymous", [True, False])
def test_reporter_identity_and_its_audit(api: Api, db: Session, anonymous: bool) -> None:
    clue_id = drive(api, "dispatched", anonymous=anonymous)
    rider_id = api.client.get("/api/v1/me", headers=api.auth("rider")).json()["id"]
    # Who is shown the reporter in the detail view (dispatchers and the reporter always).
    named = {"dispatcher": True, "rider": True, "police": not anonymous, "admin": not anonymous}
    for who, shown in named.items():
        before = _audits(db, "clue.view_reporter")
        data = api.get(who, clue_id)
        if shown:
            assert data["reporter"]["id"] == rider_id, who
            assert data["reporter_hidden"] is False
            assert data["timeline"][0]["actor"]["id"] == rider_id
        else:
            assert data["reporter"] is None, who
            assert data["reporter_hidden"] is True
            assert data["timeline"][0]["actor"] is None
            assert data["timeline"][0]["actor_label"] != "rider"
            assert "rider" not in str(data["timeline"][0])
        # Every view of the identity by someone else is audited; the reporter's own views are not.
        expect_audit = 1 if shown and who != "rider" else 0
        assert _audits(db, "clue.view_reporter") == before + expect_audit, who
    rows = db.scalars(select(AuditEntry).where(AuditEntry.action == "clue.view_reporter")).all()
    assert {r.object_id for r in rows} == {str(clue_id)}
    assert all(r.detail["reporter_id"] == rider_id for r in rows)
    assert all(r.actor_id != rider_id for r in rows)
    db.rollback()
    # Lists never name reporters, and so write no audit row.
    before = _audits(db, "clue.view_reporter")
    for who in ("dispatcher", "admin", "police", "rider"):
        items = api.client.get("/api/v1/clues", headers=api.auth(who)).json()["items"]
        assert [c["reporter"] for c in items] == [None]
        assert items[0]["reporter_hidden"] is (anonymous and who in ("admin", "police"))
    assert _audits(db, "clue.view_reporter") == before


@pytest.mark.parametrize("anonymous", [True, False])
def test_the_audit_log_does_not_name_an_anonymous_reporter(api: Api, anonymous: bool) -> None:
    clue_id = drive(api, "dispatched", anonymous=anonymous)
    api.get("dispatcher", clue_id)  # a dispatcher is shown the reporter: audited, with the reporter's id
    rider_id = api.client.get("/api/v1/me", headers=api.auth("rider")).json()["id"]
    page = api.client.get(
        "/api/v1/admin/audit", params={"object_type": "clue", "object_id": str(clue_id)}, headers=api.auth("admin")
    ).json()
    items = {item["action"]: item for item in page["items"]}
    assert {"clue.submit", "clue.view_reporter", "clue.dispatch"} <= set(items)
    submit = items["clue.submit"]
    assert submit["actor"] == (None if anonymous else "rider")
    assert submit["actor_withheld"] is anonymous
    assert ("reporter_id" in items["clue.view_reporter"]["detail"]) is not anonymous
    assert items["clue.view_reporter"]["actor"] == "dispatcher"  # staff stay named
    assert items["clue.dispatch"]["actor"] == "dispatcher" and not items["clue.dispatch"]["actor_withheld"]
    if anonymous:
        assert all(item["actor"] != "rider" for item in page["items"])
        assert all(rider_id not in item["detail"].values() for item in page["items"])
