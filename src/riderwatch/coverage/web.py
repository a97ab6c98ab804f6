"""The coverage map page: rider passes per H3 cell, blind cells, hotspots, gaps and the hour-of-day profile."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from h3.api import basic_int as h3

from riderwatch import policy
from riderwatch.deps import DbSession, SettingsDep, require
from riderwatch.i18n import request_locale
from riderwatch.models import User
from riderwatch.org import service as org_service
from riderwatch.web.labels import N_
from riderwatch.web.templating import render

router = APIRouter(include_in_schema=False)

CoverageReader = Annotated[User, Depends(require("coverage.read"))]
RiderSelf = Annotated[User, Depends(require("tracking.self"))]

AREA_KINDS = ("zone", "community", "grid")
AREA_KIND_LABELS: dict[str, str] = {
    "zone": N_("Pilot zones"),
    "community": N_("Communities"),
    "grid": N_("Grids"),
}

# --- the coverage map --------------------------------------------------------------------------


def area_choices(areas: dict[str, Any], locale: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """(kind, [(value, name)]) for the zone picker; a value is "kind:code", as the API's stored areas."""
    groups: dict[str, list[tuple[str, str]]] = {kind: [] for kind in AREA_KINDS}
    for feature in areas["features"]:
        p = feature["properties"]
        if p["kind"] not in groups or not p.get("code"):
            continue
        name = p["name_en"] if locale == "en" and p.get("name_en") else p["name"]
        groups[p["kind"]].append((f"{p['kind']}:{p['code']}", name))
    return [(kind, items) for kind, items in groups.items() if items]


@router.get("/coverage")
def coverage_page(request: Request, db: DbSession, settings: SettingsDep, user: CoverageReader) -> HTMLResponse:
    areas = org_service.areas_geojson(db)
    context = {
        "areas": areas,
        "area_choices": area_choices(areas, request_locale(request)),
        "area_kind_labels": AREA_KIND_LABELS,
        "resolutions": [(r, round(2 * h3.average_hexagon_edge_length(r, "m"))) for r in settings.coverage_resolutions],
        "max_window_days": settings.coverage_max_window_days,
        "live_minutes": settings.live_window_minutes,
        # Each layer is offered only to those whose API calls would be answered.
        "can_hotspots": policy.has_permission(user, "hotspots.read"),
        "can_clues": policy.has_permission(user, "clue.list"),
        "can_live": policy.has_permission(user, "tracking.view_positions"),
        # A hotspot or gap cell links to the publish form with the cell filled in.
        "can_publish_tasks": policy.has_permission(user, "task.manage"),
        "can_tasks": policy.has_permission(user, "task.read"),
    }
    return render(request, "coverage/map.html", context)
