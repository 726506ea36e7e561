"""Persistence: SQLAlchemy models, Alembic migrations and repositories.

SQLite in the data directory by default, PostgreSQL when `BASTION_DATABASE_URL` says so. Times
are stored as integer unix seconds, identical on both databases. Anything that several server
processes must agree on (clients, keys, revocations, replay caches) lives here, never only in a
process.
"""

from bastion.store.database import Database, DatabaseUnavailable, MigrationRequired
from bastion.store.models import (
    Base,
    ClientRow,
    ClientSecretRow,
    RevokedTokenRow,
    SigningKeyRow,
    UsedAssertionRow,
)

__all__ = [
    "Base",
    "ClientRow",
    "ClientSecretRow",
    "Database",
    "DatabaseUnavailable",
    "MigrationRequired",
    "RevokedTokenRow",
    "SigningKeyRow",
    "UsedAssertionRow",
]
