"""Tests for ketadose.escalation: the next-session decision, rule by rule, on its own basis."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketadose import escalation
from ketadose.clock import elapsed, instant, shift
from ketadose.escalation import (
    GOES_AHEAD,
    LEVEL_TOLERANCE,
    RULES,
    SCORE_LEAD,
    NextSession,
    decide,
    with_scores,
)
from ketadose.events import AdverseEvent, Grade, parse
from ketadose.limits import load_library as load_limits
from ketadose.models import WeightPolicy
from ketadose.monitoring import schedule, tolerability
from ketadose.protocols import load_library
from ketadose.records import BloodPressure, PatientRecord, Reading, SessionRecord
from ketadose.render.json import document
from ketadose.render.records import history_json
from ketadose.render.records import read_history_file as read_history
from ketadose.store import Store
from ketadose.strategies import session_histories
from tests.factories import SRC, limits_library, protocol

LIMITS = limits_library()
# Depression-like: 0.5 mg/kg over 40 min; 0.75 over 45 min, then 1 mg/kg, if < 50% after 3.
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
ZONE = ZoneInfo("Europe/Berlin")


def read_history_file(path: Path, patient_id: str, zone: tzinfo) -> Any:
    """``next --history FILE``'s reader on a file's bytes, named by its path (as the edge does)."""
    return read_history(path.read_bytes(), str(path), patient_id, zone)


START = datetime(2026, 11, 2, 9, 0, tzinfo=ZONE)
# 110 kg, 170 cm, female; worked by hand (clinical.md 7):
#   ideal (Devine) 45.5 + 2.3 x (170 / 2.54 - 60) = 61.437008 kg
#   adjusted 61.437008 + 0.4 x (110 - 61.437008) = 80.862205 kg
#   lean (Janmahasatian) 9270 x 110 / (8780 + 244 x 38.062284) = 56.43921 kg
WOMAN = PatientRecord(
    id="P1", protocol="depression", baseline=30, weight_kg=110, height_cm=170, sex="female"
)
BASIS = {
    WeightPolicy.ACTUAL: 110.0,
    WeightPolicy.IDEAL: 61.437008,
    WeightPolicy.ADJUSTED: 80.862205,
    WeightPolicy.LEAN: 56.43921,
}
TOLERATED = {"bp_peak": BloodPressure(135, 85), "heart_rate": 82.0, "spo2": 97.0}


def sessions(
    *doses: float,
    kg: float = 80.0,
    policy: WeightPolicy | None = None,
    scores: Sequence[float | None] | None = None,
    vitals: bool = True,
    **last: object,
) -> list[SessionRecord]:
    """Sessions two days apart at these mg/kg on ``kg``; ``last`` replaces fields of the last."""
    made = []
    for i, per_kg in enumerate(doses):
        made.append(
            SessionRecord(
                patient_id="P1",
                at=START + timedelta(days=2 * i),
                protocol="depression",
                dose_mg=per_kg * kg,
                dose_mg_per_kg=per_kg,
                score=None if scores is None else scores[i],
                weight_policy=None if policy is None else policy.value,
                dosing_weight_kg=None if policy is None else kg,
                **(TOLERATED if vitals else {}),  # type: ignore[arg-type]
            )
        )
    if last and made:
        made[-1] = replace(made[-1], **last)  # type: ignore[arg-type]
    return made


def next_for(
    history: list[SessionRecord], patient: PatientRecord = WOMAN, **kw: object
) -> NextSession:
    at = history[-1].at + timedelta(days=3) if history else START
    return decide(ENTRY, patient, history, LIMITS, at=at, **kw)  # type: ignore[arg-type]


NON_RESPONDER = [28.0, 27.0, 25.0]  # 16.7 % below a baseline of 30


def timeline(protocol_id: str, session: SessionRecord) -> tuple[Reading, ...]:
    """A reading in limits at every time the protocol's schedule asks for one."""
    protocol = load_library()[protocol_id].protocol
    return tuple(
        Reading(
            at=due.at - timedelta(minutes=5) if due.label == "before" else due.at,
            systolic=130,
            diastolic=80,
            heart_rate=80,
            spo2=98,
        )
        for due in schedule(protocol, session)
    )


def monitored(protocol_id: str, session: SessionRecord) -> SessionRecord:
    """The session with its full timeline."""
    return replace(session, readings=timeline(protocol_id, session))


class TestBasis:
    """The dose is carried on the dosing weight the sessions used, whatever today's weight."""

    def test_the_issue_example_escalates_on_the_adjusted_weight(self) -> None:
        """40.4 mg = 0.5 mg/kg on 80.8 kg: 0.75 mg/kg is 60.6 mg there, not 82.5 mg."""
        history = sessions(0.5, 0.5, 0.5, kg=80.8, scores=NON_RESPONDER)
        result = next_for(history)
        assert result.decision == "escalate"
        assert result.total_dose_mg == pytest.approx(60.6)
        assert result.dose_mg_per_kg == pytest.approx(0.75)
        assert result.basis.dosing_weight_kg == pytest.approx(80.8)
        assert result.basis.kept_from == "recorded-dose"

    @pytest.mark.parametrize("policy", list(WeightPolicy))
    @pytest.mark.parametrize("recorded", [True, False], ids=["recorded", "mg-over-mg-per-kg"])
    def test_escalate_hold_and_reduce_on_every_policy(
        self, policy: WeightPolicy, recorded: bool
    ) -> None:
        kg = BASIS[policy]
        kept = policy if recorded else None
        escalate = next_for(sessions(0.5, 0.5, 0.5, kg=kg, policy=kept, scores=NON_RESPONDER))
        assert escalate.decision == "escalate"
        assert escalate.total_dose_mg == pytest.approx(0.75 * kg)
        hold = next_for(sessions(0.5, 0.5, kg=kg, policy=kept, scores=NON_RESPONDER[:2]))
        assert hold.decision == "hold"
        assert hold.total_dose_mg == pytest.approx(0.5 * kg)
        severe = parse("dissociation:severe")
        reduce = next_for(
            sessions(0.5, 0.5, 0.5, 0.75, kg=kg, policy=kept, adverse_events=(severe,))
        )
        assert (reduce.decision, reduce.ready) == ("reduce", False)
        assert reduce.total_dose_mg == pytest.approx(0.5 * kg)

    def test_a_reweighed_patient_keeps_the_basis_and_is_told(self) -> None:
        history = sessions(
            0.5, 0.5, 0.5, kg=80.862205, policy=WeightPolicy.ADJUSTED, scores=NON_RESPONDER
        )
        result = next_for(history, replace(WOMAN, weight_kg=100))
        assert result.total_dose_mg == pytest.approx(0.75 * 80.862205)
        # 61.437008 + 0.4 x 38.562992 = 76.862205 kg today
        assert result.basis.today_kg == pytest.approx(76.862205)
        assert any("76.9 kg" in reason and "basis is kept" in reason for reason in result.reasons)

    def test_rebasing_is_a_decision_the_output_states(self) -> None:
        history = sessions(0.5, 0.5, kg=80.8, scores=NON_RESPONDER[:2])
        result = next_for(history, rebase=WeightPolicy.IDEAL)
        assert result.decision == "hold"
        assert result.total_dose_mg == pytest.approx(0.5 * 61.437008)
        assert result.basis.kept_from == "rebased"
        assert "dosing basis changed to ideal weight, 61.4 kg" in result.reasons[0]


class TestHold:
    """Hold never changes the dose."""

    def test_off_ladder_dose_is_held_as_given(self) -> None:
        """After 3 x 0.4 mg/kg with no score, hold stays at 0.4 mg/kg, not the 0.5 rung."""
        result = next_for(sessions(0.4, 0.4, 0.4, kg=80.0))
        assert result.decision == "hold"
        assert result.dose_mg_per_kg == pytest.approx(0.4)
        assert result.total_dose_mg == pytest.approx(32.0)
        assert result.level is None

    def test_adjusted_weight_patient_holds_at_her_dose(self) -> None:
        """40.4 mg on adjusted weight holds at 40.4 mg, not 55 mg on actual weight."""
        result = next_for(sessions(0.5, kg=80.8, scores=[29.0]))
        assert result.decision == "hold"
        assert result.total_dose_mg == pytest.approx(40.4)

    def test_responder_holds_at_the_escalated_dose(self) -> None:
        result = next_for(sessions(0.5, 0.5, 0.5, 0.75, kg=80, scores=[25, 22, 20, 12]))
        assert (result.decision, result.rule) == ("hold", "hold-responding")
        assert result.total_dose_mg == pytest.approx(60.0)


class TestTolerability:
    """Escalation needs evidence that the sessions were tolerated."""

    def test_no_vitals_recorded_holds(self) -> None:
        result = next_for(sessions(0.5, 0.5, 0.5, kg=80, scores=NON_RESPONDER, vitals=False))
        assert (result.decision, result.rule) == ("hold", "hold-not-tolerated")
        assert result.total_dose_mg == pytest.approx(40.0)
        assert "not in evidence" in result.reasons[-1]

    def test_one_untolerated_session_at_the_dose_blocks_escalation(self) -> None:
        history = sessions(0.5, 0.5, 0.5, kg=80, scores=NON_RESPONDER)
        history[0] = replace(history[0], heart_rate=None)
        result = next_for(history)
        assert result.decision == "hold"
        assert result.total_dose_mg == pytest.approx(40.0)

    def test_a_heart_rate_of_zero_is_not_tolerated(self) -> None:
        result = next_for(sessions(0.5, 0.75, kg=80, scores=[28, 27], heart_rate=0.0))
        assert result.decision == "reduce"
        assert result.total_dose_mg == pytest.approx(40.0)
        assert "0 bpm" in result.reasons[1]

    @pytest.mark.parametrize("grade", [Grade.MODERATE])
    def test_moderate_event_holds(self, grade: Grade) -> None:
        event = AdverseEvent("nausea", grade)
        result = next_for(
            sessions(0.5, 0.5, 0.5, kg=80, scores=NON_RESPONDER, adverse_events=(event,))
        )
        assert result.decision == "hold"
        assert result.total_dose_mg == pytest.approx(40.0)

    def test_mild_event_does_not_block(self) -> None:
        event = AdverseEvent("nausea", Grade.MILD)
        result = next_for(
            sessions(0.5, 0.5, 0.5, kg=80, scores=NON_RESPONDER, adverse_events=(event,))
        )
        assert result.decision == "escalate"

    def test_timeline_with_every_scheduled_reading_is_evidence(self) -> None:
        monitored = replace(
            ENTRY,
            protocol=ENTRY.protocol.model_copy(
                update={"monitoring": load_library()["depression"].protocol.monitoring}
            ),
        )
        session = sessions(0.5, kg=80, vitals=False, duration_min=40.0)[0]
        # before; during +10..+40; no observation here, so the reading before discharge
        # is one more, within 5 min before the end.
        times = [-10, 10, 20, 30, 38, 40]
        full = replace(
            session,
            readings=tuple(
                Reading(at=session.at + timedelta(minutes=t), systolic=130, diastolic=80)
                for t in times
            ),
        )
        assert tolerability(monitored.protocol, LIMITS, full).kind == "tolerated"
        gap = replace(full, readings=full.readings[:2] + full.readings[3:])  # no +20
        judged = tolerability(monitored.protocol, LIMITS, gap)
        assert judged.kind == "not-shown"
        assert "during +20 min" in judged.reason


class TestSevere:
    """A severe event or a during-session stop: reduce or stop, never ready."""

    def test_severe_event_after_escalation_reduces_without_a_programme(self) -> None:
        result = next_for(
            sessions(0.5, 0.5, 0.5, 0.75, kg=80, adverse_events=(parse("dissociation:severe"),))
        )
        assert (result.decision, result.ready, result.status) == ("reduce", False, "soft")
        assert result.total_dose_mg == pytest.approx(40.0)
        assert result.session is not None
        assert all(p.pump_rate_ml_per_h is None for p in result.phases)
        assert result.session.preparation is None

    def test_severe_event_at_the_first_rung_stops(self) -> None:
        result = next_for(sessions(0.5, kg=80, adverse_events=(parse("dissociation:severe"),)))
        assert (result.decision, result.ready, result.status) == ("stop", False, "hard")
        assert result.session is None and result.total_dose_mg is None

    def test_life_threatening_event_stops_at_any_rung(self) -> None:
        event = parse("respiratory depression:life-threatening")
        result = next_for(sessions(0.5, 0.5, 0.5, 0.75, kg=80, adverse_events=(event,)))
        assert (result.decision, result.rule) == ("stop", "stop-life-threatening")

    def test_a_reading_that_answered_stop_reduces(self) -> None:
        stop = Reading(at=START + timedelta(days=6, minutes=20), systolic=210, diastolic=100)
        result = next_for(
            sessions(0.5, 0.5, 0.5, 0.75, kg=80, readings=(replace(stop, answer="stop"),))
        )
        assert result.decision == "reduce"

    def test_an_infusion_stopped_early_reduces(self) -> None:
        result = next_for(
            sessions(0.5, 0.75, kg=80, stopped_at=START + timedelta(days=2, minutes=15))
        )
        assert result.decision == "reduce"
        assert result.total_dose_mg == pytest.approx(40.0)

    def test_ungraded_event_asks_for_its_grade(self) -> None:
        result = next_for(sessions(0.5, kg=80, adverse_events=(AdverseEvent("nausea", None),)))
        assert (result.decision, result.rule, result.ready) == (
            "reassess",
            "reassess-ungraded",
            False,
        )


class TestRules:
    """The other rules, each with the reason that decided."""

    def test_too_few_sessions_at_the_dose_holds(self) -> None:
        result = next_for(sessions(0.5, 0.5, kg=80, scores=[28, 27]))
        assert (result.decision, result.rule) == ("hold", "hold-too-few")

    def test_never_past_the_top_rung(self) -> None:
        history = sessions(0.5, 0.5, 0.5, 0.75, 0.75, 0.75, kg=80, scores=[28] * 6)
        history = [replace(s, at=START + timedelta(days=i)) for i, s in enumerate(history)]
        extended = replace(
            ENTRY,
            protocol=ENTRY.protocol.model_copy(
                update={"series": ENTRY.protocol.series.model_copy(update={"sessions": 12})}
            ),
        )
        top = [*history, *sessions(1.0, 1.0, 1.0, kg=80, scores=[28] * 3)]
        top = [replace(s, at=START + timedelta(days=2 * i)) for i, s in enumerate(top)]
        result = decide(extended, WOMAN, top, LIMITS, at=top[-1].at + timedelta(days=3))
        assert (result.decision, result.rule) == ("hold", "hold-top")
        assert result.total_dose_mg == pytest.approx(80.0)

    def test_gap_reassesses_without_a_programme(self) -> None:
        history = sessions(0.5, kg=80, scores=[28])
        result = decide(ENTRY, WOMAN, history, LIMITS, at=START + timedelta(days=20))
        assert (result.decision, result.ready) == ("reassess", False)
        assert all(p.pump_rate_ml_per_h is None for p in result.phases)

    def test_series_complete_without_response_reassesses(self) -> None:
        history = sessions(0.5, 0.5, 0.5, 0.75, 0.75, 0.75, kg=80, scores=[28] * 6)
        assert next_for(history).rule == "reassess-series"

    def test_blocked_escalation_names_the_finding_that_blocked_it(self) -> None:
        # A library whose escalation-step hard limit is 0.2 mg/kg: 0.5 -> 0.75 is refused.
        text = Path("tests/data/limits.toml").read_text(encoding="utf-8")
        strict = text.replace(
            'upper_soft = "0.25 mg/kg"\nupper_hard = "0.5 mg/kg"',
            'upper_soft = "0.1 mg/kg"\nupper_hard = "0.2 mg/kg"',
        )
        assert strict != text
        from ketadose.limits import load_file

        library = load_file(strict.encode(), "strict.toml")
        history = sessions(0.5, 0.5, 0.5, kg=80, scores=NON_RESPONDER)
        result = decide(ENTRY, WOMAN, history, library, at=history[-1].at + timedelta(days=3))
        assert (result.decision, result.rule) == ("hold", "hold-limit")
        assert "escalation" in result.reasons[-1] and "0.2 mg/kg" in result.reasons[-1]
        assert result.total_dose_mg == pytest.approx(40.0)

    def test_absolute_target_counts_as_response(self) -> None:
        target = replace(
            ENTRY,
            protocol=ENTRY.protocol.model_copy(
                update={
                    "response": ENTRY.protocol.response.model_copy(  # type: ignore[union-attr]
                        update={"threshold_pct": None, "target_max": 3.0}
                    )
                }
            ),
        )
        patient = replace(WOMAN, baseline=8)
        at_target = sessions(0.5, 0.5, 0.5, kg=80, scores=[6, 5, 3])
        above = sessions(0.5, 0.5, 0.5, kg=80, scores=[6, 5, 4])
        when = at_target[-1].at + timedelta(days=3)
        assert decide(target, patient, at_target, LIMITS, at=when).rule == "hold-responding"
        assert decide(target, patient, above, LIMITS, at=when).decision == "escalate"

    def test_session_after_the_decision_time_is_refused(self) -> None:
        from ketadose.errors import InputError

        history = sessions(0.5, kg=80)
        with pytest.raises(InputError, match="after"):
            decide(ENTRY, WOMAN, history, LIMITS, at=START - timedelta(days=1))

    def test_every_rule_has_a_source(self) -> None:
        assert len({rule.id for rule in RULES}) == len(RULES)
        assert all(len(rule.source) > 5 and len(rule.text) > 10 for rule in RULES)


SHIPPED = load_library()
SHIPPED_LIMITS = load_limits()


class TestShippedProtocols:
    """Hand-worked histories on the shipped protocols."""

    def test_neuropathic_titration_day_2_is_0_4(self) -> None:
        entry = SHIPPED["neuropathic-pain"]
        patient = PatientRecord("P1", "neuropathic-pain", 6, 80)
        day1 = SessionRecord(
            patient_id="P1",
            at=START,
            protocol="neuropathic-pain",
            dose_mg=0.2 * 4 * 80,
            dose_mg_per_kg=0.8,
            duration_min=240,
        )
        day1 = monitored("neuropathic-pain", day1)
        result = decide(entry, patient, [day1], SHIPPED_LIMITS, at=START + timedelta(days=1))
        assert (result.decision, result.rule) == ("titrate", "titrate")
        # 0.4 mg/kg/h for 4 h on 80 kg = 128 mg
        assert result.total_dose_mg == pytest.approx(128.0)
        assert result.phases[0].rate_mg_per_kg_per_h == pytest.approx(0.4)
        untolerated = replace(day1, readings=day1.readings[1:])  # no reading before the dose
        held = decide(entry, patient, [untolerated], SHIPPED_LIMITS, at=START + timedelta(days=1))
        assert held.decision == "hold"
        assert held.total_dose_mg == pytest.approx(64.0)

    def test_depression_futility_after_session_4(self) -> None:
        entry = SHIPPED["depression"]
        patient = PatientRecord("P1", "depression", 30, 80)
        history = sessions(0.5, 0.5, 0.5, 0.75, kg=80, scores=[29, 28, 28, 27])
        when = history[-1].at + timedelta(days=3)
        # The MADRS of the day after infusion 4 judges it: 27 is a 10 % fall.
        after = [(history[-1].at + timedelta(days=1), 27.0)]
        result = decide(entry, patient, history, SHIPPED_LIMITS, at=when, scores=after)
        assert (result.decision, result.rule, result.ready) == ("reassess", "futility", False)
        # Scores taken before infusion 4 do not judge it.
        before = decide(entry, patient, history, SHIPPED_LIMITS, at=when)
        assert before.rule != "futility"

    def test_migraine_steps_within_the_stay(self) -> None:
        entry = SHIPPED["migraine"]
        patient = PatientRecord("P1", "migraine", 8, 70)
        first = SessionRecord(
            patient_id="P1",
            at=START,
            protocol="migraine",
            dose_mg=0.1 * 4 * 70,
            dose_mg_per_kg=0.4,
            duration_min=240,
            score=7.0,
        )
        first = monitored("migraine", first)
        result = decide(entry, patient, [first], SHIPPED_LIMITS, at=START + timedelta(hours=4))
        assert (result.decision, result.rule) == ("titrate", "titration-step-up")
        assert result.phases[0].rate_mg_per_kg_per_h == pytest.approx(0.2)
        assert result.phases[0].rate_mg_per_h == pytest.approx(14.0)
        at_target = replace(first, score=3.0)
        held = decide(entry, patient, [at_target], SHIPPED_LIMITS, at=START + timedelta(hours=4))
        assert held.decision == "hold"
        assert held.phases[0].rate_mg_per_kg_per_h == pytest.approx(0.1)


class TestHistoryFile:
    """History files are read by the same rules as the store: nothing guessed."""

    def write(self, tmp_path: Path, events: object) -> Path:
        path = tmp_path / "h.json"
        path.write_text(
            json.dumps(
                {
                    "patient": {
                        "id": "P1",
                        "protocol": "depression",
                        "baseline": 30,
                        "weight_kg": 80,
                    },
                    "sessions": [
                        {"date": "2026-11-02T09:00", "total_dose_mg": 40, "adverse_events": events}
                    ],
                }
            ),
            encoding="utf-8",
        )
        return path

    @pytest.mark.parametrize(
        ("events", "message"),
        [
            (["severe dissociation"], "no grade"),
            (["dissociation (severe)"], "no grade"),
            ("dissociation:severe", "must be a list"),
            (["dissociation:awful"], "unknown grade"),
            (["wobbles:mild"], "not in the adverse-event vocabulary"),
            ([3], "is text"),
        ],
    )
    def test_unreadable_events_are_refused(
        self, tmp_path: Path, events: object, message: str
    ) -> None:
        from ketadose.errors import InputError

        with pytest.raises(InputError, match=message):
            read_history_file(self.write(tmp_path, events), "P1", ZONE)

    def test_graded_events_read(self, tmp_path: Path) -> None:
        _, read, _ = read_history_file(
            self.write(tmp_path, ["Dissociation: Severe", "high blood pressure:moderate"]),
            "P1",
            ZONE,
        )
        assert read[0].adverse_events == (
            AdverseEvent("dissociation", Grade.SEVERE),
            AdverseEvent("hypertension", Grade.MODERATE),
        )


def _amount(session: SessionRecord) -> float:
    return session.planned_dose_mg_per_kg or session.dose_mg_per_kg or 0.0


class TestProperties:
    """Over generated histories on the shipped depression protocol and limits."""

    @given(history=session_histories("depression"), days=st.integers(2, 20))
    @settings(max_examples=150)
    def test_next_is_safe_by_construction(
        self, history: tuple[PatientRecord, list[SessionRecord]], days: int
    ) -> None:
        patient, given_sessions = history
        entry = SHIPPED["depression"]
        at = (given_sessions[-1].at if given_sessions else START) + timedelta(days=days)
        result = decide(entry, patient, given_sessions, SHIPPED_LIMITS, at=at)
        # Never a programme past a hard limit, never ready with one; a withheld decision is
        # never ready.
        if result.status == "hard":
            assert not result.ready
            assert all(p.pump_rate_ml_per_h is None for p in result.phases)
        if result.decision not in GOES_AHEAD:
            assert not result.ready
            assert all(p.pump_rate_ml_per_h is None for p in result.phases)
        if not given_sessions or result.dose_mg_per_kg is None:
            return
        last = given_sessions[-1]
        given_amount = _amount(last)
        ladder = [0.5, 0.75]
        # Never more than one rung up.
        above = [rung for rung in ladder if rung > given_amount * (1 + LEVEL_TOLERANCE)]
        ceiling = min(above) if above else given_amount
        assert result.dose_mg_per_kg <= ceiling * (1 + LEVEL_TOLERANCE)
        # Never up after a session that was not tolerated on evidence.
        if not tolerability(entry.protocol, SHIPPED_LIMITS, last).escalation_allowed:
            assert result.dose_mg_per_kg <= given_amount * (1 + LEVEL_TOLERANCE)
        # Hold never changes the dose, on its basis.
        if result.decision == "hold":
            assert result.dose_mg_per_kg == pytest.approx(given_amount, rel=LEVEL_TOLERANCE)
            basis = last.basis_kg
            assert basis is not None and result.total_dose_mg is not None
            assert result.total_dose_mg == pytest.approx(result.dose_mg_per_kg * basis)

    @given(history=session_histories("depression", max_sessions=5))
    @settings(max_examples=40)
    def test_store_and_history_file_give_the_same_answer(
        self,
        tmp_path_factory: pytest.TempPathFactory,
        history: tuple[PatientRecord, list[SessionRecord]],
    ) -> None:
        patient, given_sessions = history
        folder = tmp_path_factory.mktemp("same")
        with Store.open(folder / "s.sqlite3", zone=ZONE) as db:
            db.add_patient(patient, at=START - timedelta(days=30))
            for session in given_sessions:
                db.record_session(session)
            stored_patient, stored = db.patient(patient.id), db.sessions(patient.id)
        path = folder / "h.json"
        path.write_text(history_json(stored_patient, stored), encoding="utf-8")
        file_patient, from_file, _ = read_history_file(path, patient.id, ZONE)
        at = (given_sessions[-1].at if given_sessions else START) + timedelta(days=3)
        entry = SHIPPED["depression"]
        a = decide(entry, stored_patient, stored, SHIPPED_LIMITS, at=at)
        b = decide(entry, file_patient, from_file, SHIPPED_LIMITS, at=at)
        # The same document: a history file holds numbers to 15 significant digits, as every
        # JSON output does, so the answers are compared as documents.
        assert document(a) == document(b)


# A 95 kg, 165 cm woman, worked by hand: ideal 45.5 + 2.3 x (165 / 2.54 - 60) = 56.909449 kg;
# adjusted 56.909449 + 0.4 x (95 - 56.909449) = 72.145669 kg; lean 9270 x 95 /
# (8780 + 244 x 34.894399) = 50.921042 kg.
WOMAN_95 = {
    WeightPolicy.ACTUAL: 95.0,
    WeightPolicy.IDEAL: 56.909449,
    WeightPolicy.ADJUSTED: 72.145669,
    WeightPolicy.LEAN: 50.921042,
}


def _programme_mg(protocol_id: str, kg: float, rate_per_kg_h: float | None = None) -> float:
    """A protocol's session total for a dosing weight, from its phases: dose x kg, or rate x kg
    (within the phase's mg/h cap) x hours; a rate may be replaced (a titration rung)."""
    total = 0.0
    for phase in SHIPPED[protocol_id].protocol.phases:
        if phase.dose is not None:
            total += phase.dose.value * (kg if phase.per_kg else 1.0)
            continue
        assert phase.rate is not None and phase.duration is not None
        per_kg = rate_per_kg_h if rate_per_kg_h is not None else phase.rate.value
        mg_per_h = per_kg * kg
        if phase.cap is not None:
            mg_per_h = min(mg_per_h, phase.cap.value)
        total += mg_per_h * phase.duration.value / 60
    return total


def _first_session(protocol_id: str, policy: WeightPolicy, **extra: object) -> SessionRecord:
    kg = WOMAN_95[policy]
    mg = _programme_mg(protocol_id, kg)
    weight_based = SHIPPED[protocol_id].protocol.weight_based
    phases = SHIPPED[protocol_id].protocol.phases
    session = SessionRecord(
        patient_id="P1",
        at=START,
        protocol=protocol_id,
        dose_mg=mg,
        dose_mg_per_kg=mg / kg if weight_based else None,
        duration_min=sum(p.duration.value for p in phases if p.duration) or None,
        weight_policy=policy.value if weight_based else None,
        dosing_weight_kg=kg if weight_based else None,
        planned_dose_mg=mg,
        planned_dose_mg_per_kg=mg / kg if weight_based else None,
        **extra,  # type: ignore[arg-type]
    )
    return monitored(protocol_id, session)


class TestEveryProtocol:
    """Hand-worked first sessions of every shipped protocol, on every weight policy."""

    PATIENT = PatientRecord("P1", "x", 30, 95, 165, "female")

    def next_after(self, protocol_id: str, session: SessionRecord, hours: float) -> NextSession:
        patient = replace(self.PATIENT, protocol=protocol_id)
        if protocol_id == "migraine":
            hours = 4  # the next rung of the stay, not days later
        return decide(
            SHIPPED[protocol_id], patient, [session], SHIPPED_LIMITS,
            at=START + timedelta(hours=hours),
        )  # fmt: skip

    @pytest.mark.parametrize("policy", list(WeightPolicy))
    @pytest.mark.parametrize("protocol_id", list(SHIPPED))
    def test_after_a_tolerated_first_session(self, protocol_id: str, policy: WeightPolicy) -> None:
        protocol = SHIPPED[protocol_id].protocol
        kg = WOMAN_95[policy]
        result = self.next_after(protocol_id, _first_session(protocol_id, policy), 72)
        if protocol_id == "neuropathic-pain":  # the scheduled titration: 0.2 -> 0.4 mg/kg/h
            expected, decision = _programme_mg(protocol_id, kg, 0.4), "titrate"
        elif protocol_id == "anxiety-sc":  # Glue's scheduled ladder: 0.25 -> 0.5 mg/kg SC
            expected, decision = 0.5 * kg, "titrate"
        elif protocol_id == "migraine":  # within the stay: no pain score since the rung
            expected, decision = _programme_mg(protocol_id, kg), "hold"
        elif protocol.series.sessions == 1:  # a one-session series is complete: reassess
            expected, decision = _programme_mg(protocol_id, kg), "reassess"
        else:  # too few sessions, or no score: hold, the same dose
            expected, decision = _programme_mg(protocol_id, kg), "hold"
        assert result.decision == decision
        assert result.total_dose_mg == pytest.approx(expected)
        if protocol.weight_based:
            assert result.dose_mg_per_kg == pytest.approx(expected / kg)
            assert result.basis.dosing_weight_kg == pytest.approx(kg)
        if decision == "reassess":
            assert not result.ready

    @pytest.mark.parametrize("policy", [WeightPolicy.ACTUAL, WeightPolicy.ADJUSTED])
    @pytest.mark.parametrize("protocol_id", list(SHIPPED))
    def test_severe_and_ungraded_events(self, protocol_id: str, policy: WeightPolicy) -> None:
        severe = _first_session(protocol_id, policy, adverse_events=(parse("sedation:severe"),))
        stopped = self.next_after(protocol_id, severe, 72)
        assert (stopped.decision, stopped.ready, stopped.session) == ("stop", False, None)
        ungraded = _first_session(
            protocol_id, policy, adverse_events=(AdverseEvent("nausea", None),)
        )
        review = self.next_after(protocol_id, ungraded, 72)
        assert (review.decision, review.ready) == ("reassess", False)
        assert all(p.pump_rate_ml_per_h is None for p in review.phases)


# --- the one-pass searches against the rescans they replace (issue 15) ------------------------

# Moments around the night clocks go back in Berlin, on a half-hour grid (ties and exact
# 7-day edges are common) or off it by seconds, in one of several zones.
ORIGIN = datetime(2026, 10, 22, 9, 0, tzinfo=ZONE)
MOMENT_ZONES = (ZONE, UTC, timezone(timedelta(hours=-5)))
offsets = st.one_of(
    st.integers(-21 * 48, 21 * 48).map(lambda n: timedelta(minutes=30 * n)),
    st.integers(-21 * 86_400, 21 * 86_400).map(lambda s: timedelta(seconds=s)),
)
moments = st.tuples(offsets, st.sampled_from(MOMENT_ZONES)).map(
    lambda pair: shift(ORIGIN, pair[0]).astimezone(pair[1])
)


def _old_earliest(
    gap: timedelta, cap: int, sessions: list[SessionRecord], at: datetime
) -> datetime:
    earliest = at
    if sessions:
        earliest = max(at, shift(sessions[-1].at, gap).astimezone(at.tzinfo), key=instant)
    while len([s for s in sessions if elapsed(earliest, s.at) < timedelta(days=7)]) >= cap:
        earliest = shift(earliest, timedelta(hours=1))
    return earliest


def _old_with_scores(
    sessions: list[SessionRecord],
    scores: Sequence[tuple[datetime, float]],
    at: datetime | None = None,
) -> list[SessionRecord]:
    if not scores:
        return sessions
    taken = sorted(
        (pair for pair in scores if at is None or instant(pair[0]) <= instant(at)),
        key=lambda pair: instant(pair[0]),
    )
    scored = []
    for index, session in enumerate(sessions):
        start = instant(session.at) - SCORE_LEAD
        end = instant(sessions[index + 1].at) - SCORE_LEAD if index + 1 < len(sessions) else None
        own = [
            (instant(when), total)
            for when, total in taken
            if start <= instant(when) and (end is None or instant(when) < end)
        ]
        if session.score is not None:
            own.append((instant(session.at), session.score))
        if own:
            session = replace(session, score=max(own, key=lambda pair: pair[0])[1])
        scored.append(session)
    return scored


def _given(taken: list[datetime], scores: list[float | None]) -> list[SessionRecord]:
    return sorted(
        (
            SessionRecord(patient_id="P1", at=m, protocol="depression", dose_mg=35.0, score=score)
            for m, score in zip(taken, scores, strict=False)
        ),
        key=lambda s: instant(s.at),
    )


class TestEarliestInOnePass:
    """``next``'s earliest date is the one the hour-by-hour rescan found."""

    @given(
        st.lists(moments, max_size=12),
        st.integers(1, 4),
        st.integers(0, 72).map(lambda h: timedelta(hours=h)),
        offsets,
    )
    def test_same_date(
        self, taken: list[datetime], cap: int, gap: timedelta, after: timedelta
    ) -> None:
        """Same moment and zone for any history, weekly cap and minimum interval."""
        sessions = _given(taken, [None] * len(taken))
        at = shift(sessions[-1].at, abs(after)) if sessions else ORIGIN
        at = at.astimezone(ZONE)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(escalation, "minimum_gap", lambda *_: gap)
            patch.setattr(escalation, "weekly_cap", lambda *_: cap)
            found = escalation._earliest(ENTRY, LIMITS, sessions, at)
        expected = _old_earliest(gap, cap, sessions, at)
        assert (found, found.tzinfo, found.utcoffset()) == (
            expected,
            expected.tzinfo,
            expected.utcoffset(),
        )


class TestScoresInOnePass:
    """Each session gets the score the rescan of every score gave it."""

    @given(
        st.lists(moments, max_size=12),
        st.lists(st.one_of(st.none(), st.floats(0, 60)), min_size=12, max_size=12),
        st.lists(st.tuples(moments, st.floats(0, 60)), max_size=20),
        st.one_of(st.none(), moments),
    )
    def test_same_scores(
        self,
        taken: list[datetime],
        own: list[float | None],
        scores: list[tuple[datetime, float]],
        at: datetime | None,
    ) -> None:
        """Same sessions and scores, ties and the 12-h lead at its edges included."""
        sessions = _given(taken, own)
        # Scores exactly at a session's 12-h lead, and a second either side of it.
        scores += [
            (shift(s.at, -SCORE_LEAD + timedelta(seconds=d)), 10.0 + d)
            for s in sessions[:3]
            for d in (-1, 0, 1)
        ]
        assert with_scores(sessions, scores, at) == _old_with_scores(sessions, scores, at)
