"""The next session: start, escalate, hold, reduce or reassess, from the history and the rules.

Pure. The dose levels of a protocol are its programme (level 0) and each escalation step in
order (levels 1, 2, ...). The rules, in order of precedence:

1. a gap since the last session longer than the protocol's ``rules.max_gap``: **reassess**;
2. the last session poorly tolerated (a soft or hard during-session vital-sign finding, or an
   adverse event marked severe): **reduce** one level, or **reassess** at level 0;
3. the induction series complete without response: **reassess**;
4. responding (improvement from baseline at or above the response threshold): **hold**;
5. ``rules.sessions_per_step`` sessions at the current level, tolerated, below the threshold:
   **escalate** one level, never past the last step;
6. otherwise (too few sessions at this level, or no score to judge by): **hold**.

The recommended dose is then checked like any other, with the history for the series limits;
an escalation that would cross a hard limit (or the library's escalation step) is not
recommended: the decision falls back to **hold** and says why.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from pydantic import AwareDatetime

from ketadose.clock import aware, elapsed, instant, shift
from ketadose.dosing import DoseRequest, at_step, session_dose
from ketadose.gate import Prepared, Verdict, checked, prepare_session, seal
from ketadose.gate import decide as gate_decide
from ketadose.limits import LimitLibrary, check_vitals
from ketadose.models import (
    CheckContext,
    Finding,
    Patient,
    PhaseDose,
    PreviousSession,
    Real,
    Sealed,
    SessionDose,
    Severity,
    Status,
    Vitals,
)
from ketadose.planning import minimum_gap, weekly_cap
from ketadose.protocols import EscalationStep, ProtocolEntry
from ketadose.records import PatientRecord, SessionRecord, improvement_pct
from ketadose.units import format_number

Decision = Literal["start", "escalate", "hold", "reduce", "reassess"]
DEFAULT_SESSIONS_PER_STEP = 3
#: Tolerance when matching a given dose to a protocol level (rounding of drawn volumes).
LEVEL_TOLERANCE = 0.02


class NextSession(Sealed):
    """The ``next --json`` document (plus ``schema_version``); only the gate makes one."""

    patient_id: str
    protocol: str
    decision: Decision
    reasons: tuple[str, ...]
    level: int
    sessions_given: int
    improvement_pct: Real | None
    earliest_date: AwareDatetime
    dose_mg_per_kg: Real | None
    total_dose_mg: Real
    phases: tuple[PhaseDose, ...]
    findings: tuple[Finding, ...]
    status: Status
    ready: bool
    session: SessionDose


@dataclass(frozen=True, slots=True)
class _Level:
    number: int
    step: EscalationStep | None
    mg_per_kg: float | None
    mg: float


def decide(
    entry: ProtocolEntry,
    patient: PatientRecord,
    history: list[SessionRecord],
    limits: LimitLibrary,
    *,
    at: datetime,
    base: DoseRequest | None = None,
) -> NextSession:
    """Recommend the next session for a patient.

    Args:
        entry: The patient's protocol.
        patient: The patient (baseline score, latest weight and height).
        history: Sessions given, any order.
        limits: The limit library.
        at: The earliest time the next session could be (usually now).
        base: Dose options (vial, bag, rounding); the patient fields are taken from
            ``patient``.

    Returns:
        The decision, its reasons, the recommended dose (checked) and the earliest date.
    """
    protocol = entry.protocol
    aware(at, "the time of the next session")
    sessions = sorted(history, key=lambda s: instant(aware(s.at, "a session given")))
    request = replace(base or DoseRequest(patient=Patient()), patient=patient.as_patient())
    levels = _levels(entry, request)
    reasons: list[str] = []
    if not sessions:
        decision: Decision = "start"
        level = 0
        reasons.append("no session given yet: start at the protocol's programme")
    else:
        decision, level = _rule(entry, patient, sessions, levels, limits, at, reasons)

    earliest = _earliest(entry, limits, sessions, at)
    previous = tuple(
        PreviousSession(at=s.at, dose_mg=s.dose_mg, dose_mg_per_kg=s.dose_mg_per_kg)
        for s in sessions
    )
    context = CheckContext(at=earliest, history=previous)

    def through_gate(number: int) -> tuple[Prepared, Verdict]:
        prepared = prepare_session(entry, _at_level(request, levels[number]), limits)
        return prepared, gate_decide(prepared, limits, context)

    prepared, decided = through_gate(level)
    if decision == "escalate" and (decided.status == "hard" or _step_too_big(decided.findings)):
        worst = next(f for f in decided.findings if f.severity is not Severity.INFO)
        reasons.append(f"escalation not recommended: {worst.message}")
        decision, level = "hold", level - 1
        prepared, decided = through_gate(level)
    session = checked(prepared, decided, limits, context)
    return seal(
        NextSession,
        decided,
        patient_id=patient.id,
        protocol=protocol.id,
        decision=decision,
        reasons=tuple(reasons),
        level=level,
        sessions_given=len(sessions),
        improvement_pct=_improvement(patient, sessions),
        earliest_date=earliest,
        dose_mg_per_kg=session.total_dose_mg_per_kg,
        total_dose_mg=session.total_dose_mg,
        session=session,
    )


def _levels(entry: ProtocolEntry, request: DoseRequest) -> list[_Level]:
    """Level 0 (the programme) and one level per escalation step, with their total dose."""
    steps = sorted(entry.protocol.escalation, key=lambda s: s.from_session)
    levels = []
    for number, step in enumerate([None, *steps]):
        dosed = session_dose(entry, _at_level(request, _Level(number, step, None, 0)))
        levels.append(_Level(number, step, dosed.total_dose_mg_per_kg, dosed.total_dose_mg))
    return levels


def _at_level(request: DoseRequest, level: _Level) -> DoseRequest:
    return at_step(request, level.step)


def _current_level(session: SessionRecord, levels: list[_Level]) -> int:
    """The level a given session was at: the nearest level dose at or below it."""
    given = session.dose_mg_per_kg if session.dose_mg_per_kg is not None else session.dose_mg

    def amount(level: _Level) -> float:
        value = level.mg_per_kg if session.dose_mg_per_kg is not None else level.mg
        return value if value is not None else level.mg

    at_or_below = [
        level.number for level in levels if amount(level) <= given * (1 + LEVEL_TOLERANCE)
    ]
    return max(at_or_below, default=0)


def _improvement(patient: PatientRecord, sessions: list[SessionRecord]) -> float | None:
    scored = [s for s in sessions if s.score is not None]
    return None if not scored else improvement_pct(patient.baseline, scored[-1].score)


def is_severe(event: str) -> bool:
    """Whether an adverse event is recorded as severe (``dissociation:severe``)."""
    return event.rpartition(":")[2].strip().lower() == "severe"


def _intolerance(session: SessionRecord, entry: ProtocolEntry, limits: LimitLibrary) -> str | None:
    """Why a session was poorly tolerated, or None."""
    severe = [ae for ae in session.adverse_events if is_severe(ae)]
    if severe:
        return f"severe adverse event on {session.at:%Y-%m-%d}: {', '.join(severe)}"
    peak = session.bp_peak
    vitals = Vitals(
        systolic=None if peak is None else peak.systolic,
        diastolic=None if peak is None else peak.diastolic,
        heart_rate=session.heart_rate,
        spo2=session.spo2,
    )
    flagged = check_vitals(limits, entry.protocol.id, entry.protocol.route, vitals, during=True)
    if flagged:
        return f"not tolerated on {session.at:%Y-%m-%d}: {flagged[0].message}"
    return None


def _rule(
    entry: ProtocolEntry,
    patient: PatientRecord,
    sessions: list[SessionRecord],
    levels: list[_Level],
    limits: LimitLibrary,
    at: datetime,
    reasons: list[str],
) -> tuple[Decision, int]:
    protocol = entry.protocol
    last = sessions[-1]
    level = _current_level(last, levels)
    rules = protocol.rules
    per_step = DEFAULT_SESSIONS_PER_STEP if rules is None else rules.sessions_per_step
    if (
        rules is not None
        and rules.max_gap is not None
        and elapsed(at, last.at) > timedelta(minutes=rules.max_gap.value)
    ):
        reasons.append(
            f"{elapsed(at, last.at).days} days since the last session, more than {rules.max_gap}"
        )
        return "reassess", level
    intolerance = _intolerance(last, entry, limits)
    if intolerance is not None:
        reasons.append(intolerance)
        if level == 0:
            reasons.append("already at the protocol's starting dose: review before continuing")
            return "reassess", 0
        reasons.append("reduce one step")
        return "reduce", level - 1
    top = levels[level]
    given = last.dose_mg_per_kg if last.dose_mg_per_kg is not None else last.dose_mg
    planned = top.mg_per_kg if last.dose_mg_per_kg is not None else top.mg
    if planned is not None and given > planned * (1 + LEVEL_TOLERANCE):
        reasons.append(
            f"the last dose ({format_number(given, 0.001)}) was above the protocol's step "
            f"({format_number(planned, 0.001)}): this recommends the step's dose"
        )
    if last.score is None:
        reasons.append("no score at the last session to judge response by: hold the dose")
        return "hold", level
    improvement = _improvement(patient, sessions)
    threshold = None if protocol.response is None else protocol.response.threshold_pct
    if improvement is not None:
        reasons.append(f"improvement {format_number(improvement, 0.1)}% from baseline")
    responding = improvement is not None and threshold is not None and improvement >= threshold
    if len(sessions) >= protocol.series.sessions and not responding:
        reasons.append(f"induction series of {protocol.series.sessions} complete without response")
        return "reassess", level
    if responding:
        reasons.append(f"responding (at or above {format_number(threshold or 0)}%): hold the dose")
        return "hold", level
    at_level = 0
    for session in reversed(sessions):
        if _current_level(session, levels) != level:
            break
        at_level += 1
    if improvement is None or threshold is None:
        reasons.append("no score to judge response by: hold the dose")
        return "hold", level
    if level + 1 >= len(levels):
        reasons.append("below the response threshold, already at the protocol's top step")
        return "hold", level
    step = levels[level + 1].step
    assert step is not None
    if at_level < per_step:
        reasons.append(f"{at_level} of {per_step} sessions at this dose before escalating")
        return "hold", level
    # Escalation needs every session at this dose tolerated, not only the last one.
    for session in sessions[-at_level:]:
        problem = _intolerance(session, entry, limits)
        if problem is not None:
            reasons.append(f"{problem}: no escalation after a poorly tolerated session")
            return "hold", level
    reasons.append(
        f"below the {format_number(threshold)}% response threshold after {at_level} tolerated "
        f"sessions at this dose: escalate one step ({step.condition})"
    )
    return "escalate", level + 1


def _earliest(
    entry: ProtocolEntry, limits: LimitLibrary, sessions: list[SessionRecord], at: datetime
) -> datetime:
    """The earliest time from ``at`` that keeps the minimum interval and the weekly cap.

    In elapsed time, shown in ``at``'s zone (the clinic's).
    """
    gap = minimum_gap(entry, limits)
    cap = weekly_cap(entry, limits)
    earliest = at
    if sessions:
        earliest = max(at, shift(sessions[-1].at, gap).astimezone(at.tzinfo), key=instant)
    while len([s for s in sessions if elapsed(earliest, s.at) < timedelta(days=7)]) >= cap:
        earliest = shift(earliest, timedelta(hours=1))
    return earliest


def _step_too_big(findings: tuple[Finding, ...]) -> bool:
    return any(
        f.parameter == "series.escalation_step" and f.severity is not Severity.INFO
        for f in findings
    )
