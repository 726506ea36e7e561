"""The values settings are made of, and how a wrong one is reported: by name, with the fix."""

from __future__ import annotations

import difflib
import ipaddress
from collections.abc import Callable, Collection, Iterable


class ConfigError(ValueError):
    """A setting is wrong; the message names it and says how to fix it."""

    def __init__(self, setting: str, problem: str, fix: str) -> None:
        super().__init__(f"{setting}: {problem}. Fix: {fix}")
        self.setting = setting


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


def refuse_unknown(keys: Iterable[object], known: Collection[str], name: Callable[[str], str], otherwise: str) -> None:
    """Raise a ConfigError for the first key not `known`: `name(key)`, "unknown setting" and, as
    the fix, the closest known name (a typo is the likeliest cause) or `otherwise`."""
    for key in keys:
        if key not in known:
            near = closest(str(key), known)
            raise ConfigError(name(str(key)), "unknown setting", f"did you mean {near!r}?" if near else otherwise)
