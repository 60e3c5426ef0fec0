"""Alembic environment: runs on the connection handed over by Store.upgrade()."""

from __future__ import annotations

from alembic import context

from pressreview.store.schema import metadata

# Tables that other software keeps in our database (APScheduler's job store):
# never created, changed or dropped by our migrations.
FOREIGN_TABLES = {"apscheduler_jobs"}


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    table = getattr(obj, "table", None)
    table_name = table.name if table is not None else name
    return table_name not in FOREIGN_TABLES


connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - pressreview always passes a connection
    raise RuntimeError("run migrations with `pressreview db upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_object=include_object,
)
with context.begin_transaction():
    context.run_migrations()
