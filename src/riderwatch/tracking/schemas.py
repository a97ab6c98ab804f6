"""Request and response shapes for positions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, NotRequired, cast

import msgspec
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    with_config,
)
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
    device_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9._:\-]{1,64}$",
        description="the 'Device identifier' set in the Traccar Client app; leave it out and RiderWatch issues "
        "a long random one to set in the app instead (an id chosen in the app is easier to guess)",
    )
    label: str | None = Field(
        default=None, min_length=1, max_length=64, description="your own name for the phone, shown only to you"
    )

    @field_validator("label")
    @classmethod
    def _label(cls, value: str | None) -> str | None:
        value = value.strip() if value is not None else None
        return value or None


class DeviceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    device_id: str
    created_at: datetime
    issued: bool = Field(description="issued by RiderWatch (else chosen in the app)")
    label: str | None


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


class _FastPing(msgspec.Struct, forbid_unknown_fields=True):
    """`PingItem` for msgspec: a well-formed batch is decoded about four times faster this way.

    It must accept nothing that `PingItem` refuses (anything it refuses goes to pydantic, which tells
    which ping is malformed); tests/tracking/test_parse_pings.py holds the two to the same answers.
    The times are left as text for pydantic-core (`_TIMES`), which reads a list of them fast: the two
    read some times differently (msgspec rounds digits beyond the microsecond, pydantic drops them).
    """

    ts: str
    lat: float
    lon: float
    speed_mps: Annotated[float, msgspec.Meta(ge=0, le=1000)] | None = None
    heading: Annotated[float, msgspec.Meta(ge=0, le=360)] | None = None
    accuracy_m: Annotated[float, msgspec.Meta(ge=0, le=100_000)] | None = None
    rider: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class _FastBatch(msgspec.Struct, forbid_unknown_fields=True):
    pings: list[_FastPing]


_FAST_BATCH = msgspec.json.Decoder(_FastBatch)
_TIMES = TypeAdapter(list[AwareDatetime])


@dataclass(frozen=True)
class ParsedPings:
    """The well-formed pings of a request body as columns, one list per field (None where a ping has
    no value); `index` is each one's place in the request, out of `count` pings sent."""

    count: int
    index: Sequence[int]
    ts: Sequence[datetime]  # aware
    lat: Sequence[float]
    lon: Sequence[float]
    speed_mps: Sequence[float | None]
    heading: Sequence[float | None]
    accuracy_m: Sequence[float | None]
    rider: Sequence[str | None]

    def __len__(self) -> int:
        return self.count

    @property
    def malformed(self) -> list[int]:
        """The places of the pings that are not well-formed, in request order."""
        return sorted(set(range(self.count)) - set(self.index))

    @classmethod
    def of(cls, pings: Sequence[PingItem | None]) -> ParsedPings:
        """From checked pings as dicts, None standing for a malformed one."""
        index = [i for i, p in enumerate(pings) if p is not None]
        good = [cast(PingItem, pings[i]) for i in index]
        return cls(
            count=len(pings),
            index=index,
            ts=[p["ts"] for p in good],
            lat=[p["lat"] for p in good],
            lon=[p["lon"] for p in good],
            speed_mps=[p.get("speed_mps") for p in good],
            heading=[p.get("heading") for p in good],
            accuracy_m=[p.get("accuracy_m") for p in good],
            rider=[p.get("rider") for p in good],
        )


def parse_pings(body: bytes) -> ParsedPings:
    """The pings of a request body `{"pings": [...]}`, each checked, as columns.

    Pings are checked one by one: a malformed one is left out (its place is in `malformed`, refused
    as 'invalid') and the rest are stored. A body of another shape (not JSON, no list of objects
    under "pings", other keys) raises pydantic's ValidationError. A well-formed batch, nearly every
    one, is decoded and checked in one call of msgspec; any other goes through pydantic-core, whole
    and then ping by ping, to tell which ping is malformed or what is wrong with the body.
    """
    try:
        fast = _FAST_BATCH.decode(body).pings
        ts = _TIMES.validate_python([p.ts for p in fast])
    except (msgspec.MsgspecError, ValidationError):
        return ParsedPings.of(parse_pings_strictly(body))
    return ParsedPings(
        count=len(fast),
        index=range(len(fast)),
        ts=ts,
        lat=[p.lat for p in fast],
        lon=[p.lon for p in fast],
        speed_mps=[p.speed_mps for p in fast],
        heading=[p.heading for p in fast],
        accuracy_m=[p.accuracy_m for p in fast],
        rider=[p.rider for p in fast],
    )


def parse_pings_strictly(body: bytes) -> list[PingItem | None]:
    """`parse_pings` by pydantic alone: each ping as a dict, None for a malformed one."""
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
