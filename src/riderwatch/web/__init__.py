"""HTML pages (Jinja2 + htmx)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, Response


def render_error(request: Request, status: int, detail: str) -> Response:
    return HTMLResponse(f"<h1>{status}</h1><p>{detail}</p>", status_code=status)
