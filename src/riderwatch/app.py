"""The FastAPI application: routers, static files, error rendering, lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import Receive, Scope, Send

from riderwatch import __version__
from riderwatch.accounts import web as accounts_pages
from riderwatch.accounts.api import router as accounts_router
from riderwatch.alerts import web as alert_pages
from riderwatch.alerts.api import public as alerts_public
from riderwatch.alerts.api import router as alerts_router
from riderwatch.bodies import MIB, BodyLimits, BodyRefused
from riderwatch.clues import web as clue_pages
from riderwatch.clues.api import router as clues_router
from riderwatch.config import Settings
from riderwatch.coverage import web as coverage_pages
from riderwatch.coverage.api import router as coverage_router
from riderwatch.coverage.hotspots_api import router as hotspots_router
from riderwatch.db import make_engine, make_session_factory
from riderwatch.errors import (
    N_,
    PROBLEM_JSON,
    DomainError,
    InvalidInput,
    NotAuthenticated,
    PasswordChangeRequired,
    document_problems,
    problem,
    problem_response,
)
from riderwatch.evaluation import web as evaluation_pages
from riderwatch.evaluation.api import router as evaluation_router
from riderwatch.i18n import LOCALE_COOKIE, pick_locale
from riderwatch.incidents import rows as incident_rows
from riderwatch.incidents import web as incident_pages
from riderwatch.incidents.api import router as incidents_router
from riderwatch.infra.files import FileStore
from riderwatch.jobs import job_loop
from riderwatch.notices import web as notice_pages
from riderwatch.notices.api import router as notices_router
from riderwatch.notices.bus import BUS
from riderwatch.open311.api import open311_error_response
from riderwatch.open311.api import router as open311_router
from riderwatch.org import boundary_files
from riderwatch.org import web as org_pages
from riderwatch.org.api import router as org_router
from riderwatch.outreach import web as leaflet_pages
from riderwatch.outreach.api import router as leaflets_router
from riderwatch.points import web as point_pages
from riderwatch.points.api import router as points_router
from riderwatch.riders import imports as rider_imports
from riderwatch.riders import web as rider_pages
from riderwatch.riders.api import router as riders_router
from riderwatch.stats import web as stats_pages
from riderwatch.stats.api import router as stats_router
from riderwatch.tasks import web as task_pages
from riderwatch.tasks.api import router as tasks_router
from riderwatch.tracking import web as tracking_pages
from riderwatch.tracking.api import OSMAND_ROUTES
from riderwatch.tracking.api import router as tracking_router
from riderwatch.training import materials as course_materials
from riderwatch.training import question_bank
from riderwatch.training import web as training_pages
from riderwatch.training.api import router as training_router
from riderwatch.voice import web as voice_pages
from riderwatch.voice.api import router as voice_router
from riderwatch.web import render_error, shell
from riderwatch.webhooks import web as webhook_pages
from riderwatch.webhooks.api import router as webhooks_router
from riderwatch.webhooks.worker import Worker, worker_settings

STATIC_DIR = Path(__file__).parent / "static"


def _wants_page(request: Request) -> bool:
    path = request.url.path
    return not (path.startswith(("/api/", "/open311/")) or path == "/openapi.json")


def settle_heap() -> None:
    """Take a started server's long-lived objects out of the garbage collector's full passes.

    A server holds a large heap that lives as long as the process (modules, routes, SQLAlchemy's
    mappers, templates). Every full collection walks all of it, and a batch of thousands of pings
    allocates enough to set one off: that cost as much as checking the batch. Frozen objects are
    never scanned again (nor freed, which they would not be anyway).
    """
    gc.collect()
    gc.freeze()


# An upload's file, and the form around it (its fields, the multipart boundaries): a refusal then names the
# file's own limit, in MiB, as the page does.
FORM_ROOM = 64 * 1024


def body_limits(settings: Settings) -> dict[tuple[str, str], int]:
    """The routes that take more than `bodies.DEFAULT_LIMIT`: photos, ping batches, incident files."""
    upload = incident_rows.MAX_FILE_BYTES + FORM_ROOM
    return {
        ("POST", "/api/v1/clues"): settings.max_photos * settings.max_photo_bytes + MIB,
        ("POST", "/api/v1/tracking/pings"): settings.max_pings_per_batch * 1024 + MIB,
        ("POST", "/api/v1/incidents"): incident_rows.MAX_ROWS * 1024 + MIB,
        ("POST", "/api/v1/incidents/import"): upload,
        ("POST", "/incidents/import"): upload,
        ("POST", "/api/v1/riders/import"): rider_imports.MAX_FILE_BYTES + FORM_ROOM,
        ("POST", "/riders/import"): rider_imports.MAX_FILE_BYTES + FORM_ROOM,
        ("POST", "/admin/district/import"): boundary_files.MAX_FILE_BYTES + FORM_ROOM,
        **{
            ("POST", f"/api/v1/org/{kind}/import"): boundary_files.MAX_FILE_BYTES + FORM_ROOM
            for kind in ("jurisdictions", "communities", "grids", "zones")
        },
    }


# Uploads to a course (its pictures and PDFs, its question bank): the path names the course.
BODY_PATTERNS = (
    ("POST", r"/api/v1/courses/[^/]+/materials", course_materials.MAX_BYTES + FORM_ROOM),
    ("POST", r"/admin/courses/[^/]+/materials", course_materials.MAX_BYTES + FORM_ROOM),
    ("POST", r"/api/v1/courses/[^/]+/questions/import", question_bank.MAX_FILE_BYTES + FORM_ROOM),
    ("POST", r"/admin/courses/[^/]+/questions/import", question_bank.MAX_FILE_BYTES + FORM_ROOM),
)


# Routes that check text for NUL and other control characters themselves, with a finer answer than the
# door's (the row and field of an incident; Open311's own error format): BodyLimits leaves them to it.
OWN_TEXT_CHECKS = ("/open311/", "/api/v1/incidents")


class Sessions(SessionMiddleware):
    """Browser sessions, left out for OsmAnd: phones send no cookie, and a request per position pays for
    every layer it passes (an empty session keeps `request.session` working there)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/osmand"):
            scope["session"] = {}
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = []
        if settings.run_jobs:
            tasks.append(
                asyncio.create_task(job_loop(app.state.session_factory, interval=settings.job_interval_seconds))
            )
        if settings.webhook_worker:
            worker = Worker(app.state.session_factory, worker_settings(settings))
            tasks.append(asyncio.create_task(worker.run()))
        # Several server processes share their streams' wake-ups through Redis (notices/bus.py).
        BUS.use_redis(settings.redis_url)
        if settings.redis_url:
            tasks.append(asyncio.create_task(BUS.listen(settings.redis_url)))
        yield
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        app.state.engine.dispose()

    app = FastAPI(
        title="RiderWatch",
        version=__version__,
        description="Delivery riders as a community public-safety team: clue desk, closed loop, Open311.",
        lifespan=lifespan,
        # No OpenTelemetry: nothing is exported from the intranet, and looking for providers costs each request.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.settings = settings
    app.state.engine = make_engine(settings.database_url)
    app.state.session_factory = make_session_factory(app.state.engine)
    app.state.read_session_factory = make_session_factory(app.state.engine, read_only=True)
    app.state.photo_store = FileStore(settings.photo_dir)
    app.state.material_store = FileStore(settings.material_dir)
    app.add_middleware(
        BodyLimits, limits=body_limits(settings), patterns=BODY_PATTERNS, own_text_checks=OWN_TEXT_CHECKS
    )
    app.add_middleware(
        Sessions,
        secret_key=settings.signing_key,
        session_cookie="rw_session",
        max_age=settings.token_ttl_seconds,
        same_site="lax",
        https_only=settings.secure_cookies,
    )

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> Response:
        if request.url.path.startswith("/open311/"):
            return open311_error_response(request, exc.status, exc.detail)
        if _wants_page(request):
            if isinstance(exc, NotAuthenticated):
                return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
            if isinstance(exc, PasswordChangeRequired) and request.method in ("GET", "HEAD"):
                return RedirectResponse(f"/account?next={request.url.path}", status_code=303)
            return render_error(request, exc.status, exc)
        # The user's own setting is not read here (their session is closed by now): the pages' scripts
        # send the page's language, and a choice made with the switch is in the cookie.
        locale = pick_locale(request.cookies.get(LOCALE_COOKIE), request.headers.get("accept-language"))
        return problem_response(exc, instance=request.url.path, locale=locale)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors: list[dict[str, Any]] = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
        if request.url.path.startswith("/open311/"):
            return open311_error_response(request, 400, detail)
        if _wants_page(request):
            return render_error(request, 422, detail)
        body = problem(422, "Invalid input", detail, "/problems/invalid-input", errors=errors)
        return JSONResponse(body, status_code=422, media_type=PROBLEM_JSON)

    @app.exception_handler(DataError)
    async def data_error(request: Request, exc: DataError) -> Response:
        # The database refused a value the schemas let through (a NUL character, a number out of
        # range): the client's input, not a server fault. The request's transaction is rolled back.
        return await domain_error(request, InvalidInput(N_("a value in the request cannot be stored or searched for")))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if isinstance(exc, BodyRefused):
            return await domain_error(request, exc.error)
        detail = str(exc.detail)
        if request.url.path.startswith("/open311/"):
            return open311_error_response(request, exc.status_code, detail)
        if _wants_page(request):
            return render_error(request, exc.status_code, detail)
        return JSONResponse(
            problem(exc.status_code, detail, detail),
            status_code=exc.status_code,
            media_type=PROBLEM_JSON,
            headers=getattr(exc, "headers", None),
        )

    fastapi_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        return document_problems(fastapi_openapi())  # FastAPI caches the document; this edit is idempotent

    app.openapi = openapi  # type: ignore[method-assign]
    # First: routing tries the routes in order, and OsmAnd takes a request per position from every phone.
    app.router.routes.extend(OSMAND_ROUTES)
    app.include_router(accounts_router)
    app.include_router(clues_router)
    app.include_router(org_router)
    app.include_router(riders_router)
    app.include_router(training_router)
    app.include_router(notices_router)
    app.include_router(alerts_router)
    app.include_router(alerts_public)
    app.include_router(stats_router)
    app.include_router(open311_router)
    app.include_router(tracking_router)
    app.include_router(coverage_router)
    app.include_router(hotspots_router)
    app.include_router(incidents_router)
    app.include_router(tasks_router)
    app.include_router(webhooks_router)
    app.include_router(points_router)
    app.include_router(evaluation_router)
    app.include_router(leaflets_router)
    app.include_router(voice_router)
    for pages in (
        shell,
        accounts_pages,
        org_pages,
        alert_pages,
        webhook_pages,  # before the notices' pages: /notices/webhooks is a page of its own
        notice_pages,
        training_pages,  # before the riders' pages: /riders/training is no rider's number
        rider_pages,
        stats_pages,
        clue_pages,
        tracking_pages,
        coverage_pages,
        incident_pages,
        task_pages,
        point_pages,
        evaluation_pages,
        leaflet_pages,
        voice_pages,
    ):
        app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
