"""The alert pages: the command centre's list, the composer (an area from the district, a circle or a
drawn polygon; whom it would reach, shown before publishing) and the board of an alert (who received
and acknowledged it, update, cancel); a rider's valid alerts, acknowledged with one tap, arriving live.

Thin like the other pages: the rules are alerts.service, behind /api/v1/alerts too.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch import policy
from riderwatch.alerts import service
from riderwatch.alerts.schemas import AlertCreate, AlertUpdate
from riderwatch.clues.present import category_name
from riderwatch.deps import DbSession, PathId, require, require_any
from riderwatch.errors import N_, DomainError, InvalidInput, NotFound
from riderwatch.infra.clock import utcnow
from riderwatch.models import Category, Community, Grid, Station, User, Zone
from riderwatch.web.forms import (
    LONG,
    done_message,
    form_text,
    formatter,
    in_reader_language,
    labels_in,
    refusal,
    see_other,
)
from riderwatch.web.labels import ROLE_LABELS
from riderwatch.web.templating import render

router = APIRouter(include_in_schema=False)

Publisher = Annotated[User, Depends(require("alert.publish"))]
Receiver = Annotated[User, Depends(require("alert.receive"))]
PartyReader = Annotated[User, Depends(require_any("alert.publish", "alert.party"))]

KIND_LABELS = {
    "warning": N_("Early warning"),
    "publicity": N_("Prevention publicity"),
    "assistance": N_("Request for help"),
}
CATEGORY_LABELS = {
    "Security": N_("Public security"),
    "Safety": N_("Safety"),
    "Rescue": N_("Rescue (missing person)"),
    "Fire": N_("Fire"),
    "Transport": N_("Traffic"),
    "Health": N_("Health"),
    "Met": N_("Weather"),
    "Geo": N_("Geological"),
    "Env": N_("Environment"),
    "Infra": N_("Infrastructure"),
    "CBRNE": N_("Hazardous materials"),
    "Other": N_("Other"),
}
URGENCY_LABELS = {
    "Immediate": N_("Immediate"),
    "Expected": N_("Within the hour"),
    "Future": N_("Later"),
    "Past": N_("Over"),
    "Unknown": N_("Unknown"),
}
SEVERITY_LABELS = {
    "Extreme": N_("Extreme"),
    "Severe": N_("Severe"),
    "Moderate": N_("Moderate"),
    "Minor": N_("Minor"),
    "Unknown": N_("Unknown"),
}
CERTAINTY_LABELS = {
    "Observed": N_("Observed"),
    "Likely": N_("Likely"),
    "Possible": N_("Possible"),
    "Unlikely": N_("Unlikely"),
    "Unknown": N_("Unknown"),
}
AUDIENCE_LABELS = {
    "area": N_("Riders on duty in the area (and who ride in while it is valid)"),
    "stations": N_("The riders of chosen stations"),
    "all": N_("All riders"),
}
MSG_LABELS = {"Alert": N_("New"), "Update": N_("Update"), "Cancel": N_("Cancelled")}
HOURS = (1, 2, 4, 8, 12, 24, 48, 72, 168)
DONE = {
    "published": N_("Published: the riders of its audience have it now."),
    "submitted": N_("An Extreme alert waits for a second person's approval: it reaches nobody until then."),
    "approved": N_("Approved and published: the riders of its audience have it now."),
    "updated": N_("The update was published to everyone who had the alert."),
    "cancelled": N_("The alert was cancelled; everyone who had it was told."),
    "acknowledged": N_("Thank you: the command centre sees that you have read it."),
}


def _labels(request: Request) -> dict[str, dict[str, str]]:
    return {
        "kind": labels_in(request, KIND_LABELS),
        "category": labels_in(request, CATEGORY_LABELS),
        "urgency": labels_in(request, URGENCY_LABELS),
        "severity": labels_in(request, SEVERITY_LABELS),
        "certainty": labels_in(request, CERTAINTY_LABELS),
        "audience": labels_in(request, AUDIENCE_LABELS),
        "msg": labels_in(request, MSG_LABELS),
        "parties": labels_in(request, {p: ROLE_LABELS[p] for p in service.PARTIES}),
    }


# --- the command centre ------------------------------------------------------------------------------------


@router.get("/alerts")
def alerts_page(request: Request, db: DbSession, _user: Publisher) -> HTMLResponse:
    alerts = service.listing(db)
    counted = service.counts(db, [a.id for a in alerts])
    now = utcnow()
    rows = [
        {"alert": a, "counts": counted.get(a.id, (0, 0)), "valid": a.expires > now and a.msg_type != "Cancel"}
        for a in alerts
    ]
    return render(request, "alerts/list.html", {"rows": rows, "labels": _labels(request)})


def _area_choices(db: Session) -> list[tuple[str, list[tuple[str, str]]]]:
    out = []
    for kind, model in (("community", Community), ("grid", Grid), ("zone", Zone)):
        rows = db.execute(select(model.code, model.name).where(model.retired_at.is_(None)).order_by(model.code)).all()
        out.append((kind, [(f"{kind}:{code}", name) for code, name in rows]))
    return out


def _district_features(db: Session) -> dict[str, Any]:
    features = []
    for kind, model in (("communities", Community), ("zones", Zone)):
        for code, name, boundary in db.execute(
            select(model.code, model.name, model.boundary).where(model.retired_at.is_(None))
        ):
            if boundary:
                features.append(
                    {"type": "Feature", "geometry": boundary, "properties": {"kind": kind, "code": code, "name": name}}
                )
    return {"type": "FeatureCollection", "features": features}


def _reach_features(request: Request, found: service.Reach) -> list[dict[str, Any]]:
    """The previewed area and where the riders it would reach are, for the composer's map: a dot per rider,
    placed to about 100 m and unnamed (the dispatcher sees where, not who)."""
    _ = formatter(request)._
    features: list[dict[str, Any]] = []
    if found.area is not None:
        props = {"kind": "preview", "code": "", "name": _("The alert's area")}
        features.append({"type": "Feature", "geometry": found.area, "properties": props})
    for lat, lon in found.positions:
        point = {"type": "Point", "coordinates": [round(lon, 3), round(lat, 3)]}
        features.append(
            {
                "type": "Feature",
                "geometry": point,
                "properties": {"kind": "rider", "code": "", "name": _("A rider on duty")},
            }
        )
    return features


BLANK = {
    "kind": "warning",
    "event": "",
    "headline": "",
    "description": "",
    "instruction": "",
    "headline_en": "",
    "category": "Security",
    "urgency": "Immediate",
    "severity": "Severe",
    "certainty": "Likely",
    "hours": "4",
    "area_mode": "stored",
    "area": "",
    "polygon": "",
    "lat": "",
    "lon": "",
    "radius_m": "500",
    "audience": "area",
    "stations": [],
    "parties": [],
}


def _composer(
    request: Request, db: Session, values: dict[str, Any], *, status: int = 200, **extra: Any
) -> HTMLResponse:
    stations = db.execute(
        select(Station.code, Station.name).where(Station.retired_at.is_(None)).order_by(Station.code)
    ).all()
    context = {
        "values": values,
        "labels": _labels(request),
        "hours": HOURS,
        "area_choices": _area_choices(db),
        "area_kind_labels": {"community": N_("Communities"), "grid": N_("Grids"), "zone": N_("Zones")},
        "stations": stations,
        "map_areas": _district_features(db),
        "reach": None,
        **extra,
    }
    if extra.get("reach_map"):
        context["map_areas"]["features"] += extra["reach_map"]
    return render(request, "alerts/new.html", context, status=status)


@router.get("/alerts/new")
def new_alert_page(request: Request, db: DbSession, _user: Publisher) -> HTMLResponse:
    return _composer(request, db, dict(BLANK))


def _area_from_form(values: dict[str, Any]) -> dict[str, Any] | None:
    mode = values["area_mode"]
    if mode == "stored":
        kind, _, code = str(values["area"]).partition(":")
        return {kind: code} if kind in ("community", "grid", "zone") and code else None
    if mode == "circle":
        try:
            lat, lon, radius = float(values["lat"]), float(values["lon"]), float(values["radius_m"])
        except ValueError as exc:
            raise InvalidInput(N_("tap the map for the circle's centre, and give its radius in metres")) from exc
        return {"type": "Circle", "center": [lon, lat], "radius_m": radius}
    if mode == "polygon":
        if not values["polygon"]:
            raise InvalidInput(N_("draw the area on the map: tap its corners"))
        try:
            parsed: dict[str, Any] = json.loads(values["polygon"])
        except ValueError as exc:
            raise InvalidInput(N_("the drawn area could not be read; draw it again")) from exc
        return parsed
    return None


@router.post("/alerts")
async def publish(request: Request, db: DbSession, user: Publisher) -> Response:
    form = await request.form(max_fields=60)
    values: dict[str, Any] = {key: (str(form.get(key) or "").strip()[:LONG]) for key in BLANK if key != "stations"}
    values["stations"] = [str(s) for s in form.getlist("stations")][:100]
    values["parties"] = [str(p) for p in form.getlist("parties")][:3]
    preview_only = form.get("action") == "preview"
    # The database work in a worker thread, as for a plain `def` route (the form had to be awaited).
    return await anyio.to_thread.run_sync(_publish, request, db, user, values, preview_only)


def _publish(request: Request, db: Session, user: User, values: dict[str, Any], preview_only: bool) -> Response:
    try:
        hours = int(values["hours"]) if values["hours"] in {str(h) for h in HOURS} else 4
        fields = (
            "kind",
            "event",
            "headline",
            "description",
            "instruction",
            "category",
            "urgency",
            "severity",
            "certainty",
        )
        body = AlertCreate.model_validate(
            {
                **{k: values[k] for k in fields},
                "headline_en": values["headline_en"] or None,
                "expires": utcnow() + timedelta(hours=hours),
                "area": _area_from_form(values) if values["audience"] == "area" else None,
                "audience": values["audience"],
                "stations": values["stations"],
                "parties": values["parties"],
            }
        )
        if preview_only:
            found = service.preview(db, sender=user, values=body.model_dump())
            return _composer(request, db, values, reach=found, reach_map=_reach_features(request, found))
        needs = request.app.state.settings.alert_extreme_needs_approval
        alert, _found = service.publish(db, sender=user, values=body.model_dump(), extreme_needs_approval=needs)
    except (ValidationError, DomainError) as exc:
        message, status = refusal(request, exc)
        return _composer(request, db, values, status=status, **message)
    return see_other(f"/alerts/{alert.id}?done={'submitted' if alert.pending else 'published'}")


def _board(
    request: Request, db: Session, user: User, alert_id: int, *, status: int = 200, **extra: Any
) -> HTMLResponse:
    alert = service.alert_of(db, alert_id)
    latest = service.latest_version(db, alert)
    now = utcnow()
    receipts = service.receipts(db, alert.id)
    locale = formatter(request).locale
    names = {c.code: category_name(c, locale) for c in db.scalars(select(Category))}
    context = {
        "alert": alert,
        "latest": latest,
        "versions": service.chain(db, alert),
        "receipts": receipts,
        "acknowledged": sum(1 for r, _name in receipts if r.acknowledged_at is not None),
        "valid": latest.id == alert.id and alert.expires > now and alert.msg_type != "Cancel",
        "may_approve": service.may_approve(alert, user),
        "command_centre": policy.has_permission(user, "alert.publish"),
        "labels": _labels(request),
        "area": service.present(alert).get("area"),
        "sightings": [(c, names.get(c.category_code, c.category_code)) for c in service.sightings(db, alert)],
        **extra,
    }
    return render(request, "alerts/board.html", context, status=status)


@router.get("/alerts/{alert_id}")
def board_page(request: Request, alert_id: PathId, db: DbSession, user: PartyReader, done: str = "") -> HTMLResponse:
    """The command centre's board; another party's user (an alert that also goes to them) reads the alert
    alone: not who received it, not the sightings, no changes."""
    alert = service.alert_of(db, alert_id)
    if not policy.may_read_alert(user, list(alert.audience_parties or [])):
        raise NotFound(N_("no alert %(id)d"), id=alert_id)
    return _board(request, db, user, alert_id, **done_message(request, done, DONE))


@router.post("/alerts/{alert_id}/update")
def update(
    request: Request,
    alert_id: PathId,
    db: DbSession,
    user: Publisher,
    headline: Annotated[str, form_text()] = "",
    description: Annotated[str, form_text(LONG)] = "",
    instruction: Annotated[str, form_text(LONG)] = "",
    severity: Annotated[str, form_text()] = "",
    hours: Annotated[str, form_text()] = "",
) -> Response:
    try:
        changes: dict[str, Any] = {"headline": headline.strip() or None, "description": description.strip() or None}
        changes["instruction"] = instruction.strip() or None
        changes["severity"] = severity or None
        if hours in {str(h) for h in HOURS}:
            changes["expires"] = utcnow() + timedelta(hours=int(hours))
        body = AlertUpdate.model_validate(changes)
        version, _found = service.revise(
            db, sender=user, alert_id=alert_id, msg_type="Update", values=body.model_dump(exclude_none=True)
        )
    except (ValidationError, DomainError) as exc:
        message, status = refusal(request, exc)
        return _board(request, db, user, alert_id, status=status, **message)
    return see_other(f"/alerts/{version.id}?done=updated")


@router.post("/alerts/{alert_id}/cancel")
def cancel(
    request: Request, alert_id: PathId, db: DbSession, user: Publisher, headline: Annotated[str, form_text()] = ""
) -> Response:
    try:
        values = {"headline": headline.strip()} if headline.strip() else {}
        version, _found = service.revise(db, sender=user, alert_id=alert_id, msg_type="Cancel", values=values)
    except DomainError as exc:
        message, status = refusal(request, exc)
        return _board(request, db, user, alert_id, status=status, **message)
    return see_other(f"/alerts/{version.id}?done=cancelled")


@router.post("/alerts/{alert_id}/approve")
def approve(request: Request, alert_id: PathId, db: DbSession, user: Publisher) -> Response:
    try:
        service.approve(db, approver=user, alert_id=alert_id)
    except DomainError as exc:
        message, status = refusal(request, exc)
        return _board(request, db, user, alert_id, status=status, **message)
    return see_other(f"/alerts/{alert_id}?done=approved")


# --- a rider's alerts -----------------------------------------------------------------------------------


@router.get("/my/alerts")
def my_alerts(request: Request, db: DbSession, user: Receiver, done: str = "") -> HTMLResponse:
    rows = [
        {
            "alert": alert,
            "headline": in_reader_language(request, alert.headline, alert.headline_en),
            "description": in_reader_language(request, alert.description, alert.description_en),
            "instruction": in_reader_language(request, alert.instruction, alert.instruction_en),
            "acknowledged": receipt.acknowledged_at is not None,
        }
        for alert, receipt in service.valid_for_rider(db, rider_id=user.id)
    ]
    context = {"rows": rows, "labels": _labels(request), **done_message(request, done, DONE)}
    return render(request, "alerts/mine.html", context)


@router.post("/my/alerts/{alert_id}/ack")
def acknowledge(alert_id: PathId, db: DbSession, user: Receiver) -> Response:
    service.acknowledge(db, rider=user, alert_id=alert_id)
    return see_other("/my/alerts?done=acknowledged")
