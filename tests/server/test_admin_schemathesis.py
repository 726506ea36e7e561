"""schemathesis against the admin API's own OpenAPI document, on a real `bastion serve` (SQLite and
PostgreSQL), with an administrator's token: no generated request gets a 5xx (issue 14 item 8)."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from bastion.server.admin_api import OPERATIONS
from tests.server._admin import AdminWorld, admin_world  # noqa: F401 - the fixture

pytestmark = [pytest.mark.anyio, pytest.mark.server]
ROUTES = [(op.method, op.path) for op in OPERATIONS]


def _run(schema: Any, world: AdminWorld, statuses: set[int]) -> list[str]:
    failures: list[str] = []
    headers = world.auth()
    for method, path in ROUTES:
        operation = schema[path][method]

        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case: Any) -> None:
            response = case.call(base_url=world.server.url, headers=headers)
            statuses.add(response.status_code)
            case.validate_response(response, checks=[not_a_server_error])

        try:
            run()
        except Exception as error:  # every operation's failure is collected, then reported
            failures.append(f"{method} {path}: {error}")
    return failures


async def test_no_generated_admin_request_gets_a_server_error(admin_world: AdminWorld) -> None:  # noqa: F811 - the fixture
    """Every operation of /admin/openapi.json, fed Hypothesis-generated requests with a full
    administrator's token, answers without a 5xx."""
    schema = schemathesis.openapi.from_url(f"{admin_world.server.url}/admin/openapi.json")

    statuses: set[int] = set()

    failures = _run(schema, admin_world, statuses)

    assert not failures, "\n\n".join(failures)
    # The token opened the doors: requests were answered, not refused at the gate.
    assert {200, 201, 400, 404} <= statuses, statuses
