"""The administrator's pages for the clue categories and their routing rules, and for the district: its
organisations and areas, added by form, drawn on the map or imported from a GIS file, edited and retired."""

from __future__ import annotations

import json
from functools import partial
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from riderwatch import policy
from riderwatch.bodies import upload_form, uploaded_file
from riderwatch.deps import DbSession, PathId, require
from riderwatch.errors import DomainError, InvalidInput, NotFound
from riderwatch.models import Category, User
from riderwatch.models.accounts import ROLES
from riderwatch.org import boundary_files, district, routing
from riderwatch.org import service as org_service
from riderwatch.org.schemas import ORG_BODIES, CategoryCreate, CategoryUpdate
from riderwatch.web.forms import LONG, done_message, form_text, formatter, labels_in, refusal, see_other
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


# --- the district (organisations and areas) --------------------------------------------------------

DistrictManager = Annotated[User, Depends(require("org.manage"))]
DISTRICT_DONE: dict[str, str] = {
    "created": N_("Added."),
    "saved": N_("Saved."),
    "retired": N_("Retired: kept for history, no longer offered for new clues, links or tasks."),
    "restored": N_("Restored: in use again."),
}
AREA_KINDS = tuple(k for k, kind in district.KINDS.items() if kind.boundary)
# The kinds added with a form of their own (areas come from a drawing or a file as well).
KIND_LABELS: dict[str, str] = {
    "jurisdictions": N_("Jurisdictions"),
    "communities": N_("Communities"),
    "grids": N_("Grids"),
    "zones": N_("Zones"),
    "stations": N_("Delivery stations"),
    "platforms": N_("Platforms"),
    "patrol-units": N_("Patrol units"),
}
STAGE_LABELS: dict[str, str] = {"planned": N_("Planned"), "pilot": N_("Pilot"), "rolled_out": N_("Rolled out")}
ZONE_KIND_LABELS: dict[str, str] = {
    "commercial": N_("Commercial district"),
    "residential": N_("Residential area"),
    "school": N_("School area"),
    "industrial": N_("Industrial park"),
    "transport": N_("Transport hub"),
    "other": N_("Other"),
}


def _feature(geometry: dict[str, Any], kind: str, code: str, name: str) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": {"kind": kind, "code": code, "name": name}}


def _area_features(rows: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The live areas (each as the API shows it, by kind) as map features."""
    return [
        _feature(row["boundary"], name, row["code"], row["name"])
        for name in AREA_KINDS
        for row in rows.get(name, [])
        if row.get("boundary") and not row["retired"]
    ]


def _live_rows(db: Session, kind: str) -> list[dict[str, Any]]:
    found = district.KINDS[kind]
    return [district.present(db, found, row) for row in district.list_rows(db, found)]


def _district_page(request: Request, db: Session, *, status: int = 200, **extra: Any) -> HTMLResponse:
    rows = {
        name: [district.present(db, kind, row) for row in district.list_rows(db, kind, include_retired=True)]
        for name, kind in district.KINDS.items()
    }
    features = _area_features(rows)
    context: dict[str, Any] = {
        "rows": rows,
        "names": {kind: {r["code"]: r["name"] for r in rows[kind]} for kind in ("communities", "platforms")},
        "kinds": list(district.KINDS),
        "area_kinds": AREA_KINDS,
        "kind_labels": labels_in(request, KIND_LABELS),
        "stage_labels": labels_in(request, STAGE_LABELS),
        "zone_kind_labels": labels_in(request, ZONE_KIND_LABELS),
        "areas": {"type": "FeatureCollection", "features": features},
        "result": None,
        "problems": [],
        "values": {},
        "max_mib": boundary_files.MAX_FILE_BYTES // (1024 * 1024),
        # What the import form held, kept after a check or a refusal (re-choosing the file is enough).
        "import_kind": "grids",
        "import_crs": "wgs84",
    }
    context.update(extra)
    return render(request, "admin/district.html", context, status=status)


@router.get("/admin/district")
def district_page(request: Request, db: DbSession, _admin: DistrictManager, done: str = "") -> HTMLResponse:
    return _district_page(request, db, **done_message(request, done, DISTRICT_DONE))


@router.post("/admin/district/import")
async def import_areas(request: Request, db: DbSession, admin: DistrictManager) -> Response:
    _ = formatter(request)._
    kept: dict[str, str] = {}
    try:
        form = await upload_form(request)
        kind = str(form.get("kind") or "")
        kept = {"import_kind": kind if kind in AREA_KINDS else "grids", "import_crs": str(form.get("crs") or "wgs84")}
        if kind not in AREA_KINDS:
            raise InvalidInput(N_("choose what the file holds: %(choices)s"), choices=", ".join(AREA_KINDS))
        upload = uploaded_file(form, missing=N_("send the file (GeoJSON, KML or KMZ) in the field 'file'"))
        check = form.get("action") == "check"
        data = await upload.read(boundary_files.MAX_FILE_BYTES + 1)
        features = await run_in_threadpool(
            boundary_files.read_file, data, filename=upload.filename or "", crs=str(form.get("crs") or "wgs84")
        )
        result = await run_in_threadpool(
            district.import_areas, db, actor=admin, kind_name=kind, features=features, dry_run=check
        )
    except district.AreasRefused as exc:
        problems = [{"feature": p.feature, "code": p.code, "reason": p.translated(_)} for p in exc.problems]
        message = _("Nothing was imported: correct the areas below and upload the file again.")
        return await run_in_threadpool(
            _district_page,
            request,
            db,
            status=exc.status,
            problems=problems,
            message=message,
            message_detail=exc.translated(_),
            message_kind="error",
            **kept,
        )
    except DomainError as exc:
        message = _("Nothing was imported.")
        return await run_in_threadpool(
            _district_page,
            request,
            db,
            status=exc.status,
            message=message,
            message_detail=exc.translated(_),
            message_kind="error",
            **kept,
        )
    counts = {"created": result.created, "updated": result.updated, "unchanged": result.unchanged}
    if result.dry_run:
        text = _(
            "The file is correct: %(created)d areas would be added, %(updated)d changed, %(unchanged)d left as "
            "they are. Check them on the map, then import."
        )
    else:
        text = _("Imported: %(created)d areas added, %(updated)d changed, %(unchanged)d unchanged.")
    preview = {
        "type": "FeatureCollection",
        "features": [_feature(a["boundary"], "preview", a["code"], a["name"]) for a in result.areas],
    }
    return await run_in_threadpool(
        partial(
            _district_page, request, db, result=result, preview=preview, message=text % counts, message_kind="success"
        ),
        **kept,
    )


def _org_form(
    name: Annotated[str, form_text()] = "",
    name_en: Annotated[str, form_text()] = "",
    boundary: Annotated[str, form_text(512 * 1024)] = "",
    community: Annotated[str, form_text()] = "",
    platform: Annotated[str, form_text()] = "",
    jurisdiction: Annotated[str, form_text()] = "",
    zone_kind: Annotated[str, form_text()] = "",
    rollout_stage: Annotated[str, form_text()] = "",
    pilot_on: Annotated[str, form_text()] = "",
    rolled_out_on: Annotated[str, form_text()] = "",
    lat: Annotated[str, form_text()] = "",
    lon: Annotated[str, form_text()] = "",
) -> dict[str, Any]:
    """The fields the forms send, blanks left out (a blank is "not given", as in a PATCH)."""
    values: dict[str, Any] = {
        "name": name.strip(),
        "name_en": name_en.strip(),
        "community": community.strip(),
        "platform": platform.strip(),
        "jurisdiction": jurisdiction.strip(),
        "kind": zone_kind.strip(),
        "rollout_stage": rollout_stage.strip(),
        "pilot_on": pilot_on.strip(),
        "rolled_out_on": rolled_out_on.strip(),
        "lat": lat.strip(),
        "lon": lon.strip(),
    }
    found = {k: v for k, v in values.items() if v}
    if "name_en" not in found and name_en == "" and name:
        found["name_en"] = ""
    if boundary.strip():
        try:
            found["boundary"] = json.loads(boundary)
        except ValueError as exc:
            raise InvalidInput(N_("the boundary must be a GeoJSON Polygon")) from exc
    return found


OrgFields = Annotated[dict[str, Any], Depends(_org_form)]


def _checked(kind: str, values: dict[str, Any], *, new: bool) -> dict[str, Any]:
    create_body, update_body = ORG_BODIES[kind]
    fields = set((create_body if new else update_body).model_fields)
    body = (create_body if new else update_body).model_validate({k: v for k, v in values.items() if k in fields})
    return body.model_dump(exclude_unset=not new)


@router.post("/admin/district/{kind}")
def add_org(
    request: Request,
    kind: str,
    db: DbSession,
    admin: DistrictManager,
    fields: OrgFields,
    code: Annotated[str, form_text()] = "",
) -> Response:
    district.kind_of(kind)
    values = {"code": code.strip(), **fields}
    try:
        district.create(db, actor=admin, kind_name=kind, values=_checked(kind, values, new=True))
    except (ValidationError, DomainError) as exc:
        message, status = refusal(request, exc)
        return _district_page(request, db, status=status, values={kind: values}, open_kind=kind, **message)
    return see_other(f"/admin/district/{kind}/{quote(values['code'])}?done=created")


def _org_page(
    request: Request,
    db: Session,
    kind: str,
    code: str,
    *,
    status: int = 200,
    values: dict[str, Any] | None = None,
    **extra: Any,
) -> HTMLResponse:
    found = district.kind_of(kind)
    shown = district.present(db, found, district.get_row(db, found, code))
    context: dict[str, Any] = {
        "kind": kind,
        "kind_label": formatter(request)._(KIND_LABELS[kind]),
        "row": shown,
        "values": {**shown, **(values or {})},
        "has_boundary": found.boundary,
        "communities": district.list_rows(db, district.KINDS["communities"]),
        "platforms": district.list_rows(db, district.KINDS["platforms"]),
        "stage_labels": labels_in(request, STAGE_LABELS),
        "zone_kind_labels": labels_in(request, ZONE_KIND_LABELS),
        # The district around it, for orientation, and the area itself highlighted.
        "area": {
            "type": "FeatureCollection",
            "features": [
                *(_area_features({k: _live_rows(db, k) for k in AREA_KINDS}) if found.boundary else []),
                *([_feature(shown["boundary"], "preview", code, shown["name"])] if shown.get("boundary") else []),
            ],
        },
        **extra,
    }
    return render(request, "admin/district_item.html", context, status=status)


@router.get("/admin/district/{kind}/{code}")
def org_page(
    request: Request, kind: str, code: str, db: DbSession, _admin: DistrictManager, done: str = ""
) -> HTMLResponse:
    return _org_page(request, db, kind, code, **done_message(request, done, DISTRICT_DONE))


@router.post("/admin/district/{kind}/{code}")
def edit_org(
    request: Request, kind: str, code: str, db: DbSession, admin: DistrictManager, fields: OrgFields
) -> Response:
    district.get_row(db, district.kind_of(kind), code)  # 404 before anything else
    try:
        district.update(db, actor=admin, kind_name=kind, code=code, values=_checked(kind, fields, new=False))
    except (ValidationError, DomainError) as exc:
        message, status = refusal(request, exc)
        return _org_page(request, db, kind, code, status=status, values=fields, **message)
    return see_other(f"/admin/district/{kind}/{quote(code)}?done=saved")


@router.post("/admin/district/{kind}/{code}/retire")
def retire_org(request: Request, kind: str, code: str, db: DbSession, admin: DistrictManager) -> Response:
    return _set_retired(request, db, admin, kind, code, retired=True)


@router.post("/admin/district/{kind}/{code}/restore")
def restore_org(request: Request, kind: str, code: str, db: DbSession, admin: DistrictManager) -> Response:
    return _set_retired(request, db, admin, kind, code, retired=False)


def _set_retired(request: Request, db: Session, admin: User, kind: str, code: str, *, retired: bool) -> Response:
    district.get_row(db, district.kind_of(kind), code)
    try:
        district.update(db, actor=admin, kind_name=kind, code=code, values={"retired": retired})
    except DomainError as exc:
        message, status = refusal(request, exc)
        return _org_page(request, db, kind, code, status=status, **message)
    return see_other(f"/admin/district/{kind}/{quote(code)}?done={'retired' if retired else 'restored'}")


# --- routing rules ----------------------------------------------------------------------------------------

RoutingReader = Annotated[User, Depends(require("routing.read"))]
RoutingManager = Annotated[User, Depends(require("routing.manage"))]
PARTY_LABELS: dict[str, str] = {
    "police": N_("the place's community police"),
    "grid_staff": N_("the place's grid staff"),
    "patrol": N_("any patrol member"),
    "patrol_unit": N_("a patrol unit"),
    "person": N_("a named person"),
}
AREA_LABELS: dict[str, str] = {
    "any": N_("anywhere"),
    "grid": N_("in the grid"),
    "community": N_("in the community"),
    "zone": N_("in the zone"),
}
ROUTING_DONE: dict[str, str] = {
    "added": N_("The rule was added."),
    "moved": N_("The order was changed."),
    "retired": N_("The rule no longer applies (it is kept: clues name it)."),
    "restored": N_("The rule applies again."),
}


def _routing_page(
    request: Request,
    db: Session,
    user: User,
    *,
    status: int = 200,
    test: dict[str, Any] | None = None,
    **extra: Any,
) -> HTMLResponse:
    rules = routing.list_rules(db, include_retired=True)
    names: dict[str, dict[str, str]] = {
        kind: {r.code: r.name for r in district.list_rows(db, district.KINDS[plural], include_retired=True)}
        for kind, plural in (("grid", "grids"), ("community", "communities"), ("zone", "zones"))
    }
    units = {u.id: u for u in district.list_rows(db, district.KINDS["patrol-units"], include_retired=True)}
    people = {u.id: u for u in db.scalars(select(User).where(User.id.in_([r.person_id for r in rules if r.person_id])))}
    categories = org_service.list_categories(db, include_inactive=True)
    zh = formatter(request).locale == "zh"
    context: dict[str, Any] = {
        "rules": [
            {
                "rule": r,
                "area": names.get(r.area_kind, {}).get(r.area_code or "", r.area_code or ""),
                "unit": units[r.patrol_unit_id].name if r.patrol_unit_id in units else "",
                "person": (people[r.person_id].display_name or people[r.person_id].username)
                if r.person_id in people
                else "",
            }
            for r in rules
        ],
        "category_names": {c.code: (c.name_zh if zh else c.name_en) for c in categories},
        "categories": [c for c in categories if c.active],
        "areas": {kind: sorted(found.items(), key=lambda kv: kv[1]) for kind, found in names.items()},
        "units": [u for u in units.values() if u.retired_at is None],
        "handlers": list(
            db.scalars(
                select(User)
                .where(User.is_active.is_(True), User.role.in_(("police", "grid_staff", "patrol")))
                .order_by(User.role, User.display_name)
            )
        ),
        "party_labels": labels_in(request, PARTY_LABELS),
        "area_labels": labels_in(request, AREA_LABELS),
        "may_manage": policy.has_permission(user, "routing.manage"),
        "test": test,
        "map_areas": {
            "type": "FeatureCollection",
            "features": _area_features({k: _live_rows(db, k) for k in AREA_KINDS}),
        },
        **extra,
    }
    return render(request, "admin/routing.html", context, status=status)


def _point(lat: str, lon: str) -> tuple[float, float]:
    """A place typed (or tapped) into the tester: numbers within WGS-84, or the reason they are not."""
    try:
        point = (float(lat), float(lon))
    except ValueError as exc:
        raise InvalidInput(N_("latitude and longitude are numbers, e.g. 25.43 and 119.01; tap the map")) from exc
    if not (-90 <= point[0] <= 90 and -180 <= point[1] <= 180):
        raise InvalidInput(N_("latitude is -90 to 90 and longitude -180 to 180"))
    return point


@router.get("/admin/routing")
def routing_page(
    request: Request,
    db: DbSession,
    user: RoutingReader,
    done: str = "",
    category: Annotated[str, Query(max_length=64)] = "",
    lat: Annotated[str, Query(max_length=32)] = "",
    lon: Annotated[str, Query(max_length=32)] = "",
) -> HTMLResponse:
    test = None
    if category and lat and lon:
        found = db.get(Category, category)
        try:
            if found is None:
                raise InvalidInput(
                    N_("unknown category %(code)r: use a service_code from the Open311 service list"), code=category
                )
            point = _point(lat, lon)
        except DomainError as exc:
            message, status = refusal(request, exc)
            return _routing_page(request, db, user, status=status, **message)
        at = routing.where(db, lat=point[0], lon=point[1])
        proposal = routing.propose(db, category=found, at=at)
        test = {
            "category": category,
            "lat": point[0],
            "lon": point[1],
            "proposal": proposal,
            "reason": proposal.translated(formatter(request)._),
            "grid": at.place.grid.name if at.place.grid else "",
            "community": at.place.community.name if at.place.community else "",
        }
    return _routing_page(request, db, user, test=test, **done_message(request, done, ROUTING_DONE))


@router.post("/admin/routing")
def add_routing_rule(
    request: Request,
    db: DbSession,
    admin: RoutingManager,
    category: Annotated[str, form_text()] = "",
    area: Annotated[str, form_text()] = "any:",
    party: Annotated[str, form_text()] = "",
    patrol_unit: Annotated[str, form_text()] = "",
    person: Annotated[str, form_text()] = "",
    note: Annotated[str, form_text()] = "",
) -> Response:
    kind, _, code = area.partition(":")
    values = {
        "category": category or None,
        "area_kind": kind or "any",
        "area_code": code or None,
        "party": party,
        "patrol_unit": patrol_unit or None,
        "person": person or None,
        "note": note,
    }
    try:
        routing.create_rule(db, actor=admin, values=values)
    except DomainError as exc:
        message, status = refusal(request, exc)
        return _routing_page(request, db, admin, status=status, **message)
    return see_other("/admin/routing?done=added")


@router.post("/admin/routing/{rule_id}/move")
def move_routing_rule(
    request: Request,
    rule_id: PathId,
    db: DbSession,
    admin: RoutingManager,
    direction: Annotated[str, form_text()] = "up",
) -> Response:
    routing.move_rule(db, actor=admin, rule_id=rule_id, up=direction == "up")
    return see_other("/admin/routing?done=moved")


@router.post("/admin/routing/{rule_id}/active")
def set_routing_rule_active(
    request: Request,
    rule_id: PathId,
    db: DbSession,
    admin: RoutingManager,
    active: Annotated[str, form_text()] = "",
) -> Response:
    routing.update_rule(db, actor=admin, rule_id=rule_id, values={"active": active == "yes"})
    return see_other(f"/admin/routing?done={'restored' if active == 'yes' else 'retired'}")
