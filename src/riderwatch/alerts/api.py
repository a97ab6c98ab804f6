"""Alerts under /api/v1 (publish, update, cancel, preview, acknowledge, the command centre's view of who
received them) and, without login, the public ones as CAP 1.2 at /alerts/{id}.cap with an Atom index at
/alerts/feed.atom."""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.alerts import cap, service
from riderwatch.alerts.schemas import AlertCancel, AlertCreate, AlertUpdate
from riderwatch.deps import DbSession, PathId, require
from riderwatch.errors import N_, NotFound
from riderwatch.infra.clock import utcnow
from riderwatch.models import Alert, User

router = APIRouter(prefix="/api/v1", tags=["alerts"])
public = APIRouter(tags=["alerts"])

Publisher = Annotated[User, Depends(require("alert.publish"))]
Receiver = Annotated[User, Depends(require("alert.receive"))]
Reader = Annotated[User, Depends(require("alert.read"))]
FEED_SIZE = 50


def _reach(found: service.Reach) -> dict[str, Any]:
    return {
        "riders": len(dict(found.riders)),
        "without_position": found.without_position,
        "positions": [[lat, lon] for lat, lon in found.positions],
    }


def _with_counts(db: Session, alerts: list[Alert]) -> list[dict[str, Any]]:
    counted = service.counts(db, [a.id for a in alerts])
    return [
        {**service.present(a), "received": counted.get(a.id, (0, 0))[0], "acknowledged": counted.get(a.id, (0, 0))[1]}
        for a in alerts
    ]


@router.post("/alerts", status_code=201, summary="Publish an alert to the riders of its audience")
def publish(request: Request, body: AlertCreate, db: DbSession, user: Publisher) -> dict[str, Any]:
    needs = request.app.state.settings.alert_extreme_needs_approval
    alert, found = service.publish(db, sender=user, values=body.model_dump(), extreme_needs_approval=needs)
    return {**service.present(alert), "reach": _reach(found)}


@router.post("/alerts/preview", summary="Whom an alert would reach if published now (nothing is stored)")
def preview(body: AlertCreate, db: DbSession, user: Publisher) -> dict[str, Any]:
    return _reach(service.preview(db, sender=user, values=body.model_dump()))


@router.get("/alerts", summary="Alerts: the command centre's newest versions, or a rider's valid ones")
def list_alerts(db: DbSession, user: Reader) -> dict[str, Any]:
    if user.role == "rider":
        return {
            "items": [
                {**service.present(a), "acknowledged": r.acknowledged_at is not None}
                for a, r in service.valid_for_rider(db, rider_id=user.id)
            ]
        }
    return {"items": _with_counts(db, service.listing(db))}


@router.get("/alerts/{alert_id}", summary="An alert version, with who received and acknowledged it")
def get_alert(alert_id: PathId, db: DbSession, user: Reader) -> dict[str, Any]:
    alert = service.alert_of(db, alert_id)
    if user.role == "rider":
        receipt = service.receipt_of(db, alert_id=alert_id, rider_id=user.id)
        if receipt is None:
            raise NotFound(N_("no alert %(id)d"), id=alert_id)
        return {**service.present(alert), "acknowledged": receipt.acknowledged_at is not None}
    shown = _with_counts(db, [alert])[0]
    shown["versions"] = [v.id for v in service.chain(db, alert)]
    shown["sightings"] = [
        {
            "clue_id": c.id,
            "category": c.category_code,
            "reported_at": c.reported_at.isoformat(),
            "lat": c.lat,
            "lon": c.lon,
        }
        for c in service.sightings(db, alert)
    ]
    shown["receipts"] = [
        {
            "rider": name,
            "reason": r.reason,
            "targeted_at": r.targeted_at.isoformat(),
            "acknowledged_at": r.acknowledged_at.isoformat() if r.acknowledged_at else None,
        }
        for r, name in service.receipts(db, alert_id)
    ]
    return shown


@router.post("/alerts/{alert_id}/update", status_code=201, summary="Publish an update of an alert (a new version)")
def update(alert_id: PathId, body: AlertUpdate, db: DbSession, user: Publisher) -> dict[str, Any]:
    version, found = service.revise(
        db, sender=user, alert_id=alert_id, msg_type="Update", values=body.model_dump(exclude_none=True)
    )
    return {**service.present(version), "reach": _reach(found)}


@router.post("/alerts/{alert_id}/cancel", status_code=201, summary="Cancel an alert (a new version, msgType Cancel)")
def cancel(alert_id: PathId, body: AlertCancel, db: DbSession, user: Publisher) -> dict[str, Any]:
    version, found = service.revise(
        db, sender=user, alert_id=alert_id, msg_type="Cancel", values=body.model_dump(exclude_none=True)
    )
    return {**service.present(version), "reach": _reach(found)}


@router.post("/alerts/{alert_id}/approve", summary="Approve an Extreme alert another dispatcher sent (it is published)")
def approve(alert_id: PathId, db: DbSession, user: Publisher) -> dict[str, Any]:
    alert, found = service.approve(db, approver=user, alert_id=alert_id)
    return {**service.present(alert), "reach": _reach(found)}


@router.post("/alerts/{alert_id}/ack", summary="I have seen this alert (a rider)")
def acknowledge(alert_id: PathId, db: DbSession, user: Receiver) -> dict[str, Any]:
    receipt = service.acknowledge(db, rider=user, alert_id=alert_id)
    assert receipt.acknowledged_at is not None
    return {"alert_id": alert_id, "acknowledged_at": receipt.acknowledged_at.isoformat()}


# --- CAP 1.2 and Atom, for any CAP consumer (public alerts only) ------------------------------------------


def _public(db: Session, alert_id: int) -> Alert:
    alert = db.get(Alert, alert_id)
    if alert is None or alert.pending or alert.scope != "Public" or alert.status not in ("Actual", "Exercise", "Test"):
        raise NotFound(N_("no public alert %(id)d"), id=alert_id)
    return alert


@public.get(
    "/alerts/feed.atom",
    summary="The public alerts as an Atom feed, each linking its CAP 1.2 document",
    response_class=Response,
    responses={200: {"content": {"application/atom+xml": {}}}},
)
def feed(request: Request, db: DbSession) -> Response:
    zone = ZoneInfo(request.app.state.settings.timezone)
    alerts = [
        a
        for a in db.scalars(
            select(Alert)
            .where(Alert.scope == "Public", Alert.status.in_(("Actual", "Exercise", "Test")), Alert.pending.is_(False))
            .order_by(Alert.sent_at.desc(), Alert.id.desc())
            .limit(FEED_SIZE)
        )
    ]
    updated = alerts[0].sent_at if alerts else utcnow()
    base = str(request.base_url).rstrip("/")
    body = cap.atom_feed(alerts, base_url=base, updated=updated, title="RiderWatch 预警 / alerts", zone=zone)
    return Response(body, media_type="application/atom+xml")


@public.get(
    "/alerts/{alert_id}.cap",
    summary="A public alert version as a CAP 1.2 document",
    response_class=Response,
    responses={200: {"content": {cap.CAP_TYPE: {}}}},
)
def cap_document(request: Request, alert_id: PathId, db: DbSession) -> Response:
    alert = _public(db, alert_id)
    zone = ZoneInfo(request.app.state.settings.timezone)
    earlier = service.chain(db, alert)
    earlier = earlier[: earlier.index(alert)]
    # The command centre sends, not a named dispatcher (the feed is public).
    body = cap.cap_document(alert, earlier, sender_name="RiderWatch 联防指挥中心", zone=zone)
    return Response(body, media_type=cap.CAP_TYPE)
