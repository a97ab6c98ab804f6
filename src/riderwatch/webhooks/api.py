"""Webhook channels under /api/v1: the parties' duty group chats (administrators) and a user's own robot
(staff), a test message, the delivery log and sending a given-up delivery again."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from riderwatch.deps import CurrentUser, DbSession, PathId
from riderwatch.models import WebhookChannel, WebhookDelivery
from riderwatch.webhooks import service
from riderwatch.webhooks.schemas import ChannelChange, ChannelIn

router = APIRouter(prefix="/api/v1", tags=["webhooks"])


def present_channel(channel: WebhookChannel, counts: dict[str, int] | None = None) -> dict[str, Any]:
    """A channel as the API shows it: its secret is never shown, only whether there is one."""
    out: dict[str, Any] = {
        "id": channel.id,
        "name": channel.name,
        "party": channel.party,
        "format": channel.format,
        "url": channel.url,
        "signed": bool(channel.secret),
        "kinds": list(channel.kinds),
        "locale": channel.locale,
        "active": channel.retired_at is None,
        "created_at": channel.created_at.isoformat(),
    }
    if counts is not None:
        out["deliveries"] = counts
    return out


def present_delivery(row: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "status": row.status,
        "attempts": row.attempts,
        "created_at": row.created_at.isoformat(),
        "next_attempt_at": row.next_attempt_at.isoformat() if row.status == "pending" else None,
        "delivered_at": row.delivered_at.isoformat() if row.delivered_at else None,
        "last_status": row.last_status,
        "last_error": row.last_error or None,
        "test": row.test,
    }


@router.get("/webhooks", summary="Webhook channels: the parties' duty group chats, or my own")
def list_channels(
    db: DbSession,
    user: CurrentUser,
    scope: Annotated[Literal["parties", "mine"], Query(description="the parties' channels, or my own")] = "mine",
) -> dict[str, Any]:
    rows = service.list_channels(db, actor=user, party_channels=scope == "parties")
    counts = service.channel_counts(db, [c.id for c in rows])
    return {"items": [present_channel(c, counts[c.id]) for c in rows]}


@router.post("/webhooks", status_code=201, summary="Add a channel (with a party: administrators; without: my own)")
def create_channel(body: ChannelIn, db: DbSession, user: CurrentUser) -> dict[str, Any]:
    return present_channel(service.create_channel(db, actor=user, values=body))


@router.get("/webhooks/{channel_id}", summary="A channel, with its deliveries per state")
def get_channel(channel_id: PathId, db: DbSession, user: CurrentUser) -> dict[str, Any]:
    channel = service.get_channel(db, actor=user, channel_id=channel_id)
    return present_channel(channel, service.channel_counts(db, [channel.id])[channel.id])


@router.patch("/webhooks/{channel_id}", summary="Change a channel, retire it or restore it")
def change_channel(channel_id: PathId, body: ChannelChange, db: DbSession, user: CurrentUser) -> dict[str, Any]:
    return present_channel(service.change_channel(db, actor=user, channel_id=channel_id, values=body))


@router.post("/webhooks/{channel_id}/test", status_code=202, summary="Send a test message (it is in the log)")
def send_test(channel_id: PathId, db: DbSession, user: CurrentUser) -> dict[str, Any]:
    return present_delivery(service.send_test(db, actor=user, channel_id=channel_id))


@router.get("/webhooks/{channel_id}/deliveries", summary="A channel's deliveries, newest first")
def deliveries(
    channel_id: PathId,
    db: DbSession,
    user: CurrentUser,
    status: Literal["pending", "delivered", "dead"] | None = None,
    before: Annotated[int | None, Query(ge=1, le=2**62, description="the id to page back from")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    rows = service.deliveries(db, actor=user, channel_id=channel_id, status=status, before=before, limit=limit)
    return {"items": [present_delivery(r) for r in rows]}


@router.post("/webhooks/deliveries/{delivery_id}/retry", summary="Send a given-up delivery again")
def retry(delivery_id: PathId, db: DbSession, user: CurrentUser) -> dict[str, Any]:
    return present_delivery(service.retry(db, actor=user, delivery_id=delivery_id))
