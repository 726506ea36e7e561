"""The admin verbs the CLI shares with the admin API (issue 14 item 8): `clients update|delete`,
`users delete`, `sessions list|revoke`, on SQLite and PostgreSQL; refusals exit 2 and say why."""

from __future__ import annotations

import json
import os
from getpass import getuser
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bastion.cli import app
from bastion.config import Settings

PASSWORD = "a long and unusual passphrase"


class Cli:
    def __init__(self, settings: Settings, data_dir: Path) -> None:
        assert settings.key_encryption_key is not None
        assert settings.client_secret_pepper is not None
        self.env = {
            "BASTION_DATABASE_URL": settings.resolved_database_url,
            "BASTION_KEY_ENCRYPTION_KEY": settings.key_encryption_key.reveal(),
            "BASTION_CLIENT_SECRET_PEPPER": settings.client_secret_pepper.reveal(),
            "BASTION_PASSWORD_HASHING": "testing",
        }
        self.data_dir = data_dir

    def __call__(self, *args: str, input: str | None = None) -> Any:
        head, rest = (args[: args.index("--")], args[args.index("--") :]) if "--" in args else (args, ())
        # As tests.cli._run.invoke, with standard input for --password-stdin.
        blank = {k: None for k in os.environ if k.startswith("BASTION_") and not k.startswith("BASTION_TEST")}
        argv = [*head, "--data-dir", str(self.data_dir), *rest]
        return CliRunner().invoke(app, argv, input=input, env={**blank, **self.env}, catch_exceptions=False)

    def ok(self, *args: str) -> Any:
        result = self(*args, "--json")
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture
def cli(settings: Settings, tmp_path: Path) -> Cli:
    """The CLI on this test's database (SQLite or PostgreSQL), as an operator configures it."""
    return Cli(settings, tmp_path / "data")


def test_clients_update_replaces_scopes_and_redirect_uris_and_delete_forgets(cli: Cli) -> None:
    """`clients update` replaces the settings it is given (checked like a registration);
    `clients delete` forgets the client, after which it is unknown."""
    created = cli.ok(
        "clients", "create", "--name", "spa", "--grant", "authorization_code", "--auth-method", "none",
        "--redirect-uri", "https://spa.example/cb", "--scope", "openid",
    )  # fmt: skip
    client_id = created["client_id"]

    updated = cli.ok(
        "clients", "update", client_id, "--scope", "openid profile", "--redirect-uri", "https://spa.example/new",
        "--require-mfa",
    )  # fmt: skip

    assert updated["scope"] == "openid profile"
    assert updated["redirect_uris"] == ["https://spa.example/new"]
    assert updated["require_mfa"] is True
    assert cli.ok("clients", "show", client_id)["name"] == "spa"
    deleted = cli("clients", "delete", client_id, "--json")
    assert json.loads(deleted.stdout) == {"client_id": client_id, "deleted": True}
    event = json.loads(deleted.stderr.splitlines()[-1])
    assert (event["event"], event["client_id"], event["via"]) == ("client_deleted", client_id, f"cli:{getuser()}")
    assert cli.ok("clients", "list") == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--name", "x"), "no client nobody"),
        ((), "nothing to change"),
        (("--redirect-uri", "http://example.com/cb"), "http://example.com/cb"),
        (("--scope", 'a"b'), "is not a scope token"),
    ],
    ids=["unknown", "nothing", "plain-http-redirect", "bad-scope"],
)
def test_clients_update_refusals(cli: Cli, args: tuple[str, ...], message: str) -> None:
    """An unknown client, no change, or a change a registration would refuse: exit 2, saying why."""
    created = cli.ok("clients", "create", "--name", "spa", "--grant", "authorization_code", "--auth-method", "none",
                     "--redirect-uri", "https://spa.example/cb")  # fmt: skip
    target = "nobody" if message.startswith("no client") else created["client_id"]

    result = cli("clients", "update", target, *args)

    assert result.exit_code == 2
    assert message in result.stderr


def test_users_delete_and_sessions(cli: Cli) -> None:
    """`users delete` forgets the user; `sessions list` shows none for a user who never signed in,
    `sessions revoke` of an unknown sid exits 2, and both refuse an unknown user."""
    created = cli("users", "create", "--username", "erin", "--password-stdin", "--json", input=PASSWORD + "\n")
    assert created.exit_code == 0, created.stderr

    assert cli.ok("sessions", "list", "erin") == []
    unknown_sid = cli("sessions", "revoke", "erin", "nope")
    deleted = cli.ok("users", "delete", "erin")
    gone = cli("sessions", "list", "erin")
    again = cli("users", "delete", "erin")

    assert unknown_sid.exit_code == 2
    assert "no session nope of user erin" in unknown_sid.stderr
    assert deleted == {"sub": json.loads(created.stdout)["sub"], "deleted": True}
    assert (gone.exit_code, again.exit_code) == (2, 2)
    assert "no user erin" in gone.stderr
    assert cli.ok("users", "list") == []
