"""Bastion: an open API-security system.

An OAuth 2 / OpenID Connect authorization server (`bastion.server`), a resource-server guard
(`bastion.guard`), rate limiting and load shedding (`bastion.ratelimit`) and threat modeling
(`bastion.threatmodel`).
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
