"""A throwaway PostgreSQL cluster for tests: its own data directory, port and socket.

The store suite (issue 16) runs against SQLite and against a real PostgreSQL server. This module
starts that server from the installed binaries, never a system service and never the Debian
``main`` cluster: ``initdb`` into a fresh directory under /tmp, ``postgres`` on a free TCP port
of 127.0.0.1 with its unix socket in that directory, and at the end an immediate stop and the
directory deleted.

Authentication (pg_hba.conf, written here in full):

* the unix socket trusts every role: the superuser's administration (``Cluster.admin``) and a
  test that needs to act as a role without caring how it logs in (``connect`` without a password);
* TCP on 127.0.0.1 asks for a SCRAM-SHA-256 password: the way the store will meet its users
  (the store authenticates each clinician as the database session user), so a wrong password or a
  role without one is refused there, as it would be in production. ``Cluster.url`` never carries
  the password (URLs end up in logs and tracebacks); it is passed apart, e.g. psycopg's
  ``password=`` or SQLAlchemy's ``connect_args``.

Root: initdb and postgres refuse to run as root, and CI runs as root. Then the server runs as
``nobody`` (subprocess's ``user=``/``group=``/``extra_groups=[]``: setuid, setgid and no
supplementary groups before exec), in a directory made with ``tempfile.mkdtemp`` in /tmp
(pytest's own temp dirs are root's, 0700) and handed to that user.

Speed: ``fsync=off`` and ``full_page_writes=off`` (a process crash keeps what was written, the
kernel's page cache survives it; only a machine crash would not, and tests do not survive one
anyway). ``synchronous_commit`` stays ``on``: with ``off`` a commit returns before its WAL is
even handed to the kernel, so ``kill()`` right after a commit can lose it, which is exactly what
the fault tests must be able to rule out; with fsync off, ``on`` costs a write() per commit.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import TupleRow

#: The binaries a cluster needs from one installation.
BINARIES = ("initdb", "postgres")
#: Where Debian's packages put each major version's server binaries.
DEBIAN_LIB = Path("/usr/lib/postgresql")
#: The user the server runs as when the tests run as root.
UNPRIVILEGED_USER = "nobody"
SUPERUSER = "postgres"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0

#: Every line of pg_hba.conf: see the module docstring.
HBA = """\
# ketadose test cluster (tests/pg.py): trust on the socket, SCRAM passwords over TCP.
local   all   all                  trust
host    all   all   127.0.0.1/32   scram-sha-256
"""

#: Settings passed on the command line, so a restart on the same directory reuses them.
SETTINGS = {
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "on",
    "listen_addresses": "127.0.0.1",
    "log_min_messages": "warning",
}

Connection = psycopg.Connection[TupleRow]


class ClusterError(RuntimeError):
    """The cluster could not be set up, started or stopped; the message carries its log's tail."""


def _has_binaries(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in BINARIES)


def _version_key(path: Path) -> tuple[int, ...]:
    """``/usr/lib/postgresql/9.6/bin`` -> (9, 6): numeric, so 15 is newer than 9.6."""
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))


def find_bindir(
    pg_config: str | None = None, lib: Path = DEBIAN_LIB, path: str | None = None
) -> Path | None:
    """The directory of the server binaries, or None when PostgreSQL is not installed.

    In order: ``pg_config --bindir`` (when it has initdb and postgres: Debian's pg_config can come
    from libpq-dev of another major version than the server), the newest
    ``/usr/lib/postgresql/*/bin`` (Debian, which does not put initdb on PATH), then initdb on
    PATH (Homebrew, a source build). The arguments are for tests; by default the machine's.
    """
    config = pg_config if pg_config is not None else shutil.which("pg_config")
    if config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            done = subprocess.run(
                [config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            )
            bindir = Path(done.stdout.strip())
            if done.stdout.strip() and _has_binaries(bindir):
                return bindir
    versions = sorted(
        (d for d in lib.glob("*/bin") if _has_binaries(d) and _version_key(d)), key=_version_key
    )
    if versions:
        return versions[-1]
    initdb = shutil.which("initdb", path=path)
    if initdb:
        bindir = Path(initdb).resolve().parent
        if _has_binaries(bindir):
            return bindir
    return None


def bindir_or_skip() -> Path:
    """The server binaries' directory; else the test is skipped, or failed under CI=true.

    CI must never pass with the PostgreSQL suite silently skipped.
    """
    bindir = find_bindir()
    if bindir is not None:
        return bindir
    reason = (
        "PostgreSQL server binaries not found (pg_config --bindir, /usr/lib/postgresql/*/bin,"
        " initdb on PATH): install PostgreSQL (Debian: postgresql) to run the store on it"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(reason + " (CI=true: PostgreSQL is required)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port of 127.0.0.1 free just now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _process_uid(pid: int) -> int:
    """The real uid of a running process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise ClusterError(f"no Uid line for process {pid}")


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after ``(comm)``: state, ppid, ...; None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # comm may hold spaces and parentheses: split after its closing one.
    return text.rpartition(")")[2].split()


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux; elsewhere none are known)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        fields = _stat(int(entry.name))
        if fields is not None and len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    """Whether a process still runs: a zombie has exited, whoever is yet to reap it."""
    if Path("/proc").is_dir():
        fields = _stat(pid)
        return fields is not None and fields[0] != "Z"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Cluster:
    """One PostgreSQL server of its own: a data directory, a port, a socket and its processes.

    ``Cluster.create()`` initialises and starts it; ``destroy()`` stops it and deletes the
    directory (also on leaving a ``with`` block). ``stop()``/``kill()`` and ``start()`` act on the
    same data directory and port, for restarts and fault tests.
    """

    def __init__(self, bindir: Path, root: Path, port: int, user: pwd.struct_passwd | None):
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.socket_dir = root
        self.log_path = root / "postgres.log"
        self.port = port
        #: Who the server runs as when the tests run as root; None: as the tests' own user.
        self.user = user
        self.superuser = SUPERUSER
        self.roles: list[str] = []
        self._process: subprocess.Popen[bytes] | None = None

    # -- life cycle ---------------------------------------------------------------------------

    @classmethod
    def create(cls, bindir: Path | None = None) -> Self:
        """Initialise a fresh cluster under /tmp and start it; raises ClusterError."""
        found = bindir or find_bindir()
        if found is None:
            raise ClusterError("PostgreSQL server binaries (initdb, postgres) not found")
        user = None
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam(UNPRIVILEGED_USER)
            except KeyError:
                raise ClusterError(
                    f"running as root and there is no user {UNPRIVILEGED_USER!r} to run"
                    " PostgreSQL as (initdb and postgres refuse root)"
                ) from None
        root = Path(tempfile.mkdtemp(prefix="ketadose-pg-", dir="/tmp"))
        cluster = cls(found, root, free_port(), user)
        try:
            if user is not None:
                os.chown(root, user.pw_uid, user.pw_gid)
            cluster._initdb()
            cluster.start()
        except BaseException:
            cluster.destroy()
            raise
        return cluster

    def _run_as(self) -> dict[str, Any]:
        """Popen arguments that drop to the unprivileged user when the tests run as root."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}
        if self.user is None:
            return {"env": env, "cwd": self.root}
        env["HOME"] = str(self.root)
        return {
            "env": env,
            "cwd": self.root,
            "user": self.user.pw_uid,
            "group": self.user.pw_gid,
            "extra_groups": [],
        }

    def _initdb(self) -> None:
        command = [
            str(self.bindir / "initdb"),
            "--pgdata",
            str(self.data),
            "--username",
            self.superuser,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ]
        done = subprocess.run(command, capture_output=True, text=True, **self._run_as())
        if done.returncode != 0:
            raise ClusterError(f"initdb failed ({done.returncode}): {done.stderr[-2000:]}")
        (self.data / "pg_hba.conf").write_text(HBA, encoding="utf-8")

    def start(self) -> None:
        """Start the server on the data directory and wait until it accepts connections.

        The postmaster is this process's child (not pg_ctl's, which would leave it to init), in
        a session of its own: it is reaped here after a kill, whatever PID 1 does with orphans.
        """
        if self.running:
            raise ClusterError("the cluster is already running")
        settings = {**SETTINGS, "port": str(self.port), "unix_socket_directories": str(self.root)}
        command = [str(self.bindir / "postgres"), "-D", str(self.data)]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self._run_as(),
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert self._process is not None
            code = self._process.poll()
            if code is not None:
                self._process = None
                raise ClusterError(f"postgres exited with {code} on start:\n{self.log_tail()}")
            try:
                with self.admin():
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise ClusterError(
                        f"postgres not ready after {START_TIMEOUT_S:.0f} s:\n{self.log_tail()}"
                    ) from None
                time.sleep(0.01)

    @property
    def running(self) -> bool:
        """Whether the postmaster this cluster started is still alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int:
        """The postmaster's process id."""
        if self._process is None:
            raise ClusterError("the cluster is not running")
        return self._process.pid

    def stop(self, mode: Literal["immediate", "fast"] = "immediate") -> None:
        """Shut the server down, then wait until every backend has gone.

        ``immediate`` (SIGQUIT, what ``pg_ctl stop -m immediate`` sends): no checkpoint, the
        next start recovers from the WAL. ``fast`` (SIGINT, ``pg_ctl stop -m fast``): every
        session's transaction is rolled back and its client told so (57P01), then a
        checkpoint.
        """
        self._signal(signal.SIGINT if mode == "fast" else signal.SIGQUIT)

    def kill(self) -> None:
        """SIGKILL the postmaster alone, as a crash would; its backends notice and exit.

        Returns once they all have (a live one keeps the old shared memory attached, and a new
        postmaster refuses to start beside it); any still there after the timeout is killed.
        A backend forked in the instant between the listing of the children and the kill would
        not be waited for; no test connects while it kills.
        """
        self._signal(signal.SIGKILL)

    def _signal(self, signum: signal.Signals) -> None:
        process = self._process
        if process is None:
            return
        # Each backend leads a process group of its own (postgres calls setsid in every child),
        # so they are found as the postmaster's children, before it dies and they are orphaned.
        children = _children(process.pid)
        if process.poll() is None:
            process.send_signal(signum)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while alive := [pid for pid in children if _alive(pid)]:
            if time.monotonic() > deadline:
                for pid in alive:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + STOP_TIMEOUT_S
            time.sleep(0.005)
        self._process = None

    def destroy(self) -> None:
        """Stop the server (immediately) and delete its directory."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the server's log, for error messages."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def server_uid(self) -> int:
        """The uid the postmaster runs as (Linux: read from /proc)."""
        return _process_uid(self.pid)

    # -- connections --------------------------------------------------------------------------

    def url(self, role: str, database: str = "postgres", *, driver: str | None = None) -> str:
        """``postgresql://role@127.0.0.1:PORT/database``, over TCP, without the password.

        ``driver="psycopg"`` gives ``postgresql+psycopg://...`` for SQLAlchemy, whose bare
        ``postgresql://`` means psycopg2.
        """
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{quote(role, safe='')}@127.0.0.1:{self.port}/{quote(database, safe='')}"

    def connect(
        self, role: str, database: str = "postgres", *, password: str | None = None
    ) -> Connection:
        """A psycopg connection as ``role``: over TCP with its SCRAM password when one is given,
        else over the unix socket, which trusts every role."""
        if password is not None:
            return psycopg.connect(self.url(role, database), password=password, connect_timeout=10)
        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user=role,
            dbname=database,
            connect_timeout=10,
        )

    def admin(self, database: str = "postgres") -> Connection:
        """The superuser over the socket, in autocommit (CREATE DATABASE needs it)."""
        conn = self.connect(self.superuser, database)
        conn.autocommit = True
        return conn

    # -- roles and databases ------------------------------------------------------------------

    def create_role(self, name: str, password: str | None = None) -> str:
        """A login role, not a superuser, with a SCRAM password when given; returns its name."""
        statement = sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE").format(
            sql.Identifier(name)
        )
        if password is not None:
            statement += sql.SQL(" PASSWORD {}").format(sql.Literal(password))
        with self.admin() as conn:
            conn.execute(statement)
        self.roles.append(name)
        return name

    def drop_role(self, name: str) -> None:
        """Drop a role (it must own nothing left in any database)."""
        with self.admin() as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
        if name in self.roles:
            self.roles.remove(name)

    def create_database(self, name: str, owner: str) -> str:
        """An empty database owned by ``owner``, copied from the pristine template0."""
        with self.admin() as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0").format(
                    sql.Identifier(name), sql.Identifier(owner)
                )
            )
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database, ending any session still connected to it."""
        with self.admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def databases(self) -> set[str]:
        """The names of the cluster's databases."""
        with self.admin() as conn:
            return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


class Database:
    """A fresh database of a test's own, owned by a fresh non-superuser role with a password."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.name = f"t_{secrets.token_hex(6)}"
        self.owner = self.name
        self.password = secrets.token_urlsafe(16)
        cluster.create_role(self.owner, self.password)
        cluster.create_database(self.name, self.owner)

    def url(self, role: str | None = None, *, driver: str | None = None) -> str:
        """The TCP URL of this database for ``role`` (default: its owner), without a password."""
        return self.cluster.url(role or self.owner, self.name, driver=driver)

    def connect(self, role: str | None = None, *, password: str | None = None) -> Connection:
        """A connection to this database: the owner over TCP by default, see Cluster.connect."""
        if role is None:
            return self.cluster.connect(self.owner, self.name, password=self.password)
        return self.cluster.connect(role, self.name, password=password)

    def drop(self) -> None:
        """Drop the database and its owner role."""
        self.cluster.drop_database(self.name)
        self.cluster.drop_role(self.owner)
