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
    "uri",
    [
        pytest.param("http://rp.example/bye", id="http-not-loopback"),
        pytest.param("https://rp.example/bye#frag", id="fragment"),
        pytest.param("/bye", id="relative"),
        pytest.param("rp.example/bye", id="no-scheme"),
        pytest.param("javascript:alert(1)", id="javascript"),
        pytest.param("https:///bye", id="no-host"),
    ],
)
def test_post_logout_redirect_uri_refusals(tmp_path, uri):
    """A post-logout URI must be absolute, https (http only on loopback) and without fragment."""
    result = _create(tmp_path, *CODE_GRANT, "--post-logout-redirect-uri", uri)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: --post-logout-redirect-uri {uri} must be an absolute https:// URI "
        "(http:// only on a loopback host) without fragment"
    )
