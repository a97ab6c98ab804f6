"""Rewards: redemptions spend points and stock once (also when requested at the same moment), a rejection
gives both back; cash rewards need two administrators and are paid against a claim code."""

from __future__ import annotations

import threading

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from riderwatch.accounts.service import create_user
from riderwatch.errors import DomainError
from riderwatch.models import PointEntry, Reward, User
from riderwatch.points import rewards
from riderwatch.points import service as points
from tests.api.helpers import Api
from tests.factories import PASSWORD, District


def _give(db: Session, rider_id: int, amount: int) -> None:
    admin = db.scalars(select(User).where(User.role == "admin")).one()
    points.adjust(db, actor=admin, rider_id=rider_id, points=amount, note="测试")
    db.commit()


def _reward(api: Api, **body: object) -> dict[str, object]:
    values = {"name": "保温箱", "kind": "goods", "cost": 80, "stock": 5} | body
    res = api.client.post("/api/v1/rewards", json=values, headers=api.auth("admin"))
    assert res.status_code == 201, res.text
    return dict(res.json())


def test_a_redemption_spends_the_points_and_a_rejection_gives_them_back(
    api: Api, district: District, db: Session
) -> None:
    _give(db, district.users["rider"].id, 100)
    reward = _reward(api)
    asked = api.client.post(f"/api/v1/rewards/{reward['id']}/redeem", headers=api.auth("rider"))
    assert asked.status_code == 201 and asked.json()["balance"] == 20
    again = api.client.post(f"/api/v1/rewards/{reward['id']}/redeem", headers=api.auth("rider"))
    assert again.status_code == 409 and "80" in again.json()["detail"] and "20" in again.json()["detail"]
    listed = api.client.get("/api/v1/rewards", headers=api.auth("rider")).json()["items"]
    assert listed[0]["stock"] == 4
    rid = asked.json()["id"]
    assert (
        api.client.post(f"/api/v1/redemptions/{rid}/reject", json={"note": ""}, headers=api.auth("admin")).status_code
        == 422
    )
    turned = api.client.post(
        f"/api/v1/redemptions/{rid}/reject", json={"note": "本月已发完"}, headers=api.auth("admin")
    )
    assert turned.status_code == 200 and turned.json()["status"] == "rejected"
    mine = api.client.get("/api/v1/me/points", headers=api.auth("rider")).json()
    assert mine["balance"] == 100
    assert api.client.get("/api/v1/rewards", headers=api.auth("rider")).json()["items"][0]["stock"] == 5
    twice = api.client.post(f"/api/v1/redemptions/{rid}/approve", json={}, headers=api.auth("admin"))
    assert twice.status_code == 409
    history = api.client.get("/api/v1/me/rewards", headers=api.auth("rider")).json()
    assert [(r["status"], r["note"]) for r in history["redemptions"]] == [("rejected", "本月已发完")]


def test_a_rider_can_withdraw_a_request_and_not_anothers(api: Api, district: District, db: Session) -> None:
    _give(db, district.users["rider"].id, 100)
    reward = _reward(api, stock=None)
    rid = api.client.post(f"/api/v1/rewards/{reward['id']}/redeem", headers=api.auth("rider")).json()["id"]
    assert api.client.post(f"/api/v1/redemptions/{rid}/cancel", headers=api.auth("rider2")).status_code == 403
    assert (
        api.client.post(f"/api/v1/redemptions/{rid}/cancel", headers=api.auth("rider")).json()["status"] == "cancelled"
    )
    assert points.balance(db, district.users["rider"].id) == 100


def test_concurrent_redemptions_never_spend_twice_or_take_stock_below_zero(
    session_factory: sessionmaker[Session], district: District, db: Session
) -> None:
    """One rider asks twice at once with points for one; two riders ask at once for the last item."""
    rider, rider2 = district.users["rider"], district.users["rider2"]
    _give(db, rider.id, 100)
    _give(db, rider2.id, 100)
    plenty = Reward(name="雨衣", kind="goods", cost=80, stock=10, active=True)
    last = Reward(name="头盔", kind="goods", cost=50, stock=1, active=True)
    db.add_all([plenty, last])
    db.commit()

    def race(pairs: list[tuple[int, int]]) -> list[str]:
        start = threading.Barrier(len(pairs))
        outcomes: list[str] = []

        def ask(rider_id: int, reward_id: int) -> None:
            session = session_factory()
            try:
                # Together from here (on SQLite the first writer's transaction then holds the others back).
                start.wait(timeout=10)
                who = session.get(User, rider_id)
                assert who is not None
                rewards.redeem(session, rider=who, reward_id=reward_id)
                session.commit()
                outcomes.append("granted")
            except DomainError as exc:
                session.rollback()
                outcomes.append(exc.detail)
            finally:
                session.close()

        threads = [threading.Thread(target=ask, args=pair) for pair in pairs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        return outcomes

    same_rider = race([(rider.id, plenty.id), (rider.id, plenty.id)])
    assert sorted(same_rider)[0] == "granted" and same_rider.count("granted") == 1, same_rider
    last_item = race([(rider2.id, last.id), (rider2.id, last.id), (rider.id, last.id)])
    assert last_item.count("granted") == 1, last_item
    db.expire_all()
    assert db.get(Reward, last.id).stock == 0  # type: ignore[union-attr]
    assert db.get(Reward, plenty.id).stock == 9  # type: ignore[union-attr]
    for who in (rider, rider2):
        total = db.scalar(select(func.sum(PointEntry.points)).where(PointEntry.rider_id == who.id))
        assert total == points.balance(db, who.id) >= 0
    assert points.balance(db, rider.id) + points.balance(db, rider2.id) == 200 - 80 - 50
    db.rollback()


def test_a_cash_reward_needs_two_administrators_and_is_paid_against_its_code(
    api: Api, district: District, db: Session
) -> None:
    create_user(db, username="admin2", role="admin", password=PASSWORD)
    db.commit()
    clue_id = api.report(anonymous=True)
    for action, by, body in (
        ("verify", "dispatcher", {}),
        ("dispatch", "dispatcher", {"assignee": "police"}),
        ("accept", "police", {}),
        ("resolve", "police", {"outcome": "抓获嫌疑人"}),
    ):
        api.ok(by, clue_id, action, body)
    early = api.client.post(
        "/api/v1/cash-awards",
        json={"clue_id": clue_id, "amount_yuan": 500, "reason": "协助破案"},
        headers=api.auth("admin"),
    )
    assert early.status_code == 409
    api.ok("dispatcher", clue_id, "close", {"value_grade": "A"})
    proposed = api.client.post(
        "/api/v1/cash-awards",
        json={"clue_id": clue_id, "amount_yuan": 500, "reason": "协助破案"},
        headers=api.auth("admin"),
    )
    assert proposed.status_code == 201, proposed.text
    award = proposed.json()
    assert "rider" not in award and "claim_code" not in award
    alone = api.client.post(f"/api/v1/cash-awards/{award['id']}/approve", headers=api.auth("admin"))
    assert alone.status_code == 403
    second = api.auth("admin2")
    approved = api.client.post(f"/api/v1/cash-awards/{award['id']}/approve", headers=second)
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert "claim_code" not in approved.json()
    (mine,) = api.client.get("/api/v1/me/rewards", headers=api.auth("rider")).json()["cash"]
    code = mine["claim_code"]
    assert len(code) == 14 and mine["amount_yuan"] == 500
    assert api.client.get("/api/v1/me/rewards", headers=api.auth("rider2")).json()["cash"] == []
    wrong = api.client.post("/api/v1/cash-awards/pay", json={"claim_code": "AAAA-BBBB-CCCC"}, headers=second)
    assert wrong.status_code == 404
    paid = api.client.post("/api/v1/cash-awards/pay", json={"claim_code": code.lower()}, headers=second)
    assert paid.status_code == 200 and paid.json()["status"] == "paid"
    assert api.client.post("/api/v1/cash-awards/pay", json={"claim_code": code}, headers=second).status_code == 409
