"""The demo district: what `riderwatch demo` loads, and that loading it again adds nothing."""

from __future__ import annotations

import io
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from shapely.geometry import Polygon, shape
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from riderwatch import demo as demo_module
from riderwatch.cli import app as cli
from riderwatch.clues.workflow import OPEN_STATUSES
from riderwatch.config import Settings
from riderwatch.coverage.counts import fold_counts
from riderwatch.db import Base
from riderwatch.demo import OUTLINE, build_demo, district_geometry, plan_people
from riderwatch.errors import InvalidInput
from riderwatch.geo.areas import contains
from riderwatch.infra.clock import utcnow
from riderwatch.infra.files import FileStore
from riderwatch.models import (
    AuditEntry,
    Clue,
    ClueEvent,
    CluePhoto,
    Community,
    CoverageCell,
    DutyShift,
    Grid,
    Incident,
    LocationConsent,
    PatrolTask,
    PatrolTaskResult,
    PatrolTaskRule,
    PatrolTaskVisit,
    PatrolUnit,
    Platform,
    Position,
    PositionRefusal,
    Rider,
    Station,
    User,
    Zone,
)
from riderwatch.models.clues import STATUSES
from riderwatch.security import verify_password
from riderwatch.sim.incidents import BACKGROUND_MIX

PASSWORD = "demo-password-1"


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


def _table_counts(db: Session) -> dict[str, int]:
    return {t.name: db.scalar(select(func.count()).select_from(t)) or 0 for t in Base.metadata.sorted_tables}


def _check_organisation(db: Session) -> None:
    assert {p.code: p.name for p in db.scalars(select(Platform))} == {"meituan": "美团", "eleme": "饿了么"}
    zones = {z.code: z for z in db.scalars(select(Zone))}
    assert set(zones) == {"jinding", "zhengrong"}
    assert zones["zhengrong"].name == "正荣财富中心"
    communities = list(db.scalars(select(Community)))
    assert 4 <= len(communities) <= 6
    users = list(db.scalars(select(User)))
    for community in communities:
        grids = list(db.scalars(select(Grid).where(Grid.community_id == community.id)))
        assert 2 <= len(grids) <= 4, community.name
        police = [u for u in users if u.role == "police" and u.community_id == community.id]
        assert 1 <= len(police) <= 2, community.name
        for grid in grids:
            assert [u.role for u in users if u.grid_id == grid.id] == ["grid_staff"], grid.name
            # The bounding box kept for lookups really bounds the polygon.
            min_lon, min_lat, max_lon, max_lat = shape(grid.boundary).bounds
            assert (grid.min_lat, grid.min_lon, grid.max_lat, grid.max_lon) == (min_lat, min_lon, max_lat, max_lon)
    # Both pilot districts lie inside the station's communities.
    union = shape(communities[0].boundary)
    for community in communities[1:]:
        union = union.union(shape(community.boundary))
    for zone in zones.values():
        assert union.buffer(1e-9).covers(shape(zone.boundary)), zone.name
    assert db.scalar(select(func.count()).select_from(PatrolUnit)) >= 1
    patrol = [u for u in users if u.role == "patrol"]
    assert patrol and all(u.patrol_unit_id is not None for u in patrol)
    stations = list(db.scalars(select(Station)))
    assert Counter(s.platform_id for s in stations).most_common()[-1][1] >= 2  # several stations per platform
    assert all(s.lat is not None and abs(s.lat - 25.43) < 0.03 and s.lon is not None for s in stations)
    managers = [u for u in users if u.role == "station_manager"]
    assert {u.station_id for u in managers} == {s.id for s in stations}
    machines = [u for u in users if u.role == "platform"]
    assert len(machines) == 2 and all(u.platform_id is not None for u in machines)
    assert {u.username for u in users if u.role == "dispatcher"} == {"dispatcher1", "dispatcher2"}
    assert [u.username for u in users if u.role == "admin"] == ["admin"]
    assert verify_password(next(u for u in users if u.username == "police1").password_hash, PASSWORD)


def _check_riders(db: Session) -> None:
    riders = list(db.execute(select(User, Rider).join(Rider, Rider.user_id == User.id)).all())
    assert len(riders) >= 80
    assert {u.username for u, _ in riders} >= {"rider001", "rider080"}
    statuses = Counter(r.status for _, r in riders)
    assert statuses["active"] > 0.8 * len(riders)
    assert {"applied", "suspended", "left"} & set(statuses)
    assert all(r.station_id is not None and r.platform_id == u.platform_id for u, r in riders)
    assert len({r.platform_id for _, r in riders}) == 2
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in u.display_name) for u, _ in riders)
    assert len({r.joined_on for _, r in riders}) > 30  # joined over months, not on one day
    consented = [r for _, r in riders if r.location_consent]
    assert len(consented) > 0.7 * len(riders)
    assert all(r.location_consent_at is not None and r.location_consent_text_version == "v1" for r in consented)
    assert not any(r.location_consent for _, r in riders if r.status == "applied")
    # Consent went through the tracking service: each rider's decision is on record, as the rider sees it.
    records = {c.rider_id: c for c in db.scalars(select(LocationConsent))}
    assert set(records) == {r.user_id for r in consented}
    assert all(
        records[r.user_id].granted
        and records[r.user_id].at == r.location_consent_at
        and records[r.user_id].text_version == "v1"
        for r in consented
    )


def _check_timeline(clue: Clue, events: list[ClueEvent], reporter: User | None, users: dict[int, User]) -> None:
    assert events[0].action == "submit" and events[0].from_status is None and events[0].to_status == "submitted"
    assert events[0].at == clue.reported_at
    assignee: int | None = None
    for prev, event in pairwise(events):
        assert event.from_status == prev.to_status, (clue.id, event.action)
        assert event.at >= prev.at, (clue.id, event.action)
        if event.action == "dispatch":
            assignee = next(u.id for u in users.values() if u.username == event.data["assignee"])
            assert event.data["assignee_role"] in ("police", "grid_staff", "patrol")
        if event.action in ("accept", "resolve"):
            assert event.actor_id == assignee, (clue.id, event.action)
        if event.action == "rate":
            assert reporter is not None and event.actor_id == reporter.id
        if event.action in ("verify", "reject", "mark_duplicate", "dispatch", "close", "reopen"):
            assert users[event.actor_id or 0].role == "dispatcher"
    assert events[-1].to_status == clue.status
    assert events[-1].at <= utcnow()
    if clue.status in ("dispatched", "in_progress", "resolved", "closed"):
        assert clue.assignee_id == assignee
    if clue.status in ("resolved", "closed"):
        assert clue.outcome and clue.resolved_at is not None
    if clue.status == "closed":
        assert clue.value_grade in ("A", "B", "C", "none") and clue.closed_at is not None
    else:
        assert clue.value_grade is None
    if clue.status == "rejected":
        assert clue.reason
    if clue.status == "submitted":
        assert clue.assignee_id is None and len(events) == 1 + sum(e.action == "escalate" for e in events)


def _check_clues(db: Session, settings: Settings) -> None:
    clues = list(db.scalars(select(Clue).order_by(Clue.id)))
    assert len(clues) >= 150
    assert set(Counter(c.status for c in clues)) == set(STATUSES)
    communities = {c.id: c for c in db.scalars(select(Community))}
    grids = {g.id: g for g in db.scalars(select(Grid))}
    users = {u.id: u for u in db.scalars(select(User))}
    events_by_clue: dict[int, list[ClueEvent]] = {}
    for event in db.scalars(select(ClueEvent).order_by(ClueEvent.id)):
        events_by_clue.setdefault(event.clue_id, []).append(event)
    zones = [shape(z.boundary) for z in db.scalars(select(Zone))]
    in_zones = 0
    for clue in clues:
        assert clue.community_id is not None and clue.grid_id is not None
        assert contains(communities[clue.community_id].boundary, clue.lat, clue.lon), clue.id
        assert contains(grids[clue.grid_id].boundary, clue.lat, clue.lon), clue.id
        assert any("\u4e00" <= ch <= "\u9fff" for ch in clue.description)
        reporter = users.get(clue.reporter_id or 0)
        _check_timeline(clue, events_by_clue[clue.id], reporter, users)
        if clue.status == "duplicate":
            original = db.get(Clue, clue.duplicate_of_id)
            assert original is not None and original.status != "duplicate"
            assert original.category_code == clue.category_code and original.reported_at < clue.reported_at
        in_zones += any(z.covers(shape({"type": "Point", "coordinates": [clue.lon, clue.lat]})) for z in zones)
    # The two pilot districts are a small part of the map but draw a large share of the reports.
    assert in_zones > 0.3 * len(clues)
    assert 0 < sum(c.anonymous for c in clues) < 0.4 * len(clues)
    assert 0 < sum(c.urgent for c in clues) < 0.4 * len(clues)
    assert any(e.action == "reopen" for events in events_by_clue.values() for e in events)
    assert any(c.rating is not None for c in clues)
    # More reports at lunch and in the evening (local time) than in the small hours.
    hours = Counter((c.reported_at.hour + 8) % 24 for c in clues)
    assert sum(hours[h] for h in (11, 12, 17, 18, 19)) > 3 * sum(hours[h] for h in (1, 2, 3, 4, 5))
    # Open clues past their deadline were escalated; some exist.
    end = max(e.at for events in events_by_clue.values() for e in events)
    overdue = [c for c in clues if c.status in OPEN_STATUSES and c.deadline_at < end]
    escalated = [c for c in clues if c.escalation_level > 0]
    assert overdue and all(c.status in OPEN_STATUSES for c in escalated)
    assert all(c.escalation_level > 0 for c in overdue)
    photos = list(db.scalars(select(CluePhoto)))
    assert photos
    store = FileStore(settings.photo_dir)
    assert all(store.path(p.sha256).read_bytes()[:3] == b"\xff\xd8\xff" for p in photos)


def _check_incidents(db: Session) -> None:
    """Four weeks of the 110 system's cases, imported once by the command centre, with the planted clusters."""
    incidents = list(db.scalars(select(Incident)))
    assert 300 < len(incidents) < 800
    assert {i.source for i in incidents} == {"110"}
    assert all(i.external_ref.startswith("demo-") for i in incidents)
    assert {i.category_code for i in incidents} <= set(BACKGROUND_MIX)
    outline = Polygon(OUTLINE)
    assert all(outline.buffer(1e-9).covers(shape({"type": "Point", "coordinates": [i.lon, i.lat]})) for i in incidents)
    span = max(i.occurred_at for i in incidents) - min(i.occurred_at for i in incidents)
    assert timedelta(days=26) < span <= timedelta(days=28)
    (entry,) = db.scalars(select(AuditEntry).where(AuditEntry.action == "incident.import"))
    dispatcher = db.scalar(select(User).where(User.username == "dispatcher1"))
    assert dispatcher is not None and entry.actor_id == dispatcher.id and entry.detail["created"] == len(incidents)
    # The weekend-evening thefts planted in Jinding: far more thefts there on Fri–Sun 19–23 h than elsewhere.
    jinding = shape(db.scalars(select(Zone).where(Zone.code == "jinding")).one().boundary).buffer(0.002)
    evening = [
        i
        for i in incidents
        if i.category_code == "theft"
        and (i.occurred_at + timedelta(hours=8)).weekday() in (4, 5, 6)
        and 19 <= (i.occurred_at + timedelta(hours=8)).hour < 23
    ]
    inside = [i for i in evening if jinding.covers(shape({"type": "Point", "coordinates": [i.lon, i.lat]}))]
    assert len(inside) > 40 and len(inside) > 0.7 * len(evening)


@pytest.mark.one_database(
    "sqlite", why="`make run` loads the demo on SQLite; the services it goes through are tested on both"
)
def test_demo_loads_the_article_district_once(settings: Settings, db: Session) -> None:
    first = build_demo(settings, password=PASSWORD, seed=7, console=_quiet(), tracks_days=0)
    out = _quiet()
    out.print(first)
    assert "+86" in out.file.getvalue()  # type: ignore[attr-defined]
    _check_organisation(db)
    _check_riders(db)
    _check_clues(db, settings)
    _check_incidents(db)
    # Patrol tasks: one running now over Jinding, one tomorrow, and the evening-gaps rule (without
    # tracks there is no busiest corner for yesterday's lunch task, and nobody passed anything).
    titles = set(db.scalars(select(PatrolTask.title)))
    assert {"金鼎商圈巡逻", "东阳、梅峰学校周边早高峰"} <= titles
    assert db.scalar(select(func.count()).select_from(PatrolTaskRule)) == 1
    assert db.scalar(select(func.count()).select_from(PatrolTaskResult)) == 0
    counts = _table_counts(db)
    db.rollback()

    second = build_demo(settings, password=PASSWORD, seed=7, console=_quiet(), tracks_days=0)
    out = _quiet()
    out.print(second)
    text = " ".join(out.file.getvalue().split())  # type: ignore[attr-defined]
    assert "+" not in text and "demo incidents were already loaded" in text
    assert _table_counts(db) == counts
    assert counts["positions"] == counts["duty_shifts"] == 0


@pytest.mark.one_database(
    "sqlite", why="the demo `make run` loads is on SQLite; the ingest it drives is tested on both"
)
def test_demo_tracks_come_from_the_simulator_through_the_api(settings: Settings, db: Session) -> None:
    # A day, so the riders' shifts fall inside it whatever the hour of the test; three riders keep it quick.
    build_demo(settings, password=PASSWORD, seed=7, console=_quiet(), tracks_days=1, track_riders=3)
    riders = {
        uid: name
        for uid, name in db.execute(
            select(User.id, User.username).where(User.id.in_(select(Position.rider_id).distinct()))
        )
    }
    assert len(riders) == 3 and all(name.startswith("rider") for name in riders.values())
    points = db.scalar(select(func.count()).select_from(Position)) or 0
    assert points > 500
    first, last = db.execute(select(func.min(Position.ts), func.max(Position.ts))).one()
    now = utcnow()
    assert now - timedelta(days=1, minutes=5) <= first and last <= now
    # Every point lies in a shift the rider switched on and off through the API.
    shifts = list(db.scalars(select(DutyShift)))
    assert shifts and {s.rider_id for s in shifts} == set(riders)
    assert all(s.ended_at is not None and s.ended_by == "rider" for s in shifts)
    for rider_id, ts in db.execute(select(Position.rider_id, Position.ts)):
        assert any(s.rider_id == rider_id and s.started_at <= ts <= (s.ended_at or now) for s in shifts)
    assert db.scalar(select(func.count()).select_from(PositionRefusal)) == 0
    # The coverage aggregates were built at ingest: one pass per point at each resolution.
    fold_counts(db)
    passes = db.execute(
        select(CoverageCell.resolution, func.sum(CoverageCell.passes)).group_by(CoverageCell.resolution)
    ).all()
    assert {res: int(n) for res, n in passes} == dict.fromkeys(settings.coverage_resolutions, points)
    assert (db.scalar(select(func.max(CoverageCell.riders))) or 0) >= 1
    # Tasks were verified against those tracks: every visit lies in its task's window.
    for visit, starts, ends in db.execute(
        select(PatrolTaskVisit, PatrolTask.starts_at, PatrolTask.ends_at).join(
            PatrolTask, PatrolTask.id == PatrolTaskVisit.task_id
        )
    ):
        assert starts <= visit.first_at < ends
    counts = _table_counts(db)
    db.rollback()

    out = _quiet()
    out.print(build_demo(settings, password=PASSWORD, seed=7, console=_quiet(), tracks_days=1, track_riders=3))
    text = " ".join(out.file.getvalue().split())  # type: ignore[attr-defined]
    assert "demo tracks were already loaded" in text and "+" not in text
    assert _table_counts(db) == counts


def test_demo_refuses_a_short_password_and_writes_nothing(settings: Settings, db: Session) -> None:
    with pytest.raises(InvalidInput):
        build_demo(settings, password="short", seed=7, console=_quiet())
    assert db.scalar(select(func.count()).select_from(User)) == 0


def test_communities_tile_the_area_and_grids_tile_each_community() -> None:
    geometry = district_geometry()
    outline = Polygon(OUTLINE)
    parts = [shape(b) for b in geometry.communities.values()]
    assert 4 <= len(parts) <= 6
    assert abs(sum(p.area for p in parts) - outline.area) < 1e-3 * outline.area
    for i, a in enumerate(parts):
        for b in parts[i + 1 :]:
            assert a.intersection(b).area < 1e-9
    for code, community in geometry.communities.items():
        grids = [shape(g) for g in geometry.grids[code]]
        assert 2 <= len(grids) <= 4
        assert all(g.is_valid for g in grids)
        assert abs(sum(g.area for g in grids) - shape(community).area) < 1e-3 * shape(community).area


def test_same_seed_same_people_and_another_seed_differs() -> None:
    today = datetime(2026, 11, 29, tzinfo=UTC).date()
    a, b, c = plan_people(7, today), plan_people(7, today), plan_people(8, today)
    assert a == b
    assert [p.display_name for p in a] != [p.display_name for p in c]
    assert [p.username for p in a] == [p.username for p in c]


def test_cli_passes_tracks_days_and_bounds_it(
    monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path
) -> None:
    monkeypatch.setenv("RIDERWATCH_DATABASE_URL", database_url)
    monkeypatch.setenv("RIDERWATCH_DATA_DIR", str(tmp_path))
    seen: dict[str, Any] = {}

    def fake_build(settings: Settings, **kwargs: Any) -> str:
        seen.update(kwargs)
        return "loaded"

    monkeypatch.setattr(demo_module, "build_demo", fake_build)
    runner = CliRunner()
    result = runner.invoke(cli, ["demo", "--tracks-days", "0.5", "--password", PASSWORD])
    assert result.exit_code == 0, result.output
    assert seen["tracks_days"] == 0.5 and seen["password"] == PASSWORD
    assert runner.invoke(cli, ["demo"]).exit_code == 0 and seen["tracks_days"] == 3
    for bad in ("-1", "8", "many"):
        assert runner.invoke(cli, ["demo", "--tracks-days", bad]).exit_code == 2, bad
