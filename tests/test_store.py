"""Tests for ketadose.store: the record store, on a real SQLite file and a real PostgreSQL server.

Every test about the store's behaviour takes ``store_target`` (or the ``store`` fixture made on
it) and runs once per engine. What stays SQLite-only is about SQLite's file itself, and says so
at its class: migrations of files of schema 1 to 6, file modes and backups, WAL, damaged files,
and writers killed or racing on one file.
"""

from __future__ import annotations

import json
import os
import queue
import random
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ketadose.errors import InputError, StoreError
from ketadose.events import TERMS, AdverseEvent, Grade
from ketadose.records import AuditEntry, BloodPressure, PatientRecord, SessionRecord
from ketadose.scores import ScoreRecord
from ketadose.store import (
    APPLICATION_ID,
    MIGRATIONS,
    SCHEMA_VERSION,
    MigrationContext,
    Store,
)
from ketadose.store_schema import _migrate_reports, _migrate_scores
from ketadose.store_sql import Database, connect
from ketadose.store_url import StoreLocation
from tests.stores import (
    ON_POSTGRESQL,
    ON_SQLITE,
    StoreTarget,
    add_old_patient,
    checks_off,
    inject_failure,
    integrity_error,
    raw_rows,
    raw_sql,
    tamper,
)

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2024, 3, 4, 9, 30, tzinfo=ZoneInfo("Europe/Berlin"))
SHA = "ab" * 32


def patient(patient_id: str = "p-001", **changes: Any) -> PatientRecord:
    record = PatientRecord(
        id=patient_id,
        protocol="iv-depression-0.5",
        baseline=31.0,
        weight_kg=82.5,
        height_cm=176.0,
        sex="female",
        created_at=T0,
    )
    return replace(record, **changes)


def session_for(number: int, patient_id: str = "p-001", events: int = 3) -> SessionRecord:
    """A session whose every field follows from ``number`` (the writer processes use it too)."""
    return SessionRecord(
        patient_id=patient_id,
        at=T0 + timedelta(minutes=number),
        protocol="iv-depression-0.5",
        dose_mg=41.25 + number,
        dose_mg_per_kg=0.5,
        duration_min=40.0,
        phases_json=json.dumps([{"kind": "timed", "dose_mg": 41.25 + number}]),
        bp_before=BloodPressure(128.0, 84.0),
        bp_peak=BloodPressure(151.0, 96.5),
        bp_after=BloodPressure(131.0, 85.0),
        heart_rate=97.0,
        spo2=96.0,
        score=float(number),
        adverse_events=tuple(
            AdverseEvent(sorted(TERMS)[(number + k) % len(TERMS)], Grade((k % 4) + 1))
            for k in range(events)
        ),
        notes=f"session {number}",
    )


def entry(patient_id: str | None = "p-001", command: str = "session record") -> AuditEntry:
    return AuditEntry(
        at=T0,
        user="dr.x",
        command=command,
        patient_id=patient_id,
        inputs_json='{"dose": "40 mg"}',
        findings_json='[{"severity": "soft", "overridden": true}]',
        status="soft",
        override_reason="reviewed with the patient",
        library_sha256=SHA,
    )


def as_recorded(store: Store, given: AuditEntry, **changes: Any) -> AuditEntry:
    """``given`` as ``store`` records it: by who is acting (on PostgreSQL the session user; on
    an SQLite store opened without an actor, the entry's own user), a name given that differs
    kept as its claim."""
    who = store.actor or given.user
    claimed = given.claimed if who == given.user else given.user
    return replace(given, user=who, claimed=claimed, **changes)


#: The audit entry a weight is recorded with (a library caller's: no command names it).
WEIGHED = AuditEntry(
    at=T0,
    user="dr.x",
    command="patient weigh",
    patient_id="p-001",
    inputs_json='{"weight": "80 kg"}',
    findings_json="[]",
    status="ok",
    override_reason=None,
    library_sha256=SHA,
)


def one_line(error: BaseException) -> str:
    text = str(error)
    assert text
    assert "\n" not in text
    assert "Traceback" not in text
    return text


def raw(path: Path) -> closing[sqlite3.Connection]:
    """A plain sqlite3 connection (autocommit, foreign keys on), as any other program has."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA foreign_keys = ON")
    return closing(connection)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def private_umask() -> Iterator[None]:
    """Files these tests make by hand are the owner's alone, as the store's own are.

    (A store open to other users is refused: :class:`TestExposure` tests that on purpose.)
    """
    before = os.umask(0o077)
    yield
    os.umask(before)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "ketadose.db"


@pytest.fixture
def store(store_target: StoreTarget) -> Iterator[Store]:
    """A store on the test's engine with one patient, p-001."""
    with Store.open(store_target.url) as opened:
        opened.add_patient(patient(), at=T0)
        yield opened


def count(target: StoreTarget, table: str) -> int:
    """How many rows ``table`` holds, read outside ketadose."""
    ((found,),) = raw_sql(target, f"SELECT count(*) FROM {table}")
    return int(found)


class TestPatients:
    """Patients round-trip, keep a weight history, and unknown or duplicate ids are input errors."""

    def test_every_field_round_trips(self, store: Store) -> None:
        assert store.patient("p-001") == patient()

    def test_optional_fields_stay_empty(self, store: Store) -> None:
        bare = PatientRecord(id="p-002", protocol="crps", baseline=7.5, weight_kg=60.0)
        store.add_patient(bare, at=T0)
        assert store.patient("p-002") == replace(bare, created_at=T0)

    def test_offset_aware_time_round_trips(self, store: Store) -> None:
        at = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=-4)))
        store.add_patient(patient("p-002", created_at=None), at=at)
        created = store.patient("p-002").created_at
        assert created == at
        assert created is not None
        assert created.utcoffset() == timedelta(hours=-4)

    def test_first_weight_and_height_go_to_the_history_table(
        self, store: Store, store_target: StoreTarget
    ) -> None:
        rows = raw_sql(
            store_target, "SELECT patient_id, at, weight_kg, height_cm FROM measurements"
        )
        assert rows == [("p-001", T0.isoformat(), 82.5, 176.0)]

    def test_latest_weight_wins_and_height_is_kept(self, store: Store) -> None:
        store.record_weight(
            "p-001", at=T0 + timedelta(days=7), weight_kg=80.0, height_cm=None, entry=WEIGHED
        )
        assert (store.patient("p-001").weight_kg, store.patient("p-001").height_cm) == (80.0, 176.0)
        store.record_weight(
            "p-001", at=T0 + timedelta(days=14), weight_kg=79.0, height_cm=175.5, entry=WEIGHED
        )
        assert (store.patient("p-001").weight_kg, store.patient("p-001").height_cm) == (79.0, 175.5)

    def test_latest_is_by_measurement_time_not_entry_order(self, store: Store) -> None:
        store.record_weight(
            "p-001", at=T0 + timedelta(days=7), weight_kg=80.0, height_cm=None, entry=WEIGHED
        )
        store.record_weight(
            "p-001", at=T0 + timedelta(days=3), weight_kg=90.0, height_cm=None, entry=WEIGHED
        )
        assert store.patient("p-001").weight_kg == 80.0

    def test_unknown_patient(self, store: Store) -> None:
        with pytest.raises(InputError, match="no patient 'nobody'") as caught:
            store.patient("nobody")
        one_line(caught.value)
        with pytest.raises(InputError, match="no patient"):
            store.sessions("nobody")
        with pytest.raises(InputError, match="no patient"):
            store.record_weight("nobody", at=T0, weight_kg=70.0, height_cm=None, entry=WEIGHED)

    def test_duplicate_id_refused_and_original_kept(self, store: Store) -> None:
        with pytest.raises(InputError, match="'p-001' exists already") as caught:
            store.add_patient(patient(weight_kg=99.0, baseline=1.0), at=T0)
        assert caught.value.exit_code == 2
        assert store.patient("p-001") == patient()

    def test_created_at_must_match_the_time_added(self, store: Store) -> None:
        with pytest.raises(InputError, match="created_at"):
            store.add_patient(patient("p-002"), at=T0 + timedelta(hours=1))

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"weight_kg": float("nan")}, "finite"),
            ({"height_cm": float("inf")}, "finite"),
            # SQLite's message quotes the CHECK, PostgreSQL's names the constraint.
            ({"weight_kg": 0.0}, 'weight_kg > 0|constraint "measurements_weight_kg_check"'),
            ({"sex": "x"}, "sex"),
            ({"id": ""}, 'length|constraint "patients_id_check"'),
        ],
    )
    def test_unusable_values_refused_and_nothing_written(
        self, store: Store, store_target: StoreTarget, changes: dict[str, Any], message: str
    ) -> None:
        with pytest.raises(InputError, match=message):
            store.add_patient(patient("p-002", **changes), at=T0)
        assert (count(store_target, "patients"), count(store_target, "measurements")) == (1, 1)


class TestSessions:
    """Sessions round-trip field by field, come back in time order, and are written whole."""

    def test_every_field_round_trips(self, store: Store) -> None:
        given = replace(session_for(7), notes="nausea settled after ondansetron 4 mg; «ok» ✓")
        row_id = store.record_session(given)
        assert store.sessions("p-001") == [replace(given, id=row_id)]

    def test_defaults_round_trip(self, store: Store) -> None:
        bare = SessionRecord(patient_id="p-001", at=T0, protocol="esketamine", dose_mg=56.0)
        row_id = store.record_session(bare)
        assert store.sessions("p-001") == [replace(bare, id=row_id)]

    def test_adverse_events_keep_their_order(self, store: Store) -> None:
        events = (
            AdverseEvent("nausea", Grade.MILD),
            AdverseEvent("hypertension", Grade.MODERATE),
            AdverseEvent("dissociation", Grade.SEVERE),
            AdverseEvent("nausea", Grade.LIFE_THREATENING),
        )
        store.record_session(replace(session_for(1), adverse_events=events))
        assert store.sessions("p-001")[0].adverse_events == events

    def test_ordered_by_time_not_by_insertion(self, store: Store) -> None:
        ids = {n: store.record_session(session_for(n)) for n in (30, 10, 20)}
        assert [(s.score, s.id) for s in store.sessions("p-001")] == [
            (10.0, ids[10]),
            (20.0, ids[20]),
            (30.0, ids[30]),
        ]

    def test_offset_aware_times_ordered_by_instant(self, store: Store) -> None:
        late = replace(session_for(1), at=datetime(2024, 3, 4, 9, 0, tzinfo=UTC))
        # 10:00 at +02:00 is 08:00 UTC: earlier, though its text sorts later
        early = replace(
            session_for(2), at=datetime(2024, 3, 4, 10, 0, tzinfo=timezone(timedelta(hours=2)))
        )
        store.record_session(late)
        store.record_session(early)
        assert [s.score for s in store.sessions("p-001")] == [2.0, 1.0]

    def test_other_patients_sessions_are_not_mixed_in(self, store: Store) -> None:
        store.add_patient(patient("p-002"), at=T0)
        store.record_session(session_for(1, patient_id="p-002"))
        store.record_session(session_for(2))
        assert [s.score for s in store.sessions("p-001")] == [2.0]
        assert [s.adverse_events for s in store.sessions("p-002")] == [
            session_for(1).adverse_events
        ]

    def test_a_refused_adverse_event_leaves_no_session_row(
        self, store: Store, store_target: StoreTarget
    ) -> None:
        # the session row is inserted before the event that fails: the transaction undoes it
        bad = (AdverseEvent("nausea", Grade.MILD), AdverseEvent("", Grade.MILD))
        with pytest.raises(InputError, match="vocabulary"):
            store.record_session(replace(session_for(1), adverse_events=bad))
        assert count(store_target, "sessions") == 0
        assert count(store_target, "session_adverse_events") == 0

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"id": 5}, "stored already"),
            ({"phases_json": "[{"}, "not valid JSON"),
            ({"dose_mg": float("nan")}, "finite"),
            ({"bp_peak": BloodPressure(float("inf"), 90.0)}, "finite"),
            ({"dose_mg": -1.0}, 'dose_mg >= 0|constraint "sessions_dose_mg_check"'),
        ],
    )
    def test_unusable_sessions_refused(
        self, store: Store, changes: dict[str, Any], message: str
    ) -> None:
        with pytest.raises(InputError, match=message):
            store.record_session(replace(session_for(1), **changes))
        assert store.sessions("p-001") == []


class TestForeignKeys:
    """The schema itself refuses a session or weight for a patient who is not in the store."""

    def test_store_refuses_session_for_unknown_patient(
        self, store: Store, store_target: StoreTarget
    ) -> None:
        with pytest.raises(InputError, match="no patient 'ghost'"):
            store.record_session(session_for(1, patient_id="ghost"))
        assert count(store_target, "sessions") == 0

    def test_enforced_after_a_plain_reopen(self, store_target: StoreTarget) -> None:
        # Store does no look-up of its own, so this refusal is the foreign key's; and a store
        # that needs no migration must still have foreign keys switched on by open() itself
        _v1_store(store_target.url)
        with (
            Store.open(store_target.url) as store,
            pytest.raises(InputError, match="no patient 'ghost'"),
        ):
            store.record_session(session_for(2, patient_id="ghost"))
        with (
            Store.open(store_target.url) as store,
            pytest.raises(InputError, match="no patient 'ghost'"),
        ):
            store.record_weight("ghost", at=T0, weight_kg=70.0, height_cm=None, entry=WEIGHED)

    def test_raw_insert_refused_by_the_schema(
        self, store: Store, store_target: StoreTarget
    ) -> None:
        # Even with a link the chain accepts, the foreign key refuses an unknown patient.
        with pytest.raises(integrity_error(store_target), match="(?i)FOREIGN KEY"):
            raw_sql(
                store_target,
                "INSERT INTO sessions (patient_id, at, protocol, dose_mg, phases_json,"
                " prev_hash, hash) VALUES ('ghost', '2024-01-01T00:00:00', 'iv', 1.0, '[]', ?, ?)",
                ("0" * 64, "f" * 64),
            )

    def test_raw_insert_without_its_link_refused(
        self, store: Store, store_target: StoreTarget
    ) -> None:
        with pytest.raises(integrity_error(store_target), match="chain"):
            raw_sql(
                store_target,
                "INSERT INTO sessions (patient_id, at, protocol, dose_mg, phases_json)"
                " VALUES ('ghost', '2024-01-01T00:00:00', 'iv', 1.0, '[]')",
            )


class TestAudit:
    """The audit log round-trips, filters by patient, and the schema refuses edits and deletes."""

    def test_every_field_round_trips_in_order(self, store: Store) -> None:
        first = store.append_audit(entry())
        second = store.append_audit(replace(entry(None, "dose"), override_reason=None, status="ok"))
        assert second > first
        read = store.audit()
        assert all(len(str(e.hash)) == 64 for e in read) and read[0].hash != read[1].hash
        assert [replace(e, hash=None) for e in read] == [
            as_recorded(store, entry(), id=first),
            as_recorded(store, entry(None, "dose"), override_reason=None, status="ok", id=second),
        ]

    def test_filtered_by_patient_including_one_not_in_the_store(self, store: Store) -> None:
        store.append_audit(entry("p-001"))
        ghost = store.append_audit(entry("not-added", "next"))
        store.append_audit(entry(None, "dose"))
        assert [e.id for e in store.audit("not-added")] == [ghost]
        assert [e.patient_id for e in store.audit("p-001")] == ["p-001"]

    def test_invalid_json_or_id_refused(self, store: Store) -> None:
        with pytest.raises(InputError, match="inputs_json"):
            store.append_audit(replace(entry(), inputs_json="{"))
        with pytest.raises(InputError, match="stored already"):
            store.append_audit(replace(entry(), id=1))
        assert store.audit() == []

    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE audit SET status = 'ok'",
            "DELETE FROM audit",
            'INSERT INTO audit (id, at, "user", command, inputs_json, findings_json, status,'
            " library_sha256) VALUES (1, 'x', 'x', 'x', '{}', '[]', 'ok', 'x')"
            " ON CONFLICT (id) DO UPDATE SET status = 'ok'",
        ],
        ids=["update", "delete", "upsert"],
    )
    def test_schema_refuses_changes_from_any_connection(
        self, store: Store, store_target: StoreTarget, statement: str
    ) -> None:
        # On PostgreSQL the connection is the superuser's: the triggers refuse even it.
        store.append_audit(entry())
        before = store.audit()
        refused = "append-only|only grows at its head"
        with pytest.raises(integrity_error(store_target), match=refused):
            raw_sql(store_target, statement)
        assert store.audit() == before

    @ON_SQLITE
    def test_sqlite_s_insert_or_replace_is_refused(
        self, store: Store, store_target: StoreTarget
    ) -> None:
        # SQLite's own statement (PostgreSQL has none: its TRUNCATE is tested in test_chain).
        store.append_audit(entry())
        before = store.audit()
        with pytest.raises(integrity_error(store_target), match="append-only|only grows"):
            raw_sql(
                store_target,
                "INSERT OR REPLACE INTO audit (id, at, user, command, inputs_json, findings_json,"
                " status, library_sha256) VALUES (1, 'x', 'x', 'x', '{}', '[]', 'ok', 'x')",
            )
        assert store.audit() == before

    def test_session_and_audit_written_together(self, store: Store) -> None:
        row_id = store.record_session_with_audit(session_for(1), entry())
        assert [s.id for s in store.sessions("p-001")] == [row_id]
        assert [e.command for e in store.audit()] == ["session record"]

    def test_failed_audit_write_takes_the_session_with_it(
        self, store: Store, store_target: StoreTarget
    ) -> None:
        # fault injection: any audit insert now fails, after the session row went in
        inject_failure(store_target, "audit")
        with pytest.raises(StoreError, match="injected failure") as caught:
            store.record_session_with_audit(session_for(1), entry())
        one_line(caught.value)
        assert caught.value.exit_code == 6
        assert store.sessions("p-001") == []
        assert count(store_target, "sessions") == 0

    def test_failed_session_write_takes_the_audit_with_it(self, store: Store) -> None:
        with pytest.raises(InputError, match="no patient"):
            store.record_session_with_audit(session_for(1, patient_id="ghost"), entry("ghost"))
        assert store.audit() == []


class TestReopening:
    """What is written is there when the store is opened again; a closed store says so."""

    def test_reopened_store_keeps_everything(self, store_target: StoreTarget) -> None:
        with Store.open(store_target.url) as store:
            store.add_patient(patient(), at=T0)
            row_id = store.record_session(session_for(1))
            audit_id = store.append_audit(entry())
        with Store.open(store_target.url) as store:
            assert store.sessions("p-001") == [replace(session_for(1), id=row_id)]
            assert [replace(e, hash=None) for e in store.audit()] == [
                as_recorded(store, entry(), id=audit_id)
            ]

    def test_closed_store_raises_store_error(self, store_target: StoreTarget) -> None:
        store = Store.open(store_target.url)
        store.close()
        store.close()
        with pytest.raises(StoreError, match="closed") as caught:
            store.audit()
        one_line(caught.value)


class TestFile:
    """The store file is private, in WAL mode, and marked with its schema version.

    SQLite only: a PostgreSQL store is no file (its server's roles guard it, see test_chain).
    """

    def test_created_with_its_directory_readable_by_owner_only(self, path: Path) -> None:
        old_umask = os.umask(0)  # the mode must not depend on a permissive umask
        try:
            with Store.open(path) as store:
                store.add_patient(patient(), at=T0)
                modes = {p.name: mode(p) for p in path.parent.iterdir()}
        finally:
            os.umask(old_umask)
        assert modes == {"ketadose.db": 0o600, "ketadose.db-wal": 0o600, "ketadose.db-shm": 0o600}
        assert mode(path.parent) == 0o700

    def test_wal_version_and_application_id(self, path: Path) -> None:
        _v1_store(path)
        with raw(path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
            assert conn.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)

    def test_an_empty_file_becomes_a_store(self, path: Path) -> None:
        path.parent.mkdir()
        path.touch()
        with Store.open(path) as store:
            store.add_patient(patient(), at=T0)
            assert store.patient("p-001") == patient()


def _add_column_v2(conn: Database, context: MigrationContext) -> None:
    """A fake next version: a new column, filled for the rows there are."""
    conn.execute("CREATE TABLE sites (patient_id TEXT, site TEXT)")
    conn.execute("INSERT INTO sites SELECT id, 'main' FROM patients")


def _broken_v2(conn: Database, context: MigrationContext) -> None:
    conn.execute("CREATE TABLE half_done (x)")
    conn.execute("SELECT * FROM no_such_table")


def _v1_store(path: Path | str) -> int:
    with Store.open(path) as store:
        store.add_patient(patient(), at=T0)
        return store.record_session(session_for(1))


class TestSchemaVersions:
    """Newer schemas are refused untouched; older ones are backed up, then migrated in one go.

    SQLite only: files of schema 0 to 6, their backups and SQLite's header (a PostgreSQL store
    begins at version 7: ``TestServerSchema``).
    """

    def test_newer_schema_refused_untouched(self, path: Path) -> None:
        _v1_store(path)
        with raw(path) as conn:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        before = path.read_bytes()
        with pytest.raises(StoreError) as caught:
            Store.open(path)
        text = one_line(caught.value)
        assert f"version {SCHEMA_VERSION + 1}" in text
        assert f"version {SCHEMA_VERSION} " in text
        assert path.read_bytes() == before

    def test_v0_store_backed_up_then_migrated(self, path: Path) -> None:
        # a hand-made pre-release store: marked as ours, user_version 0, one table of its own
        path.parent.mkdir()
        with raw(path) as conn:
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute("CREATE TABLE early_notes (note TEXT)")
            conn.execute("INSERT INTO early_notes VALUES ('kept')")
        with Store.open(path) as store:
            store.add_patient(patient(), at=T0)
        backup = path.with_name("ketadose.db.bak-v0")
        assert mode(backup) == 0o600
        with raw(backup) as conn:
            assert conn.execute("PRAGMA user_version").fetchone() == (0,)
            assert conn.execute("SELECT note FROM early_notes").fetchall() == [("kept",)]
            assert (
                conn.execute("SELECT name FROM sqlite_master WHERE name = 'patients'").fetchone()
                is None
            )
        with raw(path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
            assert conn.execute("SELECT note FROM early_notes").fetchall() == [("kept",)]

    def test_new_store_needs_no_backup(self, path: Path) -> None:
        Store.open(path).close()
        assert sorted(p.name for p in path.parent.iterdir()) == ["ketadose.db"]

    def test_runner_applies_a_later_version_after_a_backup(self, path: Path) -> None:
        row_id = _v1_store(path)
        migrations = (*MIGRATIONS, _add_column_v2)
        with Store._open(path, read_only=False, migrations=migrations) as store:
            assert store.sessions("p-001") == [replace(session_for(1), id=row_id)]
        with raw(path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION + 1,)
            assert conn.execute("SELECT site FROM sites").fetchall() == [("main",)]
        with raw(path.with_name(f"ketadose.db.bak-v{SCHEMA_VERSION}")) as conn:
            assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
            assert conn.execute("SELECT count(*) FROM sessions").fetchone() == (1,)
        # opened again at the new version: nothing to migrate, so no second backup
        Store._open(path, read_only=False, migrations=migrations).close()
        assert sorted(p.name for p in path.parent.iterdir()) == [
            "ketadose.db",
            f"ketadose.db.bak-v{SCHEMA_VERSION}",
        ]

    def test_failed_migration_changes_nothing_and_keeps_every_backup(self, path: Path) -> None:
        row_id = _v1_store(path)
        for _ in range(2):
            with pytest.raises(StoreError, match="no such table") as caught:
                Store._open(path, read_only=False, migrations=(*MIGRATIONS, _broken_v2))
            one_line(caught.value)
        with raw(path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
            assert (
                conn.execute("SELECT name FROM sqlite_master WHERE name = 'half_done'").fetchone()
                is None
            )
        with Store.open(path) as store:
            assert [s.id for s in store.sessions("p-001")] == [row_id]
        names = sorted(p.name for p in path.parent.iterdir())
        backup = f"ketadose.db.bak-v{SCHEMA_VERSION}"
        assert names == ["ketadose.db", backup, f"{backup}.2"]

    def test_read_only_open_does_not_migrate(self, path: Path) -> None:
        _v1_store(path)
        with pytest.raises(StoreError, match="needs migrating"):
            Store._open(path, read_only=True, migrations=(*MIGRATIONS, _add_column_v2))

    def test_other_sqlite_database_refused_untouched(self, path: Path) -> None:
        path.parent.mkdir()
        with raw(path) as conn:
            conn.execute("CREATE TABLE invoices (n INTEGER)")
        before = path.read_bytes()
        with pytest.raises(StoreError, match="not a ketadose store"):
            Store.open(path)
        assert path.read_bytes() == before


@ON_POSTGRESQL
class TestServerErrors:
    """PostgreSQL: what the server refuses is one line, exit 6, saying what to do."""

    def test_a_clinician_refused_a_change_is_told_whom_to_ask(
        self, store: Store, store_target: StoreTarget
    ) -> None:
        store.append_audit(entry())
        with Store.open(store_target.clinician("nurse_a")) as mine:
            assert mine.actor == "nurse_a"
            with (
                pytest.raises(StoreError, match="permission denied for table audit") as caught,
                mine._transaction("edit the log") as conn,
            ):
                conn.execute("DELETE FROM audit")
            text = one_line(caught.value)
            assert caught.value.exit_code == 6
            assert text.startswith(
                f"cannot edit the log: store {store_target.clinician('nurse_a')}"
            )
            assert text.endswith("ask the store's owner for the role this needs")
        assert len(store.audit()) == 1

    def test_a_clinician_cannot_make_the_schema(self, store_target: StoreTarget) -> None:
        # An empty database is made a store by its owner, never by a clinician.
        with pytest.raises(StoreError) as caught:
            Store.open(store_target.clinician("nurse_a"))
        assert caught.value.exit_code == 6
        assert "permission denied" in one_line(caught.value)
        tables = "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = 'public'"
        assert raw_sql(store_target, tables) == [(0,)]

    def test_a_wrong_password_is_refused_without_it_in_the_message(
        self, store_target: StoreTarget
    ) -> None:
        assert store_target.pgpass is not None and store_target.database is not None
        store_target.pgpass.write_text(
            f"127.0.0.1:{store_target.database.cluster.port}:*:*:not-the-password\n"
        )
        with pytest.raises(StoreError, match="password authentication failed") as caught:
            Store.open(store_target.url)
        text = one_line(caught.value)
        assert text.startswith(f"cannot open store {store_target.url}")
        assert "not-the-password" not in text and store_target.database.password not in text


@ON_POSTGRESQL
class TestServerSchema:
    """PostgreSQL: a newer schema, or a database that is not ketadose's, is refused untouched."""

    def test_newer_schema_refused_untouched(self, store_target: StoreTarget) -> None:
        _v1_store(store_target.url)
        ((current,),) = raw_sql(store_target, "SELECT version_num FROM alembic_version")
        assert int(current) == SCHEMA_VERSION
        newer = str(SCHEMA_VERSION + 1).zfill(len(current))
        raw_sql(store_target, "UPDATE alembic_version SET version_num = ?", (newer,))
        with pytest.raises(StoreError) as caught:
            Store.open(store_target.url)
        text = one_line(caught.value)
        assert f"version {SCHEMA_VERSION + 1}" in text
        assert f"version {SCHEMA_VERSION} " in text
        assert raw_sql(store_target, "SELECT version_num FROM alembic_version") == [(newer,)]
        assert raw_sql(store_target, "SELECT count(*) FROM sessions") == [(1,)]

    def test_other_database_refused_untouched(self, store_target: StoreTarget) -> None:
        raw_sql(store_target, "CREATE TABLE invoices (n INTEGER)")
        with pytest.raises(StoreError, match="not a ketadose store"):
            Store.open(store_target.url)
        tables = "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = 'public'"
        assert raw_sql(store_target, tables) == [("invoices",)]


def _random_bytes(path: Path) -> None:
    path.write_bytes(random.Random(4).randbytes(8192))


def _garbled_schema_page(path: Path) -> None:
    _v1_store(path)
    data = bytearray(path.read_bytes())
    data[100:4096] = random.Random(5).randbytes(3996)
    path.write_bytes(bytes(data))


def _truncated_header(path: Path) -> None:
    _v1_store(path)
    path.write_bytes(path.read_bytes()[:60])


class TestBadFiles:
    """A file that is not a readable store gives one clear StoreError and is left as it was.

    SQLite only: damaged files.
    """

    @pytest.mark.parametrize("damage", [_random_bytes, _garbled_schema_page, _truncated_header])
    def test_damaged_file(self, path: Path, damage: Callable[[Path], None]) -> None:
        path.parent.mkdir(exist_ok=True)
        damage(path)
        before = path.read_bytes()
        with pytest.raises(StoreError) as caught:
            Store.open(path)
        assert str(path) in one_line(caught.value)
        assert caught.value.exit_code == 6
        assert path.read_bytes() == before

    def test_directory_in_the_way(self, path: Path) -> None:
        path.mkdir(parents=True)
        with pytest.raises(StoreError) as caught:
            Store.open(path)
        one_line(caught.value)


def _add_second_patient(path: Path | str, *, read_only: bool = False) -> None:
    with Store.open(path, read_only=read_only) as store:
        store.add_patient(patient("p-002"), at=T0)


class TestReadOnly:
    """A store that cannot be written refuses the write with a StoreError and keeps its data.

    The file modes are SQLite's alone; a read-only open is tested on both engines.
    """

    @pytest.mark.skipif(
        os.geteuid() == 0, reason="root ignores file modes; the mode=ro test stands in"
    )
    @pytest.mark.parametrize("directory_too", [False, True], ids=["file", "file-and-directory"])
    def test_chmod_read_only(self, path: Path, directory_too: bool) -> None:
        _v1_store(path)
        path.chmod(0o400)
        if directory_too:
            path.parent.chmod(0o500)
        try:
            with pytest.raises(StoreError) as caught:
                _add_second_patient(path)
        finally:
            path.parent.chmod(0o700)
            path.chmod(0o600)
        one_line(caught.value)
        with Store.open(path) as store:
            assert store.patient("p-001") == patient()
            with pytest.raises(InputError):
                store.patient("p-002")

    def test_read_only_connection(self, store_target: StoreTarget) -> None:
        # SQLite's own read-only open (URI mode=ro): runs as root too, where chmod cannot;
        # PostgreSQL's read-only transactions (default_transaction_read_only)
        _v1_store(store_target.url)
        refusal = {
            "sqlite": "readonly database.*opened read-only",
            "postgresql": "cannot execute INSERT in a read-only transaction.*opened read-only",
        }[store_target.engine]
        with pytest.raises(StoreError, match=refusal) as caught:
            _add_second_patient(store_target.url, read_only=True)
        one_line(caught.value)
        with Store.open(store_target.url, read_only=True) as store:
            assert store.patient("p-001") == patient()
            with pytest.raises(InputError):
                store.patient("p-002")

    def test_read_only_open_creates_nothing(self, path: Path) -> None:
        with pytest.raises(StoreError, match="no store"):
            Store.open(path, read_only=True)
        assert not path.parent.exists()

    def test_read_only_open_of_an_empty_database_creates_nothing(
        self, store_target: StoreTarget
    ) -> None:
        if store_target.sqlite:
            assert store_target.path is not None
            store_target.path.parent.mkdir(mode=0o700)
            store_target.path.touch(mode=0o600)
        with pytest.raises(StoreError, match="open it once without read-only"):
            Store.open(store_target.url, read_only=True)
        tables = (
            "SELECT count(*) FROM sqlite_master"
            if store_target.sqlite
            else "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = 'public'"
        )
        assert raw_sql(store_target, tables) == [(0,)]


# A writer process: records session_for(first), session_for(first + 1)... printing
# "<number> <row id>" after each commit, then pausing pause_ms (so that two writers take turns).
# With stall_at = n it stops for good inside the transaction of session n, just after the
# session row went in and before its adverse events.
WRITER = """
import sys, time
from pathlib import Path
from ketadose.store import Store
from tests.test_store import session_for

path = Path(sys.argv[1])
first, count, events, stall_at, pause_ms = (int(arg) for arg in sys.argv[2:7])
number = -1

def trace(statement):
    if number == stall_at and "INSERT INTO session_adverse_events" in statement:
        print("stalled", flush=True)
        time.sleep(60)

with Store.open(path) as store:
    store._conn.raw.set_trace_callback(trace)
    print("ready", flush=True)
    sys.stdin.readline()
    for number in range(first, first + count):
        row_id = store.record_session(session_for(number, events=events))
        print(number, row_id, flush=True)
        time.sleep(pause_ms / 1000)
"""


class Writer:
    """A writer subprocess whose stdout lines are read with a timeout (no hung test)."""

    def __init__(
        self,
        path: Path,
        first: int,
        count: int,
        *,
        events: int = 3,
        stall_at: int = -1,
        pause_ms: int = 0,
    ) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                WRITER,
                str(path),
                str(first),
                str(count),
                str(events),
                str(stall_at),
                str(pause_ms),
            ],
            cwd=ROOT,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            },
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.strip())
        self.lines.put("<eof>")

    def line(self) -> str:
        try:
            text = self.lines.get(timeout=30)
        except queue.Empty:
            self.kill()
            pytest.fail("writer process silent for 30 s")
        if text == "<eof>":
            self.process.wait(timeout=30)
            assert self.process.stderr is not None
            pytest.fail(f"writer ended early: {self.process.stderr.read()[-2000:]}")
        return text

    def go(self) -> None:
        assert self.line() == "ready"
        self.start()

    def start(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def committed(self) -> tuple[int, int]:
        number, row_id = self.line().split()
        return int(number), int(row_id)

    def kill(self) -> None:
        self.process.kill()  # SIGKILL: no cleanup, no atexit, locks dropped by the kernel
        self.process.wait(timeout=30)

    def finish(self) -> None:
        _, errors = self.process.communicate(timeout=60)
        assert self.process.returncode == 0, errors


def _assert_whole(path: Path) -> dict[int, int]:
    """Every stored session equals the one its writer built; returns number -> row id."""
    with Store.open(path) as store:
        stored = store.sessions("p-001")
        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    found: dict[int, int] = {}
    for session in stored:
        assert session.score is not None
        assert session.id is not None
        number = int(session.score)
        expected = session_for(number, events=len(session.adverse_events))
        assert session == replace(expected, id=session.id)
        found[number] = session.id
    return found


class TestCrashes:
    """A writer killed mid-write leaves a store that opens and holds every committed session whole."""

    def test_killed_inside_a_transaction(self, path: Path) -> None:
        _v1_store(path)
        with Store.open(path) as store:
            base = {s.id for s in store.sessions("p-001")}
        writer = Writer(path, first=100, count=10, events=5, stall_at=103)
        writer.go()
        committed = dict(writer.committed() for _ in range(3))
        assert writer.line() == "stalled"  # session 103's row is written, its events are not
        writer.kill()
        found = _assert_whole(path)
        assert {n: i for n, i in found.items() if i not in base} == committed
        assert 103 not in found
        with Store.open(path) as store:  # the dead writer's lock is gone
            store.record_session(session_for(104))

    def test_killed_at_random_points_while_writing(self, path: Path) -> None:
        _v1_store(path)
        committed: dict[int, int] = {}
        for cycle, stop_after in enumerate((4, 11, 23)):
            # 200 events a session: most of the writer's time is spent inside a transaction
            writer = Writer(path, first=1000 * (cycle + 1), count=10**6, events=200)
            writer.go()
            committed.update(writer.committed() for _ in range(stop_after))
            writer.kill()
        found = _assert_whole(path)
        assert committed.items() <= found.items()
        # at most one commit per writer may have landed without being reported
        assert len(found) - 1 - len(committed) <= 3


class TestConcurrency:
    """Two processes writing at once are serialised by the store: nothing is lost."""

    def test_two_writers(self, path: Path) -> None:
        _v1_store(path)
        n = 40
        # a 5 ms pause after each commit: each writer's BEGIN often finds the other's lock held
        writers = [Writer(path, first=first, count=n, pause_ms=5) for first in (10_000, 20_000)]
        for writer in writers:
            assert writer.line() == "ready"
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.finish()
        found = _assert_whole(path)
        assert set(found) == {1, *range(10_000, 10_000 + n), *range(20_000, 20_000 + n)}
        assert len(set(found.values())) == 2 * n + 1
        # the writers really wrote at the same time: their row ids interleave
        a = [i for number, i in found.items() if 10_000 <= number < 20_000]
        b = [i for number, i in found.items() if number >= 20_000]
        assert min(a) < max(b)
        assert min(b) < max(a)


# --- questionnaire scores -------------------------------------------------------------------


def phq9(minutes: int = 0, patient_id: str = "p-001", **changes: Any) -> ScoreRecord:
    record = ScoreRecord(
        patient_id=patient_id,
        at=T0 + timedelta(minutes=minutes),
        instrument="phq9",
        items=(2, 2, 2, 2, 1, 1, 2, 1, 1),
        total=14,
    )
    return replace(record, **changes)


class TestScores:
    """Scores round-trip item by item (or as a total alone), and are never rewritten or lost."""

    def test_items_and_a_total_alone_round_trip(self, store: Store) -> None:
        first = store.record_score(phq9())
        madrs = ScoreRecord("p-001", T0 + timedelta(days=1), "madrs", None, 28)
        second = store.record_score(madrs)
        assert store.scores("p-001") == [replace(phq9(), id=first), replace(madrs, id=second)]

    def test_acknowledgement_round_trips(self, store: Store) -> None:
        acknowledged = phq9(
            acknowledged_by="dr.x",
            acknowledged_at=T0 + timedelta(minutes=5),
            acknowledgement="safety plan reviewed",
        )
        row_id = store.record_score(acknowledged)
        (read,) = store.scores("p-001")
        # By who is acting (on a server, who is connected), as the audit log would say.
        by = store.actor or "dr.x"
        assert read == replace(acknowledged, id=row_id, acknowledged_by=by)
        assert read.acknowledged

    def test_ordered_by_instant_across_offsets(self, store: Store) -> None:
        later = store.record_score(phq9(60))
        earlier = store.record_score(phq9(at=datetime(2024, 3, 4, 8, 0, tzinfo=UTC)))  # 09:00 CET
        assert [s.id for s in store.scores("p-001")] == [earlier, later]

    def test_unknown_patient(self, store: Store) -> None:
        with pytest.raises(InputError, match="no patient 'ghost'"):
            store.record_score(phq9(patient_id="ghost"))
        with pytest.raises(InputError, match="no patient 'ghost'"):
            store.scores("ghost")

    @pytest.mark.parametrize(
        ("changes", "says"),
        [
            ({"total": 13}, "not the sum"),
            ({"total": -1, "items": None}, "at least 0"),
            ({"total": True, "items": None}, "whole number"),
            ({"items": (2, 2, -1, 2, 1, 1, 2, 1, 5)}, "whole numbers"),
            ({"items": ()}, "whole numbers"),
            ({"instrument": ""}, "instrument"),
            ({"acknowledged_by": "dr.x"}, "who, when and what"),
            ({"id": 7}, "stored already"),
            ({"at": datetime(1999, 1, 1, tzinfo=UTC)}, "outside"),
        ],
    )
    def test_unusable_scores_refused_and_nothing_written(
        self, store: Store, changes: dict[str, Any], says: str
    ) -> None:
        with pytest.raises(InputError, match=says):
            store.record_score(phq9(**changes))
        assert store.scores("p-001") == []

    def test_score_and_audit_written_together(
        self, store: Store, store_target: StoreTarget
    ) -> None:
        row_id = store.record_score_with_audit(phq9(), entry(command="score record"))
        assert [s.id for s in store.scores("p-001")] == [row_id]
        assert [e.command for e in store.audit()] == ["score record"]
        inject_failure(store_target, "audit")
        with pytest.raises(StoreError, match="injected failure"):
            store.record_score_with_audit(phq9(5), entry(command="score record"))
        assert [s.id for s in store.scores("p-001")] == [row_id]

    def test_acknowledged_once_with_its_audit_entry(self, store: Store) -> None:
        row_id = store.record_score(phq9())
        at = T0 + timedelta(minutes=10)
        done = store.acknowledge_score_with_audit(
            "p-001", row_id, by="dr.x", at=at, text="seen", entry=entry(command="score ack")
        )
        who = store.actor or "dr.x"  # by who acts: on PostgreSQL the session user, never as given
        assert (done.acknowledged_by, done.acknowledged_at, done.acknowledgement) == (
            who,
            at,
            "seen",
        )
        assert store.scores("p-001") == [done]
        with pytest.raises(InputError, match=f"acknowledged already by {who}"):
            store.acknowledge_score_with_audit(
                "p-001", row_id, by="dr.y", at=at, text="again", entry=entry()
            )
        assert [e.command for e in store.audit()] == ["score ack"]

    def test_acknowledging_someone_elses_or_no_score_is_refused(self, store: Store) -> None:
        store.add_patient(patient("p-002"), at=T0)
        row_id = store.record_score(phq9())
        for patient_id, number, says in (
            ("p-002", row_id, "has no score"),
            ("p-001", row_id + 1, "has no score"),
            ("ghost", row_id, "no patient"),
        ):
            with pytest.raises(InputError, match=says):
                store.acknowledge_score_with_audit(
                    patient_id, number, by="dr.x", at=T0, text="seen", entry=entry()
                )
        assert not store.scores("p-001")[0].acknowledged
        assert store.audit() == []

    def test_schema_keeps_every_answer_from_any_connection(
        self, store: Store, store_target: StoreTarget
    ) -> None:
        row_id = store.record_score(phq9())
        refused = integrity_error(store_target)
        for statement in (
            f"UPDATE scores SET total = 0, items_json = '[0,0,0,0,0,0,0,0,0]' WHERE id = {row_id}",
            f"DELETE FROM scores WHERE id = {row_id}",
        ):
            with pytest.raises(refused, match="kept"):
                raw_sql(store_target, statement)
        # By who is connected (on a server that is the rule; on a file, whoever holds it).
        who = (
            "a"
            if store_target.sqlite
            else raw_rows(store_target, "SELECT session_user AS w")[0]["w"]
        )
        raw_sql(
            store_target,
            "UPDATE scores SET acknowledged_by = ?, acknowledged_at = ?, acknowledgement = 'b'",
            (who, T0.isoformat()),
        )
        with pytest.raises(refused, match="first acknowledgement"):
            raw_sql(store_target, "UPDATE scores SET acknowledgement = 'rewritten'")
        assert store.scores("p-001")[0].acknowledgement == "b"

    @pytest.mark.parametrize(
        ("column", "value", "says"),
        [
            ("items_json", "'[2,2,'", "not valid JSON"),
            ("items_json", """'{"a": 1}'""", "list of whole numbers"),
            ("items_json", "'[2,2,2,2,1,1,2,1,true]'", "list of whole numbers"),
            ("items_json", "'[2,2,2,2,1,1,2,1,2]'", "not the sum"),
            ("at", "'yesterday'", "ISO 8601"),
            ("instrument", "''", "non-empty text"),
            ("acknowledged_at", "'2024-03-04T10:00:00+01:00'", "incomplete"),
        ],
    )
    def test_a_row_changed_outside_ketadose_is_a_store_error(
        self, store: Store, store_target: StoreTarget, column: str, value: str, says: str
    ) -> None:
        store.record_score(phq9())
        # With the triggers and CHECKs off, as a hand edit may have them.
        statements = [*checks_off(store_target, "scores"), f"UPDATE scores SET {column} = {value}"]
        tamper(store_target, *statements)
        with pytest.raises(StoreError, match=says) as caught:
            store.scores("p-001")
        assert "scores row 1" in one_line(caught.value)
        assert caught.value.exit_code == 6

    @ON_SQLITE
    def test_a_blob_in_a_text_column_is_a_store_error(
        self, store: Store, store_target: StoreTarget
    ) -> None:
        # SQLite only: a TEXT column takes a blob there (PostgreSQL's type refuses it).
        store.record_score(phq9())
        tamper(store_target, "UPDATE scores SET instrument = x'70687139'")
        with pytest.raises(StoreError, match="non-empty text") as caught:
            store.scores("p-001")
        assert "scores row 1" in one_line(caught.value)

    @ON_SQLITE
    def test_a_total_that_is_not_whole_is_refused_by_the_schema(
        self, store: Store, store_target: StoreTarget
    ) -> None:
        # SQLite only: its CHECK (typeof(total) = 'integer') stands in for a column type;
        # PostgreSQL's BIGINT column rounds 28.5 (ketadose.store_pg: the store refuses it first).
        assert store_target.path is not None
        path = store_target.path
        store.record_score(phq9())
        with raw(path) as conn, pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            conn.execute(  # linked at the chain's head, so that only the CHECK can refuse it
                "INSERT INTO scores (patient_id, at, instrument, total, prev_hash, hash)"
                " VALUES ('p-001', '2024-03-04T09:30:00+01:00', 'madrs', 28.5,"
                " (SELECT hash FROM scores ORDER BY id DESC LIMIT 1), 'x')"
            )


def write_as_schema_4(path: Path, session: SessionRecord) -> int:
    """Record a session as the code of schema 3 and 4 wrote it: no ``reported`` column."""
    columns = (
        "patient_id, at, protocol, dose_mg, dose_mg_per_kg, duration_min, phases_json, "
        "bp_before_systolic, bp_before_diastolic, bp_peak_systolic, bp_peak_diastolic, "
        "bp_after_systolic, bp_after_diastolic, heart_rate, spo2, score, notes"
    )
    pressures = [
        value
        for bp in (session.bp_before, session.bp_peak, session.bp_after)
        for value in ((None, None) if bp is None else (bp.systolic, bp.diastolic))
    ]
    values = (
        session.patient_id,
        session.at.isoformat(),
        session.protocol,
        session.dose_mg,
        session.dose_mg_per_kg,
        session.duration_min,
        session.phases_json,
        *pressures,
        session.heart_rate,
        session.spo2,
        session.score,
        session.notes,
    )
    with raw(path) as conn:
        cursor = conn.execute(
            f"INSERT INTO sessions ({columns}) VALUES ({', '.join('?' * len(values))})", values
        )
        session_id = cursor.lastrowid
        assert session_id is not None
        conn.executemany(
            "INSERT INTO session_adverse_events (session_id, position, event, grade)"
            " VALUES (?, ?, ?, ?)",
            [
                (session_id, n, e.term, None if e.grade is None else e.grade.word)
                for n, e in enumerate(session.adverse_events)
            ],
        )
    return session_id


class TestReportsMigration:
    """Schema 5: a store of schema 4 gains ``reported``, backed up first; old sessions unreported."""

    def test_schema_4_store_keeps_its_sessions_unreported(self, path: Path) -> None:
        before = MIGRATIONS[: MIGRATIONS.index(_migrate_reports)]
        Store._open(path, read_only=False, migrations=before).close()
        add_old_patient(path, patient(), T0)
        session_id = write_as_schema_4(path, session_for(1))
        with Store.open(path) as store:
            (kept,) = store.sessions("p-001")
            assert kept == replace(session_for(1), id=session_id)
            assert kept.reported is False
            store.record_session(replace(session_for(2), reported=True))
            assert [s.reported for s in store.sessions("p-001")] == [False, True]
        with raw(path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
            with pytest.raises(sqlite3.IntegrityError):
                conn.execute("UPDATE sessions SET reported = 2")
        assert path.with_name(f"ketadose.db.bak-v{len(before)}").exists()


class TestScoresMigration:
    """A store from before the scores table gains it, backed up first, every session kept."""

    def test_older_store_gains_the_table_and_keeps_its_sessions(self, path: Path) -> None:
        before = MIGRATIONS[: MIGRATIONS.index(_migrate_scores)]
        Store._open(path, read_only=False, migrations=before).close()
        add_old_patient(path, patient(), T0)
        session_id = write_as_schema_4(path, session_for(1))
        with Store.open(path) as store:
            assert store.sessions("p-001") == [replace(session_for(1), id=session_id)]
            assert store.scores("p-001") == []
            store.record_score(phq9())
        with raw(path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        with raw(path.with_name(f"ketadose.db.bak-v{len(before)}")) as conn:
            assert (
                conn.execute("SELECT name FROM sqlite_master WHERE name = 'scores'").fetchone()
                is None
            )

    def test_the_migration_only_creates(self) -> None:
        conn = connect(StoreLocation.file(Path(":memory:")), read_only=False)
        _migrate_scores(conn, MigrationContext(Path("x"), None))
        names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
        assert names == {
            "scores",
            "scores_by_patient",
            "scores_acknowledge_only",
            "scores_no_delete",
        }
        assert len(MIGRATIONS) == SCHEMA_VERSION


class TestExposure:
    """A store file or directory other users may read or write is refused, unless shared."""

    @pytest.mark.parametrize(
        ("file_mode", "dir_mode", "what", "who"),
        [
            (0o644, 0o700, "file", "readable"),
            (0o666, 0o700, "file", "readable and writable"),
            (0o620, 0o700, "file", "writable"),
            (0o600, 0o755, "directory", "readable"),
            (0o600, 0o733, "directory", "writable"),
            (0o600, 0o1777, "directory", "readable and writable"),  # sticky as /tmp: still open
        ],
    )
    def test_refused_with_the_fix(
        self, path: Path, file_mode: int, dir_mode: int, what: str, who: str
    ) -> None:
        with Store.open(path) as store:
            store.add_patient(patient(), at=T0)
        path.chmod(file_mode)
        path.parent.chmod(dir_mode)
        before = path.read_bytes()
        with pytest.raises(StoreError) as caught:
            Store.open(path, read_only=True)
        message = one_line(caught.value)
        assert caught.value.exit_code == 6
        assert f"the store's {what} " in message and f" is {who} by other users" in message
        assert "store_shared = true" in message
        assert path.read_bytes() == before
        with Store.open(path, shared=True) as store:  # the config file's explicit allowance
            assert store.patient("p-001") == patient()

    def test_private_and_executable_directory_is_fine(self, path: Path) -> None:
        with Store.open(path) as store:
            store.add_patient(patient(), at=T0)
        path.parent.chmod(0o711)  # others may pass through, not list or write
        with Store.open(path, read_only=True) as store:
            assert store.patient("p-001") == patient()
