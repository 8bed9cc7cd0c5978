"""The record store's SQLite schema, version by version: tables, triggers, and each step up.

Version 1 made the tables; every later version is one step of :data:`MIGRATIONS` (append,
never edit), which the Alembic baseline (:mod:`ketadose.migrations`) runs on an SQLite file from
its own version. What a row's hash covers (:func:`_content`) is defined here with the chained
tables and their triggers, since both engines hash the same columns (PostgreSQL's schema is
:mod:`ketadose.store_pg`, which has these tables' names and columns).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from ketadose.authority import MEANINGS, ROLES
from ketadose.clock import name as zone_name
from ketadose.clock import problem
from ketadose.errors import (
    StoreError,
)
from ketadose.store_chain import GENESIS
from ketadose.store_chain import link as chain_link
from ketadose.store_sql import Database

#: ``PRAGMA application_id`` of a ketadose store ("KDOS"): tells our file from any other SQLite.
APPLICATION_ID = 0x4B444F53


@dataclass
class MigrationContext:
    """What a migration step may need besides the connection, and what it has to say.

    Attributes:
        path: The store file, or its URL (for messages).
        zone: The clinic's time zone, for values stored without one (None: not known).
        notices: Lines for the user about what the migration did (shown on stderr).
    """

    path: Path | str
    zone: tzinfo | None
    notices: list[str] = field(default_factory=list)


#: One migration step: runs inside the migration transaction; must not commit.
Migration = Callable[[Database, MigrationContext], None]

_V1 = (
    """
    CREATE TABLE patients (
        id TEXT PRIMARY KEY NOT NULL CHECK (length(id) > 0),
        protocol TEXT NOT NULL CHECK (length(protocol) > 0),
        baseline REAL NOT NULL,
        sex TEXT CHECK (sex IS NULL OR sex IN ('male', 'female')),
        created_at TEXT NOT NULL
    )
    """,
    # Weight and height history: a patient's weight is the latest row by time, never updated.
    """
    CREATE TABLE measurements (
        id INTEGER PRIMARY KEY,
        patient_id TEXT NOT NULL REFERENCES patients (id),
        at TEXT NOT NULL,
        weight_kg REAL NOT NULL CHECK (weight_kg > 0),
        height_cm REAL CHECK (height_cm IS NULL OR height_cm > 0)
    )
    """,
    "CREATE INDEX measurements_by_patient ON measurements (patient_id, at)",
    """
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        patient_id TEXT NOT NULL REFERENCES patients (id),
        at TEXT NOT NULL,
        protocol TEXT NOT NULL CHECK (length(protocol) > 0),
        dose_mg REAL NOT NULL CHECK (dose_mg >= 0),
        dose_mg_per_kg REAL CHECK (dose_mg_per_kg IS NULL OR dose_mg_per_kg >= 0),
        duration_min REAL CHECK (duration_min IS NULL OR duration_min >= 0),
        phases_json TEXT NOT NULL,
        bp_before_systolic REAL,
        bp_before_diastolic REAL,
        bp_peak_systolic REAL,
        bp_peak_diastolic REAL,
        bp_after_systolic REAL,
        bp_after_diastolic REAL,
        heart_rate REAL,
        spo2 REAL,
        score REAL,
        notes TEXT,
        CHECK ((bp_before_systolic IS NULL) = (bp_before_diastolic IS NULL)),
        CHECK ((bp_peak_systolic IS NULL) = (bp_peak_diastolic IS NULL)),
        CHECK ((bp_after_systolic IS NULL) = (bp_after_diastolic IS NULL))
    )
    """,
    "CREATE INDEX sessions_by_patient ON sessions (patient_id, at)",
    # One row per adverse event, in the order given, so a query can count hypertension etc.
    """
    CREATE TABLE session_adverse_events (
        session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        event TEXT NOT NULL CHECK (length(event) > 0),
        PRIMARY KEY (session_id, position)
    ) WITHOUT ROWID
    """,
    # patient_id is deliberately not a foreign key: an audit line must be writable for any
    # computation (a `dose` for a patient who is not in the store), and a log never refuses.
    # AUTOINCREMENT: an id is never handed out twice, even if a row were removed by force.
    """
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        user TEXT NOT NULL,
        command TEXT NOT NULL,
        patient_id TEXT,
        inputs_json TEXT NOT NULL,
        findings_json TEXT NOT NULL,
        status TEXT NOT NULL,
        override_reason TEXT,
        library_sha256 TEXT NOT NULL
    )
    """,
    "CREATE INDEX audit_by_patient ON audit (patient_id, id)",
    """
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN
        SELECT RAISE(ABORT, 'the audit log is append-only: UPDATE refused');
    END
    """,
    """
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN
        SELECT RAISE(ABORT, 'the audit log is append-only: DELETE refused');
    END
    """,
    # INSERT OR REPLACE deletes the old row without firing DELETE triggers (unless
    # recursive_triggers is on), so a replacing insert is refused before it happens.
    """
    CREATE TRIGGER audit_no_replace BEFORE INSERT ON audit
    WHEN NEW.id IS NOT NULL AND EXISTS (SELECT 1 FROM audit WHERE id = NEW.id)
    BEGIN
        SELECT RAISE(ABORT, 'the audit log is append-only: replacing an entry refused');
    END
    """,
    f"PRAGMA application_id = {APPLICATION_ID}",
)


def _migrate_to_v1(conn: Database, context: MigrationContext) -> None:
    """Create the whole version-1 schema (from an empty or pre-release store)."""
    for statement in _V1:
        conn.execute(statement)


#: The times a version-1 store kept as naive local text, by table (audit apart: see below).
_TIMED = (
    ("patients", "created_at", "rowid"),
    ("measurements", "at", "id"),
    ("sessions", "at", "id"),
)


def _migrate_to_v2(conn: Database, context: MigrationContext) -> None:
    """Version 2: every stored time carries its UTC offset.

    Patients, measurements and sessions written without an offset are rewritten as that
    wall-clock time in the clinic's zone given now (``context.zone``). A time that happened
    twice (clocks going back) is read as the first of the two; one the clocks skipped as the
    same moment after the change; each such row is named in a notice.

    The audit log is append-only (its triggers stay as they are): its entries keep the text
    they were written with, and ``store_meta.naive_zone`` records the zone they are read in.

    Raises:
        StoreError: There are naive times and no zone to read them in; nothing is changed.
    """
    conn.execute(
        "CREATE TABLE store_meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID"
    )
    naive: dict[str, list[tuple[Any, str]]] = {}
    for table, column, key in _TIMED:
        rows = conn.execute(f"SELECT {key}, {column} FROM {table}").fetchall()
        naive[table] = [(k, text) for k, text in rows if _is_naive(text)]
    audit = sum(_is_naive(text) for (text,) in conn.execute("SELECT at FROM audit"))
    if not any(naive.values()) and not audit:
        return
    zone = context.zone
    if zone is None:
        raise StoreError(
            f"store {context.path} keeps times without a time zone (written before schema "
            "version 2); open it with the clinic's zone (--tz ZONE or KETADOSE_TZ) to migrate it"
        )
    unusual: list[str] = []
    for table, column, key in _TIMED:
        for row_key, text in naive[table]:
            local = datetime.fromisoformat(text)
            found = problem(local, zone)
            # fold=0: the first of a repeated time; for a skipped one, the offset before the
            # change, which astimezone turns into the same moment on the new offset.
            value = local.replace(tzinfo=zone, fold=0).astimezone(zone)
            if found is not None:
                unusual.append(
                    f"{table} {row_key} at {text} ({found}, read as {value.isoformat()})"
                )
            conn.execute(
                f"UPDATE {table} SET {column} = ? WHERE {key} = ?", (value.isoformat(), row_key)
            )
    conn.execute("INSERT INTO store_meta (key, value) VALUES ('naive_zone', ?)", (zone_name(zone),))
    count = sum(len(rows) for rows in naive.values())
    kept = (
        f"; {audit} audit entr{'y keeps its' if audit == 1 else 'ies keep their'} text "
        f"(append-only) and {'is' if audit == 1 else 'are'} read as {zone_name(zone)} time"
        if audit
        else ""
    )
    context.notices.append(
        f"migrated store {context.path} to schema version 2: {count} time(s) without a zone "
        f"read as {zone_name(zone)} local time and stored with their UTC offset{kept}"
    )
    if unusual:
        context.notices.append(
            "times on a daylight-saving change, check them: " + "; ".join(unusual)
        )


def _is_naive(text: str) -> bool:
    try:
        return datetime.fromisoformat(text).tzinfo is None
    except ValueError:
        return False  # not ours to fix: reading it will say what is wrong


_V3 = (
    # The dose's own basis, what was planned beside what was given, an early stop, discharge.
    "ALTER TABLE sessions ADD COLUMN weight_policy TEXT"
    " CHECK (weight_policy IS NULL OR weight_policy IN ('actual', 'ideal', 'adjusted', 'lean'))",
    "ALTER TABLE sessions ADD COLUMN dosing_weight_kg REAL"
    " CHECK (dosing_weight_kg IS NULL OR dosing_weight_kg > 0)",
    "ALTER TABLE sessions ADD COLUMN planned_dose_mg REAL"
    " CHECK (planned_dose_mg IS NULL OR planned_dose_mg >= 0)",
    "ALTER TABLE sessions ADD COLUMN planned_dose_mg_per_kg REAL"
    " CHECK (planned_dose_mg_per_kg IS NULL OR planned_dose_mg_per_kg >= 0)",
    "ALTER TABLE sessions ADD COLUMN stopped_at TEXT",
    "ALTER TABLE sessions ADD COLUMN stop_reason TEXT",
    "ALTER TABLE sessions ADD COLUMN discharged_at TEXT",
    # An event is a term of the vocabulary and a CTCAE grade; NULL only for an event kept from
    # a store written before grades were asked for.
    "ALTER TABLE session_adverse_events ADD COLUMN grade TEXT"
    " CHECK (grade IS NULL OR grade IN ('mild', 'moderate', 'severe', 'life-threatening'))",
    # The vitals timeline: one row per reading, with the answer the limits gave when recorded.
    """
    CREATE TABLE session_readings (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        at TEXT NOT NULL,
        systolic REAL,
        diastolic REAL,
        heart_rate REAL,
        spo2 REAL,
        sedation INTEGER CHECK (sedation IS NULL OR sedation BETWEEN 0 AND 5),
        answer TEXT NOT NULL CHECK (answer IN ('continue', 'pause', 'stop')),
        findings_json TEXT NOT NULL,
        CHECK ((systolic IS NULL) = (diastolic IS NULL)),
        CHECK (systolic IS NOT NULL OR heart_rate IS NOT NULL OR spo2 IS NOT NULL)
    )
    """,
    "CREATE INDEX session_readings_by_session ON session_readings (session_id, at)",
)


def _migrate_to_v3(conn: Database, context: MigrationContext) -> None:
    """Version 3: the session as the clinic records it.

    Adds each session's dosing basis (weight policy, dosing weight), the planned dose beside
    the given one, an early stop and the discharge time; a CTCAE grade for every adverse
    event; and the vitals timeline (``session_readings``). Every recorded session is kept:
    its dosing weight is filled in as mg over mg/kg where both were recorded (the policy and
    the planned dose were not recorded then and stay NULL). Each event is read by the one
    event reader: ``dissociation:severe`` becomes that term and grade; an event without a
    grade, or outside the vocabulary, keeps its text ungraded (``next`` asks for the grade
    before deciding on it), and a notice says how many.
    """
    from ketadose.events import legacy

    for statement in _V3:
        conn.execute(statement)
    conn.execute(
        "UPDATE sessions SET dosing_weight_kg = dose_mg / dose_mg_per_kg"
        " WHERE dose_mg_per_kg > 0 AND dose_mg > 0"
    )
    ungraded = 0
    rows = conn.execute("SELECT session_id, position, event FROM session_adverse_events")
    for session_id, position, text in rows.fetchall():
        event = legacy(text)
        ungraded += event.grade is None
        conn.execute(
            "UPDATE session_adverse_events SET event = ?, grade = ?"
            " WHERE session_id = ? AND position = ?",
            (event.term, None if event.grade is None else event.grade.word, session_id, position),
        )
    if ungraded:
        context.notices.append(
            f"migrated store {context.path} to schema version 3: {ungraded} adverse event(s) "
            "recorded without a grade are kept ungraded; `next` asks for their grade"
        )


_SCORES = (
    # One row per questionnaire answered. items_json is the item answers as a JSON list, or
    # NULL for a total recorded alone (a clinician-rated MADRS). The acknowledgement of a
    # safety finding (PHQ-9 item 9) is three columns, all set or all NULL.
    """
    CREATE TABLE scores (
        id INTEGER PRIMARY KEY,
        patient_id TEXT NOT NULL REFERENCES patients (id),
        at TEXT NOT NULL,
        instrument TEXT NOT NULL CHECK (length(instrument) > 0),
        items_json TEXT,
        total INTEGER NOT NULL CHECK (typeof(total) = 'integer' AND total >= 0),
        acknowledged_by TEXT CHECK (acknowledged_by IS NULL OR length(acknowledged_by) > 0),
        acknowledged_at TEXT,
        acknowledgement TEXT CHECK (acknowledgement IS NULL OR length(acknowledgement) > 0),
        CHECK ((acknowledged_by IS NULL) = (acknowledged_at IS NULL)),
        CHECK ((acknowledged_by IS NULL) = (acknowledgement IS NULL))
    )
    """,
    "CREATE INDEX scores_by_patient ON scores (patient_id, at)",
    # A recorded answer is never lost or rewritten: the only change allowed is acknowledging
    # a finding once (the three acknowledgement columns, from NULL); a score is never deleted.
    """
    CREATE TRIGGER scores_acknowledge_only BEFORE UPDATE ON scores
    WHEN OLD.acknowledged_at IS NOT NULL
        OR NEW.id IS NOT OLD.id OR NEW.patient_id IS NOT OLD.patient_id OR NEW.at IS NOT OLD.at
        OR NEW.instrument IS NOT OLD.instrument OR NEW.items_json IS NOT OLD.items_json
        OR NEW.total IS NOT OLD.total
    BEGIN
        SELECT RAISE(ABORT, 'a recorded score is kept: only a first acknowledgement may be added');
    END
    """,
    """
    CREATE TRIGGER scores_no_delete BEFORE DELETE ON scores
    BEGIN
        SELECT RAISE(ABORT, 'a recorded score is kept as answered: DELETE refused');
    END
    """,
)


def _migrate_scores(conn: Database, context: MigrationContext) -> None:
    """Add the ``scores`` table (questionnaires scored item by item); changes nothing else."""
    for statement in _SCORES:
        conn.execute(statement)


def _migrate_reports(conn: Database, context: MigrationContext) -> None:
    """Version 5: whether the adverse events of a session were reported as complete.

    A take-home dose is not observed: its tolerability rests on the patient's report, and an
    empty list of events is a report only when it says so (``reported = 1``). Sessions
    recorded before keep NULL: not reported.
    """
    conn.execute(
        "ALTER TABLE sessions ADD COLUMN reported INTEGER CHECK (reported IS NULL OR reported = 1)"
    )


#: Version 6: the hash chain (see :mod:`ketadose.store_chain`) on the audit log and sessions.
_CHAINED = ("audit", "sessions")


def _order(table: str) -> str:
    """The column a table's chain runs in: its id, or (patients, named by id) its rowid."""
    return "rowid" if table == "patients" else "id"


_V6 = (
    "ALTER TABLE audit ADD COLUMN claimed TEXT",
    *(f"ALTER TABLE {table} ADD COLUMN prev_hash TEXT" for table in _CHAINED),
    *(f"ALTER TABLE {table} ADD COLUMN hash TEXT" for table in _CHAINED),
)


def _chain_trigger(table: str) -> str:
    """The trigger that lets a row into ``table`` only at its chain's head.

    An insert whose link is not the last row's hash, or whose id is not past the last id (a
    back-dated insert), is refused.
    """
    order = _order(table)
    # A row given an id at or below the last one is back-dated (patients: ids are names).
    backdated = (
        f"\n        OR (NEW.id > 0 AND NEW.id <= coalesce((SELECT max(id) FROM {table}), 0))"
        if order == "id"
        else ""
    )
    return f"""
    CREATE TRIGGER {table}_chain BEFORE INSERT ON {table}
    WHEN NEW.prev_hash IS NOT coalesce(
            (SELECT hash FROM {table} ORDER BY {order} DESC LIMIT 1), '{"0" * 64}')
        OR NEW.hash IS NULL{backdated}
    BEGIN
        SELECT RAISE(ABORT, 'the {table} chain only grows at its head: insert refused');
    END
    """


#: The triggers of version 6 (``store check`` reports any missing or made with other SQL).
CHAIN_TRIGGERS = {f"{table}_chain": _chain_trigger(table) for table in _CHAINED} | {
    "sessions_no_delete": """
    CREATE TRIGGER sessions_no_delete BEFORE DELETE ON sessions
    BEGIN
        SELECT RAISE(ABORT, 'a recorded session is kept: DELETE refused');
    END
    """,
    # The one change a session may see, once: its discharge time (its audit entry is chained).
    "sessions_discharge_only": """
    CREATE TRIGGER sessions_discharge_only BEFORE UPDATE ON sessions
    WHEN OLD.discharged_at IS NOT NULL OR NEW.discharged_at IS NULL
        OR julianday(NEW.discharged_at) IS NULL
        OR julianday(NEW.discharged_at) < julianday(OLD.at)
        OR NEW.id IS NOT OLD.id OR NEW.hash IS NOT OLD.hash
        OR NEW.prev_hash IS NOT OLD.prev_hash OR NEW.at IS NOT OLD.at
        OR NEW.dose_mg IS NOT OLD.dose_mg OR NEW.patient_id IS NOT OLD.patient_id
    BEGIN
        SELECT RAISE(ABORT, 'a recorded session is kept: only its discharge may be added');
    END
    """,
}


#: The indexes the indexed reads stand on (issue 16): a patient's sessions in time order, as
#: :data:`_BY_TIME` orders them (``julianday`` is the instant, whatever the stored offset), so
#: that ``next`` and ``session record`` read the sessions they decide on (the last ones, a
#: 7-day window, a count) instead of the whole history, and the readings of a session in
#: time order. They are not a schema step: an index changes no row and no answer, only how
#: fast one comes, so every store opened writable gets any that is missing (see
#: :meth:`Store._index`), new stores included, and no schema version is spent on them. A
#: store only ever opened read-only by an older ketadose lacks them and gives the same
#: answers, more slowly.
INDEXES = {
    "sessions_by_patient_time": "CREATE INDEX IF NOT EXISTS sessions_by_patient_time"
    " ON sessions (patient_id, julianday(at), at)",
    "session_readings_by_session_time": "CREATE INDEX IF NOT EXISTS"
    " session_readings_by_session_time ON session_readings (session_id, julianday(at))",
}


def _migrate_chain(conn: Database, context: MigrationContext) -> None:
    """Version 6: a hash chain on the audit log and the sessions, and who claimed to act.

    The rows already there are sealed in their order: the chain then proves nothing about
    what happened before the migration, only that nothing changes after it (a notice says
    from which entry). The audit log's update trigger is set aside for that one step.
    """
    for statement in _V6:
        conn.execute(statement)
    conn.execute("DROP TRIGGER audit_no_update")
    sealed = {table: _seal(conn, table) for table in _CHAINED}
    conn.execute(_V1[8])  # audit_no_update again, as version 1 made it
    for statement in CHAIN_TRIGGERS.values():
        conn.execute(statement)
    if any(sealed.values()):
        context.notices.append(
            f"migrated store {context.path} to schema version 6: {sealed['audit']} audit "
            f"entr{'y' if sealed['audit'] == 1 else 'ies'} and {sealed['sessions']} "
            "session(s) sealed into the hash chain as they were"
        )


def _seal(conn: Database, table: str) -> int:
    """Chain a table's rows in id order; returns how many."""
    previous = GENESIS
    order = _order(table)
    rows = conn.execute(f"SELECT {order} AS _order, * FROM {table} ORDER BY {order}")
    names = list(rows.keys())
    count = 0
    for row in rows.fetchall():
        values = dict(zip(names, row, strict=True))
        content = _content(table, values, conn)
        digest = chain_link(previous, content)
        conn.execute(
            f"UPDATE {table} SET prev_hash = ?, hash = ? WHERE {order} = ?",
            (previous, digest, values["_order"]),
        )
        previous = digest
        count += 1
    return count


def _content(
    table: str,
    row: dict[str, Any],
    conn: Database | sqlite3.Connection | None,
    events: list[list[Any]] | None = None,
) -> dict[str, Any]:
    """What a row's hash covers: its columns but its order column, links and unhashed ones.

    The :data:`_UNHASHED` columns (a discharge, an acknowledgement) are added later, with an
    audit entry of their own. A session's adverse events are hashed with it (given, or read
    by its id). Every number is hashed as a float, whatever the column's affinity stores (80
    and 80.0 alike).
    """
    # A null is left out: a column added later, null in the rows before it, leaves their
    # hashes as they were; setting a value or clearing one still changes the content.
    left_out = _UNHASHED.get(table, frozenset()) | {_order(table), "_order", "prev_hash", "hash"}
    content = {k: v for k, v in row.items() if k not in left_out and v is not None}
    if table == "sessions" and events is not None:
        content["adverse_events"] = events
    elif table == "sessions":
        assert conn is not None, "a session's events are read with it, or given"
        content["adverse_events"] = [
            list(event)
            for event in conn.execute(
                "SELECT event, grade FROM session_adverse_events WHERE session_id = ?"
                " ORDER BY position",
                (row["id"],),
            )
        ]
    return {k: _real(v) for k, v in content.items()}


def _real(value: object) -> object:
    """A number as a float (80 and 80.0 alike), whatever the column's affinity makes of it."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) + 0.0  # -0.0 as 0.0: SQLite keeps no sign of a zero
    return value


#: Columns outside a row's hash besides its order column and the chain: a session's discharge
#: time (added once, later, with its own audit entry) and a score's acknowledgement (likewise).
_UNHASHED: dict[str, frozenset[str]] = {
    "sessions": frozenset({"discharged_at"}),
    "scores": frozenset({"acknowledged_by", "acknowledged_at", "acknowledgement"}),
}


#: Version 7: the clinicians registered with their roles, and the signatures, both chained and
#: append-only; a session whose override needs a second clinician says so (``cosign``).
_V7 = (
    f"""
    CREATE TABLE clinicians (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE CHECK (length(name) > 0),
        role TEXT NOT NULL CHECK (role IN ({", ".join(repr(r) for r in ROLES)})),
        added_at TEXT NOT NULL,
        added_by TEXT NOT NULL,
        prev_hash TEXT,
        hash TEXT
    )
    """,
    f"""
    CREATE TABLE signatures (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        audit_id INTEGER NOT NULL REFERENCES audit (id),
        session_id INTEGER REFERENCES sessions (id),
        signer TEXT NOT NULL,
        role TEXT,
        meaning TEXT NOT NULL CHECK (meaning IN ({", ".join(repr(m) for m in MEANINGS)})),
        at TEXT NOT NULL,
        prev_hash TEXT,
        hash TEXT
    )
    """,
    "CREATE INDEX signatures_by_session ON signatures (session_id, meaning)",
    "CREATE INDEX signatures_by_audit ON signatures (audit_id)",
    "ALTER TABLE sessions ADD COLUMN cosign INTEGER CHECK (cosign IS NULL OR cosign = 1)",
    *(
        f"ALTER TABLE {table} ADD COLUMN prev_hash TEXT"
        for table in ("patients", "measurements", "scores", "session_readings")
    ),
    *(
        f"ALTER TABLE {table} ADD COLUMN hash TEXT"
        for table in ("patients", "measurements", "scores", "session_readings")
    ),
)

#: The tables of version 7 and their triggers: each grows at its chain's head, and nothing in
#: them is changed or removed (a role is not edited: a clinician is registered once).
_SIGNED = ("clinicians", "signatures")
#: The tables of the patients' records chained from version 7: every input of a dose decision.
_RECORDS = ("patients", "measurements", "scores", "session_readings")
V7_TRIGGERS = {
    **{f"{table}_chain": _chain_trigger(table) for table in (*_SIGNED, *_RECORDS)},
    **{
        f"{table}_no_{verb.lower()}": f"""
        CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table}
        BEGIN
            SELECT RAISE(ABORT, '{table} are append-only: {verb} refused');
        END
        """
        for table in (*_SIGNED, "patients", "measurements", "session_readings")
        for verb in ("UPDATE", "DELETE")
    },
    # A score's acknowledgement is the one change it may see: never its links.
    "scores_links_kept": """
    CREATE TRIGGER scores_links_kept BEFORE UPDATE ON scores
    WHEN NEW.hash IS NOT OLD.hash OR NEW.prev_hash IS NOT OLD.prev_hash
    BEGIN
        SELECT RAISE(ABORT, 'a recorded score keeps its place in the chain: UPDATE refused');
    END
    """,
}

#: Every chained table, in the order ``store check`` reports them.
CHAINED = (*_CHAINED, *_SIGNED, *_RECORDS)

#: Every trigger a current store has.
TRIGGERS = (
    "audit_no_update",
    "audit_no_delete",
    "audit_no_replace",
    "scores_acknowledge_only",
    "scores_no_delete",
    *CHAIN_TRIGGERS,
    *V7_TRIGGERS,
)


def _triggers_made(*statements: str) -> dict[str, str]:
    """Each trigger these statements make, by name, with its SQL as SQLite keeps it (spaced)."""
    made = {}
    for statement in statements:
        found = re.match(r"\s*CREATE TRIGGER (\w+)", statement)
        if found:
            made[found[1]] = " ".join(statement.split())
    return made


#: The SQL of every trigger, as the migrations make it (``missing_triggers`` compares).
_TRIGGER_SQL = _triggers_made(*_V1, *_SCORES, *CHAIN_TRIGGERS.values(), *V7_TRIGGERS.values())


def _migrate_signatures(conn: Database, context: MigrationContext) -> None:
    """Version 7: clinicians with roles, signatures, and sessions that await a co-signature.

    A store migrated here has no clinician registered: it is a single-user workstation (its
    overrides need no role) until someone registers as its admin.
    """
    for statement in _V7:
        conn.execute(statement)
    # Entries from here on are signed: store check matches each to its signature and its row.
    conn.execute(
        "INSERT INTO store_meta (key, value) SELECT 'signed_from', coalesce(max(id), 0) + 1"
        " FROM audit"
    )
    conn.execute("DROP TRIGGER scores_acknowledge_only")  # set aside to seal acknowledged ones
    for table in _RECORDS:
        _seal(conn, table)
    conn.execute(_SCORES[2])  # scores_acknowledge_only again, as version 4 made it
    for statement in V7_TRIGGERS.values():
        conn.execute(statement)


#: ``MIGRATIONS[n]`` takes a store from version ``n`` to ``n + 1``. Append, never edit.
MIGRATIONS: tuple[Migration, ...] = (
    _migrate_to_v1,
    _migrate_to_v2,
    _migrate_to_v3,
    _migrate_scores,
    _migrate_reports,
    _migrate_chain,
    _migrate_signatures,
)

#: The schema version this code reads and writes: the head of the Alembic revisions
#: (:mod:`ketadose.migrations`; a test holds the two equal). Version 7 is the baseline, the last
#: of :data:`MIGRATIONS`; a later version is a revision alone.
SCHEMA_VERSION: int = 7
