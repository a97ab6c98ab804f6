"""Waking this process's webhook worker when a transaction that wrote deliveries commits (the worker
also looks on its own every few seconds, so deliveries written by another process are sent too)."""

from __future__ import annotations

import asyncio
import threading

from sqlalchemy import event
from sqlalchemy.orm import Session

PENDING = "riderwatch_webhook_deliveries"  # session.info key: the commit must wake the worker
_lock = threading.Lock()
_workers: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()


def register(loop: asyncio.AbstractEventLoop, woken: asyncio.Event) -> None:
    with _lock:
        _workers.add((loop, woken))


def unregister(loop: asyncio.AbstractEventLoop, woken: asyncio.Event) -> None:
    with _lock:
        _workers.discard((loop, woken))


def wake() -> None:
    """Wake every worker of this process (from any thread)."""
    with _lock:
        found = list(_workers)
    for loop, woken in found:
        if not loop.is_closed():
            loop.call_soon_threadsafe(woken.set)


def mark(session: Session) -> None:
    session.info[PENDING] = True


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if not session.in_nested_transaction() and session.info.pop(PENDING, False):
        wake()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info.pop(PENDING, None)
