"""Open311 GeoReport v2: the public's window on the clue desk (STANDARDS.md, CONTRACT.md).

Every category is a service. Anyone may read the services and the requests that
`policy.open311_public_filter` lets through; with an API key anyone may report, and the report
enters the same clue workflow as a rider's (source "open311", no reporter). Contact details go
to Clue.contact for dispatchers and are never emitted here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch import policy
from riderwatch.accounts.service import check_api_key
from riderwatch.clues import service as clue_service
from riderwatch.clues.schemas import ClueCreate
from riderwatch.config import Settings
from riderwatch.errors import Forbidden, InvalidInput
from riderwatch.infra.clock import utcnow
from riderwatch.infra.files import FileStore
from riderwatch.models import Category, Clue
from riderwatch.open311.discovery import (
    _ATTRIBUTE_KEY,
    _CONTROL,
    _EMAIL,
    _PHONE,
    ADDRESS_ID_KEY,
    CONTACT_FIELDS,
    MAX_DESCRIPTION,
    MEDIA_URL_KEY,
    OBSERVED_AT,
    URGENCY,
    _category,
    _t,
    attributes_for,
    check_jurisdiction,
)
from riderwatch.open311.queries import parse_datetime

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
