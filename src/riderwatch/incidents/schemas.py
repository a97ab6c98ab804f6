"""The shapes of an incident import, from the API's JSON body or an uploaded file, and its answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile

from riderwatch.errors import N_, InvalidInput, UnsupportedMedia
from riderwatch.incidents import service

ROW_DESCRIPTION = (
    "One case: `source` (the system, e.g. `110`, `case-system`; may come from the body's `source`), "
    "`external_ref` (its number there; importing the same source and number again updates the stored case "
    "if its category, place, time or note changed, and leaves it alone if not), "
    "`category` (a category code, or its Chinese or English name), `lat`, `lon` (WGS-84, or GCJ-02 with "
    '`"crs": "gcj02"`), `occurred_at` (ISO 8601; without an offset, local time of the station), '
    "`note` (optional, up to 500 characters)."
)


class ImportBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str | None = Field(
        default=None, max_length=service.MAX_SOURCE, description="the source of rows that name none"
    )
    incidents: list[dict[str, Any]] = Field(min_length=1, max_length=service.MAX_ROWS, description=ROW_DESCRIPTION)


class ImportAnswer(BaseModel):
    rows: int = Field(description="rows in the batch")
    created: int = Field(description="incidents stored now")
    updated: int = Field(description="incidents stored before whose category, place, time or note the rows changed")
    unchanged: int = Field(description="incidents stored before exactly as the rows give them")


@dataclass(frozen=True)
class Upload:
    data: bytes
    filename: str
    content_type: str
    source: str | None  # the optional `source` field: the source of rows that name none


async def read_upload(request: Request) -> Upload:
    """The file of a multipart upload (field `file`) and the optional `source` field."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise UnsupportedMedia(N_("send the file as multipart/form-data in the field 'file'"))
    try:
        form = await request.form(max_files=1, max_fields=5)
    except Exception as exc:  # Starlette raises assorted errors for broken or over-limit bodies
        raise InvalidInput(N_("malformed multipart body (one file in 'file'): %(reason)s"), reason=str(exc)) from exc
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidInput(N_("send the file (CSV or .xlsx) in the field 'file'"))
    source = form.get("source")
    if source is not None and not isinstance(source, str):
        raise InvalidInput(N_("'source' must be text"))
    if source is not None and len(source.strip()) > service.MAX_SOURCE:
        raise InvalidInput(N_("'source' may be at most %(max)d characters"), max=service.MAX_SOURCE)
    data = await upload.read(service.MAX_FILE_BYTES + 1)
    return Upload(data, upload.filename or "", upload.content_type or "", (source or "").strip() or None)
