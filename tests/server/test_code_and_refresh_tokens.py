"""Code exchange and refresh-token rules at the token endpoint, on SQLite and PostgreSQL (issue 3)."""

from __future__ import annotations

import asyncio
import time

import pytest

from bastion.identity import users
from bastion.server.issuance import token_hash
from bastion.store import codes
from bastion.store.codes import AuthorizationCodeRow
from bastion.store.models import authorization_codes, refresh_tokens
from tests.conftest import DEFAULT_AUDIENCE
from tests.server._people import *  # noqa: F403 - fixtures and the flow driver
from tests.server._people import CALLBACK, authorize, exchange, pkce, refresh, tokens_for

pytestmark = pytest.mark.anyio

INVALID_CODE = "the authorization code is invalid, expired or was already used"
INVALID_REFRESH = "the refresh token is invalid, expired or revoked"


@pytest.mark.parametrize(
    ("verifier", "description"),
    [
        pytest.param(None, "code_verifier is required", id="missing"),
        pytest.param("a" * 42, "code_verifier must be 43-128 characters of [A-Za-z0-9-._~]", id="42-chars"),
        pytest.param("a" * 129, "code_verifier must be 43-128 characters of [A-Za-z0-9-._~]", id="129-chars"),
        pytest.param("a" * 50 + "!", "code_verifier must be 43-128 characters of [A-Za-z0-9-._~]", id="bad-char"),
        pytest.param("b" * 64, "code_verifier does not match the code_challenge", id="wrong"),
    ],
)
async def test_bad_code_verifier_is_invalid_grant(browser, http, spa, make_user, verifier, description):
    """A missing, malformed or wrong code_verifier yields invalid_grant with a precise description."""
    user = await make_user()
    outcome = await authorize(browser, spa, user)

    response = await exchange(http, spa, outcome.params["code"], verifier)

    assert response.status_code == 400
    assert response.json() == {"error": "invalid_grant", "error_description": description}


async def test_verifier_for_code_without_challenge_is_invalid_grant(http, ctx, register, make_user):
    """RFC 9700 §4.8.2: a code_verifier sent for a code issued without a challenge is refused (downgrade)."""
    client = await register(
        grants=("authorization_code",), scope=("openid",), redirect_uris=(CALLBACK,), auth_method="client_secret_post"
    )
    user = await make_user()
    now = int(time.time())
    await codes.insert(
        ctx.database,
        AuthorizationCodeRow(
            code_hash=token_hash("plain-code-without-challenge"),
            client_id=client["client_id"],
            sub=user.sub,
            redirect_uri=CALLBACK,
            scope="openid",
            nonce="n",
            code_challenge=None,
            sid="sid",
            auth_time=now,
            amr="pwd",
            acr="urn:bastion:acr:password",
            created_at=now,
            expires_at=now + 60,
            used_at=None,
            access_jti=None,
            access_exp=None,
            refresh_family=None,
        ),
    )
    verifier, _ = pkce()

    response = await exchange(
        http, client, "plain-code-without-challenge", verifier, client_secret=client["client_secret"]
    )

    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "code_verifier sent, but the authorization request had no code_challenge",
    }


async def test_redirect_uri_mismatch_at_token_is_invalid_grant(browser, http, spa, make_user):
    """The token request's redirect_uri must equal the authorization request's."""
    user = await make_user()
    outcome = await authorize(browser, spa, user)

    response = await exchange(http, spa, outcome.params["code"], outcome.verifier, redirect_uri=CALLBACK + "x")

    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "redirect_uri does not match the authorization request",
    }


async def test_code_of_another_client_is_invalid_grant(browser, http, spa, register, make_user):
    """A code is bound to the client it was issued to."""
    other = await register(
        grants=("authorization_code",), scope=("openid",), redirect_uris=(CALLBACK,), auth_method="none"
    )
    user = await make_user()
    outcome = await authorize(browser, spa, user)

    response = await exchange(http, other, outcome.params["code"], outcome.verifier)

    assert response.json() == {"error": "invalid_grant", "error_description": INVALID_CODE}


async def test_expired_code_is_invalid_grant(browser, http, spa, make_user, ctx):
    """A code past its lifetime is invalid_grant."""
    user = await make_user()
    outcome = await authorize(browser, spa, user)
    async with ctx.database.engine.begin() as conn:
        await conn.execute(
            authorization_codes.update()
            .where(authorization_codes.c.code_hash == token_hash(outcome.params["code"]))
            .values(expires_at=int(time.time()) - 1)
        )

    response = await exchange(http, spa, outcome.params["code"], outcome.verifier)

    assert response.json() == {"error": "invalid_grant", "error_description": INVALID_CODE}


async def test_code_lifetime_is_the_setting(browser, spa, make_user, ctx, settings):
    """Codes live `code_lifetime` seconds (60 by default)."""
    user = await make_user()
    outcome = await authorize(browser, spa, user)
    row = await codes.get(ctx.database, token_hash(outcome.params["code"]))

    assert row is not None
    assert row.expires_at - row.created_at == settings.code_lifetime == 60


async def test_code_replay_fails_and_revokes_issued_tokens(browser, http, spa, make_user):
    """A second use of a code is invalid_grant and revokes the access and refresh tokens issued from it."""
    user = await make_user()
    outcome = await authorize(browser, spa, user)
    first = await exchange(http, spa, outcome.params["code"], outcome.verifier)
    assert first.status_code == 200
    tokens = first.json()

    replay = await exchange(http, spa, outcome.params["code"], outcome.verifier)

    assert replay.json() == {"error": "invalid_grant", "error_description": INVALID_CODE}
    userinfo = await http.get("/userinfo", headers={"authorization": f"Bearer {tokens['access_token']}"})
    assert userinfo.status_code == 401
    refreshed = await refresh(http, spa, tokens["refresh_token"])
    assert refreshed.json() == {"error": "invalid_grant", "error_description": INVALID_REFRESH}


async def test_simultaneous_code_exchanges_yield_one_success(browser, http, spa, make_user):
    """Two simultaneous uses of one code give exactly one success."""
    user = await make_user()
    outcome = await authorize(browser, spa, user)

    results = await asyncio.gather(*(exchange(http, spa, outcome.params["code"], outcome.verifier) for _ in range(2)))

    assert sorted(r.status_code for r in results) == [200, 400]


async def test_refresh_rotates_and_reuse_revokes_family(browser, http, spa, make_user):
    """Each refresh rotates the token; presenting a rotated one revokes the whole family."""
    user = await make_user()
    tokens = await tokens_for(browser, http, spa, user)
    first = await refresh(http, spa, tokens["refresh_token"])
    assert first.status_code == 200, first.text
    rotated = first.json()
    assert rotated["refresh_token"] != tokens["refresh_token"]
    assert "id_token" in rotated

    reuse = await refresh(http, spa, tokens["refresh_token"])
    after = await refresh(http, spa, rotated["refresh_token"])

    assert reuse.json() == {"error": "invalid_grant", "error_description": INVALID_REFRESH}
    assert after.json() == {"error": "invalid_grant", "error_description": INVALID_REFRESH}
    userinfo = await http.get("/userinfo", headers={"authorization": f"Bearer {rotated['access_token']}"})
    assert userinfo.status_code == 401


async def test_simultaneous_refreshes_yield_one_success(browser, http, spa, make_user):
    """Two simultaneous uses of one refresh token give exactly one success."""
    user = await make_user()
    tokens = await tokens_for(browser, http, spa, user)

    results = await asyncio.gather(*(refresh(http, spa, tokens["refresh_token"]) for _ in range(2)))

    assert sorted(r.status_code for r in results) == [200, 400]


async def test_refresh_scope_may_narrow_never_widen(browser, http, spa, make_user):
    """Scope may be narrowed on refresh; a wider scope is invalid_scope."""
    user = await make_user()
    tokens = await tokens_for(browser, http, spa, user, scope="openid email offline_access")

    wider = await refresh(http, spa, tokens["refresh_token"], scope="openid email offline_access read")
    narrower = await refresh(http, spa, tokens["refresh_token"], scope="openid")

    assert wider.json() == {"error": "invalid_scope", "error_description": "scope exceeds the original grant: read"}
    assert narrower.status_code == 200
    assert narrower.json()["scope"] == "openid"
    again = await refresh(http, spa, narrower.json()["refresh_token"])
    assert again.json()["scope"] == "openid email offline_access"


async def test_refresh_token_of_another_client_is_invalid_grant(browser, http, spa, register, make_user):
    """RFC 6749 §6: a refresh token is bound to its client."""
    other = await register(grants=("refresh_token",), scope=("openid",), auth_method="none")
    user = await make_user()
    tokens = await tokens_for(browser, http, spa, user)

    response = await refresh(http, other, tokens["refresh_token"])

    assert response.json() == {"error": "invalid_grant", "error_description": INVALID_REFRESH}


async def test_no_refresh_token_without_offline_access(browser, http, spa, make_user):
    """OpenID requests get a refresh token only with offline_access."""
    user = await make_user()
    tokens = await tokens_for(browser, http, spa, user, scope="openid email")

    assert "refresh_token" not in tokens


async def test_revoking_refresh_token_revokes_family(browser, http, spa, make_user):
    """RFC 7009: revoking a refresh token revokes its family."""
    user = await make_user()
    tokens = await tokens_for(browser, http, spa, user)
    rotated = (await refresh(http, spa, tokens["refresh_token"])).json()

    response = await http.post("/revoke", data={"token": rotated["refresh_token"], "client_id": spa["client_id"]})

    assert response.status_code == 200
    after = await refresh(http, spa, rotated["refresh_token"])
    assert after.json() == {"error": "invalid_grant", "error_description": INVALID_REFRESH}


async def test_disabled_user_refresh_tokens_stop(browser, http, spa, make_user, ctx):
    """Disabling a user stops all their refresh tokens."""
    user = await make_user()
    tokens = await tokens_for(browser, http, spa, user)

    await users.set_enabled(ctx.database, user.username, False)

    response = await refresh(http, spa, tokens["refresh_token"])
    assert response.json() == {"error": "invalid_grant", "error_description": INVALID_REFRESH}


async def test_disabled_client_refresh_tokens_stop(browser, http, spa, make_user, ctx):
    """Disabling a client stops its refresh tokens (the client no longer authenticates)."""
    from bastion.server import admin

    user = await make_user()
    tokens = await tokens_for(browser, http, spa, user)

    await admin.set_enabled(ctx.database, spa["client_id"], False)

    response = await refresh(http, spa, tokens["refresh_token"])
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_expired_refresh_token_is_invalid_grant(browser, http, spa, make_user, ctx):
    """A refresh token past its idle lifetime is invalid_grant."""
    user = await make_user()
    tokens = await tokens_for(browser, http, spa, user)
    async with ctx.database.engine.begin() as conn:
        await conn.execute(refresh_tokens.update().values(expires_at=int(time.time()) - 1))

    response = await refresh(http, spa, tokens["refresh_token"])
    assert response.json() == {"error": "invalid_grant", "error_description": INVALID_REFRESH}


@pytest.mark.parametrize(
    "where", [pytest.param("userinfo", id="userinfo"), pytest.param("introspect", id="introspect")]
)
async def test_id_token_is_not_an_access_token(browser, http, spa, make_user, register, where):
    """An ID token (typ JWT) presented as an access token is rejected (RFC 9068 typ check)."""
    user = await make_user()
    tokens = await tokens_for(browser, http, spa, user)

    if where == "userinfo":
        response = await http.get("/userinfo", headers={"authorization": f"Bearer {tokens['id_token']}"})
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_token"
        assert response.headers["www-authenticate"].startswith('Bearer realm="bastion", error="invalid_token"')
    else:
        rs = await register(grants=("client_credentials",), introspect=True, audiences=(DEFAULT_AUDIENCE,))
        response = await http.post(
            "/introspect", data={"token": tokens["id_token"]}, auth=(rs["client_id"], rs["client_secret"])
        )
        assert response.json() == {"active": False}


async def test_userinfo_needs_openid_scope(browser, http, spa, make_user):
    """An access token without openid gets insufficient_scope (403) at userinfo."""
    user = await make_user()
    outcome = await authorize(browser, spa, user, scope="read")
    tokens = (await exchange(http, spa, outcome.params["code"], outcome.verifier)).json()

    response = await http.get("/userinfo", headers={"authorization": f"Bearer {tokens['access_token']}"})

    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"
