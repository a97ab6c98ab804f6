"""The process's bus to users' live streams: a stream subscribes for its user; a commit that wrote stream
events hands them to the streams of their users, here and (with Redis) in every other process.

The events ride with the wake-up: a stream sends what it is handed without asking the database, so an
alert to thousands of riders costs one write and one fan-out in memory, not a query per stream. Every
commit hands over its own events, whatever order the ids were drawn in, so a transaction that commits
after a later one is not skipped.

The database stays the truth: a new stream replays from it after `Last-Event-ID`, and a stream woken
without events (a Redis listener that lost its connection and may have missed some wake-ups wakes all
its streams so) reads what it has not sent. An event written in a transaction that rolled back is never
handed over. A commit happens in a worker thread; each stream is woken on its own event loop.

With Redis (RIDERWATCH_REDIS_URL), each commit's events are published on a Redis channel (the data of an
event sent to many users once); each process listens (`listen`, started with the app). Without it the
single process's bus is all there is.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from collections import defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio as redis_async
from sqlalchemy import event
from sqlalchemy.orm import Session

logger = logging.getLogger(__name__)
PENDING = "riderwatch_stream_events"  # session.info key: the events the commit hands to the streams
CHANNEL = "riderwatch:stream-events"
# Who published a message: a process skips its own (it handed the events to its streams already).
PROCESS = uuid.uuid4().hex


@dataclass(frozen=True)
class Handed:
    """A committed stream event as the bus hands it over: its id, SSE event name and JSON text."""

    id: int
    event: str
    data: str


@dataclass(eq=False)
class Subscription:
    user_id: int
    loop: asyncio.AbstractEventLoop
    woken: asyncio.Event = field(default_factory=asyncio.Event)
    # Events handed over and not yet sent (appended from any thread, taken on the stream's loop).
    inbox: deque[Handed] = field(default_factory=deque)
    # Woken without events: the stream reads the database for what it has not sent.
    read_needed: bool = False


class Bus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: dict[int, set[Subscription]] = defaultdict(set)
        self._redis: redis.Redis | None = None
        self._redis_url: str | None = None

    def use_redis(self, url: str | None) -> None:
        """Send events to the other processes through Redis at `url` (None: this process only)."""
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

    def hand_over(self, events: Mapping[int, list[Handed]]) -> None:
        """Hand committed events to their users' streams, here and (with Redis) in every other process."""
        if not events:
            return
        self.hand_over_here(events)
        client = self._redis
        if client is not None:
            try:
                client.publish(CHANNEL, _encode(events))
            except redis.RedisError:
                # The events are stored: a stream elsewhere reads them when it is next woken without events
                # (the listener that lost Redis wakes all its streams so) or reconnects.
                logger.warning("could not hand events to the other processes through Redis", exc_info=True)

    def hand_over_here(self, events: Mapping[int, list[Handed]]) -> None:
        with self._lock:
            found = [(s, events[user_id]) for user_id in events for s in self._streams.get(user_id, ())]
        loops: dict[asyncio.AbstractEventLoop, list[Subscription]] = defaultdict(list)
        for subscription, handed in found:
            subscription.inbox.extend(handed)
            loops[subscription.loop].append(subscription)
        for loop, subscriptions in loops.items():
            if not loop.is_closed():
                # One call per loop, not per stream: thousands of streams are woken in one go.
                loop.call_soon_threadsafe(_set_all, subscriptions)

    def wake_all_here(self) -> None:
        """Wake every stream of this process to read the database (after wake-ups may have been missed)."""
        with self._lock:
            everyone = [s for streams in self._streams.values() for s in streams]
        loops: dict[asyncio.AbstractEventLoop, list[Subscription]] = defaultdict(list)
        for subscription in everyone:
            subscription.read_needed = True
            loops[subscription.loop].append(subscription)
        for loop, subscriptions in loops.items():
            if not loop.is_closed():
                loop.call_soon_threadsafe(_set_all, subscriptions)

    async def listen(self, url: str) -> None:
        """Hand this process's streams the events other processes publish through Redis (a task for the
        server's life; after a lost connection it listens again and has every stream read the database)."""
        missed = False
        while True:
            client = redis_async.Redis.from_url(url)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    if missed:
                        self.wake_all_here()
                        missed = False
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            events = _decode(message["data"])
                            if events:
                                self.hand_over_here(events)
            except (redis.RedisError, OSError, ValueError):
                logger.warning("lost Redis; listening again in a second", exc_info=True)
                missed = True
                await asyncio.sleep(1)
            finally:
                await client.aclose()


def _set_all(subscriptions: list[Subscription]) -> None:
    for subscription in subscriptions:
        subscription.woken.set()


def _encode(events: Mapping[int, list[Handed]]) -> str:
    """One message for a commit's events; the data an alert sends to thousands of riders is written once."""
    texts: dict[str, int] = {}
    rows = []
    for user_id, handed in events.items():
        for h in handed:
            rows.append([user_id, h.id, h.event, texts.setdefault(h.data, len(texts))])
    return json.dumps({"p": PROCESS, "d": list(texts), "e": rows}, ensure_ascii=False, separators=(",", ":"))


def _decode(raw: bytes | str) -> dict[int, list[Handed]]:
    """A message's events by user (none if this process published it)."""
    message: dict[str, Any] = json.loads(raw)
    if message.get("p") == PROCESS:
        return {}
    texts: list[str] = message["d"]
    out: dict[int, list[Handed]] = defaultdict(list)
    for user_id, event_id, name, text in message["e"]:
        out[int(user_id)].append(Handed(int(event_id), str(name), texts[int(text)]))
    return out


BUS = Bus()


def mark(session: Session, events: list[tuple[int, Handed]]) -> None:
    """Remember events this session wrote, as (user id, event): they are handed over when the session
    commits, unless the transaction or savepoint they were written in is rolled back first."""
    written_in = session.get_nested_transaction() or session.get_transaction()
    pending: list[tuple[object, list[tuple[int, Handed]]]] = session.info.setdefault(PENDING, [])
    pending.append((written_in, events))


def _within(transaction: Any, ended: Any) -> bool:
    while transaction is not None:
        if transaction is ended:
            return True
        transaction = transaction.parent
    return False


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction: Any) -> None:
    """A rolled-back savepoint (or transaction) takes the events written in it along."""
    pending: list[tuple[object, list[tuple[int, Handed]]]] | None = session.info.get(PENDING)
    if pending:
        pending[:] = [(tx, events) for tx, events in pending if not _within(tx, previous_transaction)]


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released (`atomic`): the events are not committed until the transaction is
    pending: list[tuple[object, list[tuple[int, Handed]]]] | None = session.info.pop(PENDING, None)
    if not pending:
        return
    events: dict[int, list[Handed]] = defaultdict(list)
    for _tx, written in pending:
        for user_id, handed in written:
            events[user_id].append(handed)
    BUS.hand_over(events)
