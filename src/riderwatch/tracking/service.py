"""Positions coming in (batches and OsmAnd reports, attributed and screened) and going out (retention).

Consent, shifts and devices are in tracking/duty.py, what was collected and who saw it in tracking/views.py.

Privacy by design (PIPL treats tracks as sensitive personal information): positions are taken only
from riders who consented separately and only inside a shift they started; withdrawing consent
ends the shift and deletes the rider's raw positions and per-rider aggregates at once; raw data
expires after the retention period; every view of a rider's track or of live positions is audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from riderwatch import policy
from riderwatch.errors import N_, NotFound
from riderwatch.infra.clock import utcnow
from riderwatch.infra.sqlparams import one_of
from riderwatch.infra.timecodes import hour_of
from riderwatch.models import (
    CoverageRiderCell,
    DutyShift,
    LastPosition,
    Position,
    PositionRefusal,
    Rider,
    TrackingDevice,
    User,
)
from riderwatch.tracking.ingest import (
    IngestResult,
    IngestRules,
    PingColumns,
    Rejection,
    record_refusals,
    store_positions,
)
from riderwatch.tracking.osmand import Report
from riderwatch.tracking.schemas import ParsedPings


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
    answer = ingest_osmand_requests(session, requests=[reports], rules=rules, now=now)[0]
    if isinstance(answer, NotFound):
        raise answer
    return answer


def ingest_osmand_requests(
    session: Session, *, requests: Sequence[Sequence[Report]], rules: IngestRules, now: datetime | None = None
) -> list[IngestResult | NotFound]:
    """Several OsmAnd requests in one transaction (group commit): each gets its own result, with
    rejections indexed within its own reports, or NotFound when one of its devices is unknown (then
    none of its reports is stored, as when it is written alone)."""
    now = now or utcnow()
    ids = {r.device_id for reports in requests for r in reports}
    owners: dict[str, int] = {
        device_id: rider_id
        for device_id, rider_id in session.execute(
            select(TrackingDevice.device_id, TrackingDevice.rider_id).where(
                one_of(session, TrackingDevice.device_id.expression, ids)
            )
        )
    }
    answers: list[IngestResult | NotFound] = []
    riders: list[int] = []
    pings: list[Any] = []
    spans: list[tuple[int, int, int]] = []  # (answer, first ping, ping count) of each request taken
    for reports in requests:
        unknown = sorted({r.device_id for r in reports} - owners.keys())
        if unknown:
            answers.append(
                NotFound(
                    N_("unknown device %(device)r: register it first in RiderWatch (my devices)"), device=unknown[0]
                )
            )
            continue
        spans.append((len(answers), len(pings), len(reports)))
        answers.append(IngestResult())
        riders.extend(owners[r.device_id] for r in reports)
        pings.extend(r.ping for r in reports)
    if not pings:
        return answers
    result = store_positions(session, pings=PingColumns.of(riders, pings), rules=rules, now=now)
    record_refusals(session, result.rejections, day=rules.day_of(now))
    by_ping = {r.index: r for r in result.rejections}
    for answer, first, count in spans:
        mine = answers[answer]
        assert isinstance(mine, IngestResult)
        for offset in range(count):
            refused = by_ping.get(first + offset)
            if refused is not None:
                mine.rejections.append(Rejection(offset, refused.reason, refused.rider_id))
        mine.accepted = count - len(mine.rejections)
    return answers


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
