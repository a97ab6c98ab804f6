"""The evaluation's indicators, each measured per rider over a month from the programme's own records.

Every indicator says whether more is better ("higher") or less ("lower"). A rider with nothing to measure
(no clue reported, no alert received) has no value for it (None) and is scored 0 on it.

| key | what it measures |
| --- | --- |
| verified_clues | clues the rider reported in the month that the command centre verified (and took on) |
| verified_share | of the rider's clues decided in the month (verified, rejected or duplicate), the share verified |
| value_grades | value of the rider's clues closed in the month: grade A 3, B 2, C 1 |
| report_minutes | median minutes from seeing to reporting, over the clues reported in the month (lower is better) |
| duty_hours | hours on duty in the month (shifts, cut to the month) |
| tasks_done | patrol tasks the rider completed in the month |
| alert_ack_share | of the alerts the rider received in the month, the share acknowledged |
| alert_ack_minutes | median minutes from receiving an alert to acknowledging it (lower is better) |
| training_score | mean of the best passing score of each course passed by the end of the month |
| leaflets | leaflets handed out with meals in the month |
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.errors import N_
from riderwatch.models import AlertReceipt, Clue, DutyShift, PatrolTaskResult, QuizAttempt, Rider
from riderwatch.models.outreach import LeafletDistribution

VERIFIED = ("verified", "dispatched", "in_progress", "resolved", "closed")
GRADE_VALUE = {"A": 3, "B": 2, "C": 1}


@dataclass(frozen=True)
class Indicator:
    key: str
    label: str  # a message id: translated where shown
    better: str  # "higher" | "lower"
    unit: str  # a message id


INDICATORS: tuple[Indicator, ...] = (
    Indicator("verified_clues", N_("Verified clues"), "higher", N_("clues")),
    Indicator("verified_share", N_("Share verified"), "higher", "%"),
    Indicator("value_grades", N_("Value of closed clues"), "higher", N_("grade points")),
    Indicator("report_minutes", N_("Minutes from seen to reported"), "lower", N_("min")),
    Indicator("duty_hours", N_("Hours on duty"), "higher", N_("h")),
    Indicator("tasks_done", N_("Patrol tasks done"), "higher", N_("tasks")),
    Indicator("alert_ack_share", N_("Alerts acknowledged"), "higher", "%"),
    Indicator("alert_ack_minutes", N_("Minutes to acknowledge an alert"), "lower", N_("min")),
    Indicator("training_score", N_("Training score"), "higher", N_("points")),
    Indicator("leaflets", N_("Leaflets handed out"), "higher", N_("leaflets")),
)
BY_KEY = {i.key: i for i in INDICATORS}
KEYS = tuple(BY_KEY)

Values = dict[int, dict[str, float | None]]


def _median_minutes(pairs: Iterable[tuple[datetime, datetime]]) -> float | None:
    minutes = [max(0.0, (later - earlier).total_seconds() / 60) for earlier, later in pairs]
    return round(statistics.median(minutes), 2) if minutes else None


def measure(session: Session, *, start: datetime, end: datetime) -> Values:
    """Every indicator for every rider who is a member (active, suspended or left) with something to show
    in [start, end), and every active member even with nothing: {rider_id: {key: value or None}}."""
    reported: dict[int, list[Clue]] = defaultdict(list)
    for clue in session.scalars(
        select(Clue).where(Clue.reporter_id.is_not(None), Clue.reported_at >= start, Clue.reported_at < end)
    ):
        assert clue.reporter_id is not None
        reported[clue.reporter_id].append(clue)
    grades: dict[int, int] = defaultdict(int)
    for closed in session.scalars(
        select(Clue).where(
            Clue.reporter_id.is_not(None), Clue.status == "closed", Clue.closed_at >= start, Clue.closed_at < end
        )
    ):
        assert closed.reporter_id is not None
        grades[closed.reporter_id] += GRADE_VALUE.get(closed.value_grade or "", 0)
    hours: dict[int, float] = defaultdict(float)
    for rider, began, ended in session.execute(
        select(DutyShift.rider_id, DutyShift.started_at, DutyShift.ended_at).where(
            DutyShift.started_at < end, (DutyShift.ended_at.is_(None)) | (DutyShift.ended_at > start)
        )
    ):
        stop = min(ended or end, end)
        hours[rider] += max(0.0, (stop - max(began, start)).total_seconds() / 3600)
    tasks: dict[int, int] = dict(
        session.execute(
            select(PatrolTaskResult.rider_id, func.count())
            .where(
                PatrolTaskResult.completed_at >= start,
                PatrolTaskResult.completed_at < end,
                PatrolTaskResult.points_awarded > 0,
            )
            .group_by(PatrolTaskResult.rider_id)
        ).all()
    )
    receipts: dict[int, list[tuple[datetime, datetime | None]]] = defaultdict(list)
    for rider, targeted, acknowledged in session.execute(
        select(AlertReceipt.rider_id, AlertReceipt.targeted_at, AlertReceipt.acknowledged_at).where(
            AlertReceipt.targeted_at >= start, AlertReceipt.targeted_at < end
        )
    ):
        receipts[rider].append((targeted, acknowledged))
    best: dict[int, dict[int, int]] = defaultdict(dict)
    for rider, course, score in session.execute(
        select(QuizAttempt.rider_id, QuizAttempt.course_id, func.max(QuizAttempt.score))
        .where(QuizAttempt.passed.is_(True), QuizAttempt.finished_at < end)
        .group_by(QuizAttempt.rider_id, QuizAttempt.course_id)
    ):
        best[rider][course] = int(score or 0)

    leaflets: dict[int, int] = {
        rider: int(n)
        for rider, n in session.execute(
            select(LeafletDistribution.rider_id, func.sum(LeafletDistribution.count))
            .where(LeafletDistribution.handed_at >= start, LeafletDistribution.handed_at < end)
            .group_by(LeafletDistribution.rider_id)
        )
    }
    active = set(session.scalars(select(Rider.user_id).where(Rider.status == "active")))
    members = set(session.scalars(select(Rider.user_id).where(Rider.status.in_(("active", "suspended", "left")))))
    busy = set(reported) | set(grades) | set(hours) | set(tasks) | set(receipts) | set(leaflets)
    values: Values = {}
    for rider in sorted(active | (busy & members)):
        mine = reported.get(rider, [])
        verdicts = [c.status in VERIFIED for c in mine if c.status in (*VERIFIED, "rejected", "duplicate")]
        got = receipts.get(rider, [])
        acked = [(t, a) for t, a in got if a is not None]
        courses = best.get(rider, {})
        values[rider] = {
            "verified_clues": float(sum(1 for c in mine if c.status in VERIFIED)),
            "verified_share": round(100 * sum(verdicts) / len(verdicts), 2) if verdicts else None,
            "value_grades": float(grades.get(rider, 0)),
            "report_minutes": _median_minutes((c.observed_at, c.reported_at) for c in mine),
            "duty_hours": round(hours.get(rider, 0.0), 2),
            "tasks_done": float(tasks.get(rider, 0)),
            "alert_ack_share": round(100 * len(acked) / len(got), 2) if got else None,
            "alert_ack_minutes": _median_minutes((t, a) for t, a in acked if a is not None),
            "training_score": round(statistics.fmean(courses.values()), 2) if courses else None,
            "leaflets": float(leaflets.get(rider, 0)),
        }
    return values
