"""Where the record store is: a file (SQLite, embedded) or a PostgreSQL database (shared).

``--store``, ``KETADOSE_STORE`` and the config file's ``store`` take one text, read here:

* a plain path, or ``sqlite:///PATH`` (SQLAlchemy's spelling: ``sqlite:///store.db`` is
  relative, ``sqlite:////srv/ketadose/store.db`` absolute): the embedded store, one file;
* ``postgresql://USER@HOST:PORT/DB`` (also ``postgres://`` and ``postgresql+psycopg://``):
  a database server, reached with libpq's own conventions. Everything after ``?`` is a libpq
  parameter (``sslmode=verify-full``, ``service=clinic``, ``host=/run/postgresql`` ...), and
  what the URL leaves out libpq takes from ``PGHOST``, ``PGUSER``, ``PGSERVICEFILE`` and the
  like. The password comes from ``PGPASSFILE`` or ``~/.pgpass`` (or a client certificate):
  **never** from the URL, which ends up in shell histories, process lists and the audit log.
  A URL that carries one (``USER:SECRET@`` or ``password=``) is refused, and the message does
  not repeat it.

Pure: nothing here connects, reads the environment or touches a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from ketadose.errors import InputError

#: The URL schemes of a PostgreSQL store (``postgresql+psycopg`` is SQLAlchemy's spelling).
POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
#: The scheme of an SQLite store given as a URL (``sqlite+pysqlite`` is SQLAlchemy's).
SQLITE_SCHEMES = ("sqlite", "sqlite+pysqlite")
#: libpq parameters that carry a secret: refused in a URL.
_SECRETS = frozenset({"password", "sslpassword"})


@dataclass(frozen=True)
class StoreLocation:
    """A store's place.

    Attributes:
        engine: ``sqlite`` or ``postgresql``.
        path: The SQLite file (None for PostgreSQL).
        conninfo: The libpq connection URI, as given but for the scheme (None for SQLite).
        shown: How messages and the audit name the store (the path, or the URL).
    """

    engine: Literal["sqlite", "postgresql"]
    path: Path | None = None
    conninfo: str | None = None
    shown: str = ""

    @classmethod
    def file(cls, path: Path) -> StoreLocation:
        """The embedded store in ``path``."""
        return cls("sqlite", path=path, shown=str(path))

    def __str__(self) -> str:
        return self.shown


def parse(text: str | Path | StoreLocation) -> StoreLocation:
    """Read a ``--store`` value (see the module docstring).

    Raises:
        InputError: An empty value, a URL of another scheme, an ``sqlite://`` URL without a
            path, or a PostgreSQL URL with a password or a port that is not a number.
    """
    if isinstance(text, StoreLocation):
        return text
    if isinstance(text, Path):
        return StoreLocation.file(text)
    if not text.strip():
        raise InputError("the store is named by an empty text: give a file or a postgresql:// URL")
    if text.strip() == ":memory:":
        raise InputError("the store is named :memory:, which keeps nothing: give a file")
    scheme, separator, rest = text.partition("://")
    if not separator or "/" in scheme or "\\" in scheme:
        head = text.partition(":")[0].lower()
        if ":" in text and head in (*POSTGRES_SCHEMES, *SQLITE_SCHEMES):
            raise InputError(f"store {head}:...: a store URL is {head}://..., with two slashes")
        return StoreLocation.file(Path(text))
    lowered = scheme.lower()
    if lowered in SQLITE_SCHEMES:
        return _sqlite(text, rest)
    if lowered in POSTGRES_SCHEMES:
        return _postgresql(rest)
    raise InputError(
        f"store {scheme}://...: not a store URL; give a file, sqlite:///PATH or "
        "postgresql://USER@HOST:PORT/DB"
    )


def _sqlite(text: str, rest: str) -> StoreLocation:
    host, slash, path = rest.partition("/")
    if host or not slash or not path or "?" in path:
        raise InputError(
            f"store {text}: an SQLite URL is sqlite:///PATH (relative) or "
            "sqlite:////PATH (absolute), without a host or options"
        )
    return StoreLocation.file(Path(unquote(path)))


def _postgresql(rest: str) -> StoreLocation:
    conninfo = f"postgresql://{rest}"
    try:
        parts = urlsplit(conninfo)
        parts.port  # noqa: B018 - read to validate: a port must be a number
    except ValueError as error:
        raise InputError(f"store postgresql://...: {error}") from None
    if parts.password is not None or ":" in (parts.netloc.rpartition("@")[0]):
        raise InputError(
            "a PostgreSQL store URL never carries a password (it would be kept in shell "
            "histories and logs); put it in ~/.pgpass or PGPASSFILE, or use a certificate"
        )
    options = [key.lower() for key, _ in parse_qsl(parts.query, keep_blank_values=True)]
    if _SECRETS & set(options):
        raise InputError(
            "a PostgreSQL store URL never carries a password (password=); put it in "
            "~/.pgpass or PGPASSFILE, or use a certificate"
        )
    return StoreLocation("postgresql", conninfo=conninfo, shown=conninfo)
