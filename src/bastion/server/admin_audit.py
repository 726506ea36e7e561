"""The audit query the admin API serves (`GET /admin/audit`), in one function to point at the
server's audit table.

On this branch the server's security events go to stderr only (`bastion.events.audit`): there
is no table of them to query yet, so a page is empty and says where the events are
(`source: "stderr"`). When the database trail exists, `page` reads it (events after a sequence
number, oldest first, optionally of one kind) and nothing else changes.
"""

from __future__ import annotations

from typing import Any

from bastion.store import Database

MAX_PAGE = 500


async def page(database: Database, *, after: int, limit: int, event: str | None) -> dict[str, Any]:
    """Up to `limit` audit events with a sequence number above `after` (of kind `event`, if
    given), and the `next` cursor to ask for the following page (None at the end)."""
    del database, after, limit, event  # nothing stored to read yet: see the module docstring
    return {"events": [], "next": None, "source": "stderr"}
