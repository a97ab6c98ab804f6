"""Leaflet outreach: campaigns, stations' stock, riders' distributions

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-08 11:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import riderwatch.db

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = riderwatch.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "leaflet_campaigns",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("topic", sa.String(length=16), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("target", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("retired_at", UTC, nullable=True),
        sa.UniqueConstraint("code", name=op.f("uq_leaflet_campaigns_code")),
    )
    op.create_table(
        "leaflet_stock",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("leaflet_campaigns.id"), nullable=False),
        sa.Column("station_id", sa.Integer(), sa.ForeignKey("stations.id"), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("by_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("at", UTC, nullable=False),
        sa.CheckConstraint("count > 0", name=op.f("ck_leaflet_stock_count_positive")),
    )
    op.create_index("ix_leaflet_stock_campaign_station", "leaflet_stock", ["campaign_id", "station_id"])
    op.create_table(
        "leaflet_distributions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("leaflet_campaigns.id"), nullable=False),
        sa.Column("rider_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("station_id", sa.Integer(), sa.ForeignKey("stations.id"), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("community_id", sa.Integer(), sa.ForeignKey("communities.id"), nullable=True),
        sa.Column("grid_id", sa.Integer(), sa.ForeignKey("grids.id"), nullable=True),
        sa.Column("handed_at", UTC, nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.CheckConstraint("count > 0", name=op.f("ck_leaflet_distributions_count_positive")),
        sa.UniqueConstraint("rider_id", "idempotency_key", name="uq_leaflet_distributions_rider_key"),
    )
    op.create_index("ix_leaflet_distributions_campaign_station", "leaflet_distributions", ["campaign_id", "station_id"])
    op.create_index("ix_leaflet_distributions_rider", "leaflet_distributions", ["rider_id", "handed_at"])
    op.create_index("ix_leaflet_distributions_handed", "leaflet_distributions", ["handed_at"])


def downgrade() -> None:
    op.drop_index("ix_leaflet_distributions_handed", table_name="leaflet_distributions")
    op.drop_index("ix_leaflet_distributions_rider", table_name="leaflet_distributions")
    op.drop_index("ix_leaflet_distributions_campaign_station", table_name="leaflet_distributions")
    op.drop_table("leaflet_distributions")
    op.drop_index("ix_leaflet_stock_campaign_station", table_name="leaflet_stock")
    op.drop_table("leaflet_stock")
    op.drop_table("leaflet_campaigns")
