"""Open311 GeoReport v2 server under /open311/v2 (being written)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

router = APIRouter(prefix="/open311/v2", tags=["open311"])


def open311_error_response(request: Request, status: int, description: str) -> Response:
    return JSONResponse([{"code": status, "description": description}], status_code=status)
