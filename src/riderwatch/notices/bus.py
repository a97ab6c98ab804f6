"""The process's bus to users' live streams: a stream subscribes for its user; a commit that wrote
stream events wakes the streams of their users, which read the new events from the database.

With Redis (RIDERWATCH_REDIS_URL), a wake-up also goes to every other server process through a Redis
channel: each process listens (`listen`, started with the app) and wakes its own streams. Without it the
single process's bus is all there is.

The database is the truth (a stream replays from it after `Last-Event-ID`, and reads from it when woken),
so an event written in a transaction that rolled back is never sent, and a stream that missed a wake-up
loses nothing: its next read catches up. A commit happens in a worker thread; each stream is woken on
its own event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import redis
import redis.asyncio as redis_async
from sqlalchemy import event
from sqlalchemy.orm import Session

logger = logging.getLogger(__name__)
PENDING = "riderwatch_stream_users"  # session.info key: users whose streams the commit must wake


@dataclass(eq=False)
class Subscription:
    user_id: int
    loop: asyncio.AbstractEventLoop
    woken: asyncio.Event = field(default_factory=asyncio.Event)


CHANNEL = "riderwatch:stream-wake"


class Bus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: dict[int, set[Subscription]] = defaultdict(set)
        self._redis: redis.Redis | None = None
        self._redis_url: str | None = None

    def use_redis(self, url: str | None) -> None:
        """Send wake-ups to the other processes through Redis at `url` (None: this process only)."""
        with self._lock:
            if url != self._redis_url:
                self._redis_url = url
                self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2) if url else None

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
        """Wake the streams of these users, here and (with Redis) in every other process (from any thread)."""
        users = set(user_ids)
        self.wake_here(users)
        client = self._redis
        if client is not None and users:
            try:
                client.publish(CHANNEL, json.dumps(sorted(users)))
            except redis.RedisError:
                # The events are stored; a stream elsewhere reads them when next woken or reconnected.
                logger.warning("could not tell the other processes of new events through Redis", exc_info=True)

    def wake_here(self, user_ids: Iterable[int]) -> None:
        """Wake this process's streams of these users."""
        with self._lock:
            found = [s for user_id in set(user_ids) for s in self._streams.get(user_id, ())]
        for subscription in found:
            if not subscription.loop.is_closed():
                subscription.loop.call_soon_threadsafe(subscription.woken.set)

    async def listen(self, url: str) -> None:
        """Wake this process's streams for the wake-ups other processes send through Redis (a task for the
        server's life; it reconnects after a lost connection)."""
        while True:
            client = redis_async.Redis.from_url(url)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self.wake_here(int(u) for u in json.loads(message["data"]))
            except (redis.RedisError, OSError, ValueError):
                logger.warning("lost Redis; listening again in a second", exc_info=True)
                await asyncio.sleep(1)
            finally:
                await client.aclose()


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
