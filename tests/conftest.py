"""Test fixtures: a real database (SQLite or PostgreSQL, by RIDERWATCH_TEST_DB), built once by the
migrations and emptied after every test; the app on top; factories for the common objects."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from riderwatch import security
from riderwatch.app import create_app
from riderwatch.config import Settings
from riderwatch.db import Base, make_engine, make_session_factory
from riderwatch.migrate import upgrade
from riderwatch.models import Category
from riderwatch.models.tracking import POSTGRESQL_ONLY
from tests.api.helpers import Api
from tests.factories import District, make_district

BACKEND = os.environ.get("RIDERWATCH_TEST_DB", "sqlite")
PG_ADMIN_URL = os.environ.get("RIDERWATCH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


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
            names = ", ".join(f'"{t.name}"' for t in [*tables, *POSTGRESQL_ONLY.sorted_tables])
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(table.delete())
        conn.execute(insert(Category.__table__), categories)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, data_dir=tmp_path / "data", secret_key="test-secret-key", run_jobs=False)


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
    # Log everyone in up front, so logins (which are audited) never fall between two snapshots.
    for username in district.users:
        api.auth(username)
    return api
