"""An incident file as the API and the import page receive it: a multipart upload, read and checked."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from riderwatch.bodies import upload_form, uploaded_file
from riderwatch.errors import N_, InvalidInput
from riderwatch.incidents import rows


@dataclass(frozen=True)
class Upload:
    data: bytes
    filename: str
    content_type: str
    source: str | None  # the optional `source` field: the source of rows that name none


async def read_upload(request: Request) -> Upload:
    """The file of a multipart upload (field `file`) and the optional `source` field."""
    form = await upload_form(request, max_fields=5)
    upload = uploaded_file(form, missing=N_("send the file (CSV or .xlsx) in the field 'file'"))
    source = form.get("source")
    if source is not None and not isinstance(source, str):
        raise InvalidInput(N_("'source' must be text"))
    if source is not None and len(source.strip()) > rows.MAX_SOURCE:
        raise InvalidInput(N_("'source' may be at most %(max)d characters"), max=rows.MAX_SOURCE)
    data = await upload.read(rows.MAX_FILE_BYTES + 1)
    return Upload(data, upload.filename or "", upload.content_type or "", (source or "").strip() or None)
