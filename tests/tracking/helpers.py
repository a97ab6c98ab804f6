"""Helpers for position tests: riders ready to send, pings, and a brute-force recount of the aggregates."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from h3.api import basic_int as h3
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.coverage.counts import fold_counts
from riderwatch.infra.clock import utcnow
from riderwatch.models import CoverageCell, CoverageRiderCell, DutyShift, Position, Rider
from tests.api.helpers import Api
from tests.factories import CENTER_LAT, CENTER_LON

__all__ = ["CENTER_LAT", "CENTER_LON"]


def ready(api: Api, username: str = "rider") -> None:
    """Consent and go on duty through the API."""
    res = api.client.put("/api/v1/me/location-consent", json={"granted": True}, headers=api.auth(username))
    assert res.status_code == 200, res.text
    res = api.client.put("/api/v1/me/duty", json={"on_duty": True}, headers=api.auth(username))
    assert res.status_code == 200, res.text


def backdate(db: Session, rider_id: int, hours: float = 2) -> None:
    """Move the rider's consent and open shift back in time, so tests can send points from the past hours."""
    delta = timedelta(hours=hours)
    rider = db.get(Rider, rider_id)
    assert rider is not None and rider.location_consent_at is not None
    rider.location_consent_at -= delta
    for shift in db.scalars(select(DutyShift).where(DutyShift.rider_id == rider_id, DutyShift.ended_at.is_(None))):
        shift.started_at -= delta
    db.commit()


def ago(seconds: float) -> datetime:
    return utcnow() - timedelta(seconds=seconds)


def ping(ts: datetime, lat: float = CENTER_LAT, lon: float = CENTER_LON, **extra: Any) -> dict[str, Any]:
    return {"ts": ts.isoformat(), "lat": lat, "lon": lon, **extra}


def send(api: Api, pings: list[dict[str, Any]], username: str = "rider", status: int = 200) -> dict[str, Any]:
    res = api.client.post("/api/v1/tracking/pings", json={"pings": pings}, headers=api.auth(username))
    assert res.status_code == status, res.text
    data: dict[str, Any] = res.json()
    return data


def count(db: Session, model: type[Any], *where: Any) -> int:
    if model is CoverageCell:
        fold_counts(db)  # as every reader of the counts does
    n = db.scalar(select(func.count()).select_from(model).where(*where)) or 0
    db.rollback()  # end the read: on SQLite it holds the write lock the app needs
    return int(n)


def hour_of(ts: datetime) -> int:
    return int(ts.timestamp() // 3600)


def recount(rows: Iterable[tuple[int, datetime, float, float]], resolutions: Iterable[int]) -> dict[Any, Any]:
    """Passes and distinct riders per (resolution, cell, hour), counted from raw points."""
    passes: Counter[tuple[int, int, int]] = Counter()
    riders: defaultdict[tuple[int, int, int], set[int]] = defaultdict(set)
    for rider_id, ts, lat, lon in rows:
        for res in resolutions:
            key = (res, h3.latlng_to_cell(lat, lon, res), hour_of(ts))
            passes[key] += 1
            riders[key].add(rider_id)
    return {k: (passes[k], len(riders[k])) for k in passes}


def stored_aggregates(db: Session) -> dict[Any, Any]:
    fold_counts(db)  # as every reader of the counts does
    rows = db.execute(
        select(CoverageCell.resolution, CoverageCell.cell, CoverageCell.hour, CoverageCell.passes, CoverageCell.riders)
    ).all()
    db.rollback()
    return {(r, c, h): (p, n) for r, c, h, p, n in rows}


def stored_positions(db: Session) -> list[tuple[int, datetime, float, float]]:
    rows = [
        (r, t, la, lo)
        for r, t, la, lo in db.execute(select(Position.rider_id, Position.ts, Position.lat, Position.lon))
    ]
    db.rollback()
    return rows


def rider_cells(db: Session) -> int:
    return count(db, CoverageRiderCell)
