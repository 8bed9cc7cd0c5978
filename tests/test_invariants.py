"""The invariants a clinician relies on, each a named property (hypothesis, ci profile).

1. No output with exit 0 or 3 carries a value beyond a hard limit.
2. A dose is linear in the dosing weight, and exact under a kg/lb round trip.
3. The checker is monotone: a larger value is never judged less severely.
4. ``next`` never escalates more than one step, nor after an intolerable session.
5. Parsing a formatted quantity gives back the same quantity.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ketadose import strategies as ks
from ketadose.cli import app
from ketadose.dosing import DoseRequest, session_dose
from ketadose.escalation import decide
from ketadose.events import Grade
from ketadose.limits import Bounds, classify, load_library
from ketadose.models import Patient, Severity
from ketadose.protocols import load_library as load_protocols
from ketadose.records import PatientRecord, SessionRecord
from ketadose.units import Kind, format_number, parse_as

runner = CliRunner()
SHIPPED_LIMITS = load_library()
PROTOCOLS = load_protocols()
PROTOCOL_IDS = sorted(PROTOCOLS)
RANK = {None: 0, Severity.SOFT: 1, Severity.HARD: 2}


def beyond_hard(value: float | None, bounds: Bounds | None) -> bool:
    """An independent reading of 'past a hard limit' (1e-9 relative tolerance)."""
    if value is None or bounds is None:
        return False
    upper, lower = bounds.upper_hard, bounds.lower_hard
    return (upper is not None and value > upper * (1 + 1e-9)) or (
        lower is not None and value < lower * (1 - 1e-9)
    )


def hard(protocol_id: str, section: str, parameter: str) -> Bounds | None:
    route = PROTOCOLS[protocol_id].protocol.route
    limit = SHIPPED_LIMITS.limit(protocol_id, section, parameter, route)
    return None if limit is None else limit.bounds


decimals = st.decimals(min_value="0.01", max_value="600", places=2).map(lambda d: f"{d:f}")

dose_args = st.tuples(
    st.sampled_from(PROTOCOL_IDS),
    st.decimals(min_value="20", max_value="400", places=1).map(lambda d: f"{d:f}kg"),
    st.one_of(
        st.none(),
        st.decimals(min_value="0.01", max_value="5", places=2).map(lambda d: f"{d:f}mg/kg"),
        st.decimals(min_value="1", max_value="500", places=0).map(lambda d: f"{d:f}mg"),
    ),
    st.one_of(
        st.none(), st.decimals(min_value="1", max_value="600", places=0).map(lambda d: f"{d:f}min")
    ),
    st.one_of(st.none(), st.sampled_from(["10mL", "50mL", "100mL", "250mL", "1000mL"])),
    st.sampled_from(["10mg/mL", "50mg/mL", "100mg/mL"]),
)


class TestNoOutputPastAHardLimit:
    """Invariant 1: no output that exits 0 or 3 carries a value beyond a hard limit."""

    @settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
    @given(dose_args)
    def test_dose_outputs(
        self, args: tuple[str, str, str | None, str | None, str | None, str]
    ) -> None:
        protocol_id, weight, dose, duration, bag, vial = args
        argv = ["dose", "-p", protocol_id, "--weight", weight, "--vial", vial, "--json"]
        for option, value in (("--dose", dose), ("--duration", duration), ("--bag", bag)):
            if value is not None:
                argv += [option, value]
        result = runner.invoke(app, argv, env={"KETADOSE_LIMITS": None})
        assert result.exit_code in (0, 2, 3, 4), result.stderr
        assert "Traceback" not in result.stderr
        if result.exit_code == 2:
            assert result.stdout == ""
            return
        data = json.loads(result.stdout)
        if result.exit_code == 4:
            assert data["status"] == "hard"
            assert data["preparation"] is None
            assert all(p["pump_rate_ml_per_h"] is None for p in data["phases"])
            return
        checks: list[tuple[float | None, str]] = [
            (data["total_dose_mg_per_kg"], "total_dose_per_kg"),
            (data["total_dose_mg"], "total_dose"),
        ]
        for phase in data["phases"]:
            checks.append((phase["pump_rate_ml_per_h"], "pump_rate"))
            if phase["kind"] == "bolus":
                checks += [
                    (phase["dose_mg_per_kg"], "bolus_dose_per_kg"),
                    (phase["dose_mg"], "bolus_dose"),
                ]
            elif phase["kind"] in ("timed", "rate"):
                checks += [
                    (phase["rate_mg_per_kg_per_h"], "rate_per_kg"),
                    (phase["rate_mg_per_h"], "rate"),
                    (phase["duration_min"], "infusion_duration"),
                ]
        if data["preparation"] is not None:
            checks.append((data["preparation"]["final_mg_per_ml"], "final_concentration"))
        for number, parameter in checks:
            assert not beyond_hard(number, hard(protocol_id, "session", parameter)), (
                parameter,
                number,
            )
        assert not beyond_hard(data["patient"]["weight_kg"], hard(protocol_id, "patient", "weight"))


class TestLinearAndExact:
    """Invariant 2: dose is linear in the dosing weight, and kg and lb give the same dose."""

    @given(ks.patients(extreme=True), st.sampled_from(PROTOCOL_IDS), st.integers(2, 3))
    def test_dose_is_linear_in_dosing_weight(
        self, patient: Patient, protocol_id: str, factor: int
    ) -> None:
        entry = PROTOCOLS.get_protocol(protocol_id)
        if not entry.protocol.weight_based:
            return
        heavier = patient.model_copy(update={"weight_kg": (patient.weight_kg or 0) * factor})
        # A bag large enough for three times a 300 kg dose: linearity, not bag size, is tested.
        bag = {"vial_mg_per_ml": 50.0, "final_volume_ml": 1000.0}
        options = bag if entry.protocol.route == "iv" else {}
        light = session_dose(entry, DoseRequest(patient=patient, **options))  # type: ignore[arg-type]
        heavy = session_dose(entry, DoseRequest(patient=heavier, **options))  # type: ignore[arg-type]
        for one, other in zip(light.phases, heavy.phases, strict=True):
            if one.rate_mg_per_kg_per_h != other.rate_mg_per_kg_per_h:
                continue  # an mg/h cap took effect: a capped rate is not linear, by design
            assert other.dose_mg == pytest.approx(one.dose_mg * factor, rel=1e-12)

    @given(ks.numbers(low="66", high="660", places=2), st.sampled_from(PROTOCOL_IDS))
    def test_kg_lb_round_trip_is_exact(self, pounds: str, protocol_id: str) -> None:
        entry = PROTOCOLS.get_protocol(protocol_id)
        kg = float(Fraction(pounds) * Fraction("0.45359237"))
        assert parse_as(f"{pounds}lb", Kind.WEIGHT) == kg
        in_lb = session_dose(
            entry, DoseRequest(patient=Patient(weight_kg=parse_as(f"{pounds} lb", Kind.WEIGHT)))
        )
        in_kg = session_dose(entry, DoseRequest(patient=Patient(weight_kg=kg)))
        assert in_lb.total_dose_mg == in_kg.total_dose_mg


class TestMonotone:
    """Invariant 3: the checker never judges a larger value less severely (upper sides)."""

    @given(
        st.lists(st.floats(min_value=0.01, max_value=1000), min_size=2, max_size=2, unique=True),
        st.floats(min_value=0, max_value=2000),
        st.floats(min_value=0, max_value=2000),
    )
    def test_classify_is_monotone(self, sides: list[float], a: float, b: float) -> None:
        soft, hard = sorted(sides)
        bounds = Bounds(kind=Kind.DOSE, upper_soft=soft, upper_hard=hard)
        low, high = sorted((a, b))
        rank = [
            RANK[None if c is None else c[0]]
            for c in (classify(low, bounds), classify(high, bounds))
        ]
        assert rank[0] <= rank[1]

    @given(st.sampled_from(PROTOCOL_IDS), ks.patients(), st.integers(1, 30), st.integers(1, 30))
    def test_session_findings_are_monotone_in_dose(
        self, protocol_id: str, patient: Patient, first: int, second: int
    ) -> None:
        from ketadose.gate import session as assess
        from ketadose.libfile import Quantity

        entry = PROTOCOLS.get_protocol(protocol_id)
        amounts = [p for p in entry.protocol.phases if p.kind in ("bolus", "timed", "fixed")]
        if len(amounts) != 1 or not entry.protocol.weight_based:
            return  # a mg/kg --dose needs exactly one amount phase, dosed by weight

        def worst(tenths: int) -> int:
            dose = Quantity(Kind.DOSE_PER_KG, tenths / 10, f"{tenths / 10}mg/kg")
            result = assess(entry, DoseRequest(patient=patient, dose=dose), SHIPPED_LIMITS)
            session = [f for f in result.findings if f.parameter == "session.total_dose_per_kg"]
            return max((RANK[f.severity] for f in session), default=0)

        low, high = sorted((first, second))
        assert worst(low) <= worst(high)


class TestNextSession:
    """Invariant 4: next never escalates more than one step, nor after an intolerable session."""

    @settings(max_examples=150)
    @given(ks.session_histories(), st.integers(1, 20))
    def test_one_step_at_most_and_never_after_intolerance(
        self, history: tuple[PatientRecord, list[SessionRecord]], days_after: int
    ) -> None:
        patient, sessions = history
        entry = PROTOCOLS.get_protocol("depression")
        at = (sessions[-1].at if sessions else ks_start()) + timedelta(days=days_after)
        result = decide(entry, patient, sessions, SHIPPED_LIMITS, at=at)
        if result.decision != "escalate":
            return
        last = sessions[-1]
        levels = [0.5, *(float(str(s.dose).split()[0]) for s in entry.protocol.escalation)]
        current = max(i for i, v in enumerate(levels) if v <= (last.dose_mg_per_kg or 0) * 1.02)
        assert result.level is None or result.level <= current + 1
        assert not any((event.grade or 0) >= Grade.SEVERE for event in last.adverse_events)
        assert result.status != "hard"


def ks_start() -> datetime:
    """Where ks.session_histories starts counting."""
    return datetime(2026, 11, 2, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))


class TestFormattedRoundTrip:
    """Invariant 5: a quantity, formatted as ketadose shows it, parses back to the same value."""

    @pytest.mark.parametrize("kind", list(Kind), ids=lambda k: k.name)
    @given(data=st.data())
    def test_round_trip(self, kind: Kind, data: st.DataObject) -> None:
        _, value = data.draw(ks.quantities(kind))
        shown = format_number(value)
        if float(shown) == 0:
            return  # below display precision (6 decimals) in this unit
        assert parse_as(f"{shown} {kind.unit}", kind) == float(shown)
        if value == float(format_number(value)):
            assert parse_as(f"{shown}{kind.unit}", kind) == value
