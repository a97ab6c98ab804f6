"""coverage_cells: fillfactor 90 (was 50 since 0009)

0009 left half of each page free because every ingest batch then rewrote the counts of the cell-hours
it touched. Since 0010 only the fold of appended counts rewrites them (the current hours' cells, once
per fold), and the table is kept for good: half-empty pages would double it on disk and in the
cache for updates that touch only recent rows. A tenth of each page stays free for those. Pages
already written keep their layout until the table is rewritten (VACUUM FULL, CLUSTER).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 02:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE coverage_cells SET (fillfactor = 90)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE coverage_cells SET (fillfactor = 50)")
