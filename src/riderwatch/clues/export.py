"""The clue list as a table for a spreadsheet (`GET /api/v1/clues/export`): the same clues the list shows
for the same filters, one row per clue, with the words of the reader's language (given as `ExportLabels`).

What a row holds is what the caller may see of the clue in the list: reporters are never named (an
export leaves the building; the clue page names them where the policy allows, audited), and a rider sees
who handles their clue only by role.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.clues import service, workflow
from riderwatch.errors import N_, InvalidInput
from riderwatch.infra.clock import utcnow
from riderwatch.models import Category, Community, Grid, User

MAX_ROWS = 50_000
COLUMNS = (
    "number",
    "category",
    "status",
    "urgent",
    "observed_at",
    "reported_at",
    "deadline_at",
    "overdue",
    "community",
    "grid",
    "address",
    "lat",
    "lon",
    "description",
    "handled_by",
    "outcome",
    "value_grade",
    "rating",
    "anonymous",
    "source",
)


@dataclass(frozen=True)
class ExportLabels:
    """The words of the table in the reader's language."""

    header: dict[str, str]  # column → its heading
    status: dict[str, str]
    role: dict[str, str]
    grade: dict[str, str]
    yes: str
    no: str
    sheet: str
    zh: bool  # category names in Chinese (else English)


def clue_table(
    session: Session, *, user: User, filters: service.ClueFilters, labels: ExportLabels, timezone: str
) -> tuple[list[str], list[list[Any]]]:
    """The heading row and one row per clue; more than MAX_ROWS clues are refused (narrow the filters)."""
    clues, total, _counts, _overdue = service.list_clues(session, user=user, filters=filters)
    if total > MAX_ROWS:
        raise InvalidInput(
            N_("%(total)d clues match; one export takes at most %(max)d: narrow the filters"),
            total=total,
            max=MAX_ROWS,
        )
    zone = ZoneInfo(timezone)
    now = utcnow()
    categories = {c.code: c for c in session.scalars(select(Category))}
    communities: dict[int, str] = {i: name for i, name in session.execute(select(Community.id, Community.name))}
    grids: dict[int, str] = {i: name for i, name in session.execute(select(Grid.id, Grid.name))}
    handlers = service.people_by_id(session, {c.assignee_id for c in clues if c.assignee_id is not None})
    names_staff = user.role != "rider"

    def local(value: Any) -> str:
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M") if value else ""

    rows = []
    for clue in clues:
        category = categories.get(clue.category_code)
        handler = handlers.get(clue.assignee_id) if clue.assignee_id is not None else None
        if handler is None:
            handled_by = ""
        elif names_staff:
            handled_by = handler.display_name or handler.username
        else:
            handled_by = labels.role.get(handler.role, handler.role)
        overdue = clue.status in workflow.OPEN_STATUSES and clue.deadline_at < now
        rows.append(
            [
                clue.id,
                (category.name_zh if labels.zh else category.name_en) if category else clue.category_code,
                labels.status.get(clue.status, clue.status),
                labels.yes if clue.urgent else labels.no,
                local(clue.observed_at),
                local(clue.reported_at),
                local(clue.deadline_at),
                labels.yes if overdue else labels.no,
                communities.get(clue.community_id, "") if clue.community_id else "",
                grids.get(clue.grid_id, "") if clue.grid_id else "",
                clue.address,
                round(clue.lat, 6),
                round(clue.lon, 6),
                clue.description,
                handled_by,
                clue.outcome or "",
                labels.grade.get(clue.value_grade, "") if clue.value_grade else "",
                clue.rating if clue.rating is not None else "",
                labels.yes if clue.anonymous else labels.no,
                clue.source,
            ]
        )
    return [labels.header[c] for c in COLUMNS], rows
