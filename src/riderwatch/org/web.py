"""The administrator's pages for the clue categories and their routing rules."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from riderwatch import policy
from riderwatch.deps import DbSession, require
from riderwatch.errors import DomainError, NotFound
from riderwatch.models import Category, User
from riderwatch.models.accounts import ROLES
from riderwatch.org import service as org_service
from riderwatch.org.schemas import CategoryCreate, CategoryUpdate
from riderwatch.web.forms import LONG, done_message, form_text, refusal, see_other
from riderwatch.web.labels import GROUP_LABELS, N_
from riderwatch.web.templating import render

router = APIRouter(include_in_schema=False)

# The roles a category can route to, in the order of the form.
HANDLER_ROLES = tuple(r for r in ROLES if r in policy.HANDLER_ROLES)
CategoryManager = Annotated[User, Depends(require("category.manage"))]

DONE_MESSAGES: dict[str, str] = {
    "category-created": N_("The category was added."),
    "category-updated": N_("The category was saved."),
}


# --- categories (the taxonomy and its routing rules) -------------------------------------------


def _category(db: Session, code: str) -> Category:
    for category in org_service.list_categories(db, include_inactive=True):
        if category.code == code:
            return category
    raise NotFound(N_("no category %(code)r"), code=code)


def _category_values(category: Category | None) -> dict[str, Any]:
    if category is None:
        return {
            "code": "",
            "name_zh": "",
            "name_en": "",
            "description_zh": "",
            "description_en": "",
            "group": "hazard",
            "handler_role": "grid_staff",
            "deadline_hours": 72,
            "urgent_deadline_hours": 4,
            "is_public": False,
            "active": True,
            "sort_order": 0,
        }
    return {key: getattr(category, key) for key in CategoryCreate.model_fields}


def _category_form(
    request: Request, values: dict[str, Any], *, is_new: bool, status: int = 200, **message: Any
) -> HTMLResponse:
    context = {
        "values": values,
        "is_new": is_new,
        "groups": list(GROUP_LABELS),
        "handler_roles": HANDLER_ROLES,
        **message,
    }
    return render(request, "admin/category_form.html", context, status=status)


# FastAPI reads each Form parameter of a dependency like a route's own.
def category_form(
    name_zh: Annotated[str, form_text()] = "",
    name_en: Annotated[str, form_text()] = "",
    description_zh: Annotated[str, form_text(LONG)] = "",
    description_en: Annotated[str, form_text(LONG)] = "",
    group: Annotated[str, form_text()] = "",
    handler_role: Annotated[str, form_text()] = "",
    deadline_hours: Annotated[str, form_text()] = "",
    urgent_deadline_hours: Annotated[str, form_text()] = "",
    is_public: Annotated[str, form_text()] = "",
    active: Annotated[str, form_text()] = "",
    sort_order: Annotated[str, form_text()] = "",
) -> dict[str, Any]:
    return {
        "name_zh": name_zh.strip(),
        "name_en": name_en.strip(),
        "description_zh": description_zh.strip(),
        "description_en": description_en.strip(),
        "group": group,
        "handler_role": handler_role,
        "deadline_hours": deadline_hours.strip(),
        "urgent_deadline_hours": urgent_deadline_hours.strip(),
        # A checkbox that is not ticked is not sent at all.
        "is_public": bool(is_public),
        "active": bool(active),
        "sort_order": sort_order.strip() or "0",
    }


CategoryFields = Annotated[dict[str, Any], Depends(category_form)]


@router.get("/admin/categories")
def categories_page(request: Request, db: DbSession, _admin: CategoryManager, done: str = "") -> HTMLResponse:
    categories = org_service.list_categories(db, include_inactive=True)
    context = {"categories": categories, **done_message(request, done, DONE_MESSAGES)}
    return render(request, "admin/categories.html", context)


@router.get("/admin/categories/new")
def new_category_page(request: Request, _admin: CategoryManager) -> HTMLResponse:
    return _category_form(request, _category_values(None), is_new=True)


@router.post("/admin/categories")
def create_category(
    request: Request,
    db: DbSession,
    admin: CategoryManager,
    fields: CategoryFields,
    code: Annotated[str, form_text()] = "",
) -> Response:
    values = {"code": code.strip(), **fields}
    try:
        body = CategoryCreate.model_validate(values)
        category = org_service.create_category(db, actor=admin, values=body.model_dump(exclude_none=True))
    except (ValidationError, DomainError) as exc:
        message, status = refusal(request, exc)
        return _category_form(request, values, is_new=True, status=status, **message)
    return see_other(f"/admin/categories?{urlencode({'done': 'category-created', 'code': category.code})}")


@router.get("/admin/categories/{code}")
def category_page(request: Request, code: str, db: DbSession, _admin: CategoryManager) -> HTMLResponse:
    return _category_form(request, _category_values(_category(db, code)), is_new=False)


@router.post("/admin/categories/{code}")
def update_category(
    request: Request, code: str, db: DbSession, admin: CategoryManager, fields: CategoryFields
) -> Response:
    category = _category(db, code)
    try:
        body = CategoryUpdate.model_validate(fields)
        org_service.update_category(db, actor=admin, code=category.code, values=body.model_dump(exclude_none=True))
    except (ValidationError, DomainError) as exc:
        message, status = refusal(request, exc)
        return _category_form(request, {"code": category.code, **fields}, is_new=False, status=status, **message)
    return see_other(f"/admin/categories?{urlencode({'done': 'category-updated', 'code': category.code})}")
