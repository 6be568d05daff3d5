"""Alembic environment: runs on the connection `handover.adapters.storage.migrate` gives."""

from alembic import context

from handover.adapters.storage.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
