"""An attacker's review of `bastion edge serve` (issue 15): each try against a real decision process.

Path confusion, header tricks, quota bypasses and token tricks beyond tests/edge/test_decision.py;
every refusal asserted with its status, `error` and the key phrase, and nothing answered 5xx or slowly.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bastion.guard.apikeys import ApiKeyManager, JsonFileApiKeyStore
from tests._services import need_redis
from tests.edge._edge import EdgeProcess, running_edge
from tests.edge.test_decision import error_of, token, write_policy
from tests.edge.test_decision_services import _outside_address
from tests.guard._issuer import AUDIENCE, CLIENT_ID, TestIssuer, running_issuer

EXTRA_ROUTES = """\
  - {path: /both, methods: [GET], scopes: [notes:read], api_key: true, quotas: [{per: sub, limit: 1, window: minute}]}
  - {path: /per-address, methods: [GET], public: true, quotas: [{per: address, limit: 1, window: minute}]}
  - {path: /per-second, methods: [GET], public: true, quotas: [{per: address, limit: 2, window: second}]}
"""


@pytest.fixture(scope="module")
def issuer() -> Iterator[TestIssuer]:
    """The test issuer on a real uvicorn server."""
    with running_issuer() as live:
        yield live


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """apikeys.json with one key whose owner is also a user's sub at the issuer: (dir, key, owner).
    The owner is new each run, so counters left in Redis by another run never answer."""
    directory = tmp_path_factory.mktemp("edge-attacks")
    owner = f"alice-{uuid.uuid4().hex[:8]}"
    key, _ = ApiKeyManager(JsonFileApiKeyStore(directory / "apikeys.json")).create(owner, ["notes:read"])
    return directory, key, owner


def _policy(directory: Path, issuer: TestIssuer, extra: str = "") -> Path:
    policy = write_policy(directory, issuer.issuer, extra)
    policy.write_text(policy.read_text() + EXTRA_ROUTES)
    return policy


@pytest.fixture(scope="module")
def edge(issuer: TestIssuer, keys: tuple[Path, str, str]) -> Iterator[EdgeProcess]:
    """The decision service with the shared test routes plus the attack routes, counters in memory."""
    with running_edge(_policy(keys[0], issuer)) as process:
        yield process


@pytest.fixture(scope="module")
def redis_edge(issuer: TestIssuer, keys: tuple[Path, str, str]) -> Iterator[EdgeProcess]:
    """The same policy with its counters in Redis."""
    url = need_redis()
    directory = keys[0] / "redis"
    directory.mkdir()
    (directory / "apikeys.json").write_text((keys[0] / "apikeys.json").read_text())
    with running_edge(_policy(directory, issuer, f"redis: {url}\n")) as process:
        yield process


@pytest.fixture(params=["memory", "redis"])
def counted(request: pytest.FixtureRequest) -> EdgeProcess:
    """The decision service with its counters in memory, then in Redis."""
    process: EdgeProcess = request.getfixturevalue("edge" if request.param == "memory" else "redis_edge")
    return process


# -- path confusion ------------------------------------------------------------------------------


@pytest.mark.parametrize(("uri", "reason"), [
    pytest.param(b"/public/%c0%ae%c0%ae", "not UTF-8", id="overlong-utf8-dots"),
    pytest.param(b"/public/%c0%af", "not UTF-8", id="overlong-utf8-slash"),
    pytest.param(b"/public/%ed%a0%80", "not UTF-8", id="utf8-surrogate"),
    pytest.param(b"/public/%2e%2E", "a dot segment", id="mixed-case-encoded-dotdot"),
    pytest.param(b"/public/.%2e", "a dot segment", id="half-encoded-dotdot"),
    pytest.param(b"/public/..", "a dot segment", id="trailing-dotdot"),
    pytest.param(b"/public/...", "a segment of only dots", id="three-dots-in-template"),
    pytest.param(b"/public/..%20", "a segment of only dots", id="dotdot-space-in-template"),
    pytest.param(b"/public/.. .", "a space", id="raw-space"),
    pytest.param(b"/public/%ef%bc%8e%ef%bc%8e", "compatibility", id="fullwidth-dotdot"),
    pytest.param(b"/public/a%ef%bc%8fb", "compatibility", id="fullwidth-slash"),
    pytest.param(b"/public/a%ef%bc%bcb", "compatibility", id="fullwidth-backslash"),
    pytest.param(b"/public/x%3f/../admin", "an encoded ?", id="encoded-question-then-dotdot"),
    pytest.param(b"/public/x%3fy", "an encoded ?", id="encoded-question-mark"),
    pytest.param(b"/public/x%23y", "an encoded #", id="encoded-hash"),
    pytest.param(b"/public/x%3bjsessionid=1", "an encoded ;", id="encoded-semicolon"),
    pytest.param(b"/public/x%7f", "an encoded NUL or control character", id="encoded-del"),
    pytest.param(b"/notes/%2F", "an encoded slash", id="template-encoded-slash"),
    pytest.param(b"/notes%2f", "an encoded slash", id="trailing-encoded-slash"),
    pytest.param(b"/notes//", "an empty segment", id="trailing-double-slash"),
    pytest.param(b"/notes#frag", "a fragment", id="fragment"),
    pytest.param(b"/notes?x#frag", "a fragment", id="fragment-in-query"),
    pytest.param(b"*", "does not start with /", id="asterisk-form"),
    pytest.param(b"http://api.test/admin", "does not start with /", id="absolute-form"),
    pytest.param(b"//api.test/admin", "an empty segment", id="network-path"),
    pytest.param(b"", "does not start with /", id="empty"),
    pytest.param(b"notes", "does not start with /", id="no-leading-slash"),
    pytest.param(b"/notes?a=%zz", "a % not followed", id="bad-escape-in-query"),
    pytest.param(b"/notes?a=\xc3\xa9", "a character outside ASCII", id="raw-utf8-in-query"),
])
def test_path_confusion_is_400(edge: EdgeProcess, issuer: TestIssuer, uri: bytes, reason: str) -> None:
    """Every spelling that a second parser (an upstream, a filesystem, a Unicode normaliser) could
    read as another path is refused before routing."""
    response = edge.decide("GET", uri, token=token(issuer, roles=["editor"]))

    assert (response.status_code, error_of(response)) == (400, "invalid_request")
    assert reason in response.json()["error_description"]


@pytest.mark.parametrize(("uri", "status", "error"), [
    pytest.param("/notes/", 404, "not_found", id="trailing-slash"),
    pytest.param("/notes.", 404, "not_found", id="trailing-dot"),
    pytest.param("/NOTES", 404, "not_found", id="upper-case"),
    pytest.param("/%4eotes", 404, "not_found", id="encoded-upper-letter"),
    pytest.param("/notes%20", 404, "not_found", id="trailing-encoded-space"),
    pytest.param("/public", 404, "not_found", id="template-needs-a-segment"),
    pytest.param("/public/", 404, "not_found", id="template-empty-segment"),
    pytest.param("/public/a/b", 404, "not_found", id="template-is-one-segment"),
    pytest.param("/" + "a" * 6000, 404, "not_found", id="long-path"),
    pytest.param("/notes?/../admin", 401, "invalid_request", id="query-carrying-dotdot"),
    pytest.param("/notes??", 401, "invalid_request", id="double-question"),
])
def test_other_spellings_are_other_paths(edge: EdgeProcess, uri: str, status: int, error: str) -> None:
    """Case, trailing dots and slashes, long paths: another path, so no route (deny by default) or the
    route's own requirement; a query carrying `/` or `?` is a query, never a path."""
    response = edge.decide("GET", uri)

    assert response.status_code == status
    if status == 404:
        assert error_of(response) == error
    else:
        assert 'Bearer realm="' in response.headers["www-authenticate"]


def test_a_public_template_never_hides_dot_segments(edge: EdgeProcess) -> None:
    """`/public/{name}` takes one plain segment; the same URI with an encoded `..` is 400, not public."""
    assert edge.decide("GET", "/public/readme.txt").status_code == 200
    assert edge.decide("GET", "/public/%2e%2e").status_code == 400
    assert edge.decide("GET", "/public/a.b.").status_code == 200  # dots inside a name are a name


def test_a_huge_uri_is_refused_quickly_never_5xx(edge: EdgeProcess, issuer: TestIssuer) -> None:
    """Pathological inputs (a long escaped path, a header past the server's limit) answer fast, never 5xx."""
    started = time.monotonic()
    escaped = edge.decide("GET", "/" + "%41" * 4000, token=token(issuer))
    templated = edge.decide("GET", "/public/" + "%2e" * 4000)
    oversized = edge.decide("GET", "/" + "a" * 200_000)

    assert (escaped.status_code, error_of(escaped)) == (404, "not_found")
    assert templated.status_code == 400  # only dots
    assert 400 <= oversized.status_code < 500
    assert time.monotonic() - started < 5


# -- header tricks -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "Get", "G ET", "GET,POST", "TRACE", "CONNECT", "BREW"])
def test_a_method_not_spelled_exactly_is_400(edge: EdgeProcess, method: str) -> None:
    """Methods are case-sensitive (RFC 9110 §9.1): a `get` the upstream may route differently is never
    decided as GET."""
    response = edge.decide("GET", "/health", headers={"X-Forwarded-Method": method})

    assert (response.status_code, error_of(response)) == (400, "invalid_request")
    assert "X-Forwarded-Method" in response.json()["error_description"]


@pytest.mark.parametrize(("value", "status"), [
    pytest.param("not-an-address", 400, id="not-an-address"),
    pytest.param("203.0.113.7, evil", 400, id="comma-joined-garbage-last"),
    pytest.param("1.2.3.4:80", 400, id="with-port"),
])
def test_a_forwarded_for_that_is_not_an_address_is_400(edge: EdgeProcess, value: str, status: int) -> None:
    """The address counted for quotas must be an address, never a string a client could vary."""
    response = edge.decide("GET", "/health", address=value)

    assert (response.status_code, error_of(response)) == (status, "invalid_request")
    assert "X-Forwarded-For" in response.json()["error_description"]


@pytest.mark.parametrize(("header", "first", "second"), [
    pytest.param("X-Forwarded-Method", "DELETE", "GET", id="method"),
    pytest.param("X-Forwarded-Host", "api.test", "evil.test", id="host"),
    pytest.param("X-Forwarded-Proto", "https", "http", id="proto"),
    pytest.param("X-Request-Id", "a", "b", id="request-id"),
    pytest.param("X-Bastion-Status-Via", "403", "403", id="status-via"),
    pytest.param("Content-Type", "application/json", "text/plain", id="content-type"),
])
def test_every_proxy_header_sent_twice_is_400(edge: EdgeProcess, header: str, first: str, second: str) -> None:
    """The decision reads one copy and the audit (or the upstream) another: two copies of any header
    the proxy sets are refused, never chosen from."""
    response = edge.decide("GET", "/health", headers={header: first}, also=[(header, second)])

    assert response.headers.get("x-bastion-status", str(response.status_code)) == "400"  # 403 via nginx
    assert error_of(response) == "invalid_request"
    assert header.lower() in response.json()["error_description"]


def test_two_api_keys_are_400(edge: EdgeProcess, keys: tuple[Path, str, str]) -> None:
    """Two X-API-Key headers are two credentials."""
    response = edge.decide("GET", "/keys", headers={"X-API-Key": keys[1]}, also=[("X-API-Key", "other")])

    assert (response.status_code, error_of(response)) == (400, "invalid_request")
    assert "exactly one credential" in response.json()["error_description"]


@pytest.mark.parametrize("claims", [
    pytest.param({"roles": ["route1"]}, id="role-named-like-the-internal-permission"),
    pytest.param({"scope": "notes:read route1"}, id="scope-named-like-the-internal-permission"),
    pytest.param({"roles": ["Editor"]}, id="role-in-another-case"),
    pytest.param({"roles": ["editor "]}, id="role-with-a-space"),
])
def test_a_role_route_takes_only_its_listed_roles(edge: EdgeProcess, issuer: TestIssuer,
                                                 claims: dict[str, object]) -> None:
    """Roles are matched exactly; the edge's internal permission names (route1) grant nothing."""
    response = edge.decide("GET", "/notes/7", token=token(issuer, **claims))

    assert (response.status_code, error_of(response)) == (403, "forbidden")


def test_forwarded_for_duplicates_are_400(edge: EdgeProcess) -> None:
    """Two X-Forwarded-For headers are 400, never chosen from."""
    twice = edge.decide("GET", "/health", also=[("X-Forwarded-For", "198.51.100.1")])

    assert (twice.status_code, error_of(twice)) == (400, "invalid_request")
    assert "x-forwarded-for" in twice.json()["error_description"]


def test_a_forwarded_for_list_counts_its_last_hop(counted: EdgeProcess) -> None:
    """A comma-joined list (a proxy that appends) counts the last hop, the one the proxy wrote:
    rotating the earlier, client-written hops reaches no fresh counter."""
    mine = f"2001:db8:{secrets.token_hex(2)}:{secrets.token_hex(2)}::7"
    first = counted.decide("GET", "/per-address", address=f"198.51.100.9, {mine}")
    second = counted.decide("GET", "/per-address", address=f"198.51.100.10, {mine}")

    assert first.status_code == 200
    assert (second.status_code, error_of(second)) == (429, "rate_limited")


def test_one_address_in_two_spellings_is_one_counter(counted: EdgeProcess) -> None:
    """`2001:db8:a:b::1:2` and `2001:DB8:A:B:0:0:1:2` (and `::ffff:` mapped IPv4) are one address."""
    net = f"{secrets.token_hex(2)}:{secrets.token_hex(2)}"
    assert counted.decide("GET", "/per-address", address=f"2001:db8:{net}::1:2").status_code == 200
    again = counted.decide("GET", "/per-address", address=f"2001:DB8:{net.upper()}:0:0:1:2")
    v4 = f"198.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(256)}"
    assert counted.decide("GET", "/per-address", address=v4).status_code == 200
    mapped = counted.decide("GET", "/per-address", address=f"::ffff:{v4}")

    assert (again.status_code, error_of(again)) == (429, "rate_limited")
    assert (mapped.status_code, error_of(mapped)) == (429, "rate_limited")


def test_rotating_through_an_ipv6_prefix_is_one_client(counted: EdgeProcess) -> None:
    """An IPv6 client holds a /64 (2^64 addresses): per-address quotas count the /64, so rotating
    the low bits reaches no fresh counter; the next /64 is another client."""
    net = f"2001:db8:{secrets.token_hex(2)}:{secrets.token_hex(2)}"
    first = counted.decide("GET", "/per-address", address=f"{net}::1")
    rotated = counted.decide("GET", "/per-address", address=f"{net}:{secrets.token_hex(2)}::{secrets.token_hex(2)}")
    neighbour = counted.decide("GET", "/per-address", address=f"2001:db9:{net[9:]}::1")

    assert first.status_code == 200
    assert (rotated.status_code, error_of(rotated)) == (429, "rate_limited")
    assert neighbour.status_code == 200


def test_an_oversized_header_is_never_5xx(edge: EdgeProcess, issuer: TestIssuer) -> None:
    """A 100 kB header (the proxy's own limit stops it first: nginx's large_client_header_buffers)
    is decided like any other, quickly, never a 5xx."""
    started = time.monotonic()
    response = edge.decide("GET", "/notes", token=token(issuer), headers={"X-Padding": "a" * 100_000})

    assert response.status_code == 200
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(("authorization", "status", "error"), [
    pytest.param("Bearer {t}, Basic YTpi", 401, "invalid_token", id="two-schemes-one-header"),
    pytest.param("Basic YTpi", 401, None, id="basic"),
    pytest.param("Bearer", 401, "invalid_token", id="scheme-only"),
    pytest.param("Bearer {t} {t}", 401, "invalid_token", id="two-tokens"),
    pytest.param("Bearer  {t}", 200, None, id="extra-spaces-are-1*SP"),
    pytest.param("bearer {t}", 200, None, id="scheme-case-insensitive"),
    pytest.param("Digest {t}", 401, None, id="another-scheme"),
])
def test_authorization_spellings(edge: EdgeProcess, issuer: TestIssuer, authorization: str, status: int,
                                 error: str | None) -> None:
    """RFC 6750 §2.1 `Bearer 1*SP b64token`: anything else is refused, never read as a token."""
    response = edge.decide("GET", "/notes", headers={"Authorization": authorization.format(t=token(issuer))})

    assert response.status_code == status
    if error is not None:
        assert error_of(response) == error
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer realm=")


def test_two_authorization_headers_are_400(edge: EdgeProcess, issuer: TestIssuer) -> None:
    """Two Authorization headers (which one would the upstream read?) are refused."""
    response = edge.decide("GET", "/notes", token=token(issuer), also=[("Authorization", "Bearer x")])

    assert (response.status_code, error_of(response)) == (400, "invalid_request")
    assert "exactly one credential" in response.json()["error_description"]


def test_a_token_in_the_query_string_is_ignored_alone_and_refused_beside_a_header(
    edge: EdgeProcess, issuer: TestIssuer
) -> None:
    """RFC 6750 §2.3 query tokens are not accepted: alone it is no credential (401), beside a header it
    is a second method (400)."""
    bearer = token(issuer)
    alone = edge.decide("GET", f"/notes?access_token={bearer}")
    both = edge.decide("GET", f"/notes?access_token={bearer}", token=bearer)
    encoded = edge.decide("GET", f"/notes?x=1&%61ccess_token={bearer}", token=bearer)

    assert alone.status_code == 401
    assert alone.headers["www-authenticate"] == f'Bearer realm="{AUDIENCE}"'
    assert (both.status_code, error_of(both)) == (400, "invalid_request")
    assert "Authorization header only" in both.json()["error_description"]
    assert (encoded.status_code, error_of(encoded)) == (400, "invalid_request")


def test_an_api_key_and_a_token_together_are_400(edge: EdgeProcess, issuer: TestIssuer,
                                                keys: tuple[Path, str, str]) -> None:
    """Two credentials: the edge never picks one (the upstream might pick the other)."""
    response = edge.decide("GET", "/keys", token=token(issuer), headers={"X-API-Key": keys[1]})

    assert (response.status_code, error_of(response)) == (400, "invalid_request")
    assert "exactly one credential" in response.json()["error_description"]


@pytest.mark.parametrize("uri", ["/health", "/notes"])
def test_identity_headers_sent_by_the_caller_are_never_echoed(edge: EdgeProcess, issuer: TestIssuer,
                                                             uri: str) -> None:
    """A caller's X-Bastion-* in the subrequest never become the allowed identity: every identity
    header is set from the decision (empty on a public route)."""
    spoofed = {"X-Bastion-Sub": "admin", "X-Bastion-Roles": "admin", "X-Bastion-Scope": "admin",
               "X-Bastion-Client-Id": "evil", "X-Bastion-Api-Key-Id": "k", "X-Bastion-Cert-Thumbprint": "t"}
    response = edge.decide("GET", uri, token=token(issuer) if uri == "/notes" else None, headers=spoofed)

    assert response.status_code == 200
    assert response.headers["x-bastion-sub"] == ("alice" if uri == "/notes" else "")
    assert response.headers["x-bastion-roles"] == ""
    assert response.headers["x-bastion-client-id"] == (CLIENT_ID if uri == "/notes" else "")
    assert "admin" not in response.headers["x-bastion-scope"]
    assert response.headers["x-bastion-api-key-id"] == ""
    assert response.headers["x-bastion-cert-thumbprint"] == ""


def test_a_forged_client_certificate_from_a_stranger_is_refused(issuer: TestIssuer, tmp_path: Path) -> None:
    """Asked from a non-loopback address not in trusted_proxies, the decision refuses before reading
    X-Client-Cert (or X-Bastion-*, or X-Forwarded-For) at all."""
    address = _outside_address()
    (tmp_path / "apikeys.json").write_text('{"keys": []}')
    with running_edge(write_policy(tmp_path, issuer.issuer), host=address, reach=address) as process:
        response = process.decide("GET", "/mtls", token=token(issuer), headers={"X-Client-Cert": "forged"})

    assert (response.status_code, error_of(response)) == (403, "forbidden")
    assert "Only the proxy" in response.json()["error_description"]


# -- quota bypass ------------------------------------------------------------------------------------


def test_an_api_key_owner_never_shares_a_users_sub_quota(counted: EdgeProcess, issuer: TestIssuer,
                                                        keys: tuple[Path, str, str]) -> None:
    """A key owned by `alice-N` and the user `alice-N` are two principals: one spending its `per: sub`
    quota never spends the other's, nor does a token whose sub spells the key's counter."""
    _, key, owner = keys
    by_key = counted.decide("GET", "/both", headers={"X-API-Key": key})
    by_token = counted.decide("GET", "/both", token=token(issuer, sub=owner))
    key_again = counted.decide("GET", "/both", headers={"X-API-Key": key})
    spelled = counted.decide("GET", "/both", token=token(issuer, sub=f"apikey:{owner}"))

    assert by_key.status_code == 200
    assert by_token.status_code == 200
    assert (key_again.status_code, error_of(key_again)) == (429, "rate_limited")
    assert spelled.status_code == 200


def test_a_window_boundary_admits_no_extra_request(counted: EdgeProcess) -> None:
    """Two a second: two just before a window boundary and one just after is three within a second,
    refused (the weighted counter admitted it, so `1 a day` let one through at 23:59:59 and another
    at 00:00:00)."""
    for _ in range(5):  # the shared machine may stall a try past its second
        address = f"2001:db8:5:{secrets.token_hex(2)}::{secrets.token_hex(2)}"
        time.sleep(1.9 - time.time() % 1)  # just before a boundary (windows are aligned to the epoch)
        started = time.monotonic()
        before = [counted.decide("GET", "/per-second", address=address) for _ in range(2)]
        time.sleep(max(0.0, 1.05 - time.time() % 1) if time.time() % 1 > 0.5 else 0.0)
        after = counted.decide("GET", "/per-second", address=address)
        if time.monotonic() - started < 0.8:
            break
    else:
        pytest.skip("the machine was too slow to ask three times within a second")

    assert [b.status_code for b in before] == [200, 200]
    assert (after.status_code, error_of(after)) == (429, "rate_limited")


def test_an_api_key_in_another_case_is_another_key(edge: EdgeProcess, keys: tuple[Path, str, str]) -> None:
    """Changing a key's case never reaches a fresh counter: it is not a key at all."""
    response = edge.decide("GET", "/keys", headers={"X-API-Key": keys[1].swapcase()})

    assert (response.status_code, error_of(response)) == (401, "invalid_api_key")


# -- token tricks ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "claims", "phrase"), [
    pytest.param({"typ": "JWT"}, {}, "", id="typ-jwt"),
    pytest.param({"typ": None}, {}, "", id="typ-missing"),
    pytest.param({"typ": "application/jwt"}, {}, "", id="typ-application-jwt"),
    pytest.param({}, {"nonce": "n"}, "", id="id-token-nonce"),
    pytest.param({}, {"at_hash": "x"}, "", id="id-token-at-hash"),
    pytest.param({}, {"nbf": "FUTURE"}, "", id="nbf-in-the-future"),
    pytest.param({"crit": ["exp"]}, {}, "", id="crit"),
    pytest.param({"crit": ["x-ext"], "x-ext": 1}, {}, "", id="crit-extension"),
    pytest.param({"kid": "../../../../etc/passwd"}, {}, "", id="kid-path-traversal"),
    pytest.param({"kid": "%2e%2e%2fkeys"}, {}, "", id="kid-encoded-traversal"),
    pytest.param({"kid": "x' OR '1'='1"}, {}, "", id="kid-sql"),
    pytest.param({"kid": "k" * 5000}, {}, "", id="kid-huge"),
    pytest.param({}, {"aud": ["https://other.api"]}, "", id="aud-array-without-us"),
    pytest.param({}, {"aud": []}, "", id="aud-empty-array"),
])
def test_token_tricks_are_401(edge: EdgeProcess, issuer: TestIssuer, header: dict[str, object],
                              claims: dict[str, object], phrase: str) -> None:
    """Access tokens only (RFC 9068 typ, no ID tokens), not before nbf, no crit, kid only a name."""
    if claims.get("nbf") == "FUTURE":
        claims = {"nbf": int(time.time()) + 600}
    response = edge.decide("GET", "/notes", token=issuer.mint(header=header, scope="notes:read", **claims))

    assert (response.status_code, error_of(response)) == (401, "invalid_token")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_an_audience_array_naming_us_among_others_is_accepted(edge: EdgeProcess, issuer: TestIssuer) -> None:
    """RFC 7519 §4.1.3 / RFC 9068 §4: aud may be an array; ours among others is ours."""
    response = edge.decide("GET", "/notes", token=token(issuer, aud=["https://other.api", AUDIENCE]))

    assert response.status_code == 200


def test_a_token_from_another_issuer_is_401(edge: EdgeProcess) -> None:
    """A second, real issuer whose JWKS the edge could fetch is still not the policy's issuer."""
    with running_issuer() as other:
        response = edge.decide("GET", "/notes", token=other.mint(scope="notes:read"))
        claimed = edge.decide("GET", "/notes", token=other.mint(scope="notes:read", iss=other.issuer))

    assert (response.status_code, error_of(response)) == (401, "invalid_token")
    assert (claimed.status_code, error_of(claimed)) == (401, "invalid_token")


@pytest.mark.parametrize("size", [8_000, 60_000])
def test_a_huge_token_is_refused_fast_never_5xx(edge: EdgeProcess, issuer: TestIssuer, size: int) -> None:
    """A signed token fattened with claims, or past the header limit: a 4xx, quickly."""
    started = time.monotonic()
    response = edge.decide("GET", "/notes", token=token(issuer, padding="p" * size))

    assert 400 <= response.status_code < 500 or response.status_code == 200
    assert response.status_code != 500
    assert time.monotonic() - started < 5


# -- the subrequest itself -----------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "forwarded", "status"), [
    pytest.param("PROPFIND", "PROPFIND", 400, id="webdav-method"),
    pytest.param("DELETE", "GET", 200, id="subrequest-method-is-not-the-decision's"),
    pytest.param("OPTIONS", "GET", 200, id="options-subrequest"),
])
def test_the_subrequest_may_carry_any_method(edge: EdgeProcess, method: str, forwarded: str, status: int) -> None:
    """nginx's auth_request subrequest keeps the original method: whatever it is, the decision answers
    from X-Forwarded-Method with its JSON refusal (never a framework's bare 405, which nginx turns
    into a 500)."""
    response = edge.http.request(method, f"{edge.url}/decide", headers={
        "X-Forwarded-Method": forwarded, "X-Forwarded-Uri": "/health", "X-Forwarded-For": "203.0.113.7"})

    assert response.status_code == status
    if status == 400:
        assert error_of(response) == "invalid_request"
        assert "X-Forwarded-Method" in response.json()["error_description"]


def test_a_method_the_http_parser_does_not_know_is_400_never_5xx(edge: EdgeProcess) -> None:
    """uvicorn's parser refuses a method it does not know (BREW) with a bare 400 before the app: a
    4xx, but nginx would turn it into a 500, so the nginx recipe sends its subrequest as GET
    (`proxy_method GET`) and the original method in X-Forwarded-Method."""
    response = edge.http.request("BREW", f"{edge.url}/decide", headers={
        "X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/health", "X-Forwarded-For": "203.0.113.7"})

    assert response.status_code == 400


@pytest.mark.parametrize("request_id", ["a" * 65, "id with spaces", "<script>", "x%0d%0ay"])
def test_a_request_id_that_is_not_an_id_is_replaced(edge: EdgeProcess, request_id: str) -> None:
    """The proxy's X-Request-Id is kept only when it is a plain id; anything else gets a fresh one
    (it goes into the audit line and back to the proxy)."""
    response = edge.decide("GET", "/health", headers={"X-Request-Id": request_id})

    assert response.status_code == 200
    assert response.headers["x-request-id"] != request_id
    assert len(response.headers["x-request-id"]) == 16


@pytest.mark.parametrize("claims", [
    pytest.param({"roles": "editor"}, id="roles-a-string"),
    pytest.param({"roles": [["editor"]]}, id="roles-nested"),
    pytest.param({"scope": ["notes:read"]}, id="scope-a-list"),
    pytest.param({"sub": 42}, id="sub-a-number"),
    pytest.param({"exp": "never"}, id="exp-a-string"),
    pytest.param({"client_id": {"x": 1}}, id="client-id-an-object"),
    pytest.param({"aud": [AUDIENCE, {"x": 1}]}, id="aud-holding-an-object"),
    pytest.param({"jti": ["x"]}, id="jti-a-list"),
    pytest.param({"nbf": [1]}, id="nbf-a-list"),
    pytest.param({"iat": True}, id="iat-a-boolean"),
])
def test_claims_of_the_wrong_type_are_401_never_5xx(edge: EdgeProcess, issuer: TestIssuer,
                                                   claims: dict[str, object]) -> None:
    """A signed token whose claims have the wrong JSON types is refused, never a 500."""
    claims.setdefault("scope", "notes:read")
    response = edge.decide("GET", "/notes/1", token=issuer.mint(**claims))

    assert (response.status_code, error_of(response)) == (401, "invalid_token")


@pytest.mark.parametrize("forge", [
    pytest.param(lambda i: i.mint(scope="notes:read", iss=i.issuer + "/"), id="issuer-with-a-trailing-slash"),
    pytest.param(lambda i: i.mint(scope="notes:read", iat=int(time.time()) + 3600), id="iat-in-the-future"),
    pytest.param(lambda i: i.mint(scope="notes:read", header={"kid": 7}), id="kid-a-number"),
    pytest.param(lambda i: i.mint(scope="notes:read", header={"alg": "ES256 "}), id="alg-with-a-space"),
    pytest.param(lambda i: i.mint(scope="notes:read") + ".x.y", id="five-parts-like-jwe"),
    pytest.param(lambda i: "." * 2, id="empty-parts"),
    pytest.param(lambda i: "a" * 12_000, id="twelve-kilobytes-of-a"),
])
def test_more_token_tricks_are_401(edge: EdgeProcess, issuer: TestIssuer,
                                   forge: Callable[[TestIssuer], str]) -> None:
    """Issuer spelled with a slash, tokens from the future, odd headers, JWE-shaped or empty tokens."""
    response = edge.decide("GET", "/notes", token=forge(issuer))

    assert (response.status_code, error_of(response)) == (401, "invalid_token")


@pytest.mark.parametrize("exp", [10**20, 2**63, 1e308])
def test_a_far_future_exp_is_never_5xx(edge: EdgeProcess, issuer: TestIssuer, exp: float) -> None:
    """An exp past any datetime (year 10^12, a float's maximum) never overflows into a 5xx."""
    response = edge.decide("GET", "/notes", token=issuer.mint(scope="notes:read", exp=exp))

    assert response.status_code in (200, 401)
