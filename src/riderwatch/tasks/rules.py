"""Standing orders that publish patrol tasks by themselves: "fill the top N coverage gaps each evening".

Each local day, once its publish time has passed, a rule computes the coverage gaps of its area
(hot cells of clue history that riders seldom pass in their key periods, coverage/hotspots_service.py)
over the last `lookback_days`, and publishes one task per gap, worst first, for that evening's
window, open to every rider. A row per rule and day (`patrol_task_rule_runs`, inserted first, in
the same transaction) makes the run happen once even with several servers.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from riderwatch.audit.service import record
from riderwatch.coverage.hotspots_service import HotspotOptions, query_gaps
from riderwatch.coverage.service import NO_AREA, STORED_AREAS
from riderwatch.db import atomic
from riderwatch.errors import N_, Conflict, DomainError, InvalidInput, NotFound
from riderwatch.infra.clock import utcnow
from riderwatch.models import PatrolTaskRule, PatrolTaskRuleRun, User
from riderwatch.tasks.schemas import MAX_TITLE, RuleDraft, TaskDraft
from riderwatch.tasks.service import MAX_POINTS, TaskLimits, publish_task

log = logging.getLogger(__name__)
CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
MAX_TOP_N = 50
# Room in a task's title for " #N".
MAX_NAME = MAX_TITLE - 1 - len(f"#{MAX_TOP_N}")
MAX_LOOKBACK_DAYS = 366


@atomic
def create_rule(session: Session, *, actor: User, draft: RuleDraft, limits: TaskLimits) -> PatrolTaskRule:
    name = draft.name.strip()
    if not name or len(name) > MAX_NAME:
        raise InvalidInput(N_("name: give the rule a name of at most %(max)d characters"), max=MAX_NAME)
    if draft.area_kind not in STORED_AREAS:
        raise InvalidInput(N_("area_kind must be one of %(choices)s"), choices=", ".join(STORED_AREAS))
    model = STORED_AREAS[draft.area_kind]
    if session.scalar(select(model.id).where(model.code == draft.area_code)) is None:
        raise InvalidInput(NO_AREA[draft.area_kind], code=draft.area_code)
    # As the gaps' own default: street level, where a cluster of clues fills a cell.
    resolution = limits.finest if draft.resolution is None else draft.resolution
    if resolution not in limits.coverage.resolutions:
        raise InvalidInput(
            N_("resolution must be one of %(choices)s"), choices=", ".join(map(str, limits.coverage.resolutions))
        )
    for field_name in ("publish_at", "window_start"):
        if not CLOCK.match(getattr(draft, field_name)):
            raise InvalidInput(N_("%(field)s must be a local time HH:MM"), field=field_name)
    if not 1 <= draft.top_n <= MAX_TOP_N:
        raise InvalidInput(N_("top_n must be between 1 and %(max)d"), max=MAX_TOP_N)
    if not 1 <= draft.window_hours <= 24:
        raise InvalidInput(N_("window_hours must be between 1 and 24"))
    if not 1 <= draft.lookback_days <= MAX_LOOKBACK_DAYS:
        raise InvalidInput(N_("lookback_days must be between 1 and %(max)d"), max=MAX_LOOKBACK_DAYS)
    if not 0 <= draft.points <= MAX_POINTS:
        raise InvalidInput(N_("points must be between 0 and %(max)d"), max=MAX_POINTS)
    rule = PatrolTaskRule(
        name=name,
        area_kind=draft.area_kind,
        area_code=draft.area_code,
        top_n=draft.top_n,
        resolution=resolution,
        publish_at=draft.publish_at,
        window_start=draft.window_start,
        window_hours=draft.window_hours,
        lookback_days=draft.lookback_days,
        points=draft.points,
        active=True,
        created_by_id=actor.id,
    )
    session.add(rule)
    session.flush()
    record(session, actor=actor, action="task_rule.create", object_type="patrol_task_rule", object_id=rule.id)
    return rule


def set_rule_active(session: Session, *, actor: User, rule_id: int, active: bool) -> PatrolTaskRule:
    rule = session.get(PatrolTaskRule, rule_id)
    if rule is None:
        raise NotFound(N_("no task rule %(id)d"), id=rule_id)
    if rule.active != active:
        rule.active = active
        session.flush()
        record(
            session,
            actor=actor,
            action="task_rule.activate" if active else "task_rule.pause",
            object_type="patrol_task_rule",
            object_id=rule.id,
        )
    return rule


def list_rules(session: Session) -> list[dict[str, Any]]:
    rules = session.scalars(select(PatrolTaskRule).order_by(PatrolTaskRule.id)).all()
    latest = (
        select(PatrolTaskRuleRun.rule_id, func.max(PatrolTaskRuleRun.day).label("day"))
        .group_by(PatrolTaskRuleRun.rule_id)
        .subquery()
    )
    runs = {
        run.rule_id: run
        for run in session.scalars(
            select(PatrolTaskRuleRun).join(
                latest, and_(PatrolTaskRuleRun.rule_id == latest.c.rule_id, PatrolTaskRuleRun.day == latest.c.day)
            )
        )
    }
    return [rule_json(r, runs.get(r.id)) for r in rules]


def rule_json(rule: PatrolTaskRule, last_run: PatrolTaskRuleRun | None = None) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "area": {rule.area_kind: rule.area_code},
        "top_n": rule.top_n,
        "resolution": rule.resolution,
        "publish_at": rule.publish_at,
        "window_start": rule.window_start,
        "window_hours": rule.window_hours,
        "lookback_days": rule.lookback_days,
        "points": rule.points,
        "active": rule.active,
        "last_run": (
            None
            if last_run is None
            else {
                "day": last_run.day.isoformat(),
                "ran_at": last_run.ran_at.isoformat(),
                "tasks_created": last_run.tasks_created,
                "note": last_run.note,
            }
        ),
    }


def _clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def _claim_day(session: Session, rule: PatrolTaskRule, day: date, now: datetime) -> PatrolTaskRuleRun | None:
    """Insert the run row for the day, or None when a run for that day exists already."""
    try:
        with session.begin_nested():
            session.execute(
                insert(PatrolTaskRuleRun).values(rule_id=rule.id, day=day, ran_at=now, tasks_created=0, note="")
            )
    except IntegrityError:
        return None
    return session.get(PatrolTaskRuleRun, (rule.id, day))


def run_rule(
    session: Session, *, rule: PatrolTaskRule, limits: TaskLimits, now: datetime | None = None
) -> PatrolTaskRuleRun:
    """Publish today's tasks of a rule (local day); Conflict if it already ran today."""
    now = now or utcnow()
    tz = ZoneInfo(limits.coverage.timezone)
    local = now.astimezone(tz)
    run = _claim_day(session, rule, local.date(), now)
    if run is None:
        raise Conflict(N_("the rule already ran on %(day)s"), day=local.date().isoformat())
    starts = datetime.combine(local.date(), _clock(rule.window_start), tz)
    if starts + timedelta(hours=rule.window_hours) <= now:
        # The day's window is over (a night window published the evening before): the next one.
        starts = datetime.combine(local.date() + timedelta(days=1), _clock(rule.window_start), tz)
    # Whole hours in UTC: a window keeps its length across a change of clocks.
    ends = (starts.astimezone(UTC) + timedelta(hours=rule.window_hours)).astimezone(tz)
    author = session.get(User, rule.created_by_id)
    assert author is not None
    try:
        gaps = query_gaps(
            session,
            area={rule.area_kind: rule.area_code},
            start=now - timedelta(days=rule.lookback_days),
            end=now,
            resolution=rule.resolution,
            options=HotspotOptions(),
            limits=limits.coverage,
        )
    except DomainError as exc:
        run.note = f"未能计算覆盖缺口：{exc}"
        return run
    features = gaps["features"][: rule.top_n]
    # Riders and station managers read the note: it says why the place matters without the clue
    # statistics, which are for the police side (hotspots.read). In Chinese, the programme's language.
    note = "该处骑手较少经过，请在任务时段内顺路经过一次。"
    for rank, feature in enumerate(features, start=1):
        props = feature["properties"]
        publish_task(
            session,
            author=author,
            draft=TaskDraft(
                title=f"{rule.name} #{rank}",
                note=note,
                starts_at=max(starts, now),
                ends_at=ends,
                cells=[props["h3"]],
                points=rule.points,
                open_to_all=True,
            ),
            limits=limits,
            now=now,
            rule_id=rule.id,
        )
    run.tasks_created = len(features)
    summary = gaps["summary"]
    if len(features) < rule.top_n:
        run.note = f"发布 {len(features)} 个（上限 {rule.top_n}）：只找到 {summary['gaps']} 处骑手少有经过的热点"
    session.flush()
    return run


@atomic
def run_rule_now(session: Session, *, actor: User, rule_id: int, limits: TaskLimits) -> PatrolTaskRuleRun:
    """A dispatcher runs a rule ahead of its publish time (once per day, as the job would)."""
    rule = session.get(PatrolTaskRule, rule_id)
    if rule is None:
        raise NotFound(N_("no task rule %(id)d"), id=rule_id)
    run = run_rule(session, rule=rule, limits=limits)
    record(
        session,
        actor=actor,
        action="task_rule.run",
        object_type="patrol_task_rule",
        object_id=rule.id,
        tasks=run.tasks_created,
    )
    return run


def run_due_rules(session: Session, *, limits: TaskLimits, now: datetime | None = None) -> int:
    """The periodic job: run each active rule whose publish time has passed today and that has not run."""
    now = now or utcnow()
    local = now.astimezone(ZoneInfo(limits.coverage.timezone))
    made = 0
    for rule in session.scalars(
        select(PatrolTaskRule).where(PatrolTaskRule.active.is_(True)).order_by(PatrolTaskRule.id)
    ):
        if local.time() < _clock(rule.publish_at):
            continue
        if session.get(PatrolTaskRuleRun, (rule.id, local.date())) is not None:
            continue
        try:
            with session.begin_nested():
                made += run_rule(session, rule=rule, limits=limits, now=now).tasks_created
        except Conflict:
            continue  # another server ran it a moment ago
        except DomainError as exc:
            # Recorded as the day's run, so one broken rule neither blocks the others nor retries every minute.
            log.warning("task rule %s failed: %s", rule.id, exc)
            with session.begin_nested():
                session.add(PatrolTaskRuleRun(rule_id=rule.id, day=local.date(), ran_at=now, note=f"发布失败：{exc}"))
    return made
