"""positions and coverage: consent records, duty shifts, devices, raw positions, H3 aggregates

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 17:04:08.197579
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import riderwatch.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "coverage_cells",
        sa.Column("resolution", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("cell", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hour", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("passes", sa.Integer(), nullable=False),
        sa.Column("riders", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("resolution", "cell", "hour", name=op.f("pk_coverage_cells")),
    )
    with op.batch_alter_table("coverage_cells", schema=None) as batch_op:
        batch_op.create_index("ix_coverage_cells_resolution_hour", ["resolution", "hour"], unique=False)

    op.create_table(
        "coverage_rider_cells",
        sa.Column("resolution", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("cell", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hour", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("rider_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.ForeignKeyConstraint(
            ["rider_id"], ["users.id"], name=op.f("fk_coverage_rider_cells_rider_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("resolution", "cell", "hour", "rider_id", name=op.f("pk_coverage_rider_cells")),
    )
    with op.batch_alter_table("coverage_rider_cells", schema=None) as batch_op:
        batch_op.create_index("ix_coverage_rider_cells_hour", ["hour"], unique=False)
        batch_op.create_index("ix_coverage_rider_cells_rider", ["rider_id"], unique=False)

    op.create_table(
        "duty_shifts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rider_id", sa.Integer(), nullable=False),
        sa.Column("started_at", riderwatch.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", riderwatch.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["rider_id"], ["users.id"], name=op.f("fk_duty_shifts_rider_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duty_shifts")),
    )
    with op.batch_alter_table("duty_shifts", schema=None) as batch_op:
        batch_op.create_index("ix_duty_shifts_rider_started", ["rider_id", "started_at"], unique=False)

    op.create_table(
        "location_consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rider_id", sa.Integer(), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("text_version", sa.String(length=32), nullable=False),
        sa.Column("at", riderwatch.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_positions", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["rider_id"], ["users.id"], name=op.f("fk_location_consents_rider_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_location_consents")),
    )
    with op.batch_alter_table("location_consents", schema=None) as batch_op:
        batch_op.create_index("ix_location_consents_rider_at", ["rider_id", "at"], unique=False)

    op.create_table(
        "positions",
        sa.Column("rider_id", sa.Integer(), nullable=False),
        sa.Column("ts", riderwatch.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("cell", sa.BigInteger(), nullable=False),
        sa.Column("speed_mps", sa.Float(), nullable=True),
        sa.Column("heading", sa.Float(), nullable=True),
        sa.Column("accuracy_m", sa.Float(), nullable=True),
        sa.Column("received_at", riderwatch.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "lat BETWEEN -90 AND 90 AND lon BETWEEN -180 AND 180", name=op.f("ck_positions_position_valid")
        ),
        sa.ForeignKeyConstraint(
            ["rider_id"], ["users.id"], name=op.f("fk_positions_rider_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("rider_id", "ts", name=op.f("pk_positions")),
    )
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.create_index("ix_positions_ts", ["ts"], unique=False)

    op.create_table(
        "tracking_devices",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("rider_id", sa.Integer(), nullable=False),
        sa.Column("created_at", riderwatch.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["rider_id"], ["users.id"], name=op.f("fk_tracking_devices_rider_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_tracking_devices")),
    )
    with op.batch_alter_table("tracking_devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tracking_devices_rider_id"), ["rider_id"], unique=False)

    op.create_table(
        "tracking_last_positions",
        sa.Column("rider_id", sa.Integer(), nullable=False),
        sa.Column("ts", riderwatch.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("speed_mps", sa.Float(), nullable=True),
        sa.Column("heading", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["rider_id"], ["users.id"], name=op.f("fk_tracking_last_positions_rider_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("rider_id", name=op.f("pk_tracking_last_positions")),
    )
    with op.batch_alter_table("tracking_last_positions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tracking_last_positions_ts"), ["ts"], unique=False)

    backfill_consents()


def backfill_consents() -> None:
    # Riders who consented before consent records existed get one record of that decision, so the
    # history a rider is shown starts with the consent their positions rest on.
    op.execute(
        "INSERT INTO location_consents (rider_id, granted, text_version, at, deleted_positions) "
        "SELECT user_id, true, COALESCE(location_consent_text_version, 'v1'), location_consent_at, 0 "
        "FROM riders WHERE location_consent AND location_consent_at IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("tracking_last_positions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tracking_last_positions_ts"))

    op.drop_table("tracking_last_positions")
    with op.batch_alter_table("tracking_devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tracking_devices_rider_id"))

    op.drop_table("tracking_devices")
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.drop_index("ix_positions_ts")

    op.drop_table("positions")
    with op.batch_alter_table("location_consents", schema=None) as batch_op:
        batch_op.drop_index("ix_location_consents_rider_at")

    op.drop_table("location_consents")
    with op.batch_alter_table("duty_shifts", schema=None) as batch_op:
        batch_op.drop_index("ix_duty_shifts_rider_started")

    op.drop_table("duty_shifts")
    with op.batch_alter_table("coverage_rider_cells", schema=None) as batch_op:
        batch_op.drop_index("ix_coverage_rider_cells_rider")
        batch_op.drop_index("ix_coverage_rider_cells_hour")

    op.drop_table("coverage_rider_cells")
    with op.batch_alter_table("coverage_cells", schema=None) as batch_op:
        batch_op.drop_index("ix_coverage_cells_resolution_hour")

    op.drop_table("coverage_cells")
