"""FHIR R4 Bundles (``--format fhir``): a checked session or plan as draft MedicationRequests.

Plain dicts and JSON only: the runtime does not depend on ``fhir.resources`` (the tests use it
to validate). Every MedicationRequest is ``status: draft``, ``intent: proposal``: a
decision-support proposal, never an order. Each phase is one ``dosageInstruction`` with two
``doseAndRate`` entries: ``ordered`` (the weight-based order, mg/kg or mg/kg/h) and
``calculated`` (mg for this patient, and the programmed pump rate in mL/h).

Deterministic: no clock and no random ids; every id is a ``uuid5`` of the rendered content.
Each phase's ``timing.event`` is its start, a FHIR dateTime with the clinic's UTC offset (a FHIR
dateTime with a time must have one; ketadose times always do).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from ketadose.clock import aware, shift
from ketadose.limits import LimitLibrary
from ketadose.models import (
    DosingWeight,
    Finding,
    LibraryRef,
    Measured,
    PhaseDose,
    Preparation,
    ProtocolRef,
    SessionDose,
    Systemic,
    significant,
)
from ketadose.planning import Plan
from ketadose.render import preparation_line, route_lines
from ketadose.units import format_number

UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
DOSE_RATE_TYPE = "http://terminology.hl7.org/CodeSystem/dose-rate-type"
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "http://ketadose.example/fhir")

#: SNOMED CT route codes (FHIR's route-codes value set). A route not listed gets text only.
ROUTES: dict[str, tuple[str, str]] = {
    "iv": ("47625008", "Intravenous route"),
    "im": ("78421000", "Intramuscular route"),
    "sc": ("34206005", "Subcutaneous route"),
    "intranasal": ("46713006", "Nasal route"),
    "oral": ("26643006", "Oral route"),
    "sublingual": ("37839007", "Sublingual route"),
}
_ROUTE_TEXT = {"iv": "IV", "im": "IM", "sc": "SC"}
#: SNOMED CT dose forms by route and measured form (None: the route's only form). A non-IV
#: request references a contained Medication carrying its form; a form not listed (a
#: sublingual solution or tablet: no code was confirmed) gets text only.
DOSE_FORMS: dict[tuple[str, str | None], tuple[str, str]] = {
    ("im", None): ("385219001", "Conventional release solution for injection"),
    ("sc", None): ("385219001", "Conventional release solution for injection"),
    ("intranasal", None): ("385157007", "Conventional release nasal spray"),
    ("oral", "solution"): ("385023001", "Conventional release oral solution"),
    ("oral", "tablet"): ("421026006", "Oral tablet"),
}


def session_bundle(session: SessionDose, limits: LimitLibrary) -> str:
    """Render one checked session as a FHIR R4 Bundle holding one MedicationRequest.

    Args:
        session: The session from ``gate.session`` (``dose`` / ``check``).
        limits: The limit library it was checked against (for ``maxDosePerAdministration``).

    Returns:
        The Bundle as JSON text, indented, with a trailing newline.
    """
    request = _medication_request(
        protocol=session.protocol,
        phases=session.phases,
        weight=session.dosing_weight,
        preparation=session.preparation,
        measured=session.measured,
        systemic=session.systemic,
        findings=session.findings,
        status=session.status,
        ready=session.ready,
        start=session.at,
        subject=_subject(None),
        limits=limits,
        protocol_library=session.protocol_library,
        notes=[],
    )
    key = _digest([request])
    return _bundle(key, [_entry(_uuid(key, "MedicationRequest", 1), request)])


def plan_bundle(plan: Plan, limits: LimitLibrary) -> str:
    """Render a planned series as a FHIR R4 Bundle: a CarePlan and one MedicationRequest each.

    Args:
        plan: The plan from ``planning.plan``.
        limits: The limit library it was checked against.

    Returns:
        The Bundle as JSON text, indented, with a trailing newline. The CarePlan (draft
        proposal) spans the first to the last session and references every MedicationRequest.
    """
    subject = _subject(plan.patient_id)
    requests = [
        _medication_request(
            protocol=plan.protocol,
            phases=session.phases,
            weight=plan.dosing_weight,
            preparation=session.preparation,
            measured=session.measured,
            systemic=session.systemic,
            findings=session.findings,
            status=session.status,
            ready=session.ready,
            start=session.timeline.infusion_start,
            subject=subject,
            limits=limits,
            protocol_library=plan.protocol_library,
            notes=[f"Session {session.number} of {len(plan.sessions)}."]
            + ([session.condition] if session.condition else []),
        )
        for session in plan.sessions
    ]
    key = _digest(requests)
    care_plan_id = _uuid(key, "CarePlan", 1)
    ids = [_uuid(key, "MedicationRequest", n) for n in range(1, len(requests) + 1)]
    for request in requests:
        request["basedOn"] = [{"reference": f"urn:uuid:{care_plan_id}"}]
    care_plan: dict[str, Any] = {
        "resourceType": "CarePlan",
        "status": "draft",
        "intent": "proposal",
        "title": f"ketadose plan: {plan.protocol.name}",
        "description": f"{plan.protocol.name} ({plan.protocol.id}): {len(plan.sessions)} "
        f"sessions from {plan.sessions[0].date.isoformat()} to "
        f"{plan.sessions[-1].date.isoformat()}. Evaluation: {plan.evaluation}",
        "subject": subject,
        "period": {
            "start": plan.sessions[0].date.isoformat(),
            "end": plan.sessions[-1].date.isoformat(),
        },
        "activity": [{"reference": {"reference": f"urn:uuid:{i}"}} for i in ids],
        "note": [
            {"text": text}
            for text in (
                _status_text(plan.status, plan.ready),
                *plan.escalation_lines(),
                _library_text("limit library", limits.ref),
                _library_text("protocol library", plan.protocol_library),
            )
        ],
    }
    entries = [_entry(care_plan_id, care_plan)]
    entries += [_entry(i, r) for i, r in zip(ids, requests, strict=True)]
    return _bundle(key, entries)


def _medication_request(
    *,
    protocol: ProtocolRef,
    phases: tuple[PhaseDose, ...],
    weight: DosingWeight | None,
    preparation: Preparation | None,
    measured: Measured | None,
    systemic: Systemic | None,
    findings: tuple[Finding, ...],
    status: str,
    ready: bool,
    start: datetime | None,
    subject: dict[str, Any],
    limits: LimitLibrary,
    protocol_library: LibraryRef,
    notes: list[str],
) -> dict[str, Any]:
    """One session as a draft MedicationRequest (no id: ids are derived from the content)."""
    withheld = status == "hard"
    maximum = _max_dose_mg(protocol, limits, weight)
    dosages = []
    offset = 0.0
    for sequence, phase in enumerate(phases, 1):
        at = None if start is None else shift(start, timedelta(minutes=offset))
        dosages.append(_dosage(sequence, phase, protocol.route, at, withheld, maximum))
        offset += phase.duration_min or 0
    texts = [*notes, _status_text(status, ready)]
    if withheld:
        texts.append("Pump programme and preparation withheld: a hard limit is exceeded.")
    elif preparation is not None:
        texts.append(f"{preparation_line(preparation)}.")
    elif measured is not None:
        texts.append(f"Measure {measured.text}.")
    texts += [f"{line}." for line in route_lines(protocol.route, systemic, refused=withheld)]
    if maximum is not None:
        texts.append(
            f"maxDosePerAdministration {format_number(maximum)} mg: the session total dose "
            "hard maximum of the limit library."
        )
    texts += [_finding_text(f) for f in findings]
    texts += [
        _library_text("limit library", limits.ref),
        _library_text("protocol library", protocol_library),
    ]
    medication: dict[str, Any] = {"medicationCodeableConcept": _medication(protocol)}
    if protocol.route != "iv":
        # The dose form lives on a Medication: a contained one, referenced.
        form = DOSE_FORMS.get((protocol.route, protocol.form))
        text = f"{protocol.route} {protocol.form or 'form'}"
        medication = {
            "contained": [
                {
                    "resourceType": "Medication",
                    "id": "medication",
                    "code": _medication(protocol),
                    "form": {"text": measured.name if measured else text}
                    if form is None
                    else _code(SNOMED, *form),
                }
            ],
            "medicationReference": {"reference": "#medication"},
        }
    return {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "proposal",
        **medication,
        "subject": subject,
        "dosageInstruction": dosages,
        "note": [{"text": text} for text in texts],
    }


def _dosage(
    sequence: int,
    phase: PhaseDose,
    route: str,
    at: datetime | None,
    withheld: bool,
    maximum: float | None,
) -> dict[str, Any]:
    """One phase as a Dosage: text, route, timing, ordered and calculated dose and rate."""
    rate_phase = phase.kind == "rate"
    per_kg = phase.kind != "fixed"
    ordered: dict[str, Any] = {"type": _code(DOSE_RATE_TYPE, "ordered", "Ordered")}
    if rate_phase:
        if per_kg and phase.rate_mg_per_kg_per_h is not None:
            ordered["rateQuantity"] = _quantity(phase.rate_mg_per_kg_per_h, "mg/kg/h")
        elif phase.rate_mg_per_h is not None:
            ordered["rateQuantity"] = _quantity(phase.rate_mg_per_h, "mg/h")
    elif per_kg and phase.dose_mg_per_kg is not None:
        ordered["doseQuantity"] = _quantity(phase.dose_mg_per_kg, "mg/kg")
    else:
        ordered["doseQuantity"] = _quantity(phase.dose_mg, "mg")
    calculated: dict[str, Any] = {
        "type": _code(DOSE_RATE_TYPE, "calculated", "Calculated"),
        "doseQuantity": _quantity(phase.dose_mg, "mg"),
    }
    if phase.pump_rate_ml_per_h_rounded is not None:
        calculated["rateQuantity"] = _quantity(phase.pump_rate_ml_per_h_rounded, "mL/h")

    repeat: dict[str, Any] = {}
    timing: dict[str, Any] = {}
    if at is not None:
        timing["event"] = [aware(at, "the phase's start").isoformat()]
    if phase.duration_min is not None:
        repeat["duration"] = significant(phase.duration_min)
        repeat["durationUnit"] = "min"
    if repeat:
        timing["repeat"] = repeat

    coded = ROUTES.get(route)
    dosage: dict[str, Any] = {
        "sequence": sequence,
        "text": _dosage_text(phase, route, withheld),
        **({"timing": timing} if timing else {}),
        "route": {"text": _ROUTE_TEXT.get(route, route)}
        if coded is None
        else _code(SNOMED, *coded),
        "doseAndRate": [ordered, calculated],
    }
    if maximum is not None:
        dosage["maxDosePerAdministration"] = _quantity(maximum, "mg")
    return dosage


def _dosage_text(phase: PhaseDose, route: str, withheld: bool) -> str:
    """``infusion: 0.5 mg/kg (40 mg) IV over 40 min at 150 mL/h``."""
    route_text = _ROUTE_TEXT.get(route, route)
    if phase.kind == "rate" and phase.rate_mg_per_h is not None:
        rate = f"{format_number(phase.rate_mg_per_h)} mg/h"
        if phase.rate_mg_per_kg_per_h is not None:
            rate = f"{format_number(phase.rate_mg_per_kg_per_h)} mg/kg/h ({rate})"
        text = f"{rate} {route_text}"
        if phase.duration_min is not None:
            text += f" for {format_number(phase.duration_min)} min"
        text += f" ({format_number(phase.dose_mg)} mg)"
    else:
        text = f"{format_number(phase.dose_mg)} mg"
        if phase.kind != "fixed" and phase.dose_mg_per_kg is not None:
            text = f"{format_number(phase.dose_mg_per_kg)} mg/kg ({text})"
        text += f" {route_text}"
        if phase.duration_min is not None:
            text += f" over {format_number(phase.duration_min)} min"
    if phase.pump_rate_ml_per_h_rounded is not None:
        text += f" at {format_number(phase.pump_rate_ml_per_h_rounded)} mL/h"
    elif withheld:
        text += "; no pump rate: withheld, a hard limit is exceeded"
    return f"{phase.label}: {text}"


def _max_dose_mg(
    protocol: ProtocolRef, limits: LimitLibrary, weight: DosingWeight | None
) -> float | None:
    """The session total dose hard maximum in mg: the smaller of the mg and mg/kg limits."""
    candidates: list[float] = []
    total = limits.limit(protocol.id, "session", "total_dose", protocol.route)
    if total is not None and total.bounds.upper_hard is not None:
        candidates.append(total.bounds.upper_hard)
    per_kg = limits.limit(protocol.id, "session", "total_dose_per_kg", protocol.route)
    if per_kg is not None and per_kg.bounds.upper_hard is not None and weight is not None:
        candidates.append(per_kg.bounds.upper_hard * weight.kg)
    return min(candidates, default=None)


def _medication(protocol: ProtocolRef) -> dict[str, Any]:
    """Ketamine (RxNorm 6130); esketamine as text only, its RxNorm code not being verified."""
    if "esketamine" in f"{protocol.id} {protocol.name}".casefold():
        return {"text": "esketamine"}
    return {
        "coding": [{"system": RXNORM, "code": "6130", "display": "ketamine"}],
        "text": "ketamine",
    }


def _subject(patient_id: str | None) -> dict[str, Any]:
    if patient_id is None:
        return {"display": "patient (id not given)"}
    return {"identifier": {"value": patient_id}}


def _status_text(status: str, ready: bool) -> str:
    state = "ready" if ready else "NOT READY"
    return f"ketadose decision-support proposal, not an order. Status {status}, {state}."


def _finding_text(finding: Finding) -> str:
    text = f"{finding.severity.value.upper()} {finding.code}: {finding.message}"
    if finding.overridden:
        text += f" Overridden, reason: {finding.override_reason}"
    return text


def _library_text(what: str, library: LibraryRef) -> str:
    approval = "approved" if library.approved else "UNAPPROVED EXAMPLE LIBRARY"
    return f"{what}: {library.name} {library.version} sha256 {library.sha256} ({approval})"


def _code(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": significant(value), "unit": unit, "system": UCUM, "code": unit}


def _digest(resources: list[dict[str, Any]]) -> str:
    return hashlib.sha256(_dumps(resources).encode()).hexdigest()


def _uuid(key: str, kind: str, number: int) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{key}/{kind}/{number}"))


def _entry(resource_id: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "fullUrl": f"urn:uuid:{resource_id}",
        "resource": {"resourceType": resource["resourceType"], "id": resource_id, **resource},
    }


def _bundle(key: str, entries: list[dict[str, Any]]) -> str:
    bundle = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid5(_NAMESPACE, key)),
        "type": "collection",
        "entry": entries,
    }
    return _dumps(bundle) + "\n"


def _dumps(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False)
