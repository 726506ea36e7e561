"""schemathesis against the demo's OpenAPI document, on a real uvicorn process, with valid tokens.

The two properties the issue asks for: no 5xx, and no response that breaks the schema. Each
operation of the published document is a test case; Hypothesis generates its requests.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from bastion.demo import create_app
from tests.demo.conftest import LiveDemo

pytestmark = pytest.mark.server

CHECKS = [not_a_server_error, response_schema_conformance]
ALL_SCOPES = "notes:read notes:write notes:admin notes:stats"
OPERATIONS = [(method.upper(), path) for path, item in create_app().openapi()["paths"].items() for method in item]


@pytest.fixture(scope="module")
def demo_schema(live_demo: LiveDemo) -> Any:
    return schemathesis.openapi.from_url(f"{live_demo.url}/openapi.json")


def credentials(path: str, demo: LiveDemo, user: str) -> dict[str, str]:
    if path.startswith("/integrations"):
        return {"X-API-Key": demo.api_key}
    return {"Authorization": f"Bearer {demo.token(user, scope=ALL_SCOPES)}"}


@pytest.mark.parametrize("user", ["carol", "alice"], ids=["admin", "member"])
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_demo_conforms_to_its_openapi(demo_schema: Any, live_demo: LiveDemo, method: str, path: str, user: str) -> None:
    """Generated requests with valid credentials get no 5xx and only schema-conforming responses."""
    operation = demo_schema[path][method]
    headers = credentials(path, live_demo, user)

    @given(case=operation.as_strategy())
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: Any) -> None:
        case.call_and_validate(base_url=live_demo.url, headers=headers, checks=CHECKS)

    run()
