"""What people read from `bastion`: the version, help that lists valid values and never cuts an
option's name, readable output without `--json`, and a refusal of a data directory that is not
there (a typo must not open a new, empty database)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bastion import __version__
from tests.cli._run import bastion, invoke

DATE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC")


def test_version():
    """`bastion --version` prints the version and exits 0."""
    result = bastion("--version")

    assert (result.returncode, result.stdout) == (0, f"bastion {__version__}\n")


@pytest.mark.parametrize("columns", ["60", "80", "200"])
def test_help_lists_valid_values_and_never_cuts_an_option_name(columns):
    """`clients create --help` lists every grant and auth method, with every option name whole,
    at any terminal width."""
    result = bastion("clients", "create", "--help", COLUMNS=columns)
    text = " ".join(result.stdout.split())

    assert result.returncode == 0, result.stderr
    for value in ("client_credentials", "authorization_code", "refresh_token", "client_secret_basic",
                  "client_secret_post", "private_key_jwt", "none"):  # fmt: skip
        assert value in text
    assert "urn:ietf:params:oauth:grant-type:device_code" in text.replace("- ", "-").replace(": ", ":")
    for option in ("--post-logout-redirect-uri", "--accept-token-endpoint-aud", "--pkce-optional-with-nonce"):
        assert re.search(rf"(^|\s){re.escape(option)}(\s|$)", result.stdout), option
    assert "…" not in result.stdout


def _data(tmp_path: Path) -> Path:
    """A development data directory with its database (what `bastion db upgrade` makes)."""
    data = tmp_path / "data"
    assert invoke("db", "upgrade", "--data-dir", str(data)).exit_code == 0
    return data


def test_output_without_json_is_readable(tmp_path):
    """`clients create` and `clients list` without --json: no Python lists, no None, yes/no."""
    data = _data(tmp_path)
    created = invoke("clients", "create", "--name", "svc", "--grant", "client_credentials",
                     "--grant", "refresh_token", "--scope", "a b", "--data-dir", str(data))  # fmt: skip
    listed = invoke("clients", "list", "--data-dir", str(data))

    for result in (created, listed):
        assert result.exit_code == 0, result.stderr
        for python_repr in ("[", "None", "True", "False"):
            assert python_repr not in result.stdout
    assert re.search(r"^grant_types:\s+client_credentials, refresh_token$", created.stdout, re.M)
    assert re.search(r"^redirect_uris:\s+\(none\)$", created.stdout, re.M)
    assert re.search(r"^introspect:\s+no$", created.stdout, re.M)
    client_id = re.search(r"^client_id:\s+(\S+)$", created.stdout, re.M).group(1)  # type: ignore[union-attr]
    assert re.search(rf"^{re.escape(client_id)}\s+svc\s+confidential\s+client_secret_basic\s+"
                     r"client_credentials, refresh_token\s+yes$", listed.stdout, re.M)  # fmt: skip


def test_keys_list_shows_dates(tmp_path):
    """`keys list` shows when each key signs as a UTC date; --json keeps epoch seconds."""
    data = _data(tmp_path)
    assert invoke("keys", "rotate", "--alg", "ES256", "--data-dir", str(data)).exit_code == 0
    shown = invoke("keys", "list", "--data-dir", str(data))
    as_json = json.loads(invoke("keys", "list", "--json", "--data-dir", str(data)).stdout)

    row = next(line for line in shown.stdout.splitlines() if line.startswith(as_json[0]["kid"]))
    assert DATE.search(row), row
    assert isinstance(as_json[0]["activates_at"], int)


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(("clients", "list"), id="clients-list"),
        pytest.param(("users", "list"), id="users-list"),
        pytest.param(("keys", "list"), id="keys-list"),
        pytest.param(("db", "purge"), id="db-purge"),
    ],
)
def test_a_data_dir_that_does_not_exist_is_refused(tmp_path, command):
    """A mistyped --data-dir exits 2 naming the directory; nothing is created there."""
    typo = tmp_path / "dtaa"
    result = bastion(*command, "--data-dir", str(typo))

    assert result.returncode == 2, result.stdout + result.stderr
    assert f"data_dir (--data-dir): {typo} does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert not typo.exists()


def test_a_data_dir_from_the_environment_is_named_by_its_variable(tmp_path):
    """The same refusal names BASTION_DATA_DIR when the path came from there."""
    result = bastion("clients", "list", BASTION_DATA_DIR=str(tmp_path / "nowhere"))

    assert result.returncode == 2
    assert "data_dir (BASTION_DATA_DIR):" in result.stderr
