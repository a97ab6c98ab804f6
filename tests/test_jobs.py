"""Periodic jobs: overdue escalation (one timeline entry per level, once) and the lease that runs a job once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from riderwatch.clues.schemas import ActionBody, ClueCreate
from riderwatch.clues.service import escalate_overdue, submit_clue, take_action, timeline
from riderwatch.db import unit_of_work
from riderwatch.infra.clock import utcnow
from riderwatch.infra.files import FileStore
from riderwatch.jobs import acquire_lease, run_due_jobs
from riderwatch.models import AuditEntry, Category, Clue, JobLease
from tests.factories import District, clue_body, make_district

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


@pytest.fixture
def district(db: Session) -> District:
    return make_district(db)


def _clue(db: Session, district: District, tmp_path: Path, *, at: datetime = T0) -> Clue:
    data = ClueCreate.model_validate(clue_body(observed_at=(at - timedelta(minutes=5)).isoformat()))
    clue, _ = submit_clue(
        db, reporter=district.users["rider"], data=data, photos=[], store=FileStore(tmp_path), max_photos=6, now=at
    )
    db.commit()
    return clue


def _escalations(db: Session, clue: Clue) -> list[tuple[int, int]]:
    return [(e.data["previous"], e.data["level"]) for e in timeline(db, clue=clue) if e.action == "escalate"]


def test_levels_rise_once_each(db: Session, district: District, tmp_path: Path) -> None:
    clue = _clue(db, district, tmp_path)
    hours = db.get(Category, clue.category_code).deadline_hours  # type: ignore[union-attr]
    period = timedelta(hours=hours)
    assert clue.deadline_at == T0 + period
    assert escalate_overdue(db, now=T0 + period - timedelta(seconds=1)) == 0
    assert _escalations(db, clue) == []
    # Past the deadline: level 1; running again changes nothing.
    for _ in range(3):
        escalate_overdue(db, now=T0 + period + timedelta(minutes=1))
    assert clue.escalation_level == 1
    assert _escalations(db, clue) == [(0, 1)]
    # A further period late: level 2, again exactly once.
    for _ in range(2):
        escalate_overdue(db, now=T0 + 2 * period + timedelta(minutes=1))
    assert _escalations(db, clue) == [(0, 1), (1, 2)]
    # Far later: level 3, and no level beyond.
    for days in (30, 60):
        escalate_overdue(db, now=T0 + timedelta(days=days))
    assert clue.escalation_level == 3
    assert _escalations(db, clue) == [(0, 1), (1, 2), (2, 3)]
    events = [e for e in timeline(db, clue=clue) if e.action == "escalate"]
    assert all(e.actor_id is None and e.from_status == e.to_status == "submitted" for e in events)
    assert [e.at for e in events] == [
        T0 + period + timedelta(minutes=1),
        T0 + 2 * period + timedelta(minutes=1),
        T0 + timedelta(days=30),
    ]
    audits = db.scalars(select(AuditEntry).where(AuditEntry.action == "clue.escalate")).all()
    assert len(audits) == 3


def test_missed_runs_still_record_every_level(db: Session, district: District, tmp_path: Path) -> None:
    clue = _clue(db, district, tmp_path)
    assert escalate_overdue(db, now=T0 + timedelta(days=90)) == 1
    assert clue.escalation_level == 3
    assert _escalations(db, clue) == [(0, 1), (1, 2), (2, 3)]
    assert escalate_overdue(db, now=T0 + timedelta(days=91)) == 0


def test_finished_clues_are_not_escalated(db: Session, district: District, tmp_path: Path) -> None:
    clue = _clue(db, district, tmp_path)
    take_action(
        db, user=district.users["dispatcher"], clue_id=clue.id, action="reject", body=ActionBody(reason="x"), now=T0
    )
    assert escalate_overdue(db, now=T0 + timedelta(days=30)) == 0
    assert clue.escalation_level == 0
    assert _escalations(db, clue) == []


def test_lease_has_one_holder_at_a_time(session_factory: sessionmaker[Session]) -> None:
    with unit_of_work(session_factory) as s:
        assert acquire_lease(s, "escalate_overdue", seconds=60, holder="server-a")
    with unit_of_work(session_factory) as s:
        assert not acquire_lease(s, "escalate_overdue", seconds=60, holder="server-b")
    with unit_of_work(session_factory) as s:
        assert acquire_lease(s, "escalate_overdue", seconds=60, holder="server-a")  # renewal
    with unit_of_work(session_factory) as s:
        assert acquire_lease(s, "another_job", seconds=60, holder="server-b")  # leases are per job
    # Once the holder has gone quiet past the lease, another server takes over.
    with unit_of_work(session_factory) as s:
        lease = s.get(JobLease, "escalate_overdue")
        assert lease is not None
        lease.leased_until = utcnow() - timedelta(seconds=1)
    with unit_of_work(session_factory) as s:
        assert acquire_lease(s, "escalate_overdue", seconds=60, holder="server-b")
    with unit_of_work(session_factory) as s:
        assert not acquire_lease(s, "escalate_overdue", seconds=60, holder="server-a")
        assert s.get(JobLease, "escalate_overdue").holder == "server-b"  # type: ignore[union-attr]


@pytest.mark.parametrize("expired", [False, True])
def test_racing_servers_get_one_lease(session_factory: sessionmaker[Session], expired: bool) -> None:
    if expired:
        with unit_of_work(session_factory) as s:
            assert acquire_lease(s, "escalate_overdue", seconds=60, holder="gone")
            s.get(JobLease, "escalate_overdue").leased_until = utcnow() - timedelta(minutes=5)  # type: ignore[union-attr]
    n = 8
    barrier = threading.Barrier(n)
    won: list[str] = []
    errors: list[BaseException] = []

    def contend(i: int) -> None:
        try:
            barrier.wait()
            with unit_of_work(session_factory) as s:
                if acquire_lease(s, "escalate_overdue", seconds=60, holder=f"server-{i}"):
                    won.append(f"server-{i}")
        except BaseException as exc:  # surfaced below: a crash is not a lost race
            errors.append(exc)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert len(won) == 1, won
    with unit_of_work(session_factory) as s:
        assert s.get(JobLease, "escalate_overdue").holder == won[0]  # type: ignore[union-attr]


def test_run_due_jobs_escalates(
    session_factory: sessionmaker[Session], db: Session, district: District, tmp_path: Path
) -> None:
    clue = _clue(db, district, tmp_path, at=utcnow() - timedelta(days=30))
    assert run_due_jobs(session_factory, interval=60)["escalate_overdue"] == 1
    db.expire_all()
    assert db.get(Clue, clue.id).escalation_level == 3  # type: ignore[union-attr]
    db.rollback()
    # This process holds the lease, so it runs again; there is nothing left to raise.
    assert run_due_jobs(session_factory, interval=60)["escalate_overdue"] == 0
    with unit_of_work(session_factory) as s:
        s.get(JobLease, "escalate_overdue").holder = "another-server"  # type: ignore[union-attr]
    assert "escalate_overdue" not in run_due_jobs(session_factory, interval=60)
