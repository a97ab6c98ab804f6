"""The programme's dashboard for the command centre and station managers: the figures of
`GET /api/v1/stats` over a chosen period, as numbers and charts (Chart.js, served by the app), and the
figures or the period's clues as a spreadsheet."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from riderwatch import policy
from riderwatch.audit.service import record
from riderwatch.deps import DbSession, require, writes_on_read
from riderwatch.errors import N_, InvalidInput
from riderwatch.i18n import request_locale
from riderwatch.infra import sheets
from riderwatch.infra.clock import utcnow
from riderwatch.models import User
from riderwatch.stats import service
from riderwatch.web.forms import formatter, labels_in
from riderwatch.web.labels import STATUS_LABELS
from riderwatch.web.templating import render

router = APIRouter(include_in_schema=False)

Reader = Annotated[User, Depends(require("stats.read"))]
PRESETS: dict[str, str] = {
    "7d": N_("Last 7 days"),
    "30d": N_("Last 30 days"),
    "month": N_("This month"),
    "all": N_("Since the start"),
    "custom": N_("Chosen days"),
}
DayText = Annotated[str, Query(max_length=10, pattern=r"^(\d{4}-\d{2}-\d{2})?$")]


def _period(request: Request, preset: str, day_from: str, day_to: str) -> tuple[service.Period, str, str]:
    """The period a preset or two local days name: [first day 00:00, day after the last 00:00) local time."""
    zone = ZoneInfo(request.app.state.settings.timezone)
    today = utcnow().astimezone(zone).date()
    if preset == "custom":
        try:
            first = datetime.strptime(day_from, "%Y-%m-%d").date() if day_from else today - timedelta(days=29)
            last = datetime.strptime(day_to, "%Y-%m-%d").date() if day_to else today
        except ValueError as exc:
            raise InvalidInput(N_("give the days as YYYY-MM-DD")) from exc
    elif preset == "7d":
        first, last = today - timedelta(days=6), today
    elif preset == "month":
        first, last = today.replace(day=1), today
    elif preset == "all":
        return service.Period(None, None), "", ""
    else:
        first, last = today - timedelta(days=29), today
    if last < first:
        raise InvalidInput(N_("the last day lies before the first"))
    start = datetime.combine(first, time(), zone)
    end = datetime.combine(last + timedelta(days=1), time(), zone)
    return service.Period(start, end), first.isoformat(), last.isoformat()


@router.get("/stats")
def dashboard(
    request: Request,
    db: DbSession,
    user: Reader,
    preset: Annotated[Literal["7d", "30d", "month", "all", "custom"], Query()] = "30d",
    day_from: DayText = "",
    day_to: DayText = "",
) -> HTMLResponse:
    period, first, last = _period(request, preset, day_from, day_to)
    figures = service.figures(
        db,
        user=user,
        period=period,
        locale=request_locale(request),
        timezone=request.app.state.settings.timezone,
    )
    status_labels = labels_in(request, STATUS_LABELS)
    context = {
        "figures": figures,
        "preset": preset,
        "presets": labels_in(request, PRESETS),
        "day_from": first,
        "day_to": last,
        "status_labels": status_labels,
        "export_query": {
            k: v
            for k, v in {
                "observed_from": period.start.isoformat() if period.start else "",
                "observed_to": period.end.isoformat() if period.end else "",
            }.items()
            if v
        },
        "period_query": {"preset": preset, "day_from": first, "day_to": last},
        # The clues themselves only for those who may list them (a station manager has the figures only).
        "may_export_clues": policy.has_permission(user, "clue.list"),
    }
    return render(request, "stats/dashboard.html", context)


@router.get("/stats/export")
@writes_on_read
def export_figures(
    request: Request,
    db: DbSession,
    user: Reader,
    format: Annotated[Literal["csv", "xlsx"], Query()] = "xlsx",
    preset: Annotated[Literal["7d", "30d", "month", "all", "custom"], Query()] = "30d",
    day_from: DayText = "",
    day_to: DayText = "",
) -> Response:
    """The figures as a spreadsheet: one table of (section, measure, value) rows, in the reader's words."""
    _ = formatter(request)._
    period, first, last = _period(request, preset, day_from, day_to)
    figures = service.figures(
        db,
        user=user,
        period=period,
        locale=request_locale(request),
        timezone=request.app.state.settings.timezone,
    )
    statuses = labels_in(request, STATUS_LABELS)
    clues, riders = figures["clues"], figures["riders"]
    rows: list[list[Any]] = [
        [_("Period"), _("From"), first or "—"],
        [_("Period"), _("To"), last or "—"],
        [_("Clues"), _("Total"), clues["total"]],
        [_("Clues"), _("Open"), clues["open"]],
        [_("Clues"), _("Overdue now"), clues["overdue"]],
        [_("Clues"), _("Share verified"), clues["verified_share"] if clues["verified_share"] is not None else ""],
        [_("Clues"), _("Hours to dispatch (median)"), clues["hours_to_dispatch"]["median"] or ""],
        [_("Clues"), _("Hours to close (median)"), clues["hours_to_close"]["median"] or ""],
        *[[_("Clues by status"), statuses.get(k, k), v] for k, v in clues["by_status"].items()],
        *[[_("Clues by category"), k, v] for k, v in clues["by_category"].items()],
        *[[_("Clues by community"), k, v] for k, v in clues["by_community"].items()],
        *[[_("Clues by day"), k, v] for k, v in clues["by_day"].items()],
        [_("Riders"), _("Members"), riders["total"]],
        [_("Riders"), _("Active in the period"), riders["active"]],
        [_("Riders"), _("Joined in the period"), riders["joined"]],
        *[[_("Riders by station"), k, v["members"]] for k, v in riders["by_station"].items()],
        [_("Patrol tasks"), _("Tasks"), figures["tasks"]["total"]],
        [_("Patrol tasks"), _("Completions"), figures["tasks"]["completions"]],
    ]
    header = [_("Section"), _("Measure"), _("Value")]
    record(db, actor=user, action="stats.export", object_type="stats", object_id=figures["scope"], format=format)
    stamp = utcnow().strftime("%Y%m%d-%H%M")
    if format == "xlsx":
        data, media = sheets.write_xlsx(header, rows, sheet=_("Figures")), sheets.XLSX_TYPE
    else:
        data, media = sheets.write_csv(header, rows), "text/csv; charset=utf-8"
    return Response(
        data,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="figures-{stamp}.{format}"',
            "Cache-Control": "no-store",
        },
    )
