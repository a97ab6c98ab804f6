"""lean position writes: no foreign keys on the per-ping tables, BRIN time indexes on PostgreSQL

`positions` and `coverage_rider_cells` take about a row per ping each. Their foreign keys to `users`
cost a lookup per row (half of the database's time per ping) and buy nothing: ingest reads the rider
in the same transaction, riders are deactivated and never deleted, and their rows go by consent
withdrawal and the retention purge. The time indexes serve only the purge; rows arrive in time order,
so on PostgreSQL a BRIN index does that job for a fraction of a B-tree's upkeep.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 22:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, foreign key, time index, its column)
LEAN = (
    ("positions", "fk_positions_rider_id_users", "ix_positions_ts", "ts"),
    ("coverage_rider_cells", "fk_coverage_rider_cells_rider_id_users", "ix_coverage_rider_cells_hour", "hour"),
)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, fk, index, column in LEAN:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(fk, type_="foreignkey")
        if postgres:
            op.drop_index(index, table_name=table)
            op.create_index(index, table, [column], unique=False, postgresql_using="brin")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, fk, index, column in LEAN:
        if postgres:
            op.drop_index(index, table_name=table)
            op.create_index(index, table, [column], unique=False)
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_foreign_key(fk, "users", ["rider_id"], ["id"], ondelete="CASCADE")
