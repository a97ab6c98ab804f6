"""ASGI entry point for uvicorn: `uvicorn riderwatch.asgi:app`."""

from riderwatch.app import create_app

app = create_app()
