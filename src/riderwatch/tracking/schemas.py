"""Request and response shapes for positions."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, NotRequired

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict


class ConsentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    granted: bool
    text_version: str | None = Field(
        default=None, max_length=32, description="the version of the consent text the rider was shown"
    )


class ConsentRead(BaseModel):
    granted: bool
    text_version: str | None
    since: datetime | None
    on_duty: bool
    deleted_positions: int = Field(description="raw positions deleted by this withdrawal")


class DutyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    on_duty: bool
    at: AwareDatetime | None = Field(
        default=None,
        description="when the rider tapped the switch, ISO 8601 with a timezone (a phone that was offline "
        "sends it late); default now. Not in the future, not older than the oldest point still accepted, not "
        "before the current consent, not inside or before an earlier shift.",
    )


class ShiftRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    started_at: datetime
    ended_at: datetime | None
    ended_by: str | None


class DutyRead(BaseModel):
    on_duty: bool
    shift: ShiftRead | None
    deleted_positions: int = Field(
        default=0, description="positions stored after a late 'off' (outside any shift), deleted by it"
    )


class DeviceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    device_id: str = Field(
        pattern=r"^[A-Za-z0-9._:\-]{1,64}$", description="the 'Device identifier' set in the Traccar Client app"
    )


class DeviceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    device_id: str
    created_at: datetime


# A TypedDict, not a model: a batch holds thousands of pings, and pydantic-core builds plain dicts fastest.
@with_config(ConfigDict(extra="forbid"))
class PingItem(TypedDict):
    """One position. Out-of-range coordinates are refused per ping (`bad_coordinates`), not here."""

    ts: Annotated[AwareDatetime, Field(description="when the position was fixed, ISO 8601 with a timezone")]
    lat: float
    lon: float
    speed_mps: NotRequired[Annotated[float | None, Field(ge=0, le=1000)]]
    heading: NotRequired[Annotated[float | None, Field(ge=0, le=360)]]
    accuracy_m: NotRequired[Annotated[float | None, Field(ge=0, le=100_000)]]
    rider: NotRequired[
        Annotated[str | None, Field(max_length=64, description="platform accounts: the rider's username")]
    ]


@with_config(ConfigDict(extra="forbid"))
class _ValidBatch(TypedDict):
    pings: list[PingItem]


@with_config(ConfigDict(extra="forbid"))
class _AnyBatch(TypedDict):
    pings: list[dict[str, Any]]


_VALID_BATCH = TypeAdapter(_ValidBatch)
_ANY_BATCH = TypeAdapter(_AnyBatch)
_PING = TypeAdapter(PingItem)


def parse_pings(body: bytes) -> list[PingItem | None]:
    """The pings of a request body `{"pings": [...]}`, each checked; None stands for a malformed one.

    Pings are checked one by one: a bad one is refused with its reason and the rest are stored. A
    body of another shape (not JSON, no list of objects under "pings", other keys) raises
    ValidationError. The whole batch is parsed and checked in one call of pydantic-core; only a batch
    that holds a bad ping is checked again ping by ping, to tell which.
    """
    try:
        return list(_VALID_BATCH.validate_json(body)["pings"])
    except ValidationError:
        pass
    out: list[PingItem | None] = []
    for raw in _ANY_BATCH.validate_json(body)["pings"]:
        try:
            out.append(_PING.validate_python(raw))
        except ValidationError:
            out.append(None)
    return out


PING_BATCH_SCHEMA: dict[str, Any] = {
    "title": "PingBatch",
    "description": "Pings are checked one by one: a bad one is refused with its reason and the rest are stored.",
    "type": "object",
    "properties": {"pings": {"title": "Pings", "type": "array", "items": _PING.json_schema()}},
    "required": ["pings"],
    "additionalProperties": False,
}


class RejectionRead(BaseModel):
    index: int
    reason: str
    detail: str


class IngestRead(BaseModel):
    accepted: int
    rejected: int
    duplicates: int
    rejections: list[RejectionRead]


class PointRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    ts: datetime
    lat: float
    lon: float
    speed_mps: float | None
    heading: float | None
    accuracy_m: float | None


class ConsentRecordRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    granted: bool
    text_version: str
    at: datetime
    deleted_positions: int


class TrackViewRead(BaseModel):
    at: datetime
    viewer_role: str


class RefusalRead(BaseModel):
    """Points of the rider refused on one day (local) for one reason; no place is kept."""

    day: date
    reason: str
    count: int
    detail: str


class CollectedRead(BaseModel):
    """Everything RiderWatch holds about the caller's location, and who looked at it."""

    consent: bool
    consent_text_version: str | None
    on_duty: bool
    retention_days: int
    consents: list[ConsentRecordRead]
    shifts: list[ShiftRead]
    devices: list[DeviceRead]
    position_count: int
    first_position_at: datetime | None
    last_position_at: datetime | None
    recent_positions: list[PointRead]
    track_views: list[TrackViewRead]
    refused_total: int = Field(description="points refused over the days listed in 'refusals'")
    refusals: list[RefusalRead] = Field(description="refused points per day and reason, newest day first")


class RefusalDayRead(BaseModel):
    day: date
    reason: str
    count: int


class RiderRefusalRead(BaseModel):
    rider: str
    display_name: str
    total: int
    by_reason: dict[str, int]


class RefusalTotalsRead(BaseModel):
    """Refused points over a span of days, for the desk: a rider whose phone sends while off duty needs a word."""

    from_: date = Field(alias="from")
    to: date
    total: int
    by_reason: dict[str, int]
    reasons: dict[str, str] = Field(description="what each reason means")
    by_day: list[RefusalDayRead]
    riders: list[RiderRefusalRead]
