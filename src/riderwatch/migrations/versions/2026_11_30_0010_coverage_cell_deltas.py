"""coverage_cell_deltas: ingest appends its counts on PostgreSQL, folded into coverage_cells later

A batch used to add its passes and distinct riders to `coverage_cells` directly: a look-up and a
rewrite of each cell-hour row, and with many concurrent batches a queue on the locks of the same
district cells in the same hour. Now it appends them here (no key, no index) and readers of
`coverage_cells`, and a periodic job, fold them in (`tracking.ingest.fold_counts`).

Measured with `python -m bench.ingest` (PostgreSQL, 2 server processes, 8 clients, the fold running
every 5 s during the run and inside the measured time): 81,000-84,000 pings/s before, 86,000-92,000
after. 0011 replaces the row per cell-hour with a row per batch.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 02:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "coverage_cell_deltas",
        sa.Column("resolution", sa.SmallInteger(), nullable=False),
        sa.Column("cell", sa.BigInteger(), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("passes", sa.Integer(), nullable=False),
        sa.Column("riders", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    # Counts not yet folded are folded first, so that none is lost.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("LOCK TABLE coverage_cell_deltas IN ACCESS EXCLUSIVE MODE")
        op.execute(
            "WITH moved AS (DELETE FROM coverage_cell_deltas RETURNING resolution, cell, hour, passes, riders) "
            "INSERT INTO coverage_cells (resolution, cell, hour, passes, riders) "
            "SELECT resolution, cell, hour, sum(passes), sum(riders) FROM moved GROUP BY resolution, cell, hour "
            "ON CONFLICT (resolution, cell, hour) DO UPDATE SET passes = coverage_cells.passes + excluded.passes, "
            "riders = coverage_cells.riders + excluded.riders"
        )
    op.drop_table("coverage_cell_deltas")
