"""Second review of issue 12 (review12b): each test is one defect, with its exact input and the
safe behaviour expected; the last ones guard against mutations the suite did not catch.

Shipped protocols and the shipped example limit library throughout.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, find, settings
from hypothesis.errors import NoSuchExample

from ketadose.monitoring import missing, readiness, schedule, tolerability
from ketadose.records import Reading, SessionRecord
from ketadose.strategies import session_histories
from tests.test_review12 import (
    LIMITS,
    NON_RESPONDER,
    PROTOCOLS,
    START,
    ZONE,
    depression,
    next_for,
    ok,
    run,
)


def fine(at: datetime) -> Reading:
    """A reading in every limit."""
    return Reading(at=at, systolic=130.0, diastolic=80.0, heart_rate=80.0, spo2=98.0)


def on_time(protocol_id: str, session: SessionRecord) -> SessionRecord:
    """The session with one reading in limits exactly at every scheduled time."""
    dues = schedule(PROTOCOLS[protocol_id].protocol, session)
    return replace(session, readings=tuple(fine(d.at) for d in dues))


# --- daylight saving -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "night", [datetime(2026, 3, 29, 0, 0, tzinfo=ZONE), datetime(2026, 10, 25, 0, 0, tzinfo=ZONE)]
)
def test_a_reading_taken_on_time_across_a_clock_change_meets_its_slot(night: datetime) -> None:
    """Input: a migraine rung (inpatient, overnight) of 4 h from 00:00 on the nights the clocks
    change in Europe/Berlin, a reading in limits exactly at every scheduled time.

    Observed: the slot windows are taken in wall-clock time (``at - window``), so on 29 March
    the +120 min slot (03:00 CEST) gets the window 01:50-01:10 UTC (inverted) and on 25 October
    the +180 min slot (02:00 CET) the window of the first 02:00: the reading taken on time is
    MISSING and the rung is 'not in evidence'. Expected: nothing missing.
    """
    session = SessionRecord(
        patient_id="P1", at=night, protocol="migraine", dose_mg=1.0, duration_min=240.0
    )
    session = on_time("migraine", session)
    assert missing(schedule(PROTOCOLS["migraine"].protocol, session)) == ()


# --- observation after an injection ----------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol_id", "minutes"), [("depression-im", 0.0), ("acute-pain", 245.0)]
)
def test_no_discharge_the_minute_dosing_ends(protocol_id: str, minutes: float) -> None:
    """Input: 0.5 mg/kg IM at 09:00 (depression-im), or acute pain's 0.35 mg/kg bolus + 4 h at
    0.1 mg/kg/h (ends 13:05); a reading in limits 1 min after dosing ended; readiness 2 min
    after, criteria confirmed.

    Observed: both protocols ship no ``observation``, so the earliest discharge is the end of
    dosing (the IM patient may leave at 09:02 with the whole dose just injected) and their
    'every 15 min after' schedule asks for no reading at all. Expected: not ready: an
    observation period (the IV protocols' 30 min at least) has to pass.
    """
    session = SessionRecord(
        patient_id="P1",
        at=START,
        protocol=protocol_id,
        dose_mg=40.0,
        duration_min=minutes or None,
        readings=(
            fine(START - timedelta(minutes=5)),
            fine(START + timedelta(minutes=minutes + 1)),
        ),
    )
    ready = readiness(
        PROTOCOLS[protocol_id].protocol,
        LIMITS,
        session,
        START + timedelta(minutes=minutes + 2),
        confirmed=True,
    )
    assert not ready.ready


# --- discharge on a stale reading ------------------------------------------------------------


def test_discharge_needs_the_reading_before_discharge() -> None:
    """Input: CRPS, 4-h infusion at 09:00, every scheduled reading in limits up to the end of
    the infusion (13:00) and none after; readiness at 14:00 (1 h observation over), confirmed.

    Observed: ready ('Ready for discharge'), on a blood pressure an hour old; ``session show``
    lists 'before discharge' as MISSING in the same output. Expected: not ready until a
    reading is taken within the protocol's window before discharge.
    """
    session = SessionRecord(
        patient_id="P1", at=START, protocol="crps", dose_mg=96.0, duration_min=240.0
    )
    full = on_time("crps", session)
    end = START + timedelta(minutes=240)
    session = replace(full, readings=tuple(r for r in full.readings if r.at <= end))
    ready = readiness(
        PROTOCOLS["crps"].protocol, LIMITS, session, end + timedelta(hours=1), confirmed=True
    )
    assert not ready.ready


# --- questionnaires and next -----------------------------------------------------------------


def test_next_is_not_ready_while_a_phq9_item_9_finding_is_unacknowledged() -> None:
    """Input: ``score record P1 --instrument phq9 --items 2,2,2,2,1,1,2,1,2`` before session 1
    (exit 3: 'a safety finding that must be acknowledged'), not acknowledged; ``next P1``.

    Observed: 'HOLD', ``ready: true``, exit 0, the programme shown and nothing said of the
    self-harm answer. Expected: not ready (exit 3) with a reason naming the unacknowledged
    PHQ-9 item 9 finding until ``score acknowledge``.
    """
    ok("patient", "add", "P1", "--protocol", "depression", "--weight", "80kg", "--baseline", "30")
    flagged = run(
        "score", "record", "P1", "--instrument", "phq9", "--items", "2,2,2,2,1,1,2,1,2",
        "--date", "2026-11-30T08:45",
    )  # fmt: skip
    assert flagged.exit_code == 3
    ok("session", "record", "P1", "--date", "2026-11-30T09:00")
    result = run("next", "P1", "--date", "2026-12-02T09:00", "--json")
    data = json.loads(result.stdout)
    assert result.exit_code == 3
    assert data["ready"] is False
    assert any("item 9" in reason for reason in data["reasons"])


def test_history_shows_the_score_next_counts_for_the_session() -> None:
    """Input: baseline 30; ``score record --instrument madrs --total 20`` at 08:40, session at
    09:00 the same day (no ``--score``).

    Observed: ``next`` counts MADRS 20 for the session ('improvement 33.3% from baseline'),
    but ``history`` shows the session with score '-' and improvement '-' (JSON ``score: null``,
    ``improvement_pct: null``): the clinician reviewing the history does not see the score
    the decision was made on. Expected: the session's score in ``history`` is the one ``next``
    uses (20, 33.3 %).
    """
    ok("patient", "add", "P1", "--protocol", "depression", "--weight", "80kg", "--baseline", "30")
    ok("score", "record", "P1", "--instrument", "madrs", "--total", "20",
       "--date", "2026-11-30T08:40")  # fmt: skip
    ok("session", "record", "P1", "--date", "2026-11-30T09:00")
    decided = json.loads(run("next", "P1", "--date", "2026-12-02T09:00", "--json").stdout)
    assert decided["improvement_pct"] == pytest.approx(100 / 3)
    session = json.loads(ok("history", "P1", "--json").stdout)["sessions"][0]
    assert (session["score"], session["improvement_pct"]) == (20, pytest.approx(100 / 3))


# --- the property tests' generator -----------------------------------------------------------


def test_generated_histories_contain_a_tolerated_session() -> None:
    """Input: ``ketadose.strategies.session_histories("depression")``, which
    tests/test_escalation.py TestProperties and tests/test_invariants.py TestNextSession use.

    Observed: no generated history ends in a tolerated session (600 drawn: 225 severe, 142
    not-shown, 115 stop, 24 not-tolerated; the answers are drawn 2 in 5 pause/stop and the
    values 90-210 mmHg, for 11+ readings each), so ``next`` never escalates on them:
    TestNextSession returns before its assertions on every example, and a mutant that
    escalates after an untolerated session, ignores missing readings, treats a reading past a
    soft limit as tolerated or holds after a severe event passes every property. Expected:
    the generator can produce a tolerated last session (and so an escalation).
    """
    entry = PROTOCOLS["depression"]

    def tolerated(history: tuple[Any, list[SessionRecord]]) -> bool:
        sessions = history[1]
        return (
            bool(sessions) and tolerability(entry.protocol, LIMITS, sessions[-1]).escalation_allowed
        )

    try:
        find(
            session_histories("depression"),
            tolerated,
            settings=settings(
                max_examples=1000, database=None, suppress_health_check=list(HealthCheck)
            ),
        )
    except NoSuchExample:
        pytest.fail("session_histories never generates a tolerated session")


# --- guards for mutations no test caught ----------------------------------------------------


def test_a_reading_past_a_soft_limit_blocks_escalation() -> None:
    """Guard (passes today): 3 x 0.5 mg/kg, MADRS 28, 27, 25 from 30, full timelines, the
    last with BP 185/100 at +20 min (past the during-session soft maximum 180 mmHg, under the
    hard 200). Expected: hold, not tolerated. The mutant that drops the 'reading past a soft
    limit' rule from ``tolerability`` passed all 2402 tests of the suite.
    """
    history = depression(0.5, 0.5, 0.5, scores=NON_RESPONDER)
    last = history[-1]
    readings = tuple(
        replace(r, systolic=185.0, diastolic=100.0)
        if r.at == last.at + timedelta(minutes=20)
        else r
        for r in last.readings
    )
    history[-1] = replace(last, readings=readings)
    result = next_for("depression", history)
    assert (result.decision, result.rule) == ("hold", "hold-not-tolerated")
    assert result.dose_mg_per_kg == pytest.approx(0.5)
