"""Retention: `riderwatch purge` and the scheduled job delete raw data past retention and keep the counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from riderwatch.cli import app as cli
from riderwatch.infra.clock import utcnow
from riderwatch.infra.timecodes import hour_of
from riderwatch.jobs import JOBS, run_due_jobs
from riderwatch.models import CoverageCell, CoverageRiderCell, DutyShift, LastPosition, Position, PositionRefusal
from riderwatch.tracking.service import purge_expired
from tests.api.helpers import Api
from tests.factories import District
from tests.tracking.helpers import CENTER_LAT, ago, backdate, count, ping, ready, send, stored_aggregates


def _age_everything(db: Session, rider_id: int, days: int) -> None:
    """Move the rider's stored data `days` into the past, as if it had been collected then."""
    delta = timedelta(days=days)
    positions = db.scalars(select(Position).where(Position.rider_id == rider_id)).all()
    for p in positions:
        p.ts -= delta
    for lp in db.scalars(select(LastPosition)).all():
        lp.ts -= delta
    for rc in db.scalars(select(CoverageRiderCell)).all():
        rc.hour -= days * 24
    db.commit()


@pytest.fixture
def collected(api: Api, db: Session, district: District) -> int:
    ready(api)
    rider_id = district.users["rider"].id
    backdate(db, rider_id)
    assert send(api, [ping(ago(300)), ping(ago(200), lat=CENTER_LAT + 0.001)])["accepted"] == 2
    return rider_id


def test_purge_keeps_aggregates(api: Api, db: Session, collected: int) -> None:
    counts = stored_aggregates(db)
    cells = count(db, CoverageRiderCell)
    assert cells >= 2
    nothing = {"positions": 0, "rider_cells": 0, "last_positions": 0, "shifts": 0, "refusals": 0}
    assert purge_expired(db, retention_days=30) == nothing
    _age_everything(db, collected, days=31)
    # A closed shift from long ago goes too; the open one stays.
    db.execute(insert(DutyShift).values(rider_id=collected, started_at=ago(40 * 86400), ended_at=ago(39 * 86400)))
    # Refusal counts go a day after their (local) day passes the cutoff.
    today = utcnow().date()
    for days, reason in ((32, "off_duty"), (31, "off_duty"), (29, "too_old")):
        db.execute(
            insert(PositionRefusal).values(rider_id=collected, day=today - timedelta(days=days), reason=reason, count=3)
        )
    db.commit()
    done = purge_expired(db, retention_days=30)
    db.commit()
    assert done == {"positions": 2, "rider_cells": cells, "last_positions": 1, "shifts": 1, "refusals": 1}
    assert count(db, Position) == count(db, CoverageRiderCell) == count(db, LastPosition) == 0
    assert count(db, DutyShift) == 1
    assert count(db, PositionRefusal) == 2
    assert stored_aggregates(db) == counts and counts


def test_recent_data_survives(api: Api, db: Session, collected: int) -> None:
    _age_everything(db, collected, days=29)
    assert purge_expired(db, retention_days=30)["positions"] == 0
    db.commit()
    assert count(db, Position) == 2


def test_cli_purge(
    api: Api, db: Session, collected: int, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIDERWATCH_DATABASE_URL", database_url)
    monkeypatch.setenv("RIDERWATCH_DATA_DIR", str(tmp_path))
    cells = count(db, CoverageRiderCell)
    _age_everything(db, collected, days=10)
    result = CliRunner().invoke(cli, ["purge"])
    assert result.exit_code == 0, result.output
    assert "positions: 0" in result.output
    result = CliRunner().invoke(cli, ["purge", "--days", "7"])
    assert result.exit_code == 0, result.output
    assert "positions: 2" in result.output and f"rider_cells: {cells}" in result.output
    assert count(db, Position) == 0
    assert count(db, CoverageCell) == cells  # one rider: a count row per per-rider row, all kept


def test_scheduled_purge(
    api: Api, db: Session, collected: int, session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "purge_positions" in JOBS
    monkeypatch.setenv("RIDERWATCH_POSITION_RETENTION_DAYS", "5")
    cells = count(db, CoverageRiderCell)
    _age_everything(db, collected, days=6)
    done = run_due_jobs(session_factory, interval=60)
    assert done["purge_positions"] == 2 + cells + 1
    assert count(db, Position) == 0
    assert count(db, CoverageCell) == cells


def test_hours_are_whole_hours_since_epoch() -> None:
    assert hour_of(datetime(1970, 1, 1, 0, 59, tzinfo=UTC)) == 0
    assert hour_of(datetime(1970, 1, 1, 1, 0, tzinfo=UTC)) == 1
    assert hour_of(datetime(1969, 12, 31, 23, 30, tzinfo=UTC)) == -1
