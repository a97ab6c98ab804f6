"""room for in-place updates: the rows every ingest batch rewrites are updated without index writes

Each batch rewrites its riders' `tracking_last_positions` rows and the `coverage_cells` counts of
the cell-hours it touched. On PostgreSQL an update writes a new row version; when that fits on the
same page and changes no indexed column, it is a HOT update: no new index entries, and the old
version is pruned in place. Two things prevented that:

- `tracking_last_positions.ts` was indexed, and every update moves it. Its only reader, the live
  map, reads all riders on duty (one row each), for which the index is no help; it is dropped
  (on SQLite too, where it cost the same index write per update).
- Pages were filled to 100 %, so an updated row rarely fit beside its old version. Both tables now
  keep half of each page free (fillfactor 50): they hold one row per rider, and per cell and hour.

Measured with `python -m bench.ingest` (PostgreSQL, 2 server processes, 8 clients): 64,000-72,000
pings/s before, 81,000-84,000 after. The factor applies to pages filled from now on: pages already
full stay so until the table is rewritten (VACUUM FULL, CLUSTER).

Since 0010 `coverage_cells` is rewritten by the fold of appended counts, not by every batch; 0012
sets its factor to 90.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 01:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROOMY = ("tracking_last_positions", "coverage_cells")
FILLFACTOR = 50


def upgrade() -> None:
    with op.batch_alter_table("tracking_last_positions", schema=None) as batch_op:
        batch_op.drop_index("ix_tracking_last_positions_ts")
    if op.get_bind().dialect.name == "postgresql":
        for table in ROOMY:
            op.execute(f"ALTER TABLE {table} SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ROOMY:
            op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
    with op.batch_alter_table("tracking_last_positions", schema=None) as batch_op:
        batch_op.create_index("ix_tracking_last_positions_ts", ["ts"], unique=False)
