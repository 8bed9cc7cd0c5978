"""The PK models: golden values from four independent implementations, an ODE cross-check, and
the properties every linear compartment model has."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketadose.pk import (
    DEFAULT_MODEL,
    MODELS,
    Infusion,
    Model,
    _peaks_overlapping,
    concentrations,
    modes,
    peaks,
)

# field.md 3: 70 kg, 0.5 mg/kg over 40 min (35 mg at 52.5 mg/h), plasma, ug/mL.
GOLDEN = {
    ("domino", 40): 0.24033,
    ("domino", 60): 0.05511,
    ("domino", 120): 0.03583,
    ("clements250", 40): 0.1773,
    ("hijazi", 40): 0.2253,
}
SESSION = [Infusion(start_min=0, duration_min=40, dose_mg=35)]
COMPARTMENT_MODELS = ["domino", "clements250", "hijazi"]


def ode(model: Model, weight: float, infusions: list[Infusion], until: float) -> float:
    """An independent reading: the amounts' ODEs integrated by RK4 at 0.01 min (ng/mL)."""
    v1, k10, k12, k13, k21, k31 = model.constants(weight)

    def rate(t: float) -> float:
        return sum(
            i.dose_mg / i.duration_min
            for i in infusions
            if i.start_min <= t < i.start_min + i.duration_min
        )

    def f(t: float, x: list[float]) -> list[float]:
        a1, a2, a3 = x
        return [
            rate(t) - (k10 + k12 + k13) * a1 + k21 * a2 + k31 * a3,
            k12 * a1 - k21 * a2,
            k13 * a1 - k31 * a3,
        ]

    # Step exactly onto every rate change (RK4 is only 4th order where the rate is smooth).
    edges = (
        {0.0, until}
        | {i.start_min for i in infusions}
        | {i.start_min + i.duration_min for i in infusions}
    )
    points = sorted(e for e in edges if 0 <= e <= until)
    x = [0.0, 0.0, 0.0]
    for start, end in itertools.pairwise(points):
        steps = max(1, round((end - start) / 0.01))
        h = (end - start) / steps
        middle = (start + end) / 2
        for _ in range(steps):
            s1 = f(middle, x)  # the rate is constant inside the segment
            s2 = f(middle, [a + h / 2 * b for a, b in zip(x, s1, strict=True)])
            s3 = f(middle, [a + h / 2 * b for a, b in zip(x, s2, strict=True)])
            s4 = f(middle, [a + h * b for a, b in zip(x, s3, strict=True)])
            x = [
                a + h / 6 * (b + 2 * c + 2 * d + e)
                for a, b, c, d, e in zip(x, s1, s2, s3, s4, strict=True)
            ]
    return x[0] / v1 * 1000


class TestGolden:
    """The published golden values, to 4 significant figures."""

    @pytest.mark.parametrize(("key", "expected"), GOLDEN.items(), ids=lambda k: str(k))
    def test_value(self, key: tuple[str, int], expected: float) -> None:
        model, minute = key
        (value,) = concentrations(MODELS[model], 70, SESSION, [minute])
        assert value / 1000 == pytest.approx(expected, rel=5e-4)

    def test_clinical_sanity_values(self) -> None:
        # clinical.md 9.3, computed: ng/mL at 80 and 120 min.
        at = {m: concentrations(MODELS[m], 70, SESSION, [80, 120]) for m in COMPARTMENT_MODELS}
        assert [round(v) for v in at["domino"]] == [46, 36]
        assert [round(v) for v in at["clements250"]] == [85, 59]
        assert [round(v) for v in at["hijazi"]] == [46, 13]

    def test_default_is_closest_to_the_measured_peak(self) -> None:
        # ~185 ng/mL measured after 0.5 mg/kg over 40 min (Zarate 2006 in Zanos 2018).
        peaks = {m: concentrations(MODELS[m], 70, SESSION, [40])[0] for m in MODELS}
        assert min(peaks, key=lambda m: abs(peaks[m] - 185)) == DEFAULT_MODEL

    @pytest.mark.parametrize("model", COMPARTMENT_MODELS)
    def test_matches_an_ode_integration(self, model: str) -> None:
        infusions = [Infusion(0, 2, 8.8), Infusion(2, 50, 48), Infusion(300, 40, 35)]
        for minute in (1, 30, 52, 200, 330, 400):
            (exact,) = concentrations(MODELS[model], 80, infusions, [minute])
            assert exact == pytest.approx(ode(MODELS[model], 80, infusions, minute), rel=1e-6)

    def test_modes_sum_to_one_over_v1(self) -> None:
        # At t = 0 after a 1 mg bolus the concentration is 1 mg / V1.
        for model in MODELS.values():
            assert sum(a for _, a in modes(model, 70)) == pytest.approx(1 / model.constants(70)[0])


doses = st.floats(min_value=0.1, max_value=500)
weights = st.floats(min_value=30, max_value=250)
minutes = st.floats(min_value=1, max_value=600)


class TestProperties:
    """Linear in dose, weight-invariant per kg, never negative, continuous, zero for zero."""

    @given(
        st.sampled_from(sorted(MODELS)),
        doses,
        st.floats(min_value=0.1, max_value=10),
        minutes,
        weights,
    )
    def test_linear_in_dose(
        self, model: str, dose: float, factor: float, duration: float, weight: float
    ) -> None:
        times = [duration / 2, duration, duration + 30, duration + 300]
        one = concentrations(MODELS[model], weight, [Infusion(0, duration, dose)], times)
        more = concentrations(MODELS[model], weight, [Infusion(0, duration, dose * factor)], times)
        assert more == pytest.approx([c * factor for c in one], rel=1e-9, abs=1e-12)

    @given(st.sampled_from(COMPARTMENT_MODELS), weights, weights, minutes)
    def test_weight_invariant_for_a_per_kg_dose(
        self, model: str, light: float, heavy: float, duration: float
    ) -> None:
        times = [duration, duration + 60]
        a = concentrations(MODELS[model], light, [Infusion(0, duration, 0.5 * light)], times)
        b = concentrations(MODELS[model], heavy, [Infusion(0, duration, 0.5 * heavy)], times)
        assert a == pytest.approx(b, rel=1e-9)

    @given(
        st.sampled_from(sorted(MODELS)),
        st.lists(st.tuples(st.floats(0, 2000), st.floats(0, 300), st.floats(0, 300)), max_size=6),
        weights,
    )
    def test_never_negative(
        self, model: str, given_: list[tuple[float, float, float]], weight: float
    ) -> None:
        infusions = [Infusion(start, duration, dose) for start, duration, dose in given_]
        values = concentrations(
            MODELS[model], weight, infusions, [float(t) for t in range(0, 2600, 13)]
        )
        assert min(values) >= 0

    @given(st.sampled_from(sorted(MODELS)), doses, minutes, weights)
    def test_continuous_at_the_end_of_infusion(
        self, model: str, dose: float, duration: float, weight: float
    ) -> None:
        before, at, after = concentrations(
            MODELS[model],
            weight,
            [Infusion(0, duration, dose)],
            [duration - 1e-6, duration, duration + 1e-6],
        )
        assert before == pytest.approx(at, rel=1e-5)
        assert after == pytest.approx(at, rel=1e-5)

    @given(st.sampled_from(sorted(MODELS)), minutes, weights)
    def test_zero_dose_gives_zero(self, model: str, duration: float, weight: float) -> None:
        values = concentrations(
            MODELS[model], weight, [Infusion(0, duration, 0)], [0, duration, duration * 2]
        )
        assert values == [0, 0, 0]

    def test_a_multi_day_series_is_the_sum_of_its_sessions(self) -> None:
        # CRPS: 0.35 mg/kg/h x 4 h on 10 days; 70 kg: 98 mg each day (capped to 25 mg/h: 100 mg).
        days = [Infusion(day * 1440, 240, 98.0) for day in range(10)]
        times = [float(t) for t in range(0, 10 * 1440, 7)]
        together = concentrations(MODELS["clements250"], 70, days, times)
        apart = [concentrations(MODELS["clements250"], 70, [d], times) for d in days]
        assert together == pytest.approx(
            [sum(c) for c in zip(*apart, strict=True)], rel=1e-9, abs=1e-9
        )
        # Accumulation: each day ends its infusion a little higher than the day before.
        ends = concentrations(
            MODELS["clements250"], 70, days, [d * 1440.0 + 240 for d in range(10)]
        )
        assert ends == sorted(ends)
        assert ends[-1] > ends[0]

    @given(
        st.sampled_from(sorted(MODELS)),
        weights,
        st.lists(
            # Timed infusions: a bolus at the very instant the next session starts belongs to
            # that session in the sequential path, to both in the general one.
            st.tuples(st.floats(0, 3000), st.floats(0.1, 300), st.floats(0, 200)),
            min_size=1,
            max_size=5,
        ),
    )
    def test_peaks_sequential_path_agrees_with_the_general_one(
        self, model: str, weight: float, given_: list[tuple[float, float, float]]
    ) -> None:
        sessions, at = [], 0.0
        for gap, duration, dose in given_:
            at += gap
            sessions.append([Infusion(at, duration, dose)])
            at += duration
        general = _peaks_overlapping(MODELS[model], weight, sessions)
        assert peaks(MODELS[model], weight, sessions) == pytest.approx(general, rel=1e-9, abs=1e-9)


class TestKampDescription:
    """The kamp model says what it is: a one-compartment stand-in, 10.7 % from linear at 110 kg."""

    def test_the_stated_difference_is_the_computed_one(self) -> None:
        kamp = MODELS["kamp"]
        linear = 110 / 70
        allometric = (110 / 70) ** 0.75
        assert round(1 - allometric / linear, 3) == 0.107
        assert "10.7%" in kamp.scaling
        # The model's own clearance at 110 kg, against the 70-kg one scaled linearly.
        v70, k70, *_ = kamp.constants(70)
        v110, k110, *_ = kamp.constants(110)
        assert 1 - (v110 * k110) / (v70 * k70 * linear) == pytest.approx(0.10685, abs=1e-5)

    def test_it_says_it_is_a_stand_in_for_the_published_model(self) -> None:
        kamp = MODELS["kamp"]
        assert "one-compartment stand-in" in kamp.source
        assert "Not the published model" in kamp.source


def _stepwise(
    model: Model, weight: float, infusions: list[Infusion], times: list[float]
) -> list[float]:
    """The concentrations as the recursion reads, a _step call per event and per time."""
    from ketadose.pk import NG_PER_ML, _step

    terms = modes(model, weight)
    changes: dict[float, float] = {}
    boluses: dict[float, float] = {}
    for i in infusions:
        if i.dose_mg == 0:
            continue
        if i.duration_min <= 0:
            boluses[i.start_min] = boluses.get(i.start_min, 0.0) + i.dose_mg
            continue
        rate = i.dose_mg / i.duration_min
        end = i.start_min + i.duration_min
        changes[i.start_min] = changes.get(i.start_min, 0.0) + rate
        changes[end] = changes.get(end, 0.0) - rate
    events = sorted({*changes, *boluses})
    state, rate, now, out, event = [0.0] * len(terms), 0.0, 0.0, [], 0
    for time in times:
        while event < len(events) and events[event] <= time:
            at = events[event]
            _step(terms, state, at - now, rate, {})
            now = max(now, at)
            rate += changes.get(at, 0.0)
            rate = 0.0 if abs(rate) < 1e-12 else rate
            for index, (_, coefficient) in enumerate(terms):
                state[index] += coefficient * boluses.get(at, 0.0)
            event += 1
        _step(terms, state, time - now, rate, {})
        now = max(now, time)
        out.append(max(0.0, sum(state)) * NG_PER_ML)
    return out


class TestConcentrationsLoop:
    """The per-point loop (modes as locals, factors cached) is the recursion, bit for bit."""

    @given(
        st.sampled_from(sorted(MODELS)),
        st.floats(30, 150),
        st.lists(
            st.tuples(
                st.one_of(st.floats(0, 600), st.integers(0, 600).map(float)),
                st.sampled_from([0.0, 0.5, 40.0, 7.3]),
                st.floats(0, 100),
            ),
            min_size=1,
            max_size=6,
        ),
        st.sampled_from([1.0, 0.1, 0.37, 7.0]),
    )
    def test_identical_to_the_stepwise_recursion(
        self,
        model: str,
        weight: float,
        given_: list[tuple[float, float, float]],
        step: float,
    ) -> None:
        infusions = [Infusion(*item) for item in given_]
        marks = {i.start_min + i.duration_min for i in infusions} | {i.start_min for i in infusions}
        times = sorted({round(n * step, 9) for n in range(400)} | marks)
        got = concentrations(MODELS[model], weight, infusions, times)
        assert [v.hex() for v in got] == [
            v.hex() for v in _stepwise(MODELS[model], weight, infusions, times)
        ]
