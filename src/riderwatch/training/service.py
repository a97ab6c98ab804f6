"""Training (the article's legal training): courses with material and a question bank, quizzes drawn from
the bank, results kept, required courses before activation, passes that run out.

A quiz draws `questions_per_quiz` questions of the course's bank in random order (all of them if the bank
is smaller); an unfinished attempt is resumed for two hours, then counts as given up. A rider has
`attempts_per_day` attempts per local day. The score is the share of questions answered exactly right (a
multiple-choice question needs every right option and no other). A pass lasts `valid_months` from the day
it was passed (None: for good); then the rider takes the course again (a refresher).
"""

from __future__ import annotations

import calendar
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.audit.service import record
from riderwatch.db import atomic
from riderwatch.errors import N_, Conflict, InvalidInput, NotFound, TooManyRequests
from riderwatch.infra.clock import utcnow
from riderwatch.infra.sqlparams import one_of
from riderwatch.models import Course, CourseQuestion, QuizAttempt, Rider, Station, User
from riderwatch.points import service as points

RESUME_WINDOW = timedelta(hours=2)
MAX_OPTIONS = 8
COURSE_FIELDS = (
    "title",
    "title_en",
    "body",
    "body_en",
    "required",
    "valid_months",
    "pass_mark",
    "questions_per_quiz",
    "attempts_per_day",
    "position",
    "active",
)


# --- courses and their questions ---------------------------------------------------------------------------


def course_of(session: Session, code: str) -> Course:
    course = session.scalar(select(Course).where(Course.code == code))
    if course is None:
        raise NotFound(N_("no course %(code)r"), code=code)
    return course


def courses(session: Session, *, include_inactive: bool = False) -> list[Course]:
    stmt = select(Course).order_by(Course.position, Course.id)
    if not include_inactive:
        stmt = stmt.where(Course.active.is_(True))
    return list(session.scalars(stmt))


@atomic
def create_course(session: Session, *, actor: User, values: Mapping[str, Any]) -> Course:
    if session.scalar(select(Course.id).where(Course.code == values["code"])) is not None:
        raise Conflict(N_("a course with the code %(code)r exists already"), code=values["code"])
    course = Course(code=values["code"], **{k: values[k] for k in COURSE_FIELDS if k in values})
    session.add(course)
    session.flush()
    record(session, actor=actor, action="course.create", object_type="course", object_id=course.code)
    return course


@atomic
def update_course(session: Session, *, actor: User, code: str, values: Mapping[str, Any]) -> Course:
    course = course_of(session, code)
    changes = {k: [getattr(course, k), v] for k, v in values.items() if k in COURSE_FIELDS and getattr(course, k) != v}
    for key, (_old, new) in changes.items():
        setattr(course, key, new)
    session.flush()
    if changes:
        shown = {k: (["…", "…"] if k in ("body", "body_en") else v) for k, v in changes.items()}
        record(session, actor=actor, action="course.update", object_type="course", object_id=code, changes=shown)
    return course


def check_question(index: int, question: Mapping[str, Any]) -> CourseQuestion:
    text = str(question.get("text") or "").strip()
    options = question.get("options")
    correct = question.get("correct")
    multiple = bool(question.get("multiple"))
    if not text:
        raise InvalidInput(N_("question %(n)d has no text"), n=index)
    if not isinstance(options, list) or not 2 <= len(options) <= MAX_OPTIONS:
        raise InvalidInput(N_("question %(n)d needs 2 to %(max)d options"), n=index, max=MAX_OPTIONS)
    shown = []
    for option in options:
        label = option.get("text") if isinstance(option, dict) else option
        if not isinstance(label, str) or not label.strip():
            raise InvalidInput(N_("question %(n)d has an empty option"), n=index)
        shown.append(
            {"text": label.strip(), "text_en": str(option.get("text_en") or "") if isinstance(option, dict) else ""}
        )
    if (
        not isinstance(correct, list)
        or not correct
        or not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(options) for i in correct)
        or len(set(correct)) != len(correct)
    ):
        raise InvalidInput(N_("question %(n)d: name its right options by their place, from 0"), n=index)
    if not multiple and len(correct) != 1:
        raise InvalidInput(N_("question %(n)d is single choice: exactly one option is right"), n=index)
    return CourseQuestion(
        text=text,
        text_en=str(question.get("text_en") or "").strip(),
        multiple=multiple,
        options=shown,
        correct=sorted(correct),
        active=True,
    )


@atomic
def add_questions(session: Session, *, actor: User, code: str, questions: Sequence[Mapping[str, Any]]) -> int:
    """Add questions to a course's bank (all or none); the bank's size afterwards."""
    course = course_of(session, code)
    if not questions:
        raise InvalidInput(N_("send at least one question"))
    rows = [check_question(i, q) for i, q in enumerate(questions, start=1)]
    for row in rows:
        row.course_id = course.id
    session.add_all(rows)
    session.flush()
    record(session, actor=actor, action="course.questions", object_type="course", object_id=code, added=len(rows))
    return bank_size(session, course.id)


def questions(session: Session, course_id: int) -> list[CourseQuestion]:
    """The course's whole bank, retired questions included (an administrator's view, with the answers)."""
    return list(
        session.scalars(select(CourseQuestion).where(CourseQuestion.course_id == course_id).order_by(CourseQuestion.id))
    )


@atomic
def set_question_active(session: Session, *, actor: User, code: str, question_id: int, active: bool) -> CourseQuestion:
    """Retire a question from the bank (quizzes no longer draw it; past attempts keep it) or bring it back."""
    course = course_of(session, code)
    question = session.get(CourseQuestion, question_id)
    if question is None or question.course_id != course.id:
        raise NotFound(N_("no question %(id)d in this course"), id=question_id)
    if question.active != active:
        question.active = active
        session.flush()
        record(
            session,
            actor=actor,
            action="course.question_restore" if active else "course.question_retire",
            object_type="course",
            object_id=code,
            question=question_id,
        )
    return question


def bank_size(session: Session, course_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(CourseQuestion)
            .where(CourseQuestion.course_id == course_id, CourseQuestion.active.is_(True))
        )
        or 0
    )


# --- a rider's standing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Standing:
    """Where a rider stands with a course: "passed", "expired" (a refresher is due), "failed" or "new"."""

    status: str
    best_score: int | None
    passed_at: datetime | None
    expires_at: datetime | None


def _months_later(at: datetime, months: int) -> datetime:
    """The same day `months` later (the month's last day where it is shorter: 31 Jan + 1 → 28/29 Feb)."""
    index = at.month - 1 + months
    year, month = at.year + index // 12, index % 12 + 1
    return at.replace(year=year, month=month, day=min(at.day, calendar.monthrange(year, month)[1]))


def standing(session: Session, *, rider_id: int, now: datetime | None = None) -> dict[int, Standing]:
    """Per course id (every course the rider attempted; others are "new")."""
    return standings(session, rider_ids=[rider_id], now=now).get(rider_id, {})


def standings(
    session: Session, *, rider_ids: Sequence[int], now: datetime | None = None
) -> dict[int, dict[int, Standing]]:
    """Rider id → course id → standing, for many riders in one query of their finished attempts."""
    now = now or utcnow()
    if not rider_ids:
        return {}
    attempts = session.execute(
        select(
            QuizAttempt.rider_id, QuizAttempt.course_id, QuizAttempt.score, QuizAttempt.passed, QuizAttempt.finished_at
        )
        .where(one_of(session, QuizAttempt.rider_id.expression, set(rider_ids)), QuizAttempt.finished_at.is_not(None))
        .order_by(QuizAttempt.finished_at)
    )
    tries: dict[tuple[int, int], list[Any]] = {}
    for attempt in attempts:
        tries.setdefault((attempt.rider_id, attempt.course_id), []).append(attempt)
    months = {c.id: c.valid_months for c in session.scalars(select(Course))}
    found: dict[int, dict[int, Standing]] = {}
    for (rider_id, course_id), rows in tries.items():
        best = max((t.score or 0 for t in rows), default=None)
        passes = [t for t in rows if t.passed]
        if not passes:
            found.setdefault(rider_id, {})[course_id] = Standing("failed", best, None, None)
            continue
        passed_at = passes[-1].finished_at
        valid = months.get(course_id)
        expires = _months_later(passed_at, valid) if valid else None
        status = "expired" if expires is not None and expires <= now else "passed"
        found.setdefault(rider_id, {})[course_id] = Standing(status, best, passed_at, expires)
    return found


def missing_required(session: Session, *, rider_id: int, now: datetime | None = None) -> list[Course]:
    """The required courses the rider has not passed (or whose pass has run out)."""
    held = standing(session, rider_id=rider_id, now=now)
    return [c for c in courses(session) if c.required and (c.id not in held or held[c.id].status != "passed")]


REMIND_BEFORE = timedelta(days=30)


def refreshers_due(session: Session, *, rider_id: int, now: datetime | None = None) -> list[tuple[Course, Standing]]:
    """The required courses whose pass has run out, or runs out within `REMIND_BEFORE`: the rider's reminder."""
    now = now or utcnow()
    held = standing(session, rider_id=rider_id, now=now)
    return [
        (c, held[c.id])
        for c in courses(session)
        if c.required
        and c.id in held
        and held[c.id].expires_at is not None
        and (held[c.id].status == "expired" or held[c.id].expires_at <= now + REMIND_BEFORE)  # type: ignore[operator]
    ]


# --- taking a quiz ---------------------------------------------------------------------------------------------


def _local_midnight(now: datetime, timezone: str) -> datetime:
    zone = ZoneInfo(timezone)
    return datetime.combine(now.astimezone(zone).date(), time(), zone)


@atomic
def start_quiz(
    session: Session,
    *,
    rider: User,
    code: str,
    timezone: str,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> tuple[QuizAttempt, list[CourseQuestion]]:
    """A quiz for the rider: an unfinished one of the last two hours is resumed, else a new draw."""
    now = now or utcnow()
    course = course_of(session, code)
    if not course.active:
        raise Conflict(N_("the course %(title)s is no longer given"), title=course.title)
    if session.get(Rider, rider.id) is None:
        raise InvalidInput(N_("only riders take the courses' quizzes"))
    open_attempt = session.scalar(
        select(QuizAttempt).where(
            QuizAttempt.rider_id == rider.id,
            QuizAttempt.course_id == course.id,
            QuizAttempt.finished_at.is_(None),
            QuizAttempt.started_at > now - RESUME_WINDOW,
        )
    )
    if open_attempt is not None:
        return open_attempt, _questions(session, open_attempt.question_ids)
    today = (
        session.scalar(
            select(func.count())
            .select_from(QuizAttempt)
            .where(
                QuizAttempt.rider_id == rider.id,
                QuizAttempt.course_id == course.id,
                QuizAttempt.started_at >= _local_midnight(now, timezone),
            )
        )
        or 0
    )
    if today >= course.attempts_per_day:
        tomorrow = _local_midnight(now, timezone) + timedelta(days=1)
        raise TooManyRequests(
            N_("%(n)d attempts a day at this quiz; try again tomorrow"),
            n=course.attempts_per_day,
            retry_after=max(1, int((tomorrow - now).total_seconds())),
        )
    bank = list(
        session.scalars(
            select(CourseQuestion.id).where(CourseQuestion.course_id == course.id, CourseQuestion.active.is_(True))
        )
    )
    if not bank:
        raise Conflict(N_("the course %(title)s has no questions yet"), title=course.title)
    drawn = (rng or random.SystemRandom()).sample(bank, min(course.questions_per_quiz, len(bank)))
    attempt = QuizAttempt(course_id=course.id, rider_id=rider.id, started_at=now, question_ids=drawn)
    session.add(attempt)
    session.flush()
    return attempt, _questions(session, drawn)


def _questions(session: Session, ids: Sequence[int]) -> list[CourseQuestion]:
    found = {q.id: q for q in session.scalars(select(CourseQuestion).where(CourseQuestion.id.in_(list(ids))))}
    return [found[i] for i in ids if i in found]


@dataclass(frozen=True)
class Marked:
    attempt: QuizAttempt
    course: Course
    right: dict[int, bool]  # question id → answered exactly right


@atomic
def submit_quiz(
    session: Session, *, rider: User, attempt_id: int, answers: Mapping[str, Sequence[int]], now: datetime | None = None
) -> Marked:
    """Mark an attempt: the score in per cent, passed or not; kept for good (audited when passed)."""
    now = now or utcnow()
    attempt = session.get(QuizAttempt, attempt_id)
    if attempt is None or attempt.rider_id != rider.id:
        raise NotFound(N_("no quiz %(id)d"), id=attempt_id)
    if attempt.finished_at is not None:
        raise Conflict(N_("this quiz was handed in already; start a new one"))
    if attempt.started_at <= now - RESUME_WINDOW:
        raise Conflict(N_("this quiz ran out after two hours; start a new one"))
    course = session.get(Course, attempt.course_id)
    assert course is not None
    questions = _questions(session, attempt.question_ids)
    right: dict[int, bool] = {}
    given: dict[str, list[int]] = {}
    for question in questions:
        chosen = answers.get(str(question.id), [])
        if not isinstance(chosen, list | tuple) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in chosen
        ):
            raise InvalidInput(N_("answer question %(id)d with the places of the options chosen"), id=question.id)
        given[str(question.id)] = sorted(set(chosen))
        right[question.id] = given[str(question.id)] == sorted(question.correct)
    attempt.answers = given
    attempt.finished_at = now
    attempt.score = round(100 * sum(right.values()) / len(questions)) if questions else 0
    attempt.passed = attempt.score >= course.pass_mark
    session.flush()
    if attempt.passed:
        record(
            session,
            actor=rider,
            action="course.passed",
            object_type="course",
            object_id=course.code,
            score=attempt.score,
        )
        # The first pass of a course earns points; passing again (a refresher) does not.
        points.award(
            session,
            rider_id=rider.id,
            key="course_passed",
            source="course",
            source_id=course.id,
            award_key=f"course:{course.id}:rider:{rider.id}",
            at=now,
        )
    return Marked(attempt, course, right)


# --- completion per station ----------------------------------------------------------------------------------


def completion(session: Session, *, rider_scope: Any, now: datetime | None = None) -> list[dict[str, Any]]:
    """Per course: how many of the riders in scope hold a valid pass, out of how many."""
    now = now or utcnow()
    riders = list(session.scalars(select(Rider.user_id).where(rider_scope, Rider.status.in_(("applied", "active")))))
    held: dict[int, int] = {}
    for per_course in standings(session, rider_ids=riders, now=now).values():
        for course_id, found in per_course.items():
            if found.status == "passed":
                held[course_id] = held.get(course_id, 0) + 1
    return [
        {"code": c.code, "title": c.title, "required": c.required, "passed": held.get(c.id, 0), "riders": len(riders)}
        for c in courses(session)
    ]


@dataclass
class StationCompletion:
    """One station's riders (applicants and active members) and, per course id, how many hold a valid pass."""

    station: str
    riders: int = 0
    passed: dict[int, int] = field(default_factory=dict)


def completion_by_station(
    session: Session, *, rider_scope: Any, now: datetime | None = None
) -> tuple[list[Course], list[StationCompletion]]:
    """The courses, and per station in scope (by name) how many of its riders hold a valid pass of each."""
    now = now or utcnow()
    rows = session.execute(
        select(Rider.user_id, Station.name)
        .outerjoin(Station, Station.id == Rider.station_id)
        .where(rider_scope, Rider.status.in_(("applied", "active")))
    ).all()
    held = standings(session, rider_ids=[r.user_id for r in rows], now=now)
    found: dict[str, StationCompletion] = {}
    for rider_id, station in rows:
        entry = found.setdefault(station or "", StationCompletion(station or ""))
        entry.riders += 1
        for course_id, standing_ in held.get(rider_id, {}).items():
            if standing_.status == "passed":
                entry.passed[course_id] = entry.passed.get(course_id, 0) + 1
    return courses(session), [found[name] for name in sorted(found)]
