"""Migrations: one head, an empty database upgrades, and the migrated schema matches the models."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from riderwatch.db import Base, make_engine
from riderwatch.migrate import alembic_config, upgrade
from riderwatch.models import Category
from riderwatch.models.tracking import POSTGRESQL_ONLY
from tests.conftest import BACKEND, PG_ADMIN_URL


def test_single_head() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1, script.get_heads()
    # Every revision is reachable from that head, so no branch was left behind.
    assert len(list(script.walk_revisions())) == len(list(script.iterate_revisions(script.get_current_head(), "base")))


@pytest.fixture
def fresh_url(tmp_path: Path, database_url: str) -> Iterator[str]:
    """An empty database of the backend under test, just for this test (beside the session's test database,
    which it asks for so that the test runs on both backends)."""
    if BACKEND == "postgresql":
        name = f"riderwatch_migrations_{os.getpid()}"  # never shared with another run or worker
        admin = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = f"{PG_ADMIN_URL.rpartition('/')[0]}/{name}"
        yield url
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    else:
        yield f"sqlite:///{tmp_path / 'fresh.db'}"


def _diff(engine: Engine) -> list[object]:
    """What the database holds that the models do not say, or the other way round."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": False})
        if conn.dialect.name == "postgresql":
            return list(compare_metadata(ctx, [Base.metadata, POSTGRESQL_ONLY]))  # type: ignore[arg-type]
        return list(compare_metadata(ctx, Base.metadata))


def test_upgrade_from_empty_matches_the_models(fresh_url: str) -> None:
    upgrade(fresh_url)
    engine = make_engine(fresh_url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert {t.name for t in Base.metadata.sorted_tables} <= tables
        assert "alembic_version" in tables
        assert _diff(engine) == []
        with engine.connect() as conn:
            head = ScriptDirectory.from_config(alembic_config(fresh_url)).get_current_head()
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head
            # The categories the clue desk starts with are seeded by the migration.
            assert conn.execute(text(f"SELECT count(*) FROM {Category.__tablename__}")).scalar_one() > 0
        # Upgrading again is a no-op.
        upgrade(fresh_url)
        assert _diff(engine) == []
    finally:
        engine.dispose()


def test_test_database_matches_the_models(engine: Engine) -> None:
    assert _diff(engine) == []


@pytest.mark.skipif(BACKEND != "postgresql", reason="storage parameters exist on PostgreSQL only")
def test_postgresql_storage_parameters_are_those_the_models_declare(engine: Engine) -> None:
    """Alembic does not compare `postgresql_with`: the catalogue is read here (fillfactor, migration 0009)."""
    declared = {
        t.name: sorted(f"{k}={v}" for k, v in t.dialect_options["postgresql"]["with"].items())
        for t in Base.metadata.sorted_tables
        if t.dialect_options["postgresql"]["with"]
    }
    assert declared  # the rows rewritten by every ingest batch leave room for in-place updates
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT relname, reloptions FROM pg_class WHERE relkind = 'r' AND reloptions IS NOT NULL")
        )
        ours = {t.name for t in Base.metadata.sorted_tables}
        stored = {name: sorted(options) for name, options in rows if name in ours}
    assert stored == declared


def test_the_position_write_path_migrations_go_down_and_up_again(fresh_url: str) -> None:
    """0009-0012 (room for in-place updates, appended counts) undo cleanly and redo to the models."""
    upgrade(fresh_url)
    config = alembic_config(fresh_url)
    command.downgrade(config, "0008")
    command.upgrade(config, "head")
    engine = make_engine(fresh_url)
    try:
        assert _diff(engine) == []
    finally:
        engine.dispose()
