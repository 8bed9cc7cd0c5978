"""The dose chart: nice axis ticks, proportional bars, escaping, and no NaN/inf ever."""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketadose.render.svg import HEIGHT, WIDTH, dose_chart, nice_ticks

NUMERIC = ("x", "y", "x1", "y1", "x2", "y2", "width", "height")


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def bars(root: ET.Element) -> list[ET.Element]:
    return [e for e in root.iter("rect") if e.get("class") == "bar"]


def texts(root: ET.Element, css_class: str | None = None) -> list[str]:
    return [e.text or "" for e in root.iter("text") if e.get("class") == css_class]


class TestNiceTicks:
    """Ticks run from 0 in steps of 1, 2 or 5 x 10^n to the first tick at or above the maximum."""

    @pytest.mark.parametrize(
        ("maximum", "count", "expected"),
        [
            (46, 5, [0, 10, 20, 30, 40, 50]),  # 46/5 = 9.2 -> step 10
            (50, 5, [0, 10, 20, 30, 40, 50]),  # exactly on a tick: no extra tick
            (40, 5, [0, 10, 20, 30, 40]),
            (240, 5, [0, 50, 100, 150, 200, 250]),  # 48 -> 50
            (7, 5, [0, 2, 4, 6, 8]),  # 1.4 -> 2
            (1, 5, [0, 0.2, 0.4, 0.6, 0.8, 1]),
            (0.3, 5, [0, 0.1, 0.2, 0.3]),  # decimal steps: 0.3, not 0.30000000000000004
            (99, 5, [0, 20, 40, 60, 80, 100]),
            (101, 5, [0, 50, 100, 150]),  # 20.2 -> 50
            (46, 10, [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50]),
            (46, 1, [0, 50]),
        ],
    )
    def test_worked_examples(self, maximum: float, count: int, expected: list[float]) -> None:
        assert nice_ticks(maximum, count) == expected

    def test_float_noise_above_a_tick_needs_the_next_one(self) -> None:
        assert nice_ticks(0.1 + 0.2, 5) == [0, 0.1, 0.2, 0.3, 0.4]  # 0.30000000000000004 > 0.3

    def test_zero_gives_a_unit_axis(self) -> None:
        assert nice_ticks(0) == [0, 1]

    def test_near_the_float_limit_the_ticks_stay_finite(self) -> None:
        assert nice_ticks(1.7e308) == [0, 1.7e308]  # a nice top (2e308) is inf as a float

    def test_below_the_smallest_step_the_ticks_stay_increasing(self) -> None:
        assert nice_ticks(5e-324) == [0, 5e-324]  # 1e-324 rounds to 0.0

    @pytest.mark.parametrize("maximum", [math.nan, math.inf])
    def test_non_finite_maximum_is_refused(self, maximum: float) -> None:
        with pytest.raises(ValueError, match="not finite"):
            nice_ticks(maximum)

    def test_count_below_one_is_refused(self) -> None:
        with pytest.raises(ValueError, match="below 1"):
            nice_ticks(10, 0)

    @given(
        st.floats(min_value=1e-300, max_value=1e300, allow_nan=False),
        st.integers(min_value=1, max_value=12),
    )
    def test_step_is_one_two_or_five_and_covers_the_maximum(
        self, maximum: float, count: int
    ) -> None:
        ticks = nice_ticks(maximum, count)
        assert ticks[0] == 0
        assert ticks[-1] >= maximum
        assert len(ticks) - 1 <= count
        step = ticks[1]
        mantissa = step / 10 ** math.floor(math.log10(step))
        assert min(abs(mantissa - m) for m in (1, 2, 5, 10)) < 1e-9
        assert all(b > a for a, b in itertools.pairwise(ticks))
        # The smallest such step: the next nice step down would need more than `count`.
        smaller = step * (0.4 if round(mantissa) == 5 else 0.5)
        assert maximum / (smaller * count) > 1 - 1e-9


class TestDoseChart:
    """One bar per session, heights proportional to the dose, all text escaped."""

    def test_fixed_size_for_print(self) -> None:
        root = parse(dose_chart([("S1", 40.0)]))
        assert root.tag == "svg"
        assert root.get("viewBox") == f"0 0 {WIDTH} {HEIGHT}"
        assert (root.get("width"), root.get("height")) == (str(WIDTH), str(HEIGHT))

    def test_bar_heights_are_proportional(self) -> None:
        root = parse(dose_chart([("S1", 40.0), ("S2", 10.0), ("S3", 20.0)]))
        heights = [float(bar.get("height", "nan")) for bar in bars(root)]
        assert heights[0] / heights[1] == pytest.approx(4)
        assert heights[2] / heights[1] == pytest.approx(2)
        # Axis 0-40 (ticks 0, 10 ... 40): the 40 mg bar fills the plot to the top tick.
        ticks = [float(t) for t in texts(root) if t.replace(".", "").isdigit()]
        assert ticks == [0, 10, 20, 30, 40]

    def test_bars_stand_on_the_same_baseline(self) -> None:
        root = parse(dose_chart([("S1", 40.0), ("S2", 12.5)]))
        bottoms = {float(b.get("y", "nan")) + float(b.get("height", "nan")) for b in bars(root)}
        assert len(bottoms) == 1

    def test_value_labels_are_clinical_numbers(self) -> None:
        root = parse(dose_chart([("S1", 40.0), ("S2", 0.1 + 0.2), ("S3", 39.91612856)]))
        assert texts(root, "value") == ["40", "0.3", "39.916129"]

    def test_labels_title_and_unit_are_escaped(self) -> None:
        svg = dose_chart([("<script>alert(1)</script>", 5.0)], unit="m&g", title='a "<b>"')
        assert "<script" not in svg
        assert "<b>" not in svg
        root = parse(svg)  # well-formed despite the markup in the text
        all_text = [e.text for e in root.iter() if e.text]
        assert "<script>alert(1)</script>" in all_text
        assert "m&g" in all_text
        assert root.get("aria-label") == 'a "<b>"'

    def test_one_point(self) -> None:
        root = parse(dose_chart([("S1", 56.0)]))
        assert len(bars(root)) == 1
        assert texts(root, "value") == ["56"]

    def test_no_points_draws_an_empty_axis(self) -> None:
        root = parse(dose_chart([]))
        assert bars(root) == []
        assert "1" in texts(root)  # axis 0 to 1

    def test_all_zero_values_do_not_divide_by_zero(self) -> None:
        svg = dose_chart([("S1", 0.0), ("S2", 0.0)])
        root = parse(svg)
        assert [float(b.get("height", "nan")) for b in bars(root)] == [0, 0]
        assert "nan" not in svg.lower()

    def test_a_hundred_points_thin_the_labels(self) -> None:
        points = [(f"S{i}", float(i)) for i in range(1, 101)]
        root = parse(dose_chart(points))
        assert len(bars(root)) == 100
        assert texts(root, "value") == []  # 5.7 px a bar: no room for values
        labels = [t for t in texts(root) if t.startswith("S")]
        assert labels[:3] == ["S1", "S7", "S13"]  # every 6th: 30 px apart at least
        # bars stay inside the plot
        for bar in bars(root):
            x, width = float(bar.get("x", "nan")), float(bar.get("width", "nan"))
            assert x >= 0 and x + width <= WIDTH

    @pytest.mark.parametrize("value", [-1.0, math.nan, math.inf])
    def test_invalid_values_are_refused(self, value: float) -> None:
        with pytest.raises(ValueError, match="not a finite value >= 0"):
            dose_chart([("S1", 1.0), ("S2", value)])

    def test_no_javascript_and_no_reference(self) -> None:
        svg = dose_chart([("S1", 40.0)])
        for forbidden in ("<script", "href", "http", "src=", "url("):
            assert forbidden not in svg.lower()
        assert not [a for e in parse(svg).iter() for a in e.attrib if a.startswith("on")]

    @given(
        st.lists(
            st.floats(min_value=0, allow_nan=False, allow_infinity=False),
            max_size=120,
        )
    )
    def test_any_finite_values_give_a_clean_svg(self, values: list[float]) -> None:
        svg = dose_chart([(f"S{i}", v) for i, v in enumerate(values, 1)])
        lowered = svg.lower()
        assert "nan" not in lowered
        assert "inf" not in lowered
        root = parse(svg)
        assert len(bars(root)) == len(values)
        for element in root.iter():
            for name in NUMERIC:
                if name in element.attrib:
                    assert math.isfinite(float(element.attrib[name]))
