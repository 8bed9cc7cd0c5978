"""Alembic's entry for the ``alembic`` command (``alembic -c ... revision`` when writing a step).

ketadose itself never runs this file: :func:`ketadose.migrations.upgrade` drives the
revisions inside the store's own transaction. Pointed at a store (``sqlalchemy.url``), this
runs them as Alembic usually does, in batch mode for SQLite.
"""

from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config
settings = config.get_section(config.config_ini_section) or {}
connectable = engine_from_config(settings, prefix="sqlalchemy.", poolclass=pool.NullPool)
with connectable.connect() as connection:
    context.configure(connection=connection, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
