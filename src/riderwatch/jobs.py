"""Periodic jobs (overdue escalation, position retention, coverage counts and roll-up, task rules, task verification),
run once per cluster under a database lease."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from riderwatch.clues.service import escalate_overdue
from riderwatch.config import get_settings
from riderwatch.coverage.counts import fold_counts
from riderwatch.coverage.rollup import roll_up
from riderwatch.db import unit_of_work
from riderwatch.evaluation import service as evaluation
from riderwatch.infra.clock import utcnow
from riderwatch.models import JobLease
from riderwatch.tasks.rules import run_due_rules
from riderwatch.tasks.service import TaskLimits
from riderwatch.tasks.verification import purge_visits, verify_due
from riderwatch.tracking.ingest import IngestRules
from riderwatch.tracking.service import end_shifts_of_inactive, purge_expired

log = logging.getLogger(__name__)
HOLDER = f"{socket.gethostname()}:{os.getpid()}"


def acquire_lease(session: Session, name: str, *, seconds: int, holder: str = HOLDER) -> bool:
    """Take or renew the lease on job `name`; False while another process holds it."""
    now = utcnow()
    until = now + timedelta(seconds=seconds)
    try:
        with session.begin_nested():
            session.execute(insert(JobLease).values(name=name, holder=holder, leased_until=until))
        return True
    except IntegrityError:
        pass
    result = session.execute(
        update(JobLease)
        .where(JobLease.name == name, (JobLease.leased_until < now) | (JobLease.holder == holder))
        .values(holder=holder, leased_until=until)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def purge_positions(session: Session) -> int:
    """Raw positions past retention go; shifts of riders who left or were suspended end."""
    settings = get_settings()
    done = purge_expired(session, retention_days=settings.position_retention_days)
    visits = purge_visits(session, before=utcnow() - timedelta(days=settings.position_retention_days))
    return sum(done.values()) + visits + end_shifts_of_inactive(session)


def verify_patrol_tasks(session: Session) -> int:
    """Check riders' positions against every task that has started and whose results are not final."""
    return verify_due(session, limits=TaskLimits.from_settings(get_settings()))


def publish_rule_tasks(session: Session) -> int:
    """Rules whose publish time has passed today publish their tasks (once a day each)."""
    return run_due_rules(session, limits=TaskLimits.from_settings(get_settings()))


def fold_coverage_counts(session: Session) -> int:
    """The counts ingest appended go into coverage_cells (readers fold too; this keeps them few)."""
    return fold_counts(session)


def roll_up_coverage(session: Session) -> int:
    """Days no ping can still arrive for go into the coverage roll-up the coverage query reads."""
    return roll_up(session, now=utcnow(), max_age=IngestRules.from_settings(get_settings()).max_age)


def score_last_month(session: Session) -> int:
    """At the turn of a month, every rider is scored for the month just ended (once)."""
    return evaluation.score_last_month(session, timezone=get_settings().timezone)


JOBS: dict[str, Callable[[Session], int]] = {
    "escalate_overdue": lambda s: escalate_overdue(s),
    "purge_positions": purge_positions,
    "publish_rule_tasks": publish_rule_tasks,
    "verify_patrol_tasks": verify_patrol_tasks,
    "fold_coverage_counts": fold_coverage_counts,
    "roll_up_coverage": roll_up_coverage,
    "score_last_month": score_last_month,
}


def run_due_jobs(factory: sessionmaker[Session], *, interval: int) -> dict[str, int]:
    """Run every job whose lease this process can take; returns what each changed."""
    done: dict[str, int] = {}
    for name, job in JOBS.items():
        with unit_of_work(factory) as session:
            if acquire_lease(session, name, seconds=max(5, interval - 1)):
                done[name] = job(session)
    return done


async def job_loop(factory: sessionmaker[Session], *, interval: int) -> None:
    while True:
        try:
            await asyncio.to_thread(run_due_jobs, factory, interval=interval)
        except Exception:  # a failed run must not stop later ones; it is logged and retried
            log.exception("periodic jobs failed")
        await asyncio.sleep(interval)
