"""clustered position tables on SQLite: positions and coverage_cells WITHOUT ROWID

On SQLite a table whose primary key is not a single INTEGER column is a rowid table plus a unique
index on the key: every insert writes both B-trees and every read by key goes from the index to the
row. `positions` (read per rider and time span) and `coverage_cells` (read per resolution, cell and
hour by the coverage query) are rebuilt WITHOUT ROWID, so their rows sit in the key's B-tree in key
order. Each table is copied whole (batch "recreate": a new table, INSERT … SELECT, drop, rename; the
named CHECK constraint and the indexes are carried over). PostgreSQL has no such option and is left
as it is.

Not rebuilt: `coverage_days` was created WITHOUT ROWID (0005); `tracking_last_positions` is keyed by
its INTEGER rider_id, which on SQLite already is the rowid; `coverage_rider_cells` stays a rowid
table, as its inserts were slower without rowid (its indexes then carry the whole key).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 23:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLUSTERED = ("positions", "coverage_cells")


def _rebuild(*, with_rowid: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in CLUSTERED:
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_with_rowid": with_rowid}):
            pass


def upgrade() -> None:
    _rebuild(with_rowid=False)


def downgrade() -> None:
    _rebuild(with_rowid=True)
