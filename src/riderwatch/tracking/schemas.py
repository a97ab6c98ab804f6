"""Request and response shapes for positions."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from riderwatch.tracking.ingest import Ping


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


class PingItem(BaseModel):
    """One position. Out-of-range coordinates are refused per ping (`bad_coordinates`), not here."""

    model_config = ConfigDict(extra="forbid")
    ts: AwareDatetime = Field(description="when the position was fixed, ISO 8601 with a timezone")
    lat: float
    lon: float
    speed_mps: float | None = Field(default=None, ge=0, le=1000)
    heading: float | None = Field(default=None, ge=0, le=360)
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000)
    rider: str | None = Field(default=None, max_length=64, description="platform accounts: the rider's username")

    def to_ping(self) -> Ping:
        return Ping(
            ts=self.ts.astimezone(UTC),
            lat=self.lat,
            lon=self.lon,
            speed_mps=self.speed_mps,
            heading=self.heading,
            accuracy_m=self.accuracy_m,
        )


class PingBatch(BaseModel):
    """Pings are checked one by one: a bad one is refused with its reason and the rest are stored."""

    model_config = ConfigDict(extra="forbid")
    pings: list[dict[str, Any]] = Field(json_schema_extra={"items": PingItem.model_json_schema()})


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
