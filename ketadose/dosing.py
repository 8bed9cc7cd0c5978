"""Session doses: a protocol's phases times a patient's dosing weight, with the pump programme.

Pure: no I/O, no clock. :func:`dose` computes the phases, :func:`prepare` the preparation
and what it delivers; neither checks anything. Only ``ketadose.gate`` turns the result into
the checked :class:`~ketadose.models.SessionDose` that commands may show.
"""

from dataclasses import dataclass, field, replace

from ketadose.errors import InputError, InputField
from ketadose.libfile import Quantity
from ketadose.models import (
    DosedSession,
    DosingWeight,
    Finding,
    Patient,
    PhaseDose,
    ProtocolRef,
    Rounding,
    Severity,
    Systemic,
    WeightPolicy,
    revised,
)
from ketadose.preparation import DEFAULT_DILUENT, NO_STEERING, Steering, measure, programme
from ketadose.protocols import EscalationStep, Phase, ProtocolEntry
from ketadose.units import Kind, format_number, show
from ketadose.weight import dosing_weight


@dataclass(frozen=True, slots=True)
class DoseRequest:
    """Everything ``ketadose dose`` is asked, beyond the protocol, as plain values.

    Attributes:
        patient: Weight, height, sex, age.
        policy: The dosing-weight policy.
        dose: Replaces the amount of the protocol's one bolus/timed/fixed phase.
        rate: Replaces the rate of the protocol's one rate phase.
        duration_min: Replaces the duration of the one phase (or of the one rate phase).
        vial_mg_per_ml: Vial strength (default 10 mg/mL; 100 mg/mL for sc).
        strength: The strength of a sublingual or oral form (mg/mL for a solution, mg a
            tablet), one the protocol's form lists (default: its first); its kind must be
            the form's (100 mg is not 100 mg/mL).
        final_volume_ml: Volume the drug is made up to (default: the protocol's).
        drop_factor: Gravity-set drops/mL, for drops/min.
        rounding: Display increments.
        basis_kg: Dose on this dosing weight (kg) instead of computing it from ``policy``:
            the basis earlier sessions were dosed on, kept by ``next`` so that a step of
            +0.25 mg/kg is on the same weight.

    """

    patient: Patient
    policy: WeightPolicy = WeightPolicy.ACTUAL
    dose: Quantity | None = None
    rate: Quantity | None = None
    duration_min: float | None = None
    vial_mg_per_ml: float | None = None
    strength: Quantity | None = None
    final_volume_ml: float | None = None
    drop_factor: int | None = None
    rounding: Rounding = field(default_factory=Rounding)
    basis_kg: float | None = None


AMOUNT_KINDS = ("bolus", "timed", "fixed")


def at_step(request: DoseRequest, step: EscalationStep | None) -> DoseRequest:
    """The request with an escalation step's dose, rate and duration in place of the protocol's.

    Args:
        request: The session's request.
        step: The step, or None for the protocol's own programme.

    Returns:
        The request for that step.
    """
    if step is None:
        return request
    return replace(
        request,
        dose=step.dose or request.dose,
        rate=step.rate or request.rate,
        duration_min=step.duration.value if step.duration else request.duration_min,
    )


def session_dose(entry: ProtocolEntry, request: DoseRequest) -> DosedSession:
    """Compute one session's dose programme and its preparation, unchecked.

    What the gate does in two steps (:func:`dose`, then :func:`prepare` with the limits
    that steer rounding); for simulations and tests that need the arithmetic alone.

    Args:
        entry: The protocol and the library it came from.
        request: Patient, policy, overrides and preparation options.

    Returns:
        The dosed session with its pump programme.

    Raises:
        InputError: See :func:`dose` and :func:`prepare`.
    """
    return prepare(dose(entry, request), entry, request)


def dose(entry: ProtocolEntry, request: DoseRequest) -> DosedSession:
    """Compute one session's doses and rates, before any preparation.

    Args:
        entry: The protocol and the library it came from.
        request: Patient, policy, overrides (preparation options are not used here).

    Returns:
        Every phase in mg and mg/kg, rates in mg/h and mg/kg/h, totals and info findings;
        no preparation yet.

    Raises:
        InputError: For a missing weight or an override that does not fit the protocol.

    """
    protocol = entry.protocol
    findings: list[Finding] = []
    if entry.overrides_shipped:
        findings.append(
            _info(
                "protocol-overridden",
                f'protocol "{protocol.id}" from {entry.library.path} replaces the shipped one; '
                "nothing of the shipped protocol is used but its id",
            )
        )
    if not entry.library.approved:
        findings.append(
            _info(
                "protocol-library-unapproved",
                f"UNAPPROVED EXAMPLE LIBRARY: protocols {entry.library.name} "
                f"{entry.library.version} name no approver",
            )
        )

    phases = _apply_overrides(protocol.phases, request, protocol.id, findings)
    # A weight-based protocol needs a weight even when an override is in mg: without it no
    # per-kg limit could be checked.
    needs_weight = protocol.weight_based or any(p.per_kg for p in phases)
    weight: DosingWeight | None = None
    if request.basis_kg is not None and needs_weight:
        weight = DosingWeight(
            basis=request.policy,
            kg=request.basis_kg,
            note="the dosing weight the earlier sessions were dosed on, kept",
        )
    elif needs_weight or request.patient.weight_kg is not None:
        weight, weight_findings = dosing_weight(request.patient, request.policy)
        findings.extend(weight_findings)
    kg = None if weight is None else weight.kg

    dosed = tuple(_dose_phase(phase, kg, findings) for phase in phases)
    total_mg = sum(p.dose_mg for p in dosed)
    durations = [p.duration_min for p in dosed]
    return DosedSession(
        protocol=ProtocolRef(
            id=protocol.id,
            name=protocol.name,
            category=protocol.category,
            route=protocol.route,
            form=None if protocol.form is None else protocol.form.kind,
        ),
        patient=request.patient,
        dosing_weight=weight,
        phases=dosed,
        total_dose_mg=total_mg,
        total_dose_mg_per_kg=None if kg is None else total_mg / kg,
        total_duration_min=None if None in durations else sum(d for d in durations if d),
        preparation=None,
        systemic=systemic(entry, total_mg),
        rounding=request.rounding,
        findings=tuple(findings),
        protocol_library=entry.library,
    )


def prepare(
    dosed: DosedSession,
    entry: ProtocolEntry,
    request: DoseRequest,
    steer: Steering = NO_STEERING,
) -> DosedSession:
    """Add the preparation, pump programme and delivered values to a dosed session.

    Args:
        dosed: The session from :func:`dose`.
        entry: Its protocol.
        request: The preparation options (vial, bag, drop factor, rounding).
        steer: The limits that steer the draw's and each pump rate's rounding.

    Returns:
        The session with its preparation and delivered values.

    Raises:
        InputError: For preparation options that cannot be made up.
    """
    protocol = entry.protocol
    if protocol.form is not None:
        return _measured(dosed, entry, request, steer)
    if request.strength is not None:
        raise InputError(
            InputField.STRENGTH,
            f" does not apply to the {protocol.route} route",
            *((": use ", InputField.VIAL) if protocol.route in ("iv", "im", "sc") else ()),
        )
    preparation, phases, prep_findings = programme(
        dosed.phases,
        route=protocol.route,
        vial_mg_per_ml=request.vial_mg_per_ml,
        final_volume_ml=request.final_volume_ml
        if request.final_volume_ml is not None
        else (None if protocol.preparation is None else protocol.preparation.final_volume.value),
        diluent=protocol.preparation.diluent if protocol.preparation else DEFAULT_DILUENT,
        drop_factor=request.drop_factor,
        rounding=request.rounding,
        steer=steer,
    )
    # What can reach the patient: the larger of what the bag or syringe holds and what the
    # pump programme runs (a pump rate rounded up empties the bag early; one rounded down
    # leaves drug in it that a pump left running would still give).
    pumped = sum(p.delivered_dose_mg or 0.0 for p in phases)
    delivered = pumped if preparation is None else max(preparation.delivered_mg, pumped)
    return _given(dosed, entry, delivered, prep_findings, phases=phases, preparation=preparation)


def _measured(
    dosed: DosedSession, entry: ProtocolEntry, request: DoseRequest, steer: Steering
) -> DosedSession:
    """A sublingual or oral dose measured out of the protocol's form (liquid or tablets)."""
    protocol = entry.protocol
    assert protocol.form is not None
    measured, phases, findings = measure(
        dosed.phases,
        route=protocol.route,
        form=protocol.form,
        strength=request.strength,
        given={
            InputField.VIAL: request.vial_mg_per_ml,
            InputField.BAG: request.final_volume_ml,
            InputField.DROP_FACTOR: request.drop_factor,
        },
        steer=steer,
    )
    return _given(dosed, entry, measured.delivered_mg, findings, phases=phases, measured=measured)


def _given(
    dosed: DosedSession,
    entry: ProtocolEntry,
    delivered_mg: float,
    findings: list[Finding],
    **made: object,
) -> DosedSession:
    """The session as made (``made``: phases and preparation or measure) and what it delivers."""
    kg = None if dosed.dosing_weight is None else dosed.dosing_weight.kg
    return revised(
        dosed,
        **made,
        systemic=systemic(entry, delivered_mg),
        delivered_total_mg=delivered_mg,
        delivered_total_mg_per_kg=None if kg is None else delivered_mg / kg,
        findings=(*dosed.findings, *findings),
    )


def systemic(entry: ProtocolEntry, delivered_mg: float) -> Systemic | None:
    """The source's estimate of the systemic dose of a non-IV dose, or None (IV, or no source).

    Args:
        entry: The protocol (its bioavailability, and the file that set it).
        delivered_mg: The dose as delivered.

    Returns:
        The estimate, shown beside the dose and never dosed on.
    """
    found = entry.protocol.bioavailability
    if found is None:
        return None
    library = entry.bioavailability_from or entry.library
    return Systemic(
        route=entry.protocol.route,
        percent=found.percent,
        percent_high=found.percent_high,
        mg=delivered_mg * found.percent / 100,
        mg_high=None if found.percent_high is None else delivered_mg * found.percent_high / 100,
        cite=found.cite,
        source=found.source,
        evidence=found.evidence,
        equivalence=found.equivalence,
        library=library.path,
    )


def _info(code: str, message: str) -> Finding:
    return Finding(severity=Severity.INFO, code=code, message=message)


def _apply_overrides(
    phases: tuple[Phase, ...], request: DoseRequest, protocol_id: str, findings: list[Finding]
) -> tuple[Phase, ...]:
    """Replace the dose, rate or duration of the one phase each override can mean."""
    result = list(phases)
    if request.dose is not None:
        index = _only(result, AMOUNT_KINDS, InputField.DOSE, "bolus, timed or fixed", protocol_id)
        phase = result[index]
        if phase.kind == "fixed" and request.dose.kind is not Kind.DOSE:
            raise InputError(
                f'protocol "{protocol_id}" gives fixed doses: write ', InputField.DOSE, " in mg"
            )
        findings.append(_changed("dose", phase.dose, request.dose))
        result[index] = phase.model_copy(update={"dose": request.dose})
    if request.rate is not None:
        index = _only(result, ("rate",), InputField.RATE, "rate", protocol_id)
        phase = result[index]
        findings.append(_changed("rate", phase.rate, request.rate))
        result[index] = phase.model_copy(update={"rate": request.rate})
    if request.duration_min is not None:
        if len(result) == 1:
            index = 0
        else:
            index = _only(result, ("rate",), InputField.DURATION, "rate", protocol_id)
        phase = result[index]
        text = f"{show(request.duration_min)} min"
        new = Quantity(Kind.DURATION, request.duration_min, text)
        findings.append(_changed("duration", phase.duration, new))
        result[index] = phase.model_copy(update={"duration": new})
    return tuple(result)


def _only(
    phases: list[Phase], kinds: tuple[str, ...], option: InputField, what: str, protocol_id: str
) -> int:
    """Index of the single phase of ``kinds``; an override that could mean two is refused."""
    matches = [i for i, phase in enumerate(phases) if phase.kind in kinds]
    if len(matches) != 1:
        found = " + ".join(f"{p.kind} {p.title}" for p in phases)
        raise InputError(
            option,
            f' needs a protocol with exactly one {what} phase; "{protocol_id}" has: {found}',
        )
    return matches[0]


def _changed(what: str, old: Quantity | None, new: Quantity) -> Finding:
    was = "none" if old is None else str(old)
    return _info(f"{what}-override", f"{what} set on request: {new} (protocol: {was})")


def _dose_phase(phase: Phase, kg: float | None, findings: list[Finding]) -> PhaseDose:
    """One phase in mg, mg/kg, mg/h and mg/kg/h for a dosing weight (None: not weight-based)."""
    hours = None if phase.duration is None else phase.duration.value / 60

    def per_kg(mg: float) -> float | None:
        return None if kg is None else mg / kg

    if phase.kind == "rate":
        assert phase.rate is not None and hours is not None  # guaranteed by Phase validation
        rate = _times_weight(phase.rate, kg)
        rate_per_kg = phase.rate.value if phase.rate.kind is Kind.RATE_PER_KG else per_kg(rate)
        if phase.cap is not None and rate > phase.cap.value:
            findings.append(
                Finding(
                    severity=Severity.INFO,
                    code="protocol-cap-applied",
                    message=f"{phase.title}: {format_number(rate, 0.01)} mg/h capped at the "
                    f"protocol's {phase.cap}",
                )
            )
            rate = phase.cap.value
            rate_per_kg = per_kg(rate)
        dose = rate * hours
        return PhaseDose(
            kind=phase.kind,
            label=phase.title,
            dose_mg=dose,
            dose_mg_per_kg=None if rate_per_kg is None else rate_per_kg * hours,
            duration_min=phase.duration.value if phase.duration else None,
            rate_mg_per_h=rate,
            rate_mg_per_kg_per_h=rate_per_kg,
        )
    assert phase.dose is not None  # guaranteed by Phase validation
    dose = _times_weight(phase.dose, kg)
    dose_per_kg = phase.dose.value if phase.dose.kind is Kind.DOSE_PER_KG else per_kg(dose)
    return PhaseDose(
        kind=phase.kind,
        label=phase.title,
        dose_mg=dose,
        dose_mg_per_kg=dose_per_kg,
        duration_min=None if phase.duration is None else phase.duration.value,
        rate_mg_per_h=None if hours is None else dose / hours,
        rate_mg_per_kg_per_h=None if hours is None or dose_per_kg is None else dose_per_kg / hours,
    )


def _times_weight(quantity: Quantity, kg: float | None) -> float:
    """A per-kg value times the dosing weight, or an absolute value as it is (mg or mg/h)."""
    if quantity.kind in (Kind.DOSE_PER_KG, Kind.RATE_PER_KG):
        if kg is None:  # pragma: no cover - session_dose always has a weight for per-kg
            raise InputError("a per-kg dose needs a weight")
        return quantity.value * kg
    return quantity.value
