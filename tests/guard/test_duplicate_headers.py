"""Headers the guard reads come once: a second Content-Type (which the body limit and the framework
read differently), Authorization or API key is refused, against a guarded API in its own uvicorn
process in both shapes."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.guard._issuer import TestIssuer
from tests.guard._live_api import LiveApi, running_api

DEEP = b"[" * 50 + b"1" + b"]" * 50  # the API's limit is 8


@pytest.fixture(scope="module", params=["asgi", "fastapi"])
def live_api(
    request: pytest.FixtureRequest, live_issuer: TestIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveApi]:
    """The guarded API of `_serve.py` in each shape, in its own uvicorn process."""
    with running_api(request.param, live_issuer, tmp_path_factory.mktemp(request.param)) as api:
        yield api


@pytest.mark.parametrize(
    "content_types",
    [
        pytest.param(["application/json", "text/plain"], id="json-then-text"),
        pytest.param(["text/plain", "application/json"], id="text-then-json"),
        pytest.param(["application/json", "application/json"], id="same-twice"),
    ],
)
def test_two_content_types_are_refused(live_api: LiveApi, content_types: list[str]) -> None:
    """Two Content-Type headers get 400 before anything parses the body, so a deeply nested JSON
    body cannot pass the depth limit as text/plain and be parsed as JSON by the framework."""
    token = live_api.issuer.mint(scope="notes:write")
    headers = [("authorization", f"Bearer {token}"), *(("content-type", value) for value in content_types)]

    response = httpx.post(live_api.url + "/notes", content=DEEP, headers=headers, timeout=30)

    assert (response.status_code, response.json()) == (
        400,
        {"error": "invalid_request", "error_description": "Send one Content-Type header."},
    )


def test_one_content_type_still_has_its_depth_limit(live_api: LiveApi) -> None:
    """With one JSON Content-Type the nested body meets the depth limit (422), the same body shallow passes."""
    headers = {"authorization": f"Bearer {live_api.issuer.mint(scope='notes:write')}"}

    deep = httpx.post(live_api.url + "/notes", content=DEEP, headers=headers | {"content-type": "application/json"})
    shallow = httpx.post(live_api.url + "/notes", json={"a": [1]}, headers=headers)

    too_deep = "The JSON body is nested deeper than 8 levels."
    assert (deep.status_code, deep.json()["error_description"]) == (422, too_deep)
    assert (shallow.status_code, shallow.json()) == (200, {"parsed": {"a": [1]}})


@pytest.mark.parametrize(
    "names",
    [
        pytest.param(["Authorization", "Authorization"], id="two-authorization"),
        pytest.param(["Authorization", "authorization"], id="two-authorization-cases"),
        pytest.param(["X-API-Key", "X-API-Key"], id="two-api-keys"),
    ],
)
def test_two_credential_headers_are_invalid_request(live_api: LiveApi, names: list[str]) -> None:
    """RFC 6750 §2: two Authorization (or API key) headers are invalid_request, whichever a framework reads."""
    values = [f"Bearer {live_api.issuer.mint(sub='alice')}", f"Bearer {live_api.issuer.mint(sub='mallory')}"]

    response = httpx.get(live_api.url + "/notes", headers=list(zip(names, values, strict=True)), timeout=30)

    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request", "error_description": "Send exactly one credential."}
    assert response.headers["www-authenticate"].startswith('Bearer realm="test", error="invalid_request"')
