"""Importing the police's own recorded cases (incidents) and reading them back.

An import is all or nothing: every row is checked first, and if any is bad nothing is stored and
every bad row is named with its row number and the reason. Good batches are inserted with
`ON CONFLICT DO NOTHING` on `(source, external_ref)`, so importing the same export again adds
nothing; the answer says how many rows were new and how many were already present. Each import
writes one audit entry.

Rows come as mappings of text or numbers: from the JSON API, or from a CSV file with the header
`source,external_ref,category,lat,lon,occurred_at[,note][,crs]` (UTF-8 with or without a BOM, or
GB 18030 as Chinese spreadsheets save it). A time without an offset is local time of the station.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.audit.service import record
from riderwatch.db import upsert
from riderwatch.errors import InvalidInput
from riderwatch.geo.coords import to_wgs84
from riderwatch.models import Category, Incident, User

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
# Rows per INSERT statement (PostgreSQL allows 65535 parameters; a row has ten).
CHUNK = 1000


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
    already_present: int

    def as_dict(self) -> dict[str, int]:
        return {"rows": self.rows, "created": self.created, "already_present": self.already_present}


class ImportRefused(InvalidInput):
    """Some rows are bad; nothing was stored. `errors` lists every problem of every bad row."""

    title = "Incidents refused"
    type_ = "/problems/incidents-refused"

    def __init__(self, errors: Sequence[RowError], rows: int) -> None:
        bad = len({e.row for e in errors})
        detail = f"{bad} of {rows} rows are refused; nothing was imported"
        super().__init__(detail, errors=[e.as_dict() for e in errors])
        self.errors = list(errors)


# --- reading files -------------------------------------------------------------------------------


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidInput("the file is neither UTF-8 nor GB 18030 text")


def parse_csv(
    data: bytes, *, default_source: str | None = None
) -> tuple[list[tuple[int, dict[str, str]]], list[RowError]]:
    """(row number, cells by column) of a CSV export, and the rows that are not even records.

    The header is row 1, as a spreadsheet shows it. The `source` column may be left out when a
    default source is given.
    """
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInput(f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; split it")
    if b"\x00" in data:
        raise InvalidInput("the file is not CSV text (it holds NUL bytes); save the sheet as CSV")
    text = _decode(data)
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise InvalidInput(f"the file is not valid CSV: {exc}") from exc
    while records and not any(cell.strip() for cell in records[-1]):
        records.pop()
    if not records:
        raise InvalidInput("the file is empty; the first line must name the columns: " + ",".join(REQUIRED))
    header = [cell.strip().lower() for cell in records[0]]
    problems = []
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        problems.append(RowError(1, "header", f"unknown columns: {', '.join(unknown)} (known: {', '.join(COLUMNS)})"))
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        problems.append(RowError(1, "header", f"columns named twice: {', '.join(repeated)}"))
    optional = ("source",) if default_source else ()
    missing = [c for c in REQUIRED if c not in header and c not in optional]
    if missing:
        problems.append(RowError(1, "header", f"missing columns: {', '.join(missing)}"))
    if problems:
        raise ImportRefused(problems, rows=max(len(records) - 1, 0))
    if len(records) - 1 > MAX_ROWS:
        raise InvalidInput(f"at most {MAX_ROWS} rows per import; the file has {len(records) - 1}")
    rows: list[tuple[int, dict[str, str]]] = []
    errors: list[RowError] = []
    for number, cells in enumerate(records[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue  # a blank line between records
        if len(cells) > len(header):
            errors.append(RowError(number, "", f"{len(cells)} cells but the header names {len(header)} columns"))
            continue
        rows.append((number, dict(zip(header, cells, strict=False))))
    return rows, errors


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
    now = now or datetime.now(UTC)
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


# --- importing -------------------------------------------------------------------------------------


def _insert(session: Session, rows: list[IncidentRow], *, actor: User | None, now: datetime) -> int:
    """Insert the rows not yet present; returns how many were new."""
    # In key order, so concurrent imports of overlapping files lock rows in the same order.
    rows = sorted(rows, key=lambda r: (r.source, r.external_ref))
    created = 0
    for i in range(0, len(rows), CHUNK):
        values = [
            {
                "source": r.source,
                "external_ref": r.external_ref,
                "category_code": r.category_code,
                "lat": r.lat,
                "lon": r.lon,
                "occurred_at": r.occurred_at,
                "note": r.note,
                "imported_at": now,
                "imported_by_id": actor.id if actor else None,
            }
            for r in rows[i : i + CHUNK]
        ]
        stmt = (
            upsert(session, Incident)
            .values(values)
            .on_conflict_do_nothing(index_elements=["source", "external_ref"])
            .returning(Incident.id)
        )
        created += len(session.execute(stmt).all())
    return created


def import_incidents(
    session: Session,
    *,
    actor: User | None,
    rows: Sequence[tuple[int, Mapping[str, Any]]],
    timezone: str,
    origin: str,
    default_source: str | None = None,
    now: datetime | None = None,
    unreadable: Sequence[RowError] = (),
) -> ImportResult:
    """Check every row, then store them all or none (ImportRefused names every bad row).

    `origin` says where the rows came from for the audit log ("api", "csv:<file name>", "cli", …).
    """
    now = now or datetime.now(UTC)
    total = len(rows) + len({e.row for e in unreadable})
    if not total:
        raise InvalidInput("no incidents to import")
    if total > MAX_ROWS:
        raise InvalidInput(f"at most {MAX_ROWS} rows per import; {total} were sent")
    good, errors = check_rows(session, rows, timezone=timezone, default_source=default_source, now=now)
    if errors or unreadable:
        raise ImportRefused(sorted([*unreadable, *errors], key=lambda e: e.row), rows=total)
    created = _insert(session, good, actor=actor, now=now)
    result = ImportResult(rows=len(good), created=created, already_present=len(good) - created)
    sources = sorted({r.source for r in good})
    record(
        session,
        actor=actor,
        action="incident.import",
        object_type="incidents",
        object_id=",".join(sources)[:64],
        origin=origin[:200],
        sources=sources,
        first=min(r.occurred_at for r in good).isoformat(),
        last=max(r.occurred_at for r in good).isoformat(),
        **result.as_dict(),
    )
    session.flush()
    return result


def import_csv(
    session: Session,
    *,
    actor: User | None,
    data: bytes,
    timezone: str,
    origin: str,
    default_source: str | None = None,
    now: datetime | None = None,
) -> ImportResult:
    """A CSV export (see the module's docstring), all rows or none."""
    rows, unreadable = parse_csv(data, default_source=default_source)
    if not rows and not unreadable:
        raise InvalidInput("the file has a header but no incidents")
    return import_incidents(
        session,
        actor=actor,
        rows=rows,
        unreadable=unreadable,
        timezone=timezone,
        origin=origin,
        default_source=default_source,
        now=now,
    )


# --- reading -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IncidentFilters:
    start: datetime | None = None
    end: datetime | None = None
    category: str | None = None
    limit: int = 100


def list_incidents(session: Session, *, filters: IncidentFilters) -> tuple[list[Incident], int]:
    """Incidents newest first (at most `limit`), and how many match the filters in all."""
    if not 1 <= filters.limit <= MAX_LIST:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIST}")
    if filters.start is not None and filters.end is not None and filters.end <= filters.start:
        raise InvalidInput("'to' must be after 'from'")
    conditions = []
    if filters.start is not None:
        conditions.append(Incident.occurred_at >= filters.start)
    if filters.end is not None:
        conditions.append(Incident.occurred_at < filters.end)
    if filters.category:
        if session.get(Category, filters.category) is None:
            raise InvalidInput(f"unknown category {filters.category!r}")
        conditions.append(Incident.category_code == filters.category)
    total = session.scalar(select(func.count()).select_from(Incident).where(*conditions)) or 0
    items = session.scalars(
        select(Incident)
        .where(*conditions)
        .order_by(Incident.occurred_at.desc(), Incident.id.desc())
        .limit(filters.limit)
    )
    return list(items), total


@dataclass(frozen=True)
class SourceSummary:
    source: str
    count: int
    first: datetime
    last: datetime
    imported_at: datetime


def sources_summary(session: Session) -> list[SourceSummary]:
    """Per source: how many incidents, the span of their times, and when the last was imported."""
    rows = session.execute(
        select(
            Incident.source,
            func.count(),
            func.min(Incident.occurred_at),
            func.max(Incident.occurred_at),
            func.max(Incident.imported_at),
        )
        .group_by(Incident.source)
        .order_by(Incident.source)
    )
    return [SourceSummary(src, int(n), first, last, at) for src, n, first, last, at in rows]


def present(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "category": incident.category_code,
        "lat": incident.lat,
        "lon": incident.lon,
        "occurred_at": incident.occurred_at.isoformat(),
        "source": incident.source,
        "external_ref": incident.external_ref,
        "note": incident.note,
        "imported_at": incident.imported_at.isoformat(),
    }
