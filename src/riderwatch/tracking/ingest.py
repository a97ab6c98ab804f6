"""The write path for positions: validate a batch, store it in bulk, update the coverage aggregates.

Everything here is set-at-a-time. The checks run over the batch as numpy arrays (`store_positions`);
a batch costs a fixed handful of statements (riders, shifts and last points read once; positions,
last points, and per-rider cells with the cell counts written with one statement each), never a
query per ping. The writes go to the driver directly, with values already in the column's form, so no
per-row work happens in SQLAlchemy:

- PostgreSQL: one binary array per column (`pg_array`), unnested by the statement
  (`INSERT … SELECT … FROM unnest(…)`). The text is the same for every batch whatever its size, so
  psycopg parses it once and the server prepares it once, and a batch of 5,000 rows is nine parameters.
- SQLite (no arrays): a multi-row VALUES list, one statement per chunk of rows.

Statements run on the session's connection, so ingest shares the caller's transaction and commits or
rolls back with it (positions go in inside a savepoint, see `_store`).
"""

from __future__ import annotations

import math
import struct
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import chain, repeat
from typing import Any, NamedTuple, cast
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import psycopg
from h3.api import basic_int as h3
from psycopg.adapt import Dumper
from psycopg.pq import Format
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Float,
    Integer,
    SmallInteger,
    Table,
    any_,
    bindparam,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from riderwatch.config import Settings
from riderwatch.db import make_engine, sqlite_time, upsert
from riderwatch.geo.coords import EARTH_RADIUS_M, haversine_m
from riderwatch.models import (
    CoverageCell,
    CoverageRiderCell,
    DutyShift,
    LastPosition,
    Position,
    PositionRefusal,
    Rider,
)

# Why a ping was refused: code → explanation given back to the client.
REASONS: dict[str, str] = {
    "invalid": "the ping is malformed",
    "bad_coordinates": "the coordinates are impossible",
    "future": "the time lies in the future",
    "too_old": "the time is too long ago",
    "no_consent": "the rider has not consented to location sharing for that time",
    "off_duty": "the rider was not on duty at that time",
    "implausible_jump": "the position is too far from the rider's previous point for the time between them",
    "unknown_rider": "no such rider",
    "other_platform": "the rider belongs to another platform",
    "rider_not_allowed": "a rider sends only their own positions (leave out 'rider')",
}

SECONDS_PER_HOUR = 3600


@dataclass(frozen=True)
class IngestRules:
    resolutions: tuple[int, ...]
    max_age: timedelta
    max_future: timedelta
    max_speed_mps: float
    jump_slack_m: float
    # Refusals are counted per day in this timezone (the day a rider and the desk live by).
    timezone: str = "UTC"

    @property
    def finest(self) -> int:
        return max(self.resolutions)

    @classmethod
    def from_settings(cls, settings: Settings) -> IngestRules:
        # A ping older than the retention period would be purged at once, and would count its rider
        # again in an hour whose per-rider rows are already gone: never accept one.
        age = min(timedelta(hours=settings.max_ping_age_hours), timedelta(days=settings.position_retention_days))
        return cls(
            resolutions=settings.coverage_resolutions,
            max_age=age,
            max_future=timedelta(seconds=settings.max_ping_future_seconds),
            max_speed_mps=settings.max_speed_mps,
            jump_slack_m=settings.jump_slack_m,
            timezone=settings.timezone,
        )

    def day_of(self, moment: datetime) -> date:
        return moment.astimezone(ZoneInfo(self.timezone)).date()


@dataclass(frozen=True)
class Ping:
    ts: datetime  # aware, UTC
    lat: float
    lon: float
    speed_mps: float | None = None
    heading: float | None = None
    accuracy_m: float | None = None


@dataclass(frozen=True)
class Rejection:
    index: int
    reason: str
    rider_id: int | None = None  # the rider the point belongs to, when it is known to be theirs

    @property
    def detail(self) -> str:
        return REASONS[self.reason]


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.rejections)

    def reject(self, index: int, reason: str, rider_id: int | None = None) -> None:
        self.rejections.append(Rejection(index, reason, rider_id))


def hour_of(ts: datetime) -> int:
    """Whole hours since 1970-01-01T00:00Z: the time key of the coverage aggregates."""
    return micros(ts) // MICROS_PER_HOUR


def table_of(model: type[Any]) -> Table:
    """A model's Table: positions are written with Core statements, not the ORM unit of work."""
    return cast(Table, model.__table__)


def one_of(session: Session, column: ColumnElement[Any], values: Iterable[Any]) -> ColumnElement[bool]:
    """`column IN (values)`; on PostgreSQL `column = ANY(array)`, one parameter for all the values.

    An IN list has a placeholder per value, so its text changes with every batch and psycopg parses
    it anew each time (and SQLAlchemy renders it); with the array the statement stays the same.
    """
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
    return column.in_(list(values))


def coordinates_ok(lat: float, lon: float) -> bool:
    # (0, 0) is where phones put a fix they do not have; no rider works in the Gulf of Guinea.
    if not (math.isfinite(lat) and math.isfinite(lon)):
        return False
    return -90 <= lat <= 90 and -180 <= lon <= 180 and not (lat == 0 and lon == 0)


@dataclass
class _RiderState:
    consent_since: datetime | None
    shifts: list[tuple[datetime, datetime | None]] = field(default_factory=list)


def _rider_states(session: Session, rider_ids: set[int], first: datetime, last: datetime) -> dict[int, _RiderState]:
    states = {
        uid: _RiderState(consent_since=since if consent else None)
        for uid, consent, since in session.execute(
            select(Rider.user_id, Rider.location_consent, Rider.location_consent_at).where(
                one_of(session, Rider.user_id.expression, rider_ids)
            )
        )
    }
    shifts = session.execute(
        select(DutyShift.rider_id, DutyShift.started_at, DutyShift.ended_at)
        .where(
            one_of(session, DutyShift.rider_id.expression, rider_ids),
            DutyShift.started_at <= last,
            (DutyShift.ended_at.is_(None)) | (DutyShift.ended_at >= first),
        )
        .order_by(DutyShift.rider_id, DutyShift.started_at)
    )
    for rider_id, started, ended in shifts:
        if rider_id in states:
            states[rider_id].shifts.append((started, ended))
    return states


# --- times as integers -------------------------------------------------------------------------------

MICROS_PER_SECOND = 1_000_000
MICROS_PER_HOUR = MICROS_PER_SECOND * SECONDS_PER_HOUR
NEVER = np.iinfo(np.int64).max  # "no end" (a shift still open), or "no consent": later than any time


def micros(moment: datetime) -> int:
    """An aware datetime as whole microseconds since 1970-01-01T00:00Z, exactly."""
    return round(moment.timestamp() - moment.microsecond / MICROS_PER_SECOND) * MICROS_PER_SECOND + moment.microsecond


def micros_of(moments: Sequence[datetime]) -> npt.NDArray[np.int64]:
    """`micros` of many aware datetimes at once.

    Exact: `timestamp()` is a float some microseconds off at worst (in year 9999), so taking the
    microseconds off and rounding gives the whole second, to which they are added back as they are.
    """
    n = len(moments)
    fraction = np.fromiter((m.microsecond for m in moments), np.int64, n)
    stamps = np.fromiter((m.timestamp() for m in moments), np.float64, n)
    seconds = np.rint(stamps - fraction / MICROS_PER_SECOND).astype(np.int64)
    return seconds * MICROS_PER_SECOND + fraction


@dataclass(frozen=True)
class Micros:
    """A column of times given as `micros`: the writer turns them into the column's form in bulk."""

    values: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.values)


# --- writing -------------------------------------------------------------------------------------------

# SQLite's limit on parameters in one statement (since 3.32).
SQLITE_MAX_VARIABLES = 32_766
SQLITE_ROWS_PER_STATEMENT = 500
# PostgreSQL: microseconds since the epoch to timestamptz, exactly (an interval counts microseconds).
PG_FROM_MICROS = "(timestamptz 'epoch' + {} * interval '1 microsecond')"
PG_TO_MICROS = "(extract(epoch FROM {}) * 1000000)::bigint"


class PgArray:
    """A one-dimensional PostgreSQL array in the server's binary form, for a `%b::type[]` parameter."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class PgArrayDumper(Dumper):
    """Sends a `PgArray` as it is. Its type comes from the statement's cast (the parameter's oid is
    left unknown), so one dumper serves every element type."""

    format = Format.BINARY

    def dump(self, obj: PgArray) -> bytes:
        return obj.data


psycopg.adapters.register_dumper(PgArray, PgArrayDumper)

# Element types of the arrays ingest sends: numpy's big-endian form and the PostgreSQL type's oid.
PG_ELEMENTS: dict[str, tuple[str, int]] = {
    "int2": (">i2", 21),
    "int4": (">i4", 23),
    "int8": (">i8", 20),
    "float8": (">f8", 701),
}


def pg_array(values: Sequence[int | float | None] | npt.NDArray[Any], element: str) -> PgArray:
    """Numbers (None for NULL) as a binary PostgreSQL array, built by numpy at a few nanoseconds each.

    Text arrays cost a str() per element here and a parse per element in the server; at thousands of
    rows and eight columns per batch that was a large share of both. The layout is array_send's:
    dimensions, a NULL flag, the element oid, length and lower bound, then each element as its byte
    length (-1 for NULL) and its big-endian value.
    """
    layout, oid = PG_ELEMENTS[element]
    n = len(values)
    if not n:
        return PgArray(struct.pack(">iii", 0, 0, oid))
    nulls: list[int] = []
    if isinstance(values, np.ndarray):
        numbers = values  # numpy arrays hold no NULL
    else:
        nulls = [i for i, v in enumerate(values) if v is None] if None in values else []
        numbers = np.array([0 if v is None else v for v in values] if nulls else values)
    kind = np.dtype(layout)
    if numbers.dtype.kind not in "iuf" or (kind.kind == "i" and numbers.dtype.kind == "f"):
        raise TypeError(f"no {element} array of {numbers.dtype} values")
    if kind.kind == "i" and (numbers.min() < np.iinfo(kind).min or numbers.max() > np.iinfo(kind).max):
        raise OverflowError(f"a value does not fit {element}")
    size = kind.itemsize
    items = np.empty(n, dtype=[("length", ">i4"), ("value", layout)])
    items["length"] = size
    items["value"] = numbers
    header = struct.pack(">iiiii", 1, 1 if nulls else 0, oid, n, 1)
    if not nulls:
        return PgArray(header + items.tobytes())
    items["length"][nulls] = -1
    kept = np.ones((n, 4 + size), dtype=bool)
    kept[nulls, 4:] = False  # a NULL is its length alone
    return PgArray(header + items.view(np.uint8).reshape(n, 4 + size)[kept].tobytes())


# PostgreSQL's binary COPY: its times count microseconds from 2000-01-01T00:00Z.
PG_EPOCH_MICROS = 946_684_800 * MICROS_PER_SECOND
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)  # signature, flags, no extension
COPY_TRAILER = struct.pack(">h", -1)


def pg_copy_rows(columns: Sequence[tuple[npt.NDArray[Any], npt.NDArray[np.bool_] | None, str]]) -> bytes:
    """Rows in the form of PostgreSQL's binary COPY, built by numpy: each column as its values, a
    mask of NULLs (or None) and its element type (`PG_ELEMENTS`).

    A row is its field count, then each field's byte length (-1 for NULL) and big-endian value. Rows
    with NULLs in the same columns share one layout and are laid out together: COPY takes rows in
    any order.
    """
    n = len(columns[0][0])
    if len(columns) > 62:
        raise ValueError("at most 62 columns")  # one bit each in an int64 NULL pattern
    pattern = np.zeros(n, dtype=np.int64)
    for bit, (_, nulls, _) in enumerate(columns):
        if nulls is not None:
            pattern |= nulls.astype(np.int64) << bit
    shapes = np.unique(pattern).tolist()
    parts = [COPY_HEADER]
    for shape in shapes:
        rows = None if len(shapes) == 1 else np.flatnonzero(pattern == shape)
        fields: list[tuple[str, str]] = [("count", ">i2")]
        for i, (_, _, element) in enumerate(columns):
            fields.append((f"l{i}", ">i4"))
            if not (shape >> i) & 1:
                fields.append((f"v{i}", PG_ELEMENTS[element][0]))
        out = np.empty(n if rows is None else len(rows), dtype=fields)
        out["count"] = len(columns)
        for i, (values, _, element) in enumerate(columns):
            if (shape >> i) & 1:
                out[f"l{i}"] = -1
            else:
                out[f"l{i}"] = np.dtype(PG_ELEMENTS[element][0]).itemsize
                out[f"v{i}"] = values if rows is None else values[rows]
        parts.append(out.tobytes())
    parts.append(COPY_TRAILER)
    return b"".join(parts)


def pg_element(column: Any) -> str:
    """The `PG_ELEMENTS` key for a numeric column."""
    kind = column.type
    if isinstance(kind, BigInteger):
        return "int8"
    if isinstance(kind, SmallInteger):
        return "int2"
    if isinstance(kind, Integer):
        return "int4"
    if isinstance(kind, Float):
        return "float8"
    raise TypeError(f"no binary array for column {column.name} ({kind})")


def sqlite_times(values: Sequence[int] | npt.NDArray[np.int64]) -> list[str]:
    """`micros` as the text `UTCDateTime` stores on SQLite (`db.sqlite_time`), in bulk."""
    return [t[:10] + " " + t[11:] for t in np.array(values, dtype="datetime64[us]").astype(str).tolist()]


class Inserted(NamedTuple):
    stored: int  # rows inserted (not those the conflict clause skipped)
    rows: list[tuple[Any, ...]]  # what RETURNING gave back, if asked


class BulkWriter:
    """INSERT … ON CONFLICT of many rows at once on the session's connection, straight to the driver.

    Columns come as lists of values already in the database's form, except times, which come as
    `Micros` (PostgreSQL converts them in the statement, SQLite gets the text SQLAlchemy writes for
    `UTCDateTime`, so both paths read and compare alike). `constants` are the same for every row.
    """

    def __init__(self, session: Session) -> None:
        self.conn: Connection = session.connection()
        name = self.conn.dialect.name
        if name not in ("postgresql", "sqlite"):
            raise RuntimeError(f"positions need SQLite or PostgreSQL, not {name}")
        self.postgres = name == "postgresql"

    def time(self, ts: datetime) -> Any:
        """An aware UTC datetime as the column takes it."""
        return ts if self.postgres else sqlite_time(ts)

    def returned_times(self, values: Micros) -> list[Any]:
        """Times as a RETURNING clause of `insert` gives them back: `micros` on PostgreSQL, text on SQLite."""
        return values.values.tolist() if self.postgres else sqlite_times(values.values)

    def insert(
        self,
        table: Table,
        columns: dict[str, Sequence[Any] | npt.NDArray[Any] | Micros],
        *,
        conflict: str,
        constants: dict[str, Any] | None = None,
        returning: Sequence[str] = (),
    ) -> Inserted:
        """Insert the rows (one list per column, in row order): how many were, and the RETURNING rows, if asked.

        A time column named in `returning` comes back as `returned_times` gives it.
        """
        constants = constants or {}
        size = len(next(iter(columns.values())))
        if not size:
            return Inserted(0, [])
        names = [*columns, *constants]
        into = f"INSERT INTO {table.name} ({', '.join(names)})"
        times = {name for name, values in columns.items() if isinstance(values, Micros)}
        if self.postgres:
            back = ", ".join(PG_TO_MICROS.format(c) if c in times else c for c in returning)
            # unnest yields the arrays' elements in order, so rows are written (and locked) in the
            # caller's order: sorted keys keep concurrent batches from deadlocking.
            aliases = [f"c{i}" for i in range(len(columns))]
            elements = ["int8" if name in times else pg_element(table.c[name]) for name in columns]
            arrays = ", ".join(f"%b::{element}[]" for element in elements)
            values = [PG_FROM_MICROS.format(a) if c in times else a for a, c in zip(aliases, columns, strict=True)]
            values += [f"%s::{self._type(table, name)}" for name in constants]
            sql = f"{into} SELECT {', '.join(values)} FROM unnest({arrays}) AS u({', '.join(aliases)}) {conflict}" + (
                f" RETURNING {back}" if returning else ""
            )
            params = (
                *constants.values(),
                *(
                    pg_array(v.values if isinstance(v, Micros) else v, e)
                    for v, e in zip(columns.values(), elements, strict=True)
                ),
            )
            result = self.conn.exec_driver_sql(sql, params)
            return Inserted(result.rowcount, [tuple(r) for r in result.all()] if returning else [])
        lists = [
            sqlite_times(v.values) if isinstance(v, Micros) else v.tolist() if isinstance(v, np.ndarray) else v
            for v in columns.values()
        ]
        rows = list(zip(*lists, *(repeat(v, size) for v in constants.values()), strict=True))
        back = f" RETURNING {', '.join(returning)}" if returning else ""
        out: list[tuple[Any, ...]] = []
        count = 0
        # Moderate chunks: SQLite compiles each statement, and a very long VALUES list costs more to
        # compile than it saves; a full chunk's text repeats, so the driver's statement cache keeps it.
        per = max(1, min(SQLITE_ROWS_PER_STATEMENT, SQLITE_MAX_VARIABLES // len(names)))
        one = "(" + ", ".join("?" * len(names)) + ")"
        for start in range(0, len(rows), per):
            chunk = rows[start : start + per]
            sql = f"{into} VALUES {', '.join([one] * len(chunk))} {conflict}{back}"
            result = self.conn.exec_driver_sql(sql, tuple(chain.from_iterable(chunk)))
            if returning:
                back_rows = [tuple(r) for r in result.all()]
                out.extend(back_rows)
                count += len(back_rows)
            else:
                count += result.rowcount
        return Inserted(count, out)

    def copy(
        self,
        table: Table,
        columns: dict[str, Sequence[Any] | npt.NDArray[Any] | Micros],
        *,
        constants: dict[str, datetime] | None = None,
    ) -> None:
        """PostgreSQL: insert the rows with a binary COPY (no conflict clause, nothing sent back).

        The server's work per row is about a third less than `insert`'s, which unnests arrays and
        evaluates the select list for each row. A violated key raises the driver's IntegrityError.
        Numbers as for `insert` (None for NULL); times as `Micros`; constants are times.
        """
        assert self.postgres, "COPY is PostgreSQL's"
        size = len(next(iter(columns.values())))
        if not size:
            return
        fields: list[tuple[npt.NDArray[Any], npt.NDArray[np.bool_] | None, str]] = []
        for name, values in columns.items():
            if isinstance(values, Micros):
                fields.append((values.values - PG_EPOCH_MICROS, None, "int8"))
            elif isinstance(values, np.ndarray):
                fields.append((values, None, pg_element(table.c[name])))
            else:
                nulls = np.array([v is None for v in values], dtype=bool)
                dense = np.array([0 if v is None else v for v in values]) if nulls.any() else np.array(values)
                fields.append((dense, nulls if nulls.any() else None, pg_element(table.c[name])))
        for moment in (constants or {}).values():
            fields.append((np.full(size, micros(moment) - PG_EPOCH_MICROS, dtype=np.int64), None, "int8"))
        names = ", ".join([*columns, *(constants or {})])
        data = pg_copy_rows(fields)
        driver = cast("psycopg.Connection[Any]", self.conn.connection.driver_connection)
        with (
            driver.cursor() as cursor,
            cursor.copy(f"COPY {table.name} ({names}) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.write(data)

    def _type(self, table: Table, column: str) -> str:
        return str(table.c[column].type.compile(dialect=self.conn.dialect))


# --- checking and storing a batch ----------------------------------------------------------------------

# Rejection codes in the order the checks run (a ping gets the first that applies); 0 is "accepted".
_CHECKS = ("", "bad_coordinates", "future", "too_old", "unknown_rider", "no_consent", "off_duty")
ACCEPT, BAD_COORDINATES, FUTURE, TOO_OLD, UNKNOWN_RIDER, NO_CONSENT, OFF_DUTY = range(len(_CHECKS))


Floats = npt.NDArray[np.float64]


def _haversine(lat1: Floats, lon1: Floats, lat2: Floats, lon2: Floats) -> Floats:
    """`haversine_m` over arrays (to within rounding: decisions close to a limit are taken again with it)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    distance: Floats = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(h, 1.0)))
    return distance


@dataclass(frozen=True)
class PingColumns:
    """Attributed pings as columns, one list per field (None where a ping has no value); `place` is
    each ping's index in the client's request. A batch of thousands is cheaper to build this way than
    as an object per ping, and the checks work on columns anyway."""

    place: Sequence[int]
    rider: Sequence[int]
    ts: Sequence[datetime]  # aware
    lat: Sequence[float]
    lon: Sequence[float]
    speed: Sequence[float | None]
    heading: Sequence[float | None]
    accuracy: Sequence[float | None]

    @classmethod
    def of(cls, riders: Sequence[int], pings: Sequence[Ping]) -> PingColumns:
        """Pings in request order, each with its rider."""
        return cls(
            place=range(len(pings)),
            rider=riders,
            ts=[p.ts for p in pings],
            lat=[p.lat for p in pings],
            lon=[p.lon for p in pings],
            speed=[p.speed_mps for p in pings],
            heading=[p.heading for p in pings],
            accuracy=[p.accuracy_m for p in pings],
        )


@dataclass
class _Batch:
    """The pings' numbers as arrays; the optional fields stay lists."""

    place: npt.NDArray[np.int64]
    rider: npt.NDArray[np.int64]
    us: npt.NDArray[np.int64]
    lat: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]
    speed: Sequence[float | None]
    heading: Sequence[float | None]
    accuracy: Sequence[float | None]

    @classmethod
    def of(cls, pings: PingColumns) -> _Batch:
        return cls(
            np.array(pings.place, dtype=np.int64),
            np.array(pings.rider, dtype=np.int64),
            micros_of(pings.ts),
            np.array(pings.lat, dtype=np.float64),
            np.array(pings.lon, dtype=np.float64),
            pings.speed,
            pings.heading,
            pings.accuracy,
        )


def _screen(batch: _Batch, rules: IngestRules, now: datetime) -> npt.NDArray[np.int8]:
    """The checks that need nothing but the ping: impossible coordinates, times too far ahead or back."""
    lat, lon, us = batch.lat, batch.lon, batch.us
    with np.errstate(invalid="ignore"):
        # (0, 0) is where phones put a fix they do not have; no rider works in the Gulf of Guinea.
        good = np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
    good &= ~((lat == 0) & (lon == 0))
    code = np.full(len(us), ACCEPT, dtype=np.int8)
    code[us < micros(now - rules.max_age)] = TOO_OLD
    code[us > micros(now + rules.max_future)] = FUTURE
    code[~good] = BAD_COORDINATES
    return code


def _admit(
    rider: npt.NDArray[np.int64], us: npt.NDArray[np.int64], states: dict[int, _RiderState]
) -> npt.NDArray[np.int8]:
    """Unknown riders, points before consent, points off duty; `rider` and `us` sorted by rider, then time."""
    code = np.full(len(us), ACCEPT, dtype=np.int8)
    riders, first = np.unique(rider, return_index=True)
    # Each rider's shifts as one sorted list of keys (rider rank, start), so that one search finds,
    # for every point, the last shift of its rider that started at or before it; the point is on
    # duty if that shift, or an earlier one of the rider, has not ended by then (the latest end so far).
    lo, hi = int(us.min()), int(us.max())
    stride = hi - lo + 3  # a rider's keys: rank * stride + (time - lo + 1), clipped to [0, stride - 1]
    consent = np.full(len(riders), NEVER, dtype=np.int64)
    known = np.zeros(len(riders), dtype=bool)
    keys: list[int] = []
    ends: list[int] = []
    for rank, rider_id in enumerate(riders.tolist()):
        state = states.get(rider_id)
        if state is None:
            continue
        known[rank] = True
        if state.consent_since is not None:
            consent[rank] = micros(state.consent_since)
        latest = -1
        for started, ended in state.shifts:
            keys.append(rank * stride + min(max(micros(started) - lo + 1, 0), stride - 1))
            latest = max(latest, NEVER if ended is None else micros(ended))
            ends.append(latest)
    rank_of = np.repeat(np.arange(len(riders)), np.diff(np.append(first, len(rider))))
    code[us < consent[rank_of]] = NO_CONSENT
    if keys:
        point_keys = rank_of * stride + (us - lo + 1)
        at = np.searchsorted(np.array(keys, dtype=np.int64), point_keys, side="right") - 1
        shift_rank = np.array(keys, dtype=np.int64) // stride
        latest_end = np.array(ends, dtype=np.int64)
        safe = np.maximum(at, 0)
        on_duty = (at >= 0) & (shift_rank[safe] == rank_of) & (us <= latest_end[safe])
    else:
        on_duty = np.zeros(len(us), dtype=bool)
    code[(code == ACCEPT) & ~on_duty] = OFF_DUTY
    code[~known[rank_of]] = UNKNOWN_RIDER
    return code


def _continuity(
    rider: npt.NDArray[np.int64],
    us: npt.NDArray[np.int64],
    lat: npt.NDArray[np.float64],
    lon: npt.NDArray[np.float64],
    previous: dict[int, tuple[int, float, float]],
    rules: IngestRules,
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Duplicates and implausible jumps among admitted points sorted by rider and time: (duplicate, jump).

    Each point is checked against the one accepted before it (the rider's last stored point for the
    first). That is sequential, as a refused point is no reference for the next; but when none of a
    rider's points is refused, every point's reference is simply the point before it. So all points
    are checked against their neighbours at once, and only the riders with a refusal (or a decision
    too close to call in floating point) are gone through one point at a time.
    """
    n = len(us)
    duplicate, jump = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    if not n:
        return duplicate, jump
    starts = np.flatnonzero(np.r_[True, rider[1:] != rider[:-1]])
    ref_us, ref_lat, ref_lon = np.roll(us, 1), np.roll(lat, 1), np.roll(lon, 1)
    has_ref = np.ones(n, dtype=bool)
    for i in starts.tolist():
        ref = previous.get(int(rider[i]))
        if ref is None:
            has_ref[i] = False
        else:
            ref_us[i], ref_lat[i], ref_lon[i] = ref
    same = has_ref & (us == ref_us)
    dt = np.abs(us - ref_us) / MICROS_PER_SECOND
    limit = rules.max_speed_mps * dt + rules.jump_slack_m
    distance = _haversine(ref_lat, ref_lon, lat, lon)
    far = has_ref & ~same & (distance > limit)
    close_call = has_ref & ~same & (np.abs(distance - limit) <= 1e-6 * (limit + 1))
    odd = same | far | close_call
    if not odd.any():
        return duplicate, jump
    ends = np.r_[starts[1:], n]
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        if not odd[start:end].any():
            continue
        ref = previous.get(int(rider[start]))
        for i in range(start, end):
            t, a, b = int(us[i]), float(lat[i]), float(lon[i])
            if ref is not None:
                if ref[0] == t:
                    duplicate[i] = True
                    continue
                dt = abs(t - ref[0]) / MICROS_PER_SECOND
                if haversine_m(ref[1], ref[2], a, b) > rules.max_speed_mps * dt + rules.jump_slack_m:
                    jump[i] = True
                    continue
            ref = (t, a, b)
    return duplicate, jump


def store_positions(session: Session, *, pings: PingColumns, rules: IngestRules, now: datetime) -> IngestResult:
    """Validate and store attributed pings; returns counts and a reason for each refused one.

    The checks run over the whole batch as arrays (see `_screen`, `_admit`, `_continuity`); a ping
    costs a few microseconds of Python, most of it the H3 cells.
    """
    result = IngestResult()
    if not pings.place:
        return result
    batch = _Batch.of(pings)
    code = _screen(batch, rules, now)
    live = np.flatnonzero(code == ACCEPT)
    if len(live):
        # In time order per rider, so each point is checked against the one before it; a duplicate
        # within the batch is then always next to the point it repeats.
        live = live[np.lexsort((live, batch.us[live], batch.rider[live]))]
        rider, us = batch.rider[live], batch.us[live]
        first, last = int(np.argmin(us)), int(np.argmax(us))
        states = _rider_states(session, set(rider.tolist()), pings.ts[int(live[first])], pings.ts[int(live[last])])
        code[live] = _admit(rider, us, states)
        live = live[code[live] == ACCEPT]
    accepted = _store(session, batch, live, rules, now, result) if len(live) else live
    result.accepted = len(accepted)
    for i in np.flatnonzero(code != ACCEPT).tolist():
        reason = int(code[i])
        result.reject(int(batch.place[i]), _CHECKS[reason], None if reason == UNKNOWN_RIDER else int(batch.rider[i]))
    result.rejections.sort(key=lambda r: r.index)
    return result


def _store(
    session: Session,
    batch: _Batch,
    live: npt.NDArray[np.int64],
    rules: IngestRules,
    now: datetime,
    result: IngestResult,
) -> npt.NDArray[np.int64]:
    """Store the admitted points (indexes into the batch, sorted by rider and time) that are neither
    duplicates nor jumps, with their aggregates; returns those stored. Refusals go into `result`."""
    rider, us, lat, lon = batch.rider[live], batch.us[live], batch.lat[live], batch.lon[live]
    previous = {
        rid: (micros(ts), la, lo)
        for rid, ts, la, lo in session.execute(
            select(LastPosition.rider_id, LastPosition.ts, LastPosition.lat, LastPosition.lon).where(
                one_of(session, LastPosition.rider_id.expression, set(rider.tolist()))
            )
        )
    }
    duplicate, jump = _continuity(rider, us, lat, lon, previous, rules)
    result.duplicates += int(duplicate.sum())
    for i in live[jump].tolist():
        result.reject(int(batch.place[i]), "implausible_jump", int(batch.rider[i]))
    keep = ~(duplicate | jump)
    live, rider, us, lat, lon = live[keep], rider[keep], us[keep], lat[keep], lon[keep]
    if not len(live):
        return live
    lats, lons = lat.tolist(), lon.tolist()
    # Not the parent of the finest cell: H3 children only roughly nest, and a pass belongs to the
    # cell the point lies in at each resolution.
    cells = {res: [h3.latlng_to_cell(a, b, res) for a, b in zip(lats, lons, strict=True)] for res in rules.resolutions}
    writer = BulkWriter(session)
    picks = live.tolist()
    positions: dict[str, Sequence[Any] | npt.NDArray[Any] | Micros] = {
        "rider_id": rider,
        "ts": Micros(us),
        "lat": lat,
        "lon": lon,
        "cell": np.array(cells[rules.finest], dtype=np.int64),
        "speed_mps": [batch.speed[i] for i in picks],
        "heading": [batch.heading[i] for i in picks],
        "accuracy_m": [batch.accuracy[i] for i in picks],
    }
    received = {"received_at": writer.time(now)}
    # Nearly always every point is later than its rider's last stored one, so new: a plain INSERT
    # stores them (an ON CONFLICT clause costs the server a speculative insertion per row, nearly
    # doubling its work on this table; on PostgreSQL a binary COPY, lighter still) and nothing is
    # sent back. A batch with an earlier point (a
    # resent batch, a late backlog) may repeat stored ones: it skips the conflicts and returns the
    # keys it stored. So does a batch whose plain insert violated the key after all (a concurrent
    # request got there first), rolled back to its savepoint.
    plain = _all_after_last(rider, us, previous)
    if plain:
        try:
            with session.begin_nested():
                # A writer of its own: the session emits the SAVEPOINT when a connection is asked for inside.
                inner = BulkWriter(session)
                if inner.postgres:
                    inner.copy(table_of(Position), positions, constants=received)
                else:
                    inner.insert(table_of(Position), positions, constants=received, conflict="")
        except (IntegrityError, psycopg.IntegrityError):
            plain = False
    if not plain:
        stored = writer.insert(
            table_of(Position),
            positions,
            constants=received,
            conflict="ON CONFLICT (rider_id, ts) DO NOTHING",
            returning=("rider_id", "ts"),
        ).rows
        keys = set(stored)
        new = np.array(
            [(r, t) in keys for r, t in zip(rider.tolist(), writer.returned_times(Micros(us)), strict=True)],
            dtype=bool,
        )
        result.duplicates += int((~new).sum())
        live, rider, us, lat, lon = live[new], rider[new], us[new], lat[new], lon[new]
        cells = {res: np.array(c, dtype=np.int64)[new].tolist() for res, c in cells.items()}
        if not len(live):
            return live
    _update_last_positions(writer, batch, live)
    # Last: on SQLite the counts are rows every batch updates (the same cells in the same hour); on
    # PostgreSQL they are appended, and only the per-rider rows are written in key order.
    _aggregate(writer, rider, us // MICROS_PER_HOUR, cells)
    return live


def _all_after_last(
    rider: npt.NDArray[np.int64], us: npt.NDArray[np.int64], previous: dict[int, tuple[int, float, float]]
) -> bool:
    """Whether each rider's points (sorted by rider and time) all come after their last stored one."""
    firsts = np.flatnonzero(np.r_[True, rider[1:] != rider[:-1]]).tolist()
    return all(int(rider[i]) not in previous or int(us[i]) > previous[int(rider[i])][0] for i in firsts)


def _unique_rows(
    columns: Sequence[npt.NDArray[np.int64]],
) -> tuple[list[npt.NDArray[np.int64]], npt.NDArray[np.int64]]:
    """The distinct rows of equally long integer columns, sorted by the first column, then the next…,
    and how often each occurs (np.unique(axis=0) does the same through a slow generic sort)."""
    order = np.lexsort(columns[::-1])
    ordered = [c[order] for c in columns]
    new = np.zeros(len(order), dtype=bool)
    new[:1] = True
    for c in ordered:
        new[1:] |= c[1:] != c[:-1]
    starts = np.flatnonzero(new)
    return [c[starts] for c in ordered], np.diff(np.append(starts, len(order)))


def _aggregate(
    writer: BulkWriter,
    rider: npt.NDArray[np.int64],
    hour: npt.NDArray[np.int64],
    cells: dict[int, list[int]],
) -> None:
    """Add newly stored positions to the per-cell, per-hour counts of passes and distinct riders."""
    # One row per point and resolution: (resolution, cell, hour, rider), as int64 (H3 indexes fit).
    size = len(hour)
    keys = [
        np.repeat(np.array(list(cells), dtype=np.int64), size),
        np.array(list(chain.from_iterable(cells.values())), dtype=np.int64),
        np.tile(hour, len(cells)),
        np.tile(rider, len(cells)),
    ]
    riders, _ = _unique_rows(keys)  # sorted: concurrent transactions lock rows in one order
    passes, counts = _unique_rows(keys[:3])
    # The per-rider table decides who is new in a cell-hour: only rows it actually inserts (not
    # those another batch stored first) raise the distinct count, so concurrent batches agree.
    if writer.postgres:
        # One statement: the rows the per-rider insert returns are counted in the server, not sent back.
        writer.conn.exec_driver_sql(
            PG_AGGREGATE,
            (
                *(pg_array(c, e) for c, e in zip(riders, ("int2", "int8", "int4", "int4"), strict=True)),
                *(pg_array(c, e) for c, e in zip((*passes, counts), ("int2", "int8", "int4", "int4"), strict=True)),
            ),
        )
        return
    first_passes = Counter(
        tuple(row)
        for row in writer.insert(
            table_of(CoverageRiderCell),
            dict(zip(("resolution", "cell", "hour", "rider_id"), riders, strict=True)),
            conflict="ON CONFLICT DO NOTHING",
            returning=("resolution", "cell", "hour"),
        ).rows
    )
    resolution, cell, hour_ = passes
    cell_hours = zip(resolution.tolist(), cell.tolist(), hour_.tolist(), strict=True)
    writer.insert(
        table_of(CoverageCell),
        {
            "resolution": resolution,
            "cell": cell,
            "hour": hour_,
            "passes": counts,
            "riders": [first_passes[key] for key in cell_hours],
        },
        conflict="ON CONFLICT (resolution, cell, hour) DO UPDATE SET passes = coverage_cells.passes + "
        "excluded.passes, riders = coverage_cells.riders + excluded.riders",
    )


# PostgreSQL: the per-rider rows, then the counts, the distinct riders being those rows it inserted.
# Rows go in the arrays' order (sorted keys), so concurrent batches lock per-rider rows in one order.
# The counts are appended to `coverage_cell_deltas` as one row of parallel arrays (see the model),
# folded in later by `fold_counts`. The aggregates of one SELECT see its rows in one order, so the
# arrays line up.
PG_AGGREGATE = """
WITH firsts AS (
    INSERT INTO coverage_rider_cells (resolution, cell, hour, rider_id)
    SELECT * FROM unnest(%b::int2[], %b::int8[], %b::int4[], %b::int4[])
    ON CONFLICT DO NOTHING
    RETURNING resolution, cell, hour
), counted AS (
    SELECT resolution, cell, hour, count(*)::int AS riders FROM firsts GROUP BY resolution, cell, hour
)
INSERT INTO coverage_cell_deltas (resolution, cell, hour, passes, riders)
SELECT array_agg(p.resolution), array_agg(p.cell), array_agg(p.hour), array_agg(p.passes),
    array_agg(coalesce(c.riders, 0))
FROM unnest(%b::int2[], %b::int8[], %b::int4[], %b::int4[]) AS p(resolution, cell, hour, passes)
LEFT JOIN counted AS c ON (c.resolution, c.cell, c.hour) = (p.resolution, p.cell, p.hour)
HAVING count(*) > 0
"""

# The appended counts move into `coverage_cells`, summed per cell-hour, in key order (so that two
# folds lock rows in one order). Counts a batch still has uncommitted stay for the next fold; a
# concurrent fold waits for the rows this one took and then skips them.
PG_FOLD = """
WITH moved AS (
    DELETE FROM coverage_cell_deltas RETURNING resolution, cell, hour, passes, riders
), counts AS (
    SELECT u.* FROM moved, unnest(moved.resolution, moved.cell, moved.hour, moved.passes, moved.riders)
        AS u(resolution, cell, hour, passes, riders)
)
INSERT INTO coverage_cells (resolution, cell, hour, passes, riders)
SELECT resolution, cell, hour, sum(passes), sum(riders) FROM counts
GROUP BY resolution, cell, hour ORDER BY resolution, cell, hour
ON CONFLICT (resolution, cell, hour) DO UPDATE SET passes = coverage_cells.passes + excluded.passes,
    riders = coverage_cells.riders + excluded.riders
"""


# Folds take turns (a transaction-level advisory lock; the key is arbitrary, RiderWatch's own).
FOLD_LOCK = 0x52570001
# Folds have a connection of their own per database, apart from the requests' pool: a request that
# holds one of the pool's connections and folds must never wait for another of them (were every
# connection held by such requests, none would come back). One suffices, as folds take turns.
_fold_engines: dict[str, Engine] = {}
_fold_engines_lock = threading.Lock()


def _fold_engine(engine: Engine) -> Engine:
    key = engine.url.render_as_string(hide_password=False)
    with _fold_engines_lock:
        if key not in _fold_engines:
            _fold_engines[key] = make_engine(key, pool_size=1, max_overflow=0, pool_timeout=120)
        return _fold_engines[key]


def fold_counts(session: Session) -> int:
    """Fold the counts ingest appended into `coverage_cells`; returns the cell-hours updated.

    Every reader of `coverage_cells` calls this first, so it sees every batch committed before it;
    the periodic job calls it to keep the appended rows few. Nothing to do on SQLite.

    The fold is a transaction of its own on a connection of its own (`_fold_engine`), committed at once: inside the
    reader's transaction its row locks would last the whole request, and every other reader's fold
    would wait for it. Folds take turns, so a reader that comes while another fold runs waits for
    it (and then sees what it moved) rather than for each of its rows. The caller's transaction must
    not have appended counts itself: the fold would not see them.
    """
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return 0
    engine = _fold_engine(bind if isinstance(bind, Engine) else bind.engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (FOLD_LOCK,))
        return int(conn.exec_driver_sql(PG_FOLD).rowcount)


def _update_last_positions(writer: BulkWriter, batch: _Batch, stored: npt.NDArray[np.int64]) -> None:
    # Stored points come in order of rider and time: the last one of each rider is their latest.
    rider = batch.rider[stored]
    latest = stored[np.r_[rider[1:] != rider[:-1], True]].tolist()
    writer.insert(
        table_of(LastPosition),
        {
            "rider_id": batch.rider[latest],
            "ts": Micros(batch.us[latest]),
            "lat": batch.lat[latest],
            "lon": batch.lon[latest],
            "speed_mps": [batch.speed[i] for i in latest],
            "heading": [batch.heading[i] for i in latest],
        },
        conflict="ON CONFLICT (rider_id) DO UPDATE SET ts = excluded.ts, lat = excluded.lat, lon = excluded.lon, "
        "speed_mps = excluded.speed_mps, heading = excluded.heading WHERE excluded.ts > tracking_last_positions.ts",
    )


def record_refusals(session: Session, rejections: Iterable[Rejection], *, day: date) -> None:
    """Add the refused points that belong to a rider to the per-rider, per-day, per-reason counts.

    Clients are not always told (Traccar Client gets 200 so that its queue moves on), so the count
    is what keeps a refusal from passing unnoticed: the rider and the desk read it.
    """
    counts: Counter[tuple[int, str]] = Counter((r.rider_id, r.reason) for r in rejections if r.rider_id is not None)
    if not counts:
        return
    table = table_of(PositionRefusal)
    stmt = upsert(session, PositionRefusal)
    stmt = stmt.on_conflict_do_update(
        index_elements=["rider_id", "day", "reason"], set_={"count": table.c.count + stmt.excluded.count}
    )
    # Sorted keys, as for the aggregates: concurrent requests lock rows in one order.
    values = [{"rider_id": k[0], "day": day, "reason": k[1], "count": n} for k, n in sorted(counts.items())]
    session.execute(stmt, values)
