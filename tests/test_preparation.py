"""Tests for ketadose.preparation: vial, draw, final concentration, mL/h and drops/min."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketadose.errors import InputError, InputField
from ketadose.models import DRAW_STEPS_ML, PUMP_STEPS_ML_PER_H, PhaseDose, Rounding
from ketadose.preparation import Sides, Steering, programme, round_safe, rounding
from ketadose.units import round_to


def timed(dose_mg: float, minutes: float) -> PhaseDose:
    return PhaseDose(
        kind="timed",
        label="infusion",
        dose_mg=dose_mg,
        dose_mg_per_kg=None,
        duration_min=minutes,
        rate_mg_per_h=dose_mg / (minutes / 60),
        rate_mg_per_kg_per_h=None,
    )


class TestWorkedExamples:
    """clinical.md section 8: 70 kg x 0.5 mg/kg = 35 mg over 40 min."""

    def test_35mg_in_100ml_over_40min_is_150ml_per_h(self) -> None:
        prep, phases, findings = programme(
            (timed(35, 40),), route="iv", vial_mg_per_ml=None, final_volume_ml=100
        )
        assert prep is not None
        assert prep.vial_mg_per_ml == 10
        assert prep.draw_ml == pytest.approx(3.5)
        assert prep.diluent_ml == pytest.approx(96.5)
        assert prep.final_mg_per_ml == pytest.approx(0.35)
        assert phases[0].pump_rate_ml_per_h == pytest.approx(150)
        assert phases[0].volume_ml == pytest.approx(100)
        assert findings == []

    def test_35mg_in_50ml_over_40min_is_75ml_per_h(self) -> None:
        _, phases, _ = programme(
            (timed(35, 40),), route="iv", vial_mg_per_ml=10, final_volume_ml=50
        )
        assert phases[0].pump_rate_ml_per_h == pytest.approx(75)

    @pytest.mark.parametrize(("vial", "draw"), [(10, 3.5), (50, 0.7), (100, 0.35)])
    def test_draw_volume_per_vial_strength(self, vial: float, draw: float) -> None:
        prep, _, _ = programme(
            (timed(35, 40),), route="iv", vial_mg_per_ml=vial, final_volume_ml=100
        )
        assert prep is not None
        assert prep.draw_ml == pytest.approx(draw)

    def test_field_md_table_error_45kg_0_3mg_per_kg_per_h_at_2mg_per_ml(self) -> None:
        # 0.3 mg/kg/h x 45 kg = 13.5 mg/h; at 2 mg/mL that is 6.75 mL/h (not 11.8)
        rate = PhaseDose(
            kind="rate",
            label="infusion",
            dose_mg=54,
            dose_mg_per_kg=1.2,
            duration_min=240,
            rate_mg_per_h=13.5,
            rate_mg_per_kg_per_h=0.3,
        )
        prep, phases, _ = programme((rate,), route="iv", vial_mg_per_ml=10, final_volume_ml=27)
        assert prep is not None
        assert prep.final_mg_per_ml == pytest.approx(2)
        assert phases[0].pump_rate_ml_per_h == pytest.approx(6.75)
        assert phases[0].pump_rate_ml_per_h_rounded == pytest.approx(6.8)

    def test_drops_per_minute(self) -> None:
        # 150 mL/h x 20 drops/mL / 60 = 50 drops/min
        _, phases, _ = programme(
            (timed(35, 40),), route="iv", vial_mg_per_ml=10, final_volume_ml=100, drop_factor=20
        )
        assert phases[0].drops_per_min == pytest.approx(50)

    def test_rounding_is_visible_and_configurable(self) -> None:
        prep, phases, _ = programme(
            (timed(33.3, 40),),
            route="iv",
            vial_mg_per_ml=10,
            final_volume_ml=100,
            rounding=Rounding(pump_rate_ml_per_h=1, draw_ml=0.1),
        )
        assert prep is not None
        assert prep.draw_ml == pytest.approx(3.33)
        assert prep.draw_ml_rounded == 3.3
        assert phases[0].pump_rate_ml_per_h == pytest.approx(150)
        assert phases[0].pump_rate_ml_per_h_rounded == 150
        # The bag holds 3.3 mL x 10 mg/mL = 33 mg in 100 mL: 150 mL/h of 0.33 mg/mL.
        assert prep.delivered_mg == pytest.approx(33)
        assert prep.delivered_mg_per_ml == pytest.approx(0.33)
        assert phases[0].delivered_rate_mg_per_h == pytest.approx(49.5)
        assert phases[0].delivered_dose_mg == pytest.approx(33)


class TestSafeRounding:
    """A rounded pump rate or draw never crosses a limit the exact value is within."""

    def test_nearest_step_when_no_limit_is_near(self) -> None:
        assert round_safe(15.5, 1, Sides(upper=((30, "a max"),))) == (16, None)

    def test_down_when_the_nearest_step_crosses_a_maximum(self) -> None:
        # CRPS at 80 kg in 62 mL: 25 mg/h at 100/62 mg/mL = 15.5 mL/h; 16 mL/h is 25.8 mg/h.
        sides = Sides(upper=((25, "the 25 mg/h hard maximum"),)).scaled(62 / 100)
        assert round_safe(15.5, 1, sides) == (15, "the 25 mg/h hard maximum")

    def test_up_when_the_nearest_step_crosses_a_minimum(self) -> None:
        assert round_safe(0.14, 0.1, Sides(lower=((0.12, "a min"),))) == (0.2, "a min")

    def test_exactly_at_a_limit_is_within(self) -> None:
        assert round_safe(15.0, 1, Sides(upper=((15, "max"),))) == (15, None)

    def test_a_value_already_past_stays_nearest(self) -> None:
        # The gate refuses it anyway; rounding does not pretend to mend it.
        assert round_safe(16.2, 1, Sides(upper=((15, "max"),))) == (16, None)

    def test_the_draw_is_turned_too_and_says_so(self) -> None:
        # 1.165 mL of 100 mg/mL = 116.5 mg; 1.17 mL would be 117 mg, past a 116.8 mg maximum.
        prep, _, findings = programme(
            (timed(116.5, 40),),
            route="iv",
            vial_mg_per_ml=100,
            final_volume_ml=100,
            steer=Steering(total=Sides(upper=((116.8, "the 1.5 mg/kg hard maximum"),))),
        )
        assert prep is not None
        assert prep.draw_ml_rounded == 1.16
        assert prep.delivered_mg == pytest.approx(116)
        assert [f.code for f in findings] == ["draw-rounded-down", "vial-needs-dilution"]
        assert "rounded down to 1.16 mL, not to 1.17 mL" in findings[0].message

    @given(
        exact=st.floats(min_value=0.01, max_value=2000),
        step=st.sampled_from(PUMP_STEPS_ML_PER_H),
        limit=st.floats(min_value=0.01, max_value=2000),
        upper=st.booleans(),
    )
    def test_never_pushed_across(
        self, exact: float, step: float, limit: float, upper: bool
    ) -> None:
        sides = Sides(upper=((limit, "max"),)) if upper else Sides(lower=((limit, "min"),))
        rounded, _ = round_safe(exact, step, sides)
        assert abs(rounded - exact) <= step * (1 + 1e-9)
        slack = 1e-9 * max(limit, 1)
        if upper and exact <= limit and rounded > limit + slack:
            # Only when even the step below is 0 (no pump rate) may it stay above.
            assert round_to(rounded - step, step) <= 0
        if not upper and exact >= limit and rounded < limit - slack:
            raise AssertionError((exact, step, limit, rounded))


class TestRoutesAndRefusals:
    """Options that do not fit are refused, never ignored."""

    def test_100mg_per_ml_is_flagged_for_dilution(self) -> None:
        _, _, findings = programme(
            (timed(35, 40),), route="iv", vial_mg_per_ml=100, final_volume_ml=100
        )
        assert [f.code for f in findings] == ["vial-needs-dilution"]

    def test_im_draws_undiluted_without_pump(self) -> None:
        prep, phases, _ = programme(
            (timed(40, 1),), route="im", vial_mg_per_ml=50, final_volume_ml=None
        )
        assert prep is not None
        assert prep.draw_ml == pytest.approx(0.8)
        assert prep.final_mg_per_ml == 50
        assert phases[0].pump_rate_ml_per_h is None

    def test_intranasal_has_no_preparation(self) -> None:
        prep, _, findings = programme(
            (timed(56, 5),), route="intranasal", vial_mg_per_ml=None, final_volume_ml=None
        )
        assert prep is None
        assert [f.code for f in findings] == ["no-preparation"]

    def test_bag_for_intranasal_is_refused(self) -> None:
        with pytest.raises(InputError, match="^bag does not apply to the intranasal route") as no:
            programme((timed(56, 5),), route="intranasal", vial_mg_per_ml=None, final_volume_ml=100)
        assert no.value.fields == (InputField.BAG,)

    @pytest.mark.parametrize("vial", [20.0, 1.0, 500.0])
    def test_vial_strength_that_is_not_made_is_refused(self, vial: float) -> None:
        with pytest.raises(InputError, match="is not made"):
            programme((timed(35, 40),), route="iv", vial_mg_per_ml=vial, final_volume_ml=100)

    def test_drug_that_does_not_fit_the_bag_is_refused(self) -> None:
        with pytest.raises(InputError, match="does not fit"):
            programme((timed(350, 40),), route="iv", vial_mg_per_ml=10, final_volume_ml=20)

    def test_iv_without_final_volume_is_refused(self) -> None:
        with pytest.raises(InputError, match="made up to: bag 100mL") as refused:
            programme((timed(35, 40),), route="iv", vial_mg_per_ml=10, final_volume_ml=None)
        assert refused.value.fields == (InputField.BAG,)

    def test_nonstandard_drop_factor_is_refused(self) -> None:
        with pytest.raises(InputError, match="drop factor 13"):
            programme(
                (timed(35, 40),), route="iv", vial_mg_per_ml=10, final_volume_ml=100, drop_factor=13
            )


class TestRoundingIsBounded:
    """Display steps can never change what is programmed or drawn beyond a pump's resolution."""

    @pytest.mark.parametrize(
        ("pump", "draw", "message"),
        [
            (10, 0.01, "pump step 10 mL/h is not a pump increment"),
            (0.7, 0.01, "pump step 0.7 mL/h is not a pump increment"),
            (0.05, 0.01, "pump step 0.05 mL/h is not a pump increment"),
            (0.1, 10, "draw step 10 mL is not a syringe graduation"),
            (0.1, 0.03, "draw step 0.03 mL is not a syringe graduation"),
            (0.1, 0.001, "draw step 0.001 mL is not a syringe graduation"),
        ],
    )
    def test_odd_and_coarse_steps_are_refused(self, pump: float, draw: float, message: str) -> None:
        with pytest.raises(InputError, match=message):
            rounding(pump, draw)

    @pytest.mark.parametrize("pump", PUMP_STEPS_ML_PER_H)
    @pytest.mark.parametrize("draw", DRAW_STEPS_ML)
    def test_every_sensible_step_is_accepted(self, pump: float, draw: float) -> None:
        assert rounding(pump, draw) == Rounding(pump_rate_ml_per_h=pump, draw_ml=draw)

    def test_the_model_refuses_an_odd_step_too(self) -> None:
        with pytest.raises(ValueError, match="not a pump increment"):
            Rounding(pump_rate_ml_per_h=0.7)

    def test_a_rate_that_rounds_to_zero_is_refused(self) -> None:
        # 0.5 mg over 600 min from 0.5 mg in 50 mL = 5 mL/h; from 5000 mg in 50 mL: 0.005 mL/h
        phases = (timed(5000, 40), timed(0.5, 600))
        with pytest.raises(InputError, match="rounds to 0 at 0.1 mL/h"):
            programme(phases, route="iv", vial_mg_per_ml=100, final_volume_ml=60)

    def test_a_draw_that_rounds_to_zero_is_refused(self) -> None:
        with pytest.raises(InputError, match="draw volume 0.04 mL rounds to 0"):
            programme(
                (timed(4, 40),),
                route="iv",
                vial_mg_per_ml=100,
                final_volume_ml=10,
                rounding=Rounding(pump_rate_ml_per_h=0.1, draw_ml=0.1),
            )


class TestProperties:
    """mL/h x concentration = mg/h, and the phase volumes fill the bag exactly."""

    @given(
        doses=st.lists(
            st.tuples(
                st.floats(min_value=0.5, max_value=200), st.floats(min_value=1, max_value=600)
            ),
            min_size=1,
            max_size=4,
        ),
        vial=st.sampled_from([10.0, 50.0, 100.0]),
        bag=st.sampled_from([50.0, 100.0, 250.0, 500.0]),
    )
    def test_pump_arithmetic(
        self, doses: list[tuple[float, float]], vial: float, bag: float
    ) -> None:
        phases = tuple(timed(mg, minutes) for mg, minutes in doses)
        total = sum(mg for mg, _ in doses)
        if total / vial >= bag:
            return
        try:
            prep, pumped, _ = programme(
                phases, route="iv", vial_mg_per_ml=vial, final_volume_ml=bag
            )
        except InputError as error:  # a phase so slow its pump rate rounds to 0 mL/h
            assert "rounds to 0" in str(error)
            return
        assert prep is not None
        for phase in pumped:
            assert phase.pump_rate_ml_per_h is not None and phase.rate_mg_per_h is not None
            assert phase.pump_rate_ml_per_h * prep.final_mg_per_ml == pytest.approx(
                phase.rate_mg_per_h, rel=1e-12
            )
            # What the rounded rate delivers from the bag as drawn.
            assert phase.pump_rate_ml_per_h_rounded is not None
            assert phase.delivered_rate_mg_per_h == pytest.approx(
                phase.pump_rate_ml_per_h_rounded * prep.delivered_mg_per_ml, rel=1e-12
            )
        assert sum(p.volume_ml or 0 for p in pumped) == pytest.approx(bag, rel=1e-12)
        assert prep.draw_ml * vial == pytest.approx(total, rel=1e-12)
