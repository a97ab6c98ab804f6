"""The demo's patrol tasks: a rule for the evening gaps, and tasks of yesterday, today and tomorrow."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from h3.api import basic_int as h3
from shapely.geometry import Polygon
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.config import Settings
from riderwatch.coverage.counts import fold_counts
from riderwatch.demo.seed import ZONES, ZoneSpec
from riderwatch.infra.timecodes import hour_of
from riderwatch.models import (
    CoverageCell,
    PatrolTask,
    PatrolTaskRule,
    User,
)
from riderwatch.tasks.rules import create_rule, run_rule
from riderwatch.tasks.schemas import CheckpointDraft, RuleDraft, TaskDraft
from riderwatch.tasks.service import TaskLimits, publish_task
from riderwatch.tasks.verification import verify_due

DEMO_RULE = "梅峰社区晚间补盲"
CHECKPOINT_RADIUS_M = 80.0


def _busiest_cells(
    session: Session, zone: ZoneSpec, start: datetime, end: datetime, resolution: int, n: int
) -> list[int]:
    """The cells of a zone riders passed most in a window: corners where a check-in is a real pass."""
    cells = h3.geo_to_cells(Polygon(zone.ring), resolution)
    fold_counts(session)
    rows = session.execute(
        select(CoverageCell.cell, func.sum(CoverageCell.passes).label("passes"))
        .where(
            CoverageCell.resolution == resolution,
            CoverageCell.cell.in_(sorted(cells)),
            CoverageCell.hour >= hour_of(start),
            CoverageCell.hour < hour_of(end),
        )
        .group_by(CoverageCell.cell)
        .order_by(func.sum(CoverageCell.passes).desc(), CoverageCell.cell)
        .limit(n)
    )
    return [int(cell) for cell, _ in rows]


def load_tasks(session: Session, settings: Settings, *, now: datetime) -> list[str]:
    """Demo patrol tasks, verified against the demo's tracks; skipped when any task or rule exists."""
    if session.scalar(select(PatrolTask.id).limit(1)) is not None or session.scalar(select(PatrolTaskRule.id).limit(1)):
        return ["patrol tasks were already loaded; none added"]
    limits = TaskLimits.from_settings(settings)
    tz = ZoneInfo(settings.timezone)
    today = now.astimezone(tz).date()
    dispatcher = session.scalar(select(User).where(User.username == "dispatcher1"))
    assert dispatcher is not None

    def at(days: int, hour: int, minute: int = 0) -> datetime:
        return datetime.combine(today + timedelta(days=days), time(hour, minute), tz)

    notes = []
    zhengrong = next(z for z in ZONES if z.code == "zhengrong")
    lunch = (at(-1, 11), at(-1, 13, 30))
    corners = _busiest_cells(session, zhengrong, *lunch, resolution=limits.finest, n=3)
    if corners:
        publish_task(
            session,
            author=dispatcher,
            draft=TaskDraft(
                title="正荣财富中心午高峰巡查",
                note="午高峰取餐点人流大，注意电动车盗窃和扒窃。",
                starts_at=lunch[0],
                ends_at=lunch[1],
                checkpoints=[
                    CheckpointDraft(lat=lat, lon=lon, radius_m=CHECKPOINT_RADIUS_M, name=name)
                    for (lat, lon), name in zip(map(h3.cell_to_latlng, corners), zhengrong.landmarks, strict=False)
                ],
                points=20,
                max_riders=5,
                open_to_all=True,
            ),
            limits=limits,
            now=at(-1, 9),
        )
    publish_task(
        session,
        author=dispatcher,
        draft=TaskDraft(
            title="金鼎商圈巡逻",
            note="经过金鼎商圈六成以上的网格即完成。",
            starts_at=now - timedelta(hours=2),
            ends_at=now + timedelta(hours=2),
            area={"zone": "jinding"},
            resolution=min(limits.coverage.resolutions),
            required_share=0.6,
            points=30,
            stations=["mt-jinding", "elm-jinding"],
        ),
        limits=limits,
        now=now - timedelta(hours=2),
    )
    publish_task(
        session,
        author=dispatcher,
        draft=TaskDraft(
            title="东阳、梅峰学校周边早高峰",
            note="上学时段经过两所学校门口。",
            starts_at=at(1, 7),
            ends_at=at(1, 9),
            checkpoints=[
                CheckpointDraft(lat=25.4240, lon=119.0205, radius_m=100, name="东阳小学"),
                CheckpointDraft(lat=25.4305, lon=119.0110, radius_m=100, name="梅峰中学"),
            ],
            points=15,
            stations=["mt-dongyang"],
        ),
        limits=limits,
        now=now,
    )
    rule = create_rule(
        session,
        actor=dispatcher,
        draft=RuleDraft(name=DEMO_RULE, area_kind="community", area_code="meifeng", top_n=3, points=10),
        limits=limits,
    )
    run = run_rule(session, rule=rule, limits=limits, now=now)
    notes.append(f"rule {DEMO_RULE}: {run.tasks_created} tasks" + (f" ({run.note})" if run.note else ""))
    verify_due(session, limits=limits, now=now)
    return notes
