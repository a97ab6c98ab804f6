"""Authentication and the caller's own account, under /api/v1."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from riderwatch.accounts import service
from riderwatch.accounts.admin_api import router as admin_router
from riderwatch.accounts.login import LoginLimits, change_own_password, known_waits, sign_in
from riderwatch.accounts.schemas import PasswordChange
from riderwatch.deps import CurrentUser, DbSession, SettingsDep, client_id, login_hashes, reads_only
from riderwatch.errors import NotAuthenticated, problem_response
from riderwatch.models import Rider
from riderwatch.security import issue_token

router = APIRouter(prefix="/api/v1", tags=["accounts"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105  (the OAuth2 token type, not a secret)
    expires_in: int


class Me(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    locale: str | None
    station_id: int | None
    platform_id: int | None
    community_id: int | None
    grid_id: int | None
    patrol_unit_id: int | None
    rider_status: str | None = None
    location_consent: bool | None = None
    must_change_password: bool = False


@router.post(
    "/auth/token",
    response_model=Token,
    responses={401: {"description": "wrong credentials"}},
    summary="OAuth2 password flow: a bearer token",
)
async def login_for_token(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    settings: SettingsDep,
    hashes: Annotated[anyio.CapacityLimiter, Depends(login_hashes)],
) -> Token | JSONResponse:
    # No request transaction: sign_in keeps its own two short ones, and checks the password between them.
    result = await sign_in(
        request.app.state.session_factory,
        request.app.state.read_session_factory,
        hashes,
        known_waits(request.app.state),
        username=form.username,
        password=form.password,
        client=client_id(request),
        limits=LoginLimits.of(settings),
        start_session=False,
        session_ttl=settings.token_ttl_seconds,
    )
    if isinstance(result, NotAuthenticated):
        return problem_response(result)
    return Token(
        access_token=issue_token(settings.signing_key, result.user.id, result.user.token_version),
        expires_in=settings.token_ttl_seconds,
    )


@router.get("/me", response_model=Me, summary="Who the caller is")
def me(user: CurrentUser, db: DbSession) -> Me:
    rider = db.get(Rider, user.id) if user.role == "rider" else None
    return Me(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        locale=user.locale,
        station_id=user.station_id,
        platform_id=user.platform_id,
        community_id=user.community_id,
        grid_id=user.grid_id,
        patrol_unit_id=user.patrol_unit_id,
        rider_status=rider.status if rider else None,
        location_consent=rider.location_consent if rider else None,
        must_change_password=user.must_change_password,
    )


@router.put(
    "/me/password",
    status_code=204,
    response_class=Response,
    summary="Change my password: every session and token ends (sign in again with the new one)",
)
@reads_only
async def change_my_password(
    request: Request,
    body: PasswordChange,
    user: CurrentUser,
    settings: SettingsDep,
    hashes: Annotated[anyio.CapacityLimiter, Depends(login_hashes)],
) -> Response:
    # `reads_only`: who the caller is was read in a transaction that has ended; the change keeps its own
    # short ones and hashes between them (see change_own_password).
    await change_own_password(
        request.app.state.session_factory,
        request.app.state.read_session_factory,
        hashes,
        known_waits(request.app.state),
        user=user,
        current=body.current_password,
        new=body.new_password,
        client=client_id(request),
        limits=LoginLimits.of(settings),
    )
    return Response(status_code=204)


@router.post(
    "/me/sign-out-everywhere",
    status_code=204,
    response_class=Response,
    summary="End every session and token of mine (a lost phone, a shared computer)",
)
def sign_out_everywhere(user: CurrentUser, db: DbSession) -> Response:
    service.sign_out_everywhere(db, user=user)
    return Response(status_code=204)


# Administration lives in its own module; it shares this router's /api/v1 prefix.
router.include_router(admin_router)
