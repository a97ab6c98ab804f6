"""Patrol tasks: places riders are asked to pass in a time window, verified from their positions.

A task targets either a set of H3 cells (given as cells, or as the cells of a drawn or stored
area) or check-in points with a radius. Riders never declare a task done: `patrol_task_visits`
records, from the positions stored while they were on duty, when each invited rider first passed
each cell or point inside the window, and `patrol_task_results` sums that per rider. Rules make
tasks by themselves ("fill the top N coverage gaps each evening"); `patrol_task_rule_runs` keeps
one run per rule and day.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from riderwatch.db import Base
from riderwatch.infra.clock import utcnow

TASK_KINDS = ("cells", "checkpoints")
TASK_STATUSES = ("published", "cancelled")


class PatrolTaskRule(Base):
    """A standing order: every day at `publish_at` (local), one task for each of the top N gaps of an area."""

    __tablename__ = "patrol_task_rules"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    # A stored area: "zone", "grid" or "community" with its code.
    area_kind: Mapped[str] = mapped_column(String(16))
    area_code: Mapped[str] = mapped_column(String(64))
    top_n: Mapped[int] = mapped_column(Integer)
    resolution: Mapped[int] = mapped_column(SmallInteger)
    # Local wall-clock times "HH:MM": when the day's tasks are made, and when their window opens.
    publish_at: Mapped[str] = mapped_column(String(5))
    window_start: Mapped[str] = mapped_column(String(5))
    window_hours: Mapped[int] = mapped_column(Integer)
    # Days of clue history and coverage the gaps are computed from.
    lookback_days: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PatrolTaskRuleRun(Base):
    """One run of a rule for one local day: made once, even when several servers run the job."""

    __tablename__ = "patrol_task_rule_runs"
    rule_id: Mapped[int] = mapped_column(ForeignKey("patrol_task_rules.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    ran_at: Mapped[datetime] = mapped_column(default=utcnow)
    tasks_created: Mapped[int] = mapped_column(Integer, default=0)
    # Why fewer than N tasks were made (no clue history, no gap, …), for the dispatcher.
    note: Mapped[str] = mapped_column(Text, default="")


class PatrolTask(Base):
    __tablename__ = "patrol_tasks"
    __table_args__ = (
        CheckConstraint("kind IN ('" + "','".join(TASK_KINDS) + "')", name="kind_known"),
        CheckConstraint("status IN ('" + "','".join(TASK_STATUSES) + "')", name="status_known"),
        CheckConstraint("ends_at > starts_at", name="window_positive"),
        CheckConstraint("required_share > 0 AND required_share <= 1", name="share_valid"),
        Index("ix_patrol_tasks_window", "ends_at", "starts_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(120))
    note: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(16))
    # Cells tasks: the H3 resolution of their cells; the drawn or stored area they came from, if any.
    resolution: Mapped[int | None] = mapped_column(SmallInteger)
    area: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    # Share of the cells or points a rider must pass for the task to count as done.
    required_share: Mapped[float] = mapped_column(Float, default=1.0)
    points: Mapped[int] = mapped_column(Integer, default=0)
    # At most this many riders earn the points (the first to complete); None: every rider who completes.
    max_riders: Mapped[int | None] = mapped_column(Integer)
    open_to_all: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="published")
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    cancelled_at: Mapped[datetime | None]
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("patrol_task_rules.id", ondelete="SET NULL"), index=True)
    # Positions up to this instant have been checked; results are final once it reaches ends_at and
    # no late point can still arrive (see tasks/verification.py).
    verified_until: Mapped[datetime | None]
    # When the positions were last checked (ended tasks are checked again now and then, for late points).
    verified_at: Mapped[datetime | None]
    final: Mapped[bool] = mapped_column(Boolean, default=False)


class PatrolTaskCell(Base):
    __tablename__ = "patrol_task_cells"
    task_id: Mapped[int] = mapped_column(ForeignKey("patrol_tasks.id", ondelete="CASCADE"), primary_key=True)
    cell: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)


class PatrolTaskCheckpoint(Base):
    __tablename__ = "patrol_task_checkpoints"
    __table_args__ = (
        UniqueConstraint("task_id", "seq"),
        CheckConstraint("radius_m > 0", name="radius_positive"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("patrol_tasks.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(120), default="")
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    radius_m: Mapped[float] = mapped_column(Float)


class PatrolTaskInvite(Base):
    """Who is asked: a rider, or every rider of a station (a task open to all has none)."""

    __tablename__ = "patrol_task_invites"
    __table_args__ = (CheckConstraint("(rider_id IS NULL) <> (station_id IS NULL)", name="one_invitee"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("patrol_tasks.id", ondelete="CASCADE"), index=True)
    rider_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    station_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id", ondelete="CASCADE"), index=True)


class PatrolTaskVisit(Base):
    """When an invited rider first passed a target (a cell, or a checkpoint's id) inside the window."""

    __tablename__ = "patrol_task_visits"
    # A withdrawn consent or a late "off" deletes a rider's visits.
    __table_args__ = (Index("ix_patrol_task_visits_rider", "rider_id"),)
    task_id: Mapped[int] = mapped_column(ForeignKey("patrol_tasks.id", ondelete="CASCADE"), primary_key=True)
    rider_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    target: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    first_at: Mapped[datetime]


class PatrolTaskResult(Base):
    """A rider's progress on a task, from their visits: how many targets, and when it was completed."""

    __tablename__ = "patrol_task_results"
    __table_args__ = (Index("ix_patrol_task_results_rider", "rider_id"),)
    task_id: Mapped[int] = mapped_column(ForeignKey("patrol_tasks.id", ondelete="CASCADE"), primary_key=True)
    rider_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    visited: Mapped[int] = mapped_column(Integer, default=0)
    completed_at: Mapped[datetime | None]
    points_awarded: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
