"""Schema version 7: patients, sessions, scores, the chained audit log, clinicians, signatures.

Revision ID: 0007
Revises: (the baseline)

On PostgreSQL: the whole schema as :mod:`ketadose.store_pg` defines it, then the grants of
its clinicians' role when that role exists (``store check`` says when it does not). On
SQLite: the steps from the file's own version up to 7 (:data:`ketadose.store.MIGRATIONS`),
each as it has always run.
"""

from alembic import op

from ketadose.migrations import attributes

revision = "0007"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Make schema version 7 (see the module docstring)."""
    given = attributes()
    database, context, version = given["database"], given["context"], given["version"]
    if op.get_bind().dialect.name == "sqlite":
        from ketadose.store_schema import MIGRATIONS

        for step in MIGRATIONS[version:7]:
            step(database, context)
        return
    from ketadose import store_pg

    for statement in store_pg.SCHEMA:
        database.script(statement)
    if not store_pg.grant(database.connection):
        context.notices.append(
            f"store {context.path}: no role {store_pg.GROUP_ROLE} to grant the clinicians' "
            f"rights to; create it (CREATE ROLE {store_pg.GROUP_ROLE} NOLOGIN) and run "
            "ketadose store migrate again"
        )
