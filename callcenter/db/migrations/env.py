"""Alembic environment: run with the connection handed over by ``migrate()``."""

from __future__ import annotations

from alembic import context

from callcenter.db.models import all_metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through callcenter.db.engine.migrate()")

context.configure(
    connection=connection,
    target_metadata=all_metadata(),
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
