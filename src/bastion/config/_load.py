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
from bastion.config._types import ConfigError, ConfigWarning, Secret, closest, is_loopback_host, refuse_unknown

# Environment variables that share the prefix but are not settings (tests, CI).
_NOT_SETTINGS = ("BASTION_REQUIRE_SERVICES", "BASTION_TEST_", "BASTION_CONFIG")
_FIELDS = {f.name: f for f in fields(Settings) if f.name != "sources"}  # sources: provenance, not a setting
_SECRET_FIELDS = {"database_url", "redis_url", "key_encryption_key", "client_secret_pepper"}

_RECORDED_ISSUER = "issuer"  # a file in the data directory
# The source of an issuer nobody configured: made from the host and port.
DERIVED_ISSUER = "made from the host and port"


_KINDS = {"int": "a whole number", "float": "a number", "bool": "true or false"}


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
            if isinstance(raw, bool):
                raise TypeError(raw)
            return float(raw)
        return str(raw)
    except (TypeError, ValueError) as exc:
        wanted = _KINDS.get(str(kind), str(kind))
        example = {"bool": "true, false, 1 or 0"}.get(str(kind), repr(getattr(Settings, name, "")))
        raise ConfigError(name, f"{raw!r} is not {wanted}", f"write {wanted}, e.g. {example}") from exc


def _line_of(text: str, dotted: str) -> int | None:
    """The line of a TOML file that sets `dotted` (`port`, `ratelimit.shedding.limit`): the key's
    own line, else the line of the nearest table or key above it; None when absent."""
    wanted = dotted.split(".")
    table: list[str] = []
    best: tuple[int, int] | None = None  # (how much of the name matched, line)
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("["):
            table = [part.strip().strip("\"'") for part in stripped.strip("[]").split(".")]
            path = table
        elif "=" in stripped and not stripped.startswith("#"):
            path = table + [part.strip().strip("\"'") for part in stripped.split("=", 1)[0].split(".")]
        else:
            continue
        if path == wanted[: len(path)] and (best is None or len(path) > best[0]):
            best = (len(path), number)
    return best[1] if best else None


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a TOML config file; an unknown key is an error naming the closest known setting."""
    data, _ = _read_config_file(path)
    return data


def _read_config_file(path: Path) -> tuple[dict[str, Any], str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError("--config", f"{path} does not exist", "pass an existing TOML file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("--config", f"{path} cannot be read ({exc})", "pass a readable UTF-8 TOML file") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("--config", f"{path} is not valid TOML ({exc})", "fix the TOML syntax") from exc
    refuse_unknown(data, _FIELDS, str, "remove it", source=lambda key: f"{path}:{_line_of(text, key) or 1}")
    return data, text


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


def _flag(name: str) -> str:
    """The option a CLI override of `name` came from, by Typer's naming (`data_dir`: `--data-dir`)."""
    return "--" + name.replace("_", "-")


def load_settings(
    *,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    flags: Mapping[str, str] | None = None,
    listening: bool = False,
    tls: bool = False,
) -> Settings:
    """Build Settings: defaults < config file < environment < explicit overrides (CLI flags).

    Every value's source is remembered (`Settings.sources`) and named by any `ConfigError`:
    the config file's `path:line`, the `BASTION_*` variable, or the option (`flags` maps an
    override to its option's name when it is not `--` plus the name with dashes).

    When no issuer is configured: a server that is `listening` uses `http://HOST:PORT`
    (`https://` with `tls`); any other command uses the issuer `serve` recorded in the data
    directory, unless a host or port is given.
    """
    environ = os.environ if environ is None else environ
    if config_file is None and environ.get("BASTION_CONFIG"):
        config_file = Path(environ["BASTION_CONFIG"])
    raw: dict[str, Any] = {}
    sources: dict[str, str] = {}
    text = ""
    if config_file is not None:
        data, text = _read_config_file(config_file)
        raw.update(data)
        sources.update({key: f"{config_file}:{_line_of(text, key) or 1}" for key in data})
    from_environment = read_environment(environ)
    raw.update(from_environment)
    sources.update({key: f"BASTION_{key.upper()}" for key in from_environment})
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    raw.update(given)
    sources.update({key: (flags or {}).get(key, _flag(key)) for key in given})
    values: dict[str, Any] = {}
    for name, value in raw.items():
        try:
            values[name] = _coerce(name, value)
        except ConfigError as exc:
            source = sources.get(name)
            if "." in exc.setting and source and source.startswith(f"{config_file}:"):
                source = f"{config_file}:{_line_of(text, exc.setting) or 1}"  # the table's own key
            raise exc.came_from(source) from None
    if not values.get("issuer"):
        _default_issuer(values, sources, listening=listening, tls=tls)
    return Settings(**values, sources=sources)


def _default_issuer(values: dict[str, Any], sources: dict[str, str], *, listening: bool, tls: bool) -> None:
    """The issuer when none is configured (see `load_settings`)."""
    data_dir = values.get("data_dir", Settings.data_dir)
    recorded = data_dir / _RECORDED_ISSUER
    if not listening and "host" not in values and "port" not in values and recorded.exists():
        values["issuer"] = recorded.read_text(encoding="utf-8").strip()
        sources["issuer"] = str(recorded)
        return
    host = str(values.get("host", Settings.host))
    try:
        port = int(values.get("port", Settings.port))
    except (TypeError, ValueError):
        return  # the port's own check names the problem
    shown = f"[{host}]" if ":" in host else host
    issuer = f"{'https' if tls else 'http'}://{shown}:{port}"
    if not tls and not is_loopback_host(host):
        raise ConfigError(
            "issuer",
            f"is not set, and the default made from the host, {issuer}, is not https:// on a public address",
            "set BASTION_ISSUER=https://YOUR.PUBLIC.HOST (the URL clients reach the server at, "
            "through the proxy when there is one)",
            source=sources.get("host", ""),
        )
    values["issuer"] = issuer
    sources["issuer"] = DERIVED_ISSUER


def recorded_issuer(data_dir: Path) -> str | None:
    """The issuer `serve` last recorded in `data_dir`, if any."""
    path = data_dir / _RECORDED_ISSUER
    return path.read_text(encoding="utf-8").strip() if path.exists() else None


def record_issuer(settings: Settings) -> None:
    """Remember the issuer in the data directory, so CLI commands on the same data know it
    (`load_settings` reads it when nothing else names the issuer)."""
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    (settings.data_dir / _RECORDED_ISSUER).write_text(settings.issuer + "\n", encoding="utf-8")
