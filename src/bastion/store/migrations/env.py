"""Alembic environment: migrations run on a connection the caller provides."""

from __future__ import annotations

from alembic import context

from bastion.store.models import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `bastion db upgrade` (bastion.store.Database.upgrade)")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
