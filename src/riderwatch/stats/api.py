"""The programme's figures under /api/v1/stats."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from riderwatch.deps import DbSession, require
from riderwatch.i18n import request_locale
from riderwatch.infra.fields import UtcDateTime
from riderwatch.models import User
from riderwatch.stats import service

router = APIRouter(prefix="/api/v1", tags=["figures"])

Reader = Annotated[User, Depends(require("stats.read"))]


@router.get("/stats", summary="The programme's figures over a period (clues by when they were seen)")
def stats(
    request: Request,
    db: DbSession,
    user: Reader,
    start: Annotated[
        UtcDateTime | None, Query(alias="from", description="from this time on (ISO 8601 with a timezone)")
    ] = None,
    end: Annotated[
        UtcDateTime | None, Query(alias="to", description="before this time (ISO 8601 with a timezone)")
    ] = None,
) -> dict[str, Any]:
    return service.figures(
        db,
        user=user,
        period=service.Period(start, end),
        locale=request_locale(request),
        timezone=request.app.state.settings.timezone,
    )
