"""coverage_cell_deltas: one row per batch (arrays), on PostgreSQL only

0010 appended a row per cell-hour of a batch, about one per ping, which the fold then deleted: with
the fold, some 8 % of the write path's time. Now a batch appends one row whose columns are parallel
arrays, and the fold unnests them. The arrays are stored out of line uncompressed (STORAGE
EXTERNAL): compressing them cost more than it saved. Counts not yet folded are folded first.

SQLite never used the table (it adds to coverage_cells directly): it is dropped there.

Run it with ingest stopped, as the new code and this schema go together; the table is locked
before the fold, so no batch can append between the fold and the drop.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 02:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPSERT = (
    "ON CONFLICT (resolution, cell, hour) DO UPDATE SET passes = coverage_cells.passes + excluded.passes, "
    "riders = coverage_cells.riders + excluded.riders"
)
FOLD_ROWS = (
    "WITH moved AS (DELETE FROM coverage_cell_deltas RETURNING resolution, cell, hour, passes, riders) "
    "INSERT INTO coverage_cells (resolution, cell, hour, passes, riders) "
    "SELECT resolution, cell, hour, sum(passes), sum(riders) FROM moved GROUP BY resolution, cell, hour " + UPSERT
)
FOLD_ARRAYS = (
    "WITH moved AS (DELETE FROM coverage_cell_deltas RETURNING resolution, cell, hour, passes, riders), "
    "counts AS (SELECT u.* FROM moved, unnest(moved.resolution, moved.cell, moved.hour, moved.passes, "
    "moved.riders) AS u(resolution, cell, hour, passes, riders)) "
    "INSERT INTO coverage_cells (resolution, cell, hour, passes, riders) "
    "SELECT resolution, cell, hour, sum(passes), sum(riders) FROM counts GROUP BY resolution, cell, hour " + UPSERT
)
ARRAYS = ("resolution", "cell", "hour", "passes", "riders")


def _rows_table() -> None:
    op.create_table(
        "coverage_cell_deltas",
        sa.Column("resolution", sa.SmallInteger(), nullable=False),
        sa.Column("cell", sa.BigInteger(), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("passes", sa.Integer(), nullable=False),
        sa.Column("riders", sa.Integer(), nullable=False),
    )


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.drop_table("coverage_cell_deltas")
        return
    op.execute("LOCK TABLE coverage_cell_deltas IN ACCESS EXCLUSIVE MODE")
    op.execute(FOLD_ROWS)
    op.drop_table("coverage_cell_deltas")
    op.create_table(
        "coverage_cell_deltas",
        sa.Column("resolution", postgresql.ARRAY(sa.SmallInteger()), nullable=False),
        sa.Column("cell", postgresql.ARRAY(sa.BigInteger()), nullable=False),
        sa.Column("hour", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.Column("passes", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.Column("riders", postgresql.ARRAY(sa.Integer()), nullable=False),
    )
    for column in ARRAYS:
        op.execute(f"ALTER TABLE coverage_cell_deltas ALTER COLUMN {column} SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("LOCK TABLE coverage_cell_deltas IN ACCESS EXCLUSIVE MODE")
        op.execute(FOLD_ARRAYS)
        op.drop_table("coverage_cell_deltas")
    _rows_table()
