"""Riders' tracks for the demo: the simulator's delivery rounds sent in-process to the app's own HTTP interface."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rich.progress import Progress
from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.app import create_app
from riderwatch.config import Settings
from riderwatch.coverage import rollup
from riderwatch.db import unit_of_work
from riderwatch.demo.seed import PLATFORMS
from riderwatch.infra.clock import utcnow
from riderwatch.models import (
    Position,
    Rider,
    Station,
    User,
)
from riderwatch.security import issue_token
from riderwatch.sim.feed import FeedStats
from riderwatch.sim.run import RunPlan, run_in_process
from riderwatch.sim.world import ZHENHAI

PLATFORM_ACCOUNTS = tuple(f"{code}-api" for code, _zh, _en in PLATFORMS)
TRACK_INTERVAL_S = 30.0


@dataclass
class TrackLoad:
    riders: int = 0
    stats: FeedStats | None = None
    skipped: bool = False


def _track_plan(session: Session, *, seed: int, start: datetime, end: datetime, max_riders: int | None) -> RunPlan:
    """The simulator's run for the active riders who had consented before it starts."""
    rows = session.execute(
        select(User.username, Station.code)
        .join(Rider, Rider.user_id == User.id)
        .join(Station, Station.id == Rider.station_id)
        .where(
            User.username.like("rider%"),
            User.is_active.is_(True),
            Rider.status == "active",
            Rider.location_consent.is_(True),
            Rider.location_consent_at < start,
        )
        .order_by(User.username)
    ).all()
    if max_riders is not None:
        rows = rows[:max_riders]
    return RunPlan(
        seed=seed,
        start=start,
        duration=end - start,
        riders=tuple(name for name, _code in rows),
        interval_s=TRACK_INTERVAL_S,
        rider_stations=tuple((name, code) for name, code in rows),
        spec=ZHENHAI,
    )


def load_tracks(
    settings: Settings,
    factory: Any,
    *,
    password: str,
    seed: int,
    days: float,
    progress: Progress,
    max_riders: int | None = None,
) -> TrackLoad:
    """`days` of delivery rounds up to now, sent through the app's HTTP interface.

    Skipped once demo riders have positions, so loading the demo again adds none.
    """
    with unit_of_work(factory) as session:
        demo_riders = select(User.id).where(User.username.like("rider%"), User.role == "rider")
        if session.scalar(select(Position.rider_id).where(Position.rider_id.in_(demo_riders)).limit(1)) is not None:
            return TrackLoad(skipped=True)
        end = utcnow().replace(microsecond=0)
        plan = _track_plan(session, seed=seed, start=end - timedelta(days=days), end=end, max_riders=max_riders)
        # The demo speaks for its own riders: it signs their tokens with the server's key rather
        # than making the server check seventy passwords, which would cost seconds of argon2.
        accounts = session.execute(
            select(User.username, User.id, User.token_version).where(User.username.in_(plan.riders))
        )
        tokens = {name: issue_token(settings.signing_key, uid, version) for name, uid, version in accounts}
    load = TrackLoad(riders=len(plan.riders))
    if not plan.riders:
        return load
    # Shifts and points reach back `days`: the in-process app accepts them that far back (two hours'
    # slack for the time the load itself takes). The simulator switches each rider's duty through
    # the API with the time of the switch, as a phone that was offline sends it.
    app_settings = settings.model_copy(update={"max_ping_age_hours": math.ceil(days * 24) + 2, "run_jobs": False})
    app = create_app(app_settings)
    try:
        progress.add_task("tracks 轨迹", total=None)
        load.stats = run_in_process(
            app, plan, password=password, platforms=PLATFORM_ACCOUNTS, manage_duty=True, tokens=tokens
        )
    finally:
        app.state.engine.dispose()
    with unit_of_work(factory) as session:
        # Older than a server takes: days a running server had already rolled up get the new counts.
        rollup.reopen(session, since=end - timedelta(days=days))
    return load
