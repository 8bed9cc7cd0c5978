"""Tests for ketadose.preparation: vial, draw, final concentration, mL/h and drops/min."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketadose.errors import InputError
from ketadose.models import PhaseDose, Rounding
from ketadose.preparation import programme, rounding


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
        with pytest.raises(InputError, match="--bag does not apply to the intranasal route"):
            programme((timed(56, 5),), route="intranasal", vial_mg_per_ml=None, final_volume_ml=100)

    @pytest.mark.parametrize("vial", [20.0, 1.0, 500.0])
    def test_vial_strength_that_is_not_made_is_refused(self, vial: float) -> None:
        with pytest.raises(InputError, match="is not made"):
            programme((timed(35, 40),), route="iv", vial_mg_per_ml=vial, final_volume_ml=100)

    def test_drug_that_does_not_fit_the_bag_is_refused(self) -> None:
        with pytest.raises(InputError, match="does not fit"):
            programme((timed(350, 40),), route="iv", vial_mg_per_ml=10, final_volume_ml=20)

    def test_iv_without_final_volume_is_refused(self) -> None:
        with pytest.raises(InputError, match="--bag"):
            programme((timed(35, 40),), route="iv", vial_mg_per_ml=10, final_volume_ml=None)

    def test_nonstandard_drop_factor_is_refused(self) -> None:
        with pytest.raises(InputError, match="drop factor 13"):
            programme(
                (timed(35, 40),), route="iv", vial_mg_per_ml=10, final_volume_ml=100, drop_factor=13
            )


class TestRoundingIsBounded:
    """Display steps can never change what is programmed or drawn beyond a pump's resolution."""

    def test_coarse_steps_are_refused(self) -> None:
        with pytest.raises(InputError, match="coarser than 1 mL/h"):
            rounding(10, 0.01)
        with pytest.raises(InputError, match="coarser than 0.1 mL"):
            rounding(0.1, 10)
        assert rounding(1, 0.1) == Rounding(pump_rate_ml_per_h=1, draw_ml=0.1)

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
        assert sum(p.volume_ml or 0 for p in pumped) == pytest.approx(bag, rel=1e-12)
        assert prep.draw_ml * vial == pytest.approx(total, rel=1e-12)
