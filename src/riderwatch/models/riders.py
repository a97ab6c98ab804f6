"""The riders' programme: each change of a rider's standing (who, when, why), and the join links of stations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from riderwatch.db import Base
from riderwatch.infra.clock import utcnow


class RiderStatusChange(Base):
    """One step of a rider's path (applied → active → suspended / left …): append-only."""

    __tablename__ = "rider_status_changes"
    __table_args__ = (Index("ix_rider_status_changes_rider_at", "rider_id", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    rider_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text, default="")


class JoinLink(Base):
    """A station's invitation to apply: anyone with the link (or its QR code) may apply to that station
    until it runs out, is used up or is withdrawn. The code is kept as it is, so that the station can print
    its QR code again: it admits nobody, it only lets a rider apply (the station activates them)."""

    __tablename__ = "join_links"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    max_uses: Mapped[int] = mapped_column(Integer, default=100)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    withdrawn_at: Mapped[datetime | None]
