"""`riderwatch incidents import FILE.csv|FILE.xlsx [--source S]`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from riderwatch.cli import app as cli
from riderwatch.models import AuditEntry, Incident
from tests.incidents.workbooks import HEADER, xlsx


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path, db: Session) -> Callable[..., Result]:
    monkeypatch.setenv("RIDERWATCH_DATABASE_URL", database_url)
    monkeypatch.setenv("RIDERWATCH_DATA_DIR", str(tmp_path))
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(cli, ["incidents", "import", *args])

    return invoke


def _refs(db: Session) -> list[tuple[str, str]]:
    rows = [(i.source, i.external_ref) for i in db.scalars(select(Incident).order_by(Incident.external_ref))]
    db.commit()
    return rows


def test_import_twice_then_a_bad_file(run: Callable[..., Result], db: Session, tmp_path: Path) -> None:
    good = tmp_path / "cases.csv"
    good.write_text(
        "\ufeffexternal_ref,category,lat,lon,occurred_at,note\n"
        "J1,盗窃,25.4301,119.0102,2026-11-20 21:30,金鼎广场\n"
        "J2,fight_dispute,25.4302,119.0103,2026-11-20T22:10:00+08:00,\n",
        encoding="utf-8",
    )
    first = run(str(good), "--source", "110")
    assert first.exit_code == 0, first.output
    assert "created: 2\nupdated: 0\nunchanged: 0\nerrors: 0" in first.output
    assert _refs(db) == [("110", "J1"), ("110", "J2")]
    again = run(str(good), "--source", "110")
    assert again.exit_code == 0 and "created: 0\nupdated: 0\nunchanged: 2" in again.output
    entries = list(db.scalars(select(AuditEntry).where(AuditEntry.action == "incident.import")))
    db.commit()
    assert [e.detail["origin"] for e in entries] == ["cli:cases.csv"] * 2 and entries[0].actor_id is None

    bad = tmp_path / "bad.csv"
    bad.write_text(
        "source,external_ref,category,lat,lon,occurred_at\n"
        "110,J3,theft,25.43,119.01,2026-11-20T21:30:00+08:00\n"
        "110,J4,ufo,25.43,north,2026-11-20T21:30:00+08:00\n",
        encoding="utf-8",
    )
    refused = run(str(bad))
    assert refused.exit_code == 2
    assert "row 3, category: unknown category 'ufo'" in refused.output
    assert "row 3, lon:" in refused.output and "1 of 2 rows are refused" in refused.output
    assert _refs(db) == [("110", "J1"), ("110", "J2")]


def test_missing_file_and_missing_source(run: Callable[..., Result], tmp_path: Path) -> None:
    gone = run(str(tmp_path / "nope.csv"))
    assert gone.exit_code == 2 and "cannot read" in gone.output
    nosource = tmp_path / "s.csv"
    nosource.write_text("external_ref,category,lat,lon,occurred_at\nX,theft,25.43,119.01,2026-11-20 21:30\n")
    res = run(str(nosource))
    assert res.exit_code == 2 and "missing columns: source" in res.output


def test_a_workbook_then_a_changed_one(run: Callable[..., Result], db: Session, tmp_path: Path) -> None:
    book = tmp_path / "cases.xlsx"
    rows = [
        ["110", "X1", "theft", 25.4301, 119.0102, datetime(2026, 11, 20, 21, 30), "金鼎广场"],
        ["110", "X2", "theft", 25.4302, 119.0103, "2026-11-20 22:10", None],
    ]
    book.write_bytes(xlsx([HEADER, *rows]))
    first = run(str(book))
    assert first.exit_code == 0, first.output
    assert "created: 2\nupdated: 0\nunchanged: 0\nerrors: 0" in first.output
    rows[1][2] = "fight_dispute"
    book.write_bytes(xlsx([HEADER, *rows]))
    again = run(str(book))
    assert again.exit_code == 0, again.output
    assert "created: 0\nupdated: 1\nunchanged: 1" in again.output
    items = {i.external_ref: i for i in db.scalars(select(Incident))}
    db.commit()
    assert items["X2"].category_code == "fight_dispute" and items["X1"].category_code == "theft"
    assert items["X1"].occurred_at == datetime(2026, 11, 20, 13, 30, tzinfo=UTC)
    entries = list(db.scalars(select(AuditEntry).where(AuditEntry.action == "incident.import").order_by(AuditEntry.id)))
    db.commit()
    assert [e.detail["origin"] for e in entries] == ["cli:cases.xlsx"] * 2 and entries[1].detail["updated"] == 1


def test_bad_workbooks(run: Callable[..., Result], db: Session, tmp_path: Path) -> None:
    fake = tmp_path / "cases.xlsx"
    fake.write_text("source,external_ref\n")
    res = run(str(fake))
    assert res.exit_code == 2 and "error: the file is not a valid Excel workbook (.xlsx)" in res.output
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(xlsx([HEADER, ["110", "Y1", "theft", 25.43, "north", datetime(2026, 11, 20, 21, 30)]]))
    res = run(str(bad))
    assert res.exit_code == 2 and "row 2, lon: 'north' is not a number" in res.output
    assert _refs(db) == []
