"""Fixtures for the position tests: the district and logged-in users (as for the API tests)."""

from tests.api.helpers import fast_hashing
from tests.tracking.helpers import api, district

__all__ = ["api", "district", "fast_hashing"]
