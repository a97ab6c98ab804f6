"""The OsmAnd protocol alone, for a port of its own (`riderwatch serve --osmand-port 5055`).

Traccar Client users expect a server URL like http://host:5055 with no path. This app answers the
OsmAnd protocol at every path and serves nothing else (no pages, no API, no docs); it shares the
main app's settings and database engine, so both ports run in one process and one pool.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from riderwatch import __version__
from riderwatch.tracking.api import osmand

router = APIRouter()
router.add_api_route("/", osmand, methods=["GET", "POST"], include_in_schema=False)
router.add_api_route("/{rest:path}", osmand, methods=["GET", "POST"], include_in_schema=False)


def create_osmand_app(main: FastAPI) -> FastAPI:
    """An ASGI app for the OsmAnd port, on the state (settings, engine, sessions) of `main`.

    `main` owns the engine: its lifespan disposes of it, so this app runs without one.
    """
    app = FastAPI(title="RiderWatch OsmAnd", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)
    for name in ("settings", "engine", "session_factory", "read_session_factory"):
        setattr(app.state, name, getattr(main.state, name))
    app.include_router(router)
    return app
