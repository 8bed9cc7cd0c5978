"""Shared test set-up: hypothesis profiles, a record store of each test's own, and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

if TYPE_CHECKING:  # tests.pg imports psycopg: only the PostgreSQL tests pay for it
    from tests.pg import Cluster, Database
    from tests.stores import StoreTarget

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    print_blob=True,
)
settings.register_profile(
    "dev",
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(autouse=True)
def store_path(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test writes its audit entries to a fresh store, never to the user's."""
    path = tmp_path_factory.mktemp("store") / "store.sqlite3"
    monkeypatch.setenv("KETADOSE_STORE", str(path))
    monkeypatch.delenv("KETADOSE_LIMITS", raising=False)
    # One clinic zone for every test, whatever the machine's: outputs carry its UTC offset.
    monkeypatch.setenv("KETADOSE_TZ", "Europe/Berlin")
    # Never the user's own clinic defaults: an empty config directory, no named file.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))
    for name in (
        "KETADOSE_CONFIG",
        "KETADOSE_PROTOCOLS",
        "KETADOSE_CLINICIAN",
        "KETADOSE_PAPER",
        "KETADOSE_STORE_SHARED",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("KETADOSE_PUMP_STEP", raising=False)
    monkeypatch.delenv("KETADOSE_DRAW_STEP", raising=False)
    return path


#: The fixtures that start the PostgreSQL cluster: a test using one is marked ``postgresql``.
PG_FIXTURES = {"pg_cluster", "pg_database", "pg_new_database"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the PostgreSQL cluster, so ``-m "not postgresql"`` leaves it."""
    for item in items:
        if PG_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgresql)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """One throwaway PostgreSQL cluster for the run, started when a test first asks for it.

    Without the server binaries a test is skipped, but under CI=true it fails: CI must never
    pass with the PostgreSQL suite silently skipped.
    """
    from tests.pg import Cluster, bindir_or_skip

    bindir = bindir_or_skip()
    with Cluster.create(bindir) as cluster:
        yield cluster


@pytest.fixture
def pg_new_database(pg_cluster: Cluster) -> Iterator[Callable[[], Database]]:
    """Makes fresh empty databases; each is dropped afterwards with every role the test made."""
    from tests.pg import Database

    roles_before = list(pg_cluster.roles)
    made: list[Database] = []

    def new() -> Database:
        made.append(Database(pg_cluster))
        return made[-1]

    yield new
    if not pg_cluster.running:  # a fault test left it down: the next test needs it up
        pg_cluster.start()
    for database in reversed(made):
        database.drop()
    for role in reversed(pg_cluster.roles):
        if role not in roles_before:
            pg_cluster.drop_role(role)


@pytest.fixture
def pg_database(pg_new_database: Callable[[], Database]) -> Database:
    """A fresh, empty database of this test's own, owned by a fresh non-superuser role."""
    return pg_new_database()


#: The engines the store suite runs on: every test that takes ``engine`` or ``store_target``
#: runs once on each (the PostgreSQL run is marked ``postgresql``).
ENGINES = ("sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql))


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """``sqlite`` or ``postgresql``: the engine this run of the test is on."""
    return str(request.param)


@pytest.fixture
def store_target(
    engine: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> StoreTarget:
    """A fresh, empty store on the test's engine, and the means to act on it as someone.

    SQLite: a file under the test's temp dir. PostgreSQL: a fresh database of the throwaway
    cluster, owned by a fresh role whose password is in a ``PGPASSFILE`` of the test's own
    (the URL never carries it, as ketadose requires), with the clinicians' group role
    (``ketadose_clinician``) in the cluster. ``KETADOSE_STORE`` points at it, so the command
    line uses it too.
    """
    from tests.stores import StoreTarget

    if engine == "sqlite":
        target = StoreTarget.file(tmp_path / "data" / "ketadose.db")
    else:
        database = request.getfixturevalue("pg_new_database")()
        target = StoreTarget.server(database, tmp_path / "pgpass", monkeypatch)
    monkeypatch.setenv("KETADOSE_STORE", target.url)
    return target
