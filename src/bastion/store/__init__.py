"""Persistence: one module per table family, each the only address of its rows.

SQLite in the data directory by default, PostgreSQL when `BASTION_DATABASE_URL` says so. Times
are stored as integer unix seconds, identical on both databases. Anything that several server
processes must agree on (clients, keys, revocations, replay caches) lives here, never only in a
process.

Callers see records (frozen dataclasses named after their table, such as
`codes.AuthorizationCodeRow`) and the functions of the owning module; nothing outside this
package builds SQL. A unit of work that spans tables opens `transaction(database)` and passes it
to each module's functions, which take either a `Database` (one statement, autocommit) or an
open `Transaction`.
"""

from bastion.store._sql import Executor, Transaction, transaction
from bastion.store.database import Database, DatabaseUnavailable, MigrationFailed, MigrationRequired

__all__ = [
    "Database",
    "DatabaseUnavailable",
    "Executor",
    "MigrationFailed",
    "MigrationRequired",
    "Transaction",
    "transaction",
]
