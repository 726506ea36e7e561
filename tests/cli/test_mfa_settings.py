"""The MFA policy settings (`mfa`, `mfa_roles`): read from flags, `BASTION_MFA*` and the TOML
file; a wrong value is refused by `bastion serve` in a real process with exit 2 and a message
naming the setting and the fix, before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.config import ConfigError, Settings, load_settings
from tests._live import free_port
from tests.cli._run import bastion

LOOPBACK = "http://127.0.0.1:8000"


def test_the_default_policy_is_roles_with_admin():
    """Without any MFA setting the policy is today's: holders of the role admin need a second factor."""
    settings = load_settings(environ={}, overrides={"issuer": LOOPBACK})

    assert (settings.mfa, settings.mfa_roles) == ("roles", ("admin",))


@pytest.mark.parametrize(
    ("environ", "toml", "overrides", "expected"),
    [
        pytest.param({"BASTION_MFA": "required"}, "", {}, ("required", ("admin",)), id="env-required"),
        pytest.param(
            {"BASTION_MFA_ROLES": " admin, auditor ,,ops"},
            "",
            {},
            ("roles", ("admin", "auditor", "ops")),
            id="env-roles",
        ),
        pytest.param({}, 'mfa = "optional"\nmfa_roles = ["ops"]\n', {}, ("optional", ("ops",)), id="toml"),
        pytest.param(
            {"BASTION_MFA": "required"},
            'mfa = "optional"\n',
            {"mfa": "off", "mfa_roles": "x"},
            ("off", ("x",)),
            id="flags-win",
        ),
        pytest.param({"BASTION_MFA": "off", "BASTION_MFA_ROLES": ""}, "", {}, ("off", ()), id="off-needs-no-roles"),
    ],
)
def test_mfa_settings_are_read_from_every_source(tmp_path: Path, environ, toml, overrides, expected):
    """Defaults < TOML < environment < flags; roles are comma-separated (blanks dropped) or a TOML list."""
    config = None
    if toml:
        config = tmp_path / "bastion.toml"
        config.write_text(toml, encoding="utf-8")
    settings = load_settings(config_file=config, environ=environ, overrides={"issuer": LOOPBACK, **overrides})

    assert (settings.mfa, settings.mfa_roles) == expected


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param({"mfa": "sometimes"}, "mfa: 'sometimes' is not off, optional, required or roles", id="policy"),
        pytest.param({"mfa_roles": ("admin", "two words")}, "mfa_roles: 'two words' is not a role name", id="role"),
        pytest.param({"mfa_roles": ()}, "mfa=roles would require a second factor of nobody", id="no-roles"),
    ],
)
def test_settings_refuse_a_wrong_mfa_policy(values, message):
    """Settings built in code are checked as the CLI's are."""
    with pytest.raises(ConfigError) as refused:
        Settings(issuer=LOOPBACK, **values)

    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        pytest.param(
            ("--mfa", "sometimes"), {}, "'sometimes' is not off, optional, required or roles", id="flag-policy"
        ),
        pytest.param(
            (), {"BASTION_MFA": "always"}, "'always' is not off, optional, required or roles", id="env-policy"
        ),
        pytest.param(("--mfa-roles", "admin,two words"), {}, "'two words' is not a role name", id="flag-role"),
        pytest.param(
            ("--mfa", "roles", "--mfa-roles", ""),
            {},
            "mfa=roles would require a second factor of nobody",
            id="flag-no-roles",
        ),
        pytest.param((), {"BASTION_MFA_ROLES": " , "}, "name the roles, e.g. admin,auditor", id="env-no-roles"),
    ],
)
def test_serve_refuses_a_wrong_mfa_setting(tmp_path: Path, args, env, message):
    """`bastion serve` with a wrong MFA setting exits 2 with the message, no traceback, and writes nothing."""
    data_dir = tmp_path / "data"
    result = bastion("serve", "--port", str(free_port()), "--data-dir", str(data_dir), *args, **env)

    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not data_dir.exists()


def test_serve_help_lists_the_mfa_flags():
    """`bastion serve --help` names both flags and every policy."""
    result = bastion("serve", "--help", COLUMNS="200")

    assert result.returncode == 0, result.stderr
    assert "--mfa " in result.stdout
    assert "--mfa-roles" in result.stdout
    assert "off, optional (offered), required (everyone)" in " ".join(result.stdout.split())  # help wraps
