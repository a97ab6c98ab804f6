"""Reading the OsmAnd protocol as the Traccar Client app sends it (STANDARDS.md "OsmAnd").

Shapes: fields in the query string (a POST with an empty body from older clients), a form body, a
JSON object with the same fields, a JSON array of such objects, and the background-geolocation
object `{"device_id", "location": {"timestamp", "coords": {...}}}` (location may be a list).
Only what coverage needs is kept (minimal collection): altitude, hdop and battery are checked as
numbers and then dropped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from riderwatch.tracking.ingest import Ping

KNOT_MPS = 1852 / 3600
# Traccar's rule: a number below 2**31 is Unix seconds, anything larger milliseconds.
_SECONDS_LIMIT = 2**31 - 1
_NUMERIC = ("altitude", "hdop", "batt", "charge")


class OsmAndError(ValueError):
    """A request that cannot be read; `status` is the HTTP answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Report:
    device_id: str
    ping: Ping


def parse_timestamp(value: Any, *, now: datetime) -> datetime:
    """Unix seconds or milliseconds, ISO 8601, or `yyyy-MM-dd HH:mm:ss` (taken as UTC)."""
    if value is None or value == "":
        return now
    if isinstance(value, bool):
        raise OsmAndError(f"bad timestamp {value!r}")
    if isinstance(value, int | float) or (isinstance(value, str) and _is_number(value)):
        number = float(value)
        if not math.isfinite(number) or number < 0:
            raise OsmAndError(f"bad timestamp {value!r}")
        seconds = number if number < _SECONDS_LIMIT else number / 1000
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise OsmAndError(f"bad timestamp {value!r}") from exc
    if not isinstance(value, str) or len(value) > 40:
        raise OsmAndError("bad timestamp")
    text = value.strip()
    try:
        ts = datetime.fromisoformat(text) if "T" in text else datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError as exc:
        raise OsmAndError(f"bad timestamp {value!r}: use Unix seconds, milliseconds or ISO 8601") from exc
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _number(fields: Mapping[str, Any], *names: str) -> float | None:
    for name in names:
        value = fields.get(name)
        if value is None or value == "":
            continue
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise OsmAndError(f"{name} must be a number")
        try:
            number = float(value)
        except ValueError as exc:
            raise OsmAndError(f"{name} must be a number, not {value!r}") from exc
        if not math.isfinite(number):
            raise OsmAndError(f"{name} must be a finite number")
        return number
    return None


def _non_negative(value: float | None) -> float | None:
    # Phones report -1 for "unknown" speed, heading and accuracy.
    return value if value is not None and value >= 0 else None


def _device(fields: Mapping[str, Any]) -> str:
    value = fields.get("id", fields.get("deviceid", fields.get("device_id")))
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise OsmAndError("missing device id ('id')")
    if len(value) > 64:
        raise OsmAndError("device id too long")
    return value.strip()


def _flat(fields: Mapping[str, Any], *, now: datetime) -> Report:
    device = _device(fields)
    lat, lon = _number(fields, "lat"), _number(fields, "lon")
    if (lat is None or lon is None) and isinstance(fields.get("location"), str):
        parts = str(fields["location"]).split(",")
        if len(parts) == 2:
            lat, lon = _number({"lat": parts[0]}, "lat"), _number({"lon": parts[1]}, "lon")
    if lat is None or lon is None:
        raise OsmAndError("missing position ('lat' and 'lon')")
    for name in _NUMERIC:
        _number(fields, name)
    knots = _number(fields, "speed")
    return Report(
        device_id=device,
        ping=Ping(
            ts=parse_timestamp(fields.get("timestamp"), now=now),
            lat=lat,
            lon=lon,
            speed_mps=_non_negative(knots * KNOT_MPS if knots is not None else None),
            heading=_non_negative(_number(fields, "bearing", "heading")),
            accuracy_m=_non_negative(_number(fields, "accuracy")),
        ),
    )


def _geolocation(location: Mapping[str, Any], device: str, *, now: datetime) -> Report:
    """The background-geolocation format: speed in m/s, not knots."""
    coords = location.get("coords")
    if not isinstance(coords, Mapping):
        raise OsmAndError("missing position (location.coords)")
    lat, lon = _number(coords, "latitude"), _number(coords, "longitude")
    if lat is None or lon is None:
        raise OsmAndError("missing position (location.coords.latitude and longitude)")
    _number(coords, "altitude")
    return Report(
        device_id=device,
        ping=Ping(
            ts=parse_timestamp(location.get("timestamp"), now=now),
            lat=lat,
            lon=lon,
            speed_mps=_non_negative(_number(coords, "speed")),
            heading=_non_negative(_number(coords, "heading")),
            accuracy_m=_non_negative(_number(coords, "accuracy")),
        ),
    )


def _from_object(obj: Any, query: Mapping[str, str], *, now: datetime) -> list[Report]:
    if not isinstance(obj, Mapping):
        raise OsmAndError("each JSON item must be an object")
    if "location" in obj and not isinstance(obj["location"], str):
        device = _device({**query, **{k: v for k, v in obj.items() if k in ("id", "deviceid", "device_id")}})
        locations = obj["location"]
        items = locations if isinstance(locations, list) else [locations]
        if not items:
            raise OsmAndError("missing position (empty location list)")
        reports = []
        for location in items:
            if not isinstance(location, Mapping):
                raise OsmAndError("location must be an object")
            reports.append(_geolocation(location, device, now=now))
        return reports
    return [_flat({**query, **obj}, now=now)]


def parse_request(query: Mapping[str, str], content_type: str, body: bytes, *, now: datetime) -> list[Report]:
    """Every position in one OsmAnd request (query string plus body of any supported shape)."""
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return [_flat(query, now=now)]
    if "json" in content_type or text[0] in "[{":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise OsmAndError("the body is not valid JSON") from exc
        items = data if isinstance(data, list) else [data]
        if not items:
            raise OsmAndError("missing position (empty JSON array)")
        return [report for item in items for report in _from_object(item, query, now=now)]
    form = dict(parse_qsl(text, keep_blank_values=True))
    return [_flat({**query, **form}, now=now)]
