"""The leaflet pages: a rider logs what they handed out with meals, from the phone (/leaflets); the
command centre and station managers see the totals, the programme's counter and a map (/leaflets/overview);
administrators run campaigns and keep stock, a station manager their station's stock (/admin/leaflets).

Thin like the other pages: the rules are outreach.service, behind /api/v1 too.
"""

from __future__ import annotations

import secrets
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch import policy
from riderwatch.deps import DbSession, require
from riderwatch.errors import N_, DomainError, InvalidInput
from riderwatch.geo.coords import to_wgs84
from riderwatch.models import Station, User
from riderwatch.org import service as org_service
from riderwatch.outreach import service
from riderwatch.outreach.schemas import CampaignIn, HandOut, StockMove
from riderwatch.points.service import local_today
from riderwatch.web.forms import done_message, form_text, labels_in, refusal, see_other
from riderwatch.web.templating import render

router = APIRouter(include_in_schema=False)

Organiser = Annotated[User, Depends(require("leaflets.campaigns"))]
Keeper = Annotated[User, Depends(require("leaflets.stock"))]
Distributor = Annotated[User, Depends(require("leaflets.hand_out"))]
Watcher = Annotated[User, Depends(require("leaflets.totals"))]

TOPIC_LABELS = {
    "anti_fraud": N_("Anti-telecom-fraud"),
    "safety": N_("Safety"),
    "law": N_("Law"),
    "other": N_("Other"),
}
DONE = {
    "logged": N_("Logged. Thank you for spreading the word."),
    "campaign": N_("The campaign is saved."),
    "stock": N_("The stock is recorded."),
}


def _rider_page(
    request: Request, db: Session, user: User, *, values: dict[str, Any] | None = None, status: int = 200, **extra: Any
) -> HTMLResponse:
    station = service.rider_station(db, user)
    today = _today(request)
    running = [c for c in service.campaigns(db) if c.starts_on <= today and (not c.ends_on or c.ends_on >= today)]
    left = {
        c.code: service.station_stock(db, campaign_id=c.id, station_id=station.id) if station else 0 for c in running
    }
    context = {
        "station": station,
        "running": running,
        "left": left,
        "total": service.my_total(db, rider=user),
        "recent": service.my_distributions(db, rider=user, limit=20),
        "names": {c.id: c.name for c in service.campaigns(db, everything=True)},
        "values": {"campaign": running[0].code if running else "", "count": "", "key": secrets.token_urlsafe(12)}
        | (values or {}),
        "programme_total": service.programme_total(db),
        **extra,
    }
    return render(request, "leaflets/rider.html", context, status=status)


def _today(request: Request) -> date:
    return local_today(request.app.state.settings.timezone)


@router.get("/leaflets")
def rider_page(request: Request, db: DbSession, user: Distributor, done: str = "") -> HTMLResponse:
    return _rider_page(request, db, user, **done_message(request, done, DONE))


@router.post("/leaflets")
def hand_out(
    request: Request,
    db: DbSession,
    user: Distributor,
    campaign: Annotated[str, form_text()] = "",
    count: Annotated[str, form_text()] = "",
    lat: Annotated[str, form_text()] = "",
    lon: Annotated[str, form_text()] = "",
    crs: Annotated[str, form_text()] = "wgs84",
    key: Annotated[str, form_text()] = "",
) -> Response:
    values = {"campaign": campaign, "count": count, "key": key}
    try:
        if not lat or not lon:
            raise InvalidInput(N_("the place is missing: allow the page to use your location, or use the station's"))
        body = HandOut.model_validate({"campaign": campaign, "count": count, "lat": lat, "lon": lon, "crs": crs})
        wgs_lat, wgs_lon = to_wgs84(body.lat, body.lon, body.crs)
        service.hand_out(
            db,
            rider=user,
            campaign_code=body.campaign,
            count=body.count,
            lat=wgs_lat,
            lon=wgs_lon,
            handed_at=None,
            idempotency_key=key,
            timezone=request.app.state.settings.timezone,
        )
    except (DomainError, ValidationError) as exc:
        message, status = refusal(request, exc)
        return _rider_page(request, db, user, values=values, status=status, **message)
    return see_other("/leaflets?done=logged")


@router.get("/leaflets/overview")
def overview(
    request: Request,
    db: DbSession,
    user: Watcher,
    campaign: Annotated[str, Query(max_length=64)] = "",
) -> HTMLResponse:
    tz = request.app.state.settings.timezone
    try:
        found = service.totals(db, user=user, campaign_code=campaign or None, timezone=tz)
        extra: dict[str, Any] = {}
    except DomainError as exc:
        found = service.totals(db, user=user, timezone=tz)
        extra, _ = refusal(request, exc)
    cells = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"count": c["count"]},
                "geometry": {"type": "Polygon", "coordinates": [_ring(c["boundary"])]},
            }
            for c in found.cells
        ],
    }
    context = {
        "found": found,
        "campaign": campaign,
        "campaigns": service.campaigns(db, everything=True),
        "programme_total": service.programme_total(db),
        "cells": cells,
        "areas": org_service.areas_geojson(db),
        "weeks": list(found.by_week.items()),
        **extra,
    }
    return render(request, "leaflets/overview.html", context)


def _ring(boundary: list[list[float]]) -> list[list[float]]:
    """An H3 cell's boundary ((lat, lon) pairs) as a closed GeoJSON ring of (lon, lat)."""
    ring = [[lon, lat] for lat, lon in boundary]
    return [*ring, ring[0]]


def _admin_page(
    request: Request, db: Session, user: User, *, values: dict[str, Any] | None = None, status: int = 200, **extra: Any
) -> HTMLResponse:
    stations = list(db.scalars(select(Station).where(Station.retired_at.is_(None)).order_by(Station.name)))
    if user.role == "station_manager":
        stations = [s for s in stations if s.id == user.station_id]
    campaigns = service.campaigns(db, everything=True)
    stock = {
        (c.id, s.id): service.station_stock(db, campaign_id=c.id, station_id=s.id) for c in campaigns for s in stations
    }
    context = {
        "campaigns": campaigns,
        "stations": stations,
        "stock": stock,
        "may_organise": policy.has_permission(user, "leaflets.campaigns"),
        "topics": labels_in(request, TOPIC_LABELS),
        "values": {
            "code": "",
            "name": "",
            "name_en": "",
            "topic": "anti_fraud",
            "starts_on": _today(request).isoformat(),
            "ends_on": "",
            "target": "",
            "campaign": campaigns[0].code if campaigns else "",
            "station": stations[0].code if stations else "",
            "kind": "issue",
            "count": "",
            "note": "",
        }
        | (values or {}),
        **extra,
    }
    return render(request, "leaflets/admin.html", context, status=status)


@router.get("/admin/leaflets")
def admin_page(request: Request, db: DbSession, user: Keeper, done: str = "") -> HTMLResponse:
    return _admin_page(request, db, user, **done_message(request, done, DONE))


@router.post("/admin/leaflets/campaigns")
def save_campaign(
    request: Request,
    db: DbSession,
    user: Organiser,
    code: Annotated[str, form_text()] = "",
    name: Annotated[str, form_text()] = "",
    name_en: Annotated[str, form_text()] = "",
    topic: Annotated[str, form_text()] = "anti_fraud",
    starts_on: Annotated[str, form_text()] = "",
    ends_on: Annotated[str, form_text()] = "",
    target: Annotated[str, form_text()] = "",
) -> Response:
    values = {
        "code": code,
        "name": name,
        "name_en": name_en,
        "topic": topic,
        "starts_on": starts_on,
        "ends_on": ends_on,
        "target": target,
    }
    try:
        body = CampaignIn.model_validate(
            {
                "code": code.strip(),
                "name": name,
                "name_en": name_en,
                "topic": topic,
                "starts_on": starts_on or None,
                "ends_on": ends_on or None,
                "target": target or None,
            }
        )
        service.save_campaign(db, user=user, **body.model_dump())
    except (DomainError, ValidationError) as exc:
        message, status = refusal(request, exc)
        return _admin_page(request, db, user, values=values, status=status, **message)
    return see_other("/admin/leaflets?done=campaign")


@router.post("/admin/leaflets/stock")
def move_stock(
    request: Request,
    db: DbSession,
    user: Keeper,
    campaign: Annotated[str, form_text()] = "",
    station: Annotated[str, form_text()] = "",
    kind: Annotated[str, form_text()] = "issue",
    count: Annotated[str, form_text()] = "",
    note: Annotated[str, form_text()] = "",
) -> Response:
    values = {"campaign": campaign, "station": station, "kind": kind, "count": count, "note": note}
    try:
        body = StockMove.model_validate(values)
        service.move_stock(
            db,
            user=user,
            campaign_code=body.campaign,
            station_code=body.station,
            kind=body.kind,
            count=body.count,
            note=body.note,
        )
    except (DomainError, ValidationError) as exc:
        message, status = refusal(request, exc)
        return _admin_page(request, db, user, values=values, status=status, **message)
    return see_other("/admin/leaflets?done=stock")
