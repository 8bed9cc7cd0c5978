"""Properties of sublingual and oral doses measured from a form, whatever the clinic's files.

Generated clinic protocols (``ketadose.strategies.form_protocol_cases``: sublingual or oral,
solution or tablets, fixed or per-kg doses, escalation steps in mg) are dosed against generated
limit libraries. Whatever they are, a session the gate marks ready is within every hard limit as
measured; what is measured is a whole number of the form's steps and holds exactly its strength
times the amount; and the systemic estimate is shown beside the dose, never dosed on.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings

from ketadose import inputs
from ketadose import strategies as ks
from ketadose.dosing import DoseRequest, at_step
from ketadose.errors import InputError
from ketadose.gate import session
from ketadose.limits import LimitLibrary, slack
from ketadose.limits import load_file as load_limits
from ketadose.models import CheckContext, Patient, PreviousSession, SessionDose
from ketadose.protocols import Protocol, ProtocolEntry
from ketadose.protocols import load_file as load_protocols

AT = datetime(2026, 12, 7, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))
FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def dosed(case: dict[str, Any], *, bioavailability: bool = True) -> SessionDose | None:
    """The checked session of a case (None: refused as input, e.g. a dose that rounds to 0)."""
    parsed, ref = load_protocols(case["protocols_toml"].encode(), "clinic.toml")
    protocol = parsed.protocol[0]
    if not bioavailability:
        protocol = protocol.model_copy(update={"bioavailability": None})
    entry = ProtocolEntry(protocol, ref)
    limits = load_limits(case["limits_toml"].encode(), "limits.toml")
    strength = None
    if case["strength"] is not None:
        assert protocol.form is not None
        unit = "mg/mL" if protocol.form.kind == "solution" else "mg"
        strength = inputs.strength(f"{case['strength']} {unit}")
    request = DoseRequest(patient=Patient(weight_kg=case["weight_kg"]), strength=strength)
    history: tuple[PreviousSession, ...] = ()
    level = case["level"]
    steps = sorted(protocol.escalation, key=lambda s: s.from_session)
    if level:
        request = at_step(request, steps[level - 1])
        below = protocol.phases[0].dose if level == 1 else steps[level - 2].dose
        assert below is not None
        mg = below.value * (case["weight_kg"] if protocol.weight_based and level == 1 else 1)
        history = (PreviousSession(at=AT - timedelta(days=7), dose_mg=mg),)
    try:
        context = CheckContext(at=AT, history=history)
        return session(entry, request, limits, context, case["override_reason"])
    except InputError:
        return None


def _limits(case: dict[str, Any]) -> tuple[LimitLibrary, Protocol]:
    parsed, _ = load_protocols(case["protocols_toml"].encode(), "clinic.toml")
    return load_limits(case["limits_toml"].encode(), "limits.toml"), parsed.protocol[0]


def within(limits: LimitLibrary, protocol: Protocol, parameter: str, value: float | None) -> bool:
    """Whether ``value`` is within the hard sides of a session limit (at a limit passes)."""
    limit = limits.limit(protocol.id, "session", parameter, protocol.route)
    if limit is None or value is None:
        return True
    upper, lower = limit.bounds.upper_hard, limit.bounds.lower_hard
    return (upper is None or value <= upper + slack(upper)) and (
        lower is None or value >= lower - slack(lower)
    )


@FAST
@given(ks.form_protocol_cases() | ks.form_protocol_cases(near_limit=True))
def test_ready_is_within_every_hard_limit_as_measured(case: dict[str, Any]) -> None:
    result = dosed(case)
    if result is None or not result.ready:
        return
    limits, protocol = _limits(case)
    measured = result.measured
    assert measured is not None
    assert result.delivered_total_mg == measured.delivered_mg
    assert within(limits, protocol, "total_dose", result.delivered_total_mg)
    assert within(limits, protocol, "total_dose", result.total_dose_mg)
    assert within(limits, protocol, "total_dose_per_kg", result.delivered_total_mg_per_kg)
    assert within(limits, protocol, "total_dose_per_kg", result.total_dose_mg_per_kg)
    volume_or_count = "liquid_volume" if measured.unit == "mL" else "tablet_count"
    assert within(limits, protocol, volume_or_count, measured.amount_rounded)
    assert within(limits, protocol, volume_or_count, measured.amount)


@FAST
@given(ks.form_protocol_cases() | ks.form_protocol_cases(near_limit=True))
def test_measured_is_whole_steps_of_a_listed_strength(case: dict[str, Any]) -> None:
    result = dosed(case)
    if result is None or result.measured is None:
        return
    measured = result.measured
    form = case["protocol"]["form"]
    listed = [float(s.split()[0]) for s in form["strengths"]]
    assert measured.strength == (listed[0] if case["strength"] is None else case["strength"])
    steps = measured.amount_rounded / measured.step
    assert math.isclose(steps, round(steps), rel_tol=0, abs_tol=1e-9 * max(1.0, steps))
    assert measured.amount_rounded > 0
    # within one step of the exact amount (rounding, toward the safe side at most one step)
    assert abs(measured.amount_rounded - measured.amount) <= measured.step * (1 + 1e-9)
    assert math.isclose(
        measured.delivered_mg, measured.amount_rounded * measured.strength, rel_tol=1e-9
    )
    assert math.isclose(measured.amount, result.total_dose_mg / measured.strength, rel_tol=1e-9)


@FAST
@given(ks.form_protocol_cases())
def test_systemic_estimate_never_changes_the_dose(case: dict[str, Any]) -> None:
    shown = dosed(case)
    without = dosed(case, bioavailability=False)
    if shown is None or without is None:
        assert shown is None and without is None
        return
    assert without.systemic is None
    assert shown.total_dose_mg == without.total_dose_mg
    assert shown.delivered_total_mg == without.delivered_total_mg
    assert shown.measured == without.measured
    assert shown.phases == without.phases
    assert (shown.status, shown.ready) == (without.status, without.ready)
    assert [f.code for f in shown.findings] == [f.code for f in without.findings]
    bio = case["protocol"].get("bioavailability")
    if bio is None:
        assert shown.systemic is None
    elif shown.systemic is not None and shown.delivered_total_mg is not None:
        assert math.isclose(
            shown.systemic.mg, shown.delivered_total_mg * bio["percent"] / 100, rel_tol=1e-9
        )


def test_the_cases_reach_a_ready_dose_rounded_down_for_a_limit() -> None:
    """The generators are not vacuous: they make ready doses, and doses rounded down for a limit.

    The general draw lands on a dose rounded down about once in 75 cases, so a fixed sample of
    it may miss the region (hypothesis's own order changes between releases); the draw near a
    limit lands there about once in ten, and the properties above run over it too.
    """
    seen: list[str] = []

    def visit(case: dict[str, Any]) -> None:
        result = dosed(case)
        if result is not None and result.status != "hard" and result.measured is not None:
            if result.ready:
                seen.append("ready")
            if any(f.code == "measure-rounded-down" for f in result.findings):
                assert result.measured.amount_rounded < result.measured.amount
                seen.append("steered")

    sample = settings(max_examples=300, deadline=None, database=None, derandomize=True)
    sample(given(ks.form_protocol_cases())(visit))()
    assert seen.count("ready") >= 20
    seen.clear()
    sample(given(ks.form_protocol_cases(near_limit=True))(visit))()
    assert seen.count("steered") >= 5
