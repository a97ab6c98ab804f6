"""Alerts (CAP 1.2), riders' receipts of them, users' notices and the events of their live streams

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-08 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import riderwatch.db

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = riderwatch.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("msg_type", sa.String(length=8), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("references_id", sa.Integer(), sa.ForeignKey("alerts.id"), nullable=True),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("event", sa.String(length=200), nullable=False),
        sa.Column("urgency", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("certainty", sa.String(length=16), nullable=False),
        sa.Column("effective", UTC, nullable=False),
        sa.Column("expires", UTC, nullable=False),
        sa.Column("headline", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("instruction", sa.Text(), nullable=False),
        sa.Column("headline_en", sa.String(length=200), nullable=False),
        sa.Column("description_en", sa.Text(), nullable=False),
        sa.Column("instruction_en", sa.Text(), nullable=False),
        sa.Column("area_desc", sa.String(length=200), nullable=False),
        sa.Column("polygon", sa.JSON(), nullable=True),
        sa.Column("circle_lat", sa.Float(), nullable=True),
        sa.Column("circle_lon", sa.Float(), nullable=True),
        sa.Column("circle_radius_m", sa.Float(), nullable=True),
        sa.Column("audience", sa.String(length=16), nullable=False),
        sa.Column("audience_stations", sa.JSON(), nullable=False),
        sa.Column("sender_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("sent_at", UTC, nullable=False),
    )
    op.create_index("ix_alerts_expires", "alerts", ["expires"])
    op.create_index("ix_alerts_references_id", "alerts", ["references_id"])
    op.create_table(
        "alert_receipts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("alert_id", sa.Integer(), sa.ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("rider_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("targeted_at", UTC, nullable=False),
        sa.Column("acknowledged_at", UTC, nullable=True),
        sa.UniqueConstraint("alert_id", "rider_id", name="uq_alert_receipts_alert_rider"),
    )
    op.create_index("ix_alert_receipts_rider", "alert_receipts", ["rider_id"])
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("clue_id", sa.Integer(), sa.ForeignKey("clues.id", ondelete="CASCADE"), nullable=True),
        sa.Column("alert_id", sa.Integer(), sa.ForeignKey("alerts.id", ondelete="CASCADE"), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("read_at", UTC, nullable=True),
    )
    op.create_index("ix_notices_user_id", "notices", ["user_id", "id"])
    op.create_table(
        "stream_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
    )
    op.create_index("ix_stream_events_user_id", "stream_events", ["user_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_stream_events_user_id", table_name="stream_events")
    op.drop_table("stream_events")
    op.drop_index("ix_notices_user_id", table_name="notices")
    op.drop_table("notices")
    op.drop_index("ix_alert_receipts_rider", table_name="alert_receipts")
    op.drop_table("alert_receipts")
    op.drop_index("ix_alerts_references_id", table_name="alerts")
    op.drop_index("ix_alerts_expires", table_name="alerts")
    op.drop_table("alerts")
