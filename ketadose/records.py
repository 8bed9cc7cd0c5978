"""The record store's rows: patients, sessions given, audit entries (plain frozen dataclasses).

Kept apart from ``ketadose.models`` so that commands that never touch the store do not build
these classes at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from ketadose.events import AdverseEvent
from ketadose.models import Patient, Sex, Vitals

if TYPE_CHECKING:
    from ketadose.models import Finding

#: What a reading during a session answered (the gate's during-session limits).
Answer = Literal["continue", "pause", "stop"]


@dataclass(frozen=True, slots=True)
class BloodPressure:
    """A blood-pressure reading in mmHg."""

    systolic: float
    diastolic: float


@dataclass(frozen=True, slots=True)
class Reading:
    """One timed reading of the vitals timeline, as checked when it was recorded.

    Attributes:
        at: When it was taken.
        systolic, diastolic: Blood pressure in mmHg.
        heart_rate: Beats per minute.
        spo2: Oxygen saturation in %.
        sedation: The protocol's sedation scale at this reading (MOAA/S 0-5), if observed.
        answer: What the gate answered for it: continue, pause or stop (``continue`` for a
            reading before the session or after it that passed the pre-session limits).
        findings: The codes of the findings above info, in order.
    """

    at: datetime
    systolic: float | None = None
    diastolic: float | None = None
    heart_rate: float | None = None
    spo2: float | None = None
    sedation: int | None = None
    answer: Answer = "continue"
    findings: tuple[str, ...] = ()

    @property
    def vitals(self) -> Vitals:
        """The reading as the limit checker takes it."""
        return Vitals(
            systolic=self.systolic,
            diastolic=self.diastolic,
            heart_rate=self.heart_rate,
            spo2=self.spo2,
        )


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """A pseudonymous patient: an id chosen by the clinic, never a name.

    Attributes:
        id: The clinic's pseudonymous id.
        protocol: The protocol id the series follows.
        baseline: Baseline score on the protocol's response scale.
        weight_kg: The latest weight.
        height_cm: The latest height, if known.
        sex: ``male`` or ``female``, if known.
        created_at: When the patient was added.
    """

    id: str
    protocol: str
    baseline: float
    weight_kg: float
    height_cm: float | None = None
    sex: str | None = None
    created_at: datetime | None = None

    def as_patient(self) -> Patient:
        """The patient as dosing sees them (latest weight and height, sex)."""
        return Patient(
            weight_kg=self.weight_kg,
            height_cm=self.height_cm,
            sex=None if self.sex is None else Sex(self.sex),
        )


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A session as given, beside what was planned, on its own dosing basis.

    Attributes:
        patient_id: Whose session.
        at: When it started.
        protocol: The protocol id.
        dose_mg: Total dose given (for a session stopped early, what was delivered by then).
        dose_mg_per_kg: ``dose_mg`` per kg of the dosing weight, if weight-based.
        duration_min: Infusion time as given (to the stop, if stopped early).
        phases_json: The dose programme given, as the ``phases`` JSON of ``dose``.
        bp_before: Blood pressure before the session.
        bp_peak: Highest blood pressure during it.
        bp_after: Blood pressure at discharge.
        heart_rate: Highest heart rate during it (bpm).
        spo2: Lowest SpO2 during it (%).
        score: Response score on the protocol's scale, at this session.
        adverse_events: Graded events of the vocabulary (:mod:`ketadose.events`).
        notes: Free text.
        id: The store's row id (None before it is stored).
        weight_policy: The dosing-weight policy the dose was computed on (None: not known,
            a session recorded before schema version 3 or a history file without it).
        dosing_weight_kg: The dosing weight in kg the mg/kg refer to.
        planned_dose_mg: The dose the programme would have given in full.
        planned_dose_mg_per_kg: The same per kg of the dosing weight.
        stopped_at: When the infusion was stopped early (None: ran as programmed).
        stop_reason: Why it was stopped.
        readings: The vitals timeline, in time order.
        discharged_at: When the patient was discharged (None: not yet recorded).
        reported: The adverse events were asked about and are complete as listed (none when
            the list is empty): the evidence a take-home dose is judged on.
        cosign: Its override needs an independent second clinician's co-signature (the
            limit library's ``[overrides]``): until one co-signs, ``next`` is not ready.
    """

    patient_id: str
    at: datetime
    protocol: str
    dose_mg: float
    dose_mg_per_kg: float | None = None
    duration_min: float | None = None
    phases_json: str = "[]"
    bp_before: BloodPressure | None = None
    bp_peak: BloodPressure | None = None
    bp_after: BloodPressure | None = None
    heart_rate: float | None = None
    spo2: float | None = None
    score: float | None = None
    adverse_events: tuple[AdverseEvent, ...] = ()
    notes: str | None = None
    id: int | None = None
    weight_policy: str | None = None
    dosing_weight_kg: float | None = None
    planned_dose_mg: float | None = None
    planned_dose_mg_per_kg: float | None = None
    stopped_at: datetime | None = None
    stop_reason: str | None = None
    readings: tuple[Reading, ...] = ()
    discharged_at: datetime | None = None
    reported: bool = False
    cosign: bool = False

    @property
    def basis_kg(self) -> float | None:
        """The dosing weight the mg/kg refer to: recorded, or mg over mg/kg."""
        if self.dosing_weight_kg is not None:
            return self.dosing_weight_kg
        if self.dose_mg_per_kg:
            return self.dose_mg / self.dose_mg_per_kg
        return None


@dataclass(frozen=True, slots=True)
class Clinician:
    """A clinician registered in the store, by the name the store authenticates them as.

    Attributes:
        name: The OS user (SQLite) or database user (PostgreSQL).
        role: ``nurse``, ``prescriber``, ``pharmacist`` or ``admin``.
        added_at: When registered.
        added_by: The admin who registered them (themselves, for a store's first admin).
    """

    name: str
    role: str
    added_at: datetime
    added_by: str


@dataclass(frozen=True, slots=True)
class Signature:
    """An electronic signature (21 CFR 11.50): who signed, in what role, when, meaning what.

    Attributes:
        audit_id: The audit entry signed (the record of what was done).
        session_id: The session, for a signature on a recorded session.
        signer: Who signed, as authenticated.
        role: Their registered role (None on a store with no clinicians registered).
        meaning: ``prescribed``, ``administered``, ``witnessed`` or ``co-signed``.
        at: When.
    """

    audit_id: int
    session_id: int | None
    signer: str
    role: str | None
    meaning: str
    at: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the append-only audit log.

    Attributes:
        at: When it was written.
        user: Who acted, as authenticated: the OS user of the process that wrote it (the
            store sets it when the entry is written).
        command: E.g. ``dose``, ``session record``, ``next``.
        patient_id: The patient concerned, if any.
        inputs_json: The command's inputs, as JSON.
        findings_json: The findings, as JSON (overrides and reasons included).
        status: ``ok``, ``soft`` or ``hard``.
        override_reason: The reason given for overriding soft findings, if any.
        library_sha256: The limit library's sha256.
        id: The store's row id (None before it is stored).
        claimed: The name given with ``--clinician`` (or the config file's), recorded beside
            ``user`` as a claim, never instead of it (None: none given).
        hash: Its link in the audit log's hash chain (None before it is stored).
    """

    at: datetime
    user: str
    command: str
    patient_id: str | None
    inputs_json: str
    findings_json: str
    status: str
    override_reason: str | None
    library_sha256: str
    id: int | None = None
    claimed: str | None = None
    hash: str | None = None

    @classmethod
    def of(
        cls,
        *,
        at: datetime,
        user: str,
        command: str,
        patient_id: str | None,
        inputs: Mapping[str, object],
        findings: Sequence[Finding],
        status: str,
        override_reason: str | None,
        library_sha256: str,
        claimed: str | None = None,
    ) -> AuditEntry:
        """An entry from a command's inputs and findings, both written as JSON.

        Args:
            at: When it is written.
            user: Who acted.
            command: The command, e.g. ``session record``.
            patient_id: The patient concerned, if any.
            inputs: The command's inputs by name; those that are None are left out, the rest
                written as JSON values (:func:`json_value`).
            findings: The findings to log.
            status: ``ok``, ``soft`` or ``hard``.
            override_reason: The reason given for overriding soft findings, if any.
            library_sha256: The limit library's sha256.
            claimed: The name the user gave (``--clinician``), if any: kept beside the
                authenticated user as a claim.

        Returns:
            The entry, not yet stored.
        """
        import json

        return cls(
            at=at,
            user=user,
            command=command,
            patient_id=patient_id,
            inputs_json=json.dumps({k: json_value(v) for k, v in inputs.items() if v is not None}),
            findings_json=json.dumps([f.model_dump(mode="json") for f in findings]),
            status=status,
            override_reason=override_reason,
            library_sha256=library_sha256,
            claimed=claimed,
        )


def json_value(value: object) -> object:
    """An audit input as a JSON value: a list a list, a mapping an object, a flag a boolean.

    Never the Python repr (``"['lorazepam:12']"``, ``"False"``): a reviewer's tool reads the
    log as JSON. Paths, enums, times and quantities are their text.

    Args:
        value: An input's value.

    Returns:
        What ``json.dumps`` writes for it.
    """
    from enum import Enum

    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Enum):
        return json_value(value.value)
    if isinstance(value, list | tuple | set | frozenset):
        items = [json_value(item) for item in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if isinstance(value, dict):
        return {str(key): json_value(item) for key, item in value.items()}
    return str(value)


def improvement_pct(baseline: float, score: float | None) -> float | None:
    """Improvement from baseline in percent: the fall of the score (a lower score is better).

    Args:
        baseline: The baseline score.
        score: A later score, or None.

    Returns:
        The percent fall, or None without a score or with a baseline of 0.
    """
    if score is None or baseline <= 0:
        return None
    return (baseline - score) / baseline * 100
