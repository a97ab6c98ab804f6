"""Riders' voice: feedback to the police with answers and ratings; visits with riders and follow-up actions

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-08 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import riderwatch.db

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = riderwatch.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("rider_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("assignee_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("due_at", UTC, nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("answered_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("answered_at", UTC, nullable=True),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("rating_note", sa.Text(), nullable=False),
        sa.Column("rated_at", UTC, nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name=op.f("ck_feedback_rating_range")),
    )
    op.create_index("ix_feedback_rider_id", "feedback", ["rider_id"])
    op.create_index("ix_feedback_assignee_id", "feedback", ["assignee_id"])
    op.create_index("ix_feedback_status_due", "feedback", ["status", "due_at"])
    op.create_table(
        "visits",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("held_on", sa.Date(), nullable=False),
        sa.Column("place", sa.String(length=200), nullable=False),
        sa.Column("station_id", sa.Integer(), sa.ForeignKey("stations.id"), nullable=True),
        sa.Column("officer_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
    )
    op.create_index("ix_visits_held_on", "visits", ["held_on"])
    op.create_table(
        "visit_riders",
        sa.Column("visit_id", sa.Integer(), sa.ForeignKey("visits.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("rider_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    )
    op.create_table(
        "visit_actions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("visit_id", sa.Integer(), sa.ForeignKey("visits.id", ondelete="CASCADE"), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("done_at", UTC, nullable=True),
        sa.Column("done_note", sa.Text(), nullable=False),
    )
    op.create_index("ix_visit_actions_visit_id", "visit_actions", ["visit_id"])
    op.create_index("ix_visit_actions_owner_id", "visit_actions", ["owner_id"])


def downgrade() -> None:
    op.drop_index("ix_visit_actions_owner_id", table_name="visit_actions")
    op.drop_index("ix_visit_actions_visit_id", table_name="visit_actions")
    op.drop_table("visit_actions")
    op.drop_table("visit_riders")
    op.drop_index("ix_visits_held_on", table_name="visits")
    op.drop_table("visits")
    op.drop_index("ix_feedback_status_due", table_name="feedback")
    op.drop_index("ix_feedback_assignee_id", table_name="feedback")
    op.drop_index("ix_feedback_rider_id", table_name="feedback")
    op.drop_table("feedback")
