"""The page where a station manager (or an administrator) imports the rider list a platform sends.

Thin like the other pages: the upload goes to riders.imports.import_riders, the service behind
POST /api/v1/riders/import. "Check" answers what an import would do and stores nothing; "Import"
stores every row or none, and shows the new riders' one-time codes in this answer only (no redirect:
a code must not sit in an address or the browser's history), ready to print and hand out.
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from riderwatch.bodies import BodyRefused
from riderwatch.deps import login_hashes, reads_only, require
from riderwatch.errors import N_, DomainError, InvalidInput, UnsupportedMedia
from riderwatch.models import User
from riderwatch.riders import imports
from riderwatch.web.forms import formatter
from riderwatch.web.templating import render

router = APIRouter(include_in_schema=False)

Importer = Annotated[User, Depends(require("rider.import"))]


def _page(request: Request, *, status: int = 200, **extra: Any) -> HTMLResponse:
    context: dict[str, Any] = {
        "max_rows": imports.MAX_ROWS,
        "max_mib": imports.MAX_FILE_BYTES // (1024 * 1024),
        "problems": [],
        "result": None,
        "checked": False,
        "code_days": imports.CODE_TTL.days,
    }
    context.update(extra)
    return render(request, "riders/import.html", context, status=status, headers={"Cache-Control": "no-store"})


@router.get("/riders/import")
def import_page(request: Request, _user: Importer) -> HTMLResponse:
    return _page(request)


@router.post("/riders/import")
@reads_only
async def import_upload(
    request: Request, user: Importer, hashes: Annotated[anyio.CapacityLimiter, Depends(login_hashes)]
) -> Response:
    # `reads_only`: the caller was read in a transaction that has ended; the import keeps its own.
    _ = formatter(request)._
    try:
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise UnsupportedMedia(N_("send the file as multipart/form-data in the field 'file'"))
        try:
            form = await request.form(max_files=1, max_fields=6)
        except BodyRefused:
            raise
        except Exception as exc:  # Starlette raises assorted errors for broken or over-limit bodies
            raise InvalidInput(
                N_("malformed multipart body (one file in 'file'): %(reason)s"), reason=str(exc)
            ) from exc
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise InvalidInput(N_("send the file (CSV or .xlsx) in the field 'file'"))
        check = form.get("action") == "check"
        status = "active" if form.get("rider_status") == "active" else "applied"
        data = await upload.read(imports.MAX_FILE_BYTES + 1)
        result = await imports.import_riders(
            request.app.state.session_factory,
            request.app.state.read_session_factory,
            hashes,
            importer=user,
            data=data,
            filename=upload.filename or "",
            content_type=upload.content_type or "",
            dry_run=check,
            rider_status=status,
        )
    except imports.RidersRefused as exc:
        problems = [
            {"row": p.row, "column": p.column, "reason": _(p.message) % p.params if p.params else _(p.message)}
            for p in exc.problems
        ]
        return _page(
            request,
            status=exc.status,
            problems=problems,
            message=_("Nothing was imported: correct the rows below and upload the file again."),
            message_detail=exc.translated(_),
            message_kind="error",
        )
    except DomainError as exc:
        message = _("Nothing was imported.")
        return _page(
            request, status=exc.status, message=message, message_detail=exc.translated(_), message_kind="error"
        )
    counts = {"created": result.created, "updated": result.updated, "unchanged": result.unchanged}
    if check:
        text = _(
            "The file is correct. Importing it would add %(created)d riders, update %(updated)d "
            "and leave %(unchanged)d as they are."
        )
    else:
        text = _("Imported: %(created)d new riders, %(updated)d updated, %(unchanged)d unchanged.")
    return _page(request, result=result, checked=check, message=text % counts, message_kind="success")
