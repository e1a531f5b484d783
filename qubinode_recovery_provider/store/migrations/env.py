"""Alembic environment of the ledger.

Run programmatically by :func:`qubinode_recovery_provider.store.migrate.upgrade`, which passes an open
connection in ``config.attributes["connection"]`` (already inside a transaction that holds the
migration lock). Offline mode (``--sql``) renders SQL for the URL in ``sqlalchemy.url``.
"""

from __future__ import annotations

from alembic import context

from qubinode_recovery_provider.store.migrate import VERSION_TABLE
from qubinode_recovery_provider.store.schema import metadata


def run_offline() -> None:
    """Render the migration SQL without a database."""
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        version_table=VERSION_TABLE,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Migrate through the connection handed over by the caller."""
    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
