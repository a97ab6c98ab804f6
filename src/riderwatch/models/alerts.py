"""Early warnings to riders (CAP 1.2), what reached whom, users' notices, and the events users' live
streams carry.

An alert is immutable once published: an update or a cancellation is a new row (`msg_type` Update or
Cancel) that `references` the one before; every version is delivered to its audience. Its fields map
one-to-one to CAP 1.2's <alert>/<info>/<area>. `alert_receipts` holds one row per rider and alert
version, made when the rider was targeted (at publish time, or when a position put them inside the area
later), marked when they acknowledged. `stream_events` is the log a live stream replays from: each
row is for one user, with a growing id that is the SSE event id (`Last-Event-ID` resumes after it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from riderwatch.db import Base
from riderwatch.infra.clock import utcnow

# CAP 1.2 vocabularies (OASIS CAP v1.2, section 3.2).
CAP_STATUSES = ("Actual", "Exercise", "System", "Test", "Draft")
CAP_MSG_TYPES = ("Alert", "Update", "Cancel")
CAP_SCOPES = ("Public", "Restricted", "Private")
CAP_CATEGORIES = (
    "Geo",
    "Met",
    "Safety",
    "Security",
    "Rescue",
    "Fire",
    "Health",
    "Env",
    "Transport",
    "Infra",
    "CBRNE",
    "Other",
)
CAP_URGENCIES = ("Immediate", "Expected", "Future", "Past", "Unknown")
CAP_SEVERITIES = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
CAP_CERTAINTIES = ("Observed", "Likely", "Possible", "Unlikely", "Unknown")
# What the command centre sends (the article's early warning, prevention publicity, request for assistance).
ALERT_KINDS = ("warning", "publicity", "assistance")
AUDIENCES = ("area", "stations", "all")


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_expires", "expires"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="warning")
    status: Mapped[str] = mapped_column(String(16), default="Actual")
    msg_type: Mapped[str] = mapped_column(String(8), default="Alert")
    scope: Mapped[str] = mapped_column(String(16), default="Public")
    # The version this one updates or cancels (None for a first version).
    references_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), index=True)
    category: Mapped[str] = mapped_column(String(16))
    event: Mapped[str] = mapped_column(String(200))
    urgency: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    certainty: Mapped[str] = mapped_column(String(16))
    effective: Mapped[datetime]
    expires: Mapped[datetime]
    headline: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    instruction: Mapped[str] = mapped_column(Text, default="")
    headline_en: Mapped[str] = mapped_column(String(200), default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    instruction_en: Mapped[str] = mapped_column(Text, default="")
    area_desc: Mapped[str] = mapped_column(String(200), default="")
    # The area: a GeoJSON Polygon (WGS-84), or a circle (centre and radius in metres).
    polygon: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    circle_lat: Mapped[float | None] = mapped_column(Float)
    circle_lon: Mapped[float | None] = mapped_column(Float)
    circle_radius_m: Mapped[float | None] = mapped_column(Float)
    audience: Mapped[str] = mapped_column(String(16), default="area")
    audience_stations: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Other parties it also goes to (their users' inboxes and their duty group chats): police, grid staff, patrol.
    audience_parties: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    sender_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    # An Extreme alert waits for a second person's approval when the station asks for it: until then it
    # reaches nobody and is in no feed.
    pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[datetime | None]


class AlertReceipt(Base):
    """One rider's copy of one alert version: targeted (and sent to their stream) once, acknowledged once."""

    __tablename__ = "alert_receipts"
    __table_args__ = (
        UniqueConstraint("alert_id", "rider_id", name="uq_alert_receipts_alert_rider"),
        Index("ix_alert_receipts_rider", "rider_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    rider_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # How the rider came into the audience: "area" (a position inside it), "station", "all".
    reason: Mapped[str] = mapped_column(String(16))
    targeted_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None]


class Notice(Base):
    """A notice in a user's inbox: a clue dispatched to them, their clue closed, an alert, …"""

    __tablename__ = "notices"
    __table_args__ = (Index("ix_notices_user_id", "user_id", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    clue_id: Mapped[int | None] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    # What the notice says beyond its kind (an outcome, a deadline), as the message's parameters.
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]


class StreamEvent(Base):
    """An event for one user's live stream (`event` is the SSE event name, `data` its JSON)."""

    __tablename__ = "stream_events"
    __table_args__ = (Index("ix_stream_events_user_id", "user_id", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
