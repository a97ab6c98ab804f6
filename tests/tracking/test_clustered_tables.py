"""On SQLite, `positions` and `coverage_cells` are WITHOUT ROWID tables (rows kept in their key's B-tree).

Alembic's schema comparison (tests/test_migrations.py) does not look at the rowid option, so these
tests read SQLite's own catalogue. They use a database file of their own, whichever backend the run
is for: the option exists only on SQLite.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command

from riderwatch.db import Base
from riderwatch.migrate import alembic_config, upgrade

CLUSTERED = ("positions", "coverage_cells")
REBUILT_BY_0008 = CLUSTERED
ROWS = {
    "positions": [
        (7, "2026-11-01 08:00:00.000000", 30.1, 120.1, 613, 4.5, 90.0, 5.0, "2026-11-01 08:00:01.000000"),
        (7, "2026-11-01 08:00:10.000000", 30.2, 120.2, 614, None, None, None, "2026-11-01 08:00:11.000000"),
        (3, "2026-11-01 08:00:05.000000", 30.3, 120.3, 615, 0.0, 0.0, 12.0, "2026-11-01 08:00:06.000000"),
    ],
    "coverage_cells": [(10, 613, 490_000, 5, 2), (9, 77, 490_000, 1, 1), (10, 613, 489_999, 3, 1)],
}


def _tables(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall())


def _without_rowid(sql: str) -> bool:
    return sql.rstrip().upper().endswith("WITHOUT ROWID")


def _indexes(path: Path, table: str) -> dict[str, str]:
    """The table's declared indexes (not the automatic one of a rowid table's key)."""
    with sqlite3.connect(path) as conn:
        return dict(
            conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
                (table,),
            ).fetchall()
        )


def _rows(path: Path, table: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr)


def test_every_table_has_the_rowid_option_its_model_declares(tmp_path: Path) -> None:
    path = tmp_path / "head.db"
    upgrade(f"sqlite:///{path}")
    tables = _tables(path)
    declared = {t.name: not t.dialect_options["sqlite"]["with_rowid"] for t in Base.metadata.sorted_tables}
    assert {name: _without_rowid(tables[name]) for name in declared} == declared
    assert {name for name, without in declared.items() if without} == {*CLUSTERED, "coverage_days"}


def test_0008_rebuilds_the_tables_keeping_rows_indexes_and_checks_and_its_downgrade_restores_rowid(
    tmp_path: Path,
) -> None:
    path = tmp_path / "steps.db"
    config = alembic_config(f"sqlite:///{path}")
    command.upgrade(config, "0007")
    with sqlite3.connect(path) as conn:
        for table, rows in ROWS.items():
            conn.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows)
    indexes = {table: _indexes(path, table) for table in REBUILT_BY_0008}
    assert all(not _without_rowid(_tables(path)[t]) for t in REBUILT_BY_0008)

    command.upgrade(config, "0008")
    tables = _tables(path)
    for table in REBUILT_BY_0008:
        assert _without_rowid(tables[table]), table
        assert _rows(path, table) == sorted(ROWS[table], key=repr)
        assert _indexes(path, table) == indexes[table]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            conn.execute("INSERT INTO positions VALUES (1, '2026-11-01 09:00:00', 91.0, 0, 1, NULL, NULL, NULL, '')")
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            conn.execute("INSERT INTO coverage_cells VALUES (10, 613, 490000, 1, 1)")
        with pytest.raises(sqlite3.OperationalError, match="rowid"):
            conn.execute("SELECT rowid FROM coverage_cells")

    command.downgrade(config, "0007")
    tables = _tables(path)
    for table in REBUILT_BY_0008:
        assert not _without_rowid(tables[table]), table
        assert _rows(path, table) == sorted(ROWS[table], key=repr)
        assert _indexes(path, table) == indexes[table]
    with sqlite3.connect(path) as conn:
        assert len(conn.execute("SELECT rowid FROM positions").fetchall()) == len(ROWS["positions"])
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            conn.execute("INSERT INTO positions VALUES (1, '2026-11-01 09:00:00', 0, 181.0, 1, NULL, NULL, NULL, '')")
