"""Open311 request queries: the parameters of GET requests checked and turned into one query of the public clues."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch import policy
from riderwatch.clues import workflow
from riderwatch.config import Settings
from riderwatch.errors import InvalidInput, NotFound
from riderwatch.infra.clock import utcnow
from riderwatch.infra.fields import MAX_ID
from riderwatch.models import Category, Clue
from riderwatch.open311.discovery import _LOST_PLUS, MAX_PAGE, MAX_PAGE_SIZE, MAX_WINDOW, check_jurisdiction
from riderwatch.open311.present import present_requests

# --- reading requests ----------------------------------------------------------------------------

LIST_PARAMS = frozenset({"service_request_id", "service_code", "status"})


@dataclass(frozen=True)
class RequestQuery:
    ids: list[int] | None
    service_codes: list[str]
    start: datetime
    end: datetime
    statuses: frozenset[str]
    page: int
    page_size: int


def _params(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Query parameters; list parameters may repeat (their values join with commas), others may not."""
    out: dict[str, str] = {}
    for key, value in pairs:
        if key in out:
            if key not in LIST_PARAMS:
                raise InvalidInput(f"{key} is given twice")
            out[key] = f"{out[key]},{value}"
        else:
            out[key] = value
    return out


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def parse_datetime(value: str, name: str) -> datetime:
    """An ISO 8601 date-time with a timezone, as UTC."""
    text = _LOST_PLUS.sub(r"\1+\2", value.strip())
    problem = f"{name} must be an ISO 8601 date-time with a timezone, e.g. 2026-11-29T08:30:00+08:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(f"{problem}; got {value[:40]!r}") from exc
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise InvalidInput(f"{problem}; {value[:40]!r} has no timezone")
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:
        raise InvalidInput(f"{name} is out of range") from exc


def _int(value: str, name: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError as exc:
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}") from exc
    if not low <= number <= high:
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}")
    return number


def parse_request_query(session: Session, pairs: Sequence[tuple[str, str]], *, now: datetime) -> RequestQuery:
    """The filters of GET requests; a bad filter is a 400 naming it, an unknown service_code a 404."""
    params = _params(pairs)
    page = _int(params["page"], "page", 1, MAX_PAGE) if params.get("page") else 1
    size = _int(params["page_size"], "page_size", 1, MAX_PAGE_SIZE) if params.get("page_size") else MAX_PAGE_SIZE
    raw_ids = _split(params.get("service_request_id"))
    if raw_ids:
        # The specification: a list of ids overrides every other filter.
        if len(raw_ids) > MAX_PAGE_SIZE:
            raise InvalidInput(f"at most {MAX_PAGE_SIZE} service_request_id values at once")
        if not all(i.isascii() and i.isdigit() for i in raw_ids):
            raise InvalidInput("service_request_id must be request ids (numbers) separated by commas")
        # Ids beyond the column's range name no request; they must not reach the database as such.
        wanted = [int(i) for i in raw_ids if len(i) <= 10 and int(i) <= MAX_ID]
        return RequestQuery(wanted, [], now, now, frozenset(), 1, MAX_PAGE_SIZE)
    codes = _split(params.get("service_code"))
    for code in codes:
        if session.get(Category, code) is None:
            raise NotFound(f"unknown service_code {code[:64]!r}: see services.json or services.xml")
    statuses = frozenset(_split(params.get("status")))
    if statuses - {"open", "closed"}:
        raise InvalidInput("status must be open, closed, or both separated by a comma")
    start = parse_datetime(params["start_date"], "start_date") if params.get("start_date") else None
    end = parse_datetime(params["end_date"], "end_date") if params.get("end_date") else None
    try:
        if start is None and end is None:
            end = now
            start = now - MAX_WINDOW
        elif start is None:
            assert end is not None
            start = end - MAX_WINDOW
        elif end is None:
            end = start + MAX_WINDOW
    except OverflowError as exc:
        raise InvalidInput("start_date or end_date is out of range") from exc
    if end < start:
        raise InvalidInput("end_date is before start_date")
    if end - start > MAX_WINDOW:
        raise InvalidInput("start_date to end_date may span at most 90 days")
    return RequestQuery(None, codes, start, end, statuses, page, size)


def list_requests(
    session: Session,
    *,
    params: Sequence[tuple[str, str]],
    settings: Settings,
    locale: str,
    jurisdiction_id: str | None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """The public requests matching the filters, newest first, one page (default: up to 1000)."""
    check_jurisdiction(settings, jurisdiction_id)
    query = parse_request_query(session, params, now=now or utcnow())
    stmt = select(Clue).where(policy.open311_public_filter())
    if query.ids is not None:
        stmt = stmt.where(Clue.id.in_(query.ids))
    else:
        stmt = stmt.where(Clue.reported_at >= query.start, Clue.reported_at <= query.end)
        if query.service_codes:
            stmt = stmt.where(Clue.category_code.in_(query.service_codes))
        if query.statuses == {"open"}:
            stmt = stmt.where(Clue.status.in_(workflow.OPEN_STATUSES))
        elif query.statuses == {"closed"}:
            stmt = stmt.where(Clue.status.in_(workflow.FINISHED_STATUSES))
    stmt = (
        stmt.order_by(Clue.reported_at.desc(), Clue.id.desc())
        .limit(query.page_size)
        .offset((query.page - 1) * query.page_size)
    )
    return present_requests(session, list(session.scalars(stmt)), settings=settings, locale=locale)


def get_request(
    session: Session, *, request_id: str, settings: Settings, locale: str, jurisdiction_id: str | None
) -> list[dict[str, Any]]:
    """One public request, as the one-item list the specification answers with."""
    check_jurisdiction(settings, jurisdiction_id)
    missing = NotFound(f"no service request {request_id[:40]!r}")
    if not (request_id.isascii() and request_id.isdigit() and len(request_id) <= 10 and int(request_id) <= MAX_ID):
        raise missing
    clue = session.scalar(select(Clue).where(Clue.id == int(request_id), policy.open311_public_filter()))
    if clue is None:
        raise missing
    return present_requests(session, [clue], settings=settings, locale=locale)
