"""Alembic revisions of the record store, one per schema version (see ketadose.migrations)."""
