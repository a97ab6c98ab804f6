"""Patrol coverage on the H3 grid: covered and blind cells of an area over a time window."""
