"""Around a session: the vitals timeline, an early stop, tolerability, discharge readiness.

The timeline is matched against the protocol's schedule; an early stop gives what was
delivered by then; tolerability is judged on evidence.

Pure: times come in as arguments. Each reading is checked when it is recorded: before the
dose against the pre-session limits, from the start of dosing to discharge against the
during-session limits, and answered continue, pause (a soft limit) or stop (a hard one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from ketadose.clock import elapsed, instant, shift
from ketadose.errors import InputError, InputField
from ketadose.events import Grade
from ketadose.limits import LimitLibrary, check_vitals
from ketadose.models import Finding, PhaseDose, Severity, Vitals
from ketadose.protocols import Cadence, Monitoring, Protocol
from ketadose.records import Answer, Reading, SessionRecord
from ketadose.units import format_number

if TYPE_CHECKING:
    from ketadose.events import AdverseEvent
    from ketadose.models import SessionDose
    from ketadose.records import BloodPressure

#: The sedation scales a protocol may name, with their range (lowest, highest).
SEDATION_SCALES: dict[str, tuple[int, int]] = {
    # Modified Observer's Assessment of Alertness/Sedation: 5 responds readily to name spoken
    # in a normal tone ... 0 no response to a painful stimulus (Chernik DA et al. J Clin
    # Psychopharmacol 1990;10:244-251); the scale the Spravato label measured sedation with.
    "MOAA/S": (0, 5),
}

Period = Literal["before", "during", "after"]


def period(session: SessionRecord, at: datetime) -> Period:
    """Whether a time is before the dose, during the session (to discharge), or after it."""
    if instant(at) < instant(session.at):
        return "before"
    if session.discharged_at is not None and instant(at) > instant(session.discharged_at):
        return "after"
    return "during"


def check_reading(
    limits: LimitLibrary, protocol: Protocol, vitals: Vitals, when: Period
) -> tuple[Answer, tuple[Finding, ...]]:
    """Check one reading and answer it: continue, pause (soft) or stop (hard).

    Before the dose the pre-session limits apply (pause: wait and recheck; stop: do not
    start); from the dose to discharge the during-session limits.
    """
    found = tuple(
        check_vitals(limits, protocol.id, protocol.route, vitals, during=when != "before")
    )
    severities = {f.severity for f in found}
    answer: Answer = (
        "stop"
        if Severity.HARD in severities
        else "pause"
        if Severity.SOFT in severities
        else "continue"
    )
    return answer, found


def delivered_mg(phases: Sequence[PhaseDose], minutes: float) -> float:
    """What a programme has delivered ``minutes`` after it started (phases run in order).

    A phase with a duration delivers its dose evenly over it; one without (an injection, a
    device) all at its start.
    """
    given = 0.0
    start = 0.0
    for phase in phases:
        dose = phase.delivered_dose_mg if phase.delivered_dose_mg is not None else phase.dose_mg
        length = phase.duration_min or 0.0
        if minutes < start:
            break
        given += dose if length <= 0 else dose * min(1.0, (minutes - start) / length)
        start += length
    return given


def check_stop(at: datetime, stopped: datetime | None, stop_reason: str | None = None) -> None:
    """Refuse an early stop that is not after the start, or a reason without a stop.

    Args:
        at: When the session started.
        stopped: When its infusion was stopped early, if it was.
        stop_reason: Why.

    Raises:
        InputError: A stop at or before the start; a reason without a stop.
    """
    if stopped is not None and instant(stopped) <= instant(at):
        raise InputError(InputField.STOP, " must be after ", InputField.DATE, " (the start)")
    if stop_reason is not None and stopped is None:
        raise InputError(
            InputField.STOP_REASON,
            " goes with ",
            InputField.STOP,
            " (when the infusion was stopped)",
        )


def session_given(
    checked: SessionDose,
    *,
    patient_id: str,
    at: datetime,
    stopped: datetime | None = None,
    stop_reason: str | None = None,
    bp_before: BloodPressure | None = None,
    bp_peak: BloodPressure | None = None,
    bp_after: BloodPressure | None = None,
    peak: Vitals | None = None,
    score: float | None = None,
    adverse_events: tuple[AdverseEvent, ...] = (),
    notes: str | None = None,
    reported: bool = False,
) -> SessionRecord:
    """The record of a checked session as given: in full, or to its early stop.

    A session stopped early records what its programme had delivered by the stop (phases in
    order, each evenly over its time) and the stop as its duration, beside the dose planned.

    Args:
        checked: The session as the gate checked it (with the observed vitals).
        patient_id: Whose session.
        at: When it started.
        stopped: When its infusion was stopped early, if it was.
        stop_reason: Why.
        bp_before: Blood pressure before it.
        bp_peak: Highest during it.
        bp_after: At discharge.
        peak: The readings during it (heart rate and SpO2 are recorded from it).
        score: Response score on the protocol's scale.
        adverse_events: Graded events.
        notes: Free notes.
        reported: The adverse events were asked about and are complete as given.

    Returns:
        The record to store.

    Raises:
        InputError: A stop not after the start, or not early (the programme had ended by
            then); a reason without a stop.
    """
    import json

    check_stop(at, stopped, stop_reason)
    weight = checked.dosing_weight
    kg = None if weight is None else weight.kg
    given_mg = checked.delivered_total_mg or checked.total_dose_mg
    given_min = checked.total_duration_min
    if stopped is not None:
        if given_min is not None and elapsed(stopped, at) >= timedelta(minutes=given_min):
            raise InputError(
                InputField.STOP,
                f" {stopped:%H:%M} is not early: the programme of {given_min:g} min ended by "
                "then (record the session without ",
                InputField.STOP,
                ")",
            )
        given_min = elapsed(stopped, at).total_seconds() / 60
        given_mg = delivered_mg(checked.phases, given_min)
    return SessionRecord(
        patient_id=patient_id,
        at=at,
        protocol=checked.protocol.id,
        dose_mg=given_mg,
        dose_mg_per_kg=None if not kg else given_mg / kg,
        duration_min=given_min,
        phases_json=json.dumps([p.model_dump(mode="json") for p in checked.phases]),
        bp_before=bp_before,
        bp_peak=bp_peak,
        bp_after=bp_after,
        heart_rate=None if peak is None else peak.heart_rate,
        spo2=None if peak is None else peak.spo2,
        score=score,
        adverse_events=adverse_events,
        notes=notes,
        reported=reported,
        weight_policy=None if weight is None else weight.basis.value,
        dosing_weight_kg=kg,
        planned_dose_mg=checked.total_dose_mg,
        planned_dose_mg_per_kg=checked.total_dose_mg_per_kg,
        stopped_at=stopped,
        stop_reason=stop_reason,
    )


#: Hours before its start that a reading still belongs to a session (the reading before dosing),
#: and after the end of its observation (when no discharge is recorded).
READING_LEAD_H = 2


def session_of(
    sessions: Sequence[SessionRecord], patient_id: str, number: int | None, at: datetime | None
) -> SessionRecord:
    """Session ``number``, else the latest started by ``at`` or starting soon after it.

    A reading up to :data:`READING_LEAD_H` hours before a session's start belongs to that
    session (the reading before the dose).

    Args:
        sessions: The patient's sessions, in time order.
        patient_id: Whose (for messages).
        number: The session's number (``--session N``), if given.
        at: When (None: the latest session of all).

    Returns:
        The session.

    Raises:
        InputError: No session of that number, or none started by then.
    """
    if number is not None:
        found = [s for s in sessions if s.id == number]
        if not found:
            raise InputError(f"patient {patient_id} has no session {number}")
        return found[0]
    lead = timedelta(hours=READING_LEAD_H)
    started = [s for s in sessions if at is None or instant(s.at) - lead <= instant(at)]
    if not started:
        raise InputError(
            f"patient {patient_id} has no session started by then: give ",
            InputField.SESSION_NUMBER,
            " N",
        )
    return started[-1]


def within_session(protocol: Protocol, session: SessionRecord, readings: Sequence[Reading]) -> None:
    """Refuse a reading that falls outside a session: it is never filed under another one.

    A session's readings run from :data:`READING_LEAD_H` hours before its start to its
    discharge, or, not yet discharged, that long after the end of its observation.

    Args:
        protocol: The session's protocol (its observation).
        session: The session.
        readings: The readings.

    Raises:
        InputError: For the first reading outside it.
    """
    lead = timedelta(hours=READING_LEAD_H)
    first = shift(session.at, -lead)
    last = session.discharged_at or shift(observation_end(protocol, session), lead)
    for reading in readings:
        if not instant(first) <= instant(reading.at) <= instant(last):
            raise InputError(
                f"the reading at {reading.at:%Y-%m-%d %H:%M} is not during session {session.id} "
                f"({first:%Y-%m-%d %H:%M} to {last:%H:%M}): record its session first, or give ",
                InputField.SESSION_NUMBER,
                " N",
            )


#: The answers to readings, mildest first.
ANSWERS: tuple[Answer, ...] = ("continue", "pause", "stop")


@dataclass(frozen=True, slots=True)
class Answered:
    """Readings checked for one session: each as stored, its answer and what it crossed.

    Attributes:
        readings: The readings to store, each with its answer and the codes it crossed.
        flagged: For each reading, its findings above ``info``.
        worst: The most severe answer of all.
    """

    readings: tuple[Reading, ...]
    flagged: tuple[tuple[Finding, ...], ...]
    worst: Answer

    @property
    def status(self) -> str:
        """The audit status of the worst answer: ``ok``, ``soft`` (pause) or ``hard`` (stop)."""
        return {"continue": "ok", "pause": "soft", "stop": "hard"}[self.worst]


def answer_readings(
    limits: LimitLibrary,
    protocol: Protocol,
    session: SessionRecord,
    rows: Sequence[Reading],
) -> Answered:
    """Check each reading of a session against the limits for its period and answer it.

    Args:
        limits: The limit library.
        protocol: The session's protocol.
        session: The session the readings belong to (see :func:`within_session`).
        rows: The readings as parsed (answered ``continue``), at least one.

    Returns:
        The readings with their answers, and the worst.
    """
    readings = []
    flagged = []
    for row in rows:
        answer, found = check_reading(limits, protocol, row.vitals, period(session, row.at))
        crossed = tuple(f for f in found if f.severity.value != "info")
        readings.append(replace(row, answer=answer, findings=tuple(f.code for f in crossed)))
        flagged.append(crossed)
    worst = max((r.answer for r in readings), key=ANSWERS.index)
    return Answered(readings=tuple(readings), flagged=tuple(flagged), worst=worst)


def infusion_end(session: SessionRecord) -> datetime:
    """When dosing ended: the early stop, or the start plus the programme's duration."""
    if session.stopped_at is not None:
        return session.stopped_at
    return shift(session.at, timedelta(minutes=session.duration_min or 0.0))


def observation_end(protocol: Protocol, session: SessionRecord) -> datetime:
    """The earliest discharge: the end of dosing plus the protocol's minimum observation."""
    minimum = 0.0 if protocol.observation is None else protocol.observation.minimum.value
    return shift(infusion_end(session), timedelta(minutes=minimum))


@dataclass(frozen=True, slots=True)
class Due:
    """One scheduled reading and the reading that met it (None: missing).

    Attributes:
        label: ``before``, ``during +10 min``, ``after +15 min``, ``at 40 min``,
            ``before discharge``.
        at: The scheduled time (for ``before``, the start of dosing).
        earliest: The earliest time a reading counts for it.
        latest: The latest time.
        reading: The reading that met it.
    """

    label: str
    at: datetime
    earliest: datetime
    latest: datetime
    reading: Reading | None


def _ticks(cadences: Sequence[Cadence], length_min: float) -> list[float]:
    """Minutes into a period at which a cadence schedules a reading (the end included)."""
    ticks: list[float] = []
    offset = 0.0
    for cadence in cadences:
        span = length_min - offset if cadence.span is None else cadence.span.value
        stop = min(length_min, offset + span)
        t = offset + cadence.every.value
        while t <= stop + 1e-9:
            ticks.append(t)
            t += cadence.every.value
        offset = stop
        if offset >= length_min:
            break
    return ticks


def schedule(protocol: Protocol, session: SessionRecord) -> tuple[Due, ...]:
    """The protocol's scheduled readings for a session, each with the reading that met it.

    A reading meets at most one scheduled time (the nearest unmet one in its window), so
    one reading cannot stand for several; only the reading before discharge may also be the
    last one scheduled after the infusion.
    """
    monitoring = protocol.monitoring
    if monitoring is None:
        return ()
    start = session.at
    end = infusion_end(session)
    leave = observation_end(protocol, session)
    window = timedelta(minutes=monitoring.window.value)

    def around(at: datetime) -> tuple[datetime, datetime]:
        # Elapsed time either side: wall-clock arithmetic is an hour off across a clock change.
        return shift(at, -window), shift(at, window)

    slots: list[tuple[str, datetime, datetime, datetime]] = []
    if monitoring.before:
        slots.append(
            (
                "before",
                start,
                shift(start, -timedelta(minutes=monitoring.before_within.value)),
                start,
            )
        )
    during = elapsed(end, start).total_seconds() / 60
    for minute in _ticks(monitoring.during, during):
        at = shift(start, timedelta(minutes=minute))
        slots.append((f"during +{format_number(minute)} min", at, *around(at)))
    after = elapsed(leave, end).total_seconds() / 60
    for minute in _ticks(monitoring.after, after):
        at = shift(end, timedelta(minutes=minute))
        slots.append((f"after +{format_number(minute)} min", at, *around(at)))
    for fixed in monitoring.at:
        at = shift(start, timedelta(minutes=fixed.value))
        slots.append((f"at {fixed}", at, *around(at)))
    if monitoring.before_discharge:
        discharge = session.discharged_at or leave
        slots.append(("before discharge", discharge, shift(discharge, -window), discharge))
    slots.sort(key=lambda slot: instant(slot[1]))
    return _match(slots, session.readings)


def _match(
    slots: list[tuple[str, datetime, datetime, datetime]], readings: Sequence[Reading]
) -> tuple[Due, ...]:
    used: set[int] = set()
    dues = []
    for label, at, earliest, latest in slots:
        # The reading before discharge may be the last scheduled one after the infusion.
        shared = label == "before discharge"
        # The schedule is a blood-pressure schedule: a reading without one does not meet it.
        candidates = [
            (abs(elapsed(r.at, at)), index)
            for index, r in enumerate(readings)
            if r.systolic is not None
            and (shared or index not in used)
            and instant(earliest) <= instant(r.at) <= instant(latest)
        ]
        chosen = min(candidates, default=None)
        reading = None
        if chosen is not None:
            used.add(chosen[1])
            reading = readings[chosen[1]]
        dues.append(Due(label, at, earliest, latest, reading))
    return tuple(dues)


def missing(dues: Sequence[Due]) -> tuple[Due, ...]:
    """The scheduled readings no reading met."""
    return tuple(due for due in dues if due.reading is None)


Tolerance = Literal["tolerated", "not-shown", "not-tolerated", "ungraded", "severe", "stop"]


@dataclass(frozen=True, slots=True)
class Tolerability:
    """What a session shows about tolerability, and why.

    ``kind`` in order of gravity: ``tolerated`` (evidence: the scheduled readings present,
    none past a soft during-session limit, no adverse event of moderate grade or worse);
    ``not-shown`` (readings missing, so tolerability is not in evidence); ``not-tolerated``
    (a moderate event or a reading past a soft limit); ``ungraded`` (an event without a
    grade); ``severe`` (a severe event, a reading past a hard limit, or the infusion stopped
    early); ``stop`` (a life-threatening event).
    """

    kind: Tolerance
    reason: str

    @property
    def escalation_allowed(self) -> bool:
        """Whether the session is evidence enough to raise the dose."""
        return self.kind == "tolerated"


def tolerability(protocol: Protocol, limits: LimitLibrary, session: SessionRecord) -> Tolerability:
    """Judge one session's tolerability from what was recorded, never from its absence."""
    day = f"{session.at:%Y-%m-%d}"
    worst = max(
        (event for event in session.adverse_events if event.grade is not None),
        key=lambda event: event.grade or 0,
        default=None,
    )
    grade = None if worst is None else worst.grade
    if grade is Grade.LIFE_THREATENING:
        return Tolerability("stop", f"life-threatening adverse event on {day}: {worst}")
    if grade is Grade.SEVERE:
        return Tolerability("severe", f"severe adverse event on {day}: {worst}")
    # Each reading is answered again against the limits in effect: a stored or written answer
    # is never trusted to be the safe one (a history file may say "continue" for 250/140).
    answered = [
        (r, _worse(r.answer, check_reading(limits, protocol, r.vitals, period(session, r.at))))
        for r in session.readings
    ]
    stopped = [r for r, answer in answered if answer == "stop"]
    if stopped:
        return Tolerability(
            "severe",
            f"a reading on {day} at {stopped[0].at:%H:%M} was past a hard during-session limit "
            f"({', '.join(stopped[0].findings)})",
        )
    summary = _summary(session)
    # Every summary value recorded is checked, even when the others were not: a lowest SpO2
    # of 80 % is past a limit whether or not the peak blood pressure was written down.
    recorded = _recorded_summary(session)
    summary_findings = (
        ()
        if recorded is None
        else tuple(check_vitals(limits, protocol.id, protocol.route, recorded, during=True))
    )
    hard = [f for f in summary_findings if f.severity is Severity.HARD]
    if hard:
        return Tolerability("severe", f"not tolerated on {day}: {hard[0].message}")
    if session.stopped_at is not None:
        why = f": {session.stop_reason}" if session.stop_reason else ""
        return Tolerability(
            "severe", f"the infusion on {day} was stopped early at {session.stopped_at:%H:%M}{why}"
        )
    ungraded = [e for e in session.adverse_events if e.grade is None]
    if ungraded:
        return Tolerability(
            "ungraded",
            f"adverse event {ungraded[0].term!r} on {day} was recorded without a grade: "
            "grade it before the next dose is decided",
        )
    if grade is Grade.MODERATE:
        return Tolerability("not-tolerated", f"moderate adverse event on {day}: {worst}")
    paused = [r for r, answer in answered if answer == "pause"]
    if paused:
        return Tolerability(
            "not-tolerated",
            f"a reading on {day} at {paused[0].at:%H:%M} was past a soft limit "
            f"({', '.join(paused[0].findings)})",
        )
    soft = [f for f in summary_findings if f.severity is Severity.SOFT]
    if soft:
        return Tolerability("not-tolerated", f"not tolerated on {day}: {soft[0].message}")
    if protocol.setting == "take-home":
        # Taken away from the clinic: the patient's report of adverse events decides. Vitals
        # recorded (checked above) can only hold a dose back: in limits, they say nothing of
        # the nausea or dissociation that only the patient can report.
        if not session.reported:
            return Tolerability(
                "not-shown",
                f"the take-home dose of {day} has no report: record the patient's report of "
                "adverse events (session record --reported) before the next dose is decided",
            )
        return Tolerability(
            "tolerated",
            f"tolerated on {day}: the patient reported "
            + ("no adverse event" if not session.adverse_events else "mild adverse events only"),
        )
    if session.readings:
        gaps = missing(schedule(protocol, session))
        if protocol.monitoring is None and not any(
            period(session, r.at) == "during" for r in session.readings
        ):
            return Tolerability("not-shown", f"no reading during the session on {day}")
        if gaps:
            labels = ", ".join(due.label for due in gaps[:4])
            more = f" and {len(gaps) - 4} more" if len(gaps) > 4 else ""
            return Tolerability(
                "not-shown",
                f"{len(gaps)} scheduled reading(s) missing on {day} ({labels}{more}): "
                "tolerability is not in evidence",
            )
        return Tolerability("tolerated", f"tolerated on {day}: every scheduled reading in limits")
    if protocol.monitoring is not None:
        return Tolerability(
            "not-shown",
            f"no timed readings on {day}: the protocol's monitoring schedule is not in evidence"
            + ("" if summary is None else " (summary vitals alone are not the schedule)"),
        )
    if summary is None:
        return Tolerability(
            "not-shown",
            f"no vital signs recorded during the session on {day} (peak blood pressure, "
            "heart rate and SpO2, or a timeline): tolerability is not in evidence",
        )
    return Tolerability(
        "tolerated", f"tolerated on {day}: peak blood pressure, heart rate and SpO2 in limits"
    )


_ANSWERS: tuple[Answer, ...] = ("continue", "pause", "stop")


def _worse(recorded: Answer, checked: tuple[Answer, tuple[Finding, ...]]) -> Answer:
    return max(recorded, checked[0], key=_ANSWERS.index)


def _recorded_summary(session: SessionRecord) -> Vitals | None:
    """The summary vitals that were recorded (any of peak BP, highest HR, lowest SpO2)."""
    peak = session.bp_peak
    if peak is None and session.heart_rate is None and session.spo2 is None:
        return None
    return Vitals(
        systolic=None if peak is None else peak.systolic,
        diastolic=None if peak is None else peak.diastolic,
        heart_rate=session.heart_rate,
        spo2=session.spo2,
    )


def _summary(session: SessionRecord) -> Vitals | None:
    """The session's summary vitals (peak BP, highest HR, lowest SpO2), if all were recorded."""
    recorded = _recorded_summary(session)
    if recorded is None or None in (recorded.systolic, recorded.heart_rate, recorded.spo2):
        return None
    return recorded


@dataclass(frozen=True, slots=True)
class Readiness:
    """Whether a patient may be discharged, and what stands in the way."""

    ready: bool
    reasons: tuple[str, ...]
    criteria: tuple[str, ...]


def readiness(
    protocol: Protocol,
    limits: LimitLibrary,
    session: SessionRecord,
    at: datetime,
    *,
    confirmed: bool,
) -> Readiness:
    """Discharge readiness at ``at``.

    Ready when the protocol's observation time has elapsed since dosing ended, the latest
    reading (taken after dosing ended) is within the pre-session soft limits and, where the
    schedule asks for one, a blood pressure was taken within its window before discharge, and
    the clinician confirms the protocol's discharge criteria. Never after a life-threatening
    adverse event: that discharge is a clinician's decision, not a readiness check.
    """
    reasons: list[str] = []
    threatening = [e for e in session.adverse_events if e.grade is Grade.LIFE_THREATENING]
    if threatening:
        reasons.append(
            f"a life-threatening adverse event ({threatening[0]}): discharge is a clinician's "
            "decision after review, not a readiness check"
        )
    leave = observation_end(protocol, session)
    if instant(at) < instant(leave):
        wait = elapsed(leave, at).total_seconds() / 60
        reasons.append(
            f"observation not over: {format_number(wait, 1)} min more (until {leave:%H:%M})"
        )
    end = infusion_end(session)
    since = sorted(
        (r for r in session.readings if instant(end) <= instant(r.at) <= instant(at)),
        key=lambda r: instant(r.at),
    )
    latest = since[-1] if since else None
    if latest is None:
        reasons.append("no reading since dosing ended")
    else:
        # The latest value of each vital sign, so that a later reading of SpO2 alone does not
        # hide a blood pressure still past the limits.
        def last(name: str) -> float | None:
            return next(
                (getattr(r, name) for r in reversed(since) if getattr(r, name) is not None),
                None,
            )

        pressure = next((r for r in reversed(since) if r.systolic is not None), None)
        monitoring = protocol.monitoring
        if monitoring is not None and monitoring.before_discharge:
            window = timedelta(minutes=monitoring.window.value)
            if pressure is None or elapsed(at, pressure.at) > window:
                reasons.append(
                    f"no blood pressure in the {monitoring.window} before discharge (the "
                    "protocol's reading before discharge)"
                )
        current = Vitals(
            systolic=None if pressure is None else pressure.systolic,
            diastolic=None if pressure is None else pressure.diastolic,
            heart_rate=last("heart_rate"),
            spo2=last("spo2"),
        )
        found = [
            f
            for f in check_vitals(limits, protocol.id, protocol.route, current, during=False)
            if f.severity is not Severity.INFO
        ]
        if found:
            reasons.append(
                f"the readings to {latest.at:%H:%M} are not back within the pre-session limits: "
                f"{found[0].message}"
            )
    criteria = tuple(note.text for note in protocol.discharge)
    if not confirmed:
        reasons.append("the protocol's discharge criteria are not confirmed (--confirm)")
    return Readiness(not reasons, tuple(reasons), criteria)


def monitoring_text(monitoring: Monitoring) -> str:
    """The schedule in one line, for ``protocols show`` and ``session show``."""
    parts = []
    if monitoring.before:
        parts.append(f"before the dose (within {monitoring.before_within})")
    for label, cadences in (("during", monitoring.during), ("after", monitoring.after)):
        for cadence in cadences:
            span = "" if cadence.span is None else f" for {cadence.span}"
            parts.append(f"every {cadence.every} {label}{span}")
    parts.extend(f"at {fixed}" for fixed in monitoring.at)
    if monitoring.before_discharge:
        parts.append("before discharge")
    return "; ".join(parts) + f" (a reading counts within {monitoring.window})"
