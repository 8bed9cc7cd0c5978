"""The connection seam: values bound by name on both drivers, errors read alike."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import exc

from ketadose.store_sql import _bound, connect, kind, message
from ketadose.store_url import StoreLocation


@pytest.mark.parametrize(
    ("sql", "bound", "names"),
    [
        ("SELECT 1 FROM t WHERE a = ? AND b = ?", "SELECT 1 FROM t WHERE a = :p0 AND b = :p1", 2),
        ("SELECT '?' FROM t WHERE a = ?", "SELECT '?' FROM t WHERE a = :p0", 1),
        ('SELECT "we?rd" FROM t', 'SELECT "we?rd" FROM t', 0),
        ("SELECT 'it''s ?' || ?", "SELECT 'it''s ?' || :p0", 1),
    ],
)
def test_each_value_outside_a_literal_is_bound_by_name(sql: str, bound: str, names: int) -> None:
    statement, found = _bound(sql)
    assert str(statement) == bound
    assert found == tuple(f"p{i}" for i in range(names))


def test_a_value_with_a_percent_reaches_sqlite_as_given(tmp_path: Path) -> None:
    database = connect(StoreLocation.file(tmp_path / "s.db"), read_only=False)
    try:
        assert database.execute("SELECT ? || '%'", ("50",)).scalar_one() == "50%"
    finally:
        database.close()


def wrapped(original: Exception) -> BaseException:
    """The error as SQLAlchemy raises it: the driver's, wrapped (``.orig``)."""
    return exc.DBAPIError.instance("SELECT 1", None, original, Exception)


def sqlite_error(name: str) -> sqlite3.Error:
    error = sqlite3.IntegrityError("refused")
    error.sqlite_errorname = name
    return error


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("SQLITE_CONSTRAINT_CHECK", "check"),
        ("SQLITE_CONSTRAINT_FOREIGNKEY", "foreign_key"),
        ("SQLITE_CONSTRAINT_PRIMARYKEY", "unique"),
        ("SQLITE_CONSTRAINT_TRIGGER", "refused"),
        ("SQLITE_READONLY_DBMOVED", "readonly"),
        ("SQLITE_BUSY", "busy"),
        ("SQLITE_IOERR", "other"),
    ],
)
def test_sqlite_errors_are_read_by_their_name(name: str, expected: str) -> None:
    assert kind(wrapped(sqlite_error(name))) == expected


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (psycopg.errors.CheckViolation, "check"),
        (psycopg.errors.ForeignKeyViolation, "foreign_key"),
        (psycopg.errors.UniqueViolation, "unique"),
        (psycopg.errors.IntegrityConstraintViolation, "refused"),
        (psycopg.errors.ReadOnlySqlTransaction, "readonly"),
        (psycopg.errors.InsufficientPrivilege, "privilege"),
        (psycopg.errors.LockNotAvailable, "busy"),
        (psycopg.errors.AdminShutdown, "connection"),
        (psycopg.errors.ConnectionFailure, "connection"),
        (psycopg.errors.DivisionByZero, "other"),
    ],
)
def test_postgresql_errors_are_read_by_their_sqlstate(
    error: type[psycopg.Error], expected: str
) -> None:
    assert kind(wrapped(error("refused"))) == expected


def test_the_message_is_the_drivers_on_one_line() -> None:
    found = message(wrapped(sqlite3.OperationalError("database is\nlocked")))
    assert found == "database is locked"
