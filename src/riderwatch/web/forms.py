"""What every page's form handling shares: the redirect after a change, the reader's formatter, and the
messages for a change done or refused."""

from __future__ import annotations

from typing import Any

from fastapi import Form, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from riderwatch.errors import Conflict, DomainError
from riderwatch.i18n import request_locale
from riderwatch.web.templating import Formatter

# Form fields are capped well above what the schemas allow, so that a value slightly too long gets
# the schema's message on the page instead of an error page; the cap only stops absurd requests.
SHORT = 1000
LONG = 8000


def form_text(max_length: int = SHORT) -> Any:
    """A text field of a form, capped at `max_length` characters."""
    return Form(max_length=max_length)


def see_other(url: str) -> RedirectResponse:
    """After a change, the browser loads `url` (303): a reload does not send the form again."""
    return RedirectResponse(url, status_code=303)


def formatter(request: Request) -> Formatter:
    """Texts, numbers and times in the reader's language and the station's time zone."""
    return Formatter(request_locale(request), request.app.state.settings.timezone)


def in_reader_language(request: Request, zh: str, en: str) -> str:
    """Bilingual content (a course, an alert) in the reader's language: the English text when the reader
    reads English and there is one, else the Chinese."""
    return en if formatter(request).locale == "en" and en else zh


def labels_in(request: Request, table: dict[str, str]) -> dict[str, str]:
    """A table of labels (code → message id) in the reader's language."""
    _ = formatter(request)._
    return {code: _(label) for code, label in table.items()}


def done_message(request: Request, done: str, messages: dict[str, str]) -> dict[str, Any]:
    """The page message for a change just done (`?done=…` after the redirect), if it is one of `messages`."""
    if done not in messages:
        return {}
    return {"message": formatter(request)._(messages[done]), "message_kind": "success"}


def refusal(request: Request, exc: DomainError | ValidationError) -> tuple[dict[str, Any], int]:
    """The page message for a refused form or action (a lead in the reader's language, the reason), and the status."""
    _ = formatter(request)._
    if isinstance(exc, ValidationError):
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in exc.errors())
        return {"message": _("Please correct the form."), "message_detail": detail, "message_kind": "error"}, 422
    lead = _("Not possible now.") if isinstance(exc, Conflict) else _("Please correct the form.")
    return {"message": lead, "message_detail": exc.translated(_), "message_kind": "error"}, exc.status
