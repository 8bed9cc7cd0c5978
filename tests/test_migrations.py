"""Schema changes are Alembic revisions that run on both engines, in the store's own transaction."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ketadose import migrations, store_pg
from ketadose.errors import StoreError
from ketadose.store import SCHEMA_VERSION, Store
from ketadose.store_schema import _TRIGGER_SQL, MigrationContext
from ketadose.store_sql import connect
from ketadose.store_url import parse
from tests.stores import StoreTarget
from tests.test_store import entry, patient, session_for

#: A revision past the head, as the next schema change would be written: a column added to a
#: chained table in batch mode (done in place on SQLite, no copy), values left null.
NEXT = '''
"""Schema version 8 (a test's): the chair a session was given in."""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("chair", sa.Text(), nullable=True))
'''


def test_the_head_revision_is_the_schema_version() -> None:
    assert migrations.head() == f"{SCHEMA_VERSION:04d}"


def test_a_later_revision_runs_on_either_engine(store_target: StoreTarget, tmp_path: Path) -> None:
    first = patient()
    with Store.open(store_target.url, actor="nurse_a") as store:
        store.add_patient(first, at=first.created_at)  # type: ignore[arg-type]
        store.record_session_with_audit(session_for(1), entry())
    scripts = tmp_path / "scripts"
    shutil.copytree(migrations.SCRIPTS, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "0008_chair.py").write_text(NEXT, encoding="utf-8")
    assert migrations.head(scripts) == "0008"

    database = connect(parse(store_target.url), read_only=False)
    context = MigrationContext(store_target.url, None)
    try:
        database.begin_write()
        migrations.upgrade(database, context, SCHEMA_VERSION, scripts)
        if database.sqlite:
            database.script("PRAGMA user_version = 8")  # as the store stamps a file
        database.script("COMMIT")
        (version,) = database.execute("SELECT version_num FROM alembic_version").one()
        columns = list(database.execute("SELECT * FROM sessions LIMIT 0").keys())
        if database.sqlite:
            kept = {
                name: " ".join(str(sql).split())
                for name, sql in database.execute(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
                )
            }
            missing = [name for name, sql in _TRIGGER_SQL.items() if kept.get(name) != sql]
        else:
            missing = store_pg.missing_triggers(database.connection)
    finally:
        database.close()
    assert version == "0008"
    assert columns[-1] == "chair"
    assert missing == []  # the chain's triggers are as they were
    # And a ketadose that knows only version 7 refuses the store, untouched.
    with pytest.raises(StoreError, match="newer than the version 7"):
        Store.open(store_target.url, actor="nurse_a")
