"""Telling users: a notice in their inbox and an event on their live stream, written in the caller's
transaction (so a refused change tells nobody), the stream woken when it commits.

Notices name what happened (their kind) and the clue or alert; what a reporter is told of their clue is
its outcome, never who handled it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session

from riderwatch.infra.clock import utcnow
from riderwatch.infra.sqlparams import values_column
from riderwatch.models import Notice, StreamEvent, User
from riderwatch.notices.bus import Handed, mark
from riderwatch.webhooks import service as webhooks

# What a notice can say (the inbox shows each in the reader's words).
KINDS = (
    "clue_dispatched",  # to the assignee: a clue is theirs to handle
    "clue_escalated",  # to the next level: a clue is overdue
    "clue_verified",  # to the reporter: their clue was found credible
    "clue_rejected",  # to the reporter: it was not taken up (with the reason)
    "clue_closed",  # to the reporter: handled (with the outcome)
    "alert",  # to a user of another party an alert also goes to (riders have theirs on the alert screen)
    "feedback_assigned",  # to an officer: a rider's suggestion or complaint is theirs to answer
    "feedback_answered",  # to the rider: the police answered
)
REPLAY_LIMIT = 500


def emit(session: Session, *, user_id: int, event: str, data: dict[str, Any]) -> int:
    """An event for the user's live stream (sent when the transaction commits); its id."""
    return emit_many(session, user_ids=[user_id], event=event, data=data)[0]


def emit_many(session: Session, *, user_ids: Sequence[int], event: str, data: dict[str, Any]) -> list[int]:
    """The same event for several users' live streams (an alert to thousands of riders): one statement,
    its JSON made once; the events' ids, in the order of `user_ids`."""
    if not user_ids:
        return []
    now = utcnow()
    columns = StreamEvent.__table__.c
    # One statement over the users as one parameter, the data bound once: thousands of riders cost one row
    # each in the database, not a statement of thousands of values.
    user = values_column(session, user_ids, Integer(), name="user_id")
    chosen = select(
        user,
        literal(event, columns.event.type),
        literal(data, columns.data.type),
        literal(now, columns.created_at.type),
    )
    written = session.execute(
        insert(StreamEvent)
        .from_select(["user_id", "event", "data", "created_at"], chosen)
        .returning(StreamEvent.id, StreamEvent.user_id)
    ).all()
    ids = {int(uid): int(event_id) for event_id, uid in written}
    text = json.dumps(data, ensure_ascii=False)
    mark(session, [(uid, Handed(ids[uid], event, text)) for uid in user_ids])
    return [ids[uid] for uid in user_ids]


def notify(
    session: Session,
    *,
    user_id: int,
    kind: str,
    clue_id: int | None = None,
    alert_id: int | None = None,
    params: dict[str, Any] | None = None,
) -> Notice:
    """A notice in the user's inbox, an event on their stream, and a message to their own webhooks that take
    its kind."""
    if kind not in KINDS:
        raise ValueError(f"unknown notice kind {kind!r}")
    notice = Notice(
        user_id=user_id, kind=kind, clue_id=clue_id, alert_id=alert_id, params=params or {}, created_at=utcnow()
    )
    session.add(notice)
    session.flush()
    shown = present(notice)
    emit(session, user_id=user_id, event="notice", data=shown)
    webhooks.enqueue_personal(session, user_id=user_id, kind=kind, data={"notice": shown})
    return notice


def command_centre(session: Session, *, also: int | None = None) -> list[int]:
    """The active dispatchers (who watch alerts' boards and the desk), and `also` (an alert's sender)."""
    ids = set(session.scalars(select(User.id).where(User.role == "dispatcher", User.is_active.is_(True))))
    if also is not None:
        ids.add(also)
    return sorted(ids)


def present(notice: Notice) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": notice.id,
        "kind": notice.kind,
        "created_at": notice.created_at.isoformat(),
        "read": notice.read_at is not None,
    }
    if notice.clue_id is not None:
        out["clue_id"] = notice.clue_id
    if notice.alert_id is not None:
        out["alert_id"] = notice.alert_id
    if notice.params:
        out["params"] = notice.params
    return out


def inbox(
    session: Session, *, user_id: int, limit: int = 50, before: int | None = None, unread_only: bool = False
) -> tuple[list[Notice], int]:
    """The user's notices, newest first, and how many are unread in all."""
    stmt = select(Notice).where(Notice.user_id == user_id)
    if before is not None:
        stmt = stmt.where(Notice.id < before)
    if unread_only:
        stmt = stmt.where(Notice.read_at.is_(None))
    rows = list(session.scalars(stmt.order_by(Notice.id.desc()).limit(limit)))
    return rows, unread(session, user_id=user_id)


def unread(session: Session, *, user_id: int) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(Notice).where(Notice.user_id == user_id, Notice.read_at.is_(None))
        )
        or 0
    )


def mark_read(session: Session, *, user_id: int, ids: Sequence[int] | None = None, now: datetime | None = None) -> int:
    """Mark the user's notices read (these, or all); how many changed."""
    stmt = update(Notice).where(Notice.user_id == user_id, Notice.read_at.is_(None))
    if ids is not None:
        stmt = stmt.where(Notice.id.in_(list(ids)))
    result = session.execute(stmt.values(read_at=now or utcnow()).execution_options(synchronize_session=False))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def events_after(
    session: Session,
    *,
    user_id: int,
    after: int,
    limit: int = REPLAY_LIMIT,
    floor: int | None = None,
    since: datetime | None = None,
) -> list[StreamEvent]:
    """The user's stream events after `after` (a Last-Event-ID), oldest first; with `since`, also those
    after `floor` made since then (an event whose transaction committed after a later one's)."""
    stmt = select(StreamEvent).where(StreamEvent.user_id == user_id)
    if since is not None and floor is not None:
        stmt = stmt.where(StreamEvent.id > floor, or_(StreamEvent.id > after, StreamEvent.created_at >= since))
    else:
        stmt = stmt.where(StreamEvent.id > after)
    return list(session.scalars(stmt.order_by(StreamEvent.id).limit(limit)))


def last_event_id(session: Session, *, user_id: int) -> int:
    return session.scalar(select(func.max(StreamEvent.id)).where(StreamEvent.user_id == user_id)) or 0
