"""The demo's leaflet outreach and riders' voice, through the same services a station uses: an
anti-telecom-fraud campaign, leaflets issued to every station, the last days' distributions riders logged
near their stations; a few suggestions and complaints with answers, and a forum with riders."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.infra.clock import utcnow
from riderwatch.models import Feedback, LeafletCampaign, Rider, Station, User
from riderwatch.outreach import service as outreach
from riderwatch.voice import service as voice

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


FEEDBACK = (
    # rider number, kind, text, anonymous, answer, rating
    (
        1,
        "complaint",
        "派出所门口不让停电动车，取餐送餐很不方便。",
        False,
        "已协调在东侧划出临时停车区，请按标线停放。",
        5,
    ),
    (
        2,
        "suggestion",
        "希望夜间在金鼎广场多安排一些巡逻。",
        False,
        "已将金鼎广场 21 点至次日 1 点列为重点时段，增加巡逻。",
        4,
    ),
    (3, "suggestion", "小区门禁不让骑手进，能不能协调一下？", True, None, None),
)


def ensure_voice(session: Session, added: Counter[str], *, timezone: str) -> None:
    """A few riders' suggestions and complaints (two answered and rated) and a visit with a follow-up action;
    skipped once there is any feedback."""
    if session.scalar(select(Feedback.id).limit(1)) is not None:
        return
    police = session.scalar(select(User).where(User.username == "police1"))
    for number, kind, text, anonymous, answer, rating in FEEDBACK:
        rider = session.scalar(select(User).where(User.username == f"rider{number:03d}"))
        if rider is None:
            continue
        feedback = voice.submit(session, rider=rider, kind=kind, body=text, anonymous=anonymous)
        added["feedback"] += 1
        if answer and police is not None:
            if feedback.assignee_id != police.id:
                feedback.assignee_id = police.id
            voice.answer(session, user=police, feedback_id=feedback.id, text=answer)
            if rating:
                voice.rate(session, rider=rider, feedback_id=feedback.id, rating=rating)
    if police is not None:
        today = utcnow().astimezone(ZoneInfo(timezone)).date()
        station = session.scalar(select(Station).order_by(Station.id))
        voice.record_visit(
            session,
            user=police,
            kind="forum",
            held_on=today - timedelta(days=3),
            place=station.name if station else "",
            station_code=station.code if station else None,
            riders=["rider001", "rider002", "rider003"],
            notes="骑手座谈：反映夜间路灯不亮、小区门禁进不去。",
            actions=[
                voice.ActionIn(text="联系物业协调骑手进小区送餐", owner="police1", due_on=today + timedelta(days=7))
            ],
            timezone=timezone,
        )
        added["visits"] += 1
