"""The rows of an incident import: their limits and shape, and checking each one (all its problems named)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.errors import N_, InvalidInput
from riderwatch.geo.coords import to_wgs84
from riderwatch.infra.clock import utcnow
from riderwatch.models import Category

MAX_SOURCE = 32
MAX_REF = 64
MAX_NOTE = 500
MAX_ROWS = 20_000
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_LIST = 1000
COLUMNS = ("source", "external_ref", "category", "lat", "lon", "occurred_at", "note", "crs")
REQUIRED = ("source", "external_ref", "category", "lat", "lon", "occurred_at")
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
# A clock a few minutes ahead in the exporting system is not a case from the future.
CLOCK_SKEW = timedelta(minutes=5)
# Times police systems and spreadsheets write besides ISO 8601 (read as local time).
LOCAL_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y年%m月%d日 %H:%M:%S", "%Y年%m月%d日 %H:%M")


@dataclass(frozen=True)
class RowError:
    row: int
    field: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "reason": self.reason}


@dataclass(frozen=True)
class IncidentRow:
    row: int
    source: str
    external_ref: str
    category_code: str
    lat: float
    lon: float
    occurred_at: datetime
    note: str


@dataclass(frozen=True)
class ImportResult:
    rows: int
    created: int
    updated: int
    unchanged: int

    def as_dict(self) -> dict[str, int]:
        return {"rows": self.rows, "created": self.created, "updated": self.updated, "unchanged": self.unchanged}


class ImportRefused(InvalidInput):
    """Some rows are bad; nothing was stored. `errors` lists every problem of every bad row."""

    title = "Incidents refused"
    type_ = "/problems/incidents-refused"

    def __init__(self, errors: Sequence[RowError], rows: int) -> None:
        bad = len({e.row for e in errors})
        super().__init__(
            N_("%(bad)d of %(rows)d rows are refused; nothing was imported"),
            bad=bad,
            rows=rows,
            errors=[e.as_dict() for e in errors],
        )
        self.errors = list(errors)


# --- checking rows ---------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        raise ValueError("must be text")
    if isinstance(value, int | float):
        return str(value)
    raise ValueError("must be text")


def _number(value: Any) -> float:
    if isinstance(value, bool) or value is None or value == "":
        raise ValueError("must be a number")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError(f"{value.strip()[:40]!r} is not a number") from None
    else:
        raise ValueError("must be a number")
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    return number


def _when(value: Any, tz: ZoneInfo) -> datetime:
    # Date cells of a workbook come as datetimes (or dates) without a zone: local time, like text.
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=tz)).astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=tz).astimezone(UTC)
    if isinstance(value, time):
        raise ValueError("a time of day without a date")
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a date and time, e.g. 2026-11-20T21:30:00+08:00")
    text = value.strip()
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        for fmt in LOCAL_FORMATS:
            try:
                parsed = datetime.strptime(text, fmt)  # local time: the zone is added below
                break
            except ValueError:
                continue
    if parsed is None:
        raise ValueError(f"{text[:40]!r} is not a date and time; use ISO 8601, e.g. 2026-11-20T21:30:00+08:00")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC)


def _categories(session: Session) -> dict[str, str]:
    """Every way a row may name a category → its code: the code, the Chinese or the English name."""
    names: dict[str, str] = {}
    for code, zh, en in session.execute(select(Category.code, Category.name_zh, Category.name_en)):
        names[en.strip().lower()] = code
        names[zh.strip()] = code
    for code in list(names.values()):
        names[code.lower()] = code
    return names


def check_rows(
    session: Session,
    rows: Sequence[tuple[int, Mapping[str, Any]]],
    *,
    timezone: str,
    default_source: str | None = None,
    now: datetime | None = None,
) -> tuple[list[IncidentRow], list[RowError]]:
    """Each row as an incident, or the reasons it cannot be one (all of them, for every row)."""
    now = now or utcnow()
    tz = ZoneInfo(timezone)
    categories = _categories(session)
    good: list[IncidentRow] = []
    errors: list[RowError] = []
    seen: dict[tuple[str, str], int] = {}
    for number, raw in rows:
        mine: list[RowError] = []

        def bad(field: str, reason: str, number: int = number, mine: list[RowError] = mine) -> None:
            mine.append(RowError(number, field, reason))

        if not isinstance(raw, Mapping):
            errors.append(RowError(number, "", "must be an object with the incident's fields"))
            continue
        unknown = sorted(str(k) for k in raw if k not in COLUMNS)
        if unknown:
            bad(unknown[0], f"unknown fields: {', '.join(unknown)[:200]}")
        values: dict[str, Any] = {}
        for field in ("source", "external_ref", "category", "note", "crs"):
            try:
                values[field] = _text(raw.get(field))
            except ValueError as exc:
                bad(field, str(exc))
                values[field] = ""
        source = values["source"] or (default_source or "").strip()
        if not source:
            bad("source", "missing: the system the case comes from, e.g. 110")
        elif len(source) > MAX_SOURCE:
            bad("source", f"at most {MAX_SOURCE} characters")
        ref = values["external_ref"]
        if not ref:
            bad("external_ref", "missing: the case's number in its system")
        elif len(ref) > MAX_REF:
            bad("external_ref", f"at most {MAX_REF} characters")
        code = categories.get(values["category"]) or categories.get(values["category"].lower())
        if not values["category"]:
            bad("category", "missing")
        elif code is None:
            bad("category", f"unknown category {values['category'][:40]!r}; use a code from /api/v1/categories")
        if len(values["note"]) > MAX_NOTE:
            bad("note", f"at most {MAX_NOTE} characters")
        for field in ("source", "external_ref", "note"):
            if "\x00" in values[field]:
                bad(field, "holds a NUL character")
        coords: dict[str, float] = {}
        for field in ("lat", "lon"):
            try:
                coords[field] = _number(raw.get(field))
            except ValueError as exc:
                bad(field, str(exc))
        lat = lon = 0.0
        if len(coords) == 2:
            if not (-90 <= coords["lat"] <= 90 and -180 <= coords["lon"] <= 180):
                bad("lat" if abs(coords["lat"]) > 90 else "lon", "out of range (lat −90…90, lon −180…180)")
            elif coords["lat"] == 0 and coords["lon"] == 0:
                bad("lat", "0, 0 is no place in the district (a missing position?)")
            else:
                try:
                    lat, lon = to_wgs84(coords["lat"], coords["lon"], values["crs"] or None)
                except ValueError as exc:
                    bad("crs", str(exc))
        occurred_at = EARLIEST
        try:
            occurred_at = _when(raw.get("occurred_at"), tz)
        except (ValueError, OverflowError) as exc:
            bad("occurred_at", str(exc))
        else:
            if occurred_at < EARLIEST:
                bad("occurred_at", f"before {EARLIEST.year}")
            elif occurred_at > now + CLOCK_SKEW:
                bad("occurred_at", "in the future")
        if source and ref:
            key = (source, ref)
            if key in seen:
                bad("external_ref", f"{source}/{ref[:40]} is also in row {seen[key]}")
            else:
                seen[key] = number
        if mine:
            errors.extend(mine)
            continue
        assert code is not None
        good.append(
            IncidentRow(
                row=number,
                source=source,
                external_ref=ref,
                category_code=code,
                lat=lat,
                lon=lon,
                occurred_at=occurred_at,
                note=values["note"],
            )
        )
    return good, errors
