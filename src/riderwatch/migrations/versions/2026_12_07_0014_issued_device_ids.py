"""tracking_devices: ids issued by RiderWatch, and the rider's label for the phone

A Traccar Client device id stands in for a login (the OsmAnd protocol has nothing else), and riders
used to choose it in the app: often a short number anyone could guess and send positions under.
RiderWatch now issues long random ids (`issued`); ids registered before keep working, marked as chosen
in the app so the rider is asked to replace them.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 06:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tracking_devices") as batch:
        batch.add_column(sa.Column("issued", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("label", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tracking_devices") as batch:
        batch.drop_column("label")
        batch.drop_column("issued")
