"""Domain errors. The API renders them as problem+json (RFC 9457); pages show their message.

A message is an English template marked with `N_` and filled with named parameters:

    raise InvalidInput(N_("no zone %(code)r"), code=code)

The API's `detail` is the English text (`message % params`); pages show `exc.translated(_)`, the
template in the reader's language filled with the same parameters. Parameters are user data (codes,
names, numbers) and are never translated, except words of RiderWatch's own marked as `Term`. A
message without parameters is used as it is (no `%` formatting), so plain strings keep working.
Keywords the message does not name are extra problem fields for API clients (`errors`, `retry_after`,
…), as before: `exc.extra`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from starlette.responses import JSONResponse

from riderwatch.i18n import N_ as N_
from riderwatch.i18n import translations

_PLACEHOLDER = re.compile(r"%\((\w+)\)")


class Term(str):
    """A word of RiderWatch's own vocabulary used as a parameter ("community", "grid"): unlike user data,
    it is translated with the message that names it."""


class DomainError(Exception):
    """An error a user can act on. `status` is the HTTP status the API answers with."""

    status = 400
    title = "Bad request"
    type_ = "about:blank"

    def __init__(self, message: str, /, **kwargs: Any) -> None:
        # The keywords the message names are its parameters; any other is an extra problem field.
        named = set(_PLACEHOLDER.findall(message))
        self.message = message
        self.params: dict[str, Any] = {k: v for k, v in kwargs.items() if k in named}
        self.extra: dict[str, Any] = {k: v for k, v in kwargs.items() if k not in named}
        self.detail = message % self.params if self.params else message
        super().__init__(self.detail)

    def translated(self, gettext: Callable[[str], str]) -> str:
        """The message in the reader's language (through `gettext`), filled with the untranslated parameters."""
        text = gettext(self.message)
        if not self.params:
            return text
        return text % {k: gettext(v) if isinstance(v, Term) else v for k, v in self.params.items()}


class InvalidInput(DomainError):
    status = 422
    title = "Invalid input"
    type_ = "/problems/invalid-input"


class NotAuthenticated(DomainError):
    status = 401
    title = "Not authenticated"
    type_ = "/problems/not-authenticated"


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"
    type_ = "/problems/forbidden"


class PasswordChangeRequired(Forbidden):
    """The user signs in with a password someone else chose and must choose their own first (pages go to
    the password form)."""

    type_ = "/problems/password-change-required"


class NotFound(DomainError):
    status = 404
    title = "Not found"
    type_ = "/problems/not-found"


class Conflict(DomainError):
    status = 409
    title = "Conflict"
    type_ = "/problems/conflict"


class TransitionNotAllowed(Conflict):
    title = "Action not allowed in this status"
    type_ = "/problems/transition-not-allowed"


class TooManyRequests(DomainError):
    status = 429
    title = "Too many requests"
    type_ = "/problems/too-many-requests"


class PayloadTooLarge(DomainError):
    status = 413
    title = "Payload too large"
    type_ = "/problems/payload-too-large"


class UnsupportedMedia(DomainError):
    status = 415
    title = "Unsupported media type"
    type_ = "/problems/unsupported-media-type"


def problem(status: int, title: str, detail: str, type_: str = "about:blank", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": type_, "title": title, "status": status, "detail": detail}
    body.update(extra)
    return body


PROBLEM_JSON = "application/problem+json"


def problem_response(exc: DomainError, instance: str | None = None, locale: str | None = None) -> JSONResponse:
    """A DomainError as an RFC 9457 problem document.

    `detail` is always English; with the reader's `locale`, `localized_detail` adds the same message
    in that language when there is a translation (the pages' scripts show it).
    """
    body = problem(exc.status, exc.title, exc.detail, exc.type_, **exc.extra)
    if locale is not None:
        localized = exc.translated(translations(locale).gettext)
        if localized != exc.detail:
            body["localized_detail"] = localized
    if instance:
        body["instance"] = instance
    headers: dict[str, str] = {}
    if isinstance(exc, NotAuthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    if "retry_after" in exc.extra:
        headers["Retry-After"] = str(exc.extra["retry_after"])
    return JSONResponse(body, status_code=exc.status, media_type=PROBLEM_JSON, headers=headers)


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": (
        "An RFC 9457 problem document; some problems add fields (errors, status_now, retry_after). `detail` is "
        "English; `localized_detail`, when present, is the same message in the reader's language."
    ),
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "localized_detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "additionalProperties": True,
}


def document_problems(openapi: dict[str, Any], prefix: str = "/api/") -> dict[str, Any]:
    """Say in the OpenAPI document what the API really answers on errors: problem+json for any 4xx.

    FastAPI documents its own 422 shape as application/json; clients (and schema-driven tests) must
    instead expect RFC 9457 documents, from validation and from every DomainError alike.
    """
    openapi.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    problem_content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in openapi.get("paths", {}).items():
        if not path.startswith(prefix):
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for code in [c for c in responses if c.startswith("4")]:
                responses[code]["content"] = problem_content
            responses.setdefault("4XX", {"description": "A problem (RFC 9457)", "content": problem_content})
    return openapi
