"""Incidents under /api/v1: the command centre imports the police's recorded cases; hotspots read them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from riderwatch.deps import DbSession, SettingsDep, require
from riderwatch.incidents import rows, service
from riderwatch.incidents.schemas import ROW_DESCRIPTION, ImportAnswer, ImportBody
from riderwatch.incidents.upload import read_upload
from riderwatch.infra.fields import UtcDateTime
from riderwatch.models import User

router = APIRouter(prefix="/api/v1", tags=["incidents"])

Importer = Annotated[User, Depends(require("incident.import"))]
Reader = Annotated[User, Depends(require("incident.read"))]

REFUSED = (
    "Some rows are bad: nothing was stored. A problem document whose `errors` lists every problem of every "
    "bad row as `{row, field, reason}` (rows count from 1 in the JSON list; in a file they are the rows a "
    "spreadsheet shows, the header being row 1). A file that cannot be read at all (not CSV text, not a valid "
    ".xlsx workbook, no header, no rows) gets a problem document without `errors`."
)
_FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary"},
        "source": {"type": "string", "maxLength": rows.MAX_SOURCE},
    },
}


@router.post(
    "/incidents",
    response_model=ImportAnswer,
    summary="Import incidents (JSON): all rows or none",
    responses={422: {"description": REFUSED}},
)
def import_json(body: ImportBody, db: DbSession, settings: SettingsDep, user: Importer) -> ImportAnswer:
    rows = [(i, row) for i, row in enumerate(body.incidents, start=1)]
    result = service.import_incidents(
        db, actor=user, rows=rows, timezone=settings.timezone, origin="api", default_source=body.source
    )
    return ImportAnswer(**result.as_dict())


@router.post(
    "/incidents/import",
    response_model=ImportAnswer,
    summary="Import incidents from a CSV file or an Excel workbook (.xlsx): all rows or none",
    description=(
        "Multipart with the file in `file` and optionally `source` (for a file without a `source` column). "
        "The first row names the columns: `source,external_ref,category,lat,lon,occurred_at[,note][,crs]`. "
        "CSV: UTF-8 (a BOM is fine) or GB 18030. Excel: an .xlsx workbook, its first sheet; `occurred_at` may "
        "be a date cell (local time of the station) or text, `lat` and `lon` number cells or text. The format "
        "is told by the file's content (an .xlsx file is a ZIP archive), else by its name or type. " + ROW_DESCRIPTION
    ),
    openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": _FORM_SCHEMA}}}},
    responses={422: {"description": REFUSED}},
)
async def import_file(request: Request, db: DbSession, settings: SettingsDep, user: Importer) -> ImportAnswer:
    upload = await read_upload(request)
    result = await run_in_threadpool(
        service.import_file,
        db,
        actor=user,
        data=upload.data,
        filename=upload.filename,
        content_type=upload.content_type,
        timezone=settings.timezone,
        default_source=upload.source,
    )
    return ImportAnswer(**result.as_dict())


@router.get("/incidents", summary="Incidents, newest first")
def list_incidents(
    db: DbSession,
    _user: Reader,
    start: Annotated[UtcDateTime | None, Query(alias="from", description="occurred from (inclusive)")] = None,
    end: Annotated[UtcDateTime | None, Query(alias="to", description="occurred until (exclusive)")] = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=rows.MAX_LIST)] = 100,
) -> dict[str, Any]:
    items, total = service.list_incidents(
        db, filters=service.IncidentFilters(start=start, end=end, category=category, limit=limit)
    )
    return {"items": [service.present(i) for i in items], "total": total}
