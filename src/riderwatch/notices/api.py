"""Notices and the live stream under /api/v1: a user's inbox, and `GET /api/v1/alerts/stream`, their
Server-Sent Events (alerts and notices for riders, receipts and sightings for the command centre)."""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session, sessionmaker
from sse_starlette import EventSourceResponse, ServerSentEvent

from riderwatch.deps import CurrentUser, DbSession, reads_only
from riderwatch.infra.clock import utcnow
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


# A stream woken to read the database also reads the events of this last while it has not sent (one whose
# transaction committed after a later one's); the bus hands every commit's own events over anyway.
LOOKBACK = timedelta(seconds=60)


def _newest(factory: sessionmaker[Session], user_id: int) -> int:
    with factory() as session:
        return service.last_event_id(session, user_id=user_id)


def _read(factory: sessionmaker[Session], user_id: int, after: int, floor: int, lookback: bool) -> list[StreamEvent]:
    """The events after `after` (and, looking back, those after `floor` made in the last minute)."""
    with factory() as session:
        since = utcnow() - LOOKBACK if lookback else None
        rows = service.events_after(session, user_id=user_id, after=after, floor=floor, since=since)
        session.expunge_all()
        return rows


class Sent:
    """The ids a stream sent in the last few minutes: an event the bus handed over and a read found too is
    sent once."""

    def __init__(self) -> None:
        self._ids: set[int] = set()
        self._order: deque[tuple[float, int]] = deque()

    def first_time(self, event_id: int) -> bool:
        now = time.monotonic()
        while self._order and self._order[0][0] < now - 3 * LOOKBACK.total_seconds():
            self._ids.discard(self._order.popleft()[1])
        if event_id in self._ids:
            return False
        self._ids.add(event_id)
        self._order.append((now, event_id))
        return True


async def _events(request: Request, user_id: int, after: int | None) -> AsyncIterator[ServerSentEvent]:
    factory = request.app.state.read_session_factory
    subscription = BUS.subscribe(user_id)  # before reading: nothing committed from here on is missed
    try:
        newest = await anyio.to_thread.run_sync(_newest, factory, user_id)
        floor = newest if after is None else min(after, newest)
        # "ready" tells the client it is subscribed, and from which event on (its id resumes there).
        yield ServerSentEvent(data=json.dumps({"last_event_id": floor}), event="ready", id=str(floor))
        sent = Sent()
        checked = floor  # read from the database up to here
        read, lookback = after is not None and after < newest, False  # first the replay, if there is one
        while True:
            subscription.woken.clear()  # before reading: what is handed over from here on wakes the wait below
            if read or subscription.read_needed:
                lookback = lookback or subscription.read_needed
                subscription.read_needed = False
                rows = await anyio.to_thread.run_sync(_read, factory, user_id, checked, floor, lookback)
                for row in rows:
                    checked = max(checked, row.id)
                    if sent.first_time(row.id):
                        data = json.dumps(row.data, ensure_ascii=False)
                        yield ServerSentEvent(data=data, event=row.event, id=str(row.id))
                read, lookback = len(rows) == service.REPLAY_LIMIT, True
                if read:
                    continue
            while subscription.inbox:
                handed = subscription.inbox.popleft()
                if handed.id > floor and sent.first_time(handed.id):
                    yield ServerSentEvent(data=handed.data, event=handed.event, id=str(handed.id))
            if not subscription.inbox and not subscription.read_needed:
                await subscription.woken.wait()
    finally:
        BUS.unsubscribe(subscription)


@router.get(
    "/alerts/stream",
    summary="My live stream (Server-Sent Events): alerts, notices, receipts; Last-Event-ID resumes",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "an endless stream of events"}},
)
@reads_only  # the request's transaction only identifies the caller: its connection goes back at once
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
