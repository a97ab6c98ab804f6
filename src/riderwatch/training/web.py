"""The training pages: a rider's courses, quizzes, results and certificates; the administrator's courses,
each with its text, its pictures and PDFs and its question bank (questions added one by one or imported
from a spreadsheet, retired and restored).

Thin like the other pages: the rules are training.service, training.materials and training.question_bank,
the services behind /api/v1/courses.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any
from urllib.parse import urlencode

import anyio
from fastapi import APIRouter, Depends, Form, Request
from fastapi import Path as FastPath
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from riderwatch import policy
from riderwatch.bodies import upload_form, uploaded_file
from riderwatch.db import in_transaction
from riderwatch.deps import DbSession, PathId, reads_only, require
from riderwatch.errors import N_, DomainError, InvalidInput, NotFound
from riderwatch.models import Course, User
from riderwatch.training import materials, question_bank
from riderwatch.training import service as training
from riderwatch.training.schemas import CourseCreate, CourseFields
from riderwatch.web.forms import (
    LONG,
    done_message,
    form_text,
    formatter,
    in_reader_language,
    labels_in,
    refusal,
    see_other,
)
from riderwatch.web.templating import render

router = APIRouter(include_in_schema=False)

TrainingManager = Annotated[User, Depends(require("training.manage"))]
CourseCode = Annotated[str, FastPath(max_length=64)]
# A question bank's columns, named in a refusal as the reader says them.
COLUMN_LABELS = {
    "text": N_("Question"),
    "question": N_("Question"),
    "answer": N_("Answer"),
    "options": N_("Options"),
    "type": N_("Type"),
}
OPTION_SLOTS = 6  # option rows on the add-a-question form (the bank takes up to training.MAX_OPTIONS)
DONE: dict[str, str] = {
    "created": N_("The course was added: now give it its questions."),
    "saved": N_("Saved."),
    "retired": N_("The course was retired: riders no longer see it; results are kept."),
    "restored": N_("The course is given again."),
    "question": N_("The question was added to the bank."),
    "question-retired": N_("The question was retired: quizzes no longer draw it."),
    "question-restored": N_("The question is in the bank again."),
    "material": N_("The file was added to the course."),
    "material-retired": N_("The file was retired: riders no longer see it."),
    "material-restored": N_("The file is shown again."),
}
BLANK_COURSE: dict[str, Any] = {
    "code": "",
    "title": "",
    "title_en": "",
    "body": "",
    "body_en": "",
    "required": True,
    "valid_months": "",
    "pass_mark": 80,
    "questions_per_quiz": 10,
    "attempts_per_day": 3,
    "position": 0,
}


def course_form(
    title: Annotated[str, form_text()] = "",
    title_en: Annotated[str, form_text()] = "",
    body: Annotated[str, Form(max_length=50_000)] = "",
    body_en: Annotated[str, Form(max_length=50_000)] = "",
    required: Annotated[str, form_text()] = "",
    valid_months: Annotated[str, form_text()] = "",
    pass_mark: Annotated[str, form_text()] = "",
    questions_per_quiz: Annotated[str, form_text()] = "",
    attempts_per_day: Annotated[str, form_text()] = "",
    position: Annotated[str, form_text()] = "",
) -> dict[str, Any]:
    return {
        "title": title.strip(),
        "title_en": title_en.strip(),
        "body": body.strip(),
        "body_en": body_en.strip(),
        "required": bool(required),  # a checkbox that is not ticked is not sent at all
        "valid_months": valid_months.strip() or None,  # blank: a pass lasts for good
        "pass_mark": pass_mark.strip(),
        "questions_per_quiz": questions_per_quiz.strip(),
        "attempts_per_day": attempts_per_day.strip(),
        "position": position.strip() or "0",
    }


CourseValues = Annotated[dict[str, Any], Depends(course_form)]


def _values(course: Course) -> dict[str, Any]:
    return {key: getattr(course, key) for key in ("code", *training.COURSE_FIELDS)}


@router.get("/admin/courses")
def courses_page(request: Request, db: DbSession, _admin: TrainingManager, done: str = "") -> HTMLResponse:
    rows = [
        {
            "course": course,
            "bank": training.bank_size(db, course.id),
            "materials": len(materials.materials(db, course.id)),
        }
        for course in training.courses(db, include_inactive=True)
    ]
    return render(request, "admin/courses.html", {"rows": rows, **done_message(request, done, DONE)})


def _new_form(request: Request, values: dict[str, Any], *, status: int = 200, **message: Any) -> HTMLResponse:
    return render(request, "admin/course_new.html", {"values": values, **message}, status=status)


@router.get("/admin/courses/new")
def new_admin_course_page(request: Request, _admin: TrainingManager) -> HTMLResponse:
    return _new_form(request, dict(BLANK_COURSE))


@router.post("/admin/courses")
def create_course(
    request: Request,
    db: DbSession,
    admin: TrainingManager,
    fields: CourseValues,
    code: Annotated[str, form_text()] = "",
) -> Response:
    values = {"code": code.strip(), **fields}
    try:
        body = CourseCreate.model_validate(values)
        course = training.create_course(db, actor=admin, values=body.model_dump(exclude_none=True))
    except (ValidationError, DomainError) as exc:
        message, status = refusal(request, exc)
        return _new_form(request, values, status=status, **message)
    return see_other(f"/admin/courses/{course.code}?done=created")


def _admin_course_page(request: Request, db: Session, code: str, *, status: int = 200, **extra: Any) -> HTMLResponse:
    course = training.course_of(db, code)
    context: dict[str, Any] = {
        "course": course,
        "values": _values(course),
        "questions": training.questions(db, course.id),
        "bank": training.bank_size(db, course.id),
        "materials": materials.materials(db, course.id, include_retired=True),
        "letters": question_bank.LETTERS,
        "option_slots": range(OPTION_SLOTS),
        "question": {"text": "", "text_en": "", "multiple": False, "options": [], "correct": []},
        "problems": [],
        "max_mib": materials.MAX_BYTES // (1024 * 1024),
        "bank_max_rows": question_bank.MAX_ROWS,
        "bank_max_mib": question_bank.MAX_FILE_BYTES // (1024 * 1024),
    }
    context.update(extra)
    return render(request, "admin/course.html", context, status=status)


@router.get("/admin/courses/{code}")
def admin_admin_course_page(
    request: Request, code: CourseCode, db: DbSession, _admin: TrainingManager, done: str = ""
) -> HTMLResponse:
    return _admin_course_page(request, db, code, **done_message(request, done, DONE))


@router.post("/admin/courses/{code}")
def save_course(
    request: Request, code: CourseCode, db: DbSession, admin: TrainingManager, fields: CourseValues
) -> Response:
    course = training.course_of(db, code)
    try:
        body = CourseFields.model_validate(fields)
        training.update_course(db, actor=admin, code=course.code, values=body.model_dump(exclude_unset=True))
    except (ValidationError, DomainError) as exc:
        message, status = refusal(request, exc)
        return _admin_course_page(request, db, code, status=status, values={"code": code, **fields}, **message)
    return see_other(f"/admin/courses/{code}?done=saved")


@router.post("/admin/courses/{code}/active")
def retire_or_restore(
    code: CourseCode, db: DbSession, admin: TrainingManager, active: Annotated[str, form_text()] = ""
) -> Response:
    training.update_course(db, actor=admin, code=code, values={"active": active == "1"})
    return see_other(f"/admin/courses/{code}?done={'restored' if active == '1' else 'retired'}")


# --- the question bank --------------------------------------------------------------------------------


@router.post("/admin/courses/{code}/questions")
async def add_question(request: Request, code: CourseCode, db: DbSession, admin: TrainingManager) -> Response:
    form = await request.form(max_fields=40)

    def text(name: str, limit: int = LONG) -> str:
        value = form.get(name)
        return value.strip()[:limit] if isinstance(value, str) else ""

    options: list[dict[str, str]] = []
    correct: list[int] = []
    ticked = form.getlist("correct")
    for slot in range(OPTION_SLOTS):
        label = text(f"option_{slot}", 500)
        if not label:
            continue
        if str(slot) in ticked:
            correct.append(len(options))
        options.append({"text": label, "text_en": text(f"option_en_{slot}", 500)})
    question = {
        "text": text("text"),
        "text_en": text("text_en"),
        "multiple": form.get("multiple") == "1",
        "options": options,
        "correct": correct,
    }

    def add() -> int:
        return training.add_questions(db, actor=admin, code=code, questions=[question])

    try:
        if not correct and options:
            raise InvalidInput(N_("tick the right option (or options)"))
        await anyio.to_thread.run_sync(add)
    except DomainError as exc:
        message, status = refusal(request, exc)
        shown = {**question, "options": [o["text"] for o in options]}
        return await anyio.to_thread.run_sync(
            lambda: _admin_course_page(request, db, code, status=status, question=shown, **message)
        )
    return see_other(f"/admin/courses/{code}?{urlencode({'done': 'question'})}#questions")


@router.post("/admin/courses/{code}/questions/{question_id}/active")
def question_active(
    code: CourseCode,
    question_id: PathId,
    db: DbSession,
    admin: TrainingManager,
    active: Annotated[str, form_text()] = "",
) -> Response:
    training.set_question_active(db, actor=admin, code=code, question_id=question_id, active=active == "1")
    done = "question-restored" if active == "1" else "question-retired"
    return see_other(f"/admin/courses/{code}?done={done}#question-{question_id}")


@router.post("/admin/courses/{code}/questions/import")
async def import_questions(request: Request, code: CourseCode, db: DbSession, admin: TrainingManager) -> Response:
    _ = formatter(request)._

    def page(status: int = 200, **extra: Any) -> HTMLResponse:
        return _admin_course_page(request, db, code, status=status, **extra)

    try:
        form = await upload_form(request)
        upload = uploaded_file(form, missing=N_("send the question bank (CSV or .xlsx) in the field 'file'"))
        check = form.get("action") == "check"
        data = await upload.read(question_bank.MAX_FILE_BYTES + 1)
        filename, content_type = upload.filename or "", upload.content_type or ""
        result = await anyio.to_thread.run_sync(
            lambda: question_bank.import_questions(
                db,
                actor=admin,
                code=code,
                records=question_bank.read_records(data, filename=filename, content_type=content_type),
                dry_run=check,
            )
        )
    except question_bank.QuestionsRefused as exc:
        problems = [
            {
                "row": p.row,
                "column": _(COLUMN_LABELS[p.column]) if p.column in COLUMN_LABELS else p.column,
                "reason": _(p.message) % p.params if p.params else _(p.message),
            }
            for p in exc.problems
        ]
        lead = _("No question was added: correct the rows below and upload the file again.")
        shown = partial(
            page, exc.status, problems=problems, message=lead, message_detail=exc.translated(_), message_kind="error"
        )
        return await anyio.to_thread.run_sync(shown)
    except DomainError as exc:
        lead = _("No question was added.")
        shown = partial(page, exc.status, message=lead, message_detail=exc.translated(_), message_kind="error")
        return await anyio.to_thread.run_sync(shown)
    counts = {"added": result.added, "unchanged": result.unchanged, "bank": result.bank}
    if check:
        text = _(
            "The file is correct. Importing it would add %(added)d questions (%(unchanged)d are in the bank already)."
        )
    else:
        text = _("Imported: %(added)d questions added, %(unchanged)d already in the bank; the bank holds %(bank)d.")
    return await anyio.to_thread.run_sync(lambda: page(message=text % counts, message_kind="success"))


# --- pictures and PDFs --------------------------------------------------------------------------------


@router.post("/admin/courses/{code}/materials")
async def add_material(request: Request, code: CourseCode, db: DbSession, admin: TrainingManager) -> Response:
    _ = formatter(request)._
    try:
        form = await upload_form(request)
        upload = uploaded_file(form, missing=N_("send the picture or PDF in the field 'file'"))
        title, title_en = form.get("title") or "", form.get("title_en") or ""
        if not isinstance(title, str) or not isinstance(title_en, str):
            raise InvalidInput(N_("a title is text"))
        data = await upload.read(materials.MAX_BYTES + 1)
        name = upload.filename or "file"
        checked = await anyio.to_thread.run_sync(lambda: materials.check_file(data, name=name))
        await anyio.to_thread.run_sync(request.app.state.material_store.put, checked.sha256, data)
        await anyio.to_thread.run_sync(
            lambda: materials.add_material(db, actor=admin, code=code, title=title, title_en=title_en, checked=checked)
        )
    except DomainError as exc:
        message, status = refusal(request, exc)
        return await anyio.to_thread.run_sync(lambda: _admin_course_page(request, db, code, status=status, **message))
    return see_other(f"/admin/courses/{code}?done=material#materials")


@router.post("/admin/courses/{code}/materials/{material_id}/active")
def material_active(
    code: CourseCode,
    material_id: PathId,
    db: DbSession,
    admin: TrainingManager,
    active: Annotated[str, form_text()] = "",
) -> Response:
    materials.set_active(db, actor=admin, code=code, material_id=material_id, active=active == "1")
    done = "material-restored" if active == "1" else "material-retired"
    return see_other(f"/admin/courses/{code}?done={done}#materials")


# --- training (a rider's courses, quizzes and certificates) -----------------------------------------------

Trainee = Annotated[User, Depends(require("training.take"))]
STANDING_WORDS: dict[str, str] = {
    "new": N_("Not taken yet"),
    "failed": N_("Tried, not passed"),
    "passed": N_("Passed"),
    "expired": N_("Refresher due"),
}


@router.get("/training")
def training_page(request: Request, db: DbSession, user: Trainee) -> HTMLResponse:
    held = training.standing(db, rider_id=user.id)
    due = {c.id for c, _standing in training.refreshers_due(db, rider_id=user.id)}
    rows = [
        {
            "course": c,
            "title": in_reader_language(request, c.title, c.title_en),
            "standing": held.get(c.id),
            "status": held[c.id].status if c.id in held else "new",
            "runs_out_soon": c.id in due and held[c.id].status == "passed",
        }
        for c in training.courses(db)
    ]
    context = {"rows": rows, "standing_words": labels_in(request, STANDING_WORDS)}
    return render(request, "training/training.html", context)


def _course_page(
    request: Request, db: Session, user: User, code: str, *, status: int = 200, **extra: Any
) -> HTMLResponse:
    course = training.course_of(db, code)
    if not course.active:
        raise NotFound(N_("no course %(code)r"), code=code)
    held = training.standing(db, rider_id=user.id).get(course.id)
    context = {
        "course": course,
        "title": in_reader_language(request, course.title, course.title_en),
        "body": in_reader_language(request, course.body, course.body_en),
        "standing": held,
        "status": held.status if held else "new",
        "standing_words": labels_in(request, STANDING_WORDS),
        "materials": [
            {
                "title": in_reader_language(request, m.title, m.title_en),
                "url": f"/api/v1/courses/{course.code}/materials/{m.id}",
                "pdf": m.content_type == materials.PDF,
                "size": m.size,
            }
            for m in materials.materials(db, course.id)
        ],
        **extra,
    }
    return render(request, "training/course.html", context, status=status)


@router.get("/training/{code}")
def course_page(
    request: Request, code: Annotated[str, FastPath(max_length=64)], db: DbSession, user: Trainee
) -> HTMLResponse:
    return _course_page(request, db, user, code)


@router.post("/training/{code}/quiz")
def start_quiz(
    request: Request, code: Annotated[str, FastPath(max_length=64)], db: DbSession, user: Trainee
) -> Response:
    try:
        attempt, questions = training.start_quiz(
            db, rider=user, code=code, timezone=request.app.state.settings.timezone
        )
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        message, status = refusal(request, exc)
        return _course_page(request, db, user, code, status=status, **message)
    course = training.course_of(db, code)
    shown = [
        {
            "id": q.id,
            "text": in_reader_language(request, q.text, q.text_en),
            "multiple": q.multiple,
            "options": [in_reader_language(request, o["text"], o.get("text_en", "")) for o in q.options],
        }
        for q in questions
    ]
    context = {
        "course": course,
        "title": in_reader_language(request, course.title, course.title_en),
        "attempt": attempt,
        "questions": shown,
    }
    return render(request, "training/quiz.html", context)


@router.post("/training/attempts/{attempt_id}")
@reads_only
async def hand_in_quiz(request: Request, attempt_id: PathId, user: Trainee) -> Response:
    form = await request.form(max_fields=500)
    answers: dict[str, list[int]] = {}
    for key, value in form.multi_items():
        if key.startswith("q") and key[1:].isdigit() and isinstance(value, str) and value.isdigit():
            answers.setdefault(key[1:], []).append(int(value))
    factory = request.app.state.session_factory
    marked = await run_in_threadpool(
        in_transaction, factory, partial(training.submit_quiz, rider=user, attempt_id=attempt_id, answers=answers)
    )
    context = {
        "course": marked.course,
        "title": in_reader_language(request, marked.course.title, marked.course.title_en),
        "attempt": marked.attempt,
        "wrong": sum(1 for ok in marked.right.values() if not ok),
    }
    return render(request, "training/quiz_result.html", context)


@router.get("/training/{code}/certificate")
def certificate(
    request: Request, code: Annotated[str, FastPath(max_length=64)], db: DbSession, user: Trainee
) -> HTMLResponse:
    course = training.course_of(db, code)
    held = training.standing(db, rider_id=user.id).get(course.id)
    if held is None or held.passed_at is None:
        raise NotFound(N_("no certificate: the course %(title)s is not passed yet"), title=course.title)
    context = {"course": course, "title": in_reader_language(request, course.title, course.title_en), "standing": held}
    return render(request, "training/certificate.html", context)


# --- completion (who holds a valid pass), per station ---------------------------------------------------

CompletionReader = Annotated[User, Depends(require("training.completion"))]


@router.get("/riders/training")
def completion_page(request: Request, db: DbSession, user: CompletionReader) -> HTMLResponse:
    course_list, stations = training.completion_by_station(db, rider_scope=policy.visible_riders_filter(user))
    totals = {c.id: sum(s.passed.get(c.id, 0) for s in stations) for c in course_list}
    context = {
        "courses": [(c, in_reader_language(request, c.title, c.title_en)) for c in course_list],
        "stations": stations,
        "totals": totals,
        "riders": sum(s.riders for s in stations),
    }
    return render(request, "training/completion.html", context)
