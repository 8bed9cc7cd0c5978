"""Tests for ketadose.weight: the dosing-weight policies, with hand-worked values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketadose.errors import InputError, InputField
from ketadose.models import Patient, Sex, WeightPolicy
from ketadose.weight import dosing_weight, ideal_body_weight, lean_body_weight


class TestFormulas:
    """Each formula against values worked out by hand from clinical.md section 7."""

    def test_devine_male_170cm(self) -> None:
        # 170 cm = 66.9291 in; 50 + 2.3 x 6.9291 = 65.9370 kg
        assert ideal_body_weight(170, Sex.MALE) == pytest.approx(65.937007874, rel=1e-10)

    def test_devine_female_160cm(self) -> None:
        # 160 cm = 62.9921 in; 45.5 + 2.3 x 2.9921 = 52.3819 kg
        assert ideal_body_weight(160, Sex.FEMALE) == pytest.approx(52.381889764, rel=1e-10)

    def test_devine_at_60_inches_is_the_base_weight(self) -> None:
        assert ideal_body_weight(152.4, Sex.MALE) == pytest.approx(50.0)
        assert ideal_body_weight(152.4, Sex.FEMALE) == pytest.approx(45.5)

    def test_devine_uses_2_3_per_inch_not_per_cm(self) -> None:
        # opentiva's bug (clinical.md pitfall 4) would give 50 + 2.3 x 17.6 = 90.48 kg
        assert ideal_body_weight(170, Sex.MALE) < 70

    def test_janmahasatian_male(self) -> None:
        # BMI 100/1.7^2 = 34.6021; 9270 x 100 / (6680 + 216 x 34.6021) = 65.4936 kg
        assert lean_body_weight(100, 170, Sex.MALE) == pytest.approx(65.4936, abs=1e-4)

    def test_janmahasatian_female(self) -> None:
        # BMI 60/1.65^2 = 22.0386; 9270 x 60 / (8780 + 244 x 22.0386) = 39.2869 kg
        assert lean_body_weight(60, 165, Sex.FEMALE) == pytest.approx(39.2869, abs=1e-4)


class TestPolicies:
    """The policy picks the weight, states its basis, and refuses what it cannot compute."""

    def test_actual_is_the_weight(self) -> None:
        weight, findings = dosing_weight(Patient(weight_kg=80), WeightPolicy.ACTUAL)
        assert (weight.basis, weight.kg, findings) == (WeightPolicy.ACTUAL, 80, [])

    def test_adjusted_male_170cm_100kg(self) -> None:
        # 65.9370 + 0.4 x (100 - 65.9370) = 79.5622 kg
        patient = Patient(weight_kg=100, height_cm=170, sex=Sex.MALE)
        weight, _ = dosing_weight(patient, WeightPolicy.ADJUSTED)
        assert weight.kg == pytest.approx(79.562204724, rel=1e-10)

    def test_ideal_uses_actual_when_actual_is_lower(self) -> None:
        patient = Patient(weight_kg=55, height_cm=180, sex=Sex.MALE)
        weight, _ = dosing_weight(patient, WeightPolicy.IDEAL)
        assert weight.kg == 55
        assert weight.note is not None
        assert "actual used" in weight.note

    def test_devine_below_60_inches_is_flagged(self) -> None:
        patient = Patient(weight_kg=60, height_cm=150, sex=Sex.FEMALE)
        weight, findings = dosing_weight(patient, WeightPolicy.IDEAL)
        assert [f.code for f in findings] == ["devine-extrapolated"]
        assert weight.kg == pytest.approx(45.5 + 2.3 * (150 / 2.54 - 60))

    @pytest.mark.parametrize(
        "policy", [WeightPolicy.IDEAL, WeightPolicy.ADJUSTED, WeightPolicy.LEAN]
    )
    def test_policy_without_height_or_sex_is_an_input_error(self, policy: WeightPolicy) -> None:
        with pytest.raises(InputError, match="needs height and sex") as both:
            dosing_weight(Patient(weight_kg=80), policy)
        assert both.value.fields == (InputField.HEIGHT, InputField.SEX)
        with pytest.raises(InputError, match="needs sex") as one:
            dosing_weight(Patient(weight_kg=80, height_cm=170), policy)
        assert one.value.fields == (InputField.SEX,)

    def test_no_weight_is_an_input_error(self) -> None:
        with pytest.raises(InputError, match="give weight, e.g. 80kg") as refused:
            dosing_weight(Patient(), WeightPolicy.ACTUAL)
        assert refused.value.fields == (InputField.WEIGHT,)


patients = st.builds(
    Patient,
    weight_kg=st.floats(min_value=30, max_value=250),
    height_cm=st.floats(min_value=140, max_value=210),
    sex=st.sampled_from(Sex),
)


class TestProperties:
    """No policy doses above the actual weight, and the order ideal <= adjusted <= actual holds."""

    @given(patients, st.sampled_from(WeightPolicy))
    def test_never_above_actual(self, patient: Patient, policy: WeightPolicy) -> None:
        weight, _ = dosing_weight(patient, policy)
        assert patient.weight_kg is not None
        assert 0 < weight.kg <= patient.weight_kg

    @given(patients)
    def test_ideal_le_adjusted_le_actual(self, patient: Patient) -> None:
        ideal, _ = dosing_weight(patient, WeightPolicy.IDEAL)
        adjusted, _ = dosing_weight(patient, WeightPolicy.ADJUSTED)
        assert patient.weight_kg is not None
        assert ideal.kg <= adjusted.kg + 1e-9 <= patient.weight_kg + 2e-9

    @given(patients, st.sampled_from(WeightPolicy), st.floats(min_value=0.1, max_value=20))
    def test_more_weight_never_means_a_smaller_dosing_weight(
        self, patient: Patient, policy: WeightPolicy, extra: float
    ) -> None:
        assert patient.weight_kg is not None
        heavier = patient.model_copy(update={"weight_kg": patient.weight_kg + extra})
        assert dosing_weight(heavier, policy)[0].kg >= dosing_weight(patient, policy)[0].kg - 1e-9
