"""The record store's schema steps, as Alembic revisions that run on SQLite and PostgreSQL.

Each revision's id is the schema version it makes (``0007`` makes version 7), so
:data:`ketadose.store.SCHEMA_VERSION` and Alembic's head name the same thing. On SQLite the
version also stays in ``PRAGMA user_version``, which an older ketadose reads to refuse a newer
store; on PostgreSQL it is Alembic's ``alembic_version`` alone.

Revision 0007 is the baseline: on PostgreSQL it creates the whole schema of version 7
(:mod:`ketadose.store_pg`); on SQLite it runs the steps an SQLite store has grown through
since version 1 (:data:`ketadose.store.MIGRATIONS`), from the file's own version, so an old
file is brought up as before (backed up first, by the store). Later revisions are written
with Alembic's operations, in batch mode on SQLite (``render_as_batch``: a table SQLite
cannot ``ALTER`` is copied and swapped in the same transaction). A copied table loses its
triggers and expression indexes: a revision that makes SQLite copy one makes them again from
:data:`ketadose.store_schema.TRIGGERS` and :data:`~ketadose.store_schema.INDEXES` (``store check``
reports any that is missing). Adding a column is done in place and needs none of that.

The store runs them in its own write transaction (:meth:`ketadose.store.Store._migrate`),
so a migration commits whole or not at all; Alembic is imported only when one runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ketadose.store_schema import MigrationContext
    from ketadose.store_sql import Database

#: The first schema version that is an Alembic revision (the baseline, ``0007``).
BASELINE = 7
#: The Alembic script directory (``env.py`` for the ``alembic`` command, ``versions/``).
SCRIPTS = Path(__file__).parent


def upgrade(
    database: Database, context: MigrationContext, version: int, scripts: Path = SCRIPTS
) -> None:
    """Bring the store from schema ``version`` to the head revision, in the caller's transaction.

    The revisions read ``database`` (the store's connection), ``context`` (the path, the
    zone and the notices) and ``version`` from the Alembic config's attributes. ``scripts``:
    another script directory (a test's, with a revision of its own past the head).
    """
    from alembic.config import Config
    from alembic.runtime.environment import EnvironmentContext
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(scripts))
    config.attributes.update(database=database, context=context, version=version)
    script = ScriptDirectory.from_config(config)

    def steps(heads: Any, _context: Any) -> Any:
        return script._upgrade_revs("head", heads)

    with EnvironmentContext(config, script, fn=steps, destination_rev="head") as environment:
        # transactional_ddl with no transaction per migration: Alembic opens none of its
        # own, so every step and its version stamp fall in the store's one transaction.
        environment.configure(
            connection=database.connection,
            render_as_batch=True,
            transactional_ddl=True,
            transaction_per_migration=False,
        )
        if database.sqlite:
            # The file's header is its version (what every ketadose reads, and what a test
            # or an older ketadose may have set): Alembic starts from there.
            known = f"{version:04d}" if version >= BASELINE else "base"
            environment.get_context().stamp(script, known)
        environment.run_migrations()


def head(scripts: Path = SCRIPTS) -> str:
    """The head revision's id: the schema version this ketadose writes, as ``0007``."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(scripts))
    found = ScriptDirectory.from_config(config).get_current_head()
    assert found is not None, "the script directory has revisions"
    return found


def attributes() -> dict[str, Any]:
    """What :func:`upgrade` gave the running revision (for the revision modules)."""
    from alembic import op

    return op.get_context().config.attributes  # type: ignore[union-attr]
