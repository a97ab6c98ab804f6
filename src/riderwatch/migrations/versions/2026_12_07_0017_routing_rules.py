"""Routing rules as data: category × area → party, in order, with the category's handler role as fallback

Which party handles a clue was the category's `handler_role` alone. An administrator now writes rules
(`routing_rules`): for a category (or any) in a grid, community or zone (or anywhere), the place's
community police or grid staff, any patrol member, one patrol unit, or a named person. A clue keeps the
rule that proposed the handler it was dispatched to (`clues.routing_rule_id`).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 15:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import riderwatch.db

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "routing_rules",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("category_code", sa.String(length=64), sa.ForeignKey("categories.code"), nullable=True),
        sa.Column("area_kind", sa.String(length=16), nullable=False),
        sa.Column("area_code", sa.String(length=64), nullable=True),
        sa.Column("party", sa.String(length=16), nullable=False),
        sa.Column("patrol_unit_id", sa.Integer(), sa.ForeignKey("patrol_units.id"), nullable=True),
        sa.Column("person_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", riderwatch.db.UTCDateTime(timezone=True), nullable=False),
    )
    # `clues` gets its column in place: rebuilding it on SQLite, as a batch would, cannot drop a table that
    # clue events and photos refer to; SQLite takes the reference inside ADD COLUMN, PostgreSQL after it.
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "ALTER TABLE clues ADD COLUMN routing_rule_id INTEGER "
            "CONSTRAINT fk_clues_routing_rule_id_routing_rules REFERENCES routing_rules (id)"
        )
    else:
        op.add_column("clues", sa.Column("routing_rule_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            "fk_clues_routing_rule_id_routing_rules", "clues", "routing_rules", ["routing_rule_id"], ["id"]
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("clues") as batch:
            batch.drop_column("routing_rule_id")  # the rebuilt table leaves the column's reference out too
    else:
        op.drop_constraint("fk_clues_routing_rule_id_routing_rules", "clues", type_="foreignkey")
        op.drop_column("clues", "routing_rule_id")
    op.drop_table("routing_rules")
