"""Helpers for tests that handle store files as older versions of ketadose left them."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import datetime
from pathlib import Path

from ketadose.records import PatientRecord
from ketadose.store import CHAIN_TRIGGERS, V7_TRIGGERS


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
