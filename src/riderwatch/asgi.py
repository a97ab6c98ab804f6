"""ASGI entry point for uvicorn: `uvicorn riderwatch.asgi:app`."""

from riderwatch.app import create_app, settle_heap

app = create_app()
settle_heap()
