"""Reported clues written a group at a time (the group-commit writer's part, infra/groupcommit.py).

A report alone costs a dozen statements (its idempotency key, its reporter's pace, its category, its
place, its row, its event, its audit entry, two flushes and a savepoint). A group of reports costs a
fixed handful: one look-up of all their keys, one count of their reporters' pace, the categories and the
district's areas once, and one multi-row insert each for clues, events, audit entries and photos. Each
report still gets its own answer: a refusal of its own (a bad place, a spent pace, a key used for
another report) leaves the others to be written. If the group's insert meets a key that another server
process stored meanwhile, the group is written again report by report, each in a savepoint of its own,
by `service.submit_clue`, which answers such a race with the stored clue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from riderwatch.clues import service
from riderwatch.clues.schemas import ClueCreate
from riderwatch.errors import N_, DomainError, InvalidInput
from riderwatch.infra.clock import utcnow
from riderwatch.infra.images import CheckedPhoto
from riderwatch.infra.sqlparams import one_of
from riderwatch.models import AuditEntry, Category, Clue, ClueEvent, CluePhoto, User
from riderwatch.org import service as org_service


@dataclass(frozen=True)
class Submission:
    """One reported clue, read and checked, its photos stored, waiting to be written."""

    reporter: User
    data: ClueCreate
    photos: list[CheckedPhoto]
    idempotency_key: str | None
    hourly_limit: int | None
    max_photos: int


@dataclass(frozen=True)
class Reported:
    """The answer to a report: its clue, and whether this report created it (else a retry found it)."""

    id: int
    status: str
    created: bool


def submit_clues(session: Session, submissions: Sequence[Submission]) -> list[Reported | Exception]:
    """Write a group of reports in the caller's transaction; one answer per report, in order."""
    now = utcnow()
    try:
        with session.begin_nested():
            return _together(session, submissions, now)
    except IntegrityError:
        pass  # another process stored one of these keys meanwhile: one by one, each answered alone
    return _one_by_one(session, submissions, now)


def _one_by_one(session: Session, submissions: Sequence[Submission], now: datetime) -> list[Reported | Exception]:
    locator = org_service.Locator(session)
    answers: list[Reported | Exception] = []
    for item in submissions:
        try:
            with session.begin_nested():
                clue, created = service.submit_clue(
                    session,
                    reporter=item.reporter,
                    data=item.data,
                    photos=item.photos,
                    store=None,
                    max_photos=item.max_photos,
                    idempotency_key=item.idempotency_key,
                    hourly_limit=item.hourly_limit,
                    now=now,
                    locator=locator,
                )
            answers.append(Reported(clue.id, clue.status, created))
        except Exception as exc:  # the report's own failure, answered to its request alone
            answers.append(exc)
    return answers


def _together(session: Session, submissions: Sequence[Submission], now: datetime) -> list[Reported | Exception]:
    answers: list[Reported | Exception | None] = [None] * len(submissions)
    fingerprints = [service.request_fingerprint(s.data, s.photos) for s in submissions]
    stored = _stored_under_keys(session, submissions)
    pace = _pace(session, submissions, now)
    categories = {c.code: c for c in session.scalars(select(Category).where(Category.active.is_(True)))}
    locator = org_service.Locator(session)
    rows: list[dict[str, Any]] = []
    taken: list[int] = []  # the reports whose row is in `rows`, in order
    first_under_key: dict[tuple[int, str], int] = {}  # a key's first report in this group
    for i, item in enumerate(submissions):
        key = (item.reporter.id, item.idempotency_key) if item.idempotency_key else None
        try:
            service.check_submission(
                item.data, item.photos, idempotency_key=item.idempotency_key, max_photos=item.max_photos
            )
            if key is not None and key in stored:
                clue = service.replay(stored[key], fingerprints[i])
                answers[i] = Reported(clue.id, clue.status, False)
                continue
            if key is not None and key in first_under_key:
                continue  # a retry racing its first report in this group: answered once that one is written
            if item.hourly_limit is not None:
                sent, oldest = pace.get(item.reporter.id, (0, None))
                refusal = service.pace_refusal(item.hourly_limit, sent, oldest, now)
                if refusal is not None:
                    raise refusal
            if item.data.alert_id is not None:
                service.check_sighting(session, item.reporter, item.data.alert_id)
            category = categories.get(item.data.category)
            if category is None:
                raise InvalidInput(
                    N_("unknown category %(code)r: use a service_code from the Open311 service list"),
                    code=item.data.category,
                )
            rows.append(
                service.clue_row(
                    category,
                    item.data,
                    reporter=item.reporter,
                    now=now,
                    place=lambda lat, lon: locator.locate(lat=lat, lon=lon),
                    fingerprint=fingerprints[i],
                    idempotency_key=item.idempotency_key,
                )
            )
        except DomainError as exc:
            answers[i] = exc
            continue
        taken.append(i)
        if key is not None:
            first_under_key[key] = i
        sent, oldest = pace.get(item.reporter.id, (0, None))
        pace[item.reporter.id] = (sent + 1, oldest or now)
    ids = _insert(session, submissions, taken, rows, now)
    for i, clue_id, row in zip(taken, ids, rows, strict=True):
        answers[i] = Reported(clue_id, "submitted", True)
        if row["alert_id"] is not None:
            service.tell_sighting(
                session,
                clue_id=clue_id,
                alert_id=row["alert_id"],
                category=row["category_code"],
                lat=row["lat"],
                lon=row["lon"],
            )
    for i, item in enumerate(submissions):
        if answers[i] is None:  # a retry of a report taken earlier in this group
            first = first_under_key[(item.reporter.id, item.idempotency_key or "")]
            same = fingerprints[i] == fingerprints[first]
            written = answers[first]
            assert isinstance(written, Reported)
            answers[i] = (
                Reported(written.id, written.status, False)
                if same
                else InvalidInput(N_("this Idempotency-Key was already used for a different report"))
            )
    return [a for a in answers if a is not None]


def _stored_under_keys(session: Session, submissions: Sequence[Submission]) -> dict[tuple[int, str], Clue]:
    keys = {s.idempotency_key for s in submissions if s.idempotency_key}
    if not keys:
        return {}
    reporters = {s.reporter.id for s in submissions if s.idempotency_key}
    found = session.scalars(
        select(Clue).where(
            one_of(session, Clue.idempotency_key.expression, keys),
            one_of(session, Clue.reporter_id.expression, reporters),
        )
    )
    return {(c.reporter_id, c.idempotency_key): c for c in found if c.reporter_id and c.idempotency_key}


def _pace(session: Session, submissions: Sequence[Submission], now: datetime) -> dict[int, tuple[int, datetime | None]]:
    paced = {s.reporter.id for s in submissions if s.hourly_limit is not None}
    if not paced:
        return {}
    rows = session.execute(
        select(Clue.reporter_id, func.count(), func.min(Clue.reported_at))
        .where(one_of(session, Clue.reporter_id.expression, paced), Clue.reported_at > now - service.PACE_WINDOW)
        .group_by(Clue.reporter_id)
    )
    return {reporter_id: (sent, oldest) for reporter_id, sent, oldest in rows if reporter_id is not None}


def _insert(
    session: Session, submissions: Sequence[Submission], taken: list[int], rows: list[dict[str, Any]], now: datetime
) -> list[int]:
    """The clues' rows, then their events, audit entries and photos, each in one statement; the new ids."""
    if not rows:
        return []
    ids = list(session.scalars(insert(Clue).returning(Clue.id, sort_by_parameter_order=True), rows))
    items = [submissions[i] for i in taken]
    session.execute(
        insert(ClueEvent),
        [
            {
                "clue_id": clue_id,
                "at": now,
                "actor_id": item.reporter.id,
                "action": "submit",
                "from_status": None,
                "to_status": "submitted",
                "note": "",
                "data": {"photos": len(item.photos), "source": "app"},
            }
            for clue_id, item in zip(ids, items, strict=True)
        ],
    )
    session.execute(
        insert(AuditEntry),
        [
            {
                "at": now,
                "actor_id": item.reporter.id,
                "action": "clue.submit",
                "object_type": "clue",
                "object_id": str(clue_id),
                "detail": {"from_status": None, "to_status": "submitted"},
            }
            for clue_id, item in zip(ids, items, strict=True)
        ],
    )
    photos = [
        {
            "clue_id": clue_id,
            "position": position,
            "sha256": photo.sha256,
            "content_type": photo.content_type,
            "size": len(photo.data),
            "width": photo.width,
            "height": photo.height,
        }
        for clue_id, item in zip(ids, items, strict=True)
        for position, photo in enumerate(item.photos)
    ]
    if photos:
        session.execute(insert(CluePhoto), photos)
    return ids
