"""The rider's location pages: consent, duty, Traccar Client devices, and what was collected about them."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from riderwatch.deps import DbSession, SettingsDep, public_base, require
from riderwatch.errors import DomainError, InvalidInput
from riderwatch.models import User
from riderwatch.tracking import duty, views
from riderwatch.tracking.schemas import DeviceBody
from riderwatch.web.forms import formatter, see_other
from riderwatch.web.labels import N_
from riderwatch.web.templating import render

router = APIRouter(include_in_schema=False)

RiderSelf = Annotated[User, Depends(require("tracking.self"))]

SHIFT_END_LABELS: dict[str, str] = {
    "rider": N_("ended by you"),
    "consent_withdrawn": N_("ended when consent was withdrawn"),
    "inactive": N_("ended: account or membership no longer active"),
}
# Why a phone's point was not stored, in the rider's words (tracking.ingest.REASONS has the codes).
REFUSAL_LABELS: dict[str, str] = {
    "invalid": N_("the phone sent something that is not a position"),
    "bad_coordinates": N_("impossible coordinates"),
    "future": N_("a time in the future: check the phone's clock"),
    "too_old": N_("sent too late: the position was too old to take"),
    "no_consent": N_("taken while you had not consented"),
    "off_duty": N_("taken while you were off duty"),
    "implausible_jump": N_("too far from the point before (GPS error)"),
    "unknown_rider": N_("sent for an unknown rider"),
    "other_platform": N_("sent by another platform"),
    "rider_not_allowed": N_("sent for someone else"),
}
DONE_MESSAGES: dict[str, str] = {
    "consent": N_("Thank you. Your consent is recorded; you can go on duty now."),
    "on": N_("You are on duty. Keep this page open to share your position, or use Traccar Client."),
    "off": N_("You are off duty. No positions are taken until you go on duty again."),
    "device": N_("The device is registered. Enter its identifier and the server address below in Traccar Client."),
    "device-removed": N_("The device was removed; positions from it are refused from now on."),
}
RECENT_POINTS = 100


# --- the rider: consent, duty, devices ---------------------------------------------------------


def _duty_context(request: Request, db: DbSession, user: User) -> dict[str, Any]:
    settings = request.app.state.settings
    data = views.collected_data(db, rider_user=user, recent=0)
    return {
        "consent": data.rider.location_consent,
        "consent_since": data.rider.location_consent_at,
        "consent_version": settings.location_consent_text_version,
        "membership": data.rider.status,
        "on_duty": any(s.ended_at is None for s in data.shifts),
        "shift": next((s for s in data.shifts if s.ended_at is None), None),
        "devices": data.devices,
        "position_count": data.position_count,
        "retention_days": settings.position_retention_days,
        "osmand_url": public_base(request) + "/osmand",
        "device_value": "",
        "label_value": "",
        "new_device": "",
    }


def _duty_page(request: Request, db: DbSession, user: User, *, status: int = 200, **extra: Any) -> HTMLResponse:
    context = _duty_context(request, db, user)
    context.update(extra)
    return render(request, "rider/duty.html", context, status=status)


def _refused(request: Request, db: DbSession, user: User, exc: DomainError | ValidationError, **extra: Any) -> Response:
    _ = formatter(request)._
    if isinstance(exc, ValidationError):
        detail = "; ".join(e["msg"] for e in exc.errors())
        status = 422
    else:
        detail, status = exc.translated(_), exc.status
    return _duty_page(
        request,
        db,
        user,
        status=status,
        message=_("Not done."),
        message_detail=detail,
        message_kind="error",
        **extra,
    )


@router.get("/duty")
def duty_page(
    request: Request,
    db: DbSession,
    user: RiderSelf,
    done: str = "",
    deleted: int = 0,
    device: Annotated[str, Query(max_length=64)] = "",
) -> HTMLResponse:
    _ = formatter(request)._
    extra: dict[str, Any] = {}
    if done in DONE_MESSAGES:
        extra = {"message": _(DONE_MESSAGES[done]), "message_kind": "success"}
    elif done == "withdrawn":
        text = _("Your consent is withdrawn and you are off duty. %(n)d stored positions were deleted.")
        extra = {"message": text % {"n": max(deleted, 0)}, "message_kind": "success"}
    # The device just registered is picked out in the list (only one of the rider's own, never any text).
    return _duty_page(request, db, user, new_device=device, **extra)


@router.post("/duty/consent")
def give_consent(
    request: Request,
    db: DbSession,
    settings: SettingsDep,
    user: RiderSelf,
    agree: Annotated[str, Form(max_length=10)] = "",
    text_version: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    current = settings.location_consent_text_version
    try:
        if agree != "yes":
            raise InvalidInput(N_("tick the box to agree; nothing is shared without your consent"))
        if text_version != current:
            raise InvalidInput(
                N_("the consent text is now version %(version)s; read it again and agree"), version=current
            )
        duty.set_location_consent(db, rider_user=user, granted=True, text_version=current)
    except DomainError as exc:
        return _refused(request, db, user, exc)
    return see_other("/duty?done=consent")


@router.get("/duty/withdraw")
def withdraw_page(request: Request, db: DbSession, user: RiderSelf) -> HTMLResponse:
    context = _duty_context(request, db, user)
    return render(request, "rider/withdraw.html", context)


@router.post("/duty/withdraw")
def withdraw_consent(
    request: Request,
    db: DbSession,
    settings: SettingsDep,
    user: RiderSelf,
    confirm: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    if confirm != "yes":
        # Only the confirmation page's button withdraws: a stray post must not delete the data.
        return see_other("/duty/withdraw")
    state = duty.set_location_consent(
        db, rider_user=user, granted=False, text_version=settings.location_consent_text_version
    )
    return see_other(f"/duty?done=withdrawn&deleted={state.deleted_positions}")


@router.post("/duty/state")
def set_duty(
    request: Request,
    db: DbSession,
    user: RiderSelf,
    on_duty: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    if on_duty not in ("yes", "no"):
        return _refused(request, db, user, InvalidInput(N_("on_duty must be yes or no")))
    try:
        duty.set_duty(db, rider_user=user, on_duty=on_duty == "yes")
    except DomainError as exc:
        return _refused(request, db, user, exc)
    return see_other(f"/duty?done={'on' if on_duty == 'yes' else 'off'}")


@router.post("/duty/devices")
def add_device(
    request: Request,
    db: DbSession,
    user: RiderSelf,
    device_id: Annotated[str, Form(max_length=200)] = "",
    label: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    try:
        body = DeviceBody(device_id=device_id.strip() or None, label=label.strip() or None)
        device, _created = duty.register_device(db, rider_user=user, device_id=body.device_id, label=body.label)
    except (ValidationError, DomainError) as exc:
        return _refused(request, db, user, exc, device_value=device_id, label_value=label)
    return see_other(f"/duty?done=device&device={quote(device.device_id)}#devices")


@router.post("/duty/devices/{device_id}/remove")
def remove_device(
    request: Request, db: DbSession, user: RiderSelf, device_id: Annotated[str, Path(max_length=64)]
) -> Response:
    try:
        duty.remove_device(db, rider_user=user, device_id=device_id)
    except DomainError as exc:
        return _refused(request, db, user, exc)
    return see_other("/duty?done=device-removed")


# --- the rider: what was collected -------------------------------------------------------------


@router.get("/my/data")
def my_data(request: Request, db: DbSession, settings: SettingsDep, user: RiderSelf) -> HTMLResponse:
    data = views.collected_data(db, rider_user=user, recent=RECENT_POINTS)
    fmt = formatter(request)
    points = [
        {"lat": p.lat, "lon": p.lon, "ts": fmt.time(p.ts), "accuracy_m": p.accuracy_m}
        for p in reversed(data.recent)  # oldest first: the line is drawn in the order they were taken
    ]
    context = {
        "data": data,
        "on_duty": any(s.ended_at is None for s in data.shifts),
        "retention_days": settings.position_retention_days,
        "points": points,
        "shift_end_labels": SHIFT_END_LABELS,
        "refusal_labels": REFUSAL_LABELS,
    }
    return render(request, "rider/my_data.html", context)
