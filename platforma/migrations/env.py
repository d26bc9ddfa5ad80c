"""Alembic environment: the engine comes from the instance's runtime, never from alembic.ini."""
from __future__ import annotations

from alembic import context

from platforma.models import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `platforma db upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,  # SQLite can alter tables only by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
