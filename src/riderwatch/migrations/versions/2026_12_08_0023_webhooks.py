"""Webhooks: channels (a party's duty group chat or a user's own robot) and the outbox of deliveries;
alerts may also go to other parties (alerts.audience_parties)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-08 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import riderwatch.db

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = riderwatch.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhook_channels",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("party", sa.String(length=16), nullable=True),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("url", sa.String(length=1000), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("created_by_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("retired_at", UTC, nullable=True),
    )
    op.create_index("ix_webhook_channels_party", "webhook_channels", ["party"])
    op.create_index("ix_webhook_channels_owner_id", "webhook_channels", ["owner_id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("channel_id", sa.Integer(), sa.ForeignKey("webhook_channels.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTC, nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", UTC, nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("test", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("delivered_at", UTC, nullable=True),
    )
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_webhook_deliveries_channel", "webhook_deliveries", ["channel_id", "id"])
    # In place, as 0022 did: `alerts` is referred to by receipts, notices and clues.
    op.add_column("alerts", sa.Column("audience_parties", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    op.drop_column("alerts", "audience_parties")
    op.drop_index("ix_webhook_deliveries_channel", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_webhook_channels_owner_id", table_name="webhook_channels")
    op.drop_index("ix_webhook_channels_party", table_name="webhook_channels")
    op.drop_table("webhook_channels")
