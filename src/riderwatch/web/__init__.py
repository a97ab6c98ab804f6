"""What every page shares: templating, forms, labels, error pages and the shell (start page, language)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy import inspect
from sqlalchemy.orm import Session, sessionmaker

from riderwatch import policy
from riderwatch.errors import DomainError
from riderwatch.i18n import request_locale, translations
from riderwatch.models import User
from riderwatch.web.labels import N_, STATUS_PAGE_TITLES
from riderwatch.web.templating import render


def _viewer(request: Request) -> User | None:
    """The logged-in user for the error page's layout and language.

    By the time an error is rendered the request's session has been rolled back and closed, which
    expires the user loaded for the request; read them again, briefly, from the session cookie.
    """
    user: User | None = getattr(request.state, "user", None)
    if user is None or not inspect(user).unloaded:
        return user
    uid, version, key = request.session.get("uid"), request.session.get("v"), request.session.get("sid")
    if not isinstance(uid, int) or not isinstance(version, int) or not isinstance(key, str):
        return None
    factory: sessionmaker[Session] = request.app.state.read_session_factory
    with factory() as session:
        return policy.signed_in_user(session, user_id=uid, token_version=version, session_key=key)


def render_error(request: Request, status: int, detail: str | DomainError) -> Response:
    """An error page in the layout and the reader's language; the detail is escaped like all text.

    A domain error's message is shown in the reader's language too.
    """
    request.state.user = _viewer(request)
    if isinstance(detail, DomainError):
        detail = detail.translated(translations(request_locale(request)).gettext)
    title = STATUS_PAGE_TITLES.get(status, N_("Something went wrong") if status >= 500 else N_("Bad request"))
    return render(request, "errors/error.html", {"status": status, "title": title, "detail": detail}, status=status)
