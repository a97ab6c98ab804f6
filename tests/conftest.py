"""Test fixtures: a real database (SQLite or PostgreSQL, by RIDERWATCH_TEST_DB), built once by the
migrations and emptied after every test; the app on top; factories for the common objects; every test
at the same instant (TEST_NOW, or RIDERWATCH_TEST_NOW)."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from riderwatch import security
from riderwatch.app import create_app
from riderwatch.config import Settings
from riderwatch.db import Base, make_engine, make_session_factory
from riderwatch.infra import clock
from riderwatch.migrate import upgrade
from riderwatch.models import Category
from riderwatch.models.tracking import POSTGRESQL_ONLY
from riderwatch.security import issue_token
from tests.api.helpers import Api
from tests.factories import District, make_district
from tests.pages import browser, report  # noqa: F401  (the page tests' fixtures, for every folder)

BACKEND = os.environ.get("RIDERWATCH_TEST_DB", "sqlite")
PG_ADMIN_URL = os.environ.get("RIDERWATCH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# Every test starts at this instant, and the clock ticks on from it (see _frozen_clock). It is awkward
# on purpose, and the same on every run: 17:40 UTC on 30 November is 01:40 on 1 December in Shanghai,
# so the UTC and the local day (and month) differ all through a test, and of the points tests place
# "an hour ago" and "two hours ago" (in earlier UTC hours) the second lies on the local day before: a
# test that takes a UTC day for a Shanghai day, or "today" for the last few hours, fails every time
# instead of a few hours a day in CI. Yet the clock reaches no hour's turn for 20 minutes and no
# midnight for hours (UTC in 6 h 20, Shanghai in 22 h 20): far longer than a test runs. It lies in the
# past, as the simulator paces its runs by the real time (a run whose times are still ahead of the real
# clock would wait for them), and after the fixed dates tests hold for past events (incidents of
# 2026-11-20).
DEFAULT_NOW = datetime(2026, 11, 30, 17, 40, tzinfo=UTC)
EARLIEST_NOW = datetime(2026, 11, 21, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def frozen_instant(value: str | None) -> datetime:
    """The instant the tests run at: DEFAULT_NOW, or RIDERWATCH_TEST_NOW (ISO 8601 with an offset, e.g.
    `RIDERWATCH_TEST_NOW=2026-12-01T00:40:00Z pytest tests/tasks`) to show that tests do not depend on it.

    Another instant must keep what tests rely on DEFAULT_NOW for: at least ten minutes from an hour's
    turn (the minute between 10 and 50, in UTC and in Shanghai alike); in Shanghai, an hour of the day
    from 01 to 22 (task rules want an earlier and a later hour of the local day); not before
    EARLIEST_NOW, and not in the future.
    """
    if not value:
        return DEFAULT_NOW
    at = datetime.fromisoformat(value)
    if at.tzinfo is None:
        raise ValueError(f"RIDERWATCH_TEST_NOW needs an offset or Z: {value!r}")
    local = at.astimezone(SHANGHAI)
    if not (10 <= at.minute <= 50 and 1 <= local.hour <= 22 and EARLIEST_NOW <= at < clock.system_time()):
        raise ValueError(f"RIDERWATCH_TEST_NOW={value!r} breaks the rules of tests.conftest.frozen_instant")
    return at.astimezone(UTC)


# What clock.utcnow() says as a test starts (unless it is marked real_clock).
TEST_NOW = frozen_instant(os.environ.get("RIDERWATCH_TEST_NOW"))


def _worker() -> str:
    """A name unique to this test process: xdist's worker id plus its run id, or the process id,
    so two runs at the same time (two people, or a session beside CI) never share a database."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", "")[:8]
    return f"{worker}_{run}" if worker else f"p{os.getpid()}"


def _pg_database(name: str) -> str:
    """A fresh PostgreSQL database for this test worker; returns its URL."""
    admin = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    base, _, _db = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


REAL_CLOCK = "real_clock"
E2E = Path(__file__).parent / "e2e"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "one_database(name, why=...): a test whose subject does not depend on the database runs once, on "
        "that one (the suite runs twice, on SQLite and on PostgreSQL)",
    )
    config.addinivalue_line(
        "markers",
        f"{REAL_CLOCK}: the test runs on the real clock, not at the tests' fixed instant (a server in another "
        "process or a browser reads the time where the frozen clock does not reach)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(E2E):
            item.add_marker(REAL_CLOCK)
            # The pages' scripts and flows are the same whatever the server stores in; every query the
            # browser tests make the server run also runs on both databases in the other tests.
            item.add_marker(pytest.mark.one_database("postgresql", why="the browser's side does not depend on it"))
        if item.get_closest_marker("one_database") is None and "database_url" not in getattr(item, "fixturenames", ()):
            # No database at all (plain functions, parsers, arithmetic): the second pass would repeat it as is.
            item.add_marker(pytest.mark.one_database("sqlite", why="it uses no database"))
        marker = item.get_closest_marker("one_database")
        if marker is not None and marker.args[0] != BACKEND:
            why = marker.kwargs.get("why", "")
            item.add_marker(pytest.mark.skip(reason=f"runs once, on {marker.args[0]}: {why}"))


@pytest.fixture(autouse=True)
def _frozen_clock(request: pytest.FixtureRequest) -> Iterator[None]:
    """Run every test with `riderwatch.infra.clock` frozen at TEST_NOW, ticking on with the real time
    from there (so elapsed times, timeouts and "received a moment ago" still work).
    The app, its jobs, models' defaults and the CLI read it, and so do tests: they take "now" from
    `clock.utcnow()`, never from `datetime.now()`, `date.today()` or `time.time()`.

    The rule: a test runs on the real clock if, and only if, it is marked `real_clock` — because part
    of what it checks reads the time in another process, where the frozen clock does not reach: a
    server started in a subprocess (`riderwatch serve`, uvicorn, the benchmarks' servers) or a browser.
    Every test under tests/e2e/ is marked so at collection. Mark a module with
    `pytestmark = pytest.mark.real_clock`, or a test with `@pytest.mark.real_clock`. A server in a
    thread of the test process (uvicorn in tests/api/test_idempotency.py, TestClient) sees the frozen
    clock and needs no mark.
    """
    if request.node.get_closest_marker(REAL_CLOCK):
        yield
        return
    with clock.frozen(TEST_NOW):
        yield


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests log in hundreds of times; production-strength argon2 would make that minutes.
    Hashes carry their own parameters, so verification follows whatever made them."""
    monkeypatch.setattr(security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def _drop_pg_database(name: str) -> None:
    admin = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if BACKEND == "postgresql":
        name = f"riderwatch_test_{_worker()}"
        url = _pg_database(name)
        upgrade(url)
        yield url
        _drop_pg_database(name)
    elif BACKEND == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'riderwatch.db'}"
        upgrade(url)
        yield url
    else:
        raise RuntimeError(f"RIDERWATCH_TEST_DB must be sqlite or postgresql, not {BACKEND!r}")


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def seeded_categories(engine: Engine) -> list[dict[str, Any]]:
    """The categories the migration seeded, restored after each test."""
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(Category.__table__))]


@functools.cache
def _pg_emptying(engine: Engine) -> str:
    """One round trip that empties every table and restarts every id sequence: DELETE, children first, and
    setval. (TRUNCATE … RESTART IDENTITY does the same but makes new files for each of the tables, ~95 ms a
    test against ~3 ms.)"""
    tables = [*reversed(Base.metadata.sorted_tables), *POSTGRESQL_ONLY.sorted_tables]
    with engine.connect() as conn:
        sequences = list(
            conn.scalars(
                text("SELECT sequence_name FROM information_schema.sequences WHERE sequence_schema = 'public'")
            )
        )
    deletes = "; ".join(f'DELETE FROM "{t.name}"' for t in tables)
    restarts = ", ".join(f"setval('\"{name}\"', 1, false)" for name in sequences)
    return f"{deletes}; SELECT {restarts}" if restarts else deletes


@pytest.fixture(autouse=True)
def _clean_database(request: pytest.FixtureRequest) -> Iterator[None]:
    if "engine" not in request.fixturenames:
        yield
        return
    engine: Engine = request.getfixturevalue("engine")
    categories: list[dict[str, Any]] = request.getfixturevalue("seeded_categories")
    yield
    tables = list(reversed(Base.metadata.sorted_tables))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(_pg_emptying(engine)))
        else:
            for table in tables:
                conn.execute(table.delete())
        conn.execute(insert(Category.__table__), categories)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        secret_key="test-secret-key",
        run_jobs=False,
        webhook_worker=False,
    )


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def db(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session for arranging and checking data; commit what the app must see."""
    session = session_factory()
    yield session
    session.rollback()
    session.close()


@pytest.fixture
def app(settings: Settings, engine: Engine) -> Any:
    application = create_app(settings)
    # Share the test engine so SQLite and PostgreSQL pools are not multiplied per test.
    application.state.engine.dispose()
    application.state.engine = engine
    application.state.session_factory = make_session_factory(engine)
    application.state.read_session_factory = make_session_factory(engine, read_only=True)
    return application


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def district(db: Session) -> District:
    """The miniature district of tests/factories.py: one user per role, and a few more."""
    return make_district(db)


@pytest.fixture
def api(client: TestClient, district: District) -> Api:
    api = Api(client)
    # Everyone holds a token up front, so no login (which is audited) falls between two snapshots. Issued
    # as the login endpoint issues them, without a request each: tests/accounts tests logging in itself.
    secret = client.app.state.settings.signing_key  # type: ignore[attr-defined]
    for username, user in district.users.items():
        token = issue_token(secret, user.id, user.token_version)
        api._headers[username] = {"Authorization": f"Bearer {token}"}
    return api
