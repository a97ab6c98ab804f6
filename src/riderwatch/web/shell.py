"""The pages every user shares: the start page of each role, the choice of language, the rider pages' service worker."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from riderwatch.deps import OptionalUser, SettingsDep
from riderwatch.errors import (
    N_,
    NotFound,
)
from riderwatch.i18n import LOCALE_COOKIE, LOCALES
from riderwatch.models import User
from riderwatch.web.forms import see_other
from riderwatch.web.templating import STATIC_DIR, navigation, render, safe_next

router = APIRouter(include_in_schema=False)


def home_path(user: User) -> str | None:
    """The first page of the user's role: the queue, their assignments, or the report form; for a user
    who must first choose their own password, the form for it."""
    if user.must_change_password:
        return "/account"
    nav = navigation(user)
    return nav[0][0] if nav else None


@router.get("/")
def home(request: Request, user: OptionalUser) -> Response:
    if user is None:
        return see_other("/login")
    target = home_path(user)
    if target is not None:
        return see_other(target)
    return render(request, "home.html")


@router.get("/lang/{code}")
def choose_language(code: str, settings: SettingsDep, next: str = "/") -> Response:
    if code not in LOCALES:
        raise NotFound(N_("no language %(code)r; choose one of: %(choices)s"), code=code, choices=", ".join(LOCALES))
    response = see_other(safe_next(next))
    response.set_cookie(
        LOCALE_COOKIE,
        code,
        max_age=365 * 24 * 3600,
        path="/",
        samesite="lax",
        httponly=True,
        secure=settings.secure_cookies,
    )
    return response


@router.get("/sw.js")
def service_worker() -> Response:
    """The rider pages' service worker, served from the root so its scope covers them."""
    return FileResponse(
        STATIC_DIR / "js" / "sw.js",
        media_type="text/javascript",
        headers={"Service-Worker-Allowed": "/", "Cache-Control": "no-cache"},
    )
