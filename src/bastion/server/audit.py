"""Transitional: the security-event writer moved to `bastion.events` (removed once every page
module imports it from there)."""

from bastion.events import audit

__all__ = ["audit"]
