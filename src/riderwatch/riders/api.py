"""The riders' programme under /api/v1: importing a platform's rider list, the roster and a rider's path,
join links and applying through one."""

from __future__ import annotations

import io
from typing import Annotated, Any

import anyio
import segno
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as FastPath
from pydantic import BaseModel, ConfigDict, Field

from riderwatch.bodies import form_flag, upload_form, upload_openapi, uploaded_file
from riderwatch.deps import DbSession, PathId, client_id, login_hashes, public_base, reads_only, require
from riderwatch.errors import N_, InvalidInput
from riderwatch.models import User
from riderwatch.models.accounts import RiderStatus
from riderwatch.riders import imports, path

router = APIRouter(prefix="/api/v1", tags=["riders"])

Importer = Annotated[User, Depends(require("rider.import"))]


@router.post(
    "/riders/import",
    summary="Import a rider list (XLSX or CSV; dry_run=true only checks); all rows or none",
    responses={
        422: {"description": "a bad file or bad rows (each named by its spreadsheet row); nothing stored"},
        413: {"description": "the file is too large"},
    },
    openapi_extra=upload_openapi(
        dry_run={"type": "boolean"}, rider_status={"type": "string", "enum": list(imports.IMPORT_STATUSES)}
    ),
)
@reads_only
async def import_riders(
    request: Request, user: Importer, hashes: Annotated[anyio.CapacityLimiter, Depends(login_hashes)]
) -> dict[str, Any]:
    # `reads_only`: the caller was read in a transaction that has ended; the import keeps its own (a
    # read-only one to check, one short one to store) and hashes the new riders' codes between them.
    form = await upload_form(request)
    upload = uploaded_file(form, missing=N_("send the file (CSV or .xlsx) in the field 'file'"))
    dry_run = form_flag(form, "dry_run")
    status = form.get("rider_status") or "applied"
    if not isinstance(status, str):
        raise InvalidInput(N_("'rider_status' must be text"))
    data = await upload.read(imports.MAX_FILE_BYTES + 1)
    result = await imports.import_riders(
        request.app.state.session_factory,
        request.app.state.read_session_factory,
        hashes,
        importer=user,
        data=data,
        filename=upload.filename or "",
        content_type=upload.content_type or "",
        dry_run=dry_run,
        rider_status=status,
    )
    return {
        "dry_run": dry_run,
        "created": result.created,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "errors": [],
        "accounts": [
            {
                "row": a.row,
                "name": a.name,
                "username": a.username,
                "one_time_code": a.code,
                "expires_at": a.expires_at.isoformat(),
            }
            for a in result.accounts
        ],
    }


# --- the roster and a rider's path --------------------------------------------------------------------

RosterReader = Annotated[User, Depends(require("rider.roster"))]
RiderManager = Annotated[User, Depends(require("rider.manage"))]


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: RiderStatus
    reason: str = Field(default="", max_length=500)


def _row(row: path.RosterRow) -> dict[str, Any]:
    return {
        "id": row.user_id,
        "name": row.name,
        "phone": row.phone,
        "station": row.station,
        "platform": row.platform,
        "status": row.status,
        "joined_on": row.joined_on.isoformat() if row.joined_on else None,
        "last_report": row.last_report.isoformat() if row.last_report else None,
        "last_duty": row.last_duty.isoformat() if row.last_duty else None,
        "training": {"required": row.required, "passed": row.trained, "refresher_due": row.refresher_due},
    }


@router.get("/riders", summary="The riders the caller may list: a station's, a platform's, or all (no positions)")
def list_riders(
    db: DbSession,
    user: RosterReader,
    status: RiderStatus | None = None,
    station: Annotated[str | None, Query(max_length=64, description="a station's code")] = None,
    q: Annotated[str | None, Query(max_length=100, description="part of a name or mobile number")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    rows, total = path.roster(db, viewer=user, status=status, station_code=station, query=q, limit=limit, offset=offset)
    return {"items": [_row(r) for r in rows], "total": total}


@router.get("/riders/{rider_id}", summary="One rider and each step of their path (who, when, why)")
def get_rider(rider_id: PathId, db: DbSession, user: RosterReader) -> dict[str, Any]:
    path.rider_of(db, viewer=user, rider_id=rider_id)
    [found], _total = path.roster(db, viewer=user, rider_id=rider_id)
    steps = path.path_of(db, rider_id=rider_id)
    return {
        **_row(found),
        "path": [
            {
                "at": s.at.isoformat(),
                "from": s.from_status,
                "to": s.to_status,
                "by": s.by,
                "reason": s.reason,
            }
            for s in steps
        ],
    }


@router.post("/riders/{rider_id}/status", summary="Activate, suspend or record the leaving of a rider, with the reason")
def change_status(rider_id: PathId, body: StatusChange, db: DbSession, user: RiderManager) -> dict[str, Any]:
    path.rider_of(db, viewer=user, rider_id=rider_id)
    rider = path.change_status(db, actor=user, rider_id=rider_id, status=body.status, reason=body.reason)
    return {"id": rider.user_id, "status": rider.status}


# --- join links -----------------------------------------------------------------------------------------


class JoinLinkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    station: str = Field(max_length=64)
    days: int = Field(default=14, ge=1, le=path.JOIN_DAYS_MAX)
    max_uses: int = Field(default=100, ge=1, le=1000)


def _link(request: Request, link: Any, station: Any) -> dict[str, Any]:
    base = public_base(request)
    return {
        "id": link.id,
        "station": station.code,
        "station_name": station.name,
        "code": link.code,
        "url": f"{base}/join/{link.code}",
        "qr_svg": f"/api/v1/join-links/{link.id}/qr.svg",
        "expires_at": link.expires_at.isoformat(),
        "max_uses": link.max_uses,
        "uses": link.uses,
        "withdrawn": link.withdrawn_at is not None,
    }


@router.get("/join-links", summary="The join links of the caller's station (all, for administrators)")
def list_join_links(request: Request, db: DbSession, user: RiderManager) -> list[dict[str, Any]]:
    return [_link(request, link, station) for link, station in path.join_links(db, viewer=user)]


@router.post("/join-links", status_code=201, summary="A join link (and QR code) riders apply to a station with")
def create_join_link(request: Request, body: JoinLinkCreate, db: DbSession, user: RiderManager) -> dict[str, Any]:
    link = path.create_join_link(db, actor=user, station_code=body.station, days=body.days, max_uses=body.max_uses)
    _found, station = path.join_link_of(db, viewer=user, link_id=link.id)
    return _link(request, link, station)


@router.post("/join-links/{link_id}/withdraw", summary="Withdraw a join link at once")
def withdraw_join_link(request: Request, link_id: PathId, db: DbSession, user: RiderManager) -> dict[str, Any]:
    link = path.withdraw_join_link(db, actor=user, link_id=link_id)
    _found, station = path.join_link_of(db, viewer=user, link_id=link.id)
    return _link(request, link, station)


@router.get(
    "/join-links/{link_id}/qr.svg",
    summary="The join link's QR code, to print",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}},
)
def join_link_qr(request: Request, link_id: PathId, db: DbSession, user: RiderManager) -> Response:
    link, _station = path.join_link_of(db, viewer=user, link_id=link_id)
    url = _link(request, link, _station)["url"]
    return Response(qr_svg(url), media_type="image/svg+xml", headers={"Cache-Control": "private, no-cache"})


def qr_svg(text: str) -> bytes:
    """A QR code of `text` as a standalone SVG (error correction M: a printed code survives a crease)."""
    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="svg", scale=8, border=2, xmldecl=False, svgns=True)
    return buffer.getvalue()


# --- applying through a join link (no login) ---------------------------------------------------------------


class Application(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=200)
    phone: str = Field(max_length=32)
    password: str = Field(max_length=1000)
    agree: bool = Field(description="the applicant has read what their data is for (PIPL) and agrees")


@router.post(
    "/join/{code}", status_code=201, summary="Apply to a station's rider team through its join link (no login)"
)
async def apply_to_join(
    request: Request,
    code: Annotated[str, FastPath(max_length=32)],
    body: Application,
    hashes: Annotated[anyio.CapacityLimiter, Depends(login_hashes)],
) -> dict[str, Any]:
    user = await path.apply(
        request.app.state.session_factory,
        request.app.state.read_session_factory,
        hashes,
        path.applications(request.app.state),
        client=client_id(request),
        code=code,
        name=body.name,
        phone=body.phone,
        password=body.password,
        agree=body.agree,
    )
    return {"id": user.id, "username": user.username, "status": "applied"}
