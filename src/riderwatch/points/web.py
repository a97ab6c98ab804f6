"""The points pages: a rider's points with what earned each, their rank and the leaderboards (/points),
the rewards they can redeem and their payout history (/rewards); the administrator's point rules and
adjustments (/admin/points) and the reward desk: catalogue, redemption requests, cash rewards for
valuable clues (/admin/rewards).

Thin like the other pages: the rules are points.service and points.rewards, behind /api/v1 too.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.deps import DbSession, PathId, require
from riderwatch.errors import N_, DomainError, NotFound
from riderwatch.models import Clue, Platform, Reward, Station, User
from riderwatch.models.points import POINT_RULE_KEYS
from riderwatch.points import rewards
from riderwatch.points import service as points
from riderwatch.points.present import KIND_LABELS, SOURCE_LABELS, entry_views
from riderwatch.points.schemas import Adjustment, CashProposal, RewardIn, RuleChange
from riderwatch.web.forms import done_message, form_text, formatter, labels_in, refusal, see_other
from riderwatch.web.templating import render

router = APIRouter(include_in_schema=False)

Self = Annotated[User, Depends(require("points.self"))]
BoardReader = Annotated[User, Depends(require("points.board"))]
Manager = Annotated[User, Depends(require("points.manage"))]
Redeemer = Annotated[User, Depends(require("reward.redeem"))]
RewardManager = Annotated[User, Depends(require("reward.manage"))]

RULE_LABELS = {
    "clue_A": N_("A clue closed with value grade A"),
    "clue_B": N_("A clue closed with value grade B"),
    "clue_C": N_("A clue closed with value grade C"),
    "alert_ack": N_("An early warning acknowledged"),
    "sighting": N_("A sighting verified (a report answering an alert)"),
    "course_passed": N_("A course passed (the first time)"),
    "leaflets_10": N_("Every 10 leaflets handed out"),
}
REWARD_KIND_LABELS = {"goods": N_("Goods"), "voucher": N_("Voucher"), "cash": N_("Cash")}
REDEMPTION_LABELS = {
    "requested": N_("Waiting for approval"),
    "approved": N_("Approved"),
    "rejected": N_("Turned down"),
    "cancelled": N_("Withdrawn"),
}
CASH_LABELS = {
    "proposed": N_("Waiting for a second approval"),
    "approved": N_("Approved: show the claim code to be paid"),
    "rejected": N_("Turned down"),
    "paid": N_("Paid"),
}
DONE = {
    "nickname": N_("Your nickname is saved."),
    "redeemed": N_("Your request is in: the points are set aside until an administrator approves it."),
    "cancelled": N_("Your request is withdrawn and the points are back."),
    "rule": N_("The rule is saved; it applies from the day given."),
    "adjusted": N_("The adjustment is in the rider's points."),
    "reward": N_("The reward is saved."),
    "approved": N_("Approved."),
    "rejected": N_("Turned down: the points and the stock are back."),
    "proposed": N_("Proposed: another administrator approves it."),
    "cash_approved": N_("Approved: the rider sees the claim code on their rewards page."),
    "cash_rejected": N_("The cash reward is turned down."),
    "paid": N_("Paid and recorded."),
}


def _labels(request: Request) -> dict[str, dict[str, str]]:
    return {
        "kinds": labels_in(request, KIND_LABELS),
        "sources": labels_in(request, SOURCE_LABELS),
        "rules": labels_in(request, RULE_LABELS),
        "reward_kinds": labels_in(request, REWARD_KIND_LABELS),
        "redemptions": labels_in(request, REDEMPTION_LABELS),
        "cash": labels_in(request, CASH_LABELS),
    }


# --- the rider's points ---------------------------------------------------------------------------------


def _mine(request: Request, db: Session, user: User, *, status: int = 200, **extra: Any) -> HTMLResponse:
    tz = request.app.state.settings.timezone
    membership = user.membership
    station = db.get(Station, membership.station_id) if membership and membership.station_id else None
    period = points.current_period(tz)
    context = {
        "standing": points.standing(db, rider=user, timezone=tz),
        "entries": entry_views(db, points.entries(db, user.id), viewer=user),
        "nickname": (membership.board_name if membership else None) or "",
        "shown_as": points.board_name(user, membership),
        "station": station,
        "station_board": points.board(db, period=period, timezone=tz, station_id=station.id, limit=10)
        if station
        else [],
        "programme_board": points.board(db, period=period, timezone=tz, limit=10),
        "period": period,
        "labels": _labels(request),
        **extra,
    }
    return render(request, "points/mine.html", context, status=status)


@router.get("/points")
def my_points(request: Request, db: DbSession, user: Self, done: str = "") -> HTMLResponse:
    return _mine(request, db, user, **done_message(request, done, DONE))


@router.post("/points/nickname")
def set_nickname(request: Request, db: DbSession, user: Self, nickname: Annotated[str, form_text()] = "") -> Response:
    try:
        points.set_board_name(db, rider=user, name=nickname)
    except DomainError as exc:
        message, status = refusal(request, exc)
        return _mine(request, db, user, status=status, **message)
    return see_other("/points?done=nickname")


@router.get("/points/board")
def board_page(
    request: Request,
    db: DbSession,
    user: BoardReader,
    period: Annotated[str, Query(max_length=7)] = "",
    station: Annotated[str, Query(max_length=64)] = "",
    platform: Annotated[str, Query(max_length=64)] = "",
) -> HTMLResponse:
    tz = request.app.state.settings.timezone
    month = period or points.current_period(tz)
    stations = list(db.scalars(select(Station).where(Station.retired_at.is_(None)).order_by(Station.name)))
    platforms = list(db.scalars(select(Platform).where(Platform.retired_at.is_(None)).order_by(Platform.name)))
    station_id = next((s.id for s in stations if s.code == station), None)
    platform_id = next((p.id for p in platforms if p.code == platform), None)
    try:
        lines = points.board(
            db,
            period=None if month == "all" else month,
            timezone=tz,
            station_id=station_id,
            platform_id=platform_id,
            limit=100,
        )
        extra: dict[str, Any] = {}
    except DomainError as exc:
        lines = []
        extra, _status = refusal(request, exc)
    context = {
        "lines": lines,
        "period": month,
        "station": station,
        "platform": platform,
        "stations": stations,
        "platforms": platforms,
        "months": _recent_months(points.current_period(tz)),
        **extra,
    }
    return render(request, "points/board.html", context)


def _recent_months(current: str, count: int = 12) -> list[str]:
    year, month = (int(x) for x in current.split("-"))
    out = []
    for _ in range(count):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out


# --- the rider's rewards --------------------------------------------------------------------------------


def _rewards_page(request: Request, db: Session, user: User, *, status: int = 200, **extra: Any) -> HTMLResponse:
    catalogue = rewards.catalogue(db)
    context = {
        "balance": points.balance(db, user.id),
        "catalogue": catalogue,
        "requests": rewards.redemptions(db, rider_id=user.id),
        "reward_names": {r.id: r.name for r in db.scalars(select(Reward))},
        "cash": rewards.cash_awards(db, rider_id=user.id),
        "labels": _labels(request),
        **extra,
    }
    return render(request, "points/rewards.html", context, status=status)


@router.get("/rewards")
def rewards_page(request: Request, db: DbSession, user: Redeemer, done: str = "") -> HTMLResponse:
    return _rewards_page(request, db, user, **done_message(request, done, DONE))


@router.get("/rewards/{reward_id}/redeem")
def confirm_redeem(request: Request, reward_id: PathId, db: DbSession, user: Redeemer) -> HTMLResponse:
    reward = rewards.get_reward(db, reward_id)
    _ = formatter(request)._
    return render(
        request,
        "points/confirm.html",
        {
            "testid": "confirm-redeem",
            "question": _("Redeem %(points)d points for “%(reward)s”? You have %(balance)d points.")
            % {"points": reward.cost, "reward": reward.name, "balance": points.balance(db, user.id)},
            "warning": "",
            "action_url": f"/rewards/{reward.id}/redeem",
            "cancel_url": "/rewards",
            "confirm_label": _("Redeem"),
        },
    )


@router.post("/rewards/{reward_id}/redeem")
def redeem(request: Request, reward_id: PathId, db: DbSession, user: Redeemer) -> Response:
    try:
        rewards.redeem(db, rider=user, reward_id=reward_id)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        message, status = refusal(request, exc)
        return _rewards_page(request, db, user, status=status, **message)
    return see_other("/rewards?done=redeemed")


@router.post("/redemptions/{redemption_id}/cancel")
def cancel(request: Request, redemption_id: PathId, db: DbSession, user: Redeemer) -> Response:
    try:
        rewards.cancel(db, rider=user, redemption_id=redemption_id)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        message, status = refusal(request, exc)
        return _rewards_page(request, db, user, status=status, **message)
    return see_other("/rewards?done=cancelled")


# --- the administrator's rules and adjustments ----------------------------------------------------------


def _admin_page(
    request: Request, db: Session, user: User, *, values: dict[str, Any] | None = None, status: int = 200, **extra: Any
) -> HTMLResponse:
    tz = request.app.state.settings.timezone
    history = points.rule_history(db)
    authors = {u.id: u.display_name or u.username for u in db.scalars(select(User).where(User.role == "admin"))}
    context = {
        "in_force": points.rules_in_force(db),
        "history": history,
        "authors": authors,
        "rule_keys": POINT_RULE_KEYS,
        "today": points.local_today(tz).isoformat(),
        "values": {
            "key": "clue_A",
            "points": "",
            "effective_from": "",
            "note": "",
            "rider": "",
            "adjust": "",
            "adjust_note": "",
        }
        | (values or {}),
        "labels": _labels(request),
        **extra,
    }
    return render(request, "points/admin.html", context, status=status)


@router.get("/admin/points")
def admin_points(request: Request, db: DbSession, user: Manager, done: str = "") -> HTMLResponse:
    return _admin_page(request, db, user, **done_message(request, done, DONE))


@router.post("/admin/points/rules")
def change_rule(
    request: Request,
    db: DbSession,
    user: Manager,
    key: Annotated[str, form_text()] = "",
    rule_points: Annotated[str, form_text()] = "",
    effective_from: Annotated[str, form_text()] = "",
    note: Annotated[str, form_text()] = "",
) -> Response:
    values = {"key": key, "points": rule_points, "effective_from": effective_from, "note": note}
    try:
        body = RuleChange.model_validate(
            {"key": key, "points": rule_points, "effective_from": effective_from or None, "note": note}
        )
        points.set_rule(
            db,
            user=user,
            key=body.key,
            points=body.points,
            effective_from=body.effective_from,
            note=body.note,
            timezone=request.app.state.settings.timezone,
        )
    except (DomainError, ValidationError) as exc:
        message, status = refusal(request, exc)
        return _admin_page(request, db, user, values=values, status=status, **message)
    return see_other("/admin/points?done=rule")


@router.post("/admin/points/adjustments")
def adjust(
    request: Request,
    db: DbSession,
    user: Manager,
    rider: Annotated[str, form_text()] = "",
    adjust: Annotated[str, form_text()] = "",
    adjust_note: Annotated[str, form_text()] = "",
) -> Response:
    values = {"rider": rider, "adjust": adjust, "adjust_note": adjust_note}
    try:
        body = Adjustment.model_validate({"rider": rider.strip(), "points": adjust, "note": adjust_note})
        found = db.scalars(select(User).where(User.username == body.rider, User.role == "rider")).first()
        if found is None:
            raise NotFound(N_("no rider %(username)r"), username=body.rider)
        points.adjust(db, actor=user, rider_id=found.id, points=body.points, note=body.note)
    except (DomainError, ValidationError) as exc:
        message, status = refusal(request, exc)
        return _admin_page(request, db, user, values=values, status=status, **message)
    return see_other("/admin/points?done=adjusted")


# --- the reward desk ------------------------------------------------------------------------------------


def _desk(
    request: Request, db: Session, user: User, *, values: dict[str, Any] | None = None, status: int = 200, **extra: Any
) -> HTMLResponse:
    requests = rewards.redemptions(db)
    cash = rewards.cash_awards(db)
    people = {
        u.id: u
        for u in db.scalars(
            select(User).where(
                User.id.in_(
                    {r.rider_id for r in requests} | {a.rider_id for a in cash} | {a.proposed_by_id for a in cash}
                )
            )
        )
    }
    context = {
        "catalogue": rewards.catalogue(db, everything=True),
        "requests": requests,
        "reward_names": {r.id: r.name for r in db.scalars(select(Reward))},
        "cash": cash,
        "people": people,
        "clues": {c.id: c for c in db.scalars(select(Clue).where(Clue.id.in_({a.clue_id for a in cash})))},
        "values": {
            "name": "",
            "name_en": "",
            "kind": "goods",
            "cost": "",
            "cash_yuan": "",
            "stock": "",
            "clue_id": "",
            "amount_yuan": "",
            "reason": "",
            "claim_code": "",
        }
        | (values or {}),
        "labels": _labels(request),
        **extra,
    }
    return render(request, "points/desk.html", context, status=status)


@router.get("/admin/rewards")
def reward_desk(request: Request, db: DbSession, user: RewardManager, done: str = "") -> HTMLResponse:
    return _desk(request, db, user, **done_message(request, done, DONE))


@router.post("/admin/rewards")
def save_reward(
    request: Request,
    db: DbSession,
    user: RewardManager,
    reward_id: Annotated[str, form_text()] = "",
    name: Annotated[str, form_text()] = "",
    name_en: Annotated[str, form_text()] = "",
    kind: Annotated[str, form_text()] = "goods",
    cost: Annotated[str, form_text()] = "",
    cash_yuan: Annotated[str, form_text()] = "",
    stock: Annotated[str, form_text()] = "",
    active: Annotated[str, form_text()] = "",
) -> Response:
    values = {"name": name, "name_en": name_en, "kind": kind, "cost": cost, "cash_yuan": cash_yuan, "stock": stock}
    try:
        body = RewardIn.model_validate(
            {
                "name": name,
                "name_en": name_en,
                "kind": kind,
                "cost": cost,
                "cash_yuan": cash_yuan or None,
                "stock": stock or None,
                "active": active == "1" or not reward_id,
            }
        )
        rewards.save_reward(
            db,
            user=user,
            reward_id=int(reward_id) if reward_id.isdigit() else None,
            name=body.name,
            name_en=body.name_en,
            kind=body.kind,
            cost=body.cost,
            cash_fen=round(body.cash_yuan * 100) if body.cash_yuan is not None else None,
            stock=body.stock,
            active=body.active,
        )
    except (DomainError, ValidationError) as exc:
        message, status = refusal(request, exc)
        return _desk(request, db, user, values=values, status=status, **message)
    return see_other("/admin/rewards?done=reward")


@router.post("/admin/redemptions/{redemption_id}/{decision}")
def decide(
    request: Request,
    redemption_id: PathId,
    decision: str,
    db: DbSession,
    user: RewardManager,
    note: Annotated[str, form_text()] = "",
) -> Response:
    try:
        if decision == "approve":
            rewards.approve(db, user=user, redemption_id=redemption_id, note=note)
        elif decision == "reject":
            rewards.reject(db, user=user, redemption_id=redemption_id, note=note)
        else:
            raise NotFound(N_("no such decision %(decision)r"), decision=decision)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        message, status = refusal(request, exc)
        return _desk(request, db, user, status=status, **message)
    return see_other(f"/admin/rewards?done={'approved' if decision == 'approve' else 'rejected'}")


@router.post("/admin/cash-awards")
def propose_cash(
    request: Request,
    db: DbSession,
    user: RewardManager,
    clue_id: Annotated[str, form_text()] = "",
    amount_yuan: Annotated[str, form_text()] = "",
    reason: Annotated[str, form_text()] = "",
) -> Response:
    values = {"clue_id": clue_id, "amount_yuan": amount_yuan, "reason": reason}
    try:
        body = CashProposal.model_validate({"clue_id": clue_id, "amount_yuan": amount_yuan, "reason": reason})
        rewards.propose_cash(
            db, user=user, clue_id=body.clue_id, amount_fen=round(body.amount_yuan * 100), reason=body.reason
        )
    except (DomainError, ValidationError) as exc:
        message, status = refusal(request, exc)
        return _desk(request, db, user, values=values, status=status, **message)
    return see_other("/admin/rewards?done=proposed")


@router.post("/admin/cash-awards/{award_id}/{decision}")
def decide_cash(request: Request, award_id: PathId, decision: str, db: DbSession, user: RewardManager) -> Response:
    if decision not in ("approve", "reject"):
        raise NotFound(N_("no such decision %(decision)r"), decision=decision)
    try:
        rewards.decide_cash(db, user=user, award_id=award_id, approve_it=decision == "approve")
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        message, status = refusal(request, exc)
        return _desk(request, db, user, status=status, **message)
    return see_other(f"/admin/rewards?done=cash_{'approved' if decision == 'approve' else 'rejected'}")


@router.post("/admin/cash-payouts")
def pay_cash(
    request: Request, db: DbSession, user: RewardManager, claim_code: Annotated[str, form_text()] = ""
) -> Response:
    try:
        rewards.pay_cash(db, user=user, claim_code=claim_code)
    except DomainError as exc:
        message, status = refusal(request, exc)
        return _desk(request, db, user, values={"claim_code": claim_code}, status=status, **message)
    return see_other("/admin/rewards?done=paid")
