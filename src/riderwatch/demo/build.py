"""Building the whole demo district, step by step, and the summary printed after."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.accounts.service import MIN_PASSWORD
from riderwatch.clues import service as clue_service
from riderwatch.config import Settings
from riderwatch.coverage.counts import fold_counts
from riderwatch.db import make_engine, make_session_factory, unit_of_work
from riderwatch.demo.clue_replay import local_midnight, plan_clues, run_clues
from riderwatch.demo.geometry import district_geometry
from riderwatch.demo.incident_cases import load_incidents
from riderwatch.demo.organisation import ensure_courses, ensure_org, ensure_people, ensure_programme, plan_people
from riderwatch.demo.outreach import ensure_outreach, ensure_voice
from riderwatch.demo.patrol_tasks import load_tasks
from riderwatch.demo.points import ensure_points
from riderwatch.demo.seed import CLUE_KEY_PREFIX
from riderwatch.demo.tracks import TrackLoad, load_tracks
from riderwatch.errors import InvalidInput
from riderwatch.infra.clock import utcnow
from riderwatch.infra.files import FileStore
from riderwatch.models import (
    Clue,
    ClueEvent,
    CluePhoto,
    Community,
    CoverageCell,
    EvaluationRow,
    Grid,
    Incident,
    LeafletDistribution,
    PatrolTask,
    PatrolTaskResult,
    PatrolUnit,
    Platform,
    PointEntry,
    Position,
    Reward,
    Rider,
    Station,
    User,
    Zone,
)


def _counts(session: Session) -> dict[str, int]:
    def count(model: Any, *where: Any) -> int:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0

    out = {
        "communities 社区": count(Community),
        "grids 网格": count(Grid),
        "pilot zones 试点商圈": count(Zone),
        "patrol units 巡防队": count(PatrolUnit),
        "platforms 平台": count(Platform),
        "stations 站点": count(Station),
    }
    for role, n in session.execute(select(User.role, func.count()).group_by(User.role).order_by(User.role)):
        out[f"users: {role}"] = n
    for status, n in session.execute(select(Rider.status, func.count()).group_by(Rider.status).order_by(Rider.status)):
        out[f"riders: {status}"] = n
    out["riders with location consent"] = count(Rider, Rider.location_consent.is_(True))
    for status, n in session.execute(select(Clue.status, func.count()).group_by(Clue.status).order_by(Clue.status)):
        out[f"clues: {status}"] = n
    out["clue timeline entries"] = count(ClueEvent)
    out["clues escalated (overdue)"] = count(Clue, Clue.escalation_level > 0)
    out["clue photos"] = count(CluePhoto)
    out["incidents 警情"] = count(Incident)
    out["positions 轨迹点"] = count(Position)
    fold_counts(session)
    out["coverage cell-hours 覆盖格时"] = count(CoverageCell)
    out["patrol tasks 巡逻任务"] = count(PatrolTask)
    out["patrol task completions 任务完成"] = count(PatrolTaskResult, PatrolTaskResult.completed_at.is_not(None))
    out["leaflets handed out 宣传单"] = (
        session.scalar(select(func.coalesce(func.sum(LeafletDistribution.count), 0))) or 0
    )
    out["point entries 积分记录"] = count(PointEntry)
    out["rewards 奖品"] = count(Reward)
    out["riders evaluated 考评人次"] = count(EvaluationRow)
    return out


def _summary(
    before: dict[str, int],
    after: dict[str, int],
    *,
    clues_skipped: bool,
    incidents_skipped: bool,
    resets: int,
    tracks: TrackLoad | None,
    task_notes: list[str],
) -> Table:
    table = Table(title="镇海派出所演示辖区 · Zhenhai demo district", show_lines=False)
    table.add_column("item 项目")
    table.add_column("total 总数", justify="right")
    table.add_column("added 新增", justify="right")
    for key, total in after.items():
        added = total - before.get(key, 0)
        table.add_row(key, str(total), f"+{added}" if added else "")
    notes = []
    if clues_skipped:
        notes.append("demo clues were already loaded; none added")
    if incidents_skipped:
        notes.append("demo incidents were already loaded; none added")
    if resets:
        notes.append(f"password reset for {resets} existing demo accounts")
    if tracks is not None and tracks.skipped:
        notes.append("demo tracks were already loaded; none added")
    elif tracks is not None and tracks.stats is not None:
        stats = tracks.stats
        refused = sum(stats.rejected.values())
        notes.append(
            f"tracks: {tracks.riders} riders, {stats.shifts_started} shifts, {stats.accepted} points stored"
            + (f", {refused} refused" if refused else "")
            + (f", {len(stats.riders_dropped)} riders left out" if stats.riders_dropped else "")
        )
    notes += task_notes
    if notes:
        table.caption = "; ".join(notes)
    return table


def build_demo(
    settings: Settings,
    *,
    password: str,
    seed: int,
    console: Console,
    tracks_days: float = 3,
    track_riders: int | None = None,
) -> Table:
    """Load the demo district into the configured database (idempotent); returns a summary table.

    `tracks_days` of simulated delivery rounds end now (0: none); `track_riders` limits how many
    riders take part (default: every active rider who consented before the rounds start).
    """
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"the demo password must be at least {MIN_PASSWORD} characters")
    if not 0 <= tracks_days <= 7:
        # Retention, the age of points the server takes and the run's own time all grow with it.
        raise InvalidInput("the demo's tracks cover between 0 and 7 days")
    tz = ZoneInfo(settings.timezone)
    # Reports end at the last local midnight, so one seed gives the same district all day.
    end = local_midnight(tz, utcnow().astimezone(tz).date())
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    store = FileStore(settings.photo_dir)
    added: Counter[str] = Counter()
    try:
        with unit_of_work(factory) as session:
            before = _counts(session)
        geometry = district_geometry()
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            with unit_of_work(factory) as session:
                ensure_org(session, geometry, added)
                resets = ensure_people(session, plan_people(seed, end.astimezone(tz).date()), password, added, progress)
                ensure_programme(session, added)
                ensure_courses(session, added, rng=random.Random(seed))
            with unit_of_work(factory) as session:
                loaded = session.scalar(
                    select(func.count()).select_from(Clue).where(Clue.idempotency_key.like(f"{CLUE_KEY_PREFIX}%"))
                )
                clues_skipped = bool(loaded)
                if not clues_skipped:
                    plans = plan_clues(session, seed=seed, end=end, tz=tz, max_photo_bytes=settings.max_photo_bytes)
                    task = progress.add_task("clues 线索", total=sum(1 + len(p.steps) for p in plans))
                    run_clues(
                        session,
                        plans,
                        store=store,
                        max_photos=settings.max_photos,
                        tz=tz,
                        on_step=lambda: progress.advance(task),
                    )
                    clue_service.escalate_overdue(session, now=end)
            with unit_of_work(factory) as session:
                progress.add_task("incidents 警情", total=None)
                incidents_skipped = load_incidents(session, seed=seed, end=end, timezone=settings.timezone) is None
            tracks = None
            if tracks_days > 0:
                tracks = load_tracks(
                    settings,
                    factory,
                    password=password,
                    seed=seed,
                    days=tracks_days,
                    progress=progress,
                    max_riders=track_riders,
                )
        with unit_of_work(factory) as session:
            task_notes = load_tasks(session, settings, now=utcnow())
        with unit_of_work(factory) as session:
            ensure_outreach(session, added, seed=seed, timezone=settings.timezone)
            ensure_voice(session, added, timezone=settings.timezone)
        with unit_of_work(factory) as session:
            ensure_points(session, added, timezone=settings.timezone)
        with unit_of_work(factory) as session:
            after = _counts(session)
    finally:
        engine.dispose()
    return _summary(
        before,
        after,
        clues_skipped=clues_skipped,
        incidents_skipped=incidents_skipped,
        resets=resets,
        tracks=tracks,
        task_notes=task_notes,
    )
