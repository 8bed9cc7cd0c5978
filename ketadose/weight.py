"""Dosing-weight policies: which body weight a mg/kg dose is multiplied by.

- ``actual``: total body weight (the default; what the ketamine trials used).
- ``ideal``: Devine 1974, 50 kg (male) or 45.5 kg (female) + 2.3 kg per inch over 60 in.
- ``adjusted``: IBW + 0.4 x (actual - IBW).
- ``lean``: Janmahasatian 2005, 9270 W / (6680 + 216 BMI) male, 9270 W / (8780 + 244 BMI) female.

Where the actual weight is below the ideal one, ``ideal`` and ``adjusted`` use the actual
weight (a dose is never scaled up to a weight the patient does not have); ``lean`` never
exceeds actual. Sources and evidence: ``reference/clinical.md`` section 7.
"""

from __future__ import annotations

from ketadose.errors import InputError, InputField, joined
from ketadose.models import DosingWeight, Finding, Patient, Severity, Sex, WeightPolicy
from ketadose.units import format_number

CM_PER_INCH = 2.54
DEVINE_BASE_KG = {Sex.MALE: 50.0, Sex.FEMALE: 45.5}
DEVINE_KG_PER_INCH = 2.3
DEVINE_FROM_INCHES = 60.0
ADJUSTED_FRACTION = 0.4


def ideal_body_weight(height_cm: float, sex: Sex) -> float:
    """Devine ideal body weight.

    Args:
        height_cm: Height in cm.
        sex: Male or female.

    Returns:
        IBW in kg (170 cm male: 50 + 2.3 x (170/2.54 - 60) = 65.93 kg).

    """
    inches_over = height_cm / CM_PER_INCH - DEVINE_FROM_INCHES
    return DEVINE_BASE_KG[sex] + DEVINE_KG_PER_INCH * inches_over


def lean_body_weight(weight_kg: float, height_cm: float, sex: Sex) -> float:
    """Janmahasatian lean (fat-free) body weight.

    Args:
        weight_kg: Actual body weight.
        height_cm: Height.
        sex: Male or female.

    Returns:
        LBW in kg.

    """
    bmi = weight_kg / (height_cm / 100) ** 2
    if sex is Sex.MALE:
        return 9270 * weight_kg / (6680 + 216 * bmi)
    return 9270 * weight_kg / (8780 + 244 * bmi)


def dosing_weight(patient: Patient, policy: WeightPolicy) -> tuple[DosingWeight, list[Finding]]:
    """Choose the weight a per-kg dose is multiplied by.

    Args:
        patient: Needs a weight; ``ideal``, ``adjusted`` and ``lean`` also need height and sex.
        policy: The dosing-weight policy.

    Returns:
        The dosing weight with its basis, and any findings (e.g. Devine extrapolated below
        60 in, or actual weight used because it is below ideal).

    Raises:
        InputError: Without a weight, or without the height/sex the policy needs.

    """
    weight = patient.weight_kg
    if weight is None:
        raise InputError(
            "this protocol doses by body weight: give ", InputField.WEIGHT, ", e.g. 80kg"
        )
    if policy is WeightPolicy.ACTUAL:
        return DosingWeight(basis=policy, kg=weight), []
    height, sex = patient.height_cm, patient.sex
    if height is None or sex is None:
        missing = [
            name for name, v in ((InputField.HEIGHT, height), (InputField.SEX, sex)) if v is None
        ]
        raise InputError(
            f"dosing weight {policy.value} needs ",
            *joined(missing, " and "),
            " (e.g. 178cm, male)",
        )
    findings: list[Finding] = []
    if policy is WeightPolicy.LEAN:
        lean = lean_body_weight(weight, height, sex)
        return DosingWeight(basis=policy, kg=min(lean, weight)), findings
    if height < DEVINE_FROM_INCHES * CM_PER_INCH:
        findings.append(
            Finding(
                severity=Severity.INFO,
                code="devine-extrapolated",
                message=f"Devine IBW is defined from 60 in (152.4 cm); extrapolated for "
                f"{format_number(height)} cm",
            )
        )
    ibw = ideal_body_weight(height, sex)
    if ibw <= 0:
        raise InputError(
            f"height {format_number(height)} cm gives no usable ideal body weight; use ",
            InputField.DOSING_WEIGHT,
            " actual",
        )
    if weight <= ibw:
        note = f"actual weight is not above ideal ({format_number(ibw, 0.01)} kg): actual used"
        return DosingWeight(basis=policy, kg=weight, note=note), findings
    if policy is WeightPolicy.IDEAL:
        return DosingWeight(basis=policy, kg=ibw), findings
    adjusted = ibw + ADJUSTED_FRACTION * (weight - ibw)
    return DosingWeight(basis=policy, kg=adjusted), findings
