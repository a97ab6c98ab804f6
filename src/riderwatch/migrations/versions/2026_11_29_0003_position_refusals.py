"""position refusals: per rider, day and reason, so points refused with a 200 are still counted

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 21:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tracking_refusals",
        sa.Column("rider_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["rider_id"], ["users.id"], name=op.f("fk_tracking_refusals_rider_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("rider_id", "day", "reason", name=op.f("pk_tracking_refusals")),
    )
    with op.batch_alter_table("tracking_refusals", schema=None) as batch_op:
        batch_op.create_index("ix_tracking_refusals_day", ["day"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tracking_refusals", schema=None) as batch_op:
        batch_op.drop_index("ix_tracking_refusals_day")
    op.drop_table("tracking_refusals")
