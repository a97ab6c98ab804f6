"""Incidents: the police's own recorded cases (接处警 and case records), imported, not reported by riders."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from riderwatch.db import Base
from riderwatch.infra.clock import utcnow


class Incident(Base):
    """One case from a police system: what (a clue category), where (WGS-84) and when.

    `(source, external_ref)` names the record in the system it came from, so importing the same
    export again adds nothing, and a later export with a changed record updates it. Incidents have no
    workflow: they feed hotspots and key periods.
    """

    __tablename__ = "incidents"
    __table_args__ = (
        UniqueConstraint("source", "external_ref", name="uq_incidents_source_external_ref"),
        CheckConstraint("lat BETWEEN -90 AND 90 AND lon BETWEEN -180 AND 180", name="position_valid"),
        # The hotspot read: a window of time, then a box of latitude and longitude.
        Index("ix_incidents_occurred_at", "occurred_at"),
        Index("ix_incidents_lat_lon", "lat", "lon"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    category_code: Mapped[str] = mapped_column(ForeignKey("categories.code"))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    occurred_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(32))  # the system it came from, e.g. "110", "case-system"
    external_ref: Mapped[str] = mapped_column(String(64))  # its number there
    note: Mapped[str] = mapped_column(String(500), default="")
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
    imported_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: the command line
