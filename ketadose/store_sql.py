"""The record store's one connection to its database, through SQLAlchemy 2 Core, on either engine.

The store's SQL is written once, in the subset SQLite and PostgreSQL read alike: ``?`` for each
value (bound by name through :func:`sqlalchemy.text`, so each driver gets its own style),
``julianday(at)`` for the instant a stored time names (SQLite's own function; the PostgreSQL
schema defines ``julianday(text)`` to match, see :mod:`ketadose.store_pg`), ``"user"`` quoted,
``RETURNING`` for a new row's key. What differs is here and only here: how a connection is
made, how a write transaction takes the store's one write lock, what an error means.

* **SQLite** (embedded, one file): ``BEGIN IMMEDIATE`` takes the file's write lock up front,
  waiting up to :data:`BUSY_TIMEOUT_S` behind another writer.
* **PostgreSQL** (a server shared by workstations): ``BEGIN`` then a transaction-level advisory
  lock on :data:`LOCK_KEY`, so writers queue as they do on SQLite (each decision reads the
  sessions around it and writes in one transaction; nobody writes between), up to
  ``lock_timeout``. Reads are one ``REPEATABLE READ`` snapshot each. The connection is libpq's
  (psycopg 3): ``PGPASSFILE``/``~/.pgpass``, ``sslmode``, service files and ``PG*`` variables as
  any PostgreSQL client; no password ever passes through ketadose.

The connection runs in SQLAlchemy's ``AUTOCOMMIT`` mode and the store says ``BEGIN``/``COMMIT``
itself: SQLAlchemy's own transaction cannot spell ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from contextlib import suppress
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import sqlalchemy
from sqlalchemy import exc
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from ketadose.errors import StoreError
from ketadose.store_url import StoreLocation

#: How long a writer waits for another writer's transaction before giving up, in seconds.
BUSY_TIMEOUT_S = 5.0
#: The advisory lock every PostgreSQL write transaction holds ("KDOS", as the SQLite file's
#: application id): the store's one write lock.
LOCK_KEY = 0x4B444F53
#: How long connecting to a server may take before the store gives up, in seconds.
CONNECT_TIMEOUT_S = 10

Engine = Literal["sqlite", "postgresql"]
#: A statement's rows (a :class:`sqlalchemy.engine.CursorResult`): typed as Any, since a row's
#: length and types are the SQL's, which a type checker cannot read.
Result = Any

#: What an error is about, whichever engine raised it (see :func:`kind`).
Kind = Literal[
    "check",
    "notnull",
    "foreign_key",
    "unique",
    "refused",
    "readonly",
    "cantopen",
    "notadb",
    "busy",
    "privilege",
    "connection",
    "other",
]

#: The errors a store operation may meet: the driver's (wrapped by SQLAlchemy) and SQLAlchemy's.
Error = exc.SQLAlchemyError


class Database:
    """One open connection: the store's SQL in, rows out.

    Not thread-safe: one per thread, as the store.
    """

    def __init__(self, connection: Connection, engine: Engine, shown: str) -> None:
        """Wrap an open connection; use :func:`connect`."""
        self.connection = connection
        self.engine: Engine = engine
        self.shown = shown

    @property
    def raw(self) -> Any:
        """The driver's own connection (sqlite3's or psycopg's), for tests and tools."""
        return self.connection.connection.dbapi_connection

    @property
    def sqlite(self) -> bool:
        """Whether this is the embedded engine."""
        return self.engine == "sqlite"

    def execute(self, sql: str, params: Sequence[Any] = (), *, stream: bool = False) -> Result:
        """Run one statement with ``?`` values; ``stream``: rows fetched as taken (a cursor)."""
        statement, names = _bound(sql)
        bound = dict(zip(names, params, strict=True))
        if stream:
            return self.connection.execute(
                statement, bound, execution_options={"stream_results": True, "yield_per": 500}
            )
        return self.connection.execute(statement, bound)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each row of values (nothing for none)."""
        if not rows:
            return
        statement, names = _bound(sql)
        self.connection.execute(statement, [dict(zip(names, row, strict=True)) for row in rows])

    def script(self, sql: str) -> None:
        """Run a statement as written, without values (DDL, transaction control)."""
        self.connection.exec_driver_sql(sql)

    def begin_write(self) -> None:
        """Begin a write transaction holding the store's write lock.

        On PostgreSQL a lock not had (``lock_timeout``, a lost connection) rolls the
        transaction just begun back before the error goes on, as a refused ``BEGIN
        IMMEDIATE`` leaves none on SQLite: else the connection would stay in an aborted
        transaction and refuse every later statement.

        Raises:
            StoreError: A read is still open on this connection (an iteration not taken to
                its end): a write would join its snapshot and end it.
        """
        if self.in_transaction:
            raise StoreError(
                f"store {self.shown}: a read of the store is still open; take all of it (or "
                "close it) before writing"
            )
        if self.sqlite:
            self.script("BEGIN IMMEDIATE")
            return
        self.script("BEGIN")
        try:
            self.connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({LOCK_KEY})")
        except BaseException:
            with suppress(exc.SQLAlchemyError):
                self.script("ROLLBACK")
            raise

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open on the connection (the driver's own account)."""
        raw = self.raw
        if self.sqlite:
            return bool(raw.in_transaction)
        import psycopg

        return bool(raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE)

    def begin_read(self) -> None:
        """Begin a read transaction: every query in it sees the same state."""
        self.script("BEGIN" if self.sqlite else "BEGIN ISOLATION LEVEL REPEATABLE READ")

    def close(self) -> None:
        """Close the connection (and its engine: nothing is pooled)."""
        engine = self.connection.engine
        try:
            self.connection.close()
        finally:
            engine.dispose()


def connect(location: StoreLocation, *, read_only: bool) -> Database:
    """Open a connection to the store at ``location`` (nothing is created but an SQLite file).

    Raises:
        sqlalchemy.exc.SQLAlchemyError: The database cannot be reached or opened.
        StoreError: PostgreSQL without its driver installed.
    """
    if location.engine == "sqlite":
        assert location.path is not None
        path: Path = location.path

        def sqlite_connection() -> sqlite3.Connection:
            if read_only:
                uri = f"file:{quote(str(path.resolve()))}?mode=ro"
                return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            return sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)

        engine = sqlalchemy.create_engine(
            "sqlite+pysqlite://", creator=sqlite_connection, poolclass=NullPool
        )
    else:
        try:
            import psycopg
        except ImportError:
            raise StoreError(
                f"store {location}: a PostgreSQL store needs psycopg 3: "
                "pip install 'ketadose[postgresql]'"
            ) from None
        assert location.conninfo is not None
        conninfo = location.conninfo

        def postgresql_connection() -> psycopg.Connection[Any]:
            options: dict[str, Any] = {"application_name": "ketadose"}
            if "connect_timeout" not in conninfo:
                options["connect_timeout"] = CONNECT_TIMEOUT_S
            return psycopg.connect(conninfo, **options)

        engine = sqlalchemy.create_engine(
            "postgresql+psycopg://", creator=postgresql_connection, poolclass=NullPool
        )
    try:
        connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    except BaseException:
        engine.dispose()
        raise
    database = Database(connection, location.engine, location.shown)
    if not database.sqlite:
        try:
            # Writers queue behind the write lock as long as SQLite's busy timeout allows.
            database.script(f"SET lock_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            # The store is in schema public, whatever the role's or the URL's search_path
            # ("$user" first by default: a schema named as the owner would take the tables).
            database.script("SET search_path = public")
            if read_only:
                database.script("SET default_transaction_read_only = on")
        except BaseException:
            database.close()
            raise
    return database


def kind(error: BaseException) -> Kind:
    """What a driver error is about, on either engine (``other`` when nothing specific)."""
    original = getattr(error, "orig", error)
    name = getattr(original, "sqlite_errorname", None)
    if isinstance(name, str):
        return _sqlite_kind(name)
    state = getattr(original, "sqlstate", None)
    if isinstance(state, str):
        return _postgresql_kind(state)
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return "connection"
    return "other"


def _sqlite_kind(name: str) -> Kind:
    exact: dict[str, Kind] = {
        "SQLITE_CONSTRAINT_CHECK": "check",
        "SQLITE_CONSTRAINT_NOTNULL": "notnull",
        "SQLITE_CONSTRAINT_FOREIGNKEY": "foreign_key",
        "SQLITE_CONSTRAINT_PRIMARYKEY": "unique",
        "SQLITE_CONSTRAINT_UNIQUE": "unique",
        "SQLITE_CONSTRAINT_TRIGGER": "refused",
        "SQLITE_NOTADB": "notadb",
    }
    if name in exact:
        return exact[name]
    prefixes: tuple[tuple[str, Kind], ...] = (
        ("SQLITE_READONLY", "readonly"),
        ("SQLITE_CANTOPEN", "cantopen"),
        ("SQLITE_PERM", "cantopen"),
        ("SQLITE_BUSY", "busy"),
        ("SQLITE_LOCKED", "busy"),
    )
    return next((found for prefix, found in prefixes if name.startswith(prefix)), "other")


def _postgresql_kind(state: str) -> Kind:
    exact: dict[str, Kind] = {
        "23514": "check",
        "23502": "notnull",
        "23503": "foreign_key",
        "23505": "unique",
        "P0001": "refused",
        "23000": "refused",
        "25006": "readonly",
        "42501": "privilege",
        "55P03": "busy",
        "40P01": "busy",
        "3D000": "cantopen",
        "28000": "privilege",
        "28P01": "privilege",
    }
    if state in exact:
        return exact[state]
    if state.startswith(("08", "57P")):
        return "connection"
    return "other"


def message(error: BaseException) -> str:
    """The driver's own message on one line, without SQLAlchemy's statement and links."""
    original = getattr(error, "orig", None)
    text = str(original if original is not None else error)
    if original is not None and hasattr(original, "diag"):
        text = getattr(original.diag, "message_primary", None) or text
    return " ".join(text.split()) or type(error).__name__


@lru_cache(maxsize=1024)
def _bound(sql: str) -> tuple[sqlalchemy.TextClause, tuple[str, ...]]:
    """The statement with each ``?`` outside a quoted literal bound as ``:p0``, ``:p1``, ..."""
    names: list[str] = []

    def bind(found: re.Match[str]) -> str:
        if found[0] != "?":
            return found[0]  # a literal, kept as written
        names.append(f"p{len(names)}")
        return f":{names[-1]}"

    return sqlalchemy.text(_PLACES.sub(bind, sql)), tuple(names)


#: A quoted literal or identifier (kept), or a ``?`` (bound).
_PLACES = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?")
