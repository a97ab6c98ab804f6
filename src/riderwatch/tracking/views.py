"""What was collected and who saw it: a rider's track and live positions for dispatchers (audited), the
rider's own data, refusal figures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.audit.service import record
from riderwatch.errors import N_, InvalidInput, NotFound
from riderwatch.infra.clock import utcnow
from riderwatch.models import (
    AuditEntry,
    DutyShift,
    LastPosition,
    LocationConsent,
    Position,
    PositionRefusal,
    Rider,
    TrackingDevice,
    User,
)
from riderwatch.tracking.duty import _rider
from riderwatch.tracking.ingest import REASONS


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
