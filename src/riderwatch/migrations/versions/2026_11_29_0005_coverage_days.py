"""coverage days: running totals of coverage_cells per cell and sealed day, and how far they reach

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 19:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "coverage_days",
        sa.Column("resolution", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("cell", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("day", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("passes", sa.BigInteger(), nullable=False),
        sa.Column("riders", sa.BigInteger(), nullable=False),
        *(sa.Column(f"p{h:02d}", sa.BigInteger(), nullable=False) for h in range(24)),
        sa.PrimaryKeyConstraint("resolution", "cell", "day", name=op.f("pk_coverage_days")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "coverage_rollup",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("sealed_before", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coverage_rollup")),
    )


def downgrade() -> None:
    op.drop_table("coverage_rollup")
    op.drop_table("coverage_days")
