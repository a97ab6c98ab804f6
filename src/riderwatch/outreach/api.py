"""Leaflet outreach under /api/v1: campaigns, stations' stock, riders' distributions, the totals."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response

from riderwatch.deps import DbSession, SettingsDep, require
from riderwatch.geo.coords import to_wgs84
from riderwatch.infra.fields import UtcDateTime
from riderwatch.models import User
from riderwatch.models.outreach import LeafletCampaign, LeafletDistribution
from riderwatch.outreach import service
from riderwatch.outreach.schemas import CampaignIn, HandOut, StockMove

router = APIRouter(prefix="/api/v1", tags=["leaflets"])

Reader = Annotated[User, Depends(require("leaflets.read"))]
Organiser = Annotated[User, Depends(require("leaflets.campaigns"))]
Keeper = Annotated[User, Depends(require("leaflets.stock"))]
Distributor = Annotated[User, Depends(require("leaflets.hand_out"))]
Watcher = Annotated[User, Depends(require("leaflets.totals"))]


def present_campaign(c: LeafletCampaign) -> dict[str, Any]:
    return {
        "code": c.code,
        "name": c.name,
        "name_en": c.name_en,
        "topic": c.topic,
        "starts_on": c.starts_on.isoformat(),
        "ends_on": c.ends_on.isoformat() if c.ends_on else None,
        "target": c.target,
        "active": c.retired_at is None,
    }


def present_distribution(d: LeafletDistribution) -> dict[str, Any]:
    return {
        "id": d.id,
        "count": d.count,
        "lat": d.lat,
        "lon": d.lon,
        "handed_at": d.handed_at.isoformat(),
    }


@router.get("/leaflets/campaigns", summary="Leaflet campaigns under way (administrators: all)")
def list_campaigns(db: DbSession, user: Reader) -> dict[str, Any]:
    return {"items": [present_campaign(c) for c in service.campaigns(db, everything=user.role == "admin")]}


@router.post("/leaflets/campaigns", summary="Add a campaign, or change the one with this code")
def save_campaign(body: CampaignIn, db: DbSession, user: Organiser) -> dict[str, Any]:
    return present_campaign(service.save_campaign(db, user=user, **body.model_dump()))


@router.post("/leaflets/stock", status_code=201, summary="Leaflets issued to a station, or returned by it")
def move_stock(body: StockMove, db: DbSession, user: Keeper) -> dict[str, Any]:
    move = service.move_stock(
        db,
        user=user,
        campaign_code=body.campaign,
        station_code=body.station,
        kind=body.kind,
        count=body.count,
        note=body.note,
    )
    left = service.station_stock(db, campaign_id=move.campaign_id, station_id=move.station_id)
    return {"id": move.id, "kind": move.kind, "count": move.count, "left": left}


@router.post(
    "/me/leaflets",
    status_code=201,
    summary="Log leaflets I handed out (the same Idempotency-Key again returns the first, 200)",
)
def hand_out(
    body: HandOut,
    response: Response,
    db: DbSession,
    user: Distributor,
    settings: SettingsDep,
    idempotency_key: Annotated[str, Header(min_length=8, max_length=64)],
) -> dict[str, Any]:
    lat, lon = to_wgs84(body.lat, body.lon, body.crs)
    row, new = service.hand_out(
        db,
        rider=user,
        campaign_code=body.campaign,
        count=body.count,
        lat=lat,
        lon=lon,
        handed_at=body.handed_at,
        idempotency_key=idempotency_key,
        timezone=settings.timezone,
    )
    if not new:
        response.status_code = 200
    return present_distribution(row)


@router.get("/me/leaflets", summary="What I handed out")
def my_leaflets(db: DbSession, user: Distributor) -> dict[str, Any]:
    return {
        "total": service.my_total(db, rider=user),
        "items": [present_distribution(d) for d in service.my_distributions(db, rider=user)],
    }


@router.get("/leaflets/totals", summary="Leaflets handed out: per campaign, station, community, week; the map")
def totals(
    db: DbSession,
    user: Watcher,
    settings: SettingsDep,
    campaign: Annotated[str | None, Query(max_length=64)] = None,
    start: Annotated[UtcDateTime | None, Query(alias="from")] = None,
    end: Annotated[UtcDateTime | None, Query(alias="to")] = None,
) -> dict[str, Any]:
    found = service.totals(db, user=user, campaign_code=campaign, start=start, end=end, timezone=settings.timezone)
    return {
        "programme_total": service.programme_total(db),
        "total": found.total,
        "by_campaign": found.by_campaign,
        "by_station": found.by_station,
        "by_community": found.by_community,
        "by_week": found.by_week,
        "top_riders": [{"name": n, "count": c} for n, c in found.top_riders],
        "stock": found.stock,
        "cells": [{"cell": c["cell"], "count": c["count"]} for c in found.cells],
    }
