"""On PostgreSQL ingest appends its counts to `coverage_cell_deltas`; a job folds them in, readers read them.

On SQLite (one writer at a time) ingest adds to `coverage_cells` directly and nothing is appended.
That the coverage query sees counts no fold has moved yet is shown by tests/coverage/test_query.py,
whose scene is sent through the API and queried at once; the fold during concurrent ingest by
tests/tracking/test_bulk_write.py.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from riderwatch.coverage.counts import fold_counts, hourly_counts
from riderwatch.jobs import JOBS, run_due_jobs
from riderwatch.models import CoverageCell, coverage_cell_deltas
from tests.api.helpers import Api
from tests.conftest import BACKEND
from tests.factories import District
from tests.tracking.helpers import ago, backdate, ping, ready, recount, send, stored_aggregates, stored_positions


def _rows(db: Session, table: object) -> int:
    n = db.scalar(select(func.count()).select_from(table))  # type: ignore[arg-type]
    return int(n or 0)


def _appended(db: Session) -> tuple[int, int]:
    """Rows of coverage_cell_deltas, and the cell-hours they hold."""
    rows = db.execute(select(func.cardinality(coverage_cell_deltas.c.cell))).scalars().all()
    return len(rows), sum(rows)


def _distinct_appended(db: Session) -> int:
    """The distinct cell-hours (at any resolution) the appended rows hold."""
    t = coverage_cell_deltas.c
    keys = set()
    for resolution, cell, hour in db.execute(select(t.resolution, t.cell, t.hour)):
        keys |= set(zip(resolution, cell, hour, strict=True))
    return len(keys)


def _sent(api: Api, db: Session, district: District) -> None:
    ready(api)
    backdate(db, district.users["rider"].id)
    pings = [ping(ago(600 - 10 * i), lat=25.43 + i * 1e-4) for i in range(30)]
    assert send(api, pings)["accepted"] == 30
    assert send(api, [ping(ago(250), lat=25.5)])["accepted"] == 0  # a jump: refused, counts nothing
    assert send(api, [ping(ago(200), lat=25.43 + 29e-4)])["accepted"] == 1


@pytest.mark.skipif(BACKEND != "postgresql", reason="the appended counts exist on PostgreSQL only")
def test_each_batch_appends_one_row_and_a_fold_moves_them_once(api: Api, db: Session, district: District) -> None:
    _sent(api, db, district)
    rows, cell_hours = _appended(db)
    assert rows == 2 and _rows(db, CoverageCell) == 0  # the refused batch appended nothing
    distinct = _distinct_appended(db)
    folded = fold_counts(db)
    # One row per distinct cell-hour, the two batches' counts of one cell-hour summed: the last batch's
    # point lies in a cell of the first's, in the same hour (no hour begins while a test runs).
    assert 0 < folded == distinct < cell_hours
    db.commit()
    assert _appended(db) == (0, 0) and _rows(db, CoverageCell) == folded
    assert fold_counts(db) == 0  # nothing left: folding again changes nothing
    db.commit()
    assert stored_aggregates(db) == recount(stored_positions(db), (9, 10))


def test_sqlite_adds_to_the_counts_directly(api: Api, db: Session, district: District) -> None:
    if BACKEND != "sqlite":
        pytest.skip("SQLite only")
    _sent(api, db, district)
    assert "coverage_cell_deltas" not in inspect(db.get_bind()).get_table_names()
    assert fold_counts(db) == 0
    assert stored_aggregates(db) == recount(stored_positions(db), (9, 10))


def test_the_periodic_job_folds(
    api: Api, db: Session, district: District, session_factory: sessionmaker[Session]
) -> None:
    assert "fold_coverage_counts" in JOBS
    _sent(api, db, district)
    db.rollback()
    done = run_due_jobs(session_factory, interval=60)
    assert (done["fold_coverage_counts"] > 0) == (BACKEND == "postgresql")
    if BACKEND == "postgresql":
        assert _appended(db) == (0, 0)
    db.rollback()
    assert stored_aggregates(db) == recount(stored_positions(db), (9, 10))


@pytest.mark.skipif(BACKEND != "postgresql", reason="the appended counts exist on PostgreSQL only")
def test_a_reader_sees_the_appended_counts_and_writes_nothing(api: Api, db: Session, district: District) -> None:
    _sent(api, db, district)
    appended = _appended(db)
    t = coverage_cell_deltas.c
    cells = sorted({c for row in db.scalars(select(t.cell)) for c in row})
    hours = sorted({h for row in db.scalars(select(t.hour)) for h in row})
    db.rollback()

    def read() -> list[tuple[int, int, int, int]]:
        rows = db.execute(hourly_counts(db, resolution=10, cells=cells, lo=hours[0], hi=hours[-1] + 1)).all()
        db.rollback()
        return sorted((int(c), int(h), int(p), int(r)) for c, h, p, r in rows)

    unfolded = read()
    assert unfolded and sum(p for _, _, p, _ in unfolded) == 31  # every accepted point, once
    assert _appended(db) == appended and _rows(db, CoverageCell) == 0  # the reader wrote nothing
    db.rollback()
    assert fold_counts(db) > 0
    db.commit()
    assert read() == unfolded  # the same answer from the folded counts


@pytest.mark.skipif(BACKEND != "postgresql", reason="the appended counts exist on PostgreSQL only")
def test_folds_take_turns(api: Api, db: Session, district: District, session_factory: sessionmaker[Session]) -> None:
    _sent(api, db, district)
    assert fold_counts(db) > 0  # holds the fold lock until this transaction ends
    done: list[int] = []

    def other_fold() -> None:
        with session_factory() as other:
            done.append(fold_counts(other))
            other.commit()

    thread = threading.Thread(target=other_fold)
    thread.start()
    thread.join(timeout=2)
    waited = thread.is_alive()
    db.commit()
    thread.join(timeout=30)
    assert waited and done == [0]  # it waited for the first, then found nothing left to fold
    assert stored_aggregates(db) == recount(stored_positions(db), (9, 10))
