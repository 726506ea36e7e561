"""The admin HTTP API (issue 14 item 8) through a real `bastion serve` on SQLite and PostgreSQL:
every route refuses a caller without a token, the admin scope, the admin role or a second factor;
an administrator's token does each operation; the OpenAPI document holds together."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import anyio
import httpx
import pytest

from bastion.guard.apikeys import DatabaseApiKeyVerifier, key_digest
from bastion.protocol.errors import InvalidApiKey
from bastion.server.admin_api import OPERATIONS
from tests.server._admin import ADMIN_SCOPE, AdminWorld, admin_world  # noqa: F401 - the fixture
from tests.server._people import CALLBACK, refresh

pytestmark = [pytest.mark.anyio, pytest.mark.server]

ROUTES = [(op.method, op.path) for op in OPERATIONS]


def _concrete(path: str) -> str:
    return re.sub(r"\{[a-z_]+\}", "nobody", path)


async def _call(world: AdminWorld, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    body = {} if method in ("POST", "PATCH") else None
    return await world.http.request(method, _concrete(path), json=body, headers=headers)


def _challenge(response: httpx.Response) -> str:
    return response.headers.get("www-authenticate", "")


async def test_every_admin_route_refuses_callers_short_of_an_administrator(admin_world: AdminWorld) -> None:  # noqa: F811 - the fixture
    """On every route of the OpenAPI document: no token or a bad one is 401 (the bare challenge,
    or invalid_token), no admin scope 403 insufficient_scope, no admin role 403 forbidden, no
    second factor 401 insufficient_user_authentication with acr_values (RFC 9470)."""
    world = admin_world
    published = (await world.http.get("/admin/openapi.json")).json()["paths"]
    routes = [(method.upper(), path) for path, item in published.items() for method in item]
    assert sorted(routes) == sorted(ROUTES)
    failures = []
    for method, path in routes:
        seen = {
            "none": await _call(world, method, path, {}),
            "bad": await _call(world, method, path, {"Authorization": "Bearer not.a.token"}),
            **{kind: await _call(world, method, path, world.auth(kind)) for kind in ("no_scope", "no_role", "no_mfa")},
        }
        expected = {
            "none": (401, None),
            "bad": (401, "invalid_token"),
            "no_scope": (403, "insufficient_scope"),
            "no_role": (403, "forbidden"),
            "no_mfa": (401, "insufficient_user_authentication"),
        }
        for kind, (status, error) in expected.items():
            answer = seen[kind]
            got = (answer.status_code, answer.json().get("error"))
            if got != (status, error):
                failures.append(f"{method} {path} {kind}: {got} {answer.text}")
        assert _challenge(seen["none"]) == 'Bearer realm="bastion-admin"'
        assert 'scope="bastion:admin"' in _challenge(seen["no_scope"])
        assert 'acr_values="urn:bastion:acr:mfa"' in _challenge(seen["no_mfa"])
        assert "roles scope" in seen["no_role"].json()["error_description"]
        assert 'error="insufficient_user_authentication"' in _challenge(seen["no_mfa"])
    assert not failures, "\n".join(failures)


async def test_an_administrator_manages_clients(admin_world: AdminWorld) -> None:  # noqa: F811 - the fixture
    """Create, list, read, change scopes and redirect URIs, rotate the secret, delete; bad input is
    400 with a specific error, an unknown client 404; each change is audited with its actor."""
    world, auth = admin_world, admin_world.auth()
    created = await world.http.post(
        "/admin/clients",
        json={"name": "Billing", "grant_types": ["client_credentials"], "scope": ["invoices:read"]},
        headers=auth,
    )
    assert created.status_code == 201, created.text
    client_id, secret = created.json()["client_id"], created.json()["client_secret"]
    listed = await world.http.get("/admin/clients", headers=auth)
    assert client_id in [c["client_id"] for c in listed.json()]
    changed = await world.http.patch(
        f"/admin/clients/{client_id}", json={"scope": ["invoices:read", "invoices:write"]}, headers=auth
    )
    assert changed.status_code == 200, changed.text
    assert (await world.http.get(f"/admin/clients/{client_id}", headers=auth)).json()["scope"] == (
        "invoices:read invoices:write"
    )
    token = await world.http.post(
        "/token", data={"grant_type": "client_credentials", "scope": "invoices:write"}, auth=(client_id, secret)
    )
    assert token.status_code == 200, token.text
    rotated = await world.http.post(f"/admin/clients/{client_id}/secret", json={"overlap_seconds": 0}, headers=auth)
    assert rotated.status_code == 200
    assert rotated.json()["client_secret"] != secret
    old = await world.http.post("/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    assert old.json()["error"] == "invalid_client"

    console = world.console["client_id"]
    bad_uri = await world.http.patch(
        f"/admin/clients/{console}", json={"redirect_uris": ["http://example.com/cb"]}, headers=auth
    )
    assert bad_uri.status_code == 400
    assert bad_uri.json()["error"] == "invalid_request"
    assert "http://example.com/cb" in bad_uri.json()["error_description"]
    moved = await world.http.patch(
        f"/admin/clients/{console}", json={"redirect_uris": [CALLBACK, "https://spa.example/other"]}, headers=auth
    )
    assert moved.json()["redirect_uris"] == [CALLBACK, "https://spa.example/other"]
    unknown_field = await world.http.patch(f"/admin/clients/{console}", json={"colour": "red"}, headers=auth)
    assert unknown_field.status_code == 400
    assert "unknown field 'colour'" in unknown_field.json()["error_description"]
    not_json = await world.http.post("/admin/clients", content=b"{", headers=auth)
    assert not_json.json() == {"error": "invalid_request", "error_description": "the body must be a JSON object"}

    deleted = await world.http.delete(f"/admin/clients/{client_id}", headers=auth)
    assert deleted.json() == {"client_id": client_id, "deleted": True}
    gone = await world.http.get(f"/admin/clients/{client_id}", headers=auth)
    assert (gone.status_code, gone.json()["error"]) == (404, "not_found")
    again = await world.http.post("/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    assert again.json()["error"] == "invalid_client"
    events = _audit(world)
    assert {"client_created", "client_updated", "client_secret_rotated", "client_deleted"} <= {
        e["event"] for e in events if e.get("actor_sub") == world.root["sub"] and e.get("via") == "api"
    }


async def test_an_administrator_manages_users_sessions_and_grants(admin_world: AdminWorld) -> None:  # noqa: F811 - the fixture
    """Create (409 on a taken name), change roles, list roles, list and revoke sessions and grants
    (the grant's refresh token stops), delete; keys list and rotate; the audit page answers."""
    world, auth = admin_world, admin_world.auth()
    new = {"username": "carol", "password": "another long passphrase", "roles": ["billing"]}
    created = await world.http.post("/admin/users", json=new, headers=auth)
    assert created.status_code == 201, created.text
    duplicate = await world.http.post("/admin/users", json=new, headers=auth)
    assert (duplicate.status_code, duplicate.json()["error"]) == (409, "conflict")
    weak = await world.http.post("/admin/users", json={"username": "dave", "password": "short"}, headers=auth)
    assert weak.status_code == 400
    assert weak.json()["error"] == "invalid_request"
    listed = (await world.http.get("/admin/users", headers=auth)).json()
    assert {u["username"] for u in listed} == {"root", "bob", "mallory", "carol"}
    disabled = await world.http.patch("/admin/users/carol", json={"enabled": False}, headers=auth)
    assert disabled.json()["enabled"] is False
    roles = (await world.http.get("/admin/roles", headers=auth)).json()
    assert {"admin", "billing"} <= {r["role"] for r in roles}
    bad_role = await world.http.patch("/admin/users/carol", json={"roles": ["no spaces"]}, headers=auth)
    assert bad_role.status_code == 400

    sessions = (await world.http.get("/admin/users/bob/sessions", headers=auth)).json()
    assert len(sessions) == 1
    assert "id_hash" not in sessions[0]
    ended = await world.http.delete(f"/admin/users/bob/sessions/{sessions[0]['sid']}", headers=auth)
    assert ended.json() == {"sid": sessions[0]["sid"], "revoked": True}
    assert (await world.http.get("/admin/users/bob/sessions", headers=auth)).json() == []
    assert (await world.http.delete("/admin/users/bob/sessions/nope", headers=auth)).status_code == 404

    grants = (await world.http.get("/admin/users/bob/grants", headers=auth)).json()
    assert len(grants) == 1
    assert grants[0]["client_id"] == world.console["client_id"]
    revoked = await world.http.delete(f"/admin/users/bob/grants/{grants[0]['family']}", headers=auth)
    assert revoked.json()["revoked"] is True
    stopped = await refresh(world.http, world.console, world.member_refresh_token)
    assert stopped.json()["error"] == "invalid_grant"
    assert (await world.http.get("/admin/users/bob/grants", headers=auth)).json() == []

    deleted = await world.http.delete("/admin/users/bob", headers=auth)
    assert deleted.json()["deleted"] is True
    assert (await world.http.get("/admin/users/bob", headers=auth)).status_code == 404

    keys = (await world.http.get("/admin/keys", headers=auth)).json()
    rotated = await world.http.post("/admin/keys", json={"alg": "ES256"}, headers=auth)
    assert rotated.status_code == 201
    assert len((await world.http.get("/admin/keys", headers=auth)).json()) == len(keys) + 1
    bad_alg = await world.http.post("/admin/keys", json={"alg": "HS256"}, headers=auth)
    assert bad_alg.status_code == 400
    assert "one of ES256" in bad_alg.json()["error_description"]
    assert (await world.http.get("/admin/audit", params={"limit": "x"}, headers=auth)).status_code == 400
    events = {e["event"] for e in _audit(world) if e.get("actor_sub") == world.root["sub"]}
    done = {"user_created", "user_roles_changed", "session_revoked", "grant_revoked", "user_deleted"}
    assert done <= events
    # The same events in the database trail (written in batches), read page by page.
    deadline = time.monotonic() + 30
    while not done <= (stored := await _stored_actions(world, auth)):
        assert time.monotonic() < deadline, stored
        await anyio.sleep(0.2)
    one = await world.http.get("/admin/audit", params={"limit": 1, "event": "user_deleted"}, headers=auth)
    [deleted] = one.json()["events"]
    assert (deleted["action"], deleted["details"]["actor_sub"], one.json()["next"]) == (
        "user_deleted", world.root["sub"], deleted["seq"]
    )


async def test_an_administrator_manages_api_keys(admin_world: AdminWorld) -> None:  # noqa: F811 - the fixture
    """Create (the key answered once, 201), list (never a key or its hash), rotate, revoke; the key
    made through the API is accepted by DatabaseApiKeyVerifier and refused once revoked; bad input
    is 400 naming the field, an unknown id 404; each change is audited with its actor."""
    world, auth = admin_world, admin_world.auth()
    created = await world.http.post(
        "/admin/apikeys", json={"owner": "billing", "scopes": ["notes:read"], "expires_in": 3600}, headers=auth
    )
    assert created.status_code == 201, created.text
    key, key_id = created.json()["api_key"], created.json()["key_id"]
    assert (created.json()["owner"], created.json()["scopes"]) == ("billing", ["notes:read"])
    verifier = DatabaseApiKeyVerifier(world.server.env["BASTION_DATABASE_URL"], cache_seconds=0)
    try:
        principal = await verifier.verify(key)
        assert (principal.api_key_id, principal.subject) == (key_id, "billing")

        listed = await world.http.get("/admin/apikeys", headers=auth)
        assert listed.status_code == 200
        assert [k["key_id"] for k in listed.json()] == [key_id]
        assert key not in listed.text
        assert key_digest(key) not in listed.text
        assert "sha256" not in listed.json()[0]

        rotated = await world.http.post(f"/admin/apikeys/{key_id}/rotation", json={"overlap_seconds": 60}, headers=auth)
        assert rotated.status_code == 200, rotated.text
        successor = rotated.json()
        assert (successor["replaces"], successor["owner"], successor["scopes"]) == (key_id, "billing", ["notes:read"])
        assert (await verifier.verify(successor["api_key"])).api_key_id == successor["key_id"]
        assert (await verifier.verify(key)).api_key_id == key_id  # the overlap
        again = await world.http.post(f"/admin/apikeys/{key_id}/rotation", json={}, headers=auth)
        assert (again.status_code, again.json()["error"]) == (404, "not_found")
        assert "already rotated" in again.json()["error_description"]

        revoked = await world.http.delete(f"/admin/apikeys/{successor['key_id']}", headers=auth)
        assert revoked.json() == {"key_id": successor["key_id"], "revoked": True}
        with pytest.raises(InvalidApiKey):
            await verifier.verify(successor["api_key"])
        listed = {k["key_id"]: k for k in (await world.http.get("/admin/apikeys", headers=auth)).json()}
        assert set(listed) == {key_id, successor["key_id"]}
        assert (listed[key_id]["revoked_at"], listed[key_id]["replaced_by"]) == (None, successor["key_id"])
        assert listed[successor["key_id"]]["revoked_at"] is not None
    finally:
        await verifier.close()

    bad = {
        "owner-blank": ({"owner": " "}, "--owner must be 1-200 characters"),
        "owner-missing": ({"scopes": []}, "missing field 'owner'"),
        "expires-0": ({"owner": "b", "expires_in": 0}, "body.expires_in: an integer from 1"),
        "scopes-type": ({"owner": "b", "scopes": "a"}, "body.scopes: expected array"),
    }
    for name, (body, message) in bad.items():
        answer = await world.http.post("/admin/apikeys", json=body, headers=auth)
        assert (answer.status_code, answer.json()["error"]) == (400, "invalid_request"), name
        assert message in answer.json()["error_description"], (name, answer.text)
    overlap = await world.http.post(f"/admin/apikeys/{key_id}/rotation", json={"overlap_seconds": -1}, headers=auth)
    assert (overlap.status_code, "body.overlap_seconds" in overlap.json()["error_description"]) == (400, True)
    unknown = await world.http.delete("/admin/apikeys/nope", headers=auth)
    assert unknown.json() == {"error": "not_found", "error_description": "no API key 'nope'"}
    assert unknown.status_code == 404
    assert (await world.http.post("/admin/apikeys/nope/rotation", json={}, headers=auth)).status_code == 404
    events = [e for e in _audit(world) if e.get("actor_sub") == world.root["sub"] and e.get("via") == "api"]
    assert {"apikey_created", "apikey_rotated", "apikey_revoked"} <= {e["event"] for e in events}
    assert all(key not in json.dumps(e) and successor["api_key"] not in json.dumps(e) for e in events)


async def test_openapi_document_holds_together(admin_world: AdminWorld) -> None:  # noqa: F811 - the fixture
    """The document is OpenAPI 3.1: every operation has an id, responses, the security scheme, and
    every path parameter is declared; schemathesis loads it."""
    import schemathesis

    document = (await admin_world.http.get("/admin/openapi.json")).json()
    assert document["openapi"] == "3.1.0"
    assert document["components"]["securitySchemes"]["bastion"]["type"] == "oauth2"
    ids = []
    for path, item in document["paths"].items():
        for operation in item.values():
            ids.append(operation["operationId"])
            declared = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert declared == set(re.findall(r"\{([a-z_]+)\}", path))
            assert "401" in operation["responses"]
            assert "403" in operation["responses"]
    assert len(ids) == len(set(ids))
    schema = schemathesis.openapi.from_dict(document)
    assert len(list(schema.get_all_operations())) == len(ROUTES)


async def _stored_actions(world: AdminWorld, auth: dict[str, str]) -> set[str]:
    """The actions of the root admin in the database trail, every page of `/admin/audit`."""
    actions: set[str] = set()
    after: int | None = 0
    while after is not None:
        page = await world.http.get("/admin/audit", params={"after": after, "limit": 100}, headers=auth)
        assert (page.status_code, page.json()["source"]) == (200, "database"), page.text
        actions |= {e["action"] for e in page.json()["events"] if e["details"].get("actor_sub") == world.root["sub"]}
        after = page.json()["next"]
    return actions


def _audit(world: AdminWorld) -> list[dict[str, Any]]:
    lines = world.server.log.read_text(encoding="utf-8").splitlines()
    return [r for r in (json.loads(line) for line in lines if line.startswith("{")) if r.get("audit")]


__all__ = ["ADMIN_SCOPE"]
