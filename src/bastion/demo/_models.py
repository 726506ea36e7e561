"""Input and output models of the demo: what a caller may set, and what each role may see."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from bastion.guard.models import InputModel, OutputModel

__all__ = ["MeOut", "NoteAdminOut", "NoteIn", "NoteOut", "NotePatch", "PurgeOut", "StatsOut"]


class NoteIn(InputModel):
    """A new note: only title and body; id, owner, tenant and times are the server's."""

    title: str = Field(min_length=1, max_length=200)
    body: str = Field(default="", max_length=10_000)


class NotePatch(InputModel):
    """A change to a note: title and/or body."""

    title: str | None = Field(default=None, min_length=1, max_length=200)
    body: str | None = Field(default=None, max_length=10_000)


class NoteOut(OutputModel):
    """What a member sees of a note."""

    id: str
    title: str
    body: str
    created_at: datetime
    updated_at: datetime


class NoteAdminOut(NoteOut):
    """What a tenant admin sees: also who owns it."""

    owner: str
    tenant: str


class MeOut(OutputModel):
    """Who the caller is, as the API sees it."""

    kind: str
    subject: str
    tenant: str | None
    roles: list[str]
    scopes: list[str]


class PurgeOut(OutputModel):
    """How many notes an admin operation removed."""

    deleted: int


class StatsOut(OutputModel):
    """Counts for an integration (API key) caller: no note contents."""

    notes: int
    tenants: int
