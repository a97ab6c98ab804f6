"""The reward catalogue, riders' redemptions, and cash rewards for valuable clues.

A redemption spends its points and takes its stock when the rider asks (so two requests can never spend
the same points or the last item twice); an administrator approves it, or rejects it and the points and
the stock come back. A cash reward for a clue is proposed by one administrator and approved by another;
the reporter gets a claim code and is paid against it, so an anonymous reporter is known only to the
two who approved.
"""

from __future__ import annotations

import secrets

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from riderwatch.audit.service import record
from riderwatch.db import atomic
from riderwatch.errors import N_, Conflict, Forbidden, InvalidInput, NotFound
from riderwatch.infra.clock import utcnow
from riderwatch.infra.sqlparams import rows_changed
from riderwatch.models import Clue, User
from riderwatch.models.points import REWARD_KINDS, CashAward, PointEntry, Redemption, Reward
from riderwatch.points.service import balance, insert_entry, lock_rider, reverse

MAX_COST = 1_000_000
MAX_CASH_FEN = 10_000_000  # 100,000 yuan


# --- the catalogue --------------------------------------------------------------------------------------


def catalogue(session: Session, *, everything: bool = False) -> list[Reward]:
    query = select(Reward).order_by(Reward.cost, Reward.id)
    if not everything:
        query = query.where(Reward.active.is_(True))
    return list(session.scalars(query))


def get_reward(session: Session, reward_id: int) -> Reward:
    reward = session.get(Reward, reward_id)
    if reward is None:
        raise NotFound(N_("no reward %(id)s"), id=reward_id)
    return reward


def save_reward(
    session: Session,
    *,
    user: User,
    reward_id: int | None,
    name: str,
    name_en: str,
    kind: str,
    cost: int,
    cash_fen: int | None,
    stock: int | None,
    active: bool,
) -> Reward:
    name = name.strip()
    if not name:
        raise InvalidInput(N_("a reward needs a name"))
    if kind not in REWARD_KINDS:
        raise InvalidInput(N_("a reward is goods, a voucher or cash, not %(kind)r"), kind=kind)
    if not 0 < cost <= MAX_COST:
        raise InvalidInput(N_("a reward costs from 1 to %(max)s points"), max=MAX_COST)
    if kind == "cash" and not (cash_fen and 0 < cash_fen <= MAX_CASH_FEN):
        raise InvalidInput(N_("a cash reward needs its amount, up to 100,000 yuan"))
    if stock is not None and stock < 0:
        raise InvalidInput(N_("stock cannot be below zero"))
    reward = Reward() if reward_id is None else get_reward(session, reward_id)
    reward.name, reward.name_en, reward.kind, reward.cost = name, name_en.strip(), kind, cost
    reward.cash_fen = cash_fen if kind == "cash" else None
    reward.stock, reward.active = stock, active
    if reward_id is None:
        session.add(reward)
    session.flush()
    record(session, actor=user, action="reward.save", object_type="reward", object_id=reward.id, cost=cost)
    return reward


# --- redemptions ----------------------------------------------------------------------------------------


@atomic
def redeem(session: Session, *, rider: User, reward_id: int) -> Redemption:
    """A rider asks for a reward: the points are spent and one of the stock taken now, or nothing is."""
    lock_rider(session, rider.id)
    reward = get_reward(session, reward_id)
    if not reward.active:
        raise Conflict(N_("this reward is no longer offered"))
    have = balance(session, rider.id)
    if have < reward.cost:
        raise Conflict(N_("this reward costs %(cost)s points; you have %(balance)s"), cost=reward.cost, balance=have)
    if reward.stock is not None:
        taken = rows_changed(
            session.execute(
                update(Reward)
                .where(Reward.id == reward.id, Reward.stock >= 1)
                .values(stock=Reward.stock - 1)
                .execution_options(synchronize_session=False)
            )
        )
        if not taken:
            raise Conflict(N_("this reward is out of stock"))
        session.expire(reward, ["stock"])
    redemption = Redemption(rider_id=rider.id, reward_id=reward.id, points=reward.cost, requested_at=utcnow())
    session.add(redemption)
    session.flush()
    insert_entry(
        session,
        rider_id=rider.id,
        kind="spend",
        points=-reward.cost,
        source="redemption",
        source_id=redemption.id,
        award_key=f"redemption:{redemption.id}",
        rule_id=None,
        note="",
    )
    return redemption


def get_redemption(session: Session, redemption_id: int) -> Redemption:
    redemption = session.get(Redemption, redemption_id)
    if redemption is None:
        raise NotFound(N_("no redemption %(id)s"), id=redemption_id)
    return redemption


def _give_back(session: Session, redemption: Redemption, *, note: str, actor: User | None) -> None:
    spent = session.scalars(select(PointEntry).where(PointEntry.award_key == f"redemption:{redemption.id}")).first()
    if spent is not None:
        reverse(session, spent, note=note, actor=actor)
    session.execute(
        update(Reward)
        .where(Reward.id == redemption.reward_id, Reward.stock.is_not(None))
        .values(stock=Reward.stock + 1)
        .execution_options(synchronize_session=False)
    )


def _decide(session: Session, redemption_id: int, *, target: str) -> Redemption:
    """Move a requested redemption on, once: a conditional UPDATE, so two deciders at once cannot both."""
    moved = rows_changed(
        session.execute(
            update(Redemption)
            .where(Redemption.id == redemption_id, Redemption.status == "requested")
            .values(status=target, decided_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    )
    redemption = get_redemption(session, redemption_id)
    session.refresh(redemption)
    if not moved:
        raise Conflict(N_("this request was already decided"))
    return redemption


def approve(session: Session, *, user: User, redemption_id: int, note: str = "") -> Redemption:
    redemption = _decide(session, redemption_id, target="approved")
    redemption.decided_by_id, redemption.note = user.id, note.strip()
    session.flush()
    record(session, actor=user, action="reward.approve", object_type="redemption", object_id=redemption.id)
    return redemption


def reject(session: Session, *, user: User, redemption_id: int, note: str) -> Redemption:
    if not note.strip():
        raise InvalidInput(N_("say why the request is turned down: the rider reads it"))
    redemption = _decide(session, redemption_id, target="rejected")
    redemption.decided_by_id, redemption.note = user.id, note.strip()
    _give_back(session, redemption, note=note.strip(), actor=user)
    session.flush()
    record(session, actor=user, action="reward.reject", object_type="redemption", object_id=redemption.id)
    return redemption


def cancel(session: Session, *, rider: User, redemption_id: int) -> Redemption:
    if get_redemption(session, redemption_id).rider_id != rider.id:
        raise Forbidden(N_("this is another rider's request"))
    redemption = _decide(session, redemption_id, target="cancelled")
    _give_back(session, redemption, note="", actor=rider)
    session.flush()
    return redemption


def redemptions(session: Session, *, rider_id: int | None = None, status: str | None = None) -> list[Redemption]:
    query = select(Redemption).order_by(Redemption.requested_at.desc(), Redemption.id.desc()).limit(500)
    if rider_id is not None:
        query = query.where(Redemption.rider_id == rider_id)
    if status is not None:
        query = query.where(Redemption.status == status)
    return list(session.scalars(query))


# --- cash rewards for valuable clues --------------------------------------------------------------------


def _claim_code() -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read out over the phone
    raw = "".join(secrets.choice(alphabet) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def get_cash_award(session: Session, award_id: int) -> CashAward:
    award = session.get(CashAward, award_id)
    if award is None:
        raise NotFound(N_("no cash reward %(id)s"), id=award_id)
    return award


def propose_cash(session: Session, *, user: User, clue_id: int, amount_fen: int, reason: str) -> CashAward:
    """Propose paying the reporter of a closed, valuable clue (grade A or B)."""
    clue = session.get(Clue, clue_id)
    if clue is None:
        raise NotFound(N_("no clue %(id)s"), id=clue_id)
    if clue.status != "closed" or clue.value_grade not in ("A", "B"):
        raise Conflict(N_("a cash reward is for a closed clue of value grade A or B"))
    if clue.reporter_id is None:
        raise Conflict(N_("this clue came in without a rider's account: there is nobody to pay"))
    if not 0 < amount_fen <= MAX_CASH_FEN:
        raise InvalidInput(N_("a cash reward is from 0.01 to 100,000 yuan"))
    if not reason.strip():
        raise InvalidInput(N_("say what the clue achieved: the second approver reads it"))
    if session.scalars(
        select(CashAward).where(CashAward.clue_id == clue_id, CashAward.status.in_(("proposed", "approved", "paid")))
    ).first():
        raise Conflict(N_("this clue already has a cash reward proposed or made"))
    award = CashAward(
        clue_id=clue.id,
        rider_id=clue.reporter_id,
        amount_fen=amount_fen,
        reason=reason.strip(),
        proposed_by_id=user.id,
        proposed_at=utcnow(),
    )
    session.add(award)
    session.flush()
    record(
        session, actor=user, action="cash_award.propose", object_type="clue", object_id=clue.id, amount_fen=amount_fen
    )
    return award


def decide_cash(session: Session, *, user: User, award_id: int, approve_it: bool) -> CashAward:
    award = get_cash_award(session, award_id)
    if award.proposed_by_id == user.id:
        raise Forbidden(N_("a cash reward needs a second person: another administrator approves what you proposed"))
    moved = rows_changed(
        session.execute(
            update(CashAward)
            .where(CashAward.id == award.id, CashAward.status == "proposed")
            .values(
                status="approved" if approve_it else "rejected",
                approved_by_id=user.id,
                decided_at=utcnow(),
                claim_code=_claim_code() if approve_it else None,
            )
            .execution_options(synchronize_session=False)
        )
    )
    session.refresh(award)
    if not moved:
        raise Conflict(N_("this cash reward was already decided"))
    record(
        session,
        actor=user,
        action="cash_award.approve" if approve_it else "cash_award.reject",
        object_type="cash_award",
        object_id=award.id,
    )
    return award


def pay_cash(session: Session, *, user: User, claim_code: str) -> CashAward:
    """Pay whoever shows an approved reward's claim code (the payer learns the clue and the amount only)."""
    code = claim_code.strip().upper()
    if not code:
        raise InvalidInput(N_("give the claim code the reporter shows"))
    award = session.scalars(select(CashAward).where(CashAward.claim_code == code)).first()
    if award is None:
        raise NotFound(N_("no cash reward has the claim code %(code)s"), code=code)
    moved = rows_changed(
        session.execute(
            update(CashAward)
            .where(CashAward.id == award.id, CashAward.status == "approved")
            .values(status="paid", paid_by_id=user.id, paid_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    )
    session.refresh(award)
    if not moved:
        raise Conflict(N_("this cash reward was already paid"))
    record(session, actor=user, action="cash_award.pay", object_type="cash_award", object_id=award.id)
    return award


def cash_awards(session: Session, *, rider_id: int | None = None) -> list[CashAward]:
    query = select(CashAward).order_by(CashAward.proposed_at.desc(), CashAward.id.desc()).limit(500)
    if rider_id is not None:
        query = query.where(CashAward.rider_id == rider_id)
    return list(session.scalars(query))
