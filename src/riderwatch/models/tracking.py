"""Rider positions and patrol coverage: consent and shifts, devices, raw positions, H3 aggregates.

Raw positions and everything that names a rider next to a place (`positions`,
`tracking_last_positions`, `coverage_rider_cells`) expire after the retention period and are
deleted when a rider withdraws consent. `coverage_cells` holds only anonymous counts and is kept.
Cells are H3 indexes as 64-bit integers; hours are whole hours since 1970-01-01T00:00Z, so that the
aggregates key on plain integers on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, mapped_column

from riderwatch.db import Base
from riderwatch.infra.clock import utcnow


class LocationConsent(Base):
    """One decision of a rider about location sharing: append-only (PIPL: separate, provable consent)."""

    __tablename__ = "location_consents"
    __table_args__ = (Index("ix_location_consents_rider_at", "rider_id", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    rider_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    granted: Mapped[bool] = mapped_column(Boolean)
    text_version: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # Raw positions deleted because of this withdrawal (0 for a grant).
    deleted_positions: Mapped[int] = mapped_column(Integer, default=0)


class DutyShift(Base):
    """A stretch of time on duty, started and stopped by the rider; positions count only inside one."""

    __tablename__ = "duty_shifts"
    __table_args__ = (Index("ix_duty_shifts_rider_started", "rider_id", "started_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    rider_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    # "rider" (went off duty) or "consent_withdrawn".
    ended_by: Mapped[str | None] = mapped_column(String(32))


class TrackingDevice(Base):
    """A Traccar Client device id (OsmAnd protocol `id`), registered by the rider who carries it.

    The id stands in for a login, so RiderWatch issues it (`issued`: long and random); an id the rider
    chose in the app (the API still takes one) is easier to guess. `label` is the rider's own name for
    the phone, shown to them only.
    """

    __tablename__ = "tracking_devices"
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    rider_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    issued: Mapped[bool] = mapped_column(Boolean, default=False)
    label: Mapped[str | None] = mapped_column(String(64))


class Position(Base):
    """A raw position of a rider on duty; one per rider and instant (duplicates are stored once).

    The table that takes a row per ping, so it carries no more than it must (see docs/architecture.md,
    "The position write path"): no foreign key to `users` (ingest has just read the rider, and
    riders are deactivated, never deleted; their positions go by consent withdrawal and retention),
    and on PostgreSQL a BRIN index on `ts` for the retention purge, since rows arrive in time order.
    """

    __tablename__ = "positions"
    __table_args__ = (
        Index("ix_positions_ts", "ts", postgresql_using="brin"),
        CheckConstraint("lat BETWEEN -90 AND 90 AND lon BETWEEN -180 AND 180", name="position_valid"),
        # On SQLite the rows sit in the key's B-tree (a rider's positions together, in time order):
        # one B-tree less to keep (a smaller file, a faster purge, ingest no slower), and a rider's
        # span is read without a lookup per row.
        {"sqlite_with_rowid": False},
    )
    rider_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[datetime] = mapped_column(primary_key=True)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    # H3 cell at the finest configured coverage resolution.
    cell: Mapped[int] = mapped_column(BigInteger)
    speed_mps: Mapped[float | None] = mapped_column(Float)
    heading: Mapped[float | None] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


# Rows rewritten by every ingest batch keep half of each PostgreSQL page free, so that an update
# fits beside the old version and writes no index entry (a HOT update; migration 0009).
ROOMY_PAGES = {"postgresql_with": {"fillfactor": 50}}
# The counts, rewritten by each fold for the current hours' cells and kept for good: a tenth of
# each page free for those updates, not half of a table that only grows (migration 0012).
SOME_ROOM = {"postgresql_with": {"fillfactor": 90}}


class LastPosition(Base):
    """Each rider's latest accepted position: the reference for jump checks and the live map.

    Not indexed on `ts`: every batch moves it (an index would turn each update into index writes),
    and the live map reads every rider on duty anyway, one row each.
    """

    __tablename__ = "tracking_last_positions"
    __table_args__ = (ROOMY_PAGES,)
    rider_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    ts: Mapped[datetime]
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    speed_mps: Mapped[float | None] = mapped_column(Float)
    heading: Mapped[float | None] = mapped_column(Float)


class CoverageCell(Base):
    """Anonymous coverage: passes (positions) and distinct riders per H3 cell and hour. Kept."""

    __tablename__ = "coverage_cells"
    __table_args__ = (
        Index("ix_coverage_cells_resolution_hour", "resolution", "hour"),
        # On SQLite the rows sit in the key's B-tree, so a cell's hours are read together (the
        # coverage query) with no lookup from an index to the row.
        {"sqlite_with_rowid": False, **SOME_ROOM},
    )
    resolution: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    cell: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hour: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    passes: Mapped[int] = mapped_column(Integer, default=0)
    riders: Mapped[int] = mapped_column(Integer, default=0)


# Tables that exist on PostgreSQL only (created by migrations there; not compared on SQLite).
POSTGRESQL_ONLY = MetaData()

# Counts added by ingest on PostgreSQL, not yet folded into `coverage_cells` (coverage.counts.fold_counts):
# one row per batch, its cell-hours as parallel arrays. Batches of many riders touch the same
# cell-hours at once; adding to `coverage_cells` directly made them queue on those rows' locks, and
# each addition looked the row up and rewrote it; a row per cell-hour here still cost a row per
# ping or so, written and then deleted by the fold. Here a batch appends one row: no key, no index,
# nothing to wait for. Readers of `coverage_cells` fold first, and a periodic job keeps the table
# short. SQLite has one writer at a time and adds to the counts directly.
coverage_cell_deltas = Table(
    "coverage_cell_deltas",
    POSTGRESQL_ONLY,
    Column("resolution", postgresql.ARRAY(SmallInteger), nullable=False),
    Column("cell", postgresql.ARRAY(BigInteger), nullable=False),
    Column("hour", postgresql.ARRAY(Integer), nullable=False),
    Column("passes", postgresql.ARRAY(Integer), nullable=False),
    Column("riders", postgresql.ARRAY(Integer), nullable=False),
)


class CoverageRiderCell(Base):
    """Which rider passed a cell in an hour, so `coverage_cells.riders` counts each rider once.

    It names riders, so it expires with the raw positions and goes when consent is withdrawn. Written
    at ingest like `positions` (most pings open a new cell-hour for their rider), so likewise without
    a foreign key, and with a BRIN index on `hour` on PostgreSQL for the purge.
    """

    __tablename__ = "coverage_rider_cells"
    # A rowid table on SQLite, unlike `positions` and `coverage_cells`: nothing reads it by its key
    # but ingest's conflict check, and without rowid its two indexes carry the whole key (the one on
    # `hour` is no longer appended to in order): its inserts took about 1.5 times as long.
    __table_args__ = (
        Index("ix_coverage_rider_cells_hour", "hour", postgresql_using="brin"),
        Index("ix_coverage_rider_cells_rider", "rider_id"),
    )
    resolution: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    cell: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hour: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    rider_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


class PositionRefusal(Base):
    """How many of a rider's points were refused, per day (local, when received) and reason.

    Traccar Client is told 200 for a point that can never be stored (so it does not retry it for
    ever); the count keeps the refusal visible to the rider and to dispatchers. No place is kept.
    """

    __tablename__ = "tracking_refusals"
    __table_args__ = (Index("ix_tracking_refusals_day", "day"),)
    rider_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    reason: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
