"""Tests for ketadose.dosing: session doses from phases, overrides, caps, and invariants."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketadose.dosing import DoseRequest, session_dose
from ketadose.errors import InputError, InputField
from ketadose.libfile import Quantity
from ketadose.models import Patient, Sex, WeightPolicy
from ketadose.units import Kind
from tests.factories import CRPS, DAKWAR, TIMED, dose_for, protocol


class TestWorkedExamples:
    """Values worked out by hand from clinical.md."""

    def test_0_5mg_per_kg_over_40min_at_70kg(self) -> None:
        # 70 x 0.5 = 35 mg; 35 mg / (40/60 h) = 52.5 mg/h; in 100 mL: 150 mL/h
        result = dose_for(protocol(TIMED), 70)
        (phase,) = result.phases
        assert phase.dose_mg == pytest.approx(35)
        assert phase.dose_mg_per_kg == 0.5
        assert phase.rate_mg_per_h == pytest.approx(52.5)
        assert phase.rate_mg_per_kg_per_h == pytest.approx(0.75)
        assert phase.pump_rate_ml_per_h == pytest.approx(150)
        assert result.total_dose_mg == pytest.approx(35)
        assert result.total_duration_min == 40

    def test_dakwar_0_71mg_per_kg_at_80kg(self) -> None:
        # 0.11 x 80 = 8.8 mg over 2 min (264 mg/h) + 0.6 x 80 = 48 mg over 50 min (57.6 mg/h)
        result = dose_for(protocol(*DAKWAR), 80)
        assert [p.dose_mg for p in result.phases] == pytest.approx([8.8, 48])
        assert [p.rate_mg_per_h for p in result.phases] == pytest.approx([264, 57.6])
        assert result.total_dose_mg == pytest.approx(56.8)
        assert result.total_dose_mg_per_kg == pytest.approx(0.71)
        assert result.total_duration_min == 52

    def test_schwartzman_cap_at_80kg(self) -> None:
        # 0.35 x 80 = 28 mg/h > 25 mg/h cap: 25 mg/h x 4 h = 100 mg = 1.25 mg/kg
        result = dose_for(protocol(CRPS), 80)
        (phase,) = result.phases
        assert phase.rate_mg_per_h == 25
        assert phase.rate_mg_per_kg_per_h == pytest.approx(0.3125)
        assert phase.dose_mg == pytest.approx(100)
        assert phase.pump_rate_ml_per_h == pytest.approx(25)
        assert "protocol-cap-applied" in [f.code for f in result.findings]

    def test_schwartzman_below_cap_at_60kg(self) -> None:
        # 0.35 x 60 = 21 mg/h, under the cap: 84 mg over 4 h
        result = dose_for(protocol(CRPS), 60)
        assert result.phases[0].rate_mg_per_h == pytest.approx(21)
        assert result.phases[0].dose_mg == pytest.approx(84)
        assert "protocol-cap-applied" not in [f.code for f in result.findings]

    def test_ideal_weight_basis(self) -> None:
        patient = Patient(weight_kg=100, height_cm=170, sex=Sex.MALE)
        result = session_dose(
            protocol(TIMED), DoseRequest(patient=patient, policy=WeightPolicy.IDEAL)
        )
        assert result.dosing_weight is not None
        assert result.dosing_weight.basis is WeightPolicy.IDEAL
        assert result.phases[0].dose_mg == pytest.approx(0.5 * 65.937007874)

    def test_fixed_dose_needs_no_weight(self) -> None:
        entry = protocol({"kind": "fixed", "dose": "56 mg"}, route="intranasal")
        result = dose_for(entry, None)
        assert result.dosing_weight is None
        assert result.phases[0].dose_mg == 56
        assert result.phases[0].dose_mg_per_kg is None
        assert result.preparation is None


class TestOverrides:
    """--dose, --rate and --duration change the one phase they can mean, or are refused."""

    def test_dose_per_kg(self) -> None:
        result = dose_for(protocol(TIMED), 80, dose=Quantity(Kind.DOSE_PER_KG, 0.75, "0.75mg/kg"))
        assert result.phases[0].dose_mg == pytest.approx(60)
        assert "dose-override" in [f.code for f in result.findings]

    def test_dose_in_mg(self) -> None:
        result = dose_for(protocol(TIMED), 80, dose=Quantity(Kind.DOSE, 60, "60mg"))
        assert result.phases[0].dose_mg == 60
        assert result.phases[0].dose_mg_per_kg == pytest.approx(0.75)

    def test_duration(self) -> None:
        result = dose_for(protocol(TIMED), 80, duration_min=45)
        assert result.phases[0].duration_min == 45
        assert result.phases[0].rate_mg_per_h == pytest.approx(40 / 0.75)

    def test_rate_on_a_capped_phase_is_still_capped(self) -> None:
        result = dose_for(protocol(CRPS), 100, rate=Quantity(Kind.RATE_PER_KG, 0.5, "0.5mg/kg/h"))
        assert result.phases[0].rate_mg_per_h == 25

    def test_dose_on_two_amount_phases_is_ambiguous(self) -> None:
        with pytest.raises(InputError, match="exactly one bolus, timed or fixed phase"):
            dose_for(protocol(*DAKWAR), 80, dose=Quantity(Kind.DOSE_PER_KG, 0.5, "0.5mg/kg"))

    def test_rate_without_rate_phase(self) -> None:
        with pytest.raises(InputError, match="exactly one rate phase"):
            dose_for(protocol(TIMED), 80, rate=Quantity(Kind.RATE, 20, "20mg/h"))

    def test_per_kg_dose_on_fixed_protocol_is_refused(self) -> None:
        entry = protocol({"kind": "fixed", "dose": "56 mg"}, route="intranasal")
        with pytest.raises(InputError, match="fixed doses"):
            dose_for(entry, 80, dose=Quantity(Kind.DOSE_PER_KG, 0.5, "0.5mg/kg"))

    def test_weight_based_protocol_without_weight(self) -> None:
        with pytest.raises(InputError, match="give weight") as refused:
            dose_for(protocol(TIMED), None)
        assert refused.value.fields == (InputField.WEIGHT,)


weights = st.floats(min_value=20, max_value=300, allow_nan=False)
per_kg = st.decimals(min_value="0.01", max_value="2", places=3).map(lambda d: f"{d:f}")


class TestProperties:
    """Invariants: doses scale with weight, caps hold, totals add up."""

    @given(weights, st.floats(min_value=1.01, max_value=3), per_kg)
    def test_dose_is_linear_in_dosing_weight(
        self, weight: float, factor: float, value: str
    ) -> None:
        entry = protocol(
            {"kind": "timed", "dose": f"{value} mg/kg", "duration": "40 min"}, bag="1000 mL"
        )
        light = dose_for(entry, weight)
        heavy = dose_for(entry, weight * factor)
        assert heavy.total_dose_mg == pytest.approx(light.total_dose_mg * factor, rel=1e-12)
        assert heavy.phases[0].dose_mg_per_kg == light.phases[0].dose_mg_per_kg == float(value)

    @given(weights, per_kg, st.integers(min_value=1, max_value=60))
    def test_cap_is_never_exceeded(self, weight: float, value: str, cap: int) -> None:
        entry = protocol(
            {"kind": "rate", "rate": f"{value} mg/kg/h", "duration": "4 h", "cap": f"{cap} mg/h"},
            bag="1000 mL",
        )
        result = dose_for(entry, weight)
        phase = result.phases[0]
        assert phase.rate_mg_per_h is not None
        assert phase.rate_mg_per_h <= cap
        assert phase.dose_mg <= cap * 4 + 1e-9
        capped = "protocol-cap-applied" in [f.code for f in result.findings]
        assert capped == (float(value) * weight > cap)

    @given(weights)
    def test_total_is_the_sum_of_phases(self, weight: float) -> None:
        result = dose_for(protocol(*DAKWAR, bag="250 mL"), weight)
        assert result.total_dose_mg == pytest.approx(
            sum(p.dose_mg for p in result.phases), rel=1e-12
        )
        assert result.total_dose_mg_per_kg == pytest.approx(0.71, rel=1e-12)
