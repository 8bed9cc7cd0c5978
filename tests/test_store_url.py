"""Where the store is: a path, sqlite:///PATH, or postgresql://USER@HOST:PORT/DB, never a password."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketadose.errors import InputError
from ketadose.store_url import StoreLocation, parse


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("store.sqlite3", Path("store.sqlite3")),
        ("/srv/ketadose/store.db", Path("/srv/ketadose/store.db")),
        ("sqlite:///store.db", Path("store.db")),
        ("sqlite:////srv/ketadose/store.db", Path("/srv/ketadose/store.db")),
        ("sqlite+pysqlite:////srv/a%20b.db", Path("/srv/a b.db")),
        ("dir/with:colon/store.db", Path("dir/with:colon/store.db")),
        ("./odd://name", Path("./odd://name")),
    ],
)
def test_a_file(text: str, path: Path) -> None:
    found = parse(text)
    assert found == StoreLocation("sqlite", path=path, shown=str(path))


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://alice@db.clinic:5432/ketadose",
        "postgresql://alice@db.clinic/ketadose?sslmode=verify-full",
        "postgresql:///ketadose?host=/run/postgresql",
        "postgresql://?service=clinic",
        "postgres://alice@[::1]:5433/ketadose",
    ],
)
def test_a_server_keeps_libpq_conventions(text: str) -> None:
    found = parse(text)
    rest = text.partition("://")[2]
    assert found.engine == "postgresql"
    assert found.path is None
    assert found.conninfo == f"postgresql://{rest}"
    assert found.shown == found.conninfo


def test_sqlalchemy_spelling_is_libpq_for_the_driver() -> None:
    found = parse("postgresql+psycopg://bob@h:5432/k")
    assert found.conninfo == "postgresql://bob@h:5432/k"


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://alice:hunter2@db/ketadose",
        "postgresql://alice:@db/ketadose",
        "postgresql://alice@db/ketadose?password=hunter2",
        "postgresql://alice@db/ketadose?sslmode=require&PASSWORD=hunter2",
        "postgresql://alice@db/ketadose?sslkey=/k.pem&sslpassword=hunter2",
    ],
)
def test_a_password_is_refused_and_not_repeated(text: str) -> None:
    with pytest.raises(InputError, match="never carries a password") as raised:
        parse(text)
    assert "hunter2" not in str(raised.value)


@given(
    user=st.text("abcdefgh_0123", min_size=1, max_size=8),
    secret=st.text(st.characters(codec="ascii", exclude_characters="@/?#[]"), min_size=1),
)
def test_no_password_gets_through(user: str, secret: str) -> None:
    """Whatever the password, a URL holding one is refused with a message that is not about it."""
    from urllib.parse import quote

    text = f"postgresql://{user}:{quote(secret, safe='')}@db.clinic:5432/ketadose"
    with pytest.raises(InputError) as raised:
        parse(text)
    with pytest.raises(InputError) as other:
        parse("postgresql://someone:x@elsewhere/db")
    assert str(raised.value) == str(other.value)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("mysql://root@db/k", "not a store URL"),
        ("sqlite://host/store.db", "sqlite:///PATH"),
        ("sqlite://", "sqlite:///PATH"),
        ("sqlite:///store.db?mode=ro", "without a host or options"),
        ("postgresql://alice@db:notaport/k", "postgresql://"),
        ("postgresql:/db.clinic/ketadose", "with two slashes"),
        ("sqlite:store.db", "with two slashes"),
        (":memory:", "keeps nothing"),
    ],
)
def test_what_is_not_a_store(text: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        parse(text)
