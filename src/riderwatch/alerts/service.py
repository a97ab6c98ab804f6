"""Early warnings to riders: publishing (a new alert, an update, a cancellation — each a new, immutable
version), who they reach, acknowledgements, and reaching a rider who rides into a valid alert's area.

Who an alert reaches (its audience):
- "area": riders on duty whose last position, at most `FRESH` old, lies in the area — at publish time,
  and afterwards whenever a new position puts a rider on duty inside it while the alert is valid;
- "stations": the active riders of the stations named;
- "all": every active rider.
A rider on duty without a recent position is counted and shown to the dispatcher, never guessed into or
out of the area. Each rider receives each version once (a unique receipt); an update or a cancellation
reaches everyone who received an earlier version, and whoever the new version's audience adds.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import shapely
from shapely.geometry import Point, mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.prepared import prep
from sqlalchemy import Integer, String, func, insert, literal, or_, select
from sqlalchemy.orm import Session

from riderwatch.audit.service import record
from riderwatch.db import atomic
from riderwatch.errors import N_, Conflict, InvalidInput, NotFound, Term
from riderwatch.geo.areas import AreaError, circle_polygon, parse_area
from riderwatch.infra.clock import utcnow
from riderwatch.infra.sqlparams import one_of, values_table
from riderwatch.models import (
    Alert,
    AlertReceipt,
    Clue,
    Community,
    DutyShift,
    Grid,
    LastPosition,
    Rider,
    Station,
    User,
    Zone,
)
from riderwatch.notices import service as notices
from riderwatch.points import service as points
from riderwatch.webhooks import service as webhooks

AREA_TERMS = {"community": Term(N_("community")), "grid": Term(N_("grid")), "zone": Term(N_("zone"))}
PARTIES = ("police", "grid_staff", "patrol")  # the other parties an alert can also go to
FRESH = timedelta(minutes=10)  # an older position does not say where a rider is now
MAX_VALIDITY = timedelta(days=7)
TEXT_FIELDS = ("event", "headline", "description", "instruction", "headline_en", "description_en", "instruction_en")
CAP_FIELDS = ("kind", "status", "scope", "category", "urgency", "severity", "certainty", *TEXT_FIELDS, "area_desc")


@dataclass
class Reach:
    """Whom an alert reaches: riders targeted (with their last positions, for the dispatcher's map), and
    riders on duty who sent no position recently (counted, not guessed)."""

    riders: list[tuple[int, str]] = field(default_factory=list)  # (rider id, reason)
    positions: list[tuple[float, float]] = field(default_factory=list)
    without_position: int = 0
    area: dict[str, Any] | None = None  # the area as a GeoJSON Polygon (a circle drawn as one), for the map


# --- the area --------------------------------------------------------------------------------------------


def area_geometry(alert: Alert) -> BaseGeometry | None:
    if alert.polygon is not None:
        return shape(alert.polygon)
    if alert.circle_lat is not None and alert.circle_lon is not None and alert.circle_radius_m is not None:
        return circle_polygon(alert.circle_lon, alert.circle_lat, alert.circle_radius_m)
    return None


def resolve_area(session: Session, area: Any) -> tuple[dict[str, Any], str]:
    """A GeoJSON Polygon, a Circle ({"type": "Circle", "center": [lon, lat], "radius_m"}) or a stored area
    ({"community"|"grid"|"zone": code}) → the fields an alert keeps, and the area's name (if it has one)."""
    if isinstance(area, dict) and len(area) == 1 and next(iter(area)) in ("community", "grid", "zone"):
        kind, code = next(iter(area.items()))
        row: Community | Grid | Zone | None
        if kind == "community":
            row = session.scalar(select(Community).where(Community.code == code, Community.retired_at.is_(None)))
        elif kind == "grid":
            row = session.scalar(select(Grid).where(Grid.code == code, Grid.retired_at.is_(None)))
        else:
            row = session.scalar(select(Zone).where(Zone.code == code, Zone.retired_at.is_(None)))
        if row is None or row.boundary is None:
            raise InvalidInput(N_("area: no %(kind)s %(code)r in use"), kind=AREA_TERMS[kind], code=code)
        return {"polygon": row.boundary}, row.name
    try:
        parse_area(area)
    except AreaError as exc:
        raise InvalidInput(N_("area: %(reason)s"), reason=str(exc)) from exc
    if area.get("type") == "Feature":
        area = area["geometry"]
    if area["type"] == "Circle":
        lon, lat = area["center"][:2]
        radius = float(area["radius_m"])
        if radius < 50:
            raise InvalidInput(N_("area: a circle's radius is 50 m at least"))
        return {"circle_lat": float(lat), "circle_lon": float(lon), "circle_radius_m": radius}, ""
    if area["type"] != "Polygon":
        raise InvalidInput(N_("area: draw one polygon (CAP areas are polygons or circles)"))
    return {"polygon": {"type": "Polygon", "coordinates": area["coordinates"]}}, ""


# --- whom it reaches ------------------------------------------------------------------------------------


def _on_duty(now: datetime) -> Any:
    return select(DutyShift.rider_id).where(DutyShift.ended_at.is_(None), DutyShift.started_at <= now)


def _active_riders() -> Any:
    return select(Rider.user_id).where(Rider.status == "active")


def reach(session: Session, alert: Alert, *, now: datetime) -> Reach:
    """Whom this version reaches now (receipts already made are not left out)."""
    found = Reach()
    if alert.audience == "all":
        found.riders = [(uid, "all") for uid in session.scalars(_active_riders())]
        return found
    if alert.audience == "stations":
        station_ids = select(Station.id).where(Station.code.in_(alert.audience_stations or []))
        found.riders = [
            (uid, "station")
            for uid in session.scalars(
                select(Rider.user_id).where(Rider.status == "active", Rider.station_id.in_(station_ids))
            )
        ]
        return found
    area = area_geometry(alert)
    if area is None:
        return found
    shapely.prepare(area)
    minx, miny, maxx, maxy = area.bounds
    # In the database, not as lists of ids: thousands of riders on duty cost three scans, not three big IN lists.
    on_duty = _on_duty(now).where(DutyShift.rider_id.in_(_active_riders()))
    fresh = LastPosition.rider_id.in_(on_duty) & (LastPosition.ts >= now - FRESH)
    riders_on_duty = (
        session.scalar(select(func.count(func.distinct(DutyShift.rider_id))).where(DutyShift.rider_id.in_(on_duty)))
        or 0
    )
    located = session.scalar(select(func.count()).select_from(LastPosition).where(fresh)) or 0
    found.without_position = max(riders_on_duty - located, 0)
    near = session.execute(
        select(LastPosition.rider_id, LastPosition.lat, LastPosition.lon).where(
            fresh, LastPosition.lat.between(miny, maxy), LastPosition.lon.between(minx, maxx)
        )
    )
    rows = near.all()
    if rows:
        ids, lats, lons = (np.array(column) for column in zip(*rows, strict=True))
        # On or inside the area's edge, all points at once.
        hit = shapely.intersects_xy(area, lons, lats)
        found.riders = [(int(uid), "area") for uid in ids[hit]]
        found.positions = [(float(lat), float(lon)) for lat, lon in zip(lats[hit], lons[hit], strict=True)]
    return found


def present(alert: Alert) -> dict[str, Any]:
    """An alert as the API, the stream and the pages show it."""
    out: dict[str, Any] = {
        "id": alert.id,
        "references": alert.references_id,
        "msg_type": alert.msg_type,
        "effective": alert.effective.isoformat(),
        "expires": alert.expires.isoformat(),
        "sent_at": alert.sent_at.isoformat(),
        "audience": alert.audience,
        "pending": alert.pending,
        **{key: getattr(alert, key) for key in CAP_FIELDS},
    }
    if alert.polygon is not None:
        out["area"] = alert.polygon
    elif alert.circle_lat is not None:
        out["area"] = {
            "type": "Circle",
            "center": [alert.circle_lon, alert.circle_lat],
            "radius_m": alert.circle_radius_m,
        }
    if alert.audience == "stations":
        out["stations"] = list(alert.audience_stations or [])
    out["parties"] = list(alert.audience_parties or [])
    return out


def _deliver(session: Session, alert: Alert, targets: Iterable[tuple[int, str]], *, now: datetime) -> int:
    """Receipts and stream events for riders who have not had this version yet; how many were new."""
    riders = dict(targets)
    if not riders:
        return 0
    had = set(
        session.scalars(
            select(AlertReceipt.rider_id).where(
                AlertReceipt.alert_id == alert.id, one_of(session, AlertReceipt.rider_id.expression, list(riders))
            )
        )
    )
    fresh = [(rider_id, reason) for rider_id, reason in riders.items() if rider_id not in had]
    if fresh:
        # One statement over the riders as one parameter (thousands of riders: no statement of thousands of values).
        table, (rider, reason) = values_table(
            session,
            {"rider_id": ([r for r, _ in fresh], Integer()), "reason": ([why for _, why in fresh], String())},
        )
        chosen = select(literal(alert.id), rider, reason, literal(now, AlertReceipt.targeted_at.type)).select_from(
            table
        )
        session.execute(insert(AlertReceipt).from_select(["alert_id", "rider_id", "reason", "targeted_at"], chosen))
    notices.emit_many(session, user_ids=[rider_id for rider_id, _reason in fresh], event="alert", data=present(alert))
    return len(fresh)


def chat_data(alert: Alert) -> dict[str, Any]:
    """What a duty group chat (and a user's own webhook) is told of an alert version."""
    return {
        "alert_id": alert.id,
        "msg_type": alert.msg_type,
        "severity": alert.severity,
        "headline": {"zh": alert.headline, "en": alert.headline_en},
        "area": alert.area_desc,
        "expires": alert.expires.isoformat(),
    }


def _tell_parties(session: Session, alert: Alert) -> None:
    """The other parties an alert goes to: each of their active users has it in their inbox, and the duty
    group chats of the command centre and of those parties that take alerts are told."""
    chat = chat_data(alert)
    parties = list(alert.audience_parties or [])
    if parties:
        users = session.scalars(select(User.id).where(User.role.in_(parties), User.is_active.is_(True)))
        for user_id in users:
            notices.notify(
                session, user_id=user_id, kind="alert", alert_id=alert.id, params={"headline": alert.headline}
            )
    webhooks.enqueue(session, kind="alert", parties=["command", *parties], data=chat)


# --- publishing ----------------------------------------------------------------------------------------


def _check_times(effective: datetime, expires: datetime, now: datetime) -> None:
    if expires <= now:
        raise InvalidInput(N_("expires has passed: an alert must still be valid"))
    if expires <= effective:
        raise InvalidInput(N_("expires must come after effective"))
    if expires - effective > MAX_VALIDITY:
        raise InvalidInput(N_("an alert is valid for 7 days at most; publish an update to extend it"))


def _check_audience(session: Session, audience: str, stations: list[str], has_area: bool) -> None:
    if audience == "area" and not has_area:
        raise InvalidInput(N_("an alert for the riders in an area needs its area"))
    if audience == "stations":
        if not stations:
            raise InvalidInput(N_("name the stations whose riders receive the alert"))
        known = set(
            session.scalars(select(Station.code).where(Station.code.in_(stations), Station.retired_at.is_(None)))
        )
        unknown = [code for code in stations if code not in known]
        if unknown:
            raise InvalidInput(N_("stations: no station %(codes)s in use"), codes=", ".join(map(repr, unknown)))


def draft(session: Session, *, sender: User, values: Mapping[str, Any], now: datetime) -> Alert:
    """An alert from the fields sent (checked), not yet stored."""
    effective = values.get("effective") or now
    expires = values["expires"]
    _check_times(effective, expires, now)
    area_fields: dict[str, Any] = {}
    area_name = ""
    if values.get("area") is not None:
        area_fields, area_name = resolve_area(session, values["area"])
    audience = values.get("audience") or "area"
    stations = list(values.get("stations") or [])
    _check_audience(session, audience, stations, bool(area_fields))
    parties = [p for p in PARTIES if p in (values.get("parties") or [])]
    fields = {key: values[key] for key in CAP_FIELDS if values.get(key) is not None}
    fields.setdefault("area_desc", area_name or (values.get("area_desc") or ""))
    return Alert(
        **fields,
        msg_type="Alert",
        effective=effective,
        expires=expires,
        audience=audience,
        audience_stations=stations,
        audience_parties=parties,
        sender_id=sender.id,
        sent_at=now,
        **area_fields,
    )


def preview(session: Session, *, sender: User, values: Mapping[str, Any], now: datetime | None = None) -> Reach:
    """Whom an alert would reach if published now (nothing is stored)."""
    now = now or utcnow()
    alert = draft(session, sender=sender, values=values, now=now)
    found = reach(session, alert, now=now)
    geometry = area_geometry(alert)
    found.area = dict(mapping(geometry)) if geometry is not None else None
    return found


@atomic
def publish(
    session: Session,
    *,
    sender: User,
    values: Mapping[str, Any],
    now: datetime | None = None,
    extreme_needs_approval: bool = False,
) -> tuple[Alert, Reach]:
    """Publish an alert to its audience; an Extreme one, where the station asks for it, waits for a
    second person's approval instead (and reaches nobody until then)."""
    now = now or utcnow()
    alert = draft(session, sender=sender, values=values, now=now)
    alert.pending = extreme_needs_approval and alert.severity == "Extreme"
    session.add(alert)
    session.flush()
    forget_areas()
    found = reach(session, alert, now=now) if alert.effective <= now else Reach()
    if not alert.pending:
        _deliver(session, alert, found.riders, now=now)
        _tell_parties(session, alert)
    record(
        session,
        actor=sender,
        action="alert.submit" if alert.pending else "alert.publish",
        object_type="alert",
        object_id=alert.id,
        severity=alert.severity,
        audience=alert.audience,
        riders=len(found.riders),
    )
    return alert, found


@atomic
def approve(session: Session, *, approver: User, alert_id: int, now: datetime | None = None) -> tuple[Alert, Reach]:
    """A second person approves an alert waiting for it: it is published now."""
    now = now or utcnow()
    alert = alert_of(session, alert_id)
    if not alert.pending:
        raise Conflict(N_("alert %(id)d is not waiting for approval"), id=alert_id)
    if not may_approve(alert, approver):
        raise Conflict(N_("a second person approves an Extreme alert, not its sender"))
    if alert.expires <= now:
        raise Conflict(N_("alert %(id)d has expired already"), id=alert_id)
    alert.pending = False
    alert.approved_by_id = approver.id
    alert.approved_at = now
    session.flush()
    forget_areas()
    found = reach(session, alert, now=now) if alert.effective <= now else Reach()
    _deliver(session, alert, found.riders, now=now)
    _tell_parties(session, alert)
    record(
        session,
        actor=approver,
        action="alert.approve",
        object_type="alert",
        object_id=alert.id,
        riders=len(found.riders),
    )
    return alert, found


def _newest() -> Any:
    """Versions no later version updates or cancels."""
    return Alert.id.not_in(select(Alert.references_id).where(Alert.references_id.is_not(None)))


def may_approve(alert: Alert, user: User) -> bool:
    """A second person approves a waiting Extreme alert: anyone who publishes alerts but its sender."""
    return alert.pending and alert.sender_id != user.id


def alert_of(session: Session, alert_id: int) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(N_("no alert %(id)d"), id=alert_id)
    return alert


def latest_version(session: Session, alert: Alert) -> Alert:
    """The newest version of an alert's chain."""
    current = alert
    while True:
        newer = session.scalar(select(Alert).where(Alert.references_id == current.id))
        if newer is None:
            return current
        current = newer


def chain(session: Session, alert: Alert) -> list[Alert]:
    """Every version of an alert, first to newest."""
    versions = [alert]
    while versions[0].references_id is not None:
        earlier = session.get(Alert, versions[0].references_id)
        assert earlier is not None
        versions.insert(0, earlier)
    newer = session.scalar(select(Alert).where(Alert.references_id == versions[-1].id))
    while newer is not None:
        versions.append(newer)
        newer = session.scalar(select(Alert).where(Alert.references_id == newer.id))
    return versions


def _earlier_recipients(session: Session, versions: list[Alert]) -> list[tuple[int, str]]:
    ids = [v.id for v in versions]
    return [
        (uid, "update")
        for uid in session.scalars(select(AlertReceipt.rider_id).where(AlertReceipt.alert_id.in_(ids)).distinct())
    ]


@atomic
def revise(
    session: Session,
    *,
    sender: User,
    alert_id: int,
    msg_type: str,
    values: Mapping[str, Any],
    now: datetime | None = None,
) -> tuple[Alert, Reach]:
    """An Update (changed fields) or a Cancel of an alert's newest version, as a new version that reaches
    everyone an earlier version reached (and, for an update, whoever its audience adds)."""
    now = now or utcnow()
    previous = alert_of(session, alert_id)
    if latest_version(session, previous).id != previous.id:
        raise Conflict(N_("alert %(id)d has a newer version; change that one"), id=alert_id)
    if previous.msg_type == "Cancel":
        raise Conflict(N_("alert %(id)d was cancelled"), id=alert_id)
    if previous.pending and msg_type == "Update":
        raise Conflict(N_("alert %(id)d is waiting for approval; approve or cancel it first"), id=alert_id)
    if previous.expires <= now and msg_type == "Cancel":
        raise Conflict(N_("alert %(id)d has expired already"), id=alert_id)
    merged: dict[str, Any] = {key: getattr(previous, key) for key in CAP_FIELDS}
    merged.update({k: v for k, v in values.items() if k in CAP_FIELDS and v is not None})
    effective = values.get("effective") or previous.effective
    expires = values.get("expires") or previous.expires
    if msg_type == "Cancel":
        expires = max(now + timedelta(seconds=1), effective + timedelta(seconds=1))
    else:
        _check_times(effective, expires, now)
    area_fields = {
        "polygon": previous.polygon,
        "circle_lat": previous.circle_lat,
        "circle_lon": previous.circle_lon,
        "circle_radius_m": previous.circle_radius_m,
    }
    if msg_type == "Update" and values.get("area") is not None:
        resolved, name = resolve_area(session, values["area"])
        area_fields = {"polygon": None, "circle_lat": None, "circle_lon": None, "circle_radius_m": None, **resolved}
        if name and not values.get("area_desc"):
            merged["area_desc"] = name
    version = Alert(
        **merged,
        msg_type=msg_type,
        references_id=previous.id,
        effective=effective,
        expires=expires,
        audience=previous.audience,
        audience_stations=list(previous.audience_stations or []),
        audience_parties=list(previous.audience_parties or []),
        sender_id=sender.id,
        sent_at=now,
        **area_fields,
    )
    session.add(version)
    session.flush()
    forget_areas()
    found = Reach(riders=_earlier_recipients(session, chain(session, previous)))
    if msg_type == "Update" and version.effective <= now:
        more = reach(session, version, now=now)
        found.riders += more.riders
        found.positions, found.without_position = more.positions, more.without_position
    _deliver(session, version, found.riders, now=now)
    _tell_parties(session, version)
    record(
        session,
        actor=sender,
        action="alert.cancel" if msg_type == "Cancel" else "alert.update",
        object_type="alert",
        object_id=version.id,
        references=previous.id,
        riders=len(dict(found.riders)),
    )
    return version, found


# --- riders ------------------------------------------------------------------------------------------------


@atomic
def acknowledge(session: Session, *, rider: User, alert_id: int, now: datetime | None = None) -> AlertReceipt:
    """The rider has seen the alert (once; acknowledging again changes nothing). Its sender and the command
    centre's dispatchers are told (their live boards)."""
    now = now or utcnow()
    receipt = receipt_of(session, alert_id=alert_id, rider_id=rider.id)
    if receipt is None:
        raise NotFound(N_("no alert %(id)d"), id=alert_id)
    if receipt.acknowledged_at is None:
        receipt.acknowledged_at = now
        alert = alert_of(session, alert_id)
        session.flush()
        seconds = max(0, round((now - receipt.targeted_at).total_seconds()))
        data = {
            "alert_id": alert_id,
            "rider": rider.display_name or rider.username,
            "seconds": seconds,
            "at": now.isoformat(),
        }
        notices.emit_many(
            session, user_ids=notices.command_centre(session, also=alert.sender_id), event="receipt", data=data
        )
        points.award(
            session,
            rider_id=rider.id,
            key="alert_ack",
            source="alert",
            source_id=alert_id,
            award_key=f"alert:{receipt.id}",
            at=now,
        )
    return receipt


def receipt_of(session: Session, *, alert_id: int, rider_id: int) -> AlertReceipt | None:
    return session.scalar(
        select(AlertReceipt).where(AlertReceipt.alert_id == alert_id, AlertReceipt.rider_id == rider_id)
    )


def valid_for_rider(
    session: Session, *, rider_id: int, now: datetime | None = None
) -> list[tuple[Alert, AlertReceipt]]:
    """The alerts a rider received that are valid now (the newest version of each), newest first."""
    now = now or utcnow()
    rows = session.execute(
        select(Alert, AlertReceipt)
        .join(AlertReceipt, AlertReceipt.alert_id == Alert.id)
        .where(AlertReceipt.rider_id == rider_id, Alert.expires > now, Alert.msg_type != "Cancel")
        .order_by(Alert.sent_at.desc(), Alert.id.desc())
    ).all()
    newer = set(session.scalars(select(Alert.references_id).where(Alert.references_id.in_([r.Alert.id for r in rows]))))
    return [(r.Alert, r.AlertReceipt) for r in rows if r.Alert.id not in newer]


def receipts(session: Session, alert_id: int) -> list[tuple[AlertReceipt, str]]:
    """Who received this version and when they acknowledged it, with their names (for the dispatcher)."""
    return [
        (receipt, name or username)
        for receipt, name, username in session.execute(
            select(AlertReceipt, User.display_name, User.username)
            .join(User, User.id == AlertReceipt.rider_id)
            .where(AlertReceipt.alert_id == alert_id)
            .order_by(AlertReceipt.targeted_at, AlertReceipt.id)
        )
    ]


def sightings(session: Session, alert: Alert) -> list[Clue]:
    """The clues riders reported in answer to any version of the alert, newest first (a sighting is a
    clue: it is on the desk's queue too)."""
    ids = [v.id for v in chain(session, alert)]
    return list(
        session.scalars(select(Clue).where(Clue.alert_id.in_(ids)).order_by(Clue.reported_at.desc(), Clue.id.desc()))
    )


def listing(session: Session, *, limit: int = 50, now: datetime | None = None, valid_only: bool = False) -> list[Alert]:
    """The command centre's list: the newest versions, newest first."""
    now = now or utcnow()
    stmt = select(Alert).where(_newest())
    if valid_only:
        stmt = stmt.where(Alert.expires > now, Alert.msg_type != "Cancel")
    return list(session.scalars(stmt.order_by(Alert.sent_at.desc(), Alert.id.desc()).limit(limit)))


def counts(session: Session, alert_ids: list[int]) -> dict[int, tuple[int, int]]:
    """Per alert version: riders reached, riders who acknowledged."""
    if not alert_ids:
        return {}
    return {
        alert_id: (reached, acked)
        for alert_id, reached, acked in session.execute(
            select(AlertReceipt.alert_id, func.count(), func.count(AlertReceipt.acknowledged_at))
            .where(AlertReceipt.alert_id.in_(alert_ids))
            .group_by(AlertReceipt.alert_id)
        )
    }


# --- riding into an area ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Area:
    alert_id: int
    effective: datetime
    expires: datetime
    bounds: tuple[float, float, float, float]
    inside: Any  # a prepared shapely geometry


# The valid area alerts, kept a few seconds: every position batch asks, and nearly always there is none
# or a rider is nowhere near one. A publish in this process forgets them at once; one in another
# process is seen within CACHE_SECONDS.
CACHE_SECONDS = 5.0
_cache: tuple[float, list[_Area]] | None = None


def forget_areas() -> None:
    global _cache
    _cache = None


def _areas(session: Session, now: datetime) -> list[_Area]:
    global _cache
    if _cache is not None and _cache[0] > time.monotonic():
        return _cache[1]
    found = []
    for alert in session.scalars(
        select(Alert).where(
            Alert.audience == "area",
            Alert.pending.is_(False),
            Alert.expires > now,
            Alert.msg_type != "Cancel",
            _newest(),
            or_(Alert.polygon.is_not(None), Alert.circle_lat.is_not(None)),
        )
    ):
        area = area_geometry(alert)
        if area is not None:
            found.append(_Area(alert.id, alert.effective, alert.expires, area.bounds, prep(area)))
    _cache = (time.monotonic() + CACHE_SECONDS, found)
    return found


def on_positions(session: Session, positions: Mapping[int, tuple[float, float]], *, now: datetime | None = None) -> int:
    """Riders whose newest position (rider id → (lat, lon)) puts them in a valid area alert they have not
    had: they receive it now. Called by the position ingest for the riders of each batch; how many were new."""
    now = now or utcnow()
    if not positions:
        return 0
    new = 0
    members: set[int] | None = None
    for area in _areas(session, now):
        if not area.effective <= now < area.expires:
            continue
        minx, miny, maxx, maxy = area.bounds
        inside = [
            rider_id
            for rider_id, (lat, lon) in positions.items()
            if miny <= lat <= maxy and minx <= lon <= maxx and area.inside.covers(Point(lon, lat))
        ]
        if not inside:
            continue
        if members is None:
            members = set(
                session.scalars(
                    select(Rider.user_id).where(Rider.user_id.in_(list(positions)), Rider.status == "active")
                )
            )
        alert = session.get(Alert, area.alert_id)
        # The cache is a few seconds old at most: an update or a cancellation made in another process
        # since then wins (its version is the one to give, and a cancelled alert is given to nobody).
        superseded = session.scalar(select(Alert.id).where(Alert.references_id == area.alert_id)) is not None
        if alert is not None and not superseded:
            new += _deliver(session, alert, [(r, "area") for r in inside if r in members], now=now)
    return new
