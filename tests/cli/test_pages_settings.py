"""`[pages]`: branding and scope descriptions are checked when settings are built; a value that
tries to carry CSS, HTML or script into a page is refused by a real `bastion serve` before it
binds (exit 2, the key named), and what is accepted is kept exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bastion.config import ConfigError, PageSettings, parse_pages
from tests._live import free_port
from tests.cli._run import bastion

SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40"><rect width="40" height="40"/></svg>'


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a TOML basic string (escapes included)


@pytest.mark.parametrize(
    ("table", "refusal"),
    [
        pytest.param(
            {"accent_colour": "red;} body{display:none"},
            "pages.accent_colour: 'red;} body{display:none' is not a colour like #1f5fbf",
            id="colour-css-injection",
        ),
        pytest.param(
            {"background_colour": "#fff;background:url(https://evil.example/x)"},
            "pages.background_colour: '#fff;background:url(https://evil.example/x)' is not a colour",
            id="colour-url-injection",
        ),
        pytest.param({"text_colour": "blue"}, "pages.text_colour: 'blue' is not a colour", id="colour-name"),
        pytest.param(
            {"accent_colour": "#12345"}, "pages.accent_colour: '#12345' is not a colour", id="colour-5-digits"
        ),
        pytest.param(
            {"logo": "javascript:alert(1)"}, "pages.logo: 'javascript:alert(1)' is not an https:// URL", id="logo-js"
        ),
        pytest.param(
            {"logo": 'https://cdn.example/x.png" onerror="alert(1)'},
            "pages.logo: 'https://cdn.example/x.png\" onerror=\"alert(1)' is not a URL or a file path",
            id="logo-attribute-injection",
        ),
        pytest.param({"logo": "http://cdn.example/logo.png"}, "is not an https:// URL", id="logo-plain-http"),
        pytest.param({"logo": "data:image/png;base64,AAAA"}, "is not an https:// URL", id="logo-data-uri"),
        pytest.param({"logo": "/etc/passwd"}, "pages.logo: /etc/passwd is not an image file", id="logo-not-an-image"),
        pytest.param({"logo": "/nowhere/logo.png"}, "pages.logo: /nowhere/logo.png does not exist", id="logo-missing"),
        pytest.param(
            {"product_name": "Acme\nSign-in"}, "pages.product_name: contains a control character", id="name-newline"
        ),
        pytest.param({"product_name": "x" * 61}, "pages.product_name: is 61 characters long", id="name-too-long"),
        pytest.param(
            {"scopes": {"bad scope": "words"}}, "pages.scopes.bad scope: is not a scope name", id="scope-name"
        ),
        pytest.param(
            {"scopes": {"invoices:read": ""}}, "pages.scopes.invoices:read: '' is not a non-empty", id="scope-empty"
        ),
        pytest.param({"colour": "#fff"}, "pages.colour: unknown setting", id="unknown-key"),
    ],
)
def test_serve_refuses_a_bad_pages_value(tmp_path: Path, table: dict, refusal: str) -> None:
    """Each unsafe or malformed [pages] value stops `bastion serve` with exit 2, naming the key."""
    lines = ["[pages]"]
    scopes = table.pop("scopes", None)
    lines += [f"{key} = {_toml_string(value)}" for key, value in table.items()]
    if scopes is not None:
        lines.append("[pages.scopes]")
        lines += [f"{_toml_string(key)} = {_toml_string(value)}" for key, value in scopes.items()]
    config = tmp_path / "bastion.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")

    data_dir = str(tmp_path / "data")
    result = bastion("serve", "--port", str(free_port()), "--data-dir", data_dir, BASTION_CONFIG=str(config))

    assert result.returncode == 2, result.stdout + result.stderr
    # `error: SETTING (FILE:LINE): problem. Fix: ...`: the setting named with where it came from.
    setting, _, problem = refusal.partition(": ") if refusal.startswith("pages.") else ("", "", refusal)
    if setting:
        assert f"error: {setting} ({config}:" in result.stderr, result.stderr
    assert problem in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data" / "secrets").exists()


def test_accepted_values_are_kept(tmp_path: Path) -> None:
    """Good values are kept: colours lower-cased, a logo file by absolute path, scope words as written."""
    logo = tmp_path / "logo.svg"
    logo.write_bytes(SVG)
    pages = parse_pages(
        {
            "product_name": "Acme <Sign-in>",
            "logo": str(logo),
            "accent_colour": "#C0392B",
            "background_colour": "#fff",
            "scopes": {"invoices:read": "Read your invoices"},
        }
    )
    assert pages == PageSettings(
        product_name="Acme <Sign-in>",
        logo=str(logo.resolve()),
        accent_colour="#c0392b",
        background_colour="#fff",
        scopes=(("invoices:read", "Read your invoices"),),
    )


def test_pages_must_be_a_table() -> None:
    """`pages` from the environment (a string) is refused with the fix: a TOML table."""
    with pytest.raises(ConfigError, match=r"pages: 'x' is not a table\. Fix: write it as a \[pages\] table"):
        parse_pages("x")
