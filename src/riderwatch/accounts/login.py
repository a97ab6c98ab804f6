"""Signing in, built so that a flood of logins costs the server little and locks no one out.

A login is three steps, and this module owns its transactions (the route holds none):
1. a read-only look answers 429 at once while a limit says wait; else a short transaction checks the
   limits again and records the attempt as a failure before the password is checked, so attempts
   running side by side count each other (on PostgreSQL an advisory lock on the name makes the count
   exact);
2. the password is checked (argon2: about 0.1 s of a core, 64 MiB) outside any transaction, in a worker
   thread, a bounded number at once per process;
3. a short transaction turns a success into a login: the failures of that name from that address go,
   the login is audited and, for a browser, a session row is started.

Failures are counted per account name from one address, per address over all names (one password
tried against many names) and per name over all addresses. Past each scope's threshold a further
try must wait 1 s, 2 s, 4 s … (up to the window) after the scope's latest failure; while it waits it is
answered 429 at once, with no hash and nothing recorded. A flood from one address so slows only that
address, and the real user, on their own, is slowed only by a flood from many addresses at once.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import anyio
from sqlalchemy import and_, delete, func, or_, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from riderwatch.accounts import service
from riderwatch.audit.service import record
from riderwatch.config import Settings
from riderwatch.db import in_transaction
from riderwatch.errors import N_, InvalidInput, NotAuthenticated, TooManyRequests
from riderwatch.infra.clock import utcnow
from riderwatch.models import LoginFailure, User, UserSession
from riderwatch.security import hash_password, hash_session_key, new_session_key, verify_password

# Stored under the columns' widths: a longer name or address is counted by its first 64 characters.
NAME_WIDTH = 64
CLIENT_WIDTH = 64


@dataclass(frozen=True)
class LoginLimits:
    """When failures start to slow further tries (see the module's docstring)."""

    per_name_and_address: int
    per_address: int
    per_name: int
    window_seconds: int

    @classmethod
    def of(cls, settings: Settings) -> LoginLimits:
        return cls(
            per_name_and_address=settings.login_max_failures,
            per_address=settings.login_address_max_failures,
            per_name=settings.login_account_max_failures,
            window_seconds=settings.login_window_seconds,
        )


@dataclass(frozen=True)
class Attempt:
    """A login attempt recorded (as a failure until it succeeds) and what its password is checked against."""

    failure_id: int
    name: str
    client: str
    user_id: int | None
    password_hash: str | None


@dataclass(frozen=True)
class SignedIn:
    user: User
    # The browser session's key (only its hash is stored), when a session was asked for.
    session_key: str | None


def _wait(failures: int, threshold: int, latest: datetime | None, now: datetime, longest: int) -> float:
    """Seconds still to wait in one scope: none below its threshold, then 1, 2, 4 … after its latest failure."""
    if failures < threshold or latest is None:
        return 0.0
    delay = min(2 ** min(failures - threshold, 30), longest)
    return (latest + timedelta(seconds=delay) - now).total_seconds()


def _name_lock(session: Session, name: str) -> None:
    """Serialise attempts on one name on PostgreSQL (SQLite's write lock does so already)."""
    if session.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(b"login:" + name.encode()).digest()[:8], "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _scopes(username: str, client: str) -> tuple[str, str, str]:
    """Keys of the three scopes a failure counts in: name from address, address, name."""
    name, client = username[:NAME_WIDTH], client[:CLIENT_WIDTH]
    return f"pair {client} {name}", f"address {client}", f"name {name}"


def waits(session: Session, *, username: str, client: str, limits: LoginLimits, now: datetime) -> dict[str, float]:
    """The scopes that must still wait, with the seconds left (none: go on)."""
    name, client = username[:NAME_WIDTH], client[:CLIENT_WIDTH]
    F = LoginFailure
    pair = and_(F.username == name, F.client == client)
    row = session.execute(
        select(
            func.count().filter(pair),
            func.max(F.at).filter(pair),
            func.count().filter(F.client == client),
            func.max(F.at).filter(F.client == client),
            func.count().filter(F.username == name),
            func.max(F.at).filter(F.username == name),
        ).where(F.at >= now - timedelta(seconds=limits.window_seconds), or_(F.username == name, F.client == client))
    ).one()
    longest = limits.window_seconds
    found = zip(
        _scopes(username, client),
        (
            _wait(row[0], limits.per_name_and_address, row[1], now, longest),
            _wait(row[2], limits.per_address, row[3], now, longest),
            _wait(row[4], limits.per_name, row[5], now, longest),
        ),
        strict=True,
    )
    return {scope: seconds for scope, seconds in found if seconds > 0}


def too_many(seconds: float) -> TooManyRequests:
    wait = math.ceil(seconds)
    return TooManyRequests(
        N_("too many failed logins; try again in %(seconds)d seconds"), seconds=wait, retry_after=wait
    )


REMEMBERED_WAIT_SECONDS = 5.0


class KnownWaits:
    """Waits the database has imposed, remembered by this server process: a try that comes back before its
    time is answered with no query at all. The database stays the authority (a try let through here is
    checked there again), so several processes each remembering their own is harmless."""

    def __init__(self, max_scopes: int = 10_000) -> None:
        self._until: OrderedDict[str, datetime] = OrderedDict()
        self._lock = threading.Lock()
        self.max_scopes = max_scopes

    def left(self, username: str, client: str, now: datetime) -> float:
        with self._lock:
            until = [self._until.get(scope) for scope in _scopes(username, client)]
        return max([(u - now).total_seconds() for u in until if u is not None], default=0.0)

    def note(self, found: dict[str, float], now: datetime) -> None:
        with self._lock:
            for scope, seconds in found.items():
                # Remembered a few seconds at most: an administrator's password reset lifts a lock in the
                # database, and the user should not wait long for this process to notice.
                self._until[scope] = now + timedelta(seconds=min(seconds, REMEMBERED_WAIT_SECONDS))
                self._until.move_to_end(scope)
            while len(self._until) > self.max_scopes:
                self._until.popitem(last=False)


def known_waits(state: Any) -> KnownWaits:
    """The server process's KnownWaits, kept on `state` (the app's)."""
    known: KnownWaits | None = getattr(state, "known_login_waits", None)
    if known is None:
        known = state.known_login_waits = KnownWaits()
    return known


def check_wait(session: Session, *, username: str, client: str, limits: LoginLimits, now: datetime) -> None:
    """Raise 429 while a limit says this name from this address must wait."""
    found = waits(session, username=username, client=client, limits=limits, now=now)
    if found:
        raise too_many(max(found.values()))


def begin_attempt(session: Session, *, username: str, client: str, limits: LoginLimits, now: datetime) -> Attempt:
    """Step 1: refuse with 429 while a limit says wait; else record the attempt as a failure."""
    name, client = username[:NAME_WIDTH], client[:CLIENT_WIDTH]
    _name_lock(session, name)
    check_wait(session, username=username, client=client, limits=limits, now=now)
    user = session.execute(select(User.id, User.password_hash).where(User.username == username)).one_or_none()
    failure = LoginFailure(username=name, client=client, at=now)
    session.add(failure)
    session.flush()
    return Attempt(
        failure_id=failure.id,
        name=name,
        client=client,
        user_id=user.id if user else None,
        password_hash=user.password_hash if user else None,
    )


def finish_attempt(
    session: Session,
    *,
    attempt: Attempt,
    password_ok: bool,
    start_session: bool,
    now: datetime,
    session_ttl: int,
    audit_action: str | None = "user.login",
) -> SignedIn | NotAuthenticated:
    """Step 3: a checked password becomes a login (the attempt's failure, and that address's others for
    the name, are deleted); anything else leaves the failure recorded."""
    user = session.get(User, attempt.user_id) if attempt.user_id is not None else None
    # The account may have been deactivated, or its password reset, while the hash was checked.
    if not password_ok or user is None or not user.is_active or user.password_hash != attempt.password_hash:
        return NotAuthenticated(N_("wrong username or password"))
    if user.password_expires_at is not None and user.password_expires_at <= now:
        return NotAuthenticated(N_("this one-time code has run out: ask your administrator for a new one"))
    session.execute(
        delete(LoginFailure).where(
            or_(
                LoginFailure.id == attempt.failure_id,
                and_(LoginFailure.username == attempt.name, LoginFailure.client == attempt.client),
            )
        )
    )
    if audit_action is not None:
        record(session, actor=user, action=audit_action, object_type="user", object_id=user.id, client=attempt.client)
    key = None
    if start_session:
        key = new_session_key()
        # The user's sessions that have ended or run out are not needed any more.
        session.execute(
            delete(UserSession).where(
                UserSession.user_id == user.id,
                or_(UserSession.ended_at.is_not(None), UserSession.started_at < now - timedelta(seconds=session_ttl)),
            )
        )
        session.add(UserSession(key_hash=hash_session_key(key), user_id=user.id, client=attempt.client, started_at=now))
    return SignedIn(user=user, session_key=key)


async def sign_in(
    factory: sessionmaker[Session],
    read_factory: sessionmaker[Session],
    hashes: anyio.CapacityLimiter,
    known: KnownWaits,
    *,
    username: str,
    password: str,
    client: str,
    limits: LoginLimits,
    start_session: bool,
    session_ttl: int,
    audit_action: str | None = "user.login",
) -> SignedIn | NotAuthenticated:
    """The three steps; raises TooManyRequests while a limit says wait. Also checks the current password
        before a change of password (then `audit_action` is None: the change is what the log records), under
    the same limits."""
    now = utcnow()
    # During a flood most tries are answered here: from what this process already knows (no query at
    # all), else from a look in a read-only transaction (on SQLite without the write lock).
    left = known.left(username, client, now)
    if left > 0:
        raise too_many(left)
    found = await anyio.to_thread.run_sync(
        in_transaction,
        read_factory,
        partial(waits, username=username, client=client, limits=limits, now=now),
    )
    if found:
        known.note(found, now)
        raise too_many(max(found.values()))
    attempt = await anyio.to_thread.run_sync(
        in_transaction,
        factory,
        partial(begin_attempt, username=username, client=client, limits=limits, now=now),
    )
    # An unknown name is checked against a dummy hash, so its answer takes as long as a wrong password.
    password_ok = await anyio.to_thread.run_sync(verify_password, attempt.password_hash, password, limiter=hashes)
    return await anyio.to_thread.run_sync(
        in_transaction,
        factory,
        partial(
            finish_attempt,
            attempt=attempt,
            password_ok=password_ok,
            start_session=start_session,
            now=now,
            session_ttl=session_ttl,
            audit_action=audit_action,
        ),
    )


def end_session(session: Session, *, user: User, session_key: str | None) -> None:
    """Logging out: the browser's session row ends, so no copy of its cookie signs anyone in again."""
    if not session_key:
        return
    ended = session.execute(
        update(UserSession)
        .where(
            UserSession.key_hash == hash_session_key(session_key),
            UserSession.user_id == user.id,
            UserSession.ended_at.is_(None),
        )
        .values(ended_at=utcnow())
    )
    if getattr(ended, "rowcount", 0):
        record(session, actor=user, action="user.logout", object_type="user", object_id=user.id)


async def change_own_password(
    factory: sessionmaker[Session],
    read_factory: sessionmaker[Session],
    hashes: anyio.CapacityLimiter,
    known: KnownWaits,
    *,
    user: User,
    current: str,
    new: str,
    client: str,
    limits: LoginLimits,
) -> int:
    """A user's change of their own password; the token version their sessions must carry from now on.

    The current password is checked as a login is (same limits: a stolen session cannot guess it), and
    both hashes are made outside any transaction; only the short compare-and-set write takes a lock.
    """
    service.check_new_password(current, new)
    checked = await sign_in(
        factory,
        read_factory,
        hashes,
        known,
        username=user.username,
        password=current,
        client=client,
        limits=limits,
        start_session=False,
        session_ttl=0,
        audit_action=None,
    )
    if isinstance(checked, NotAuthenticated):
        raise InvalidInput(N_("the current password is wrong"), field="current_password")
    new_hash = await anyio.to_thread.run_sync(hash_password, new, limiter=hashes)
    changed = await anyio.to_thread.run_sync(
        in_transaction,
        factory,
        partial(service.change_password, user_id=user.id, checked_hash=checked.user.password_hash, new_hash=new_hash),
    )
    return changed.token_version
