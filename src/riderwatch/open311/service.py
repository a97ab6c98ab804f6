"""Open311 GeoReport v2: the public's window on the clue desk (STANDARDS.md, CONTRACT.md).

Every category is a service. Anyone may read the services and the requests that
`policy.open311_public_filter` lets through; with an API key anyone may report, and the report
enters the same clue workflow as a rider's (source "open311", no reporter). Contact details go
to Clue.contact for dispatchers and are never emitted here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch import policy
from riderwatch.accounts.service import check_api_key
from riderwatch.clues import service as clue_service
from riderwatch.clues import workflow
from riderwatch.clues.schemas import ClueCreate
from riderwatch.config import Settings
from riderwatch.errors import Forbidden, InvalidInput, NotFound
from riderwatch.infra.clock import utcnow
from riderwatch.infra.files import FileStore
from riderwatch.models import Category, Clue, Community, Grid, Jurisdiction, PatrolUnit, User
from riderwatch.org import service as org_service

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
# When this endpoint's behaviour last changed; clients compare it to decide whether to re-read it.
CHANGESET = "2026-11-29T00:00:00+08:00"
FORMAT_MIME_TYPES = ["text/xml", "application/json"]
MAX_WINDOW = timedelta(days=90)
MAX_PAGE_SIZE = 1000
MAX_PAGE = 1_000_000
MAX_DESCRIPTION = 4000
MAX_ID = 2**31 - 1  # clue ids are 32-bit integers on PostgreSQL
# Clue.attributes keys that hold request fields rather than attribute answers.
MEDIA_URL_KEY = "media_url"
ADDRESS_ID_KEY = "address_id"
CONTACT_FIELDS = ("email", "device_id", "account_id", "first_name", "last_name", "phone")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+?[0-9][0-9 ()\-]{2,31}")
_ATTRIBUTE_KEY = re.compile(r"attribute\[([^\[\]]+)\](\[\])?")
# A '+' in an unencoded query string arrives as a space: "…T08:00:00 08:00" meant "+08:00".
_LOST_PLUS = re.compile(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}(?::?\d{2})?)$")


def _t(locale: str, zh: str, en: str) -> str:
    return en if locale.startswith("en") else zh


# --- service definitions -------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    key: str
    name_zh: str
    name_en: str


@dataclass(frozen=True)
class AttributeSpec:
    code: str
    datatype: Literal["singlevaluelist", "multivaluelist", "datetime"]
    order: int
    description_zh: str
    description_en: str
    datatype_description_zh: str | None = None
    datatype_description_en: str | None = None
    required: bool = False
    values: tuple[Choice, ...] = ()
    # The category groups whose services ask this; None: every service.
    groups: frozenset[str] | None = None


URGENCY = AttributeSpec(
    code="urgency",
    datatype="singlevaluelist",
    order=1,
    description_zh="紧急程度：有人正处于危险之中时选“紧急”",
    description_en="How urgent: choose 'urgent' when someone is in danger now",
    values=(Choice("normal", "一般", "Normal"), Choice("urgent", "紧急", "Urgent")),
)
OBSERVED_AT = AttributeSpec(
    code="observed_at",
    datatype="datetime",
    order=2,
    description_zh="发现时间；不填则为提交时间",
    description_en="When you saw it; the time of submission if left out",
    datatype_description_zh="ISO 8601，带时区，例如 2026-11-29T08:30:00+08:00",
    datatype_description_en="ISO 8601 with a timezone, e.g. 2026-11-29T08:30:00+08:00",
)
AT_RISK = AttributeSpec(
    code="at_risk",
    datatype="multivaluelist",
    order=3,
    description_zh="谁可能受到危害（可多选）",
    description_en="Who could be harmed (choose any)",
    values=(
        Choice("pedestrians", "行人", "Pedestrians"),
        Choice("vehicles", "车辆", "Vehicles"),
        Choice("residents", "住户", "Residents"),
        Choice("children_elderly", "儿童或老人", "Children or the elderly"),
    ),
    groups=frozenset({"hazard"}),
)
ATTRIBUTES = (URGENCY, OBSERVED_AT, AT_RISK)


def attributes_for(category: Category) -> list[AttributeSpec]:
    return [a for a in ATTRIBUTES if a.groups is None or category.group in a.groups]


def check_jurisdiction(settings: Settings, jurisdiction_id: str | None) -> None:
    """One jurisdiction per server: naming it is optional, naming another is an unknown resource."""
    if jurisdiction_id and jurisdiction_id != settings.open311_jurisdiction_id:
        raise NotFound(
            f"unknown jurisdiction_id {jurisdiction_id[:64]!r}: this server serves only "
            f"{settings.open311_jurisdiction_id!r}"
        )


def discovery(session: Session, *, settings: Settings, locale: str) -> dict[str, Any]:
    """Where the endpoint is, what it speaks and whom to ask for a key."""
    station = session.scalar(select(Jurisdiction).order_by(Jurisdiction.id).limit(1))
    if station is None:
        contact = _t(locale, "RiderWatch 指挥中心", "RiderWatch command centre")
    else:
        name = station.name_en if locale.startswith("en") and station.name_en else station.name
        contact = _t(locale, f"{name}指挥中心", f"{name} command centre")
    return {
        "changeset": CHANGESET,
        "contact": contact,
        "key_service": _t(
            locale,
            "提交请求需要 API key，请向派出所系统管理员申请",
            "Submitting requests needs an API key: ask the police station's system administrator",
        ),
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": settings.public_base_url.rstrip("/") + "/open311/v2",
                "changeset": CHANGESET,
                "type": "production",
                "formats": list(FORMAT_MIME_TYPES),
            }
        ],
    }


def _category(session: Session, code: str) -> Category:
    category = session.get(Category, code)
    if category is None or not category.active:
        raise NotFound(f"unknown service_code {code[:64]!r}: see services.json or services.xml")
    return category


def list_services(
    session: Session, *, settings: Settings, locale: str, jurisdiction_id: str | None
) -> list[dict[str, Any]]:
    """Every active category as an Open311 service."""
    check_jurisdiction(settings, jurisdiction_id)
    out = []
    for category in org_service.list_categories(session):
        name = _t(locale, category.name_zh, category.name_en)
        description = _t(locale, category.description_zh, category.description_en)
        out.append(
            {
                "service_code": category.code,
                "service_name": name,
                "description": description or name,
                "metadata": bool(attributes_for(category)),
                "type": "realtime",
                "keywords": category.keywords,
                "group": category.group,
            }
        )
    return out


def service_definition(
    session: Session, *, code: str, settings: Settings, locale: str, jurisdiction_id: str | None
) -> dict[str, Any]:
    """The extra questions a service asks (its attributes)."""
    check_jurisdiction(settings, jurisdiction_id)
    category = _category(session, code)
    specs = attributes_for(category)
    if not specs:
        raise NotFound(f"service {code!r} has no attributes (its metadata is false)")
    return {
        "service_code": category.code,
        "attributes": [
            {
                "variable": True,
                "code": spec.code,
                "datatype": spec.datatype,
                "required": spec.required,
                "datatype_description": (
                    spec.datatype_description_en if locale.startswith("en") else spec.datatype_description_zh
                ),
                "order": spec.order,
                "description": _t(locale, spec.description_zh, spec.description_en),
                "values": [{"key": v.key, "name": _t(locale, v.name_zh, v.name_en)} for v in spec.values],
            }
            for spec in specs
        ],
    }


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


# --- reporting -----------------------------------------------------------------------------------

SINGLE_FIELDS = frozenset(
    {
        "api_key",
        "jurisdiction_id",
        "service_code",
        "lat",
        "long",
        "address_string",
        "address_id",
        "description",
        "media_url",
        *CONTACT_FIELDS,
    }
)


def _form_fields(form: Sequence[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Plain fields and attribute answers; empty values count as not given (forms send blanks)."""
    fields: dict[str, str] = {}
    answers: dict[str, list[str]] = {}
    for key, value in form:
        if _CONTROL.search(key) or _CONTROL.search(value):
            raise InvalidInput(f"field {key[:40]!r} contains control characters")
        if key.startswith("attribute"):
            match = _ATTRIBUTE_KEY.fullmatch(key)
            if match is None:
                raise InvalidInput(
                    f"malformed attribute field {key[:60]!r}: write attribute[CODE]=value "
                    "or, for several values, attribute[CODE][]=value"
                )
            answers.setdefault(match.group(1), [])
            if value.strip():
                answers[match.group(1)].append(value.strip())
            continue
        if key not in SINGLE_FIELDS:
            continue  # other clients' extensions: ignored, as the specification expects of servers
        if key in fields:
            raise InvalidInput(f"{key} is given twice")
        if value.strip():
            fields[key] = value.strip()
    return fields, answers


def _coordinate(value: str, name: str, limit: float) -> float:
    try:
        number = float(value)
    except ValueError as exc:
        raise InvalidInput(f"{name} must be a number of degrees (WGS-84), not {value[:40]!r}") from exc
    if not math.isfinite(number) or not -limit <= number <= limit:
        raise InvalidInput(f"{name} must be between {-limit:g} and {limit:g} degrees (WGS-84)")
    return number


def _location(fields: dict[str, str]) -> tuple[float, float]:
    lat, lon = fields.get("lat"), fields.get("long")
    if lat is not None and lon is not None:
        return _coordinate(lat, "lat", 90), _coordinate(lon, "long", 180)
    if lat is not None or lon is not None:
        raise InvalidInput("lat and long must be given together (WGS-84 degrees)")
    if "address_string" in fields or "address_id" in fields:
        # The server runs on a police intranet with no geocoder to turn an address into a place,
        # and clues are routed, deduplicated and mapped by their coordinates.
        raise InvalidInput(
            "lat and long are required: this server cannot look up addresses, so send the place as "
            "WGS-84 lat and long (address_string may accompany them)"
        )
    raise InvalidInput("a location is required: send lat and long (WGS-84 degrees)")


def _limited(fields: dict[str, str], name: str, limit: int) -> str | None:
    value = fields.get(name)
    if value is not None and len(value) > limit:
        raise InvalidInput(f"{name} may be at most {limit} characters")
    return value


def _contact(fields: dict[str, str]) -> dict[str, str]:
    limits = {"email": 254, "device_id": 128, "account_id": 128, "first_name": 100, "last_name": 100, "phone": 32}
    contact = {name: value for name in CONTACT_FIELDS if (value := _limited(fields, name, limits[name])) is not None}
    if "email" in contact and not _EMAIL.fullmatch(contact["email"]):
        raise InvalidInput("email is not an e-mail address")
    if "phone" in contact and not _PHONE.fullmatch(contact["phone"]):
        raise InvalidInput("phone may hold only digits, spaces, brackets, dashes and a leading +")
    return contact


def _media_url(fields: dict[str, str]) -> str | None:
    url = _limited(fields, "media_url", 1000)
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in url):
        raise InvalidInput("media_url must be an http or https URL")
    return url


def _answers(category: Category, answers: dict[str, list[str]]) -> dict[str, Any]:
    """Attribute answers checked against the service definition, as stored in Clue.attributes."""
    specs = {spec.code: spec for spec in attributes_for(category)}
    unknown = sorted(set(answers) - set(specs))
    if unknown:
        known = ", ".join(specs) or "none"
        raise InvalidInput(f"service {category.code} has no attribute {unknown[0][:40]!r}; its attributes: {known}")
    stored: dict[str, Any] = {}
    for code, spec in specs.items():
        values = answers.get(code, [])
        if not values:
            if spec.required:
                raise InvalidInput(f"attribute[{code}] is required for service {category.code}")
            continue
        if spec.datatype == "multivaluelist":
            keys = [v.key for v in spec.values]
            for value in values:
                if value not in keys:
                    raise InvalidInput(f"attribute[{code}] has no value {value[:40]!r}; values: {', '.join(keys)}")
            stored[code] = list(dict.fromkeys(values))
            continue
        if len(values) > 1:
            raise InvalidInput(f"attribute[{code}] takes one value, not {len(values)}")
        if spec.datatype == "singlevaluelist":
            keys = [v.key for v in spec.values]
            if values[0] not in keys:
                raise InvalidInput(f"attribute[{code}] has no value {values[0][:40]!r}; values: {', '.join(keys)}")
            stored[code] = values[0]
        else:
            stored[code] = parse_datetime(values[0], f"attribute[{code}]").isoformat()
    return stored


def _service_notice(session: Session, clue: Clue, category: Category, locale: str) -> str:
    hours = category.urgent_deadline_hours if clue.urgent else category.deadline_hours
    notice = _t(locale, f"已收到，将在 {hours} 小时内处理。", f"Received; we aim to handle it within {hours} hours.")
    if session.scalar(select(Clue.id).where(Clue.id == clue.id, policy.open311_public_filter())) is None:
        notice += _t(
            locale,
            "此类报告不公开，不会出现在公开的请求列表中。",
            " Reports of this kind are not published and will not appear in public request lists.",
        )
    return notice


def create_request(
    session: Session,
    *,
    form: Sequence[tuple[str, str]],
    query: Sequence[tuple[str, str]],
    settings: Settings,
    store: FileStore,
    locale: str,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Report through Open311: a clue from the public, with no reporter, in the normal workflow."""
    now = now or utcnow()
    # The key is checked before anything else is looked at, so a caller without one learns nothing.
    given_key = next((v for k, v in form if k == "api_key" and v), None) or dict(query).get("api_key")
    if check_api_key(session, given_key) is None:
        raise Forbidden("api_key is missing or not valid; the police station's administrator issues keys")
    fields, answers = _form_fields(form)
    check_jurisdiction(settings, fields.get("jurisdiction_id") or dict(query).get("jurisdiction_id"))
    code = fields.get("service_code")
    if code is None:
        raise InvalidInput("service_code is required: see services.json or services.xml")
    category = _category(session, code)
    lat, lon = _location(fields)
    description = fields.get("description", "")
    if len(description) > MAX_DESCRIPTION:
        raise InvalidInput(f"description may be at most {MAX_DESCRIPTION} characters, not {len(description)}")
    address = _limited(fields, "address_string", 300) or ""
    address_id = _limited(fields, "address_id", 64)
    contact = _contact(fields)
    media_url = _media_url(fields)
    attributes = _answers(category, answers)
    observed_at = datetime.fromisoformat(attributes[OBSERVED_AT.code]) if OBSERVED_AT.code in attributes else now
    try:
        data = ClueCreate(
            category=category.code,
            description=description,
            lat=lat,
            lon=lon,
            observed_at=observed_at,
            anonymous=True,
            urgent=attributes.get(URGENCY.code) == "urgent",
            address=address,
        )
    except ValidationError as exc:
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(detail) from exc
    if media_url is not None:
        attributes[MEDIA_URL_KEY] = media_url
    if address_id is not None:
        attributes[ADDRESS_ID_KEY] = address_id
    clue, _created = clue_service.submit_clue(
        session,
        reporter=None,
        data=data,
        photos=[],
        store=store,
        max_photos=settings.max_photos,
        source="open311",
        contact=contact,
        attributes=attributes,
        now=now,
    )
    answer = {"service_request_id": str(clue.id), "service_notice": _service_notice(session, clue, category, locale)}
    if "account_id" in contact:
        answer["account_id"] = contact["account_id"]
    return [answer]
