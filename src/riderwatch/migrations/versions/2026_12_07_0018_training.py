"""Training: courses with their material and question bank, and riders' quiz attempts

The article's programme trains every rider (legal basics, recognising hazards, anti-fraud). A course holds
its material and a bank of single- and multiple-choice questions; a quiz draws some of them in random
order; each attempt is kept with its answers and score. A required course is needed before an applicant
is activated, and a pass may run out (a refresher).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import riderwatch.db

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "courses",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(length=64), nullable=False, unique=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("title_en", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("body_en", sa.Text(), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("valid_months", sa.Integer(), nullable=True),
        sa.Column("pass_mark", sa.Integer(), nullable=False),
        sa.Column("questions_per_quiz", sa.Integer(), nullable=False),
        sa.Column("attempts_per_day", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", riderwatch.db.UTCDateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "course_questions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("course_id", sa.Integer(), sa.ForeignKey("courses.id", ondelete="CASCADE"), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("text_en", sa.Text(), nullable=False),
        sa.Column("multiple", sa.Boolean(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("correct", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_course_questions_course_id", "course_questions", ["course_id"])
    op.create_table(
        "quiz_attempts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("course_id", sa.Integer(), sa.ForeignKey("courses.id"), nullable=False),
        sa.Column("rider_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("started_at", riderwatch.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", riderwatch.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("question_ids", sa.JSON(), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=True),
    )
    op.create_index("ix_quiz_attempts_rider_course", "quiz_attempts", ["rider_id", "course_id"])


def downgrade() -> None:
    op.drop_index("ix_quiz_attempts_rider_course", table_name="quiz_attempts")
    op.drop_table("quiz_attempts")
    op.drop_index("ix_course_questions_course_id", table_name="course_questions")
    op.drop_table("course_questions")
    op.drop_table("courses")
