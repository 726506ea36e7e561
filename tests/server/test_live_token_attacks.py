"""Every token the guard refuses, the authorization server refuses too: userinfo, introspection
and revocation read our own tokens with the shared RFC 9068 validator (`bastion.protocol.rfc9068`).

Through a real `bastion serve` process on both databases (the module-scoped servers of
test_live_negative). Each hostile token is signed with the server's own active key, so nothing
but the attack itself distinguishes it from a valid token; the valid twin (same claims, same jti)
is the control that each endpoint accepts.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest

from bastion.config import Settings
from bastion.identity import users
from bastion.identity.users import NewUser
from bastion.keys import SigningKey
from bastion.protocol.errors import INVALID_TOKEN_DESCRIPTION
from bastion.server.app import open_context
from tests.server import test_live_negative
from tests.server.test_live_negative import Live

pytestmark = pytest.mark.server

# The module-scoped live servers of test_live_negative (one per database), started for this module.
live = test_live_negative.live

INVALID_TOKEN_CHALLENGE = (
    f'Bearer realm="bastion", error="invalid_token", error_description="{INVALID_TOKEN_DESCRIPTION}"'
)


@dataclass(frozen=True)
class Forger:
    """Mints tokens with the live server's own signing key for one user and one client."""

    key: SigningKey
    issuer: str
    subject: str
    client: dict[str, Any]

    def claims(self, jti: str, **changes: Any) -> dict[str, Any]:
        """What the token endpoint would put in an access token; a change of None removes a claim."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": self.subject,
            "aud": self.issuer + "/api",
            "exp": now + 300,
            "iat": now,
            "jti": jti,
            "client_id": self.client["client_id"],
            "scope": "openid profile",
        }
        claims.update(changes)
        return {name: value for name, value in claims.items() if value is not None}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        header = {"typ": "at+jwt", "kid": self.key.kid, **header}
        return jwt.encode(claims, self.key.private_key, algorithm=self.key.alg, headers=header)

    def pair(self, attack: Attack) -> tuple[str, str]:
        """(the hostile token, its valid twin with the same jti)."""
        jti = secrets.token_urlsafe(12)
        header, changes = attack(self)
        return self.sign(self.claims(jti, **changes), **header), self.sign(self.claims(jti))


Attack = Any  # Callable[[Forger], tuple[header changes, claim changes]]


async def _forger(settings: Settings, issuer: str, client: dict[str, Any]) -> Forger:
    ctx = await open_context(settings)
    try:
        assert ctx.people is not None
        user = await users.create_user(
            ctx.database,
            ctx.people.passwords,
            NewUser(username=f"victim-{secrets.token_hex(4)}", display_name="Victim"),
            secrets.token_urlsafe(24),
        )
        key = await ctx.keyring.signing_key(settings.access_token_algorithm)
        assert key is not None
        return Forger(key, issuer, user.sub, client)
    finally:
        await ctx.close()


@pytest.fixture(scope="module")
def forger(live: Live) -> Forger:
    client = live.register(name="attacked client", introspect=True, audiences=(live.url + "/api",))
    # The process serves as the issuer of its own port (tests._live.server_env).
    return asyncio.run(_forger(live.settings, live.url, client))


def _future(seconds: int = 3600) -> int:
    return int(time.time()) + seconds


REFUSED = [
    pytest.param(lambda f: ({"crit": ["exp"]}, {}), id="crit-header"),
    pytest.param(lambda f: ({"jku": "https://attacker.example/jwks.json"}, {}), id="jku-header"),
    pytest.param(lambda f: ({"x5u": "https://attacker.example/cert.pem"}, {}), id="x5u-header"),
    pytest.param(lambda f: ({}, {"scope": ["openid", "profile"]}), id="scope-as-list"),
    pytest.param(lambda f: ({}, {"iat": _future()}), id="iat-in-future"),
    pytest.param(lambda f: ({}, {"nbf": _future()}), id="nbf-in-future"),
    pytest.param(
        lambda f: ({"typ": "JWT"}, {"aud": f.client["client_id"], "nonce": "n", "client_id": None}),
        id="id-token",
    ),
    pytest.param(lambda f: ({}, {"nonce": "n", "at_hash": "x"}), id="id-token-look-alike-typed-at+jwt"),
]
# RFC 7515 §4.1.9: media types compare case-insensitively, so these are access tokens.
ACCEPTED = [
    pytest.param(lambda f: ({"typ": "AT+JWT"}, {}), id="typ-upper-case"),
    pytest.param(lambda f: ({"typ": "application/at+jwt"}, {}), id="typ-full-media-type"),
]


def _userinfo(live: Live, token: str) -> httpx.Response:
    return live.http.get("/userinfo", headers={"authorization": f"Bearer {token}"})


def _served(response: httpx.Response, forger: Forger) -> bool:
    """Userinfo answered with the forged token's user (profile claims: the scope has `profile`)."""
    body = response.json()
    return response.status_code == 200 and body["sub"] == forger.subject and body["name"] == "Victim"


def _introspect(live: Live, forger: Forger, token: str) -> httpx.Response:
    client = forger.client
    return live.http.post("/introspect", data={"token": token}, auth=(client["client_id"], client["client_secret"]))


def _revoke(live: Live, forger: Forger, token: str) -> httpx.Response:
    client = forger.client
    return live.http.post("/revoke", data={"token": token}, auth=(client["client_id"], client["client_secret"]))


@pytest.mark.parametrize("attack", REFUSED)
def test_userinfo_refuses_what_the_guard_refuses(live, forger, attack):
    """A token the guard refuses is a 401 invalid_token challenge at userinfo; its valid twin is served."""
    hostile, twin = forger.pair(attack)

    response = _userinfo(live, hostile)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == INVALID_TOKEN_CHALLENGE
    assert response.json() == {"error": "invalid_token", "error_description": INVALID_TOKEN_DESCRIPTION}
    assert response.headers["cache-control"] == "no-store"
    assert _served(_userinfo(live, twin), forger)


@pytest.mark.parametrize("attack", REFUSED)
def test_introspection_refuses_what_the_guard_refuses(live, forger, attack):
    """A token the guard refuses is {"active": false} at introspection; its valid twin is active."""
    hostile, twin = forger.pair(attack)

    response = _introspect(live, forger, hostile)

    assert response.status_code == 200
    assert response.json() == {"active": False}
    assert _introspect(live, forger, twin).json()["active"] is True


@pytest.mark.parametrize("attack", REFUSED)
def test_revocation_of_what_the_guard_refuses_has_no_effect(live, forger, attack):
    """Revoking a token the guard refuses answers 200 and revokes nothing: its twin's jti stays active."""
    hostile, twin = forger.pair(attack)

    response = _revoke(live, forger, hostile)

    assert response.status_code == 200
    assert response.content == b""
    assert _introspect(live, forger, twin).json()["active"] is True


@pytest.mark.parametrize("attack", ACCEPTED)
def test_access_token_typ_compares_case_insensitively(live, forger, attack):
    """`AT+JWT` and `application/at+jwt` are accepted as the guard accepts them, at all three endpoints."""
    token, twin = forger.pair(attack)

    assert _served(_userinfo(live, token), forger)
    assert _introspect(live, forger, token).json()["active"] is True
    assert _revoke(live, forger, token).status_code == 200
    assert _introspect(live, forger, twin).json() == {"active": False}
