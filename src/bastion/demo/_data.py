"""The demo's data: notes in tenants, held in memory, and the people it knows in development."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

__all__ = ["DEMO_USERS", "DemoUser", "Note", "NoteStore", "seed_notes"]


@dataclass(frozen=True, slots=True)
class DemoUser:
    """What the application itself knows about a person: tenant and extra roles."""

    tenant: str
    roles: frozenset[str] = frozenset()


# Seeded in development mode only, never in production data: alice and bob share a tenant,
# carol is its admin, dave lives in another tenant.
DEMO_USERS: Mapping[str, DemoUser] = {
    "alice": DemoUser("acme"),
    "bob": DemoUser("acme"),
    "carol": DemoUser("acme", frozenset({"admin"})),
    "dave": DemoUser("globex"),
}


@dataclass(frozen=True, slots=True)
class Note:
    """A note. `internal_score` is server-only data that no output model declares."""

    id: str
    tenant: str
    owner: str
    title: str
    body: str
    created_at: datetime
    updated_at: datetime
    internal_score: float = field(default=0.5)


def _now() -> datetime:
    return datetime.now(UTC)


class NoteStore:
    """Notes by id (thread-safe; the demo runs one process)."""

    def __init__(self) -> None:
        self._notes: dict[str, Note] = {}
        self._lock = threading.Lock()
        self._scores = itertools.cycle((0.1, 0.5, 0.9))

    def add(self, tenant: str, owner: str, title: str, body: str) -> Note:
        now = _now()
        note = Note(str(uuid.uuid4()), tenant, owner, title, body, now, now, next(self._scores))
        with self._lock:
            self._notes[note.id] = note
        return note

    def get(self, note_id: str) -> Note | None:
        return self._notes.get(note_id)

    def update(self, note: Note, *, title: str | None, body: str | None) -> Note:
        updated = replace(
            note,
            title=note.title if title is None else title,
            body=note.body if body is None else body,
            updated_at=_now(),
        )
        with self._lock:
            self._notes[note.id] = updated
        return updated

    def delete(self, note_id: str) -> None:
        with self._lock:
            self._notes.pop(note_id, None)

    def all(self) -> list[Note]:
        return list(self._notes.values())

    def delete_owned(self, tenant: str, owner: str) -> int:
        with self._lock:
            gone = [n.id for n in self._notes.values() if n.tenant == tenant and n.owner == owner]
            for note_id in gone:
                del self._notes[note_id]
        return len(gone)


def seed_notes(store: NoteStore, owners: Mapping[str, str] | None = None) -> None:
    """Two notes per demo user (development mode only).

    `owners` maps a demo name to the token subject that owns its notes (default: the name).
    """
    for name, user in DEMO_USERS.items():
        owner = (owners or {}).get(name, name)
        for i in (1, 2):
            store.add(user.tenant, owner, f"{name}'s note {i}", f"Private text {i} of {name}.")
