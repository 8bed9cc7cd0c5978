"""The PostgreSQL test cluster (tests/pg.py) works: roles, permissions, databases, crashes, root.

The store suite will run on it (issue 16), so what it relies on is proven here first: who the
session user is, that a missing GRANT is refused, that each test's database is its own, and that
a killed server keeps every committed row.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

import tests.pg as pg
from tests.pg import Cluster, Database


def user_tables(conn: pg.Connection) -> list[tuple[object, ...]]:
    rows = conn.execute(
        "SELECT table_schema, table_name FROM information_schema.tables"
        " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
    )
    return list(rows)


class TestFindBindir:
    """The server binaries are found on Debian (no initdb on PATH) and elsewhere."""

    @staticmethod
    def install(bindir: Path, *names: str) -> Path:
        bindir.mkdir(parents=True)
        for name in names:
            (bindir / name).write_text("#!/bin/sh\n", encoding="utf-8")
            (bindir / name).chmod(0o755)
        return bindir

    def test_the_newest_complete_debian_version_numerically(self, tmp_path: Path) -> None:
        lib = tmp_path / "lib"
        self.install(lib / "9.6" / "bin", "initdb", "postgres")
        newest = self.install(lib / "15" / "bin", "initdb", "postgres")
        self.install(lib / "16" / "bin", "initdb")  # a client-only 16: no server binary
        assert pg.find_bindir(pg_config="", lib=lib, path="") == newest

    def test_pg_config_first_when_its_bindir_has_the_server(self, tmp_path: Path) -> None:
        mine = self.install(tmp_path / "opt" / "bin", "initdb", "postgres")
        config = tmp_path / "pg_config"
        config.write_text(f"#!/bin/sh\necho {mine}\n", encoding="utf-8")
        config.chmod(0o755)
        lib = tmp_path / "lib"
        self.install(lib / "15" / "bin", "initdb", "postgres")
        assert pg.find_bindir(pg_config=str(config), lib=lib, path="") == mine

    def test_a_pg_config_without_the_server_is_passed_over(self, tmp_path: Path) -> None:
        # Debian's pg_config may come from libpq-dev of another major version than the server.
        client = self.install(tmp_path / "client" / "bin", "initdb")
        config = tmp_path / "pg_config"
        config.write_text(f"#!/bin/sh\necho {client}\n", encoding="utf-8")
        config.chmod(0o755)
        on_path = self.install(tmp_path / "path" / "bin", "initdb", "postgres")
        found = pg.find_bindir(pg_config=str(config), lib=tmp_path / "none", path=str(on_path))
        assert found == on_path

    def test_none_when_postgresql_is_not_installed(self, tmp_path: Path) -> None:
        assert pg.find_bindir(pg_config="", lib=tmp_path, path=str(tmp_path)) is None

    def test_this_machine_has_one_when_ci_says_so(self) -> None:
        found = pg.find_bindir()
        if os.environ.get("CI") == "true":
            assert found is not None and (found / "initdb").exists()


class TestMissingBinaries:
    """Without PostgreSQL a test is skipped locally and failed under CI=true."""

    def test_skipped_locally(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(pg, "find_bindir", lambda: None)
        monkeypatch.delenv("CI", raising=False)
        with pytest.raises(pytest.skip.Exception, match="PostgreSQL server binaries not found"):
            pg.bindir_or_skip()

    def test_failed_under_ci(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(pg, "find_bindir", lambda: None)
        monkeypatch.setenv("CI", "true")
        with pytest.raises(pytest.fail.Exception, match="CI=true: PostgreSQL is required"):
            pg.bindir_or_skip()


class TestCluster:
    """The cluster is the test's own, configured as documented, and it runs unprivileged."""

    def test_a_test_using_it_is_marked(
        self, pg_cluster: Cluster, request: pytest.FixtureRequest
    ) -> None:
        assert request.node.get_closest_marker("postgresql") is not None

    def test_its_own_directory_and_settings(self, pg_cluster: Cluster) -> None:
        with pg_cluster.admin() as conn:
            settings: dict[str, str] = dict(
                conn.execute(
                    "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)",
                    (
                        [
                            "data_directory",
                            "fsync",
                            "full_page_writes",
                            "synchronous_commit",
                            "listen_addresses",
                            "port",
                            "unix_socket_directories",
                        ],
                    ),
                ).fetchall()
            )
        assert settings == {
            "data_directory": str(pg_cluster.data),
            "fsync": "off",
            "full_page_writes": "off",
            "synchronous_commit": "on",
            "listen_addresses": "127.0.0.1",
            "port": str(pg_cluster.port),
            "unix_socket_directories": str(pg_cluster.root),
        }
        assert pg_cluster.root.parent == Path("/tmp")
        assert pg_cluster.root.name.startswith("ketadose-pg-")

    def test_the_server_runs_unprivileged(self, pg_cluster: Cluster) -> None:
        if os.geteuid() == 0:  # initdb and postgres refuse root: CI runs as root
            expected = pwd.getpwnam("nobody").pw_uid
            assert expected != 0
        else:
            expected = os.getuid()
        assert pg_cluster.server_uid() == expected
        with pg_cluster.admin() as conn:
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
            assert row is not None
            assert pg._process_uid(row[0]) == expected  # the backend serving this test too
        assert pg_cluster.data.stat().st_uid == expected

    def test_the_url_has_no_password(self, pg_cluster: Cluster) -> None:
        url = pg_cluster.url("dr smith", "store")
        assert url == f"postgresql://dr%20smith@127.0.0.1:{pg_cluster.port}/store"
        assert pg_cluster.url("a", "b", driver="psycopg").startswith("postgresql+psycopg://a@")


class TestRoles:
    """Who connects is who the server says is acting, and a missing GRANT is refused."""

    def test_the_superuser(self, pg_database: Database) -> None:
        with pg_database.cluster.admin(pg_database.name) as conn:
            row = conn.execute("SELECT session_user, current_setting('is_superuser')").fetchone()
        assert row == ("postgres", "on")

    def test_a_new_role_is_the_session_user_over_tcp(self, pg_database: Database) -> None:
        pg_database.cluster.create_role("nurse_a", password="s3cret one")
        with pg_database.connect("nurse_a", password="s3cret one") as conn:
            row = conn.execute(
                "SELECT session_user, current_user, current_setting('is_superuser'),"
                " inet_server_addr()::text"
            ).fetchone()
        assert row == ("nurse_a", "nurse_a", "off", "127.0.0.1/32")

    def test_sqlalchemy_connects_with_the_url_and_a_password(self, pg_database: Database) -> None:
        engine = sa.create_engine(
            pg_database.url(driver="psycopg"), connect_args={"password": pg_database.password}
        )
        try:
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT session_user")).scalar() == pg_database.owner
        finally:
            engine.dispose()

    def test_tcp_asks_for_the_right_password(self, pg_database: Database) -> None:
        cluster = pg_database.cluster
        cluster.create_role("nurse_b", password="right")
        cluster.create_role("no_password")
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            pg_database.connect("nurse_b", password="wrong")
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            pg_database.connect("no_password", password="anything")

    def test_the_socket_trusts_any_role(self, pg_database: Database) -> None:
        pg_database.cluster.create_role("no_password")
        with pg_database.connect("no_password") as conn:
            assert conn.execute("SELECT session_user").fetchone() == ("no_password",)

    def test_an_insert_without_a_grant_is_refused(self, pg_database: Database) -> None:
        pg_database.cluster.create_role("nurse_c", password="pw")
        with pg_database.connect() as owner:
            owner.execute("CREATE TABLE doses (mg integer NOT NULL)")
            owner.commit()
        with (
            pg_database.connect("nurse_c", password="pw") as nurse,
            pytest.raises(psycopg.errors.InsufficientPrivilege) as refused,
        ):
            nurse.execute("INSERT INTO doses VALUES (40)")
        assert refused.value.sqlstate == "42501"
        assert "permission denied for table doses" in str(refused.value)
        with pg_database.connect() as owner:
            owner.execute("GRANT INSERT ON doses TO nurse_c")
            owner.commit()
        with pg_database.connect("nurse_c", password="pw") as nurse:
            nurse.execute("INSERT INTO doses VALUES (40)")
            nurse.commit()
        with pg_database.connect() as owner:
            assert owner.execute("SELECT mg FROM doses").fetchall() == [(40,)]


class TestDatabases:
    """Each test's database is its own, empty, and gone afterwards."""

    def test_two_are_distinct_and_empty(self, pg_new_database: Callable[[], Database]) -> None:
        first, second = pg_new_database(), pg_new_database()
        assert first.name != second.name and first.owner != second.owner
        assert {first.name, second.name} <= first.cluster.databases()
        with first.connect() as conn:
            assert user_tables(conn) == []
            conn.execute("CREATE TABLE patients (id text PRIMARY KEY)")
            conn.commit()
            assert user_tables(conn) == [("public", "patients")]
        with second.connect() as conn:
            assert user_tables(conn) == []
            assert conn.execute("SELECT current_database()").fetchone() == (second.name,)

    def test_drop_removes_the_database_and_its_owner(self, pg_cluster: Cluster) -> None:
        database = Database(pg_cluster)
        conn = database.connect()  # a session still open: dropped all the same, and ended
        conn.execute("SELECT 1")
        database.drop()
        with pytest.raises(psycopg.errors.AdminShutdown):
            conn.execute("SELECT 1")
        conn.close()
        assert database.name not in pg_cluster.databases()
        with pg_cluster.admin() as admin:
            found = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (database.owner,))
            assert found.fetchall() == []


class TestRestarts:
    """A crash of the server (SIGKILL of the postmaster) loses nothing that was committed."""

    def test_kill_keeps_every_committed_row(self, pg_database: Database) -> None:
        cluster = pg_database.cluster
        with pg_database.connect() as conn:
            conn.execute("CREATE TABLE audit (n integer PRIMARY KEY)")
            conn.commit()
            for n in range(200):  # each its own commit, the last one just before the kill
                conn.execute("INSERT INTO audit VALUES (%s)", (n,))
                conn.commit()
        in_flight = pg_database.connect()
        in_flight.execute("INSERT INTO audit VALUES (-1)")  # never committed
        before = cluster.pid
        cluster.kill()
        assert not cluster.running
        with pytest.raises(psycopg.OperationalError):
            in_flight.execute("SELECT 1")
        in_flight.close()
        cluster.start()
        assert cluster.pid != before
        with pg_database.connect() as conn:
            rows = [n for (n,) in conn.execute("SELECT n FROM audit ORDER BY n")]
        assert rows == list(range(200))

    def test_stop_and_start_again_on_the_same_directory(self, pg_database: Database) -> None:
        cluster = pg_database.cluster
        with pg_database.connect() as conn:
            conn.execute("CREATE TABLE t AS SELECT 7 AS seven")
            conn.commit()
        cluster.stop()
        with pytest.raises(psycopg.OperationalError):
            cluster.admin()
        cluster.start()
        with pg_database.connect() as conn:
            assert conn.execute("SELECT seven FROM t").fetchall() == [(7,)]
