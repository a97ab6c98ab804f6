"""The points ledger: awards from the closed loop, once per source, reversed on reopening; versioned rules;
adjustments; balances that are always the sum of entries — also under concurrent awards."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from riderwatch.errors import Conflict, InvalidInput
from riderwatch.infra import clock
from riderwatch.infra.clock import utcnow
from riderwatch.models import PointEntry
from riderwatch.points import service as points
from tests.api.helpers import Api
from tests.factories import District

TZ = "Asia/Shanghai"


def _sum(db: Session, rider_id: int) -> int:
    """The sum of a rider's entries, read in a transaction of its own (what the test wrote is committed
    first; the read is ended, so the app's writers are not kept waiting on SQLite)."""
    db.commit()
    total = db.scalar(select(func.coalesce(func.sum(PointEntry.points), 0)).where(PointEntry.rider_id == rider_id))
    db.rollback()
    return int(total or 0)


def _close(api: Api, grade: str, **clue: object) -> int:
    clue_id = api.report(**clue)
    api.ok("dispatcher", clue_id, "verify")
    api.ok("dispatcher", clue_id, "dispatch", {"assignee": "police"})
    api.ok("police", clue_id, "accept")
    api.ok("police", clue_id, "resolve", {"outcome": "已处理"})
    api.ok("dispatcher", clue_id, "close", {"value_grade": grade})
    return clue_id


def test_a_closed_clue_earns_by_its_grade_and_reopening_reverses_it(api: Api, district: District, db: Session) -> None:
    rider = district.users["rider"]
    clue_id = _close(api, "A")
    mine = api.client.get("/api/v1/me/points", headers=api.auth("rider")).json()
    assert mine["balance"] == 50 == _sum(db, rider.id)
    (entry,) = mine["entries"]
    assert (entry["kind"], entry["points"], entry["source"], entry["source_id"]) == ("earn", 50, "clue", clue_id)
    assert entry["reason"] == f"获得 · 线索办结 #{clue_id}"

    api.ok("dispatcher", clue_id, "reopen", {"reason": "发现线索不实"})
    mine = api.client.get("/api/v1/me/points", headers=api.auth("rider")).json()
    assert mine["balance"] == 0 == _sum(db, rider.id)
    assert [(e["kind"], e["points"], e["note"]) for e in mine["entries"]] == [
        ("reverse", -50, "发现线索不实"),
        ("earn", 50, ""),
    ]
    # Worked again and closed with a lower grade: earned again, under the grade it has now.
    api.ok("dispatcher", clue_id, "dispatch", {"assignee": "police"})
    api.ok("police", clue_id, "accept")
    api.ok("police", clue_id, "resolve", {"outcome": "已处理"})
    api.ok("dispatcher", clue_id, "close", {"value_grade": "C"})
    assert _sum(db, rider.id) == 5


def test_grade_none_and_clues_without_a_rider_earn_nothing(api: Api, district: District, db: Session) -> None:
    _close(api, "none")
    assert _sum(db, district.users["rider"].id) == 0
    assert db.scalar(select(func.count()).select_from(PointEntry)) == 0


def test_the_same_award_twice_is_stored_once(db: Session, district: District) -> None:
    rider = district.users["rider"]
    for _ in range(3):
        points.award(db, rider_id=rider.id, key="alert_ack", source="alert", source_id=7, award_key="alert:99")
    db.commit()
    assert db.scalar(select(func.count()).select_from(PointEntry)) == 1
    assert _sum(db, rider.id) == 1


def test_concurrent_awards_of_one_source_store_one(session_factory: sessionmaker[Session], district: District) -> None:
    """Two transactions award the same thing at once (a retried request, two workers): one entry."""
    rider_id = district.users["rider"].id
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def give() -> None:
        session = session_factory()
        try:
            start.wait(timeout=10)
            points.award(session, rider_id=rider_id, key="clue_A", source="clue", source_id=1, award_key="clue:1:x")
            session.commit()
        except BaseException as exc:
            errors.append(exc)
        finally:
            session.close()

    threads = [threading.Thread(target=give) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    with session_factory() as check:
        assert check.scalar(select(func.count()).select_from(PointEntry)) == 1
        assert points.balance(check, rider_id) == 50


def test_a_rule_change_applies_from_its_day_and_never_reprices_what_was_awarded(
    db: Session, district: District
) -> None:
    rider, admin = district.users["rider"], district.users["admin"]
    points.award(db, rider_id=rider.id, key="clue_A", source="clue", source_id=1, award_key="k1")
    tomorrow = (utcnow() + timedelta(days=1)).astimezone(points.ZoneInfo(TZ)).date()
    points.set_rule(db, user=admin, key="clue_A", points=80, effective_from=tomorrow, note="加大奖励", timezone=TZ)
    points.award(db, rider_id=rider.id, key="clue_A", source="clue", source_id=2, award_key="k2")
    db.commit()
    with clock.frozen(utcnow() + timedelta(days=1, hours=1)):
        points.award(db, rider_id=rider.id, key="clue_A", source="clue", source_id=3, award_key="k3")
        db.commit()
    assert [e.points for e in sorted(points.entries(db, rider.id), key=lambda e: e.id)] == [50, 50, 80]
    with pytest.raises(InvalidInput, match="from today or a later day"):
        points.set_rule(
            db, user=admin, key="clue_A", points=1, effective_from=tomorrow - timedelta(days=5), note="", timezone=TZ
        )


def test_adjustments_need_a_note_and_never_go_below_zero(api: Api, district: District, db: Session) -> None:
    admin = api.auth("admin")
    refused = api.client.post(
        "/api/v1/points/adjustments", json={"rider": "rider", "points": 10, "note": " "}, headers=admin
    )
    assert refused.status_code == 422
    given = api.client.post(
        "/api/v1/points/adjustments", json={"rider": "rider", "points": 30, "note": "协助抓获嫌疑人"}, headers=admin
    )
    assert given.status_code == 201 and given.json()["balance"] == 30
    too_much = api.client.post(
        "/api/v1/points/adjustments", json={"rider": "rider", "points": -31, "note": "误加"}, headers=admin
    )
    assert too_much.status_code == 409
    assert "30" in too_much.json()["detail"]
    assert _sum(db, district.users["rider"].id) == 30
    assert (
        api.client.post(
            "/api/v1/points/adjustments",
            json={"rider": "rider", "points": 5, "note": "x"},
            headers=api.auth("dispatcher"),
        ).status_code
        == 403
    )


def test_a_patrol_tasks_points_follow_its_result(db: Session, district: District) -> None:
    rider = district.users["rider"]
    points.settle(db, rider_id=rider.id, source="task", source_id=4, points=30)
    points.settle(db, rider_id=rider.id, source="task", source_id=4, points=30)
    assert _sum(db, rider.id) == 30
    points.settle(db, rider_id=rider.id, source="task", source_id=4, points=0)  # an earlier finisher took the place
    assert _sum(db, rider.id) == 0
    points.settle(db, rider_id=rider.id, source="task", source_id=4, points=30)
    assert _sum(db, rider.id) == 30
    assert [e.kind for e in sorted(points.entries(db, rider.id), key=lambda e: e.id)] == ["earn", "reverse", "earn"]


def test_leaderboards_rank_by_points_earned_with_ties_and_hide_names(api: Api, district: District, db: Session) -> None:
    rider, rider2 = district.users["rider"], district.users["rider2"]
    rider.display_name, rider2.display_name = "王小明", "李四"
    points.award(db, rider_id=rider.id, key="clue_B", source="clue", source_id=1, award_key="a")
    points.award(db, rider_id=rider2.id, key="clue_B", source="clue", source_id=2, award_key="b")
    db.commit()
    board = api.client.get("/api/v1/points/board", headers=api.auth("rider")).json()["items"]
    assert sorted((x["rank"], x["name"], x["points"]) for x in board) == [(1, "李*", 20), (1, "王**", 20)]
    assert (
        api.client.put("/api/v1/me/nickname", json={"nickname": "金鼎闪电"}, headers=api.auth("rider")).status_code
        == 200
    )
    taken = api.client.put("/api/v1/me/nickname", json={"nickname": "金鼎闪电"}, headers=api.auth("rider2"))
    assert taken.status_code == 409
    points.award(db, rider_id=rider.id, key="clue_C", source="clue", source_id=3, award_key="c")
    db.commit()
    board = api.client.get("/api/v1/points/board", headers=api.auth("rider")).json()["items"]
    assert [(x["rank"], x["name"], x["points"], x["me"]) for x in board] == [
        (1, "金鼎闪电", 25, True),
        (2, "李*", 20, False),
    ]
    mine = api.client.get("/api/v1/me/points", headers=api.auth("rider")).json()["month"]
    assert (mine["rank_station"], mine["riders_station"], mine["rank_programme"]) == (1, 2, 1)
    assert api.client.get("/api/v1/points/board", headers=api.auth("platform")).status_code == 403


def test_an_anonymous_reporters_clue_is_not_named_in_their_ledger_to_others(
    api: Api, district: District, db: Session
) -> None:
    clue_id = _close(api, "B", anonymous=True)
    rider = district.users["rider"]
    theirs = api.client.get("/api/v1/me/points", headers=api.auth("rider")).json()["entries"]
    assert theirs[0]["source_id"] == clue_id
    seen = api.client.get(f"/api/v1/riders/{rider.id}/points", headers=api.auth("admin")).json()["entries"]
    assert seen[0]["source_id"] is None and f"#{clue_id}" not in seen[0]["reason"]


def test_adjusting_a_balance_to_exactly_zero_is_allowed(db: Session, district: District) -> None:
    rider, admin = district.users["rider"], district.users["admin"]
    points.adjust(db, actor=admin, rider_id=rider.id, points=7, note="试")
    points.adjust(db, actor=admin, rider_id=rider.id, points=-7, note="撤回")
    with pytest.raises(Conflict):
        points.adjust(db, actor=admin, rider_id=rider.id, points=-1, note="再撤")
    assert points.balance(db, rider.id) == 0
