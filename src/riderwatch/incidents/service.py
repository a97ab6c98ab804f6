"""Importing the police's own recorded cases (incidents) and reading them back.

An import is all or nothing: every row is checked first, and if any is bad nothing is stored and
every bad row is named with its row number and the reason. A good batch is compared with what is
stored under each `(source, external_ref)`: a new case is added, a case whose imported fields
(category, place, time, note) changed in the police's system is updated, an identical one is left
alone; the answer and the one audit entry per import say how many were created, updated and
unchanged.

Rows come as mappings of text or numbers: from the JSON API, or from a file whose first row names
the columns `source,external_ref,category,lat,lon,occurred_at[,note][,crs]` — a CSV export (UTF-8
with or without a BOM, or GB 18030 as Chinese spreadsheets save it) or an Excel workbook (.xlsx: the
first sheet; times may be date cells or text). A time without an offset is local time of the station.
"""

from __future__ import annotations

import csv
import io
import math
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import load_workbook
from sqlalchemy import String, bindparam, func, or_, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from riderwatch.audit.service import record
from riderwatch.db import upsert
from riderwatch.errors import N_, InvalidInput
from riderwatch.geo.coords import to_wgs84
from riderwatch.infra.clock import utcnow
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
# Case numbers per IN list when SQLite looks up the cases already stored.
CHUNK = 1000
# The fields an import sets; a re-import that changes any of them updates the stored case.
IMPORTED_FIELDS = ("category_code", "lat", "lon", "occurred_at", "note")
# A position moves when a coordinate changes by more than this (degrees, about a centimetre): the
# same place sent once in GCJ-02 and once in WGS-84 differs only in the last bits of the conversion.
SAME_PLACE = 1e-7
# Updated cases named one by one in the audit entry (the counts are always there).
AUDIT_UPDATED = 100
# An .xlsx file is a ZIP archive; Excel 97-2003 (.xls) and password-protected workbooks are OLE files.
ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# What an .xlsx upload may unpack to: a full 20 000-row sheet is a few tens of MiB of XML, and the
# bound keeps a small crafted archive from keeping a worker busy unpacking gigabytes.
MAX_XLSX_UNPACKED = 128 * 1024 * 1024


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


# --- reading files -------------------------------------------------------------------------------

# (row number, cells by column) of each record of a file, and the rows that are not even records.
Table = tuple[list[tuple[int, dict[str, Any]]], list[RowError]]
# Columns read as text: a case number typed into a spreadsheet as a number is still that number.
TEXT_COLUMNS = ("source", "external_ref", "category", "note", "crs")


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidInput(N_("the file is neither UTF-8 nor GB 18030 text"))


def _blank(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _trimmed(cells: Sequence[Any]) -> Sequence[Any]:
    """The cells without the empty ones at the end of the row (spreadsheets leave them behind)."""
    end = len(cells)
    while end and _blank(cells[end - 1]):
        end -= 1
    return cells[:end]


def _table(records: Sequence[tuple[int, Sequence[Any]]], *, default_source: str | None, empty: str) -> Table:
    """The rows of a sheet whose first record names the columns; `records` leaves out blank rows.

    A bad header refuses the whole file (ImportRefused, at the header's row). The `source` column
    may be left out when a default source is given. `empty` is the refusal for no records at all, a
    message with the `columns` parameter.
    """
    if not records:
        raise InvalidInput(empty, columns=",".join(REQUIRED))
    header_row, header_cells = records[0]
    header = [("" if cell is None else str(cell)).strip().lower() for cell in _trimmed(header_cells)]
    data_rows = len(records) - 1
    if data_rows > MAX_ROWS:
        raise InvalidInput(N_("at most %(max)d rows per import; the file has more"), max=MAX_ROWS)
    problems = []
    unknown = [h or "(no name)" for h in header if h not in COLUMNS]
    if unknown:
        problems.append(
            RowError(header_row, "header", f"unknown columns: {', '.join(unknown)} (known: {', '.join(COLUMNS)})")
        )
    repeated = sorted({h for h in header if h and header.count(h) > 1})
    if repeated:
        problems.append(RowError(header_row, "header", f"columns named twice: {', '.join(repeated)}"))
    optional = ("source",) if default_source else ()
    missing = [c for c in REQUIRED if c not in header and c not in optional]
    if missing:
        problems.append(RowError(header_row, "header", f"missing columns: {', '.join(missing)}"))
    if problems:
        raise ImportRefused(problems, rows=data_rows)
    rows: list[tuple[int, dict[str, Any]]] = []
    errors: list[RowError] = []
    for number, raw_cells in records[1:]:
        cells = _trimmed(raw_cells)
        if len(cells) > len(header):
            errors.append(RowError(number, "", f"{len(cells)} cells but the header names {len(header)} columns"))
            continue
        rows.append((number, dict(zip(header, cells, strict=False))))
    return rows, errors


def parse_csv(data: bytes, *, default_source: str | None = None) -> Table:
    """(row number, cells by column) of a CSV export, and the rows that are not even records.

    The header is row 1, as a spreadsheet shows it.
    """
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInput(N_("the file is larger than %(mib)d MiB; split it"), mib=MAX_FILE_BYTES // (1024 * 1024))
    if b"\x00" in data:
        raise InvalidInput(N_("the file is not CSV text (it holds NUL bytes); save the sheet as CSV or .xlsx"))
    text = _decode(data)
    try:
        records = [
            (number, cells)
            for number, cells in enumerate(csv.reader(io.StringIO(text, newline="")), start=1)
            if not all(_blank(cell) for cell in cells)
        ]
    except csv.Error as exc:
        raise InvalidInput(N_("the file is not valid CSV: %(reason)s"), reason=str(exc)) from exc
    return _table(
        records,
        default_source=default_source,
        empty=N_("the file is empty; the first row must name the columns: %(columns)s"),
    )


def _xlsx_cell(column: str, value: Any) -> Any:
    """A workbook cell as the checks take it: whole numbers in text columns as their digits."""
    if column in TEXT_COLUMNS and isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value


def parse_xlsx(data: bytes, *, default_source: str | None = None) -> Table:
    """(row number, cells by column) of the first sheet of an Excel workbook (.xlsx), as for a CSV file.

    Row numbers are the sheet's own. Cells keep their types: numbers stay numbers, date cells are
    datetimes (read as local time of the station, like a time written without an offset).
    """
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInput(N_("the file is larger than %(mib)d MiB; split it"), mib=MAX_FILE_BYTES // (1024 * 1024))
    if data.startswith(OLE_MAGIC):
        raise InvalidInput(
            N_(
                "the file is an Excel 97-2003 (.xls) or password-protected workbook; "
                "save it as .xlsx without a password, or as CSV"
            )
        )
    not_xlsx = N_("the file is not a valid Excel workbook (.xlsx); save the sheet as .xlsx or CSV")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise InvalidInput(not_xlsx) from exc
    if unpacked > MAX_XLSX_UNPACKED:
        raise InvalidInput(
            N_("the workbook unpacks to more than %(mib)d MiB; split it"), mib=MAX_XLSX_UNPACKED // (1024 * 1024)
        )
    records: list[tuple[int, Sequence[Any]]] = []
    sheets = 0
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            sheets = len(book.worksheets)
            if sheets:
                sheet = book.worksheets[0]
                # The size a workbook declares may be wrong; read the rows that are there.
                sheet.reset_dimensions()
                for number, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
                    if all(_blank(cell) for cell in cells):
                        continue
                    records.append((number, cells))
                    if len(records) > MAX_ROWS + 1:
                        break  # one header and more rows than allowed: no need to read on
        finally:
            book.close()
    except Exception as exc:  # openpyxl raises assorted errors for a damaged or foreign archive
        raise InvalidInput(not_xlsx) from exc
    if not sheets:
        raise InvalidInput(N_("the workbook has no worksheet"))
    rows, errors = _table(
        records,
        default_source=default_source,
        empty=N_("the workbook's first sheet is empty; the first row must name the columns: %(columns)s"),
    )
    return [(number, {k: _xlsx_cell(k, v) for k, v in cells.items()}) for number, cells in rows], errors


def file_format(data: bytes, *, filename: str = "", content_type: str = "") -> str:
    """The file's format, "xlsx" or "csv": by its first bytes, else by its name or declared type.

    Magic bytes first: browsers on Windows often declare a CSV file as an Excel one.
    """
    if data.startswith((ZIP_MAGIC, OLE_MAGIC)):
        return "xlsx"
    if filename.lower().endswith((".xlsx", ".xls")) or content_type.split(";")[0].strip().lower() == XLSX_TYPE:
        return "xlsx"  # named a workbook but not one: the workbook reader says why
    return "csv"


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


# --- importing -------------------------------------------------------------------------------------

Key = tuple[str, str]
# The imported fields under the names a file gives them.
FIELD_NAMES = {"category_code": "category"}


def _imported(row: IncidentRow) -> tuple[Any, ...]:
    return (row.category_code, row.lat, row.lon, row.occurred_at, row.note)


def _stored_versions(session: Session, rows: Sequence[IncidentRow]) -> dict[Key, tuple[Any, ...]]:
    """The imported fields of the cases already stored under the rows' (source, external_ref).

    On PostgreSQL a source's case numbers go as one array, joined on the unique index: a long IN
    list of parameters is only a filter to its planner, compared with every stored case of the
    source (seconds per thousand numbers). SQLite looks IN lists up in the index itself.
    """
    refs: dict[str, list[str]] = {}
    for r in rows:
        refs.setdefault(r.source, []).append(r.external_ref)
    columns = [getattr(Incident, field) for field in IMPORTED_FIELDS]
    postgres = session.get_bind().dialect.name == "postgresql"
    found: dict[Key, tuple[Any, ...]] = {}
    for source, names in refs.items():
        if postgres:
            wanted = func.unnest(bindparam(None, names, type_=postgresql.ARRAY(String))).table_valued("ref")
            table = wanted.render_derived()
            queries = [
                select(Incident.external_ref, *columns)
                .join(table, Incident.external_ref == table.c.ref)
                .where(Incident.source == source)
            ]
        else:
            queries = [
                select(Incident.external_ref, *columns).where(
                    Incident.source == source, Incident.external_ref.in_(names[i : i + CHUNK])
                )
                for i in range(0, len(names), CHUNK)
            ]
        for query in queries:
            for ref, *values in session.execute(query):
                found[(source, ref)] = tuple(values)
    return found


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


@dataclass(frozen=True)
class _Written:
    created: int
    # Each updated case's key and its changed fields as {name: [before, after]}.
    updated: list[tuple[Key, dict[str, list[Any]]]]


def _store(session: Session, rows: list[IncidentRow], *, actor: User | None, now: datetime) -> _Written:
    """Add the new cases and update those whose imported fields changed; leave identical ones alone.

    The rows are compared with what is stored when the import begins, and the statement compares
    again as it writes (a stored case is updated only where a field differs), so the stored cases are
    right even when two imports of the same cases run at once; only the counts may then be off (a
    case both add counts as created in the one whose version differed from the other's).
    """
    # In key order, so concurrent imports of overlapping files lock rows in the same order.
    rows = sorted(rows, key=lambda r: (r.source, r.external_ref))
    before = _stored_versions(session, rows)
    changes: dict[Key, dict[str, list[Any]]] = {}
    to_write: list[IncidentRow] = []
    for r in rows:
        key = (r.source, r.external_ref)
        old = before.get(key)
        if old is None:
            to_write.append(r)
            continue
        changed = {
            FIELD_NAMES.get(field, field): [_json(was), _json(now_is)]
            for field, was, now_is in zip(IMPORTED_FIELDS, old, _imported(r), strict=True)
            if (abs(was - now_is) > SAME_PLACE if field in ("lat", "lon") else was != now_is)
        }
        if changed:
            changes[key] = changed
            to_write.append(r)
    written: set[Key] = set()
    if to_write:
        # One statement, compiled once and sent for many rows at a time (SQLAlchemy's "insertmanyvalues"):
        # compiling a fresh thousand-row VALUES statement per chunk cost more than the database's work.
        insert = upsert(session, Incident)
        stmt = insert.on_conflict_do_update(
            index_elements=["source", "external_ref"],
            set_={field: insert.excluded[field] for field in (*IMPORTED_FIELDS, "imported_at", "imported_by_id")},
            where=or_(
                *(
                    func.abs(getattr(Incident, field) - insert.excluded[field]) > SAME_PLACE
                    if field in ("lat", "lon")
                    else getattr(Incident, field) != insert.excluded[field]
                    for field in IMPORTED_FIELDS
                )
            ),
        ).returning(Incident.source, Incident.external_ref)
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
            for r in to_write
        ]
        written.update((src, ref) for src, ref in session.execute(stmt, values))
    keys = [(r.source, r.external_ref) for r in to_write]
    created = sum(1 for key in keys if key not in before and key in written)
    updated = [(key, changed) for key, changed in changes.items() if key in written]
    return _Written(created=created, updated=updated)


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

    New cases are created, stored ones whose imported fields differ are updated, the rest are
    unchanged. `origin` says where the rows came from for the audit log ("api", "csv:<file name>",
    "cli:<file name>", …).
    """
    now = now or utcnow()
    total = len(rows) + len({e.row for e in unreadable})
    if not total:
        raise InvalidInput(N_("no incidents to import"))
    if total > MAX_ROWS:
        raise InvalidInput(N_("at most %(max)d rows per import; %(n)d were sent"), max=MAX_ROWS, n=total)
    good, errors = check_rows(session, rows, timezone=timezone, default_source=default_source, now=now)
    if errors or unreadable:
        raise ImportRefused(sorted([*unreadable, *errors], key=lambda e: e.row), rows=total)
    written = _store(session, good, actor=actor, now=now)
    updated = len(written.updated)
    result = ImportResult(
        rows=len(good), created=written.created, updated=updated, unchanged=len(good) - written.created - updated
    )
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
        # What each updated case was and became (the first AUDIT_UPDATED of them).
        updated_cases=[
            {"source": source, "external_ref": ref, "changed": changed}
            for (source, ref), changed in written.updated[:AUDIT_UPDATED]
        ],
    )
    session.flush()
    return result


def import_file(
    session: Session,
    *,
    actor: User | None,
    data: bytes,
    filename: str = "",
    content_type: str = "",
    timezone: str,
    origin: str | None = None,
    default_source: str | None = None,
    now: datetime | None = None,
) -> ImportResult:
    """A CSV export or an Excel workbook (see the module's docstring), all rows or none.

    `origin` is for the audit log; by default the file's format and name, e.g. "xlsx:cases.xlsx".
    """
    kind = file_format(data, filename=filename, content_type=content_type)
    rows, unreadable = (
        parse_xlsx(data, default_source=default_source)
        if kind == "xlsx"
        else parse_csv(data, default_source=default_source)
    )
    if not rows and not unreadable:
        if kind == "xlsx":
            raise InvalidInput(N_("the workbook's first sheet has a header but no incidents"))
        raise InvalidInput(N_("the file has a header but no incidents"))
    return import_incidents(
        session,
        actor=actor,
        rows=rows,
        unreadable=unreadable,
        timezone=timezone,
        origin=origin or f"{kind}:{filename}",
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
        raise InvalidInput(N_("limit must be between 1 and %(max)d"), max=MAX_LIST)
    if filters.start is not None and filters.end is not None and filters.end <= filters.start:
        raise InvalidInput(N_("'to' must be after 'from'"))
    conditions = []
    if filters.start is not None:
        conditions.append(Incident.occurred_at >= filters.start)
    if filters.end is not None:
        conditions.append(Incident.occurred_at < filters.end)
    if filters.category:
        if session.get(Category, filters.category) is None:
            raise InvalidInput(N_("unknown category %(code)r"), code=filters.category)
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
