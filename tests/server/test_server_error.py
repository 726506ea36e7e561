"""An unexpected fault is a bare `server_error` (RFC 6749 §5.2), never a stack trace; both databases.

The fault is real: the clients table disappears from under the running app.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import DEFAULT_AUDIENCE
from tests.server._faults import table_gone

pytestmark = pytest.mark.anyio

FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("POST", "/token", b"grant_type=client_credentials", id="token"),
        pytest.param("POST", "/introspect", b"token=t", id="introspect"),
        pytest.param("POST", "/revoke", b"token=t", id="revoke"),
        pytest.param("GET", "/revocations?since=0", None, id="revocations"),
    ],
)
async def test_database_fault_is_bare_server_error(http, register, settings, method, path, body):
    """With the clients table gone every authenticated endpoint answers a bare 500 server_error."""
    client = await register(introspect=True, audiences=(DEFAULT_AUDIENCE,))
    auth = (client["client_id"], client["client_secret"])
    headers: dict[str, Any] = FORM if body is not None else {}
    async with table_gone(settings.resolved_database_url, "clients"):
        response = await http.request(method, path, content=body, headers=headers, auth=auth)

    assert response.status_code == 500
    assert response.json() == {"error": "server_error"}
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"] == "application/json"
    assert len(response.headers["x-request-id"]) == 16
    for leak in ("Traceback", "clients", "sqlalchemy", "File "):
        assert leak not in response.text


async def test_service_recovers_when_the_fault_ends(http, register, settings):
    """Once the table is back the same request succeeds: the fault left no broken state behind."""
    client = await register()
    auth = (client["client_id"], client["client_secret"])
    async with table_gone(settings.resolved_database_url, "clients"):
        failed = await http.post("/token", data={"grant_type": "client_credentials"}, auth=auth)
    recovered = await http.post("/token", data={"grant_type": "client_credentials"}, auth=auth)

    assert failed.status_code == 500
    assert recovered.status_code == 200, recovered.text
