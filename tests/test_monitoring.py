"""ketadose.monitoring: an early stop, the record of a session given, readings and sessions."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ketadose import gate
from ketadose.cli.exits import flag
from ketadose.dosing import DoseRequest
from ketadose.errors import InputError
from ketadose.events import parse as adverse_event
from ketadose.limits import LimitLibrary
from ketadose.limits import load_library as load_limits
from ketadose.models import Patient, SessionDose, Vitals, WeightPolicy
from ketadose.monitoring import (
    READING_LEAD_H,
    answer_readings,
    check_stop,
    session_given,
    session_of,
    within_session,
)
from ketadose.protocols import ProtocolEntry
from ketadose.protocols import load_library as load_protocols
from ketadose.records import BloodPressure, Reading, SessionRecord

BERLIN = ZoneInfo("Europe/Berlin")
START = datetime(2026, 11, 30, 9, 0, tzinfo=BERLIN)


@pytest.fixture(scope="module")
def depression() -> ProtocolEntry:
    return load_protocols(None).get_protocol("depression")


@pytest.fixture(scope="module")
def limits() -> LimitLibrary:
    return load_limits(None)


@pytest.fixture(scope="module")
def checked(depression: ProtocolEntry, limits: LimitLibrary) -> SessionDose:
    """0.5 mg/kg over 40 min at 70 kg: 35 mg."""
    request = DoseRequest(patient=Patient(weight_kg=70.0), policy=WeightPolicy.ACTUAL)
    return gate.session(depression, request, limits)


def minutes(n: float) -> datetime:
    return START + timedelta(minutes=n)


class TestCheckStop:
    """An early stop comes after the start; a reason only with a stop."""

    def test_refusals(self) -> None:
        with pytest.raises(InputError, match=r"^stop time must be after date \(the start\)$"):
            check_stop(START, START)
        with pytest.raises(InputError, match="^stop reason goes with stop time"):
            check_stop(START, None, "nausea")
        check_stop(START, minutes(1), "nausea")
        check_stop(START, None)


class TestSessionGiven:
    """A session in full, or to its early stop: what its programme had delivered by then."""

    def test_in_full(self, checked: SessionDose) -> None:
        record = session_given(
            checked,
            patient_id="P1",
            at=START,
            bp_before=BloodPressure(130, 80),
            peak=Vitals(systolic=150, diastolic=90, heart_rate=95, spo2=96),
            score=20,
            adverse_events=(adverse_event("nausea:mild"),),
            notes="n",
            reported=True,
        )
        assert (record.patient_id, record.protocol, record.at) == ("P1", "depression", START)
        assert record.dose_mg == 35
        assert record.dose_mg_per_kg == 0.5
        assert record.duration_min == 40
        assert (record.planned_dose_mg, record.planned_dose_mg_per_kg) == (35, 0.5)
        assert (record.weight_policy, record.dosing_weight_kg) == ("actual", 70)
        assert (record.heart_rate, record.spo2) == (95, 96)
        assert record.bp_before == BloodPressure(130, 80)
        assert (record.score, record.notes, record.reported) == (20, "n", True)
        assert str(record.adverse_events[0]) == "nausea:mild"
        assert json.loads(record.phases_json)[0]["dose_mg"] == 35
        assert record.stopped_at is None

    def test_stopped_early_records_what_was_delivered(self, checked: SessionDose) -> None:
        record = session_given(
            checked, patient_id="P1", at=START, stopped=minutes(10), stop_reason="nausea"
        )
        # A timed phase delivers evenly: 10 of 40 minutes is a quarter of 35 mg.
        assert record.dose_mg == pytest.approx(8.75)
        assert record.dose_mg_per_kg == pytest.approx(0.125)
        assert record.duration_min == 10
        assert record.planned_dose_mg == 35
        assert (record.stopped_at, record.stop_reason) == (minutes(10), "nausea")

    def test_a_stop_that_is_not_early_is_refused(self, checked: SessionDose) -> None:
        with pytest.raises(InputError) as error:
            session_given(checked, patient_id="P1", at=START, stopped=minutes(40))
        assert error.value.spelled(flag) == (
            "--stop 09:40 is not early: the programme of 40 min ended by then (record the "
            "session without --stop)"
        )
        assert str(error.value).startswith("stop time 09:40 is not early")
        with pytest.raises(InputError, match="^stop time must be after date"):
            session_given(checked, patient_id="P1", at=START, stopped=minutes(-5))


def record(number: int, at: datetime, discharged_at: datetime | None = None) -> SessionRecord:
    return SessionRecord("P1", at, "depression", 35.0, id=number, discharged_at=discharged_at)


class TestSessionOf:
    """--session N, else the latest session started by then (or starting within the lead)."""

    SESSIONS = (record(1, START), record(2, START + timedelta(days=3)))

    def test_by_number_and_by_time(self) -> None:
        assert session_of(self.SESSIONS, "P1", 1, None).id == 1
        assert session_of(self.SESSIONS, "P1", None, None).id == 2
        assert session_of(self.SESSIONS, "P1", None, START + timedelta(days=1)).id == 1
        # The reading before the dose belongs to the session about to start.
        lead = timedelta(hours=READING_LEAD_H)
        assert session_of(self.SESSIONS, "P1", None, START + timedelta(days=3) - lead).id == 2

    def test_refusals(self) -> None:
        with pytest.raises(InputError, match="^patient P1 has no session 7$"):
            session_of(self.SESSIONS, "P1", 7, None)
        with pytest.raises(InputError, match="no session started by then: give session number N"):
            session_of(self.SESSIONS, "P1", None, START - timedelta(hours=3))
        with pytest.raises(InputError, match="no session started by then"):
            session_of((), "P1", None, None)


class TestWithinSession:
    """From the lead before the start to discharge (or the lead after observation's end)."""

    def test_discharged(self, depression: ProtocolEntry) -> None:
        session = record(1, START, discharged_at=minutes(120))
        within_session(
            depression.protocol, session, [Reading(minutes(-120)), Reading(minutes(120))]
        )
        with pytest.raises(InputError) as error:
            within_session(depression.protocol, session, [Reading(minutes(121))])
        assert str(error.value) == (
            "the reading at 2026-11-30 11:01 is not during session 1 (2026-11-30 07:00 to "
            "11:00): record its session first, or give session number N"
        )
        with pytest.raises(InputError, match="the reading at 2026-11-30 06:59"):
            within_session(depression.protocol, session, [Reading(minutes(-121))])


class TestAnswerReadings:
    """Each reading answered for its period; the worst answer decides."""

    def test_answers(self, depression: ProtocolEntry, limits: LimitLibrary) -> None:
        session = record(1, START)
        rows = [
            Reading(minutes(-5), systolic=128, diastolic=82, heart_rate=80, spo2=97),
            Reading(minutes(20), systolic=185, diastolic=100, heart_rate=80, spo2=97),
            Reading(minutes(10), systolic=150, diastolic=90, heart_rate=80, spo2=97),
        ]
        answered = answer_readings(limits, depression.protocol, session, rows)
        assert [r.answer for r in answered.readings] == ["continue", "pause", "continue"]
        assert [r.at for r in answered.readings] == [r.at for r in rows]
        assert answered.readings[1].findings == tuple(f.code for f in answered.flagged[1])
        assert answered.flagged[1] and not answered.flagged[0]
        assert (answered.worst, answered.status) == ("pause", "soft")
        stop = Reading(minutes(30), systolic=205, diastolic=125, heart_rate=80, spo2=97)
        worst = answer_readings(limits, depression.protocol, session, [*rows, stop])
        assert (worst.worst, worst.status) == ("stop", "hard")
