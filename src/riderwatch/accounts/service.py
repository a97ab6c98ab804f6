"""Accounts: creating and managing users, logging in (rate limited), tokens and API keys."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from riderwatch import policy
from riderwatch.audit.service import AuditFilters, AuditRow, list_entries, record
from riderwatch.config import programme_timezone
from riderwatch.db import atomic
from riderwatch.errors import N_, Conflict, InvalidInput, NotFound, Term
from riderwatch.infra.clock import utcnow
from riderwatch.models import (
    ApiKey,
    Clue,
    Community,
    Grid,
    LoginFailure,
    PatrolUnit,
    Platform,
    Rider,
    RiderStatusChange,
    Station,
    User,
    UserSession,
)
from riderwatch.models.accounts import RIDER_STATUSES, ROLES
from riderwatch.security import hash_api_key, hash_one_time_code, hash_password, new_api_key, new_one_time_code

MIN_PASSWORD = 8
# An administrator's one-time code is read out or sent to the user, who signs in with it the same day.
ONE_TIME_CODE_TTL = timedelta(hours=24)
MAX_PASSWORD = 1000
_PHONE = re.compile(r"^[0-9+\-() ]{1,32}$")

# What a user may be linked to, by role. Routing finds community police by community, grid staff
# by grid and patrol members by unit; riders and station managers belong to a delivery station
# (and through it to a platform); a platform account speaks for its platform's riders. A link on
# any other role would mean nothing to the rest of the system, so it is refused, not stored.
LINK_ROLES: dict[str, frozenset[str]] = {
    "community": frozenset({"police"}),
    "grid": frozenset({"grid_staff"}),
    "patrol_unit": frozenset({"patrol"}),
    "station": frozenset({"rider", "station_manager"}),
    "platform": frozenset({"platform"}),
}
_LINK_MODELS: dict[str, Any] = {
    "community": Community,
    "grid": Grid,
    "patrol_unit": PatrolUnit,
    "station": Station,
    "platform": Platform,
}
LINK_TERMS: dict[str, str] = {
    "community": N_("community"),
    "grid": N_("grid"),
    "patrol_unit": N_("patrol unit"),
    "station": N_("station"),
    "platform": N_("platform"),
}
LINKS = tuple(LINK_ROLES)


@atomic
def create_user(
    session: Session,
    *,
    username: str,
    role: str,
    password: str | None = None,
    password_hash: str | None = None,
    password_expires_at: datetime | None = None,
    display_name: str = "",
    station_code: str | None = None,
    actor: User | None = None,
    phone: str | None = None,
    rider_status: str = "active",
    joined_on: date | None = None,
    links: Mapping[str, str | None] | None = None,
    must_change_password: bool = False,
    status_reason: str = "",
) -> User:
    """An active account that can act at once (or, with `must_change_password`, once its user has chosen
    their own password); a rider also gets a team membership.

    `links` names, by code, what the user belongs to (see LINK_ROLES); only links that fit the role
    are accepted. The password comes in clear (checked, then hashed here), or already hashed outside the
    transaction (`password_hash`: an import hashes a hundred one-time codes without holding a lock).
    """
    username = username.strip()
    if not username or len(username) > 64 or any(c.isspace() for c in username):
        raise InvalidInput(N_("username must be 1 to 64 characters without spaces"))
    if role not in ROLES:
        raise InvalidInput(N_("unknown role %(role)r; roles are: %(choices)s"), role=role, choices=", ".join(ROLES))
    if (password is None) == (password_hash is None):
        raise ValueError("give the password or its hash")
    if password is not None:
        _check_password(password)
        password_hash = hash_password(password)
    if rider_status not in RIDER_STATUSES:
        raise InvalidInput(
            N_("unknown rider status %(status)r; statuses are: %(choices)s"),
            status=rider_status,
            choices=", ".join(RIDER_STATUSES),
        )
    display_name = _clean_display_name(display_name) if display_name.strip() else ""
    phone = _clean_phone(phone)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(N_("user %(username)r already exists"), username=username)
    if station_code and links and links.get("station"):
        raise InvalidInput(N_("give the station once"))
    resolved = {k: v for k, v in _resolve_links(session, role, links or {}).items() if v is not None}
    station = resolved.get("station")
    if station_code:
        station = session.scalar(select(Station).where(Station.code == station_code))
        if station is None:
            raise InvalidInput(N_("no station %(code)r"), code=station_code)
        if station.retired_at is not None:
            raise InvalidInput(
                N_("the %(kind)s %(code)r is retired"), kind=Term(LINK_TERMS["station"]), code=station_code
            )
    platform = resolved.get("platform")
    user = User(
        username=username,
        role=role,
        password_hash=password_hash,
        password_expires_at=password_expires_at,
        display_name=display_name or username,
        phone=phone,
        station_id=station.id if station else None,
        platform_id=station.platform_id if station else platform.id if platform else None,
        community_id=resolved["community"].id if "community" in resolved else None,
        grid_id=resolved["grid"].id if "grid" in resolved else None,
        patrol_unit_id=resolved["patrol_unit"].id if "patrol_unit" in resolved else None,
        must_change_password=must_change_password,
    )
    session.add(user)
    session.flush()
    if role == "rider":
        session.add(
            Rider(
                user_id=user.id,
                station_id=user.station_id,
                platform_id=user.platform_id,
                status=rider_status,
                # The programme's calendar day (a rider joining at 07:00 in Putian joined that day, not UTC's).
                joined_on=joined_on or utcnow().astimezone(programme_timezone()).date(),
            )
        )
        note_status_change(session, rider_id=user.id, old=None, new=rider_status, actor=actor, reason=status_reason)
    given = {kind: row.code for kind, row in resolved.items()}
    record(session, actor=actor, action="user.create", object_type="user", object_id=user.id, role=role, **given)
    session.flush()
    return user


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(N_("password must be at least %(min)d characters"), min=MIN_PASSWORD)
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(N_("password must be at most %(max)d characters"), max=MAX_PASSWORD)


def _clean_display_name(value: str) -> str:
    value = value.strip()
    if not value or len(value) > 200:
        raise InvalidInput(N_("the display name must be 1 to 200 characters"))
    return value


def _clean_phone(value: str | None) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    if not _PHONE.match(value):
        raise InvalidInput(N_("a phone number has at most 32 digits, spaces and + - ( )"))
    return value


def _resolve_links(session: Session, role: str, links: Mapping[str, str | None]) -> dict[str, Any]:
    """The org rows the codes name (None to unlink); refuses unknown kinds, codes, and links the role cannot have."""
    resolved: dict[str, Any] = {}
    for kind, code in links.items():
        if kind not in LINK_ROLES:
            raise InvalidInput(N_("unknown link %(kind)r; links are: %(choices)s"), kind=kind, choices=", ".join(LINKS))
        code = (code or "").strip()
        if not code:
            resolved[kind] = None
            continue
        if role not in LINK_ROLES[kind]:
            allowed = ", ".join(sorted(LINK_ROLES[kind]))
            raise InvalidInput(
                N_("a %(role)s cannot be linked to a %(kind)s (only: %(allowed)s)"),
                role=role,
                kind=Term(LINK_TERMS[kind]),
                allowed=allowed,
            )
        model = _LINK_MODELS[kind]
        row = session.scalar(select(model).where(model.code == code))
        if row is None:
            raise InvalidInput(N_("no %(kind)s %(code)r"), kind=Term(LINK_TERMS[kind]), code=code)
        if row.retired_at is not None:
            raise InvalidInput(N_("the %(kind)s %(code)r is retired"), kind=Term(LINK_TERMS[kind]), code=code)
        resolved[kind] = row
    return resolved


def _apply_links(session: Session, user: User, resolved: Mapping[str, Any]) -> None:
    for kind, row in resolved.items():
        setattr(user, f"{kind}_id", row.id if row is not None else None)
        if kind == "station":
            # A station belongs to a platform: its riders and managers do too.
            user.platform_id = row.platform_id if row is not None else None
    rider = session.get(Rider, user.id) if user.role == "rider" else None
    if rider is not None and "station" in resolved:
        rider.station_id = user.station_id
        rider.platform_id = user.platform_id


def note_status_change(
    session: Session, *, rider_id: int, old: str | None, new: str, actor: User | None, reason: str
) -> None:
    """One step of the rider's path, kept for good (riders/path.py shows it)."""
    session.add(
        RiderStatusChange(
            rider_id=rider_id,
            at=utcnow(),
            from_status=old,
            to_status=new,
            actor_id=actor.id if actor is not None else None,
            reason=reason,
        )
    )


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(N_("no user %(id)d"), id=user_id)
    return user


@dataclass(frozen=True)
class OrgRef:
    code: str
    name: str
    name_en: str
    retired: bool = False


@dataclass(frozen=True)
class UserSummary:
    """A user with what pages and the admin API show about them: link codes and names, rider status."""

    user: User
    rider_status: str | None
    links: dict[str, OrgRef]


def _org_refs(session: Session) -> dict[str, dict[int, OrgRef]]:
    refs: dict[str, dict[int, OrgRef]] = {}
    for kind, model in _LINK_MODELS.items():
        refs[kind] = {
            row.id: OrgRef(row.code, row.name, row.name_en or "", row.retired_at is not None)
            for row in session.scalars(select(model))
        }
    return refs


def summarise_users(session: Session, users: list[User]) -> list[UserSummary]:
    """Link names and rider statuses for a page of users (the org tables are small: read once)."""
    refs = _org_refs(session)
    rider_ids = [u.id for u in users if u.role == "rider"]
    statuses = dict(session.execute(select(Rider.user_id, Rider.status).where(Rider.user_id.in_(rider_ids))).all())
    summaries = []
    for user in users:
        links = {}
        for kind in LINKS:
            linked = getattr(user, f"{kind}_id")
            if linked is not None and linked in refs[kind]:
                links[kind] = refs[kind][linked]
        summaries.append(UserSummary(user=user, rider_status=statuses.get(user.id), links=links))
    return summaries


def link_options(session: Session) -> dict[str, list[OrgRef]]:
    """Everything a user can be linked to, by kind, in code order (for forms)."""
    return {
        kind: sorted((r for r in rows.values() if not r.retired), key=lambda r: r.code)
        for kind, rows in _org_refs(session).items()
    }


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_users(
    session: Session, *, role: str | None = None, query: str | None = None, offset: int = 0, limit: int = 50
) -> tuple[list[User], int]:
    """Users by role and a search over username, display name and phone; with the total that match."""
    stmt = select(User)
    if role:
        if role not in ROLES:
            raise InvalidInput(N_("unknown role %(role)r; roles are: %(choices)s"), role=role, choices=", ".join(ROLES))
        stmt = stmt.where(User.role == role)
    text = (query or "").strip()
    if text:
        pattern = _like(text)
        stmt = stmt.where(
            or_(
                User.username.ilike(pattern, escape="\\"),
                User.display_name.ilike(pattern, escape="\\"),
                User.phone.ilike(pattern, escape="\\"),
            )
        )
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    users = list(session.scalars(stmt.order_by(User.role, User.username).offset(offset).limit(limit)))
    return users, total


def get_user(session: Session, *, user_id: int) -> User:
    return _user(session, user_id)


def open_assignments(session: Session, *, user_id: int) -> int:
    """Clues dispatched to the user and not yet resolved: what a deactivation leaves without a handler."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Clue)
            .where(Clue.assignee_id == user_id, Clue.status.in_(("dispatched", "in_progress")))
        )
        or 0
    )


USER_FIELDS = ("display_name", "phone", "rider_status", *LINKS)


@atomic
def update_user(session: Session, *, actor: User | None, user_id: int, values: Mapping[str, Any]) -> User:
    """Edit a user's name, phone, links and (riders) team status; every change is audited.

    `values` holds only the fields to change; a link given as None or "" is removed.
    """
    user = _user(session, user_id)
    unknown = set(values) - set(USER_FIELDS)
    if unknown:
        raise InvalidInput(N_("unknown fields: %(fields)s"), fields=", ".join(sorted(unknown)))
    changes: dict[str, list[Any]] = {}
    if "display_name" in values:
        name = _clean_display_name(values["display_name"] or "")
        if name != user.display_name:
            changes["display_name"] = [user.display_name, name]
    if "phone" in values:
        phone = _clean_phone(values["phone"])
        if phone != user.phone:
            changes["phone"] = [user.phone, phone]
    rider = session.get(Rider, user.id) if user.role == "rider" else None
    if "rider_status" in values and values["rider_status"] is not None:
        status = values["rider_status"]
        if rider is None:
            raise InvalidInput(N_("only riders have a team status"))
        if status not in RIDER_STATUSES:
            raise InvalidInput(
                N_("unknown rider status %(status)r; statuses are: %(choices)s"),
                status=status,
                choices=", ".join(RIDER_STATUSES),
            )
        if status != rider.status:
            changes["rider_status"] = [rider.status, status]
    resolved = _resolve_links(session, user.role, {k: values[k] for k in LINKS if k in values})
    refs = _org_refs(session)
    for kind, row in list(resolved.items()):
        old_id = getattr(user, f"{kind}_id")
        new_id = row.id if row is not None else None
        if old_id == new_id:
            del resolved[kind]
            continue
        old = refs[kind].get(old_id) if old_id is not None else None
        changes[kind] = [old.code if old else None, row.code if row is not None else None]
    # Everything is checked before anything is written: a refusal leaves the user as it was.
    if "display_name" in changes:
        user.display_name = changes["display_name"][1]
    if "phone" in changes:
        user.phone = changes["phone"][1]
    if "rider_status" in changes and rider is not None:
        rider.status = changes["rider_status"][1]
        note_status_change(
            session, rider_id=user.id, old=changes["rider_status"][0], new=rider.status, actor=actor, reason=""
        )
    _apply_links(session, user, resolved)
    session.flush()
    if changes:
        record(session, actor=actor, action="user.update", object_type="user", object_id=user.id, changes=changes)
    return user


@atomic
def set_user_active(session: Session, *, actor: User, user_id: int, active: bool) -> User:
    """Deactivate (every session and token ends at once) or reactivate an account."""
    user = _user(session, user_id)
    if not active and user.id == actor.id:
        raise Conflict(N_("you cannot deactivate your own account; ask another administrator"))
    if user.is_active == active:
        return user
    user.is_active = active
    if not active:
        # Sessions and bearer tokens carry the version they were issued under: this ends them all.
        user.token_version += 1
    session.flush()
    action = "user.reactivate" if active else "user.deactivate"
    record(session, actor=actor, action=action, object_type="user", object_id=user.id)
    return user


@atomic
def reset_password(
    session: Session, *, actor: User, user_id: int, password: str | None, code_ttl: timedelta = ONE_TIME_CODE_TTL
) -> str | None:
    """Set a password the user must replace at their next login; their sessions and tokens end, and a
    login lock on the name is lifted. Without `password`, a one-time code is made, returned (shown to
    the administrator once, never stored in clear) and runs out after `code_ttl`."""
    user = _user(session, user_id)
    code = None
    if password is None:
        code = new_one_time_code()
        user.password_hash = hash_one_time_code(code)
        user.password_expires_at = utcnow() + code_ttl
    else:
        _check_password(password)
        user.password_hash = hash_password(password)
        user.password_expires_at = None
    user.must_change_password = True
    user.token_version += 1
    session.execute(delete(LoginFailure).where(LoginFailure.username == user.username[:64]))
    session.flush()
    record(
        session,
        actor=actor,
        action="user.reset_password",
        object_type="user",
        object_id=user.id,
        one_time_code=code is not None,
    )
    return code


def check_new_password(current: str, new: str) -> None:
    """The rules a password a user chooses must meet (checked before it is hashed)."""
    _check_password(new)
    if new == current:
        raise InvalidInput(N_("the new password must differ from the current one"))


@atomic
def change_password(session: Session, *, user_id: int, checked_hash: str, new_hash: str) -> User:
    """The user's own change, their current password already checked against `checked_hash`: every other
    session and token ends (the version rises); refused if the password changed meanwhile."""
    user = _user(session, user_id)
    if user.password_hash != checked_hash:
        raise Conflict(N_("your password was changed meanwhile; sign in again"))
    user.password_hash = new_hash
    user.must_change_password = False
    user.password_expires_at = None
    user.token_version += 1
    session.flush()
    record(session, actor=user, action="user.change_password", object_type="user", object_id=user.id)
    return user


@atomic
def sign_out_everywhere(session: Session, *, user: User) -> int:
    """End every session and token of the user (a lost phone, a shared computer); the new token version."""
    target = _user(session, user.id)
    target.token_version += 1
    session.execute(
        update(UserSession)
        .where(UserSession.user_id == target.id, UserSession.ended_at.is_(None))
        .values(ended_at=utcnow())
    )
    session.flush()
    record(session, actor=target, action="user.sign_out_everywhere", object_type="user", object_id=target.id)
    return target.token_version


@atomic
def issue_api_key(session: Session, *, name: str, actor: User | None = None) -> tuple[ApiKey, str]:
    """A new Open311 key and its row; the plain key exists only in this answer, only its hash is kept."""
    name = name.strip()
    if not name:
        raise InvalidInput(N_("an API key needs a name"))
    if len(name) > 200:
        raise InvalidInput(N_("an API key's name has at most 200 characters"))
    key = new_api_key()
    row = ApiKey(name=name, key_hash=hash_api_key(key))
    session.add(row)
    session.flush()
    record(session, actor=actor, action="apikey.create", object_type="api_key", object_id=row.id, name=row.name)
    return row, key


def create_api_key(session: Session, *, name: str, actor: User | None = None) -> str:
    """A new Open311 key; the plain key is returned once and only its hash is kept."""
    return issue_api_key(session, name=name, actor=actor)[1]


def list_api_keys(session: Session) -> list[ApiKey]:
    """Every Open311 key, newest first, revoked ones included (their history matters)."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id.desc())))


def get_api_key(session: Session, *, key_id: int) -> ApiKey:
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFound(N_("no API key %(id)d"), id=key_id)
    return row


@atomic
def revoke_api_key(session: Session, *, actor: User, key_id: int) -> ApiKey:
    """Stop a key at once; the row stays so the log still says whose requests came in with it."""
    row = get_api_key(session, key_id=key_id)
    if row.revoked_at is not None:
        return row
    row.revoked_at = utcnow()
    session.flush()
    record(session, actor=actor, action="apikey.revoke", object_type="api_key", object_id=row.id, name=row.name)
    return row


def check_api_key(session: Session, key: str | None) -> ApiKey | None:
    if not key:
        return None
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_api_key(key)))
    return row if row is not None and row.revoked_at is None else None


def read_audit_log(session: Session, *, viewer: User, filters: AuditFilters) -> tuple[list[AuditRow], int]:
    """The audit log as `viewer` may read it, newest first, and how many entries match in all.

    An entry about an anonymous clue names its reporter (as the actor, or in its details) only to
    those the policy lets see the reporter: to everyone else the actor is withheld.
    """
    rows, total = list_entries(session, filters=filters)
    ids = {int(r.entry.object_id) for r in rows if r.entry.object_type == "clue" and r.entry.object_id.isdigit()}
    clues = {c.id: c for c in session.scalars(select(Clue).where(Clue.id.in_(ids)))} if ids else {}
    shown = []
    for row in rows:
        clue = (
            clues.get(int(row.entry.object_id))
            if row.entry.object_type == "clue" and row.entry.object_id.isdigit()
            else None
        )
        if clue is None or clue.reporter_id is None or policy.may_see_reporter(viewer, clue):
            shown.append(row)
            continue
        by_reporter = row.actor is not None and row.actor.id == clue.reporter_id
        detail = {k: v for k, v in row.detail.items() if k != "reporter_id"}
        shown.append(AuditRow(row.entry, None if by_reporter else row.actor, detail, actor_withheld=by_reporter))
    return shown, total
