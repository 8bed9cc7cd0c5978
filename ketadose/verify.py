"""Verify a limit library against the protocol library: can it be used as written?

For each protocol, over plausible patients (weights within the library's own weight limits for
that protocol: the soft ones where given, else the hard ones), it asks:

- **hard-limit-reachable**: does the protocol's own programme, or one of its escalation steps,
  cross a hard limit of the session for some plausible patient (so that a standard order is
  refused)?
- **soft-above-hard**: is a soft maximum above a hard one once units are converted at some
  plausible weight (a per-kg soft maximum times the weight above a mg hard maximum, or a mg soft
  maximum above the per-kg hard maximum times the weight), so that the soft warning can never
  come before the refusal?
- **never-within**: does the protocol cross a limit (soft or hard) for every plausible weight,
  so that it can never be given without a finding (e.g. a mg/h cap below the protocol's rate
  even for the lightest patient)?
- **schedule-impossible**: does the library's minimum interval, or its sessions-per-7-days
  maximum, make the protocol's lowest sessions per week impossible?

Patients are drawn from a seeded random generator (same seed, same result) with height, sex
and age present or absent; each problem found is shrunk to a minimal counterexample (the
patient's weight bisected to the boundary, other details dropped when the problem stays).
Pure: the caller gives the libraries, the number of examples and the seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from ketadose.dosing import DoseRequest, at_step
from ketadose.errors import InputError, InputField
from ketadose.gate import prepare_session
from ketadose.limits import LimitLibrary
from ketadose.models import LibraryRef, Patient, Real, Severity, Sex, significant
from ketadose.protocols import ProtocolEntry, ProtocolLibrary

#: Weights tried when a library sets no weight limit for a protocol.
DEFAULT_WEIGHTS = (40.0, 150.0)
#: Per-kg and absolute limits of the same quantity: (per-kg parameter, mg parameter).
PAIRS = (
    ("total_dose_per_kg", "total_dose"),
    ("bolus_dose_per_kg", "bolus_dose"),
    ("rate_per_kg", "rate"),
)


class Problem(BaseModel):
    """One way the library cannot be used as written, with a minimal counterexample."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    code: str
    protocol: str
    step: str
    parameter: str
    message: str
    value: Real | None
    limit: Real | None
    unit: str | None
    patient: Patient | None


class Verification(BaseModel):
    """The ``limits verify --json`` document (plus ``schema_version``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    library: LibraryRef
    seed: int
    examples: int
    protocols: int
    problems: tuple[Problem, ...]


@dataclass(frozen=True, slots=True)
class _Step:
    """A programme to check: the protocol's own, or one escalation step."""

    name: str
    request: Callable[[Patient], DoseRequest]


def verify(
    protocols: ProtocolLibrary, limits: LimitLibrary, *, examples: int = 200, seed: int = 0
) -> Verification:
    """Look for every kind of problem, for every protocol.

    Args:
        protocols: The protocols in effect.
        limits: The limit library.
        examples: Random patients tried per protocol (at least 1; the weight range's two ends
            are always tried too).
        seed: The random generator's seed.

    Returns:
        What was checked, and each problem with its counterexample (one per protocol, step,
        parameter and kind).
    """
    if not 1 <= examples <= 100_000:
        raise InputError(InputField.EXAMPLES, f" {examples}: try 1 to 100000 patients")
    rng = random.Random(seed)
    problems: list[Problem] = []
    for protocol_id in sorted(protocols):
        entry = protocols.get_protocol(protocol_id)
        route = entry.protocol.route
        low, high = _weights(limits, protocol_id, route)
        patients = [Patient(weight_kg=low), Patient(weight_kg=high)]
        patients += [_patient(rng, low, high) for _ in range(examples)]
        problems += _programme_problems(entry, limits, patients, low, high)
        problems += _unit_problems(limits, protocol_id, route, low, high)
        problems += _schedule_problems(entry, limits)
        problems += _route_problems(limits, protocol_id, route)
    return Verification(
        library=limits.ref,
        seed=seed,
        examples=examples,
        protocols=len(protocols),
        problems=tuple(problems),
    )


def _weights(limits: LimitLibrary, protocol_id: str, route: str) -> tuple[float, float]:
    """The plausible weight range: the library's soft weight limits, else its hard ones."""
    low, high = DEFAULT_WEIGHTS
    limit = limits.limit(protocol_id, "patient", "weight", route)
    if limit is not None:
        bounds = limit.bounds
        low = next((v for v in (bounds.lower_soft, bounds.lower_hard) if v is not None), low)
        high = next((v for v in (bounds.upper_soft, bounds.upper_hard) if v is not None), high)
    return low, max(low, high)


def _patient(rng: random.Random, low: float, high: float) -> Patient:
    weight = round(rng.uniform(low, high), 1)
    height = float(rng.randint(150, 195)) if rng.random() < 0.5 else None
    if height is not None and not 16 <= weight / (height / 100) ** 2 <= 45:
        height = None  # implausible together: keep the weight, drop the height
    return Patient(
        weight_kg=min(max(weight, low), high),
        height_cm=height,
        sex=rng.choice((None, Sex.MALE, Sex.FEMALE)),
        age_years=float(rng.randint(18, 80)) if rng.random() < 0.5 else None,
    )


def _steps(entry: ProtocolEntry) -> list[_Step]:
    steps = [_Step("programme", lambda p: DoseRequest(patient=p))]
    for step in sorted(entry.protocol.escalation, key=lambda s: s.from_session):
        steps.append(
            _Step(
                f"escalation from session {step.from_session}",
                lambda p, s=step: at_step(DoseRequest(patient=p), s),  # type: ignore[misc]
            )
        )
    return steps


def _hard_findings(
    entry: ProtocolEntry, limits: LimitLibrary, step: _Step, patient: Patient
) -> dict[str, tuple[float | None, float | None, str | None]]:
    """The session parameters past a hard limit for this patient, with value, limit, unit."""
    try:
        # Through the gate's own dose check: as prescribed and as delivered after rounding.
        prepared = prepare_session(entry, step.request(patient), limits)
    except InputError:
        return {}  # the programme cannot be made up for this patient: not a limit problem
    return {
        f.parameter: (f.value, f.limit, f.unit)
        for f in prepared.findings
        if f.severity is Severity.HARD and f.parameter and f.parameter.startswith("session.")
    }


def _programme_problems(
    entry: ProtocolEntry,
    limits: LimitLibrary,
    patients: list[Patient],
    low: float,
    high: float,
) -> list[Problem]:
    problems: list[Problem] = []
    protocol_id = entry.protocol.id
    for step in _steps(entry):
        found: dict[str, Patient] = {}
        for patient in patients:
            for parameter in _hard_findings(entry, limits, step, patient):
                found.setdefault(parameter, patient)
        for parameter, patient in sorted(found.items()):

            def fails(candidate: Patient, parameter: str = parameter, step: _Step = step) -> bool:
                return parameter in _hard_findings(entry, limits, step, candidate)

            shrunk = _shrink(patient, low, high, fails)
            if not fails(shrunk):  # the check is not monotone in weight everywhere
                shrunk = patient
            value, limit, unit = _hard_findings(entry, limits, step, shrunk)[parameter]
            everyone = all(
                parameter in _hard_findings(entry, limits, step, Patient(weight_kg=w))
                for w in (low, high)
            )
            where = "for every plausible weight" if everyone else f"at {_kg(shrunk)}"
            problems.append(
                Problem(
                    code="never-within" if everyone else "hard-limit-reachable",
                    protocol=protocol_id,
                    step=step.name,
                    parameter=parameter,
                    message=f"{protocol_id} {step.name}: {parameter} {_show(value)} {unit or ''} "
                    f"exceeds the hard limit {_show(limit)} {unit or ''} {where} (plausible "
                    f"weights {_show(low)}-{_show(high)} kg)".replace("  ", " "),
                    value=value,
                    limit=limit,
                    unit=unit,
                    patient=shrunk,
                )
            )
    return problems


def _shrink(patient: Patient, low: float, high: float, fails: Callable[[Patient], bool]) -> Patient:
    """The simplest patient that still fails: details dropped, weight moved to the boundary."""
    for field in ("age_years", "sex", "height_cm"):
        simpler = patient.model_copy(update={field: None})
        if getattr(patient, field) is not None and fails(simpler):
            patient = simpler

    # Doses are monotone in weight: the boundary lies between the failing weight and the end
    # of the range that passes. Bisect on a 0.1 kg grid to the failing weight nearest that end.
    def on_grid(tenths: int) -> Patient:
        # A 0.1 kg grid point, kept inside the range (a range end need not be on the grid).
        return _weighing(patient, min(max(tenths / 10, low), high))

    tenths = round((patient.weight_kg or high) * 10)
    for end in (low, high):
        if fails(_weighing(patient, end)):
            continue
        good, bad = round(end * 10), tenths
        while abs(bad - good) > 1:
            middle = (good + bad) // 2
            good, bad = (good, middle) if fails(on_grid(middle)) else (middle, bad)
        tenths = bad
        break
    return on_grid(tenths)


def _weighing(patient: Patient, kg: float) -> Patient:
    return Patient(
        weight_kg=kg, height_cm=patient.height_cm, sex=patient.sex, age_years=patient.age_years
    )


def _unit_problems(
    limits: LimitLibrary, protocol_id: str, route: str, low: float, high: float
) -> list[Problem]:
    """A per-kg soft maximum above a mg hard maximum (or the reverse) at a plausible weight."""
    problems: list[Problem] = []
    for per_kg, absolute in PAIRS:
        if per_kg == "rate_per_kg" and route != "iv":
            continue  # rates are limited only where the drug is infused
        kg_limit = limits.limit(protocol_id, "session", per_kg, route)
        mg_limit = limits.limit(protocol_id, "session", absolute, route)
        if kg_limit is None or mg_limit is None:
            continue
        kg_bounds, mg_bounds = kg_limit.bounds, mg_limit.bounds
        unit = mg_bounds.unit
        soft, hard = kg_bounds.upper_soft, mg_bounds.upper_hard
        if soft is not None and hard is not None and soft * high > hard:
            weight = min(max(round(hard / soft, 1), low), high)
            problems.append(
                _unit_problem(
                    protocol_id, per_kg, absolute, soft, kg_bounds.unit, hard, unit, weight
                )
            )
        soft, hard = mg_bounds.upper_soft, kg_bounds.upper_hard
        if soft is not None and hard is not None and soft > hard * low:
            weight = min(max(round(soft / hard, 1), low), high)
            problems.append(
                _unit_problem(
                    protocol_id, absolute, per_kg, soft, unit, hard, kg_bounds.unit, weight
                )
            )
    return problems


def _unit_problem(
    protocol_id: str,
    soft_parameter: str,
    hard_parameter: str,
    soft: float,
    soft_unit: str,
    hard: float,
    hard_unit: str,
    weight: float,
) -> Problem:
    return Problem(
        code="soft-above-hard",
        protocol=protocol_id,
        step="limits",
        parameter=f"session.{soft_parameter}",
        message=f"{protocol_id}: the soft maximum {_show(soft)} {soft_unit} "
        f"({soft_parameter}) is above the hard maximum {_show(hard)} {hard_unit} "
        f"({hard_parameter}) from {_show(weight)} kg: the refusal comes before the warning",
        value=soft,
        limit=hard,
        unit=soft_unit,
        patient=Patient(weight_kg=significant(weight)),
    )


def _schedule_problems(entry: ProtocolEntry, limits: LimitLibrary) -> list[Problem]:
    """A minimum interval or weekly cap that rules out the protocol's lowest sessions a week."""
    protocol = entry.protocol
    needed = protocol.series.per_week[0]
    problems: list[Problem] = []
    interval = limits.limit(protocol.id, "series", "interval", protocol.route)
    if interval is not None and needed > 1:
        bounds = interval.bounds
        floor = next((v for v in (bounds.lower_hard, bounds.lower_soft) if v is not None), None)
        longest = 7 * 24 * 60 / needed  # minutes between sessions at `needed` a week
        if floor is not None and floor > longest:
            problems.append(
                Problem(
                    code="schedule-impossible",
                    protocol=protocol.id,
                    step="series",
                    parameter="series.interval",
                    message=f"{protocol.id}: a minimum interval of {_show(floor / 60)} h "
                    f"leaves room for fewer than the protocol's {needed} sessions a week "
                    f"(they need {_show(longest / 60)} h or less)",
                    value=floor,
                    limit=longest,
                    unit="min",
                    patient=None,
                )
            )
    cap = limits.limit(protocol.id, "series", "sessions_per_7d", protocol.route)
    if cap is not None:
        bounds = cap.bounds
        most = next((v for v in (bounds.upper_hard, bounds.upper_soft) if v is not None), None)
        if most is not None and most < needed:
            problems.append(
                Problem(
                    code="schedule-impossible",
                    protocol=protocol.id,
                    step="series",
                    parameter="series.sessions_per_7d",
                    message=f"{protocol.id}: at most {_show(most)} sessions in 7 days, but the "
                    f"protocol gives at least {needed} a week",
                    value=float(needed),
                    limit=most,
                    unit=None,
                    patient=None,
                )
            )
    return problems


def _route_problems(limits: LimitLibrary, protocol_id: str, route: str) -> list[Problem]:
    """A profile that shares a protocol's id but is written for another route.

    It does not apply (profiles are chosen by id and route), which is what a clinic that
    reused a shipped id for a protocol of another route must be told.
    """
    foreign = limits.foreign_profile(protocol_id, route)
    if foreign is None:
        return []
    return [
        Problem(
            code="profile-other-route",
            protocol=protocol_id,
            step="limits",
            parameter=f"profiles.{protocol_id}.route",
            message=f'{protocol_id}: the limit profile "{protocol_id}" is written for the '
            f"{foreign} route, but the protocol is {route}: none of its limits apply",
            value=None,
            limit=None,
            unit=None,
            patient=None,
        )
    ]


def _kg(patient: Patient) -> str:
    return f"{_show(patient.weight_kg)} kg"


def _show(value: float | None) -> str:
    from ketadose.units import format_number

    return "-" if value is None else format_number(value, 0.01)
