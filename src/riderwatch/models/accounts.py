"""People and machine accounts: users with one role, rider profiles, API keys, login failures, sessions."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from riderwatch.db import Base
from riderwatch.infra.clock import utcnow


class Role(StrEnum):
    """The roles, one per user (ADR 0002); what each may do is the policy's (`policy.PERMISSIONS`)."""

    admin = "admin"
    dispatcher = "dispatcher"
    police = "police"
    grid_staff = "grid_staff"
    patrol = "patrol"
    station_manager = "station_manager"
    platform = "platform"
    rider = "rider"


class RiderStatus(StrEnum):
    """Where a rider stands in the programme."""

    applied = "applied"
    active = "active"
    suspended = "suspended"
    left = "left"


ROLES: tuple[str, ...] = tuple(r.value for r in Role)
RIDER_STATUSES: tuple[str, ...] = tuple(s.value for s in RiderStatus)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('" + "','".join(ROLES) + "')", name="role_known"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    phone: Mapped[str | None] = mapped_column(String(32))
    locale: Mapped[str | None] = mapped_column(String(16))
    # Where a handler works: police → community, grid staff → grid, patrol → patrol unit.
    community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id"))
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"))
    patrol_unit_id: Mapped[int | None] = mapped_column(ForeignKey("patrol_units.id"))
    # Station managers and riders belong to a delivery station; platform accounts to a platform.
    station_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id"))
    platform_id: Mapped[int | None] = mapped_column(ForeignKey("platforms.id"))
    # Bumped to invalidate every token and session of the user (password change, deactivation).
    token_version: Mapped[int] = mapped_column(Integer, default=1)
    # Set for a password someone else chose (an import, an administrator's one-time code): the user must
    # choose their own before anything else (policy.ensure). A one-time code also runs out.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    password_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A rider's membership, loaded with the user (one outer join on its key), so that a user read in one
    # transaction still tells, later, where they stand in the programme (policy.member_refusal).
    membership: Mapped[Rider | None] = relationship(viewonly=True, uselist=False, lazy="joined")


class Rider(Base):
    """A rider's team membership and their consent to location sharing (PIPL: separate consent)."""

    __tablename__ = "riders"
    __table_args__ = (CheckConstraint("status IN ('" + "','".join(RIDER_STATUSES) + "')", name="status_known"),)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    platform_id: Mapped[int | None] = mapped_column(ForeignKey("platforms.id"))
    station_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id"))
    status: Mapped[str] = mapped_column(String(16), default="applied")
    joined_on: Mapped[date | None] = mapped_column(Date)
    location_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    location_consent_at: Mapped[datetime | None]
    location_consent_text_version: Mapped[str | None] = mapped_column(String(32))
    # The nickname the rider appears under on the leaderboards (None: their name, all but the first character hidden).
    board_name: Mapped[str | None] = mapped_column(String(32))


class LoginFailure(Base):
    """A failed login, kept for rate limiting (shared by every server process through the database)."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_username_at", "username", "at"),
        Index("ix_login_failures_client_at", "client", "at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    client: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)


class UserSession(Base):
    """A signed-in browser. The session cookie carries the key (only its SHA-256 is stored): logging
    out ends the row, and a cookie whose row has ended signs nobody in, however long it is still valid."""

    __tablename__ = "user_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    client: Mapped[str] = mapped_column(String(64), default="")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]


class ApiKey(Base):
    """An Open311 API key; only its SHA-256 is stored."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
