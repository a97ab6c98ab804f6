"""The page where a station manager (or an administrator) imports the rider list a platform sends.

Thin like the other pages: the upload goes to riders.imports.import_riders, the service behind
POST /api/v1/riders/import. "Check" answers what an import would do and stores nothing; "Import"
stores every row or none, and shows the new riders' one-time codes in this answer only (no redirect:
a code must not sit in an address or the browser's history), ready to print and hand out.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi import Path as FastPath
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from riderwatch import policy
from riderwatch.bodies import upload_form, uploaded_file
from riderwatch.db import in_transaction
from riderwatch.deps import (
    DbSession,
    PathId,
    check_form_token,
    client_id,
    login_hashes,
    public_base,
    reads_only,
    require,
)
from riderwatch.errors import N_, DomainError, InvalidInput
from riderwatch.infra.clock import utcnow
from riderwatch.models import User
from riderwatch.org import district
from riderwatch.riders import imports, path
from riderwatch.web.forms import done_message, form_text, formatter, labels_in, refusal, see_other
from riderwatch.web.templating import render

router = APIRouter(include_in_schema=False)

Importer = Annotated[User, Depends(require("rider.import"))]
# A rider list's columns, named in a refusal as the reader says them.
COLUMN_LABELS = {"name": N_("Name"), "phone": N_("Mobile"), "station": N_("Station"), "platform": N_("Platform")}


def _page(request: Request, *, status: int = 200, **extra: Any) -> HTMLResponse:
    context: dict[str, Any] = {
        "max_rows": imports.MAX_ROWS,
        "max_mib": imports.MAX_FILE_BYTES // (1024 * 1024),
        "problems": [],
        "result": None,
        "checked": False,
        "code_days": imports.CODE_TTL.days,
    }
    context.update(extra)
    return render(request, "riders/import.html", context, status=status, headers={"Cache-Control": "no-store"})


@router.get("/riders/import")
def import_page(request: Request, _user: Importer) -> HTMLResponse:
    return _page(request)


@router.post("/riders/import")
@reads_only
async def import_upload(
    request: Request, user: Importer, hashes: Annotated[anyio.CapacityLimiter, Depends(login_hashes)]
) -> Response:
    # `reads_only`: the caller was read in a transaction that has ended; the import keeps its own.
    _ = formatter(request)._
    try:
        form = await upload_form(request)
        upload = uploaded_file(form, missing=N_("send the file (CSV or .xlsx) in the field 'file'"))
        check = form.get("action") == "check"
        status = "active" if form.get("rider_status") == "active" else "applied"
        data = await upload.read(imports.MAX_FILE_BYTES + 1)
        result = await imports.import_riders(
            request.app.state.session_factory,
            request.app.state.read_session_factory,
            hashes,
            importer=user,
            data=data,
            filename=upload.filename or "",
            content_type=upload.content_type or "",
            dry_run=check,
            rider_status=status,
        )
    except imports.RidersRefused as exc:
        problems = [
            {
                "row": p.row,
                "column": _(COLUMN_LABELS[p.column]) if p.column in COLUMN_LABELS else p.column,
                "reason": _(p.message) % p.params if p.params else _(p.message),
            }
            for p in exc.problems
        ]
        return _page(
            request,
            status=exc.status,
            problems=problems,
            message=_("Nothing was imported: correct the rows below and upload the file again."),
            message_detail=exc.translated(_),
            message_kind="error",
        )
    except DomainError as exc:
        message = _("Nothing was imported.")
        return _page(
            request, status=exc.status, message=message, message_detail=exc.translated(_), message_kind="error"
        )
    counts = {"created": result.created, "updated": result.updated, "unchanged": result.unchanged}
    if check:
        text = _(
            "The file is correct. Importing it would add %(created)d riders, update %(updated)d "
            "and leave %(unchanged)d as they are."
        )
    else:
        text = _("Imported: %(created)d new riders, %(updated)d updated, %(unchanged)d unchanged.")
    return _page(request, result=result, checked=check, message=text % counts, message_kind="success")


# --- join links (before /riders/{rider_id}: "join-links" is no rider's number) -------------------------

Manager = Annotated[User, Depends(require("rider.manage"))]
RosterReader = Annotated[User, Depends(require("rider.roster"))]
DONE: dict[str, str] = {
    "link": N_("The join link is ready: print its QR code or send the address to the riders."),
    "withdrawn": N_("The join link was withdrawn: it admits nobody from now on."),
    "status": N_("Saved: the step is kept in the rider's path."),
}
STATUS_WORDS: dict[str, str] = {
    "applied": N_("Applied"),
    "active": N_("Active member"),
    "suspended": N_("Suspended"),
    "left": N_("Left the team"),
}


def _links_page(request: Request, db: Session, user: User, *, status: int = 200, **extra: Any) -> HTMLResponse:
    links = [
        {
            "link": link,
            "station": station,
            "url": f"{public_base(request)}/join/{link.code}",
            "open": link.withdrawn_at is None and link.expires_at > utcnow() and link.uses < link.max_uses,
        }
        for link, station in path.join_links(db, viewer=user)
    ]
    stations = [s for s in district.list_rows(db, district.KINDS["stations"]) if policy.may_manage_station(user, s.id)]
    context = {"links": links, "stations": stations, "values": {"days": 14, "max_uses": 100}, **extra}
    return render(request, "riders/join_links.html", context, status=status)


@router.get("/riders/join-links")
def join_links_page(request: Request, db: DbSession, user: Manager, done: str = "") -> HTMLResponse:
    return _links_page(request, db, user, **done_message(request, done, DONE))


@router.post("/riders/join-links")
def create_join_link(
    request: Request,
    db: DbSession,
    user: Manager,
    station: Annotated[str, form_text()] = "",
    days: Annotated[str, form_text()] = "14",
    max_uses: Annotated[str, form_text()] = "100",
) -> Response:
    try:
        try:
            day_count, uses = int(days), int(max_uses)
        except ValueError as exc:
            raise InvalidInput(N_("days and uses are whole numbers")) from exc
        path.create_join_link(db, actor=user, station_code=station, days=day_count, max_uses=uses)
    except DomainError as exc:
        message, status = refusal(request, exc)
        return _links_page(request, db, user, status=status, **message)
    return see_other("/riders/join-links?done=link")


@router.post("/riders/join-links/{link_id}/withdraw")
def withdraw_join_link(request: Request, link_id: PathId, db: DbSession, user: Manager) -> Response:
    path.withdraw_join_link(db, actor=user, link_id=link_id)
    return see_other("/riders/join-links?done=withdrawn")


# --- the roster and a rider's path ----------------------------------------------------------------------


@router.get("/riders")
def roster_page(
    request: Request,
    db: DbSession,
    user: RosterReader,
    status: Annotated[str, Query(max_length=16)] = "",
    q: Annotated[str, Query(max_length=100)] = "",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> HTMLResponse:
    if status and status not in STATUS_WORDS:
        raise InvalidInput(
            N_("unknown rider status %(status)r; statuses are: %(choices)s"),
            status=status,
            choices=", ".join(STATUS_WORDS),
        )
    rows, total = path.roster(db, viewer=user, status=status or None, query=q or None, limit=100, offset=offset)
    context = {
        "rows": rows,
        "total": total,
        "status": status,
        "q": q,
        "offset": offset,
        "status_words": labels_in(request, STATUS_WORDS),
        "may_manage": policy.has_permission(user, "rider.manage"),
        "may_import": policy.has_permission(user, "rider.import"),
    }
    return render(request, "riders/roster.html", context)


def _rider_page(
    request: Request, db: Session, user: User, rider_id: int, *, status: int = 200, **extra: Any
) -> HTMLResponse:
    path.rider_of(db, viewer=user, rider_id=rider_id)
    [row], _total = path.roster(db, viewer=user, rider_id=rider_id)
    context = {
        "row": row,
        "steps": path.path_of(db, rider_id=rider_id),
        "status_words": labels_in(request, STATUS_WORDS),
        "next_steps": path.STEPS.get(row.status, ()) if policy.has_permission(user, "rider.manage") else (),
        **extra,
    }
    return render(request, "riders/rider.html", context, status=status)


@router.get("/riders/{rider_id}")
def rider_page(request: Request, rider_id: PathId, db: DbSession, user: RosterReader, done: str = "") -> HTMLResponse:
    return _rider_page(request, db, user, rider_id, **done_message(request, done, DONE))


@router.post("/riders/{rider_id}/status")
def change_status(
    request: Request,
    rider_id: PathId,
    db: DbSession,
    user: Manager,
    status: Annotated[str, form_text()] = "",
    reason: Annotated[str, form_text(2000)] = "",
) -> Response:
    path.rider_of(db, viewer=user, rider_id=rider_id)
    try:
        if status not in STATUS_WORDS:
            raise InvalidInput(N_("choose the rider's new standing"))
        path.change_status(db, actor=user, rider_id=rider_id, status=status, reason=reason)
    except DomainError as exc:
        message, code = refusal(request, exc)
        return _rider_page(request, db, user, rider_id, status=code, reason=reason, **message)
    return see_other(f"/riders/{rider_id}?done=status")


# --- applying through a join link (no login) --------------------------------------------------------------


def _join_page(request: Request, code: str, *, status: int = 200, **extra: Any) -> HTMLResponse:
    factory = request.app.state.read_session_factory
    try:
        _link, station = in_transaction(factory, partial(path.open_link, code=code))
        context: dict[str, Any] = {"station": station.name, "closed": "", "values": {}, **extra}
    except DomainError as exc:
        context = {"station": "", "closed": exc.translated(formatter(request)._), "values": {}, **extra}
        status = exc.status if status == 200 else status
    context["code"] = code
    return render(request, "riders/join.html", context, status=status)


@router.get("/join/{code}")
def join_page(request: Request, code: Annotated[str, FastPath(max_length=32)]) -> HTMLResponse:
    return _join_page(request, code)


@router.post("/join/{code}")
async def join(
    request: Request,
    code: Annotated[str, FastPath(max_length=32)],
    hashes: Annotated[anyio.CapacityLimiter, Depends(login_hashes)],
    name: Annotated[str, Form(max_length=200)] = "",
    phone: Annotated[str, Form(max_length=32)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    password_again: Annotated[str, Form(max_length=1000)] = "",
    agree: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    _ = formatter(request)._
    await check_form_token(request)
    values = {"name": name, "phone": phone}
    if password != password_again:
        message = {
            "message": _("Please correct the form."),
            "message_detail": _("The two passwords differ."),
            "message_kind": "error",
        }
        page: Response = await run_in_threadpool(_join_page, request, code, status=422, values=values, **message)
        return page
    try:
        user = await path.apply(
            request.app.state.session_factory,
            request.app.state.read_session_factory,
            hashes,
            path.applications(request.app.state),
            client=client_id(request),
            code=code,
            name=name,
            phone=phone,
            password=password,
            agree=bool(agree),
        )
    except DomainError as exc:
        refused, status = refusal(request, exc)
        page = await run_in_threadpool(_join_page, request, code, status=status, values=values, **refused)
        return page
    return render(request, "riders/joined.html", {"username": user.username})
