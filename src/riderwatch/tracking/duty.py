"""A rider's consent to location sharing, duty shifts and Traccar Client devices, and what a withdrawal
or a late "off duty" deletes."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from riderwatch import policy
from riderwatch.audit.service import record
from riderwatch.db import atomic
from riderwatch.errors import N_, Conflict, InvalidInput, NotFound
from riderwatch.infra.clock import utcnow
from riderwatch.infra.timecodes import hour_of
from riderwatch.models import (
    CoverageRiderCell,
    DutyShift,
    LastPosition,
    LocationConsent,
    Position,
    Rider,
    TrackingDevice,
    User,
)
from riderwatch.tasks.verification import forget_rider_visits, forget_visits_after


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
        refusal = policy.membership_refusal(rider.status)
        if refusal is not None:
            raise refusal
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


# Issued device ids: "rw-" and four groups of four from an alphabet without look-alikes (0/o, 1/l/i),
# 80 random bits, typed into Traccar Client by hand on a phone.
ISSUED_ID_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
ISSUED_ID_GROUPS = 4


def new_device_id() -> str:
    groups = ("".join(secrets.choice(ISSUED_ID_ALPHABET) for _ in range(4)) for _ in range(ISSUED_ID_GROUPS))
    return "rw-" + "-".join(groups)


@atomic
def register_device(
    session: Session, *, rider_user: User, device_id: str | None, label: str | None = None
) -> tuple[TrackingDevice, bool]:
    """Link a Traccar Client device id to the rider: one RiderWatch issues (`device_id` None), or, as the
    API has always allowed, the one set in the app. Returns (device, created)."""
    _rider(session, rider_user)
    if device_id is not None:
        existing = session.get(TrackingDevice, device_id)
        if existing is not None:
            if existing.rider_id != rider_user.id:
                raise Conflict(N_("this device id is registered to another rider; choose another id in the app"))
            return existing, False
    device = TrackingDevice(
        device_id=device_id or new_device_id(), rider_id=rider_user.id, issued=device_id is None, label=label
    )
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
