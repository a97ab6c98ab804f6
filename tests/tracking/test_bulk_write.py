"""The bulk write path: request parsing in one go, array parameters on PostgreSQL, chunks on SQLite,
duplicates inside and across batches, and concurrent batches that agree on distinct riders."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest
from pydantic import ValidationError
from sqlalchemy import event, make_url, select
from sqlalchemy.orm import Session, sessionmaker

from riderwatch.coverage.counts import fold_counts
from riderwatch.infra.bulk import SQLITE_ROWS_PER_STATEMENT, pg_array, pg_copy_rows
from riderwatch.infra.clock import utcnow
from riderwatch.models import LastPosition, Position, User
from riderwatch.tracking.ingest import IngestResult, IngestRules
from riderwatch.tracking.schemas import ParsedPings, PingItem, parse_pings
from riderwatch.tracking.service import ingest_batch
from tests.api.helpers import Api
from tests.conftest import BACKEND, PG_ADMIN_URL
from tests.factories import District
from tests.tracking.helpers import (
    CENTER_LAT,
    CENTER_LON,
    ago,
    backdate,
    count,
    ping,
    ready,
    recount,
    send,
    stored_aggregates,
    stored_positions,
)


@pytest.mark.parametrize(
    ("element", "values"),
    [
        ("int4", [1, 22, -3, 2**31 - 1]),
        ("int2", [9, 10, -1]),
        ("int8", [644_245_094_400_000_000, None, -(2**63)]),
        ("float8", [0.1, None, 1e-05, 31.230416123456789, -0.0, None]),
        ("float8", [None, None]),
        ("float8", np.array([119.0, 25.43])),
        ("int8", []),
    ],
)
def test_binary_arrays_read_back_exactly_in_postgresql(element: str, values: list[Any] | np.ndarray) -> None:
    # Straight to the server, whichever database the suite runs on: only PostgreSQL takes these.
    url = make_url(PG_ADMIN_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url) as conn:
        got = conn.execute(f"SELECT %b::{element}[]", (pg_array(values, element),)).fetchone()
    assert got is not None
    assert got[0] == list(values)


def test_binary_copy_rows_read_back_exactly_in_postgresql() -> None:
    """Rows of `pg_copy_rows`, NULLs in several patterns (laid out in groups), as the server reads them."""
    rng = np.random.default_rng(5)
    n = 300
    ids = np.arange(n, dtype=np.int64)
    big = rng.integers(-(2**62), 2**62, n)
    small = rng.integers(-(2**15), 2**15, n)
    floats = rng.normal(0, 1e6, n)
    floats[:3] = [-0.0, 1e-310, 31.230416123456789]
    a_nulls, b_nulls = rng.random(n) < 0.3, rng.random(n) < 0.5
    columns = [(ids, None, "int4"), (big, a_nulls, "int8"), (small, None, "int2"), (floats, b_nulls, "float8")]
    data = pg_copy_rows(columns)
    url = make_url(PG_ADMIN_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TEMP TABLE copied (id int4, big int8, small int2, x float8)")
        with conn.cursor().copy("COPY copied (id, big, small, x) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(data)
        rows = conn.execute("SELECT id, big, small, x FROM copied ORDER BY id").fetchall()
    want = [
        (i, None if a_nulls[i] else int(big[i]), int(small[i]), None if b_nulls[i] else float(floats[i]))
        for i in range(n)
    ]
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == want
    assert b_nulls[0] or repr(rows[0][3]) == "-0.0"  # the sign of zero survives


def test_binary_arrays_refuse_what_their_element_cannot_hold() -> None:
    with pytest.raises(OverflowError):
        pg_array([2**31], "int4")
    with pytest.raises(TypeError):  # beyond any machine integer
        pg_array([1, 2**70], "int8")
    with pytest.raises(TypeError):
        pg_array([1.5], "int4")
    with pytest.raises(KeyError):
        pg_array([1], "text")


def test_parse_pings_checks_the_batch_at_once_and_marks_bad_pings() -> None:
    good = '{"ts": "2026-11-29T08:30:00+08:00", "lat": 31.2, "lon": 121.4, "rider": "r1"}'
    pings = parse_pings(f'{{"pings": [{good}, {good}]}}'.encode())
    assert len(pings) == 2 and list(pings.index) == [0, 1] and pings.malformed == []
    assert pings.ts[0] == datetime(2026, 11, 29, 0, 30, tzinfo=UTC) and pings.rider[0] == "r1"
    bad = '{"ts": "2026-11-29T08:30:00", "lat": 31.2, "lon": 121.4}'  # no time zone
    pings = parse_pings(f'{{"pings": [{good}, {bad}, {good}]}}'.encode())
    assert len(pings) == 3 and list(pings.index) == [0, 2] and pings.malformed == [1]
    for body in (b"", b"null", b"[]", b'{"pings": [1]}', b'{"pings": [], "more": 1}', b'{"pings": "x"}'):
        with pytest.raises(ValidationError):
            parse_pings(body)


def test_a_time_out_of_range_in_utc_is_invalid(api: Api, db: Session, district: District) -> None:
    ready(api)
    backdate(db, district.users["rider"].id)
    data = send(api, [{"ts": "0001-01-01T00:30:00+05:00", "lat": CENTER_LAT, "lon": CENTER_LON}, ping(ago(5))])
    assert data["accepted"] == 1 and [(r["index"], r["reason"]) for r in data["rejections"]] == [(0, "invalid")]


def test_large_batches_with_duplicates_inside_and_across(api: Api, db: Session, district: District) -> None:
    """More rows than one SQLite statement takes; repeats inside a batch and of an earlier batch."""
    ready(api)
    rider_id = district.users["rider"].id
    backdate(db, rider_id, hours=5)
    start = utcnow() - timedelta(hours=4)
    n = 2 * SQLITE_ROWS_PER_STATEMENT + 77

    def at(i: int) -> dict[str, Any]:
        return ping(start + timedelta(seconds=5 * i), lat=CENTER_LAT + (i % 40) * 2e-5, speed_mps=3.5)

    first = [at(i) for i in range(n)] + [at(7), at(n - 1)]
    data = send(api, first)
    assert (data["accepted"], data["duplicates"], data["rejected"]) == (n, 2, 0)
    # Half again (duplicates of the first batch), half new, one new point twice.
    second = [at(i) for i in range(n // 2, n + n // 2)] + [at(n + 3)]
    data = send(api, second)
    assert (data["accepted"], data["duplicates"], data["rejected"]) == (n // 2, n - n // 2 + 1, 0)
    positions = stored_positions(db)
    assert len(positions) == n + n // 2
    assert stored_aggregates(db) == recount(positions, (9, 10))
    last = db.scalar(select(LastPosition).where(LastPosition.rider_id == rider_id))
    assert last is not None and last.ts == max(p[1] for p in positions)
    # The stored values are the ones sent, to the microsecond and the last digit.
    row = db.scalar(select(Position).where(Position.rider_id == rider_id).order_by(Position.ts).limit(1))
    assert row is not None and row.ts == start and row.lat == CENTER_LAT and row.speed_mps == 3.5
    db.rollback()


def test_concurrent_batches_store_each_point_once_and_count_riders_once(
    api: Api, db: Session, district: District, session_factory: sessionmaker[Session], settings: Any
) -> None:
    names = ["rider", "rider2"]
    for name in names:
        ready(api, name)
        backdate(db, district.users[name].id, hours=5)
    platform = db.scalar(select(User).where(User.id == district.users["platform"].id))
    assert platform is not None
    db.expunge(platform)
    db.rollback()
    rules = IngestRules.from_settings(settings)
    start = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)

    def batch(offset: int, size: int) -> list[PingItem | None]:
        # A small area (no jump is implausible) and shared instants: the two batches overlap.
        return [
            PingItem(
                ts=start + timedelta(seconds=10 * (offset + i)),
                lat=CENTER_LAT + ((offset + i) % 7) * 1e-4,
                lon=CENTER_LON + ((offset + i) % 5) * 1e-4,
                rider=name,
            )
            for i in range(size)
            for name in names
        ]

    results: list[IngestResult] = []
    errors: list[BaseException] = []
    for round_ in range(4):
        # Two batches, and on PostgreSQL a fold of the counts they append, all at once.
        barrier = threading.Barrier(3)
        batches = [batch(round_ * 100, 150), batch(round_ * 100 + 60, 150)]

        def run(pings: list[PingItem | None], barrier: threading.Barrier) -> None:
            try:
                with session_factory() as session:
                    barrier.wait(timeout=30)
                    results.append(ingest_batch(session, sender=platform, pings=ParsedPings.of(pings), rules=rules))
                    session.commit()
            except BaseException as exc:  # re-raised in the test's thread
                errors.append(exc)

        def fold(barrier: threading.Barrier) -> None:
            try:
                with session_factory() as session:
                    barrier.wait(timeout=30)
                    for _ in range(3):
                        fold_counts(session)
                        session.commit()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(b, barrier)) for b in batches]
        threads.append(threading.Thread(target=fold, args=(barrier,)))
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
    assert all(r.rejected == 0 for r in results)
    positions = stored_positions(db)
    assert len(positions) == len(set((p[0], p[1]) for p in positions))
    assert sum(r.accepted for r in results) == len(positions) == count(db, Position)
    assert sum(r.accepted + r.duplicates for r in results) == 8 * 150 * len(names)
    expected = recount(positions, rules.resolutions)
    assert stored_aggregates(db) == expected
    assert max(n for _, n in expected.values()) == len(names)


def _position_inserts(api: Api, pings: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """Send a batch; the INSERTs into positions the server ran for it."""
    engine = api.client.app.state.engine  # type: ignore[attr-defined]
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().startswith("INSERT INTO positions"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        data = send(api, pings)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return data, seen


def test_a_resent_batch_skips_stored_points_without_violating_the_key(
    api: Api, db: Session, district: District
) -> None:
    ready(api)
    backdate(db, district.users["rider"].id)
    batch = [ping(ago(300 - 10 * i), lat=CENTER_LAT + i * 1e-5) for i in range(5)]
    data, inserts = _position_inserts(api, batch)
    # New points, all after the rider's last one: a plain INSERT on SQLite (no ON CONFLICT), a binary
    # COPY on PostgreSQL (which does not pass through SQLAlchemy's statement events).
    assert data["accepted"] == 5 and all("ON CONFLICT" not in s for s in inserts)
    assert len(inserts) == (0 if BACKEND == "postgresql" else 1)
    # Resent (a phone that never got the answer), with one new point: the points are not all after
    # the rider's last one, so the insert skips conflicts from the start; PostgreSQL logs no error.
    data, inserts = _position_inserts(api, [*batch, ping(ago(200), lat=CENTER_LAT + 1e-4)])
    assert (data["accepted"], data["duplicates"]) == (1, 5)
    assert len(inserts) == 1 and "ON CONFLICT" in inserts[0]
    assert count(db, Position) == 6
