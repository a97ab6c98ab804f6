"""Clues: the category taxonomy, the clue itself, its timeline and its photos."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from riderwatch.db import Base
from riderwatch.infra.clock import utcnow

STATUSES = ("submitted", "verified", "dispatched", "in_progress", "resolved", "closed", "rejected", "duplicate")
HANDLER_ROLES = ("police", "grid_staff", "patrol")


class Category(Base):
    """A clue category; also an Open311 service. Editable by admin."""

    __tablename__ = "categories"
    __table_args__ = (CheckConstraint("handler_role IN ('police','grid_staff','patrol')", name="handler_role_known"),)
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    description_zh: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    group: Mapped[str] = mapped_column(String(32))  # crime | hazard | service
    keywords: Mapped[str] = mapped_column(String(200), default="")
    # Routing rule: which kind of party handles it (community police, grid staff, patrol).
    handler_role: Mapped[str] = mapped_column(String(32))
    # Hours from report to closure, normal and urgent.
    deadline_hours: Mapped[int] = mapped_column(Integer, default=72)
    urgent_deadline_hours: Mapped[int] = mapped_column(Integer, default=4)
    # Open to the public in Open311 GET requests (hazards, public facilities); never crime.
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)


class Clue(Base):
    __tablename__ = "clues"
    __table_args__ = (
        CheckConstraint("status IN ('" + "','".join(STATUSES) + "')", name="status_known"),
        CheckConstraint("lat BETWEEN -90 AND 90 AND lon BETWEEN -180 AND 180", name="position_valid"),
        CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="rating_range"),
        CheckConstraint("value_grade IS NULL OR value_grade IN ('A','B','C','none')", name="grade_known"),
        UniqueConstraint("reporter_id", "idempotency_key", name="uq_clues_reporter_idempotency"),
        Index("ix_clues_status_deadline", "status", "deadline_at"),
        Index("ix_clues_lat_lon", "lat", "lon"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    category_code: Mapped[str] = mapped_column(ForeignKey("categories.code"), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    address: Mapped[str] = mapped_column(String(300), default="")
    observed_at: Mapped[datetime]
    reported_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(16), default="app")  # app | open311
    # Contact details given through Open311 (dispatchers only).
    contact: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    request_fingerprint: Mapped[str | None] = mapped_column(String(64))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="submitted")
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("clues.id"))
    deadline_at: Mapped[datetime]
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(Text)  # last reject / reopen reason
    value_grade: Mapped[str | None] = mapped_column(String(4))
    rating: Mapped[int | None] = mapped_column(Integer)
    # The routing rule that proposed the handler it was dispatched to (None: the category's fallback, or
    # the dispatcher chose someone else).
    routing_rule_id: Mapped[int | None] = mapped_column(ForeignKey("routing_rules.id"))
    # A sighting: the alert the rider answered with this report.
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), index=True)

    photos: Mapped[list[CluePhoto]] = relationship(
        back_populates="clue", order_by="CluePhoto.position", cascade="all, delete-orphan"
    )
    events: Mapped[list[ClueEvent]] = relationship(order_by="ClueEvent.id", viewonly=True)


class ClueEvent(Base):
    """One step of a clue's timeline: who, when, what, why. Append-only."""

    __tablename__ = "clue_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    clue_id: Mapped[int] = mapped_column(ForeignKey("clues.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class CluePhoto(Base):
    """A photo of a clue; the bytes live in the data dir under their SHA-256."""

    __tablename__ = "clue_photos"
    __table_args__ = (UniqueConstraint("clue_id", "position", name="uq_clue_photos_clue_position"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    clue_id: Mapped[int] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    content_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)

    clue: Mapped[Clue] = relationship(back_populates="photos")
