"""Organisations and areas: finding the grid and community of a place, and the handler for a clue."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shapely.geometry import Point, shape
from shapely.prepared import prep
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.audit.service import record
from riderwatch.db import atomic
from riderwatch.errors import N_, Conflict, InvalidInput, NotFound
from riderwatch.geo.areas import contains
from riderwatch.models import Category, Clue, Community, Grid, User, Zone


@dataclass(frozen=True)
class Place:
    grid: Grid | None
    community: Community | None


class Locator:
    """The district's grids and communities, read once and prepared, to locate many points (a group of
    reported clues) without a query or a geometry built per point; `locate` answers as `locate()` does."""

    def __init__(self, session: Session) -> None:
        self.communities = {
            c.id: c
            for c in session.scalars(select(Community).where(Community.retired_at.is_(None)).order_by(Community.id))
        }
        self.grids = [
            (g, prep(shape(g.boundary)))
            for g in session.scalars(select(Grid).where(Grid.retired_at.is_(None)).order_by(Grid.id))
        ]
        self.community_areas = [(c, prep(shape(c.boundary))) for c in self.communities.values()]

    def locate(self, *, lat: float, lon: float) -> Place:
        point = Point(lon, lat)
        for grid, area in self.grids:
            if grid.min_lat <= lat <= grid.max_lat and grid.min_lon <= lon <= grid.max_lon and area.covers(point):
                return Place(grid=grid, community=self.communities.get(grid.community_id))
        for community, area in self.community_areas:
            if area.covers(point):
                return Place(grid=None, community=community)
        return Place(grid=None, community=None)


def locate(session: Session, *, lat: float, lon: float) -> Place:
    """The grid (and so the community) containing a point; else the community alone, else none."""
    candidates = session.scalars(
        select(Grid).where(
            Grid.min_lat <= lat,
            Grid.max_lat >= lat,
            Grid.min_lon <= lon,
            Grid.max_lon >= lon,
            Grid.retired_at.is_(None),
        )
    ).all()
    for grid in candidates:
        if contains(grid.boundary, lat, lon):
            return Place(grid=grid, community=session.get(Community, grid.community_id))
    for community in session.scalars(select(Community).where(Community.retired_at.is_(None))).all():
        if contains(community.boundary, lat, lon):
            return Place(grid=None, community=community)
    return Place(grid=None, community=None)


def _open_load(session: Session, users: list[User]) -> dict[int, int]:
    if not users:
        return {}
    rows = session.execute(
        select(Clue.assignee_id, func.count())
        .where(Clue.assignee_id.in_([u.id for u in users]), Clue.status.in_(("dispatched", "in_progress")))
        .group_by(Clue.assignee_id)
    ).all()
    return {uid: n for uid, n in rows if uid is not None}


def least_loaded(session: Session, users: list[User]) -> User | None:
    load = _open_load(session, users)
    return min(users, key=lambda u: (load.get(u.id, 0), u.id)) if users else None


@dataclass(frozen=True)
class Proposal:
    """Who the routing proposes for a clue, and why: `reason` is a message template (translated on pages,
    filled with `params`), `rule_id` the rule that proposed them (None: the category's own handler role)."""

    role: str
    assignee: User | None
    reason: str
    params: dict[str, Any] = field(default_factory=dict)
    rule_id: int | None = None

    @property
    def explanation(self) -> str:
        return self.translated(lambda text: text)

    def translated(self, gettext: Callable[[str], str]) -> str:
        """The reason in the reader's language (a nested proposal, the `why` of a rule, is translated too)."""
        if not self.params:
            return gettext(self.reason)
        filled = {k: v.translated(gettext) if isinstance(v, Proposal) else v for k, v in self.params.items()}
        return gettext(self.reason) % filled


def active_of_role(role: str) -> Any:
    return select(User).where(User.is_active.is_(True), User.role == role).order_by(User.id)


def propose_handler(session: Session, *, handler_role: str, place: Place) -> Proposal:
    """The category's own rule (the fallback): its party, and the person the place names."""
    if handler_role == "grid_staff":
        if place.grid is None:
            return Proposal(handler_role, None, N_("the place is outside every grid: choose grid staff by hand"))
        chosen = least_loaded(
            session, list(session.scalars(active_of_role("grid_staff").where(User.grid_id == place.grid.id)))
        )
        if chosen is None:
            return Proposal(handler_role, None, N_("grid %(grid)s has no grid staff"), {"grid": place.grid.name})
        return Proposal(handler_role, chosen, N_("grid %(grid)s → its grid staff"), {"grid": place.grid.name})
    if handler_role == "police":
        if place.community is None:
            return Proposal(handler_role, None, N_("the place is outside every community: choose police by hand"))
        police = session.scalars(active_of_role("police").where(User.community_id == place.community.id))
        chosen = least_loaded(session, list(police))
        name = {"community": place.community.name}
        if chosen is None:
            return Proposal(handler_role, None, N_("community %(community)s has no police"), name)
        return Proposal(handler_role, chosen, N_("community %(community)s → its community police"), name)
    # Patrol: the least-loaded member of any patrol unit (units cover the whole jurisdiction).
    chosen = least_loaded(
        session, list(session.scalars(active_of_role("patrol").where(User.patrol_unit_id.is_not(None))))
    )
    if chosen is None:
        return Proposal(handler_role, None, N_("no patrol member is active"))
    return Proposal(handler_role, chosen, N_("patrol → the patrol member with the fewest open clues"))


def list_categories(session: Session, *, include_inactive: bool = False) -> list[Category]:
    stmt = select(Category).order_by(Category.sort_order, Category.code)
    if not include_inactive:
        stmt = stmt.where(Category.active.is_(True))
    return list(session.scalars(stmt))


def _check_deadlines(normal: int, urgent: int) -> None:
    # An urgent clue is one that cannot wait: a longer deadline than the normal one is a typing error.
    if urgent > normal:
        raise InvalidInput(
            N_("the urgent deadline (%(urgent)s h) cannot be longer than the normal one (%(normal)s h)"),
            urgent=urgent,
            normal=normal,
        )


@atomic
def create_category(session: Session, *, actor: User, values: dict[str, Any]) -> Category:
    """A new clue category (and Open311 service)."""
    if session.get(Category, values["code"]) is not None:
        raise Conflict(N_("category %(code)r already exists"), code=values["code"])
    _check_deadlines(values.get("deadline_hours", 72), values.get("urgent_deadline_hours", 4))
    category = Category(**values)
    session.add(category)
    session.flush()
    record(session, actor=actor, action="category.create", object_type="category", object_id=category.code)
    return category


@atomic
def update_category(session: Session, *, actor: User, code: str, values: dict[str, Any]) -> Category:
    """Edit a category's names, routing, deadlines or visibility; every change is audited."""
    category = session.get(Category, code)
    if category is None:
        raise NotFound(N_("no category %(code)r"), code=code)
    _check_deadlines(
        values.get("deadline_hours", category.deadline_hours),
        values.get("urgent_deadline_hours", category.urgent_deadline_hours),
    )
    changes = {k: [getattr(category, k), v] for k, v in values.items() if getattr(category, k) != v}
    for key, (_old, new) in changes.items():
        setattr(category, key, new)
    session.flush()
    if changes:
        record(session, actor=actor, action="category.update", object_type="category", object_id=code, changes=changes)
    return category


def areas_geojson(session: Session) -> dict[str, Any]:
    """Zones, communities and grids for the map (WGS-84 GeoJSON)."""
    features: list[dict[str, Any]] = []
    for zone in session.scalars(select(Zone).where(Zone.retired_at.is_(None)).order_by(Zone.id)):
        features.append(
            {
                "type": "Feature",
                "geometry": zone.boundary,
                "properties": {
                    "kind": "zone",
                    "id": zone.id,
                    "code": zone.code,
                    "name": zone.name,
                    "name_en": zone.name_en,
                },
            }
        )
    for community in session.scalars(select(Community).where(Community.retired_at.is_(None)).order_by(Community.id)):
        features.append(
            {
                "type": "Feature",
                "geometry": community.boundary,
                "properties": {
                    "kind": "community",
                    "id": community.id,
                    "code": community.code,
                    "name": community.name,
                    "name_en": community.name_en,
                },
            }
        )
    for grid in session.scalars(select(Grid).where(Grid.retired_at.is_(None)).order_by(Grid.id)):
        features.append(
            {
                "type": "Feature",
                "geometry": grid.boundary,
                "properties": {
                    "kind": "grid",
                    "id": grid.id,
                    "code": grid.code,
                    "name": grid.name,
                    "community_id": grid.community_id,
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}
