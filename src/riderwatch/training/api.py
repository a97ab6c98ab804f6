"""Training under /api/v1: courses with their pictures, PDFs and question banks (administrators write),
quizzes (riders take them), and completion (who holds a valid pass)."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Request, Response
from fastapi import Path as FastPath
from pydantic import BaseModel, ConfigDict, Field

from riderwatch import policy
from riderwatch.bodies import form_flag, upload_form, upload_openapi, uploaded_file
from riderwatch.deps import DbSession, PathId, require
from riderwatch.errors import N_, InvalidInput, NotFound
from riderwatch.models import User
from riderwatch.training import materials, question_bank
from riderwatch.training import service as training
from riderwatch.training.schemas import CourseCreate, CourseFields

router = APIRouter(prefix="/api/v1", tags=["training"])

TrainingManager = Annotated[User, Depends(require("training.manage"))]
CourseReader = Annotated[User, Depends(require("training.read"))]
Trainee = Annotated[User, Depends(require("training.take"))]
CompletionReader = Annotated[User, Depends(require("training.completion"))]


class QuestionsAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")
    questions: list[dict[str, Any]] = Field(min_length=1, max_length=500)


class QuizAnswers(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answers: dict[str, list[int]] = Field(description="question id → the places (from 0) of the options chosen")


def _course(db: DbSession, course: Any, user: User) -> dict[str, Any]:
    out: dict[str, Any] = {
        "code": course.code,
        "title": course.title,
        "title_en": course.title_en,
        "body": course.body,
        "body_en": course.body_en,
        "required": course.required,
        "valid_months": course.valid_months,
        "pass_mark": course.pass_mark,
        "questions_per_quiz": course.questions_per_quiz,
        "attempts_per_day": course.attempts_per_day,
        "active": course.active,
    }
    if user.role == "rider":
        found = training.standing(db, rider_id=user.id).get(course.id)
        out["standing"] = {
            "status": found.status if found else "new",
            "best_score": found.best_score if found else None,
            "passed_at": found.passed_at.isoformat() if found and found.passed_at else None,
            "expires_at": found.expires_at.isoformat() if found and found.expires_at else None,
        }
    else:
        out["questions"] = training.bank_size(db, course.id)
    out["materials"] = [_material(course.code, m) for m in materials.materials(db, course.id)]
    return out


def _material(code: str, material: Any) -> dict[str, Any]:
    return {
        "id": material.id,
        "title": material.title,
        "title_en": material.title_en,
        "content_type": material.content_type,
        "size": material.size,
        "active": material.active,
        "url": f"/api/v1/courses/{code}/materials/{material.id}",
    }


def _question(question: Any) -> dict[str, Any]:
    return {
        "id": question.id,
        "text": question.text,
        "text_en": question.text_en,
        "multiple": question.multiple,
        "options": question.options,
        "correct": question.correct,
        "active": question.active,
    }


@router.get("/courses", summary="The training courses (a rider's with where they stand)")
def list_courses(db: DbSession, user: CourseReader) -> list[dict[str, Any]]:
    manager = user.role == "admin"
    return [_course(db, c, user) for c in training.courses(db, include_inactive=manager)]


@router.post("/courses", status_code=201, summary="Add a course (admin)")
def create_course(body: CourseCreate, db: DbSession, user: TrainingManager) -> dict[str, Any]:
    course = training.create_course(db, actor=user, values=body.model_dump(exclude_none=True))
    return _course(db, course, user)


@router.get("/courses/{code}", summary="A course's material (and a rider's standing in it)")
def get_course(code: Annotated[str, FastPath(max_length=64)], db: DbSession, user: CourseReader) -> dict[str, Any]:
    course = training.course_of(db, code)
    if not course.active and user.role != "admin":
        raise NotFound(N_("no course %(code)r"), code=code)
    return _course(db, course, user)


@router.patch("/courses/{code}", summary="Edit, retire or restore a course (admin)")
def update_course(
    code: Annotated[str, FastPath(max_length=64)], body: CourseFields, db: DbSession, user: TrainingManager
) -> dict[str, Any]:
    course = training.update_course(db, actor=user, code=code, values=body.model_dump(exclude_unset=True))
    return _course(db, course, user)


@router.post("/courses/{code}/questions", status_code=201, summary="Add questions to a course's bank (admin)")
def add_questions(
    code: Annotated[str, FastPath(max_length=64)], body: QuestionsAdd, db: DbSession, user: TrainingManager
) -> dict[str, Any]:
    return {"bank": training.add_questions(db, actor=user, code=code, questions=body.questions)}


class Retired(BaseModel):
    model_config = ConfigDict(extra="forbid")
    active: bool


CourseCode = Annotated[str, FastPath(max_length=64)]


@router.get("/courses/{code}/questions", summary="A course's question bank with the answers (admin)")
def list_questions(code: CourseCode, db: DbSession, user: TrainingManager) -> dict[str, Any]:
    course = training.course_of(db, code)
    return {"items": [_question(q) for q in training.questions(db, course.id)]}


@router.patch("/courses/{code}/questions/{question_id}", summary="Retire a question from the bank, or restore it")
def change_question(
    code: CourseCode, question_id: PathId, body: Retired, db: DbSession, user: TrainingManager
) -> dict[str, Any]:
    question = training.set_question_active(db, actor=user, code=code, question_id=question_id, active=body.active)
    return _question(question)


@router.post(
    "/courses/{code}/questions/import",
    summary="Import questions from a spreadsheet (XLSX or CSV; dry_run=true only checks); all rows or none",
    responses={422: {"description": "a bad file or bad rows (each named by its row); nothing stored"}},
    openapi_extra=upload_openapi(dry_run={"type": "boolean"}),
)
async def import_questions(request: Request, code: CourseCode, db: DbSession, user: TrainingManager) -> dict[str, Any]:
    form = await upload_form(request)
    upload = uploaded_file(form, missing=N_("send the question bank (CSV or .xlsx) in the field 'file'"))
    dry_run = form_flag(form, "dry_run")
    data = await upload.read(question_bank.MAX_FILE_BYTES + 1)
    records = await anyio.to_thread.run_sync(
        lambda: question_bank.read_records(data, filename=upload.filename or "", content_type=upload.content_type or "")
    )
    result = await anyio.to_thread.run_sync(
        lambda: question_bank.import_questions(db, actor=user, code=code, records=records, dry_run=dry_run)
    )
    return {"dry_run": dry_run, "added": result.added, "unchanged": result.unchanged, "bank": result.bank, "errors": []}


@router.post(
    "/courses/{code}/materials",
    status_code=201,
    summary="Add a picture (JPEG, PNG, WebP) or a PDF to a course's material (admin)",
    responses={
        413: {"description": "the file is too large"},
        415: {"description": "neither a picture nor a PDF"},
        422: {"description": "no title, or a damaged file"},
    },
    openapi_extra=upload_openapi(title={"type": "string"}, title_en={"type": "string"}),
)
async def add_material(request: Request, code: CourseCode, db: DbSession, user: TrainingManager) -> dict[str, Any]:
    form = await upload_form(request)
    upload = uploaded_file(form, missing=N_("send the picture or PDF in the field 'file'"))
    title, title_en = form.get("title") or "", form.get("title_en") or ""
    if not isinstance(title, str) or not isinstance(title_en, str):
        raise InvalidInput(N_("a title is text"))
    data = await upload.read(materials.MAX_BYTES + 1)
    checked = await anyio.to_thread.run_sync(lambda: materials.check_file(data, name=upload.filename or "file"))
    store = request.app.state.material_store
    await anyio.to_thread.run_sync(store.put, checked.sha256, data)
    material = await anyio.to_thread.run_sync(
        lambda: materials.add_material(db, actor=user, code=code, title=title, title_en=title_en, checked=checked)
    )
    return _material(code, material)


@router.get(
    "/courses/{code}/materials/{material_id}",
    summary="A course's picture or PDF, served by the app",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}, "application/pdf": {}}}},
)
def get_material(
    request: Request, code: CourseCode, material_id: PathId, db: DbSession, user: CourseReader
) -> Response:
    material = materials.material_of(db, code=code, material_id=material_id, include_retired=user.role == "admin")
    course = training.course_of(db, code)
    if not course.active and user.role != "admin":
        raise NotFound(N_("no course %(code)r"), code=code)
    data = request.app.state.material_store.get(material.sha256)
    return Response(
        data,
        media_type=material.content_type,
        headers={
            "Cache-Control": "private, max-age=86400",
            "Content-Disposition": "inline",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.patch("/courses/{code}/materials/{material_id}", summary="Retire a material, or restore it (admin)")
def change_material(
    code: CourseCode, material_id: PathId, body: Retired, db: DbSession, user: TrainingManager
) -> dict[str, Any]:
    material = materials.set_active(db, actor=user, code=code, material_id=material_id, active=body.active)
    return _material(code, material)


@router.post("/courses/{code}/quiz", status_code=201, summary="Start (or resume) the course's quiz (rider)")
def start_quiz(
    request: Request, code: Annotated[str, FastPath(max_length=64)], db: DbSession, user: Trainee
) -> dict[str, Any]:
    attempt, questions = training.start_quiz(db, rider=user, code=code, timezone=request.app.state.settings.timezone)
    return {
        "attempt": attempt.id,
        "started_at": attempt.started_at.isoformat(),
        "questions": [
            {"id": q.id, "text": q.text, "text_en": q.text_en, "multiple": q.multiple, "options": q.options}
            for q in questions
        ],
    }


@router.post("/quiz-attempts/{attempt_id}", summary="Hand in a quiz: the score, passed or not, and which were right")
def submit_quiz(attempt_id: PathId, body: QuizAnswers, db: DbSession, user: Trainee) -> dict[str, Any]:
    marked = training.submit_quiz(db, rider=user, attempt_id=attempt_id, answers=body.answers)
    return {
        "score": marked.attempt.score,
        "passed": marked.attempt.passed,
        "pass_mark": marked.course.pass_mark,
        "right": {str(k): v for k, v in marked.right.items()},
    }


@router.get("/training/completion", summary="Per course, how many riders in the caller's scope hold a valid pass")
def training_completion(db: DbSession, user: CompletionReader) -> list[dict[str, Any]]:
    return training.completion(db, rider_scope=policy.visible_riders_filter(user))
