"""Clue request and response shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from riderwatch.infra.fields import MAX_ID, UtcDateTime

# Row ids are 32-bit integers in the database; a larger number can name no row, and SQLite refuses
# to even bind one above 2**63, so ids from clients are held to this range at the edge.


def _no_nul(value: object) -> object:
    # PostgreSQL text cannot hold NUL, and no honest report contains one.
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    return value


class ClueCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: str = Field(min_length=1, max_length=64, description="a service_code from Open311 services")
    description: str = Field(default="", max_length=4000)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    crs: Literal["wgs84", "gcj02"] | None = Field(default=None, description="coordinates' datum; default WGS-84")
    observed_at: UtcDateTime = Field(description="when the reporter saw it, ISO 8601 with a timezone")
    anonymous: bool = False
    urgent: bool = False
    address: str = Field(default="", max_length=300)
    alert_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="a sighting: the alert it answers")

    _text = field_validator("category", "description", "address", mode="before")(_no_nul)

    @field_validator("description", "address")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()


class ActionBody(BaseModel):
    """The body of every workflow action; which fields an action needs is checked by the service."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=2000)
    duplicate_of: int | None = Field(default=None, ge=1, le=MAX_ID)
    assignee: str | None = Field(default=None, max_length=64)
    outcome: str | None = Field(default=None, max_length=4000)
    value_grade: Literal["A", "B", "C", "none"] | None = None
    rating: int | None = Field(default=None, ge=1, le=5)
    urgent: bool | None = None
    note: str | None = Field(default=None, max_length=2000)

    _text = field_validator("reason", "assignee", "outcome", "note", mode="before")(_no_nul)


class PersonRef(BaseModel):
    id: int
    username: str
    display_name: str
    role: str


class PhotoRead(BaseModel):
    id: int
    url: str
    content_type: str
    width: int
    height: int
    sha256: str


class TimelineEntry(BaseModel):
    at: datetime
    action: str
    from_status: str | None
    to_status: str
    actor: PersonRef | None
    actor_label: str
    note: str
    data: dict[str, Any]


class ClueCreated(BaseModel):
    id: int
    status: str


class ClueRead(BaseModel):
    id: int
    status: str
    category: str
    category_name: str
    description: str
    lat: float
    lon: float
    address: str
    observed_at: datetime
    reported_at: datetime
    updated_at: datetime
    source: str
    anonymous: bool
    reporter: PersonRef | None
    reporter_hidden: bool
    urgent: bool
    deadline_at: datetime
    overdue: bool
    escalation_level: int
    assignee: PersonRef | None
    grid: str | None
    community: str | None
    duplicate_of: int | None
    outcome: str | None
    reason: str | None
    value_grade: str | None
    rating: int | None
    photos: list[PhotoRead]
    attributes: dict[str, Any]
    contact: dict[str, Any] | None = None  # Open311 contact details; dispatchers only, detail view only
    allowed_actions: list[str]
    timeline: list[TimelineEntry] | None = None


class SuggestedDuplicate(BaseModel):
    id: int
    category: str
    status: str
    distance_m: float
    hours_apart: float
    description: str


class HandlerProposal(BaseModel):
    role: str
    assignee: PersonRef | None
    grid: str | None
    community: str | None
    explanation: str


class ClueList(BaseModel):
    items: list[ClueRead]
    total: int
    counts: dict[str, int]
    overdue: int
