"""The URIs a client registers (RFC 7591 §2, RFC 6749 §3.1.2, RFC 8252 §7-§8, RFC 9700 §2.6): one
validator for redirect, post-logout redirect and jwks URIs."""

from __future__ import annotations

import pytest

from bastion.protocol.errors import InvalidClientMetadata, InvalidRedirectUriMetadata
from bastion.protocol.rfc7591 import (
    check_jwks_uri,
    check_redirect_uri,
    check_redirect_uris_for_grants,
    is_valid_redirect_uri,
)

CHARACTERS = "must be printable ASCII without spaces or control characters"
ABSOLUTE = "must be an absolute URI with a scheme (RFC 6749 §3.1.2)"
FRAGMENT = "must not contain a fragment (RFC 6749 §3.1.2)"
USERINFO = "must not carry user information (user@host)"
CLEARTEXT = "must be https; http only on a loopback IP literal, 127.0.0.1 or [::1] (RFC 8252 §7.3)"
LOCALHOST = "use the loopback IP literal 127.0.0.1 or [::1], not localhost (RFC 8252 §8.3)"
PRIVATE_USE = "a private-use scheme must be a reverse domain name, such as com.example.app: (RFC 8252 §7.1, §8.4)"


@pytest.mark.parametrize(
    ("uri", "description"),
    [
        pytest.param("not a url", CHARACTERS, id="spaces"),
        pytest.param("https://rp.example/cb https://evil.example/cb", CHARACTERS, id="two-uris-in-one"),
        pytest.param("https://rp.example/c\tb", CHARACTERS, id="tab"),
        pytest.param("https://rp.example/cb\n", CHARACTERS, id="newline"),
        pytest.param("https://rp.example/c\x00b", CHARACTERS, id="nul"),
        pytest.param("https://rp.example/ü", CHARACTERS, id="non-ascii"),
        pytest.param("", CHARACTERS, id="empty"),
        pytest.param("/callback", ABSOLUTE, id="relative"),
        pytest.param("rp.example/cb", ABSOLUTE, id="no-scheme"),
        pytest.param("1http://rp.example/cb", ABSOLUTE, id="bad-scheme"),
        pytest.param("https://rp.example/cb#x", FRAGMENT, id="fragment"),
        pytest.param("https://rp.example/cb#", FRAGMENT, id="empty-fragment"),
        pytest.param("https://rp.example@evil.example/cb", USERINFO, id="userinfo"),
        pytest.param("https://rp.example:99999/cb", "has an invalid port", id="port-out-of-range"),
        pytest.param("https://rp.example:x/cb", "has an invalid port", id="port-not-a-number"),
        pytest.param("https:///cb", "an https URI needs a host", id="https-no-host"),
        pytest.param("https:cb", "an https URI needs a host", id="https-opaque"),
        pytest.param("http://rp.example/cb", CLEARTEXT, id="http-public-host"),
        pytest.param("http://10.0.0.1/cb", CLEARTEXT, id="http-private-ip"),
        pytest.param("http://127.1/cb", CLEARTEXT, id="http-shortened-loopback"),
        pytest.param("http://localhost:8080/cb", LOCALHOST, id="http-localhost"),
        pytest.param("http://app.localhost/cb", LOCALHOST, id="http-localhost-subdomain"),
        pytest.param("javascript:alert(1)//", "the javascript: scheme is never a redirect target", id="javascript"),
        pytest.param("JavaScript:alert(1)", "the javascript: scheme is never a redirect target", id="javascript-case"),
        pytest.param("data:text/html,<script>x</script>", "the data: scheme is never a redirect target", id="data"),
        pytest.param("file:///etc/passwd", "the file: scheme is never a redirect target", id="file"),
        pytest.param("vbscript:msgbox(1)", "the vbscript: scheme is never a redirect target", id="vbscript"),
        pytest.param("blob:https://rp.example/x", "the blob: scheme is never a redirect target", id="blob"),
        pytest.param("myapp:/callback", PRIVATE_USE, id="private-use-without-period"),
        pytest.param("com..app:/callback", PRIVATE_USE, id="private-use-empty-label"),
        pytest.param("com.example.app:", "a private-use scheme URI needs a path, such as com.example.app:/callback",
                     id="private-use-nothing-after"),
    ],
)
def test_redirect_uri_refusals(uri: str, description: str) -> None:
    """Each refused redirect URI is invalid_redirect_uri (RFC 7591 §3.2.2) naming the rule it breaks."""
    with pytest.raises(InvalidRedirectUriMetadata) as caught:
        check_redirect_uri(uri)

    assert caught.value.error == "invalid_redirect_uri"
    assert caught.value.description == description
    assert is_valid_redirect_uri(uri) is False


@pytest.mark.parametrize(
    "uri",
    [
        pytest.param("https://rp.example/cb", id="https"),
        pytest.param("https://rp.example:8443/cb?tenant=a", id="https-port-query"),
        pytest.param("http://127.0.0.1/cb", id="loopback-ipv4"),
        pytest.param("http://127.0.0.1:53119/cb", id="loopback-ipv4-port"),
        pytest.param("http://[::1]:8080/cb", id="loopback-ipv6"),
        pytest.param("com.example.app:/oauth2redirect/example-provider", id="private-use-rfc8252-example"),
        pytest.param("com.example.app://callback", id="private-use-with-authority"),
    ],
)
def test_redirect_uri_accepted(uri: str) -> None:
    """https, loopback-IP http (RFC 8252 §7.3) and reverse-domain private-use schemes (§7.1) are accepted."""
    check_redirect_uri(uri)
    assert is_valid_redirect_uri(uri) is True


@pytest.mark.parametrize(
    ("uri", "description"),
    [
        pytest.param("http://keys.example/jwks", CLEARTEXT, id="http-public-host"),
        pytest.param("com.example.app:/jwks", "must be https", id="private-use"),
        pytest.param("javascript:alert(1)", "must be https", id="javascript"),
        pytest.param("https://keys.example/jwks#k", FRAGMENT, id="fragment"),
        pytest.param("https://a@keys.example/jwks", USERINFO, id="userinfo"),
    ],
)
def test_jwks_uri_refusals(uri: str, description: str) -> None:
    """A jwks_uri is https (http only on a loopback IP literal): invalid_client_metadata otherwise."""
    with pytest.raises(InvalidClientMetadata) as caught:
        check_jwks_uri(uri)

    assert caught.value.error == "invalid_client_metadata"
    assert caught.value.description == description


def test_jwks_uri_accepted() -> None:
    """https, or http on a loopback IP literal (local development and tests)."""
    check_jwks_uri("https://keys.example/jwks")
    check_jwks_uri("http://127.0.0.1:8080/jwks")


def test_authorization_code_needs_a_redirect_uri() -> None:
    """RFC 9700 §2.1: a client of the authorization code grant registers at least one redirect URI."""
    with pytest.raises(InvalidRedirectUriMetadata) as caught:
        check_redirect_uris_for_grants(("authorization_code", "refresh_token"), ())

    assert caught.value.description == "the authorization_code grant needs at least one redirect URI"
    check_redirect_uris_for_grants(("client_credentials",), ())
    check_redirect_uris_for_grants(("authorization_code",), ("https://rp.example/cb",))
