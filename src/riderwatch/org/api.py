"""Reference data for clients and pages: categories and areas (GeoJSON); the district's organisations and
areas under /api/v1/org/{kind} (administrators write, the command centre reads).

No `from __future__ import annotations` here: the district's routes are made per kind by `_district_routes`,
and FastAPI reads each route's body type from its annotation, which must then be the class itself.
"""

from dataclasses import dataclass
from enum import Enum
from functools import partial
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from riderwatch import policy
from riderwatch.bodies import form_flag, upload_form, upload_openapi, uploaded_file
from riderwatch.db import in_transaction
from riderwatch.deps import CurrentUser, DbSession, PathId, reads_only, require
from riderwatch.errors import N_, InvalidInput
from riderwatch.geo.coords import to_wgs84
from riderwatch.i18n import request_locale, translations
from riderwatch.models import Category, PatrolUnit, User
from riderwatch.org import boundary_files, district, routing, service
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


UPLOAD_FORM = upload_openapi(dry_run={"type": "boolean"}, crs={"type": "string", "enum": ["wgs84", "gcj02"]})


@dataclass(frozen=True)
class _Fields:
    data: bytes
    filename: str
    dry_run: bool
    crs: str


async def _upload(request: Request) -> _Fields:
    form = await upload_form(request)
    upload = uploaded_file(form, missing=N_("send the file (GeoJSON, KML or KMZ) in the field 'file'"))
    dry_run = form_flag(form, "dry_run")
    crs = str(form.get("crs") or "wgs84").lower()
    data = await upload.read(boundary_files.MAX_FILE_BYTES + 1)
    return _Fields(data, upload.filename or "", dry_run, crs)


for _kind, (_create_body, _update_body) in ORG_BODIES.items():
    _district_routes(_kind, _create_body, _update_body)
    if district.KINDS[_kind].boundary:
        _import_route(_kind)


# --- routing rules -----------------------------------------------------------------------------------------

RoutingReader = Annotated[User, Depends(require("routing.read"))]
RoutingManager = Annotated[User, Depends(require("routing.manage"))]


class RoutingRuleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category: str | None = Field(default=None, max_length=64, description="a category code; none: any category")
    area_kind: Literal["any", "grid", "community", "zone"] = "any"
    area_code: str | None = Field(default=None, max_length=64)
    party: Literal["police", "grid_staff", "patrol", "patrol_unit", "person"]
    patrol_unit: str | None = Field(default=None, max_length=64, description="the unit's code (party patrol_unit)")
    person: str | None = Field(default=None, max_length=64, description="a username (party person)")
    position: int | None = Field(default=None, ge=0, le=100_000, description="the order: lower first")
    note: str = Field(default="", max_length=200)


class RoutingRuleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    position: int | None = Field(default=None, ge=0, le=100_000)
    active: bool | None = None


class RoutingTest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category: str = Field(max_length=64)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    crs: Literal["wgs84", "gcj02"] = "wgs84"


def _rule(db: DbSession, rule: Any) -> dict[str, Any]:
    unit = db.get(PatrolUnit, rule.patrol_unit_id) if rule.patrol_unit_id else None
    person = db.get(User, rule.person_id) if rule.person_id else None
    return {
        "id": rule.id,
        "position": rule.position,
        "category": rule.category_code,
        "area_kind": rule.area_kind,
        "area_code": rule.area_code,
        "party": rule.party,
        "patrol_unit": unit.code if unit else None,
        "person": person.username if person else None,
        "note": rule.note,
        "active": rule.active,
    }


@router.get("/routing-rules", summary="The routing rules in the order they are tried")
def list_routing_rules(db: DbSession, _user: RoutingReader, include_retired: bool = False) -> list[dict[str, Any]]:
    return [_rule(db, r) for r in routing.list_rules(db, include_retired=include_retired)]


@router.post("/routing-rules", status_code=201, summary="Add a routing rule (admin)")
def create_routing_rule(body: RoutingRuleCreate, db: DbSession, user: RoutingManager) -> dict[str, Any]:
    return _rule(db, routing.create_rule(db, actor=user, values=body.model_dump()))


@router.patch("/routing-rules/{rule_id}", summary="Move, retire or restore a routing rule (admin)")
def update_routing_rule(
    rule_id: PathId, body: RoutingRuleUpdate, db: DbSession, user: RoutingManager
) -> dict[str, Any]:
    values = body.model_dump(exclude_unset=True)
    return _rule(db, routing.update_rule(db, actor=user, rule_id=rule_id, values=values))


@router.post("/routing/test", summary="Where would a clue of this category at this point go?")
def test_routing(body: RoutingTest, request: Request, db: DbSession, _user: RoutingReader) -> dict[str, Any]:
    category = db.get(Category, body.category)
    if category is None:
        raise InvalidInput(
            N_("unknown category %(code)r: use a service_code from the Open311 service list"), code=body.category
        )
    lat, lon = to_wgs84(body.lat, body.lon, body.crs)
    at = routing.where(db, lat=lat, lon=lon)
    proposal = routing.propose(db, category=category, at=at)
    gettext = translations(request_locale(request)).gettext
    return {
        "rule": proposal.rule_id,
        "role": proposal.role,
        "assignee": (
            {
                "username": proposal.assignee.username,
                "name": proposal.assignee.display_name or proposal.assignee.username,
            }
            if proposal.assignee
            else None
        ),
        "grid": at.place.grid.code if at.place.grid else None,
        "community": at.place.community.code if at.place.community else None,
        "zones": sorted(at.zones),
        "explanation": proposal.explanation,
        "localized_explanation": proposal.translated(gettext),
    }
