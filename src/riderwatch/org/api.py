"""Reference data for clients and pages: categories and areas (GeoJSON); the district's organisations and
areas under /api/v1/org/{kind} (administrators write, the command centre reads).

No `from __future__ import annotations` here: the district's routes are made per kind by `_district_routes`,
and FastAPI reads each route's body type from its annotation, which must then be the class itself.
"""

from dataclasses import dataclass
from enum import Enum
from functools import partial
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.datastructures import UploadFile

from riderwatch import policy
from riderwatch.bodies import BodyRefused
from riderwatch.db import in_transaction
from riderwatch.deps import CurrentUser, DbSession, reads_only, require
from riderwatch.errors import N_, InvalidInput, UnsupportedMedia
from riderwatch.models import User
from riderwatch.org import boundary_files, district, service
from riderwatch.org.schemas import ORG_BODIES, CategoryCreate, CategoryRead, CategoryUpdate

router = APIRouter(prefix="/api/v1", tags=["organisation"])


@router.get("/categories", response_model=list[CategoryRead], summary="The clue categories")
def categories(db: DbSession, user: CurrentUser) -> list[Any]:
    return service.list_categories(db, include_inactive=policy.may_see_inactive_categories(user))


@router.post("/categories", response_model=CategoryRead, status_code=201, summary="Add a category (admin)")
def add_category(
    body: CategoryCreate, db: DbSession, user: Annotated[User, Depends(require("category.manage"))]
) -> Any:
    return service.create_category(db, actor=user, values=body.model_dump(exclude_none=True))


@router.patch("/categories/{code}", response_model=CategoryRead, summary="Edit a category (admin)")
def edit_category(
    code: str, body: CategoryUpdate, db: DbSession, user: Annotated[User, Depends(require("category.manage"))]
) -> Any:
    return service.update_category(db, actor=user, code=code, values=body.model_dump(exclude_none=True))


@router.get("/areas", summary="Communities, grids and pilot zones as a GeoJSON FeatureCollection")
def areas(db: DbSession, _user: CurrentUser) -> dict[str, Any]:
    return service.areas_geojson(db)


OrgReader = Annotated[User, Depends(require("org.list"))]
OrgManager = Annotated[User, Depends(require("org.manage"))]
DryRun = Annotated[bool, Query(description="check and answer as if stored, but store nothing")]


def _answer(saved: district.Saved, response: Response) -> dict[str, Any]:
    if saved.dry_run:
        response.status_code = 200
    return {**saved.shown, "dry_run": saved.dry_run, "warnings": saved.warnings}


def _district_routes(kind: str, create_body: type[Any], update_body: type[Any]) -> None:
    label = district.KINDS[kind].label

    def list_rows(db: DbSession, _user: OrgReader, include_retired: bool = False) -> list[dict[str, Any]]:
        found = district.kind_of(kind)
        return [
            district.present(db, found, row) for row in district.list_rows(db, found, include_retired=include_retired)
        ]

    def get_row(code: str, db: DbSession, _user: OrgReader) -> dict[str, Any]:
        found = district.kind_of(kind)
        return district.present(db, found, district.get_row(db, found, code))

    def create(
        body: create_body,  # type: ignore[valid-type]
        db: DbSession,
        user: OrgManager,
        response: Response,
        dry_run: DryRun = False,
    ) -> dict[str, Any]:
        values = body.model_dump()  # type: ignore[attr-defined]
        return _answer(district.create(db, actor=user, kind_name=kind, values=values, dry_run=dry_run), response)

    def edit(
        code: str,
        body: update_body,  # type: ignore[valid-type]
        db: DbSession,
        user: OrgManager,
        response: Response,
        dry_run: DryRun = False,
    ) -> dict[str, Any]:
        values = body.model_dump(exclude_unset=True)  # type: ignore[attr-defined]
        saved = district.update(db, actor=user, kind_name=kind, code=code, values=values, dry_run=dry_run)
        return _answer(saved, response)

    tags: list[str | Enum] = ["district"]
    router.add_api_route(f"/org/{kind}", list_rows, methods=["GET"], tags=tags, summary=f"The {label} list")
    router.add_api_route(f"/org/{kind}/{{code}}", get_row, methods=["GET"], tags=tags, summary=f"One {label}")
    router.add_api_route(
        f"/org/{kind}",
        create,
        methods=["POST"],
        status_code=201,
        tags=tags,
        summary=f"Add a {label} (admin); with dry_run=true only checked",
    )
    router.add_api_route(
        f"/org/{kind}/{{code}}",
        edit,
        methods=["PATCH"],
        tags=tags,
        summary=f"Edit, retire or restore a {label} (admin); with dry_run=true only checked",
    )


def _import_route(kind: str) -> None:
    label = district.KINDS[kind].label

    async def import_file(request: Request, user: OrgManager) -> dict[str, Any]:
        # `reads_only`: the caller was read in a transaction that has ended; the checks and the writes run
        # in one transaction of their own, in a worker thread (shapely is not for the event loop).
        fields = await _upload(request)
        features = await anyio.to_thread.run_sync(
            partial(boundary_files.read_file, fields.data, filename=fields.filename, crs=fields.crs)
        )
        step = partial(district.import_areas, actor=user, kind_name=kind, features=features, dry_run=fields.dry_run)
        result = await anyio.to_thread.run_sync(in_transaction, request.app.state.session_factory, step)
        return {
            "dry_run": result.dry_run,
            "created": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "warnings": result.warnings,
            "errors": [],
            "areas": result.areas,
        }

    router.add_api_route(
        f"/org/{kind}/import",
        reads_only(import_file),
        methods=["POST"],
        tags=["district"],
        summary=f"Import {label} boundaries from GeoJSON, KML or KMZ (admin); all or none; dry_run=true previews",
        responses={422: {"description": "a bad file or bad features (each named); nothing stored"}},
        openapi_extra=UPLOAD_FORM,
    )


UPLOAD_FORM: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "dry_run": {"type": "boolean"},
                        "crs": {"type": "string", "enum": ["wgs84", "gcj02"]},
                    },
                }
            }
        },
    }
}


@dataclass(frozen=True)
class _Fields:
    data: bytes
    filename: str
    dry_run: bool
    crs: str


async def _upload(request: Request) -> _Fields:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise UnsupportedMedia(N_("send the file as multipart/form-data in the field 'file'"))
    try:
        form = await request.form(max_files=1, max_fields=5)
    except BodyRefused:
        raise
    except Exception as exc:  # Starlette raises assorted errors for broken or over-limit bodies
        raise InvalidInput(N_("malformed multipart body (one file in 'file'): %(reason)s"), reason=str(exc)) from exc
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidInput(N_("send the file (GeoJSON, KML or KMZ) in the field 'file'"))
    dry_run = str(form.get("dry_run") or "false").lower()
    if dry_run not in ("true", "false", "1", "0"):
        raise InvalidInput(N_("%(name)r must be true or false"), name="dry_run")
    crs = str(form.get("crs") or "wgs84").lower()
    data = await upload.read(boundary_files.MAX_FILE_BYTES + 1)
    return _Fields(data, upload.filename or "", dry_run in ("true", "1"), crs)


for _kind, (_create_body, _update_body) in ORG_BODIES.items():
    _district_routes(_kind, _create_body, _update_body)
    if district.KINDS[_kind].boundary:
        _import_route(_kind)
