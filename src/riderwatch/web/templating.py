"""Rendering pages: one Jinja2 environment (autoescape on), the per-request context, security headers."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from babel.dates import format_date
from babel.units import format_unit
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch import policy
from riderwatch.config import Settings
from riderwatch.i18n import request_locale, translations
from riderwatch.models import Notice, User
from riderwatch.security import new_csrf_token
from riderwatch.web import labels

PACKAGE_DIR = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"
HTML_LANG = {"zh": "zh-Hans", "en": "en"}

_env = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@cache
def asset_version() -> str:
    """A short hash of every static file: part of their URLs, so browsers and the service worker
    never keep an old script next to a new page."""
    digest = hashlib.sha256()
    for path in sorted(p for p in STATIC_DIR.rglob("*") if p.is_file()):
        digest.update(path.relative_to(STATIC_DIR).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def static_url(path: str) -> str:
    return f"/static/{path}?v={asset_version()}"


def safe_next(target: str | None, default: str = "/") -> str:
    """A local path to go to after a form, never another site (open-redirect guard)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first need (the login form needs one before any login)."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or not token:
        token = new_csrf_token()
        request.session["csrf"] = token
    return token


def _tile_origin(tile_url: str) -> str:
    """The tile server's origin for the Content-Security-Policy ('{s}' subdomains become a wildcard)."""
    parts = urlsplit(tile_url.replace("{s}.", "*."))
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def security_headers(settings: Settings) -> dict[str, str]:
    tiles = _tile_origin(settings.tile_url) if settings.tile_url else ""
    csp = "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src 'self' data: blob:{' ' + tiles if tiles else ''}",
            "connect-src 'self'",
            "worker-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        # Pages hold personal data: the browser revalidates and shares them with no proxy.
        "Cache-Control": "private, no-cache",
        "Vary": "Cookie, Accept-Language",
    }


class Formatter:
    """Times and labels in the reader's language and the station's time zone."""

    def __init__(self, locale: str, timezone: str) -> None:
        self.locale = locale
        self.zone = ZoneInfo(timezone)
        self._ = translations(locale).gettext

    def time(self, value: datetime | None) -> str:
        if value is None:
            return ""
        return value.astimezone(self.zone).strftime("%Y-%m-%d %H:%M")

    def date(self, value: date | str | None) -> str:
        """A calendar day in the reader's words: 2026年3月1日, Mar 1, 2026."""
        if not value:
            return ""
        day = value if isinstance(value, date) else date.fromisoformat(value)
        return format_date(day, format="medium", locale="zh_Hans_CN" if self.locale == "zh" else "en")

    def size(self, count: int) -> str:
        """A file's size in the reader's words: 1.2 MB, 350 kB."""
        locale = "zh_Hans_CN" if self.locale == "zh" else "en"
        if count >= 1_000_000:
            return format_unit(round(count / 1_000_000, 1), "digital-megabyte", length="short", locale=locale)
        return format_unit(max(1, round(count / 1000)), "digital-kilobyte", length="short", locale=locale)

    def iso(self, value: datetime | None, timespec: str = "seconds") -> str:
        return value.astimezone(self.zone).isoformat(timespec=timespec) if value else ""

    def status(self, code: str) -> str:
        return self._(labels.STATUS_LABELS.get(code, code))

    def action(self, code: str) -> str:
        return self._(labels.ACTION_LABELS.get(code, code))

    def event(self, code: str) -> str:
        return self._(labels.EVENT_LABELS.get(code, code))

    def role(self, code: str) -> str:
        return self._(labels.ROLE_LABELS.get(code, code))

    def group(self, code: str) -> str:
        return self._(labels.GROUP_LABELS.get(code, code))

    def grade(self, code: str | None) -> str:
        return self._(labels.GRADE_LABELS.get(code, code)) if code else ""

    def actor(self, label: str) -> str:
        return self._(labels.ACTOR_LABELS[label]) if label in labels.ACTOR_LABELS else label


def navigation(user: User | None) -> list[tuple[str, str, str]]:
    """(path, English label, test id) of the pages the user may open, by permission."""
    if user is None:
        return []
    items: list[tuple[str, str, str]] = []
    if policy.has_permission(user, "clue.desk"):
        items.append(("/desk", labels.N_("Clue queue"), "nav-desk"))
    if policy.has_permission(user, "clue.handle"):
        items.append(("/my/assignments", labels.N_("My assignments"), "nav-assignments"))
    if policy.has_permission(user, "clue.report"):
        items.append(("/report", labels.N_("Report a clue"), "nav-report"))
    if policy.has_permission(user, "clue.own_reports"):
        items.append(("/my/reports", labels.N_("My reports"), "nav-my-reports"))
    if policy.has_permission(user, "tracking.self"):
        items.append(("/duty", labels.N_("On duty"), "nav-duty"))
        items.append(("/my/data", labels.N_("My location data"), "nav-my-data"))
    if policy.has_permission(user, "task.self"):
        items.append(("/my/tasks", labels.N_("My tasks"), "nav-my-tasks"))
    if policy.has_permission(user, "alert.receive"):
        items.append(("/my/alerts", labels.N_("Alerts"), "nav-my-alerts"))
    if policy.has_permission(user, "training.take"):
        items.append(("/training", labels.N_("Training"), "nav-training"))
    if policy.has_permission(user, "leaflets.hand_out"):
        items.append(("/leaflets", labels.N_("Leaflets"), "nav-leaflets"))
    if policy.has_permission(user, "voice.speak"):
        items.append(("/feedback", labels.N_("Tell the police"), "nav-feedback"))
    if policy.has_permission(user, "points.self"):
        items.append(("/points", labels.N_("My points"), "nav-points"))
    if policy.has_permission(user, "alert.publish"):
        items.append(("/alerts", labels.N_("Alerts"), "nav-alerts"))
    if policy.has_permission(user, "coverage.read"):
        items.append(("/coverage", labels.N_("Coverage map"), "nav-coverage"))
    if policy.has_permission(user, "task.read"):
        items.append(("/tasks", labels.N_("Patrol tasks"), "nav-tasks"))
    if policy.has_permission(user, "stats.read"):
        items.append(("/stats", labels.N_("Figures"), "nav-stats"))
    if policy.has_permission(user, "evaluation.read") and user.role != "rider":
        items.append(("/evaluation", labels.N_("Evaluations"), "nav-evaluation"))
    if policy.has_permission(user, "points.board") and user.role in ("dispatcher", "station_manager"):
        items.append(("/points/board", labels.N_("Leaderboards"), "nav-board"))
    if policy.has_permission(user, "rider.roster"):
        items.append(("/riders", labels.N_("Riders"), "nav-riders"))
    if policy.has_permission(user, "rider.import"):
        items.append(("/riders/import", labels.N_("Import riders"), "nav-riders-import"))
    if policy.has_permission(user, "incident.import"):
        items.append(("/incidents/import", labels.N_("Import incidents"), "nav-incidents-import"))
    if policy.has_permission(user, "user.manage"):
        items.append(("/admin/users", labels.N_("Users"), "nav-admin-users"))
    if policy.has_permission(user, "org.manage"):
        items.append(("/admin/district", labels.N_("District"), "nav-admin-district"))
    if policy.has_permission(user, "routing.read"):
        items.append(("/admin/routing", labels.N_("Routing rules"), "nav-admin-routing"))
    if policy.has_permission(user, "training.manage"):
        items.append(("/admin/courses", labels.N_("Courses"), "nav-admin-courses"))
    if policy.has_permission(user, "voice.answer"):
        items.append(("/feedback/desk", labels.N_("Riders' feedback"), "nav-feedback-desk"))
    elif policy.has_permission(user, "visit.read"):
        items.append(("/visits", labels.N_("Visits"), "nav-visits"))
    if policy.has_permission(user, "voice.satisfaction"):
        items.append(("/voice/satisfaction", labels.N_("Riders' satisfaction"), "nav-satisfaction"))
    if policy.has_permission(user, "leaflets.totals"):
        items.append(("/leaflets/overview", labels.N_("Leaflet outreach"), "nav-leaflets-overview"))
    if policy.has_permission(user, "leaflets.stock"):
        items.append(("/admin/leaflets", labels.N_("Leaflet stock"), "nav-admin-leaflets"))
    if policy.has_permission(user, "points.manage"):
        items.append(("/admin/points", labels.N_("Points"), "nav-admin-points"))
    if policy.has_permission(user, "reward.manage"):
        items.append(("/admin/rewards", labels.N_("Rewards and payouts"), "nav-admin-rewards"))
    if policy.has_permission(user, "evaluation.manage"):
        items.append(("/admin/evaluation", labels.N_("Evaluation settings"), "nav-admin-evaluation"))
    if policy.has_permission(user, "category.manage"):
        items.append(("/admin/categories", labels.N_("Categories"), "nav-admin-categories"))
    if policy.has_permission(user, "apikey.manage"):
        items.append(("/admin/keys", labels.N_("Open311 keys"), "nav-admin-keys"))
    if policy.has_permission(user, "webhook.manage"):
        items.append(("/admin/webhooks", labels.N_("Duty group chats"), "nav-admin-webhooks"))
    if policy.has_permission(user, "audit.read"):
        items.append(("/admin/audit", labels.N_("Audit log"), "nav-admin-audit"))
    return items


def unread_notices(request: Request, user: User | None) -> int:
    """The user's unread notices, for the number beside the header's link (read when the page asks)."""
    if user is None:
        return 0
    stmt = select(func.count()).select_from(Notice).where(Notice.user_id == user.id, Notice.read_at.is_(None))
    session: Session | None = getattr(request.state, "db", None)
    if session is not None:  # the request's own transaction, while the route runs
        return session.scalar(stmt) or 0
    with request.app.state.read_session_factory() as own:  # an error page, after the request's session
        return own.scalar(stmt) or 0


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    locale = request_locale(request)
    trans = translations(locale)
    user: User | None = getattr(request.state, "user", None)
    base: dict[str, Any] = {
        "request": request,
        "_": trans.gettext,
        "ngettext": trans.ngettext,
        "locale": locale,
        "html_lang": HTML_LANG.get(locale, locale),
        "user": user,
        # Forms sent without a login (signing in, applying to join) carry a token of the session too.
        "csrf_token": csrf_token(request) if user is not None or template.startswith(("auth/", "riders/join")) else "",
        "settings": settings,
        "static": static_url,
        "asset_version": asset_version(),
        "fmt": Formatter(locale, settings.timezone),
        "nav": navigation(user),
        "unread_notices": lambda: unread_notices(request, user),
        "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        "message": None,
        "message_detail": "",
        "message_kind": "info",
    }
    base.update(context or {})
    html = _env.get_template(template).render(base)
    all_headers = security_headers(settings)
    all_headers.update(headers or {})
    return HTMLResponse(html, status_code=status, headers=all_headers)
