"""The demo's rewards and evaluation, through the same services an administrator uses: a small reward
catalogue, evaluation settings with weights from pairwise judgements (AHP), and the last month scored as
the month-end job would. The points themselves come from the replayed clues' closes."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.evaluation import service as evaluation
from riderwatch.models import EvaluationRun, EvaluationScheme, Reward, User
from riderwatch.points import rewards

CATALOGUE = (
    # name, English name, kind, points, cash in fen, stock
    ("外卖保温箱", "Insulated delivery box", "goods", 300, None, 20),
    ("雨衣", "Raincoat", "goods", 120, None, 50),
    ("话费充值券 20 元", "20-yuan phone top-up", "voucher", 200, None, None),
    ("现金奖励 50 元", "50 yuan cash", "cash", 500, 5000, None),
)
# Verified clues and their value first, then time on duty, then the rest: judged pair by pair (CR ≈ 0.002).
AHP_KEYS = ("verified_clues", "value_grades", "verified_share", "duty_hours", "tasks_done", "alert_ack_share")
AHP_MATRIX = (
    (1, 1, 3, 2, 3, 3),
    (1, 1, 3, 2, 3, 3),
    (1 / 3, 1 / 3, 1, 1 / 2, 1, 1),
    (1 / 2, 1 / 2, 2, 1, 2, 2),
    (1 / 3, 1 / 3, 1, 1 / 2, 1, 1),
    (1 / 3, 1 / 3, 1, 1 / 2, 1, 1),
)
DIFFICULTY = {
    "verified_clues": 1.2,
    "value_grades": 1.0,
    "verified_share": 1.0,
    "duty_hours": 0.8,
    "tasks_done": 1.0,
    "alert_ack_share": 1.0,
}


def ensure_points(session: Session, added: Counter[str], *, timezone: str) -> None:
    """The catalogue and the evaluation settings (each skipped once there are any), and last month scored
    (skipped once it is)."""
    admin = session.scalar(select(User).where(User.username == "admin"))
    if admin is None:
        return
    if session.scalar(select(Reward.id).limit(1)) is None:
        for name, name_en, kind, cost, cash, stock in CATALOGUE:
            rewards.save_reward(
                session,
                user=admin,
                reward_id=None,
                name=name,
                name_en=name_en,
                kind=kind,
                cost=cost,
                cash_fen=cash,
                stock=stock,
                active=True,
            )
            added["rewards"] += 1
    if session.scalar(select(EvaluationScheme.id).limit(1)) is None:
        evaluation.save_scheme(
            session,
            user=admin,
            method="ahp",
            keys=AHP_KEYS,
            difficulties=[DIFFICULTY[k] for k in AHP_KEYS],
            matrix=[list(row) for row in AHP_MATRIX],
            grades={"A": 45, "B": 30, "C": 15},
            note="演示：按两两比较确定权重",
        )
    period = evaluation.previous_period(timezone)
    if session.scalar(select(EvaluationRun.id).where(EvaluationRun.period == period).limit(1)) is None:
        run = evaluation.run_period(session, period=period, timezone=timezone)
        added["evaluated riders"] += run.rider_count
