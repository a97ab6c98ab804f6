"""A rider's path through the programme (each change of standing, who made it and why) and stations' join links

Until now a rider's membership status changed in place: nobody could say who suspended a rider, when, or
why. Each change is now a row of `rider_status_changes` (the riders there are today get one row, "joined",
from their join date). A station hands out join links (`join_links`) that run out,
are used up or are withdrawn; a rider who applies through one starts as "applied".

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import riderwatch.db

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rider_status_changes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("rider_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", riderwatch.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
    )
    op.create_index("ix_rider_status_changes_rider_at", "rider_status_changes", ["rider_id", "at"])
    op.create_table(
        "join_links",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(length=32), nullable=False, unique=True),
        sa.Column("station_id", sa.Integer(), sa.ForeignKey("stations.id"), nullable=False),
        sa.Column("created_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("created_at", riderwatch.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", riderwatch.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("max_uses", sa.Integer(), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("withdrawn_at", riderwatch.db.UTCDateTime(timezone=True), nullable=True),
    )
    # Today's riders start their recorded path where they stand, from the day they joined.
    op.execute(
        "INSERT INTO rider_status_changes (rider_id, at, from_status, to_status, actor_id, reason) "
        "SELECT r.user_id, u.created_at, NULL, r.status, NULL, '' FROM riders r JOIN users u ON u.id = r.user_id"
    )


def downgrade() -> None:
    op.drop_table("join_links")
    op.drop_index("ix_rider_status_changes_rider_at", table_name="rider_status_changes")
    op.drop_table("rider_status_changes")
