"""Engine, the declarative base and the unit of work used by the CLI and jobs."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar, Concatenate, ParamSpec, TypeVar

from sqlalchemy import DateTime, Engine, MetaData, TypeDecorator, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on SQLite (which has no time zones) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def sqlite_time(moment: datetime) -> str:
    """An aware datetime as the text `UTCDateTime` stores on SQLite ('2026-11-29 08:30:01.000250'),
    for statements that bind values straight to the driver; fixed width, so it sorts as time does."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


# PostgreSQL connections per server process: kept, and opened on demand beyond those. 20 in all,
# so four processes stay within PostgreSQL's default max_connections (100) with room for the rest.
PG_POOL_SIZE = 12
PG_POOL_OVERFLOW = 8


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine; SQLite gets WAL, foreign keys and a busy timeout so several writers queue."""
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Take the driver out of its own transaction handling so BEGIN IMMEDIATE below works.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Writers take the lock at BEGIN, so two transactions never deadlock on upgrade. Readers
            # (READ_ONLY) begin deferred and take no lock at all: in WAL mode they read a snapshot
            # while a writer goes on, and SQLite refuses any write they try (query_only).
            read_only = bool(conn.get_execution_options().get(READ_ONLY))
            info = conn.connection.info
            if info.get("query_only", False) != read_only:
                conn.exec_driver_sql(f"PRAGMA query_only={int(read_only)}")
                info["query_only"] = read_only
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if "poolclass" not in kwargs:
        # Enough kept connections for a process's concurrent requests: beyond the pool (SQLAlchemy's
        # default is 5) each extra one is opened and closed again per request, a new PostgreSQL
        # backend each time, with its caches and prepared statements cold.
        kwargs.setdefault("pool_size", PG_POOL_SIZE)
        kwargs.setdefault("max_overflow", PG_POOL_OVERFLOW)
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "begin")
    def _pg_begin(conn: Any) -> None:
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")

    return engine


# An execution option: the transactions of a session made with `read_only=True` may not write.
READ_ONLY = "riderwatch_read_only"


def make_session_factory(engine: Engine, *, read_only: bool = False) -> sessionmaker[Session]:
    """Sessions on `engine`; with `read_only`, their transactions read and the database refuses writes
    (on SQLite they also take no lock: see make_engine)."""
    bind = engine.execution_options(**{READ_ONLY: True}) if read_only else engine
    return sessionmaker(bind=bind, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction owned by the caller (CLI, job): commit on success, roll back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def upsert(session: Session, model: type[Base]) -> Any:
    """An INSERT on a model's table that takes ON CONFLICT, for the session's dialect (SQLite or PostgreSQL)."""
    table = model
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise RuntimeError(f"RiderWatch needs SQLite or PostgreSQL, not {name}")


P = ParamSpec("P")
R = TypeVar("R")


def atomic(fn: Callable[Concatenate[Session, P], R]) -> Callable[Concatenate[Session, P], R]:
    """Make a service function all or nothing: it runs in a savepoint of the caller's transaction, so a
    refusal it raises midway undoes what it had done, and the caller's transaction goes on (a page can
    show the refusal and commit nothing of it)."""

    @functools.wraps(fn)
    def run(session: Session, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with session.begin_nested():
            return fn(session, *args, **kwargs)

    return run


def in_transaction(factory: sessionmaker[Session], step: Callable[[Session], R]) -> R:
    """`step(session)` in a unit of work of its own: for a route or a step of a longer job that keeps its
    transactions short (run in a worker thread, e.g. `anyio.to_thread.run_sync(in_transaction, f, step)`)."""
    with unit_of_work(factory) as session:
        return step(session)
