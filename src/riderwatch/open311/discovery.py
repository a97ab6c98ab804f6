"""Open311 discovery and services: the endpoint's description, every category as a service, its definition."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.config import Settings
from riderwatch.errors import NotFound
from riderwatch.models import Category, Jurisdiction
from riderwatch.org import service as org_service

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
# When this endpoint's behaviour last changed; clients compare it to decide whether to re-read it.
CHANGESET = "2026-11-29T00:00:00+08:00"
FORMAT_MIME_TYPES = ["text/xml", "application/json"]
MAX_WINDOW = timedelta(days=90)
MAX_PAGE_SIZE = 1000
MAX_PAGE = 1_000_000
MAX_DESCRIPTION = 4000
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


def discovery(session: Session, *, settings: Settings, locale: str, base_url: str) -> dict[str, Any]:
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
                "url": base_url + "/open311/v2",
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
