"""The shapes of a patrol task and a task rule as a dispatcher asks for them: one shape each, taken by the
JSON API as its body, built by the pages from their forms, and checked again by the services.

The API validates them as they come (FastAPI); the pages build them with `model_construct` from the
values their forms parse, so that what the form got wrong is refused by the service with its reason
in the reader's language, as for any other caller."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from riderwatch.infra.fields import UtcDateTime

MAX_TITLE = 120


class CheckpointDraft(BaseModel):
    """A check-in point of a task: a pass within `radius_m` of it counts."""

    model_config = ConfigDict(extra="forbid")
    lat: float
    lon: float
    radius_m: float = Field(default=100.0, description="a pass within this distance of the point counts")
    name: str = Field(default="", max_length=MAX_TITLE)


class TaskDraft(BaseModel):
    """What a dispatcher (or a rule) asks for. Exactly one target: `cells`, `area` or `checkpoints`."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(max_length=MAX_TITLE)
    note: str = Field(default="", max_length=2000)
    starts_at: UtcDateTime
    ends_at: UtcDateTime
    cells: list[str] | None = Field(default=None, description="H3 cells (strings), all of one configured resolution")
    area: dict[str, Any] | None = Field(
        default=None,
        description='GeoJSON Polygon/MultiPolygon, a Circle, or {"zone"|"grid"|"community": code}: '
        "the task's cells are those whose centre lies inside",
    )
    resolution: int | None = Field(default=None, description="H3 resolution of the cells of `area`")
    checkpoints: list[CheckpointDraft] | None = None
    crs: Literal["wgs84", "gcj02"] | None = Field(default=None, description="datum of the checkpoints")
    points: int = Field(default=0, description="points offered to each rider who completes the task")
    required_share: float = Field(default=1.0, description="share of the cells or points a rider must pass")
    max_riders: int | None = Field(default=None, description="only the first N riders to complete earn the points")
    open_to_all: bool = False
    riders: list[str] = Field(default_factory=list, description="usernames of invited riders")
    stations: list[str] = Field(default_factory=list, description="codes of invited stations (all their riders)")


class RuleDraft(BaseModel):
    """A rule that publishes one task for each of an area's top N coverage gaps every day."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=MAX_TITLE)
    area_kind: Literal["zone", "grid", "community"]
    area_code: str = Field(max_length=64)
    top_n: int = 5
    resolution: int | None = None
    publish_at: str = Field(default="17:00", description="local time HH:MM when the day's tasks are published")
    window_start: str = Field(default="18:00", description="local time HH:MM when the tasks' window opens")
    window_hours: int = 4
    lookback_days: int = Field(default=28, description="days of clue history and coverage behind the gaps")
    points: int = 10
