"""Reference data for clients and pages: categories and areas (GeoJSON)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from riderwatch import policy
from riderwatch.deps import CurrentUser, DbSession, require
from riderwatch.models import User
from riderwatch.org import service
from riderwatch.org.schemas import CategoryCreate, CategoryRead, CategoryUpdate

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
