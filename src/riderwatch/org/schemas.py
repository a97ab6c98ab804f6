"""The shapes of a clue category, as read and as written by the API and the administrator's form."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CategoryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    code: str
    name_zh: str
    name_en: str
    description_zh: str
    description_en: str
    group: str
    handler_role: str
    deadline_hours: int
    urgent_deadline_hours: int
    is_public: bool
    active: bool
    sort_order: int


class CategoryUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name_zh: str | None = Field(default=None, min_length=1, max_length=100)
    name_en: str | None = Field(default=None, min_length=1, max_length=100)
    description_zh: str | None = Field(default=None, max_length=2000)
    description_en: str | None = Field(default=None, max_length=2000)
    group: str | None = Field(default=None, pattern="^(crime|hazard|service)$")
    handler_role: str | None = Field(default=None, pattern="^(police|grid_staff|patrol)$")
    deadline_hours: int | None = Field(default=None, ge=1, le=24 * 90)
    urgent_deadline_hours: int | None = Field(default=None, ge=1, le=24 * 90)
    is_public: bool | None = None
    active: bool | None = None
    sort_order: int | None = Field(default=None, ge=0, le=10_000)


class CategoryCreate(CategoryUpdate):
    code: str = Field(pattern="^[a-z][a-z0-9_]{1,63}$")
    name_zh: str = Field(min_length=1, max_length=100)
    name_en: str = Field(min_length=1, max_length=100)
    group: str = Field(pattern="^(crime|hazard|service)$")
    handler_role: str = Field(pattern="^(police|grid_staff|patrol)$")
