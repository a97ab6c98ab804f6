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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, func, or_, select
from sqlalchemy.orm import Session

from riderwatch.audit.service import record
from riderwatch.db import upsert
from riderwatch.errors import N_, InvalidInput
from riderwatch.incidents.files import file_format, parse_csv, parse_xlsx
from riderwatch.incidents.rows import (
    MAX_LIST,
    MAX_ROWS,
    ImportRefused,
    ImportResult,
    IncidentRow,
    RowError,
    check_rows,
)
from riderwatch.infra.clock import utcnow
from riderwatch.infra.sqlparams import values_column
from riderwatch.models import Category, Incident, User

# The fields an import sets; a re-import that changes any of them updates the stored case.
IMPORTED_FIELDS = ("category_code", "lat", "lon", "occurred_at", "note")
# A position moves when a coordinate changes by more than this (degrees, about a centimetre): the
# same place sent once in GCJ-02 and once in WGS-84 differs only in the last bits of the conversion.
SAME_PLACE = 1e-7
# Updated cases named one by one in the audit entry (the counts are always there).
AUDIT_UPDATED = 100


# --- importing -------------------------------------------------------------------------------------

Key = tuple[str, str]
# The imported fields under the names a file gives them.
FIELD_NAMES = {"category_code": "category"}


def _imported(row: IncidentRow) -> tuple[Any, ...]:
    return (row.category_code, row.lat, row.lon, row.occurred_at, row.note)


def _stored_versions(session: Session, rows: Sequence[IncidentRow]) -> dict[Key, tuple[Any, ...]]:
    """The imported fields of the cases already stored under the rows' (source, external_ref).

    A source's case numbers go as one parameter (`infra.sqlparams`), joined on the unique index: a
    long IN list of parameters is only a filter to PostgreSQL's planner, compared with every stored
    case of the source (seconds per thousand numbers).
    """
    refs: dict[str, list[str]] = {}
    for r in rows:
        refs.setdefault(r.source, []).append(r.external_ref)
    columns = [getattr(Incident, field) for field in IMPORTED_FIELDS]
    found: dict[Key, tuple[Any, ...]] = {}
    for source, names in refs.items():
        ref = values_column(session, names, String(), name="ref")
        query = (
            select(Incident.external_ref, *columns)
            .join(ref.table, Incident.external_ref == ref)
            .where(Incident.source == source)
        )
        for external_ref, *values in session.execute(query):
            found[(source, external_ref)] = tuple(values)
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
