"""incidents: the police's own recorded cases, imported for hotspots and key periods

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 21:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import riderwatch.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("category_code", sa.String(length=64), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("occurred_at", riderwatch.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("external_ref", sa.String(length=64), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("imported_at", riderwatch.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("imported_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "lat BETWEEN -90 AND 90 AND lon BETWEEN -180 AND 180", name=op.f("ck_incidents_position_valid")
        ),
        sa.ForeignKeyConstraint(
            ["category_code"], ["categories.code"], name=op.f("fk_incidents_category_code_categories")
        ),
        sa.ForeignKeyConstraint(["imported_by_id"], ["users.id"], name=op.f("fk_incidents_imported_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
        sa.UniqueConstraint("source", "external_ref", name="uq_incidents_source_external_ref"),
    )
    op.create_index("ix_incidents_occurred_at", "incidents", ["occurred_at"], unique=False)
    op.create_index("ix_incidents_lat_lon", "incidents", ["lat", "lon"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_incidents_lat_lon", table_name="incidents")
    op.drop_index("ix_incidents_occurred_at", table_name="incidents")
    op.drop_table("incidents")
