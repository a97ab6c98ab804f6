"""Routing rules as data: category × area → party, tried in order; the category's own handler role is the
fallback. An administrator keeps the rules; the desk asks who a clue would go to, and a tester on the map
asks the same for any category and point.

A rule matches a clue when its category is the clue's (or it names none) and its area holds the clue's
place: the same grid or community, a zone whose boundary holds the point, or anywhere. The first rule that
matches and names somebody proposes the handler; a rule that matches but finds nobody (a community without
police) is said in the reason, and the next rule is tried.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shapely.geometry import Point, shape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.audit.service import record
from riderwatch.db import atomic
from riderwatch.errors import N_, InvalidInput, NotFound, Term
from riderwatch.models import Category, Community, Grid, PatrolUnit, RoutingRule, User, Zone
from riderwatch.models.org import ROUTING_AREAS, ROUTING_PARTIES
from riderwatch.org.service import Place, Proposal, active_of_role, least_loaded, locate, propose_handler

AREA_MODELS: dict[str, Any] = {"grid": Grid, "community": Community, "zone": Zone}
PARTY_ROLES = {"police": "police", "grid_staff": "grid_staff", "patrol": "patrol", "patrol_unit": "patrol"}


@dataclass(frozen=True)
class Where:
    """A point and what holds it: the grid and community (as `locate` finds them) and the zones."""

    place: Place
    zones: frozenset[str]  # zone codes


def zones_at(session: Session, lat: float, lon: float) -> frozenset[str]:
    """The codes of the zones (in use) whose boundary holds the point."""
    point = Point(lon, lat)
    live = session.scalars(select(Zone).where(Zone.retired_at.is_(None)))
    return frozenset(z.code for z in live if shape(z.boundary).covers(point))


def where(session: Session, *, lat: float, lon: float) -> Where:
    return Where(locate(session, lat=lat, lon=lon), zones_at(session, lat, lon))


def _matches(rule: RoutingRule, category: str, at: Where) -> bool:
    if rule.category_code is not None and rule.category_code != category:
        return False
    if rule.area_kind == "grid":
        return at.place.grid is not None and at.place.grid.code == rule.area_code
    if rule.area_kind == "community":
        return at.place.community is not None and at.place.community.code == rule.area_code
    if rule.area_kind == "zone":
        return rule.area_code in at.zones
    return True


def _by_rule(session: Session, rule: RoutingRule, at: Where) -> Proposal:
    if rule.party in ("police", "grid_staff", "patrol"):
        found = propose_handler(session, handler_role=rule.party, place=at.place)
        return Proposal(found.role, found.assignee, found.reason, found.params, rule.id)
    if rule.party == "patrol_unit":
        unit = session.get(PatrolUnit, rule.patrol_unit_id) if rule.patrol_unit_id else None
        members = list(session.scalars(active_of_role("patrol").where(User.patrol_unit_id == rule.patrol_unit_id)))
        chosen = least_loaded(session, members)
        name = {"unit": unit.name if unit else "?"}
        if chosen is None:
            return Proposal("patrol", None, N_("patrol unit %(unit)s has no active member"), name, rule.id)
        return Proposal(
            "patrol", chosen, N_("patrol unit %(unit)s → its member with the fewest open clues"), name, rule.id
        )
    person = session.get(User, rule.person_id) if rule.person_id else None
    if person is None or not person.is_active:
        return Proposal("", None, N_("the person this rule names is no longer active"), {}, rule.id)
    return Proposal(
        person.role, person, N_("the rule names %(name)s"), {"name": person.display_name or person.username}, rule.id
    )


def propose(session: Session, *, category: Category, at: Where) -> Proposal:
    """The first active rule that matches and names somebody; else the category's own handler role."""
    rules = session.scalars(
        select(RoutingRule).where(RoutingRule.active.is_(True)).order_by(RoutingRule.position, RoutingRule.id)
    )
    for rule in rules:
        if _matches(rule, category.code, at):
            found = _by_rule(session, rule, at)
            if found.assignee is not None:
                return Proposal(
                    found.role,
                    found.assignee,
                    N_("rule %(rule)d: %(why)s"),
                    {"rule": rule.id, "why": found},
                    rule.id,
                )
    fallback = propose_handler(session, handler_role=category.handler_role, place=at.place)
    return Proposal(
        fallback.role,
        fallback.assignee,
        N_("no rule applies; the category's handler: %(why)s"),
        {"why": fallback},
        None,
    )


# --- keeping the rules ------------------------------------------------------------------------------------


def list_rules(session: Session, *, include_retired: bool = False) -> list[RoutingRule]:
    stmt = select(RoutingRule).order_by(RoutingRule.position, RoutingRule.id)
    if not include_retired:
        stmt = stmt.where(RoutingRule.active.is_(True))
    return list(session.scalars(stmt))


def _check(session: Session, values: Mapping[str, Any]) -> dict[str, Any]:
    """The rule's fields from codes and usernames, each checked; a refusal names what is wrong."""
    out: dict[str, Any] = {}
    category = values.get("category")
    if category:
        found = session.get(Category, category)
        if found is None:
            raise InvalidInput(
                N_("unknown category %(code)r: use a service_code from the Open311 service list"), code=category
            )
    out["category_code"] = category or None
    kind = values.get("area_kind") or "any"
    if kind not in ROUTING_AREAS:
        raise InvalidInput(N_("area_kind must be one of: %(choices)s"), choices=", ".join(ROUTING_AREAS))
    out["area_kind"] = kind
    out["area_code"] = None
    if kind != "any":
        code = values.get("area_code") or ""
        model = AREA_MODELS[kind]
        row = session.scalar(select(model).where(model.code == code))
        if row is None or row.retired_at is not None:
            raise InvalidInput(N_("no %(kind)s with the code %(code)r"), kind=Term(kind), code=code)
        out["area_code"] = code
    party = values.get("party")
    if party not in ROUTING_PARTIES:
        raise InvalidInput(N_("party must be one of: %(choices)s"), choices=", ".join(ROUTING_PARTIES))
    out["party"] = party
    out["patrol_unit_id"] = None
    out["person_id"] = None
    if party == "patrol_unit":
        unit = session.scalar(select(PatrolUnit).where(PatrolUnit.code == (values.get("patrol_unit") or "")))
        if unit is None or unit.retired_at is not None:
            raise InvalidInput(N_("name the patrol unit by its code"))
        out["patrol_unit_id"] = unit.id
    if party == "person":
        person = session.scalar(select(User).where(User.username == (values.get("person") or "")))
        if person is None or not person.is_active or person.role not in ("police", "grid_staff", "patrol"):
            raise InvalidInput(N_("name an active police officer, grid worker or patrol member by username"))
        out["person_id"] = person.id
    note = str(values.get("note") or "").strip()
    if len(note) > 200:
        raise InvalidInput(N_("the note has at most 200 characters"))
    out["note"] = note
    return out


@atomic
def create_rule(session: Session, *, actor: User, values: Mapping[str, Any]) -> RoutingRule:
    fields = _check(session, values)
    position = values.get("position")
    if position is None:
        position = (session.scalar(select(func.max(RoutingRule.position))) or 0) + 10
    rule = RoutingRule(position=int(position), active=True, **fields)
    session.add(rule)
    session.flush()
    record(session, actor=actor, action="routing_rule.create", object_type="routing_rule", object_id=rule.id)
    return rule


@atomic
def update_rule(session: Session, *, actor: User, rule_id: int, values: Mapping[str, Any]) -> RoutingRule:
    """Move a rule (position), retire or restore it (active); its other fields stay (a new rule replaces it)."""
    rule = session.get(RoutingRule, rule_id)
    if rule is None:
        raise NotFound(N_("no routing rule %(id)d"), id=rule_id)
    changes: dict[str, list[Any]] = {}
    for key in ("position", "active"):
        if key in values and values[key] is not None and getattr(rule, key) != values[key]:
            changes[key] = [getattr(rule, key), values[key]]
            setattr(rule, key, values[key])
    session.flush()
    if changes:
        record(
            session,
            actor=actor,
            action="routing_rule.update",
            object_type="routing_rule",
            object_id=rule.id,
            changes=changes,
        )
    return rule


@atomic
def move_rule(session: Session, *, actor: User, rule_id: int, up: bool) -> None:
    """Swap a rule with the one before (or after) it among the rules in use; positions become 10, 20, …"""
    ids = [r.id for r in list_rules(session)]
    if rule_id not in ids:
        raise NotFound(N_("no routing rule %(id)d"), id=rule_id)
    i = ids.index(rule_id)
    j = i - 1 if up else i + 1
    if 0 <= j < len(ids):
        ids[i], ids[j] = ids[j], ids[i]
        for position, moved in enumerate(ids, start=1):
            update_rule(session, actor=actor, rule_id=moved, values={"position": position * 10})
