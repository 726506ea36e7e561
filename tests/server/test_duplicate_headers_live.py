"""A header the server reads as one value comes once: two `Authorization`, `Content-Type`,
`Content-Length` or `Transfer-Encoding` headers are `invalid_request`, on every endpoint of a
real `bastion serve` (a proxy in front that read the other copy would judge another request)."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests._live import LiveServer

FORM = "application/x-www-form-urlencoded"


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@pytest.mark.parametrize(
    ("path", "first"),
    [
        pytest.param("/token", "good", id="token-good-first"),
        pytest.param("/token", "bad", id="token-bad-first"),
        pytest.param("/revoke", "good", id="revoke"),
        pytest.param("/introspect", "good", id="introspect"),
        pytest.param("/userinfo", "good", id="userinfo"),
    ],
)
def test_two_authorization_headers_are_invalid_request(live_server: LiveServer, path: str, first: str) -> None:
    client = live_server.create_client("--name", "Billing", "--grant", "client_credentials", "--scope", "read")
    good = _basic(client["client_id"], client["client_secret"])
    bad = _basic(client["client_id"], "wrong")
    pair = [("authorization", good), ("authorization", bad)]
    headers = [("content-type", FORM), *(pair if first == "good" else reversed(pair))]

    with httpx.Client(base_url=live_server.url) as http:
        answer = http.post(path, content=b"grant_type=client_credentials&token=x", headers=headers)

    assert answer.status_code == 400, answer.text
    assert answer.json() == {"error": "invalid_request", "error_description": "send one Authorization header"}


@pytest.mark.parametrize(
    ("name", "values"),
    [
        pytest.param("content-type", (FORM, "text/plain"), id="form-then-text"),
        pytest.param("content-type", ("text/plain", FORM), id="text-then-form"),
    ],
)
def test_two_content_types_are_invalid_request(live_server: LiveServer, name: str, values: tuple[str, str]) -> None:
    client = live_server.create_client("--name", "Billing", "--grant", "client_credentials", "--scope", "read")
    headers = [("authorization", _basic(client["client_id"], client["client_secret"]))]
    headers += [(name, value) for value in values]
    body = b"grant_type=client_credentials"

    with httpx.Client(base_url=live_server.url) as http:
        answer = http.post("/token", content=body, headers=headers)

    assert answer.status_code == 400, answer.text
    assert answer.json() == {"error": "invalid_request", "error_description": "send one Content-Type header"}


def test_one_of_each_still_gets_a_token(live_server: LiveServer) -> None:
    client = live_server.create_client("--name", "Billing", "--grant", "client_credentials", "--scope", "read")
    headers = {"authorization": _basic(client["client_id"], client["client_secret"]), "content-type": FORM}

    with httpx.Client(base_url=live_server.url) as http:
        answer = http.post("/token", content=b"grant_type=client_credentials", headers=headers)

    assert answer.status_code == 200, answer.text
