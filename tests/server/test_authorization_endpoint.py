"""The authorization endpoint's rules (RFC 6749 §4.1, RFC 7636, RFC 9207, RFC 9700), on both databases."""

from __future__ import annotations

import pytest

from tests.server._people import *  # noqa: F403 - fixtures and the flow driver
from tests.server._people import CALLBACK, authorize, authorize_params, follow, hidden_fields, pkce, query_of

pytestmark = pytest.mark.anyio


async def test_unknown_client_gets_error_page_and_no_redirect(browser):
    """An unknown client_id answers a 400 page and never redirects."""
    response = await browser.get(
        "/authorize", params={"response_type": "code", "client_id": "nope", "redirect_uri": CALLBACK}
    )

    assert response.status_code == 400
    assert "location" not in response.headers
    assert "not registered" in response.text


@pytest.mark.parametrize(
    "redirect_uri",
    [
        pytest.param("https://evil.example/callback", id="other-host"),
        pytest.param(CALLBACK + "/x", id="other-path"),
        pytest.param(CALLBACK + "?a=1", id="extra-query"),
        pytest.param(CALLBACK + "#frag", id="fragment"),
        pytest.param("HTTPS://spa.example/callback", id="case-differs"),
        pytest.param("http://127.0.0.1:8080/other", id="loopback-other-path"),
        pytest.param("http://localhost:8080/native", id="localhost-not-ip"),
        pytest.param(None, id="missing"),
    ],
)
async def test_redirect_uri_mismatch_is_error_page_never_redirect(browser, spa, redirect_uri):
    """A redirect URI that does not match a registered one exactly is a 400 page, never a redirect."""
    _, challenge = pkce()
    params = authorize_params(spa, challenge, redirect_uri=redirect_uri)

    response = await browser.get("/authorize", params=params)

    assert response.status_code == 400
    assert "location" not in response.headers
    assert "redirect_uri" in response.text


async def test_loopback_redirect_may_vary_port(browser, spa, make_user):
    """RFC 8252 §7.3: a loopback IP redirect URI matches with any port."""
    user = await make_user()
    outcome = await authorize(browser, spa, user, redirect_uri="http://127.0.0.1:53119/native")

    assert outcome.location.startswith("http://127.0.0.1:53119/native?code=")


@pytest.mark.parametrize(
    "response_type",
    [
        pytest.param("token", id="implicit"),
        pytest.param("id_token token", id="hybrid-id-token-token"),
        pytest.param("code id_token", id="hybrid-code-id-token"),
        pytest.param("id_token", id="id-token"),
    ],
)
async def test_implicit_and_hybrid_are_unsupported_response_type(browser, spa, response_type):
    """Only response_type=code; others redirect with unsupported_response_type naming Authorization Code + PKCE."""
    _, challenge = pkce()
    params = authorize_params(spa, challenge, response_type=response_type, state="xyz")

    response = await browser.get("/authorize", params=params)

    assert response.status_code == 303
    assert response.headers["location"].startswith(CALLBACK + "?")
    assert query_of(response.headers["location"]) == {
        "error": "unsupported_response_type",
        "error_description": f"response_type {response_type} is not supported; use response_type=code "
        "(Authorization Code with PKCE, RFC 9700 §2.1.2)",
        "state": "xyz",
        "iss": "http://127.0.0.1:8000",
    }


@pytest.mark.parametrize(
    ("overrides", "description"),
    [
        pytest.param(
            {"code_challenge": None, "code_challenge_method": None},
            "code_challenge is required (PKCE with S256, RFC 7636)",
            id="pkce-missing",
        ),
        pytest.param({"code_challenge_method": "plain"}, "code_challenge_method must be S256", id="pkce-plain"),
        pytest.param(
            {"code_challenge_method": None}, "code_challenge_method is required and must be S256", id="method-missing"
        ),
        pytest.param(
            {"code_challenge": "short"}, "code_challenge must be 43 base64url characters (S256)", id="challenge-short"
        ),
        pytest.param({"response_type": None}, "response_type is required", id="response-type-missing"),
        pytest.param({"prompt": "none login"}, "prompt=none must not be combined with other values", id="prompt-none+"),
        pytest.param({"prompt": "bogus"}, "prompt value bogus is not supported", id="prompt-unknown"),
        pytest.param(
            {"max_age": "-1"}, "max_age must be a non-negative integer number of seconds", id="max-age-negative"
        ),
    ],
)
async def test_invalid_request_redirects_with_error_state_and_iss(browser, spa, overrides, description):
    """Errors after the redirect URI is known go back to it with error, error_description, state and iss."""
    _, challenge = pkce()
    params = authorize_params(spa, challenge, state="s1", **overrides)

    response = await browser.get("/authorize", params=params)

    assert response.status_code == 303
    assert query_of(response.headers["location"]) == {
        "error": "invalid_request",
        "error_description": description,
        "state": "s1",
        "iss": "http://127.0.0.1:8000",
    }


@pytest.mark.parametrize(
    ("name", "error"),
    [
        pytest.param("request", "request_not_supported", id="request"),
        pytest.param("request_uri", "request_uri_not_supported", id="request_uri"),
    ],
)
async def test_request_objects_redirect_with_their_own_error(browser, spa, name, error):
    """OpenID Connect Core §3.1.2.6: `request` is request_not_supported, `request_uri` (RFC 9101)
    request_uri_not_supported, at the redirect URI with state and iss."""
    _, challenge = pkce()
    value = "urn:ietf:params:oauth:request_uri:abc" if name == "request_uri" else "eyJhbGciOiJub25lIn0.e30."
    params = authorize_params(spa, challenge, state="s1", **{name: value})

    response = await browser.get("/authorize", params=params)

    assert response.status_code == 303
    assert query_of(response.headers["location"]) == {
        "error": error,
        "error_description": f"the {name} parameter is not supported",
        "state": "s1",
        "iss": "http://127.0.0.1:8000",
    }


async def test_scope_not_allowed_is_invalid_scope(browser, spa):
    """A scope the client may not request is invalid_scope at the redirect URI."""
    _, challenge = pkce()
    response = await browser.get("/authorize", params=authorize_params(spa, challenge, scope="openid admin", state="s"))

    assert query_of(response.headers["location"]) == {
        "error": "invalid_scope",
        "error_description": "scope not allowed for this client: admin",
        "state": "s",
        "iss": "http://127.0.0.1:8000",
    }


async def test_client_without_code_grant_is_unauthorized_client(browser, register):
    """A client not registered for authorization_code gets unauthorized_client at its redirect URI."""
    client = await register(grants=("client_credentials",), redirect_uris=(CALLBACK,))
    _, challenge = pkce()
    response = await browser.get("/authorize", params=authorize_params(client, challenge, scope="read", state="s"))

    assert query_of(response.headers["location"])["error"] == "unauthorized_client"


async def test_confidential_client_needs_pkce_by_default(browser, register):
    """RFC 9700 §2.1.1: PKCE is required for confidential clients too, by default."""
    client = await register(grants=("authorization_code",), scope=("openid",), redirect_uris=(CALLBACK,))
    params = authorize_params(client, "x", scope="openid", code_challenge=None, code_challenge_method=None, state="s")

    response = await browser.get("/authorize", params=params)

    assert query_of(response.headers["location"])["error"] == "invalid_request"


async def test_prompt_none_without_session_is_login_required(browser, spa):
    """prompt=none with no browser session answers login_required with state and iss."""
    _, challenge = pkce()
    response = await browser.get("/authorize", params=authorize_params(spa, challenge, prompt="none", state="s"))

    assert response.status_code == 303
    assert query_of(response.headers["location"]) == {
        "error": "login_required",
        "error_description": "the user is not logged in",
        "state": "s",
        "iss": "http://127.0.0.1:8000",
    }


async def test_prompt_none_without_consent_is_consent_required(browser, spa, make_user):
    """prompt=none with a session but missing consent for the scope answers consent_required."""
    user = await make_user()
    await authorize(browser, spa, user, scope="openid")
    outcome = await authorize(browser, spa, None, scope="openid email", prompt="none", state="s2")

    assert outcome.params == {
        "error": "consent_required",
        "error_description": "the user has not consented to this scope",
        "state": "s2",
        "iss": "http://127.0.0.1:8000",
    }


async def test_prompt_none_with_session_and_consent_issues_code(browser, spa, make_user):
    """A live session with consent for the scope yields a code silently under prompt=none."""
    user = await make_user()
    await authorize(browser, spa, user, scope="openid email")
    outcome = await authorize(browser, spa, None, scope="openid", prompt="none")

    assert set(outcome.params) == {"code", "state", "iss"}


async def test_new_scope_asks_for_consent_again(browser, spa, make_user):
    """Consent is stored per user, client and scopes; a new scope shows the consent page again."""
    user = await make_user()
    await authorize(browser, spa, user, scope="openid")
    silent = await authorize(browser, spa, None, scope="openid", consent=None)
    asked = await authorize(browser, spa, None, scope="openid email", consent=None)

    assert "code" in silent.params
    assert asked.response.status_code == 200
    assert 'action="/consent"' in asked.response.text
    assert "See your email address" in asked.response.text


async def test_prompt_login_asks_for_password_again(browser, spa, make_user):
    """prompt=login shows the login page even with a live session."""
    user = await make_user()
    await authorize(browser, spa, user, scope="openid")
    outcome = await authorize(browser, spa, None, scope="openid", prompt="login", consent=None)

    assert 'action="/login"' in outcome.response.text


async def test_deny_consent_is_access_denied(browser, spa, make_user):
    """Denying consent returns access_denied with state and iss."""
    user = await make_user()
    outcome = await authorize(browser, spa, user, consent="deny", state="s3")

    assert outcome.params == {
        "error": "access_denied",
        "error_description": "the user denied the request",
        "state": "s3",
        "iss": "http://127.0.0.1:8000",
    }


async def test_consent_page_names_client_and_scopes_in_plain_words(browser, spa, make_user):
    """The consent page names the client and lists each requested scope in plain words."""
    user = await make_user()
    outcome = await authorize(browser, spa, user, consent=None, scope="openid profile offline_access")

    page = outcome.response.text
    assert "Example SPA" in page
    assert "Confirm who you are" in page
    assert "See your name and profile details" in page
    assert "Stay signed in" in page
    assert 'value="approve"' in page
    assert 'value="deny"' in page


@pytest.mark.parametrize("csrf_token", [pytest.param(None, id="missing"), pytest.param("wrong", id="wrong")])
async def test_login_without_valid_csrf_token_is_refused(browser, spa, make_user, csrf_token):
    """A login form posted without the session's CSRF token is refused with 403."""
    user = await make_user()
    _, challenge = pkce()
    page = await follow(browser, await browser.get("/authorize", params=authorize_params(spa, challenge)))
    form = hidden_fields(page.text)
    form.pop("csrf_token")
    if csrf_token is not None:
        form["csrf_token"] = csrf_token

    response = await browser.post("/login", data={**form, "username": user.username, "password": user.password})

    assert response.status_code == 403
    assert "CSRF" in response.text


async def test_consent_without_csrf_token_is_refused(browser, spa, make_user):
    """The consent form without its CSRF token is refused with 403 and issues no code."""
    user = await make_user()
    outcome = await authorize(browser, spa, user, consent=None)
    form = hidden_fields(outcome.response.text)
    form.pop("csrf_token")

    response = await browser.post("/consent", data={**form, "decision": "approve"})

    assert response.status_code == 403
    assert "location" not in response.headers


async def test_wrong_password_says_nothing_about_the_account(browser, spa, make_user):
    """A wrong password and an unknown user get the same message and status."""
    await make_user()
    _, challenge = pkce()
    page = await follow(browser, await browser.get("/authorize", params=authorize_params(spa, challenge)))
    form = hidden_fields(page.text)

    wrong = await browser.post("/login", data={**form, "username": "alice", "password": "not the password!"})
    unknown = await browser.post("/login", data={**form, "username": "nobody", "password": "not the password!"})

    assert wrong.status_code == unknown.status_code == 400
    assert "Wrong username or password." in wrong.text
    assert "Wrong username or password." in unknown.text


async def test_pages_send_csp_and_no_inline_script(browser, spa):
    """Pages carry the CSP, no-store and nosniff, and contain no script."""
    _, challenge = pkce()
    page = await follow(browser, await browser.get("/authorize", params=authorize_params(spa, challenge)))

    assert page.status_code == 200
    assert page.headers["content-security-policy"] == "default-src 'self'; frame-ancestors 'none'"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "<script" not in page.text
    assert "style=" not in page.text


async def test_session_cookie_is_host_prefixed_secure_httponly_lax(browser, spa):
    """The session cookie is __Host-, Secure, HttpOnly, SameSite=Lax, Path=/."""
    _, challenge = pkce()
    response = await browser.get("/authorize", params=authorize_params(spa, challenge))

    cookie = response.headers["set-cookie"]
    assert cookie.startswith("__Host-bastion-session=")
    assert "; Path=/; Secure; HttpOnly; SameSite=Lax" in cookie
    assert "Domain" not in cookie


async def test_session_id_rotates_at_login(browser, spa, make_user):
    """The session id changes at login; the pre-login id no longer works."""
    user = await make_user()
    _, challenge = pkce()
    page = await follow(browser, await browser.get("/authorize", params=authorize_params(spa, challenge)))
    before = browser.cookies["__Host-bastion-session"]
    form = hidden_fields(page.text)

    response = await browser.post("/login", data={**form, "username": user.username, "password": user.password})
    after = browser.cookies["__Host-bastion-session"]

    assert response.status_code == 303
    assert after != before
    browser.cookies.set("__Host-bastion-session", before, domain="127.0.0.1")
    stale = await browser.get(f"/consent?request={form['request']}")
    assert stale.status_code == 400


async def test_max_age_zero_asks_once_then_issues_code(browser, spa, make_user, ctx):
    """max_age=0 forces a fresh login, and that login satisfies it (no loop back to the login page)."""
    from bastion.store.models import browser_sessions

    user = await make_user()
    await authorize(browser, spa, user, scope="openid")
    async with ctx.database.engine.begin() as conn:
        await conn.execute(browser_sessions.update().values(auth_time=browser_sessions.c.auth_time - 5))

    asked = await authorize(browser, spa, None, scope="openid", max_age="0", consent=None)
    assert 'action="/login"' in asked.response.text
    outcome = await authorize(browser, spa, user, scope="openid", max_age="0")

    assert set(outcome.params) == {"code", "state", "iss"}
