"""Hotspots of clues and incidents and coverage gaps under /api/v1 (CONTRACT.md "Positions and coverage")."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from riderwatch.coverage import hotspots_service as service
from riderwatch.coverage.service import CoverageLimits
from riderwatch.deps import DbSession, SettingsDep, require
from riderwatch.infra.fields import UtcDateTime
from riderwatch.models import User

router = APIRouter(prefix="/api/v1", tags=["coverage"])
Source = Literal["clues", "incidents"]


def _all_sources() -> list[Source]:
    return ["clues", "incidents"]


class HotspotQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    area: dict[str, Any] = Field(
        description='GeoJSON Polygon/MultiPolygon, {"type": "Circle", "center": [lon, lat], "radius_m": R}, '
        'or a stored area: {"zone": code}, {"grid": code}, {"community": code}'
    )
    start: UtcDateTime = Field(alias="from", description="clues observed from (inclusive)")
    end: UtcDateTime = Field(alias="to", description="clues observed until (exclusive)")
    resolution: int | None = Field(
        default=None, description="H3 resolution; one of the configured ones (9, 10); default the finest (10)"
    )
    k: int = Field(default=1, ge=1, le=service.MAX_K, description="neighbourhood: the cells within k grid steps")
    alpha: float = Field(default=0.01, gt=0, lt=0.5, description="significance level for `hot` and key periods")
    correction: Literal["fdr", "bonferroni", "none"] = Field(
        default="fdr", description="multiple-testing correction: Benjamini–Hochberg, Bonferroni, or none"
    )
    bandwidth_m: float | None = Field(
        default=None,
        ge=service.MIN_BANDWIDTH_M,
        le=service.MAX_BANDWIDTH_M,
        description="quartic kernel radius for `density`; default three H3 edge lengths",
    )
    categories: list[str] = Field(
        default_factory=list, max_length=100, description="only clues and incidents of these categories"
    )
    sources: list[Source] = Field(
        default_factory=_all_sources,
        min_length=1,
        max_length=len(service.SOURCES),
        description="the histories to count: riders' clues, the police's recorded incidents, or both",
    )

    def options(self) -> service.HotspotOptions:
        return service.HotspotOptions(
            k=self.k,
            alpha=self.alpha,
            correction=self.correction,
            bandwidth_m=self.bandwidth_m,
            categories=tuple(self.categories),
            sources=tuple(self.sources),
        )


class GapQuery(HotspotQuery):
    min_passes: int = Field(default=1, ge=1, le=1_000_000, description="passes that make a key hour of a cell covered")
    max_covered_ratio: float = Field(
        default=0.5, gt=0, le=1, description="a hot cell covered in fewer than this share of key hours is a gap"
    )


@router.post(
    "/hotspots/query",
    summary="Hot cells of clues and incidents (Getis-Ord Gi*), their density and key periods (GeoJSON)",
    description=(
        "One Feature per H3 cell whose centre lies in the area, with `count` (events in the window of the chosen "
        "`sources`: clues observed, rejected and duplicate clues left out, and the police's recorded incidents; "
        "`summary` gives the count of each source), `z` and `p` (Getis-Ord Gi* over all cells of the area, binary "
        "k-ring weights including the cell itself; `p` is two-sided from the normal distribution), `hot` "
        "(z > 0 and p, adjusted by `correction`, below `alpha`, confirmed by an exact binomial test of the "
        "neighbourhood count) and `density` (quartic kernel, events per km²). `key_periods` counts the events of "
        "the hot cells by local hour of the week (0 = Monday 00:00) and names the hours significantly above an "
        "even spread over the window."
    ),
)
def hotspots_query(
    body: HotspotQuery,
    db: DbSession,
    settings: SettingsDep,
    _user: Annotated[User, Depends(require("hotspots.read"))],
) -> dict[str, Any]:
    return service.query_hotspots(
        db,
        area=body.area,
        start=body.start,
        end=body.end,
        resolution=body.resolution,
        options=body.options(),
        limits=CoverageLimits.from_settings(settings),
    )


@router.post(
    "/coverage/gaps",
    summary="Hot cells that riders seldom pass in their key periods (GeoJSON)",
    description=(
        "The hot cells of `/hotspots/query` (same parameters) whose key hours in the window were covered "
        "(at least `min_passes` rider passes in the hour) less than `max_covered_ratio` of the time, worst "
        "first. Without key periods every hour of the window counts (`basis`: `all_hours`)."
    ),
)
def coverage_gaps(
    body: GapQuery,
    db: DbSession,
    settings: SettingsDep,
    _user: Annotated[User, Depends(require("hotspots.read"))],
) -> dict[str, Any]:
    return service.query_gaps(
        db,
        area=body.area,
        start=body.start,
        end=body.end,
        resolution=body.resolution,
        options=body.options(),
        limits=CoverageLimits.from_settings(settings),
        min_passes=body.min_passes,
        max_covered_ratio=body.max_covered_ratio,
    )
