"""Position routes: the rider's own consent, duty, devices and data; batch ingest; tracks; OsmAnd."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route

from riderwatch.config import Settings
from riderwatch.db import unit_of_work
from riderwatch.deps import DbSession, SettingsDep, client_id, require, writes_on_read
from riderwatch.errors import N_, DomainError, InvalidInput, NotFound, PayloadTooLarge, UnsupportedMedia
from riderwatch.infra.clock import utcnow
from riderwatch.infra.fields import UtcDateTime
from riderwatch.infra.groupcommit import GroupCommit
from riderwatch.infra.throttle import MissThrottle
from riderwatch.models import Position, User
from riderwatch.tracking import duty, service, views
from riderwatch.tracking.ingest import REASONS, IngestResult, IngestRules
from riderwatch.tracking.osmand import OsmAndError, Report, parse_request
from riderwatch.tracking.schemas import (
    PING_BATCH_SCHEMA,
    CollectedRead,
    ConsentBody,
    ConsentRead,
    ConsentRecordRead,
    DeviceBody,
    DeviceRead,
    DutyBody,
    DutyRead,
    IngestRead,
    PointRead,
    RefusalDayRead,
    RefusalRead,
    RefusalTotalsRead,
    RejectionRead,
    RiderRefusalRead,
    ShiftRead,
    TrackViewRead,
    parse_pings,
)

api_router = APIRouter(prefix="/api/v1", tags=["positions"])

RiderSelf = Annotated[User, Depends(require("tracking.self"))]
Dispatcher = Annotated[User, Depends(require("tracking.view_positions"))]
MAX_TRACK_POINTS = 20_000
MAX_OSMAND_BYTES = 1024 * 1024


@api_router.put("/me/location-consent", response_model=ConsentRead, summary="Give or withdraw location consent (rider)")
def put_consent(body: ConsentBody, db: DbSession, user: RiderSelf, settings: SettingsDep) -> ConsentRead:
    current = settings.location_consent_text_version
    if body.granted and body.text_version is not None and body.text_version != current:
        raise InvalidInput(
            N_("the consent text is now version %(version)s; show it to the rider and ask again"), version=current
        )
    state = duty.set_location_consent(db, rider_user=user, granted=body.granted, text_version=current)
    return ConsentRead(
        granted=state.granted,
        text_version=state.text_version,
        since=state.since,
        on_duty=state.on_duty,
        deleted_positions=state.deleted_positions,
    )


@api_router.put("/me/duty", response_model=DutyRead, summary="Go on or off duty (rider)")
def put_duty(body: DutyBody, db: DbSession, user: RiderSelf, settings: SettingsDep) -> DutyRead:
    rules = IngestRules.from_settings(settings)
    state = duty.set_duty(
        db, rider_user=user, on_duty=body.on_duty, at=body.at, max_age=rules.max_age, max_future=rules.max_future
    )
    shift = state.shift
    return DutyRead(
        on_duty=shift is not None,
        shift=ShiftRead.model_validate(shift) if shift else None,
        deleted_positions=state.deleted_positions,
    )


@api_router.post(
    "/me/devices",
    response_model=DeviceRead,
    status_code=201,
    summary="Register a Traccar Client device id, or have one issued (rider)",
    responses={200: {"description": "already registered to the caller", "model": DeviceRead}},
)
def post_device(body: DeviceBody, db: DbSession, user: RiderSelf, response: Response) -> DeviceRead:
    device, created = duty.register_device(db, rider_user=user, device_id=body.device_id, label=body.label)
    if not created:
        response.status_code = 200
    return DeviceRead.model_validate(device)


@api_router.delete("/me/devices/{device_id}", status_code=204, summary="Unregister one of the caller's devices")
def delete_device(device_id: Annotated[str, Path(max_length=64)], db: DbSession, user: RiderSelf) -> Response:
    duty.remove_device(db, rider_user=user, device_id=device_id)
    return Response(status_code=204)


@api_router.get("/me/positions", response_model=CollectedRead, summary="What RiderWatch holds about my location")
def my_positions(db: DbSession, user: RiderSelf, settings: SettingsDep) -> CollectedRead:
    data = views.collected_data(db, rider_user=user)
    return CollectedRead(
        consent=data.rider.location_consent,
        consent_text_version=data.rider.location_consent_text_version,
        on_duty=any(s.ended_at is None for s in data.shifts),
        retention_days=settings.position_retention_days,
        consents=[ConsentRecordRead.model_validate(c) for c in data.consents],
        shifts=[ShiftRead.model_validate(s) for s in data.shifts],
        devices=[DeviceRead.model_validate(d) for d in data.devices],
        position_count=data.position_count,
        first_position_at=data.first_ts,
        last_position_at=data.last_ts,
        recent_positions=[PointRead.model_validate(p) for p in data.recent],
        track_views=[TrackViewRead(at=at, viewer_role=role) for at, role in data.track_views],
        refused_total=sum(r.count for r in data.refusals),
        refusals=[
            RefusalRead(day=r.day, reason=r.reason, count=r.count, detail=views.refusal_detail(r.reason))
            for r in data.refusals
        ],
    )


def _ingest_read(result: IngestResult) -> IngestRead:
    return IngestRead(
        accepted=result.accepted,
        rejected=result.rejected,
        duplicates=result.duplicates,
        rejections=[RejectionRead(index=r.index, reason=r.reason, detail=r.detail) for r in result.rejections],
    )


@api_router.post(
    "/tracking/pings",
    response_model=IngestRead,
    summary="Send positions in bulk (a rider's own, or a platform's riders')",
    responses={413: {"description": "too many pings in one batch"}, 415: {"description": "not application/json"}},
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": PING_BATCH_SCHEMA}}}},
)
async def post_pings(
    request: Request,
    db: DbSession,
    user: Annotated[User, Depends(require("tracking.ingest"))],
    settings: SettingsDep,
) -> IngestRead:
    # The body is read here and decoded and checked in one go (parse_pings: msgspec, or pydantic-core
    # for a batch msgspec refuses) rather than by FastAPI (json.loads, then a model over dicts): for
    # thousands of pings that is several times faster.
    content_type = request.headers.get("content-type", "").lower()
    if content_type and not content_type.startswith("application/json"):  # none at all is read as JSON
        raise UnsupportedMedia(N_("send the pings as application/json"))
    body = await request.body()
    return await run_in_threadpool(_ingest_pings, body, db, user, settings)


def _ingest_pings(body: bytes, db: Session, user: User, settings: Settings) -> IngestRead:
    try:
        pings = parse_pings(body)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False, include_input=False)]
        ) from exc
    if len(pings) > settings.max_pings_per_batch:
        raise PayloadTooLarge(
            N_("at most %(max)d pings per batch; %(n)d were sent"), max=settings.max_pings_per_batch, n=len(pings)
        )
    result = service.ingest_batch(db, sender=user, pings=pings, rules=IngestRules.from_settings(settings))
    return _ingest_read(result)


def _feature(p: Position | views.LivePosition, **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [p.lon, p.lat]},
        "properties": {"ts": p.ts.isoformat(), "speed_mps": p.speed_mps, "heading": p.heading, **props},
    }


@api_router.get("/riders/{username}/track", summary="A rider's track (dispatchers; every view is audited)")
@writes_on_read
def rider_track(
    username: Annotated[str, Path(max_length=64)],
    start: Annotated[UtcDateTime, Query(alias="from", description="ISO 8601 with a timezone")],
    end: Annotated[UtcDateTime, Query(alias="to", description="ISO 8601 with a timezone")],
    db: DbSession,
    user: Dispatcher,
) -> dict[str, Any]:
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInput(N_("'from' and 'to' need a timezone"))
    if end - start > timedelta(days=7):
        raise InvalidInput(N_("a track covers at most 7 days"))
    rider, points = views.get_track(
        db, viewer=user, username=username, start=start, end=end, max_points=MAX_TRACK_POINTS
    )
    return {
        "type": "FeatureCollection",
        "rider": rider.username,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "features": [_feature(p, accuracy_m=p.accuracy_m) for p in points],
    }


@api_router.get("/tracking/live", summary="Last position of each rider on duty (dispatchers; audited)")
@writes_on_read
def live(
    db: DbSession,
    user: Dispatcher,
    settings: SettingsDep,
    minutes: Annotated[int | None, Query(ge=1, le=24 * 60)] = None,
) -> dict[str, Any]:
    within = timedelta(minutes=minutes or settings.live_window_minutes)
    shown = views.live_positions(db, viewer=user, within=within)
    return {
        "type": "FeatureCollection",
        "features": [
            _feature(p, rider=p.rider.username, display_name=p.rider.display_name, rider_id=p.rider.id) for p in shown
        ],
    }


MAX_REFUSAL_DAYS = 92


@api_router.get(
    "/tracking/refusals", response_model=RefusalTotalsRead, summary="Points refused, by reason, day and rider"
)
def refusals(
    db: DbSession,
    user: Dispatcher,
    settings: SettingsDep,
    first: Annotated[date | None, Query(alias="from", description="first day (local), default a week ago")] = None,
    last: Annotated[date | None, Query(alias="to", description="last day (local), default today")] = None,
) -> RefusalTotalsRead:
    today = IngestRules.from_settings(settings).day_of(utcnow())
    last = last or today
    if first is None:
        if last < date.min + timedelta(days=6):
            raise InvalidInput(N_("'to' lies too far back"))
        first = last - timedelta(days=6)
    if (last - first).days >= MAX_REFUSAL_DAYS:
        raise InvalidInput(N_("at most %(max)d days at a time"), max=MAX_REFUSAL_DAYS)
    totals = views.refusal_totals(db, first=first, last=last)
    return RefusalTotalsRead.model_validate(
        {
            "from": totals.first,
            "to": totals.last,
            "total": totals.total,
            "by_reason": totals.by_reason,
            "reasons": {reason: REASONS[reason] for reason in totals.by_reason if reason in REASONS},
            "by_day": [RefusalDayRead(day=d, reason=r, count=n) for d, r, n in totals.by_day],
            "riders": [
                RiderRefusalRead(
                    rider=r.rider.username, display_name=r.rider.display_name, total=r.total, by_reason=r.by_reason
                )
                for r in totals.riders
            ],
        }
    )


# OsmAnd: Traccar Client ignores the path, so everything below /osmand is accepted too. The device
# id stands in for a login, as in Traccar; answers are short plain texts the app can show.
async def osmand(request: Request) -> Response:
    # A plain Starlette endpoint (OSMAND_ROUTES), without FastAPI's dependencies and checks: a phone
    # sends a request per position, and what each request costs is paid thousands of times a second.
    settings: Settings = request.app.state.settings
    misses = _unknown_devices(request)
    client = client_id(request)
    wait = misses.wait(client)
    if wait > 0:
        # Before anything is looked up: while it waits, a guesser learns nothing, not even a hit.
        seconds = math.ceil(wait)
        return PlainTextResponse(
            f"too many unknown device ids from this address; try again in {seconds} s",
            status_code=429,
            headers={"Retry-After": str(seconds)},
        )
    body = await request.body()
    if len(body) > MAX_OSMAND_BYTES:
        return PlainTextResponse("request too large", status_code=413)
    now = utcnow()
    try:
        reports = parse_request(dict(request.query_params), request.headers.get("content-type", ""), body, now=now)
    except OsmAndError as exc:
        return PlainTextResponse(str(exc), status_code=exc.status)
    if len(reports) > settings.max_pings_per_batch:
        return PlainTextResponse("too many positions in one request", status_code=413)
    try:
        # Written with the requests that arrive meanwhile, in one transaction; answered once it committed.
        result = await _osmand_writer(request).submit(reports)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            misses.miss(client)
        return PlainTextResponse(exc.detail, status_code=exc.status)
    if not result.rejections:
        return Response(status_code=200)
    # Every refusal here is final (the same point would be refused again), and Traccar Client
    # retries its oldest point until it gets 200: anything else would jam the phone's queue for
    # ever. So 200, nothing stored, the reasons in a header and the refusals counted for the rider
    # and the desk (docs/adr/0003-osmand-answers-200-for-permanent-refusals.md).
    reasons = list(dict.fromkeys(r.reason for r in result.rejections))
    first = result.rejections[0]
    text = first.detail if len(reports) == 1 else f"{result.rejected} of {len(reports)} refused: {first.detail}"
    return PlainTextResponse(text, status_code=200, headers={REFUSED_HEADER: ",".join(reasons)})


REFUSED_HEADER = "X-RiderWatch-Refused"
# Unknown device ids from one address, per server process: past 10 in 10 minutes each further request
# from it waits 1 s, 2 s, 4 s … (up to 10 minutes) after the latest miss. A phone with a mistyped id
# sends one position every half minute or so, and Traccar Client keeps its points until answered 200.
UNKNOWN_DEVICES_BEFORE_WAITING = 10
UNKNOWN_DEVICES_WINDOW_SECONDS = 600


def _osmand_writer(request: Request) -> GroupCommit[Sequence[Report], IngestResult]:
    """The process's group-commit writer for OsmAnd requests (infra/groupcommit.py)."""
    writer: GroupCommit[Sequence[Report], IngestResult] | None = getattr(request.app.state, "osmand_writer", None)
    if writer is None:
        factory: sessionmaker[Session] = request.app.state.session_factory
        rules = IngestRules.from_settings(request.app.state.settings)

        def write(requests: Sequence[Sequence[Report]]) -> list[IngestResult | NotFound]:
            with unit_of_work(factory) as session:
                return service.ingest_osmand_requests(session, requests=requests, rules=rules)

        writer = request.app.state.osmand_writer = GroupCommit(write)
    return writer


def _unknown_devices(request: Request) -> MissThrottle:
    throttle: MissThrottle | None = getattr(request.app.state, "unknown_devices", None)
    if throttle is None:
        throttle = request.app.state.unknown_devices = MissThrottle(
            threshold=UNKNOWN_DEVICES_BEFORE_WAITING,
            window_seconds=UNKNOWN_DEVICES_WINDOW_SECONDS,
            longest_wait=UNKNOWN_DEVICES_WINDOW_SECONDS,
        )
    return throttle


# The JSON API's router.
router = APIRouter()
router.include_router(api_router)

# OsmAnd's routes, which the app puts first of all (routing tries routes in order).
OSMAND_ROUTES = [
    Route("/osmand", osmand, methods=["GET", "POST"], include_in_schema=False),
    Route("/osmand/{rest:path}", osmand, methods=["GET", "POST"], include_in_schema=False),
]
