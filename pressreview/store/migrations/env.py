"""Alembic environment: runs on the connection handed over by Store.upgrade()."""

from __future__ import annotations

from alembic import context

from pressreview.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - pressreview always passes a connection
    raise RuntimeError("run migrations with `pressreview db upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
