"""Riders' voice: suggestions and complaints to the police with their answers and ratings, and the police's
visits to riders (visits, condolences, forums) with the follow-up actions they promised."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from riderwatch.db import Base
from riderwatch.infra.clock import utcnow

FEEDBACK_KINDS = ("suggestion", "complaint")
VISIT_KINDS = ("visit", "condolence", "forum")


class Feedback(Base):
    """A rider's suggestion or complaint, routed to a responsible officer with a deadline, answered, and
    the answer rated. An anonymous one never shows who wrote it to anyone but the rider."""

    __tablename__ = "feedback"
    __table_args__ = (
        Index("ix_feedback_status_due", "status", "due_at"),
        CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="rating_range"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    rider_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | answered
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    due_at: Mapped[datetime]
    answer: Mapped[str | None] = mapped_column(Text)
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    answered_at: Mapped[datetime | None]
    rating: Mapped[int | None] = mapped_column(Integer)
    rating_note: Mapped[str] = mapped_column(Text, default="")
    rated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Visit(Base):
    """A visit to riders (at a station, a condolence at home, a forum), who led it, what was said."""

    __tablename__ = "visits"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    held_on: Mapped[date] = mapped_column(Date, index=True)
    place: Mapped[str] = mapped_column(String(200), default="")
    station_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id"))
    officer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class VisitRider(Base):
    __tablename__ = "visit_riders"
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id", ondelete="CASCADE"), primary_key=True)
    rider_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)


class VisitAction(Base):
    """Something promised at a visit: what, who sees to it, by when, and when it was done."""

    __tablename__ = "visit_actions"
    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    due_on: Mapped[date] = mapped_column(Date)
    done_at: Mapped[datetime | None]
    done_note: Mapped[str] = mapped_column(Text, default="")
