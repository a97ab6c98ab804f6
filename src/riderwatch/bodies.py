"""Request bodies: read whole before the app sees a request, limited in size per route, and free of NUL.

A body larger than its route's limit is refused (413) as soon as its declared length or the bytes that
arrived show it, so nothing reads or buffers a 200 MB upload. The refusal is raised while the app reads
the body, as an HTTP exception (FastAPI lets those through its own body parsing) carrying the domain
error, which the app answers like every other (problem+json under /api/, a page elsewhere).

FastAPI's own `max_body_size` takes one fixed number per route when the route is declared; these limits
follow the settings (photos per clue and their size, pings per batch).

A JSON or form body that holds a NUL character anywhere is refused (422) the same way: PostgreSQL cannot
store one in text, SQLite would, and no honest input holds one; so the answer is the same on both.
(Multipart bodies carry photos and files, where NUL bytes belong; their text fields are checked by their
routes' schemas, as are the bodies of routes that answer a NUL more precisely themselves.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from riderwatch.errors import N_, DomainError, InvalidInput, PayloadTooLarge, UnsupportedMedia

MIB = 1024 * 1024
DEFAULT_LIMIT = MIB  # forms and JSON bodies: far more than any of them holds


class BodyRefused(HTTPException):
    """The body is refused before the app reads it; `error` is the refusal to answer with."""

    def __init__(self, error: DomainError) -> None:
        self.error = error
        super().__init__(error.status, detail=str(error))


class BodyTooLarge(BodyRefused):
    def __init__(self, limit: int) -> None:
        super().__init__(
            PayloadTooLarge(
                N_("what was sent is larger than the %(mib)s MiB this address takes: send a smaller file, or split it"),
                mib=f"{limit / MIB:.0f}" if limit >= MIB else f"{limit / MIB:.2f}",
            )
        )


class NulInBody(BodyRefused):
    def __init__(self) -> None:
        super().__init__(InvalidInput(N_("text must not contain NUL characters")))


def _holds_nul(content_type: bytes, body: bytes) -> bool:
    """A NUL in a JSON body (only escaped, as \\u0000) or a form body (raw or as %00)."""
    kind = content_type.split(b";")[0].strip().lower()
    if kind == b"application/json" or kind.endswith(b"+json"):
        return b"\\u0000" in body or b"\x00" in body
    if kind == b"application/x-www-form-urlencoded":
        return b"%00" in body or b"\x00" in body
    return False


class BodyLimits:
    """ASGI middleware: a request's whole body is read before the app sees the request, within its route's
    limit (`limits` by (method, path), else `default`).

    So no route and no dependency runs, and none opens a transaction (on SQLite: takes the write lock)
    or holds a pooled connection, while a phone on a poor link trickles a photo or a batch in: a slow
    client costs only its own request. A body over the limit is not read on: the app gets a request
    whose body refuses to be read (413).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limits: Mapping[tuple[str, str], int],
        patterns: Sequence[tuple[str, str, int]] = (),
        default: int = DEFAULT_LIMIT,
        own_text_checks: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.limits = dict(limits)
        # Routes with a variable in their path: (method, regular expression of the whole path, limit).
        self.patterns = [(method, re.compile(path), limit) for method, path, limit in patterns]
        self.default = default
        # Paths (prefixes) whose routes check for NUL themselves, with a finer answer.
        self.own_text_checks = own_text_checks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.limits.get((scope["method"], scope["path"])) or next(
            (n for method, path, n in self.patterns if method == scope["method"] and path.fullmatch(scope["path"])),
            self.default,
        )
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), b"")
        chunks: list[bytes] = []
        if not (declared.isdigit() and int(declared) > limit):
            size = 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return  # the client left before it finished sending: nothing to answer
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    break
                chunks.append(chunk)
                if not message.get("more_body", False):
                    body = b"".join(chunks)
                    content_type = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
                    checked_here = not scope["path"].startswith(self.own_text_checks)
                    if checked_here and _holds_nul(content_type, body):
                        await self.app(scope, _refusal(NulInBody()), send)
                    else:
                        await self.app(scope, _replay(body, receive), send)
                    return

        await self.app(scope, _refusal(BodyTooLarge(limit)), send)


def _refusal(error: BodyRefused) -> Receive:
    """A body that refuses to be read: the app answers `error` when it reads it."""

    async def refuse() -> Message:
        raise error

    return refuse


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body as one message, then the client's own messages (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def upload_form(request: Request, *, max_fields: int = 8) -> FormData:
    """A multipart form carrying one file in the field `file` (an upload page or API): read within the
    route's body limit; a body that is not multipart, or broken, is refused with the reason."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise UnsupportedMedia(N_("send the file as multipart/form-data in the field 'file'"))
    try:
        return await request.form(max_files=1, max_fields=max_fields)
    except BodyRefused:
        raise  # too large, or not text: answered by the door's own status (413, 422)
    except Exception as exc:  # Starlette raises assorted errors for broken or over-limit bodies
        raise InvalidInput(N_("malformed multipart body (one file in 'file'): %(reason)s"), reason=str(exc)) from exc


def uploaded_file(form: FormData, *, missing: str) -> UploadFile:
    """The form's file, or the refusal `missing` (which names the kinds of file the route takes)."""
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise InvalidInput(missing)
    return upload


def form_flag(form: FormData, name: str) -> bool:
    """A yes/no field of a form (true/false, 1/0, yes/no, on/off; missing is no), or a refusal naming it."""
    value = form.get(name)
    text = value.strip().lower() if isinstance(value, str) else None
    if value is None or text == "":
        return False
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise InvalidInput(N_("%(name)r must be true or false"), name=name)


def upload_openapi(**fields: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI description of an upload form: the file in `file`, and the other fields given."""
    schema = {
        "type": "object",
        "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary"}, **fields},
    }
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}
