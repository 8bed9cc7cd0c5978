"""The record store: patients, sessions given, questionnaire scores and the append-only audit log.

One store, two engines, the same code above the connection (:mod:`ketadose.store_sql`):

* **SQLite** (the default, embedded): one file in WAL mode with foreign keys on, created
  readable and writable by its owner only (0o600; SQLite gives its ``-wal`` and ``-shm`` files
  the same mode), refused when others may read or write it (:func:`exposure`). The schema
  version is ``PRAGMA user_version``, ``PRAGMA application_id`` marks the file as ours; opening
  an older store first copies it to ``PATH.bak-v{old}``.
* **PostgreSQL** (a clinic's shared store, :mod:`ketadose.store_pg`): the same tables, columns
  and trigger names; the schema version is Alembic's. The clinicians' role may read and append,
  never change (grants), and who acts is the server's session user.

Every write is one transaction holding the store's write lock (``BEGIN IMMEDIATE``, or an
advisory lock on PostgreSQL), so concurrent writers queue behind a 5 s timeout instead of
failing half-way, and a process killed mid-write, or a server gone, leaves the store as it was.
Schema changes are Alembic revisions (:mod:`ketadose.migrations`; the SQLite steps since
version 1 are :data:`ketadose.store_schema.MIGRATIONS`). A newer store, or a database that is not
a ketadose store, is refused untouched.

Tamper evidence: every table a decision reads carries a hash chain; triggers let a row in only
at its chain's head and refuse UPDATE and DELETE; every row read is checked against its own
hash (:mod:`ketadose.store_rows`); ``store check`` and ``audit verify`` recompute the chains and
match the log to its rows (:mod:`ketadose.store_crossings`).

Reads that decide (``next``, ``session record``) are indexed queries that cost the same at 100
sessions as at 100,000: a COUNT of a patient's starts, the latest start, a time range
(:meth:`Store.session_count`, :meth:`Store.last_session_at`, :meth:`Store.sessions_between`,
:meth:`Store.sessions_around`), on the time index of :data:`INDEXES`. Reads that show
everything (``history``, ``audit``) are generators over a cursor (:meth:`Store.iter_sessions`,
:meth:`Store.iter_audit`; a server-side cursor on PostgreSQL), in flat memory.

This module is pure of CLI concerns: it prints nothing, and reads no clock and no environment;
times come in as arguments. Every database error leaves as a one-line
:class:`~ketadose.errors.StoreError` (exit 6), or as an :class:`~ketadose.errors.InputError`
(exit 2) when the value itself is the problem (unknown or duplicate patient, a number the schema
refuses).
"""

from __future__ import annotations

import json
import os
import sqlite3
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from types import TracebackType
from typing import Any

from ketadose import store_sql, store_url
from ketadose.authority import MEANINGS, ROLES
from ketadose.clock import instant
from ketadose.errors import (
    InputError,
    KetadoseError,
    OverrideRefusedError,
    StoreError,
    StoreMigrationError,
)
from ketadose.records import (
    AuditEntry,
    Clinician,
    PatientRecord,
    Reading,
    SessionRecord,
    Signature,
)
from ketadose.scores import ScoreRecord
from ketadose.store_chain import GENESIS, Break, Link
from ketadose.store_chain import link as chain_link
from ketadose.store_chain import verify as chain_verify
from ketadose.store_crossings import _crossings, _tail_gone
from ketadose.store_rows import (
    _AUDIT_COLUMNS,
    _BY_TIME,
    _MEASUREMENT_NAMES,
    _PATIENT_NAMES,
    _READING_COLUMNS,
    _READING_NAMES,
    _SCORE_COLUMNS,
    _SCORE_NAMES,
    _SESSION_COLUMNS,
    _SESSION_NAMES,
    _SIGNATURE_COLUMNS,
    AUDIT_STATUSES,
    _audit_from_row,
    _bp,
    _check_audit,
    _check_reading,
    _check_score,
    _check_session,
    _finite,
    _in_range,
    _patient_from_rows,
    _Row,
    _score_from_row,
    _sealed,
    _session_from_row,
    _stamp,
    _zone_from_text,
)
from ketadose.store_schema import (
    _SIGNED,
    _TRIGGER_SQL,
    APPLICATION_ID,
    CHAIN_TRIGGERS,
    CHAINED,
    INDEXES,
    MIGRATIONS,
    SCHEMA_VERSION,
    TRIGGERS,
    V7_TRIGGERS,
    Migration,
    MigrationContext,
    _content,
    _order,
)
from ketadose.store_sql import Database, Error, Result

#: The store's public names (the schema's constants are re-exported from its own module).
__all__ = [
    "APPLICATION_ID",
    "AUDIT_STATUSES",
    "BUSY_TIMEOUT_S",
    "CHAINED",
    "CHAIN_TRIGGERS",
    "INDEXES",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "TRIGGERS",
    "V7_TRIGGERS",
    "Chain",
    "MigrationContext",
    "Store",
    "StoreState",
    "exposure",
    "inspect",
]
from ketadose.store_url import StoreLocation

#: How long a writer waits for another writer's transaction before giving up, in seconds.
BUSY_TIMEOUT_S = store_sql.BUSY_TIMEOUT_S


@dataclass(frozen=True)
class Chain:
    """One chained table as verified: its rows, its head (last id and hash), its first break."""

    table: str
    rows: int
    head_id: int | None
    head: str | None
    broken: Break | None


class Store:
    """An open record store; use :meth:`open`, and close it (or use it as a context manager).

    Not thread-safe: one :class:`Store` per thread. Separate processes may share one file.
    """

    def __init__(self, database: Database, location: StoreLocation) -> None:
        """Wrap an open connection; call :meth:`open` instead."""
        self._conn = database
        self._location = location
        #: How messages name the store: its file, or its URL (never a password: none is in it).
        self._path: Path | str = location.path if location.path is not None else location.shown
        self._read_only = False
        self._naive_zone: tzinfo | None = None
        self._zone: tzinfo | None = None
        self._held = False  # inside exclusive(): one transaction holds the write lock
        #: What opening the store did that the user should hear of (a migration's notes).
        self.notices: tuple[str, ...] = ()
        #: Who is acting, as the system authenticated them: on SQLite the OS user of the
        #: process (the command line passes it, from its effective uid), on PostgreSQL the
        #: database session user (the server authenticated them). Every audit entry records
        #: it as its user, and a different name given is kept beside it as a claim. None (a
        #: library caller of an SQLite store that names no actor): the entry's own user.
        self.actor: str | None = None

    # --- opening ---------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        where: Path | str | StoreLocation,
        *,
        read_only: bool = False,
        zone: tzinfo | None = None,
        actor: str | None = None,
        shared: bool = False,
    ) -> Store:
        """Open the store at ``where``, creating it if needed (an SQLite file and its directory).

        A new SQLite file is created with mode 0o600; a new PostgreSQL database (empty, made
        by its owner) gets the schema and the grants of :mod:`ketadose.store_pg`. An older
        schema is migrated before anything else happens (an SQLite file is first copied to
        ``PATH.bak-v{old}``).

        Args:
            where: A file, or a ``--store`` value (:func:`ketadose.store_url.parse`).
            read_only: Open without the right to write: nothing is created or migrated, and
                every write raises :class:`StoreError`.
            zone: The clinic's time zone: times read are given in it (the same moments as
                stored), and a migration reads times stored without a zone (before schema
                version 2) in it. Without it, times come with the offset they were stored with,
                and a store with such times cannot be migrated.
            actor: Who is acting on an SQLite store, as authenticated (see :attr:`actor`).
                On PostgreSQL it is always the session user, whatever is given.
            shared: Allow an SQLite file or directory that other users may read or write
                (the config file's ``store_shared``); refused otherwise (:func:`exposure`).

        Returns:
            The open store.

        Raises:
            InputError: ``where`` is not a store location (a URL with a password ...).
            StoreError: The store cannot be created, reached or opened, is not a ketadose
                store, has a newer schema, or cannot be migrated.
        """
        location = store_url.parse(where)
        problem = None if location.path is None or shared else exposure(location.path)
        if problem is not None:
            raise StoreError(problem)
        store = cls._open(location, read_only=read_only, migrations=MIGRATIONS, zone=zone)
        store.actor = actor if location.path is not None else store._session_user()
        return store

    @classmethod
    def _open(
        cls,
        where: Path | str | StoreLocation,
        *,
        read_only: bool,
        migrations: Sequence[Migration],
        zone: tzinfo | None = None,
    ) -> Store:
        """Open with an explicit migration list (the tests add a fake later version)."""
        location = store_url.parse(where)
        try:
            if location.path is not None:
                if read_only and not location.path.is_file():
                    raise StoreError(f"no store at {location.path}")
                if not read_only:
                    _create_private(location.path)
            database = store_sql.connect(location, read_only=read_only)
        except Error as error:
            hint = ""
            if store_sql.kind(error) == "cantopen" and location.path is not None:
                hint = "; check the permissions of the store file and its directory"
            raise StoreError(f"cannot open store {location}: {_one_line(error)}{hint}") from None
        store = cls(database, location)
        store._read_only = read_only
        try:
            store._zone = zone
            store._prepare(read_only=read_only, migrations=migrations, zone=zone)
        except BaseException:
            database.close()
            raise
        return store

    def _session_user(self) -> str:
        """Who the database server authenticated (PostgreSQL)."""
        from ketadose import store_pg

        with self._errors("read who is connected"):
            return store_pg.session_user(self._conn.connection)

    def _prepare(
        self, *, read_only: bool, migrations: Sequence[Migration], zone: tzinfo | None
    ) -> None:
        """Check what the database is, then set the connection up and migrate it if needed."""
        target = _target(migrations)
        with self._errors("open"):
            try:
                version, application_id, objects = self._identity()
            except Error as error:
                if store_sql.kind(error) == "notadb":
                    raise StoreError(
                        f"{self._path} is not a ketadose store: not an SQLite database, or "
                        "damaged beyond reading"
                    ) from None
                raise
            _refuse_foreign(self._location, version, application_id, objects)
            if version > target:
                raise StoreError(
                    f"{self._path} has store schema version {version}, newer than the version "
                    f"{target} this ketadose supports; upgrade ketadose to use it"
                )
            if self._conn.sqlite:
                self._conn.script("PRAGMA foreign_keys = ON")
                if not read_only:
                    mode = self._conn.execute("PRAGMA journal_mode = WAL").scalar_one()
                    if str(mode).lower() != "wal":
                        raise StoreError(f"cannot switch store {self._path} to WAL mode ({mode})")
                # FULL: a commit that returned is on disk, power loss included.
                self._conn.script("PRAGMA synchronous = FULL")
        if version < target:
            if read_only:
                raise StoreMigrationError(
                    f"{self._path} has store schema version {version} and needs migrating to "
                    f"version {target}; open it once without read-only",
                    version=version,
                )
            self._migrate(migrations, zone)
        if not read_only and target == SCHEMA_VERSION and self._conn.sqlite:
            self._index()
        with self._errors("open"):
            self._naive_zone = self._read_naive_zone()

    def _index(self) -> None:
        """Create the :data:`INDEXES` that are missing (one write, only when one is).

        SQLite only: a PostgreSQL schema has them from its creation, made by its owner (the
        clinicians' role may not create objects).
        """
        with self._errors("index"):
            present = {
                name
                for (name,) in self._conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'index'"
                )
            }
        missing = [statement for name, statement in INDEXES.items() if name not in present]
        if missing:
            with self._transaction("index") as conn:
                for statement in missing:
                    conn.script(statement)

    def _has_table(self, name: str) -> bool:
        if self._conn.sqlite:
            sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        else:
            sql = (
                "SELECT 1 FROM pg_catalog.pg_tables"
                " WHERE schemaname = current_schema() AND tablename = ?"
            )
        return self._conn.execute(sql, (name,)).first() is not None

    def _read_naive_zone(self) -> tzinfo | None:
        """The zone a migration read naive times in (the audit log's old entries keep them)."""
        if not self._has_table("store_meta"):
            return None
        row = self._conn.execute("SELECT value FROM store_meta WHERE key = 'naive_zone'").first()
        return None if row is None else _zone_from_text(row[0])

    def _identity(self) -> tuple[int, int, int]:
        """The schema version, application id and number of schema objects of the database.

        SQLite keeps the version and the id in its header (``PRAGMA``); a PostgreSQL store
        keeps its version in Alembic's ``alembic_version`` and says it is ketadose's in
        ``store_meta``.
        """
        if self._conn.sqlite:
            version = int(self._conn.execute("PRAGMA user_version").scalar_one())
            application_id = int(self._conn.execute("PRAGMA application_id").scalar_one())
            objects = int(self._conn.execute("SELECT count(*) FROM sqlite_master").scalar_one())
            return version, application_id, objects
        objects = int(
            self._conn.execute(
                "SELECT count(*) FROM pg_catalog.pg_class AS c"
                " JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace"
                " WHERE n.nspname = current_schema()"
            ).scalar_one()
        )
        if not objects:
            return 0, 0, 0
        version = 0
        if self._has_table("alembic_version"):
            found = [
                row[0] for row in self._conn.execute("SELECT version_num FROM alembic_version")
            ]
            if len(found) > 1 or (found and not str(found[0]).isdigit()):
                raise StoreError(
                    f"{self._path} names a schema version ketadose does not know (Alembic "
                    f"revision {', '.join(map(str, found))}); refusing to change it"
                )
            version = int(found[0]) if found else 0
        ours = (
            self._has_table("store_meta")
            and self._conn.execute(
                "SELECT 1 FROM store_meta WHERE key = 'application' AND value = 'ketadose'"
            ).first()
            is not None
        )
        return version, APPLICATION_ID if ours else 0, objects

    def _migrate(self, migrations: Sequence[Migration], zone: tzinfo | None) -> None:
        """Back an SQLite file up, then bring it to the steps' last version in one transaction.

        The steps run through Alembic (:mod:`ketadose.migrations`), on either engine; a test's
        own list of steps runs as given.
        """
        target = _target(migrations)
        sqlite = self._conn.sqlite
        # A migration may rebuild a table, which needs foreign keys off; they are checked as a
        # whole before the commit instead. The pragma is a no-op inside a transaction, hence here.
        if sqlite:
            with self._errors("migrate"):
                self._conn.script("PRAGMA foreign_keys = OFF")
        try:
            with self._transaction("migrate"):
                # Read again under the write lock: another process may have migrated meanwhile.
                version, application_id, objects = self._identity()
                _refuse_foreign(self._location, version, application_id, objects)
                if version >= target:
                    return
                if objects and sqlite:
                    self._backup(version)
                context = MigrationContext(self._path, zone)
                if migrations is MIGRATIONS:
                    from ketadose import migrations as alembic_steps

                    alembic_steps.upgrade(self._conn, context, version)
                else:
                    for step in range(version, target):
                        migrations[step](self._conn, context)
                if sqlite:
                    if self._conn.execute("PRAGMA foreign_key_check").first() is not None:
                        raise StoreError(
                            f"cannot migrate store {self._path} from version {version} to "
                            f"{target}: the result breaks a foreign key; nothing was changed"
                        )
                    self._conn.script(f"PRAGMA user_version = {int(target)}")
                self.notices = tuple(context.notices)
        finally:
            if sqlite:
                with self._errors("migrate"):
                    self._conn.script("PRAGMA foreign_keys = ON")

    def _backup(self, version: int) -> Path:
        """Copy the store file as it is to a new ``PATH.bak-v{version}[.n]``, mode 0o600."""
        path = self._location.path
        assert path is not None, "only a file is backed up here"
        base = f"{path.name}.bak-v{version}"
        for attempt in range(1, 1000):
            candidate = path.with_name(base if attempt == 1 else f"{base}.{attempt}")
            try:
                handle = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue  # an earlier backup is never overwritten
            except OSError as error:
                raise StoreError(
                    f"cannot back up store {path} to {candidate} before migrating: {error.strerror}"
                ) from None
            try:
                os.fchmod(handle, 0o600)  # exactly 0o600, whatever the umask
            finally:
                os.close(handle)
            try:
                # SQLite refuses to back up through a connection that holds a write
                # transaction, so a second connection reads the file: it sees the last commit,
                # which nobody can change while this connection holds the write lock.
                with (
                    closing(sqlite3.connect(path, timeout=store_sql.BUSY_TIMEOUT_S)) as source,
                    closing(sqlite3.connect(candidate)) as target,
                ):
                    source.backup(target)
            except BaseException:
                with suppress(OSError):
                    candidate.unlink()  # no half-made backup that looks like a good one
                raise
            return candidate
        raise StoreError(f"cannot back up store {path}: too many backups already")

    # --- lifetime ---------------------------------------------------------------------------

    @property
    def path(self) -> Path | str:
        """The store file, or (PostgreSQL) the store's URL."""
        return self._path

    @property
    def location(self) -> StoreLocation:
        """Where the store is."""
        return self._location

    @property
    def engine(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._conn.engine

    def close(self) -> None:
        """Close the store; closing twice is harmless."""
        with self._errors("close"):
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- patients ---------------------------------------------------------------------------

    def add_patient(self, patient: PatientRecord, *, at: datetime) -> None:
        """Add a patient, with their weight (and height) as the first history entry.

        Args:
            patient: The patient. ``created_at`` may be None; if it is given it must equal
                ``at``.
            at: When the patient is added; stored as ``created_at`` and as the time of the
                first weight.

        Raises:
            InputError: The id exists already, a number is not finite, or a value is refused
                by the schema (empty id, weight not above 0, unknown sex).
            StoreError: The store cannot be written; nothing was.
        """
        if patient.created_at is not None and patient.created_at != at:
            raise InputError(
                f"patient {patient.id!r}: created_at ({patient.created_at.isoformat()}) "
                f"differs from the time it is added ({at.isoformat()})"
            )
        _in_range("created_at", at)
        stamp = _stamp(at, "the time the patient is added")
        _finite("baseline", patient.baseline)
        _finite("weight_kg", patient.weight_kg)
        _finite("height_cm", patient.height_cm)
        with self._transaction("add the patient") as conn:
            values = {
                "id": patient.id,
                "protocol": patient.protocol,
                "baseline": patient.baseline,
                "sex": patient.sex,
                "created_at": stamp,
            }
            try:
                self._append(conn, "patients", values)
            except Error as error:
                if store_sql.kind(error) == "unique":
                    raise InputError(f"patient {patient.id!r} exists already") from None
                raise
            self._measure(conn, patient.id, stamp, patient.weight_kg, patient.height_cm)

    def patient(self, patient_id: str) -> PatientRecord:
        """The patient with their latest weight and latest known height.

        "Latest" is by measurement time, not by when it was entered, so a weight entered late
        for an earlier date does not replace a newer one. A weight recorded without a height
        keeps the last known height.

        Raises:
            InputError: No patient has this id.
            StoreError: The store cannot be read.
        """
        with self._reading("read the patient") as conn:
            row = conn.execute(
                f"SELECT {', '.join(_PATIENT_NAMES)} FROM patients WHERE id = ?", (patient_id,)
            ).fetchone()
            if row is None:
                raise _unknown(patient_id)
            measured = ", ".join(_MEASUREMENT_NAMES)
            weight = conn.execute(
                f"SELECT {measured} FROM measurements WHERE patient_id = ?"
                f" ORDER BY {_DESCENDING} LIMIT 1",
                (patient_id,),
            ).fetchone()
            height = conn.execute(
                f"SELECT {measured} FROM measurements"
                f" WHERE patient_id = ? AND height_cm IS NOT NULL ORDER BY {_DESCENDING} LIMIT 1",
                (patient_id,),
            ).fetchone()
        return _patient_from_rows(self._path, row, weight, height, self._naive_zone, self._zone)

    def record_weight(
        self,
        patient_id: str,
        *,
        at: datetime,
        weight_kg: float,
        height_cm: float | None,
        entry: AuditEntry,
    ) -> None:
        """Add a weight (and height, if measured) to the patient's history, with its audit entry.

        A weight is an input of every later dose: it is recorded as an entry of the log, by who
        is acting, in the same transaction (on PostgreSQL the server refuses one without).

        Raises:
            InputError: Unknown patient, or a value not finite or not above 0.
            StoreError: The store cannot be written; nothing was.
        """
        _in_range("at", at)
        _finite("weight_kg", weight_kg)
        _finite("height_cm", height_cm)
        _check_audit(entry)
        with self._transaction("record the weight") as conn, _known_patient(patient_id):
            self._insert_audit(conn, entry)
            self._measure(
                conn, patient_id, _stamp(at, "the time of the weight"), weight_kg, height_cm
            )

    # --- sessions ---------------------------------------------------------------------------

    def record_session(self, session: SessionRecord) -> int:
        """Store a session as given.

        Returns:
            The new session's row id.

        Raises:
            InputError: Unknown patient (refused by the foreign key), the record has an id
                already, ``phases_json`` is not JSON, or a value is not finite or is refused
                by the schema.
            StoreError: The store cannot be written; nothing was.
        """
        _check_session(session)
        with self._transaction("record the session") as conn:
            return self._insert_session(conn, session)

    def sessions(self, patient_id: str) -> list[SessionRecord]:
        """The patient's sessions in time order, with their row ids.

        Raises:
            InputError: No patient has this id.
            StoreError: The store cannot be read, or a row was changed outside ketadose.
        """
        return list(self.iter_sessions(patient_id))

    def iter_sessions(self, patient_id: str) -> Iterator[SessionRecord]:
        """The patient's sessions in time order, one at a time (flat memory for any history).

        Rows are read from a cursor as the caller takes them, in one read transaction, so a
        100,000-session history never sits in memory. The patient is checked before the first
        session is given; a row changed outside ketadose raises when it is reached. Take every
        session (or close the iterator) before writing to this store: the read transaction
        lasts as long as the iteration.

        Raises:
            InputError: No patient has this id (on the first ``next``).
            StoreError: The store cannot be read, or a row was changed outside ketadose.
        """
        with self._reading("read the sessions") as conn:
            self._patient_exists(conn, patient_id)
            yield from self._read_sessions(conn, patient_id, None, None)

    def sessions_between(
        self, patient_id: str, start: datetime | None = None, end: datetime | None = None
    ) -> list[SessionRecord]:
        """The patient's sessions whose start is from ``start`` to ``end`` (both included).

        The same sessions, in the same order, as :meth:`sessions` filtered by instant (UTC,
        whatever the offset each was stored with): the query takes the time index a second
        wider on each side and the exact instants decide.

        Args:
            patient_id: The patient.
            start: The earliest start (None: from the first session).
            end: The latest start (None: to the last).

        Raises:
            InputError: No patient has this id.
            StoreError: The store cannot be read, or a row was changed outside ketadose.
        """
        with self._reading("read the sessions") as conn:
            self._patient_exists(conn, patient_id)
            return list(self._read_sessions(conn, patient_id, start, end))

    def first_sessions(self, patient_id: str, starts: int) -> list[SessionRecord]:
        """The sessions at the patient's first ``starts`` distinct start instants, in order.

        (A session recorded twice at one start is one infusion: both are given.)

        Raises:
            InputError: No patient has this id.
            StoreError: The store cannot be read, or a row was changed outside ketadose.
        """
        found: list[SessionRecord] = []
        seen: set[datetime] = set()
        with self._reading("read the sessions") as conn:
            self._patient_exists(conn, patient_id)
            for session in self._read_sessions(conn, patient_id, None, None):
                moment = instant(session.at)
                if moment not in seen and len(seen) == starts:
                    break
                seen.add(moment)
                found.append(session)
        return found

    def session_count(self, patient_id: str) -> int:
        """How many infusions the patient has had: distinct session start instants.

        A COUNT over the time index, not a read of the sessions; the few starts that share a
        millisecond (the index's precision) are told apart by their exact instants.

        Raises:
            InputError: No patient has this id.
            StoreError: The store cannot be read.
        """
        with self._reading("count the sessions") as conn:
            self._patient_exists(conn, patient_id)
            unindexed = conn.execute(
                "SELECT 1 FROM sessions WHERE patient_id = ? AND julianday(at) IS NULL LIMIT 1",
                (patient_id,),
            ).fetchone()
            if unindexed is not None:
                # A time SQL cannot read (an offset in seconds): count every instant here.
                rows = conn.execute(
                    "SELECT id, at FROM sessions WHERE patient_id = ? ORDER BY id", (patient_id,)
                )
                return len({self._instant_of(key, at) for key, at in rows})
            # "IS NOT NULL" (here and below) changes no result (none is NULL here, COUNT skips
            # a NULL and IN never matches one), but puts julianday(at) in the index condition:
            # PostgreSQL then reads the values from the (patient_id, julianday(at), at) index
            # instead of calling julianday (PL/pgSQL) for each of the patient's sessions read
            # from the smaller (patient_id, at) one: ~1 s each at 100,000 sessions.
            (count,) = conn.execute(
                "SELECT count(DISTINCT julianday(at)) FROM sessions"
                " WHERE patient_id = ? AND julianday(at) IS NOT NULL",
                (patient_id,),
            ).fetchone()
            shared: dict[float, set[datetime]] = {}
            for day, key, at in conn.execute(
                "SELECT julianday(at), id, at FROM sessions"
                " WHERE patient_id = ? AND julianday(at) IN"
                " (SELECT julianday(at) FROM sessions"
                " WHERE patient_id = ? AND julianday(at) IS NOT NULL"
                " GROUP BY julianday(at) HAVING count(*) > 1)",
                (patient_id, patient_id),
            ):
                shared.setdefault(day, set()).add(self._instant_of(key, at))
        return int(count) + sum(len(moments) - 1 for moments in shared.values())

    def _instant_of(self, key: object, at: object) -> datetime:
        """A session's stored start as an instant (refused as the full read refuses it)."""
        return instant(_Row(self._path, "sessions", key, self._naive_zone).moment("at", at))

    def last_session_at(
        self, patient_id: str, *, until: datetime | None = None, scored: bool = False
    ) -> datetime | None:
        """The start of the patient's latest session (at or before ``until``; with a score).

        Args:
            patient_id: The patient.
            until: Only sessions starting at or before this (None: any).
            scored: Only sessions recorded with their own score.

        Returns:
            The start, or None when there is no such session.

        Raises:
            InputError: No patient has this id.
            StoreError: The store cannot be read, or a row was changed outside ketadose.
        """
        with self._reading("read the sessions") as conn:
            self._patient_exists(conn, patient_id)
            found = self._read_sessions(conn, patient_id, None, until, scored=scored, edge="last")
            latest = [session.at for session in found]
        return max(latest, key=instant) if latest else None

    def first_session_at(self, patient_id: str, *, since: datetime) -> datetime | None:
        """The start of the patient's earliest session at or after ``since`` (None: none).

        Raises:
            InputError: No patient has this id.
            StoreError: The store cannot be read, or a row was changed outside ketadose.
        """
        with self._reading("read the sessions") as conn:
            self._patient_exists(conn, patient_id)
            found = self._read_sessions(conn, patient_id, since, None, edge="first")
            earliest = [session.at for session in found]
        return min(earliest, key=instant) if earliest else None

    def sessions_around(
        self, patient_id: str, at: datetime, width: timedelta
    ) -> list[SessionRecord]:
        """What a session at ``at`` is checked against: its neighbours and its windows.

        The sessions starting within ``width`` of ``at`` on either side, and beyond those
        the nearest one on each side (every session at that start), in time order: for a
        width of 7 days, all that the series limits of a session at ``at`` look at (the
        interval to the sessions before and after it, the 24-h and 7-day windows that hold
        it, the step from the last dose) and whether it is the first of its series.

        Raises:
            InputError: No patient has this id.
            StoreError: The store cannot be read, or a row was changed outside ketadose.
        """
        low, high = instant(at) - width, instant(at) + width
        before = self.last_session_at(patient_id, until=low)
        after = self.first_session_at(patient_id, since=high)
        return self.sessions_between(
            patient_id, low if before is None else before, high if after is None else after
        )

    def _patient_exists(self, conn: Database, patient_id: str) -> None:
        if conn.execute("SELECT 1 FROM patients WHERE id = ?", (patient_id,)).fetchone() is None:
            raise _unknown(patient_id)

    def _read_sessions(
        self,
        conn: Database,
        patient_id: str,
        start: datetime | None,
        end: datetime | None,
        *,
        scored: bool = False,
        edge: str | None = None,
    ) -> Iterator[SessionRecord]:
        """Sessions of a patient from ``start`` to ``end`` (instants, included), in time order.

        Three cursors in the same order (the sessions, their events, their readings) are
        walked together, so nothing is held but the session being built. The time index is
        queried a second wider than asked (``julianday`` keeps milliseconds) and the exact
        instants decide; a time SQL cannot read (NULL) is always fetched and decided here.
        ``edge`` ``"last"`` (``"first"``): only the latest (earliest) such sessions: those
        within a second of the last (first) indexed time, so that the latest (earliest)
        instant is among them.
        """
        where = "s.patient_id = ?"
        params: list[object] = [patient_id]
        if scored:
            where += " AND s.score IS NOT NULL"
        bounds = []
        if start is not None:
            bounds.append("julianday(s.at) >= julianday(?)")
            params.append(_stamp(instant(start) - _MARGIN, "the start"))
        if end is not None:
            bounds.append("julianday(s.at) <= julianday(?)")
            params.append(_stamp(instant(end) + _MARGIN, "the end"))
        if edge is not None:
            found = conn.execute(
                f"SELECT julianday(s.at) FROM sessions AS s WHERE {where}"
                + "".join(f" AND {bound}" for bound in bounds)
                + " AND julianday(s.at) IS NOT NULL ORDER BY julianday(s.at)"
                + (" DESC" if edge == "last" else "")
                + " LIMIT 1",
                params,
            ).fetchone()
            if found is not None:
                margin = _MARGIN.total_seconds() / 86400
                if edge == "last":
                    bounds = [*bounds, "julianday(s.at) >= ?"]
                    params.append(float(found[0]) - margin)
                else:
                    bounds = [*bounds, "julianday(s.at) <= ?"]
                    params.append(float(found[0]) + margin)
        if bounds:
            ranged = " AND ".join(bounds)
            unindexed = conn.execute(
                "SELECT 1 FROM sessions WHERE patient_id = ? AND julianday(at) IS NULL LIMIT 1",
                (patient_id,),
            ).fetchone()
            # A time SQL cannot read (an offset in seconds, or garbage) is always fetched, and
            # decided (or refused) below by its exact instant.
            where += (
                f" AND {ranged}"
                if unindexed is None
                else f" AND (({ranged}) OR julianday(s.at) IS NULL)"
            )
        order = "julianday(s.at), s.at, s.id"
        rows = conn.execute(
            f"SELECT {', '.join('s.' + c for c in _SESSION_COLUMNS.split(', '))}"
            f" FROM sessions AS s WHERE {where} ORDER BY {order}",
            params,
            stream=True,
        )
        events = conn.execute(
            "SELECT e.session_id, e.event, e.grade FROM sessions AS s"
            f" JOIN session_adverse_events AS e ON e.session_id = s.id WHERE {where}"
            f" ORDER BY {order}, e.position",
            params,
            stream=True,
        )
        readings = conn.execute(
            f"SELECT {', '.join('r.' + c for c in _READING_NAMES)}"
            " FROM sessions AS s JOIN session_readings AS r ON r.session_id = s.id"
            f" WHERE {where} ORDER BY {order}, julianday(r.at), r.id",
            params,
            stream=True,
        )
        yield from _in_instant_order(self._build_sessions(rows, events, readings, start, end))

    def _build_sessions(
        self,
        rows: Result,
        events: Result,
        readings: Result,
        start: datetime | None,
        end: datetime | None,
    ) -> Iterator[SessionRecord]:
        """Walk the three cursors of :meth:`_read_sessions` together, in the order stored."""
        event = events.fetchone()
        reading = readings.fetchone()
        low = None if start is None else instant(start)
        high = None if end is None else instant(end)
        for row in rows:
            own_events: list[tuple[object, object]] = []
            while event is not None and event[0] == row[0]:
                own_events.append((event[1], event[2]))
                event = events.fetchone()
            own_readings: list[Sequence[Any]] = []
            while reading is not None and reading[1] == row[0]:
                own_readings.append(reading)
                reading = readings.fetchone()
            session = _session_from_row(
                self._path, row, own_events, own_readings, self._naive_zone, self._zone
            )
            moment = instant(session.at)
            if (low is None or moment >= low) and (high is None or moment <= high):
                yield session

    def add_readings(self, session_id: int, readings: Sequence[Reading], entry: AuditEntry) -> None:
        """Add readings to a session's vitals timeline, with their audit entry (all or none).

        Raises:
            InputError: No such session, or a value the schema refuses.
            StoreError: The store cannot be written; nothing was.
        """
        for reading in readings:
            _check_reading(reading)
        _check_audit(entry)
        with self._transaction("record the readings and their audit entry") as conn:
            self._session_exists(conn, session_id)
            self._insert_audit(conn, entry)  # first: on a server, readings follow their entry
            for reading in readings:
                self._insert_reading(conn, session_id, reading)

    def discharge(self, session_id: int, at: datetime, entry: AuditEntry) -> None:
        """Record a session's discharge time, with its audit entry (both or neither).

        Raises:
            InputError: No such session, or it is discharged already.
            StoreError: The store cannot be written; nothing was.
        """
        _in_range("the discharge time", at)
        _check_audit(entry)
        with self._transaction("record the discharge and its audit entry") as conn:
            self._session_exists(conn, session_id)
            cursor = conn.execute(
                "UPDATE sessions SET discharged_at = ? WHERE id = ? AND discharged_at IS NULL",
                (_stamp(at, "the discharge time"), session_id),
            )
            if cursor.rowcount != 1:
                raise InputError(f"session {session_id} is discharged already")
            self._insert_audit(conn, entry)

    # --- scores -----------------------------------------------------------------------------

    def record_score(self, score: ScoreRecord) -> int:
        """Store a questionnaire score as given.

        Returns:
            The new score's row id.

        Raises:
            InputError: Unknown patient, the record has an id already, or a value is unusable
                (an item or total that is not a whole number of at least 0, a total that is not
                the sum of the items, half an acknowledgement).
            StoreError: The store cannot be written; nothing was.
        """
        _check_score(score)
        if score.acknowledged_by is not None and self.actor is not None:
            score = replace(score, acknowledged_by=self.actor)  # who is acting, as in the log
        with self._transaction("record the score") as conn:
            return self._insert_score(conn, score)

    def record_score_with_audit(self, score: ScoreRecord, entry: AuditEntry) -> int:
        """Store a score and its audit entry in one transaction: both or neither.

        Returns:
            The new score's row id.

        Raises:
            InputError: As :meth:`record_score` and :meth:`append_audit`.
            StoreError: The store cannot be written; neither was.
        """
        _check_score(score)
        _check_audit(entry)
        if score.acknowledged_by is not None and self.actor is not None:
            score = replace(score, acknowledged_by=self.actor)  # who is acting, as in the log
        with self._transaction("record the score and its audit entry") as conn:
            score_id = self._insert_score(conn, score)
            self._insert_audit(conn, entry)
        return score_id

    def acknowledge_score_with_audit(
        self,
        patient_id: str,
        score_id: int,
        *,
        by: str,
        at: datetime,
        text: str,
        entry: AuditEntry,
    ) -> ScoreRecord:
        """Acknowledge a stored score's safety finding, with its audit entry, in one transaction.

        A score is acknowledged once; the answers themselves never change.

        Returns:
            The score as it now is.

        Raises:
            InputError: Unknown patient, no such score for this patient, already acknowledged,
                or an empty name or text.
            StoreError: The store cannot be written; nothing was.
        """
        by = by if self.actor is None else self.actor  # who is acting, as in the log
        if not by.strip() or not text.strip():
            raise InputError("an acknowledgement needs who made it and what they wrote")
        _in_range("acknowledged_at", at)
        stamp = _stamp(at, "the time of the acknowledgement")
        _check_audit(entry)
        with self._transaction("acknowledge the score") as conn:
            if (
                conn.execute("SELECT 1 FROM patients WHERE id = ?", (patient_id,)).fetchone()
                is None
            ):
                raise _unknown(patient_id)
            row = conn.execute(
                f"SELECT {_SCORE_COLUMNS} FROM scores WHERE id = ? AND patient_id = ?",
                (score_id, patient_id),
            ).fetchone()
            if row is None:
                raise InputError(f"patient {patient_id!r} has no score {score_id}")
            current = _score_from_row(self._path, row, self._naive_zone, self._zone)
            if current.acknowledged:
                raise InputError(
                    f"score {score_id} was acknowledged already by {current.acknowledged_by}"
                )
            conn.execute(
                "UPDATE scores SET acknowledged_by = ?, acknowledged_at = ?, acknowledgement = ?"
                " WHERE id = ?",
                (by, stamp, text, score_id),
            )
            self._insert_audit(conn, entry)
            row = conn.execute(
                f"SELECT {_SCORE_COLUMNS} FROM scores WHERE id = ?", (score_id,)
            ).fetchone()
        return _score_from_row(self._path, row, self._naive_zone, self._zone)

    def scores(self, patient_id: str) -> list[ScoreRecord]:
        """The patient's scores (every instrument) in time order, with their row ids.

        Raises:
            InputError: No patient has this id.
            StoreError: The store cannot be read, or a row was changed outside ketadose.
        """
        with self._reading("read the scores") as conn:
            if (
                conn.execute("SELECT 1 FROM patients WHERE id = ?", (patient_id,)).fetchone()
                is None
            ):
                raise _unknown(patient_id)
            rows = conn.execute(
                f"SELECT {_SCORE_COLUMNS} FROM scores WHERE patient_id = ? ORDER BY {_BY_TIME}",
                (patient_id,),
            ).fetchall()
        return [_score_from_row(self._path, row, self._naive_zone, self._zone) for row in rows]

    # --- audit ------------------------------------------------------------------------------

    def append_audit(self, entry: AuditEntry, *, signed: str | None = None) -> int:
        """Append one entry to the audit log (signed by whoever is acting, with ``signed``).

        ``signed`` is the signature's meaning (an override is ``prescribed``), None for none.

        Returns:
            The entry's id (ids increase in the order entries are written).

        Raises:
            InputError: The entry has an id already, or its JSON fields are not JSON.
            StoreError: The store cannot be written; nothing was.
        """
        _check_audit(entry)
        with self._transaction("write the audit log") as conn:
            audit_id = self._insert_audit(conn, entry)
            if signed is not None:
                self._sign(conn, audit_id, None, signed, entry.at)
            return audit_id

    def audit(self, patient_id: str | None = None) -> list[AuditEntry]:
        """The audit log in the order written, all of it or one patient's entries.

        An id that no patient has is not an error: audit lines may name patients who were
        never added to the store.

        Raises:
            StoreError: The store cannot be read, or a row was changed outside ketadose.
        """
        return list(self.iter_audit(patient_id))

    def iter_audit(self, patient_id: str | None = None) -> Iterator[AuditEntry]:
        """The audit log as :meth:`audit`, one entry at a time from a cursor (flat memory).

        Take every entry (or close the iterator) before writing to this store: the read
        transaction lasts as long as the iteration.

        Raises:
            StoreError: The store cannot be read, or a row was changed outside ketadose (when
                that entry is reached).
        """
        with self._reading("read the audit log") as conn:
            if patient_id is None:
                rows = conn.execute(f"SELECT {_AUDIT_COLUMNS} FROM audit ORDER BY id", stream=True)
            else:
                rows = conn.execute(
                    f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE patient_id = ? ORDER BY id",
                    (patient_id,),
                    stream=True,
                )
            for row in rows:
                yield _audit_from_row(self._path, row, self._naive_zone, self._zone)

    def record_session_with_audit(
        self, session: SessionRecord, entry: AuditEntry, *, weight_kg: float | None = None
    ) -> int:
        """Store a session, its audit entry and a new weight in one transaction: all or none.

        Args:
            session: The session as given.
            entry: Its audit entry.
            weight_kg: The weight measured for this session, if it changed (stored as a
                measurement at the session's time, with the latest height).

        Returns:
            The new session's row id.

        Raises:
            InputError: As :meth:`record_session` and :meth:`append_audit`.
            StoreError: The store cannot be written; nothing was.
        """
        _check_session(session)
        _check_audit(entry)
        with self._transaction("record the session and its audit entry") as conn:
            session_id = self._insert_session(conn, session)
            audit_id = self._insert_audit(conn, entry)
            self._sign(conn, audit_id, session_id, "administered", entry.at)
            if weight_kg is not None:
                _finite("weight_kg", weight_kg)
                # The weight goes with the latest height known (by time, as patient() reads
                # it), from a row checked against its hash: never a height edited in.
                latest = conn.execute(
                    f"SELECT {', '.join(_MEASUREMENT_NAMES)} FROM measurements"
                    f" WHERE patient_id = ? AND height_cm IS NOT NULL ORDER BY {_DESCENDING}"
                    " LIMIT 1",
                    (session.patient_id,),
                ).fetchone()
                height = None
                if latest is not None:
                    check = _Row(self._path, "measurements", latest[0])
                    _sealed(
                        check, "measurements", dict(zip(_MEASUREMENT_NAMES, latest, strict=True))
                    )
                    height = latest[4]
                stamp = _stamp(session.at, "the session time")
                self._measure(conn, session.patient_id, stamp, weight_kg, height)
        return session_id

    # --- inside a transaction ---------------------------------------------------------------

    def _insert_session(self, conn: Database, session: SessionRecord) -> int:
        names = _SESSION_NAMES[1:-2]  # the id is the store's, the links are computed here
        values = dict(
            zip(
                names,
                (
                    session.patient_id,
                    _stamp(session.at, "the session time"),
                    session.protocol,
                    session.dose_mg,
                    session.dose_mg_per_kg,
                    session.duration_min,
                    session.phases_json,
                    *_bp(session.bp_before),
                    *_bp(session.bp_peak),
                    *_bp(session.bp_after),
                    session.heart_rate,
                    session.spo2,
                    session.score,
                    session.notes,
                    session.weight_policy,
                    session.dosing_weight_kg,
                    session.planned_dose_mg,
                    session.planned_dose_mg_per_kg,
                    None if session.stopped_at is None else _stamp(session.stopped_at, "the stop"),
                    session.stop_reason,
                    None
                    if session.discharged_at is None
                    else _stamp(session.discharged_at, "the discharge time"),
                    1 if session.reported else None,
                    1 if session.cosign else None,
                ),
                strict=True,
            )
        )
        events = [
            [event.term, None if event.grade is None else event.grade.word]
            for event in session.adverse_events
        ]
        with _known_patient(session.patient_id):
            session_id = self._append(conn, "sessions", values, events)
        conn.executemany(
            "INSERT INTO session_adverse_events (session_id, position, event, grade)"
            " VALUES (?, ?, ?, ?)",
            [
                (
                    session_id,
                    position,
                    event.term,
                    None if event.grade is None else event.grade.word,
                )
                for position, event in enumerate(session.adverse_events)
            ],
        )
        for reading in session.readings:
            self._insert_reading(conn, session_id, reading)
        return session_id

    def _insert_reading(self, conn: Database, session_id: int, reading: Reading) -> None:
        values = dict(
            zip(
                _READING_COLUMNS.split(", "),
                (
                    session_id,
                    _stamp(reading.at, "the reading's time"),
                    reading.systolic,
                    reading.diastolic,
                    reading.heart_rate,
                    reading.spo2,
                    reading.sedation,
                    reading.answer,
                    json.dumps(list(reading.findings)),
                ),
                strict=True,
            )
        )
        self._append(conn, "session_readings", values)

    def _measure(
        self,
        conn: Database,
        patient_id: str,
        stamp: str,
        weight_kg: float,
        height_cm: float | None,
    ) -> None:
        """Append a weight (and height) to the patient's measurements, at its chain's head."""
        values = {
            "patient_id": patient_id,
            "at": stamp,
            "weight_kg": weight_kg,
            "height_cm": height_cm,
        }
        self._append(conn, "measurements", values)

    def _session_exists(self, conn: Database, session_id: int) -> None:
        if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is None:
            raise InputError(f"no session {session_id} in the store")

    def _insert_score(self, conn: Database, score: ScoreRecord) -> int:
        values = dict(
            zip(
                _SCORE_NAMES[1:-2],
                (
                    score.patient_id,
                    _stamp(score.at, "the score's time"),
                    score.instrument,
                    None if score.items is None else json.dumps(list(score.items)),
                    score.total,
                    score.acknowledged_by,
                    None
                    if score.acknowledged_at is None
                    else _stamp(score.acknowledged_at, "the time of the acknowledgement"),
                    score.acknowledgement,
                ),
                strict=True,
            )
        )
        with _known_patient(score.patient_id):
            return self._append(conn, "scores", values)

    def _insert_audit(self, conn: Database, entry: AuditEntry) -> int:
        # Who acted is the authenticated user; a different name given is kept as a claim.
        actor = entry.user if self.actor is None else self.actor
        claimed = entry.claimed or (entry.user if entry.user != actor else None)
        values = {
            "at": _stamp(entry.at, "the audit entry's time"),
            "user": actor,
            "command": entry.command,
            "patient_id": entry.patient_id,
            "inputs_json": entry.inputs_json,
            "findings_json": entry.findings_json,
            "status": entry.status,
            "override_reason": entry.override_reason,
            "library_sha256": entry.library_sha256,
            "claimed": claimed,
        }
        return self._append(conn, "audit", values)

    def _append(
        self,
        conn: Database,
        table: str,
        values: dict[str, Any],
        events: list[list[Any]] | None = None,
    ) -> int:
        """Insert a row at the head of its table's chain (inside the write transaction).

        ``events``: a session's adverse events, hashed with it (written after it, by id).

        Raises:
            InputError: A text holds what neither engine keeps as given (a NUL, or an unpaired
                surrogate from an argument that was not UTF-8).
        """
        for column, value in values.items():
            _keepable(f"{table}.{column}", value)
        for event in events or ():
            for value in event:
                _keepable(f"{table}.adverse_events", value)
        head = conn.execute(
            f"SELECT hash FROM {table} ORDER BY {_order(table)} DESC LIMIT 1"
        ).fetchone()
        previous = GENESIS if head is None else str(head[0])
        digest = chain_link(previous, _content(table, values, conn, events))
        names = ", ".join(f'"{name}"' for name in values)
        inserted = conn.execute(
            f"INSERT INTO {table} ({names}, prev_hash, hash)"
            f" VALUES ({', '.join('?' * len(values))}, ?, ?) RETURNING {_order(table)}",
            (*values.values(), previous, digest),
        )
        return int(inserted.scalar_one())

    # --- the chain --------------------------------------------------------------------------

    def chain_head(self) -> tuple[int, str] | None:
        """The audit log's last entry id and hash (None: the log is empty).

        Printed on sheets and in ``audit``: a paper copy then pins the log up to that entry.
        """
        with self._reading("read the audit chain") as conn:
            row = conn.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def verify(self) -> list[Break]:
        """Recompute every chain (:data:`CHAINED`) and match the log to its rows.

        Returns:
            The first break of each chain that has one, then each crossing (empty: intact).

        Raises:
            StoreError: The store cannot be read.
        """
        broken = [chain.broken for chain in self.chains() if chain.broken is not None]
        return broken + self.crossings()

    def crossings(self) -> list[Break]:
        """Rows and audit entries that should name each other and do not.

        Since schema 7 every session record, co-signature, override and registration is an
        audit entry with its signature or its row, written in one transaction. A session, a
        signature or a clinician taken away (or one put in) leaves the other side alone,
        which its own chain cannot show when it was the last row.
        """
        with self._reading("match the log to its rows") as conn:
            return _crossings(conn)

    def chains(self) -> list[Chain]:
        """Each chained table's rows, head and first break, recomputed from its rows.

        Reads every row of both tables (a session's events with it: one indexed query each);
        done by ``store check`` and ``audit verify`` only, never to decide a dose.
        """
        found = []
        with self._reading("verify the hash chain") as conn:
            for table in CHAINED:
                order = _order(table)
                rows = conn.execute(
                    f"SELECT {order} AS _order, * FROM {table} ORDER BY {order}", stream=True
                )
                names = list(rows.keys())
                links = []
                for row in rows:
                    values = dict(zip(names, row, strict=True))
                    content = _content(table, values, conn)
                    links.append(
                        Link(
                            key=values["_order"],
                            prev_hash=values["prev_hash"],
                            hash=values["hash"],
                            content_hash=chain_link(str(values["prev_hash"]), content),
                            at=values["at"] if table == "audit" else None,
                        )
                    )
                broken = chain_verify(table, links, moments=table == "audit")
                if broken is None and table in ("audit", *_SIGNED):  # AUTOINCREMENT counters
                    broken = _tail_gone(conn, table, links[-1].key if links else 0)
                last = links[-1] if links else None
                found.append(
                    Chain(
                        table=table,
                        rows=len(links),
                        head_id=None if last is None else int(str(last.key)),
                        head=None if last is None or last.hash is None else str(last.hash),
                        broken=broken,
                    )
                )
        return found

    def missing_triggers(self) -> list[str]:
        """The triggers of the schema that are not in the store as ketadose made them.

        A trigger dropped by hand is missing; one dropped and made again under its name with
        other SQL is reported as ``NAME (altered)``: its name alone proves nothing.
        """
        with self._reading("read the schema") as conn:
            if not conn.sqlite:
                from ketadose import store_pg

                return store_pg.missing_triggers(conn.connection)
            present = {
                name: " ".join(str(sql).split())
                for name, sql in conn.execute(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
                )
            }
        return [
            name if name not in present else f"{name} (altered)"
            for name in TRIGGERS
            if present.get(name) != _TRIGGER_SQL[name]
        ]

    def grant_clinicians(self) -> str | None:
        """Give the clinicians' role its rights on a PostgreSQL store, again (idempotent).

        What the migration granted, granted anew: ``store migrate`` run by the store's owner
        after the role was created (or its rights changed by hand). None on SQLite, where the
        file's mode is the guard.

        Returns:
            What was done, one line.

        Raises:
            StoreError: The role does not exist, or who is connected may not grant (not the
                owner of the store's tables).
        """
        if self._conn.sqlite:
            return None
        from ketadose import store_pg

        with self._transaction("grant the clinicians' rights") as conn:
            if not store_pg.grant(conn.connection):
                raise StoreError(
                    f"store {self._path}: no role {store_pg.GROUP_ROLE} to grant the clinicians' "
                    f"rights to; create it (CREATE ROLE {store_pg.GROUP_ROLE} NOLOGIN) first"
                )
        return (
            f"granted {store_pg.GROUP_ROLE} the rights to read and add records, never to "
            "change them"
        )

    def privilege_problems(self) -> list[str]:
        """What the clinicians' role may do that it must not (PostgreSQL; SQLite: none).

        On SQLite the file's mode is the guard (:func:`exposure`).
        """
        if self._conn.sqlite:
            return []
        from ketadose import store_pg

        with self._reading("read the privileges") as conn:
            return store_pg.privilege_problems(conn.connection)

    # --- clinicians and signatures ---------------------------------------------------------

    def clinicians(self) -> list[Clinician]:
        """The registered clinicians, in the order registered (none: a single-user store)."""
        with self._reading("read the clinicians") as conn:
            rows = conn.execute(
                "SELECT id, name, role, added_at, added_by, prev_hash, hash FROM clinicians"
                " ORDER BY id"
            ).fetchall()
        return [self._clinician_from(row) for row in rows]

    def role(self, name: str) -> str | None:
        """A registered clinician's role, None for a name not registered."""
        with self._reading("read the clinicians") as conn:
            row = conn.execute(
                "SELECT id, name, role, added_at, added_by, prev_hash, hash FROM clinicians"
                " WHERE name = ?",
                (name,),
            ).fetchone()
        return None if row is None else self._clinician_from(row).role

    def add_clinician(self, name: str, role: str, entry: AuditEntry) -> None:
        """Register a clinician, with its audit entry, in one transaction.

        Only a registered admin may register one. A store with none registered takes its
        first admin from whoever is acting, naming themselves (that is how a clinic starts).

        Raises:
            InputError: The actor is not an admin, the name is taken, the role unknown.
            StoreError: Who is acting is not known (the store was opened without an actor).
        """
        actor = self._acting()
        if role not in ROLES:
            raise InputError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if not name or name != name.strip() or not name.isprintable() or len(name) > 200:
            raise InputError(
                "a clinician's name is the user name the store knows: one line of up to 200 "
                "characters, without leading or trailing spaces"
            )
        _check_audit(entry)
        with self._transaction("register the clinician") as conn:
            count, admin = conn.execute(
                "SELECT count(*), sum(CASE WHEN name = ? AND role = 'admin' THEN 1 ELSE 0 END)"
                " FROM clinicians",
                (actor,),
            ).fetchone()
            if count == 0 and (name != actor or role != "admin"):
                raise InputError(
                    f"no clinician is registered yet: the first is the store's admin, "
                    f"registered by themselves (ketadose clinician add {actor} --role admin)"
                )
            if count and not admin:
                raise InputError(f"{actor} is not a registered admin: only an admin adds one")
            if conn.execute("SELECT 1 FROM clinicians WHERE name = ?", (name,)).fetchone():
                raise InputError(f"{name} is registered already; a role is not changed")
            self._insert_audit(conn, entry)
            values = {
                "name": name,
                "role": role,
                "added_at": _stamp(entry.at, "the registration time"),
                "added_by": actor,
            }
            self._append(conn, "clinicians", values)

    def policy(self) -> dict[str, Any] | None:
        """The override rules an admin pinned in the store (``clinician policy``), if any.

        Pinned, they decide who may override and co-sign whatever limit library a command
        is given: otherwise whoever runs a command could name a library of their own. They
        are read from the audit log, whose chain keeps them; the latest pin counts.
        """
        with self._reading("read the override rules") as conn:
            row = conn.execute(
                f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE command = 'clinician policy'"
                " ORDER BY id DESC LIMIT 1"
            ).fetchone()
        if row is None:
            return None
        entry = _audit_from_row(self._path, row, self._naive_zone, self._zone)
        rules = json.loads(entry.inputs_json).get("overrides")
        if not isinstance(rules, dict):
            raise StoreError(f"store {self._path}: audit entry {entry.id} pins no override rules")
        return rules

    def pin_policy(self, entry: AuditEntry) -> None:
        """Pin the override rules in the store (the entry's ``overrides`` input): admins only.

        Raises:
            InputError: Who is acting is not a registered admin, or the entry is not a pin.
        """
        actor = self._acting()
        _check_audit(entry)
        if entry.command != "clinician policy" or "overrides" not in json.loads(entry.inputs_json):
            raise InputError("a pin of the override rules is a clinician policy entry")
        with self._transaction("pin the override rules") as conn:
            admin = conn.execute(
                "SELECT 1 FROM clinicians WHERE name = ? AND role = 'admin'", (actor,)
            ).fetchone()
            if admin is None:
                raise InputError(f"{actor} is not a registered admin: only an admin pins them")
            self._insert_audit(conn, entry)

    def signatures(self, session_id: int) -> list[Signature]:
        """A session's signatures, in the order signed."""
        with self._reading("read the signatures") as conn:
            rows = conn.execute(
                f"SELECT {_SIGNATURE_COLUMNS} FROM signatures WHERE session_id = ? ORDER BY id",
                (session_id,),
            ).fetchall()
        return [self._signature_from(row) for row in rows]

    def awaiting_cosign(self, patient_id: str) -> list[tuple[int, int]]:
        """The patient's sessions whose override no second clinician has co-signed yet.

        Returns:
            ``(session id, audit entry id)`` of each, oldest first: ``override cosign`` takes
            the entry id.
        """
        with self._reading("read the co-signatures") as conn:
            rows = conn.execute(
                "SELECT s.id, g.audit_id FROM sessions AS s"
                " JOIN signatures AS g ON g.session_id = s.id AND g.meaning = 'administered'"
                " WHERE s.patient_id = ? AND s.cosign = 1 AND NOT EXISTS ("
                "   SELECT 1 FROM signatures AS c WHERE c.session_id = s.id"
                "   AND c.meaning = 'co-signed')"
                " ORDER BY s.id",
                (patient_id,),
            ).fetchall()
        return [(int(session_id), int(audit_id)) for session_id, audit_id in rows]

    def cosign(
        self, audit_id: int, entry: AuditEntry, may: Callable[[AuditEntry, str], bool]
    ) -> int:
        """Co-sign a recorded session's override as an independent second clinician.

        Args:
            audit_id: The session record's audit entry.
            entry: The co-signature's own audit entry.
            may: Whether a clinician of this role may co-sign that entry's overrides (the
                limit library's rule, which the caller holds).

        Returns:
            The session's id.

        Raises:
            InputError: The actor is not registered, is who recorded or overrode it, may
                not co-sign it by role; the entry is not a session awaiting co-signature.
        """
        actor = self._acting()
        _check_audit(entry)
        with self._transaction("co-sign the override") as conn:
            role = conn.execute("SELECT role FROM clinicians WHERE name = ?", (actor,)).fetchone()
            if role is None:
                raise InputError(f"{actor} is not a registered clinician: only one co-signs")
            found = conn.execute(
                "SELECT g.session_id, g.signer, s.cosign FROM signatures AS g"
                " JOIN sessions AS s ON s.id = g.session_id"
                " WHERE g.audit_id = ? AND g.meaning = 'administered'",
                (audit_id,),
            ).fetchone()
            if found is None:
                raise InputError(f"audit entry {audit_id} is not a recorded session")
            session_id, signer, needed = found
            if needed != 1:
                raise InputError(f"session {session_id} (entry {audit_id}) needs no co-signature")
            done = conn.execute(
                "SELECT signer, at FROM signatures WHERE session_id = ? AND meaning = 'co-signed'",
                (session_id,),
            ).fetchone()
            if done is not None:
                raise InputError(f"session {session_id} was co-signed by {done[0]} at {done[1]}")
            (recorded,) = conn.execute(
                f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE id = ?", (audit_id,)
            ).fetchall()
            original = _audit_from_row(self._path, recorded, self._naive_zone, self._zone)
            if actor in (signer, original.user):
                raise OverrideRefusedError(
                    f"{actor} recorded session {session_id}: its co-signature must be an "
                    "independent second clinician's"
                )
            if not may(original, str(role[0])):
                raise OverrideRefusedError(
                    f"{actor} ({role[0]}) may not co-sign these overrides: the limit library "
                    "names who may make them"
                )
            own = self._insert_audit(conn, replace(entry, patient_id=original.patient_id))
            self._sign(conn, own, session_id, "co-signed", entry.at, str(role[0]))
        return int(session_id)

    def _acting(self) -> str:
        if self.actor is None:
            raise StoreError("who is acting is not known: open the store with its actor")
        return self.actor

    def _sign(
        self,
        conn: Database,
        audit_id: int,
        session_id: int | None,
        meaning: str,
        at: datetime,
        role: str | None = None,
    ) -> None:
        """Append a signature by whoever is acting (their registered role, if any)."""
        signer = self.actor
        if signer is None:
            row = conn.execute('SELECT "user" FROM audit WHERE id = ?', (audit_id,)).fetchone()
            signer = str(row[0])
        if role is None:
            found = conn.execute("SELECT role FROM clinicians WHERE name = ?", (signer,))
            registered = found.fetchone()
            role = None if registered is None else str(registered[0])
        values = {
            "audit_id": audit_id,
            "session_id": session_id,
            "signer": signer,
            "role": role,
            "meaning": meaning,
            "at": _stamp(at, "the signature's time"),
        }
        self._append(conn, "signatures", values)

    def _clinician_from(self, row: Sequence[Any]) -> Clinician:
        check = _Row(self._path, "clinicians", row[0], self._naive_zone, self._zone)
        names = ("id", "name", "role", "added_at", "added_by", "prev_hash", "hash")
        _sealed(check, "clinicians", dict(zip(names, row, strict=True)))
        return Clinician(
            name=check.text("name", row[1]),
            role=check.choice("role", row[2], ROLES),
            added_at=check.moment("added_at", row[3]),
            added_by=check.text("added_by", row[4]),
        )

    def _signature_from(self, row: Sequence[Any]) -> Signature:
        check = _Row(self._path, "signatures", row[0], self._naive_zone, self._zone)
        _sealed(check, "signatures", dict(zip(_SIGNATURE_COLUMNS.split(", "), row, strict=True)))
        return Signature(
            audit_id=check.integer("audit_id", row[1]),
            session_id=None if row[2] is None else check.integer("session_id", row[2]),
            signer=check.text("signer", row[3]),
            role=check.optional_text("role", row[4]),
            meaning=check.choice("meaning", row[5], MEANINGS),
            at=check.moment("at", row[6]),
        )

    # --- transactions and errors ------------------------------------------------------------

    @contextmanager
    def _transaction(self, action: str) -> Iterator[Database]:
        """One write transaction: commits if the body returns, rolls back on any exception.

        It takes the store's write lock up front (:meth:`Database.begin_write`: ``BEGIN
        IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL, waiting up to the busy
        timeout), so two writers are serialised instead of one failing half-way. Inside
        :meth:`exclusive` it is a savepoint of the transaction held there.
        """
        with self._errors(action):
            if self._held:
                self._conn.script("SAVEPOINT ketadose_write")
                try:
                    yield self._conn
                    self._conn.script("RELEASE SAVEPOINT ketadose_write")
                except BaseException:
                    with suppress(Error):
                        self._conn.script("ROLLBACK TO SAVEPOINT ketadose_write")
                        self._conn.script("RELEASE SAVEPOINT ketadose_write")
                    raise
                return
            self._conn.begin_write()
            try:
                yield self._conn
                self._commit(action)
            except BaseException:
                with suppress(Error):
                    self._conn.script("ROLLBACK")
                raise

    @contextmanager
    def exclusive(self, action: str) -> Iterator[None]:
        """Hold the write lock across reads, a check and the write that follows them.

        A session is checked against the sessions around it, then written: with two
        recorded at once, each must see the other, so nobody writes between the read and the
        write (another writer waits, up to the busy timeout). Reads and writes inside run in
        this one transaction; it commits when the body returns and rolls back on an exception.

        Raises:
            StoreError: The lock cannot be had, or the store cannot be written.
        """
        with self._errors(action):
            self._conn.begin_write()
        self._held = True
        try:
            yield
            self._commit(action)
        except BaseException:
            with suppress(Error):
                self._conn.script("ROLLBACK")
            raise
        finally:
            self._held = False

    def _commit(self, action: str) -> None:
        """Commit the write transaction.

        A connection lost in the COMMIT itself leaves its outcome unknown to the client (the
        server may have committed before the reply was lost), so the error says so instead
        of "nothing was written": whoever records it again first looks.

        Raises:
            StoreError: The commit failed, or its outcome is unknown.
        """
        try:
            self._conn.script("COMMIT")
        except Error as error:
            if store_sql.kind(error) != "connection":
                raise self._translate(action, error) from None
            raise StoreError(
                f"cannot {action}: store {self._path}: {_one_line(error)}; the database "
                "server went away as it committed: whether this command was written is not "
                "known; look (ketadose history, ketadose audit) before recording it again"
            ) from None

    @contextmanager
    def _reading(self, action: str) -> Iterator[Database]:
        """One read transaction, so that several queries see the same state."""
        with self._errors(action):
            if self._held:  # inside exclusive(): its transaction is the one to read in
                yield self._conn
                return
            self._conn.begin_read()
            try:
                yield self._conn
            finally:
                with suppress(Error):
                    self._conn.script("COMMIT")

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Turn any database error into a one-line store or input error."""
        try:
            yield
        except KetadoseError:
            raise
        except Error as error:
            raise self._translate(action, error) from None

    def _translate(self, action: str, error: Error) -> KetadoseError:
        found = store_sql.kind(error)
        message = _one_line(error)
        if found in {"check", "notnull"}:
            return InputError(f"the store refuses the value ({message}); nothing was written")
        hint = ""
        if self._read_only and found == "readonly":
            hint = " (the store was opened read-only)"
        elif found in {"readonly", "cantopen"} and self._conn.sqlite:
            hint = "; check the permissions of the store file and its directory"
        elif found == "privilege" and action == "migrate":
            hint = (
                "; the store's schema is made or migrated by its owner: ask them to run "
                "ketadose store migrate"
            )
        elif found == "privilege":
            hint = (
                "; the store lets its clinicians add records, never change them: ask the "
                "store's owner for the role this needs"
            )
        elif found == "connection":
            hint = "; the database server went away: nothing of this command was written"
        return StoreError(f"cannot {action}: store {self._path}: {message}{hint}")


_DESCENDING = "julianday(at) DESC, at DESC, id DESC"

#: How much wider than asked a time range is read from the index (``julianday`` keeps whole
#: milliseconds; the exact instants then decide).
_MARGIN = timedelta(seconds=1)


def _in_instant_order(sessions: Iterator[SessionRecord]) -> Iterator[SessionRecord]:
    """Sessions read in :data:`_BY_TIME` order, given in the order of their exact instants.

    What ``sorted(sessions, key=instant)`` gives (ties kept in the order read), holding only
    the few sessions that share a millisecond: ``julianday`` orders by milliseconds, so a
    session read later is never more than a millisecond before one read earlier, and a held
    session can go once one read after it is a millisecond later. A time SQL cannot read
    (NULL, read first) is held until its place comes.
    """
    held: list[SessionRecord] = []
    moments: list[datetime] = []
    for session in sessions:
        moment = instant(session.at)
        ready = bisect_right(moments, moment - _TICK)
        yield from held[:ready]
        del held[:ready], moments[:ready]
        place = bisect_right(moments, moment)
        held.insert(place, session)
        moments.insert(place, moment)
    yield from held


#: The precision of ``julianday`` (whole milliseconds, rounded).
_TICK = timedelta(milliseconds=1)


#: The mode bits that let users other than the owner read or write (group and others).
_OTHERS = 0o066


def exposure(path: Path) -> str | None:
    """Why the store at ``path`` is open to other users, or None.

    A store file, or its directory, that the group or others may read or write is refused: the
    records are health data, and whoever may write the directory may replace the file. (Only
    what is there is judged; what :func:`_create_private` creates is the owner's alone. On
    Windows, whose modes do not say this, nothing is refused.)
    """
    if os.name == "nt":
        return None
    real = path.resolve()  # a link's target is what is read and written, and its directory
    checked = [("file", real, "600"), ("directory", real.parent, "700")]
    if real != path.absolute():
        checked.append(("directory", path.absolute().parent, "700"))
    checked += [("file", real.with_name(real.name + suffix), "600") for suffix in ("-wal", "-shm")]
    for what, target, fix in checked:
        try:
            mode = target.stat().st_mode & 0o777
        except OSError:
            continue  # not there yet: it is created private
        if mode & _OTHERS:
            who = " and ".join(
                word for word, bits in (("readable", 0o044), ("writable", 0o022)) if mode & bits
            )
            return (
                f"the store's {what} {target} is {who} by other users (mode {mode:04o}): "
                f"chmod {fix} {target}, or set store_shared = true in the config file"
            )
    return None


def _create_private(path: Path) -> None:
    """Create the directory and an empty file readable by its owner only, if missing."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise StoreError(f"cannot create the store's directory {path.parent}: {error}") from None
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # an existing store (or one another process has just created)
    except OSError as error:
        raise StoreError(f"cannot create store {path}: {error.strerror}") from None
    try:
        os.fchmod(handle, 0o600)  # exactly 0o600, whatever the umask
    finally:
        os.close(handle)


def _keepable(name: str, value: object) -> None:
    """Refuse text SQLite and PostgreSQL would not keep alike (or at all)."""
    if not isinstance(value, str):
        return
    if "\x00" in value:
        raise InputError(f"{name} holds a NUL character, which the store does not keep")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(
            f"{name} is not UTF-8 text (an argument in another encoding?); nothing was written"
        ) from None


def _target(migrations: Sequence[Migration]) -> int:
    """The version a list of steps makes: the Alembic head for the store's own, else its length."""
    return SCHEMA_VERSION if migrations is MIGRATIONS else len(migrations)


def _refuse_foreign(
    location: StoreLocation, version: int, application_id: int, objects: int
) -> None:
    """Refuse a database that is not ours (a new, empty one is fine)."""
    fresh = application_id == 0 and version == 0 and objects == 0
    if application_id != APPLICATION_ID and not fresh:
        engine = "an SQLite" if location.engine == "sqlite" else "a PostgreSQL"
        raise StoreError(
            f"{location} is {engine} database but not a ketadose store; refusing to change it"
        )


@contextmanager
def _known_patient(patient_id: str) -> Iterator[None]:
    """Turn the patient foreign key's refusal into 'unknown patient'."""
    try:
        yield
    except Error as error:
        if store_sql.kind(error) == "foreign_key":
            raise _unknown(patient_id) from None
        raise


def _unknown(patient_id: str) -> InputError:
    return InputError(f"no patient {patient_id!r} in the store")


def _one_line(error: BaseException) -> str:
    return store_sql.message(error)


@dataclass(frozen=True)
class StoreState:
    """What ``store check`` finds: the schema version, exposure, triggers and chains."""

    path: Path | str
    schema_version: int
    exposure: str | None
    missing_triggers: tuple[str, ...]
    chains: tuple[Chain, ...]
    crossings: tuple[Break, ...] = ()
    privileges: tuple[str, ...] = ()

    @property
    def problems(self) -> list[str]:
        """Each problem, one line each (empty: the store is sound)."""
        found = [] if self.exposure is None else [self.exposure]
        found += list(self.privileges)
        if self.schema_version < SCHEMA_VERSION:
            found.append(
                f"store schema version {self.schema_version}, older than version "
                f"{SCHEMA_VERSION}: run ketadose store migrate"
                + (" (it backs the file up first)" if isinstance(self.path, Path) else "")
            )
        found += [
            f"trigger {name} is missing: it was dropped outside ketadose; the rows it guards "
            "may have been changed (see the chains)"
            for name in self.missing_triggers
        ]
        found += [chain.broken.detail for chain in self.chains if chain.broken is not None]
        return found + [crossing.detail for crossing in self.crossings]


def inspect(
    where: Path | str | StoreLocation, zone: tzinfo | None = None, *, shared: bool = False
) -> StoreState:
    """Check a store without changing it: nothing is migrated, created or refused for its mode.

    ``shared`` (the config file's ``store_shared``): an SQLite store open to other users is
    allowed, so it is not a problem. On PostgreSQL the rights of the clinicians' role are
    checked instead (:func:`ketadose.store_pg.privilege_problems`).

    Raises:
        InputError: ``where`` is not a store location.
        StoreError: There is no store at ``where``, or it cannot be read at all.
    """
    location = store_url.parse(where)
    exposed = None if shared or location.path is None else exposure(location.path)
    try:
        store = Store.open(location, read_only=True, zone=zone, shared=True)
    except StoreMigrationError as older:
        return StoreState(location.path or location.shown, older.version, exposed, (), ())
    with store:
        return StoreState(
            location.path or location.shown,
            SCHEMA_VERSION,
            exposed,
            tuple(store.missing_triggers()),
            tuple(store.chains()),
            tuple(store.crossings()),
            tuple(store.privilege_problems()),
        )
