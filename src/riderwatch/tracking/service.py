"""Positions: a rider's consent and shifts, devices, ingest (batch and OsmAnd), tracks, retention.

Privacy by design (PIPL treats tracks as sensitive personal information): positions are taken only
from riders who consented separately and only inside a shift they started; withdrawing consent
ends the shift and deletes the rider's raw positions and per-rider aggregates at once; raw data
expires after the retention period; every view of a rider's track or of live positions is audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from riderwatch import policy
from riderwatch.audit.service import record
from riderwatch.db import atomic
from riderwatch.errors import N_, Conflict, InvalidInput, NotFound
from riderwatch.infra.clock import utcnow
from riderwatch.infra.sqlparams import one_of
from riderwatch.infra.timecodes import hour_of
from riderwatch.models import (
    AuditEntry,
    CoverageRiderCell,
    DutyShift,
    LastPosition,
    LocationConsent,
    Position,
    PositionRefusal,
    Rider,
    TrackingDevice,
    User,
)
from riderwatch.tasks.verification import forget_rider_visits, forget_visits_after
from riderwatch.tracking.ingest import REASONS, IngestResult, IngestRules, PingColumns, record_refusals, store_positions
from riderwatch.tracking.osmand import Report
from riderwatch.tracking.schemas import ParsedPings


def _rider(session: Session, user: User) -> Rider:
    rider = session.get(Rider, user.id)
    if rider is None:
        raise NotFound(N_("no rider membership for this account"))
    return rider


def _open_shift(session: Session, rider_id: int) -> DutyShift | None:
    return session.scalar(
        select(DutyShift).where(DutyShift.rider_id == rider_id, DutyShift.ended_at.is_(None)).order_by(DutyShift.id)
    )


@dataclass(frozen=True)
class ConsentState:
    granted: bool
    text_version: str | None
    since: datetime | None
    on_duty: bool
    deleted_positions: int


def set_location_consent(
    session: Session, *, rider_user: User, granted: bool, text_version: str, now: datetime | None = None
) -> ConsentState:
    """Record the rider's decision; a withdrawal ends the shift and deletes what names them."""
    now = now or utcnow()
    rider = _rider(session, rider_user)
    deleted = 0
    if granted and not rider.location_consent:
        rider.location_consent, rider.location_consent_at = True, now
        rider.location_consent_text_version = text_version
        session.add(LocationConsent(rider_id=rider.user_id, granted=True, text_version=text_version, at=now))
        record(
            session, actor=rider_user, action="tracking.consent_granted", object_type="rider", object_id=rider.user_id
        )
    elif not granted and rider.location_consent:
        shift = _open_shift(session, rider.user_id)
        if shift is not None:
            shift.ended_at, shift.ended_by = now, "consent_withdrawn"
        deleted = delete_rider_positions(session, rider_id=rider.user_id)
        session.add(
            LocationConsent(
                rider_id=rider.user_id,
                granted=False,
                text_version=rider.location_consent_text_version or text_version,
                at=now,
                deleted_positions=deleted,
            )
        )
        rider.location_consent, rider.location_consent_at, rider.location_consent_text_version = False, None, None
        record(
            session,
            actor=rider_user,
            action="tracking.consent_withdrawn",
            object_type="rider",
            object_id=rider.user_id,
            deleted_positions=deleted,
        )
    session.flush()
    return ConsentState(
        granted=rider.location_consent,
        text_version=rider.location_consent_text_version,
        since=rider.location_consent_at,
        on_duty=_open_shift(session, rider.user_id) is not None,
        deleted_positions=deleted,
    )


def delete_rider_positions(session: Session, *, rider_id: int) -> int:
    """Delete a rider's raw positions and per-rider aggregates; anonymous cell counts stay.

    So do the rider's refusal counts: they hold no place, and tell a rider whose phone still sends
    after the withdrawal why nothing is kept. Patrol task visits (a place and a time) go too; what the
    rider achieved on a task stays.
    """
    forget_rider_visits(session, rider_id=rider_id)
    deleted = session.execute(delete(Position).where(Position.rider_id == rider_id))
    session.execute(delete(CoverageRiderCell).where(CoverageRiderCell.rider_id == rider_id))
    session.execute(delete(LastPosition).where(LastPosition.rider_id == rider_id))
    return int(getattr(deleted, "rowcount", 0) or 0)


@dataclass(frozen=True)
class DutyState:
    shift: DutyShift | None  # the open shift, when the rider is on duty
    deleted_positions: int = 0  # stored after a late "off" and so outside any shift: deleted


def _duty_time(at: datetime | None, now: datetime, max_future: timedelta) -> datetime:
    if at is None:
        return now
    if at.tzinfo is None:
        raise InvalidInput(N_("'at' needs a timezone"))
    try:
        at = at.astimezone(UTC)
    except OverflowError as exc:  # year 1 east of Greenwich, year 9999 west of it
        raise InvalidInput(N_("'at' is out of range")) from exc
    if at > now + max_future:
        raise InvalidInput(N_("'at' lies in the future; check the phone's clock"))
    # A phone a little ahead of the server means "just now".
    return min(at, now)


def _check_age(when: datetime, now: datetime, max_age: timedelta) -> None:
    if when < now - max_age:
        hours = max_age.total_seconds() / 3600
        raise InvalidInput(
            N_("'at' lies more than %(hours)s hours ago; switch duty again without 'at'"), hours=f"{hours:g}"
        )


@atomic
def set_duty(
    session: Session,
    *,
    rider_user: User,
    on_duty: bool,
    at: datetime | None = None,
    now: datetime | None = None,
    max_age: timedelta = timedelta(hours=48),
    max_future: timedelta = timedelta(seconds=120),
) -> DutyState:
    """Start or end the rider's shift at `at` (when they tapped the switch; default now); idempotent.

    A phone that was offline sends the switch late, so `at` may lie in the past: no further back
    than `max_age` (points older than that are refused anyway), not before the current consent and
    not inside or before an earlier shift. A repeated request changes nothing, even one that arrives
    after the rider has switched again (a late retry of a switch already on record).
    """
    now = now or utcnow()
    rider = _rider(session, rider_user)
    when = _duty_time(at, now, max_future)
    shift = _open_shift(session, rider.user_id)
    if on_duty:
        if not rider.location_consent:
            raise Conflict(N_("consent to location sharing first (PUT /api/v1/me/location-consent)"))
        if rider.status != "active":
            raise Conflict(N_("a rider whose membership is %(status)s cannot go on duty"), status=rider.status)
        if shift is not None and when >= shift.started_at:
            return DutyState(shift)
        if at is not None and _switched_at(session, rider.user_id, DutyShift.started_at, when):
            return DutyState(shift)
        _check_age(when, now, max_age)
        if rider.location_consent_at is not None and when < rider.location_consent_at:
            raise Conflict(
                N_("'at' lies before your consent to location sharing (%(since)s)"),
                since=rider.location_consent_at.isoformat(),
            )
        last_end = session.scalar(
            select(func.max(DutyShift.ended_at)).where(
                DutyShift.rider_id == rider.user_id, DutyShift.ended_at.is_not(None)
            )
        )
        if last_end is not None and when < last_end:
            raise Conflict(
                N_("'at' lies inside or before an earlier shift, which ended at %(end)s"), end=last_end.isoformat()
            )
        if shift is None:
            shift = DutyShift(rider_id=rider.user_id, started_at=when)
            session.add(shift)
        else:
            # The switch tapped offline comes after the one made online later: the shift began earlier.
            shift.started_at = when
        session.flush()
        return DutyState(shift)
    if shift is None or (at is not None and _switched_at(session, rider.user_id, DutyShift.ended_at, when)):
        return DutyState(shift)
    if when < shift.started_at:
        raise Conflict(N_("'at' lies before the shift began (%(start)s)"), start=shift.started_at.isoformat())
    _check_age(when, now, max_age)
    shift.ended_at, shift.ended_by = when, "rider"
    deleted = _delete_after(session, rider_id=rider.user_id, after=when) if when < now else 0
    session.flush()
    return DutyState(None, deleted)


def _switched_at(session: Session, rider_id: int, column: Any, when: datetime) -> bool:
    """Whether a shift of the rider began (or ended) exactly then: the request repeats one on record."""
    found = session.scalar(select(DutyShift.id).where(DutyShift.rider_id == rider_id, column == when).limit(1))
    return found is not None


def _delete_after(session: Session, *, rider_id: int, after: datetime) -> int:
    """A late "off": what was stored after it lies outside any shift and goes, as on withdrawal.

    The rider's per-cell rows go for the whole hours after the end; the hour of the end may also
    hold points from before it, so it stays. Anonymous counts stay. Patrol task passes made by those
    points are taken back.
    """
    forget_visits_after(session, rider_id=rider_id, after=after)
    deleted = session.execute(delete(Position).where(Position.rider_id == rider_id, Position.ts > after))
    session.execute(
        delete(CoverageRiderCell).where(CoverageRiderCell.rider_id == rider_id, CoverageRiderCell.hour > hour_of(after))
    )
    session.execute(delete(LastPosition).where(LastPosition.rider_id == rider_id, LastPosition.ts > after))
    return int(getattr(deleted, "rowcount", 0) or 0)


@atomic
def register_device(session: Session, *, rider_user: User, device_id: str) -> tuple[TrackingDevice, bool]:
    """Link a Traccar Client device id to the rider; returns (device, created)."""
    _rider(session, rider_user)
    existing = session.get(TrackingDevice, device_id)
    if existing is not None:
        if existing.rider_id != rider_user.id:
            raise Conflict(N_("this device id is registered to another rider; choose another id in the app"))
        return existing, False
    device = TrackingDevice(device_id=device_id, rider_id=rider_user.id)
    session.add(device)
    session.flush()
    record(session, actor=rider_user, action="tracking.device_added", object_type="rider", object_id=rider_user.id)
    return device, True


def remove_device(session: Session, *, rider_user: User, device_id: str) -> None:
    """Unlink one of the rider's devices (a lost or replaced phone)."""
    device = session.get(TrackingDevice, device_id)
    if device is None or device.rider_id != rider_user.id:
        raise NotFound(N_("you have no device with this id"))
    session.delete(device)
    session.flush()


def ingest_batch(
    session: Session,
    *,
    sender: User,
    pings: ParsedPings,
    rules: IngestRules,
    now: datetime | None = None,
) -> IngestResult:
    """A batch of pings from a rider (their own) or a platform account (its riders, named by username).

    `pings` come from `schemas.parse_pings`; a malformed one is refused as 'invalid'.
    """
    now = now or utcnow()
    pre = IngestResult()
    # A rider's own request is theirs to see; what a platform sends is the platform's to fix.
    own_only = policy.sends_own_positions_only(sender)
    own = sender.id if own_only else None
    for i in pings.malformed:
        pre.reject(i, "invalid", own)
    # Who each name in the batch stands for, decided once per name: the rider's id, or why not.
    target: dict[str | None, int | str] = {}
    if own_only:
        target = {None: sender.id, sender.username: sender.id}
        otherwise = "rider_not_allowed"
    else:
        names = set(pings.rider) - {None}
        target = {name: "unknown_rider" for name in names}
        if names:
            rows = session.execute(
                select(User.username, User.id, Rider.platform_id)
                .join(Rider, Rider.user_id == User.id)
                .where(one_of(session, User.username.expression, names), User.is_active.is_(True))
            )
            for name, uid, platform_id in rows:
                allowed = policy.may_send_positions_for(sender, rider_id=uid, rider_platform_id=platform_id)
                target[name] = uid if allowed else "other_platform"
        otherwise = "unknown_rider"  # a ping that names no rider
    # Column by column (a comprehension per field) rather than an object per ping: thousands per batch.
    rider_of = [target.get(name, otherwise) for name in pings.rider]
    keep = [j for j, r in enumerate(rider_of) if r.__class__ is int]
    if len(keep) < len(rider_of):
        for j in sorted(set(range(len(rider_of))) - set(keep)):
            pre.reject(pings.index[j], cast(str, rider_of[j]), own)
    # A time so close to the ends of the calendar that it has no UTC equivalent is malformed.
    overflow = set()
    for j in keep:
        moment = pings.ts[j]
        if moment.year in (1, 9999):
            try:
                moment.astimezone(UTC)
            except OverflowError:
                overflow.add(j)
                pre.reject(pings.index[j], "invalid", own)
    if overflow:
        keep = [j for j in keep if j not in overflow]
    columns = PingColumns(
        place=[pings.index[j] for j in keep],
        rider=[cast(int, rider_of[j]) for j in keep],
        ts=[pings.ts[j] for j in keep],
        lat=[pings.lat[j] for j in keep],
        lon=[pings.lon[j] for j in keep],
        speed=[pings.speed_mps[j] for j in keep],
        heading=[pings.heading[j] for j in keep],
        accuracy=[pings.accuracy_m[j] for j in keep],
    )
    result = store_positions(session, pings=columns, rules=rules, now=now)
    if pre.rejections:
        result.rejections = sorted([*pre.rejections, *result.rejections], key=lambda r: r.index)
    else:
        result.rejections.sort(key=lambda r: r.index)
    record_refusals(session, result.rejections, day=rules.day_of(now))
    return result


def ingest_osmand(
    session: Session, *, reports: Sequence[Report], rules: IngestRules, now: datetime | None = None
) -> IngestResult:
    """Positions from Traccar Client devices; every device must be registered (else nothing is stored)."""
    now = now or utcnow()
    ids = {r.device_id for r in reports}
    owners: dict[str, int] = {
        device_id: rider_id
        for device_id, rider_id in session.execute(
            select(TrackingDevice.device_id, TrackingDevice.rider_id).where(TrackingDevice.device_id.in_(ids))
        )
    }
    unknown = ids - owners.keys()
    if unknown:
        raise NotFound(
            N_("unknown device %(device)r: register it first in RiderWatch (my devices)"), device=sorted(unknown)[0]
        )
    pings = PingColumns.of([owners[r.device_id] for r in reports], [r.ping for r in reports])
    result = store_positions(session, pings=pings, rules=rules, now=now)
    record_refusals(session, result.rejections, day=rules.day_of(now))
    return result


def _rider_by_username(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username, User.role == "rider"))
    if user is None:
        raise NotFound(N_("no rider %(username)r"), username=username)
    return user


def get_track(
    session: Session, *, viewer: User, username: str, start: datetime, end: datetime, max_points: int
) -> tuple[User, list[Position]]:
    """A rider's positions in [start, end), oldest first; every view is written to the audit log."""
    if end <= start:
        raise InvalidInput(N_("'to' must be after 'from'"))
    rider = _rider_by_username(session, username)
    points = list(
        session.scalars(
            select(Position)
            .where(Position.rider_id == rider.id, Position.ts >= start, Position.ts < end)
            .order_by(Position.ts)
            .limit(max_points + 1)
        )
    )
    if len(points) > max_points:
        raise InvalidInput(N_("the window holds more than %(max)d points; ask for a shorter one"), max=max_points)
    record(
        session,
        actor=viewer,
        action="tracking.view_track",
        object_type="rider",
        object_id=rider.id,
        start=start.isoformat(),
        end=end.isoformat(),
        points=len(points),
    )
    return rider, points


@dataclass(frozen=True)
class LivePosition:
    rider: User
    ts: datetime
    lat: float
    lon: float
    speed_mps: float | None
    heading: float | None


def live_positions(
    session: Session, *, viewer: User, within: timedelta, now: datetime | None = None
) -> list[LivePosition]:
    """The last position of each rider on duty, if recent; the view is audited with the riders shown."""
    now = now or utcnow()
    on_duty = select(DutyShift.rider_id).where(DutyShift.ended_at.is_(None))
    rows = session.execute(
        select(User, LastPosition)
        .join(LastPosition, LastPosition.rider_id == User.id)
        .where(LastPosition.ts >= now - within, User.id.in_(on_duty))
        .order_by(User.username)
    ).all()
    shown = [LivePosition(u, p.ts, p.lat, p.lon, p.speed_mps, p.heading) for u, p in rows]
    record(
        session,
        actor=viewer,
        action="tracking.view_live",
        object_type="tracking",
        object_id="live",
        riders=[p.rider.id for p in shown],
    )
    return shown


@dataclass(frozen=True)
class CollectedData:
    """What RiderWatch holds about a rider's location (PIPL: the right to know)."""

    rider: Rider
    consents: list[LocationConsent]
    shifts: list[DutyShift]
    devices: list[TrackingDevice]
    position_count: int
    first_ts: datetime | None
    last_ts: datetime | None
    recent: list[Position]
    track_views: list[tuple[datetime, str]]
    refusals: list[PositionRefusal]  # newest day first


def collected_data(session: Session, *, rider_user: User, recent: int = 100) -> CollectedData:
    """Consent history, shifts, devices, stored positions and who looked at the rider's track."""
    rider = _rider(session, rider_user)
    rid = rider.user_id
    count, first, last = session.execute(
        select(func.count(), func.min(Position.ts), func.max(Position.ts)).where(Position.rider_id == rid)
    ).one()
    views = session.execute(
        select(AuditEntry.at, User.role)
        .join(User, User.id == AuditEntry.actor_id)
        .where(
            AuditEntry.action == "tracking.view_track",
            AuditEntry.object_type == "rider",
            AuditEntry.object_id == str(rid),
        )
        .order_by(AuditEntry.at.desc())
        .limit(100)
    ).all()
    return CollectedData(
        rider=rider,
        consents=list(
            session.scalars(select(LocationConsent).where(LocationConsent.rider_id == rid).order_by(LocationConsent.id))
        ),
        shifts=list(
            session.scalars(
                select(DutyShift).where(DutyShift.rider_id == rid).order_by(DutyShift.started_at.desc()).limit(50)
            )
        ),
        devices=list(
            session.scalars(
                select(TrackingDevice).where(TrackingDevice.rider_id == rid).order_by(TrackingDevice.created_at)
            )
        ),
        position_count=int(count or 0),
        first_ts=first,
        last_ts=last,
        recent=list(
            session.scalars(select(Position).where(Position.rider_id == rid).order_by(Position.ts.desc()).limit(recent))
        ),
        track_views=[(at, role) for at, role in views],
        refusals=list(
            session.scalars(
                select(PositionRefusal)
                .where(PositionRefusal.rider_id == rid)
                .order_by(PositionRefusal.day.desc(), PositionRefusal.reason)
                .limit(MAX_REFUSAL_ROWS)
            )
        ),
    )


MAX_REFUSAL_ROWS = 500


@dataclass(frozen=True)
class RiderRefusals:
    rider: User
    by_reason: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())


@dataclass(frozen=True)
class RefusalTotals:
    """Refused points over days [first, last], for the desk: by reason, by day, and by rider."""

    first: date
    last: date
    by_reason: dict[str, int]
    by_day: list[tuple[date, str, int]]
    riders: list[RiderRefusals]  # most refusals first

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())


def refusal_totals(session: Session, *, first: date, last: date) -> RefusalTotals:
    """How many points were refused, and why: a rider whose phone keeps sending off duty needs a word."""
    if last < first:
        raise InvalidInput(N_("'to' must not be before 'from'"))
    window = (PositionRefusal.day >= first, PositionRefusal.day <= last)
    by_day = [
        (day, reason, int(n or 0))
        for day, reason, n in session.execute(
            select(PositionRefusal.day, PositionRefusal.reason, func.sum(PositionRefusal.count))
            .where(*window)
            .group_by(PositionRefusal.day, PositionRefusal.reason)
            .order_by(PositionRefusal.day, PositionRefusal.reason)
        )
    ]
    by_reason: dict[str, int] = {}
    for _day, reason, n in by_day:
        by_reason[reason] = by_reason.get(reason, 0) + n
    per_rider: dict[int, dict[str, int]] = {}
    for rider_id, reason, n in session.execute(
        select(PositionRefusal.rider_id, PositionRefusal.reason, func.sum(PositionRefusal.count))
        .where(*window)
        .group_by(PositionRefusal.rider_id, PositionRefusal.reason)
    ):
        per_rider.setdefault(rider_id, {})[reason] = int(n or 0)
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(per_rider)))} if per_rider else {}
    riders = [RiderRefusals(users[uid], dict(sorted(counts.items()))) for uid, counts in per_rider.items()]
    riders.sort(key=lambda r: (-r.total, r.rider.username))
    return RefusalTotals(first, last, dict(sorted(by_reason.items())), by_day, riders)


def refusal_detail(reason: str) -> str:
    return REASONS.get(reason, reason)


def purge_expired(session: Session, *, retention_days: int, now: datetime | None = None) -> dict[str, int]:
    """Delete raw positions, per-rider aggregates, shifts and refusal counts older than the retention period.

    The anonymous per-cell counts and the consent records (proof of consent) are kept.
    """
    now = now or utcnow()
    cutoff = now - timedelta(days=retention_days)

    def count(result: Any) -> int:
        return int(getattr(result, "rowcount", 0) or 0)

    done = {
        "positions": count(session.execute(delete(Position).where(Position.ts < cutoff))),
        # An hour goes only once it lies wholly before the cutoff.
        "rider_cells": count(
            session.execute(delete(CoverageRiderCell).where(CoverageRiderCell.hour < hour_of(cutoff)))
        ),
        "last_positions": count(session.execute(delete(LastPosition).where(LastPosition.ts < cutoff))),
        "shifts": count(
            session.execute(delete(DutyShift).where(DutyShift.ended_at.is_not(None), DutyShift.ended_at < cutoff))
        ),
        # Days are local to the deployment, which lies within a day of UTC: a day's margin keeps a
        # count until its whole local day has passed the cutoff.
        "refusals": count(
            session.execute(delete(PositionRefusal).where(PositionRefusal.day < (cutoff - timedelta(days=1)).date()))
        ),
    }
    session.flush()
    return done


def end_shifts_of_inactive(session: Session) -> int:
    """Close the open shifts of riders whose account or membership is no longer active."""
    inactive = select(User.id).where(User.is_active.is_(False))
    stopped = select(Rider.user_id).where(Rider.status != "active")
    result = session.execute(
        update(DutyShift)
        .where(DutyShift.ended_at.is_(None), DutyShift.rider_id.in_(inactive.union(stopped)))
        .values(ended_at=utcnow(), ended_by="inactive")
    )
    return int(getattr(result, "rowcount", 0) or 0)
