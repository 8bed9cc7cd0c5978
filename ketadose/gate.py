"""The one safety gate: every dose, rate, step or recommendation passes it before it is shown.

Only this module makes the sealed result types that commands and renderers accept
(:class:`~ketadose.models.SessionDose`, a plan's sessions, a next-session recommendation):
their constructors refuse to run anywhere else, and mypy refuses an unchecked
:class:`~ketadose.models.DosedSession` where a checked one is wanted.

What the gate checks, in order:

1. the session **as prescribed** (every phase of every kind, the boluses summed, the
   patient): a dose past a hard limit is refused with the limit, never turned into a
   preparation problem ("does not fit in the bag": when the preparation cannot be made up,
   the prescription is checked first);
2. the session **as delivered**: the draw and the pump rate are rounded toward the safe side
   of the nearest limit (down when a maximum is near), then the rounded pump rate times the
   concentration made from the rounded draw (mg/h and mg/kg/h), the rounded draw times the
   vial strength (total mg and mg/kg), the final concentration and the programmed mL/h are
   checked; the worse of prescribed and delivered decides;
3. the context: the series (interval, 7-day count, 24-h and 7-day totals, escalation step),
   the vital signs (before a session: go / caution / do not start; during it: continue /
   pause / stop, never a start programme), medications, conditions, the predicted peak.

A session with a hard finding keeps its doses (so the refusal can be read) but loses its
pump programme and preparation.
"""

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from typing import Any, TypeVar

from ketadose.dosing import DoseRequest, dose, prepare
from ketadose.errors import ExitCode, InputError
from ketadose.limits import (
    LimitLibrary,
    check,
    check_patient,
    check_predicted_peak,
    check_programme,
    clean_reason,
    override,
    status,
)
from ketadose.models import (
    _GATE_OPEN,
    CheckContext,
    DosedSession,
    During,
    Finding,
    LibraryRef,
    Measured,
    Patient,
    PhaseDose,
    Preparation,
    Sealed,
    SessionDose,
    Severity,
    Status,
    WeightPolicy,
)
from ketadose.preparation import NO_SIDES, Sides, Steering
from ketadose.protocols import ProtocolEntry
from ketadose.units import format_number

S = TypeVar("S", bound=Sealed)
_KEY = object()


@dataclass(frozen=True, slots=True, init=False)
class Prepared:
    """A session dosed, prepared and checked on its own (without its context).

    A plan checks one prepared session in several contexts (its sessions at one dose).

    Attributes:
        session: The dosed session; with no preparation when it was refused before one.
        findings: The findings of the session alone (doses, rates, pump, patient).
        refused: A hard limit was crossed before preparation, so none was made.
    """

    session: DosedSession
    findings: tuple[Finding, ...]
    refused: bool

    def __init__(
        self, session: DosedSession, findings: tuple[Finding, ...], refused: bool, key: object
    ) -> None:
        if key is not _KEY:
            raise TypeError("a Prepared session is made only by ketadose.gate.prepare")
        object.__setattr__(self, "session", session)
        object.__setattr__(self, "findings", findings)
        object.__setattr__(self, "refused", refused)


@dataclass(frozen=True, slots=True, init=False)
class Verdict:
    """What the gate decided about one session in its context.

    Attributes:
        findings: Every finding, overrides applied.
        status: The worst severity.
        ready: Whether the session may start (no hard finding, every soft one overridden,
            and not a reading taken during a session).
        override_reason: The reason as recorded.
        phases: The phases as they may be shown: without a pump programme when refused or
            when the question was a reading during a session.
        preparation: The preparation as it may be shown (None likewise).
        measured: The measured liquid or tablets as they may be shown (None likewise).
        during: The answer to a during-session reading, or None.
    """

    findings: tuple[Finding, ...]
    status: Status
    ready: bool
    override_reason: str | None
    phases: tuple[PhaseDose, ...]
    preparation: Preparation | None
    measured: Measured | None
    during: During | None

    def __init__(
        self,
        key: object,
        *,
        findings: tuple[Finding, ...],
        status: Status,
        ready: bool,
        override_reason: str | None,
        phases: tuple[PhaseDose, ...],
        preparation: Preparation | None,
        measured: Measured | None,
        during: During | None,
    ) -> None:
        if key is not _KEY:
            raise TypeError("a Verdict is made only by ketadose.gate")
        for name, value in (
            ("findings", findings),
            ("status", status),
            ("ready", ready),
            ("override_reason", override_reason),
            ("phases", phases),
            ("preparation", preparation),
            ("measured", measured),
            ("during", during),
        ):
            object.__setattr__(self, name, value)


@contextmanager
def _open() -> Iterator[None]:
    token = _GATE_OPEN.set(True)
    try:
        yield
    finally:
        _GATE_OPEN.reset(token)


def seal(model: type[S], decided: Verdict, **fields: Any) -> S:
    """Build a sealed result from a verdict: its programme, findings and status come from it.

    Args:
        model: The sealed type (a session, a planned session, a next-session answer).
        decided: The gate's verdict; only the gate makes one.
        **fields: The model's other fields.

    Returns:
        The model.
    """
    values: dict[str, Any] = {
        "phases": decided.phases,
        "findings": decided.findings,
        "status": decided.status,
        "ready": decided.ready,
    }
    names = model.model_fields
    if "preparation" in names:
        values["preparation"] = decided.preparation
    if "measured" in names:
        values["measured"] = decided.measured
    if "during" in names:
        values["during"] = decided.during
    if "override_reason" in names:
        values["override_reason"] = decided.override_reason
    with _open():
        return model(**fields, **values)


@dataclass(frozen=True, slots=True)
class _Programme:
    """What a dosing input gives, whoever the patient: cached, since rows repeat weights.

    ``dosed`` is before preparation, ``made`` after it with its prescribed-and-delivered
    findings (None, with ``error``, when it cannot be made up). ``prescribed`` are the
    findings of ``dosed``, worked out only when a refusal may be the prescription's.
    """

    dosed: DosedSession
    prescribed: tuple[Finding, ...] | None
    made: DosedSession | None
    delivered: tuple[Finding, ...]
    error: InputError | None


#: Programmes by (protocol entry, limit library, dosing input). The patient's height, sex and
#: age do not change a dose dosed on actual weight, so they are not part of the input then; a
#: batch repeats weights (91 % of 10,000 plausible adults). The entry and the library are kept
#: with each result, so their ids cannot be reused while cached; Programme is immutable.
_PROGRAMMES: dict[tuple[object, ...], tuple[object, object, _Programme]] = {}
_CACHE_MAX = 2048
_REQUEST_FIELDS = tuple(f.name for f in fields(DoseRequest) if f.name != "patient")


def prepare_session(entry: ProtocolEntry, request: DoseRequest, limits: LimitLibrary) -> Prepared:
    """Dose a session, check it as prescribed, prepare it safely and check what it delivers.

    A prescription past a hard limit is refused as prescribed: no preparation is made, and
    its findings are the prescription's (a dose past a hard limit is never turned into a
    preparation problem such as "does not fit in the bag").

    Args:
        entry: The protocol and its library.
        request: Patient, policy, overrides, preparation options.
        limits: The limit library.

    Returns:
        The prepared session and its own findings (session, then patient).

    Raises:
        InputError: For bad input, or (when no hard limit is crossed) preparation options
            that cannot be made up.
    """
    patient = request.patient
    programme = _programme(entry, request, limits)
    protocol = programme.dosed.protocol
    own = tuple(check_patient(patient, limits, protocol.id, protocol.route))
    if programme.made is None or _hard(programme.delivered) or _hard(own):
        prescribed = programme.prescribed
        if prescribed is None:  # only a patient past a hard limit asks for it
            prescribed = tuple(check_programme(programme.dosed, limits))
        if _hard(prescribed + own):
            return Prepared(_for(programme.dosed, patient), prescribed + own, True, _KEY)
        if programme.made is None:
            assert programme.error is not None
            raise programme.error
    return Prepared(_for(programme.made, patient), programme.delivered + own, False, _KEY)


def _hard(findings: tuple[Finding, ...]) -> bool:
    return any(f.severity is Severity.HARD for f in findings)


def _for(session: DosedSession, patient: Patient) -> DosedSession:
    """The session of a cached programme, for this patient (an already valid model)."""
    return (
        session if session.patient == patient else session.model_copy(update={"patient": patient})
    )


def dosing_input(request: DoseRequest) -> tuple[object, ...]:
    """What a dose reads of its request: the key under which its programme is cached.

    The weight, the height and sex where the policy uses them (never the age), and every
    other field of the request, whatever fields it gains later. Two requests with the same
    dosing input give the same programme and the same dose-only findings.

    Args:
        request: Patient, policy, overrides, preparation options.

    Returns:
        A hashable tuple.
    """
    patient = request.patient
    person = (
        (patient.weight_kg,)
        if request.policy is WeightPolicy.ACTUAL
        else (patient.weight_kg, patient.height_cm, patient.sex)
    )
    return (person, *[getattr(request, name) for name in _REQUEST_FIELDS])


def _programme(entry: ProtocolEntry, request: DoseRequest, limits: LimitLibrary) -> _Programme:
    patient = request.patient
    key = (id(entry), id(limits), *dosing_input(request))
    hit = _PROGRAMMES.get(key)
    if hit is not None and hit[0] is entry and hit[1] is limits:
        return hit[2]
    if request.policy is WeightPolicy.ACTUAL:
        request = replace(request, patient=Patient(weight_kg=patient.weight_kg))
    dosed = dose(entry, request)
    prescribed: tuple[Finding, ...] | None = None
    made: DosedSession | None = None
    delivered: tuple[Finding, ...] = ()
    error: InputError | None = None
    try:
        made = prepare(dosed, entry, request, _steering(entry, dosed, limits))
        # Checked as prescribed and as delivered at once (the worse of the two decides).
        delivered = tuple(check_programme(made, limits))
    except InputError as problem:
        error = problem
    if made is None or _hard(delivered):
        # The rare path: is the prescription itself past a hard limit (refused as such)?
        prescribed = tuple(check_programme(dosed, limits))
    found = _Programme(dosed, prescribed, made, delivered, error)
    if len(_PROGRAMMES) >= _CACHE_MAX:
        _PROGRAMMES.clear()  # bounded: memory stays flat over any batch
    _PROGRAMMES[key] = (entry, limits, found)
    return found


def decide(
    prepared: Prepared,
    limits: LimitLibrary,
    context: CheckContext | None = None,
    override_reason: str | None = None,
    *,
    predicted_peak: float | None = None,
) -> Verdict:
    """Check a prepared session in its context and apply an override.

    Args:
        prepared: From :func:`prepare_session`.
        limits: The limit library.
        context: Vitals, medications, conditions, previous sessions, session time; with
            ``during`` the vitals are a reading during the session (continue/pause/stop).
        override_reason: Acknowledges every soft finding (never a hard one).
        predicted_peak: The session's predicted plasma peak with what earlier sessions left
            (a plan); without it, and where the library limits the peak, the session's own.

    Returns:
        The verdict.

    Raises:
        InputError: For a blank override reason or inconsistent previous sessions.
    """
    session = prepared.session
    protocol = session.protocol
    findings: list[Finding] = list(session.findings)
    if not limits.ref.approved:
        findings.insert(0, _unapproved(limits.ref))
    foreign = limits.foreign_profile(protocol.id, protocol.route)
    if foreign is not None:
        findings.append(_foreign(protocol.id, protocol.route, foreign))
    findings += check(session, limits, context, dose_findings=list(prepared.findings))
    if limits.limit(protocol.id, "session", "predicted_peak", protocol.route) is not None:
        peak = predicted_peak if predicted_peak is not None else _own_peak(session)
        if peak is not None:
            findings += check_predicted_peak(limits, protocol.id, protocol.route, peak)
    reason = clean_reason(override_reason)
    findings = override(findings, reason)
    outcome = status(findings)
    may = outcome == "ok" or (
        outcome == "soft" and all(f.overridden for f in findings if f.severity is Severity.SOFT)
    )
    during = None
    if context is not None and context.during:
        during = _during(findings, outcome, may)
    # A reading during a session answers continue/pause/stop: it never shows a programme to
    # start, and it is "ready" only in the sense that the session may continue.
    shown = outcome != "hard" and during is None
    return Verdict(
        _KEY,
        findings=tuple(findings),
        status=outcome,
        ready=may if during is None else during.action == "continue",
        override_reason=reason,
        phases=session.phases if shown else withheld(session.phases),
        preparation=session.preparation if shown else None,
        measured=session.measured if shown else None,
        during=during,
    )


def held_back(decided: Verdict, finding: Finding) -> Verdict:
    """A verdict that may not start, for a reason outside the limits (``next``'s review).

    The finding is added (soft: a clinician must review, exit 3; hard: do not dose, exit 4),
    the session is not ready, and the pump programme and preparation are withheld.

    Args:
        decided: The verdict on the proposed dose.
        finding: Why the dose is held back.

    Returns:
        The verdict, held back.
    """
    findings = (*decided.findings, finding)
    return Verdict(
        _KEY,
        findings=findings,
        status=status(list(findings)),
        ready=False,
        override_reason=decided.override_reason,
        phases=withheld(decided.phases),
        preparation=None,
        measured=None,
        during=decided.during,
    )


def session(
    entry: ProtocolEntry,
    request: DoseRequest,
    limits: LimitLibrary,
    context: CheckContext | None = None,
    override_reason: str | None = None,
) -> SessionDose:
    """Compute a session and pass it through the gate: what ``dose`` and ``check`` show.

    Args:
        entry: The protocol and its library.
        request: Patient, policy, overrides, preparation options.
        limits: The limit library.
        context: Vitals, medications, conditions, previous sessions, session time.
        override_reason: Acknowledges every soft finding (never a hard one).

    Returns:
        The checked session. With a hard finding (or for a reading during a session) the
        pump programme and the preparation are withheld (null).

    Raises:
        InputError: For bad input, or a blank override reason.
    """
    prepared = prepare_session(entry, request, limits)
    decided = decide(prepared, limits, context, override_reason)
    return checked(prepared, decided, limits, context)


def checked(
    prepared: Prepared,
    decided: Verdict,
    limits: LimitLibrary,
    context: CheckContext | None = None,
) -> SessionDose:
    """The checked session document of a prepared session and the verdict on it.

    Args:
        prepared: From :func:`prepare_session`.
        decided: From :func:`decide` on it.
        limits: The limit library it was checked against.
        context: The context it was checked in.

    Returns:
        The checked session.
    """
    dosed = prepared.session
    return seal(
        SessionDose,
        decided,
        protocol=dosed.protocol,
        patient=dosed.patient,
        dosing_weight=dosed.dosing_weight,
        total_dose_mg=dosed.total_dose_mg,
        total_dose_mg_per_kg=dosed.total_dose_mg_per_kg,
        total_duration_min=dosed.total_duration_min,
        delivered_total_mg=dosed.delivered_total_mg,
        delivered_total_mg_per_kg=dosed.delivered_total_mg_per_kg,
        systemic=dosed.systemic,
        rounding=dosed.rounding,
        at=None if context is None else context.at,
        context=context,
        library=limits.ref,
        protocol_library=dosed.protocol_library,
    )


def _during(findings: list[Finding], outcome: Status, may: bool) -> During:
    """Continue, pause or stop: the answer to a reading taken during a session."""
    vitals = [f for f in findings if (f.parameter or "").startswith("vitals_during.")]
    if outcome == "hard":
        action = "stop"
    elif not may:
        action = "pause"
    else:
        action = "continue"
    hard = [f.message for f in findings if f.severity is Severity.HARD]
    soft = [f.message for f in findings if f.severity is Severity.SOFT]
    reasons = hard if action == "stop" else soft
    if not reasons:
        reasons = [f.message for f in vitals] or ["the reading is within the during-session limits"]
    return During(action=action, reasons=tuple(reasons))


def _steering(entry: ProtocolEntry, dosed: DosedSession, limits: LimitLibrary) -> Steering:
    """The limits that steer the draw's and each pump rate's rounding, in mg, mg/mL, mg/h."""
    protocol = dosed.protocol
    kg = None if dosed.dosing_weight is None else dosed.dosing_weight.kg
    actual = dosed.patient.weight_kg

    def sides(parameter: str, factor: float | None = 1.0) -> Sides:
        """A session limit's sides times ``factor`` (a weight, 1/hours), each named."""
        if factor is None:
            return NO_SIDES
        named = _named_sides(limits, protocol.id, protocol.route, parameter)
        return named if factor == 1.0 else named.scaled(factor)

    def within(limit: Sides, others: float) -> Sides:
        """The maxima of a sum, as what is left of them for one part beside ``others``."""
        return Sides(tuple((value - others, name) for value, name in limit.upper))

    total = sides("total_dose") + sides("total_dose_per_kg", kg)
    total = total + sides("total_dose_per_kg_actual", actual)
    # Several boluses are also limited summed (limits._check_session).
    boluses = sides("bolus_dose") + sides("bolus_dose_per_kg", kg)
    bolus_mg = sum(p.dose_mg for p in dosed.phases if p.kind == "bolus")
    caps = [phase.cap for phase in entry.protocol.phases]
    doses, rates = [], []
    for index, phase in enumerate(dosed.phases):
        # What the phase may deliver, in mg: within the session's total beside the other
        # phases, and for a bolus within the bolus limits, alone and summed with the others.
        mine = within(total, dosed.total_dose_mg - phase.dose_mg)
        if phase.kind == "bolus":
            mine = mine + boluses + within(boluses, bolus_mg - phase.dose_mg)
        doses.append(mine)
        if phase.duration_min is None:
            rates.append(NO_SIDES)
            continue
        rate = mine.scaled(60 / phase.duration_min)
        if phase.kind == "bolus":
            rate = rate + sides("bolus_rate_per_kg", kg)
        else:
            rate = rate + sides("rate") + sides("rate_per_kg", kg)
            rate = rate + sides("rate_per_kg_actual", actual)
        cap = caps[index] if index < len(caps) else None
        if cap is not None:
            rate = rate + Sides(((cap.value, f"the protocol's {cap} cap"),))
        rates.append(rate)
    form = entry.protocol.form
    return Steering(
        total=total,
        concentration=sides("final_concentration"),
        doses=tuple(doses),
        rates=tuple(rates),
        pump=sides("pump_rate"),
        measured=NO_SIDES
        if form is None
        else sides("liquid_volume" if form.kind == "solution" else "tablet_count"),
    )


_NAMED: dict[tuple[int, str, str, str], tuple[LimitLibrary, Sides]] = {}


def _named_sides(limits: LimitLibrary, protocol_id: str, route: str, parameter: str) -> Sides:
    """A session limit's sides as :class:`Sides`, built once per library and protocol."""
    key = (id(limits), protocol_id, route, parameter)
    hit = _NAMED.get(key)
    if hit is not None and hit[0] is limits:
        return hit[1]
    limit = limits.limit(protocol_id, "session", parameter, route)
    found = NO_SIDES
    if limit is not None:
        bounds = limit.bounds

        def named(sides: tuple[str, ...]) -> tuple[tuple[float, object], ...]:
            return tuple(
                (value, _SideName(value, bounds.unit, side))
                for side in sides
                if (value := getattr(bounds, side)) is not None
            )

        found = Sides(named(("upper_hard", "upper_soft")), named(("lower_hard", "lower_soft")))
    if len(_NAMED) > 4096:
        _NAMED.clear()
    _NAMED[key] = (limits, found)
    return found


@dataclass(frozen=True, slots=True)
class _SideName:
    """A limit side, named only when a message needs it (a plan builds ~40 a session)."""

    value: float
    unit: str
    side: str

    def __str__(self) -> str:
        strength, kind = self.side.split("_")
        bound = "maximum" if strength == "upper" else "minimum"
        return f"the {format_number(self.value)} {self.unit} {kind} {bound}"


def _own_peak(session: DosedSession) -> float | None:
    """A session's predicted plasma peak on its own (default PK model), or None."""
    from ketadose.pk import DEFAULT_MODEL, MODELS, peaks, session_infusions

    weight = session.patient.weight_kg
    if session.protocol.route != "iv" or weight is None:
        return None
    return peaks(MODELS[DEFAULT_MODEL], weight, [session_infusions(session.phases)])[0]


@functools.lru_cache(maxsize=8)
def _unapproved(ref: LibraryRef) -> Finding:
    """The finding every check against an unapproved limit library carries (made once)."""
    return Finding(
        severity=Severity.INFO,
        code="library-unapproved",
        message=f"UNAPPROVED EXAMPLE LIBRARY: limits {ref.name} {ref.version} name no "
        "approver; a clinic must review and approve them",
    )


@functools.lru_cache(maxsize=64)
def _foreign(protocol_id: str, route: str, foreign: str) -> Finding:
    """The finding that says a same-id limit profile of another route does not apply."""
    return Finding(
        severity=Severity.INFO,
        code="limit-profile-other-route",
        message=f'the limit profile "{protocol_id}" is written for the {foreign} route and does '
        f"not apply to this {route} protocol: the default and {route} route limits apply",
    )


def withheld(phases: tuple[PhaseDose, ...]) -> tuple[PhaseDose, ...]:
    """The phases without their pump programme: what a session past a hard limit shows.

    Args:
        phases: The computed phases.

    Returns:
        The phases with pump rate, volume and drops set to None.
    """
    blank = {
        "pump_rate_ml_per_h": None,
        "pump_rate_ml_per_h_rounded": None,
        "volume_ml": None,
        "drops_per_min": None,
        "delivered_rate_mg_per_h": None,
        "delivered_dose_mg": None,
    }
    return tuple(phase.model_copy(update=blank) for phase in phases)


def exit_code(status: Status, ready: bool) -> ExitCode:
    """The documented exit code of a checked result (a session, a plan, a next session).

    Args:
        status: The worst finding's severity.
        ready: Whether it may go ahead (every soft finding overridden).

    Returns:
        4 on a hard finding, 3 on a soft finding not overridden, else 0.
    """
    if status == "hard":
        return ExitCode.HARD_LIMIT
    if not ready:
        return ExitCode.SOFT_LIMIT
    return ExitCode.OK
