"""Open311 requests as the public sees them: status, agency, notes and places, never a reporter or contact."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch import policy
from riderwatch.clues import workflow
from riderwatch.config import Settings
from riderwatch.models import Category, Clue, Community, Grid, PatrolUnit, User
from riderwatch.open311.discovery import ADDRESS_ID_KEY, MEDIA_URL_KEY, _t

HANDLER_LABELS = {
    "police": ("社区民警", "community police"),
    "grid_staff": ("网格员", "grid staff"),
    "patrol": ("巡防队", "patrol"),
}
OPEN_NOTES = {
    "submitted": ("已收到，等待核实", "Received; waiting to be checked"),
    "verified": ("已核实，等待派遣", "Checked; waiting to be dispatched"),
    "dispatched": ("已派遣处置", "Dispatched to the responsible unit"),
    "in_progress": ("正在处置", "Being handled"),
}


@dataclass(frozen=True)
class _Places:
    communities: dict[int, Community]
    grids: dict[int, Grid]
    patrol_units: dict[int, PatrolUnit]
    handlers: dict[int, User]


def _load_places(session: Session, clues: list[Clue]) -> _Places:
    handler_ids = {c.assignee_id for c in clues if c.assignee_id is not None}
    handlers = {u.id: u for u in session.scalars(select(User).where(User.id.in_(handler_ids)))} if handler_ids else {}
    community_ids = {c.community_id for c in clues if c.community_id is not None}
    community_ids |= {u.community_id for u in handlers.values() if u.community_id is not None}
    grid_ids = {c.grid_id for c in clues if c.grid_id is not None}
    grid_ids |= {u.grid_id for u in handlers.values() if u.grid_id is not None}
    unit_ids = {u.patrol_unit_id for u in handlers.values() if u.patrol_unit_id is not None}
    grids = {g.id: g for g in session.scalars(select(Grid).where(Grid.id.in_(grid_ids)))} if grid_ids else {}
    community_ids |= {g.community_id for g in grids.values()}
    communities = (
        {c.id: c for c in session.scalars(select(Community).where(Community.id.in_(community_ids)))}
        if community_ids
        else {}
    )
    units = (
        {p.id: p for p in session.scalars(select(PatrolUnit).where(PatrolUnit.id.in_(unit_ids)))} if unit_ids else {}
    )
    return _Places(communities, grids, units, handlers)


def _community_name(community: Community | None, locale: str) -> str | None:
    if community is None:
        return None
    return community.name_en if locale.startswith("en") and community.name_en else community.name


def _agency(clue: Clue, category: Category | None, places: _Places, locale: str) -> str | None:
    """The unit handling the request (never a person's name); before dispatch, the unit the rules name."""
    handler = places.handlers.get(clue.assignee_id) if clue.assignee_id is not None else None
    role = handler.role if handler is not None else (category.handler_role if category else None)
    if role not in HANDLER_LABELS:
        return None
    label = _t(locale, *HANDLER_LABELS[role])
    unit: str | None = None
    if handler is not None and role == "patrol" and handler.patrol_unit_id is not None:
        patrol_unit = places.patrol_units.get(handler.patrol_unit_id)
        unit = patrol_unit.name if patrol_unit else None
    elif role == "grid_staff":
        grid_id = handler.grid_id if handler is not None else clue.grid_id
        grid = places.grids.get(grid_id) if grid_id is not None else None
        unit = grid.name if grid else None
    elif role == "police":
        community_id = handler.community_id if handler is not None else clue.community_id
        unit = _community_name(places.communities.get(community_id) if community_id else None, locale)
    return f"{unit} · {label}" if unit else label


def _status_notes(clue: Clue, public_originals: set[int], locale: str) -> str | None:
    if clue.status in OPEN_NOTES:
        return _t(locale, *OPEN_NOTES[clue.status])
    if clue.status in ("resolved", "closed"):
        return clue.outcome or _t(locale, "已处置", "Handled")
    if clue.status == "rejected":
        reason = clue.reason or ""
        return _t(locale, f"不予受理：{reason}", f"Rejected: {reason}").rstrip("：: ")
    if clue.status == "duplicate":
        original = clue.duplicate_of_id
        if original is not None and original in public_originals:
            return _t(locale, f"与请求 {original} 重复", f"Duplicate of {original}")
        # The original is not public (e.g. a crime clue): say so without pointing at it.
        return _t(locale, "与已有报告重复", "Duplicate of an earlier report")
    return None


def present_requests(session: Session, clues: list[Clue], *, settings: Settings, locale: str) -> list[dict[str, Any]]:
    """Clues as Open311 requests: no reporter, no contact details, times in the station's zone."""
    if not clues:
        return []
    tz = ZoneInfo(settings.timezone)
    categories = {c.code: c for c in session.scalars(select(Category))}
    places = _load_places(session, clues)
    originals = {c.duplicate_of_id for c in clues if c.duplicate_of_id is not None}
    public_originals = (
        set(session.scalars(select(Clue.id).where(Clue.id.in_(originals), policy.open311_public_filter())))
        if originals
        else set()
    )

    def when(moment: datetime | None) -> str | None:
        return moment.astimezone(tz).isoformat(timespec="seconds") if moment is not None else None

    out = []
    for clue in clues:
        category = categories.get(clue.category_code)
        if clue.status == "closed" and clue.closed_at is not None:
            updated = clue.closed_at
        elif clue.status == "resolved" and clue.resolved_at is not None:
            updated = clue.resolved_at
        else:
            updated = clue.updated_at
        media_url = clue.attributes.get(MEDIA_URL_KEY) if clue.source == "open311" else None
        address_id = clue.attributes.get(ADDRESS_ID_KEY) if clue.source == "open311" else None
        out.append(
            {
                "service_request_id": str(clue.id),
                "status": "open" if clue.status in workflow.OPEN_STATUSES else "closed",
                "status_notes": _status_notes(clue, public_originals, locale),
                "service_name": _t(locale, category.name_zh, category.name_en) if category else None,
                "service_code": clue.category_code,
                "description": clue.description or None,
                "agency_responsible": _agency(clue, category, places, locale),
                "service_notice": None,
                "requested_datetime": when(clue.reported_at),
                "updated_datetime": when(updated),
                "expected_datetime": when(clue.deadline_at),
                "address": clue.address or None,
                "address_id": address_id if isinstance(address_id, str) else None,
                "zipcode": None,
                "lat": clue.lat,
                "long": clue.lon,
                "media_url": media_url if isinstance(media_url, str) else None,
            }
        )
    return out
