"""user_sessions: a row per signed-in browser, ended at logout; login failures indexed by address

A session cookie used to carry only the user's id and token version, so logging out cleared the
browser's copy while a copy taken before stayed valid for up to 12 hours. Now the cookie carries a
random key whose row `logout` ends. Login failures are also counted per client address (one password
tried against many names), hence the index on (client, at).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 06:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import riderwatch.db

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("started_at", riderwatch.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", riderwatch.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_sessions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_sessions")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_user_sessions_key_hash")),
    )
    op.create_index(op.f("ix_user_sessions_user_id"), "user_sessions", ["user_id"], unique=False)
    op.create_index("ix_login_failures_client_at", "login_failures", ["client", "at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_login_failures_client_at", table_name="login_failures")
    op.drop_index(op.f("ix_user_sessions_user_id"), table_name="user_sessions")
    op.drop_table("user_sessions")
