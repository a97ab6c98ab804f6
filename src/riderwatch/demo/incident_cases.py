"""The police's recorded cases for the demo, with the simulator's planted hotspots, through the incident import."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.demo.seed import WEEKS
from riderwatch.incidents.service import import_incidents
from riderwatch.models import (
    Incident,
    User,
)
from riderwatch.sim.incidents import default_hotspots, generate_incidents
from riderwatch.sim.world import ZHENHAI

INCIDENT_SOURCE = "110"
# External references of demo incidents start with this; their presence means they are loaded.
INCIDENT_REF_PREFIX = "demo-"


def load_incidents(session: Session, *, seed: int, end: datetime, timezone: str) -> int | None:
    """Four weeks of the 110 system's cases ending at `end`, imported as the command centre would.

    The simulator's generator plants clusters in place and hour of the week (weekend-evening thefts
    in Jinding, weekday-morning fraud in Zhengrong, late-night fights between them) over an even
    background. Returns how many were imported, or None when demo incidents were loaded before.
    """
    loaded = select(Incident.id).where(Incident.external_ref.like(f"{INCIDENT_REF_PREFIX}%")).limit(1)
    if session.scalar(loaded) is not None:
        return None
    tz = ZoneInfo(timezone)
    generated = generate_incidents(
        outline=ZHENHAI.outline,
        hotspots=default_hotspots(ZHENHAI.commercial),
        start=end - timedelta(days=WEEKS * 7),
        end=end,
        seed=seed,
        timezone=timezone,
    )
    rows = [
        (
            n,
            {
                "source": INCIDENT_SOURCE,
                "external_ref": f"{INCIDENT_REF_PREFIX}{i.at.astimezone(tz):%Y%m%d%H%M%S}-{i.id:05d}",
                "category": i.category,
                "lat": i.lat,
                "lon": i.lon,
                "occurred_at": i.at.isoformat(),
                "note": i.description,
            },
        )
        for n, i in enumerate(generated.incidents, start=1)
    ]
    if not rows:
        return 0
    dispatcher = session.scalar(select(User).where(User.username == "dispatcher1"))
    result = import_incidents(session, actor=dispatcher, rows=rows, timezone=timezone, origin="demo", now=end)
    return result.created
