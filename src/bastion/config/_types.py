"""The values settings are made of, and how a wrong one is reported: by name, with the fix."""

from __future__ import annotations

import difflib
import ipaddress
from collections.abc import Callable, Collection, Iterable


class ConfigError(ValueError):
    """A setting is wrong; the message names it, where its value came from, and the fix.

    `source` is where the value was read: the environment variable (`BASTION_PORT`), the
    option (`--port`) or the config file's line (`bastion.toml:3`); `load_settings` fills it in
    for every setting, so a check needs only the setting's name. `str()` reads
    `SETTING (SOURCE): problem. Fix: fix`, the source left out when there is none.
    """

    def __init__(self, setting: str, problem: str, fix: str, *, source: str = "") -> None:
        super().__init__(setting, problem, fix)
        self.setting = setting
        self.problem = problem
        self.fix = fix
        self.source = source

    def __str__(self) -> str:
        where = f"{self.setting} ({self.source})" if self.source else self.setting
        return f"{where}: {self.problem}. Fix: {self.fix}"

    def came_from(self, source: str | None) -> ConfigError:
        """This error, naming `source` unless it already names one (the innermost knows best)."""
        if source and not self.source:
            self.source = source
        return self


class ConfigWarning(UserWarning):
    """A probable mistake in the environment (an unknown BASTION_* variable)."""


class Secret:
    """A secret value; its repr and str never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def closest(name: str, known: Iterable[str]) -> str:
    """The known name a misspelt one most likely meant ("" when none is close)."""
    match = difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
    return match[0] if match else ""


def refuse_unknown(
    keys: Iterable[object],
    known: Collection[str],
    name: Callable[[str], str],
    otherwise: str,
    *,
    source: Callable[[str], str] = lambda key: "",
) -> None:
    """Raise a ConfigError for the first key not `known`: `name(key)` (read at `source(key)`),
    "unknown setting" and, as the fix, the closest known name (a typo is the likeliest cause)
    or `otherwise`."""
    for key in keys:
        if key not in known:
            near = closest(str(key), known)
            fix = f"did you mean {near!r}?" if near else otherwise
            raise ConfigError(name(str(key)), "unknown setting", fix, source=source(str(key)))
