"""Relying-party libraries nobody at Bastion wrote, against a real `bastion serve` (issue 3):
openid-client (a certified RP, npm) and Authlib's Python client, each doing discovery, PKCE and
nonce, the browser step, callback validation, the code exchange, ID token validation, userinfo
and refresh."""

from __future__ import annotations

import json
import subprocess
import sys
from urllib.parse import urljoin

import httpx
import pytest

from tests import _services

pytestmark = [pytest.mark.server]

CALLBACK = "http://127.0.0.1:9/callback"
PASSWORD = "a long and unusual passphrase"
SCRIPT = _services.ROOT / "tests" / "server" / "rp_openid_client.mjs"


def browser_step(authorization_url: str, username: str, password: str) -> str:
    """What a person does in the browser: log in and consent. Returns the callback URL.

    The session cookie is carried by hand: Python's cookie policy never sends a `Secure` cookie
    over plain http, while browsers treat http://127.0.0.1 as a secure context.
    """
    import re

    cookie: dict[str, str] = {}
    with httpx.Client(timeout=30) as http:

        def go(method: str, url: str, data: dict[str, str] | None = None) -> httpx.Response:
            headers = {"cookie": f"__Host-bastion-session={cookie['v']}"} if cookie else {}
            response = http.request(method, url, data=data, headers=headers)
            for value in response.headers.get_list("set-cookie"):
                name, _, rest = value.partition("=")
                if name == "__Host-bastion-session":
                    cookie["v"] = rest.split(";", 1)[0]
            while response.status_code == 303 and response.headers["location"].startswith("/"):
                return go("GET", urljoin(url, response.headers["location"]))
            return response

        def fields(page: httpx.Response) -> dict[str, str]:
            return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))

        page = go("GET", authorization_url)
        page = go(
            "POST", urljoin(authorization_url, "/login"), {**fields(page), "username": username, "password": password}
        )
        if 'action="/consent"' in page.text:
            page = go("POST", urljoin(authorization_url, "/consent"), {**fields(page), "decision": "approve"})
        assert page.status_code == 303, page.text
        return page.headers["location"]


@pytest.fixture
def rp_server(live_server):
    args = [sys.executable, "-m", "bastion", "users", "create", "--username", "carol", "--email", "carol@example.com"]
    args += ["--email-verified", "--password-stdin", "--json", "--data-dir", str(live_server.data_dir)]
    result = subprocess.run(
        args, env=live_server.env, input=PASSWORD + "\n", capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    client = live_server.create_client(
        "--name",
        "RP",
        "--grant",
        "authorization_code",
        "--grant",
        "refresh_token",
        "--auth-method",
        "none",
        "--redirect-uri",
        CALLBACK,
        "--scope",
        "openid profile email offline_access",
    )
    return live_server, json.loads(result.stdout), client


@pytest.mark.npm
def test_openid_client_full_flow(rp_server):
    """openid-client validates discovery, callback (state, iss), ID token (nonce), userinfo and refresh."""
    node_dir = _services.need_node_package("openid-client")
    server, user, client = rp_server
    process = subprocess.Popen(
        ["node", "--input-type=module", "-e", SCRIPT.read_text(), server.url, client["client_id"], CALLBACK],
        cwd=node_dir,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdin is not None
        first = process.stdout.readline()
        assert first, process.stderr.read() if process.stderr else ""
        url = json.loads(first)["authorization_url"]
        process.stdin.write(browser_step(url, "carol", PASSWORD) + "\n")
        process.stdin.flush()
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])

    assert result["claims"]["sub"] == user["sub"]
    assert result["claims"]["iss"] == server.url
    assert result["claims"]["aud"] == client["client_id"]
    assert result["userinfo"] == {
        "sub": user["sub"],
        "email": "carol@example.com",
        "email_verified": True,
        "name": "carol",
        "preferred_username": "carol",
        "updated_at": result["userinfo"]["updated_at"],
    }
    assert result["scope"] == "openid profile email offline_access"
    assert result["refreshed"] == {"has_access_token": True, "rotated": True, "sub": user["sub"]}


# Authlib 1.6 announces its own module moves (httpx2, joserfc); what is tested is its behaviour.
@pytest.mark.filterwarnings("ignore::authlib.deprecate.AuthlibDeprecationWarning")
def test_authlib_client_full_flow(rp_server):
    """Authlib's OAuth2 client with PKCE and nonce; Authlib validates the ID token; userinfo and refresh work."""
    from authlib.integrations.httpx_client import OAuth2Client
    from authlib.jose import JsonWebKey, jwt
    from authlib.oidc.core import CodeIDToken

    server, user, client = rp_server
    meta = httpx.get(server.url + "/.well-known/openid-configuration").json()
    keys = JsonWebKey.import_key_set(httpx.get(meta["jwks_uri"]).json())
    verifier = "authlib-verifier-" + "x" * 40
    with OAuth2Client(
        client["client_id"],
        redirect_uri=CALLBACK,
        scope="openid profile email offline_access",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    ) as oauth:
        url, state = oauth.create_authorization_url(
            meta["authorization_endpoint"], code_verifier=verifier, nonce="authlib-nonce"
        )
        callback = browser_step(url, "carol", PASSWORD)
        token = oauth.fetch_token(
            meta["token_endpoint"], authorization_response=callback, code_verifier=verifier, state=state
        )
        claims = jwt.decode(
            token["id_token"],
            keys,
            claims_cls=CodeIDToken,
            claims_options={"iss": {"values": [meta["issuer"]]}, "aud": {"values": [client["client_id"]]}},
            claims_params={"nonce": "authlib-nonce", "access_token": token["access_token"]},
        )
        claims.validate()
        userinfo = oauth.get(meta["userinfo_endpoint"]).json()
        refreshed = oauth.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])

    assert claims["sub"] == user["sub"]
    assert userinfo["sub"] == user["sub"]
    assert userinfo["email"] == "carol@example.com"
    assert refreshed["refresh_token"] != token["refresh_token"]
    assert "id_token" in refreshed
