"""The riders' programme under /api/v1/riders: importing a platform's rider list."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Request
from starlette.datastructures import UploadFile

from riderwatch.bodies import BodyRefused
from riderwatch.deps import login_hashes, reads_only, require
from riderwatch.errors import N_, InvalidInput, UnsupportedMedia
from riderwatch.models import User
from riderwatch.riders import imports

router = APIRouter(prefix="/api/v1", tags=["riders"])

Importer = Annotated[User, Depends(require("rider.import"))]


def _flag(value: Any, name: str) -> bool:
    if value is None or value == "":
        return False
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise InvalidInput(N_("%(name)r must be true or false"), name=name)


@router.post(
    "/riders/import",
    summary="Import a rider list (XLSX or CSV; dry_run=true only checks); all rows or none",
    responses={
        422: {"description": "a bad file or bad rows (each named by its spreadsheet row); nothing stored"},
        413: {"description": "the file is too large"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "dry_run": {"type": "boolean"},
                            "rider_status": {"type": "string", "enum": list(imports.IMPORT_STATUSES)},
                        },
                    }
                }
            },
        }
    },
)
@reads_only
async def import_riders(
    request: Request, user: Importer, hashes: Annotated[anyio.CapacityLimiter, Depends(login_hashes)]
) -> dict[str, Any]:
    # `reads_only`: the caller was read in a transaction that has ended; the import keeps its own (a
    # read-only one to check, one short one to store) and hashes the new riders' codes between them.
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise UnsupportedMedia(N_("send the file as multipart/form-data in the field 'file'"))
    try:
        form = await request.form(max_files=1, max_fields=5)
    except BodyRefused:
        raise  # too large, or not text: answered by the door's own status (413, 422)
    except Exception as exc:  # Starlette raises assorted errors for broken or over-limit bodies
        raise InvalidInput(N_("malformed multipart body (one file in 'file'): %(reason)s"), reason=str(exc)) from exc
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidInput(N_("send the file (CSV or .xlsx) in the field 'file'"))
    dry_run = _flag(form.get("dry_run"), "dry_run")
    status = form.get("rider_status") or "applied"
    if not isinstance(status, str):
        raise InvalidInput(N_("'rider_status' must be text"))
    data = await upload.read(imports.MAX_FILE_BYTES + 1)
    result = await imports.import_riders(
        request.app.state.session_factory,
        request.app.state.read_session_factory,
        hashes,
        importer=user,
        data=data,
        filename=upload.filename or "",
        content_type=upload.content_type or "",
        dry_run=dry_run,
        rider_status=status,
    )
    return {
        "dry_run": dry_run,
        "created": result.created,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "errors": [],
        "accounts": [
            {
                "row": a.row,
                "name": a.name,
                "username": a.username,
                "one_time_code": a.code,
                "expires_at": a.expires_at.isoformat(),
            }
            for a in result.accounts
        ],
    }
