"""The process's bus to users' live streams: a stream subscribes for its user; a commit that wrote
stream events wakes the streams of their users, which read the new events from the database.

The database is the truth (a stream replays from it after `Last-Event-ID`, and reads from it when woken),
so an event written in a transaction that rolled back is never sent, and a stream that missed a wake-up
loses nothing: its next read catches up. A commit happens in a worker thread; each stream is woken on
its own event loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import event
from sqlalchemy.orm import Session

PENDING = "riderwatch_stream_users"  # session.info key: users whose streams the commit must wake


@dataclass(eq=False)
class Subscription:
    user_id: int
    loop: asyncio.AbstractEventLoop
    woken: asyncio.Event = field(default_factory=asyncio.Event)


class Bus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: dict[int, set[Subscription]] = defaultdict(set)

    def subscribe(self, user_id: int) -> Subscription:
        """A stream of `user_id`'s, on the running event loop."""
        found = Subscription(user_id, asyncio.get_running_loop())
        with self._lock:
            self._streams[user_id].add(found)
        return found

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            streams = self._streams.get(subscription.user_id)
            if streams is not None:
                streams.discard(subscription)
                if not streams:
                    del self._streams[subscription.user_id]

    def listeners(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._streams.values())

    def wake(self, user_ids: Iterable[int]) -> None:
        """Wake the streams of these users (from any thread)."""
        with self._lock:
            found = [s for user_id in set(user_ids) for s in self._streams.get(user_id, ())]
        for subscription in found:
            if not subscription.loop.is_closed():
                subscription.loop.call_soon_threadsafe(subscription.woken.set)


BUS = Bus()


def mark(session: Session, user_id: int) -> None:
    """Remember that this session wrote an event for `user_id` (its streams are woken when it commits)."""
    session.info.setdefault(PENDING, set()).add(user_id)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released (`atomic`): the events are not committed until the transaction is
    users: set[int] | None = session.info.pop(PENDING, None)
    if users:
        BUS.wake(users)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info.pop(PENDING, None)
