"""Reference data for clients and pages: categories, handlers, areas (GeoJSON)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from riderwatch.clues.present import person
from riderwatch.clues.schemas import PersonRef
from riderwatch.clues.service import search_handlers
from riderwatch.deps import CurrentUser, DbSession, require
from riderwatch.models import User
from riderwatch.org import service

router = APIRouter(prefix="/api/v1", tags=["organisation"])


class CategoryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    code: str
    name_zh: str
    name_en: str
    description_zh: str
    description_en: str
    group: str
    handler_role: str
    deadline_hours: int
    urgent_deadline_hours: int
    is_public: bool
    active: bool
    sort_order: int


class CategoryUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name_zh: str | None = Field(default=None, min_length=1, max_length=100)
    name_en: str | None = Field(default=None, min_length=1, max_length=100)
    description_zh: str | None = Field(default=None, max_length=2000)
    description_en: str | None = Field(default=None, max_length=2000)
    group: str | None = Field(default=None, pattern="^(crime|hazard|service)$")
    handler_role: str | None = Field(default=None, pattern="^(police|grid_staff|patrol)$")
    deadline_hours: int | None = Field(default=None, ge=1, le=24 * 90)
    urgent_deadline_hours: int | None = Field(default=None, ge=1, le=24 * 90)
    is_public: bool | None = None
    active: bool | None = None
    sort_order: int | None = Field(default=None, ge=0, le=10_000)


class CategoryCreate(CategoryUpdate):
    code: str = Field(pattern="^[a-z][a-z0-9_]{1,63}$")
    name_zh: str = Field(min_length=1, max_length=100)
    name_en: str = Field(min_length=1, max_length=100)
    group: str = Field(pattern="^(crime|hazard|service)$")
    handler_role: str = Field(pattern="^(police|grid_staff|patrol)$")


@router.get("/categories", response_model=list[CategoryRead], summary="The clue categories")
def categories(db: DbSession, user: CurrentUser) -> list[Any]:
    return service.list_categories(db, include_inactive=user.role == "admin")


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


@router.get("/handlers", response_model=list[PersonRef], summary="People a clue can be dispatched to")
def handlers(
    db: DbSession, _user: Annotated[User, Depends(require("user.list_handlers"))], q: str | None = None
) -> list[PersonRef]:
    return [p for p in (person(u) for u in search_handlers(db, query=q)) if p is not None]


@router.get("/areas", summary="Communities, grids and pilot zones as a GeoJSON FeatureCollection")
def areas(db: DbSession, _user: CurrentUser) -> dict[str, Any]:
    return service.areas_geojson(db)
