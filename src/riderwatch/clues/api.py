"""Clue JSON API under /api/v1 (CONTRACT.md)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import anyio
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import UploadFile

from riderwatch import policy
from riderwatch.audit.service import record
from riderwatch.clues import export, intake, service
from riderwatch.clues.present import person, present_clues
from riderwatch.clues.schemas import (
    ActionBody,
    ClueCreate,
    ClueCreated,
    ClueList,
    ClueRead,
    HandlerProposal,
    PersonRef,
    SuggestedDuplicate,
)
from riderwatch.db import unit_of_work
from riderwatch.deps import CurrentUser, DbSession, PathId, SettingsDep, StoreDep, reads_only, require, writes_on_read
from riderwatch.errors import N_, Forbidden, InvalidInput, NotFound, UnsupportedMedia
from riderwatch.i18n import request_locale, translations
from riderwatch.infra import sheets
from riderwatch.infra.clock import utcnow
from riderwatch.infra.fields import MAX_ID, UtcDateTime
from riderwatch.infra.files import FileStore
from riderwatch.infra.groupcommit import GroupCommit
from riderwatch.infra.images import CheckedPhoto, check_photo, strip_metadata
from riderwatch.models import User
from riderwatch.web.labels import GRADE_LABELS, ROLE_LABELS, STATUS_LABELS

router = APIRouter(prefix="/api/v1", tags=["clues"])
ClueId = PathId
RowIdFilter = Annotated[int | None, Query(ge=1, le=MAX_ID)]

_CLUE_FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["category", "lat", "lon", "observed_at"],
    "properties": {
        **{k: {"type": "string"} for k in ("category", "description", "observed_at", "address")},
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "lon": {"type": "number", "minimum": -180, "maximum": 180},
        "crs": {"type": "string", "enum": ["wgs84", "gcj02"]},
        "anonymous": {"type": "boolean"},
        "urgent": {"type": "boolean"},
        "alert_id": {"type": "integer", "minimum": 1},
        "photos": {"type": "array", "items": {"type": "string", "format": "binary"}, "maxItems": 6},
    },
}


def _validation_detail(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())


def _errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]


# Photos decoded at once in a server process: a decode holds a core for up to a second (a large PNG),
# so more at once would only queue on the machine's cores while holding the memory of each.
PHOTO_CHECKS_AT_ONCE = 2


async def check_photo_aside(request: Request, data: bytes, max_bytes: int, name: str) -> CheckedPhoto:
    """`check_photo` in a worker thread, a bounded number at once per process: decoding never holds the
    event loop, so other requests go on while a large photo is checked."""
    limiter: anyio.CapacityLimiter | None = getattr(request.app.state, "photo_limiter", None)
    if limiter is None:
        limiter = request.app.state.photo_limiter = anyio.CapacityLimiter(PHOTO_CHECKS_AT_ONCE)
    return await anyio.to_thread.run_sync(partial(check_photo, data, max_bytes=max_bytes, name=name), limiter=limiter)


async def read_clue_submission(
    request: Request, max_photos: int, max_bytes: int
) -> tuple[ClueCreate, list[CheckedPhoto]]:
    """Parse a JSON or multipart clue report into a validated ClueCreate and checked photos."""
    ctype = request.headers.get("content-type", "")
    photos: list[CheckedPhoto] = []
    if ctype.startswith("application/json"):
        try:
            raw: Any = await request.json()
        except ValueError as exc:
            raise InvalidInput(N_("the body is not valid JSON")) from exc
        except RecursionError as exc:  # nested deeper than the decoder goes: no clue looks like that
            raise InvalidInput(N_("the body is nested too deeply to be a clue")) from exc
        if not isinstance(raw, dict):
            raise InvalidInput(N_("the body must be a JSON object"))
    elif ctype.startswith("multipart/form-data"):
        try:
            # Room for a few photos too many, so the usual mistake gets the clear count below.
            form = await request.form(max_files=max_photos * 2, max_fields=30)
        except Exception as exc:  # Starlette raises for malformed bodies and over-limit parts
            raise InvalidInput(
                N_("malformed multipart body (at most %(max)d photos): %(reason)s"), max=max_photos, reason=str(exc)
            ) from exc
        raw = {}
        files: list[UploadFile] = []
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if key != "photos":
                    raise InvalidInput(N_("unexpected file field %(field)r; send photos as 'photos'"), field=key)
                files.append(value)
            elif key == "photos":
                if value:
                    raise InvalidInput(N_("'photos' must be files"))
            elif key in raw:
                raise InvalidInput(N_("field %(field)r given twice"), field=key)
            else:
                raw[key] = value
        if len(files) > max_photos:
            raise InvalidInput(N_("at most %(max)d photos per clue; %(n)d were sent"), max=max_photos, n=len(files))
        for i, upload in enumerate(files):
            data = await upload.read(max_bytes + 1)
            photos.append(await check_photo_aside(request, data, max_bytes, f"photo {i + 1} ({upload.filename})"))
    else:
        raise UnsupportedMedia(N_("send the clue as application/json or multipart/form-data"))
    try:
        return ClueCreate.model_validate(raw), photos
    except ValidationError as exc:
        raise InvalidInput(_validation_detail(exc), errors=_errors(exc)) from exc


@router.post(
    "/clues",
    status_code=201,
    response_model=ClueCreated,
    summary="Report a clue (JSON or multipart with photos)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": ClueCreate.model_json_schema()},
                "multipart/form-data": {"schema": _CLUE_FORM_SCHEMA},
            },
        }
    },
    responses={200: {"description": "a retry with a known Idempotency-Key: the first clue", "model": ClueCreated}},
)
@reads_only
async def create_clue(
    request: Request,
    response: Response,
    settings: SettingsDep,
    store: StoreDep,
    user: Annotated[User, Depends(require("clue.report"))],
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> ClueCreated:
    # `reads_only`: the caller was identified in a read-only transaction that has ended, and its pooled
    # connection went back, before the report waits for the writer (which needs one).
    data, photos = await read_clue_submission(request, settings.max_photos, settings.max_photo_bytes)
    if photos:
        # Content-addressed and atomic, before the clue is written: a refused clue leaves an orphan file.
        await anyio.to_thread.run_sync(_store_photos, store, photos)
    # Written with the reports that arrive meanwhile, in one transaction, each in a savepoint of its own;
    # answered once that transaction has committed (infra/groupcommit.py).
    reported = await _clue_writer(request).submit(
        intake.Submission(
            reporter=user,
            data=data,
            photos=photos,
            idempotency_key=idempotency_key,
            hourly_limit=settings.clues_per_rider_per_hour if policy.paces_clue_reports(user) else None,
            max_photos=settings.max_photos,
        )
    )
    if not reported.created:
        response.status_code = 200
    response.headers["Location"] = f"/api/v1/clues/{reported.id}"
    return ClueCreated(id=reported.id, status=reported.status)


def _store_photos(store: FileStore, photos: list[CheckedPhoto]) -> None:
    for photo in photos:
        store.put(photo.sha256, photo.data)


def _clue_writer(request: Request) -> GroupCommit[intake.Submission, intake.Reported]:
    """The process's group-commit writer for reported clues."""
    writer: GroupCommit[intake.Submission, intake.Reported] | None = getattr(request.app.state, "clue_writer", None)
    if writer is None:
        factory: sessionmaker[Session] = request.app.state.session_factory

        def write(submissions: Sequence[intake.Submission]) -> list[intake.Reported | Exception]:
            with unit_of_work(factory) as session:
                return intake.submit_clues(session, submissions)

        writer = request.app.state.clue_writer = GroupCommit(write)
    return writer


@dataclass(frozen=True)
class ListQuery:
    """The filters of the clue list, shared by the list and its export (so both count the same clues)."""

    status: list[str]
    category: str | None
    community_id: int | None
    grid_id: int | None
    overdue: bool | None
    mine: bool
    observed_from: datetime | None
    observed_to: datetime | None
    q: str | None

    def filters(self, user: User, *, limit: int, offset: int) -> service.ClueFilters:
        return service.ClueFilters(
            status=self.status,
            category=self.category,
            community_id=self.community_id,
            grid_id=self.grid_id,
            overdue=self.overdue,
            assignee_id=user.id if self.mine else None,
            observed_from=self.observed_from,
            observed_to=self.observed_to,
            query=self.q,
            limit=limit,
            offset=offset,
        )


def list_query(
    status: Annotated[list[str] | None, Query()] = None,
    category: str | None = None,
    community_id: RowIdFilter = None,
    grid_id: RowIdFilter = None,
    overdue: bool | None = None,
    mine: bool = False,
    observed_from: Annotated[
        UtcDateTime | None, Query(description="seen at or after (ISO 8601 with a timezone)")
    ] = None,
    observed_to: Annotated[UtcDateTime | None, Query(description="seen before (ISO 8601 with a timezone)")] = None,
    q: Annotated[
        str | None,
        Query(max_length=200, description="words a clue's number, description or address must all hold"),
    ] = None,
) -> ListQuery:
    from riderwatch.models.clues import STATUSES

    bad = [s for s in status or [] if s not in STATUSES]
    if bad:
        raise InvalidInput(
            N_("unknown status %(status)r; statuses are: %(choices)s"), status=bad[0], choices=", ".join(STATUSES)
        )
    return ListQuery(status or [], category, community_id, grid_id, overdue, mine, observed_from, observed_to, q)


ListQueryDep = Annotated[ListQuery, Depends(list_query)]
EXPORT_HEADERS: dict[str, str] = {
    "number": N_("Number"),
    "category": N_("Category"),
    "status": N_("Status"),
    "urgent": N_("Urgent"),
    "observed_at": N_("Seen at"),
    "reported_at": N_("Reported at"),
    "deadline_at": N_("Deadline"),
    "overdue": N_("Overdue"),
    "community": N_("Community"),
    "grid": N_("Grid"),
    "address": N_("Address"),
    "lat": N_("Latitude"),
    "lon": N_("Longitude"),
    "description": N_("Description"),
    "handled_by": N_("Handled by"),
    "outcome": N_("Outcome"),
    "value_grade": N_("Value grade"),
    "rating": N_("Reporter's rating"),
    "anonymous": N_("Anonymous"),
    "source": N_("Source"),
}


def export_labels(locale: str) -> export.ExportLabels:
    _ = translations(locale).gettext
    return export.ExportLabels(
        header={k: _(v) for k, v in EXPORT_HEADERS.items()},
        status={k: _(v) for k, v in STATUS_LABELS.items()},
        role={k: _(v) for k, v in ROLE_LABELS.items()},
        grade={k: _(v) for k, v in GRADE_LABELS.items()},
        yes=_("yes"),
        no=_("no"),
        sheet=_("Clues"),
        zh=locale == "zh",
    )


ClueReader = Annotated[User, Depends(require("clue.list"))]


@router.get("/clues", response_model=ClueList, summary="Clues the caller may see")
def list_clues(
    request: Request,
    db: DbSession,
    user: ClueReader,
    query: ListQueryDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> ClueList:
    filters = query.filters(user, limit=limit, offset=offset)
    clues, total, counts, n_overdue = service.list_clues(db, user=user, filters=filters)
    items = present_clues(db, user=user, clues=clues, locale=request_locale(request))
    return ClueList(items=items, total=total, counts=counts, overdue=n_overdue)


@router.get(
    "/clues/export",
    summary="The clues of the list (same filters) as CSV or Excel, one row per clue, a header row first",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}, sheets.XLSX_TYPE: {}}, "description": "the file"},
        422: {"description": "more clues than one file takes: narrow the filters"},
    },
)
@writes_on_read
def export_clues(
    request: Request,
    db: DbSession,
    user: ClueReader,
    query: ListQueryDep,
    format: Annotated[Literal["csv", "xlsx"], Query(description="csv (UTF-8 with BOM) or xlsx")] = "csv",
) -> Response:
    locale = request_locale(request)
    filters = query.filters(user, limit=export.MAX_ROWS + 1, offset=0)
    header, rows = export.clue_table(
        db, user=user, filters=filters, labels=export_labels(locale), timezone=request.app.state.settings.timezone
    )
    record(
        db,
        actor=user,
        action="clue.export",
        object_type="clue",
        object_id="*",
        rows=len(rows),
        format=format,
        # Times as text: the audit detail is JSON.
        filters={
            k: v.isoformat() if isinstance(v, datetime) else v
            for k, v in dataclasses.asdict(query).items()
            if v not in (None, [], False)
        },
    )
    stamp = utcnow().astimezone(ZoneInfo(request.app.state.settings.timezone)).strftime("%Y%m%d-%H%M")
    if format == "xlsx":
        data = sheets.write_xlsx(header, rows, sheet=export_labels(locale).sheet)
        media = sheets.XLSX_TYPE
    else:
        data = sheets.write_csv(header, rows)
        media = "text/csv; charset=utf-8"
    return Response(
        data,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="clues-{stamp}.{format}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/clues/{clue_id}", response_model=ClueRead, summary="One clue with its timeline")
@writes_on_read
def get_clue(clue_id: ClueId, request: Request, db: DbSession, user: CurrentUser) -> ClueRead:
    clue = service.get_clue(db, user=user, clue_id=clue_id)
    return present_clues(db, user=user, clues=[clue], locale=request_locale(request), with_timeline=True)[0]


@router.post("/clues/{clue_id}/actions/{action}", response_model=ClueRead, summary="Take a workflow action")
def act_on_clue(
    clue_id: ClueId, action: str, request: Request, db: DbSession, user: CurrentUser, body: ActionBody | None = None
) -> ClueRead:
    clue = service.take_action(db, user=user, clue_id=clue_id, action=action, body=body or ActionBody())
    return present_clues(db, user=user, clues=[clue], locale=request_locale(request), with_timeline=True)[0]


@router.get(
    "/clues/{clue_id}/duplicates",
    response_model=list[SuggestedDuplicate],
    summary="Likely duplicates nearby in space and time",
)
def suggested_duplicates(
    clue_id: ClueId, db: DbSession, settings: SettingsDep, user: Annotated[User, Depends(require("clue.triage"))]
) -> list[SuggestedDuplicate]:
    clue = service.get_clue(db, user=user, clue_id=clue_id)
    found = service.suggest_duplicates(
        db, clue=clue, radius_m=settings.duplicate_radius_m, window_hours=settings.duplicate_window_hours
    )
    return [
        SuggestedDuplicate(
            id=c.id,
            category=c.category_code,
            status=c.status,
            distance_m=round(d, 1),
            hours_apart=round(h, 2),
            description=c.description[:200],
        )
        for c, d, h in found
    ]


@router.get(
    "/clues/{clue_id}/routing",
    response_model=HandlerProposal,
    summary="Who the routing rules propose to handle the clue",
)
def routing(clue_id: ClueId, db: DbSession, user: Annotated[User, Depends(require("clue.triage"))]) -> HandlerProposal:
    clue = service.get_clue(db, user=user, clue_id=clue_id)
    proposal, grid, community = service.propose_routing(db, clue=clue)
    return HandlerProposal(
        role=proposal.role,
        assignee=person(proposal.assignee),
        grid=grid.name if grid else None,
        community=community.name if community else None,
        explanation=proposal.explanation,
    )


@router.get(
    "/clues/{clue_id}/photos/{position}",
    summary="A photo (location metadata removed)",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}}},
)
@writes_on_read
def get_photo(
    clue_id: ClueId,
    position: Annotated[int, Path(ge=0, le=100)],
    db: DbSession,
    store: StoreDep,
    user: CurrentUser,
    original: bool = False,
) -> Response:
    clue = service.get_clue(db, user=user, clue_id=clue_id)
    if not policy.may_view_photo(user, clue, original=original):
        raise Forbidden(N_("only dispatchers may download original photos"))
    photo = next((p for p in clue.photos if p.position == position), None)
    if photo is None:
        raise NotFound(N_("clue %(id)d has no photo %(position)d"), id=clue_id, position=position)
    data = store.get(photo.sha256)
    if original:
        record(db, actor=user, action="clue.photo_original", object_type="clue", object_id=clue.id, position=position)
    body = data if original else strip_metadata(data)
    return Response(
        body,
        media_type=photo.content_type,
        headers={
            "Cache-Control": "private, max-age=3600",
            "ETag": f'"{photo.sha256}"',
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/handlers", response_model=list[PersonRef], summary="People a clue can be dispatched to")
def handlers(
    db: DbSession, _user: Annotated[User, Depends(require("user.list_handlers"))], q: str | None = None
) -> list[PersonRef]:
    return [p for p in (person(u) for u in service.search_handlers(db, query=q)) if p is not None]
