"""Who is calling: a verified access token or an API key, reduced to what policy needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from bastion.protocol.rfc9068 import AccessToken

__all__ = ["AccessToken", "Principal"]


Kind = Literal["user", "client", "api_key"]


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller.

    `kind` is "user" for a token issued to a person, "client" for a client-credentials token
    (RFC 9068 §2.2: there `sub` is the client's own identifier) and "api_key" for a system
    calling with an API key, which never stands for a user.
    """

    kind: Kind
    subject: str
    scopes: frozenset[str]
    roles: frozenset[str] = frozenset()
    issuer: str | None = None
    client_id: str | None = None
    api_key_id: str | None = None
    token: AccessToken | None = field(default=None, repr=False, compare=False)

    @property
    def actor(self) -> str:
        """A stable name for the audit trail: issuer-qualified for tokens (RFC 9068 §6)."""
        if self.kind == "api_key":
            return f"apikey:{self.api_key_id}"
        return f"{self.kind}:{self.subject}"

    @classmethod
    def from_token(cls, token: AccessToken) -> Principal:
        """A principal for a validated access token."""
        kind: Kind = "client" if token.subject == token.client_id else "user"
        return cls(
            kind=kind,
            subject=token.subject,
            scopes=token.scopes,
            roles=token.roles,
            issuer=token.issuer,
            client_id=token.client_id,
            token=token,
        )
