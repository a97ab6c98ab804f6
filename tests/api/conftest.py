"""Fixtures for the API tests: the district and a logged-in client."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.api.helpers import Api
from tests.factories import District, make_district


@pytest.fixture
def district(db: Session) -> District:
    return make_district(db)


@pytest.fixture
def api(client: TestClient, district: District) -> Api:
    api = Api(client)
    # Log everyone in up front, so logins (which are audited) never fall between two snapshots.
    for username in district.users:
        api.auth(username)
    return api
