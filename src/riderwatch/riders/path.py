"""A rider's path through the programme, the station's roster, and joining by a station's link.

The path: applied → active ⇄ suspended, and left from any of them (a rider who left may apply again).
Each step is kept with who took it and why (`RiderStatusChange`); suspending and leaving need a reason.
An administrator changes any rider's standing, a station manager those of their own station. The roster
shows what the programme needs of a rider (name, mobile number, station, standing, when they last reported
a clue under their name or were on duty) and never their positions. A platform account sees its own riders only.

A station hands out join links (a code in an address, or its QR code): whoever has one applies to that
station with their name, mobile number and a password of their own, after reading what their data is
for (PIPL); they start as "applied" until the station activates them.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

import anyio
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from riderwatch import policy
from riderwatch.accounts import service as accounts
from riderwatch.audit.service import record
from riderwatch.db import atomic, in_transaction
from riderwatch.errors import N_, Conflict, DomainError, Forbidden, InvalidInput, NotFound, Term, TooManyRequests
from riderwatch.infra.clock import utcnow
from riderwatch.infra.throttle import MissThrottle
from riderwatch.models import Clue, DutyShift, JoinLink, Platform, Rider, RiderStatusChange, Station, User
from riderwatch.riders.imports import normalise_phone
from riderwatch.security import hash_password
from riderwatch.training import service as training

# status → the statuses it may go to.
STEPS: dict[str, tuple[str, ...]] = {
    "applied": ("active", "left"),
    "active": ("suspended", "left"),
    "suspended": ("active", "left"),
    "left": ("applied", "active"),
}
NEEDS_REASON = ("suspended", "left")
JOIN_DAYS_MAX = 90
# What a rider's data is for, shown before they apply (PIPL: purpose and scope, stated at collection).
PURPOSE_VERSION = "join-v1"


@dataclass(frozen=True)
class RosterRow:
    user_id: int
    name: str
    phone: str | None
    station: str
    platform: str
    status: str
    joined_on: date | None
    last_report: datetime | None
    last_duty: datetime | None
    # Required courses: how many the rider holds a valid pass of, out of how many; and whether a pass of
    # one of them has run out (a refresher is due).
    trained: int = 0
    required: int = 0
    refresher_due: bool = False


def roster(
    session: Session,
    *,
    viewer: User,
    status: str | None = None,
    station_code: str | None = None,
    query: str | None = None,
    rider_id: int | None = None,
    limit: int = 200,
    offset: int = 0,
) -> tuple[list[RosterRow], int]:
    stmt = select(Rider, User).join(User, User.id == Rider.user_id).where(policy.visible_riders_filter(viewer))
    if rider_id is not None:
        stmt = stmt.where(Rider.user_id == rider_id)
    if status:
        stmt = stmt.where(Rider.status == status)
    if station_code:
        stmt = stmt.where(Rider.station_id.in_(select(Station.id).where(Station.code == station_code)))
    if query and query.strip():
        like = "%" + query.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(or_(User.display_name.ilike(like, escape="\\"), User.phone.ilike(like, escape="\\")))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.execute(stmt.order_by(User.display_name, User.id).limit(limit).offset(offset)).all()
    ids = [r.Rider.user_id for r in rows]
    reported = dict(
        session.execute(
            # Anonymous reports are left out: the time of one would tell who sent it.
            select(Clue.reporter_id, func.max(Clue.reported_at))
            .where(Clue.reporter_id.in_(ids), Clue.anonymous.is_(False))
            .group_by(Clue.reporter_id)
        ).all()
    )
    on_duty = dict(
        session.execute(
            select(DutyShift.rider_id, func.max(DutyShift.started_at))
            .where(DutyShift.rider_id.in_(ids))
            .group_by(DutyShift.rider_id)
        ).all()
    )
    stations = {s.id: s.name for s in session.scalars(select(Station))}
    platforms = {p.id: p.name for p in session.scalars(select(Platform))}
    required = [c.id for c in training.courses(session) if c.required]
    held = training.standings(session, rider_ids=ids)
    return [
        RosterRow(
            user_id=r.Rider.user_id,
            name=r.User.display_name or r.User.username,
            phone=r.User.phone,
            station=stations.get(r.Rider.station_id, "") if r.Rider.station_id else "",
            platform=platforms.get(r.Rider.platform_id, "") if r.Rider.platform_id else "",
            status=r.Rider.status,
            joined_on=r.Rider.joined_on,
            last_report=reported.get(r.Rider.user_id),
            last_duty=on_duty.get(r.Rider.user_id),
            trained=sum(1 for c in required if _status(held, r.Rider.user_id, c) == "passed"),
            required=len(required),
            refresher_due=any(_status(held, r.Rider.user_id, c) == "expired" for c in required),
        )
        for r in rows
    ], total


def _status(held: dict[int, dict[int, training.Standing]], rider_id: int, course_id: int) -> str:
    found = held.get(rider_id, {}).get(course_id)
    return found.status if found else "new"


@dataclass(frozen=True)
class PathStep:
    at: datetime
    from_status: str | None
    to_status: str
    by: str  # a name, or "" for the system
    reason: str


def rider_of(session: Session, *, viewer: User, rider_id: int) -> tuple[User, Rider]:
    """A rider the viewer may see (404 otherwise, as for anything one may not see)."""
    found = session.execute(
        select(User, Rider)
        .join(Rider, Rider.user_id == User.id)
        .where(User.id == rider_id, policy.visible_riders_filter(viewer))
    ).first()
    if found is None:
        raise NotFound(N_("no rider %(id)d"), id=rider_id)
    user, rider = found.User, found.Rider
    return user, rider


def path_of(session: Session, *, rider_id: int) -> list[PathStep]:
    steps = list(
        session.scalars(
            select(RiderStatusChange)
            .where(RiderStatusChange.rider_id == rider_id)
            .order_by(RiderStatusChange.at, RiderStatusChange.id)
        )
    )
    people = {
        u.id: u.display_name or u.username
        for u in session.scalars(select(User).where(User.id.in_({s.actor_id for s in steps if s.actor_id})))
    }
    return [
        PathStep(s.at, s.from_status, s.to_status, people.get(s.actor_id, "") if s.actor_id else "", s.reason)
        for s in steps
    ]


@atomic
def change_status(session: Session, *, actor: User, rider_id: int, status: str, reason: str) -> Rider:
    """Move a rider along their path; the step is kept with who took it and why, and audited."""
    rider = session.get(Rider, rider_id)
    if rider is None:
        raise NotFound(N_("no rider %(id)d"), id=rider_id)
    if not policy.may_manage_station(actor, rider.station_id):
        raise Forbidden(N_("only an administrator or the manager of the rider's station may change their standing"))
    reason = reason.strip()
    if len(reason) > 500:
        raise InvalidInput(N_("the reason has at most 500 characters"))
    if status == rider.status:
        return rider
    if status not in STEPS.get(rider.status, ()):
        raise Conflict(
            N_("a rider who is %(old)s cannot become %(new)s directly"),
            old=Term(STATUS_TERMS.get(rider.status, rider.status)),
            new=Term(STATUS_TERMS.get(status, status)),
        )
    if status in NEEDS_REASON and not reason:
        raise InvalidInput(N_("say why: the rider and their station will see the reason"))
    if rider.status == "applied" and status == "active":
        missing = training.missing_required(session, rider_id=rider.user_id)
        if missing:
            raise Conflict(
                N_("the rider has not passed these required courses yet: %(courses)s"),
                courses=", ".join(c.title for c in missing),
            )
    old = rider.status
    rider.status = status
    accounts.note_status_change(session, rider_id=rider.user_id, old=old, new=status, actor=actor, reason=reason)
    record(
        session,
        actor=actor,
        action="rider.status",
        object_type="user",
        object_id=rider.user_id,
        changes={"rider_status": [old, status]},
        reason=reason,
    )
    session.flush()
    return rider


STATUS_TERMS: dict[str, str] = {
    "applied": N_("an applicant"),
    "active": N_("an active member"),
    "suspended": N_("suspended"),
    "left": N_("gone"),
}


# --- join links ---------------------------------------------------------------------------------------


def new_join_code() -> str:
    return secrets.token_urlsafe(12)  # 16 characters, 96 bits


@atomic
def create_join_link(session: Session, *, actor: User, station_code: str, days: int, max_uses: int) -> JoinLink:
    station = session.scalar(select(Station).where(Station.code == station_code))
    if station is None or station.retired_at is not None:
        raise InvalidInput(N_("no station %(value)r"), value=station_code)
    if not policy.may_manage_station(actor, station.id):
        raise Forbidden(N_("%(value)r is not your station"), value=station.name)
    if not 1 <= days <= JOIN_DAYS_MAX:
        raise InvalidInput(N_("a join link lasts 1 to %(max)d days"), max=JOIN_DAYS_MAX)
    if not 1 <= max_uses <= 1000:
        raise InvalidInput(N_("a join link admits 1 to 1000 applications"))
    link = JoinLink(
        code=new_join_code(),
        station_id=station.id,
        created_by_id=actor.id,
        created_at=utcnow(),
        expires_at=utcnow() + timedelta(days=days),
        max_uses=max_uses,
        uses=0,
    )
    session.add(link)
    session.flush()
    record(
        session,
        actor=actor,
        action="join_link.create",
        object_type="join_link",
        object_id=link.id,
        station=station.code,
    )
    return link


def join_links(session: Session, *, viewer: User) -> list[tuple[JoinLink, Station]]:
    stmt = select(JoinLink, Station).join(Station, Station.id == JoinLink.station_id)
    if viewer.role != "admin":
        stmt = stmt.where(JoinLink.station_id == viewer.station_id)
    return [(r.JoinLink, r.Station) for r in session.execute(stmt.order_by(JoinLink.created_at.desc()).limit(100))]


def join_link_of(session: Session, *, viewer: User, link_id: int) -> tuple[JoinLink, Station]:
    found = session.execute(
        select(JoinLink, Station).join(Station, Station.id == JoinLink.station_id).where(JoinLink.id == link_id)
    ).first()
    if found is None or not policy.may_manage_station(viewer, found.Station.id):
        raise NotFound(N_("no join link %(id)d"), id=link_id)
    return found.JoinLink, found.Station


@atomic
def withdraw_join_link(session: Session, *, actor: User, link_id: int) -> JoinLink:
    link, _station = join_link_of(session, viewer=actor, link_id=link_id)
    if link.withdrawn_at is None:
        link.withdrawn_at = utcnow()
        record(session, actor=actor, action="join_link.withdraw", object_type="join_link", object_id=link.id)
    return link


def open_link(session: Session, code: str) -> tuple[JoinLink, Station]:
    """The link a code names, while it admits applications; else a refusal saying why."""
    found = session.execute(
        select(JoinLink, Station).join(Station, Station.id == JoinLink.station_id).where(JoinLink.code == code[:32])
    ).first()
    if found is None:
        raise NotFound(N_("this join link does not exist: ask your station for a new one"))
    link, station = found.JoinLink, found.Station
    if link.withdrawn_at is not None or station.retired_at is not None:
        raise Conflict(N_("this join link was withdrawn: ask your station for a new one"))
    if link.expires_at <= utcnow():
        raise Conflict(N_("this join link has run out: ask your station for a new one"))
    if link.uses >= link.max_uses:
        raise Conflict(N_("this join link has been used up: ask your station for a new one"))
    return link, station


def check_application(name: str, phone: str, password: str, agreed: bool) -> tuple[str, str]:
    """The name and the mobile number of an application, checked before anything is hashed or stored."""
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput(N_("the name must be 1 to 200 characters"))
    number = normalise_phone(phone)
    if number is None:
        raise InvalidInput(N_("%(value)r is not a mainland mobile number (11 digits starting with 1)"), value=phone)
    accounts.check_new_password("", password)
    if not agreed:
        raise InvalidInput(N_("read what your data is for and agree, to apply"))
    return name, number


@atomic
def apply_to_join(session: Session, *, code: str, name: str, phone: str, password_hash: str, client: str) -> User:
    """A new rider, applied to the link's station, with the password they chose (hashed by the caller)."""
    link, station = open_link(session, code)
    taken = session.scalar(select(User.id).where(or_(User.phone == phone, User.username == phone)))
    if taken is not None:
        raise Conflict(N_("an account with this mobile number exists already: sign in, or ask your station"))
    # Counted in one conditional UPDATE: two applications at the same moment cannot both take the last
    # place (the second waits for the first's row lock, then finds the link used up).
    counted = session.execute(
        update(JoinLink)
        .where(JoinLink.id == link.id, JoinLink.uses < JoinLink.max_uses)
        .values(uses=JoinLink.uses + 1)
        .execution_options(synchronize_session=False)
    )
    if counted.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(N_("this join link has been used up: ask your station for a new one"))
    session.expire(link, ["uses"])
    user = accounts.create_user(
        session,
        username=phone,
        role="rider",
        password_hash=password_hash,
        display_name=name,
        phone=phone,
        rider_status="applied",
        links={"station": station.code},
        status_reason=f"join:{link.id}",
    )
    record(
        session,
        actor=user,
        action="rider.apply",
        object_type="user",
        object_id=user.id,
        join_link=link.id,
        purpose=PURPOSE_VERSION,
        client=client,
    )
    return user


def applications(state: Any) -> MissThrottle:
    """The server process's count of refused applications per client address (kept on the app's `state`):
    ten in ten minutes, then waits that double (a robot guessing codes or filling the form); the link's
    own limit bounds the applications it admits."""
    throttle: MissThrottle | None = getattr(state, "join_applications", None)
    if throttle is None:
        throttle = state.join_applications = MissThrottle(threshold=10, window_seconds=600, longest_wait=600)
    return throttle


async def apply(
    factory: sessionmaker[Session],
    read_factory: sessionmaker[Session],
    hashes: anyio.CapacityLimiter,
    throttle: MissThrottle,
    *,
    client: str,
    code: str,
    name: str,
    phone: str,
    password: str,
    agree: bool,
) -> User:
    """An application through a join link: checked, the password hashed outside any transaction, stored in
    one short one. Shared by the API and the page."""
    wait = throttle.wait(client)
    if wait > 0:
        raise TooManyRequests(
            N_("too many applications from here; try again in %(seconds)d seconds"),
            seconds=math.ceil(wait),
            retry_after=math.ceil(wait),
        )
    try:
        name, number = check_application(name, phone, password, agree)
        await anyio.to_thread.run_sync(in_transaction, read_factory, partial(open_link, code=code))
        password_hash = await anyio.to_thread.run_sync(hash_password, password, limiter=hashes)
        step = partial(apply_to_join, code=code, name=name, phone=number, password_hash=password_hash, client=client)
        user: User = await anyio.to_thread.run_sync(in_transaction, factory, step)
    except DomainError:
        # Only refusals count: a station's riders applying together from its Wi-Fi share one address.
        throttle.miss(client)
        raise
    return user
