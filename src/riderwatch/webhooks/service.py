"""Webhook channels and their outbox: keeping channels, writing deliveries in the caller's transaction,
taking due ones for a worker, recording how each try went, and the log.

A delivery is only ever written here, in the transaction of the event it tells of; a worker takes due
deliveries (`claim_due`) for a while, sends them outside any transaction, and records each answer
(`record_try`): delivered, or tried again after a wait that doubles each time (10 s, 20 s, … up to an
hour), until the last try makes it dead. A dead delivery stays in the log and can be sent again.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from riderwatch import policy
from riderwatch.audit.service import record
from riderwatch.errors import N_, Conflict, InvalidInput, NotFound
from riderwatch.infra.clock import utcnow
from riderwatch.models import User, WebhookChannel, WebhookDelivery
from riderwatch.models.webhooks import WEBHOOK_PARTIES
from riderwatch.webhooks.schemas import ChannelChange, ChannelIn
from riderwatch.webhooks.wake import mark

# The events a party's duty group chat can take.
PARTY_KINDS = ("clue_dispatched", "clue_escalated", "clue_closed", "alert", "sighting")
# The events a user's own channel can take: their notices.
PERSONAL_KINDS = (
    "clue_dispatched",
    "clue_escalated",
    "clue_verified",
    "clue_rejected",
    "clue_closed",
    "alert",
    "feedback_assigned",
)
JSON_SECRET_MIN = 16
FIRST_WAIT_S = 10
LONGEST_WAIT_S = 3600


@dataclass(frozen=True)
class Retries:
    """How long a receiver is tried: `max_attempts` tries, the waits between them doubling from
    `first_wait_s` up to `longest_wait_s`, each stretched by up to a tenth so that deliveries that failed
    together do not all come back at the same second."""

    max_attempts: int = 10
    first_wait_s: float = FIRST_WAIT_S
    longest_wait_s: float = LONGEST_WAIT_S

    def wait(self, attempts: int) -> timedelta:
        base = min(self.first_wait_s * 2 ** max(attempts - 1, 0), self.longest_wait_s)
        return timedelta(seconds=base * (1 + random.random() / 10))


# --- channels -----------------------------------------------------------------------------------


def _check_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        raise InvalidInput(N_("the address must be a full http:// or https:// address"), field="url")
    return url


def _check_kinds(kinds: Sequence[str], *, personal: bool) -> list[str]:
    allowed = PERSONAL_KINDS if personal else PARTY_KINDS
    unknown = [k for k in kinds if k not in allowed]
    if unknown or not kinds:
        raise InvalidInput(
            N_("the kinds of event must be some of: %(choices)s"), choices=", ".join(allowed), field="kinds"
        )
    return [k for k in allowed if k in kinds]


def _check_secret(fmt: str, secret: str) -> None:
    if fmt == "json" and len(secret) < JSON_SECRET_MIN:
        raise InvalidInput(
            N_("a JSON channel is signed: give a secret of at least %(min)d characters"),
            min=JSON_SECRET_MIN,
            field="secret",
        )


def create_channel(session: Session, *, actor: User, values: ChannelIn) -> WebhookChannel:
    personal = values.party is None
    policy.ensure(actor, "webhook.own" if personal else "webhook.manage")
    secret = values.secret.strip()
    _check_secret(values.format, secret)
    channel = WebhookChannel(
        name=values.name.strip(),
        party=values.party,
        owner_id=actor.id if personal else None,
        format=values.format,
        url=_check_url(values.url),
        secret=secret,
        kinds=_check_kinds(values.kinds, personal=personal),
        locale=values.locale,
        created_by_id=actor.id,
        created_at=utcnow(),
    )
    if not channel.name:
        raise InvalidInput(N_("give the channel a name"), field="name")
    session.add(channel)
    session.flush()
    record(
        session,
        actor=actor,
        action="webhook.create",
        object_type="webhook_channel",
        object_id=channel.id,
        party=channel.party,
        format=channel.format,
        kinds=channel.kinds,
    )
    return channel


def get_channel(session: Session, *, actor: User, channel_id: int) -> WebhookChannel:
    channel = session.get(WebhookChannel, channel_id)
    if channel is None or not policy.may_manage_channel(actor, channel.party, channel.owner_id):
        raise NotFound(N_("no such webhook channel"))
    return channel


def change_channel(session: Session, *, actor: User, channel_id: int, values: ChannelChange) -> WebhookChannel:
    channel = get_channel(session, actor=actor, channel_id=channel_id)
    changed: dict[str, Any] = {}
    if values.name is not None:
        if not values.name.strip():
            raise InvalidInput(N_("give the channel a name"), field="name")
        changed["name"] = values.name.strip()
    if values.url is not None:
        changed["url"] = _check_url(values.url)
    if values.kinds is not None:
        changed["kinds"] = _check_kinds(values.kinds, personal=channel.party is None)
    if values.locale is not None:
        changed["locale"] = values.locale
    fmt = values.format or channel.format
    secret = values.secret.strip() if values.secret else channel.secret
    if values.format is not None or values.secret:
        _check_secret(fmt, secret)
        changed["format"], changed["secret"] = fmt, secret
    if values.active is not None and values.active != (channel.retired_at is None):
        changed["retired_at"] = None if values.active else utcnow()
    for name, value in changed.items():
        setattr(channel, name, value)
    session.flush()
    if changed:
        shown = sorted(k for k in changed if k != "secret") + (["secret"] if values.secret else [])
        record(
            session,
            actor=actor,
            action="webhook.change",
            object_type="webhook_channel",
            object_id=channel.id,
            fields=shown,
        )
    return channel


def list_channels(session: Session, *, actor: User, party_channels: bool) -> list[WebhookChannel]:
    """The party channels (for those who keep them), or the caller's own."""
    stmt = select(WebhookChannel)
    if party_channels:
        policy.ensure(actor, "webhook.manage")
        stmt = stmt.where(WebhookChannel.party.is_not(None))
    else:
        policy.ensure(actor, "webhook.own")
        stmt = stmt.where(WebhookChannel.owner_id == actor.id)
    return list(session.scalars(stmt.order_by(WebhookChannel.retired_at.is_not(None), WebhookChannel.id)))


def channel_counts(session: Session, channel_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Deliveries per channel and state."""
    out: dict[int, dict[str, int]] = {cid: dict.fromkeys(("pending", "delivered", "dead"), 0) for cid in channel_ids}
    if not channel_ids:
        return out
    rows = session.execute(
        select(WebhookDelivery.channel_id, WebhookDelivery.status, func.count())
        .where(WebhookDelivery.channel_id.in_(list(channel_ids)))
        .group_by(WebhookDelivery.channel_id, WebhookDelivery.status)
    )
    for channel_id, status, count in rows:
        out[channel_id][status] = count
    return out


# --- deliveries ---------------------------------------------------------------------------------


def _deliver(session: Session, channels: Iterable[WebhookChannel], kind: str, data: dict[str, Any]) -> int:
    now = utcnow()
    rows = [
        WebhookDelivery(channel_id=c.id, kind=kind, data=data, status="pending", next_attempt_at=now, created_at=now)
        for c in channels
    ]
    if rows:
        session.add_all(rows)
        session.flush()
        mark(session)
    return len(rows)


def enqueue(session: Session, *, kind: str, parties: Iterable[str], data: dict[str, Any]) -> int:
    """Tell the duty group chats of these parties that take `kind` (in the caller's transaction). A handler's
    role names its party; other roles have no party chat and are passed over."""
    wanted = {p for p in parties if p in WEBHOOK_PARTIES}
    if kind not in PARTY_KINDS:
        raise ValueError(f"unknown party event {kind!r}")
    if not wanted:
        return 0
    channels = session.scalars(
        select(WebhookChannel).where(WebhookChannel.party.in_(sorted(wanted)), WebhookChannel.retired_at.is_(None))
    )
    return _deliver(session, [c for c in channels if kind in c.kinds], kind, data)


def enqueue_personal(session: Session, *, user_id: int, kind: str, data: dict[str, Any]) -> int:
    """Send a user's notice to their own channels that take its kind."""
    channels = session.scalars(
        select(WebhookChannel).where(WebhookChannel.owner_id == user_id, WebhookChannel.retired_at.is_(None))
    )
    return _deliver(session, [c for c in channels if kind in c.kinds], kind, data)


def send_test(session: Session, *, actor: User, channel_id: int) -> WebhookDelivery:
    """A test message to the channel, delivered (and logged) like any other."""
    channel = get_channel(session, actor=actor, channel_id=channel_id)
    if channel.retired_at is not None:
        raise Conflict(N_("this channel is retired: restore it first"))
    now = utcnow()
    row = WebhookDelivery(
        channel_id=channel.id,
        kind="test",
        data={"channel": channel.name},
        status="pending",
        next_attempt_at=now,
        created_at=now,
        test=True,
    )
    session.add(row)
    session.flush()
    mark(session)
    return row


def delivery_of(session: Session, *, actor: User, delivery_id: int) -> WebhookDelivery:
    """A delivery of a channel the caller keeps."""
    row = session.get(WebhookDelivery, delivery_id)
    if row is None:
        raise NotFound(N_("no such delivery"))
    get_channel(session, actor=actor, channel_id=row.channel_id)
    return row


def retry(session: Session, *, actor: User, delivery_id: int) -> WebhookDelivery:
    """Send a dead delivery again (from its first try)."""
    row = delivery_of(session, actor=actor, delivery_id=delivery_id)
    channel = session.get(WebhookChannel, row.channel_id)  # loaded and checked by delivery_of
    assert channel is not None
    if row.status != "dead":
        raise Conflict(N_("only a delivery that was given up can be sent again"))
    if channel.retired_at is not None:
        raise Conflict(N_("this channel is retired: restore it first"))
    row.status, row.attempts, row.next_attempt_at = "pending", 0, utcnow()
    row.claimed_by = row.claimed_until = None
    session.flush()
    mark(session)
    record(session, actor=actor, action="webhook.retry", object_type="webhook_delivery", object_id=row.id)
    return row


def deliveries(
    session: Session,
    *,
    actor: User,
    channel_id: int,
    status: str | None = None,
    before: int | None = None,
    limit: int = 50,
) -> list[WebhookDelivery]:
    """A channel's deliveries, newest first."""
    get_channel(session, actor=actor, channel_id=channel_id)
    stmt = select(WebhookDelivery).where(WebhookDelivery.channel_id == channel_id)
    if status:
        stmt = stmt.where(WebhookDelivery.status == status)
    if before is not None:
        stmt = stmt.where(WebhookDelivery.id < before)
    return list(session.scalars(stmt.order_by(WebhookDelivery.id.desc()).limit(limit)))


# --- the worker's side --------------------------------------------------------------------------


def new_worker_name() -> str:
    return secrets.token_hex(8)


def claim_due(
    session: Session, *, worker: str, now: datetime, limit: int, hold: timedelta
) -> list[tuple[WebhookDelivery, WebhookChannel]]:
    """Take up to `limit` due deliveries for `worker` until `now + hold` (another worker takes them over
    after that, should this one die mid-send). Deliveries of a retired channel wait for its return."""
    candidates = list(
        session.scalars(
            select(WebhookDelivery.id)
            .join(WebhookChannel, WebhookChannel.id == WebhookDelivery.channel_id)
            .where(
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at <= now,
                or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now),
                WebhookChannel.retired_at.is_(None),
            )
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
        )
    )
    if not candidates:
        return []
    # Conditional: a delivery another worker took in the meantime is not taken again.
    session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id.in_(candidates),
            WebhookDelivery.status == "pending",
            or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now),
        )
        .values(claimed_by=worker, claimed_until=now + hold)
        .execution_options(synchronize_session=False)
    )
    rows = session.execute(
        select(WebhookDelivery, WebhookChannel)
        .join(WebhookChannel, WebhookChannel.id == WebhookDelivery.channel_id)
        .where(WebhookDelivery.id.in_(candidates), WebhookDelivery.claimed_by == worker)
        .order_by(WebhookDelivery.id)
    )
    return [(d, c) for d, c in rows]


def record_try(
    session: Session,
    *,
    delivery_id: int,
    worker: str,
    error: str | None,
    status_code: int | None,
    now: datetime,
    retries: Retries,
) -> str | None:
    """How one try went: delivered (`error` None), or tried again later, or dead after the last try.
    Returns the delivery's state, or None when this worker no longer held it."""
    row = session.get(WebhookDelivery, delivery_id)
    if row is None or row.claimed_by != worker or row.status != "pending":
        return None
    row.attempts += 1
    row.last_status = status_code
    row.claimed_by = row.claimed_until = None
    if error is None:
        row.status, row.delivered_at, row.last_error = "delivered", now, ""
    else:
        row.last_error = error[:1000]
        if row.attempts >= retries.max_attempts:
            row.status = "dead"
        else:
            row.next_attempt_at = now + retries.wait(row.attempts)
    session.flush()
    return row.status


def next_due(session: Session) -> datetime | None:
    """When the next pending delivery is due (the worker sleeps until then at most)."""
    return session.scalar(select(func.min(WebhookDelivery.next_attempt_at)).where(WebhookDelivery.status == "pending"))
