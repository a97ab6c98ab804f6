"""The demo's leaflet outreach, through the same services a station uses: an anti-telecom-fraud campaign,
leaflets issued to every station, and the last days' distributions riders logged near their stations."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.infra.clock import utcnow
from riderwatch.models import LeafletCampaign, Rider, Station, User
from riderwatch.outreach import service as outreach

CAMPAIGN = ("fanzha-2026", "反电诈宣传单随餐发放", "Anti-telecom-fraud leaflets with meals")
PER_STATION = 3000


def ensure_outreach(session: Session, added: Counter[str], *, seed: int, timezone: str) -> None:
    """Skipped once any campaign exists."""
    if session.scalar(select(LeafletCampaign.id).limit(1)) is not None:
        return
    admin = session.scalar(select(User).where(User.username == "admin"))
    if admin is None:
        return
    now = utcnow()
    today = now.astimezone(ZoneInfo(timezone)).date()
    code, name, name_en = CAMPAIGN
    outreach.save_campaign(
        session,
        user=admin,
        code=code,
        name=name,
        name_en=name_en,
        topic="anti_fraud",
        starts_on=today - timedelta(days=30),
        ends_on=today + timedelta(days=60),
        target=30000,
    )
    stations = list(session.scalars(select(Station).where(Station.retired_at.is_(None)).order_by(Station.id)))
    for station in stations:
        outreach.move_stock(
            session, user=admin, campaign_code=code, station_code=station.code, kind="issue", count=PER_STATION
        )
    rng = random.Random(seed)
    where = {s.id: (s.lat, s.lon) for s in stations}
    riders = session.execute(
        select(User, Rider)
        .join(Rider, Rider.user_id == User.id)
        .where(Rider.status == "active", Rider.station_id.is_not(None))
        .order_by(User.id)
    ).all()
    for user, membership in riders:
        lat0, lon0 = where.get(membership.station_id or 0, (None, None))
        if lat0 is None or lon0 is None:
            continue
        for n in range(rng.randint(0, 5)):
            at = now - timedelta(days=rng.uniform(0.1, 6), hours=rng.uniform(0, 3))
            outreach.hand_out(
                session,
                rider=user,
                campaign_code=code,
                count=rng.randint(5, 40),
                lat=lat0 + rng.uniform(-0.012, 0.012),
                lon=lon0 + rng.uniform(-0.012, 0.012),
                handed_at=at,
                idempotency_key=f"demo-{user.id}-{n}",
                timezone=timezone,
            )
            added["leaflet distributions"] += 1
