"""What a course is made of, as the API and the administrator's course pages take it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CourseFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(default=None, min_length=1, max_length=200)
    title_en: str | None = Field(default=None, max_length=200)
    body: str | None = Field(default=None, max_length=50_000)
    body_en: str | None = Field(default=None, max_length=50_000)
    required: bool | None = None
    valid_months: int | None = Field(default=None, ge=1, le=120)
    pass_mark: int | None = Field(default=None, ge=1, le=100)
    questions_per_quiz: int | None = Field(default=None, ge=1, le=100)
    attempts_per_day: int | None = Field(default=None, ge=1, le=20)
    position: int | None = Field(default=None, ge=0, le=10_000)
    active: bool | None = None


class CourseCreate(CourseFields):
    code: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    title: str = Field(min_length=1, max_length=200)
