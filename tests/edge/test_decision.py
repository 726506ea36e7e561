"""`bastion edge serve` as nginx and Caddy ask it: a real process, real HTTP, a real token issuer.

Every refusal is asserted with its status and `error`; the attacker's tries (forged tokens,
ambiguous paths, spoofed bodies, exhausted quotas) each get theirs, and none a 5xx but the
decision's own dependency failure (503).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import secrets
import time
import uuid
from base64 import b64encode, urlsafe_b64encode
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from jwt.algorithms import ECAlgorithm

from bastion.guard.apikeys import ApiKeyManager, JsonFileApiKeyStore
from tests._services import need_redis
from tests.edge._edge import EdgeProcess, running_edge
from tests.guard._issuer import (
    AUDIENCE,
    CLIENT_ID,
    REVOCATION_CLIENT,
    TestIssuer,
    b64,
    b64json,
    free_port,
    running_issuer,
)

ROUTES = """\
routes:
  - {path: /notes, methods: [GET, POST], scopes: [notes:read], body: {max: 1k, types: [application/json]}}
  - {path: "/notes/{id}", methods: [GET, PATCH], scopes: [notes:read], roles: [editor, admin]}
  - {path: /keys, methods: [GET], scopes: [notes:read], api_key: true}
  - {path: /mtls, methods: [GET], scopes: [notes:read], client_cert: required}
  - {path: /limited, methods: [GET], scopes: [notes:read], quotas: [{per: sub, limit: 2, window: minute}]}
  - {path: /daily, methods: [GET], public: true, quotas: [{per: address, limit: 1, window: day}]}
  - {path: /health, methods: [GET], public: true}
  - {path: "/public/{name}", methods: [GET], public: true}
"""


def write_policy(directory: Path, issuer: str, extra: str = "") -> Path:
    """A policy for `issuer` with the test routes (TLS files are named, never read by the decision)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "policy.yaml"
    path.write_text(
        f"issuer: {issuer}\naudience: {AUDIENCE}\nupstream: http://127.0.0.1:9\n"
        f"client_id: {REVOCATION_CLIENT[0]}\nclient_secret: {REVOCATION_CLIENT[1]}\n"
        "tls: {cert: cert.pem, key: key.pem, client_ca: ca.pem}\n"
        f"api_keys: {{file: apikeys.json}}\n{extra}{ROUTES}"
    )
    return path


@pytest.fixture(scope="module")
def issuer() -> Iterator[TestIssuer]:
    """The test issuer on a real uvicorn server: discovery, JWKS, revocations."""
    with running_issuer() as live:
        yield live


@pytest.fixture(scope="module")
def api_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A directory holding apikeys.json with one key for `notes:read`: (dir, key, key id)."""
    directory = tmp_path_factory.mktemp("edge")
    key, record = ApiKeyManager(JsonFileApiKeyStore(directory / "apikeys.json")).create("billing", ["notes:read"])
    return directory, key, record.key_id


@pytest.fixture(scope="module")
def edge(issuer: TestIssuer, api_key: tuple[Path, str, str]) -> Iterator[EdgeProcess]:
    """The decision service with counters in memory."""
    with running_edge(write_policy(api_key[0], issuer.issuer)) as process:
        yield process


@pytest.fixture(scope="module")
def redis_edge(issuer: TestIssuer, api_key: tuple[Path, str, str]) -> Iterator[EdgeProcess]:
    """The same policy with its counters (and the revocation channel) in Redis."""
    url = need_redis()
    directory = api_key[0] / "redis"
    directory.mkdir()
    (directory / "apikeys.json").write_text((api_key[0] / "apikeys.json").read_text())
    with running_edge(write_policy(directory, issuer.issuer, f"redis: {url}\n")) as process:
        yield process


def token(issuer: TestIssuer, **claims: Any) -> str:
    claims.setdefault("scope", "notes:read")
    return issuer.mint(**claims)


def error_of(response: httpx.Response) -> str:
    return str(response.json().get("error"))


# -- who may pass -------------------------------------------------------------------------------


def test_no_token_is_401_with_the_bare_challenge(edge: EdgeProcess) -> None:
    """A token route asked about without credentials answers 401 and RFC 6750's bare challenge."""
    response = edge.decide("GET", "/notes")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == f'Bearer realm="{AUDIENCE}"'
    assert "Authentication required" in response.json()["error_description"]
    assert response.headers["cache-control"] == "no-store"


def test_a_token_without_the_scope_is_403_insufficient_scope(edge: EdgeProcess, issuer: TestIssuer) -> None:
    """Every listed scope is required: a token lacking one gets insufficient_scope with the scope named."""
    response = edge.decide("GET", "/notes", token=token(issuer, scope="notes:write"))

    assert response.status_code == 403
    assert error_of(response) == "insufficient_scope"
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert 'scope="notes:read"' in response.headers["www-authenticate"]


def test_a_token_without_any_listed_role_is_403_forbidden(edge: EdgeProcess, issuer: TestIssuer) -> None:
    """A route listing roles needs one of them from the token's roles claim."""
    response = edge.decide("GET", "/notes/42", token=token(issuer, roles=["viewer"]))

    assert response.status_code == 403
    assert error_of(response) == "forbidden"
    assert "requires role admin or editor" in response.json()["error_description"]


def test_the_right_token_is_200_with_the_identity_headers(edge: EdgeProcess, issuer: TestIssuer) -> None:
    """Allowed: 200, empty body, the identity the proxy copies upstream, the proxy's request id kept."""
    response = edge.decide("GET", "/notes/42", token=token(issuer, roles=["editor"], scope="notes:read notes:write"),
                           headers={"X-Request-ID": "edge-test-1"})

    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["x-bastion-sub"] == "alice"
    assert response.headers["x-bastion-client-id"] == CLIENT_ID
    assert response.headers["x-bastion-scope"] == "notes:read notes:write"
    assert response.headers["x-bastion-roles"] == "editor"
    assert response.headers["x-bastion-api-key-id"] == ""
    assert response.headers["x-bastion-cert-thumbprint"] == ""
    assert response.headers["x-request-id"] == "edge-test-1"


def test_a_claim_that_could_split_a_header_is_escaped(edge: EdgeProcess, issuer: TestIssuer) -> None:
    """A sub holding a newline or non-ASCII text reaches the proxy percent-encoded, one header."""
    response = edge.decide("GET", "/notes", token=token(issuer, sub="mallory\r\nX-Bastion-Roles: admin é"))

    assert response.status_code == 200
    assert response.headers["x-bastion-sub"] == "mallory%0D%0AX-Bastion-Roles: admin %C3%A9"
    assert response.headers["x-bastion-roles"] == ""


def test_an_unlisted_route_is_404_and_a_wrong_method_405_with_allow(edge: EdgeProcess, issuer: TestIssuer) -> None:
    """Deny by default: no route is 404; a routed path with another method is 405 naming the methods."""
    missing = edge.decide("GET", "/admin", token=token(issuer))
    wrong = edge.decide("DELETE", "/notes", token=token(issuer))

    assert (missing.status_code, error_of(missing)) == (404, "not_found")
    assert (wrong.status_code, error_of(wrong)) == (405, "method_not_allowed")
    assert wrong.headers["allow"] == "GET, POST"
    assert "www-authenticate" not in missing.headers


def test_a_public_route_is_200_without_a_token(edge: EdgeProcess) -> None:
    """A public route needs no credentials and passes no identity."""
    response = edge.decide("GET", "/health")

    assert response.status_code == 200
    assert response.headers["x-bastion-sub"] == ""


def test_an_api_key_route_takes_a_key_from_the_file(edge: EdgeProcess, api_key: tuple[Path, str, str]) -> None:
    """X-API-Key is accepted where the route says so, and the key id goes upstream."""
    _, key, key_id = api_key
    response = edge.decide("GET", "/keys", headers={"X-API-Key": key})

    assert response.status_code == 200
    assert response.headers["x-bastion-api-key-id"] == key_id
    assert response.headers["x-bastion-sub"] == "billing"


@pytest.mark.parametrize(("path", "key", "status", "error"), [
    pytest.param("/keys", "wrong", 401, "invalid_api_key", id="bad-key"),
    pytest.param("/notes", None, 401, "invalid_request", id="key-on-a-token-route"),
])
def test_an_api_key_is_refused_where_it_does_not_serve(
    edge: EdgeProcess, api_key: tuple[Path, str, str], path: str, key: str | None, status: int, error: str
) -> None:
    """A wrong key, or a good key on a route that needs a user's token, is refused 401."""
    response = edge.decide("GET", path, headers={"X-API-Key": key or api_key[1]})

    assert (response.status_code, error_of(response)) == (status, error)


@pytest.mark.parametrize("headers", [
    pytest.param({"X-Forwarded-Method": ""}, id="no-method"),
    pytest.param({"X-Forwarded-Method": "BREW"}, id="unknown-method"),
])
def test_a_subrequest_without_the_original_method_is_400(edge: EdgeProcess, headers: dict[str, str]) -> None:
    """A proxy that does not say which method it forwards is told so, never allowed."""
    response = edge.decide("GET", "/health", headers=headers)

    assert (response.status_code, error_of(response)) == (400, "invalid_request")
    assert "X-Forwarded-Method" in response.json()["error_description"]


@pytest.mark.parametrize("header", ["X-Forwarded-Uri", "X-Client-Cert", "X-Original-Content-Length"])
def test_a_proxy_header_sent_twice_is_400(edge: EdgeProcess, header: str) -> None:
    """Two copies of a header the proxy sets (a client's beside the proxy's) are refused, never chosen from."""
    response = edge.decide("GET", "/health", also=[(header, "/admin" if header.endswith("Uri") else "1")],
                           headers={header: "/health" if header.endswith("Uri") else "1"})

    assert (response.status_code, error_of(response)) == (400, "invalid_request")
    assert header.lower() in response.json()["error_description"]


# -- forged and unusable tokens -----------------------------------------------------------------


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: str = "") -> str:
    return f"{b64json(header)}.{b64json(claims)}.{signature}"


def _hs256_with_public_key(issuer: TestIssuer) -> str:
    pem = issuer.rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{b64json({'alg': 'HS256', 'typ': 'at+jwt', 'kid': issuer.rsa_kid})}.{b64json(issuer.claims())}"
    return f"{signing_input}.{b64(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())}"


def _attacker_signed(issuer: TestIssuer, header: dict[str, Any]) -> str:
    attacker = ec.generate_private_key(ec.SECP256R1())
    jwk = ECAlgorithm.to_jwk(attacker.public_key(), as_dict=True)
    extra = {k: jwk if v == "JWK" else v for k, v in header.items()}
    full = {"alg": "ES256", "typ": "at+jwt", "kid": "attacker", **extra}
    signing_input = f"{b64json(full)}.{b64json(issuer.claims(sub='admin'))}".encode()
    return f"{signing_input.decode()}.{b64(ECAlgorithm(ECAlgorithm.SHA256).sign(signing_input, attacker))}"


def _tampered(issuer: TestIssuer) -> str:
    h, _, s = issuer.mint(scope="notes:read").split(".")
    return f"{h}.{b64json(issuer.claims(sub='admin', scope='notes:read'))}.{s}"


FORGERIES: dict[str, Callable[[TestIssuer], str]] = {
    "alg-none": lambda i: _unsigned({"alg": "none", "typ": "at+jwt"}, i.claims()),
    "alg-none-kept-signature": lambda i: _unsigned({"alg": "none", "typ": "at+jwt"}, i.claims(),
                                                   i.mint().split(".")[2]),
    "hs256-keyed-with-the-public-key": _hs256_with_public_key,
    "stripped-signature": lambda i: i.mint(scope="notes:read").rsplit(".", 1)[0] + ".",
    "edited-payload": _tampered,
    "foreign-kid": lambda i: i.mint(header={"kid": "forged"}),
    "jku": lambda i: _attacker_signed(i, {"jku": "http://127.0.0.1:9/jwks"}),
    "x5u": lambda i: _attacker_signed(i, {"x5u": "http://127.0.0.1:9/cert"}),
    "embedded-jwk": lambda i: _attacker_signed(i, {"jwk": "JWK"}),
    "attacker-key-trusted-kid": lambda i: _attacker_signed(i, {"kid": i.ec_kid}),
    "wrong-aud": lambda i: i.mint(aud="https://other.api"),
    "wrong-iss": lambda i: i.mint(iss="http://evil.test"),
    "expired": lambda i: i.mint(iat=int(time.time()) - 900, exp=int(time.time()) - 600),
    "id-token": lambda i: i.mint(header={"typ": "JWT"}, aud=CLIENT_ID, nonce="n"),
}


@pytest.mark.parametrize("forge", FORGERIES.values(), ids=FORGERIES.keys())
def test_every_forged_or_unusable_token_is_401(edge: EdgeProcess, issuer: TestIssuer,
                                              forge: Callable[[TestIssuer], str]) -> None:
    """The JWT attack list, each refused 401 invalid_token at the edge (never 5xx, never allowed)."""
    response = edge.decide("GET", "/notes", token=forge(issuer))

    assert response.status_code == 401
    assert error_of(response) == "invalid_token"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_a_revoked_token_is_refused_once_the_revocation_is_known(edge: EdgeProcess, issuer: TestIssuer) -> None:
    """With the resource server's credentials the edge follows the issuer's revocation list."""
    jti = uuid.uuid4().hex
    revoked = token(issuer, jti=jti)
    assert edge.decide("GET", "/notes", token=revoked).status_code == 200

    issuer.revoke(jti, int(time.time()) + 300)
    deadline = time.monotonic() + 30
    while (response := edge.decide("GET", "/notes", token=revoked)).status_code == 200:
        assert time.monotonic() < deadline, "the revocation was never applied"
        time.sleep(0.5)

    assert (response.status_code, error_of(response)) == (401, "invalid_token")


# -- one path for the decision and the upstream ---------------------------------------------------


@pytest.mark.parametrize(("uri", "reason"), [
    pytest.param(b"/public/..%2fadmin", "an encoded slash", id="dotdot-encoded-slash"),
    pytest.param(b"/public/a%2Fb", "an encoded slash", id="encoded-slash-upper"),
    pytest.param(b"/public/a%5cb", "an encoded backslash", id="encoded-backslash"),
    pytest.param(b"/public/a%00b", "an encoded NUL or control character", id="encoded-nul"),
    pytest.param(b"//notes", "an empty segment", id="double-slash"),
    pytest.param(b"/public//x", "an empty segment", id="inner-double-slash"),
    pytest.param(b"/public/./x", "a dot segment", id="dot-segment"),
    pytest.param(b"/public/../notes", "a dot segment", id="dotdot-segment"),
    pytest.param(b"/public/%2e%2e/notes", "a dot segment", id="encoded-dotdot"),
    pytest.param(b"/public/%2E/x", "a dot segment", id="encoded-dot"),
    pytest.param(b"/public/x;/../admin", "a ;", id="semicolon"),
    pytest.param(b"/notes;jsessionid=1", "a ;", id="path-parameter"),
    pytest.param(b"/public\\..\\admin", "a backslash", id="backslash"),
    pytest.param("/public/caf\u00e9".encode(), "a character outside ASCII", id="raw-non-ascii"),
    pytest.param(b"/public/a\tb", "a control character", id="raw-tab"),
    pytest.param(b"/public/%252e%252e/admin", "an encoded percent sign", id="double-encoding"),
    pytest.param(b"/public/%e9", "not UTF-8", id="encoded-invalid-utf8"),
    pytest.param(b"/public/%zz", "a % not followed by two hexadecimal digits", id="bad-escape"),
    pytest.param(b"notes", "does not start with /", id="not-origin-form"),
])
def test_an_ambiguous_path_is_400(edge: EdgeProcess, issuer: TestIssuer, uri: bytes, reason: str) -> None:
    """Anything two parsers could read differently is refused before any route is matched."""
    response = edge.decide("GET", uri, token=token(issuer))

    assert (response.status_code, error_of(response)) == (400, "invalid_request")
    assert reason in response.json()["error_description"]


@pytest.mark.parametrize(("uri", "status"), [
    pytest.param("/%6eotes", 200, id="encoded-letter-is-notes"),
    pytest.param("/notes?q=%2f..%2f", 200, id="query-not-a-path"),
    pytest.param("/public/%41", 200, id="encoded-letter-in-template"),
    pytest.param("/Notes", 404, id="case-sensitive"),
    pytest.param("/notes/", 404, id="trailing-slash-is-another-path"),
    pytest.param("/notes.", 404, id="trailing-dot-is-another-path"),
])
def test_a_decoded_path_is_matched_as_the_upstream_sees_it(edge: EdgeProcess, issuer: TestIssuer,
                                                          uri: str, status: int) -> None:
    """Route matching is on the percent-decoded path: `/%6eotes` is `/notes`, with its scope checks."""
    assert edge.decide("GET", uri, token=token(issuer)).status_code == status
    if status == 200 and "notes" in uri:
        assert edge.decide("GET", uri).status_code == 401  # the same route's requirement applies


# -- input checks ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("headers", "status", "error"), [
    pytest.param({"X-Original-Content-Length": "1025", "Content-Type": "application/json"}, 413,
                 "payload_too_large", id="declared-length-over-max"),
    pytest.param({"X-Original-Content-Length": "10", "Content-Type": "text/plain"}, 415,
                 "unsupported_media_type", id="type-not-listed"),
    pytest.param({"X-Original-Content-Length": "10"}, 415, "unsupported_media_type", id="body-without-type"),
    pytest.param({"X-Original-Content-Length": "ten"}, 400, "invalid_request", id="length-not-a-number"),
])
def test_a_declared_body_is_checked_against_the_route(edge: EdgeProcess, issuer: TestIssuer,
                                                     headers: dict[str, str], status: int, error: str) -> None:
    """The declared length and media type are refused as the route's body rule says."""
    response = edge.decide("POST", "/notes", token=token(issuer), headers=headers)

    assert (response.status_code, error_of(response)) == (status, error)


def test_an_allowed_body_passes(edge: EdgeProcess, issuer: TestIssuer) -> None:
    """A listed media type with parameters, within the limit, is allowed."""
    response = edge.decide("POST", "/notes", token=token(issuer),
                           headers={"X-Original-Content-Length": "1024",
                                    "Content-Type": "Application/JSON; charset=utf-8"})

    assert response.status_code == 200


def test_a_query_longer_than_max_query_is_414(edge: EdgeProcess, issuer: TestIssuer) -> None:
    """The query string is limited to max_query bytes (2048 by default)."""
    response = edge.decide("GET", "/notes?q=" + "a" * 2047, token=token(issuer))
    assert edge.decide("GET", "/notes?q=" + "a" * 2046, token=token(issuer)).status_code == 200

    assert (response.status_code, error_of(response)) == (414, "uri_too_long")


def test_nginx_gets_every_other_refusal_as_403_with_the_real_status(edge: EdgeProcess, issuer: TestIssuer) -> None:
    """With X-Bastion-Status-Via: 403, a 405 is sent as 403 carrying X-Bastion-Status and its headers;
    401 and 200 stay as they are."""
    via = {"X-Bastion-Status-Via": "403"}
    mapped = edge.decide("DELETE", "/notes", token=token(issuer), headers=via)
    unauthorized = edge.decide("GET", "/notes", headers=via)
    allowed = edge.decide("GET", "/notes", token=token(issuer), headers=via)

    assert mapped.status_code == 403
    assert mapped.headers["x-bastion-status"] == "405"
    assert mapped.headers["allow"] == "GET, POST"
    assert error_of(mapped) == "method_not_allowed"
    assert unauthorized.status_code == 401
    assert "x-bastion-status" not in unauthorized.headers
    assert allowed.status_code == 200


# -- client certificates -----------------------------------------------------------------------------


def _certificate() -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edge-test-client")])
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))


@pytest.mark.parametrize("form", ["nginx-escaped-pem", "caddy-der-base64"])
def test_the_client_certificate_becomes_its_thumbprint(edge: EdgeProcess, issuer: TestIssuer, form: str) -> None:
    """The certificate the proxy passes (nginx: URL-escaped PEM; Caddy: base64 DER) becomes the
    RFC 8705 x5t#S256 thumbprint upstream."""
    certificate = _certificate()
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    der = certificate.public_bytes(serialization.Encoding.DER)
    expected = urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
    sent = quote(pem) if form == "nginx-escaped-pem" else b64encode(der).decode()

    response = edge.decide("GET", "/mtls", token=token(issuer), headers={"X-Client-Cert": sent})

    assert response.status_code == 200
    assert response.headers["x-bastion-cert-thumbprint"] == expected


@pytest.mark.parametrize(("cert", "status", "error"), [
    pytest.param(None, 403, "forbidden", id="no-certificate"),
    pytest.param("not-a-certificate", 400, "invalid_request", id="garbage"),
    pytest.param("-----BEGIN CERTIFICATE-----%0AAAAA%0A-----END CERTIFICATE-----", 400, "invalid_request",
                 id="broken-pem"),
    pytest.param("QUJD", 400, "invalid_request", id="base64-not-a-certificate"),
])
def test_a_route_requiring_a_client_certificate_refuses_without_one(
    edge: EdgeProcess, issuer: TestIssuer, cert: str | None, status: int, error: str
) -> None:
    """`client_cert: required` refuses a request the proxy passed no verified certificate for."""
    headers = {"X-Client-Cert": cert} if cert else {}
    response = edge.decide("GET", "/mtls", token=token(issuer), headers=headers)

    assert (response.status_code, error_of(response)) == (status, error)


# -- quotas, in memory and in Redis -------------------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
def counted_edge(request: pytest.FixtureRequest) -> EdgeProcess:
    """The decision service with its counters in memory, then in Redis."""
    name = "edge" if request.param == "memory" else "redis_edge"
    process: EdgeProcess = request.getfixturevalue(name)
    return process


def test_a_spent_quota_is_429_with_retry_after(counted_edge: EdgeProcess, issuer: TestIssuer) -> None:
    """Two a minute per sub: the third is 429 rate_limited with Retry-After and the RateLimit fields."""
    bearer = token(issuer, sub=f"quota-{uuid.uuid4().hex}")
    first = counted_edge.decide("GET", "/limited", token=bearer)
    second = counted_edge.decide("GET", "/limited", token=bearer)
    third = counted_edge.decide("GET", "/limited", token=bearer)
    other = counted_edge.decide("GET", "/limited", token=token(issuer, sub=f"quota-{uuid.uuid4().hex}"))

    assert [first.headers["ratelimit-remaining"], second.headers["ratelimit-remaining"]] == ["1", "0"]
    assert first.headers["ratelimit-limit"] == "2"
    assert (third.status_code, error_of(third)) == (429, "rate_limited")
    assert 1 <= int(third.headers["retry-after"]) <= 60
    assert third.headers["ratelimit-remaining"] == "0"
    assert ";q=2;w=60" in third.headers["ratelimit-policy"]
    assert other.status_code == 200


def test_a_day_quota_is_a_policy(counted_edge: EdgeProcess) -> None:
    """One a day per address: the second request is 429, to wait for most of a day; nginx gets it via 403."""
    address = f"2001:db8:{secrets.token_hex(2)}:{secrets.token_hex(2)}::1"  # a /64 of its own
    first = counted_edge.decide("GET", "/daily", address=address)
    second = counted_edge.decide("GET", "/daily", address=address)
    via = counted_edge.decide("GET", "/daily", address=address, headers={"X-Bastion-Status-Via": "403"})

    assert first.status_code == 200
    assert (second.status_code, error_of(second)) == (429, "rate_limited")
    assert int(second.headers["retry-after"]) > 3600
    assert ";q=1;w=86400" in second.headers["ratelimit-policy"]
    assert (via.status_code, via.headers["x-bastion-status"]) == (403, "429")
    assert "retry-after" in via.headers


# -- the decision's own dependencies ----------------------------------------------------------------


def test_an_unreachable_issuer_is_503_never_500(tmp_path: Path) -> None:
    """Without the issuer's keys the edge cannot decide: 503, and the proxy fails closed."""
    dead = f"http://127.0.0.1:{free_port()}"
    stranger = TestIssuer(dead)
    (tmp_path / "apikeys.json").write_text('{"keys": []}')
    with running_edge(write_policy(tmp_path, dead)) as process:
        response = process.decide("GET", "/notes", token=stranger.mint(scope="notes:read"))
        public = process.decide("GET", "/health")

    assert (response.status_code, error_of(response)) == (503, "temporarily_unavailable")
    assert response.headers["retry-after"] == "5"
    assert public.status_code == 200
