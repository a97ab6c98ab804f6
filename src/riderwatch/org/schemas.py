"""The shapes of a clue category, as read and as written by the API and the administrator's form."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


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


# The district's organisations and areas (org/district.py). A code is the key an administrator and
# the import files use (letters, digits, '-', '_', '.'); it never changes once created.
OrgCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
OrgName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
OrgNameEn = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Boundary = Annotated[
    dict[str, Any], Field(description="a GeoJSON Polygon in WGS-84 (a Feature holding one is accepted)")
]
ZoneKind = Literal["commercial", "residential", "school", "industrial", "transport", "other"]
RolloutStage = Literal["planned", "pilot", "rolled_out"]


class _OrgBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JurisdictionCreate(_OrgBody):
    code: OrgCode
    name: OrgName
    name_en: OrgNameEn = ""
    boundary: Boundary | None = None


class CommunityCreate(_OrgBody):
    code: OrgCode
    name: OrgName
    name_en: OrgNameEn = ""
    boundary: Boundary
    jurisdiction: OrgCode | None = Field(
        default=None, description="its jurisdiction's code (needed when there are several)"
    )


class GridCreate(_OrgBody):
    code: OrgCode
    name: OrgName
    name_en: OrgNameEn = ""
    boundary: Boundary
    community: OrgCode


class ZoneCreate(_OrgBody):
    code: OrgCode
    name: OrgName
    name_en: OrgNameEn = ""
    boundary: Boundary
    kind: ZoneKind = "commercial"
    rollout_stage: RolloutStage = "pilot"
    pilot_on: date | None = None
    rolled_out_on: date | None = None


class StationCreate(_OrgBody):
    code: OrgCode
    name: OrgName
    name_en: OrgNameEn = ""
    platform: OrgCode | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


class PlatformCreate(_OrgBody):
    code: OrgCode
    name: OrgName
    name_en: OrgNameEn = ""


class PatrolUnitCreate(_OrgBody):
    code: OrgCode
    name: OrgName
    name_en: OrgNameEn = ""
    jurisdiction: OrgCode | None = None


class _OrgUpdate(_OrgBody):
    retired: bool | None = Field(default=None, description="true retires (history is kept), false restores")


class JurisdictionUpdate(_OrgUpdate):
    name: OrgName | None = None
    name_en: OrgNameEn | None = None
    boundary: Boundary | None = None


class CommunityUpdate(_OrgUpdate):
    name: OrgName | None = None
    name_en: OrgNameEn | None = None
    boundary: Boundary | None = None


class GridUpdate(_OrgUpdate):
    name: OrgName | None = None
    name_en: OrgNameEn | None = None
    boundary: Boundary | None = None
    community: OrgCode | None = None


class ZoneUpdate(_OrgUpdate):
    name: OrgName | None = None
    name_en: OrgNameEn | None = None
    boundary: Boundary | None = None
    kind: ZoneKind | None = None
    rollout_stage: RolloutStage | None = None
    pilot_on: date | None = None
    rolled_out_on: date | None = None


class StationUpdate(_OrgUpdate):
    name: OrgName | None = None
    name_en: OrgNameEn | None = None
    platform: OrgCode | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


class PlatformUpdate(_OrgUpdate):
    name: OrgName | None = None
    name_en: OrgNameEn | None = None


class PatrolUnitUpdate(_OrgUpdate):
    name: OrgName | None = None
    name_en: OrgNameEn | None = None


# kind (as in /api/v1/org/{kind}) → (create body, update body)
ORG_BODIES: dict[str, tuple[type[_OrgBody], type[_OrgUpdate]]] = {
    "jurisdictions": (JurisdictionCreate, JurisdictionUpdate),
    "communities": (CommunityCreate, CommunityUpdate),
    "grids": (GridCreate, GridUpdate),
    "zones": (ZoneCreate, ZoneUpdate),
    "stations": (StationCreate, StationUpdate),
    "platforms": (PlatformCreate, PlatformUpdate),
    "patrol-units": (PatrolUnitCreate, PatrolUnitUpdate),
}
