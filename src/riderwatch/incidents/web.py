"""The page where the command centre imports the police's recorded cases (incidents) from a CSV
export or an Excel workbook.

Thin like the other pages: the upload goes to incidents.service.import_file, the service behind
POST /api/v1/incidents/import. A refused file stores nothing and the page lists every bad row with
its reason; a good one redirects to the page with the counts (created, updated, unchanged), so a
reload does not post it again.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from riderwatch.deps import DbSession, SettingsDep, require
from riderwatch.errors import DomainError
from riderwatch.i18n import request_locale
from riderwatch.incidents import rows, service
from riderwatch.incidents.upload import read_upload
from riderwatch.models import User
from riderwatch.web.templating import Formatter, render

router = APIRouter(include_in_schema=False)

Importer = Annotated[User, Depends(require("incident.import"))]
COUNT = Annotated[int, Query(ge=0, le=rows.MAX_ROWS)]


def _page(request: Request, db: Session, *, status: int = 200, **extra: Any) -> HTMLResponse:
    context: dict[str, Any] = {
        "sources": service.sources_summary(db),
        "columns": rows.COLUMNS,
        "required": rows.REQUIRED,
        "max_rows": rows.MAX_ROWS,
        "max_mib": rows.MAX_FILE_BYTES // (1024 * 1024),
        "errors": [],
        "source_value": "",
    }
    context.update(extra)
    return render(request, "incidents/import.html", context, status=status)


@router.get("/incidents/import")
def import_page(
    request: Request,
    db: DbSession,
    _user: Importer,
    created: COUNT | None = None,
    updated: COUNT | None = None,
    unchanged: COUNT | None = None,
) -> HTMLResponse:
    extra: dict[str, Any] = {}
    if created is not None and updated is not None and unchanged is not None:
        _ = Formatter(request_locale(request), request.app.state.settings.timezone)._
        text = _("Imported: %(created)d new incidents, %(updated)d updated, %(unchanged)d unchanged.")
        counts = {"created": created, "updated": updated, "unchanged": unchanged}
        extra = {"message": text % counts, "message_kind": "success"}
    return _page(request, db, **extra)


@router.post("/incidents/import")
async def import_upload(request: Request, db: DbSession, settings: SettingsDep, user: Importer) -> Response:
    _ = Formatter(request_locale(request), settings.timezone)._
    source: str | None = None
    try:
        upload = await read_upload(request)
        source = upload.source
        result = await run_in_threadpool(
            service.import_file,
            db,
            actor=user,
            data=upload.data,
            filename=upload.filename,
            content_type=upload.content_type,
            timezone=settings.timezone,
            default_source=source,
        )
    except rows.ImportRefused as exc:
        return await run_in_threadpool(
            _page,
            request,
            db,
            status=exc.status,
            errors=exc.errors,
            source_value=source or "",
            message=_("Nothing was imported: correct the rows below and upload the file again."),
            message_detail=exc.translated(_),
            message_kind="error",
        )
    except DomainError as exc:
        return await run_in_threadpool(
            _page,
            request,
            db,
            status=exc.status,
            source_value=source or "",
            message=_("Nothing was imported."),
            message_detail=exc.translated(_),
            message_kind="error",
        )
    return RedirectResponse(
        f"/incidents/import?created={result.created}&updated={result.updated}&unchanged={result.unchanged}",
        status_code=303,
    )
