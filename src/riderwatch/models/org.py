"""Organisations and areas: jurisdiction, communities, grids, patrol units, platforms, stations, zones."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from riderwatch.db import Base
from riderwatch.infra.clock import utcnow

# Every kind can be retired: the row stays (old clues keep their place names, the audit log its
# references), but a retired area takes no new clue, link or task, and lists leave it out.
ZONE_KINDS: tuple[str, ...] = ("commercial", "residential", "school", "industrial", "transport", "other")
ROLLOUT_STAGES: tuple[str, ...] = ("planned", "pilot", "rolled_out")


class Jurisdiction(Base):
    """A police station's area (the article's Zhenhai Police Station)."""

    __tablename__ = "jurisdictions"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    # The station's area (GeoJSON Polygon); when set, every community, grid and zone lies inside it.
    boundary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    retired_at: Mapped[datetime | None]


class Community(Base):
    """A community (社区) with its boundary; community police are users linked to it."""

    __tablename__ = "communities"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    jurisdiction_id: Mapped[int] = mapped_column(ForeignKey("jurisdictions.id"))
    # GeoJSON Polygon geometry (WGS-84).
    boundary: Mapped[dict[str, Any]] = mapped_column(JSON)
    retired_at: Mapped[datetime | None]


class Grid(Base):
    """A grid (网格) inside a community, with one grid worker."""

    __tablename__ = "grids"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"))
    boundary: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Bounding box, kept to find candidate grids for a point without loading every polygon.
    min_lat: Mapped[float] = mapped_column(Float)
    min_lon: Mapped[float] = mapped_column(Float)
    max_lat: Mapped[float] = mapped_column(Float)
    max_lon: Mapped[float] = mapped_column(Float)
    retired_at: Mapped[datetime | None]


class PatrolUnit(Base):
    """A patrol team (巡防队)."""

    __tablename__ = "patrol_units"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    jurisdiction_id: Mapped[int] = mapped_column(ForeignKey("jurisdictions.id"))
    retired_at: Mapped[datetime | None]


class Platform(Base):
    """A delivery platform company."""

    __tablename__ = "platforms"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    retired_at: Mapped[datetime | None]


class Station(Base):
    """A delivery station (站点) of a platform; riders belong to one."""

    __tablename__ = "stations"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    platform_id: Mapped[int | None] = mapped_column(ForeignKey("platforms.id"))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    retired_at: Mapped[datetime | None]


class Zone(Base):
    """A named area such as a pilot commercial district, with its rollout stage."""

    __tablename__ = "zones"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(32), default="commercial")
    rollout_stage: Mapped[str] = mapped_column(String(32), default="pilot")
    boundary: Mapped[dict[str, Any]] = mapped_column(JSON)
    # When the zone's pilot began and when the programme was rolled out there (either may lie ahead).
    pilot_on: Mapped[date | None]
    rolled_out_on: Mapped[date | None]
    retired_at: Mapped[datetime | None]


# Who a routing rule sends a clue to: the place's community police or grid staff, any patrol member, the
# members of one patrol unit, or one named person.
ROUTING_PARTIES: tuple[str, ...] = ("police", "grid_staff", "patrol", "patrol_unit", "person")
ROUTING_AREAS: tuple[str, ...] = ("any", "grid", "community", "zone")


class RoutingRule(Base):
    """Category × area → party, tried in `position` order; the first that names someone proposes the
    handler, else the category's own handler role does (the fallback). Rules are retired, not deleted:
    clues keep the rule that proposed their handler."""

    __tablename__ = "routing_rules"
    id: Mapped[int] = mapped_column(primary_key=True)
    position: Mapped[int] = mapped_column(default=100)
    category_code: Mapped[str | None] = mapped_column(ForeignKey("categories.code"))  # None: any category
    area_kind: Mapped[str] = mapped_column(String(16), default="any")
    area_code: Mapped[str | None] = mapped_column(String(64))
    party: Mapped[str] = mapped_column(String(16))
    patrol_unit_id: Mapped[int | None] = mapped_column(ForeignKey("patrol_units.id"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
