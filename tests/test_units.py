"""Tests for ketadose.units: the strict quantity parser and the curated registry."""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketadose import units
from ketadose.errors import QuantityError
from ketadose.units import Kind, format_number, parse, parse_as, round_to

#: A kind of each dimension, to parse a bare unit of it as.
_KIND_OF = {
    units.MASS: Kind.WEIGHT,
    units.LENGTH: Kind.HEIGHT,
    units.TIME: Kind.DURATION,
    units.VOLUME: Kind.VOLUME,
    units.AGE: Kind.AGE,
    units.PRESSURE: Kind.PRESSURE,
    units.HEART_RATE: Kind.HEART_RATE,
    units.SATURATION: Kind.SATURATION,
}


class TestAcceptedSpellings:
    """Every spelling the issue lists parses to the exact value in the kind's unit."""

    @pytest.mark.parametrize(
        ("text", "kind", "expected"),
        [
            ("80kg", Kind.WEIGHT, 80.0),
            ("80 kg", Kind.WEIGHT, 80.0),
            ("176lb", Kind.WEIGHT, 79.83225712),
            ("176 lbs", Kind.WEIGHT, 79.83225712),
            ("80 kilograms", Kind.WEIGHT, 80.0),
            ("178cm", Kind.HEIGHT, 178.0),
            ("1.78m", Kind.HEIGHT, 178.0),
            ("70in", Kind.HEIGHT, 177.8),
            ("0.5mg/kg", Kind.DOSE_PER_KG, 0.5),
            ("500mcg/kg", Kind.DOSE_PER_KG, 0.5),
            ("0.5 mg / kg", Kind.DOSE_PER_KG, 0.5),
            ("60mg", Kind.DOSE, 60.0),
            ("40min", Kind.DURATION, 40.0),
            ("4h", Kind.DURATION, 240.0),
            ("4 hours", Kind.DURATION, 240.0),
            ("90s", Kind.DURATION, 1.5),
            ("0.35mg/kg/h", Kind.RATE_PER_KG, 0.35),
            ("0.35mg/h/kg", Kind.RATE_PER_KG, 0.35),
            ("25mg/h", Kind.RATE, 25.0),
            ("10mg/mL", Kind.CONCENTRATION, 10.0),
            ("10mg/ml", Kind.CONCENTRATION, 10.0),
            ("100mL", Kind.VOLUME, 100.0),
            ("0.5L", Kind.VOLUME, 500.0),
            ("75mL/h", Kind.PUMP_RATE, 75.0),
            ("45y", Kind.AGE, 45.0),
            ("1mg/lb", Kind.DOSE_PER_KG, 1 / 0.45359237),
            ("30kg/m2", Kind.BMI, 30.0),
            ("30 kg/m^2", Kind.BMI, 30.0),
            ("30kg/m²", Kind.BMI, 30.0),
            ("140mmHg", Kind.PRESSURE, 140.0),
            ("120 bpm", Kind.HEART_RATE, 120.0),
            ("95%", Kind.SATURATION, 95.0),
        ],
    )
    def test_parses_exactly(self, text: str, kind: Kind, expected: float) -> None:
        assert parse_as(text, kind) == pytest.approx(expected, rel=1e-15, abs=0)

    def test_dose_kind_is_decided_by_the_unit(self) -> None:
        assert parse("0.75mg/kg", Kind.DOSE_PER_KG, Kind.DOSE) == (Kind.DOSE_PER_KG, 0.75)
        assert parse("60mg", Kind.DOSE_PER_KG, Kind.DOSE) == (Kind.DOSE, 60.0)


class TestRefusals:
    """Anything that could be misread is refused with a one-line message, never guessed."""

    @pytest.mark.parametrize(
        ("text", "kind", "fragment"),
        [
            ("80", Kind.WEIGHT, "has no unit; write e.g. 80kg or 176lb"),
            ("0.5", Kind.DOSE_PER_KG, "has no unit"),
            ("80 mL", Kind.WEIGHT, "which is not a weight"),
            ("40m", Kind.DURATION, "which is not a duration"),
            ("0.5mg", Kind.DOSE_PER_KG, "which is not a dose"),
            ("0,5mg/kg", Kind.DOSE_PER_KG, "has a comma"),
            ("1,000mg", Kind.DOSE, "has a comma"),
            (".5mg/kg", Kind.DOSE_PER_KG, "needs a leading zero"),
            ("5.mg", Kind.DOSE, "is not a number followed by a unit"),
            ("-80kg", Kind.WEIGHT, "has a sign"),
            ("+80kg", Kind.WEIGHT, "has a sign"),
            ("-0kg", Kind.WEIGHT, "has a sign"),
            ("0kg", Kind.WEIGHT, "is zero"),
            ("0.000kg", Kind.WEIGHT, "is zero"),
            ("nan kg", Kind.WEIGHT, "is not a number followed by a unit"),
            ("inf kg", Kind.WEIGHT, "is not a number followed by a unit"),
            ("1e308kg", Kind.WEIGHT, "exponent notation"),
            ("1e-320kg", Kind.WEIGHT, "exponent notation"),
            ("1E3 kg", Kind.WEIGHT, "exponent notation"),
            ("80-kg", Kind.WEIGHT, 'contains "-"'),
            ("8Okg", Kind.WEIGHT, 'unknown unit "Okg"'),
            ("80 KG", Kind.WEIGHT, 'did you mean "kg"'),
            ("0.5 MG/KG", Kind.DOSE_PER_KG, 'did you mean "mg"'),
            ("5ug/kg", Kind.DOSE_PER_KG, 'write "mcg"'),
            ("5µg/kg", Kind.DOSE_PER_KG, 'write "mcg"'),
            ("5cc", Kind.VOLUME, 'write "mL"'),
            ("0.5mg/g", Kind.DOSE_PER_KG, "per body weight is written /kg or /lb"),
            ("٨٠kg", Kind.WEIGHT, "U+0668"),
            ("８０kg", Kind.WEIGHT, "U+FF18"),
            ("80kg;rm", Kind.WEIGHT, '";"'),
            ("80\tkg", Kind.WEIGHT, "U+0009"),
            ("80\u00a0kg", Kind.WEIGHT, "U+00A0"),
            ("", Kind.WEIGHT, "is empty"),
            ("   ", Kind.WEIGHT, "is empty"),
            ("8" * 10_000 + "kg", Kind.WEIGHT, "longer than 64 characters"),
            ("1234567890123456kg", Kind.WEIGHT, "more than 15 significant digits"),
            ("80kg kg", Kind.WEIGHT, "is not a number followed by a unit"),
            ("80 kg/", Kind.WEIGHT, "is not a number followed by a unit"),
            ("mg/kg", Kind.DOSE_PER_KG, "is not a number followed by a unit"),
            ("0.5 Mg/kg", Kind.DOSE_PER_KG, "unknown unit"),
            ("30kg/m", Kind.BMI, "which is not a BMI"),
            ("30kg2", Kind.WEIGHT, 'unknown unit "kg2"'),
            ("95", Kind.SATURATION, "has no unit; write e.g. 95%"),
            ("140mmHg", Kind.HEART_RATE, "which is not a heart rate"),
        ],
    )
    def test_refused_with_reason(self, text: str, kind: Kind, fragment: str) -> None:
        with pytest.raises(QuantityError) as info:
            parse_as(text, kind)
        message = str(info.value)
        assert fragment in message
        assert "\n" not in message
        assert len(message) < 300

    def test_error_is_a_value_error_with_fields(self) -> None:
        with pytest.raises(ValueError, match="weight") as info:
            parse_as("80", Kind.WEIGHT)
        assert isinstance(info.value, QuantityError)
        assert info.value.text == "80"
        assert info.value.field == "weight"

    @given(st.text(max_size=30))
    def test_arbitrary_text_is_parsed_or_refused_never_crashes(self, text: str) -> None:
        try:
            value = parse_as(text, Kind.WEIGHT)
        except QuantityError:
            return
        assert value > 0
        assert value == value  # not NaN
        assert value != float("inf")


class TestRegistry:
    """The hot-path table is exactly what pint reads from data/units.txt."""

    @pytest.mark.parametrize("name", sorted(units._COMMON))
    def test_common_names_agree_with_pint(self, name: str) -> None:
        pint_value = units._pint_unit(name)
        assert pint_value == units._COMMON[name]
        assert isinstance(pint_value[1], Fraction)

    def test_every_name_one_can_type_is_in_the_fast_table(self) -> None:
        """No unit data/units.txt defines loads pint (``--step 30s``, ``80 kilograms``)."""
        from importlib import resources

        text = resources.files("ketadose.data").joinpath("units.txt").read_text()
        defined = {
            name.strip()
            for line in text.splitlines()
            if "=" in line and not line.lstrip().startswith("#")
            for index, name in enumerate(line.split("#")[0].split("="))
            if index != 1 and not name.strip().startswith("[")
        }
        typed = {name for name in defined if re.fullmatch(r"[A-Za-z]+|%", name)}
        assert {"s", "sec", "minutes", "kilograms", "hours", "mins", "lbs"} <= typed
        assert typed - set(units._COMMON) == set()

    @given(
        name=st.sampled_from(sorted(units._COMMON)),
        number=st.decimals(min_value="0.001", max_value="1000", places=3),
        space=st.sampled_from(["", " "]),
    )
    def test_a_fast_spelling_parses_as_pint_parses_it(
        self, name: str, number: Decimal, space: str
    ) -> None:
        """The fast table and pint give the same value, exactly, for the same text."""
        kind = _KIND_OF[units._COMMON[name][0]]
        text = f"{number.normalize():f}{space}{name}"
        try:
            fast = units._parse.__wrapped__(text, (kind,), kind.label)
        except QuantityError:
            return  # zero after rounding to places, refused the same way below
        common = units._COMMON
        try:
            units._COMMON = {}  # every name through pint
            slow = units._parse.__wrapped__(text, (kind,), kind.label)
        finally:
            units._COMMON = common
        assert fast == slow
        exact = Fraction(number) * units._COMMON[name][1] / units._canonical_factor(kind)
        assert fast[1] == float(exact)

    @pytest.mark.parametrize("name", ["ug", "cc", "KG", "Mg", "mM", "ML", "mmhg", "kcal", "BPM"])
    def test_registry_does_not_define_error_prone_or_foreign_names(self, name: str) -> None:
        assert units._pint_unit(name) is None

    def test_importing_units_does_not_import_pint(self) -> None:
        import subprocess
        import sys

        code = (
            "import sys, ketadose.units as u; u.parse_as('80kg', u.Kind.WEIGHT); "
            "print('pint' in sys.modules)"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.stdout.strip() == "False"


decimal_text = st.decimals(
    min_value="0.01", max_value="999.99", places=2, allow_nan=False, allow_infinity=False
).map(lambda d: f"{d:f}")


class TestProperties:
    """Invariants a clinician relies on."""

    @given(decimal_text)
    def test_lb_round_trip_is_exact_at_display_precision(self, text: str) -> None:
        kg = parse_as(f"{text}lb", Kind.WEIGHT)
        back = kg / 0.45359237
        assert format_number(back, 0.01) == format_number(float(text), 0.01)

    @given(decimal_text)
    def test_mcg_per_kg_is_a_thousandth_of_mg_per_kg(self, text: str) -> None:
        mg = parse_as(f"{text}mg/kg", Kind.DOSE_PER_KG)
        mcg = parse_as(f"{text}mcg/kg", Kind.DOSE_PER_KG)
        assert mcg == pytest.approx(mg / 1000, rel=1e-15)

    @given(decimal_text)
    def test_hours_are_sixty_minutes(self, text: str) -> None:
        assert parse_as(f"{text}h", Kind.DURATION) == pytest.approx(
            60 * parse_as(f"{text}min", Kind.DURATION), rel=1e-15
        )

    @given(decimal_text)
    def test_value_is_the_correctly_rounded_decimal(self, text: str) -> None:
        assert parse_as(f"{text}kg", Kind.WEIGHT) == float(text)


class TestFormatting:
    """Numbers are shown the clinical way."""

    @pytest.mark.parametrize(
        ("value", "step", "text"),
        [
            (35.0, None, "35"),
            (0.5, None, "0.5"),
            (52.5, None, "52.5"),
            (0.11 * 80, None, "8.8"),
            (35.25, 0.1, "35.3"),
            (0.05, 0.1, "0.1"),
            (0.04, 0.1, "0"),
            (150.0, 0.1, "150"),
            (464.788732394, 0.1, "464.8"),
            (3.456, 0.01, "3.46"),
            (1e-7, None, "0"),
            (1234567.0, None, "1234567"),
        ],
    )
    def test_format_number(self, value: float, step: float | None, text: str) -> None:
        assert format_number(value, step) == text

    def test_round_to_is_half_up_on_the_decimal(self) -> None:
        assert round_to(2.675, 0.01) == 2.68  # binary round() would give 2.67
        assert round_to(0.125, 0.01) == 0.13
