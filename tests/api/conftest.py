"""Fixtures for the API tests: the district, light password hashing and a logged-in client."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.api.helpers import Api, fast_hashing
from tests.factories import District, make_district

__all__ = ["fast_hashing"]


@pytest.fixture
def district(db: Session, fast_hashing: None) -> District:
    return make_district(db)


@pytest.fixture
def api(client: TestClient, district: District) -> Api:
    api = Api(client)
    # Log everyone in up front, so logins (which are audited) never fall between two snapshots.
    for username in district.users:
        api.auth(username)
    return api
