"""The platforms' evaluation: schemes (the indicators' weights and difficulty factors, and how the weights
were set), runs (one period scored under one scheme, its inputs kept) and one row per rider."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from riderwatch.db import Base
from riderwatch.infra.clock import utcnow

WEIGHT_METHODS = ("typed", "ahp", "entropy")


class EvaluationScheme(Base):
    """One version of the evaluation's settings; the newest is in force. Never changed once saved."""

    __tablename__ = "evaluation_schemes"
    id: Mapped[int] = mapped_column(primary_key=True)
    method: Mapped[str] = mapped_column(String(16))
    # [{"key", "weight", "difficulty"}] in the order they are shown; weight None under the entropy method
    # (derived from each period's data when it is scored).
    indicators: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # The pairwise comparison matrix, and its λmax, CI and CR, for weights set by AHP.
    matrix: Mapped[list[list[float]] | None] = mapped_column(JSON(none_as_null=True))
    consistency: Mapped[dict[str, float] | None] = mapped_column(JSON(none_as_null=True))
    # The lowest score of each grade: {"A": 80, "B": 60, "C": 40}; below C is D.
    grades: Mapped[dict[str, float]] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EvaluationRun(Base):
    """A period scored: the weights, factors, grades and each indicator's range used are copied in, so the
    run can be explained and scored again from what it kept."""

    __tablename__ = "evaluation_runs"
    __table_args__ = (Index("ix_evaluation_runs_period", "period", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    period: Mapped[str] = mapped_column(String(7))
    scheme_id: Mapped[int] = mapped_column(ForeignKey("evaluation_schemes.id"))
    method: Mapped[str] = mapped_column(String(16))
    # {"key": {"weight", "difficulty", "low", "high", "better": "higher"|"lower"}} in the scheme's order.
    indicators: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    grades: Mapped[dict[str, float]] = mapped_column(JSON)
    rider_count: Mapped[int] = mapped_column(Integer)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EvaluationRow(Base):
    """One rider's result in a run: the indicators' values as measured, the score, the rank and the grade."""

    __tablename__ = "evaluation_rows"
    __table_args__ = (
        UniqueConstraint("run_id", "rider_id", name="uq_evaluation_rows_run_rider"),
        Index("ix_evaluation_rows_platform", "run_id", "platform_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("evaluation_runs.id", ondelete="CASCADE"))
    rider_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    platform_id: Mapped[int | None] = mapped_column(ForeignKey("platforms.id"))
    station_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id"))
    values: Mapped[dict[str, float | None]] = mapped_column(JSON)
    score: Mapped[float] = mapped_column(Float)
    rank: Mapped[int] = mapped_column(Integer)
    grade: Mapped[str] = mapped_column(String(2))
