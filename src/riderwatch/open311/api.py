"""Open311 GeoReport v2 routes under /open311/v2; each path ends in .json or .xml."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from riderwatch.deps import DbSession, SettingsDep, StoreDep, public_base
from riderwatch.errors import InvalidInput
from riderwatch.i18n import request_locale
from riderwatch.open311 import discovery as definitions
from riderwatch.open311 import queries, service
from riderwatch.open311.render import check_format, format_of_path, render

router = APIRouter(prefix="/open311/v2", tags=["open311"])

_CREATE_FORM: dict[str, Any] = {
    "type": "object",
    "required": ["api_key", "service_code"],
    "properties": {
        **{
            name: {"type": "string"}
            for name in (
                "api_key",
                "jurisdiction_id",
                "service_code",
                "address_string",
                "address_id",
                "email",
                "device_id",
                "account_id",
                "first_name",
                "last_name",
                "phone",
                "media_url",
            )
        },
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "long": {"type": "number", "minimum": -180, "maximum": 180},
        "description": {"type": "string", "maxLength": definitions.MAX_DESCRIPTION},
    },
    "additionalProperties": {"type": "string", "description": "attribute[CODE] or attribute[CODE][] answers"},
}


def open311_error_response(request: Request, status: int, description: str) -> Response:
    """The specification's error list, in the format the path asks for.

    Open311 knows three answers: 404 unknown resource or service_code, 403 bad api_key, 400
    anything else (so a 422 from a shared service, or a 405, is a 400 here).
    """
    code = status if status in (403, 404) or status >= 500 else 400
    return render(
        format_of_path(request.url.path),
        [{"code": code, "description": description}],
        root="errors",
        item="error",
        status=code,
    )


async def _read_form(request: Request) -> list[tuple[str, str]]:
    """The raw form, since attribute[CODE][] keys are beyond the framework's form parsing."""
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        raise InvalidInput("send the request as application/x-www-form-urlencoded")
    try:
        form = await request.form(max_files=0, max_fields=200)
        items = form.multi_items()
    except Exception as exc:  # Starlette and python-multipart raise assorted errors for broken bodies
        raise InvalidInput("the form body is malformed") from exc
    pairs: list[tuple[str, str]] = []
    for key, value in items:
        if isinstance(value, UploadFile):
            raise InvalidInput("files are not accepted: give a media_url instead")
        pairs.append((key, value))
    return pairs


@router.get("/discovery.{fmt}", summary="Open311 discovery: endpoint, formats, contact")
def discovery(fmt: str, request: Request, db: DbSession, settings: SettingsDep) -> Response:
    fmt = check_format(fmt)
    document = definitions.discovery(
        db, settings=settings, locale=request_locale(request), base_url=public_base(request)
    )
    return render(fmt, document, root="discovery")


@router.get("/services.{fmt}", summary="Open311 services (the clue categories)")
def services(fmt: str, request: Request, db: DbSession, settings: SettingsDep) -> Response:
    fmt = check_format(fmt)
    document = definitions.list_services(
        db,
        settings=settings,
        locale=request_locale(request),
        jurisdiction_id=request.query_params.get("jurisdiction_id"),
    )
    return render(fmt, document, root="services", item="service")


@router.get("/services/{service_code}.{fmt}", summary="Open311 service definition (attributes)")
def service_definition(service_code: str, fmt: str, request: Request, db: DbSession, settings: SettingsDep) -> Response:
    fmt = check_format(fmt)
    document = definitions.service_definition(
        db,
        code=service_code,
        settings=settings,
        locale=request_locale(request),
        jurisdiction_id=request.query_params.get("jurisdiction_id"),
    )
    return render(fmt, document, root="service_definition")


@router.get("/requests.{fmt}", summary="Open311 public service requests")
def list_requests(fmt: str, request: Request, db: DbSession, settings: SettingsDep) -> Response:
    fmt = check_format(fmt)
    document = queries.list_requests(
        db,
        params=request.query_params.multi_items(),
        settings=settings,
        locale=request_locale(request),
        jurisdiction_id=request.query_params.get("jurisdiction_id"),
    )
    return render(fmt, document, root="service_requests", item="request")


@router.post(
    "/requests.{fmt}",
    summary="Open311 report (form-encoded, api_key required)",
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": _CREATE_FORM}}}
    },
)
async def create_request(fmt: str, request: Request, db: DbSession, settings: SettingsDep, store: StoreDep) -> Response:
    fmt = check_format(fmt)
    form = await _read_form(request)
    # The database work is synchronous: keep it off the event loop.
    document = await run_in_threadpool(
        service.create_request,
        db,
        form=form,
        query=request.query_params.multi_items(),
        settings=settings,
        store=store,
        locale=request_locale(request),
    )
    return render(fmt, document, root="service_requests", item="request")


@router.get("/requests/{service_request_id}.{fmt}", summary="One Open311 public service request")
def get_request(service_request_id: str, fmt: str, request: Request, db: DbSession, settings: SettingsDep) -> Response:
    fmt = check_format(fmt)
    document = queries.get_request(
        db,
        request_id=service_request_id,
        settings=settings,
        locale=request_locale(request),
        jurisdiction_id=request.query_params.get("jurisdiction_id"),
    )
    return render(fmt, document, root="service_requests", item="request")
