"""Organisations and areas: jurisdiction, communities, grids, patrol units, platforms, stations, zones."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from riderwatch.db import Base


class Jurisdiction(Base):
    """A police station's area (the article's Zhenhai Police Station)."""

    __tablename__ = "jurisdictions"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")


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


class Grid(Base):
    """A grid (网格) inside a community, with one grid worker."""

    __tablename__ = "grids"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"))
    boundary: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Bounding box, kept to find candidate grids for a point without loading every polygon.
    min_lat: Mapped[float] = mapped_column(Float)
    min_lon: Mapped[float] = mapped_column(Float)
    max_lat: Mapped[float] = mapped_column(Float)
    max_lon: Mapped[float] = mapped_column(Float)


class PatrolUnit(Base):
    """A patrol team (巡防队)."""

    __tablename__ = "patrol_units"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    jurisdiction_id: Mapped[int] = mapped_column(ForeignKey("jurisdictions.id"))


class Platform(Base):
    """A delivery platform company."""

    __tablename__ = "platforms"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")


class Station(Base):
    """A delivery station (站点) of a platform; riders belong to one."""

    __tablename__ = "stations"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    platform_id: Mapped[int | None] = mapped_column(ForeignKey("platforms.id"))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)


class Zone(Base):
    """A named area such as a pilot commercial district, with its rollout stage."""

    __tablename__ = "zones"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(32), default="pilot")
    rollout_stage: Mapped[str] = mapped_column(String(32), default="pilot")
    boundary: Mapped[dict[str, Any]] = mapped_column(JSON)
