"""The points ledger and its rules.

An entry is never changed: an award is undone by a `reverse` entry naming it, and a balance is always the
sum of a rider's entries. Each award has a key naming what it is for; the key is unique, so an award
retried, or made by two requests at once, is stored once (INSERT … ON CONFLICT DO NOTHING). A rule's
change applies from its day on; what was awarded before keeps its points.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.audit.service import record
from riderwatch.db import upsert
from riderwatch.errors import N_, Conflict, InvalidInput, NotFound
from riderwatch.infra.clock import utcnow
from riderwatch.models import Rider, User
from riderwatch.models.points import POINT_RULE_KEYS, PointEntry, PointRule

# Points when no administrator has set a rule for the key.
DEFAULT_POINTS: dict[str, int] = {
    "clue_A": 50,
    "clue_B": 20,
    "clue_C": 5,
    "alert_ack": 1,
    "sighting": 5,
    "course_passed": 10,
    "leaflets_10": 1,
}
assert set(DEFAULT_POINTS) == set(POINT_RULE_KEYS)
MAX_RULE_POINTS = 10_000
MAX_ADJUSTMENT = 100_000


# --- rules ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleInForce:
    key: str
    points: int
    rule_id: int | None  # None: the default, no administrator's rule yet
    since: datetime | None


def rule_in_force(session: Session, key: str, *, at: datetime) -> RuleInForce:
    rule = session.scalars(
        select(PointRule)
        .where(PointRule.key == key, PointRule.effective_from <= at)
        .order_by(PointRule.effective_from.desc())
        .limit(1)
    ).first()
    if rule is None:
        return RuleInForce(key=key, points=DEFAULT_POINTS[key], rule_id=None, since=None)
    return RuleInForce(key=key, points=rule.points, rule_id=rule.id, since=rule.effective_from)


def rules_in_force(session: Session, *, at: datetime | None = None) -> list[RuleInForce]:
    moment = at or utcnow()
    return [rule_in_force(session, key, at=moment) for key in POINT_RULE_KEYS]


def rule_history(session: Session) -> list[PointRule]:
    return list(session.scalars(select(PointRule).order_by(PointRule.effective_from.desc(), PointRule.id.desc())))


def local_today(timezone: str) -> date:
    return utcnow().astimezone(ZoneInfo(timezone)).date()


def day_start(day: date, timezone: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(timezone)).astimezone(ZoneInfo("UTC"))


def set_rule(
    session: Session, *, user: User, key: str, points: int, effective_from: date, note: str, timezone: str
) -> PointRule:
    """A new version of a rule, from the start of `effective_from` (today at the earliest: what was awarded
    is never re-priced). A change already scheduled for that day is replaced."""
    if key not in POINT_RULE_KEYS:
        raise InvalidInput(N_("no point rule %(key)r"), key=key)
    if not 0 <= points <= MAX_RULE_POINTS:
        raise InvalidInput(N_("points are from 0 to %(max)s, not %(points)s"), max=MAX_RULE_POINTS, points=points)
    now = utcnow()
    today = local_today(timezone)
    if effective_from < today:
        raise InvalidInput(
            N_("a rule changes from today or a later day, not from %(day)s: what was awarded keeps its points"),
            day=effective_from.isoformat(),
        )
    start = (
        max(day_start(effective_from, timezone), now)
        if effective_from == today
        else day_start(effective_from, timezone)
    )
    scheduled = session.scalars(
        select(PointRule)
        .where(PointRule.key == key, PointRule.effective_from >= day_start(effective_from, timezone))
        .where(PointRule.effective_from < day_start(effective_from + timedelta(days=1), timezone))
        .where(PointRule.effective_from > now)
    ).first()
    if scheduled is not None:
        scheduled.points, scheduled.note, scheduled.created_by_id = points, note.strip(), user.id
        rule = scheduled
    else:
        rule = PointRule(key=key, points=points, effective_from=start, note=note.strip(), created_by_id=user.id)
        session.add(rule)
    session.flush()
    record(
        session,
        actor=user,
        action="points.rule",
        object_type="point_rule",
        object_id=rule.id,
        key=key,
        points=points,
        effective_from=effective_from.isoformat(),
    )
    return rule


# --- the ledger -----------------------------------------------------------------------------------------


def award(
    session: Session,
    *,
    rider_id: int,
    key: str,
    source: str,
    source_id: int | None,
    award_key: str,
    points: int | None = None,
    at: datetime | None = None,
    note: str = "",
) -> PointEntry | None:
    """Earn points for one thing, once: the rule `key` in force at `at` gives the points unless `points`
    is given (a patrol task's own). Stores nothing for 0 points or when `award_key` was awarded before."""
    moment = at or utcnow()
    rule = rule_in_force(session, key, at=moment) if points is None else None
    amount = rule.points if rule is not None else int(points or 0)
    if amount <= 0:
        return None
    return insert_entry(
        session,
        rider_id=rider_id,
        kind="earn",
        points=amount,
        source=source,
        source_id=source_id,
        award_key=award_key,
        rule_id=rule.rule_id if rule is not None else None,
        note=note,
        created_at=moment,
    )


def insert_entry(session: Session, **values: object) -> PointEntry | None:
    values.setdefault("created_at", utcnow())
    values.setdefault("reverses_id", None)
    values.setdefault("created_by_id", None)
    stmt = upsert(session, PointEntry).values(**values).on_conflict_do_nothing(index_elements=["award_key"])
    new_id = session.execute(stmt.returning(PointEntry.id)).scalar()
    if new_id is None:
        return None
    return session.get(PointEntry, new_id)


def live_awards(session: Session, *, source: str, source_id: int, rider_id: int | None = None) -> list[PointEntry]:
    """The earned entries for a source that no entry reverses yet."""
    reversed_ids = select(PointEntry.reverses_id).where(PointEntry.reverses_id.is_not(None))
    query = select(PointEntry).where(
        PointEntry.source == source,
        PointEntry.source_id == source_id,
        PointEntry.kind == "earn",
        PointEntry.id.not_in(reversed_ids),
    )
    if rider_id is not None:
        query = query.where(PointEntry.rider_id == rider_id)
    return list(session.scalars(query.order_by(PointEntry.id)))


def reverse(
    session: Session, entry: PointEntry, *, note: str, actor: User | None = None, at: datetime | None = None
) -> PointEntry | None:
    """Undo one entry with an entry of the opposite sign (once: a second reversal stores nothing)."""
    return insert_entry(
        session,
        created_at=at or utcnow(),
        rider_id=entry.rider_id,
        kind="reverse",
        points=-entry.points,
        source=entry.source,
        source_id=entry.source_id,
        award_key=f"reverse:{entry.id}",
        reverses_id=entry.id,
        note=note,
        created_by_id=actor.id if actor else None,
    )


def reverse_source(
    session: Session,
    *,
    source: str,
    source_id: int,
    note: str,
    actor: User | None = None,
    at: datetime | None = None,
) -> int:
    """Undo every award still standing for a source (a clue reopened or found false). Returns how many."""
    done = 0
    for entry in live_awards(session, source=source, source_id=source_id):
        if reverse(session, entry, note=note, actor=actor, at=at) is not None:
            done += 1
    return done


def settle(session: Session, *, rider_id: int, source: str, source_id: int, points: int, note: str = "") -> None:
    """Make a rider's standing award for a source come to `points` (a patrol task's result can move when an
    earlier finisher turns up): reverse what no longer holds, award what is missing. The key counts the
    entries so far, so two runs settling the same change at once store it once."""
    standing = live_awards(session, source=source, source_id=source_id, rider_id=rider_id)
    if sum(e.points for e in standing) == points:
        return
    for entry in standing:
        reverse(session, entry, note=note)
    if points > 0:
        count = session.scalar(
            select(func.count()).where(
                PointEntry.source == source, PointEntry.source_id == source_id, PointEntry.rider_id == rider_id
            )
        )
        insert_entry(
            session,
            rider_id=rider_id,
            kind="earn",
            points=points,
            source=source,
            source_id=source_id,
            award_key=f"{source}:{source_id}:rider:{rider_id}:{count}",
            rule_id=None,
            note=note,
        )


def lock_rider(session: Session, rider_id: int) -> None:
    """The rider's row, locked for this transaction (PostgreSQL; SQLite's writers queue anyway): whatever
    checks a balance and then spends from it does so one at a time per rider."""
    # The columns only: the user entity would bring its membership in by an outer join, which cannot be locked.
    found = session.execute(select(User.id, User.role).where(User.id == rider_id).with_for_update()).first()
    if found is None or found.role != "rider":
        raise NotFound(N_("no rider %(id)s"), id=rider_id)


def balance(session: Session, rider_id: int) -> int:
    return int(
        session.scalar(select(func.coalesce(func.sum(PointEntry.points), 0)).where(PointEntry.rider_id == rider_id))
        or 0
    )


def adjust(session: Session, *, actor: User, rider_id: int, points: int, note: str) -> PointEntry:
    """An administrator's adjustment, with the reason; it may not take a balance below zero."""
    note = note.strip()
    if not note:
        raise InvalidInput(N_("an adjustment needs a note saying why"))
    if points == 0 or abs(points) > MAX_ADJUSTMENT:
        raise InvalidInput(
            N_("an adjustment is from -%(max)s to %(max)s points and not 0, not %(points)s"),
            max=MAX_ADJUSTMENT,
            points=points,
        )
    lock_rider(session, rider_id)
    now_balance = balance(session, rider_id)
    if now_balance + points < 0:
        raise Conflict(
            N_("the rider has %(balance)s points; taking %(points)s would leave less than none"),
            balance=now_balance,
            points=-points,
        )
    entry = PointEntry(
        rider_id=rider_id,
        kind="adjust",
        points=points,
        source="adjustment",
        source_id=None,
        award_key=None,
        note=note,
        created_by_id=actor.id,
        created_at=utcnow(),
    )
    session.add(entry)
    session.flush()
    record(session, actor=actor, action="points.adjust", object_type="user", object_id=rider_id, points=points)
    return entry


def entries(session: Session, rider_id: int, *, limit: int = 200) -> list[PointEntry]:
    return list(
        session.scalars(
            select(PointEntry)
            .where(PointEntry.rider_id == rider_id)
            .order_by(PointEntry.created_at.desc(), PointEntry.id.desc())
            .limit(limit)
        )
    )


# --- leaderboards ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoardLine:
    rank: int
    rider_id: int
    name: str
    points: int


def month_bounds(period: str, timezone: str) -> tuple[datetime, datetime]:
    """A month "YYYY-MM" in the station's time zone, as UTC instants [start, end)."""
    try:
        year, month = (int(part) for part in period.split("-"))
        first = date(year, month, 1)
    except ValueError:
        raise InvalidInput(N_("a period is a month written YYYY-MM, not %(period)r"), period=period) from None
    if len(period) != 7 or not 2000 <= year <= 2999:
        raise InvalidInput(N_("a period is a month written YYYY-MM, not %(period)r"), period=period)
    following = date(year + (month == 12), month % 12 + 1, 1)
    return day_start(first, timezone), day_start(following, timezone)


def current_period(timezone: str) -> str:
    return utcnow().astimezone(ZoneInfo(timezone)).strftime("%Y-%m")


def board_name(user: User, rider: Rider | None) -> str:
    """How a rider appears on a leaderboard: the nickname they chose, or their name with all but the first
    character hidden (张**)."""
    if rider is not None and rider.board_name:
        return rider.board_name
    name = user.display_name or user.username
    return name[:1] + "*" * min(2, max(1, len(name) - 1))


def board(
    session: Session,
    *,
    period: str | None,
    timezone: str,
    station_id: int | None = None,
    platform_id: int | None = None,
    limit: int | None = 50,
) -> list[BoardLine]:
    """Riders ranked by the points they earned (spending does not lower a rank) in a month, or ever;
    in one station or platform, or the whole programme. Ties share a rank (1, 2, 2, 4)."""
    earned = func.sum(PointEntry.points).label("earned")
    query = (
        select(PointEntry.rider_id, earned)
        .join(Rider, Rider.user_id == PointEntry.rider_id)
        .where(PointEntry.source != "redemption")
        .group_by(PointEntry.rider_id)
        .having(func.sum(PointEntry.points) > 0)
        .order_by(earned.desc(), PointEntry.rider_id)
    )
    if period is not None:
        start, end = month_bounds(period, timezone)
        query = query.where(PointEntry.created_at >= start, PointEntry.created_at < end)
    if station_id is not None:
        query = query.where(Rider.station_id == station_id)
    if platform_id is not None:
        query = query.where(Rider.platform_id == platform_id)
    rows = session.execute(query).all()
    ranked: list[tuple[int, int, int]] = []
    for i, (rider_id, points) in enumerate(rows):
        rank = ranked[-1][0] if ranked and ranked[-1][2] == points else i + 1
        ranked.append((rank, rider_id, int(points)))
    shown = ranked if limit is None else ranked[:limit]
    people = {
        u.id: (u, r)
        for u, r in session.execute(
            select(User, Rider).join(Rider, Rider.user_id == User.id).where(User.id.in_([r for _, r, _ in shown]))
        )
    }
    return [BoardLine(rank=rank, rider_id=rid, name=board_name(*people[rid]), points=p) for rank, rid, p in shown]


@dataclass(frozen=True)
class Standing:
    balance: int
    earned_this_month: int
    rank_station: int | None
    riders_station: int
    rank_programme: int | None
    riders_programme: int


def standing(session: Session, *, rider: User, timezone: str) -> Standing:
    """A rider's balance and this month's rank in their station and in the whole programme."""
    period = current_period(timezone)
    membership = rider.membership
    everyone = board(session, period=period, timezone=timezone, limit=None)
    station = (
        board(session, period=period, timezone=timezone, station_id=membership.station_id, limit=None)
        if membership is not None and membership.station_id is not None
        else []
    )

    def rank_in(lines: list[BoardLine]) -> int | None:
        return next((line.rank for line in lines if line.rider_id == rider.id), None)

    mine = next((line.points for line in everyone if line.rider_id == rider.id), 0)
    return Standing(
        balance=balance(session, rider.id),
        earned_this_month=mine,
        rank_station=rank_in(station),
        riders_station=len(station),
        rank_programme=rank_in(everyone),
        riders_programme=len(everyone),
    )


def set_board_name(session: Session, *, rider: User, name: str) -> None:
    """The nickname a rider appears under on the leaderboards ("" for their masked name)."""
    name = name.strip()
    if len(name) > 16:
        raise InvalidInput(N_("a nickname has at most 16 characters"))
    membership = session.get(Rider, rider.id)
    if membership is None:
        raise NotFound(N_("no rider %(id)s"), id=rider.id)
    taken = (
        session.scalar(select(func.count()).where(Rider.board_name == name, Rider.user_id != rider.id)) if name else 0
    )
    if taken:
        raise Conflict(N_("another rider already goes by %(name)r"), name=name)
    membership.board_name = name or None
    session.flush()
