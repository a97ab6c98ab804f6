"""Points: the rules that say what earns how many, the append-only ledger of every rider's points, and
the reward catalogue with its redemptions.

A rule is versioned: a change is a new row effective from a date, so an award made under the old rule
keeps the points it was given. An entry is never updated or deleted: a wrong award is undone by a
`reverse` entry naming it. A balance is the sum of a rider's entries.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from riderwatch.db import Base
from riderwatch.infra.clock import utcnow

# What a rule gives points for. A patrol task carries its own points, set when it is published.
POINT_RULE_KEYS = ("clue_A", "clue_B", "clue_C", "alert_ack", "sighting", "course_passed", "leaflets_10")
ENTRY_KINDS = ("earn", "spend", "reverse", "adjust")
ENTRY_SOURCES = ("clue", "task", "alert", "sighting", "course", "leaflets", "adjustment", "redemption")
REWARD_KINDS = ("goods", "voucher", "cash")
REDEMPTION_STATES = ("requested", "approved", "rejected", "cancelled")


class PointRule(Base):
    __tablename__ = "point_rules"
    __table_args__ = (
        UniqueConstraint("key", "effective_from", name="uq_point_rules_key_from"),
        CheckConstraint("points >= 0", name="points_not_negative"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(32))
    points: Mapped[int] = mapped_column(Integer)
    # From this instant on (the start of a day in the station's time zone) awards take these points.
    effective_from: Mapped[datetime]
    note: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PointEntry(Base):
    """One line of a rider's points: earned for something, spent on a reward, an earlier line reversed, or
    an administrator's adjustment with a note."""

    __tablename__ = "point_entries"
    __table_args__ = (
        Index("ix_point_entries_rider", "rider_id", "created_at"),
        Index("ix_point_entries_source", "source", "source_id"),
        CheckConstraint("kind IN ('" + "','".join(ENTRY_KINDS) + "')", name="kind_known"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    rider_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))
    # Signed: earned and adjusted up are positive, spent and reversed awards negative.
    points: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))
    source_id: Mapped[int | None] = mapped_column(Integer)
    # One source, one award: the key of what this entry is for ("clue:12:close:345", "reverse:78", …), unique,
    # so a retried or concurrent award of the same thing stores nothing the second time.
    award_key: Mapped[str | None] = mapped_column(String(100), unique=True)
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("point_rules.id"))
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("point_entries.id"))
    note: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Reward(Base):
    """Something riders can redeem points for: goods, a voucher, or cash (a payout an administrator
    approves). `stock` None: no limit."""

    __tablename__ = "rewards"
    __table_args__ = (
        CheckConstraint("stock IS NULL OR stock >= 0", name="stock_not_negative"),
        CheckConstraint("cost > 0", name="cost_positive"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(16))
    cost: Mapped[int] = mapped_column(Integer)
    # For cash: the amount paid, in fen.
    cash_fen: Mapped[int | None] = mapped_column(Integer)
    stock: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Redemption(Base):
    """A rider's request for a reward. The points are spent when it is asked for (so they cannot be spent
    twice) and the stock taken; a rejection or a cancellation gives both back."""

    __tablename__ = "redemptions"
    __table_args__ = (Index("ix_redemptions_status", "status", "requested_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    rider_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    reward_id: Mapped[int] = mapped_column(ForeignKey("rewards.id"))
    points: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="requested")
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None]
    note: Mapped[str] = mapped_column(Text, default="")


CASH_AWARD_STATES = ("proposed", "approved", "rejected", "paid")


class CashAward(Base):
    """A cash reward for a highly valuable clue: proposed by one administrator, approved by another (never
    the same person), then paid out against a claim code the reporter holds. For an anonymous reporter,
    only the two approvers know who it is: the payout is made to whoever shows the code."""

    __tablename__ = "cash_awards"
    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        CheckConstraint("approved_by_id IS NULL OR approved_by_id <> proposed_by_id", name="two_people"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    clue_id: Mapped[int] = mapped_column(ForeignKey("clues.id"), index=True)
    rider_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    amount_fen: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="proposed")
    proposed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    proposed_at: Mapped[datetime] = mapped_column(default=utcnow)
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    # The code the reporter shows to be paid (given to them on approval), kept to check it at the payout.
    claim_code: Mapped[str | None] = mapped_column(String(32), unique=True)
    paid_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    paid_at: Mapped[datetime | None]
