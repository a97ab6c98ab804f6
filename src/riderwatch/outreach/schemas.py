"""The shapes the leaflet API takes (the pages build the same)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from riderwatch.infra.fields import UtcDateTime


class CampaignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str = Field(min_length=1, max_length=200)
    name_en: str = Field(default="", max_length=200)
    topic: Literal["anti_fraud", "safety", "law", "other"] = "anti_fraud"
    starts_on: date
    ends_on: date | None = None
    target: int | None = Field(default=None, ge=1, le=10_000_000)
    active: bool = True


class StockMove(BaseModel):
    model_config = ConfigDict(extra="forbid")
    campaign: str = Field(min_length=1, max_length=64)
    station: str = Field(min_length=1, max_length=64)
    kind: Literal["issue", "return"]
    count: int = Field(ge=1, le=1_000_000)
    note: str = Field(default="", max_length=500)


class HandOut(BaseModel):
    """Leaflets handed out: how many, where (WGS-84, or GCJ-02 as Chinese maps give it) and when."""

    model_config = ConfigDict(extra="forbid")
    campaign: str = Field(min_length=1, max_length=64)
    count: int = Field(ge=1, le=200)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    crs: Literal["wgs84", "gcj02"] = "wgs84"
    handed_at: UtcDateTime | None = Field(default=None, description="when (default: now)")
