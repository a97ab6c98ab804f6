"""An Extreme alert can wait for a second person's approval (alerts.approved_by_id, approved_at)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-08 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import riderwatch.db

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # In place, as 0017 did for clues: `alerts` is referred to by receipts, notices and clues.
    op.add_column("alerts", sa.Column("pending", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("alerts", sa.Column("approved_at", riderwatch.db.UTCDateTime(timezone=True), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "ALTER TABLE alerts ADD COLUMN approved_by_id INTEGER "
            "CONSTRAINT fk_alerts_approved_by_id_users REFERENCES users (id)"
        )
    else:
        op.add_column("alerts", sa.Column("approved_by_id", sa.Integer(), nullable=True))
        op.create_foreign_key("fk_alerts_approved_by_id_users", "alerts", "users", ["approved_by_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        if op.get_bind().dialect.name != "sqlite":
            batch.drop_constraint("fk_alerts_approved_by_id_users", type_="foreignkey")
        batch.drop_column("approved_by_id")
        batch.drop_column("approved_at")
        batch.drop_column("pending")
