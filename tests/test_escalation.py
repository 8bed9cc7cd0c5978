"""Tests for ketadose.escalation: the next-session decision over a table of histories."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketadose.escalation import decide
from ketadose.models import Severity
from ketadose.records import BloodPressure, PatientRecord, SessionRecord
from tests.factories import SRC, limits_library, protocol

LIMITS = limits_library()
# Depression-like: 0.5 mg/kg over 40 min; 0.75 over 45 min from session 4 if < 50% after 3.
ENTRY = protocol(
    {"kind": "timed", "dose": "0.5 mg/kg", "duration": "40 min"},
    protocol_id="depression",
    escalation=[
        {
            "from_session": 4,
            "dose": "0.75 mg/kg",
            "duration": "45 min",
            "condition": "improvement < 50%",
            **SRC,
        },
        {
            "from_session": 5,
            "dose": "1 mg/kg",
            "duration": "60 min",
            "condition": "improvement < 50%",
            **SRC,
        },
    ],
    response={"scale": "MADRS", "threshold": ">= 50% fall", "threshold_pct": 50, **SRC},
    rules={"sessions_per_step": 3, "max_gap": "14 d", **SRC},
)
PATIENT = PatientRecord(id="P1", protocol="depression", baseline=30, weight_kg=80)
START = datetime(2026, 11, 2, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))


def given_sessions(
    *doses: float, scores: list[float | None] | None = None, **last: object
) -> list[SessionRecord]:
    sessions = []
    for i, per_kg in enumerate(doses):
        score = None if scores is None else scores[i]
        sessions.append(
            SessionRecord(
                patient_id="P1",
                at=START + timedelta(days=2 * i),
                protocol="depression",
                dose_mg=per_kg * 80,
                dose_mg_per_kg=per_kg,
                score=score,
            )
        )
    if last and sessions:
        sessions[-1] = SessionRecord(
            **{**{f: getattr(sessions[-1], f) for f in SessionRecord.__slots__}, **last}
        )
    return sessions


class TestDecisions:
    """Each rule of the table, with the dose it recommends."""

    def test_no_history_starts(self) -> None:
        result = decide(ENTRY, PATIENT, [], LIMITS, at=START)
        assert (result.decision, result.level, result.dose_mg_per_kg) == ("start", 0, 0.5)

    def test_responder_holds(self) -> None:
        result = decide(
            ENTRY,
            PATIENT,
            given_sessions(0.5, 0.5, 0.5, scores=[25, 20, 12]),
            LIMITS,
            at=START + timedelta(days=7),
        )
        assert (result.decision, result.level) == ("hold", 0)
        assert result.improvement_pct == pytest.approx(60)
        assert any("responding" in r for r in result.reasons)

    def test_non_responder_tolerated_escalates_one_step(self) -> None:
        result = decide(
            ENTRY,
            PATIENT,
            given_sessions(0.5, 0.5, 0.5, scores=[29, 27, 25]),
            LIMITS,
            at=START + timedelta(days=7),
        )
        assert (result.decision, result.level) == ("escalate", 1)
        assert result.dose_mg_per_kg == pytest.approx(0.75)
        assert result.total_dose_mg == pytest.approx(60)
        assert result.status == "ok"

    def test_too_few_sessions_at_the_dose_holds(self) -> None:
        result = decide(
            ENTRY,
            PATIENT,
            given_sessions(0.5, 0.5, scores=[29, 28]),
            LIMITS,
            at=START + timedelta(days=5),
        )
        assert (result.decision, result.level) == ("hold", 0)
        assert any("2 of 3 sessions" in r for r in result.reasons)

    def test_non_responder_not_tolerated_reduces(self) -> None:
        sessions = given_sessions(
            0.5, 0.5, 0.5, 0.75, scores=[29, 27, 26, 25], bp_peak=BloodPressure(195, 105)
        )
        result = decide(ENTRY, PATIENT, sessions, LIMITS, at=START + timedelta(days=9))
        assert (result.decision, result.level) == ("reduce", 0)
        assert result.dose_mg_per_kg == pytest.approx(0.5)
        assert any("systolic" in r for r in result.reasons)

    def test_hypertension_at_the_starting_dose_reassesses(self) -> None:
        sessions = given_sessions(0.5, scores=[29], bp_peak=BloodPressure(205, 100))
        result = decide(ENTRY, PATIENT, sessions, LIMITS, at=START + timedelta(days=3))
        assert result.decision == "reassess"

    def test_severe_adverse_event_counts_as_not_tolerated(self) -> None:
        sessions = given_sessions(
            0.5, 0.5, 0.5, 0.75, scores=[29, 27, 26, 25], adverse_events=("dissociation:severe",)
        )
        result = decide(ENTRY, PATIENT, sessions, LIMITS, at=START + timedelta(days=9))
        assert result.decision == "reduce"

    def test_missing_scores_hold(self) -> None:
        result = decide(
            ENTRY, PATIENT, given_sessions(0.5, 0.5, 0.5), LIMITS, at=START + timedelta(days=7)
        )
        assert result.decision == "hold"
        assert any("no score" in r for r in result.reasons)

    def test_gap_longer_than_the_protocol_allows_reassesses(self) -> None:
        result = decide(
            ENTRY,
            PATIENT,
            given_sessions(0.5, 0.5, scores=[29, 28]),
            LIMITS,
            at=START + timedelta(days=30),
        )
        assert result.decision == "reassess"
        assert any("more than 14 d" in r for r in result.reasons)

    def test_series_complete_without_response_reassesses(self) -> None:
        sessions = given_sessions(0.5, 0.5, 0.5, 0.75, 1.0, 1.0, scores=[29, 28, 27, 26, 26, 25])
        result = decide(ENTRY, PATIENT, sessions, LIMITS, at=START + timedelta(days=14))
        assert result.decision == "reassess"

    def test_earliest_date_keeps_the_interval(self) -> None:
        sessions = given_sessions(0.5, scores=[29])
        result = decide(ENTRY, PATIENT, sessions, LIMITS, at=sessions[-1].at + timedelta(hours=1))
        assert result.earliest_date == sessions[-1].at + timedelta(
            hours=40
        )  # test limits: 40 h soft minimum


histories = st.lists(
    st.tuples(
        st.sampled_from([0.5, 0.75, 1.0, 0.6, 1.4]),
        st.one_of(st.none(), st.floats(min_value=0, max_value=40)),
        st.one_of(st.none(), st.integers(min_value=100, max_value=230)),
        st.booleans(),
    ),
    max_size=8,
)


class TestProperties:
    """For any history: never past a hard limit, never more than one step, never after intolerance."""

    @given(histories, st.floats(min_value=1, max_value=20))
    def test_invariants(
        self, rows: list[tuple[float, float | None, int | None, bool]], days_after: float
    ) -> None:
        sessions = [
            SessionRecord(
                patient_id="P1",
                at=START + timedelta(days=3 * i),
                protocol="depression",
                dose_mg=per_kg * 80,
                dose_mg_per_kg=per_kg,
                score=score,
                bp_peak=None if systolic is None else BloodPressure(systolic, 80),
                adverse_events=("nausea:severe",) if severe else (),
            )
            for i, (per_kg, score, systolic, severe) in enumerate(rows)
        ]
        at = (sessions[-1].at if sessions else START) + timedelta(days=days_after)
        result = decide(ENTRY, PATIENT, sessions, LIMITS, at=at)
        assert result.status != "hard" or result.decision != "escalate"
        if result.decision == "escalate":
            assert sessions
            last = sessions[-1]
            levels = [0.5, 0.75, 1.0]
            current = max(i for i, v in enumerate(levels) if v <= (last.dose_mg_per_kg or 0) * 1.02)
            assert result.level == current + 1
            assert not last.adverse_events
            assert last.bp_peak is None or last.bp_peak.systolic <= 180
        if result.status != "hard":
            assert not [f for f in result.findings if f.severity is Severity.HARD]
