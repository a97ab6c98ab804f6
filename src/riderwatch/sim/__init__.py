"""The district simulator: streets, restaurants, riders doing deliveries, planted incidents.

A client of the running server: it sends positions and clues over the public HTTP interfaces only,
and imports nothing of RiderWatch above riderwatch.geo (tests/sim/test_imports.py checks this).
"""
