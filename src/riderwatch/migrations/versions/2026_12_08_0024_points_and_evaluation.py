"""Points (rules, the ledger, rewards, redemptions, cash rewards for clues) and the platforms' evaluation
(schemes, runs, rows); riders' leaderboard nicknames. The points already earned — closed clues' grades and
patrol tasks' results — are written into the ledger.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-08 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import riderwatch.db

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = riderwatch.db.UTCDateTime(timezone=True)
# The points the rules gave before an administrator could set them (points/service.py: DEFAULT_POINTS).
GRADE_POINTS = {"A": 50, "B": 20, "C": 5}


def upgrade() -> None:
    op.create_table(
        "point_rules",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("effective_from", UTC, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.UniqueConstraint("key", "effective_from", name="uq_point_rules_key_from"),
        sa.CheckConstraint("points >= 0", name=op.f("ck_point_rules_points_not_negative")),
    )
    op.create_table(
        "point_entries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("rider_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=True),
        sa.Column("award_key", sa.String(length=100), nullable=True),
        sa.Column("rule_id", sa.Integer(), sa.ForeignKey("point_rules.id"), nullable=True),
        sa.Column("reverses_id", sa.Integer(), sa.ForeignKey("point_entries.id"), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.UniqueConstraint("award_key", name=op.f("uq_point_entries_award_key")),
        sa.CheckConstraint("kind IN ('earn','spend','reverse','adjust')", name=op.f("ck_point_entries_kind_known")),
    )
    op.create_index("ix_point_entries_rider", "point_entries", ["rider_id", "created_at"])
    op.create_index("ix_point_entries_source", "point_entries", ["source", "source_id"])
    op.create_table(
        "rewards",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("cost", sa.Integer(), nullable=False),
        sa.Column("cash_fen", sa.Integer(), nullable=True),
        sa.Column("stock", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.CheckConstraint("stock IS NULL OR stock >= 0", name=op.f("ck_rewards_stock_not_negative")),
        sa.CheckConstraint("cost > 0", name=op.f("ck_rewards_cost_positive")),
    )
    op.create_table(
        "redemptions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("rider_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("reward_id", sa.Integer(), sa.ForeignKey("rewards.id"), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_at", UTC, nullable=False),
        sa.Column("decided_by_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("decided_at", UTC, nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
    )
    op.create_index("ix_redemptions_rider_id", "redemptions", ["rider_id"])
    op.create_index("ix_redemptions_status", "redemptions", ["status", "requested_at"])
    op.create_table(
        "cash_awards",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("clue_id", sa.Integer(), sa.ForeignKey("clues.id"), nullable=False),
        sa.Column("rider_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("proposed_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("proposed_at", UTC, nullable=False),
        sa.Column("approved_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("decided_at", UTC, nullable=True),
        sa.Column("claim_code", sa.String(length=32), nullable=True),
        sa.Column("paid_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("paid_at", UTC, nullable=True),
        sa.UniqueConstraint("claim_code", name=op.f("uq_cash_awards_claim_code")),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_cash_awards_amount_positive")),
        sa.CheckConstraint(
            "approved_by_id IS NULL OR approved_by_id <> proposed_by_id", name=op.f("ck_cash_awards_two_people")
        ),
    )
    op.create_index("ix_cash_awards_clue_id", "cash_awards", ["clue_id"])
    op.create_index("ix_cash_awards_rider_id", "cash_awards", ["rider_id"])
    op.create_table(
        "evaluation_schemes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("indicators", sa.JSON(), nullable=False),
        sa.Column("matrix", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("consistency", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("grades", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
    )
    op.create_table(
        "evaluation_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("scheme_id", sa.Integer(), sa.ForeignKey("evaluation_schemes.id"), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("indicators", sa.JSON(), nullable=False),
        sa.Column("grades", sa.JSON(), nullable=False),
        sa.Column("rider_count", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
    )
    op.create_index("ix_evaluation_runs_period", "evaluation_runs", ["period", "id"])
    op.create_table(
        "evaluation_rows",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("evaluation_runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("rider_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("platform_id", sa.Integer(), sa.ForeignKey("platforms.id"), nullable=True),
        sa.Column("station_id", sa.Integer(), sa.ForeignKey("stations.id"), nullable=True),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("grade", sa.String(length=2), nullable=False),
        sa.UniqueConstraint("run_id", "rider_id", name="uq_evaluation_rows_run_rider"),
    )
    op.create_index("ix_evaluation_rows_platform", "evaluation_rows", ["run_id", "platform_id"])
    # In place, as 0022 did: `riders` is referred to by others.
    op.add_column("riders", sa.Column("board_name", sa.String(length=32), nullable=True))

    # What was earned before the ledger: closed clues by grade, and patrol tasks' results.
    bind = op.get_bind()
    entries = sa.table(
        "point_entries",
        *(sa.column(c) for c in ("rider_id", "kind", "points", "source", "source_id", "award_key", "note")),
        sa.column("created_at", UTC),
    )
    clues = bind.execute(
        sa.text(
            "SELECT id, reporter_id, value_grade, closed_at FROM clues "
            "WHERE status = 'closed' AND reporter_id IS NOT NULL AND value_grade IN ('A', 'B', 'C')"
        )
    ).all()
    rows = [
        {
            "rider_id": reporter,
            "kind": "earn",
            "points": GRADE_POINTS[grade],
            "source": "clue",
            "source_id": clue_id,
            "award_key": f"clue:{clue_id}:before-ledger",
            "note": "",
            "created_at": closed_at,
        }
        for clue_id, reporter, grade, closed_at in clues
    ]
    results = bind.execute(
        sa.text(
            "SELECT task_id, rider_id, points_awarded, completed_at, updated_at FROM patrol_task_results "
            "WHERE points_awarded > 0"
        )
    ).all()
    rows += [
        {
            "rider_id": rider,
            "kind": "earn",
            "points": points,
            "source": "task",
            "source_id": task,
            "award_key": f"task:{task}:rider:{rider}:0",
            "note": "",
            "created_at": completed or updated,
        }
        for task, rider, points, completed, updated in results
    ]
    if rows:
        op.bulk_insert(entries, rows)


def downgrade() -> None:
    op.drop_column("riders", "board_name")
    op.drop_index("ix_evaluation_rows_platform", table_name="evaluation_rows")
    op.drop_table("evaluation_rows")
    op.drop_index("ix_evaluation_runs_period", table_name="evaluation_runs")
    op.drop_table("evaluation_runs")
    op.drop_table("evaluation_schemes")
    op.drop_index("ix_cash_awards_rider_id", table_name="cash_awards")
    op.drop_index("ix_cash_awards_clue_id", table_name="cash_awards")
    op.drop_table("cash_awards")
    op.drop_index("ix_redemptions_status", table_name="redemptions")
    op.drop_index("ix_redemptions_rider_id", table_name="redemptions")
    op.drop_table("redemptions")
    op.drop_table("rewards")
    op.drop_index("ix_point_entries_source", table_name="point_entries")
    op.drop_index("ix_point_entries_rider", table_name="point_entries")
    op.drop_table("point_entries")
    op.drop_table("point_rules")
