"""Coverage query under /api/v1 (CONTRACT.md "Positions and coverage")."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from riderwatch.coverage import service
from riderwatch.deps import DbSession, SettingsDep, require
from riderwatch.infra.fields import UtcDateTime
from riderwatch.models import User

router = APIRouter(prefix="/api/v1", tags=["coverage"])


class CoverageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    area: dict[str, Any] = Field(
        description='GeoJSON Polygon/MultiPolygon, {"type": "Circle", "center": [lon, lat], "radius_m": R}, '
        'or a stored area: {"zone": code}, {"grid": code}, {"community": code}'
    )
    start: UtcDateTime = Field(alias="from")
    end: UtcDateTime = Field(alias="to")
    resolution: int | None = Field(default=None, description="H3 resolution; one of the configured ones (9, 10)")
    min_passes: int = Field(default=1, ge=1, le=1_000_000, description="a cell with fewer passes is blind")


@router.post(
    "/coverage/query",
    summary="Coverage of an area in a window, per H3 cell (GeoJSON)",
    description=(
        "One Feature per H3 cell whose centre lies in the area, with `passes` (positions of riders in the cell) "
        "and `riders` (rider-hours: the distinct riders of each hour, summed over the window's hours). "
        "`summary` counts cells, covered cells and blind cells (fewer than `min_passes` passes); "
        "`hour_profile` gives passes by local hour of day; `previous` is the same summary for the window of "
        "equal length just before, and `trend` the change in coverage ratio. Windows are widened to whole hours."
    ),
)
def coverage_query(
    body: CoverageQuery,
    db: DbSession,
    settings: SettingsDep,
    _user: Annotated[User, Depends(require("coverage.read"))],
) -> dict[str, Any]:
    limits = service.CoverageLimits.from_settings(settings)
    return service.query_coverage(
        db,
        area=body.area,
        start=body.start,
        end=body.end,
        resolution=body.resolution,
        min_passes=body.min_passes,
        limits=limits,
    )
