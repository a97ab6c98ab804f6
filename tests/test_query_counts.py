"""The list endpoints and pages cost a fixed number of SQL statements, whatever the number of rows they list.

Each listing is requested with N rows of what it lists and again with 4N, and the statements the request
sent (counted with a `before_cursor_execute` listener on the engine the app shares with the tests) must be
as many both times: a statement per row (an "N+1": a lazy load, or a query in a loop) shows up as 3N
more. The rows differ in everything a row of the list could load: each clue has its own reporter (a
rider of a station of their own), handler (linked to an org unit of their own) and a photo; each task
its own author and invitees; each user their own linked org unit; each audit entry its own actor. So an
identity map that already holds a shared object cannot hide a load per row.

Every measurement is taken on the second of two identical requests (the first may fill caches), and the
rows each answer lists are counted, so a listing that lost its rows cannot pass by listing nothing.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from riderwatch.accounts.service import create_api_key, create_user
from riderwatch.geo.areas import bbox
from riderwatch.infra.clock import utcnow
from riderwatch.models import Community, Grid, PatrolUnit, Platform, Station, User
from tests.api.helpers import Api
from tests.factories import CENTER_LAT, CENTER_LON, PASSWORD, District, clue_body, image_bytes, square
from tests.pages import Browser, log_in
from tests.tracking.helpers import backdate, ping, ready, send

N = 3  # rows at the first measurement; the second has 4N
HANDLER_ROLES = ("police", "grid_staff", "patrol")
# The categories Open311 publishes (public, not crime): clues in them are listed by GET requests.json.
PUBLIC_CATEGORIES = ("fire_hazard", "traffic_hazard", "unlicensed_business")


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements sent on `engine` inside the block (from any thread: the app serves TestClient's
    requests in worker threads)."""
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


# --- a district that grows -----------------------------------------------------------------------


@dataclass
class World:
    """The district of tests/factories.py, and ways to add rows that differ in everything they link to."""

    app: FastAPI
    client: TestClient
    db: Session
    district: District
    api: Api = field(init=False)
    serial: Iterator[int] = field(default_factory=lambda: itertools.count(1))  # unique names
    # The ordinal of each row added to a listing: row % k picks its variant, so that the first N rows
    # (N >= k) hold every variant, and the larger list adds only more of the same kinds.
    rows: Iterator[int] = field(default_factory=itertools.count)
    browsers: dict[str, Browser] = field(default_factory=dict)
    open311_key: str = ""
    subject: int = 0  # the object a listing shows the rows of (a clue and its timeline)

    def __post_init__(self) -> None:
        self.api = Api(self.client)

    def browser(self, username: str) -> Browser:
        if username not in self.browsers:
            self.browsers[username] = log_in(TestClient(self.app, headers={"Accept-Language": "en"}), username)
        return self.browsers[username]

    def close(self) -> None:
        for b in self.browsers.values():
            b.client.close()

    def user(self, role: str) -> str:
        """A new user of `role`, linked to an org unit of their own (a station of their own platform, a
        community, a grid, a patrol unit); returns the username."""
        i = next(self.serial)
        db, d = self.db, self.district
        links: dict[str, str] = {}
        station_code = None
        if role in ("rider", "station_manager", "platform"):
            platform = Platform(code=f"qc-platform-{i}", name=f"平台{i}", name_en=f"Platform {i}")
            db.add(platform)
            db.flush()
            if role == "platform":
                links["platform"] = platform.code
            else:
                station = Station(code=f"qc-station-{i}", name=f"站点{i}", platform_id=platform.id, lat=None, lon=None)
                db.add(station)
                station_code = station.code
        elif role == "police":
            # Far from the district, so that no clue is located in it.
            community = Community(
                code=f"qc-community-{i}",
                name=f"社区{i}",
                jurisdiction_id=d.community.jurisdiction_id,
                boundary=square(CENTER_LAT + 1 + i * 0.05, CENTER_LON, 0.01),
            )
            db.add(community)
            links["community"] = community.code
        elif role == "grid_staff":
            boundary = square(CENTER_LAT + 1 + i * 0.05, CENTER_LON, 0.005)
            min_lat, min_lon, max_lat, max_lon = bbox(boundary)
            grid = Grid(
                code=f"qc-grid-{i}",
                name=f"网格{i}",
                community_id=d.community.id,
                boundary=boundary,
                min_lat=min_lat,
                min_lon=min_lon,
                max_lat=max_lat,
                max_lon=max_lon,
            )
            db.add(grid)
            links["grid"] = grid.code
        elif role == "patrol":
            unit = PatrolUnit(code=f"qc-unit-{i}", name=f"巡防{i}队", jurisdiction_id=d.community.jurisdiction_id)
            db.add(unit)
            links["patrol_unit"] = unit.code
        db.flush()
        username = f"qc-{role}-{i}"
        create_user(
            db,
            username=username,
            role=role,
            password=PASSWORD,
            display_name=f"{role} {i}",
            phone=f"1380000{i:04d}",
            station_code=station_code,
            links=links,
        )
        db.commit()
        return username

    def clue(
        self, row: int, *, reporter: str | None = None, assignee: str | None = None, category: str = "fire_hazard"
    ) -> int:
        """A clue with a photo, by `reporter` (a new rider if None), dispatched to `assignee` (if None, a new
        police officer, grid staff or patrol by `row`); by `row`, left dispatched, accepted or resolved."""
        reporter = reporter or self.user("rider")
        assignee = assignee or self.user(HANDLER_ROLES[row % len(HANDLER_ROLES)])
        photos = [("photos", ("p.jpg", image_bytes("JPEG"), "image/jpeg"))]
        body = clue_body(category=category, description=f"qc clue {next(self.serial)}")
        res = self.client.post("/api/v1/clues", data=body, files=photos, headers=self.api.auth(reporter))
        assert res.status_code == 201, res.text
        clue_id = int(res.json()["id"])
        self.api.ok("dispatcher", clue_id, "verify")
        self.api.ok("dispatcher", clue_id, "dispatch", {"assignee": assignee})
        if row % 3 >= 1:
            self.api.ok(assignee, clue_id, "accept")
        if row % 3 == 2:
            self.api.ok(assignee, clue_id, "resolve", {"outcome": "已处理"})
        return clue_id

    def open311_request(self, row: int, category: str) -> None:
        """A request the public sent through Open311 (with a media URL and contact), dispatched to a new
        handler of the role `row` picks."""
        if not self.open311_key:
            self.open311_key = create_api_key(self.db, name="qc hotline")
            self.db.commit()
        form = {
            "api_key": self.open311_key,
            "service_code": category,
            "lat": str(CENTER_LAT + 0.001),
            "long": str(CENTER_LON - 0.004),
            "description": f"qc open311 {next(self.serial)}",
            "media_url": "https://example.org/photo.jpg",
            "email": "someone@example.org",
        }
        res = self.client.post("/open311/v2/requests.json", data=form)
        assert res.status_code in (200, 201), res.text
        clue_id = int(res.json()[0]["service_request_id"])
        self.api.ok("dispatcher", clue_id, "verify")
        self.api.ok("dispatcher", clue_id, "dispatch", {"assignee": self.user(HANDLER_ROLES[row % 3])})

    def task(self, row: int, *, for_rider: bool = False) -> None:
        """A task by a new dispatcher; by `row`, open to all riders or inviting a new rider and a new station
        (and `rider`, if `for_rider`), over check-in points or over a grid's cells."""
        i = next(self.serial)
        author = self.user("dispatcher")
        invited = self.user("rider")
        manager = self.user("station_manager")
        station = self.db.scalar(
            select(Station.code).join(User, User.station_id == Station.id).where(User.username == manager)
        )
        self.db.commit()
        now = utcnow()
        body: dict[str, Any] = {
            "title": f"qc task {i}",
            "starts_at": now.isoformat(),
            "ends_at": (now + timedelta(hours=2 + i % 5)).isoformat(),
            "open_to_all": row % 2 == 0,
            "points": 10 + i,
        }
        if not body["open_to_all"]:
            body |= {"riders": [invited, *(["rider"] if for_rider else [])], "stations": [station]}
        if row % 3 < 2:
            body["checkpoints"] = [
                {"lat": CENTER_LAT + 0.001 * j, "lon": CENTER_LON, "radius_m": 100, "name": f"点{j}"} for j in range(2)
            ]
        else:
            body["area"] = {"grid": "jinding-w"}
        res = self.client.post("/api/v1/tasks", json=body, headers=self.api.auth(author))
        assert res.status_code == 201, res.text

    def incidents(self, count: int) -> None:
        """`count` incidents, each from its own source, imported by a new dispatcher each."""
        for _ in range(count):
            i = next(self.serial)
            row = next(self.rows)
            incident = {
                "source": f"qc-{i}",
                "external_ref": f"qc-{i}",
                "category": ("theft", "fire_hazard", "fight_dispute")[row % 3],
                "lat": CENTER_LAT + 0.0001 * i,
                "lon": CENTER_LON,
                "occurred_at": (utcnow() - timedelta(hours=i)).isoformat(),
            }
            importer = self.api.auth(self.user("dispatcher"))
            res = self.client.post("/api/v1/incidents", json={"incidents": [incident]}, headers=importer)
            assert res.status_code == 200, res.text

    def rules(self, count: int) -> None:
        """`count` task rules, each by a new dispatcher, over a grid or the community, each run once (with no
        coverage history it publishes nothing, and its run says why)."""
        for _ in range(count):
            row = next(self.rows)
            author = self.api.auth(self.user("dispatcher"))
            area = ("grid", "jinding-w") if row % 2 else ("community", "jinding")
            body = {
                "name": f"qc rule {next(self.serial)}",
                "area_kind": area[0],
                "area_code": area[1],
                "top_n": 1 + row,
            }
            res = self.client.post("/api/v1/task-rules", json=body, headers=author)
            assert res.status_code == 201, res.text
            run = self.client.post(f"/api/v1/task-rules/{res.json()['id']}/run", headers=author)
            assert run.status_code == 200, run.text

    def api_keys(self, count: int) -> None:
        """`count` Open311 keys, every other one revoked."""
        for _ in range(count):
            row = next(self.rows)
            res = self.client.post(
                "/api/v1/admin/api-keys", json={"name": f"qc key {row}"}, headers=self.api.auth("admin")
            )
            assert res.status_code == 201, res.text
            if row % 2:
                revoked = self.client.post(
                    f"/api/v1/admin/api-keys/{res.json()['id']}/revoke", headers=self.api.auth("admin")
                )
                assert revoked.status_code == 200, revoked.text

    def handlers(self, count: int) -> None:
        for _ in range(count):
            self.user(HANDLER_ROLES[next(self.rows) % len(HANDLER_ROLES)])

    def on_duty(self, count: int) -> None:
        """`count` riders on duty, each with a position of a moment ago."""
        for _ in range(count):
            row = next(self.rows)
            rider = self.user("rider")
            ready(self.api, rider)
            backdate(self.db, self.db.scalar(select(User.id).where(User.username == rider)) or 0, hours=1)
            send(self.api, [ping(utcnow() - timedelta(seconds=30 + row), lat=CENTER_LAT + 0.001 * row)], rider)

    def timeline(self, count: int) -> None:
        """A clue by `rider` (the first time), then `count` more steps on its timeline, each by another
        person: dispatched to a new handler, who accepts it (but one in three)."""
        if not self.subject:
            self.subject = self.api.report("rider")
            self.api.ok("dispatcher", self.subject, "verify")
        for _ in range(count):
            row = next(self.rows)
            handler = self.user(HANDLER_ROLES[row % len(HANDLER_ROLES)])
            self.api.ok("dispatcher", self.subject, "dispatch", {"assignee": handler, "note": f"step {row}"})
            if row % 3:
                self.api.ok(handler, self.subject, "accept")

    def audited(self, count: int) -> None:
        """`count` audit entries (and more), each by an actor of their own: new users who log in."""
        for _ in range(count):
            self.api.auth(self.user(("dispatcher", "police", "rider")[next(self.rows) % 3]))


# --- the listings --------------------------------------------------------------------------------------


def _items(key: str) -> Callable[[Response], int]:
    return lambda res: len(res.json()[key])


def _rows(testid: str) -> Callable[[Response], int]:
    return lambda res: res.text.count(f'data-testid="{testid}"')


def _length(res: Response) -> int:
    return len(res.json())


def _clues(world: World, count: int) -> None:
    """Clues by new riders to new handlers, in turn dispatched, accepted and resolved, in public categories."""
    for _ in range(count):
        row = next(world.rows)
        world.clue(row, category=PUBLIC_CATEGORIES[row % len(PUBLIC_CATEGORIES)])


def _own_reports(world: World, count: int) -> None:
    """Clues by `rider`, each to a new handler."""
    for _ in range(count):
        world.clue(next(world.rows), reporter="rider")


def _assignments(world: World, count: int) -> None:
    """Clues by new riders, all to `police`."""
    for _ in range(count):
        world.clue(next(world.rows), assignee="police")


def _public_requests(world: World, count: int) -> None:
    """Open311 lists clues of public categories: some reported by riders, some sent in through Open311."""
    for _ in range(count):
        row = next(world.rows)
        category = PUBLIC_CATEGORIES[row % len(PUBLIC_CATEGORIES)]
        if row % 2:
            world.open311_request(row, category)
        else:
            world.clue(row, category=category)


def _tasks(world: World, count: int) -> None:
    for _ in range(count):
        world.task(next(world.rows))


def _rider_tasks(world: World, count: int) -> None:
    for _ in range(count):
        world.task(next(world.rows), for_rider=True)


def _users(world: World, count: int) -> None:
    """Users of every role in turn; the district already lists one of each, with each kind of link."""
    roles = ("rider", "police", "grid_staff", "patrol", "station_manager", "platform", "dispatcher")
    for _ in range(count):
        world.user(roles[next(world.rows) % len(roles)])


@dataclass(frozen=True)
class Listing:
    url: str  # {subject}: the world's subject
    who: str | None  # the user asking; None: nobody logged in
    page: bool  # a browser session asks (a page), else a bearer token (the API)
    grow: Callable[[World, int], None]  # adds rows of what the listing lists
    listed: Callable[[Response], int]  # how many rows an answer lists


LISTINGS: dict[str, Listing] = {
    "api-clues": Listing("/api/v1/clues", "dispatcher", False, _clues, _items("items")),
    "api-clues-rider": Listing("/api/v1/clues", "rider", False, _own_reports, _items("items")),
    "desk": Listing("/desk?status=all", "dispatcher", True, _clues, _rows("clue-row")),
    "desk-queue": Listing("/desk/_queue?status=all", "dispatcher", True, _clues, _rows("clue-row")),
    "my-reports": Listing("/my/reports", "rider", True, _own_reports, _rows("my-report")),
    "my-assignments": Listing("/my/assignments?show=all", "police", True, _assignments, _rows("assignment")),
    "api-tasks": Listing("/api/v1/tasks", "dispatcher", False, _tasks, _items("tasks")),
    "tasks": Listing("/tasks?phase=all", "dispatcher", True, _tasks, _rows("task-row")),
    "my-tasks": Listing("/my/tasks", "rider", True, _rider_tasks, _rows("my-task")),
    "api-my-tasks": Listing("/api/v1/me/tasks", "rider", False, _rider_tasks, _items("open")),
    "admin-users": Listing("/admin/users", "admin", True, _users, _rows("user-row")),
    "api-admin-users": Listing("/api/v1/admin/users", "admin", False, _users, _items("items")),
    "api-incidents": Listing("/api/v1/incidents", "dispatcher", False, World.incidents, _items("items")),
    "admin-audit": Listing("/admin/audit", "admin", True, World.audited, _rows("audit-entry")),
    "api-admin-audit": Listing("/api/v1/admin/audit", "admin", False, World.audited, _items("items")),
    "open311-requests": Listing("/open311/v2/requests.json", None, False, _public_requests, _length),
    # Beyond the lists of issue 9: the other lists a page or the API shows.
    "clue-page": Listing("/clues/{subject}", "dispatcher", True, World.timeline, _rows("timeline-entry")),
    "api-clue": Listing("/api/v1/clues/{subject}", "dispatcher", False, World.timeline, _items("timeline")),
    "task-rules": Listing("/tasks/rules", "dispatcher", True, World.rules, _rows("rule-row")),
    "api-task-rules": Listing("/api/v1/task-rules", "dispatcher", False, World.rules, _items("rules")),
    "admin-keys": Listing("/admin/keys", "admin", True, World.api_keys, _rows("key-row")),
    "api-handlers": Listing("/api/v1/handlers", "dispatcher", False, World.handlers, _length),
    "api-live": Listing("/api/v1/tracking/live", "dispatcher", False, World.on_duty, _items("features")),
}


@pytest.fixture
def world(app: FastAPI, client: TestClient, db: Session, district: District) -> Iterator[World]:
    made = World(app=app, client=client, db=db, district=district)
    # The rider has a last position, so their task list measures the distance to each task.
    ready(made.api, "rider")
    backdate(db, district.users["rider"].id, hours=1)
    send(made.api, [ping(utcnow() - timedelta(minutes=5))])
    yield made
    made.close()


def _measure(world: World, engine: Engine, listing: Listing) -> tuple[list[str], int]:
    """The statements of one request for the listing (the second of two), and the rows it listed."""
    client = world.browser(listing.who).client if listing.page and listing.who else world.client
    headers = world.api.auth(listing.who) if listing.who and not listing.page else {}
    url = listing.url.format(subject=world.subject)
    client.get(url, headers=headers)
    with statements(engine) as seen:
        res = client.get(url, headers=headers)
    assert res.status_code == 200, res.text[:500]
    return seen, listing.listed(res)


def _more(small: list[str], big: list[str]) -> str:
    """The statements the larger list sent more often, most repeated first."""
    extra = Counter(map(_shape, big)) - Counter(map(_shape, small))
    return "\n".join(f"{n} more × {sql[:300]}" for sql, n in extra.most_common(5))


def _shape(sql: str) -> str:
    """A statement on one line, its IN lists (whose length follows the rows) shortened to one."""
    return re.sub(r"\bIN \([^()]*\)", "IN (…)", re.sub(r"\s+", " ", sql))


@pytest.mark.parametrize("name", list(LISTINGS))
def test_statements_do_not_grow_with_the_rows(world: World, engine: Engine, name: str) -> None:
    listing = LISTINGS[name]
    listing.grow(world, N)
    small, listed_small = _measure(world, engine, listing)
    listing.grow(world, 3 * N)
    big, listed_big = _measure(world, engine, listing)
    assert listed_big >= listed_small + 3 * N >= 4 * N, f"{listing.url} lists {listed_small}, then {listed_big} rows"
    assert len(big) <= len(small), (
        f"{listing.url}: {len(small)} statements for {listed_small} rows, {len(big)} for {listed_big}:\n"
        + _more(small, big)
    )
