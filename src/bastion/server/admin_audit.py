"""The audit query the admin API serves (`GET /admin/audit`): a page of the server's
hash-chained trail (`store.audit`), oldest first, after a sequence number, optionally of one
kind of event. Each event is the chained entry as stored, with its sequence number and hash, so
a caller can check a page against `bastion audit verify --db`.
"""

from __future__ import annotations

import json
from typing import Any

from bastion.store import Database
from bastion.store import audit as trail

MAX_PAGE = 500


async def page(database: Database, *, after: int, limit: int, event: str | None) -> dict[str, Any]:
    """Up to `limit` audit events with a sequence number above `after` (of kind `event`, if
    given), and the `next` cursor to ask for the following page (None at the end)."""
    rows = await trail.page(database, after, limit, event)
    events = [{"seq": row.seq, "hash": row.hash, **json.loads(row.entry)} for row in rows]
    return {"events": events, "next": rows[-1].seq if len(rows) == limit else None, "source": "database"}
