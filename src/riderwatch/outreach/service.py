"""Leaflet outreach: campaigns, stations' stock, riders' distributions, totals.

A station's stock of a campaign is what it was issued, less what it returned and what its riders handed
out; a distribution or a return that would take it below zero is refused. A rider logs what they handed
out with where and when; counts no rider could hand out (over 200 at once, over 300 a day), times in the
future or more than a week back, or outside the campaign's dates are refused with the reason. Every ten
leaflets a rider hands out in a campaign earn the `leaflets_10` rule's points.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from h3.api import basic_int as h3
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from riderwatch import policy
from riderwatch.audit.service import record
from riderwatch.db import atomic
from riderwatch.errors import N_, Conflict, Forbidden, InvalidInput, NotFound
from riderwatch.infra.clock import utcnow
from riderwatch.models import Community, Rider, Station, User
from riderwatch.models.outreach import CAMPAIGN_TOPICS, LeafletCampaign, LeafletDistribution, LeafletStock
from riderwatch.org import service as org_service
from riderwatch.points import service as points

MAX_PER_ENTRY = 200
MAX_PER_DAY = 300
MAX_AGE = timedelta(days=7)
FUTURE_SLACK = timedelta(minutes=5)
MAX_STOCK_MOVE = 1_000_000
# The map's cells: H3 resolution 8 (about 0.7 km²), so a rider's single stop is never shown.
MAP_RESOLUTION = 8


# --- campaigns ------------------------------------------------------------------------------------------


def campaigns(session: Session, *, everything: bool = False) -> list[LeafletCampaign]:
    query = select(LeafletCampaign).order_by(LeafletCampaign.starts_on.desc(), LeafletCampaign.id.desc())
    if not everything:
        query = query.where(LeafletCampaign.retired_at.is_(None))
    return list(session.scalars(query))


def get_campaign(session: Session, code: str) -> LeafletCampaign:
    campaign = session.scalars(select(LeafletCampaign).where(LeafletCampaign.code == code)).first()
    if campaign is None:
        raise NotFound(N_("no leaflet campaign %(code)r"), code=code)
    return campaign


def save_campaign(
    session: Session,
    *,
    user: User,
    code: str,
    name: str,
    name_en: str = "",
    topic: str = "anti_fraud",
    starts_on: date,
    ends_on: date | None = None,
    target: int | None = None,
    active: bool = True,
) -> LeafletCampaign:
    """A new campaign, or a change to the one with this code."""
    code, name = code.strip(), name.strip()
    if not code or not name:
        raise InvalidInput(N_("a campaign needs a code and a name"))
    if topic not in CAMPAIGN_TOPICS:
        raise InvalidInput(N_("no campaign topic %(topic)r"), topic=topic)
    if ends_on is not None and ends_on < starts_on:
        raise InvalidInput(N_("a campaign ends on or after the day it starts"))
    if target is not None and not 0 < target <= 10_000_000:
        raise InvalidInput(N_("a target is from 1 to 10,000,000 leaflets"))
    campaign = session.scalars(select(LeafletCampaign).where(LeafletCampaign.code == code)).first()
    if campaign is None:
        campaign = LeafletCampaign(code=code, created_at=utcnow())
        session.add(campaign)
    campaign.name, campaign.name_en, campaign.topic = name, name_en.strip(), topic
    campaign.starts_on, campaign.ends_on, campaign.target = starts_on, ends_on, target
    campaign.retired_at = None if active else (campaign.retired_at or utcnow())
    session.flush()
    record(session, actor=user, action="leaflets.campaign", object_type="leaflet_campaign", object_id=campaign.id)
    return campaign


# --- stock ----------------------------------------------------------------------------------------------


def station_stock(session: Session, *, campaign_id: int, station_id: int) -> int:
    """What a station has left of a campaign's leaflets."""
    moved = session.execute(
        select(LeafletStock.kind, func.coalesce(func.sum(LeafletStock.count), 0))
        .where(LeafletStock.campaign_id == campaign_id, LeafletStock.station_id == station_id)
        .group_by(LeafletStock.kind)
    ).all()
    by_kind = {kind: int(n) for kind, n in moved}
    handed = session.scalar(
        select(func.coalesce(func.sum(LeafletDistribution.count), 0)).where(
            LeafletDistribution.campaign_id == campaign_id, LeafletDistribution.station_id == station_id
        )
    )
    return by_kind.get("issue", 0) - by_kind.get("return", 0) - int(handed or 0)


def _lock_station(session: Session, station_id: int) -> None:
    """Whoever checks a station's stock and then takes from it does so one at a time (PostgreSQL; SQLite's
    writers queue anyway)."""
    session.execute(select(Station.id).where(Station.id == station_id).with_for_update())


def _station(session: Session, code: str) -> Station:
    station = session.scalars(select(Station).where(Station.code == code)).first()
    if station is None:
        raise NotFound(N_("no station %(code)r"), code=code)
    return station


def move_stock(
    session: Session, *, user: User, campaign_code: str, station_code: str, kind: str, count: int, note: str = ""
) -> LeafletStock:
    """Leaflets issued to a station, or returned by it (administrators any station, a station manager
    their own)."""
    campaign = get_campaign(session, campaign_code)
    station = _station(session, station_code)
    if not policy.may_manage_station(user, station.id):
        raise Forbidden(N_("you keep the stock of your own station only"))
    if kind not in ("issue", "return"):
        raise InvalidInput(N_("stock is issued or returned, not %(kind)r"), kind=kind)
    if not 0 < count <= MAX_STOCK_MOVE:
        raise InvalidInput(N_("a count is from 1 to %(max)s"), max=MAX_STOCK_MOVE)
    _lock_station(session, station.id)
    if kind == "return":
        left = station_stock(session, campaign_id=campaign.id, station_id=station.id)
        if count > left:
            raise Conflict(
                N_("the station has %(left)s leaflets of this campaign; it cannot return %(count)s"),
                left=left,
                count=count,
            )
    move = LeafletStock(
        campaign_id=campaign.id,
        station_id=station.id,
        kind=kind,
        count=count,
        note=note.strip(),
        by_id=user.id,
        at=utcnow(),
    )
    session.add(move)
    session.flush()
    record(session, actor=user, action=f"leaflets.{kind}", object_type="station", object_id=station.id, count=count)
    return move


# --- distributions --------------------------------------------------------------------------------------


@atomic
def hand_out(
    session: Session,
    *,
    rider: User,
    campaign_code: str,
    count: int,
    lat: float,
    lon: float,
    handed_at: datetime | None,
    idempotency_key: str,
    timezone: str,
) -> tuple[LeafletDistribution, bool]:
    """Log leaflets a rider handed out. Returns the distribution and whether it is new (a retried send
    with the same key returns the first)."""
    key = idempotency_key.strip()
    if not 8 <= len(key) <= 64:
        raise InvalidInput(N_("a distribution needs a key of 8 to 64 characters (sent again on a retry)"))
    earlier = session.scalars(
        select(LeafletDistribution).where(
            LeafletDistribution.rider_id == rider.id, LeafletDistribution.idempotency_key == key
        )
    ).first()
    if earlier is not None:
        return earlier, False
    membership = rider.membership
    if membership is None or membership.station_id is None:
        raise Conflict(N_("you belong to no station: its leaflets are the ones you hand out"))
    campaign = get_campaign(session, campaign_code)
    now = utcnow()
    when = handed_at or now
    tz = ZoneInfo(timezone)
    if when > now + FUTURE_SLACK:
        raise InvalidInput(N_("the time handed out is in the future"))
    if when < now - MAX_AGE:
        raise InvalidInput(N_("leaflets are logged within a week of handing them out"))
    day = when.astimezone(tz).date()
    if campaign.retired_at is not None or day < campaign.starts_on or (campaign.ends_on and day > campaign.ends_on):
        raise Conflict(N_("the campaign %(name)s does not run on %(day)s"), name=campaign.name, day=day.isoformat())
    if not 0 < count <= MAX_PER_ENTRY:
        raise InvalidInput(
            N_("one entry is from 1 to %(max)s leaflets; log a larger round in several entries"), max=MAX_PER_ENTRY
        )
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise InvalidInput(N_("the place is not a position on Earth"))
    start = datetime.combine(day, datetime.min.time(), tzinfo=tz)
    that_day = session.scalar(
        select(func.coalesce(func.sum(LeafletDistribution.count), 0)).where(
            LeafletDistribution.rider_id == rider.id,
            LeafletDistribution.handed_at >= start,
            LeafletDistribution.handed_at < start + timedelta(days=1),
        )
    )
    if int(that_day or 0) + count > MAX_PER_DAY:
        raise InvalidInput(
            N_("%(count)s more would make %(total)s in a day; nobody hands out more than %(max)s with meals"),
            count=count,
            total=int(that_day or 0) + count,
            max=MAX_PER_DAY,
        )
    station_id = membership.station_id
    _lock_station(session, station_id)
    left = station_stock(session, campaign_id=campaign.id, station_id=station_id)
    if count > left:
        raise Conflict(
            N_("your station has %(left)s leaflets of this campaign left; ask your station manager for more"),
            left=left,
        )
    place = org_service.locate(session, lat=lat, lon=lon)
    before = _rider_total(session, campaign_id=campaign.id, rider_id=rider.id)
    row = LeafletDistribution(
        campaign_id=campaign.id,
        rider_id=rider.id,
        station_id=station_id,
        count=count,
        lat=lat,
        lon=lon,
        community_id=place.community.id if place.community else None,
        grid_id=place.grid.id if place.grid else None,
        handed_at=when,
        idempotency_key=key,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        # The same key sent twice at once: the other request stored it (the savepoint's rollback has taken
        # this row out of the session already).
        earlier = session.scalars(
            select(LeafletDistribution).where(
                LeafletDistribution.rider_id == rider.id, LeafletDistribution.idempotency_key == key
            )
        ).first()
        if earlier is None:
            raise
        return earlier, False
    tens_before, tens_after = before // 10, (before + count) // 10
    if tens_after > tens_before:
        rule = points.rule_in_force(session, "leaflets_10", at=when)
        points.award(
            session,
            rider_id=rider.id,
            key="leaflets_10",
            source="leaflets",
            source_id=campaign.id,
            award_key=f"leaflets:{campaign.id}:rider:{rider.id}:{tens_after}",
            points=rule.points * (tens_after - tens_before),
            at=when,
        )
    return row, True


def _rider_total(session: Session, *, campaign_id: int, rider_id: int) -> int:
    return int(
        session.scalar(
            select(func.coalesce(func.sum(LeafletDistribution.count), 0)).where(
                LeafletDistribution.campaign_id == campaign_id, LeafletDistribution.rider_id == rider_id
            )
        )
        or 0
    )


def my_distributions(session: Session, *, rider: User, limit: int = 50) -> list[LeafletDistribution]:
    return list(
        session.scalars(
            select(LeafletDistribution)
            .where(LeafletDistribution.rider_id == rider.id)
            .order_by(LeafletDistribution.handed_at.desc(), LeafletDistribution.id.desc())
            .limit(limit)
        )
    )


def my_total(session: Session, *, rider: User) -> int:
    return int(
        session.scalar(
            select(func.coalesce(func.sum(LeafletDistribution.count), 0)).where(
                LeafletDistribution.rider_id == rider.id
            )
        )
        or 0
    )


# --- totals and the map ---------------------------------------------------------------------------------


@dataclass
class Totals:
    total: int = 0
    by_campaign: dict[str, int] = field(default_factory=dict)
    by_station: dict[str, int] = field(default_factory=dict)
    by_community: dict[str, int] = field(default_factory=dict)
    by_week: dict[str, int] = field(default_factory=dict)
    top_riders: list[tuple[str, int]] = field(default_factory=list)
    stock: list[dict[str, Any]] = field(default_factory=list)
    cells: list[dict[str, Any]] = field(default_factory=list)


def programme_total(session: Session) -> int:
    """Every leaflet handed out in the programme, all campaigns."""
    return int(session.scalar(select(func.coalesce(func.sum(LeafletDistribution.count), 0))) or 0)


def totals(
    session: Session,
    *,
    user: User,
    campaign_code: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    timezone: str,
) -> Totals:
    """Leaflets handed out per campaign, station, community, ISO week and rider (the ten who handed out
    most, by name: for the command centre and the rider's own station manager), each station's stock
    left, and counts per H3 cell for the map. A station manager sees their own station's."""
    query = select(LeafletDistribution)
    if campaign_code:
        query = query.where(LeafletDistribution.campaign_id == get_campaign(session, campaign_code).id)
    if start is not None:
        query = query.where(LeafletDistribution.handed_at >= start)
    if end is not None:
        query = query.where(LeafletDistribution.handed_at < end)
    if user.role == "station_manager":
        query = query.where(LeafletDistribution.station_id == (user.station_id or 0))
    rows = list(session.scalars(query))
    names = {c.id: c.name for c in session.scalars(select(LeafletCampaign))}
    stations = {s.id: s.name for s in session.scalars(select(Station))}
    communities = {c.id: c.name for c in session.scalars(select(Community))}
    tz = ZoneInfo(timezone)
    out = Totals(total=sum(r.count for r in rows))
    per: dict[str, defaultdict[Any, int]] = {k: defaultdict(int) for k in ("c", "s", "m", "w", "r", "h")}
    for r in rows:
        per["c"][names.get(r.campaign_id, "")] += r.count
        per["s"][stations.get(r.station_id, "")] += r.count
        per["m"][communities.get(r.community_id or 0, "")] += r.count
        year, week, _ = r.handed_at.astimezone(tz).isocalendar()
        per["w"][f"{year}-W{week:02d}"] += r.count
        per["r"][r.rider_id] += r.count
        per["h"][h3.latlng_to_cell(r.lat, r.lon, MAP_RESOLUTION)] += r.count
    out.by_campaign = dict(sorted(per["c"].items(), key=lambda kv: -kv[1]))
    out.by_station = dict(sorted(per["s"].items(), key=lambda kv: -kv[1]))
    out.by_community = dict(sorted(per["m"].items(), key=lambda kv: -kv[1]))
    out.by_week = dict(sorted(per["w"].items()))
    top = sorted(per["r"].items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    people = {
        u.id: u.display_name or u.username
        for u in session.scalars(select(User).where(User.id.in_([r for r, _ in top])))
    }
    out.top_riders = [(people.get(r, ""), n) for r, n in top]
    out.cells = [
        {"cell": h3.int_to_str(cell), "count": n, "boundary": [list(p) for p in h3.cell_to_boundary(cell)]}
        for cell, n in sorted(per["h"].items(), key=lambda kv: -kv[1])
    ]
    station_ids = [user.station_id] if user.role == "station_manager" and user.station_id else list(stations)
    for campaign in campaigns(session):
        if campaign_code and campaign.code != campaign_code:
            continue
        for sid in station_ids:
            issued = session.scalar(
                select(func.count())
                .select_from(LeafletStock)
                .where(LeafletStock.campaign_id == campaign.id, LeafletStock.station_id == sid)
            )
            if issued:
                out.stock.append(
                    {
                        "campaign": campaign.name,
                        "station": stations.get(sid, ""),
                        "left": station_stock(session, campaign_id=campaign.id, station_id=sid),
                    }
                )
    return out


def rider_station(session: Session, rider: User) -> Station | None:
    membership = session.get(Rider, rider.id)
    return session.get(Station, membership.station_id) if membership and membership.station_id else None
