"""Webhooks: the group chats (and other systems) RiderWatch tells of what happens, and the outbox of
deliveries to them.

A channel belongs to a party (the command centre's, the community police's, the grid staff's or the
patrol's duty group chat; an administrator keeps these) or to one user (their own chat robot, for the
notices they choose). It has a format (generic JSON signed with HMAC, or a WeCom, DingTalk or Feishu group
robot) and the kinds of event it takes. A delivery is written in the transaction that made the event, so
a refused change tells nobody and a committed one is never lost; a worker sends it after the commit,
retrying with growing waits until it is delivered or given up ("dead", kept for the log and a retry).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from riderwatch.db import Base
from riderwatch.infra.clock import utcnow

WEBHOOK_FORMATS = ("json", "wecom", "dingtalk", "feishu")
# Whose duty group chat a party channel is.
WEBHOOK_PARTIES = ("command", "police", "grid_staff", "patrol")
DELIVERY_STATES = ("pending", "delivered", "dead")


class WebhookChannel(Base):
    __tablename__ = "webhook_channels"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # One of the two: a party's group chat, or one user's own.
    party: Mapped[str | None] = mapped_column(String(16), index=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    format: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(String(1000))
    # The signing secret (generic JSON: HMAC key; DingTalk and Feishu: the robot's signing secret). Kept to
    # sign with, never shown again once saved.
    secret: Mapped[str] = mapped_column(String(200), default="")
    # The kinds of event it takes (see webhooks/events.py).
    kinds: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The language its messages are written in.
    locale: Mapped[str] = mapped_column(String(8), default="zh")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None]


class WebhookDelivery(Base):
    """One event for one channel: pending until sent, then delivered, or dead after the last try."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_channel", "channel_id", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("webhook_channels.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    # What happened, language-neutral (ids, codes, times); the message is written when it is sent.
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A worker that took it holds it until then (another takes it over after a crash).
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None]
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(Text, default="")
    # A test sent from the channel's page.
    test: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]
