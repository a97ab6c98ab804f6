"""Training: courses with their material and question bank, and riders' quiz attempts (the results)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from riderwatch.db import Base
from riderwatch.infra.clock import utcnow


class Course(Base):
    """A course (legal basics, recognising hazards, anti-fraud …): material to read, then a quiz of
    `questions_per_quiz` questions drawn from its bank; `pass_mark` per cent passes. A required course is
    needed before a station activates an applicant; a pass lasts `valid_months` (None: for good)."""

    __tablename__ = "courses"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    body_en: Mapped[str] = mapped_column(Text, default="")
    required: Mapped[bool] = mapped_column(Boolean, default=True)
    valid_months: Mapped[int | None] = mapped_column(Integer)
    pass_mark: Mapped[int] = mapped_column(Integer, default=80)
    questions_per_quiz: Mapped[int] = mapped_column(Integer, default=10)
    attempts_per_day: Mapped[int] = mapped_column(Integer, default=3)
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CourseQuestion(Base):
    """A question of a course's bank: single or multiple choice; `options` [{"text", "text_en"}], `correct`
    the indexes of the right options."""

    __tablename__ = "course_questions"
    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    text_en: Mapped[str] = mapped_column(Text, default="")
    multiple: Mapped[bool] = mapped_column(Boolean, default=False)
    options: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    correct: Mapped[list[int]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class QuizAttempt(Base):
    """A rider's attempt at a course's quiz: the questions drawn (in the order shown), the answers given,
    the score in per cent and whether it passed. Kept for good: the results of the programme's training."""

    __tablename__ = "quiz_attempts"
    __table_args__ = (Index("ix_quiz_attempts_rider_course", "rider_id", "course_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"))
    rider_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    question_ids: Mapped[list[int]] = mapped_column(JSON)
    answers: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    score: Mapped[int | None] = mapped_column(Integer)
    passed: Mapped[bool | None] = mapped_column(Boolean)


class CourseMaterial(Base):
    """A file that goes with a course's text: a picture (a leaflet, a road sign) or a PDF (the legal text),
    stored by its SHA-256 and served by the app itself. Retiring hides it from riders and keeps the row."""

    __tablename__ = "course_materials"
    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200), default="")
    content_type: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
