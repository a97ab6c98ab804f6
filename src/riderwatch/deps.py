"""Request dependencies: settings, the database session (the request owns the transaction), the user."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, ParamSpec, TypeVar

import anyio
from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session

from riderwatch import policy
from riderwatch.config import Settings
from riderwatch.errors import N_, Forbidden, NotAuthenticated
from riderwatch.infra.fields import MAX_ID
from riderwatch.infra.files import FileStore
from riderwatch.models import User
from riderwatch.security import read_token

P = ParamSpec("P")
R = TypeVar("R")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# A row id in a path: beyond what the databases store it names nothing (422, never a database error).
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]


# Plain lookups are `async def`: FastAPI runs a plain `def` dependency in a worker thread, a hop that
# costs more than the lookup.
async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_store(request: Request) -> FileStore:
    store: FileStore = request.app.state.photo_store
    return store


READS = frozenset({"GET", "HEAD"})


def writes_on_read(endpoint: Callable[P, R]) -> Callable[P, R]:
    """Mark a GET route that writes (an audited view of personal data, OsmAnd's GET positions): its
    transaction may write. Every other GET reads in a read-only transaction (see get_db)."""
    setattr(endpoint, "riderwatch_writes", True)  # noqa: B010  (an attribute the type does not declare)
    return endpoint


def reads_only(endpoint: Callable[P, R]) -> Callable[P, R]:
    """Mark a writing route whose writes go through a group-commit writer (infra/groupcommit.py): its own
    transaction only reads (who the caller is), so it holds no lock while the writer works."""
    setattr(endpoint, "riderwatch_reads_only", True)  # noqa: B010  (an attribute the type does not declare)
    return endpoint


def _endings(request: Request) -> anyio.CapacityLimiter:
    """Threads of their own for ending a request's transaction. A session that holds a connection and waits
    to commit must never wait behind worker threads that wait for a connection (all of them, in a burst):
    each would wait for the other until the pool's timeout."""
    limiter: anyio.CapacityLimiter | None = getattr(request.app.state, "transaction_endings", None)
    if limiter is None:
        limiter = request.app.state.transaction_endings = anyio.CapacityLimiter(ENDINGS_AT_ONCE)
    return limiter


ENDINGS_AT_ONCE = 32


async def get_db(request: Request) -> AsyncIterator[Session]:
    """One session per request; committed when the route returns, before the response is sent.

    A GET or HEAD reads in a read-only transaction, unless its route is marked `writes_on_read`: the
    database refuses a write there, and on SQLite such a request takes no lock, so pages and lists go on
    while positions and clues are written.

    `async def`, with the database work in worker threads: making a session touches no database (it
    connects when first used), so only a commit or a rollback is worth a thread hop, and a request whose
    session was never used or was closed by its route (`reads_only`) makes none."""
    endpoint = request.scope.get("endpoint")
    reads = (request.method in READS and not getattr(endpoint, "riderwatch_writes", False)) or getattr(
        endpoint, "riderwatch_reads_only", False
    )
    factory = request.app.state.read_session_factory if reads else request.app.state.session_factory
    session: Session = factory()
    request.state.db = session  # what the page's layout reads (the unread notices) is read in it too
    endings = _endings(request)
    try:
        yield session
        if session.in_transaction():
            await anyio.to_thread.run_sync(session.commit, limiter=endings)
    except BaseException:
        if session.in_transaction():
            with anyio.CancelScope(shield=True):  # a client that left still gets its transaction undone
                await anyio.to_thread.run_sync(session.rollback, limiter=endings)
        raise
    finally:
        session.close()  # no transaction is open here: nothing to wait for
        request.state.db = None


SettingsDep = Annotated[Settings, Depends(get_settings)]
DbSession = Annotated[Session, Depends(get_db, scope="function")]
StoreDep = Annotated[FileStore, Depends(get_store)]


def public_base(request: Request) -> str:
    """The server's address as phones reach it: the setting, else the address this request came in on."""
    configured = str(request.app.state.settings.public_base_url).strip()
    return (configured or str(request.base_url)).rstrip("/")


def client_id(request: Request) -> str:
    return request.client.host if request.client else ""


async def check_form_token(request: Request) -> None:
    """A form sent without a login (the join form) carries the session's CSRF token too, so that another
    site cannot make a visitor's browser send it."""
    await _check_csrf(request)


async def _check_csrf(request: Request) -> None:
    expected = request.session.get("csrf")
    given = request.headers.get("x-csrf-token")
    if given is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf_token")
        given = value if isinstance(value, str) else None
    if not expected or not given or not secrets.compare_digest(str(expected), given):
        raise Forbidden(N_("missing or wrong CSRF token; reload the page and try again"))


@dataclass(frozen=True)
class Caller:
    user: User | None
    via_session: bool


def identify_caller(request: Request, db: DbSession, settings: SettingsDep) -> Caller:
    """The caller from a bearer token, else from the session cookie.

    A plain `def` on purpose: FastAPI runs it in a worker thread. Its query opens the request's
    transaction, which on SQLite waits for the write lock (BEGIN IMMEDIATE); waiting on the event
    loop instead would freeze every other request, including the one holding the lock. For a route
    marked `reads_only` that transaction also ends here, in the same thread, and its connection goes back
    to the pool before the route waits for a group-commit writer (which needs one).
    """
    try:
        return _identify(request, db, settings)
    finally:
        if getattr(request.scope.get("endpoint"), "riderwatch_reads_only", False):
            db.close()


def _identify(request: Request, db: Session, settings: Settings) -> Caller:
    auth = request.headers.get("authorization", "")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise NotAuthenticated(N_("use 'Authorization: Bearer <token>' from /api/v1/auth/token"))
        claims = read_token(settings.signing_key, token.strip(), settings.token_ttl_seconds)
        user = policy.signed_in_user(db, user_id=claims["uid"], token_version=claims["v"]) if claims else None
        if user is None:
            raise NotAuthenticated(N_("the token is invalid or expired; log in again"))
        return Caller(user=user, via_session=False)
    uid, version, key = request.session.get("uid"), request.session.get("v"), request.session.get("sid")
    if not isinstance(uid, int) or not isinstance(version, int) or not isinstance(key, str):
        return Caller(user=None, via_session=False)
    user = policy.signed_in_user(db, user_id=uid, token_version=version, session_key=key)
    if user is None:
        request.session.clear()
    return Caller(user=user, via_session=True)


async def optional_user(request: Request, caller: Annotated[Caller, Depends(identify_caller)]) -> User | None:
    """The caller, if any; a session-cookie caller needs the CSRF token on writes."""
    user = caller.user
    if user is None or not caller.via_session:
        return user
    # Known before the token is checked: a refused form (a wrong token, a body too large to read) is
    # answered with the error page in the signed-in user's layout and language.
    request.state.user = user
    if request.method in UNSAFE_METHODS:
        await _check_csrf(request)
    return user


async def current_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
    if user is None:
        raise NotAuthenticated(N_("log in first"))
    return user


def login_hashes(request: Request) -> anyio.CapacityLimiter:
    """The process's slots for checking passwords (settings.login_hashes_at_once)."""
    limiter: anyio.CapacityLimiter | None = getattr(request.app.state, "login_hashes", None)
    if limiter is None:
        slots = request.app.state.settings.login_hashes_at_once
        limiter = request.app.state.login_hashes = anyio.CapacityLimiter(slots)
    return limiter


OptionalUser = Annotated[User | None, Depends(optional_user)]
CurrentUser = Annotated[User, Depends(current_user)]


def require(permission: str) -> Callable[[User], Awaitable[User]]:
    """A dependency that lets through only users holding `permission` (see policy.PERMISSIONS)."""

    async def check(user: CurrentUser) -> User:  # no I/O: a thread hop would cost more than the check
        policy.ensure(user, permission)
        return user

    return check


def require_any(*permissions: str) -> Callable[[User], Awaitable[User]]:
    """A dependency that lets through users holding one of `permissions` (refused as for the first)."""

    async def check(user: CurrentUser) -> User:
        held = next((p for p in permissions if policy.has_permission(user, p)), permissions[0])
        policy.ensure(user, held)
        return user

    return check
