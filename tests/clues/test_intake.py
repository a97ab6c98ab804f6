"""A group of reports written together stores exactly what the reports written one by one would, and
answers each on its own terms (issue 10, finding 7)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from riderwatch.clues import intake
from riderwatch.clues.schemas import ClueCreate
from riderwatch.infra.clock import utcnow
from riderwatch.infra.images import check_photo
from riderwatch.models import AuditEntry, Clue, ClueEvent, CluePhoto, User
from tests.factories import District, clue_body, image_bytes


def _item(reporter: User, key: str | None, *, limit: int | None = None, photo: bool = False, **body: Any) -> Any:
    photos = [check_photo(image_bytes("PNG", color="blue"), max_bytes=10**6)] if photo else []
    return intake.Submission(
        reporter=reporter,
        data=ClueCreate.model_validate(clue_body(**body)),
        photos=photos,
        idempotency_key=key,
        hourly_limit=limit,
        max_photos=6,
    )


def _group(district: District) -> list[intake.Submission]:
    rider, rider2 = district.users["rider"], district.users["rider2"]
    at = (utcnow() - timedelta(minutes=30)).replace(microsecond=0).isoformat()
    items = [
        _item(rider, "a", photo=True),
        _item(rider2, "a", anonymous=True, description="有人撬电动车"),
        _item(rider, "b", category="no_such_thing"),  # refused: unknown category
        _item(rider, "a", photo=True),  # a retry of the first, racing it in the same group
        _item(rider, "a", description="另一件事"),  # the same key for another report: refused
        _item(rider, None, lat=30.0, lon=120.0),  # outside the district: stored without a place
        _item(rider2, "c", limit=1),  # rider2's second report this hour, with a pace of one: refused
        _item(rider, "d", crs="gcj02"),
    ]
    # One time for all, so a retry's body is its first report's, byte for byte.
    return _same_time(items, at)


def _same_time(items: list[intake.Submission], at: str) -> list[intake.Submission]:
    return [
        intake.Submission(
            reporter=i.reporter,
            data=ClueCreate.model_validate({**i.data.model_dump(mode="json"), "observed_at": at}),
            photos=i.photos,
            idempotency_key=i.idempotency_key,
            hourly_limit=i.hourly_limit,
            max_photos=i.max_photos,
        )
        for i in items
    ]


def _outcome(answers: Sequence[intake.Reported | Exception]) -> list[str]:
    return [
        f"{'created' if a.created else 'found'} {a.id}" if isinstance(a, intake.Reported) else type(a).__name__
        for a in answers
    ]


def _rows(db: Session) -> list[tuple[Any, ...]]:
    """What was stored, without ids and times of day: every column a report writes."""
    clues = {c.id: c for c in db.scalars(select(Clue))}
    order = {cid: n for n, cid in enumerate(sorted(clues))}
    out: list[tuple[Any, ...]] = []
    for c in clues.values():
        out.append(
            (
                "clue",
                order[c.id],
                c.category_code,
                c.description,
                round(c.lat, 9),
                round(c.lon, 9),
                c.reporter_id,
                c.anonymous,
                c.idempotency_key,
                c.request_fingerprint,
                c.status,
                c.grid_id,
                c.community_id,
                c.deadline_at - c.reported_at,
                c.source,
                c.contact,
                c.attributes,
                c.urgent,
            )
        )
    for e in db.scalars(select(ClueEvent)):
        out.append(("event", order[e.clue_id], e.actor_id, e.action, e.from_status, e.to_status, e.note, e.data))
    for a in db.scalars(select(AuditEntry).where(AuditEntry.action == "clue.submit")):
        out.append(("audit", order[int(a.object_id)], a.actor_id, a.detail))
    for p in db.scalars(select(CluePhoto)):
        out.append(("photo", order[p.clue_id], p.position, p.sha256, p.content_type, p.size, p.width, p.height))
    db.rollback()
    return sorted(out, key=repr)


def test_a_group_stores_what_one_by_one_would_and_answers_each(db: Session, district: District) -> None:
    rider2 = district.users["rider2"]
    db.add(Clue(**_earlier_clue(rider2)))
    db.commit()
    together = intake.submit_clues(db, _group(district))
    db.commit()
    assert [type(a).__name__ for a in together] == [
        "Reported",
        "Reported",
        "InvalidInput",  # unknown category
        "Reported",  # the retry: the first one's clue
        "InvalidInput",  # the key used for another report
        "Reported",
        "TooManyRequests",
        "Reported",
    ]
    created = [a for a in together if isinstance(a, intake.Reported)]
    assert [a.created for a in created] == [True, True, False, True, True]
    assert created[2].id == created[0].id
    assert len({a.id for a in created}) == 4
    stored_together = _rows(db)

    # The same reports, one by one (the path a group falls back to), into an emptied district.
    for model in (CluePhoto, ClueEvent, AuditEntry, Clue):
        db.execute(delete(model))
    db.add(Clue(**_earlier_clue(rider2)))
    db.commit()
    one_by_one = intake._one_by_one(db, _group(district), utcnow())
    db.commit()
    assert [type(a).__name__ for a in one_by_one] == [type(a).__name__ for a in together]
    assert _rows(db) == stored_together


def _earlier_clue(reporter: User) -> dict[str, Any]:
    at = utcnow() - timedelta(minutes=20)
    return {
        "category_code": "fire_hazard",
        "description": "earlier",
        "lat": 25.0,
        "lon": 119.0,
        "observed_at": at,
        "reported_at": at,
        "updated_at": at,
        "reporter_id": reporter.id,
        "status": "submitted",
        "deadline_at": at,
        "request_fingerprint": "x",
    }


def test_a_key_stored_by_another_process_meanwhile_is_answered_with_its_clue(
    db: Session, district: District, monkeypatch: pytest.MonkeyPatch
) -> None:
    rider = district.users["rider"]
    at = (utcnow() - timedelta(minutes=30)).replace(microsecond=0).isoformat()
    first = intake.submit_clues(db, _same_time([_item(rider, "k1")], at))
    db.commit()
    # The group does not see the stored key (as if another process stored it after the look-up): its
    # insert meets the unique key, and the group is written again one by one.
    monkeypatch.setattr(intake, "_stored_under_keys", lambda *_: {})
    again = intake.submit_clues(db, _same_time([_item(rider, "k1"), _item(rider, "k2")], at))
    db.commit()
    assert isinstance(first[0], intake.Reported)
    assert _outcome(again)[0] == f"found {first[0].id}" and _outcome(again)[1].startswith("created")
    assert len(db.scalars(select(Clue)).all()) == 2
    db.rollback()
