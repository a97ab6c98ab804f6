"""The webhook pages: the administrator's duty group chats of the parties (/admin/webhooks), a user's own
robot for their notices (/notices/webhooks), and a channel's page: change it, send a test, retire or
restore it, and its delivery log with given-up deliveries sent again.

Thin like the other pages: the rules are webhooks.service, behind /api/v1/webhooks too.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from riderwatch.deps import CurrentUser, DbSession, PathId
from riderwatch.errors import N_, DomainError, Forbidden
from riderwatch.models import User, WebhookChannel
from riderwatch.web.forms import done_message, form_text, formatter, labels_in, refusal, see_other
from riderwatch.web.labels import ROLE_LABELS
from riderwatch.web.templating import render
from riderwatch.webhooks import service
from riderwatch.webhooks.schemas import ChannelChange, ChannelIn

router = APIRouter(include_in_schema=False)

FORMAT_LABELS = {
    "wecom": N_("WeCom group robot"),
    "dingtalk": N_("DingTalk group robot"),
    "feishu": N_("Feishu group robot"),
    "json": N_("Another system (JSON, signed)"),
}
# The command centre's chat, and the handlers' parties under their roles' names.
PARTY_LABELS = {"command": N_("Command centre")} | {p: ROLE_LABELS[p] for p in ("police", "grid_staff", "patrol")}
KIND_LABELS = {
    "clue_dispatched": N_("A clue is dispatched"),
    "clue_escalated": N_("A clue is overdue (escalation)"),
    "clue_verified": N_("My clue is verified"),
    "clue_rejected": N_("My clue is not taken up"),
    "clue_closed": N_("A clue is closed"),
    "alert": N_("Early warnings"),
    "sighting": N_("Riders' sightings for an alert"),
    "feedback_assigned": N_("A rider's feedback is mine to answer"),
    "test": N_("Test message"),
}
STATUS_LABELS = {"pending": N_("Waiting to be sent"), "delivered": N_("Delivered"), "dead": N_("Given up")}
DONE_MESSAGES = {
    "created": N_("The channel is saved. Send a test message to check it."),
    "changed": N_("The channel is changed."),
    "tested": N_("A test message is on its way; its result shows in the log below in a few seconds."),
    "retired": N_("The channel is retired: it is sent nothing until it is restored."),
    "restored": N_("The channel is in use again."),
    "retried": N_("The delivery will be sent again shortly."),
}
PAGE_SIZE = 50


def _labels(request: Request) -> dict[str, dict[str, str]]:
    return {
        "formats": labels_in(request, FORMAT_LABELS),
        "parties": labels_in(request, PARTY_LABELS),
        "kinds": labels_in(request, KIND_LABELS),
        "statuses": labels_in(request, STATUS_LABELS),
    }


def _list_page(
    request: Request,
    db: Session,
    user: User,
    *,
    parties: bool,
    values: dict[str, Any] | None = None,
    status: int = 200,
    **extra: Any,
) -> HTMLResponse:
    rows = service.list_channels(db, actor=user, party_channels=parties)
    context = {
        "parties_scope": parties,
        "channels": rows,
        "counts": service.channel_counts(db, [c.id for c in rows]),
        "kind_choices": service.PARTY_KINDS if parties else service.PERSONAL_KINDS,
        "values": {"name": "", "url": "", "format": "wecom", "party": "command", "kinds": []}
        | {"locale": formatter(request).locale}
        | (values or {}),
        "labels": _labels(request),
        **extra,
    }
    return render(request, "webhooks/channels.html", context, status=status)


@router.get("/admin/webhooks")
def party_channels(request: Request, db: DbSession, user: CurrentUser) -> HTMLResponse:
    return _list_page(request, db, user, parties=True)


@router.get("/notices/webhooks")
def my_channels(request: Request, db: DbSession, user: CurrentUser) -> HTMLResponse:
    return _list_page(request, db, user, parties=False)


@router.post("/webhooks")
def create(
    request: Request,
    db: DbSession,
    user: CurrentUser,
    name: Annotated[str, form_text()] = "",
    party: Annotated[str, form_text()] = "",
    format: Annotated[str, form_text()] = "",
    url: Annotated[str, form_text()] = "",
    secret: Annotated[str, form_text()] = "",
    locale: Annotated[str, form_text()] = "zh",
    kinds: Annotated[list[str], Form()] = [],  # noqa: B006 (FastAPI copies defaults)
    scope: Annotated[str, form_text()] = "mine",
) -> Response:
    parties = scope == "parties"
    values = {"name": name, "party": party, "format": format, "url": url, "locale": locale, "kinds": kinds}
    try:
        body = ChannelIn.model_validate(
            {
                "name": name,
                "party": party if parties else None,
                "format": format,
                "url": url,
                "secret": secret,
                "kinds": kinds,
                "locale": locale,
            }
        )
        channel = service.create_channel(db, actor=user, values=body)
    except (DomainError, ValidationError) as exc:
        if isinstance(exc, Forbidden):
            raise
        message, status = refusal(request, exc)
        return _list_page(request, db, user, parties=parties, values=values, status=status, **message)
    return see_other(f"/webhooks/{channel.id}?done=created")


def _channel_page(
    request: Request,
    db: Session,
    user: User,
    channel: WebhookChannel,
    *,
    show: str = "",
    before: int | None = None,
    status: int = 200,
    **extra: Any,
) -> HTMLResponse:
    rows = service.deliveries(
        db, actor=user, channel_id=channel.id, status=show or None, before=before, limit=PAGE_SIZE
    )
    context = {
        "channel": channel,
        "counts": service.channel_counts(db, [channel.id])[channel.id],
        "deliveries": rows,
        "show": show,
        "older": rows[-1].id if len(rows) == PAGE_SIZE else None,
        "kind_choices": service.PERSONAL_KINDS if channel.party is None else service.PARTY_KINDS,
        "labels": _labels(request),
        "back": "/notices/webhooks" if channel.party is None else "/admin/webhooks",
        **extra,
    }
    return render(request, "webhooks/channel.html", context, status=status)


@router.get("/webhooks/{channel_id}")
def channel_page(
    request: Request,
    channel_id: PathId,
    db: DbSession,
    user: CurrentUser,
    done: str = "",
    show: Annotated[Literal["", "pending", "delivered", "dead"], Query()] = "",
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> HTMLResponse:
    channel = service.get_channel(db, actor=user, channel_id=channel_id)
    return _channel_page(
        request, db, user, channel, show=show, before=before, **done_message(request, done, DONE_MESSAGES)
    )


@router.post("/webhooks/{channel_id}")
def change(
    request: Request,
    channel_id: PathId,
    db: DbSession,
    user: CurrentUser,
    name: Annotated[str, form_text()] = "",
    format: Annotated[str, form_text()] = "",
    url: Annotated[str, form_text()] = "",
    secret: Annotated[str, form_text()] = "",
    locale: Annotated[str, form_text()] = "zh",
    kinds: Annotated[list[str], Form()] = [],  # noqa: B006 (FastAPI copies defaults)
) -> Response:
    channel = service.get_channel(db, actor=user, channel_id=channel_id)
    try:
        body = ChannelChange.model_validate(
            {"name": name, "format": format, "url": url, "secret": secret or None, "kinds": kinds, "locale": locale}
        )
        service.change_channel(db, actor=user, channel_id=channel.id, values=body)
    except (DomainError, ValidationError) as exc:
        db.rollback()
        channel = service.get_channel(db, actor=user, channel_id=channel_id)
        message, status = refusal(request, exc)
        return _channel_page(request, db, user, channel, status=status, **message)
    return see_other(f"/webhooks/{channel.id}?done=changed")


@router.post("/webhooks/{channel_id}/test")
def test(request: Request, channel_id: PathId, db: DbSession, user: CurrentUser) -> Response:
    try:
        service.send_test(db, actor=user, channel_id=channel_id)
    except DomainError as exc:
        channel = service.get_channel(db, actor=user, channel_id=channel_id)
        message, status = refusal(request, exc)
        return _channel_page(request, db, user, channel, status=status, **message)
    return see_other(f"/webhooks/{channel_id}?done=tested")


@router.get("/webhooks/{channel_id}/retire")
def confirm_retire(request: Request, channel_id: PathId, db: DbSession, user: CurrentUser) -> Response:
    channel = service.get_channel(db, actor=user, channel_id=channel_id)
    _ = formatter(request)._
    context = {
        "question": _(
            "Retire the channel “%(name)s”? It is sent nothing until it is restored; "
            "deliveries waiting for it wait too."
        )
        % {"name": channel.name},
        "warning": "",
        "action_url": f"/webhooks/{channel.id}/retire",
        "confirm_label": _("Yes, retire"),
        "danger": True,
        "cancel_url": f"/webhooks/{channel.id}",
        "testid": "confirm-retire",
    }
    return render(request, "admin/confirm.html", context)


def _activate(db: Session, user: User, channel_id: int, *, active: bool) -> Response:
    service.change_channel(db, actor=user, channel_id=channel_id, values=ChannelChange(active=active))
    return see_other(f"/webhooks/{channel_id}?done={'restored' if active else 'retired'}")


@router.post("/webhooks/{channel_id}/retire")
def retire(channel_id: PathId, db: DbSession, user: CurrentUser, confirm: Annotated[str, form_text()] = "") -> Response:
    channel = service.get_channel(db, actor=user, channel_id=channel_id)
    if confirm != "yes":
        return see_other(f"/webhooks/{channel.id}/retire")
    return _activate(db, user, channel.id, active=False)


@router.post("/webhooks/{channel_id}/restore")
def restore(channel_id: PathId, db: DbSession, user: CurrentUser) -> Response:
    return _activate(db, user, channel_id, active=True)


@router.post("/webhooks/deliveries/{delivery_id}/retry")
def retry(request: Request, delivery_id: PathId, db: DbSession, user: CurrentUser) -> Response:
    delivery = service.delivery_of(db, actor=user, delivery_id=delivery_id)
    try:
        service.retry(db, actor=user, delivery_id=delivery.id)
    except DomainError as exc:
        db.rollback()
        channel = service.get_channel(db, actor=user, channel_id=delivery.channel_id)
        message, status = refusal(request, exc)
        return _channel_page(request, db, user, channel, status=status, **message)
    return see_other(f"/webhooks/{delivery.channel_id}?done=retried")
