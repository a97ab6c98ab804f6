"""An alert as the API takes it: CAP 1.2's vocabularies, bilingual text, an area and an audience."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from riderwatch.infra.fields import UtcDateTime

Category = Literal[
    "Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra", "CBRNE", "Other"
]
Urgency = Literal["Immediate", "Expected", "Future", "Past", "Unknown"]
Severity = Literal["Extreme", "Severe", "Moderate", "Minor", "Unknown"]
Certainty = Literal["Observed", "Likely", "Possible", "Unlikely", "Unknown"]
Status = Literal["Actual", "Exercise", "System", "Test", "Draft"]
Scope = Literal["Public", "Restricted", "Private"]
Kind = Literal["warning", "publicity", "assistance"]
Audience = Literal["area", "stations", "all"]
Party = Literal["police", "grid_staff", "patrol"]
StationCode = Field(min_length=1, max_length=64)

AREA_DOC = (
    'a GeoJSON Polygon (WGS-84), a circle {"type": "Circle", "center": [lon, lat], "radius_m"}, '
    'or a stored area {"community"|"grid"|"zone": code}'
)


class AlertText(BaseModel):
    model_config = ConfigDict(extra="forbid")
    headline_en: str | None = Field(default=None, max_length=200)
    description_en: str | None = Field(default=None, max_length=5000)
    instruction_en: str | None = Field(default=None, max_length=5000)
    area_desc: str | None = Field(default=None, max_length=200)


class AlertCreate(AlertText):
    event: str = Field(min_length=1, max_length=200, description="what it is about, e.g. 在逃嫌疑人, 走失儿童")
    headline: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    instruction: str = Field(default="", max_length=5000)
    category: Category
    urgency: Urgency
    severity: Severity
    certainty: Certainty
    effective: UtcDateTime | None = None
    expires: UtcDateTime
    area: dict[str, Any] | None = Field(default=None, description=AREA_DOC)
    audience: Audience = "area"
    stations: list[str] = Field(default_factory=list, max_length=100, description="for audience 'stations'")
    parties: list[Party] = Field(
        default_factory=list,
        max_length=3,
        description="other parties it also goes to (their inboxes and duty group chats): police, grid_staff, patrol",
    )
    kind: Kind = "warning"
    status: Status = "Actual"
    scope: Scope = "Public"


class AlertUpdate(AlertText):
    """What an update changes (the rest is the previous version's)."""

    event: str | None = Field(default=None, min_length=1, max_length=200)
    headline: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    instruction: str | None = Field(default=None, max_length=5000)
    urgency: Urgency | None = None
    severity: Severity | None = None
    certainty: Certainty | None = None
    effective: UtcDateTime | None = None
    expires: UtcDateTime | None = None
    area: dict[str, Any] | None = Field(default=None, description=AREA_DOC)


class AlertCancel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    headline: str | None = Field(default=None, min_length=1, max_length=200, description="why it is called off")
    description: str | None = Field(default=None, max_length=5000)
