"""Where settings come from: defaults < TOML file < `BASTION_*` environment < CLI flags.

Each source's text is coerced to the setting's type here; what the values must satisfy is
checked when `Settings` is built.
"""

from __future__ import annotations

import os
import tomllib
import warnings
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from bastion.config._pages import parse_pages
from bastion.config._ratelimit import RateLimitSettings, parse_ratelimit
from bastion.config._settings import Settings
from bastion.config._types import ConfigError, ConfigWarning, Secret, closest, refuse_unknown

# Environment variables that share the prefix but are not settings (tests, CI).
_NOT_SETTINGS = ("BASTION_REQUIRE_SERVICES", "BASTION_TEST_", "BASTION_CONFIG")
_FIELDS = {f.name: f for f in fields(Settings)}
_SECRET_FIELDS = {"database_url", "redis_url", "key_encryption_key", "client_secret_pepper"}

_RECORDED_ISSUER = "issuer"  # a file in the data directory


def _coerce(name: str, raw: Any) -> Any:
    if name == "ratelimit":
        return raw if isinstance(raw, RateLimitSettings) else parse_ratelimit(raw)
    if name == "pages":
        return parse_pages(raw)
    kind = _FIELDS[name].type
    try:
        if name in _SECRET_FIELDS:
            return None if raw in ("", None) else Secret(str(raw))
        if name == "data_dir":
            return Path(str(raw))
        if name in ("trusted_proxies", "metrics_clients", "mfa_roles"):
            items = raw if isinstance(raw, list) else str(raw).split(",")
            return tuple(str(item).strip() for item in items if str(item).strip())
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in {"1", "true", "yes", "on"}:
                return True
            if str(raw).lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if kind == "int":
            if isinstance(raw, bool):
                raise TypeError(raw)
            return int(raw)
        if kind == "float":
            return float(raw)
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(name, f"{raw!r} is not a valid {kind}", f"give {name} a {kind} value") from exc


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a TOML config file; an unknown key is an error naming the closest known setting."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError("--config", f"{path} does not exist", "pass an existing TOML file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("--config", f"{path} is not valid TOML ({exc})", "fix the TOML syntax") from exc
    refuse_unknown(data, _FIELDS, lambda key: f"{path}: {key}", "remove it")
    return data


def read_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """`BASTION_*` variables as settings; an unknown one gets a warning naming the closest."""
    values: dict[str, Any] = {}
    for variable, raw in environ.items():
        if not variable.startswith("BASTION_") or variable.startswith(_NOT_SETTINGS):
            continue
        name = variable.removeprefix("BASTION_").lower()
        if name in _FIELDS:
            values[name] = raw
            continue
        near = closest(name, _FIELDS)
        hint = f"; did you mean BASTION_{near.upper()}?" if near else ""
        warnings.warn(f"unknown environment variable {variable} is ignored{hint}", ConfigWarning, stacklevel=2)
    return values


def load_settings(
    *,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build Settings: defaults < config file < environment < explicit overrides (CLI flags).

    When no issuer is configured it defaults to `http://HOST:PORT` for a loopback host, or to
    the issuer that `serve` recorded in the data directory.
    """
    environ = os.environ if environ is None else environ
    if config_file is None and environ.get("BASTION_CONFIG"):
        config_file = Path(environ["BASTION_CONFIG"])
    raw: dict[str, Any] = {}
    if config_file is not None:
        raw.update(read_config_file(config_file))
    raw.update(read_environment(environ))
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    values = {name: _coerce(name, value) for name, value in raw.items()}
    if not values.get("issuer"):
        data_dir = values.get("data_dir", Settings.data_dir)
        recorded = data_dir / _RECORDED_ISSUER
        if "host" not in values and "port" not in values and recorded.exists():
            values["issuer"] = recorded.read_text(encoding="utf-8").strip()
        else:
            host = str(values.get("host", Settings.host))
            port = int(values.get("port", Settings.port))
            shown = f"[{host}]" if ":" in host else host
            values["issuer"] = f"http://{shown}:{port}"
    return Settings(**values)


def record_issuer(settings: Settings) -> None:
    """Remember the issuer in the data directory, so CLI commands on the same data know it
    (`load_settings` reads it when nothing else names the issuer)."""
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    (settings.data_dir / _RECORDED_ISSUER).write_text(settings.issuer + "\n", encoding="utf-8")
