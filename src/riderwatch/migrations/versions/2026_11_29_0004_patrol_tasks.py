"""patrol tasks: cells or check-in points in a time window, invitations, visits verified from positions, rules

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 19:05:22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import riderwatch.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "patrol_task_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("area_kind", sa.String(length=16), nullable=False),
        sa.Column("area_code", sa.String(length=64), nullable=False),
        sa.Column("top_n", sa.Integer(), nullable=False),
        sa.Column("resolution", sa.SmallInteger(), nullable=False),
        sa.Column("publish_at", sa.String(length=5), nullable=False),
        sa.Column("window_start", sa.String(length=5), nullable=False),
        sa.Column("window_hours", sa.Integer(), nullable=False),
        sa.Column("lookback_days", sa.Integer(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", riderwatch.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], name=op.f("fk_patrol_task_rules_created_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patrol_task_rules")),
    )
    op.create_table(
        "patrol_task_rule_runs",
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("ran_at", riderwatch.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tasks_created", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["patrol_task_rules.id"],
            name=op.f("fk_patrol_task_rule_runs_rule_id_patrol_task_rules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("rule_id", "day", name=op.f("pk_patrol_task_rule_runs")),
    )
    op.create_table(
        "patrol_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("resolution", sa.SmallInteger(), nullable=True),
        sa.Column("area", sa.JSON(), nullable=True),
        sa.Column("starts_at", riderwatch.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", riderwatch.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("required_share", sa.Float(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("max_riders", sa.Integer(), nullable=True),
        sa.Column("open_to_all", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", riderwatch.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", riderwatch.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("rule_id", sa.Integer(), nullable=True),
        sa.Column("verified_until", riderwatch.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("verified_at", riderwatch.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.CheckConstraint("kind IN ('cells','checkpoints')", name=op.f("ck_patrol_tasks_kind_known")),
        sa.CheckConstraint("status IN ('published','cancelled')", name=op.f("ck_patrol_tasks_status_known")),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_patrol_tasks_window_positive")),
        sa.CheckConstraint("required_share > 0 AND required_share <= 1", name=op.f("ck_patrol_tasks_share_valid")),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], name=op.f("fk_patrol_tasks_created_by_id_users")),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["patrol_task_rules.id"],
            name=op.f("fk_patrol_tasks_rule_id_patrol_task_rules"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patrol_tasks")),
    )
    with op.batch_alter_table("patrol_tasks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_patrol_tasks_rule_id"), ["rule_id"], unique=False)
        batch_op.create_index("ix_patrol_tasks_window", ["ends_at", "starts_at"], unique=False)

    op.create_table(
        "patrol_task_cells",
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("cell", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"], ["patrol_tasks.id"], name=op.f("fk_patrol_task_cells_task_id_patrol_tasks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("task_id", "cell", name=op.f("pk_patrol_task_cells")),
    )
    op.create_table(
        "patrol_task_checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("radius_m", sa.Float(), nullable=False),
        sa.CheckConstraint("radius_m > 0", name=op.f("ck_patrol_task_checkpoints_radius_positive")),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["patrol_tasks.id"],
            name=op.f("fk_patrol_task_checkpoints_task_id_patrol_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patrol_task_checkpoints")),
        sa.UniqueConstraint("task_id", "seq", name=op.f("uq_patrol_task_checkpoints_task_id")),
    )
    op.create_table(
        "patrol_task_invites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("rider_id", sa.Integer(), nullable=True),
        sa.Column("station_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "(rider_id IS NULL) <> (station_id IS NULL)", name=op.f("ck_patrol_task_invites_one_invitee")
        ),
        sa.ForeignKeyConstraint(
            ["rider_id"], ["users.id"], name=op.f("fk_patrol_task_invites_rider_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_patrol_task_invites_station_id_stations"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["patrol_tasks.id"],
            name=op.f("fk_patrol_task_invites_task_id_patrol_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patrol_task_invites")),
    )
    with op.batch_alter_table("patrol_task_invites", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_patrol_task_invites_rider_id"), ["rider_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_patrol_task_invites_task_id"), ["task_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_patrol_task_invites_station_id"), ["station_id"], unique=False)

    op.create_table(
        "patrol_task_results",
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("rider_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("visited", sa.Integer(), nullable=False),
        sa.Column("completed_at", riderwatch.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("points_awarded", sa.Integer(), nullable=False),
        sa.Column("updated_at", riderwatch.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["rider_id"], ["users.id"], name=op.f("fk_patrol_task_results_rider_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["patrol_tasks.id"],
            name=op.f("fk_patrol_task_results_task_id_patrol_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("task_id", "rider_id", name=op.f("pk_patrol_task_results")),
    )
    with op.batch_alter_table("patrol_task_results", schema=None) as batch_op:
        batch_op.create_index("ix_patrol_task_results_rider", ["rider_id"], unique=False)

    op.create_table(
        "patrol_task_visits",
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("rider_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("target", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("first_at", riderwatch.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["rider_id"], ["users.id"], name=op.f("fk_patrol_task_visits_rider_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["patrol_tasks.id"],
            name=op.f("fk_patrol_task_visits_task_id_patrol_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("task_id", "rider_id", "target", name=op.f("pk_patrol_task_visits")),
    )
    with op.batch_alter_table("patrol_task_visits", schema=None) as batch_op:
        batch_op.create_index("ix_patrol_task_visits_rider", ["rider_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("patrol_task_visits", schema=None) as batch_op:
        batch_op.drop_index("ix_patrol_task_visits_rider")

    op.drop_table("patrol_task_visits")
    with op.batch_alter_table("patrol_task_results", schema=None) as batch_op:
        batch_op.drop_index("ix_patrol_task_results_rider")

    op.drop_table("patrol_task_results")
    with op.batch_alter_table("patrol_task_invites", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patrol_task_invites_task_id"))
        batch_op.drop_index(batch_op.f("ix_patrol_task_invites_station_id"))
        batch_op.drop_index(batch_op.f("ix_patrol_task_invites_rider_id"))

    op.drop_table("patrol_task_invites")
    op.drop_table("patrol_task_checkpoints")
    op.drop_table("patrol_task_cells")
    with op.batch_alter_table("patrol_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_patrol_tasks_window")
        batch_op.drop_index(batch_op.f("ix_patrol_tasks_rule_id"))

    op.drop_table("patrol_tasks")
    op.drop_table("patrol_task_rule_runs")
    op.drop_table("patrol_task_rules")
