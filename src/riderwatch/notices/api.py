"""Notices and the live stream under /api/v1: a user's inbox, and `GET /api/v1/alerts/stream`, their
Server-Sent Events (alerts and notices for riders, receipts and sightings for the command centre)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session, sessionmaker
from sse_starlette import EventSourceResponse, ServerSentEvent

from riderwatch.deps import CurrentUser, DbSession
from riderwatch.models import StreamEvent
from riderwatch.notices import service
from riderwatch.notices.bus import BUS

router = APIRouter(prefix="/api/v1", tags=["notices"])
HEARTBEAT_SECONDS = 15  # a comment line this often keeps proxies from cutting an idle stream


class ReadBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[Annotated[int, Field(ge=1, le=2**62)]] | None = Field(
        default=None, max_length=500, description="the notices to mark read; none: all of them"
    )


@router.get("/me/notices", summary="My notices, newest first, with how many are unread")
def my_notices(
    db: DbSession,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**62, description="the id to page back from")] = None,
    unread: bool = False,
) -> dict[str, Any]:
    rows, count = service.inbox(db, user_id=user.id, limit=limit, before=before, unread_only=unread)
    return {"items": [service.present(n) for n in rows], "unread": count}


@router.post("/me/notices/read", summary="Mark my notices read (these, or all)")
def read_notices(body: ReadBody, db: DbSession, user: CurrentUser) -> dict[str, int]:
    return {"marked": service.mark_read(db, user_id=user.id, ids=body.ids)}


def _fetch(factory: sessionmaker[Session], user_id: int, after: int | None) -> tuple[int, list[StreamEvent]]:
    """The events after `after`; without one, the id of the newest event (where a new stream starts)."""
    with factory() as session:
        if after is None:
            return service.last_event_id(session, user_id=user_id), []
        rows = service.events_after(session, user_id=user_id, after=after)
        session.expunge_all()
        return after, rows


async def _events(request: Request, user_id: int, after: int | None) -> AsyncIterator[ServerSentEvent]:
    factory = request.app.state.read_session_factory
    subscription = BUS.subscribe(user_id)  # before reading: nothing committed from here on is missed
    try:
        last, _none = await anyio.to_thread.run_sync(_fetch, factory, user_id, None)
        if after is not None:
            last = min(after, last)
        # "ready" tells the client it is subscribed, and from which event on (its id resumes there).
        yield ServerSentEvent(data=json.dumps({"last_event_id": last}), event="ready", id=str(last))
        while True:
            subscription.woken.clear()  # before reading: a commit after this wakes the wait below
            last, rows = await anyio.to_thread.run_sync(_fetch, factory, user_id, last)
            for row in rows:
                last = row.id
                yield ServerSentEvent(data=json.dumps(row.data, ensure_ascii=False), event=row.event, id=str(row.id))
            if len(rows) < service.REPLAY_LIMIT:
                await subscription.woken.wait()
    finally:
        BUS.unsubscribe(subscription)


@router.get(
    "/alerts/stream",
    summary="My live stream (Server-Sent Events): alerts, notices, receipts; Last-Event-ID resumes",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "an endless stream of events"}},
)
async def stream(
    request: Request,
    user: CurrentUser,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> EventSourceResponse:
    after = int(last_event_id) if last_event_id and last_event_id.isdigit() else None
    return EventSourceResponse(
        _events(request, user.id, after),
        ping=HEARTBEAT_SECONDS,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
