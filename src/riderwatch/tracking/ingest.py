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

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import psycopg
from h3.api import basic_int as h3
from sqlalchemy import (
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from riderwatch.alerts import service as alerts
from riderwatch.config import Settings
from riderwatch.coverage.counts import add_passes
from riderwatch.db import upsert
from riderwatch.geo.coords import EARTH_RADIUS_M, haversine_m
from riderwatch.infra.bulk import BulkWriter, table_of
from riderwatch.infra.sqlparams import one_of
from riderwatch.infra.timecodes import MICROS_PER_HOUR, MICROS_PER_SECOND, Micros, micros, micros_of
from riderwatch.models import (
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


NEVER = np.iinfo(np.int64).max  # "no end" (a shift still open), or "no consent": later than any time


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
    if len(accepted):
        # A rider who rides into a valid alert's area receives it now (stored points come in order of
        # rider and time: the last of each rider is where they are).
        rider = batch.rider[accepted]
        latest = accepted[np.r_[rider[1:] != rider[:-1], True]].tolist()
        alerts.on_positions(
            session, {int(batch.rider[i]): (float(batch.lat[i]), float(batch.lon[i])) for i in latest}, now=now
        )
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
    add_passes(writer, rider, us // MICROS_PER_HOUR, cells)
    return live


def _all_after_last(
    rider: npt.NDArray[np.int64], us: npt.NDArray[np.int64], previous: dict[int, tuple[int, float, float]]
) -> bool:
    """Whether each rider's points (sorted by rider and time) all come after their last stored one."""
    firsts = np.flatnonzero(np.r_[True, rider[1:] != rider[:-1]]).tolist()
    return all(int(rider[i]) not in previous or int(us[i]) > previous[int(rider[i])][0] for i in firsts)


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
