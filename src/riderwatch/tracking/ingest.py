"""The write path for positions: validate a batch, store it in bulk, update the coverage aggregates.

Everything here is set-at-a-time: a batch costs a fixed handful of statements (riders, shifts and
last points read once; positions, per-rider cells, cell counts and last points written with one
INSERT … ON CONFLICT each), never a query per ping. The writes go to the driver directly, with values
already in the column's form, so no per-row work happens in SQLAlchemy:

- PostgreSQL: one array per column, unnested by the statement (`INSERT … SELECT * FROM unnest(…)`).
  The text is the same for every batch whatever its size, so psycopg parses it once and the server
  prepares it once, and a batch of 5,000 rows is nine parameters.
- SQLite (no arrays): a multi-row VALUES list, one statement per chunk of rows.

Statements run on the session's connection, so ingest shares the caller's transaction and commits or
rolls back with it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import chain
from operator import itemgetter
from typing import Any, NamedTuple, cast
from zoneinfo import ZoneInfo

from h3.api import basic_int as h3
from sqlalchemy import ColumnElement, Table, any_, bindparam, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from riderwatch.config import Settings
from riderwatch.db import upsert
from riderwatch.geo.coords import haversine_m
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


class Candidate(NamedTuple):
    """A parsed ping, already attributed to a rider; `place` is its index in the client's request.

    A flat tuple rather than a rider id and a `Ping`: a batch makes thousands, and a tuple is cheap.
    """

    place: int
    rider_id: int
    ts: datetime  # aware, UTC
    lat: float
    lon: float
    speed_mps: float | None = None
    heading: float | None = None
    accuracy_m: float | None = None

    @classmethod
    def of(cls, index: int, rider_id: int, ping: Ping) -> Candidate:
        return cls(index, rider_id, ping.ts, ping.lat, ping.lon, ping.speed_mps, ping.heading, ping.accuracy_m)


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
    return math.floor(ts.timestamp() / SECONDS_PER_HOUR)


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

    def on_duty_at(self, ts: datetime) -> bool:
        return any(start <= ts and (end is None or ts <= end) for start, end in self.shifts)


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


# SQLite's limit on parameters in one statement (since 3.32).
SQLITE_MAX_VARIABLES = 32_766
SQLITE_ROWS_PER_STATEMENT = 500


def array_literal(values: Sequence[int | float | datetime | None]) -> str:
    """A PostgreSQL array literal ('{1,2.5,NULL}') of numbers or aware datetimes, for a `%s::type[]` parameter.

    str() and isoformat() run in C and the server parses the text; psycopg's own adaptation of a list
    costs a few microseconds per element (a regular expression each), which at thousands of rows
    per batch was a large share of the request. Numbers print exactly (repr round-trips a float),
    and neither they nor ISO 8601 times hold a character that would need quoting.
    """
    first = next((v for v in values if v is not None), None)
    if first is not None and not isinstance(first, int | float | datetime):
        raise TypeError(f"no array literal for {type(first).__name__}")
    text: Callable[[Any], str] = datetime.isoformat if isinstance(first, datetime) else str
    items = ["NULL" if v is None else text(v) for v in values] if None in values else map(text, values)
    return "{" + ",".join(items) + "}"


class BulkWriter:
    """INSERT … ON CONFLICT of many rows at once on the session's connection, straight to the driver.

    Rows hold values in the database's form: `time()` gives a UTC datetime's (PostgreSQL takes it as
    is; SQLite stores the text SQLAlchemy writes for `UTCDateTime`, so both paths read and compare alike).
    """

    def __init__(self, session: Session) -> None:
        self.conn: Connection = session.connection()
        name = self.conn.dialect.name
        if name not in ("postgresql", "sqlite"):
            raise RuntimeError(f"positions need SQLite or PostgreSQL, not {name}")
        self.postgres = name == "postgresql"

    def time(self, ts: datetime) -> Any:
        """An aware UTC datetime as the column takes it."""
        return ts if self.postgres else ts.replace(tzinfo=None).isoformat(" ", "microseconds")

    def insert(
        self,
        table: Table,
        columns: Sequence[str],
        rows: Sequence[tuple[Any, ...]],
        *,
        conflict: str,
        returning: Sequence[str] = (),
    ) -> list[tuple[Any, ...]]:
        """Insert `rows` (tuples in the order of `columns`) in their order; the RETURNING rows, if asked."""
        if not rows:
            return []
        into = f"INSERT INTO {table.name} ({', '.join(columns)})"
        back = f" RETURNING {', '.join(returning)}" if returning else ""
        if self.postgres:
            # unnest yields the arrays' elements in order, so rows are written (and locked) in the
            # caller's order: sorted keys keep concurrent batches from deadlocking.
            arrays = ", ".join(f"%s::{table.c[c].type.compile(dialect=self.conn.dialect)}[]" for c in columns)
            sql = f"{into} SELECT * FROM unnest({arrays}) {conflict}{back}"
            result = self.conn.exec_driver_sql(sql, tuple(array_literal(column) for column in zip(*rows, strict=True)))
            return [tuple(r) for r in result.all()] if returning else []
        out: list[tuple[Any, ...]] = []
        # Moderate chunks: SQLite compiles each statement, and a very long VALUES list costs more to
        # compile than it saves; a full chunk's text repeats, so the driver's statement cache keeps it.
        per = max(1, min(SQLITE_ROWS_PER_STATEMENT, SQLITE_MAX_VARIABLES // len(columns)))
        one = "(" + ", ".join("?" * len(columns)) + ")"
        for start in range(0, len(rows), per):
            chunk = rows[start : start + per]
            sql = f"{into} VALUES {', '.join([one] * len(chunk))} {conflict}{back}"
            result = self.conn.exec_driver_sql(sql, tuple(chain.from_iterable(chunk)))
            if returning:
                out.extend(tuple(r) for r in result.all())
        return out


_BY_RIDER_AND_TIME = itemgetter(1, 2)
POSITION_COLUMNS = ("rider_id", "ts", "lat", "lon", "cell", "speed_mps", "heading", "accuracy_m", "received_at")


def store_positions(
    session: Session, *, candidates: Sequence[Candidate], rules: IngestRules, now: datetime
) -> IngestResult:
    """Validate and store attributed pings; returns counts and a reason for each refused one."""
    result = IngestResult()
    oldest, newest = now - rules.max_age, now + rules.max_future
    live: list[Candidate] = []
    for c in candidates:
        if not coordinates_ok(c.lat, c.lon):
            result.reject(c.place, "bad_coordinates", c.rider_id)
        elif c.ts > newest:
            result.reject(c.place, "future", c.rider_id)
        elif c.ts < oldest:
            result.reject(c.place, "too_old", c.rider_id)
        else:
            live.append(c)
    if not live:
        return result
    rider_ids = {c.rider_id for c in live}
    states = _rider_states(session, rider_ids, min(c.ts for c in live), max(c.ts for c in live))
    previous: dict[int, tuple[datetime, float, float]] = {
        rid: (ts, lat, lon)
        for rid, ts, lat, lon in session.execute(
            select(LastPosition.rider_id, LastPosition.ts, LastPosition.lat, LastPosition.lon).where(
                one_of(session, LastPosition.rider_id.expression, rider_ids)
            )
        )
    }
    writer = BulkWriter(session)
    db_time, db_now = writer.time, writer.time(now)
    resolutions, finest = rules.resolutions, rules.finest
    max_speed, slack = rules.max_speed_mps, rules.jump_slack_m
    rows: list[tuple[Any, ...]] = []
    places: list[tuple[int, tuple[int, ...]]] = []  # per row: its hour and its cell at each resolution
    # In time order per rider, so each point is checked against the one before it; a duplicate
    # within the batch is then always next to the point it repeats.
    live.sort(key=_BY_RIDER_AND_TIME)
    for c in live:
        rider_id, ts, lat, lon = c.rider_id, c.ts, c.lat, c.lon
        state = states.get(rider_id)
        if state is None:
            result.reject(c.place, "unknown_rider")
            continue
        if state.consent_since is None or ts < state.consent_since:
            result.reject(c.place, "no_consent", rider_id)
            continue
        if not state.on_duty_at(ts):
            result.reject(c.place, "off_duty", rider_id)
            continue
        ref = previous.get(rider_id)
        if ref is not None:
            if ref[0] == ts:  # the last stored point, or one accepted just before in this batch
                result.duplicates += 1
                continue
            dt = abs((ts - ref[0]).total_seconds())
            if haversine_m(ref[1], ref[2], lat, lon) > max_speed * dt + slack:
                result.reject(c.place, "implausible_jump", rider_id)
                continue
        previous[rider_id] = (ts, lat, lon)
        # Not the parent of the finest cell: H3 children only roughly nest, and a pass belongs to the
        # cell the point lies in at each resolution.
        cells = tuple(h3.latlng_to_cell(lat, lon, res) for res in resolutions)
        places.append((hour_of(ts), cells))
        cell = cells[resolutions.index(finest)]
        rows.append((rider_id, db_time(ts), lat, lon, cell, c.speed_mps, c.heading, c.accuracy_m, db_now))
    if not rows:
        return result
    table = table_of(Position)
    stored = writer.insert(
        table, POSITION_COLUMNS, rows, conflict="ON CONFLICT (rider_id, ts) DO NOTHING", returning=("rider_id", "ts")
    )
    if len(stored) < len(rows):
        # Stored before (a resent batch, or a concurrent request that got there first): duplicates.
        keys = set(stored)
        kept = [i for i, r in enumerate(rows) if (r[0], r[1]) in keys]
        result.duplicates += len(rows) - len(kept)
        rows, places = [rows[i] for i in kept], [places[i] for i in kept]
    result.accepted = len(rows)
    if rows:
        _aggregate(writer, rows, places, resolutions)
        _update_last_positions(writer, rows)
    return result


def _aggregate(
    writer: BulkWriter,
    rows: Sequence[tuple[Any, ...]],
    places: Sequence[tuple[int, tuple[int, ...]]],
    resolutions: tuple[int, ...],
) -> None:
    """Add newly stored positions to the per-cell, per-hour counts of passes and distinct riders."""
    passes: Counter[tuple[int, int, int]] = Counter()
    riders: set[tuple[int, int, int, int]] = set()
    for row, (hour, cells) in zip(rows, places, strict=True):
        rider_id = row[0]
        for res, cell in zip(resolutions, cells, strict=True):
            passes[(res, cell, hour)] += 1
            riders.add((res, cell, hour, rider_id))
    # The per-rider table decides who is new in a cell-hour: only rows it actually inserts (not
    # those another batch stored first) raise the distinct count, so concurrent batches agree.
    # Sorted keys: concurrent transactions lock rows in the same order and cannot deadlock.
    first_passes = Counter(
        (res, cell, hour)
        for res, cell, hour in writer.insert(
            table_of(CoverageRiderCell),
            ("resolution", "cell", "hour", "rider_id"),
            sorted(riders),
            conflict="ON CONFLICT DO NOTHING",
            returning=("resolution", "cell", "hour"),
        )
    )
    writer.insert(
        table_of(CoverageCell),
        ("resolution", "cell", "hour", "passes", "riders"),
        [(*key, n, first_passes[key]) for key, n in sorted(passes.items())],
        conflict="ON CONFLICT (resolution, cell, hour) DO UPDATE SET passes = coverage_cells.passes + excluded.passes, "
        "riders = coverage_cells.riders + excluded.riders",
    )


def _update_last_positions(writer: BulkWriter, rows: Sequence[tuple[Any, ...]]) -> None:
    # Rows come in order of rider and time: the last one of each rider is their latest.
    latest = {r[0]: r for r in rows}
    writer.insert(
        table_of(LastPosition),
        ("rider_id", "ts", "lat", "lon", "speed_mps", "heading"),
        [(r[0], r[1], r[2], r[3], r[5], r[6]) for _, r in sorted(latest.items())],
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
