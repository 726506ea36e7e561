"""compose.yaml and deploy/*.env.example: a production configuration once the placeholders are
replaced, and no secret committed."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest
import yaml

from bastion.config import ConfigError, load_settings
from tests._services import ROOT

PLACEHOLDER = "CHANGE_ME"


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, as compose's env_file reads them (comments and blank lines skipped)."""
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def filled(example: dict[str, str]) -> dict[str, str]:
    """The example with each placeholder replaced as its comment says."""
    values = {
        "BASTION_KEY_ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "BASTION_CLIENT_SECRET_PEPPER": secrets.token_urlsafe(32),
        "BASTION_TRUSTED_PROXIES": "10.89.0.0/24",
    }
    fill = secrets.token_urlsafe(16)
    return {key: values.get(key, value.replace(PLACEHOLDER, fill)) for key, value in example.items()}


def test_bastion_env_example_is_a_production_configuration(tmp_path: Path) -> None:
    """With its placeholders filled, the example is accepted as it stands (every name a real
    setting: an unknown one would warn, an error here) and configures production mode."""
    environ = filled(read_env_file(ROOT / "deploy" / "bastion.env.example"))

    settings = load_settings(environ=environ, overrides={"data_dir": tmp_path})

    assert not settings.development_mode
    assert settings.issuer.startswith("https://")
    assert settings.redis_url is not None
    assert settings.trusted_proxies == ("10.89.0.0/24",)


def test_bastion_env_example_as_committed_is_refused(tmp_path: Path) -> None:
    """Copied without replacing the placeholders, the configuration is refused, naming a setting."""
    environ = read_env_file(ROOT / "deploy" / "bastion.env.example")

    with pytest.raises(ConfigError) as refused:
        load_settings(environ=environ, overrides={"data_dir": tmp_path})

    assert str(refused.value).startswith("trusted_proxies (BASTION_TRUSTED_PROXIES): 'CHANGE_ME'")


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        pytest.param("BASTION_KEY_ENCRYPTION_KEY", PLACEHOLDER, "is still the placeholder CHANGE_ME", id="kek-left"),
        pytest.param(
            "BASTION_CLIENT_SECRET_PEPPER", PLACEHOLDER, "is still the placeholder CHANGE_ME", id="pepper-left"
        ),
        pytest.param("BASTION_CLIENT_SECRET_PEPPER", "pepper", "is shorter than 32 bytes", id="pepper-short"),
    ],
)
def test_a_secret_left_as_placeholder_or_too_short_is_refused(
    tmp_path: Path, key: str, value: str, problem: str
) -> None:
    """The example filled in except one secret (left CHANGE_ME, or short): refused naming it and
    its variable, as the container's bastion-init and server would be."""
    environ = {**filled(read_env_file(ROOT / "deploy" / "bastion.env.example")), key: value}

    with pytest.raises(ConfigError) as refused:
        load_settings(environ=environ, overrides={"data_dir": tmp_path})

    setting = key.removeprefix("BASTION_").lower()
    assert str(refused.value).startswith(f"{setting} ({key}): {problem}. Fix: set {key}")


@pytest.mark.parametrize(
    ("example", "key"),
    [
        pytest.param("bastion.env.example", "BASTION_KEY_ENCRYPTION_KEY", id="key-encryption-key"),
        pytest.param("bastion.env.example", "BASTION_CLIENT_SECRET_PEPPER", id="pepper"),
        pytest.param("bastion.env.example", "BASTION_DATABASE_URL", id="database-password"),
        pytest.param("postgres.env.example", "POSTGRES_PASSWORD", id="postgres-password"),
    ],
)
def test_examples_hold_placeholders_not_secrets(example: str, key: str) -> None:
    """Every secret of the examples is the placeholder."""
    value = read_env_file(ROOT / "deploy" / example)[key]

    assert PLACEHOLDER in value


def test_compose_starts_the_servers_after_init_on_the_examples_copies() -> None:
    """init (bastion-init) waits for a healthy PostgreSQL; the servers wait for init to succeed
    and for Redis; both read deploy/bastion.env, the example's gitignored copy."""
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]

    assert services["init"]["entrypoint"] == ["bastion-init"]
    assert services["init"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["bastion"]["depends_on"] == {
        "init": {"condition": "service_completed_successfully"},
        "redis": {"condition": "service_healthy"},
    }
    assert services["init"]["env_file"] == services["bastion"]["env_file"] == "deploy/bastion.env"
    assert services["postgres"]["env_file"] == "deploy/postgres.env"
    assert "deploy/*.env" in (ROOT / ".gitignore").read_text().splitlines()
