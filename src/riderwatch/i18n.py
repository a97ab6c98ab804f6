"""Simplified Chinese first, English second: Babel catalogues, chosen per request.

The .po files under locale/ are the source; they are compiled in memory at start-up, so there is
no build step and no compiled file to forget.
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from starlette.requests import Request

LOCALES = ("zh", "en")
DEFAULT_LOCALE = "zh"
LOCALE_DIR = Path(__file__).parent / "locale"
LOCALE_COOKIE = "rw_lang"


@cache
def translations(locale: str) -> NullTranslations:
    po = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf)


def pick_locale(choice: str | None, accept_language: str | None) -> str:
    """The user's choice if known, else the first supported browser language, else Chinese."""
    if choice in LOCALES:
        return choice
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        base = tag.split("-")[0]
        if base in LOCALES:
            return base
    return DEFAULT_LOCALE


def request_locale(request: Request) -> str:
    user = getattr(request.state, "user", None)
    choice = request.cookies.get(LOCALE_COOKIE) or (user.locale if user is not None else None)
    return pick_locale(choice, request.headers.get("accept-language"))


def N_(message: str) -> str:
    """Mark a message for extraction by Babel; it is translated where it is shown."""
    return message


def gettext(locale: str, message: str) -> str:
    return translations(locale).gettext(message)
