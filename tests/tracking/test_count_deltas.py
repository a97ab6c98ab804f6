"""On PostgreSQL ingest appends its counts to `coverage_cell_deltas`; readers and a job fold them in.

On SQLite (one writer at a time) ingest adds to `coverage_cells` directly and nothing is appended.
That the coverage query folds before it reads is shown by tests/coverage/test_query.py, whose scene is
sent through the API and queried at once; the fold during concurrent ingest by
tests/tracking/test_bulk_write.py.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from riderwatch.db import make_engine
from riderwatch.jobs import JOBS, run_due_jobs
from riderwatch.models import CoverageCell, coverage_cell_deltas
from riderwatch.tracking.ingest import fold_counts
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
    # One row per distinct cell-hour, the two batches' counts of one cell-hour summed (the last
    # batch's point lies in a cell of the first's, in the same hour unless an hour began between).
    assert 0 < folded == distinct <= cell_hours
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
def test_a_reader_fold_holds_no_locks_while_the_reader_goes_on(
    api: Api, db: Session, district: District, session_factory: sessionmaker[Session]
) -> None:
    _sent(api, db, district)
    assert fold_counts(db) > 0  # a reader folds, and its own transaction is still open
    assert send(api, [ping(ago(100), lat=25.43 + 29e-4)])["accepted"] == 1
    done: list[int] = []

    def other_reader() -> None:
        with session_factory() as other:
            done.append(fold_counts(other))

    # Another reader's fold does not wait for the first reader to finish.
    thread = threading.Thread(target=other_reader)
    thread.start()
    thread.join(timeout=10)
    finished = not thread.is_alive()
    db.rollback()  # the first reader ends (a fold waiting on it can go on)
    thread.join(timeout=30)
    assert finished and done and done[0] > 0
    assert stored_aggregates(db) == recount(stored_positions(db), (9, 10))


@pytest.mark.skipif(BACKEND != "postgresql", reason="the appended counts exist on PostgreSQL only")
def test_a_fold_needs_no_second_connection_from_the_callers_pool(api: Api, db: Session, district: District) -> None:
    _sent(api, db, district)
    db.rollback()
    url = db.get_bind().engine.url.render_as_string(hide_password=False)
    tight = make_engine(url, pool_size=1, max_overflow=0, pool_timeout=3)
    try:
        with Session(tight) as reader:
            reader.execute(select(func.count()).select_from(CoverageCell))  # holds the pool's one connection
            assert fold_counts(reader) > 0  # does not wait for the pool (it would time out)
    finally:
        tight.dispose()
