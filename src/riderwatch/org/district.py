"""The district as an administrator keeps it: creating, editing and retiring its organisations and areas.

Seven kinds, named as in `/api/v1/org/{kind}`: jurisdictions, communities, grids, zones, stations,
platforms and patrol units. A code is the key (the import files and the API name rows by it) and never
changes. A boundary is checked before anything is stored: a GeoJSON Polygon in WGS-84 whose rings are
closed and do not cross themselves, inside the jurisdiction's boundary where it has one, a grid inside
its community; overlaps between grids (or between communities) are reported as warnings, not refused,
because street offices' files often overlap by a few metres. Retiring keeps the row: old clues keep
their place names, but a retired area takes no new clue (`Locator` leaves it out), link or task.
Every change is audited. `dry_run` checks and answers as if stored, and stores nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import shapely
from pydantic import ValidationError
from shapely.geometry import Polygon, shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.audit.service import record
from riderwatch.db import atomic
from riderwatch.errors import N_, Conflict, DomainError, InvalidInput, NotFound, Term
from riderwatch.geo.areas import bbox
from riderwatch.geo.coords import EARTH_RADIUS_M
from riderwatch.infra.clock import utcnow
from riderwatch.models import Community, Grid, Jurisdiction, PatrolUnit, Platform, Station, User, Zone
from riderwatch.org.boundary_files import FeatureIn
from riderwatch.org.schemas import ORG_BODIES

MAX_POSITIONS = 20_000  # a street office's community outline has hundreds; more is a file mistake
# A grid may stray this far outside its community, an area this far outside the jurisdiction (drawn
# and surveyed outlines rarely meet exactly): about 5 m.
EDGE_TOLERANCE_DEG = 0.00005
# Overlaps smaller than this are drawing noise, not worth a warning.
OVERLAP_NOTICE_M2 = 50.0


@dataclass(frozen=True)
class Kind:
    """One kind of organisation or area: its table, its audit name, whether it has a boundary."""

    name: str  # as in the URL: "patrol-units"
    model: Any
    object_type: str  # as in the audit log: "patrol_unit"
    label: Term  # for messages: "patrol unit"
    boundary: bool = False
    fields: tuple[str, ...] = ("name", "name_en")


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("jurisdictions", Jurisdiction, "jurisdiction", Term(N_("jurisdiction")), boundary=True),
        Kind("communities", Community, "community", Term(N_("community")), boundary=True),
        Kind("grids", Grid, "grid", Term(N_("grid")), boundary=True),
        Kind(
            "zones",
            Zone,
            "zone",
            Term(N_("zone")),
            boundary=True,
            fields=("name", "name_en", "kind", "rollout_stage", "pilot_on", "rolled_out_on"),
        ),
        Kind("stations", Station, "station", Term(N_("station")), fields=("name", "name_en", "lat", "lon")),
        Kind("platforms", Platform, "platform", Term(N_("platform"))),
        Kind("patrol-units", PatrolUnit, "patrol_unit", Term(N_("patrol unit"))),
    )
}


@dataclass(frozen=True)
class Saved:
    """A row as created or changed (or as it would be: `dry_run`), as the API shows it, with warnings."""

    shown: dict[str, Any]
    created: bool
    dry_run: bool
    warnings: list[str] = field(default_factory=list)
    changed: bool = True


class _Preview(Exception):
    """Raised at the end of a dry run, so that the savepoint is rolled back and nothing stays stored."""

    def __init__(self, saved: Any) -> None:
        super().__init__("dry run")
        self.saved = saved


def _finish(
    session: Session,
    kind: Kind,
    row: Any,
    *,
    created: bool,
    dry_run: bool,
    warnings: list[str],
    changed: bool = True,
) -> Saved:
    saved = Saved(present(session, kind, row), created, dry_run, warnings, changed)
    if dry_run:
        raise _Preview(saved)
    return saved


def kind_of(name: str) -> Kind:
    kind = KINDS.get(name)
    if kind is None:
        raise NotFound(N_("no kind %(kind)r; kinds are: %(choices)s"), kind=name, choices=", ".join(KINDS))
    return kind


# --- Boundaries -------------------------------------------------------------------------------------


def _position(pos: Any, ring: int, index: int) -> tuple[float, float]:
    if not (isinstance(pos, list | tuple) and len(pos) in (2, 3)):
        raise InvalidInput(
            N_("the boundary's ring %(ring)d, position %(index)d is not [longitude, latitude]"), ring=ring, index=index
        )
    lon, lat = pos[0], pos[1]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lon, lat)):
        raise InvalidInput(
            N_("the boundary's ring %(ring)d, position %(index)d holds something other than numbers"),
            ring=ring,
            index=index,
        )
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise InvalidInput(
            N_("the boundary's ring %(ring)d, position %(index)d (%(place)s) is not a WGS-84 longitude and latitude"),
            ring=ring,
            index=index,
            place=f"{lon}, {lat}",
        )
    return float(lon), float(lat)


def check_polygon(boundary: Any) -> Polygon:
    """A GeoJSON Polygon (or a Feature of one) as a valid shapely polygon, or a refusal saying what is wrong."""
    if isinstance(boundary, dict) and boundary.get("type") == "Feature":
        boundary = boundary.get("geometry")
    if not isinstance(boundary, dict):
        raise InvalidInput(N_("the boundary must be a GeoJSON Polygon"))
    if boundary.get("type") != "Polygon":
        raise InvalidInput(
            N_("the boundary must be a GeoJSON Polygon, not %(type)s (split a multi-part area into several)"),
            type=str(boundary.get("type")),
        )
    rings = boundary.get("coordinates")
    if not isinstance(rings, list) or not rings:
        raise InvalidInput(N_("the boundary has no coordinates"))
    checked: list[list[tuple[float, float]]] = []
    total = 0
    for r, ring in enumerate(rings, start=1):
        if not isinstance(ring, list) or len(ring) < 4:
            raise InvalidInput(N_("the boundary's ring %(ring)d needs at least 4 positions"), ring=r)
        total += len(ring)
        if total > MAX_POSITIONS:
            raise InvalidInput(N_("the boundary has more than %(n)d positions; simplify it"), n=MAX_POSITIONS)
        points = [_position(p, r, i) for i, p in enumerate(ring, start=1)]
        if points[0] != points[-1]:
            raise InvalidInput(
                N_("the boundary's ring %(ring)d is not closed: its last position must repeat its first"), ring=r
            )
        checked.append(points)
    polygon = Polygon(checked[0], checked[1:])
    if Polygon(checked[0]).convex_hull.area == 0:  # all on one line (a bow tie has area: it crosses itself)
        raise InvalidInput(N_("the boundary encloses no area"))
    if not polygon.is_valid:
        reason = shapely.is_valid_reason(polygon)
        place = reason[reason.find("[") + 1 : reason.find("]")] if "[" in reason else ""
        where = ", ".join(f"{float(v):.6f}" for v in place.split()[:2]) if place else "?"
        if reason.startswith(("Self-intersection", "Ring Self-intersection")):
            raise InvalidInput(N_("the boundary crosses itself near %(place)s"), place=where)
        raise InvalidInput(
            N_("the boundary is not a valid polygon near %(place)s (%(reason)s)"), place=where, reason=reason
        )
    return polygon


def _square_metres(geom: BaseGeometry) -> float:
    """An area in m², good enough at city scale (degrees scaled at the geometry's latitude)."""
    if geom.is_empty:
        return 0.0
    lat = geom.centroid.y
    metres_per_degree = EARTH_RADIUS_M * math.pi / 180
    return float(geom.area * metres_per_degree * metres_per_degree * math.cos(math.radians(lat)))


def _normalised(polygon: Polygon) -> dict[str, Any]:
    geojson: dict[str, Any] = json.loads(json.dumps(shapely.geometry.mapping(polygon)))
    return {"type": "Polygon", "coordinates": geojson["coordinates"]}


def _inside(outer: dict[str, Any], inner: Polygon) -> bool:
    return bool(shape(outer).buffer(EDGE_TOLERANCE_DEG).covers(inner))


def _overlaps(session: Session, model: Any, polygon: Polygon, *, exclude_id: int | None) -> list[str]:
    found = []
    for row in session.scalars(select(model).where(model.retired_at.is_(None)).order_by(model.code)):
        if row.id == exclude_id:
            continue
        shared = shape(row.boundary).intersection(polygon)
        m2 = _square_metres(shared)
        if m2 >= OVERLAP_NOTICE_M2:
            found.append(f"{row.name} ({row.code}): {m2:,.0f} m²")
    return found


# --- Reading ----------------------------------------------------------------------------------------


def _by_code(session: Session, kind: Kind, code: str) -> Any:
    row = session.scalar(select(kind.model).where(kind.model.code == code))
    if row is None:
        raise NotFound(N_("no %(kind)s with the code %(code)r"), kind=kind.label, code=code)
    return row


def _live(session: Session, model: Any, code: str, label: Term) -> Any:
    row = session.scalar(select(model).where(model.code == code))
    if row is None:
        raise InvalidInput(N_("no %(kind)s with the code %(code)r"), kind=label, code=code)
    if row.retired_at is not None:
        raise InvalidInput(N_("the %(kind)s %(code)r is retired"), kind=label, code=code)
    return row


def list_rows(session: Session, kind: Kind, *, include_retired: bool = False) -> list[Any]:
    stmt = select(kind.model).order_by(kind.model.code)
    if not include_retired:
        stmt = stmt.where(kind.model.retired_at.is_(None))
    return list(session.scalars(stmt))


def get_row(session: Session, kind: Kind, code: str) -> Any:
    return _by_code(session, kind, code)


def present(session: Session, kind: Kind, row: Any) -> dict[str, Any]:
    """A row as the API shows it: codes for the rows it points to, never internal ids."""
    out: dict[str, Any] = {"code": row.code, "name": row.name, "name_en": row.name_en or ""}
    if kind.boundary:
        out["boundary"] = row.boundary
    if kind.name == "communities":
        out["jurisdiction"] = session.get(Jurisdiction, row.jurisdiction_id).code  # type: ignore[union-attr]
    if kind.name == "patrol-units":
        out["jurisdiction"] = session.get(Jurisdiction, row.jurisdiction_id).code  # type: ignore[union-attr]
    if kind.name == "grids":
        out["community"] = session.get(Community, row.community_id).code  # type: ignore[union-attr]
    if kind.name == "stations":
        platform = session.get(Platform, row.platform_id) if row.platform_id is not None else None
        out.update(platform=platform.code if platform else None, lat=row.lat, lon=row.lon)
    if kind.name == "zones":
        out.update(
            kind=row.kind,
            rollout_stage=row.rollout_stage,
            pilot_on=row.pilot_on.isoformat() if row.pilot_on else None,
            rolled_out_on=row.rolled_out_on.isoformat() if row.rolled_out_on else None,
        )
    out["retired"] = row.retired_at is not None
    out["retired_at"] = row.retired_at.isoformat() if row.retired_at else None
    return out


# --- Writing ----------------------------------------------------------------------------------------


def _jurisdiction(session: Session, code: str | None) -> Jurisdiction:
    if code:
        row: Jurisdiction = _live(session, Jurisdiction, code, Term(N_("jurisdiction")))
        return row
    live = list(session.scalars(select(Jurisdiction).where(Jurisdiction.retired_at.is_(None)).limit(2)))
    if len(live) == 1:
        return live[0]
    if not live:
        raise InvalidInput(N_("create the jurisdiction first: every community and patrol unit belongs to one"))
    raise InvalidInput(N_("there are several jurisdictions: name one with 'jurisdiction'"))


def _check_zone_dates(stage: str, pilot_on: date | None, rolled_out_on: date | None) -> None:
    if pilot_on is not None and rolled_out_on is not None and rolled_out_on < pilot_on:
        raise InvalidInput(
            N_("the rollout date (%(rolled_out)s) lies before the pilot's start (%(pilot)s)"),
            rolled_out=rolled_out_on.isoformat(),
            pilot=pilot_on.isoformat(),
        )
    if stage == "rolled_out" and rolled_out_on is None:
        raise InvalidInput(N_("a zone that is rolled out needs its rollout date (rolled_out_on)"))


def _place_boundary(session: Session, kind: Kind, row: Any, polygon: Polygon) -> list[str]:
    """Check where a new boundary lies (refusing what is outside its parent); the warnings about overlaps."""
    warnings: list[str] = []
    if kind.name in ("communities", "grids", "zones"):
        if kind.name == "communities":
            jurisdiction = session.get(Jurisdiction, row.jurisdiction_id)
        else:
            jurisdiction = session.scalar(
                select(Jurisdiction).where(Jurisdiction.retired_at.is_(None)).order_by(Jurisdiction.id).limit(1)
            )
        if jurisdiction is not None and jurisdiction.boundary and not _inside(jurisdiction.boundary, polygon):
            raise InvalidInput(
                N_("the boundary reaches outside the jurisdiction %(jurisdiction)s"), jurisdiction=jurisdiction.name
            )
    if kind.name == "grids":
        community = session.get(Community, row.community_id)
        if community is not None and not _inside(community.boundary, polygon):
            raise InvalidInput(N_("the grid reaches outside its community %(community)s"), community=community.name)
    if kind.name in ("grids", "communities"):
        for overlap in _overlaps(session, kind.model, polygon, exclude_id=row.id):
            warnings.append(overlap)
    if kind.name == "jurisdictions" and row.id is not None:
        outside = [
            c.name
            for c in session.scalars(
                select(Community).where(Community.jurisdiction_id == row.id, Community.retired_at.is_(None))
            )
            if not _inside(_normalised(polygon), shape(c.boundary))
        ]
        if outside:
            raise InvalidInput(
                N_("these communities would lie outside the new boundary: %(names)s"), names=", ".join(outside)
            )
    return warnings


def _set_boundary(row: Any, kind: Kind, polygon: Polygon) -> None:
    row.boundary = _normalised(polygon)
    if kind.name == "grids":
        row.min_lat, row.min_lon, row.max_lat, row.max_lon = bbox(row.boundary)


def _retire_check(session: Session, kind: Kind, row: Any) -> None:
    """Refuse to retire a row whose live children would be orphaned."""
    children: list[tuple[Any, Any, Term]] = []
    if kind.name == "communities":
        children = [(Grid, Grid.community_id, Term(N_("grids")))]
    elif kind.name == "platforms":
        children = [(Station, Station.platform_id, Term(N_("stations")))]
    elif kind.name == "jurisdictions":
        children = [
            (Community, Community.jurisdiction_id, Term(N_("communities"))),
            (PatrolUnit, PatrolUnit.jurisdiction_id, Term(N_("patrol units"))),
        ]
    for model, column, _label in children:
        live = list(session.scalars(select(model.code).where(column == row.id, model.retired_at.is_(None))))
        if live:
            raise Conflict(
                N_("retire its %(children)s first: %(codes)s"), children=_label, codes=", ".join(sorted(live))
            )


def _audit_value(key: str, value: Any) -> Any:
    if key == "boundary":
        return "…"  # the geometry itself is in the row; the log says that it changed
    if isinstance(value, date):
        return value.isoformat()
    return value


def create(
    session: Session, *, actor: User | None, kind_name: str, values: Mapping[str, Any], dry_run: bool = False
) -> Saved:
    """A new organisation or area; refused (nothing stored) when its code exists or a check fails."""
    try:
        return _create(session, actor=actor, kind=kind_of(kind_name), values=values, dry_run=dry_run)
    except _Preview as preview:
        saved: Saved = preview.saved
        return saved


def update(
    session: Session,
    *,
    actor: User | None,
    kind_name: str,
    code: str,
    values: Mapping[str, Any],
    dry_run: bool = False,
) -> Saved:
    """Change names, a boundary, a parent or a zone's stage; retire or restore. Checked whole before written."""
    try:
        return _update(session, actor=actor, kind=kind_of(kind_name), code=code, values=values, dry_run=dry_run)
    except _Preview as preview:
        saved: Saved = preview.saved
        return saved


@atomic
def _create(session: Session, *, actor: User | None, kind: Kind, values: Mapping[str, Any], dry_run: bool) -> Saved:
    code = values["code"]
    if session.scalar(select(kind.model.id).where(kind.model.code == code)) is not None:
        raise Conflict(N_("a %(kind)s with the code %(code)r exists already"), kind=kind.label, code=code)
    row = kind.model(code=code, name=values["name"], name_en=values.get("name_en") or "")
    if kind.name in ("communities", "patrol-units"):
        row.jurisdiction_id = _jurisdiction(session, values.get("jurisdiction")).id
    if kind.name == "grids":
        row.community_id = _live(session, Community, values["community"], Term(N_("community"))).id
    if kind.name == "stations":
        if values.get("platform"):
            row.platform_id = _live(session, Platform, values["platform"], Term(N_("platform"))).id
        if (values.get("lat") is None) != (values.get("lon") is None):
            raise InvalidInput(N_("give both lat and lon for the station's place, or neither"))
        row.lat, row.lon = values.get("lat"), values.get("lon")
    if kind.name == "zones":
        row.kind = values.get("kind") or "commercial"
        row.rollout_stage = values.get("rollout_stage") or "pilot"
        row.pilot_on, row.rolled_out_on = values.get("pilot_on"), values.get("rolled_out_on")
        _check_zone_dates(row.rollout_stage, row.pilot_on, row.rolled_out_on)
    warnings: list[str] = []
    if kind.boundary:
        if values.get("boundary") is not None:
            polygon = check_polygon(values["boundary"])
            warnings = _place_boundary(session, kind, row, polygon)
            _set_boundary(row, kind, polygon)
        elif kind.name != "jurisdictions":
            raise InvalidInput(N_("a %(kind)s needs its boundary"), kind=kind.label)
    session.add(row)
    session.flush()
    record(
        session,
        actor=actor,
        action="org.create",
        object_type=kind.object_type,
        object_id=code,
        values={k: _audit_value(k, v) for k, v in values.items() if v is not None},
    )
    return _finish(session, kind, row, created=True, dry_run=dry_run, warnings=warnings)


@atomic
def _update(
    session: Session, *, actor: User | None, kind: Kind, code: str, values: Mapping[str, Any], dry_run: bool
) -> Saved:
    row = _by_code(session, kind, code)
    changes: dict[str, list[Any]] = {}
    for key in kind.fields:
        if key in values and values[key] is not None and getattr(row, key) != values[key]:
            changes[key] = [getattr(row, key), values[key]]
    if kind.name == "stations" and ("lat" in changes) != ("lon" in changes) and row.lat is None:
        raise InvalidInput(N_("give both lat and lon for the station's place, or neither"))
    if kind.name == "grids" and values.get("community"):
        community = _live(session, Community, values["community"], Term(N_("community")))
        if community.id != row.community_id:
            changes["community"] = [session.get(Community, row.community_id).code, community.code]  # type: ignore[union-attr]
    if kind.name == "stations" and values.get("platform"):
        platform = _live(session, Platform, values["platform"], Term(N_("platform")))
        if platform.id != row.platform_id:
            old = session.get(Platform, row.platform_id) if row.platform_id else None
            changes["platform"] = [old.code if old else None, platform.code]
    retire = values.get("retired")
    if retire is not None and retire != (row.retired_at is not None):
        if retire:
            _retire_check(session, kind, row)
        changes["retired"] = [not retire, retire]
    if kind.name == "zones":
        _check_zone_dates(
            values.get("rollout_stage") or row.rollout_stage,
            values.get("pilot_on") or row.pilot_on,
            values.get("rolled_out_on") or row.rolled_out_on,
        )
    # Nothing is written before every check has passed.
    for key in kind.fields:
        if key in changes:
            setattr(row, key, changes[key][1])
    if "community" in changes:
        row.community_id = session.scalar(select(Community.id).where(Community.code == changes["community"][1]))
    if "platform" in changes:
        row.platform_id = session.scalar(select(Platform.id).where(Platform.code == changes["platform"][1]))
    warnings: list[str] = []
    boundary = values.get("boundary")
    if kind.boundary and (boundary is not None or "community" in changes):
        polygon = check_polygon(boundary) if boundary is not None else check_polygon(row.boundary)
        warnings = _place_boundary(session, kind, row, polygon)
        if boundary is not None and _normalised(polygon) != row.boundary:
            changes["boundary"] = ["…", "…"]
            _set_boundary(row, kind, polygon)
    if "retired" in changes:
        row.retired_at = utcnow() if changes["retired"][1] else None
    session.flush()
    if changes:
        action = "org.update"
        if set(changes) == {"retired"}:
            action = "org.retire" if changes["retired"][1] else "org.restore"
        record(
            session,
            actor=actor,
            action=action,
            object_type=kind.object_type,
            object_id=code,
            changes={k: [_audit_value(k, a), _audit_value(k, b)] for k, (a, b) in changes.items()},
        )
    return _finish(session, kind, row, created=False, dry_run=dry_run, warnings=warnings, changed=bool(changes))


# --- Importing a boundary file ----------------------------------------------------------------------


@dataclass(frozen=True)
class AreaProblem:
    """Why one feature of a file is refused: its place in the file, its code if it has one, the reason (a
    message and its parameters, so that a page says it in the reader's language)."""

    feature: int
    code: str
    message: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        return self.message % self.params if self.params else self.message

    def translated(self, gettext: Callable[[str], str]) -> str:
        return InvalidInput(self.message, **self.params).translated(gettext)

    def as_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "code": self.code, "reason": self.reason}


class AreasRefused(InvalidInput):
    """Some features are bad; nothing was stored. `errors` names each one."""

    title = "Areas refused"
    type_ = "/problems/areas-refused"

    def __init__(self, problems: list[AreaProblem], features: int) -> None:
        super().__init__(
            N_("%(bad)d of %(features)d areas are refused; nothing was imported"),
            bad=len(problems),
            features=features,
            errors=[p.as_dict() for p in problems],
        )
        self.problems = problems


@dataclass(frozen=True)
class AreasImported:
    created: int
    updated: int
    unchanged: int
    dry_run: bool
    warnings: list[dict[str, Any]]
    areas: list[dict[str, Any]]  # as the API shows each (with its boundary), for a preview on the map


def import_areas(
    session: Session, *, actor: User | None, kind_name: str, features: list[FeatureIn], dry_run: bool = False
) -> AreasImported:
    """Create the areas of a file, or update those whose code exists; every feature checked (against the
    district and against the file's earlier features), all stored or none (AreasRefused names each bad one)."""
    kind = kind_of(kind_name)
    if not kind.boundary:
        raise InvalidInput(N_("a %(kind)s has no boundary to import"), kind=kind.label)
    try:
        return _import_areas(session, actor=actor, kind=kind, features=features, dry_run=dry_run)
    except _Preview as preview:
        result: AreasImported = preview.saved
        return result


@atomic
def _import_areas(
    session: Session, *, actor: User | None, kind: Kind, features: list[FeatureIn], dry_run: bool
) -> AreasImported:
    create_body, update_body = ORG_BODIES[kind.name]
    problems: list[AreaProblem] = []
    warnings: list[dict[str, Any]] = []
    areas: list[dict[str, Any]] = []
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    seen: dict[str, int] = {}
    for feature in features:
        code = str(feature.values.get("code") or "")
        if not code:
            problems.append(AreaProblem(feature.index, "", N_("the feature has no code (property 'code' or 编码)")))
            continue
        if code in seen:
            problems.append(AreaProblem(feature.index, code, N_("the same code is on an earlier feature")))
            continue
        seen[code] = feature.index
        exists = session.scalar(select(kind.model.id).where(kind.model.code == code)) is not None
        try:
            if exists:
                changes = update_body.model_validate({k: v for k, v in feature.values.items() if k != "code"})
                saved = _update(
                    session,
                    actor=actor,
                    kind=kind,
                    code=code,
                    values=changes.model_dump(exclude_unset=True),
                    dry_run=False,
                )
            else:
                new = create_body.model_validate(feature.values)
                saved = _create(session, actor=actor, kind=kind, values=new.model_dump(), dry_run=False)
        except ValidationError as exc:
            for error in exc.errors():
                name = ".".join(str(p) for p in error["loc"])
                if error["type"] == "missing":
                    problems.append(
                        AreaProblem(feature.index, code, N_("the property %(name)r is missing"), {"name": name})
                    )
                else:
                    problems.append(AreaProblem(feature.index, code, f"{name}: {error['msg']}"))
            continue
        except DomainError as exc:
            problems.append(AreaProblem(feature.index, code, exc.message, exc.params))
            continue
        counts["created" if saved.created else "updated" if saved.changed else "unchanged"] += 1
        warnings.extend({"feature": feature.index, "code": code, "overlaps": w} for w in saved.warnings)
        areas.append(saved.shown)
    if problems:
        raise AreasRefused(problems, len(features))
    result = AreasImported(dry_run=dry_run, warnings=warnings, areas=areas, **counts)
    if dry_run:
        raise _Preview(result)
    record(session, actor=actor, action="org.import", object_type=kind.object_type, object_id="*", **counts)
    return result
