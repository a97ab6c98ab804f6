"""The webhook worker: takes due deliveries from the outbox and sends them, each on its own, so that a
slow or failing receiver holds up nobody else and never the transaction that made the event.

It runs in every server process (`webhook_worker`, on by default); deliveries are taken under a hold in
the database, so several processes share the work and none sends one twice, and a delivery held by a
process that died is taken over when its hold runs out. Each send has a time limit; the answer is
recorded in a short transaction of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from sqlalchemy.orm import Session, sessionmaker

from riderwatch.config import Settings
from riderwatch.db import unit_of_work
from riderwatch.infra.clock import utcnow
from riderwatch.models import WebhookChannel, WebhookDelivery
from riderwatch.webhooks import formats, messages, service, wake

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerSettings:
    timeout_s: float = 5.0
    at_once: int = 8
    # How often to look for deliveries another process wrote (a commit here wakes the worker at once).
    poll_s: float = 2.0
    retries: service.Retries = field(default_factory=service.Retries)
    timezone: str = "Asia/Shanghai"
    base_url: str = ""


def worker_settings(settings: Settings) -> WorkerSettings:
    return WorkerSettings(
        timeout_s=settings.webhook_timeout_seconds,
        poll_s=settings.webhook_poll_seconds,
        retries=service.Retries(max_attempts=settings.webhook_max_attempts),
        timezone=settings.timezone,
        base_url=settings.public_base_url,
    )


def outgoing(
    delivery: WebhookDelivery, channel: WebhookChannel, *, settings: WorkerSettings, now: datetime
) -> formats.Outgoing:
    text = messages.message(
        delivery.kind,
        delivery.data,
        personal=channel.party is None,
        locale=channel.locale,
        timezone=settings.timezone,
        base_url=settings.base_url,
    )
    return formats.build(
        channel.format,
        url=channel.url,
        secret=channel.secret,
        delivery_id=delivery.id,
        kind=delivery.kind,
        data=delivery.data,
        text=text,
        created_at=delivery.created_at,
        now=now,
    )


async def send(client: httpx.AsyncClient, request: formats.Outgoing, fmt: str) -> tuple[str | None, int | None]:
    """Send one request: (why it failed or None, the HTTP status if there was one)."""
    try:
        answer = await client.post(request.url, content=request.body, headers=request.headers)
    except httpx.TimeoutException:
        return "no answer in time", None
    except httpx.HTTPError as exc:
        return f"could not connect: {type(exc).__name__}: {exc}"[:500], None
    return formats.refusal(fmt, answer.status_code, answer.content[:2000]), answer.status_code


class Worker:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        settings: WorkerSettings,
        *,
        clock: Callable[[], datetime] = utcnow,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.settings = settings
        self.clock = clock
        self.name = service.new_worker_name()
        self._transport = transport
        self._slots = asyncio.Semaphore(settings.at_once)
        self._running: set[asyncio.Task[None]] = set()
        self._woken = asyncio.Event()

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=self.settings.timeout_s, follow_redirects=False, transport=self._transport, trust_env=False
        )

    def _claim(self, limit: int) -> list[tuple[int, str, formats.Outgoing]]:
        now = self.clock()
        hold = timedelta(seconds=self.settings.timeout_s * 4 + 30)
        with unit_of_work(self.session_factory) as session:
            taken = service.claim_due(session, worker=self.name, now=now, limit=limit, hold=hold)
            return [(d.id, c.format, outgoing(d, c, settings=self.settings, now=now)) for d, c in taken]

    def _record(self, delivery_id: int, error: str | None, status: int | None) -> None:
        with unit_of_work(self.session_factory) as session:
            service.record_try(
                session,
                delivery_id=delivery_id,
                worker=self.name,
                error=error,
                status_code=status,
                now=self.clock(),
                retries=self.settings.retries,
            )

    async def _one(self, client: httpx.AsyncClient, delivery_id: int, fmt: str, request: formats.Outgoing) -> None:
        try:
            try:
                error, status = await send(client, request, fmt)
            except Exception as exc:  # whatever went wrong is a failed try, recorded and tried again
                log.exception("sending webhook delivery %d failed", delivery_id)
                error, status = f"{type(exc).__name__}: {exc}"[:500], None
            await asyncio.to_thread(self._record, delivery_id, error, status)
        finally:
            self._slots.release()
            self._woken.set()  # a free slot: look for more

    async def run_once(self, client: httpx.AsyncClient) -> int:
        """Start sending what is due, as many at once as there are free slots; how many were started."""
        free = self.settings.at_once - len(self._running)
        if free <= 0:
            return 0
        taken = await asyncio.to_thread(self._claim, free)
        for delivery_id, fmt, request in taken:
            await self._slots.acquire()
            task = asyncio.create_task(self._one(client, delivery_id, fmt, request))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        return len(taken)

    async def drain(self) -> int:
        """Send everything due now and wait for the answers (the CLI's one pass, and tests)."""
        sent = 0
        async with self._client() as client:
            while True:
                started = await self.run_once(client)
                sent += started
                if self._running:
                    await asyncio.wait(set(self._running))
                if not started and not self._running:
                    return sent

    async def run(self) -> None:
        """Send deliveries for the server's life: woken by a commit here, looking every few seconds."""
        loop = asyncio.get_running_loop()
        woken = self._woken
        wake.register(loop, woken)
        try:
            async with self._client() as client:
                while True:
                    woken.clear()
                    try:
                        await self.run_once(client)
                    except Exception:
                        log.exception("could not take webhook deliveries; trying again shortly")
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(woken.wait(), timeout=self.settings.poll_s)
        finally:
            wake.unregister(loop, woken)
            for task in list(self._running):
                task.cancel()
