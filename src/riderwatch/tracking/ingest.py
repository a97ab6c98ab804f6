"""The write path for positions: validate a batch, store it in bulk, update the coverage aggregates.

Everything here is set-at-a-time: a batch costs a fixed handful of statements (riders, shifts and
last points read once; positions, per-rider cells, cell counts and last points written with one
bulk INSERT … ON CONFLICT each), never a query per ping. Statements run on the session's connection,
so ingest shares the caller's transaction and commits or rolls back with it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from h3.api import basic_int as h3
from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from riderwatch.config import Settings
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


@dataclass(frozen=True)
class Candidate:
    """A parsed ping, already attributed to a rider; `index` is its place in the client's request."""

    index: int
    rider_id: int
    ping: Ping


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


def _insert(session: Session, table: Table) -> Any:
    """INSERT for the session's dialect, which both give ON CONFLICT."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise RuntimeError(f"positions need SQLite or PostgreSQL, not {name}")


def table_of(model: type[Any]) -> Table:
    """A model's Table: positions are written with Core statements, not the ORM unit of work."""
    return cast(Table, model.__table__)


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
            select(Rider.user_id, Rider.location_consent, Rider.location_consent_at).where(Rider.user_id.in_(rider_ids))
        )
    }
    shifts = session.execute(
        select(DutyShift.rider_id, DutyShift.started_at, DutyShift.ended_at)
        .where(
            DutyShift.rider_id.in_(rider_ids),
            DutyShift.started_at <= last,
            (DutyShift.ended_at.is_(None)) | (DutyShift.ended_at >= first),
        )
        .order_by(DutyShift.rider_id, DutyShift.started_at)
    )
    for rider_id, started, ended in shifts:
        if rider_id in states:
            states[rider_id].shifts.append((started, ended))
    return states


def store_positions(
    session: Session, *, candidates: Sequence[Candidate], rules: IngestRules, now: datetime
) -> IngestResult:
    """Validate and store attributed pings; returns counts and a reason for each refused one."""
    result = IngestResult()
    oldest, newest = now - rules.max_age, now + rules.max_future
    live: list[Candidate] = []
    for c in candidates:
        p = c.ping
        if not coordinates_ok(p.lat, p.lon):
            result.reject(c.index, "bad_coordinates", c.rider_id)
        elif p.ts > newest:
            result.reject(c.index, "future", c.rider_id)
        elif p.ts < oldest:
            result.reject(c.index, "too_old", c.rider_id)
        else:
            live.append(c)
    if not live:
        return result
    rider_ids = {c.rider_id for c in live}
    states = _rider_states(session, rider_ids, min(c.ping.ts for c in live), max(c.ping.ts for c in live))
    previous: dict[int, tuple[datetime, float, float]] = {
        rid: (ts, lat, lon)
        for rid, ts, lat, lon in session.execute(
            select(LastPosition.rider_id, LastPosition.ts, LastPosition.lat, LastPosition.lon).where(
                LastPosition.rider_id.in_(rider_ids)
            )
        )
    }
    finest = rules.finest
    rows: list[dict[str, Any]] = []
    seen: set[tuple[int, datetime]] = set()
    # In time order per rider, so each point is checked against the one before it.
    for c in sorted(live, key=lambda c: (c.rider_id, c.ping.ts)):
        p, state = c.ping, states.get(c.rider_id)
        if state is None:
            result.reject(c.index, "unknown_rider")
            continue
        if state.consent_since is None or p.ts < state.consent_since:
            result.reject(c.index, "no_consent", c.rider_id)
            continue
        if not state.on_duty_at(p.ts):
            result.reject(c.index, "off_duty", c.rider_id)
            continue
        key = (c.rider_id, p.ts)
        ref = previous.get(c.rider_id)
        if key in seen or (ref is not None and ref[0] == p.ts):
            result.duplicates += 1
            continue
        if ref is not None:
            dt = abs((p.ts - ref[0]).total_seconds())
            if haversine_m(ref[1], ref[2], p.lat, p.lon) > rules.max_speed_mps * dt + rules.jump_slack_m:
                result.reject(c.index, "implausible_jump", c.rider_id)
                continue
        seen.add(key)
        previous[c.rider_id] = (p.ts, p.lat, p.lon)
        rows.append(
            {
                "rider_id": c.rider_id,
                "ts": p.ts,
                "lat": p.lat,
                "lon": p.lon,
                "cell": h3.latlng_to_cell(p.lat, p.lon, finest),
                "speed_mps": p.speed_mps,
                "heading": p.heading,
                "accuracy_m": p.accuracy_m,
                "received_at": now,
            }
        )
    if not rows:
        return result
    table = table_of(Position)
    stmt = _insert(session, table).on_conflict_do_nothing(index_elements=["rider_id", "ts"])
    stored = {(r.rider_id, r.ts) for r in session.execute(stmt.returning(table.c.rider_id, table.c.ts), rows)}
    new_rows = [r for r in rows if (r["rider_id"], r["ts"]) in stored]
    result.accepted = len(new_rows)
    result.duplicates += len(rows) - len(new_rows)
    if new_rows:
        _aggregate(session, new_rows, rules.resolutions)
        _update_last_positions(session, new_rows)
    return result


def _aggregate(session: Session, rows: Iterable[dict[str, Any]], resolutions: tuple[int, ...]) -> None:
    """Add newly stored positions to the per-cell, per-hour counts of passes and distinct riders."""
    finest = max(resolutions)
    passes: Counter[tuple[int, int, int]] = Counter()
    riders: set[tuple[int, int, int, int]] = set()
    for r in rows:
        hour = hour_of(r["ts"])
        for res in resolutions:
            # Not the parent of the finest cell: H3 children only roughly nest, and a pass belongs
            # to the cell the point lies in at each resolution.
            cell = r["cell"] if res == finest else h3.latlng_to_cell(r["lat"], r["lon"], res)
            passes[(res, cell, hour)] += 1
            riders.add((res, cell, hour, r["rider_id"]))
    # The per-rider table decides who is new in a cell-hour: only rows it actually inserts (not
    # those another batch stored first) raise the distinct count, so concurrent batches agree.
    rc = table_of(CoverageRiderCell)
    first_passes: Counter[tuple[int, int, int]] = Counter()
    stmt = _insert(session, rc).on_conflict_do_nothing().returning(rc.c.resolution, rc.c.cell, rc.c.hour)
    # Sorted keys: concurrent transactions lock rows in the same order and cannot deadlock.
    values = [{"resolution": k[0], "cell": k[1], "hour": k[2], "rider_id": k[3]} for k in sorted(riders)]
    for res, cell, hour in session.execute(stmt, values):
        first_passes[(res, cell, hour)] += 1
    cc = table_of(CoverageCell)
    upsert = _insert(session, cc)
    upsert = upsert.on_conflict_do_update(
        index_elements=["resolution", "cell", "hour"],
        set_={"passes": cc.c.passes + upsert.excluded.passes, "riders": cc.c.riders + upsert.excluded.riders},
    )
    counts = [
        {"resolution": k[0], "cell": k[1], "hour": k[2], "passes": n, "riders": first_passes[k]}
        for k, n in sorted(passes.items())
    ]
    session.execute(upsert, counts)


def _update_last_positions(session: Session, rows: Iterable[dict[str, Any]]) -> None:
    latest: dict[int, dict[str, Any]] = {}
    for r in rows:
        cur = latest.get(r["rider_id"])
        if cur is None or r["ts"] > cur["ts"]:
            latest[r["rider_id"]] = r
    lp = table_of(LastPosition)
    stmt = _insert(session, lp)
    stmt = stmt.on_conflict_do_update(
        index_elements=["rider_id"],
        set_={k: getattr(stmt.excluded, k) for k in ("ts", "lat", "lon", "speed_mps", "heading")},
        where=stmt.excluded.ts > lp.c.ts,
    )
    values = [
        {k: r[k] for k in ("rider_id", "ts", "lat", "lon", "speed_mps", "heading")} for _, r in sorted(latest.items())
    ]
    session.execute(stmt, values)


def record_refusals(session: Session, rejections: Iterable[Rejection], *, day: date) -> None:
    """Add the refused points that belong to a rider to the per-rider, per-day, per-reason counts.

    Clients are not always told (Traccar Client gets 200 so that its queue moves on), so the count
    is what keeps a refusal from passing unnoticed: the rider and the desk read it.
    """
    counts: Counter[tuple[int, str]] = Counter((r.rider_id, r.reason) for r in rejections if r.rider_id is not None)
    if not counts:
        return
    table = table_of(PositionRefusal)
    stmt = _insert(session, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=["rider_id", "day", "reason"], set_={"count": table.c.count + stmt.excluded.count}
    )
    # Sorted keys, as for the aggregates: concurrent requests lock rows in one order.
    values = [{"rider_id": k[0], "day": day, "reason": k[1], "count": n} for k, n in sorted(counts.items())]
    session.execute(stmt, values)
