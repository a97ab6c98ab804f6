"""`riderwatch incidents import FILE.csv [--source S]`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from riderwatch.cli import app as cli
from riderwatch.models import AuditEntry, Incident


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
    assert "created: 2" in first.output and "already present: 0" in first.output and "errors: 0" in first.output
    assert _refs(db) == [("110", "J1"), ("110", "J2")]
    again = run(str(good), "--source", "110")
    assert again.exit_code == 0 and "created: 0" in again.output and "already present: 2" in again.output
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
