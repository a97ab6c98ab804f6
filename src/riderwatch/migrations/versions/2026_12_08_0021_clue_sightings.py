"""A clue can be a rider's sighting in answer to an alert (clues.alert_id)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-08 11:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # In place, as 0017 did: rebuilding `clues` on SQLite (a batch) cannot drop a table others refer to;
    # SQLite takes the reference inside ADD COLUMN, PostgreSQL after it.
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "ALTER TABLE clues ADD COLUMN alert_id INTEGER CONSTRAINT fk_clues_alert_id_alerts REFERENCES alerts (id)"
        )
    else:
        op.add_column("clues", sa.Column("alert_id", sa.Integer(), nullable=True))
        op.create_foreign_key("fk_clues_alert_id_alerts", "clues", "alerts", ["alert_id"], ["id"])
    op.create_index("ix_clues_alert_id", "clues", ["alert_id"])


def downgrade() -> None:
    op.drop_index("ix_clues_alert_id", table_name="clues")
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("clues") as batch:
            batch.drop_column("alert_id")
    else:
        op.drop_constraint("fk_clues_alert_id_alerts", "clues", type_="foreignkey")
        op.drop_column("clues", "alert_id")
