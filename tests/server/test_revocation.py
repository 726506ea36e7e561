"""Token revocation (RFC 7009) and the revocation list, in-process, both databases (database denylist)."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from tests.conftest import DEFAULT_AUDIENCE

pytestmark = pytest.mark.anyio

CC = {"grant_type": "client_credentials"}
FORM = "application/x-www-form-urlencoded"


def _auth(client: dict[str, Any]) -> tuple[str, str]:
    return client["client_id"], client["client_secret"]


async def _token(http: Any, client: dict[str, Any]) -> str:
    response = await http.post("/token", data=CC, auth=_auth(client))
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def _active(http: Any, rs: dict[str, Any], token: str) -> bool:
    response = await http.post("/introspect", data={"token": token}, auth=_auth(rs))
    assert response.status_code == 200, response.text
    return bool(response.json()["active"])


async def test_client_revokes_its_own_token(http, register):
    """Revoking one's own token is 200 with an empty no-store body, and introspection then says inactive."""
    rs = await register(introspect=True, audiences=(DEFAULT_AUDIENCE,), grants=())
    client = await register()
    token = await _token(http, client)
    assert await _active(http, rs, token)

    response = await http.post("/revoke", data={"token": token}, auth=_auth(client))

    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["cache-control"] == "no-store"
    assert not await _active(http, rs, token)


async def test_revocation_touches_only_that_token(http, register):
    """Another token of the same client stays active."""
    rs = await register(introspect=True, audiences=(DEFAULT_AUDIENCE,), grants=())
    client = await register()
    revoked, kept = await _token(http, client), await _token(http, client)
    await http.post("/revoke", data={"token": revoked}, auth=_auth(client))

    assert not await _active(http, rs, revoked)
    assert await _active(http, rs, kept)


async def test_revoking_twice_is_fine(http, register):
    """Revocation is idempotent: the second call is 200 too."""
    client = await register()
    token = await _token(http, client)
    first = await http.post("/revoke", data={"token": token}, auth=_auth(client))
    second = await http.post("/revoke", data={"token": token}, auth=_auth(client))

    assert (first.status_code, second.status_code) == (200, 200)


async def test_revoking_another_clients_token_is_unauthorized_client(http, register):
    """RFC 7009 §2.1: a client may revoke only tokens issued to it; the token stays active."""
    rs = await register(introspect=True, audiences=(DEFAULT_AUDIENCE,), grants=())
    owner, other = await register(), await register()
    token = await _token(http, owner)
    response = await http.post("/revoke", data={"token": token}, auth=_auth(other))

    assert response.status_code == 400
    assert response.json() == {
        "error": "unauthorized_client",
        "error_description": "the token was not issued to this client",
    }
    assert await _active(http, rs, token)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("garbage", id="garbage"),
        pytest.param("a.b.c", id="three-garbage-segments"),
        pytest.param("eyJhbGciOiJub25lIn0.e30.", id="unsigned-jwt"),
    ],
)
async def test_unknown_token_is_200(http, register, token):
    """RFC 7009 §2.2: an invalid token is not an error; the answer is 200."""
    client = await register()
    response = await http.post("/revoke", data={"token": token}, auth=_auth(client))

    assert response.status_code == 200
    assert response.content == b""


@pytest.mark.parametrize("hint", ["access_token", "refresh_token"])
async def test_known_hints_are_accepted(http, register, hint):
    """Both RFC 7009 hints are accepted; a wrong hint does not stop an access token being revoked."""
    rs = await register(introspect=True, audiences=(DEFAULT_AUDIENCE,), grants=())
    client = await register()
    token = await _token(http, client)
    response = await http.post("/revoke", data={"token": token, "token_type_hint": hint}, auth=_auth(client))

    assert response.status_code == 200
    assert not await _active(http, rs, token)


@pytest.mark.parametrize("hint", ["id_token", "Access_Token", "urn:x"])
async def test_unsupported_token_type_hint(http, register, hint):
    """A hint naming no token type this server issues is 400 unsupported_token_type (RFC 7009 §2.2.1)."""
    client = await register()
    token = await _token(http, client)
    response = await http.post("/revoke", data={"token": token, "token_type_hint": hint}, auth=_auth(client))

    assert response.status_code == 400
    assert response.json() == {
        "error": "unsupported_token_type",
        "error_description": f"token_type_hint {hint} is not supported",
    }


@pytest.mark.parametrize(
    ("how", "status", "expected"),
    [
        pytest.param(
            "no-auth",
            401,
            {"error": "invalid_client", "error_description": "client authentication is required"},
            id="no-auth",
        ),
        pytest.param(
            "wrong-secret",
            401,
            {"error": "invalid_client", "error_description": "client authentication failed"},
            id="wrong-secret",
        ),
        pytest.param(
            "no-token",
            400,
            {"error": "invalid_request", "error_description": "parameter token is required"},
            id="no-token",
        ),
        pytest.param(
            "json",
            400,
            {"error": "invalid_request", "error_description": f"the request body must be {FORM}"},
            id="json-body",
        ),
        pytest.param(
            "repeated",
            400,
            {"error": "invalid_request", "error_description": "parameter token is repeated"},
            id="repeated-token",
        ),
    ],
)
async def test_malformed_revocation_requests(http, register, how, status, expected):
    """Revocation requests are authenticated, form-encoded and carry one token."""
    client = await register()
    auth = _auth(client)
    if how == "no-auth":
        response = await http.post("/revoke", data={"token": "t"})
    elif how == "wrong-secret":
        response = await http.post("/revoke", data={"token": "t"}, auth=(client["client_id"], "wrong"))
    elif how == "no-token":
        response = await http.post("/revoke", content=b"", headers={"content-type": FORM}, auth=auth)
    elif how == "json":
        response = await http.post("/revoke", json={"token": "t"}, auth=auth)
    else:
        response = await http.post("/revoke", content=b"token=a&token=b", headers={"content-type": FORM}, auth=auth)

    assert response.status_code == status
    assert response.json() == expected


async def test_revocation_list_shows_revoked_jti(http, register):
    """GET /revocations lists the revoked jti with its exp, for an introspecting client."""
    rs = await register(introspect=True, audiences=(DEFAULT_AUDIENCE,), grants=())
    client = await register()
    before = int(time.time())
    token = await _token(http, client)
    await http.post("/revoke", data={"token": token}, auth=_auth(client))
    claims = jwt.decode(token, options={"verify_signature": False})

    response = await http.get("/revocations", params={"since": str(before)}, auth=_auth(rs))

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert [(r["jti"], r["exp"]) for r in body["revocations"]] == [(claims["jti"], claims["exp"])]
    assert before <= body["revocations"][0]["revoked_at"] <= body["until"]


async def test_revocation_list_since_filters_older_entries(http, register):
    """Entries revoked before `since` are left out, so a poller fetches only what changed."""
    rs = await register(introspect=True, audiences=(DEFAULT_AUDIENCE,), grants=())
    client = await register()
    token = await _token(http, client)
    await http.post("/revoke", data={"token": token}, auth=_auth(client))
    response = await http.get("/revocations", params={"since": str(int(time.time()) + 5)}, auth=_auth(rs))

    assert response.status_code == 200
    assert response.json()["revocations"] == []


@pytest.mark.parametrize(
    ("how", "status", "expected"),
    [
        pytest.param(
            "no-auth",
            401,
            {"error": "invalid_client", "error_description": "client authentication is required"},
            id="no-auth",
        ),
        pytest.param(
            "wrong-secret",
            401,
            {"error": "invalid_client", "error_description": "client authentication failed"},
            id="wrong-secret",
        ),
        pytest.param(
            "not-introspect",
            400,
            {"error": "unauthorized_client", "error_description": "this client may not read revocations"},
            id="client-without-introspect",
        ),
        pytest.param(
            "since-text",
            400,
            {"error": "invalid_request", "error_description": "since must be unix seconds"},
            id="since-not-a-number",
        ),
        pytest.param(
            "since-negative",
            400,
            {"error": "invalid_request", "error_description": "since must be unix seconds"},
            id="since-negative",
        ),
        pytest.param(
            "since-twice",
            400,
            {"error": "invalid_request", "error_description": "parameter since is repeated"},
            id="since-repeated",
        ),
    ],
)
async def test_revocation_list_requires_an_introspecting_client(http, register, how, status, expected):
    """The revocation list is for authenticated --introspect clients, with a well-formed `since`."""
    rs = await register(introspect=True, audiences=(DEFAULT_AUDIENCE,), grants=())
    plain = await register()
    if how == "no-auth":
        response = await http.get("/revocations", params={"since": "0"})
    elif how == "wrong-secret":
        response = await http.get("/revocations", params={"since": "0"}, auth=(rs["client_id"], "wrong"))
    elif how == "not-introspect":
        response = await http.get("/revocations", params={"since": "0"}, auth=_auth(plain))
    elif how == "since-text":
        response = await http.get("/revocations", params={"since": "yesterday"}, auth=_auth(rs))
    elif how == "since-negative":
        response = await http.get("/revocations", params={"since": "-1"}, auth=_auth(rs))
    else:
        response = await http.get("/revocations?since=1&since=2", auth=_auth(rs))

    assert response.status_code == status
    assert response.json() == expected


@pytest.mark.parametrize(
    ("query", "description"),
    [
        pytest.param("limit=0", "limit must be 1-10000", id="limit-zero"),
        pytest.param("limit=10001", "limit must be 1-10000", id="limit-above-page"),
        pytest.param("limit=three", "limit must be 1-10000", id="limit-not-a-number"),
        pytest.param("limit=1&limit=2", "parameter limit is repeated", id="limit-repeated"),
        pytest.param("cursor=a&cursor=b", "parameter cursor is repeated", id="cursor-repeated"),
        pytest.param("cursor=bm90LWEtY3Vyc29y", "cursor is malformed", id="cursor-without-position"),
        pytest.param("cursor=%21%24%21", "cursor is malformed", id="cursor-not-base64-text"),
        pytest.param("cursor=MTIzNDU2Nzg5MDEyMy5q", "cursor is malformed", id="cursor-time-too-long"),
        pytest.param("cursor=MS5q&since=0", "send since or cursor, not both", id="cursor-and-since"),
    ],
)
async def test_revocation_list_refuses_a_malformed_page_request(http, register, query, description):
    """A page size outside 1-10000, a cursor the server did not make, or two starting points are invalid_request."""
    rs = await register(introspect=True, audiences=(DEFAULT_AUDIENCE,), grants=())

    response = await http.get(f"/revocations?{query}", auth=_auth(rs))

    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request", "error_description": description}


async def test_revocation_list_cursor_of_the_last_page_lists_recent_revocations_again(http, register):
    """The last page's cursor stays SETTLE seconds back, so a revocation still committing when the
    page was read is listed by the next poll instead of skipped; the cursor of a full page does not."""
    rs = await register(introspect=True, audiences=(DEFAULT_AUDIENCE,), grants=())
    client = await register()
    for _ in range(2):
        await http.post("/revoke", data={"token": await _token(http, client)}, auth=_auth(client))

    first = (await http.get("/revocations", params={"since": "0", "limit": "1"}, auth=_auth(rs))).json()
    rest = (await http.get("/revocations", params={"cursor": first["cursor"]}, auth=_auth(rs))).json()
    again = (await http.get("/revocations", params={"cursor": rest["cursor"]}, auth=_auth(rs))).json()

    assert (first["more"], len(rest["revocations"]), rest["more"]) == (True, 1, False)
    assert [r["jti"] for r in again["revocations"]] == [r["jti"] for r in first["revocations"] + rest["revocations"]]
