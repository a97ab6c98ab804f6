"""An incident file as the API and the import page receive it: a multipart upload, read and checked."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from starlette.datastructures import UploadFile

from riderwatch.bodies import BodyRefused
from riderwatch.errors import N_, InvalidInput, UnsupportedMedia
from riderwatch.incidents import rows


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
    except BodyRefused:
        raise  # too large, or not text: answered by the door's own status (413, 422)
    except Exception as exc:  # Starlette raises assorted errors for broken or over-limit bodies
        raise InvalidInput(N_("malformed multipart body (one file in 'file'): %(reason)s"), reason=str(exc)) from exc
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidInput(N_("send the file (CSV or .xlsx) in the field 'file'"))
    source = form.get("source")
    if source is not None and not isinstance(source, str):
        raise InvalidInput(N_("'source' must be text"))
    if source is not None and len(source.strip()) > rows.MAX_SOURCE:
        raise InvalidInput(N_("'source' may be at most %(max)d characters"), max=rows.MAX_SOURCE)
    data = await upload.read(rows.MAX_FILE_BYTES + 1)
    return Upload(data, upload.filename or "", upload.content_type or "", (source or "").strip() or None)
