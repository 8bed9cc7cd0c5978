"""Helpers for store tests: a store on each engine, and files as older ketadose left them."""

from __future__ import annotations

import secrets
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ketadose.records import PatientRecord
from ketadose.store import CHAIN_TRIGGERS, TRIGGERS, V7_TRIGGERS

if TYPE_CHECKING:
    from tests.pg import Database

#: The clinicians' group role of a PostgreSQL store (ketadose.store_pg.GROUP_ROLE).
GROUP_ROLE = "ketadose_clinician"


def as_schema_6(conn: sqlite3.Connection) -> None:
    """Turn a version-7 store back into the version 6 it was (no clinicians, no signatures)."""
    for trigger in V7_TRIGGERS:
        conn.execute(f"DROP TRIGGER {trigger}")
    conn.execute("DELETE FROM store_meta WHERE key = 'signed_from'")
    conn.execute("DROP TABLE signatures")
    conn.execute("DROP TABLE clinicians")
    conn.execute("ALTER TABLE sessions DROP COLUMN cosign")
    for table in ("patients", "measurements", "scores", "session_readings"):
        conn.execute(f"ALTER TABLE {table} DROP COLUMN hash")
        conn.execute(f"ALTER TABLE {table} DROP COLUMN prev_hash")
    conn.execute("PRAGMA user_version = 6")


def as_schema_5(conn: sqlite3.Connection) -> None:
    """Turn a version-7 store back into the version 5 it was (no chain, no claims)."""
    as_schema_6(conn)
    for trigger in CHAIN_TRIGGERS:
        conn.execute(f"DROP TRIGGER {trigger}")
    conn.execute("ALTER TABLE audit DROP COLUMN claimed")
    for table in ("audit", "sessions"):
        conn.execute(f"ALTER TABLE {table} DROP COLUMN hash")
        conn.execute(f"ALTER TABLE {table} DROP COLUMN prev_hash")
    conn.execute("PRAGMA user_version = 5")


def add_old_patient(path: Path, patient: PatientRecord, at: datetime) -> None:
    """Add a patient as ketadose before schema 7 did: rows without a hash chain."""
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(
            "INSERT INTO patients (id, protocol, baseline, sex, created_at) VALUES (?, ?, ?, ?, ?)",
            (patient.id, patient.protocol, patient.baseline, patient.sex, at.isoformat()),
        )
        conn.execute(
            "INSERT INTO measurements (patient_id, at, weight_kg, height_cm) VALUES (?, ?, ?, ?)",
            (patient.id, at.isoformat(), patient.weight_kg, patient.height_cm),
        )


@dataclass
class StoreTarget:
    """A test's store on one engine (the ``store_target`` fixture), and who may act on it.

    Attributes:
        engine: ``sqlite`` or ``postgresql``.
        url: What ``--store`` takes: the file, or the owner's URL (no password in it).
        path: The SQLite file (None on PostgreSQL).
        database: The PostgreSQL database (None on SQLite).
        pgpass: The ``PGPASSFILE`` that holds every role's password (PostgreSQL).
    """

    engine: str
    url: str
    path: Path | None = None
    database: Database | None = None
    pgpass: Path | None = None

    @classmethod
    def file(cls, path: Path) -> StoreTarget:
        """An SQLite store at ``path`` (not made yet)."""
        return cls("sqlite", str(path), path=path)

    @classmethod
    def server(
        cls, database: Database, pgpass: Path, monkeypatch: pytest.MonkeyPatch
    ) -> StoreTarget:
        """A PostgreSQL store in ``database``, its owner's password in ``pgpass``."""
        with database.cluster.admin() as conn:
            if (
                conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (GROUP_ROLE,)).fetchone()
                is None
            ):
                # Cluster-wide and never dropped: each test's database takes its grants along.
                conn.execute(f"CREATE ROLE {GROUP_ROLE} NOLOGIN")
        target = cls("postgresql", database.url(), database=database, pgpass=pgpass)
        target._remember(database.owner, database.password)
        monkeypatch.setenv("PGPASSFILE", str(pgpass))
        return target

    @property
    def sqlite(self) -> bool:
        """Whether the store is an SQLite file."""
        return self.engine == "sqlite"

    def clinician(self, name: str) -> str:
        """The ``--store`` value for acting as ``name``.

        PostgreSQL: a login role ``name`` (made once, in the clinicians' group role, its
        password in the pgpass file), connecting as itself. SQLite: the same file, since the
        actor is the OS user there (the tests pass it to :meth:`Store.open` themselves).
        """
        if self.database is None:
            return self.url
        cluster = self.database.cluster
        if name not in cluster.roles:
            password = secrets.token_urlsafe(16)
            cluster.create_role(name, password)
            with cluster.admin() as conn:
                conn.execute(f'GRANT {GROUP_ROLE} TO "{name}"')
            self._remember(name, password)
        return self.database.url(name)

    def _remember(self, role: str, password: str) -> None:
        assert self.database is not None and self.pgpass is not None
        line = f"127.0.0.1:{self.database.cluster.port}:{self.database.name}:{role}:{password}\n"
        with self.pgpass.open("a", encoding="utf-8") as handle:
            handle.write(line)
        self.pgpass.chmod(0o600)  # libpq ignores a password file others may read

    def superuser(self) -> Any:
        """A psycopg connection to the store as the cluster's superuser (autocommit): for
        tampering as someone who owns the server would."""
        assert self.database is not None, "PostgreSQL only"
        return self.database.cluster.admin(self.database.name)


# --- raw access on either engine, as another program (or the server's owner) has it ----------


def _postgresql_sql(sql: str) -> str:
    """A statement written with SQLite's ``?`` values in psycopg's ``%s`` style."""
    return sql.replace("?", "%s")


def raw_sql(
    target: StoreTarget, sql: str, params: tuple[Any, ...] = (), *, as_anyone: bool = False
) -> list[tuple[Any, ...]]:
    """Run one statement outside ketadose, its triggers and constraints all in force.

    SQLite: a plain sqlite3 connection to the file (autocommit, foreign keys on), as any
    other program has. PostgreSQL: the cluster's superuser (autocommit), as the server's
    owner has. ``sql`` takes ``?`` for each value on both. Returns the rows (empty for none);
    a refusal is the driver's own error (:func:`integrity_error`).

    ``as_anyone``: the row may say someone else acted. On SQLite it always may (the file's
    owner is its one user); on PostgreSQL only with the author triggers off, which the
    superuser alone can do (``session_replication_role = replica``, every trigger off).
    """
    if as_anyone and not target.sqlite:
        with target.superuser() as conn, conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")
            cursor = conn.execute(_postgresql_sql(sql), params or None)
            return [tuple(row) for row in cursor.fetchall()] if cursor.description else []
    if target.sqlite:
        assert target.path is not None
        with closing(sqlite3.connect(target.path, isolation_level=None)) as conn:
            conn.execute("PRAGMA foreign_keys = ON")
            cursor = conn.execute(sql, params)
            return [tuple(row) for row in cursor.fetchall()]
    with target.superuser() as conn:
        cursor = conn.execute(_postgresql_sql(sql), params or None)
        return [tuple(row) for row in cursor.fetchall()] if cursor.description else []


def tamper(target: StoreTarget, *statements: str) -> None:
    """Run statements with the store's triggers (and foreign keys) off, as a hostile user can.

    SQLite: whoever may write the file drops every trigger (and switches foreign keys and
    CHECK constraints off), then edits. PostgreSQL: the server's owner (the superuser) sets
    ``session_replication_role = replica``, which fires no ordinary trigger (nor the foreign
    keys' own) for that session alone: the schema is left as it was, so only the chain shows
    the edit. CHECK constraints stay: what a column's type and CHECK refuse cannot be stored.
    """
    if target.sqlite:
        assert target.path is not None
        with closing(sqlite3.connect(target.path, isolation_level=None)) as conn:
            conn.execute("PRAGMA ignore_check_constraints = ON")
            conn.execute("PRAGMA foreign_keys = OFF")
            for trigger in TRIGGERS:
                conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
            for statement in statements:
                conn.execute(statement)
        return
    with target.superuser() as conn, conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        for statement in statements:
            conn.execute(statement)


def _pg_trigger_table(name: str) -> str:
    from ketadose import store_pg

    (table,) = {t.table for t in store_pg.TRIGGERS if t.name == name}
    return table


def drop_trigger(target: StoreTarget, name: str) -> None:
    """Drop one of the store's triggers, as whoever owns the file or the server can."""
    if target.sqlite:
        raw_sql(target, f"DROP TRIGGER {name}")
    else:
        raw_sql(target, f"DROP TRIGGER {name} ON {_pg_trigger_table(name)}")


def disable_trigger(target: StoreTarget, name: str) -> None:
    """Keep a trigger but stop it firing (PostgreSQL's ``ALTER TABLE ... DISABLE TRIGGER``)."""
    assert not target.sqlite, "SQLite cannot disable a trigger: only drop it"
    raw_sql(target, f"ALTER TABLE {_pg_trigger_table(name)} DISABLE TRIGGER {name}")


def integrity_error(target: StoreTarget) -> type[Exception]:
    """What the engine's driver raises when a trigger or constraint refuses a statement.

    (A trigger of the store raises SQLSTATE 23000 on PostgreSQL, an integrity constraint
    violation, as SQLite's ``RAISE(ABORT)`` is an IntegrityError.)
    """
    if target.sqlite:
        return sqlite3.IntegrityError
    import psycopg

    return psycopg.errors.IntegrityError


def privilege_error() -> type[Exception]:
    """What psycopg raises for ``permission denied`` (SQLSTATE 42501)."""
    import psycopg

    return psycopg.errors.InsufficientPrivilege


def clinician_connection(target: StoreTarget, name: str) -> Any:
    """A psycopg connection (autocommit) as the clinician ``name``'s own login role, over TCP
    with its password from the test's pgpass file, as a clinician at a workstation has."""
    import psycopg

    conn = psycopg.connect(target.clinician(name), connect_timeout=10)
    conn.autocommit = True
    return conn


def raw_rows(target: StoreTarget, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """:func:`raw_sql`'s rows as dicts by column name (a SELECT)."""
    if target.sqlite:
        assert target.path is not None
        with closing(sqlite3.connect(target.path, isolation_level=None)) as conn:
            cursor = conn.execute(sql, params)
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    with target.superuser() as conn:
        cursor = conn.execute(_postgresql_sql(sql), params or None)
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


#: A test of the store suite on one engine alone (it overrides the ``engine`` fixture's
#: parameters): what only PostgreSQL has (roles, privileges, disabled triggers), or only SQLite.
ON_POSTGRESQL = pytest.mark.parametrize(
    "engine", [pytest.param("postgresql", marks=pytest.mark.postgresql)]
)
ON_SQLITE = pytest.mark.parametrize("engine", ["sqlite"])


def inject_failure(target: StoreTarget, table: str) -> None:
    """Fault injection: from now on every INSERT into ``table`` fails with 'injected failure'."""
    if target.sqlite:
        raw_sql(
            target,
            f"CREATE TRIGGER injected BEFORE INSERT ON {table}"
            " BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
        )
        return
    raw_sql(
        target,
        "CREATE FUNCTION injected() RETURNS trigger LANGUAGE plpgsql"
        " AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$",
    )
    raw_sql(
        target,
        f"CREATE TRIGGER injected BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION injected()",
    )


def checks_off(target: StoreTarget, table: str) -> list[str]:
    """The statements that let a hand edit past ``table``'s CHECK constraints, for
    :func:`tamper`: none on SQLite (it switches them off itself); on PostgreSQL each CHECK
    constraint of the table dropped, as the server's owner may."""
    if target.sqlite:
        return []
    names = raw_sql(
        target,
        "SELECT conname FROM pg_catalog.pg_constraint"
        " WHERE conrelid = ?::regclass AND contype = 'c' ORDER BY conname",
        (table,),
    )
    return [f"ALTER TABLE {table} DROP CONSTRAINT {name}" for (name,) in names]


def trigger_names(target: StoreTarget) -> tuple[str, ...]:
    """The triggers of the store on the target's engine, as ``missing_triggers`` names them."""
    if target.sqlite:
        return TRIGGERS
    from ketadose import store_pg

    return tuple(trigger.name for trigger in store_pg.TRIGGERS)


def triggers_off(target: StoreTarget, *statements: str) -> None:
    """Every trigger of the store put out of action for good, then the statements run.

    SQLite: dropped (:func:`tamper`). PostgreSQL: disabled, table by table (``ALTER TABLE ...
    DISABLE TRIGGER USER``, by the server's owner), so each is left in place not firing.
    """
    if target.sqlite:
        tamper(target, *statements)
        return
    from ketadose import store_pg

    with target.superuser() as conn, conn.transaction():
        for table in sorted({trigger.table for trigger in store_pg.TRIGGERS}):
            conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        for statement in statements:
            conn.execute(statement)


def acting_user(target: StoreTarget) -> str:
    """Who the command line acts as on the store as the test opens it: the OS user on SQLite,
    the store's owner (the role its URL names) on PostgreSQL."""
    if target.database is None:
        from ketadose.cli.env import os_user

        return os_user()
    return target.database.owner
