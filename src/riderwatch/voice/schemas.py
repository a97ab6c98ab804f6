"""The shapes the voice API takes (the pages build the same)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["suggestion", "complaint"]
    body: str = Field(min_length=1, max_length=2000)
    anonymous: bool = False


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answer: str = Field(min_length=1, max_length=2000)


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    officer: str = Field(min_length=1, max_length=64, description="the officer's username")


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rating: int = Field(ge=1, le=5)
    note: str = Field(default="", max_length=500)


class ActionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=2000)
    owner: str = Field(min_length=1, max_length=64, description="username of the staff member who sees to it")
    due_on: date


class VisitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["visit", "condolence", "forum"]
    held_on: date
    place: str = Field(default="", max_length=200)
    station: str | None = Field(default=None, max_length=64)
    riders: list[str] = Field(default_factory=list, max_length=200, description="the riders' usernames")
    notes: str = Field(default="", max_length=4000)
    actions: list[ActionSpec] = Field(default_factory=list, max_length=50)
