"""`bastion clients` and `bastion keys`: the names, flags and JSON shapes scripts rely on.

One test runs the real process to pin "stdout carries only the JSON"; the rest run the same CLI
code in-process (Typer's runner keeps stdout and stderr apart) on a development data directory.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from jwt.algorithms import ECAlgorithm

from tests.cli._run import bastion, invoke
from tests.server._jose import new_client_key

URLSAFE_43 = re.compile(r"[A-Za-z0-9_-]{43}")


def _ok(result: Any) -> Any:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _create(data_dir: Path, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = _ok(
        invoke("clients", "create", "--name", "svc", *args, "--json", "--data-dir", str(data_dir))
    )
    return data


def test_create_json_prints_only_json_on_stdout(tmp_path):
    """`clients create --json` (real process): stdout is one JSON object; the secret is 43 URL-safe characters."""
    result = bastion(
        "clients",
        "create",
        "--name",
        "svc",
        "--grant",
        "client_credentials",
        "--scope",
        "read write",
        "--audience",
        "https://api.example.test/",
        "--token-lifetime",
        "5",
        "--json",
        "--data-dir",
        str(tmp_path),
    )

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    assert URLSAFE_43.fullmatch(data["client_secret"])
    assert data["client_id"]
    assert data["token_endpoint_auth_method"] == "client_secret_basic"
    assert data["grant_types"] == ["client_credentials"]
    assert data["scope"] == "read write"
    assert data["audiences"] == ["https://api.example.test/"]
    assert data["access_token_lifetime_minutes"] == 5
    assert data["introspect"] is False
    assert "Traceback" not in result.stderr


def test_secrets_are_unique_and_urlsafe(tmp_path):
    """Every generated secret is fresh: 43 characters of the URL-safe alphabet, no + / = %."""
    secrets = {_create(tmp_path, "--grant", "client_credentials")["client_secret"] for _ in range(3)}

    assert len(secrets) == 3
    for secret in secrets:
        assert URLSAFE_43.fullmatch(secret)


def test_public_and_key_clients_get_no_secret(tmp_path):
    """`none` and `private_key_jwt` clients have no secret to show."""
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(new_client_key().jwks), encoding="utf-8")
    public = _create(tmp_path, "--grant", "authorization_code", "--auth-method", "none", "--redirect-uri", "https://rp.example/cb")
    keyed = _create(tmp_path, "--grant", "client_credentials", "--auth-method", "private_key_jwt", "--jwks", str(jwks))

    assert "client_secret" not in public
    assert public["client_type"] == "public"
    assert "client_secret" not in keyed
    assert keyed["token_endpoint_auth_method"] == "private_key_jwt"


def test_introspect_flag_is_recorded(tmp_path):
    """--introspect marks a resource server."""
    data = _create(tmp_path, "--grant", "client_credentials", "--introspect", "--audience", "https://api.example.test")

    assert data["introspect"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ("--grant", "client_credentials", "--auth-method", "none"),
            "error: a public client (--auth-method none) may not use client_credentials (RFC 6749 §4.4)",
            id="public-client-credentials",
        ),
        pytest.param(
            ("--grant", "client_credentials", "--token-lifetime", "61"),
            "error: --token-lifetime must be 1-60 minutes",
            id="token-lifetime-61",
        ),
        pytest.param(
            ("--grant", "client_credentials", "--token-lifetime", "0"),
            "error: --token-lifetime must be 1-60 minutes",
            id="token-lifetime-0",
        ),
        pytest.param(
            ("--grant", "client_credentials", "--audience", "https://api.example.test/#x"),
            "error: --audience https://api.example.test/#x must be an absolute URI without fragment (RFC 8707 §2)",
            id="audience-fragment",
        ),
        pytest.param(
            ("--grant", "client_credentials", "--audience", "https://a.example.test https://b.example.test"),
            "error: --audience https://a.example.test https://b.example.test must be an absolute URI without "
            "fragment (RFC 8707 §2)",
            id="audience-with-a-space",
        ),
        pytest.param(
            ("--grant", "client_credentials", "--audience", "api"),
            "error: --audience api must be an absolute URI without fragment (RFC 8707 §2)",
            id="audience-relative",
        ),
        pytest.param(
            ("--grant", "client_credentials", "--auth-method", "client_secret_jwt"),
            "error: --auth-method must be one of client_secret_basic, client_secret_post, private_key_jwt, none",
            id="unknown-auth-method",
        ),
        pytest.param(
            ("--grant", "client_credentials", "--auth-method", "private_key_jwt"),
            "error: private_key_jwt needs --jwks FILE (or a jwks_uri)",
            id="jwt-without-keys",
        ),
    ],
)
def test_create_refusals(tmp_path, args, message):
    """Invalid registrations exit 2 with one `error:` line and print nothing on stdout."""
    result = invoke("clients", "create", "--name", "svc", *args, "--json", "--data-dir", str(tmp_path))

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines()[-1] == message


def test_create_refuses_private_key_material(tmp_path):
    """A --jwks file holding a private key is refused: only public keys are registered."""
    key = new_client_key()
    private = json.loads(ECAlgorithm.to_jwk(key.private_key))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [private]}), encoding="utf-8")
    result = invoke(
        "clients",
        "create",
        "--name",
        "svc",
        "--grant",
        "client_credentials",
        "--auth-method",
        "private_key_jwt",
        "--jwks",
        str(jwks),
        "--json",
        "--data-dir",
        str(tmp_path),
    )

    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: --jwks {jwks}: contains private key material; register public keys only"
    )


def test_rotate_secret_prints_new_secret_once(tmp_path):
    """`clients rotate-secret --json` prints a new 43-character secret and when the old one stops."""
    client = _create(tmp_path, "--grant", "client_credentials")
    rotated = _ok(invoke("clients", "rotate-secret", client["client_id"], "--json", "--data-dir", str(tmp_path)))
    overlapped = _ok(
        invoke(
            "clients", "rotate-secret", client["client_id"], "--overlap", "30", "--json", "--data-dir", str(tmp_path)
        )
    )

    assert set(rotated) == {"client_id", "client_secret", "previous_secret_valid_until"}
    assert URLSAFE_43.fullmatch(rotated["client_secret"])
    assert rotated["client_secret"] != client["client_secret"]
    assert overlapped["previous_secret_valid_until"] >= rotated["previous_secret_valid_until"] + 29


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        pytest.param("jwt", (), "uses private_key_jwt, which has no secret", id="no-secret-to-rotate"),
        pytest.param(
            "secret", ("--overlap", "-1"), "error: --overlap must be 0-2592000 seconds", id="negative-overlap"
        ),
        pytest.param("unknown", (), "error: no client no-such-client", id="unknown-client"),
    ],
)
def test_rotate_secret_refusals(tmp_path, setup, args, message):
    """rotate-secret refuses clients without a secret, bad overlaps and unknown clients (exit 2)."""
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(new_client_key().jwks), encoding="utf-8")
    if setup == "jwt":
        client_id = _create(
            tmp_path, "--grant", "client_credentials", "--auth-method", "private_key_jwt", "--jwks", str(jwks)
        )["client_id"]
    elif setup == "secret":
        client_id = _create(tmp_path, "--grant", "client_credentials")["client_id"]
    else:
        client_id = "no-such-client"
    result = invoke("clients", "rotate-secret", client_id, *args, "--json", "--data-dir", str(tmp_path))

    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in result.stderr.strip().splitlines()[-1]


def test_disable_show_and_list(tmp_path):
    """`clients disable` records enabled=false, visible in `show` and `list`; unknown ids exit 2."""
    client = _create(tmp_path, "--grant", "client_credentials")
    cid = client["client_id"]
    disabled = _ok(invoke("clients", "disable", cid, "--json", "--data-dir", str(tmp_path)))
    shown = _ok(invoke("clients", "show", cid, "--json", "--data-dir", str(tmp_path)))
    listed = _ok(invoke("clients", "list", "--json", "--data-dir", str(tmp_path)))
    missing = invoke("clients", "disable", "nope", "--json", "--data-dir", str(tmp_path))

    assert disabled["enabled"] is False
    assert shown["enabled"] is False
    assert "client_secret" not in shown
    assert [c["client_id"] for c in listed] == [cid]
    assert listed[0]["enabled"] is False
    assert missing.exit_code == 2
    assert missing.stderr.strip().splitlines()[-1] == "error: no client nope"


def _keys(data_dir: Path, **env: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = _ok(invoke("keys", "list", "--json", "--data-dir", str(data_dir), **env))
    return data


def test_keys_rotate_list_and_retire(tmp_path):
    """rotate adds a key (active at once when none signs, pending otherwise); retire keeps it published."""
    d = str(tmp_path)
    first = _ok(invoke("keys", "rotate", "--alg", "ES256", "--json", "--data-dir", d))
    only = invoke("keys", "retire", "--json", "--data-dir", d, "--", first["kid"])
    pending = _ok(
        invoke("keys", "rotate", "--alg", "ES256", "--json", "--data-dir", d, BASTION_KEY_PREPUBLICATION="3600")
    )
    states = {k["kid"]: k for k in _keys(tmp_path)}

    assert only.exit_code == 2
    assert only.stderr.strip().splitlines()[-1] == (
        f"error: {first['kid']} is the only active ES256 key; run `bastion keys rotate --alg ES256` first"
    )
    assert states[first["kid"]]["state"] == "active"
    assert states[pending["kid"]]["state"] == "pending"
    assert states[pending["kid"]]["published"] is True
    assert pending["activates_at"] >= first["activates_at"] + 3599


def test_retired_key_stays_published(tmp_path):
    """Retiring a key once another signs: state retired, still published; retiring again is refused."""
    d = str(tmp_path)
    first = _ok(invoke("keys", "rotate", "--alg", "RS256", "--json", "--data-dir", d))
    second = _ok(invoke("keys", "rotate", "--alg", "RS256", "--json", "--data-dir", d, BASTION_KEY_PREPUBLICATION="0"))
    # The new key activates at least one second after the first (never a tie); wait for it.
    while time.time() < second["activates_at"]:
        time.sleep(0.05)
    retired = _ok(invoke("keys", "retire", "--json", "--data-dir", d, "--", first["kid"]))
    again = invoke("keys", "retire", "--json", "--data-dir", d, "--", first["kid"])
    states = {k["kid"]: k for k in _keys(tmp_path)}

    assert retired["kid"] == first["kid"]
    assert states[first["kid"]]["state"] == "retired"
    assert states[first["kid"]]["published"] is True
    assert states[second["kid"]]["state"] == "active"
    assert again.exit_code == 2
    assert again.stderr.strip().splitlines()[-1] == f"error: key {first['kid']} is already retired"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("retire", "no-such-kid"), "error: no key no-such-kid", id="retire-unknown"),
        pytest.param(("rotate", "--alg", "HS256"), "error: --alg must be ES256, RS256 or PS256", id="rotate-hmac"),
    ],
)
def test_keys_refusals(tmp_path, args, message):
    """Unknown kids and unsupported algorithms exit 2 with one error line."""
    result = invoke("keys", *args, "--json", "--data-dir", str(tmp_path))

    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == message
