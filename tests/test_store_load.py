"""Load and fault tests for the record store (issue 16): many writers, killed writers, locks.

Every test runs once per engine through conftest's ``engine``/``store_target`` fixtures: on
SQLite a fresh file, on PostgreSQL a fresh database of the throwaway cluster (tests/pg.py),
reached by a URL without a password (the owner's is in the test's ``PGPASSFILE``, which the
writer subprocesses inherit through the environment). ``store_url`` is what ``--store`` takes,
``open_store`` opens it in this process, and the raw checks afterwards read the database
beside the store: sqlite3 on the file, psycopg as the cluster's superuser on the server.

The subprocess machinery follows tests/test_store.py (:class:`tests.test_store.Writer`): real
processes, a "ready" line and a "go" on stdin so that they start together, one stdout line per
commit read with a timeout, SIGKILL for a crash. Those tests cover one or two writers of plain
sessions; these cover sixteen at once, through the command line too, with the audit entry and
signature of each session, and the hash chains afterwards. On PostgreSQL alone, the server
itself is stopped (fast or immediate shutdown) or killed under a writer that is inside its
write transaction (:class:`TestServerStopped`).
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ketadose.store_sql as store_module
from ketadose.errors import InputError, StoreError
from ketadose.records import AuditEntry, PatientRecord, SessionRecord
from ketadose.store import Store
from ketadose.store_chain import GENESIS
from tests.stores import StoreTarget
from tests.test_store import session_for

if TYPE_CHECKING:
    from tests.pg import Cluster, Database

ROOT = Path(__file__).resolve().parents[1]
ZONE = ZoneInfo("Europe/Berlin")
T0 = datetime(2024, 3, 4, 9, 30, tzinfo=ZONE)
PATIENTS = tuple(f"P_{k}" for k in range(4))
#: Longest a subprocess may stay silent before the test gives up on it (no hung test).
SILENCE_S = 60.0

OpenStore = Callable[..., Store]


#: How each engine words a writer that waited past the busy timeout for the write lock.
BUSY = {"sqlite": "database is locked", "postgresql": "canceling statement due to lock timeout"}


@pytest.fixture
def store_url(store_target: StoreTarget) -> str:
    """The test's fresh, empty store, as ``--store`` and the writer scripts take it."""
    return store_target.url


def opener(url: str) -> OpenStore:
    """Opens the store at ``url`` in this process (a new connection each call)."""

    def opened(**options: object) -> Store:
        return Store.open(url, zone=ZONE, **options)  # type: ignore[arg-type]

    return opened


@pytest.fixture
def open_store(store_url: str) -> OpenStore:
    """Opens the test's store in this process (a new connection each call)."""
    return opener(store_url)


@pytest.fixture
def patients(open_store: OpenStore) -> tuple[str, ...]:
    """The store holds :data:`PATIENTS` (shipped protocol, so the CLI can dose them)."""
    with open_store() as store:
        for patient_id in PATIENTS:
            store.add_patient(
                PatientRecord(
                    id=patient_id,
                    protocol="depression",
                    baseline=30.0,
                    weight_kg=80.0,
                    height_cm=None,
                    sex=None,
                    created_at=T0 - timedelta(days=30),
                ),
                at=T0 - timedelta(days=30),
            )
    return PATIENTS


def subprocess_env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }


# --- writers through the Store API -------------------------------------------------------

# Records session number (lane * 100_000 + i) for i = 0, 1, ... count - 1 with its audit entry,
# printing "ok <number> <session id>" after each commit and "failed <number> <error>" after a
# StoreError (then it goes on). The numbers say which writer wrote what: session_for(number)
# puts the number in the session's time, dose, score and notes. The audit entry is dated by the
# clock just before the write, as the command line dates it.
API_WRITER = """
import json, sys, time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo
from ketadose.errors import StoreError
from ketadose.records import AuditEntry
from ketadose.store import Store
from tests.test_store import session_for

url, lane, count, events = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
patients = sys.argv[5].split(",")
with Store.open(url, zone=ZoneInfo("Europe/Berlin"), actor=f"nurse-{lane}") as store:
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(count):
        number = lane * 100_000 + i
        patient = patients[number % len(patients)]
        session = session_for(number, patient_id=patient, events=events)
        entry = AuditEntry(
            at=datetime.now(UTC), user=f"nurse-{lane}", command="session record", patient_id=patient,
            inputs_json=json.dumps({"number": number}), findings_json="[]", status="ok",
            override_reason=None, library_sha256="ab" * 32,
        )
        try:
            row_id = store.record_session_with_audit(session, entry)
        except StoreError as error:
            print(f"failed {number} {error}", flush=True)
        else:
            print(f"ok {number} {row_id}", flush=True)
        time.sleep(0.01)  # give way: on two cores one writer's time slice could hold them all
"""


class Process:
    """A subprocess whose stdout lines are collected by a thread, read with a timeout."""

    def __init__(self, args: list[str]) -> None:
        self.process = subprocess.Popen(
            args,
            cwd=ROOT,
            env=subprocess_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.done = threading.Event()
        self.errors: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._pump_errors, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            # A line without its newline was cut off by a kill: never taken as reported.
            if line.endswith("\n"):
                self.lines.put(line.rstrip("\n"))
        self.done.set()

    def _pump_errors(self) -> None:
        assert self.process.stderr is not None
        self.errors.extend(self.process.stderr)

    def line(self) -> str:
        try:
            return self.lines.get(timeout=SILENCE_S)
        except queue.Empty:
            self.kill()
            pytest.fail(f"process silent for {SILENCE_S:g} s")

    def start(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def kill(self) -> None:
        self.process.kill()  # SIGKILL: no cleanup, no atexit, locks dropped by the kernel
        self.process.wait(timeout=SILENCE_S)

    def wait(self) -> str:
        """Wait for the end; every stdout line is then collected. Returns stderr."""
        self.process.wait(timeout=SILENCE_S)
        assert self.done.wait(timeout=SILENCE_S)
        return "".join(self.errors)

    def rest(self) -> list[str]:
        """Every line printed, once the process has ended."""
        assert self.done.wait(timeout=SILENCE_S)
        found = []
        while not self.lines.empty():
            found.append(self.lines.get_nowait())
        return found


class ApiWriter(Process):
    """One :data:`API_WRITER` process."""

    def __init__(self, url: str, lane: int, count: int, *, events: int = 1) -> None:
        super().__init__(
            [
                sys.executable,
                "-c",
                API_WRITER,
                url,
                str(lane),
                str(count),
                str(events),
                ",".join(PATIENTS),
            ]
        )
        self.lane = lane

    def ready(self) -> None:
        text = self.line()
        if text != "ready":
            self.wait()
            pytest.fail(f"writer {self.lane} did not start: {text!r}")

    def results(self) -> tuple[dict[int, int], dict[int, str]]:
        """The numbers committed (number -> session id) and refused (number -> error)."""
        ok: dict[int, int] = {}
        failed: dict[int, str] = {}
        for text in self.rest():
            kind, number, rest = [*text.split(" ", 2), "", ""][:3]
            assert rest, repr(text)
            if kind == "ok":
                ok[int(number)] = int(rest)
            else:
                assert kind == "failed", text
                failed[int(number)] = rest
        return ok, failed


def lane_of(session: SessionRecord) -> tuple[int, int]:
    """The (lane, number) an API writer's session came from (its score is the number)."""
    assert session.score is not None
    number = int(session.score)
    return number // 100_000, number


# --- writers through the command line ----------------------------------------------------


def cli(url: str, *args: str, timeout: float = SILENCE_S) -> subprocess.CompletedProcess[str]:
    """``python -m ketadose ARGS --store URL`` as a real process."""
    return subprocess.run(
        [sys.executable, "-m", "ketadose", *args, "--store", url],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def cli_time(lane: int, i: int) -> datetime:
    """The time of a command-line lane's i-th session (whole minutes, all distinct)."""
    return datetime(2026, 2, 2, 8, 0, tzinfo=ZONE) + timedelta(minutes=600 * lane + 7 * i)


def record_args(lane: int, i: int) -> list[str]:
    at = cli_time(lane, i)
    return [
        "session",
        "record",
        PATIENTS[lane % len(PATIENTS)],
        "--date",
        at.strftime("%Y-%m-%dT%H:%M"),
        "--dose",
        "40mg",
        "--notes",
        f"cli {lane} {i}",
    ]


def assert_one_line_store_error(result: subprocess.CompletedProcess[str]) -> None:
    """A refused command: exit 6 and one line on stderr, never a traceback."""
    assert result.returncode == 6, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("ketadose: error: "), result.stderr


# --- what every test checks afterwards ---------------------------------------------------


@dataclass
class Contents:
    """What a store holds, read through the Store API (each row checked against its hash)."""

    sessions: list[SessionRecord] = field(default_factory=list)
    audit: dict[int, AuditEntry] = field(default_factory=dict)

    def keys(self) -> list[tuple[str, datetime]]:
        """(patient, instant) of every session, one per session (duplicates kept)."""
        return [(s.patient_id, s.at) for s in self.sessions]


def raw_rows(target: StoreTarget, sql: str) -> list[tuple[Any, ...]]:
    """The rows of a query read beside the store: sqlite3 on the file, the superuser on a server
    (no hash is checked: what is in the tables, whatever the store would make of it)."""
    if target.path is not None:
        with closing(sqlite3.connect(target.path)) as conn:
            return conn.execute(sql).fetchall()
    with target.superuser() as conn:
        return [tuple(row) for row in conn.execute(sql).fetchall()]


def assert_indexes_sound(target: StoreTarget) -> None:
    """The database's own check of its storage: SQLite's integrity_check; on PostgreSQL each
    B-tree index of the store checked against its table by amcheck (``bt_index_check`` with
    ``heapallindexed``), the extension made for the check and rolled back with it."""
    if target.path is not None:
        assert raw_rows(target, "PRAGMA integrity_check") == [("ok",)]
        return
    with target.superuser() as conn:
        conn.autocommit = False
        try:
            conn.execute("CREATE EXTENSION amcheck")
            indexes = conn.execute(
                "SELECT c.oid::regclass::text FROM pg_class AS c"
                " JOIN pg_am AS a ON a.oid = c.relam"
                " JOIN pg_namespace AS n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' AND c.relkind = 'i' AND a.amname = 'btree'"
            ).fetchall()
            assert {"sessions_by_patient_time", "audit_pkey"} <= {name for (name,) in indexes}
            for (index,) in indexes:
                conn.execute("SELECT bt_index_check(%s::regclass, true)", (index,))
            invalid = conn.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid")
            assert invalid.fetchone() == (0,)
        finally:
            conn.rollback()


def assert_sound(target: StoreTarget, open_store: OpenStore) -> Contents:
    """The store opens, its chains are intact and every session is whole.

    Whole: exactly one "administered" signature, on an audit entry of ``session record`` for
    the same patient; and no such audit entry without its session. Read raw beside the store
    as well: the database's storage is sound, every chained row links to the one before it,
    and no session row is there that the store does not give.
    """
    assert_indexes_sound(target)
    for table in ("sessions", "audit", "signatures"):
        assert_linked_in_order(target, table, None)
    found = Contents()
    with open_store() as store:
        assert store.verify() == []
        assert all(chain.broken is None for chain in store.chains())
        found.audit = {e.id: e for e in store.audit() if e.id is not None}
        signed: set[int] = set()
        for patient_id in PATIENTS:
            for session in store.sessions(patient_id):
                assert session.id is not None
                signatures = store.signatures(session.id)
                assert [s.meaning for s in signatures] == ["administered"], session
                audit = found.audit[signatures[0].audit_id]
                assert (audit.command, audit.patient_id) == ("session record", patient_id)
                signed.add(signatures[0].audit_id)
                found.sessions.append(session)
        recorded = {i for i, e in found.audit.items() if e.command == "session record"}
        assert recorded == signed, "an audit entry of a session that is not in the store"
    keys = found.keys()
    assert len(keys) == len(set(keys)), "a session stored twice"
    assert raw_rows(target, "SELECT count(*) FROM sessions") == [(len(keys),)]
    return found


def assert_extends_chain(open_store: OpenStore, patient_id: str, at: datetime) -> None:
    """A new write after everything else lands at the head of each chain, and verifies."""
    with open_store(actor="nurse-after") as store:
        before = {chain.table: chain for chain in store.chains()}
        session = session_for(999_999, patient_id=patient_id, events=1)
        entry = AuditEntry(
            at=datetime.now(UTC),
            user="nurse-after",
            command="session record",
            patient_id=patient_id,
            inputs_json="{}",
            findings_json="[]",
            status="ok",
            override_reason=None,
            library_sha256="ab" * 32,
        )
        session_id = store.record_session_with_audit(replace(session, at=at), entry)
        after = {chain.table: chain for chain in store.chains()}
        assert store.verify() == []
    for table in ("audit", "sessions", "signatures"):
        assert after[table].rows == before[table].rows + 1
        head, old = after[table].head_id, before[table].head_id
        assert head is not None
        assert old is None or head > old
        assert after[table].head != before[table].head
    assert after["sessions"].head_id == session_id


# --- 1. sixteen writers at once ----------------------------------------------------------


class TestSixteenWriters:
    """Sixteen processes recording at once: every reported success is stored once, and whole."""

    def test_through_the_store_api(
        self, store_target: StoreTarget, open_store: OpenStore, patients: tuple[str, ...]
    ) -> None:
        lanes, count = 16, 25
        store_url = store_target.url
        writers = [ApiWriter(store_url, lane, count) for lane in range(lanes)]
        for writer in writers:
            writer.ready()
        for writer in writers:  # all sixteen are open and waiting: they start together
            writer.start()
        ok: dict[int, int] = {}
        failed: dict[int, str] = {}
        for writer in writers:
            assert writer.wait() == ""
            assert writer.process.returncode == 0
            done, refused = writer.results()
            assert len(done) + len(refused) == count
            ok.update(done)
            failed.update(refused)
        # A writer that waited past the busy timeout is told so in one line; none is lost.
        for error in failed.values():
            assert "\n" not in error
            assert error.endswith(BUSY[store_target.engine]), error
        assert len(failed) <= lanes  # a rare timeout on a slow machine, never a pattern
        found = assert_sound(store_target, open_store)
        by_number = {lane_of(s)[1]: s for s in found.sessions}
        assert len(by_number) == len(found.sessions)
        assert {number: s.id for number, s in by_number.items()} == ok  # the ids reported
        for number, session in by_number.items():
            expected = session_for(number, patient_id=PATIENTS[number % 4], events=1)
            assert session == replace(expected, id=session.id)
        # They really wrote at once: every lane's ids interleave with some other lane's.
        spans: dict[int, tuple[int, int]] = {}
        for number, session_id in ok.items():
            low, high = spans.get(number // 100_000, (session_id, session_id))
            spans[number // 100_000] = (min(low, session_id), max(high, session_id))
        overlapping = sum(
            any(a[0] < b[1] and b[0] < a[1] for other, b in spans.items() if other != lane)
            for lane, a in spans.items()
        )
        assert overlapping >= lanes // 2
        assert cli(store_url, "store", "check").returncode == 0

    def test_through_the_command_line(
        self, store_target: StoreTarget, open_store: OpenStore, patients: tuple[str, ...]
    ) -> None:
        """16 lanes, each running ``session record`` 3 times in a row: 16 processes at once."""
        lanes, count = 16, 3
        store_url = store_target.url
        results: dict[tuple[int, int], subprocess.CompletedProcess[str]] = {}
        barrier = threading.Barrier(lanes)

        def lane(k: int) -> None:
            barrier.wait()
            for i in range(count):
                results[k, i] = cli(store_url, *record_args(k, i))

        threads = [threading.Thread(target=lane, args=(k,)) for k in range(lanes)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=4 * SILENCE_S)
        assert len(results) == lanes * count
        succeeded = set()
        for (k, i), result in results.items():
            if result.returncode == 0:
                assert result.stderr.startswith("ketadose: recorded session "), result.stderr
                succeeded.add((PATIENTS[k % 4], cli_time(k, i)))
            else:  # only the busy timeout may refuse a write here, in one line
                assert_one_line_store_error(result)
                assert BUSY[store_target.engine] in result.stderr
        assert len(succeeded) >= lanes * count - lanes
        found = assert_sound(store_target, open_store)
        assert set(found.keys()) == succeeded  # every success once; no refused one written
        for session in found.sessions:  # each audit entry is the one its command wrote
            with open_store() as store:
                audit = store.signatures(session.id or 0)[0].audit_id
            inputs = json.loads(found.audit[audit].inputs_json)
            assert inputs["date"] == session.at.strftime("%Y-%m-%dT%H:%M")
        check = cli(store_url, "store", "check")
        assert check.returncode == 0, check.stderr
        assert f"sessions chain intact ({len(succeeded)} rows" in check.stdout


# --- 2. writers killed at random points --------------------------------------------------


class TestKilledWriters:
    """Writers SIGKILLed at random moments leave a sound store with every reported success."""

    def test_random_kills_over_several_rounds(
        self, store_target: StoreTarget, open_store: OpenStore, patients: tuple[str, ...]
    ) -> None:
        rng = random.Random(1616)
        store_url = store_target.url
        reported: dict[int, int] = {}
        cli_reported: set[tuple[str, datetime]] = set()
        unreported = 0
        for round_ in range(4):
            # 40 adverse events a session: much of a writer's time is inside a transaction
            writers = [ApiWriter(store_url, 10 * round_ + k, 10**6, events=40) for k in range(3)]
            for writer in writers:
                writer.ready()
            started = time.monotonic()
            for writer in writers:
                writer.start()
            victims: list[tuple[float, Process]] = [
                (rng.uniform(0.1, 0.6), writer) for writer in writers
            ]
            cli_lanes = []
            for i in range(3):  # command-line writers, started and killed while the API ones run
                lane = 100 + 10 * round_ + i
                process = Process(
                    [sys.executable, "-m", "ketadose", *record_args(lane, 0), "--store", store_url]
                )
                cli_lanes.append((lane, process))
                # from its start-up (~0.4 s) to past its commit: killed before, inside or after
                victims.append((rng.uniform(0.2, 1.5), process))
            for delay, victim in sorted(victims, key=lambda pair: pair[0]):
                time.sleep(max(0.0, started + delay - time.monotonic()))
                victim.kill()
            for writer in writers:
                done, refused = writer.results()
                assert not refused
                reported.update(done)
            for lane, process in cli_lanes:
                process.rest()
                if process.process.returncode == 0:  # it finished before its kill came
                    cli_reported.add((PATIENTS[lane % 4], cli_time(lane, 0)))
            found = assert_sound(store_target, open_store)
            api = {
                lane_of(s)[1]: s.id for s in found.sessions if (s.notes or "").startswith("session")
            }
            assert reported.items() <= api.items()  # every commit reported is there
            # a writer may commit and die before it prints: at most one such per writer
            unreported = len(api) - len(reported)
            assert 0 <= unreported <= 3 * (round_ + 1)
            assert cli_reported <= set(found.keys())
        assert reported, "no writer committed anything before it was killed"
        assert_extends_chain(open_store, PATIENTS[0], T0 + timedelta(days=400))
        assert cli(store_url, "store", "check").returncode == 0


# --- 3. interleaved writes from several connections --------------------------------------

#: One step: which of the open stores acts, and what it does.
STEPS = st.tuples(
    st.integers(min_value=0, max_value=3),
    st.sampled_from(["session", "audit", "refused", "reopen"]),
)


@pytest.fixture
def new_target(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Callable[[], StoreTarget]:
    """Makes a fresh, empty store on the test's engine at each call (one per example)."""
    made = itertools.count()

    def new() -> StoreTarget:
        if engine == "sqlite":
            return StoreTarget.file(tmp_path / f"store-{next(made)}" / "ketadose.db")
        database: Database = request.getfixturevalue("pg_new_database")()
        return StoreTarget.server(database, tmp_path / "pgpass", monkeypatch)

    return new


class TestInterleavings:
    """Writes from several connections in any order: ids and chain links follow that order."""

    @settings(max_examples=25, deadline=None)
    @given(stores=st.integers(min_value=2, max_value=4), steps=st.lists(STEPS, max_size=20))
    def test_chains_follow_insertion_order(
        self, new_target: Callable[[], StoreTarget], stores: int, steps: list[tuple[int, str]]
    ) -> None:
        target = new_target()
        opened = [Store.open(target.url, zone=ZONE, actor=f"nurse-{k}") for k in range(stores)]
        try:
            opened[0].add_patient(session_patient(), at=T0)
            written: list[tuple[str, int]] = []  # (table, id) in the order written
            for number, (which, kind) in enumerate(steps):
                store = opened[which % stores]
                entry = audit_entry(number)
                if kind == "session":
                    session_id = store.record_session_with_audit(session_for(number), entry)
                    audit_id = store.signatures(session_id)[0].audit_id
                    written += [("sessions", session_id), ("audit", audit_id)]
                elif kind == "audit":  # an entry of its own (a dose), no row to go with it
                    alone = replace(entry, command="dose")
                    written.append(("audit", store.append_audit(alone)))
                elif kind == "refused":  # rolled back: leaves no row and no link
                    with pytest.raises(InputError):
                        store.record_session_with_audit(
                            session_for(number, patient_id="nobody"), entry
                        )
                else:
                    store.close()
                    opened[which % stores] = Store.open(target.url, zone=ZONE, actor="nurse-x")
            for store in opened:  # every connection sees the same intact chains
                assert store.verify() == []
            for table in ("sessions", "audit"):
                ids = [row_id for name, row_id in written if name == table]
                assert ids == sorted(ids)
                assert len(set(ids)) == len(ids)
                assert_linked_in_order(target, table, ids)
            assert_linked_in_order(target, "signatures", None)
        finally:
            for store in opened:
                store.close()


def session_patient() -> PatientRecord:
    return PatientRecord(
        id="p-001",
        protocol="iv-depression-0.5",
        baseline=31.0,
        weight_kg=82.5,
        height_cm=None,
        sex=None,
        created_at=T0,
    )


def audit_entry(number: int, patient_id: str = "p-001") -> AuditEntry:
    return AuditEntry(
        at=T0 + timedelta(minutes=number),
        user="nurse",
        command="session record",
        patient_id=patient_id,
        inputs_json=json.dumps({"number": number}),
        findings_json="[]",
        status="ok",
        override_reason=None,
        library_sha256="ab" * 32,
    )


def assert_linked_in_order(target: StoreTarget, table: str, ids: list[int] | None) -> None:
    """The table's rows are exactly ``ids`` (if given), each linked to the one before it."""
    rows = raw_rows(target, f"SELECT id, prev_hash, hash FROM {table} ORDER BY id")
    if ids is not None:
        assert [row[0] for row in rows] == ids
    previous = GENESIS
    for _, prev_hash, digest in rows:
        assert prev_hash == previous
        previous = digest


# --- 4. a writer that holds the lock ------------------------------------------------------


class LockHolder:
    """A connection beside the store's that holds its write lock until :meth:`release`.

    SQLite: ``BEGIN IMMEDIATE`` on the file. PostgreSQL: a transaction of the superuser's in
    the store's database holding ``pg_advisory_xact_lock(LOCK_KEY)``, the lock every write
    transaction of the store takes first. Released by a rollback: the holder writes nothing.
    Callable: calling it releases (a :class:`threading.Timer` can).
    """

    def __init__(self, target: StoreTarget) -> None:
        self.released = threading.Event()
        self._lock = threading.Lock()
        if target.path is not None:
            self.conn: Any = sqlite3.connect(
                target.path, isolation_level=None, check_same_thread=False
            )
            self.conn.execute("BEGIN IMMEDIATE")
        else:
            self.conn = target.superuser()
            self.conn.autocommit = False
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (store_module.LOCK_KEY,))

    def __call__(self) -> None:
        self.release()

    def release(self) -> None:
        """Roll the holder's transaction back, once (a later call does nothing)."""
        with self._lock:
            if not self.released.is_set():
                self.released.set()
                self.conn.rollback()

    def close(self) -> None:
        self.release()
        self.conn.close()


@pytest.fixture
def lock_holder(store_target: StoreTarget) -> Iterator[Callable[[], None]]:
    """Takes the store's write lock (see :class:`LockHolder`); yields what releases it."""
    holder = LockHolder(store_target)
    try:
        yield holder
    finally:
        holder.close()


def counts(open_store: OpenStore) -> dict[str, int]:
    with open_store() as store:
        return {chain.table: chain.rows for chain in store.chains()}


class TestBusy:
    """A writer kept waiting past the busy timeout fails in one line; within it, it waits."""

    def test_store_api_times_out_with_a_store_error(
        self,
        store_target: StoreTarget,
        open_store: OpenStore,
        patients: tuple[str, ...],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        # The timeout is read when a connection is opened: a short one keeps the test fast.
        monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 0.25)
        before = counts(open_store)
        with open_store() as store:
            holder = LockHolder(store_target)
            try:
                started = time.monotonic()
                with pytest.raises(StoreError) as raised:
                    store.record_session_with_audit(session_for(1, "P_0"), audit_entry(1, "P_0"))
                waited = time.monotonic() - started
            finally:
                holder.close()
            message = str(raised.value)
            assert "\n" not in message
            assert message == (
                "cannot record the session and its audit entry: store "
                f"{store_target.url}: {BUSY[store_target.engine]}"
            )
            assert 0.2 <= waited < 5.0
            assert counts(open_store) == before  # nothing of it written
            store.record_session_with_audit(session_for(1, "P_0"), audit_entry(1, "P_0"))
            assert store.verify() == []
        assert counts(open_store)["sessions"] == before["sessions"] + 1

    def test_command_line_exits_6_in_one_line(
        self,
        store_target: StoreTarget,
        store_url: str,
        open_store: OpenStore,
        patients: tuple[str, ...],
        lock_holder: Callable[[], None],
    ) -> None:
        """``python -m ketadose`` with only the timeout shortened (the module's constant)."""
        shortened = (
            "import runpy, ketadose.store_sql; ketadose.store_sql.BUSY_TIMEOUT_S = 0.3; "
            "runpy.run_module('ketadose', run_name='__main__', alter_sys=True)"
        )
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-c", shortened, *record_args(0, 0), "--store", store_url],
            cwd=ROOT,
            env=subprocess_env(),
            capture_output=True,
            text=True,
            timeout=SILENCE_S,
            check=False,
        )
        waited = time.monotonic() - started
        lock_holder()
        assert_one_line_store_error(result)
        assert result.stderr.endswith(f"{BUSY[store_target.engine]}\n"), result.stderr
        assert waited < store_module.BUSY_TIMEOUT_S  # it was the shortened timeout
        assert counts(open_store)["sessions"] == 0  # refused whole: no session, no audit
        assert counts(open_store)["audit"] == 0

    def test_command_line_waits_for_a_shorter_lock(
        self,
        store_target: StoreTarget,
        store_url: str,
        open_store: OpenStore,
        patients: tuple[str, ...],
        lock_holder: Callable[[], None],
    ) -> None:
        """The real timeout: a lock held 1 s delays the command, which then records."""
        held_s = 1.0
        assert held_s < store_module.BUSY_TIMEOUT_S / 2
        timer = threading.Timer(held_s, lock_holder)
        started = time.monotonic()
        timer.start()
        try:
            result = cli(store_url, *record_args(0, 0))
        finally:
            timer.cancel()
        waited = time.monotonic() - started
        assert result.returncode == 0, result.stderr
        assert held_s <= waited < store_module.BUSY_TIMEOUT_S
        found = assert_sound(store_target, open_store)
        assert found.keys() == [(PATIENTS[0], cli_time(0, 0))]


class TestCheckedTogether:
    """Sessions recorded at once are checked against each other, as if recorded in turn."""

    def test_two_recordings_at_once_see_each_other(
        self,
        store_url: str,
        open_store: OpenStore,
        patients: tuple[str, ...],
        lock_holder: Callable[[], None],
    ) -> None:
        # One minute apart: recorded in turn, the second is "hard" (interval-low, under the
        # 20 h minimum). Both wait for the held lock before they read the history (session
        # record holds it from the read to the write), so the second sees the first.
        dates = ("2026-03-02T09:00", "2026-03-02T09:01")
        record = [sys.executable, "-m", "ketadose", "session", "record", PATIENTS[0]]
        commands = [Process([*record, "--date", day, "--store", store_url]) for day in dates]
        time.sleep(min(2.5, store_module.BUSY_TIMEOUT_S / 2))
        lock_holder()
        for command in commands:
            assert command.wait().startswith("ketadose: recorded session ")
            assert command.process.returncode == 0
        with open_store() as store:
            statuses = sorted(entry.status for entry in store.audit(PATIENTS[0]))
        assert statuses == ["hard", "ok"]


# --- 5. the server stopped under a writer (PostgreSQL) -----------------------------------

#: How the server goes down: fast and immediate shutdown (Cluster.stop), and a crash (kill).
DOWN = ("fast", "immediate", "kill")

# Commits sessions 0 .. count-1 of P_0 (printing "ok <number> <id>" after each), prints
# "ready" and waits for a line; then writes session `count` inside a write transaction that
# stalls: "blocked", it waits in its INSERT of the signature on a row lock the test holds
# (the write lock's wait allowed two minutes, so the lock timeout is not what ends it);
# "idle", inside Store.exclusive() it has written the session, prints "inside" and waits for
# another line before it commits. A StoreError is printed as "failed <message>", exit 6.
FAULT_WRITER = """
import json, sys
from datetime import UTC, datetime
from zoneinfo import ZoneInfo
import ketadose.store_sql
ketadose.store_sql.BUSY_TIMEOUT_S = 120.0
from ketadose.errors import StoreError
from ketadose.records import AuditEntry
from ketadose.store import Store
from tests.test_store import session_for

url, count, stall = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def record(store, number):
    entry = AuditEntry(
        at=datetime.now(UTC), user="nurse", command="session record", patient_id="P_0",
        inputs_json=json.dumps({"number": number}), findings_json="[]", status="ok",
        override_reason=None, library_sha256="ab" * 32,
    )
    session = session_for(number, patient_id="P_0", events=1)
    return store.record_session_with_audit(session, entry)


try:
    with Store.open(url, zone=ZoneInfo("Europe/Berlin")) as store:
        for number in range(count):
            print(f"ok {number} {record(store, number)}", flush=True)
        print("ready", flush=True)
        sys.stdin.readline()
        if stall == "blocked":
            row_id = record(store, count)
        else:
            with store.exclusive("record the session"):
                row_id = record(store, count)
                print("inside", flush=True)
                sys.stdin.readline()
        print(f"ok {count} {row_id}", flush=True)
except StoreError as error:
    print(f"failed {error}", flush=True)
    sys.exit(6)
"""


def bring_down(cluster: Cluster, how: str) -> None:
    """Stop the server (``fast`` or ``immediate`` shutdown) or kill its postmaster (``kill``)."""
    if how == "kill":
        cluster.kill()
    else:
        cluster.stop("fast" if how == "fast" else "immediate")
    assert not cluster.running


def hold_row(target: StoreTarget, table: str) -> Any:
    """A superuser transaction holding ``chain_tail``'s row of ``table`` FOR UPDATE: a writer
    inserting into that chained table waits for it (the chain trigger raises that row)."""
    conn = target.superuser()
    conn.autocommit = False
    held = conn.execute("SELECT tbl FROM chain_tail WHERE tbl = %s FOR UPDATE", (table,))
    assert held.fetchall() == [(table,)]
    return conn


def waiting_query(target: StoreTarget) -> str:
    """The statement of the store's connection that waits on a lock in the test's database
    (polled until there is one; the test fails after :data:`SILENCE_S`)."""
    assert target.database is not None
    deadline = time.monotonic() + SILENCE_S
    with target.superuser() as conn:
        while time.monotonic() < deadline:
            found = conn.execute(
                "SELECT query FROM pg_stat_activity WHERE datname = %s"
                " AND application_name = 'ketadose' AND wait_event_type = 'Lock'",
                (target.database.name,),
            ).fetchall()
            if found:
                return str(found[0][0])
            time.sleep(0.02)
    pytest.fail("no ketadose connection came to wait on the held row")


def table_counts(target: StoreTarget) -> dict[str, int]:
    """Rows in each table a session record writes, read raw (whatever the store makes of it)."""
    return {
        table: raw_rows(target, f"SELECT count(*) FROM {table}")[0][0]
        for table in ("sessions", "audit", "signatures", "measurements")
    }


#: What a writer is told when the server went away in a statement before its COMMIT, and
#: when it went away in (or before) the COMMIT itself, whose outcome the client cannot know.
WENT_AWAY = {
    "statement": "; the database server went away: nothing of this command was written",
    "commit": "; the database server went away as it committed: whether this command was "
    "written is not known; look (ketadose history, ketadose audit) before recording it again",
}


def assert_went_away(message: str, target: StoreTarget, where: str = "statement") -> None:
    """A writer's one-line error for a server that went down under it."""
    assert "\n" not in message.rstrip("\n")
    assert "Traceback" not in message
    assert f"store {target.url}: " in message, message
    assert message.rstrip("\n").endswith(WENT_AWAY[where]), message
    assert target.database is not None and target.database.password not in message


@pytest.mark.parametrize("engine", ["postgresql"])
class TestServerStopped:
    """The server goes down while a writer is inside its write transaction: the writer fails in
    one line, and after a restart nothing of that transaction is there, all else is, and the
    chains verify."""

    @pytest.mark.parametrize("how", DOWN)
    def test_store_api_writer_waiting_in_a_statement(
        self,
        how: str,
        pg_cluster: Cluster,
        store_target: StoreTarget,
        open_store: OpenStore,
        patients: tuple[str, ...],
    ) -> None:
        writer = Process([sys.executable, "-c", FAULT_WRITER, store_target.url, "3", "blocked"])
        committed = [writer.line() for _ in range(3)]
        assert writer.line() == "ready", committed
        before = table_counts(store_target)
        assert before["sessions"] == before["signatures"] == 3
        holder = hold_row(store_target, "signatures")
        try:
            writer.start()
            # It has written the session and its audit entry, and waits to sign.
            assert waiting_query(store_target).startswith("INSERT INTO signatures")
            bring_down(pg_cluster, how)
        finally:
            holder.close()
        errors = writer.wait()
        assert writer.process.returncode == 6, errors
        assert errors == ""
        (failed,) = writer.rest()
        assert failed.startswith("failed cannot record the session and its audit entry: ")
        assert_went_away(failed, store_target)
        pg_cluster.start()
        self.assert_only_committed(store_target, open_store, committed, before)

    @pytest.mark.parametrize("how", DOWN)
    def test_store_api_writer_idle_inside_exclusive(
        self,
        how: str,
        pg_cluster: Cluster,
        store_target: StoreTarget,
        open_store: OpenStore,
        patients: tuple[str, ...],
    ) -> None:
        """Written, not committed, when the server goes; it commits once the server is back,
        on the connection the server dropped: refused, and told that whether it was written
        is not known (a COMMIT whose reply is lost may have committed); nothing was."""
        writer = Process([sys.executable, "-c", FAULT_WRITER, store_target.url, "2", "idle"])
        committed = [writer.line() for _ in range(2)]
        assert writer.line() == "ready", committed
        before = table_counts(store_target)
        writer.start()
        assert writer.line() == "inside"
        bring_down(pg_cluster, how)
        pg_cluster.start()
        writer.start()  # go on: commit
        errors = writer.wait()
        assert writer.process.returncode == 6, errors
        assert errors == ""
        (failed,) = writer.rest()
        assert failed.startswith("failed cannot record the session: ")
        assert_went_away(failed, store_target, "commit")
        self.assert_only_committed(store_target, open_store, committed, before)

    @pytest.mark.parametrize("how", DOWN)
    def test_command_line_waiting_in_a_statement(
        self,
        how: str,
        pg_cluster: Cluster,
        store_target: StoreTarget,
        store_url: str,
        open_store: OpenStore,
        patients: tuple[str, ...],
    ) -> None:
        """``session record`` (the write lock's wait lengthened only) waits to sign its
        session when the server goes: exit 6, one line on stderr, no traceback."""
        for i in range(2):
            done = cli(store_url, *record_args(0, i))
            assert done.returncode == 0, done.stderr
        before = table_counts(store_target)
        lengthened = (
            "import runpy, ketadose.store_sql; ketadose.store_sql.BUSY_TIMEOUT_S = 120.0; "
            "runpy.run_module('ketadose', run_name='__main__', alter_sys=True)"
        )
        holder = hold_row(store_target, "signatures")
        try:
            command = Process(
                [sys.executable, "-c", lengthened, *record_args(0, 2), "--store", store_url]
            )
            assert waiting_query(store_target).startswith("INSERT INTO signatures")
            bring_down(pg_cluster, how)
        finally:
            holder.close()
        errors = command.wait()
        assert command.process.returncode == 6, errors
        assert errors.startswith(
            "ketadose: error: cannot record the session and its audit entry: "
        ), errors
        assert errors.count("\n") == 1, errors
        assert_went_away(errors, store_target)
        pg_cluster.start()
        assert table_counts(store_target) == before
        found = assert_sound(store_target, open_store)
        assert found.keys() == [(PATIENTS[0], cli_time(0, 0)), (PATIENTS[0], cli_time(0, 1))]
        assert [e.command for e in found.audit.values()] == ["session record"] * 2
        check = cli(store_url, "store", "check")
        assert check.returncode == 0, check.stderr
        assert_extends_chain(open_store, PATIENTS[0], T0 + timedelta(days=400))

    def test_a_command_while_the_server_is_down(
        self,
        pg_cluster: Cluster,
        store_target: StoreTarget,
        store_url: str,
        patients: tuple[str, ...],
    ) -> None:
        """Exit 6 with one line naming the store's URL, never its password; then, up again,
        the same command records."""
        assert store_target.database is not None
        password = store_target.database.password
        assert password in (store_target.pgpass or Path()).read_text(encoding="utf-8")
        pg_cluster.stop()
        for args in (record_args(0, 0), ["history", PATIENTS[0]], ["store", "check"]):
            result = cli(store_url, *args)
            assert_one_line_store_error(result)
            assert f"cannot open store {store_url}: " in result.stderr, result.stderr
            assert "Connection refused" in result.stderr
            assert password not in result.stderr + result.stdout
        pg_cluster.start()
        done = cli(store_url, *record_args(0, 0))
        assert done.returncode == 0, done.stderr

    @staticmethod
    def assert_only_committed(
        target: StoreTarget, open_store: OpenStore, committed: list[str], before: dict[str, int]
    ) -> None:
        """After the restart: the sessions reported committed, each once, and nothing of the
        interrupted transaction (not its session, audit entry, signature or any row)."""
        assert table_counts(target) == before
        found = assert_sound(target, open_store)
        reported = {int(number): int(row) for _, number, row in (c.split() for c in committed)}
        assert {lane_of(s)[1]: s.id for s in found.sessions} == reported
        with open_store() as store:
            assert store.verify() == []
        check = cli(target.url, "store", "check")
        assert check.returncode == 0, check.stderr
        assert_extends_chain(open_store, PATIENTS[0], T0 + timedelta(days=400))
