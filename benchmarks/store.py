"""The record store as it grows: `session record`, `history`, `next` and `audit` at N sessions.

For each store size N (default 1,000, 10,000 and 100,000 sessions) and each layout:

- ``many``: N / 100 patients with 100 sessions each (a clinic); the commands ask about one of
  them, so a command that reads only its patient's rows stays flat as the clinic grows;
- ``one``: one patient with all N sessions (six hours apart): a long single-patient history,
  where a command that reads the whole history to decide grows with N;

it builds a store (each session with its audit entry, as ``session record`` writes them), checks
that its hash chain verifies, and times, as subprocesses of the installed ``ketadose``, the
median of ``--runs`` runs of

- ``session record P --date ... --dose 0.5mg/kg`` (a session the day after the last one),
- ``history P --json`` (to /dev/null),
- ``next P --date ...`` (two days after the last session),
- ``audit --json`` (the whole log, N entries and more, to /dev/null),

wall time (start-up included) and peak resident memory (``wait4``'s ``ru_maxrss``; the largest
of the runs).

**How the store is built fast.** The normal path (``Store.record_session_with_audit``) is one
``BEGIN IMMEDIATE`` ... ``COMMIT`` with ``synchronous = FULL`` per session: a disk flush each,
minutes for 100,000. Here every session and its audit entry go through the same private
inserts (``Store._insert_session``, ``Store._insert_audit``: the chain links computed from the
head, the schema's triggers checking each), in one transaction per 10,000 rows; the resulting
store is what 100,000 ``session record`` runs would have written, and ``Store.verify()`` is run
on it (``--no-verify`` skips that, it takes a while at 100,000).

``--engine`` names the store engine: ``sqlite`` (a file per store in a temporary folder) or
``postgresql``: a throwaway cluster of its own (tests/pg.py: initdb under /tmp, a free port,
stopped and deleted at the end), or with ``--url postgresql://USER@HOST:PORT/DB`` an existing
server, where USER may create databases (its password in ``~/.pgpass`` or ``PGPASSFILE``, for
every database: ``HOST:PORT:*:USER:PASSWORD``). Each store is a fresh database owned by the
role that builds it, made by ``Store.open`` as the command line makes one, filled by the same
private inserts (so ``audit verify`` passes there too), then ``ANALYZE``d (what autovacuum does
to a live store soon after it grows); the commands are given ``--store URL``. The peak memory
is the ``ketadose`` process's: the server's backend is not counted.

This measures; it does not assert. Issue 16: ``next`` and ``session record`` in flat time as
the store grows; ``history`` and ``audit`` in flat memory.

    python benchmarks/store.py [--runs 3] [--sizes 1000,10000,100000] [--layouts many,one]
        [--engine sqlite|postgresql] [--url postgresql://USER@HOST:PORT/DB]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from ketadose.events import AdverseEvent, Grade
from ketadose.records import AuditEntry, BloodPressure, PatientRecord, SessionRecord
from ketadose.store import Store
from ketadose.store_pg import GROUP_ROLE

if TYPE_CHECKING:
    from tests.pg import Cluster

ROOT = Path(__file__).resolve().parents[1]
ZONE = ZoneInfo("Europe/Berlin")
KETADOSE = Path(sys.executable).parent / "ketadose"
START = datetime(2027, 1, 4, 9, 0, tzinfo=ZONE)
PER_PATIENT = 100
#: Sessions six hours apart in the one-patient layout: 100,000 of them end in 2095, inside the
#: dates the store accepts; a clinic's patients have theirs 3 days apart.
SPACING = {"one": timedelta(hours=6), "many": timedelta(days=3)}
BATCH = 10_000
SHA = "0" * 64


def sessions_of(patient_id: str, count: int, spacing: timedelta) -> Iterator[SessionRecord]:
    """A patient's sessions: depression doses at 0.5 mg/kg on 80 kg, scored, a few events."""
    for number in range(count):
        at = START + spacing * number
        events = (AdverseEvent("nausea", Grade.MILD),) if number % 7 == 3 else ()
        yield SessionRecord(
            patient_id=patient_id,
            at=at,
            protocol="depression",
            dose_mg=40.0,
            dose_mg_per_kg=0.5,
            duration_min=40.0,
            phases_json=json.dumps([{"kind": "timed", "dose_mg": 40.0, "duration_min": 40.0}]),
            bp_before=BloodPressure(128, 82),
            bp_peak=BloodPressure(148, 92),
            bp_after=BloodPressure(130, 84),
            heart_rate=88.0,
            spo2=97.0,
            score=float(30 - number % 10),
            adverse_events=events,
            weight_policy="actual",
            dosing_weight_kg=80.0,
            planned_dose_mg=40.0,
            planned_dose_mg_per_kg=0.5,
            discharged_at=at + timedelta(hours=2),
            reported=True,
        )


def audit_of(session: SessionRecord) -> AuditEntry:
    """The audit entry ``session record`` writes beside a session (findings included)."""
    return AuditEntry(
        at=session.at + timedelta(hours=2),
        user="nurse",
        command="session record",
        patient_id=session.patient_id,
        inputs_json=json.dumps(
            {"date": session.at.isoformat(), "dose": "0.5mg/kg", "dosing_weight": "actual"}
        ),
        findings_json=json.dumps(
            [
                {
                    "severity": "info",
                    "code": "series-interval",
                    "message": "interval 72 h since the last session",
                    "parameter": "series.interval",
                }
            ]
        ),
        status="ok",
        override_reason=None,
        library_sha256=SHA,
    )


def discharge_of(session_id: int, at: datetime) -> AuditEntry:
    """The audit entry ``session discharge`` writes."""
    return AuditEntry(
        at=at,
        user="nurse",
        command="session discharge",
        patient_id=None,
        inputs_json=json.dumps({"session": session_id, "at": at.isoformat(), "criteria": ""}),
        findings_json="[]",
        status="ok",
        override_reason=None,
        library_sha256=SHA,
    )


def add_patients(store: Store, layout: str, size: int) -> int:
    """Add the layout's patients (through the store: chained, hashed); returns how many."""
    patients = 1 if layout == "one" else max(1, size // PER_PATIENT)
    for number in range(patients):
        store.add_patient(
            PatientRecord(
                id=f"P{number:05d}",
                protocol="depression",
                baseline=34.0,
                weight_kg=80.0,
                height_cm=178.0,
                sex="male",
            ),
            at=START - timedelta(days=30),
        )
    return patients


def fill(store: Store, layout: str, size: int) -> tuple[str, datetime]:
    """Add the patients and ``size`` sessions; returns the patient asked about, its last."""
    patients = add_patients(store, layout, size)
    each = size // patients
    spacing = SPACING[layout]
    # Patients interleaved, as a clinic records them: each patient's rows are spread
    # over the whole table (what an index has to find).
    streams = [sessions_of(f"P{number:05d}", each, spacing) for number in range(patients)]
    pending = 0
    transaction = store._transaction("build the benchmark store")
    conn = transaction.__enter__()
    for _ in range(each):
        for stream in streams:
            session = next(stream)
            # As record_session_with_audit and discharge write them, in bulk: the session,
            # its audit entry and signature, then the discharge with its own entry.
            discharged = session.discharged_at
            session_id = store._insert_session(conn, replace(session, discharged_at=None))
            entry = audit_of(session)
            audit_id = store._insert_audit(conn, entry)
            store._sign(conn, audit_id, session_id, "administered", entry.at)
            if discharged is not None:
                conn.execute(
                    "UPDATE sessions SET discharged_at = ? WHERE id = ?",
                    (discharged.isoformat(), session_id),
                )
                store._insert_audit(conn, discharge_of(session_id, discharged))
            pending += 1
            if pending == BATCH:
                transaction.__exit__(None, None, None)
                transaction = store._transaction("build the benchmark store")
                conn = transaction.__enter__()
                pending = 0
    transaction.__exit__(None, None, None)
    asked = "P00000" if layout == "one" else f"P{patients // 2:05d}"
    return asked, START + spacing * (each - 1)


#: The tables copied from the SQLite model into a PostgreSQL store, parents first.
COPIED = ("sessions", "session_adverse_events", "audit", "signatures")


def copy_rows(model: Path, store: Store) -> None:
    """Copy every row of :data:`COPIED` from the SQLite store ``model`` into ``store``
    (PostgreSQL, holding the same patients), in id order, ids, links and hashes as they are.

    COPY fires each row's triggers as an INSERT would: the chain trigger lets a row in only
    at its chain's head, so what is copied is a chain the server checked link by link, and
    by who is connected (the model was written as the owner).
    """
    import sqlite3

    raw = store._conn.raw  # psycopg's connection (autocommit: each COPY its own transaction)
    with closing(sqlite3.connect(model)) as source:
        for table in COPIED:
            names = [row[1] for row in source.execute(f"PRAGMA table_info({table})")]
            order = "id" if "id" in names else "session_id, position"
            columns = ", ".join(f'"{name}"' for name in names)
            # A session's events are let in only with it, in its own transaction; the owner
            # copying a whole store sets that one rule aside (the sessions' hashes cover them).
            events = table == "session_adverse_events"
            if not events:
                # The ids are the model's: the owner moves the identity sequence on first
                # (the chain refuses an id past the ids it gave).
                (last,) = source.execute(f"SELECT coalesce(max(id), 1) FROM {table}").fetchone()
                raw.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {last})")
            if events:
                raw.execute("ALTER TABLE session_adverse_events DISABLE TRIGGER USER")
            with (
                raw.cursor() as cursor,
                cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
            ):
                for row in source.execute(f"SELECT {columns} FROM {table} ORDER BY {order}"):
                    copy.write_row(row)
            if events:
                raw.execute("ALTER TABLE session_adverse_events ENABLE TRIGGER USER")


def build(where: str, layout: str, size: int, *, verify: bool) -> tuple[str, datetime, float]:
    """Build a store of ``size`` sessions at ``where`` (a file, or an empty PostgreSQL
    database's URL); returns the patient asked about, its last session, seconds taken.

    PostgreSQL: the same store is built as an SQLite file first (the store's own inserts,
    in-process, where a statement costs no round trip), then its patients added through the
    store and its sessions, adverse events, audit entries and signatures copied over by
    :func:`copy_rows`: ten statements a session over TCP would take ~10 minutes for 100,000.
    A row's hash is the same on either engine (canonical JSON of its values), which
    ``Store.verify()`` on the server checks.
    """
    started = time.perf_counter()
    if not where.startswith("postgresql://"):
        with Store.open(where, zone=ZONE) as store:
            asked, last = fill(store, layout, size)
    else:
        with tempfile.TemporaryDirectory() as scratch:
            model = Path(scratch) / "model.sqlite3"
            with Store.open(where, zone=ZONE) as server:
                owner = server.actor  # the server holds every row to who is connected
            with Store.open(model, zone=ZONE, actor=owner) as store:
                asked, last = fill(store, layout, size)
            with Store.open(where, zone=ZONE) as store:
                add_patients(store, layout, size)
                copy_rows(model, store)
                store._conn.script("VACUUM ANALYZE")  # statistics and visibility, as autovacuum
    if verify:
        with Store.open(where, zone=ZONE) as store:
            broken = store.verify()
        if broken:
            raise SystemExit(f"the built store {where} does not verify: {broken}")
    return asked, last, time.perf_counter() - started


def run(*args: str) -> tuple[float, int]:
    """Wall seconds and peak resident kB of one ``ketadose`` command (stdout to /dev/null)."""
    start = time.perf_counter()
    with subprocess.Popen(
        [str(KETADOSE), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    ) as process:
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        errors = process.stderr.read().decode() if process.stderr else ""
    wall = time.perf_counter() - start
    # 0 done, 3 a soft finding or a review decision (next's reassess, hold past a limit).
    if process.returncode not in (0, 3):
        raise SystemExit(f"ketadose {' '.join(args)} exited {process.returncode}: {errors}")
    return wall, usage.ru_maxrss


def measure(where: str, patient: str, last: datetime, runs: int) -> dict[str, tuple[float, int]]:
    """Median wall time and largest peak memory of each command on the store at ``where``."""
    store = ("--store", where, "--tz", "Europe/Berlin")
    commands: dict[str, Callable[[int], tuple[str, ...]]] = {
        "session record": lambda i: (
            "session",
            "record",
            patient,
            "--date",
            (last + timedelta(days=1, minutes=i)).strftime("%Y-%m-%dT%H:%M"),
            "--dose",
            "0.5mg/kg",
            "--override-reason",
            "benchmark",
            *store,
        ),
        "history --json": lambda i: ("history", patient, "--json", *store),
        "next": lambda i: (
            "next",
            patient,
            "--date",
            (last + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"),
            *store,
        ),
        "audit --json": lambda i: ("audit", "--json", *store),
    }
    found: dict[str, tuple[float, int]] = {}
    for name, args in commands.items():
        times, peaks = [], []
        for i in range(runs):
            wall, peak = run(*args(i))
            times.append(wall)
            peaks.append(peak)
        found[name] = (statistics.median(times), max(peaks))
    return found


class Stores(AbstractContextManager["Stores"]):
    """Where the benchmark's stores are made: files in a folder, or databases on a server.

    :meth:`new` gives the ``--store`` value of a fresh, empty store; leaving the ``with`` block
    removes them (the folder's files, unless kept; the databases; a throwaway cluster).
    """

    def __init__(self, engine: str, folder: Path, url: str | None, *, keep: bool) -> None:
        self.engine = engine
        self.folder = folder
        self.url = url
        self.keep = keep
        self.cluster: Cluster | None = None
        self.made: list[Any] = []  # tests.pg.Database, or database names on --url's server
        if engine == "postgresql":
            self.pgpass = folder / "pgpass"
            if url is None:
                sys.path.insert(0, str(ROOT))  # tests.pg, run as benchmarks/store.py
                from tests.pg import Cluster

                self.cluster = Cluster.create()
                with closing(self.cluster.admin()) as conn:  # granted to as in a clinic's
                    conn.execute(f"CREATE ROLE {GROUP_ROLE} NOLOGIN")
                # The roles' passwords, for the builders and the commands (libpq reads it).
                os.environ["PGPASSFILE"] = str(self.pgpass)

    def describe(self) -> str:
        """The engine's version, for the table's heading."""
        if self.engine == "sqlite":
            import sqlite3

            return f"SQLite {sqlite3.sqlite_version}"
        with closing(self._admin()) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return f"PostgreSQL {row[0].split()[0] if row else '?'}"

    def new(self, name: str) -> str:
        """A fresh, empty store named after ``name`` (a layout and size)."""
        if self.engine == "sqlite":
            path = self.folder / f"{name}.sqlite3"
            if path.exists():
                path.unlink()
            return str(path)
        if self.cluster is not None:
            from tests.pg import Database

            database = Database(self.cluster)
            self.made.append(database)
            line = f"127.0.0.1:{self.cluster.port}:{database.name}:{database.owner}:"
            with self.pgpass.open("a", encoding="utf-8") as handle:
                handle.write(line + database.password + "\n")
            self.pgpass.chmod(0o600)  # libpq ignores a password file others may read
            return database.url()
        assert self.url is not None
        database_name = f"ketadose_bench_{name.replace('-', '_')}"
        with closing(self._admin()) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database_name}"')
            conn.execute(f'CREATE DATABASE "{database_name}"')
        self.made.append(database_name)
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(path="/" + quote(database_name, safe="")))

    def _admin(self) -> Any:
        """An autocommit connection: the cluster's superuser, or ``--url``'s user."""
        if self.cluster is not None:
            return self.cluster.admin()
        import psycopg

        assert self.url is not None
        return psycopg.connect(self.url, autocommit=True)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.cluster is not None:
            self.cluster.destroy()
        elif self.url is not None and not self.keep:
            with closing(self._admin()) as conn:
                for name in self.made:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--layouts", default="many,one")
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--url",
        help="PostgreSQL: a server's postgresql://USER@HOST:PORT/DB whose USER may create "
        "databases (default: a throwaway cluster of its own)",
    )
    parser.add_argument("--no-verify", action="store_true", help="Skip Store.verify().")
    parser.add_argument("--keep", type=Path, help="Build the stores in this folder (kept).")
    parser.add_argument("--build", nargs=3, metavar=("LAYOUT", "SIZE", "STORE"), help="(internal)")
    options = parser.parse_args()
    if options.build:
        layout, size, where = options.build
        patient, last, seconds = build(where, layout, int(size), verify=not options.no_verify)
        print(patient, last.isoformat(), seconds)
        return
    if options.url and options.engine != "postgresql":
        parser.error("--url is for --engine postgresql")
    sizes = [int(size) for size in options.sizes.split(",")]
    layouts = options.layouts.split(",")
    with tempfile.TemporaryDirectory() as scratch:
        folder = options.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        with Stores(options.engine, folder, options.url, keep=options.keep is not None) as stores:
            print(
                f"# {datetime.now():%Y-%m-%d}, {os.cpu_count()}-core {platform.machine()}, "
                f"Python {platform.python_version()}, {stores.describe()}, "
                f"median of {options.runs}"
            )
            rows = []
            for layout in layouts:
                for size in sizes:
                    where = stores.new(f"{layout}-{size}")
                    # Built in a process of its own: a child forked from a process that built
                    # 100,000 rows would report that process's memory as its own peak.
                    building = subprocess.run(
                        [sys.executable, __file__, "--build", layout, str(size), where]
                        + (["--no-verify"] if options.no_verify else []),
                        capture_output=True,
                        text=True,
                    )
                    if building.returncode != 0:
                        raise SystemExit(f"building {layout} {size}: {building.stderr[-2000:]}")
                    made = building.stdout.split()
                    patient, last = made[0], datetime.fromisoformat(made[1])
                    print(f"built {layout} {size:,} in {float(made[2]):.1f} s", file=sys.stderr)
                    rows.append((layout, size, measure(where, patient, last, options.runs)))
    names = list(rows[0][2])
    print("| engine | layout | sessions | " + " | ".join(names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    for layout, size, found in rows:
        cells = [f"{found[n][0] * 1000:,.0f} ms, {found[n][1] / 1024:,.0f} MB" for n in names]
        print(f"| {options.engine} | {layout} | {size:,} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
