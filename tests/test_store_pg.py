"""The store's PostgreSQL schema (ketadose.store_pg) on a real server, beside the SQLite store.

Every test that takes a fixture of tests/pg.py runs on a throwaway PostgreSQL cluster; the schema
is made by the database's owner, the clinicians are members of a group role of their own.
"""

from __future__ import annotations

import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from psycopg import sql

from ketadose import store as sqlite_store
from ketadose import store_pg, store_rows, store_schema
from ketadose.records import Reading
from ketadose.store import Store
from ketadose.store_chain import GENESIS, link
from tests.pg import Database
from tests.test_store import T0, WEIGHED, entry, patient, phq9, session_for

# --- helpers ----------------------------------------------------------------------------------


def engine(connect: Callable[[], psycopg.Connection[Any]]) -> sa.Engine:
    return sa.create_engine("postgresql+psycopg://", creator=connect, poolclass=sa.NullPool)


@dataclass
class PgStore:
    """A database with the store's schema: its owner's engine and the superuser's connection."""

    db: Database
    owner: sa.Engine

    def admin(self, statement: str) -> None:
        with self.db.cluster.admin(self.db.name) as conn:
            conn.execute(statement.encode())


@pytest.fixture
def pg_store(pg_database: Database) -> Iterator[PgStore]:
    owner = engine(lambda: pg_database.connect())
    with owner.begin() as conn:
        for statement in store_pg.SCHEMA:
            conn.exec_driver_sql(statement)
    yield PgStore(pg_database, owner)
    owner.dispose()


def rows(
    conn: sa.Connection, statement: str, params: tuple[Any, ...] = ()
) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in conn.exec_driver_sql(statement, params)]


def head(conn: sa.Connection, table: str) -> str:
    order = store_pg.CHAIN_ORDER[table]
    found = rows(conn, f"SELECT hash FROM {table} ORDER BY {order} DESC LIMIT 1")
    return GENESIS if not found else str(found[0][0])


def quoted(name: str) -> str:
    return '"user"' if name == "user" else name


def append(
    conn: sa.Connection,
    table: str,
    values: dict[str, Any],
    *,
    prev: str | None = None,
    digest: str | None = None,
) -> int | str:
    """Insert a row at the head of its chain as the store does; returns its order value.

    Who the row says acted (``dr.x`` in the values below) is who is connected, as the store
    writes it and as the server requires.
    """
    who = rows(conn, "SELECT session_user")[0][0]
    values = {k: who if v == "dr.x" else v for k, v in values.items()}
    previous = head(conn, table) if prev is None else prev
    events: list[list[Any]] | None = [] if table == "sessions" else None
    content = store_schema._content(table, values, None, events)
    names = ", ".join(quoted(name) for name in values)
    marks = ", ".join(["%s"] * (len(values) + 2))
    order = store_pg.CHAIN_ORDER[table]
    result = rows(
        conn,
        f"INSERT INTO {table} ({names}, prev_hash, hash) VALUES ({marks}) RETURNING {order}",
        (*values.values(), previous, link(previous, content) if digest is None else digest),
    )
    value: int | str = result[0][0]
    return value


def audit_values(n: int = 0) -> dict[str, Any]:
    return {
        "at": (T0 + timedelta(minutes=n)).isoformat(),
        "user": "dr.x",
        "command": "dose",
        "patient_id": "p-001",
        "inputs_json": "{}",
        "findings_json": "[]",
        "status": "ok",
        "override_reason": None,
        "library_sha256": "ab" * 32,
        "claimed": None,
    }


PATIENT = {
    "id": "p-001",
    "protocol": "iv-depression-0.5",
    "baseline": 21.0,
    "sex": "female",
    "created_at": T0.isoformat(),
}


def session_values(n: int = 0) -> dict[str, Any]:
    return {
        "patient_id": "p-001",
        "at": (T0 + timedelta(hours=n)).isoformat(),
        "protocol": "iv-depression-0.5",
        "dose_mg": 40.0,
        "phases_json": "[]",
        "notes": f"session {n}",
    }


def score_values(n: int = 0) -> dict[str, Any]:
    return {
        "patient_id": "p-001",
        "at": (T0 + timedelta(hours=n)).isoformat(),
        "instrument": "phq9",
        "items_json": "[2,2,2,2,1,1,2,1,1]",
        "total": 14,
    }


def refused(conn: sa.Connection, statement: str, params: tuple[Any, ...] = ()) -> str:
    """The message of the IntegrityError a statement raises (inside a savepoint)."""
    with pytest.raises(sa.exc.IntegrityError) as raised, conn.begin_nested():
        conn.exec_driver_sql(statement, params)
    error = raised.value.orig
    assert isinstance(error, psycopg.errors.IntegrityError)
    assert error.sqlstate == store_pg.ERRCODE
    return str(error.diag.message_primary)


def denied(conn: sa.Connection, statement: str) -> str:
    """The message of the privilege error a statement raises (inside a savepoint)."""
    with pytest.raises(sa.exc.ProgrammingError) as raised, conn.begin_nested():
        conn.exec_driver_sql(statement)
    assert isinstance(raised.value.orig, psycopg.errors.InsufficientPrivilege)
    return str(raised.value.orig.diag.message_primary)


# --- the statements themselves (no server) ---------------------------------------------------


def test_no_statement_holds_a_placeholder_or_a_bind_name() -> None:
    # Each runs alike through psycopg with parameters (%) and through sqlalchemy.text() (:name).
    for statement in (*store_pg.SCHEMA, *store_pg.grants("clinic")):
        assert "%" not in statement
        assert re.search(r"(?<![:\w\\]):\w", statement) is None, statement


def test_the_sqlite_trigger_names_in_the_stores_order() -> None:
    assert [t.name for t in store_pg.SQLITE_TRIGGERS] == list(sqlite_store.TRIGGERS)
    truncated = {t.table for t in store_pg.TRUNCATE_TRIGGERS}
    assert truncated == {
        "audit",
        "scores",
        "sessions",
        "clinicians",
        "signatures",
        "patients",
        "measurements",
        "session_readings",
    }


def test_each_trigger_raises_sqlites_text() -> None:
    for trigger in store_pg.SQLITE_TRIGGERS:
        made = store_schema._TRIGGER_SQL[trigger.name]
        said = re.findall(r"RAISE\(ABORT, '([^']*)'\)", made)
        source = store_pg.FUNCTIONS[trigger.function].source
        if trigger.function == "ketadose_chain":
            assert said == [f"the {trigger.table} chain only grows at its head: insert refused"]
            assert "'the ' || TG_TABLE_NAME || ' chain only grows at its head: insert refused'" in (
                source
            )
        elif trigger.function == "ketadose_refuse":
            assert list(trigger.arguments) == said
        else:
            assert f"MESSAGE = '{said[0]}'" in source


# --- the schema on the server ----------------------------------------------------------------


def test_the_schema_creates_on_an_empty_database(pg_store: PgStore) -> None:
    with pg_store.owner.connect() as conn:
        tables = rows(
            conn,
            "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
        )
        indexes = {
            name
            for (name,) in rows(
                conn, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"
            )
        }
        meta = rows(conn, "SELECT key, value FROM store_meta ORDER BY key")
        assert store_pg.missing_triggers(conn) == []
        assert store_pg.session_user(conn) == pg_store.db.owner
        assert store_pg.tail(conn, "audit") is None
    assert tables == sorted((name, pg_store.db.owner) for name in store_pg.TABLES)
    assert set(store_pg.INDEXES) <= indexes
    assert meta == [("application", "ketadose"), ("signed_from", "1")]


def test_the_schema_runs_through_sqlalchemy_text_too(pg_database: Database) -> None:
    made = engine(lambda: pg_database.connect())
    with made.begin() as conn:
        for statement in (*store_pg.SCHEMA, *store_pg.grants("pg_monitor")):
            conn.execute(sa.text(statement))
        assert store_pg.missing_triggers(conn) == []
        assert rows(conn, "SELECT julianday('2026-12-01T09:00:00+01:00')") == [
            (julianday("2026-12-01T09:00:00+01:00"),)
        ]
    made.dispose()


@pytest.fixture
def sqlite_v7(tmp_path: Path) -> Path:
    """A version-7 SQLite store with a row in every table, written by the store itself."""
    path = tmp_path / "s.sqlite3"
    with Store.open(path, actor="dr.x") as store:
        store.add_patient(patient(), at=T0)
        store.record_weight(
            "p-001", at=T0 + timedelta(minutes=1), weight_kg=82.5, height_cm=None, entry=WEIGHED
        )
        first = store.record_session_with_audit(session_for(1), entry())
        store.record_session_with_audit(session_for(2), entry())
        store.add_readings(
            first,
            [Reading(T0 + timedelta(minutes=5), 131.0, 85.0, 90.0, 97.0, 1, "continue", ())],
            entry(command="session reading"),
        )
        store.discharge(first, T0 + timedelta(hours=2), entry(command="session discharge"))
        score = store.record_score_with_audit(phq9(), entry(command="score"))
        store.acknowledge_score_with_audit(
            "p-001",
            score,
            by="dr.x",
            at=T0 + timedelta(hours=1),
            text="called the patient",
            entry=entry(command="score acknowledge"),
        )
        store.add_clinician("dr.x", "admin", entry(None, "clinician add"))
    return path


def sqlite_columns(path: Path) -> dict[str, list[str]]:
    with closing(sqlite3.connect(path)) as conn:
        names = [
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                " AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        return {
            name: [d[0] for d in conn.execute(f"SELECT * FROM {name} LIMIT 0").description]
            for name in names
        }


def test_the_same_tables_and_columns_as_sqlite(pg_store: PgStore, sqlite_v7: Path) -> None:
    # Alembic's version table is on both engines alike, made by Alembic, not by the schema.
    lite = {k: v for k, v in sqlite_columns(sqlite_v7).items() if k != "alembic_version"}
    with pg_store.owner.connect() as conn:
        pg = {
            table: list(conn.exec_driver_sql(f"SELECT * FROM {table} LIMIT 0").keys())
            for table in store_pg.TABLES
        }
    assert set(lite) == set(store_pg.TABLES) - {"chain_tail"}
    for table, columns in lite.items():
        extra = ["rowid"] if table == "patients" else []
        assert pg[table] == columns + extra, table
    with closing(sqlite3.connect(sqlite_v7)) as conn:
        lite_indexes = {
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            )
        }
    assert lite_indexes == set(store_pg.INDEXES)


#: The tables in an order their foreign keys allow, each in its chain's order.
COPY_ORDER = {
    "patients": "rowid",
    "measurements": "id",
    "sessions": "id",
    "session_adverse_events": "session_id, position",
    "session_readings": "id",
    "scores": "id",
    "audit": "id",
    "clinicians": "id",
    "signatures": "id",
}


def test_a_stores_rows_copied_read_back_the_same_and_hash_the_same(
    pg_store: PgStore, sqlite_v7: Path
) -> None:
    with closing(sqlite3.connect(sqlite_v7)) as lite:
        written = {
            table: (
                [d[0] for d in cursor.description],
                cursor.fetchall(),
            )
            for table, order in COPY_ORDER.items()
            for cursor in [lite.execute(f"SELECT * FROM {table} ORDER BY {order}")]
        }
    assert all(found for _, found in written.values())  # a row in every table
    with pg_store.owner.begin() as conn:
        # The owner's bulk copy, its triggers set aside (rows written by others, with ids of
        # their own, which a clinician's insert may not give): what comes back is compared.
        for table, (names, found) in written.items():
            columns = ", ".join(quoted(name) for name in names)
            marks = ", ".join(["%s"] * len(names))
            conn.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            for row in found:
                conn.exec_driver_sql(f"INSERT INTO {table} ({columns}) VALUES ({marks})", row)
            conn.exec_driver_sql(f"ALTER TABLE {table} ENABLE TRIGGER USER")
    with pg_store.owner.connect() as conn:
        for table, (_, found) in written.items():
            result = conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY {COPY_ORDER[table]}")
            keys = list(result.keys())
            back = [
                tuple(v for k, v in zip(keys, row, strict=True) if k != "rowid") for row in result
            ]
            assert back == found, table
            # Same values of the same Python types: 80.0 stays a float, 14 an int, text text.
            assert [[type(v) for v in row] for row in back] == [
                [type(v) for v in row] for row in found
            ]
        events = {
            key: [[event, grade] for _, event, grade in group]
            for key in {row[0] for row in written["session_adverse_events"][1]}
            for group in [
                rows(
                    conn,
                    "SELECT session_id, event, grade FROM session_adverse_events"
                    " WHERE session_id = %s ORDER BY position",
                    (key,),
                )
            ]
        }
        for table in store_pg.CHAIN_ORDER:
            result = conn.exec_driver_sql(f"SELECT * FROM {table}")
            for row in result.mappings():
                values = dict(row)
                given = events.get(values["id"], []) if table == "sessions" else None
                content = store_schema._content(table, values, None, given)
                assert link(values["prev_hash"], content) == values["hash"], table
        # The copy set the triggers aside, so chain_tail holds nothing of it.
        assert store_pg.tail(conn, "audit") is None
        # The store's own read of the patients' chain runs unchanged (PostgreSQL adds rowid).
        read = "SELECT rowid AS _order, * FROM patients ORDER BY rowid"
        on_pg = conn.exec_driver_sql(read)
        kept = [i for i, name in enumerate(on_pg.keys()) if name != "rowid"]
        with closing(sqlite3.connect(sqlite_v7)) as lite:
            assert [tuple(row[i] for i in kept) for row in on_pg] == lite.execute(read).fetchall()


# --- the triggers ------------------------------------------------------------------------------


def test_the_audit_log_grows_at_its_head_only(pg_store: PgStore) -> None:
    with pg_store.owner.begin() as conn:
        first = append(conn, "audit", audit_values(0))
        second = append(conn, "audit", audit_values(1))
        assert (first, second) == (1, 2)
        message = "the audit chain only grows at its head: insert refused"
        # Linked to a row that is not the last, or to nothing, or without a hash.
        assert refused_append(conn, "audit", audit_values(2), prev=GENESIS) == message
        assert refused_append(conn, "audit", audit_values(2), prev="f" * 64) == message
        names = ", ".join(quoted(n) for n in audit_values())
        marks = ", ".join(["%s"] * len(audit_values()))
        assert (
            refused(
                conn,
                f"INSERT INTO audit ({names}, prev_hash, hash) VALUES ({marks}, %s, NULL)",
                (*audit_values(2).values(), head(conn, "audit")),
            )
            == message
        )
        # Back-dated: the right link, but an id at or below the last one.
        assert (
            refused(
                conn,
                f"INSERT INTO audit (id, {names}, prev_hash, hash) VALUES (%s, {marks}, %s, %s)",
                (2, *audit_values(2).values(), head(conn, "audit"), "e" * 64),
            )
            == message
        )
        # The three refused inserts spent ids 3 to 5 (a sequence is not transactional); the
        # chain's tail, written in the transaction, only knows the rows that went in.
        assert store_pg.tail(conn, "audit") == 2
        assert append(conn, "audit", audit_values(2)) == 6
        assert rows(conn, "SELECT id FROM audit ORDER BY id") == [(1,), (2,), (6,)]
        assert store_pg.tail(conn, "audit") == 6
        # An id of its own, far ahead, at the head with the right link: refused, since one row
        # with the largest id would leave the identity sequence nowhere to go (review, issue 16).
        who = rows(conn, "SELECT session_user")[0][0]
        ahead = {**audit_values(3), "user": who}
        digest = link(head(conn, "audit"), store_schema._content("audit", ahead, None))
        assert refused(
            conn,
            f"INSERT INTO audit (id, {names}, prev_hash, hash) VALUES (%s, {marks}, %s, %s)",
            (100, *ahead.values(), head(conn, "audit"), digest),
        ) == ("the audit chain takes the ids it gives: an id of one's own past them refused")
        assert append(conn, "audit", audit_values(4)) == 7  # an explicit id spends none
        assert store_pg.tail(conn, "audit") == 7


def refused_append(conn: sa.Connection, table: str, values: dict[str, Any], prev: str) -> str:
    with pytest.raises(sa.exc.IntegrityError) as raised, conn.begin_nested():
        append(conn, table, values, prev=prev)
    return str(raised.value.orig.diag.message_primary)  # type: ignore[union-attr]


def test_the_audit_log_is_never_changed_removed_nor_replaced(pg_store: PgStore) -> None:
    with pg_store.owner.begin() as conn:
        append(conn, "audit", audit_values(0))
        assert (
            refused(conn, "UPDATE audit SET status = 'hard'")
            == "the audit log is append-only: UPDATE refused"
        )
        assert refused(conn, "DELETE FROM audit") == "the audit log is append-only: DELETE refused"
        assert (
            refused(conn, "TRUNCATE audit CASCADE")
            == "the audit log is append-only: TRUNCATE refused"
        )
        names = ", ".join(quoted(n) for n in audit_values())
        marks = ", ".join(["%s"] * len(audit_values()))
        assert (
            refused(
                conn,
                f"INSERT INTO audit (id, {names}, prev_hash, hash) VALUES (1, {marks}, %s, %s)"
                " ON CONFLICT (id) DO UPDATE SET status = 'hard'",
                (*audit_values(1).values(), head(conn, "audit"), "e" * 64),
            )
            # audit_chain fires first (PostgreSQL fires a table's triggers by name): back-dated.
            == "the audit chain only grows at its head: insert refused"
        )
        conn.exec_driver_sql("ALTER TABLE audit DISABLE TRIGGER audit_chain")
        assert (
            refused(
                conn,
                f"INSERT INTO audit (id, {names}, prev_hash, hash) VALUES (1, {marks}, %s, %s)"
                " ON CONFLICT (id) DO UPDATE SET status = 'hard'",
                (*audit_values(1).values(), head(conn, "audit"), "e" * 64),
            )
            == "the audit log is append-only: replacing an entry refused"
        )
        conn.exec_driver_sql("ALTER TABLE audit ENABLE TRIGGER audit_chain")
        assert rows(conn, "SELECT id, status FROM audit") == [(1, "ok")]


@pytest.mark.parametrize(
    ("table", "update", "delete"),
    [
        ("patients", "UPDATE patients SET sex = 'male'", "patients are append-only: {} refused"),
        (
            "measurements",
            "UPDATE measurements SET weight_kg = 90",
            "measurements are append-only: {} refused",
        ),
        (
            "session_readings",
            "UPDATE session_readings SET spo2 = 90",
            "session_readings are append-only: {} refused",
        ),
        (
            "clinicians",
            "UPDATE clinicians SET role = 'admin'",
            "clinicians are append-only: {} refused",
        ),
        (
            "signatures",
            "UPDATE signatures SET signer = 'x'",
            "signatures are append-only: {} refused",
        ),
        ("sessions", None, "a recorded session is kept: {} refused"),
        ("scores", None, "a recorded score is kept as answered: {} refused"),
    ],
)
def test_recorded_rows_are_never_removed(
    pg_store: PgStore, table: str, update: str | None, delete: str
) -> None:
    with pg_store.owner.begin() as conn:
        append(conn, "patients", PATIENT)
        session = append(conn, "sessions", session_values())
        audit = append(conn, "audit", audit_values())
        append(
            conn,
            "measurements",
            {"patient_id": "p-001", "at": T0.isoformat(), "weight_kg": 80.0, "height_cm": None},
        )
        append(conn, "scores", score_values())
        append(conn, "session_readings", {
            "session_id": session, "at": T0.isoformat(), "systolic": 120.0, "diastolic": 80.0,
            "heart_rate": 70.0, "spo2": 98.0, "sedation": 0, "answer": "continue", "findings_json": "[]",
        })  # fmt: skip
        append(
            conn,
            "clinicians",
            {"name": "dr.x", "role": "admin", "added_at": T0.isoformat(), "added_by": "dr.x"},
        )
        append(conn, "signatures", {
            "audit_id": audit, "session_id": session, "signer": "dr.x", "role": "admin",
            "meaning": "administered", "at": T0.isoformat(),
        })  # fmt: skip
        if update is not None:
            assert refused(conn, update) == delete.format("UPDATE")
        if table != "patients":  # a patient's DELETE would first meet its rows' foreign keys
            assert refused(conn, f"DELETE FROM {table}") == delete.format("DELETE")
        # CASCADE: the first table whose trigger fires names itself (each alone: below).
        assert refused(conn, f"TRUNCATE {table} CASCADE").endswith("TRUNCATE refused")
        assert rows(conn, f"SELECT count(*) FROM {table}") == [(1,)]


def test_truncate_alone_names_its_table(pg_store: PgStore) -> None:
    with pg_store.owner.begin() as conn:
        for trigger in store_pg.TRUNCATE_TRIGGERS:
            # Each table's own refusal, with the DELETE refusal's words.
            conn.exec_driver_sql(f"ALTER TABLE {trigger.table} DISABLE TRIGGER USER")
        for trigger in store_pg.TRUNCATE_TRIGGERS:
            conn.exec_driver_sql(f"ALTER TABLE {trigger.table} ENABLE TRIGGER {trigger.name}")
            assert refused(conn, f"TRUNCATE {trigger.table} CASCADE") == trigger.arguments[0]
            conn.exec_driver_sql(f"ALTER TABLE {trigger.table} DISABLE TRIGGER {trigger.name}")


def test_patients_chain_in_rowid_order(pg_store: PgStore) -> None:
    with pg_store.owner.begin() as conn:
        assert append(conn, "patients", PATIENT) == 1
        other = {**PATIENT, "id": "a-000"}  # an id before the first: the chain is by rowid
        message = "the patients chain only grows at its head: insert refused"
        assert refused_append(conn, "patients", other, prev=GENESIS) == message
        assert append(conn, "patients", other) == 3  # the refused insert spent rowid 2
        assert rows(conn, "SELECT id FROM patients ORDER BY rowid") == [("p-001",), ("a-000",)]
        assert (
            refused(conn, "UPDATE patients SET sex = NULL")
            == "patients are append-only: UPDATE refused"
        )


def test_a_session_is_discharged_once_and_not_before_it_began(pg_store: PgStore) -> None:
    message = "a recorded session is kept: only its discharge may be added"
    with pg_store.owner.begin() as conn:
        append(conn, "patients", PATIENT)
        first = append(conn, "sessions", session_values(0))
        before = (T0 - timedelta(minutes=1)).isoformat()
        # Written in another zone but the same instant as the start: not before it.
        same = T0.astimezone(timezone(timedelta(hours=-5))).isoformat()
        update = "UPDATE sessions SET discharged_at = %s WHERE id = %s"
        assert refused(conn, update, (before, first)) == message
        assert refused(conn, update, ("later", first)) == message
        assert refused(conn, update, ("2024-03-04T12:00:00", first)) == message  # naive
        assert refused(conn, update, (None, first)) == message
        assert (
            refused(
                conn,
                "UPDATE sessions SET discharged_at = %s, notes = 'edited' WHERE id = %s",
                ((T0 + timedelta(hours=2)).isoformat(), first),
            )
            == message
        )
        conn.exec_driver_sql(update, (same, first))
        assert refused(conn, update, ((T0 + timedelta(hours=3)).isoformat(), first)) == message
        assert rows(conn, "SELECT discharged_at, notes FROM sessions") == [(same, "session 0")]
        message_chain = "the sessions chain only grows at its head: insert refused"
        assert refused_append(conn, "sessions", session_values(1), prev=GENESIS) == message_chain


def test_a_score_is_acknowledged_once_and_keeps_its_links(pg_store: PgStore) -> None:
    message = "a recorded score is kept: only a first acknowledgement may be added"
    acknowledge = (
        "UPDATE scores SET acknowledged_by = session_user, acknowledged_at = %s,"
        " acknowledgement = %s WHERE id = %s"
    )
    with pg_store.owner.begin() as conn:
        append(conn, "patients", PATIENT)
        score = append(conn, "scores", score_values())
        assert refused(conn, "UPDATE scores SET total = 3") == message
        assert (
            refused(conn, "UPDATE scores SET hash = %s", ("f" * 64,))
            == "a recorded score keeps its place in the chain: UPDATE refused"
        )
        conn.exec_driver_sql(acknowledge, (T0.isoformat(), "called", score))
        assert refused(conn, acknowledge, (T0.isoformat(), "again", score)) == message
        assert (
            refused(conn, "DELETE FROM scores")
            == "a recorded score is kept as answered: DELETE refused"
        )
        assert rows(conn, "SELECT acknowledgement FROM scores") == [("called",)]


# --- julianday against SQLite's julianday ---------------------------------------------------

MS = 1 / 86_400_000  # one millisecond, in days


@pytest.fixture
def day(pg_store: PgStore) -> Iterator[Callable[[str], float | None]]:
    lite = sqlite3.connect(":memory:")
    with pg_store.owner.connect() as conn:

        def julianday(text: str) -> float | None:
            value = conn.exec_driver_sql("SELECT julianday(%s)", (text,)).scalar()
            return None if value is None else float(value)

        yield julianday
    lite.close()


def julianday(text: str) -> float | None:
    with closing(sqlite3.connect(":memory:")) as lite:
        value = lite.execute("SELECT julianday(?)", (text,)).fetchone()[0]
    return None if value is None else float(value)


offsets = st.integers(-14 * 60 + 1, 14 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))
aware_times = st.datetimes(timezones=st.one_of(offsets, st.timezones())).filter(
    lambda at: at.utcoffset() is not None
)
specs = st.sampled_from(["auto", "minutes", "seconds", "milliseconds", "microseconds"])


@given(aware_times, specs, st.sampled_from(["T", " "]))
def test_julianday_is_sqlites_julianday(
    day: Callable[[str], float | None], at: datetime, spec: str, sep: str
) -> None:
    text = at.isoformat(sep=sep, timespec=spec)
    ours, sqlites = day(text), julianday(text)
    assert (ours is None) == (sqlites is None), text
    if ours is not None and sqlites is not None:
        assert abs(ours - sqlites) <= MS, text
        written = datetime.fromisoformat(text)  # the time as the text has it (timespec cuts)
        epoch = (written - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()
        assert abs(ours - (2440587.5 + epoch / 86400)) <= MS, text


@given(st.datetimes(), specs)
def test_a_naive_time_has_no_day(
    day: Callable[[str], float | None], at: datetime, spec: str
) -> None:
    # SQLite would read it as UTC; PostgreSQL's answer must not depend on any setting.
    assert day(at.isoformat(timespec=spec)) is None


#: Texts near the grammar: digits and the characters of a time, shuffled.
timeish = st.text(alphabet="0123456789-+:.TZz \t", max_size=40)
anything = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    max_size=40,
)


@given(st.one_of(timeish, anything, aware_times.map(lambda at: at.isoformat() + "x")))
def test_julianday_never_raises_and_never_differs(
    day: Callable[[str], float | None], text: str
) -> None:
    ours = day(text)
    assert ours is None or ours == julianday(text), text


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-01T09:00:00+01:00",
        "2026-12-01 09:00:00.1234567+01:00",
        "2026-12-01T09:00:00.0005+00:00",
        "2026-12-01T09:00:00+14:59",
        "2026-02-30T09:00:00+00:00",
        "2026-12-01T24:00:00+00:00",
        "2026-12-01T09:00:00 +01:00 ",
        "2026-12-01T09:00Z",
        "0000-01-01T00:00:00+01:00",
        "-0100-03-01T09:00:00+00:00",
    ],
)
def test_julianday_is_julianday_to_the_bit(day: Callable[[str], float | None], text: str) -> None:
    assert day(text) == julianday(text) is not None


@pytest.mark.parametrize(
    "text",
    ["", "x", "2026-12-01", "2026-12-01T09:00:00", "2026-12-01T09:00:00+15:00",
     "2026-12-01T09:00:00+00:19:32", "2026-13-01T09:00:00Z", "9999-12-31T23:59:59-14:00",
     "2026-12-01T09:00:00.+00:00", "2026-12-01T09:00:00+0100"],
)  # fmt: skip
def test_julianday_has_none_for(day: Callable[[str], float | None], text: str) -> None:
    assert day(text) is None


def test_julianday_does_not_depend_on_the_session(pg_store: PgStore) -> None:
    with pg_store.owner.connect() as conn:
        values = set()
        for zone, style in [("UTC", "ISO, MDY"), ("Pacific/Auckland", "SQL, DMY")]:
            conn.exec_driver_sql(f"SET TimeZone = '{zone}'")
            conn.exec_driver_sql(f"SET DateStyle = '{style}'")
            values.add(
                conn.exec_driver_sql("SELECT julianday('2026-12-01T09:00:00+01:00')").scalar()
            )
        assert values == {julianday("2026-12-01T09:00:00+01:00")}
        volatility = rows(conn, "SELECT provolatile FROM pg_proc WHERE proname = 'julianday'")
        assert volatility == [("i",)]


# --- what the checks report ------------------------------------------------------------------


def test_missing_triggers_names_a_dropped_a_disabled_and_an_altered_one(pg_store: PgStore) -> None:
    with pg_store.owner.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER audit_no_update ON audit")
        conn.exec_driver_sql("ALTER TABLE sessions DISABLE TRIGGER sessions_no_delete")
        links = store_pg.FUNCTIONS["ketadose_links_kept"]
        conn.exec_driver_sql(
            links.create.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION").replace(
                "IF NEW.hash IS DISTINCT FROM OLD.hash OR", "IF"
            )
        )
        assert store_pg.missing_triggers(conn) == [
            "audit_no_update",
            "sessions_no_delete (disabled)",
            "scores_links_kept (altered)",
        ]
        conn.exec_driver_sql("ALTER TABLE sessions ENABLE REPLICA TRIGGER sessions_no_delete")
        # Made again under its name, on another event or with another message.
        conn.exec_driver_sql(
            "CREATE TRIGGER audit_no_update BEFORE DELETE ON audit"
            " FOR EACH ROW EXECUTE FUNCTION ketadose_refuse('the audit log is append-only: UPDATE refused')"
        )
        conn.exec_driver_sql("DROP TRIGGER clinicians_no_delete ON clinicians")
        conn.exec_driver_sql(
            "CREATE TRIGGER clinicians_no_delete BEFORE DELETE ON clinicians"
            " FOR EACH ROW EXECUTE FUNCTION ketadose_refuse('fine')"
        )
        assert store_pg.missing_triggers(conn) == [
            "audit_no_update (altered)",
            "sessions_no_delete (disabled)",
            "clinicians_no_delete (altered)",
            "scores_links_kept (altered)",
        ]


def test_a_replaced_day_or_definer_option_alters_what_uses_it(pg_store: PgStore) -> None:
    with pg_store.owner.begin() as conn:
        day = store_pg.FUNCTIONS["julianday"]
        conn.exec_driver_sql(
            day.create.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION").replace(
                "RETURN ms::double precision / 86400000;", "RETURN 0;"
            )
        )
        conn.exec_driver_sql("ALTER FUNCTION ketadose_chain() SECURITY INVOKER")
        found = store_pg.missing_triggers(conn)
    assert found == [
        f"{t.name} (altered)"
        for t in store_pg.TRIGGERS
        if t.function == "ketadose_chain" or t.name == "sessions_discharge_only"
    ]


# --- roles and grants ------------------------------------------------------------------------


@dataclass
class Clinic:
    """The store with its group role granted and one clinician, a login role in the group."""

    store: PgStore
    group: str
    member: str
    member_engine: sa.Engine


@pytest.fixture
def clinic(pg_store: PgStore) -> Iterator[Clinic]:
    cluster = pg_store.db.cluster
    group = f"{pg_store.db.name}_clinician"
    with cluster.admin() as admin:
        admin.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(group)))
    cluster.roles.append(group)  # dropped after the test, with the database
    password = secrets.token_urlsafe(12)
    member = cluster.create_role(f"{pg_store.db.name}_nurse", password)
    with cluster.admin() as admin:
        admin.execute(
            sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(member))
        )
    with pg_store.owner.begin() as conn:
        for statement in store_pg.grants(group):
            conn.exec_driver_sql(statement)
    member_engine = engine(lambda: pg_store.db.connect(member, password=password))
    yield Clinic(pg_store, group, member, member_engine)
    member_engine.dispose()


def test_no_problem_after_the_grants_run_twice(clinic: Clinic) -> None:
    with clinic.store.owner.begin() as conn:
        for statement in store_pg.grants(clinic.group):
            conn.exec_driver_sql(statement)
        assert store_pg.privilege_problems(conn, clinic.group) == []
        assert store_pg.privilege_problems(conn, "nobody_here") == [
            "role nobody_here does not exist"
        ]


def test_privilege_problems_names_each_wrong_grant(clinic: Clinic) -> None:
    group = clinic.group
    with clinic.store.owner.begin() as conn:
        conn.exec_driver_sql(f'GRANT DELETE ON audit TO "{group}"')
        conn.exec_driver_sql(f'GRANT UPDATE (notes, discharged_at) ON sessions TO "{group}"')
        conn.exec_driver_sql(f'GRANT INSERT ON chain_tail TO "{group}"')
        conn.exec_driver_sql(f'GRANT UPDATE, TRUNCATE ON clinicians TO "{group}"')
        assert store_pg.privilege_problems(conn, group) == [
            f"role {group} can DELETE audit",
            f"role {group} can UPDATE clinicians",
            f"role {group} can TRUNCATE clinicians",
            f"role {group} can INSERT chain_tail",
            f"role {group} can UPDATE sessions.notes",
        ]
    clinic.store.admin(f'ALTER TABLE signatures OWNER TO "{group}"')
    clinic.store.admin(f'ALTER FUNCTION ketadose_chain() OWNER TO "{group}"')
    with clinic.store.owner.connect() as conn:
        found = store_pg.privilege_problems(conn, group)
    assert f"ketadose_chain() is owned by {group}" in found
    assert f"signatures is owned by {group}" in found
    assert f"signatures_id_seq is owned by {group}" in found


def test_privilege_problems_names_a_trigger_grant_a_schema_grant_and_the_owners_group(
    clinic: Clinic,
) -> None:
    group, owner = clinic.group, clinic.store.db.owner
    with clinic.store.owner.begin() as conn:
        conn.exec_driver_sql(f'GRANT TRIGGER ON audit TO "{group}"')
        conn.exec_driver_sql(f'GRANT CREATE ON SCHEMA public TO "{group}"')
        assert store_pg.privilege_problems(conn, group) == [
            f"role {group} can CREATE in schema public",
            f"role {group} can TRIGGER audit",
        ]
    clinic.store.admin(f'GRANT "{owner}" TO "{group}"')  # the group in the owner's role
    with clinic.store.owner.connect() as conn:
        found = store_pg.privilege_problems(conn, group)
    assert f"audit is owned by {owner}, a role {group} is in" in found
    assert f"ketadose_chain() is owned by {owner}, a role {group} is in" in found
    assert f"role {group} can DELETE audit" in found


def test_a_clinician_appends_and_sets_a_discharge_and_nothing_else(clinic: Clinic) -> None:
    with clinic.store.owner.begin() as conn:
        append(conn, "patients", PATIENT)
        session = append(conn, "sessions", session_values())
    with clinic.member_engine.begin() as conn:
        assert store_pg.session_user(conn) == clinic.member
        assert append(conn, "audit", audit_values()) == 1
        conn.exec_driver_sql(
            "UPDATE sessions SET discharged_at = %s WHERE id = %s",
            ((T0 + timedelta(hours=1)).isoformat(), session),
        )
        assert store_pg.tail(conn, "audit") == 1
        for statement in (
            "UPDATE audit SET status = 'hard'",
            "DELETE FROM audit",
            "TRUNCATE audit",
            "UPDATE sessions SET notes = 'x'",
            "INSERT INTO chain_tail VALUES ('audit', 0)",
            "UPDATE store_meta SET value = '9'",
            "SELECT setval('audit_id_seq', 1)",
        ):
            assert "permission denied" in denied(conn, statement), statement
        for statement in (
            "ALTER TABLE audit DISABLE TRIGGER audit_no_update",
            "DROP TRIGGER audit_no_update ON audit",
            "ALTER FUNCTION ketadose_chain() SECURITY INVOKER",
        ):
            assert "must be owner" in denied(conn, statement), statement
        denied(
            conn,
            "CREATE OR REPLACE FUNCTION ketadose_refuse() RETURNS trigger LANGUAGE plpgsql"
            " AS $$BEGIN RETURN NULL; END$$",
        )
        assert "permission denied" in denied(
            conn,
            "CREATE TRIGGER mine BEFORE INSERT ON audit"
            " FOR EACH ROW EXECUTE FUNCTION ketadose_refuse('x')",
        )
        assert rows(conn, "SELECT julianday(%s)", (T0.isoformat(),)) == [
            (julianday(T0.isoformat()),)
        ]


def test_a_temporary_table_does_not_stand_in_for_the_tail(clinic: Clinic) -> None:
    with clinic.member_engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TEMPORARY TABLE chain_tail (tbl text PRIMARY KEY, last_id bigint)"
        )
        append(conn, "audit", audit_values())
        assert rows(conn, "SELECT count(*) FROM chain_tail") == [(0,)]  # its own, untouched
        assert rows(conn, "SELECT last_id FROM public.chain_tail WHERE tbl = 'audit'") == [(1,)]


# --- chain_tail, sqlite_sequence's stand-in ----------------------------------------------------


def test_the_tail_outlives_the_last_rows_and_ignores_a_rollback(pg_store: PgStore) -> None:
    with pg_store.owner.begin() as conn:
        for n in range(3):
            append(conn, "audit", audit_values(n))
        assert store_pg.tail(conn, "audit") == 3
    pg_store.admin("ALTER TABLE audit DISABLE TRIGGER audit_no_delete")
    with pg_store.owner.begin() as conn:
        conn.exec_driver_sql("DELETE FROM audit WHERE id = 3")
    pg_store.admin("ALTER TABLE audit ENABLE TRIGGER audit_no_delete")
    with pg_store.owner.connect() as conn:
        assert rows(conn, "SELECT max(id) FROM audit") == [(2,)]
        assert store_pg.tail(conn, "audit") == 3  # the deletion shows
        conn.rollback()
        with conn.begin() as transaction:
            assert append(conn, "audit", audit_values(3)) == 4
            transaction.rollback()
        assert store_pg.tail(conn, "audit") == 3  # a sequence would say 4
        assert append(conn, "audit", audit_values(3)) == 5
        conn.commit()
        assert store_pg.tail(conn, "audit") == 5


@pytest.mark.parametrize(
    ("isolation", "refusal", "said"),
    [
        # The second insert waits on the first's chain_tail row, then sees its row: refused.
        ("READ COMMITTED", sa.exc.IntegrityError, "the audit chain only grows at its head"),
        # Its snapshot cannot see the first's row: the row lock fails it instead.
        ("REPEATABLE READ", sa.exc.OperationalError, "could not serialize access"),
        ("SERIALIZABLE", sa.exc.OperationalError, "could not serialize access"),
    ],
)
def test_two_writers_never_extend_the_same_head(
    pg_store: PgStore, isolation: str, refusal: type[Exception], said: str
) -> None:
    with pg_store.owner.begin() as conn:
        append(conn, "audit", audit_values(0))
    first = pg_store.owner.connect()
    second = pg_store.owner.connect().execution_options(isolation_level=isolation)
    try:
        first.begin()
        link_to = head(first, "audit")
        append(first, "audit", audit_values(1), prev=link_to)
        errors: list[BaseException] = []

        def race() -> None:
            try:
                with second.begin():
                    append(second, "audit", audit_values(2), prev=link_to)
            except BaseException as error:  # handed to the test's thread
                errors.append(error)

        thread = threading.Thread(target=race)
        thread.start()
        with pg_store.db.cluster.admin(pg_store.db.name) as admin:
            for _ in range(500):
                waiting = admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database()"
                ).fetchone()
                if waiting and waiting[0]:
                    break
                time.sleep(0.01)
            else:
                pytest.fail("the second writer never waited for the first")
        first.commit()
        thread.join(30)
        assert len(errors) == 1 and isinstance(errors[0], refusal)
        assert said in str(errors[0])
    finally:
        first.close()
        second.close()
    with pg_store.owner.connect() as conn:
        assert rows(conn, "SELECT id FROM audit ORDER BY id") == [(1,), (2,)]


def test_every_sqlite_record_kind_is_a_store_pg_table() -> None:
    # The store's own column lists are columns of the PostgreSQL tables (in SQL text).
    for names, table in [
        (store_rows._SESSION_NAMES, "sessions"),
        (store_rows._SCORE_NAMES, "scores"),
        (store_rows._AUDIT_NAMES, "audit"),
        (store_rows._READING_NAMES, "session_readings"),
        (store_rows._PATIENT_NAMES, "patients"),
        (store_rows._MEASUREMENT_NAMES, "measurements"),
    ]:
        made = store_pg.TABLES[table]
        for name in names:
            assert re.search(rf"^\s*{quoted(name)} ", made, re.MULTILINE), (table, name)


def test_where_postgresql_differs_as_the_module_says(pg_store: PgStore, tmp_path: Path) -> None:
    with pg_store.owner.begin() as conn:
        append(conn, "patients", PATIENT)
        score = append(conn, "scores", {**score_values(), "total": 3.6})
        assert rows(conn, "SELECT total FROM scores") == [(4,)]  # rounded; SQLite refuses
        append(conn, "measurements", {"patient_id": "p-001", "at": T0.isoformat(), "weight_kg": float("nan"), "height_cm": None})  # fmt: skip
        assert rows(conn, "SELECT weight_kg > 0 FROM measurements") == [(True,)]
        both = "UPDATE scores SET total = 3, hash = 'x' WHERE id = %s"
        assert refused(conn, both, (score,)) == (
            "a recorded score is kept: only a first acknowledgement may be added"
        )
    with Store.open(tmp_path / "s.sqlite3") as lite:
        lite.add_patient(patient(), at=T0)
        lite.record_score(phq9())
    with closing(sqlite3.connect(tmp_path / "s.sqlite3")) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="keeps its place in the chain"):
            conn.execute("UPDATE scores SET total = 3, hash = 'x'")
        with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
            conn.execute(
                "INSERT INTO scores (patient_id, at, instrument, total, prev_hash, hash)"
                " SELECT patient_id, at, instrument, 3.6, hash, 'h' FROM scores"
            )
