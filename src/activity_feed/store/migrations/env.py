"""Alembic environment. `activity_feed.store.migrate` hands it an open connection; nothing connects here."""

from __future__ import annotations

from alembic import context

from activity_feed.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `activity-feed db upgrade`, not with the alembic command")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
