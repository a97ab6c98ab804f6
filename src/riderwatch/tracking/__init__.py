"""Rider positions: consent and duty, devices, ingest (batch JSON and the OsmAnd protocol), tracks."""
