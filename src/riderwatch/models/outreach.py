"""Leaflet outreach: campaigns (anti-telecom-fraud, safety …), leaflet stock issued to stations and
returned, and the distributions riders log from their phones (how many, where, when)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from riderwatch.db import Base
from riderwatch.infra.clock import utcnow

CAMPAIGN_TOPICS = ("anti_fraud", "safety", "law", "other")
STOCK_KINDS = ("issue", "return")


class LeafletCampaign(Base):
    __tablename__ = "leaflet_campaigns"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    topic: Mapped[str] = mapped_column(String(16), default="anti_fraud")
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    # How many leaflets the campaign means to hand out (None: no target).
    target: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None]


class LeafletStock(Base):
    """Leaflets of a campaign issued to a station, or returned by it. Only inserted into: a station's stock
    is what it was issued, less what it returned and what its riders handed out."""

    __tablename__ = "leaflet_stock"
    __table_args__ = (
        CheckConstraint("count > 0", name="count_positive"),
        Index("ix_leaflet_stock_campaign_station", "campaign_id", "station_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("leaflet_campaigns.id"))
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"))
    kind: Mapped[str] = mapped_column(String(8))
    count: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(Text, default="")
    by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class LeafletDistribution(Base):
    """Leaflets a rider handed out with meals: how many, where (WGS-84, and the community and grid it lies
    in), when. A retried send with the same key is stored once."""

    __tablename__ = "leaflet_distributions"
    __table_args__ = (
        CheckConstraint("count > 0", name="count_positive"),
        UniqueConstraint("rider_id", "idempotency_key", name="uq_leaflet_distributions_rider_key"),
        Index("ix_leaflet_distributions_campaign_station", "campaign_id", "station_id"),
        Index("ix_leaflet_distributions_rider", "rider_id", "handed_at"),
        Index("ix_leaflet_distributions_handed", "handed_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("leaflet_campaigns.id"))
    rider_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"))
    count: Mapped[int] = mapped_column(Integer)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id"))
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"))
    handed_at: Mapped[datetime]
    idempotency_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
