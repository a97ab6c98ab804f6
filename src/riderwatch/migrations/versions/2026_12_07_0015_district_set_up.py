"""The district as data an administrator keeps (retiring, English names, the jurisdiction's boundary, zone
stages); passwords someone else chose (must be changed, may run out)

Organisations and areas were made by the demo alone. An administrator now creates, edits and retires
them (org/district.py): every kind gets `retired_at` (a retired area keeps its row, so old clues keep
their place names, but takes no new clue, link or task), the kinds without one get `name_en`, the
jurisdiction may have a boundary that every area must lie inside, and a zone records the dates of its
rollout stages. Zones of the old default kind "pilot" (which was a stage, not a kind) become
"commercial": the demo's pilot zones are commercial districts.

A user whose password someone else chose (an imported rider, an administrator's one-time code) must
choose their own first, and a one-time code runs out.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 14:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import riderwatch.db

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = ("jurisdictions", "communities", "grids", "patrol_units", "platforms", "stations", "zones")
WITHOUT_NAME_EN = ("grids", "patrol_units", "stations")


def upgrade() -> None:
    for table in KINDS:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("retired_at", riderwatch.db.UTCDateTime(timezone=True), nullable=True))
            if table in WITHOUT_NAME_EN:
                batch.add_column(sa.Column("name_en", sa.String(length=200), nullable=False, server_default=""))
    with op.batch_alter_table("jurisdictions") as batch:
        batch.add_column(sa.Column("boundary", sa.JSON(), nullable=True))
    with op.batch_alter_table("zones") as batch:
        batch.add_column(sa.Column("pilot_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("rolled_out_on", sa.Date(), nullable=True))
    op.execute("UPDATE zones SET kind = 'commercial' WHERE kind = 'pilot'")
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("password_expires_at", riderwatch.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("password_expires_at")
        batch.drop_column("must_change_password")
    op.execute("UPDATE zones SET kind = 'pilot' WHERE kind = 'commercial'")
    with op.batch_alter_table("zones") as batch:
        batch.drop_column("rolled_out_on")
        batch.drop_column("pilot_on")
    with op.batch_alter_table("jurisdictions") as batch:
        batch.drop_column("boundary")
    for table in reversed(KINDS):
        with op.batch_alter_table(table) as batch:
            if table in WITHOUT_NAME_EN:
                batch.drop_column("name_en")
            batch.drop_column("retired_at")
