"""`bastion clients create`: the per-client OpenID Connect settings of issue 3 and their refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli._run import invoke

CODE_GRANT = ("--grant", "authorization_code", "--scope", "openid", "--redirect-uri", "https://rp.example/cb")


def _ok(result: Any) -> Any:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _create(data_dir: Path, *args: str) -> Any:
    return invoke("clients", "create", "--name", "rp", *args, "--json", "--data-dir", str(data_dir))


def test_post_logout_redirect_uris_are_recorded_and_shown(tmp_path):
    """--post-logout-redirect-uri is repeatable; create, show and list --json show the URIs in order."""
    uris = ["https://rp.example/bye", "http://127.0.0.1:8080/bye", "https://rp.example/bye?lang=en"]
    args = [a for uri in uris for a in ("--post-logout-redirect-uri", uri)]

    created = _ok(_create(tmp_path, *CODE_GRANT, *args))
    shown = _ok(invoke("clients", "show", created["client_id"], "--json", "--data-dir", str(tmp_path)))
    listed = _ok(invoke("clients", "list", "--json", "--data-dir", str(tmp_path)))

    assert created["post_logout_redirect_uris"] == uris
    assert shown["post_logout_redirect_uris"] == uris
    assert listed[0]["post_logout_redirect_uris"] == uris


def test_post_logout_redirect_uris_default_to_none(tmp_path):
    """A client registered without the flag has no post-logout redirect URI (its redirect URIs do not count)."""
    created = _ok(_create(tmp_path, *CODE_GRANT))

    assert created["post_logout_redirect_uris"] == []


@pytest.mark.parametrize(
    ("uri", "rule"),
    [
        pytest.param(
            "http://rp.example/bye",
            "must be https; http only on a loopback IP literal, 127.0.0.1 or [::1] (RFC 8252 §7.3)",
            id="http-not-loopback",
        ),
        pytest.param("https://rp.example/bye#frag", "must not contain a fragment (RFC 6749 §3.1.2)", id="fragment"),
        pytest.param("/bye", "must be an absolute URI with a scheme (RFC 6749 §3.1.2)", id="relative"),
        pytest.param("rp.example/bye", "must be an absolute URI with a scheme (RFC 6749 §3.1.2)", id="no-scheme"),
        pytest.param("javascript:alert(1)", "the javascript: scheme is never a redirect target", id="javascript"),
        pytest.param("https:///bye", "an https URI needs a host", id="no-host"),
    ],
)
def test_post_logout_redirect_uri_refusals(tmp_path, uri, rule):
    """A post-logout URI passes the redirect URI rule: absolute, https or loopback-IP http, no fragment."""
    result = _create(tmp_path, *CODE_GRANT, "--post-logout-redirect-uri", uri)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines()[-1] == f"error: --post-logout-redirect-uri {uri!r}: {rule}"


def test_id_token_alg_is_recorded_and_shown(tmp_path):
    """--id-token-alg is recorded (RS256 when not given) and shown by create and show --json."""
    default = _ok(_create(tmp_path, *CODE_GRANT))
    es256 = _ok(_create(tmp_path, *CODE_GRANT, "--id-token-alg", "ES256"))
    shown = _ok(invoke("clients", "show", es256["client_id"], "--json", "--data-dir", str(tmp_path)))

    assert default["id_token_signed_response_alg"] == "RS256"
    assert es256["id_token_signed_response_alg"] == "ES256"
    assert shown["id_token_signed_response_alg"] == "ES256"


@pytest.mark.parametrize("alg", ["HS256", "none", "RS512", "es256"])
def test_id_token_alg_refusals(tmp_path, alg):
    """Any other alg exits 2 with a message naming the allowed ones."""
    result = _create(tmp_path, *CODE_GRANT, "--id-token-alg", alg)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines()[-1] == "error: --id-token-alg must be one of RS256, PS256, ES256"


def test_id_token_alg_without_key_warns_until_rotated(tmp_path):
    """A PS256 client is created with a warning on stderr naming `bastion keys rotate --alg PS256`
    while no PS256 key signs; none once one does. stdout stays pure JSON."""
    first = _create(tmp_path, *CODE_GRANT, "--id-token-alg", "PS256")
    _ok(invoke("keys", "rotate", "--alg", "PS256", "--json", "--data-dir", str(tmp_path)))
    second = _create(tmp_path, *CODE_GRANT, "--id-token-alg", "PS256")

    assert _ok(first)["id_token_signed_response_alg"] == "PS256"
    assert first.stderr.strip().splitlines()[-1] == (
        "warning: no active PS256 signing key yet; ID tokens for this client fail until there is one: "
        "run `bastion keys rotate --alg PS256`"
    )
    assert _ok(second)["id_token_signed_response_alg"] == "PS256"
    assert "signing key" not in second.stderr


def test_default_alg_never_warns(tmp_path):
    """RS256 needs no warning: `serve` itself refuses to start without an RS256 key."""
    result = _create(tmp_path, *CODE_GRANT)

    assert result.exit_code == 0
    assert "signing key" not in result.stderr


def test_pkce_optional_with_nonce_is_recorded_for_confidential_clients(tmp_path):
    """--pkce-optional-with-nonce is recorded (false when not given) and shown by show --json."""
    default = _ok(_create(tmp_path, *CODE_GRANT))
    relaxed = _ok(_create(tmp_path, *CODE_GRANT, "--pkce-optional-with-nonce"))
    shown = _ok(invoke("clients", "show", relaxed["client_id"], "--json", "--data-dir", str(tmp_path)))

    assert default["pkce_optional_with_nonce"] is False
    assert relaxed["pkce_optional_with_nonce"] is True
    assert shown["pkce_optional_with_nonce"] is True


def test_pkce_optional_with_nonce_is_refused_for_public_clients(tmp_path):
    """A public client (--auth-method none) cannot take the flag: exit 2, one clear error line."""
    result = _create(tmp_path, *CODE_GRANT, "--auth-method", "none", "--pkce-optional-with-nonce")

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --pkce-optional-with-nonce is only for confidential clients; "
        "a public client (--auth-method none) always uses PKCE (RFC 9700 §2.1.1)"
    )


def test_require_mfa_is_recorded_and_shown(tmp_path):
    """--require-mfa is recorded (false when not given) and shown by create, show and list --json."""
    default = _ok(_create(tmp_path, *CODE_GRANT))
    strict = _ok(_create(tmp_path, *CODE_GRANT, "--auth-method", "none", "--require-mfa"))
    shown = _ok(invoke("clients", "show", strict["client_id"], "--json", "--data-dir", str(tmp_path)))
    listed = _ok(invoke("clients", "list", "--json", "--data-dir", str(tmp_path)))

    assert default["require_mfa"] is False
    assert strict["require_mfa"] is True
    assert shown["require_mfa"] is True
    assert [c["require_mfa"] for c in listed] == [False, True]
