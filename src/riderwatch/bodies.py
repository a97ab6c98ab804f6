"""Request bodies: read whole before the app sees a request, and limited in size per route.

A body larger than its route's limit is refused (413) as soon as its declared length or the bytes that
arrived show it, so nothing reads or buffers a 200 MB upload. The refusal is raised while the app reads
the body, as an HTTP exception (FastAPI lets those through its own body parsing) carrying the domain
error, which the app answers like every other (problem+json under /api/, a page elsewhere).

FastAPI's own `max_body_size` takes one fixed number per route when the route is declared; these limits
follow the settings (photos per clue and their size, pings per batch).
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from riderwatch.errors import N_, PayloadTooLarge

MIB = 1024 * 1024
DEFAULT_LIMIT = MIB  # forms and JSON bodies: far more than any of them holds


class BodyTooLarge(HTTPException):
    """The body passed its route's limit; `error` is the refusal to answer with."""

    def __init__(self, limit: int) -> None:
        self.error = PayloadTooLarge(
            N_("the request body is larger than this address takes (%(max)d bytes)"), max=limit
        )
        super().__init__(413, detail=str(self.error))


class BodyLimits:
    """ASGI middleware: a request's whole body is read before the app sees the request, within its route's
    limit (`limits` by (method, path), else `default`).

    So no route and no dependency runs, and none opens a transaction (on SQLite: takes the write lock)
    or holds a pooled connection, while a phone on a poor link trickles a photo or a batch in: a slow
    client costs only its own request. A body over the limit is not read on: the app gets a request
    whose body refuses to be read (413).
    """

    def __init__(self, app: ASGIApp, *, limits: Mapping[tuple[str, str], int], default: int = DEFAULT_LIMIT) -> None:
        self.app = app
        self.limits = dict(limits)
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.limits.get((scope["method"], scope["path"]), self.default)
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
                    await self.app(scope, _replay(b"".join(chunks), receive), send)
                    return

        async def refuse() -> Message:
            raise BodyTooLarge(limit)

        await self.app(scope, refuse, send)


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
