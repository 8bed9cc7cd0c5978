"""A treatment series: session dates, each session's checked dose, timeline, and what surrounds it.

Pure: the caller gives the start date, the clinic's time zone, the closed dates (holidays
included) and the limit library; nothing here reads the clock, the environment or a file.

Dates: sessions are laid on the first open day that keeps (a) the allowed weekdays, (b) the
minimum interval (the longer of the protocol's and the limit library's soft minimum, so a plan
never creates an interval finding) and (c) the sessions-per-7-days cap (the smaller of the
requested, the protocol's and the limit library's soft maximum).

Doses: every session is the protocol's programme, except where an escalation step is
``scheduled`` (a fixed titration such as 0.2 -> 0.4 -> 0.6 mg/kg/h), which the plan applies.
Response-dependent steps are stated as conditions on the sessions they would apply to; the
decision is made at the time by ``next``. Every session goes through the limit checker with the
sessions before it as history.
"""

import functools
from bisect import insort
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    model_validator,
)

from ketadose.approval import shared_approval, without
from ketadose.choices import DEFAULT_SESSION_TIME
from ketadose.clock import elapsed, instant, on_day, problem, shift
from ketadose.clock import name as clock_name
from ketadose.dosing import DoseRequest, at_step
from ketadose.errors import InputError, InputField
from ketadose.gate import Prepared, decide, prepare_session, seal
from ketadose.libfile import Quantity
from ketadose.limits import LimitLibrary, clean_reason, status
from ketadose.models import (
    CheckContext,
    DosedSession,
    DosingWeight,
    Finding,
    LibraryRef,
    Measured,
    Patient,
    PhaseDose,
    Preparation,
    PreviousSession,
    ProtocolRef,
    Real,
    Sealed,
    Severity,
    Status,
    Systemic,
    significant,
)
from ketadose.pk import DEFAULT_MODEL, MODELS, peaks, session_infusions
from ketadose.protocols import Adjunct, EscalationStep, Note, ProtocolEntry, Titration
from ketadose.series import History, recent
from ketadose.titration import Rung, ladder
from ketadose.units import Kind, format_number

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: Chair time after an infusion when none is asked (at least the protocol's observation).
RECOVERY_MIN = 20.0
#: A series that cannot be laid out within this many days is refused, not stretched.
SEARCH_DAYS = 366


@dataclass(frozen=True, slots=True)
class PlanRequest:
    """What ``ketadose plan`` is asked.

    Attributes:
        dose: Patient and dose options, as for ``dose``.
        start: The first day a session may take place.
        zone: The clinic's time zone: each session is at ``session_time`` on the local wall
            clock (the UTC offset changes with daylight saving), its gaps are elapsed time.
        session_time: Time of day of each session (for intervals and holds).
        sessions: Number of sessions (default: the protocol's induction series).
        per_week: Most sessions in any 7 days (default: the protocol's upper figure).
        days: Allowed weekdays, 0 = Monday (default: every day if 7 a week are allowed, else
            Monday to Friday).
        closed: Days the clinic is closed (public holidays included by the caller).
        intake_min: Chair time before the infusion.
        recovery_min: Chair time after it (at least the protocol's observation).
        price: Price per session, low and high.
        currency: The price's currency.
        override_reason: Acknowledges the plan's soft findings.
        patient_id: The patient's pseudonymous id, shown on the plan (never a name).
        predict_peaks: Predict each session's plasma peak (``batch`` turns it off, ~10% of a
            plan's time, unless the limit library limits the predicted peak).
    """

    dose: DoseRequest
    start: date
    zone: tzinfo
    session_time: time = DEFAULT_SESSION_TIME
    sessions: int | None = None
    per_week: int | None = None
    days: frozenset[int] | None = None
    closed: frozenset[date] = field(default_factory=frozenset)
    intake_min: float = 20
    recovery_min: float = RECOVERY_MIN
    price: tuple[float, float] | None = None
    currency: str = "USD"
    override_reason: str | None = None
    patient_id: str | None = None
    predict_peaks: bool = True


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class Timeline(_Out):
    """The chair timeline of one session."""

    arrive: AwareDatetime
    infusion_start: AwareDatetime
    infusion_end: AwareDatetime
    discharge_earliest: AwareDatetime
    observation_min: Real


#: What a plan's session and step findings hold, in the JSON documents (schema version 2).
_FINDINGS = (
    "What the gate found, except the library-approval findings that every session and step "
    "of the plan carries: those are stated once, in the plan's library_findings."
)


class PlannedSession(Sealed):
    """One session of the plan, checked by the gate (only it can make one).

    Its numbers are plain floats, not ``Real``: the three totals are copied from the session's
    ``SessionDose`` (cleaned there) and the running total is cleaned by :func:`plan`, which
    spares a batch ~24 validator calls a plan.
    """

    number: int
    date: date
    start: AwareDatetime
    phases: tuple[PhaseDose, ...]
    total_dose_mg: float
    dose_mg_per_kg: float | None
    total_duration_min: float | None
    preparation: Preparation | None
    measured: Measured | None = None
    systemic: Systemic | None = None
    status: Status
    ready: bool
    findings: tuple[Finding, ...] = Field(description=_FINDINGS)
    condition: str | None
    accumulated_dose_mg: float
    predicted_peak_ng_per_ml: float | None
    timeline: Timeline


class CheckedStep(Sealed):
    """A response-dependent escalation step, checked at the patient's weight by the gate.

    The plan does not take the step (``next`` decides at the time), but it shows it, so it
    is checked like a session: as prescribed and as delivered, and against the step from the
    level before it. A step past a hard limit is shown refused (no pump programme) and the
    plan exits 4.

    Attributes:
        from_session: The first session it may apply to.
        text: The step in words, with its condition.
        total_dose_mg: Its session dose.
        dose_mg_per_kg: The same per kg of dosing weight.
    """

    from_session: int
    text: str
    phases: tuple[PhaseDose, ...]
    total_dose_mg: float
    dose_mg_per_kg: float | None
    preparation: Preparation | None
    measured: Measured | None = None
    systemic: Systemic | None = None
    status: Status
    ready: bool
    findings: tuple[Finding, ...] = Field(description=_FINDINGS)


class Cost(_Out):
    """The series' price range."""

    per_session_low: Real
    per_session_high: Real
    low: Real
    high: Real
    currency: str


class PlannedRung(_Out):
    """One rung of a titration ladder: when it may start at the earliest, and what it rests on.

    Its dose, pump programme and findings are those of the plan's session of the same number.
    """

    number: int
    at_h: Real
    rate_mg_per_kg_per_h: Real
    basis: str
    evidence: str


class TitrationPlan(_Out):
    """A continuous inpatient titration laid out as one stay (migraine, Lauritsen 2016).

    The plan's sessions are the rungs, one after another within the stay, each checked by the
    gate with the rungs before it as history; a rung past a hard limit stops the ladder
    (``stopped`` says where and why) and is not shown, unless it is the first.

    Attributes:
        scale: The score the titration steps on.
        infusion_start: When the first rung starts.
        interval_min: Minutes between rungs in this plan.
        interval: Why that interval, in words.
        target: The end point in words.
        maximum: The protocol's maximum rate.
        maximum_stay: The longest stay.
        untolerated: What to do when the infusion is not tolerated.
        rungs: The rungs shown.
        stopped: Why the ladder stops before the protocol's maximum, or None.
        source: The titration's source.
    """

    scale: str
    infusion_start: AwareDatetime
    interval_min: Real
    interval: str
    target: str
    maximum: str
    maximum_stay: str
    untolerated: str
    rungs: tuple[PlannedRung, ...]
    stopped: str | None
    source: str


class SeriesPlan(_Out):
    """A planned series for one patient, without the protocol's notes.

    What a ``batch`` record carries: the notes are the same for every patient of a protocol
    (``ketadose protocols show ID`` has them), and would be two fifths of each record.
    """

    protocol: ProtocolRef
    patient_id: str | None
    patient: Patient
    dosing_weight: DosingWeight | None
    start: date
    sessions: tuple[PlannedSession, ...]
    accumulated_dose_mg: Real
    cost: Cost | None
    status: Status
    ready: bool
    override_reason: str | None
    escalation: tuple[str, ...]
    escalation_checks: tuple[CheckedStep, ...]
    evaluation: str
    pk_model: str | None
    library: LibraryRef
    protocol_library: LibraryRef
    library_findings: tuple[Finding, ...] = Field(
        description="The library-approval findings (library-unapproved, "
        "protocol-library-unapproved) that every session and escalation step carries, stated "
        "once here and left out of their findings; one that not every session carries stays "
        "on those that do. Empty when both libraries name an approver (see library.approved "
        "and protocol_library.approved)."
    )
    #: Only for a continuous titration (absent from other plans' JSON, which stays as it was).
    titration: TitrationPlan | None = Field(default=None, exclude_if=lambda value: value is None)

    def escalation_lines(self) -> tuple[str, ...]:
        """Each escalation step in words with what the gate found, for every renderer.

        Returns:
            One line per step: a scheduled step is applied in the sessions; a conditional
            one says it is within the limits, needs an override reason, or is refused.
        """
        checks = {step.text: step for step in self.escalation_checks}
        lines = []
        for text in self.escalation:
            step = checks.get(text)
            if step is None:
                lines.append(f"{text} (applied in the sessions above)")
            elif step.status == "hard":
                worst = next(f for f in step.findings if f.severity is Severity.HARD)
                lines.append(f"{text}: REFUSED, not to be given: {worst.message}")
            elif not step.ready:
                worst = next(f for f in step.findings if f.severity is Severity.SOFT)
                lines.append(f"{text}: needs an override reason: {worst.message}")
            else:
                measure = "" if step.measured is None else f" ({step.measured.text})"
                lines.append(f"{text}: checked, within the limit library{measure}")
        return tuple(lines)

    @model_validator(mode="after")
    def _status_is_its_sessions(self) -> "SeriesPlan":
        # The plan's verdict can only be what its sealed sessions and steps say.
        steps_hard = any(step.status == "hard" for step in self.escalation_checks)
        expected = "hard" if steps_hard else status([f for s in self.sessions for f in s.findings])
        ready = all(s.ready for s in self.sessions) and not steps_hard
        if self.status != expected or self.ready != ready:
            raise ValueError("a plan's status and readiness are those of its sessions and steps")
        return self

    # The documents state the shared approval findings once (``library_findings``); the
    # sessions and steps in memory keep them, so every renderer and check still sees them.
    # A document cannot lose a finding: a session leaves out only what the record states.
    @field_serializer("sessions")
    def _sessions_written(self, sessions: tuple[PlannedSession, ...]) -> tuple[PlannedSession, ...]:
        return _stated_once(sessions, self.library_findings)

    @field_serializer("escalation_checks")
    def _steps_written(self, steps: tuple[CheckedStep, ...]) -> tuple[CheckedStep, ...]:
        return _stated_once(steps, self.library_findings)


_Checked = TypeVar("_Checked", PlannedSession, CheckedStep)


def _stated_once(items: tuple[_Checked, ...], shared: tuple[Finding, ...]) -> tuple[_Checked, ...]:
    """Sessions or steps as a document writes them: without the record's shared findings."""
    if not shared:
        return items
    # A copy, not validated: it is what the gate sealed, less findings stated on the record.
    return tuple(
        item.model_copy(update={"findings": without(item.findings, shared)}) for item in items
    )


def record_findings(
    sessions: Sequence[PlannedSession], steps: Sequence[CheckedStep]
) -> tuple[Finding, ...]:
    """A plan's ``library_findings``: the approval findings all its sessions and steps carry.

    Args:
        sessions: The plan's sessions.
        steps: Its checked escalation steps.

    Returns:
        The shared approval findings, in the first session's order.
    """
    return shared_approval([s.findings for s in sessions] + [s.findings for s in steps])


class Plan(SeriesPlan):
    """A planned series (the ``plan --json`` document, plus ``schema_version``)."""

    maintenance: tuple[Note, ...]
    adjuncts: tuple[Adjunct, ...]
    before: tuple[Note, ...]
    discharge: tuple[Note, ...]
    references: tuple[str, ...]
    #: ``take-home``: each dose is taken away from the clinic, on the dates shown.
    setting: Literal["clinic", "take-home"] = "clinic"
    #: How the patient takes each dose, as the sources give it.
    instructions: tuple[Note, ...] = ()


#: The most sessions one plan lays out (a benchmark lifts it in-process to measure growth).
MAX_SESSIONS = 100


def parse_days(text: str) -> frozenset[int]:
    """Parse ``mon,wed,fri`` into weekday numbers (Monday = 0).

    Args:
        text: Comma-separated three-letter day names.

    Returns:
        The weekdays.

    Raises:
        InputError: For an unknown or empty name.
    """
    names = [part.strip().lower() for part in text.split(",")]
    unknown = [name for name in names if name not in WEEKDAYS]
    if unknown or not names:
        raise InputError(InputField.DAYS, f' "{text}": use mon,tue,wed,thu,fri,sat,sun')
    return frozenset(WEEKDAYS.index(name) for name in names)


def plan(entry: ProtocolEntry, request: PlanRequest, limits: LimitLibrary) -> Plan:
    """Lay out and check a treatment series.

    Args:
        entry: The protocol.
        request: Patient, dose options, start, calendar and price.
        limits: The limit library every session is checked against.

    Returns:
        The plan; its ``status`` is the worst of its sessions'.

    Raises:
        InputError: For options that do not fit (a per-week count the protocol or limits do
            not allow, a series that cannot be laid out within a year).
    """
    protocol = entry.protocol
    if protocol.titration is not None:
        return _titration_plan(entry, protocol.titration, request, limits)
    count = protocol.series.sessions if request.sessions is None else request.sessions
    if not 1 <= count <= MAX_SESSIONS:
        raise InputError(InputField.SESSIONS, f" {count}: plan 1 to {MAX_SESSIONS} sessions")
    per_week = _per_week(entry, request, limits)
    gap = minimum_gap(entry, limits)
    # A take-home dose is taken on any day; clinic sessions on weekdays unless asked.
    home = protocol.setting == "take-home"
    every_day = per_week >= 7 or home
    days = request.days or (frozenset(range(7)) if every_day else frozenset(range(5)))
    starts = _dates(
        request.start,
        request.session_time,
        request.zone,
        request.closed,
        count,
        per_week,
        gap,
        days,
    )

    steps = sorted(protocol.escalation, key=lambda s: s.from_session)
    _refuse_shadowed_overrides(entry, request.dose, steps, count)
    conditions = [_condition(steps, number) for number in range(1, count + 1)]
    scheduled = [_scheduled(steps, number) for number in range(1, count + 1)]
    sessions: list[PlannedSession] = []
    history = History()  # ordered as it grows: each check bisects it, none re-sorts it
    accumulated = 0.0
    observation = 0.0 if protocol.observation is None else protocol.observation.minimum.value
    # Sessions at the same step share one prepared dose; each is checked in its own context.
    doses: dict[int, Prepared] = {}
    for step in dict.fromkeys(scheduled):
        request_at = at_step(request.dose, None if step < 0 else steps[step])
        doses[step] = prepare_session(entry, request_at, limits)
    predicted = _predicted_peaks(
        entry, request, starts, [doses[step].session for step in scheduled]
    )
    for number, start in enumerate(starts, 1):
        prepared = doses[scheduled[number - 1]]
        dose = prepared.session
        context = CheckContext(at=start, history=history)
        decided = decide(
            prepared,
            limits,
            context,
            request.override_reason,
            predicted_peak=None if predicted is None else predicted[number - 1],
        )
        accumulated = significant(accumulated + dose.total_dose_mg)
        sessions.append(
            seal(
                PlannedSession,
                decided,
                number=number,
                date=start.date(),
                start=start,
                total_dose_mg=dose.total_dose_mg,
                dose_mg_per_kg=dose.total_dose_mg_per_kg,
                total_duration_min=dose.total_duration_min,
                systemic=dose.systemic,
                condition=conditions[number - 1],
                accumulated_dose_mg=accumulated,
                predicted_peak_ng_per_ml=None if predicted is None else predicted[number - 1],
                # A take-home dose takes no chair: it is taken at ``start``, with no intake,
                # infusion or recovery around it.
                timeline=_timeline(start, None, 0.0, 0.0, 0.0)
                if home
                else _timeline(
                    start,
                    dose.total_duration_min,
                    request.intake_min,
                    request.recovery_min,
                    observation,
                ),
            )
        )
        history = history.adding(
            PreviousSession(
                at=instant(start),  # in UTC: each later session's check reads it as it is
                dose_mg=dose.total_dose_mg,
                dose_mg_per_kg=dose.total_dose_mg_per_kg,
            )
        )

    checked_steps = _check_steps(entry, request, limits, steps, starts, doses, scheduled)
    first = doses[scheduled[0]].session
    findings = [f for s in sessions for f in s.findings]
    steps_hard = any(step.status == "hard" for step in checked_steps)
    return Plan(
        protocol=first.protocol,
        patient_id=request.patient_id,
        patient=first.patient,
        dosing_weight=first.dosing_weight,
        start=request.start,
        sessions=tuple(sessions),
        accumulated_dose_mg=accumulated,
        cost=_cost(request, count),
        status="hard" if steps_hard else status(findings),
        ready=all(s.ready for s in sessions) and not steps_hard,
        override_reason=clean_reason(request.override_reason),
        escalation=tuple(_step_text(step) for step in steps),
        escalation_checks=checked_steps,
        evaluation=_evaluation(entry, count),
        pk_model=None if predicted is None else DEFAULT_MODEL,
        maintenance=protocol.maintenance,
        adjuncts=protocol.adjuncts,
        before=protocol.before,
        discharge=protocol.discharge,
        references=protocol.references,
        setting=protocol.setting,
        instructions=protocol.instructions,
        library=limits.ref,
        protocol_library=entry.library,
        library_findings=record_findings(sessions, checked_steps),
    )


def titration_interval(entry: ProtocolEntry, limits: LimitLibrary) -> float:
    """Minutes between rungs in a plan: the protocol's shortest, or the library's if longer.

    As for sessions (:func:`minimum_gap`), a plan never creates an interval finding.

    Args:
        entry: A protocol with a titration.
        limits: The limit library.

    Returns:
        The interval in minutes.
    """
    titration = entry.protocol.titration
    assert titration is not None
    return max(titration.interval.low.value, minimum_gap(entry, limits).total_seconds() / 60)


def _titration_plan(
    entry: ProtocolEntry, titration: Titration, request: PlanRequest, limits: LimitLibrary
) -> Plan:
    """One inpatient stay: the ladder's rungs one after another, each through the gate.

    Raises:
        InputError: For options that do not fit one stay (sessions, sessions per week, dose,
            rate, duration).
    """
    protocol = entry.protocol
    _refuse_for_stay(protocol.id, request)
    days = request.days or frozenset(range(7))
    (admission,) = _dates(
        request.start,
        request.session_time,
        request.zone,
        request.closed,
        1,
        7,
        timedelta(0),
        days,
    )
    infusion_start = shift(admission, timedelta(minutes=request.intake_min))
    every = titration_interval(entry, limits)
    rungs = ladder(titration, every)
    condition = (
        f"if the pain score is above {format_number(titration.target.score_max)}/"
        f"{format_number(titration.target.scale_max)} since the last step, no sooner than "
        f"{_hours(every)} after it, and the infusion is tolerated"
    )
    phase = protocol.phases[0]
    as_programme = phase.duration is not None and abs(every - phase.duration.value) < 1e-9
    prepared = []
    for rung in rungs:
        rate = Quantity(Kind.RATE_PER_KG, rung.rate_mg_per_kg_h, _rate(rung.rate_mg_per_kg_h))
        if rung.number == 1 and as_programme:
            dose_request = request.dose  # the protocol's own programme: its first rung
        else:
            duration = None if as_programme else every
            dose_request = replace(request.dose, rate=rate, duration_min=duration)
        prepared.append(prepare_session(entry, dose_request, limits))
    predicted = _rung_peaks(request, rungs, prepared)
    sessions: list[PlannedSession] = []
    history = History()  # ordered as it grows: each check bisects it, none re-sorts it
    accumulated = 0.0
    stopped = None
    for rung, ready in zip(rungs, prepared, strict=True):
        at = shift(infusion_start, timedelta(minutes=rung.at_min))
        context = CheckContext(at=at, history=history)
        peak = None if predicted is None else predicted[rung.number - 1]
        decided = decide(ready, limits, context, request.override_reason, predicted_peak=peak)
        hard = decided.status == "hard"
        if hard and sessions:
            worst = next(f for f in decided.findings if f.severity is Severity.HARD)
            stopped = (
                f"the ladder stops at {_rate(rungs[len(sessions) - 1].rate_mg_per_kg_h)}: "
                f"{_rate(rung.rate_mg_per_kg_h)} would exceed a hard limit: {worst.message}"
            )
            break
        dosed = ready.session
        accumulated = significant(accumulated + dosed.total_dose_mg)
        end = shift(at, timedelta(minutes=every))
        sessions.append(
            seal(
                PlannedSession,
                decided,
                number=rung.number,
                date=at.date(),
                start=at,
                total_dose_mg=dosed.total_dose_mg,
                dose_mg_per_kg=dosed.total_dose_mg_per_kg,
                total_duration_min=dosed.total_duration_min,
                condition=None if rung.number == 1 else condition,
                accumulated_dose_mg=accumulated,
                predicted_peak_ng_per_ml=peak,
                # An inpatient rung: no chair time, and no discharge between rungs (the stay
                # ends at the end point, as the inpatient team decides).
                timeline=Timeline(
                    arrive=admission if rung.number == 1 else at,
                    infusion_start=at,
                    infusion_end=end,
                    discharge_earliest=end,
                    observation_min=0,
                ),
            )
        )
        history = history.adding(
            PreviousSession(
                at=instant(at),
                dose_mg=dosed.total_dose_mg,
                dose_mg_per_kg=dosed.total_dose_mg_per_kg,
            )
        )
        if hard:  # the first rung itself is refused: nothing follows it
            worst = next(f for f in decided.findings if f.severity is Severity.HARD)
            stopped = f"the first rung is refused: {worst.message}"
            break
    shown = rungs[: len(sessions)]
    first_dose = prepared[0].session
    findings = [f for s in sessions for f in s.findings]
    target = titration.target
    low, high = titration.interval.low, titration.interval.high
    library_gap = minimum_gap(entry, limits).total_seconds() / 60
    why = f"every {_hours(every)}: " + (
        f"the lower bound of the source's {low}-{high}"
        if every <= low.value + 1e-9
        else f"the source gives {low}-{high}; the limit library's minimum interval is "
        f"{_hours(library_gap)}, so the plan creates no interval finding"
    )
    return Plan(
        protocol=first_dose.protocol,
        patient_id=request.patient_id,
        patient=first_dose.patient,
        dosing_weight=first_dose.dosing_weight,
        start=request.start,
        sessions=tuple(sessions),
        accumulated_dose_mg=accumulated,
        cost=_cost(request, 1),
        status=status(findings),
        ready=all(s.ready for s in sessions),
        override_reason=clean_reason(request.override_reason),
        escalation=(),
        escalation_checks=(),
        evaluation=(
            f"end point: pain <= {format_number(target.score_max)}/"
            f"{format_number(target.scale_max)} held for {target.hold}, then hold the rate "
            f"({target.source}); the stay lasts at most {titration.stay.maximum} "
            f"({titration.stay.source})"
        ),
        pk_model=None if predicted is None else DEFAULT_MODEL,
        maintenance=protocol.maintenance,
        adjuncts=protocol.adjuncts,
        before=protocol.before,
        discharge=protocol.discharge,
        references=protocol.references,
        library=limits.ref,
        protocol_library=entry.library,
        library_findings=record_findings(sessions, ()),
        titration=TitrationPlan(
            scale=titration.scale,
            infusion_start=infusion_start,
            interval_min=every,
            interval=why,
            target=f"pain <= {format_number(target.score_max)}/"
            f"{format_number(target.scale_max)} held for {target.hold}",
            maximum=str(titration.maximum.rate),
            maximum_stay=str(titration.stay.maximum),
            untolerated=titration.untolerated.text,
            rungs=tuple(
                PlannedRung(
                    number=rung.number,
                    at_h=rung.at_min / 60,
                    rate_mg_per_kg_per_h=rung.rate_mg_per_kg_h,
                    basis=rung.basis,
                    evidence=rung.evidence,
                )
                for rung in shown
            ),
            stopped=stopped,
            source=titration.source,
        ),
    )


def _refuse_for_stay(protocol_id: str, request: PlanRequest) -> None:
    """Options that mean a series of sessions, or replace what the titration sets."""
    if request.sessions not in (None, 1):
        raise InputError(
            InputField.SESSIONS,
            f" {request.sessions}: {protocol_id} is one inpatient stay of one "
            "continuous infusion, not a series of sessions",
        )
    if request.per_week is not None:
        raise InputError(
            InputField.PER_WEEK, f": {protocol_id} is one inpatient stay, not weekly sessions"
        )
    given = [
        option
        for option, value in (
            (InputField.DOSE, request.dose.dose),
            (InputField.RATE, request.dose.rate),
            (InputField.DURATION, request.dose.duration_min),
        )
        if value is not None
    ]
    if given:
        raise InputError(
            given[0],
            f": {protocol_id} is a titration; its rungs set every rate and how long "
            "each runs (ketadose dose takes ",
            InputField.RATE,
            " for one rate)",
        )


def _rung_peaks(
    request: PlanRequest, rungs: tuple[Rung, ...], prepared: list[Prepared]
) -> list[float] | None:
    """Each rung's predicted plasma peak (default PK model) with what the rungs before it left.

    None without a weight, or when a plan is asked not to predict peaks.
    """
    weight = request.dose.patient.weight_kg
    if not request.predict_peaks or weight is None:
        return None
    given = [
        session_infusions(ready.session.phases, rung.at_min)
        for rung, ready in zip(rungs, prepared, strict=True)
    ]
    return [significant(peak) for peak in peaks(MODELS[DEFAULT_MODEL], weight, given)]


def _rate(value: float) -> str:
    return f"{format_number(value, 0.001)} mg/kg/h"


def _hours(minutes: float) -> str:
    if minutes % 60 == 0:
        return f"{format_number(minutes / 60)} h"
    return f"{format_number(minutes)} min"


def _refuse_shadowed_overrides(
    entry: ProtocolEntry, request: DoseRequest, steps: list[EscalationStep], count: int
) -> None:
    """Refuse a dose, rate or duration override that a scheduled titration would replace.

    An override is meant for the whole series; a scheduled step that sets the same thing
    would silently limit it to the sessions before the step.
    """
    given = {
        InputField.DOSE: request.dose is not None,
        InputField.RATE: request.rate is not None,
        InputField.DURATION: request.duration_min is not None,
    }
    for step in steps:
        if not step.scheduled or step.from_session > count:
            continue
        sets = {
            InputField.DOSE: step.dose,
            InputField.RATE: step.rate,
            InputField.DURATION: step.duration,
        }
        for option, value in sets.items():
            if given[option] and value is not None:
                raise InputError(
                    option,
                    f" would apply to sessions before {step.from_session} only: "
                    f"{entry.protocol.id} titrates it ({_step_text(step)}); plan without ",
                    option,
                    ", or fewer ",
                    InputField.SESSIONS,
                )


def _check_steps(
    entry: ProtocolEntry,
    request: PlanRequest,
    limits: LimitLibrary,
    steps: list[EscalationStep],
    starts: tuple[datetime, ...],
    doses: dict[int, Prepared],
    scheduled: list[int],
) -> tuple[CheckedStep, ...]:
    """Every response-dependent step the plan shows, through the gate.

    Each is checked at the patient's weight, as prescribed and delivered, and at the session
    it may first apply to, after one session at the level before it (so the library's
    escalation step and interval are checked against that level).
    """
    checked = []
    previous: DosedSession | None = None  # the level before the next step
    for step in steps:
        prepared = prepare_session(entry, at_step(request.dose, step), limits)
        number = step.from_session
        if not step.scheduled:
            context = None
            if number <= len(starts):  # from_session >= 2, so a session precedes it
                before = previous or doses[scheduled[number - 2]].session
                context = CheckContext(
                    at=starts[number - 1],
                    history=(
                        PreviousSession(
                            at=starts[number - 2],
                            dose_mg=before.total_dose_mg,
                            dose_mg_per_kg=before.total_dose_mg_per_kg,
                        ),
                    ),
                )
            decided = decide(prepared, limits, context, request.override_reason)
            checked.append(
                seal(
                    CheckedStep,
                    decided,
                    from_session=number,
                    text=_step_text(step),
                    total_dose_mg=prepared.session.total_dose_mg,
                    dose_mg_per_kg=prepared.session.total_dose_mg_per_kg,
                    systemic=prepared.session.systemic,
                )
            )
        previous = prepared.session
    return tuple(checked)


def weekly_cap(entry: ProtocolEntry, limits: LimitLibrary) -> int:
    """The most sessions in 7 days: the protocol's upper figure, within the limit library's.

    Args:
        entry: The protocol.
        limits: The limit library.

    Returns:
        The cap.
    """
    cap = entry.protocol.series.per_week[1]
    limit = limits.limit(entry.protocol.id, "series", "sessions_per_7d", entry.protocol.route)
    if limit is not None:
        bound = limit.bounds.upper_soft or limit.bounds.upper_hard
        if bound is not None:
            cap = min(cap, int(bound))
    return cap


def _per_week(entry: ProtocolEntry, request: PlanRequest, limits: LimitLibrary) -> int:
    """The most sessions in 7 days for this plan: requested, within protocol and limits."""
    cap = weekly_cap(entry, limits)
    if request.per_week is None:
        return cap
    if not 1 <= request.per_week <= 7:
        raise InputError(InputField.PER_WEEK, f" {request.per_week}: 1 to 7 sessions a week")
    if request.per_week > cap:
        raise InputError(
            InputField.PER_WEEK,
            f" {request.per_week} is above the {cap} sessions in 7 days that the "
            f"protocol and the limit library allow for {entry.protocol.id}",
        )
    return request.per_week


def minimum_gap(entry: ProtocolEntry, limits: LimitLibrary) -> timedelta:
    """The shortest gap between sessions: the protocol's or the limit library's soft one.

    Args:
        entry: The protocol.
        limits: The limit library.

    Returns:
        The gap.
    """
    minutes = [0.0]
    if entry.protocol.series.min_interval is not None:
        minutes.append(entry.protocol.series.min_interval.value)
    limit = limits.limit(entry.protocol.id, "series", "interval", entry.protocol.route)
    if limit is not None:
        floor = limit.bounds.lower_soft or limit.bounds.lower_hard
        if floor is not None:
            minutes.append(floor)
    return timedelta(minutes=max(minutes))


@functools.lru_cache(maxsize=64)
def _dates(
    first: date,
    session_time: time,
    zone: tzinfo,
    closed: frozenset[date],
    count: int,
    per_week: int,
    gap: timedelta,
    days: frozenset[int],
) -> tuple[datetime, ...]:
    """The session start times: first open days that keep the gap and the weekly count.

    Each is ``session_time`` on the local wall clock of ``zone``; the gap and the 7 days are
    elapsed time (a night across a daylight-saving change is an hour shorter or longer).
    Cached: a batch plans thousands of patients on one calendar.

    Raises:
        InputError: When the session time does not exist or happens twice on a day the plan
            would use (a daylight-saving change), or the series does not fit into a year.
    """
    chosen: list[datetime] = []
    moments: list[datetime] = []  # the chosen starts' instants, in order, to bisect
    week = timedelta(days=7)
    day = first
    for _ in range(SEARCH_DAYS):
        if day.weekday() in days and day not in closed:
            start = on_day(day, session_time, zone)
            if start is None:
                found = problem(datetime.combine(day, session_time), zone)
                what = "does not exist" if found == "skipped" else "happens twice"
                raise InputError(
                    InputField.TIME_OF_DAY,
                    f" {session_time:%H:%M} {what} on {day.isoformat()} in "
                    f"{clock_name(zone)} (daylight-saving change): choose another ",
                    InputField.TIME_OF_DAY,
                    ", or close that day with ",
                    InputField.CLOSED,
                    f" {day.isoformat()}",
                )
            # The chosen starts less than 7 days before this one, by bisection.
            moment = instant(start)
            if (not chosen or elapsed(start, chosen[-1]) >= gap) and recent(
                moments, moment, week
            ) < per_week:
                chosen.append(start)
                insort(moments, moment)
                if len(chosen) == count:
                    return tuple(chosen)
        day += timedelta(days=1)
    raise InputError(
        f"cannot fit {count} sessions into a year from {first.isoformat()} with these "
        "days, closures and limits"
    )


def _predicted_peaks(
    entry: ProtocolEntry,
    request: PlanRequest,
    starts: tuple[datetime, ...],
    sessions: list[DosedSession],
) -> list[float] | None:
    """Each session's predicted plasma peak (ng/mL, default PK model), carry-over included.

    None for a route the models do not cover, or without a weight.
    """
    weight = request.dose.patient.weight_kg
    if not request.predict_peaks or entry.protocol.route != "iv" or weight is None:
        return None
    zero = starts[0]
    given = []
    for start, dose in zip(starts, sessions, strict=True):
        at = elapsed(start, zero).total_seconds() / 60 + request.intake_min
        given.append(session_infusions(dose.phases, at))
    return [significant(peak) for peak in peaks(MODELS[DEFAULT_MODEL], weight, given)]


def _scheduled(steps: list[EscalationStep], number: int) -> int:
    """The index of the latest scheduled step session ``number`` has reached, or -1."""
    applied = [i for i, s in enumerate(steps) if s.scheduled and s.from_session <= number]
    return applied[-1] if applied else -1


def _condition(steps: list[EscalationStep], number: int) -> str | None:
    """The conditional step a session falls under, in words, or None."""
    pending = [s for s in steps if not s.scheduled and s.from_session <= number]
    if not pending:
        return None
    return _step_text(pending[-1])


@functools.lru_cache(maxsize=256)
def _step_text(step: EscalationStep) -> str:
    change = " ".join(str(v) for v in (step.dose, step.rate) if v is not None)
    over = f" over {step.duration}" if step.duration else ""
    when = "scheduled" if step.scheduled else f"if {step.condition}"
    return f"from session {step.from_session}: {change}{over} {when}"


@functools.lru_cache(maxsize=256)
def _timeline(
    start: datetime,
    infusion_min: float | None,
    intake_min: float,
    recovery_min: float,
    observation_min: float,
) -> Timeline:
    """Arrival, infusion and the earliest discharge of one session (cached: a batch repeats it)."""
    # Elapsed minutes: a session during a daylight-saving change lasts as long as any other.
    infusion_start = shift(start, timedelta(minutes=intake_min))
    infusion_end = shift(infusion_start, timedelta(minutes=infusion_min or 0))
    after = max(recovery_min, observation_min)
    return Timeline(
        arrive=start,
        infusion_start=infusion_start,
        infusion_end=infusion_end,
        discharge_earliest=shift(infusion_end, timedelta(minutes=after)),
        observation_min=after,
    )


def _evaluation(entry: ProtocolEntry, count: int) -> str:
    evaluation = entry.protocol.evaluation
    if evaluation is None:
        return f"evaluate response after session {count}, the end of the induction series"
    return f"after session {evaluation.after_session}: {evaluation.text}"


def _cost(request: PlanRequest, count: int) -> Cost | None:
    if request.price is None:
        return None
    low, high = request.price
    return Cost(
        per_session_low=low,
        per_session_high=high,
        low=low * count,
        high=high * count,
        currency=request.currency,
    )
