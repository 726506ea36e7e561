"""The attack suite against a real uvicorn process of the demo API: every guard control, attacked."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from bastion.guard.audit import read_jsonl, verify_entries
from tests.demo.conftest import DEMO_AUDIENCE, LiveDemo
from tests.guard._issuer import CLIENT_ID, TestIssuer, b64, b64json, running_issuer

pytestmark = pytest.mark.server

INVALID_TOKEN = {
    "error": "invalid_token",
    "error_description": "The access token is invalid, expired or revoked.",
}
INVALID_CHALLENGE = (
    'Bearer realm="bastion-demo", error="invalid_token", '
    'error_description="The access token is invalid, expired or revoked."'
)
NOTE_FIELDS = {"id", "title", "body", "created_at", "updated_at"}


@pytest.fixture(scope="module")
def http(live_demo: LiveDemo) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_demo.url) as client:
        yield client


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def first_note_of(http: httpx.Client, demo: LiveDemo, sub: str) -> dict[str, Any]:
    response = http.get("/notes", headers=auth(demo.token(sub)))
    assert response.status_code == 200
    return dict(response.json()[0])


# ---- JWT attacks ---------------------------------------------------------------------------


def _key_confusion(demo: LiveDemo) -> str:
    pem = demo.issuer.ec_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "at+jwt", "kid": demo.issuer.ec_kid}
    signing_input = f"{b64json(header)}.{b64json(demo.issuer.claims(sub='carol', aud=DEMO_AUDIENCE))}"
    return f"{signing_input}.{b64(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())}"


def _attacker_key(demo: LiveDemo, **header: Any) -> str:
    attacker = ec.generate_private_key(ec.SECP256R1())
    jwk = ECAlgorithm.to_jwk(attacker.public_key(), as_dict=True)
    full = {"alg": "ES256", "typ": "at+jwt", "kid": "attacker"} | {
        k: (jwk if v == "JWK" else v) for k, v in header.items()
    }
    signing_input = f"{b64json(full)}.{b64json(demo.issuer.claims(sub='carol', aud=DEMO_AUDIENCE))}".encode()
    return f"{signing_input.decode()}.{b64(ECAlgorithm(ECAlgorithm.SHA256).sign(signing_input, attacker))}"


def _strip(token: str) -> str:
    h, p, _ = token.split(".")
    return f"{h}.{p}."


def _zero(token: str) -> str:
    h, p, _ = token.split(".")
    return f"{h}.{p}.{b64(bytes(64))}"


def _foreign_issuer(demo: LiveDemo) -> str:
    with running_issuer() as stranger:
        return stranger.mint(sub="alice", aud=DEMO_AUDIENCE)


JWT_ATTACKS: dict[str, Callable[[LiveDemo], str]] = {
    "alg-none": lambda d: d.issuer.mint(header={"alg": "none"}, sub="carol", aud=DEMO_AUDIENCE).rsplit(".", 1)[0] + ".",
    "alg-none-signed": lambda d: (
        f"{b64json({'alg': 'none', 'typ': 'at+jwt'})}.{b64json(d.issuer.claims(sub='carol', aud=DEMO_AUDIENCE))}.AAAA"
    ),
    "key-confusion-hs256": _key_confusion,
    "stripped-signature": lambda d: _strip(d.token("alice")),
    "zeroed-signature": lambda d: _zero(d.token("alice")),
    "forged-kid": lambda d: d.issuer.mint(header={"kid": "forged"}, sub="alice", aud=DEMO_AUDIENCE),
    "jku": lambda d: _attacker_key(d, jku="http://127.0.0.1:9/jwks"),
    "embedded-jwk": lambda d: _attacker_key(d, jwk="JWK"),
    "attacker-key-real-kid": lambda d: _attacker_key(d, kid=d.issuer.ec_kid),
    "expired": lambda d: d.token("alice", exp=1_600_000_000, iat=1_599_999_000),
    "not-yet-valid": lambda d: d.token("alice", nbf=4_000_000_000),
    "wrong-issuer": lambda d: d.token("alice", iss="https://evil.test"),
    "wrong-audience": lambda d: d.issuer.mint(sub="alice", aud="https://other.api"),
    "id-token": lambda d: d.issuer.mint(
        header={"typ": "JWT"}, sub="alice", aud=CLIENT_ID, nonce="n", at_hash="x", drop=("scope",)
    ),
    "unknown-issuer": _foreign_issuer,
    "crit": lambda d: d.issuer.mint(header={"crit": ["x"], "x": 1}, sub="alice", aud=DEMO_AUDIENCE),
}


@pytest.mark.parametrize("attack", list(JWT_ATTACKS))
def test_jwt_attacks_fail(http: httpx.Client, live_demo: LiveDemo, attack: str) -> None:
    """Every JWT attack gets the same 401 invalid_token, with security headers."""
    response = http.get("/notes", headers=auth(JWT_ATTACKS[attack](live_demo)))

    assert response.status_code == 401
    assert response.json() == INVALID_TOKEN
    assert response.headers["www-authenticate"] == INVALID_CHALLENGE
    assert response.headers["x-content-type-options"] == "nosniff"


def test_valid_token_works(http: httpx.Client, live_demo: LiveDemo) -> None:
    """The control case: a genuine token reads the caller's own notes."""
    response = http.get("/notes", headers=auth(live_demo.token("alice")))

    assert response.status_code == 200
    assert [n["title"] for n in response.json()][:2] == ["alice's note 1", "alice's note 2"]


# ---- BOLA ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "body"),
    [
        pytest.param("GET", None, id="read"),
        pytest.param("PATCH", {"title": "pwned"}, id="edit"),
        pytest.param("DELETE", None, id="delete"),
    ],
)
@pytest.mark.parametrize("attacker", ["alice", "dave"], ids=["same-tenant", "other-tenant"])
def test_bola_other_users_note(http: httpx.Client, live_demo: LiveDemo, method: str, body: Any, attacker: str) -> None:
    """User A cannot read, edit or delete user B's note by id: 404, and the note is unchanged."""
    victim = first_note_of(http, live_demo, "bob")
    response = http.request(method, f"/notes/{victim['id']}", headers=auth(live_demo.token(attacker)), json=body)

    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "error_description": "Not found."}
    assert first_note_of(http, live_demo, "bob") == victim


def test_list_shows_only_own_notes(http: httpx.Client, live_demo: LiveDemo) -> None:
    """A list endpoint filters to what the caller may see."""
    titles = [n["title"] for n in http.get("/notes", headers=auth(live_demo.token("dave"))).json()]

    assert all(t.startswith("dave's") for t in titles)


# ---- BFLA ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [pytest.param("GET", "/admin/notes", id="list-all"), pytest.param("DELETE", "/admin/users/bob/notes", id="purge")],
)
def test_bfla_user_calls_admin_operations(http: httpx.Client, live_demo: LiveDemo, method: str, path: str) -> None:
    """A member with the admin scope in the token is still refused: the role decides."""
    token = live_demo.token("alice", scope="notes:read notes:write notes:admin")
    response = http.request(method, path, headers=auth(token))

    assert response.status_code == 403
    assert response.json() == {
        "error": "forbidden",
        "error_description": "requires role admin; the token carries no roles claim: request the `roles` scope",
    }


def test_bfla_roles_claim_cannot_be_self_granted_without_signature(http: httpx.Client, live_demo: LiveDemo) -> None:
    """Editing roles into a token breaks its signature."""
    h, p, s = live_demo.token("alice", scope="notes:admin").split(".")
    claims = json.loads(base64.urlsafe_b64decode(p + "=="))
    forged = f"{h}.{b64json(claims | {'roles': ['admin']})}.{s}"

    assert http.get("/admin/notes", headers=auth(forged)).status_code == 401


def test_admin_can_use_admin_operations(http: httpx.Client, live_demo: LiveDemo) -> None:
    """The tenant admin with the admin scope sees the tenant's notes with owners."""
    response = http.get("/admin/notes", headers=auth(live_demo.token("carol", scope="notes:admin")))

    assert response.status_code == 200
    assert {n["tenant"] for n in response.json()} == {"acme"}
    assert {"alice", "bob", "carol"} <= {n["owner"] for n in response.json()}


def test_admin_needs_the_scope_too(http: httpx.Client, live_demo: LiveDemo) -> None:
    """Scopes are consent: the admin without notes:admin in the token gets insufficient_scope."""
    response = http.get("/admin/notes", headers=auth(live_demo.token("carol")))

    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"
    assert response.json()["scope"] == "notes:admin"


# ---- mass assignment and data exposure -------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "error_type"),
    [
        pytest.param("owner", "bob", "read_only", id="owner"),
        pytest.param("role", "admin", "read_only", id="role"),
        pytest.param("tenant", "globex", "read_only", id="tenant"),
        pytest.param("id", "x", "read_only", id="id"),
        pytest.param("internal_score", 1.0, "extra_forbidden", id="unknown"),
    ],
)
@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_mass_assignment(
    http: httpx.Client, live_demo: LiveDemo, field: str, value: Any, error_type: str, method: str
) -> None:
    """Setting a server-owned or unknown field gets 422 naming the field; nothing is bound."""
    path = "/notes" if method == "POST" else f"/notes/{first_note_of(http, live_demo, 'alice')['id']}"
    response = http.request(method, path, headers=auth(live_demo.token("alice")), json={"title": "t", field: value})

    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert (error["type"], error["loc"]) == (error_type, ["body", field])


def test_create_sets_server_fields(http: httpx.Client, live_demo: LiveDemo) -> None:
    """A created note belongs to the caller; the response has only declared fields."""
    response = http.post("/notes", headers=auth(live_demo.token("alice")), json={"title": "mine", "body": "b"})

    assert response.status_code == 201
    assert set(response.json()) == NOTE_FIELDS


def test_data_exposure_fields_outside_the_output_model_never_leave(http: httpx.Client, live_demo: LiveDemo) -> None:
    """The stored note has internal_score, owner and tenant; a member sees none of them."""
    note = first_note_of(http, live_demo, "alice")
    response = http.get(f"/notes/{note['id']}", headers=auth(live_demo.token("alice")))

    assert set(response.json()) == NOTE_FIELDS
    assert "internal_score" not in response.text
    admin_view = http.get(f"/notes/{note['id']}", headers=auth(live_demo.token("carol")))
    assert set(admin_view.json()) == NOTE_FIELDS | {"owner", "tenant"}
    assert "internal_score" not in admin_view.text


# ---- credentials in the wrong place ----------------------------------------------------------


def test_basic_auth_is_refused(http: httpx.Client, live_demo: LiveDemo) -> None:
    """Basic credentials get 401 and instructions to get a token from the issuer."""
    response = http.get("/notes", auth=("alice", "password"))

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="bastion-demo"'
    assert "HTTP Basic authentication is not accepted" in response.json()["error_description"]
    assert f"{live_demo.issuer.issuer}/token" in response.json()["error_description"]


def test_token_in_query_string_is_refused(http: httpx.Client, live_demo: LiveDemo) -> None:
    """A token in the query string counts as no credentials (bare challenge)."""
    response = http.get("/notes", params={"access_token": live_demo.token("alice")})

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="bastion-demo"'


def test_api_key_used_as_a_user(http: httpx.Client, live_demo: LiveDemo) -> None:
    """An API key identifies a system: user routes refuse it."""
    response = http.get("/notes", headers={"X-API-Key": live_demo.api_key})

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_request"


def test_api_key_on_integration_route(http: httpx.Client, live_demo: LiveDemo) -> None:
    """The integration route accepts the system's key and returns counts only."""
    response = http.get("/integrations/stats", headers={"X-API-Key": live_demo.api_key})

    assert response.status_code == 200
    assert set(response.json()) == {"notes", "tenants"}


def test_client_credentials_token_is_not_a_user(http: httpx.Client, live_demo: LiveDemo) -> None:
    """A client's own token (sub = client_id) cannot act on users' notes."""
    response = http.get("/notes", headers=auth(live_demo.token(CLIENT_ID)))

    assert response.status_code == 403


# ---- limits and the trail ---------------------------------------------------------------------


def test_oversized_and_deep_bodies(http: httpx.Client, live_demo: LiveDemo) -> None:
    """A body over 64 KiB gets 413; JSON nested too deep gets 422."""
    token = auth(live_demo.token("alice"))
    big = http.post("/notes", headers=token, json={"title": "x", "body": "y" * 70_000})
    deep = http.post(
        "/notes",
        headers=token,
        content=b'{"title": "x", "body": ' + b"[" * 40 + b"]" * 40 + b"}",
    )

    assert (big.status_code, big.json()["error"]) == (413, "request_too_large")
    assert (deep.status_code, deep.json()["error"]) == (422, "invalid_request")


def test_audit_trail_records_denials_and_verifies(http: httpx.Client, live_demo: LiveDemo) -> None:
    """Denied object access is in the hash-chained trail with actor and request id."""
    victim = first_note_of(http, live_demo, "bob")
    http.delete(f"/notes/{victim['id']}", headers=auth(live_demo.token("alice")) | {"X-Request-ID": "attack-42"})
    entries = list(read_jsonl(live_demo.audit_path))

    assert verify_entries(entries).ok
    assert any(
        e["actor"] == "user:alice"
        and e["action"] == "note.delete"
        and e["outcome"] == "denied"
        and e["object"] == f"note:{victim['id']}"
        and e["request_id"] == "attack-42"
        for e in entries
    )


def test_issuer_used_by_tests_is_the_demo_issuer(live_demo: LiveDemo) -> None:
    """Sanity: the suite's tokens come from the issuer the demo trusts."""
    assert isinstance(live_demo.issuer, TestIssuer)


def test_audit_trail_records_refused_tokens(http: httpx.Client, live_demo: LiveDemo) -> None:
    """A refused token is audited with its private reason, never sent to the client."""
    forged = live_demo.issuer.mint(header={"kid": "forged"}, sub="alice", aud=DEMO_AUDIENCE)
    response = http.get("/notes", headers=auth(forged) | {"X-Request-ID": "forged-kid-1"})
    entries = [e for e in read_jsonl(live_demo.audit_path) if e["request_id"] == "forged-kid-1"]

    assert response.json() == INVALID_TOKEN
    assert [(e["action"], e["outcome"], e["object"], e["details"]) for e in entries] == [
        (
            "request.refused",
            "denied",
            "GET /notes",
            {"error": "invalid_token", "reason": "no trusted key for kid 'forged'"},
        )
    ]


def test_audit_trail_records_bfla_attempt_with_actor(http: httpx.Client, live_demo: LiveDemo) -> None:
    """A member calling an admin operation is audited under their own name."""
    token = live_demo.token("bob", scope="notes:admin")
    http.get("/admin/notes", headers=auth(token) | {"X-Request-ID": "bfla-1"})
    entries = [e for e in read_jsonl(live_demo.audit_path) if e["request_id"] == "bfla-1"]

    assert [(e["actor"], e["action"], e["details"]["error"]) for e in entries] == [
        ("user:bob", "request.refused", "forbidden")
    ]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{broken", id="broken-json"),
        pytest.param(b'{"title": "t", "owner": "bob"}', id="mass-assignment"),
        pytest.param(b'{"title": 5}', id="wrong-type"),
    ],
)
def test_credentials_are_checked_before_the_body(http: httpx.Client, body: bytes) -> None:
    """Without credentials, any body gets 401: nothing about the input model leaks first."""
    response = http.post("/notes", content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="bastion-demo"'
