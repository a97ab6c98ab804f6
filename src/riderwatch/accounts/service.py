"""Accounts: creating users, logging in (rate limited), tokens and API keys."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from riderwatch.audit.service import record
from riderwatch.db import utcnow
from riderwatch.errors import Conflict, InvalidInput, NotAuthenticated, TooManyRequests
from riderwatch.models import ApiKey, LoginFailure, Rider, Station, User
from riderwatch.models.accounts import ROLES
from riderwatch.security import hash_api_key, hash_password, new_api_key, verify_password

MIN_PASSWORD = 8


def create_user(
    session: Session,
    *,
    username: str,
    role: str,
    password: str,
    display_name: str = "",
    station_code: str | None = None,
    actor: User | None = None,
    phone: str | None = None,
    rider_status: str = "active",
    joined_on: date | None = None,
) -> User:
    """An active account that can act at once; a rider also gets a team membership."""
    username = username.strip()
    if not username or len(username) > 64 or any(c.isspace() for c in username):
        raise InvalidInput("username must be 1 to 64 characters without spaces")
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}; roles are: {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"password must be at least {MIN_PASSWORD} characters")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"user {username!r} already exists")
    station = None
    if station_code:
        station = session.scalar(select(Station).where(Station.code == station_code))
        if station is None:
            raise InvalidInput(f"no station {station_code!r}")
    user = User(
        username=username,
        role=role,
        password_hash=hash_password(password),
        display_name=display_name or username,
        phone=phone,
        station_id=station.id if station else None,
        platform_id=station.platform_id if station else None,
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
                joined_on=joined_on or utcnow().date(),
            )
        )
    record(session, actor=actor, action="user.create", object_type="user", object_id=user.id, role=role)
    session.flush()
    return user


def _recent_failures(session: Session, username: str, since: datetime) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(LoginFailure)
            .where(LoginFailure.username == username, LoginFailure.at >= since)
        )
        or 0
    )


def authenticate(
    session: Session,
    *,
    username: str,
    password: str,
    client: str,
    max_failures: int,
    window_seconds: int,
    now: datetime | None = None,
) -> User | NotAuthenticated:
    """The user for these credentials, or the error to show.

    A failure is recorded (and must be committed by the caller) rather than raised, so that the
    rate limit counts it; too many recent failures lock the name for the window.
    """
    now = now or utcnow()
    since = now - timedelta(seconds=window_seconds)
    # Failures are stored under the name cut to the column's width: count them the same way, or
    # a longer name would never be locked.
    key = username[:64]
    if _recent_failures(session, key, since) >= max_failures:
        raise TooManyRequests(
            f"too many failed logins for {username!r}; try again in {window_seconds // 60} minutes",
            retry_after=window_seconds,
        )
    user = session.scalar(select(User).where(User.username == username))
    # Always verify (against a dummy hash for unknown names) so timing does not reveal usernames.
    password_ok = verify_password(user.password_hash if user else None, password)
    if user is None or not password_ok or not user.is_active:
        session.add(LoginFailure(username=key, client=client[:64], at=now))
        session.flush()
        return NotAuthenticated("wrong username or password")
    session.execute(delete(LoginFailure).where(LoginFailure.username == key))
    record(session, actor=user, action="user.login", object_type="user", object_id=user.id, client=client)
    return user


def get_active_user(session: Session, *, user_id: int, token_version: int) -> User | None:
    user = session.get(User, user_id)
    if user is None or not user.is_active or user.token_version != token_version:
        return None
    return user


def create_api_key(session: Session, *, name: str, actor: User | None = None) -> str:
    """A new Open311 key; the plain key is returned once and only its hash is kept."""
    if not name.strip():
        raise InvalidInput("an API key needs a name")
    key = new_api_key()
    row = ApiKey(name=name.strip(), key_hash=hash_api_key(key))
    session.add(row)
    session.flush()
    record(session, actor=actor, action="apikey.create", object_type="api_key", object_id=row.id, name=row.name)
    return key


def check_api_key(session: Session, key: str | None) -> ApiKey | None:
    if not key:
        return None
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_api_key(key)))
    return row if row is not None and row.revoked_at is None else None
