"""Points, leaderboards and rewards under /api/v1."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select

from riderwatch.deps import DbSession, PathId, SettingsDep, require
from riderwatch.errors import N_, NotFound
from riderwatch.i18n import gettext, request_locale
from riderwatch.models import CashAward, Platform, Redemption, Reward, Station, User
from riderwatch.points import rewards
from riderwatch.points import service as points
from riderwatch.points.present import KIND_LABELS, SOURCE_LABELS, entry_views
from riderwatch.points.schemas import (
    Adjustment,
    CashProposal,
    ClaimCode,
    Decision,
    Nickname,
    RewardIn,
    RuleChange,
)

router = APIRouter(prefix="/api/v1", tags=["points"])

Self = Annotated[User, Depends(require("points.self"))]
BoardReader = Annotated[User, Depends(require("points.board"))]
Manager = Annotated[User, Depends(require("points.manage"))]
Redeemer = Annotated[User, Depends(require("reward.redeem"))]
RewardManager = Annotated[User, Depends(require("reward.manage"))]
Period = Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$", description="a month YYYY-MM; none: ever")]


def _entries(db: DbSession, rider_id: int, viewer: User, locale: str) -> list[dict[str, Any]]:
    views = entry_views(db, points.entries(db, rider_id), viewer=viewer)
    return [
        {
            "id": v.id,
            "kind": v.kind,
            "points": v.points,
            "source": v.source,
            "source_id": v.source_id,
            "reason": " ".join(
                part
                for part in (
                    gettext(locale, KIND_LABELS[v.kind]),
                    "·",
                    gettext(locale, SOURCE_LABELS[v.source]),
                    v.what,
                )
                if part
            ),
            "note": v.note,
            "at": v.at.isoformat(),
        }
        for v in views
    ]


@router.get("/me/points", summary="My points: the balance, every entry with what earned it, my rank")
def my_points(request: Request, db: DbSession, user: Self, settings: SettingsDep) -> dict[str, Any]:
    mine = points.standing(db, rider=user, timezone=settings.timezone)
    return {
        "balance": mine.balance,
        "entries": _entries(db, user.id, user, request_locale(request)),
        "month": {
            "earned": mine.earned_this_month,
            "rank_station": mine.rank_station,
            "riders_station": mine.riders_station,
            "rank_programme": mine.rank_programme,
            "riders_programme": mine.riders_programme,
        },
    }


@router.put("/me/nickname", summary="The nickname I appear under on the leaderboards")
def set_nickname(body: Nickname, db: DbSession, user: Self) -> dict[str, Any]:
    points.set_board_name(db, rider=user, name=body.nickname)
    return {"nickname": body.nickname.strip() or None}


@router.get("/points/board", summary="Leaderboard: riders by points earned, in a month or ever")
def leaderboard(
    db: DbSession,
    user: BoardReader,
    settings: SettingsDep,
    period: Period = None,
    station: Annotated[str | None, Query(max_length=64, description="a station's code")] = None,
    platform: Annotated[str | None, Query(max_length=64, description="a platform's code")] = None,
) -> dict[str, Any]:
    station_id = _code_id(db, Station, station) if station else None
    platform_id = _code_id(db, Platform, platform) if platform else None
    lines = points.board(db, period=period, timezone=settings.timezone, station_id=station_id, platform_id=platform_id)
    return {
        "period": period,
        "items": [{"rank": x.rank, "name": x.name, "points": x.points, "me": x.rider_id == user.id} for x in lines],
    }


def _code_id(db: DbSession, model: type[Station] | type[Platform], code: str) -> int:
    found = db.scalar(select(model.id).where(model.code == code))
    if found is None:
        raise NotFound(N_("no station or platform %(code)r"), code=code)
    return int(found)


def _rider(db: DbSession, username: str) -> User:
    found = db.scalars(select(User).where(User.username == username, User.role == "rider")).first()
    if found is None:
        raise NotFound(N_("no rider %(username)r"), username=username)
    return found


@router.get("/points/rules", summary="The point rules in force, and their history")
def list_rules(db: DbSession, user: Manager) -> dict[str, Any]:
    return {
        "in_force": [
            {"key": r.key, "points": r.points, "since": r.since.isoformat() if r.since else None}
            for r in points.rules_in_force(db)
        ],
        "history": [
            {
                "id": r.id,
                "key": r.key,
                "points": r.points,
                "effective_from": r.effective_from.isoformat(),
                "note": r.note,
            }
            for r in points.rule_history(db)
        ],
    }


@router.post("/points/rules", status_code=201, summary="Change a rule from a day on (today or later)")
def change_rule(body: RuleChange, db: DbSession, user: Manager, settings: SettingsDep) -> dict[str, Any]:
    rule = points.set_rule(
        db,
        user=user,
        key=body.key,
        points=body.points,
        effective_from=body.effective_from,
        note=body.note,
        timezone=settings.timezone,
    )
    return {"id": rule.id, "key": rule.key, "points": rule.points, "effective_from": rule.effective_from.isoformat()}


@router.post("/points/adjustments", status_code=201, summary="Add or take points, with the reason")
def adjust(body: Adjustment, db: DbSession, user: Manager) -> dict[str, Any]:
    rider = _rider(db, body.rider)
    entry = points.adjust(db, actor=user, rider_id=rider.id, points=body.points, note=body.note)
    return {"id": entry.id, "points": entry.points, "balance": points.balance(db, rider.id)}


@router.get("/riders/{rider_id}/points", summary="A rider's points and entries (administrators)")
def rider_points(request: Request, rider_id: PathId, db: DbSession, user: Manager) -> dict[str, Any]:
    rider = db.get(User, rider_id)
    if rider is None or rider.role != "rider":
        raise NotFound(N_("no rider %(id)s"), id=rider_id)
    return {"balance": points.balance(db, rider.id), "entries": _entries(db, rider.id, user, request_locale(request))}


# --- rewards --------------------------------------------------------------------------------------------


def present_reward(reward: Reward) -> dict[str, Any]:
    return {
        "id": reward.id,
        "name": reward.name,
        "name_en": reward.name_en,
        "kind": reward.kind,
        "cost": reward.cost,
        "cash_yuan": reward.cash_fen / 100 if reward.cash_fen else None,
        "stock": reward.stock,
        "active": reward.active,
    }


def present_redemption(r: Redemption) -> dict[str, Any]:
    return {
        "id": r.id,
        "rider_id": r.rider_id,
        "reward_id": r.reward_id,
        "points": r.points,
        "status": r.status,
        "requested_at": r.requested_at.isoformat(),
        "decided_at": r.decided_at.isoformat() if r.decided_at else None,
        "note": r.note,
    }


def present_cash(a: CashAward, *, for_rider: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": a.id,
        "clue_id": a.clue_id,
        "amount_yuan": a.amount_fen / 100,
        "reason": a.reason,
        "status": a.status,
        "proposed_at": a.proposed_at.isoformat(),
        "decided_at": a.decided_at.isoformat() if a.decided_at else None,
        "paid_at": a.paid_at.isoformat() if a.paid_at else None,
    }
    if for_rider and a.status == "approved":
        out["claim_code"] = a.claim_code
    return out


@router.get("/rewards", summary="The reward catalogue (administrators also see those withdrawn)")
def list_rewards(db: DbSession, user: Annotated[User, Depends(require("points.board"))]) -> dict[str, Any]:
    return {"items": [present_reward(r) for r in rewards.catalogue(db, everything=user.role == "admin")]}


def _reward_values(body: RewardIn) -> dict[str, Any]:
    return {
        "name": body.name,
        "name_en": body.name_en,
        "kind": body.kind,
        "cost": body.cost,
        "cash_fen": round(body.cash_yuan * 100) if body.cash_yuan is not None else None,
        "stock": body.stock,
        "active": body.active,
    }


@router.post("/rewards", status_code=201, summary="Add a reward to the catalogue")
def add_reward(body: RewardIn, db: DbSession, user: RewardManager) -> dict[str, Any]:
    return present_reward(rewards.save_reward(db, user=user, reward_id=None, **_reward_values(body)))


@router.put("/rewards/{reward_id}", summary="Change a reward (its stock, cost, whether it is offered)")
def change_reward(reward_id: PathId, body: RewardIn, db: DbSession, user: RewardManager) -> dict[str, Any]:
    return present_reward(rewards.save_reward(db, user=user, reward_id=reward_id, **_reward_values(body)))


@router.post("/rewards/{reward_id}/redeem", status_code=201, summary="Redeem points for a reward")
def redeem(reward_id: PathId, db: DbSession, user: Redeemer) -> dict[str, Any]:
    redemption = rewards.redeem(db, rider=user, reward_id=reward_id)
    return {**present_redemption(redemption), "balance": points.balance(db, user.id)}


@router.get("/me/rewards", summary="My payout history: rewards redeemed and cash rewards")
def my_rewards(db: DbSession, user: Redeemer) -> dict[str, Any]:
    return {
        "redemptions": [present_redemption(r) for r in rewards.redemptions(db, rider_id=user.id)],
        "cash": [present_cash(a, for_rider=True) for a in rewards.cash_awards(db, rider_id=user.id)],
    }


@router.post("/redemptions/{redemption_id}/cancel", summary="Withdraw my request (the points come back)")
def cancel(redemption_id: PathId, db: DbSession, user: Redeemer) -> dict[str, Any]:
    return present_redemption(rewards.cancel(db, rider=user, redemption_id=redemption_id))


@router.get("/redemptions", summary="Redemption requests (administrators)")
def list_redemptions(
    db: DbSession,
    user: RewardManager,
    status: Annotated[str | None, Query(pattern="^(requested|approved|rejected|cancelled)$")] = None,
) -> dict[str, Any]:
    return {"items": [present_redemption(r) for r in rewards.redemptions(db, status=status)]}


@router.post("/redemptions/{redemption_id}/approve", summary="Approve a redemption")
def approve(redemption_id: PathId, body: Decision, db: DbSession, user: RewardManager) -> dict[str, Any]:
    return present_redemption(rewards.approve(db, user=user, redemption_id=redemption_id, note=body.note))


@router.post("/redemptions/{redemption_id}/reject", summary="Turn a redemption down (points and stock come back)")
def reject(redemption_id: PathId, body: Decision, db: DbSession, user: RewardManager) -> dict[str, Any]:
    return present_redemption(rewards.reject(db, user=user, redemption_id=redemption_id, note=body.note))


@router.get("/cash-awards", summary="Cash rewards for valuable clues (administrators)")
def list_cash(db: DbSession, user: RewardManager) -> dict[str, Any]:
    return {"items": [present_cash(a, for_rider=False) for a in rewards.cash_awards(db)]}


@router.post("/cash-awards", status_code=201, summary="Propose a cash reward for a closed, valuable clue")
def propose_cash(body: CashProposal, db: DbSession, user: RewardManager) -> dict[str, Any]:
    award = rewards.propose_cash(
        db, user=user, clue_id=body.clue_id, amount_fen=round(body.amount_yuan * 100), reason=body.reason
    )
    return present_cash(award, for_rider=False)


@router.post("/cash-awards/{award_id}/approve", summary="Approve a cash reward (a second administrator)")
def approve_cash(award_id: PathId, db: DbSession, user: RewardManager) -> dict[str, Any]:
    return present_cash(rewards.decide_cash(db, user=user, award_id=award_id, approve_it=True), for_rider=False)


@router.post("/cash-awards/{award_id}/reject", summary="Turn a cash reward down")
def reject_cash(award_id: PathId, db: DbSession, user: RewardManager) -> dict[str, Any]:
    return present_cash(rewards.decide_cash(db, user=user, award_id=award_id, approve_it=False), for_rider=False)


@router.post("/cash-awards/pay", summary="Pay a cash reward against its claim code")
def pay_cash(body: ClaimCode, db: DbSession, user: RewardManager) -> dict[str, Any]:
    return present_cash(rewards.pay_cash(db, user=user, claim_code=body.claim_code), for_rider=False)
