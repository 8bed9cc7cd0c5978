"""The store's indexed reads (issue 16): the decisions they feed equal those of the whole history.

``next`` decides from :func:`ketadose.escalation.decisive_history` (a count, the latest starts,
a time suffix, the first starts) and ``session record`` checks against
:meth:`Store.sessions_around` (7 days on either side and the nearest beyond); both are compared,
over generated histories, with the same code given every session. The histories include long
ones, sessions exactly 7 days apart, sessions recorded twice at one start, times stored with
other UTC offsets (and microseconds), and questionnaire scores.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ketadose.clock import instant
from ketadose.dosing import DoseRequest
from ketadose.errors import InputError
from ketadose.escalation import decide, decisive_history, with_scores
from ketadose.gate import session as gate_session
from ketadose.instruments import unacknowledged
from ketadose.libfile import Quantity
from ketadose.limits import load_library as load_limits
from ketadose.models import CheckContext, PreviousSession, WeightPolicy
from ketadose.protocols import load_library
from ketadose.records import AuditEntry, PatientRecord, SessionRecord
from ketadose.render.json import document
from ketadose.render.records import audit_json, audit_json_chunks, history_json
from ketadose.scores import ScoreRecord
from ketadose.series import SERIES_WINDOW
from ketadose.store import INDEXES, Store
from ketadose.strategies import session_histories
from ketadose.units import Kind
from tests.stores import ON_POSTGRESQL, ON_SQLITE, StoreTarget, raw_sql, tamper

ZONE = ZoneInfo("Europe/Berlin")
SHIPPED = load_library()
LIMITS = load_limits()
#: Series of 6 with a futility rule; a single session; 10 sessions; a continuous titration.
PROTOCOLS = ("depression", "ocd", "crps", "migraine")
OFFSETS = (
    ZONE,
    UTC,
    timezone(timedelta(hours=-5)),
    timezone(timedelta(hours=9, minutes=30)),
)
GAPS = (
    timedelta(hours=4),
    timedelta(hours=13),
    timedelta(days=1),
    timedelta(days=3),
    timedelta(days=7),
    timedelta(days=7, seconds=1),
    timedelta(days=8),
    timedelta(days=20),
)


def _moved(session: SessionRecord, at: datetime) -> SessionRecord:
    """The session at another start, its stop, discharge and readings moved with it."""
    delta = at - session.at
    return replace(
        session,
        at=at,
        stopped_at=None if session.stopped_at is None else session.stopped_at + delta,
        discharged_at=None if session.discharged_at is None else session.discharged_at + delta,
        readings=tuple(replace(r, at=r.at + delta) for r in session.readings),
    )


@st.composite
def histories(draw: st.DrawFn) -> tuple[str, PatientRecord, list[SessionRecord], list[ScoreRecord]]:
    """A protocol, a patient, their sessions (respaced, repeated, re-zoned) and scores."""
    protocol_id = draw(st.sampled_from(PROTOCOLS))
    patient, sessions = draw(session_histories(protocol_id, max_sessions=24))
    if draw(st.booleans()) and sessions:
        at = sessions[0].at
        respaced = []
        # Dense (a weekly cap and 7-day totals reached) or spread (every gap up to 20 days).
        gaps = draw(st.sampled_from((GAPS[:4], GAPS)))
        for session in sessions:
            respaced.append(_moved(session, at))
            at = at + draw(st.sampled_from(gaps))
        sessions = respaced
    if draw(st.booleans()) and sessions:
        # The same start recorded again (one infusion recorded twice).
        twice = draw(st.integers(0, len(sessions) - 1))
        sessions.insert(twice + 1, replace(sessions[twice], score=None))
    if draw(st.booleans()) and sessions:
        # Stored with another UTC offset, sometimes a few microseconds off.
        sessions = [
            _moved(
                s,
                s.at.astimezone(draw(st.sampled_from(OFFSETS)))
                + timedelta(microseconds=draw(st.sampled_from((0, 0, 0, 1, 400, 999)))),
            )
            for s in sessions
        ]
    response = SHIPPED[protocol_id].protocol.response
    scores: list[ScoreRecord] = []
    if sessions and response is not None and response.instrument and draw(st.booleans()):
        for _ in range(draw(st.integers(1, 6))):
            base = draw(st.sampled_from(sessions)).at
            scores.append(
                ScoreRecord(
                    patient_id=patient.id,
                    at=base + timedelta(hours=draw(st.integers(-13, 30))),
                    instrument=response.instrument,
                    items=None,
                    total=draw(st.integers(0, 40)),
                )
            )
    return protocol_id, patient, sessions, scores


#: Each example's patient has an id of its own: the examples of one test share its store.
_EXAMPLES = itertools.count(1)

#: How many examples each property runs on PostgreSQL (a server round trip per statement; the
#: SQLite runs take the full count, and the SQL read is the same text on both).
SERVER_EXAMPLES = 20


def _stored(
    target: StoreTarget,
    patient: PatientRecord,
    sessions: list[SessionRecord],
    scores: list[ScoreRecord],
) -> PatientRecord:
    """Store the example under a fresh patient id, beside the examples before it; its patient."""
    patient_id = f"P-{next(_EXAMPLES)}"
    patient = replace(patient, id=patient_id)
    with Store.open(target.url, zone=ZONE) as db:
        db.add_patient(patient, at=datetime(2026, 1, 1, tzinfo=ZONE))
        for session in sessions:
            db.record_session(replace(session, patient_id=patient_id))
        for score in scores:
            db.record_score(replace(score, patient_id=patient_id))
    return patient


def _without_echo(text: str) -> Any:
    """A document without its ``context.history``: the echo of the sessions it was given."""
    body = json.loads(text)
    if body.get("session") is not None:
        body["session"]["context"].pop("history", None)
    if isinstance(body.get("context"), dict):
        body["context"].pop("history", None)
    return body


def _outcome(call: Any) -> Any:
    try:
        return _without_echo(document(call()))
    except InputError as error:
        return ("refused", str(error))


def _next_decides_as_the_whole_history(
    target: StoreTarget,
    case: tuple[str, PatientRecord, list[SessionRecord], list[ScoreRecord]],
    after: timedelta,
) -> None:
    protocol_id, patient, sessions, scores = case
    entry = SHIPPED[protocol_id]
    patient = _stored(target, replace(patient, protocol=protocol_id), sessions, scores)
    last = max((s.at for s in sessions), key=instant, default=datetime(2026, 11, 2, tzinfo=ZONE))
    at = (last + after).astimezone(ZONE)
    instrument = None if entry.protocol.response is None else entry.protocol.response.instrument
    with Store.open(target.url, zone=ZONE, read_only=True) as db:
        record = db.patient(patient.id)
        stored_scores = db.scores(patient.id)
        taken = [(s.at, float(s.total)) for s in stored_scores if s.instrument == instrument]
        whole = db.sessions(patient.id)
        part, count = decisive_history(db, entry, patient.id, at, taken)
    assert len(whole) == len(sessions)
    safety = unacknowledged(stored_scores)
    full = _outcome(
        lambda: decide(entry, record, whole, LIMITS, at=at, scores=taken, safety=safety)
    )
    read = _outcome(
        lambda: decide(entry, record, part, LIMITS, at=at, scores=taken, safety=safety, count=count)
    )
    assert read == full
    # The part read is the whole history's sessions, a subset in the same order.
    ids = [s.id for s in whole]
    assert [s.id for s in part] == [i for i in ids if i in {s.id for s in part}]


_AFTER = st.sampled_from((*GAPS, timedelta(0), -timedelta(days=1)))
_SHARED = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]


class TestNextFromIndexedReads:
    """``next`` decides the same from the indexed reads as from the whole history."""

    @ON_SQLITE
    @given(case=histories(), after=_AFTER)
    @settings(max_examples=120, deadline=None, suppress_health_check=_SHARED)
    def test_the_decision_is_the_whole_history_s(
        self,
        store_target: StoreTarget,
        case: tuple[str, PatientRecord, list[SessionRecord], list[ScoreRecord]],
        after: timedelta,
    ) -> None:
        _next_decides_as_the_whole_history(store_target, case, after)

    @ON_POSTGRESQL
    @given(case=histories(), after=_AFTER)
    @settings(max_examples=SERVER_EXAMPLES, deadline=None, suppress_health_check=_SHARED)
    def test_the_decision_is_the_whole_history_s_on_a_server(
        self,
        store_target: StoreTarget,
        case: tuple[str, PatientRecord, list[SessionRecord], list[ScoreRecord]],
        after: timedelta,
    ) -> None:
        _next_decides_as_the_whole_history(store_target, case, after)


def _findings_are_the_whole_history_s(
    target: StoreTarget,
    case: tuple[str, PatientRecord, list[SessionRecord], list[ScoreRecord]],
    where: int,
    offset: timedelta,
) -> None:
    protocol_id, patient, sessions, _ = case
    if protocol_id == "migraine" or not sessions:
        protocol_id, sessions = "depression", sessions or []
    entry = SHIPPED[protocol_id]
    patient = _stored(target, replace(patient, protocol=protocol_id), sessions, [])
    base = sessions[where % len(sessions)].at if sessions else datetime(2026, 11, 2, tzinfo=ZONE)
    at = (base + offset).astimezone(ZONE)
    with Store.open(target.url, zone=ZONE, read_only=True) as db:
        record = db.patient(patient.id)
        whole = db.sessions(patient.id)
        near = db.sessions_around(patient.id, at, SERIES_WINDOW)
    assert len(whole) == len(sessions)
    request = DoseRequest(
        patient=record.as_patient(),
        policy=WeightPolicy.ACTUAL,
        dose=Quantity(Kind.DOSE_PER_KG, 0.5, "0.5 mg/kg"),
    )

    def checked(history: list[SessionRecord]) -> Any:
        context = CheckContext(
            at=at,
            history=tuple(
                PreviousSession(at=s.at, dose_mg=s.dose_mg, dose_mg_per_kg=s.dose_mg_per_kg)
                for s in history
            ),
        )
        return _outcome(lambda: gate_session(entry, request, LIMITS, context))

    assert checked(near) == checked(whole)


_WHERE = st.integers(0, 30)
_OFFSET = st.sampled_from((*GAPS, timedelta(0), -timedelta(days=7), -timedelta(hours=4)))


class TestSessionRecordFromIndexedReads:
    """A session recorded is checked against the same findings as with the whole history."""

    @ON_SQLITE
    @given(case=histories(), where=_WHERE, offset=_OFFSET)
    @settings(max_examples=80, deadline=None, suppress_health_check=_SHARED)
    def test_the_findings_are_the_whole_history_s(
        self,
        store_target: StoreTarget,
        case: tuple[str, PatientRecord, list[SessionRecord], list[ScoreRecord]],
        where: int,
        offset: timedelta,
    ) -> None:
        _findings_are_the_whole_history_s(store_target, case, where, offset)

    @ON_POSTGRESQL
    @given(case=histories(), where=_WHERE, offset=_OFFSET)
    @settings(max_examples=SERVER_EXAMPLES, deadline=None, suppress_health_check=_SHARED)
    def test_the_findings_are_the_whole_history_s_on_a_server(
        self,
        store_target: StoreTarget,
        case: tuple[str, PatientRecord, list[SessionRecord], list[ScoreRecord]],
        where: int,
        offset: timedelta,
    ) -> None:
        _findings_are_the_whole_history_s(store_target, case, where, offset)


def _session(patient_id: str, at: datetime, **extra: Any) -> SessionRecord:
    return SessionRecord(
        patient_id=patient_id,
        at=at,
        protocol="depression",
        dose_mg=40.0,
        dose_mg_per_kg=0.5,
        duration_min=40.0,
        **extra,
    )


@pytest.fixture
def store(store_target: StoreTarget) -> Iterator[Store]:
    """A store on the test's engine with two patients, P-1 and P-2."""
    with Store.open(store_target.url, zone=ZONE) as db:
        for patient_id in ("P-1", "P-2"):
            db.add_patient(
                PatientRecord(id=patient_id, protocol="depression", baseline=30.0, weight_kg=80.0),
                at=datetime(2026, 1, 1, tzinfo=ZONE),
            )
        yield db


START = datetime(2026, 3, 1, 9, 0, tzinfo=ZONE)


class TestIndexedReads:
    """Each read method gives what filtering the whole history would, by exact instants."""

    def test_count_is_distinct_starts_across_offsets(self, store: Store) -> None:
        store.record_session(_session("P-1", START))
        # The same instant written with another offset, and one a microsecond later.
        store.record_session(_session("P-1", START.astimezone(UTC)))
        store.record_session(_session("P-1", START + timedelta(microseconds=1)))
        store.record_session(_session("P-1", START + timedelta(days=1)))
        store.record_session(_session("P-2", START))
        assert store.session_count("P-1") == 3
        assert store.session_count("P-2") == 1

    def test_between_includes_both_ends_exactly(self, store: Store) -> None:
        for day in range(10):
            store.record_session(_session("P-1", START + timedelta(days=day)))
        found = store.sessions_between("P-1", START + timedelta(days=2), START + timedelta(days=4))
        assert [s.at for s in found] == [START + timedelta(days=d) for d in (2, 3, 4)]
        just = store.sessions_between(
            "P-1", START + timedelta(days=2, microseconds=1), START + timedelta(days=4)
        )
        assert [s.at for s in just] == [START + timedelta(days=d) for d in (3, 4)]

    def test_last_and_first_starts(self, store: Store) -> None:
        store.record_session(_session("P-1", START, score=20.0))
        store.record_session(_session("P-1", START + timedelta(days=3)))
        store.record_session(_session("P-1", START + timedelta(days=6)))
        assert store.last_session_at("P-1") == START + timedelta(days=6)
        assert store.last_session_at("P-1", scored=True) == START
        assert store.last_session_at("P-1", until=START + timedelta(days=5)) == START + timedelta(
            days=3
        )
        assert store.last_session_at("P-1", until=START - timedelta(seconds=1)) is None
        assert store.first_session_at("P-1", since=START + timedelta(days=1)) == START + timedelta(
            days=3
        )
        assert store.last_session_at("P-2") is None

    def test_around_holds_the_window_and_the_nearest_beyond(self, store: Store) -> None:
        days = (0, 1, 20, 21, 30, 60)
        for day in days:
            store.record_session(_session("P-1", START + timedelta(days=day)))
        near = store.sessions_around("P-1", START + timedelta(days=25), SERIES_WINDOW)
        assert [(s.at - START).days for s in near] == [1, 20, 21, 30, 60]
        wide = store.sessions_around("P-1", START + timedelta(days=40), SERIES_WINDOW)
        assert [(s.at - START).days for s in wide] == [30, 60]

    def test_first_sessions_keeps_a_start_recorded_twice(self, store: Store) -> None:
        for day in (0, 0, 1, 2):
            store.record_session(_session("P-1", START + timedelta(days=day)))
        assert [(s.at - START).days for s in store.first_sessions("P-1", 2)] == [0, 0, 1]

    def test_iter_sessions_is_in_instant_order(self, store: Store) -> None:
        # Within one millisecond the index cannot tell them apart: the exact instants do.
        later = START + timedelta(microseconds=900)
        store.record_session(_session("P-1", later))
        store.record_session(_session("P-1", START + timedelta(microseconds=100)))
        store.record_session(_session("P-1", START.astimezone(UTC)))
        found = list(store.iter_sessions("P-1"))
        assert [instant(s.at) for s in found] == sorted(instant(s.at) for s in found)
        assert found[-1].at == later

    def test_unknown_patient_is_refused_by_every_read(self, store: Store) -> None:
        for read in (
            lambda: store.session_count("nobody"),
            lambda: store.sessions_between("nobody"),
            lambda: store.last_session_at("nobody"),
            lambda: list(store.iter_sessions("nobody")),
        ):
            with pytest.raises(InputError, match="no patient 'nobody'"):
                read()

    @ON_SQLITE
    def test_indexes_are_made_and_used(self, store: Store, store_target: StoreTarget) -> None:
        names = {
            n for (n,) in raw_sql(store_target, "SELECT name FROM sqlite_master WHERE type='index'")
        }
        plan = " ".join(
            str(row[3])
            for row in raw_sql(
                store_target,
                "EXPLAIN QUERY PLAN SELECT id FROM sessions WHERE patient_id = 'P-1'"
                " AND julianday(at) >= julianday('2026-03-01') ORDER BY julianday(at), at, id",
            )
        )
        assert set(INDEXES) <= names
        assert "sessions_by_patient_time" in plan and "TEMP B-TREE" not in plan

    @ON_POSTGRESQL
    def test_indexes_are_made_and_usable_on_a_server(
        self, store: Store, store_target: StoreTarget
    ) -> None:
        # A few rows would be read whole and sorted by the planner: with sequential scans and
        # full sorts priced out, the time index must serve the read in its order (julianday is
        # immutable, so it can be indexed; the index has no id: equal times are sorted by it).
        for day in range(3):
            store.record_session(_session("P-1", START + timedelta(days=day)))
        names = {
            n
            for (n,) in raw_sql(
                store_target,
                "SELECT indexname FROM pg_catalog.pg_indexes WHERE schemaname = 'public'",
            )
        }
        assert set(INDEXES) <= names
        with store_target.superuser() as conn:
            conn.execute("SET enable_seqscan = off")
            conn.execute("SET enable_sort = off")  # a full sort only if the index cannot order
            plan = " ".join(
                str(row[0])
                for row in conn.execute(
                    "EXPLAIN SELECT id FROM sessions WHERE patient_id = 'P-1'"
                    " AND julianday(at) >= julianday('2026-03-01T00:00:00+01:00')"
                    " ORDER BY julianday(at), at, id"
                )
            )
        assert "sessions_by_patient_time" in plan
        # The index gives the time order; only equal times are sorted by id (incrementally).
        assert plan.startswith("Incremental Sort")
        assert "Presorted Key: (julianday(at)), at" in plan

    def test_the_chain_still_verifies(self, store: Store) -> None:
        for day in range(5):
            store.record_session(_session("P-1", START + timedelta(days=day)))
        assert store.verify() == []


class TestStreamedDocuments:
    """The streamed documents are the bytes of the documents built whole."""

    def test_audit_json_streamed_equals_whole(self, store: Store) -> None:
        for number in range(3):
            store.append_audit(
                AuditEntry(
                    at=START + timedelta(minutes=number),
                    user="nurse",
                    command="next",
                    patient_id="P-1",
                    inputs_json=json.dumps({"date": "2026-03-01", "note": 'é\n"x"'}),
                    findings_json=json.dumps([{"code": "c", "nested": {"a": [1, 2]}}]),
                    status="ok",
                    override_reason=None,
                    library_sha256="0" * 64,
                )
            )
        entries = store.audit()
        head = store.chain_head()
        whole = {
            "schema_version": json.loads(audit_json(entries))["schema_version"],
            "entries": json.loads(audit_json(entries))["entries"],
            "chain_head": {"id": 3, "hash": entries[-1].hash},
        }
        streamed = "".join(audit_json_chunks(iter(entries), head))
        assert streamed == audit_json(entries, head)
        assert json.dumps(whole, indent=2, ensure_ascii=False) + "\n" == streamed
        empty = {"schema_version": whole["schema_version"], "entries": [], "chain_head": None}
        assert "".join(audit_json_chunks(iter([]))) == audit_json([])
        assert audit_json([]) == json.dumps(empty, indent=2) + "\n"

    def test_history_json_streamed_equals_the_model_s(self, store: Store) -> None:
        from ketadose.render.records import History, HistorySession, history_rows

        for day in range(3):
            store.record_session(_session("P-1", START + timedelta(days=day), notes="a\nb"))
        patient, sessions = store.patient("P-1"), store.sessions("P-1")
        model = document(
            History(
                patient=patient,
                sessions=tuple(HistorySession(**row) for row in history_rows(patient, sessions)),
            )
        )
        assert history_json(patient, sessions) == model
        empty = document(History(patient=patient, sessions=()))
        assert history_json(patient, []) == empty

    def test_with_scores_streamed_equals_the_list(self) -> None:
        sessions = [_session("P-1", START + timedelta(days=d)) for d in range(4)]
        scores = [(START + timedelta(days=1, hours=2), 12.0), (START - timedelta(hours=3), 9.0)]
        assert with_scores(sessions, scores) == [
            replace(s, score=score)
            for s, score in zip(sessions, (9.0, 12.0, None, None), strict=True)
        ]


class TestStreamedRefusals:
    """A row refused midway leaves nothing: stdout empty, no ``-o`` file, exit 6."""

    @pytest.mark.parametrize("args", [["audit", "--json"], ["audit", "--format", "csv"]])
    @pytest.mark.parametrize("to_file", [False, True])
    def test_a_tampered_entry_midway(
        self, store_target: StoreTarget, tmp_path: Path, args: list[str], to_file: bool
    ) -> None:
        from typer.testing import CliRunner

        from ketadose.cli import app

        with Store.open(store_target.url, zone=ZONE) as db:
            for number in range(5):
                db.append_audit(
                    AuditEntry(
                        at=START + timedelta(minutes=number),
                        user="nurse",
                        command="next",
                        patient_id="P-1",
                        inputs_json="{}",
                        findings_json="[]",
                        status="ok",
                        override_reason=None,
                        library_sha256="0" * 64,
                    )
                )
        tamper(store_target, "UPDATE audit SET status = 'fine' WHERE id = 4")
        folder = tmp_path / "out"
        folder.mkdir()
        out = folder / "audit.out"
        result = CliRunner().invoke(
            app, [*args, "--store", store_target.url, *(["-o", str(out)] if to_file else [])]
        )
        assert result.exit_code == 6, result.stderr
        assert "audit row 4: status" in result.stderr
        assert result.stdout == ""
        assert not out.exists()
        # No temporary file left beside it either.
        assert list(folder.iterdir()) == []
