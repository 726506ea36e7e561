"""Against a real `bastion serve`: no input to any endpoint of the authorization server is answered
with a 5xx or shows a stack trace, on SQLite and PostgreSQL.

Hypothesis mutates valid requests of every endpoint (token, authorize, login, MFA, consent,
device, device_authorization, logout, userinfo, introspection, revocation, revocations,
discovery, jwks): NUL and control characters, lone surrogates and invalid UTF-8 in query strings,
form bodies and percent-encodings, huge values, repeated and missing parameters, every HTTP
method, odd content types, hostile credentials and cookies.

The run is derandomized (the same examples on every CI run) and bounded by
`BASTION_FUZZ_EXAMPLES` (default 120 per database); `BASTION_FUZZ_EXAMPLES=5000
BASTION_FUZZ_RANDOM=1` explores further locally (`BASTION_FUZZ_SHOW=1 pytest -s` prints each
request and its status).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bastion.config import Settings
from tests._live import LiveServer, start_server
from tests.conftest import DEFAULT_AUDIENCE, prepare
from tests.server._people import CALLBACK, hidden_fields

pytestmark = [pytest.mark.server]

PASSWORD = "a long and unusual passphrase"
EXAMPLES = int(os.environ.get("BASTION_FUZZ_EXAMPLES", "120"))
RANDOM = os.environ.get("BASTION_FUZZ_RANDOM", "") not in ("", "0")
# What a leaked exception looks like: a traceback, a frame line, or an exception class name.
LEAK = re.compile(r"Traceback|File \"|\b[A-Z][A-Za-z]*(?:Error|Exception)\b")
# The rate limits are off: a 429 would hide what the endpoint behind it does with the input.
NO_LIMITS = """
[ratelimit.policies]
client_auth_failures_per_client = { enabled = false }
client_auth_failures_per_address = { enabled = false }
login_failures_per_account_burst = { enabled = false }
login_failures_per_account = { enabled = false }
login_failures_per_address = { enabled = false }
device_user_code_per_address = { enabled = false }
"""

# Already-encoded hostile values (bytes on the wire), beside what hypothesis makes up.
HOSTILE: tuple[bytes, ...] = (
    b"%00",
    b"a%00b",
    b"\x00",
    b"%01%1f",
    b"%7f",
    b"%c2%85",  # C1 control NEL
    b"%ed%a0%80",  # a lone surrogate (U+D800) as UTF-8 bytes
    b"%ed%bf%bf%ed%a0%80",
    b"%ff%fe",
    b"%c3",  # a truncated UTF-8 sequence
    b"\xff\xfe",
    b"\xc3(",
    b"%",
    b"%zz",
    b"%%41",
    b"+",
    b"%0d%0aSet-Cookie:%20x=1",
    b"%e2%80%ae",  # right-to-left override (printable, accepted)
    b"%c3%a9" * 50,
    b"A" * 70_000,
    b"9" * 40,
    b"-1",
    b"'%22%3cscript%3e",
    b"%2e%2e%2f%2e%2e%2f",
)
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD")
CONTENT_TYPES: tuple[str | None, ...] = (
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=utf-8",
    "APPLICATION/X-WWW-FORM-URLENCODED;charset=latin-1",
    "application/json",
    "multipart/form-data; boundary=x",
    "text/plain",
    "a/b;;==;charset",
    None,
)


@dataclass(frozen=True)
class Template:
    """A valid request of one endpoint: its method, path, where its parameters go, and them."""

    method: str
    path: str
    params: dict[str, str]
    in_body: bool
    auth: str | None = None


@dataclass(frozen=True)
class World:
    """The live server and what its valid requests need (client ids, a session, a token)."""

    server: LiveServer
    templates: tuple[Template, ...]
    cookie: str


def _cli(server: LiveServer, *args: str, stdin: str | None = None) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "bastion", *args, "--json", "--data-dir", str(server.data_dir)],
        env=server.env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def _world(server: LiveServer) -> World:
    """Clients, a person, a browser session at the login page, and a token, made the ordinary way."""
    _cli(server, "users", "create", "--username", "bob", "--email", "bob@example.com", "--password-stdin",
         stdin=PASSWORD + "\n")
    spa = server.create_client(
        "--name", "SPA", "--grant", "authorization_code", "--grant", "refresh_token",
        "--grant", "urn:ietf:params:oauth:grant-type:device_code", "--auth-method", "none",
        "--redirect-uri", CALLBACK, "--scope", "openid profile email offline_access read",
    )
    rs = server.create_client(
        "--name", "RS", "--grant", "client_credentials", "--scope", "read",
        "--introspect", "--audience", DEFAULT_AUDIENCE,
    )  # fmt: skip
    spa_id, rs_auth = spa["client_id"], _basic(rs["client_id"], rs["client_secret"])
    with httpx.Client(base_url=server.url) as web:
        token = web.post("/token", data={"grant_type": "client_credentials", "scope": "read"},
                         headers={"authorization": rs_auth}).json()["access_token"]
        authorize = {
            "response_type": "code", "client_id": spa_id, "redirect_uri": CALLBACK, "scope": "openid read",
            "state": "s", "nonce": "n", "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
        }
        started = web.get("/authorize", params=authorize)
        # Python's cookie jar never sends a Secure cookie over http: carry it by hand.
        cookie = next(v for v in started.headers.get_list("set-cookie") if v.startswith("__Host-")).split(";")[0]
        login = web.get(started.headers["location"], headers={"cookie": cookie})
        assert 'action="/login"' in login.text, login.text
        form = hidden_fields(login.text)
        device = web.post("/device_authorization", data={"client_id": spa_id, "scope": "openid read"}).json()
    request, csrf = form["request"], form["csrf_token"]
    page = {"request": request, "csrf_token": csrf}
    templates = (
        Template("GET", "/authorize", authorize, in_body=False),
        Template("POST", "/authorize", authorize, in_body=True),
        Template("GET", "/authorize/resume", {"request": request}, in_body=False),
        Template("GET", "/login", {"request": request}, in_body=False),
        Template("POST", "/login", {**page, "username": "bob", "password": "not the password"}, in_body=True),
        Template("GET", "/login/mfa", {"request": request}, in_body=False),
        Template("POST", "/login/mfa", {**page, "code": "123456"}, in_body=True),
        Template("GET", "/mfa/enrol", {"request": request}, in_body=False),
        Template("POST", "/mfa/enrol", {**page, "code": "123456"}, in_body=True),
        Template("GET", "/consent", {"request": request}, in_body=False),
        Template("POST", "/consent", {**page, "decision": "approve"}, in_body=True),
        Template("GET", "/device", {"user_code": device["user_code"]}, in_body=False),
        Template("POST", "/device", {"csrf_token": csrf, "user_code": device["user_code"]}, in_body=True),
        Template("GET", "/device/consent", {"request": request}, in_body=False),
        Template("POST", "/device/consent", {**page, "decision": "deny"}, in_body=True),
        Template("GET", "/logout", {"client_id": spa_id, "post_logout_redirect_uri": CALLBACK, "state": "s",
                                    "id_token_hint": token}, in_body=False),
        Template("POST", "/logout", {"csrf_token": csrf, "client_id": spa_id, "state": "s"}, in_body=True),
        Template("POST", "/token", {"grant_type": "authorization_code", "code": "c" * 43, "client_id": spa_id,
                                    "redirect_uri": CALLBACK, "code_verifier": "v" * 43}, in_body=True),
        Template("POST", "/token", {"grant_type": "refresh_token", "refresh_token": "r" * 43,
                                    "client_id": spa_id, "scope": "read"}, in_body=True),
        Template("POST", "/token", {"grant_type": "client_credentials", "scope": "read", "resource":
                                    "https://api.example"}, in_body=True, auth=rs_auth),
        Template("POST", "/token", {"grant_type": "client_credentials", "client_id": rs["client_id"],
                                    "client_secret": rs["client_secret"]}, in_body=True),
        Template("POST", "/token", {"grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                                    "device_code": device["device_code"], "client_id": spa_id}, in_body=True),
        Template("POST", "/token", {"grant_type": "client_credentials", "client_id": rs["client_id"],
                                    "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                                    "client_assertion": "e30.e30.sig"}, in_body=True),
        Template("POST", "/device_authorization", {"client_id": spa_id, "scope": "openid read"}, in_body=True),
        Template("GET", "/userinfo", {}, in_body=False, auth="Bearer " + token),
        Template("POST", "/userinfo", {"access_token": token}, in_body=True),
        Template("POST", "/introspect", {"token": token, "token_type_hint": "access_token"}, in_body=True,
                 auth=rs_auth),
        Template("POST", "/revoke", {"token": "r" * 43, "token_type_hint": "refresh_token", "client_id": spa_id},
                 in_body=True),
        Template("GET", "/revocations", {"since": "0"}, in_body=False, auth=rs_auth),
        Template("GET", "/.well-known/openid-configuration", {}, in_body=False),
        Template("GET", "/.well-known/oauth-authorization-server", {}, in_body=False),
        Template("GET", "/jwks", {}, in_body=False),
    )
    return World(server, templates, cookie)


@pytest.fixture
def world(settings: Settings, tmp_path: Path) -> Iterator[World]:
    """A live server on this test's database, rate limits off, with its clients, person and session."""
    asyncio.run(prepare(settings))
    config = tmp_path / "no-limits.toml"
    config.write_text(NO_LIMITS)
    server = start_server(settings, tmp_path, BASTION_CONFIG=str(config))
    try:
        yield _world(server)
    finally:
        server.stop()


def _encoded(text: str) -> bytes:
    return quote(text, safe="").encode()


# A value: the template's own, a hostile one, bytes of any kind percent-encoded, or any text
# (lone surrogates included) as UTF-8 with surrogates passed through, percent-encoded or raw.
values = st.one_of(
    st.sampled_from(HOSTILE),
    st.binary(max_size=24).map(lambda b: quote(b, safe="").encode()),
    st.binary(max_size=24),
    st.text(max_size=24).map(lambda t: quote(t.encode("utf-8", "surrogatepass"), safe="").encode()),
)


@st.composite
def requests(draw: st.DrawFn, templates: tuple[Template, ...]) -> dict[str, Any]:
    """One mutated request. Mostly a valid request with one parameter replaced, dropped or
    repeated (so the hostile value reaches the code behind the checks it would otherwise fail);
    sometimes every parameter mutated, a junk one added, the method, placement, content type,
    credentials or cookie changed."""
    template = draw(st.sampled_from(templates))
    names = list(template.params)
    one = draw(st.sampled_from([*names, None])) if names and draw(st.integers(0, 3)) else ...
    fields: list[tuple[bytes, bytes]] = []
    for name, value in template.params.items():
        if one is ...:
            action = draw(st.sampled_from(("keep", "keep", "drop", "hostile", "repeat")))
        else:
            mutations = ("hostile", "hostile", "hostile", "drop", "repeat")
            action = draw(st.sampled_from(mutations)) if name == one else "keep"
        if action == "drop":
            continue
        own = _encoded(value)
        fields.append((name.encode(), draw(values) if action == "hostile" else own))
        if action == "repeat":
            again = draw(st.sampled_from((own, b""))) if draw(st.booleans()) else draw(values)
            fields.append((name.encode(), again))
    if one is None or (one is ... and draw(st.booleans())):
        fields.insert(draw(st.integers(0, len(fields))), (draw(values), draw(values)))
    if fields and draw(st.integers(0, 9)) == 0:
        fields.append((draw(values), b""))  # a name without `=`
    encoded = b"&".join(
        name + (b"" if value == b"" and draw(st.booleans()) else b"=" + value) for name, value in fields
    )
    in_body = template.in_body if draw(st.integers(0, 9)) else not template.in_body
    method = template.method if draw(st.integers(0, 9)) else draw(st.sampled_from(METHODS))
    headers: dict[str, bytes | str] = {}
    content_type = CONTENT_TYPES[0] if draw(st.integers(0, 9)) else draw(st.sampled_from(CONTENT_TYPES))
    if content_type is not None:
        headers["content-type"] = content_type
    hostile_auth = (None, "basic-hostile", "bearer-hostile")
    auth = template.auth if draw(st.integers(0, 5)) else draw(st.sampled_from(hostile_auth))
    if auth == "basic-hostile":
        headers["authorization"] = b"Basic " + base64.b64encode(draw(values) + b":" + draw(values))
    elif auth == "bearer-hostile":
        # A header value holds no control bytes and no edge whitespace (HTTP/1.1 forbids them).
        token = bytes(b for b in draw(values)[:200] if 0x20 < b != 0x7F)
        headers["authorization"] = b"Bearer " + (token or b"x")
    elif auth is not None:
        headers["authorization"] = auth
    cookie = 1 if draw(st.integers(0, 5)) else draw(st.sampled_from((0, 2)))
    return {"method": method, "path": template.path, "query": b"" if in_body else encoded,
            "body": encoded if in_body else b"", "headers": headers, "cookie": cookie}


def _send(web: httpx.Client, world: World, drawn: dict[str, Any]) -> httpx.Response:
    headers = dict(drawn["headers"])
    if drawn["cookie"] == 1:
        headers["cookie"] = world.cookie
    elif drawn["cookie"] == 2:
        headers["cookie"] = "__Host-bastion-session=%00%ff" + "x" * 300
    # A request line carries no raw control or non-ASCII byte: those go percent-encoded, as a
    # client sends them (a raw `%` stays raw, so broken escapes still arrive broken).
    query = b"".join(bytes([b]) if 0x21 <= b <= 0x7E else b"%%%02X" % b for b in drawn["query"])
    url = httpx.URL(world.server.url + drawn["path"], query=query)
    return web.request(drawn["method"], url, content=drawn["body"], headers=headers)


def test_no_input_gets_a_server_error_or_a_stack_trace(world: World) -> None:
    """Every mutated request to every endpoint is answered below 500, with no traceback or exception name."""
    strategy = requests(world.templates)

    with httpx.Client(timeout=30) as web:

        @hypothesis_settings(
            max_examples=EXAMPLES,
            derandomize=not RANDOM,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(strategy)
        def property_(drawn: dict[str, Any]) -> None:
            response = _send(web, world, drawn)
            if os.environ.get("BASTION_FUZZ_SHOW"):
                print(drawn["method"], drawn["path"], drawn["query"][:80], drawn["body"][:80], response.status_code)
            shown = f"{drawn['method']} {drawn['path']}: {response.status_code} {response.text[:300]!r}"
            assert response.status_code < 500, shown
            assert LEAK.search(response.text) is None, shown

        property_()
    log = world.server.log.read_text()
    assert "unhandled_error" not in log, log[-4000:]


CONTROL = {"error": "invalid_request", "error_description": "parameters must not contain control characters"}
BAD_QUERY = {"error": "invalid_request", "error_description": "the query string is not valid URL encoding"}
BAD_BODY = {"error": "invalid_request", "error_description": "the request body is not valid form encoding"}


# (id, request, field, hostile value as sent, the answer); one server per database serves them all.
HOSTILE_TEXT = (
    ("authorize-client-id-nul", "GET /authorize", "client_id", "a%00b", CONTROL),
    ("login-request-id-nul", "GET /login", "request", "a%00b", CONTROL),
    ("login-username-nul", "POST /login", "username", "bo%00b", CONTROL),
    ("login-posted-request-id-nul", "POST /login", "request", "x%00", CONTROL),
    ("resume-request-id-nul", "GET /authorize/resume", "request", "a%00b", CONTROL),
    ("logout-client-id-nul", "GET /logout", "client_id", "a%00b", CONTROL),
    ("consent-lone-surrogate", "GET /consent", "request", "%ed%a0%80", BAD_QUERY),
    ("consent-invalid-utf8", "POST /consent", "decision", "%ff", BAD_BODY),
    ("device-user-code-crlf", "GET /device", "user_code", "%0d%0a", CONTROL),
    ("token-code-nul", "POST /token", "code", "c%00", CONTROL),
    ("revoke-truncated-utf8", "POST /revoke", "token", "%c3", BAD_BODY),
)


def _with(world: World, page: str, field: str, value: str) -> dict[str, Any]:
    """The template request of `page` with `field` set to the raw `value`."""
    method, path = page.split(" ")
    template = next(t for t in world.templates if (t.method, t.path) == (method, path))
    encoded = b"&".join(
        name.encode() + b"=" + (value.encode() if name == field else _encoded(own))
        for name, own in template.params.items()
    )
    headers: dict[str, str] = {"content-type": CONTENT_TYPES[0] or ""}
    if template.auth:
        headers["authorization"] = template.auth
    return {"method": method, "path": path, "query": b"" if template.in_body else encoded,
            "body": encoded if template.in_body else b"", "cookie": 1, "headers": headers}


def test_hostile_text_is_invalid_request_before_the_database(world: World) -> None:
    """NUL, controls and invalid UTF-8 in a query or form field of each endpoint are 400 invalid_request."""
    with httpx.Client(timeout=30) as web:
        answers = {}
        for case, page, field, value, _ in HOSTILE_TEXT:
            response = _send(web, world, _with(world, page, field, value))
            is_json = response.headers.get("content-type", "").startswith("application/json")
            answers[case] = (response.status_code, response.json() if is_json else response.text[:200])

    assert answers == {case: (400, answer) for case, _, _, _, answer in HOSTILE_TEXT}
