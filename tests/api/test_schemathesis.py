"""Property-based run over /openapi.json: whatever schemathesis sends, no 5xx, and answers match the schema."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.helpers import Api

EXAMPLES = 12
BUDGET_SECONDS = 10.0  # per role; the run stops generating once it is spent
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


ROLES = ("dispatcher", "rider")


@pytest.mark.parametrize("role", ROLES)
def test_openapi_fuzz(api: Api, app: FastAPI, role: str) -> None:
    # A clue to find: most generated ids miss, these make some hit.
    api.report("rider")
    api.report("rider", anonymous=True)
    # The JSON API; Open311 answers in its own error format and is tested in tests/open311.
    # The live stream is endless (tested against a real server in tests/notices).
    schema = (
        schemathesis.openapi.from_asgi("/openapi.json", app)
        .include(path_regex="^/api/v1/")
        .exclude(path="/api/v1/alerts/stream")
    )
    headers = api.auth(role)
    deadline = time.monotonic() + BUDGET_SECONDS
    failures: list[str] = []
    calls = 0

    # The budget covers about a third of the operations; each database and role starts at its own quarter
    # of them, so the four runs of `make test` between them fuzz every operation first thing in one of them.
    operations = [result.ok() for result in schema.get_all_operations()]
    turn = ROLES.index(role) + 2 * (os.environ.get("RIDERWATCH_TEST_DB") == "postgresql")
    start = turn * len(operations) // 4
    for operation in operations[start:] + operations[:start]:
        if time.monotonic() > deadline:
            break  # generating examples that are not sent costs as much as sending them
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES,
                derandomize=True,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                nonlocal calls
                if time.monotonic() > deadline:
                    return
                calls += 1
                response = case.call(headers=headers)
                try:
                    case.validate_response(response, checks=CHECKS, headers=headers)
                except FailureGroup as exc:
                    failures.append(f"{case.operation.label} {response.status_code}: {str(exc)[:600]}")

            try:
                run()
            except Unsatisfiable:
                continue  # nothing to negate in this operation (no parameters, no body)
    # A run that sent (almost) nothing tested nothing: generating examples of the larger bodies (an evaluation
    # scheme, a visit) takes much of the budget on a busy machine, so the floor is low but not zero.
    assert calls > 20, f"only {calls} calls fitted in the time budget"
    assert not failures, "\n".join(dict.fromkeys(failures))
