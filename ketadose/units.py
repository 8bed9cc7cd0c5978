"""Quantities with units: the one strict parser and the one curated pint registry.

Every clinical quantity enters ketadose as text with a unit ("80kg", "0.5mg/kg", "40min") and
leaves this module as a plain float in the fixed unit of its :class:`Kind` (kg, mg, mg/kg, min...).
The rules, each pinned by a test:

- the number is ASCII digits with an optional decimal point and a leading digit
  (``0.5``, not ``.5`` or ``0,5``); no sign, no exponent, no thousands separator, at most
  15 significant digits; it must be greater than zero;
- the unit is one name, or names joined by ``/`` (``mg/kg/h``), from ``data/units.txt``; case
  matters (``mL`` and ``ml`` are both defined, ``KG`` and ``Mg`` are not); ``ug``, ``µg`` and
  ``cc`` are refused as error-prone;
- the unit's shape must match what the field needs. In particular ``mg/kg`` is *drug mass per
  body mass*: pint would call it dimensionless (so a bare ``0.5`` would pass as a mg/kg dose);
  here the shape is ``mass / mass`` and a dimensionless number is never accepted.

The unit names and factors are defined once, in pint's definitions format
(``data/units.txt``), and pint with :class:`fractions.Fraction` magnitudes resolves them exactly.
Importing pint costs about 100 ms (more than half of a whole ``ketadose dose`` run), so the
names a clinic writes every day are resolved from ``_COMMON``, a table of exactly the factors
pint computes from the same file; ``tests/test_units.py`` proves the two agree entry by entry.
"""

import re
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction
from functools import cache, lru_cache
from importlib import resources
from typing import Any

from ketadose.errors import Part, QuantityError

MAX_TEXT_LENGTH = 64
MAX_SIGNIFICANT_DIGITS = 15

#: Dimension names used here (the bracketed names of ``data/units.txt``, without brackets).
MASS, LENGTH, TIME, VOLUME, AGE = "mass", "length", "time", "volume", "age"
PRESSURE, HEART_RATE, SATURATION = "pressure", "heart_rate", "saturation"
# (Kind below has members named like these; inside its body they would shadow the
# constants, so Kind refers to them through _DIM.)

#: Base unit of each dimension; every factor below is "how many base units is one of this".
BASE_UNIT = {
    MASS: "mg",
    LENGTH: "cm",
    TIME: "min",
    VOLUME: "mL",
    AGE: "y",
    PRESSURE: "mmHg",
    HEART_RATE: "bpm",
    SATURATION: "%",
}

#: Every name ``data/units.txt`` defines, with its dimension and base-unit factor, resolved
#: without importing pint (which then loads only for a name that is not a unit, to say so).
#: The short spelling comes first: it is the one a case hint suggests. Must equal pint's
#: reading of ``data/units.txt`` exactly, and name every name in it one can type (tested).
_SPELLINGS: tuple[tuple[str, Fraction, tuple[str, ...]], ...] = (
    (MASS, Fraction(1), ("mg", "milligram", "milligrams")),
    (MASS, Fraction(1000), ("g", "gram", "grams")),
    (MASS, Fraction(1_000_000), ("kg", "kilogram", "kilograms", "kilo", "kilos")),
    (MASS, Fraction(1, 1000), ("mcg", "microgram", "micrograms")),
    (MASS, Fraction(1, 1_000_000), ("ng", "nanogram", "nanograms")),
    (MASS, Fraction("453592.37"), ("lb", "lbs", "pound", "pounds")),
    (LENGTH, Fraction(1), ("cm", "centimeter", "centimetre", "centimeters", "centimetres")),
    (LENGTH, Fraction(1, 10), ("mm", "millimeter", "millimetre")),
    (LENGTH, Fraction(100), ("m", "meter", "metre", "meters", "metres")),
    (LENGTH, Fraction("2.54"), ("in", "inch", "inches")),
    (LENGTH, Fraction("30.48"), ("ft", "foot", "feet")),
    (TIME, Fraction(1), ("min", "minute", "mins", "minutes")),
    (TIME, Fraction(1, 60), ("s", "second", "sec", "secs", "seconds")),
    (TIME, Fraction(60), ("h", "hr", "hour", "hrs", "hours")),
    (TIME, Fraction(1440), ("d", "day", "days")),
    (VOLUME, Fraction(1), ("mL", "ml", "milliliter", "millilitre", "milliliters", "millilitres")),
    (VOLUME, Fraction(1000), ("L", "liter", "litre", "liters", "litres")),
    (AGE, Fraction(1), ("y", "year", "yr", "yrs", "years")),
    (PRESSURE, Fraction(1), ("mmHg",)),
    (HEART_RATE, Fraction(1), ("bpm",)),
    (SATURATION, Fraction(1), ("%", "percent")),
)
_COMMON: dict[str, tuple[str, Fraction]] = {
    name: (dimension, factor) for dimension, factor, names in _SPELLINGS for name in names
}

#: A mass in a denominator is the patient's body mass: only kg and lb make sense there, so
#: "0.5mg/g" (a 1000-fold error waiting to happen) is refused rather than converted.
_BODY_MASS_FACTORS = frozenset({_COMMON["kg"][1], _COMMON["lb"][1]})

#: Names refused on purpose, with the reason shown to the user.
_REFUSED = {
    "ug": 'write "mcg": "ug" is misread as "mg" (ISMP error-prone abbreviation)',
    "µg": 'write "mcg": "µg" is misread as "mg" (ISMP error-prone abbreviation)',
    "μg": 'write "mcg": "μg" is misread as "mg" (ISMP error-prone abbreviation)',
    "cc": 'write "mL": "cc" is misread as "u" or "00" (ISMP error-prone abbreviation)',
}


class _DIM:
    """Dimension names, reachable from inside ``Kind``."""

    MASS, LENGTH, TIME, VOLUME, AGE = MASS, LENGTH, TIME, VOLUME, AGE
    PRESSURE, HEART_RATE, SATURATION = PRESSURE, HEART_RATE, SATURATION


@dataclass(frozen=True, slots=True)
class _Shape:
    """Numerator dimension and the multiset of denominator dimensions of a unit."""

    numerator: str
    denominators: tuple[str, ...]


class Kind(Enum):
    """What a quantity is for: its shape, the unit ketadose keeps it in, and an example."""

    WEIGHT = ("weight", "kg", _Shape(_DIM.MASS, ()), "80kg or 176lb")
    HEIGHT = ("height", "cm", _Shape(_DIM.LENGTH, ()), "178cm, 1.78m or 70in")
    AGE = ("age", "y", _Shape(_DIM.AGE, ()), "45y")
    DURATION = ("duration", "min", _Shape(_DIM.TIME, ()), "40min or 4h")
    DOSE = ("dose", "mg", _Shape(_DIM.MASS, ()), "60mg")
    DOSE_PER_KG = ("dose", "mg/kg", _Shape(_DIM.MASS, (_DIM.MASS,)), "0.5mg/kg or 500mcg/kg")
    RATE = ("rate", "mg/h", _Shape(_DIM.MASS, (_DIM.TIME,)), "25mg/h")
    RATE_PER_KG = ("rate", "mg/kg/h", _Shape(_DIM.MASS, (_DIM.MASS, _DIM.TIME)), "0.35mg/kg/h")
    CONCENTRATION = ("concentration", "mg/mL", _Shape(_DIM.MASS, (_DIM.VOLUME,)), "10mg/mL")
    #: The same shape as CONCENTRATION: parse a plasma level as this kind alone, never both.
    PLASMA = ("plasma concentration", "ng/mL", _Shape(_DIM.MASS, (_DIM.VOLUME,)), "200ng/mL")
    VOLUME = ("volume", "mL", _Shape(_DIM.VOLUME, ()), "100mL")
    PUMP_RATE = ("pump rate", "mL/h", _Shape(_DIM.VOLUME, (_DIM.TIME,)), "75mL/h")
    BMI = ("BMI", "kg/m2", _Shape(_DIM.MASS, (_DIM.LENGTH, _DIM.LENGTH)), "30kg/m2")
    PRESSURE = ("blood pressure", "mmHg", _Shape(_DIM.PRESSURE, ()), "140mmHg")
    HEART_RATE = ("heart rate", "bpm", _Shape(_DIM.HEART_RATE, ()), "120bpm")
    SATURATION = ("SpO2", "%", _Shape(_DIM.SATURATION, ()), "95%")

    def __init__(self, label: str, unit: str, shape: _Shape, example: str) -> None:
        self.label = label
        self.unit = unit
        self.shape = shape
        self.example = example


_NUMBER = r"[0-9]+(?:\.[0-9]+)?"
_NAME = r"(?:[A-Za-zµμ]+(?:\^?2|²)?|%)"
_QUANTITY = re.compile(rf"(?P<number>{_NUMBER}) ?(?P<unit>{_NAME}(?: ?/ ?{_NAME})*)", re.ASCII)
#: A number alone (what a bare "80" or "0.5" looks like); ".5" and "5." count too.
BARE_NUMBER = re.compile(rf"{_NUMBER}|\.[0-9]+|[0-9]+\.", re.ASCII)
_EXPONENT = re.compile(r"[0-9.]+[eE][+-]?[0-9]", re.ASCII)
_ALLOWED_CHARS = re.compile(r"[0-9A-Za-z./ µμ²^%]*", re.ASCII)


def parse(text: str, kind: Kind, *more: Kind, field: Part | None = None) -> tuple[Kind, float]:
    """Parse a quantity that may be any of several kinds (e.g. a dose in mg or in mg/kg).

    Args:
        text: The quantity as typed, e.g. ``"0.5mg/kg"``.
        kind: A kind the quantity may have.
        *more: Further kinds it may have; the unit's shape decides which one it is.
        field: The name shown in messages (a :class:`~ketadose.errors.InputField` or text); defaults
            to the first kind's label.

    Returns:
        The kind the unit matched, and the value in that kind's unit (``kind.unit``).

    Raises:
        QuantityError: For any text that is not exactly one positive, finite quantity of an
            accepted kind.

    """
    return _parse(text, (kind, *more), field or kind.label)


@lru_cache(maxsize=4096)
def _parse(text: str, kinds: tuple[Kind, ...], name: Part) -> tuple[Kind, float]:
    """:func:`parse`, cached: a batch file repeats its heights, weights and doses."""
    examples = " or ".join(dict.fromkeys(k.example for k in kinds))
    number, unit = _split(text, name, examples)
    shape, factor = _resolve(unit, text, name, examples)
    for candidate in kinds:
        if candidate.shape == shape:
            value = float(number * factor / _canonical_factor(candidate))
            return candidate, value
    raise QuantityError(
        name,
        f' "{text}" has unit {unit.replace(" ", "")}, which is not a ',
        name,
        f"; write e.g. {examples}",
        text=text,
        field=name,
    )


def parse_as(text: str, kind: Kind, *, field: Part | None = None) -> float:
    """Parse a quantity of exactly one kind and return its value in ``kind.unit``.

    Args:
        text: The quantity as typed, e.g. ``"176lb"``.
        kind: What it must be.
        field: The name shown in messages; defaults to the kind's label.

    Returns:
        The value in ``kind.unit`` (``parse_as("176lb", Kind.WEIGHT)`` is 79.83225712).

    Raises:
        QuantityError: As :func:`parse`.

    """
    return parse(text, kind, field=field)[1]


def _split(text: str, name: Part, examples: str) -> tuple[Fraction, str]:
    """Split text into an exact number and a unit string, refusing anything misreadable."""

    def refuse(why: str) -> QuantityError:
        return QuantityError(name, f" {why}; write e.g. {examples}", text=text, field=name)

    shown = text if len(text) <= MAX_TEXT_LENGTH else text[:MAX_TEXT_LENGTH] + "..."
    stripped = text.strip(" ")
    if not stripped:
        raise refuse("is empty")
    if len(text) > MAX_TEXT_LENGTH:
        raise refuse(f"is longer than {MAX_TEXT_LENGTH} characters")
    if stripped[0] in "+-":
        raise refuse(f'"{shown}" has a sign: a quantity is written without + or -')
    if _EXPONENT.match(stripped):
        raise refuse(f'"{shown}" is in exponent notation: write the number out')
    if not _ALLOWED_CHARS.fullmatch(stripped):
        bad = next(c for c in stripped if not _ALLOWED_CHARS.fullmatch(c))
        if bad == ",":
            raise refuse(f'"{shown}" has a comma: use a decimal point and no thousands separator')
        raise refuse(f'"{shown}" contains {_describe(bad)}, which is not allowed in a quantity')
    if BARE_NUMBER.fullmatch(stripped):
        raise refuse(f'"{shown}" has no unit')
    if stripped.startswith("."):
        raise refuse(f'"{shown}" needs a leading zero (0.5, not .5)')
    match = _QUANTITY.fullmatch(stripped)
    if match is None:
        raise refuse(f'"{shown}" is not a number followed by a unit')
    if len(match["number"].replace(".", "").lstrip("0")) > MAX_SIGNIFICANT_DIGITS:
        raise refuse(f'"{shown}" has more than {MAX_SIGNIFICANT_DIGITS} significant digits')
    number = Fraction(match["number"])
    if number == 0:
        raise refuse(f'"{shown}" is zero: it must be greater than zero')
    return number, match["unit"]


def _describe(char: str) -> str:
    """Name a character unambiguously for a message (control and look-alike characters)."""
    if char.isprintable() and char.isascii():
        return f'"{char}"'
    return f"U+{ord(char):04X}"


def _resolve(unit: str, text: str, name: Part, examples: str) -> tuple[_Shape, Fraction]:
    """Resolve ``"mg/kg/h"`` into its shape and its factor in base units."""
    names: list[str] = []
    for position, part in enumerate(unit.split("/")):
        written = part.strip(" ")
        squared = written.removesuffix("²").removesuffix("^2").removesuffix("2")
        if squared != written and position > 0:  # "kg/m2": only a denominator may be squared
            names += [squared, squared]
        else:
            names.append(written)
    factor = Fraction(1)
    dimensions: list[str] = []
    for position, unit_name in enumerate(names):
        dimension, unit_factor = _unit(unit_name, text, name, examples)
        if position > 0 and dimension == MASS and unit_factor not in _BODY_MASS_FACTORS:
            raise QuantityError(
                name,
                f' "{text}": per body weight is written /kg or /lb, not /{unit_name}; '
                f"write e.g. {examples}",
                text=text,
                field=name,
            )
        dimensions.append(dimension)
        factor = factor * unit_factor if position == 0 else factor / unit_factor
    shape = _Shape(dimensions[0], tuple(sorted(dimensions[1:])))
    return shape, factor


def _unit(unit_name: str, text: str, name: Part, examples: str) -> tuple[str, Fraction]:
    """Dimension and base-unit factor of one unit name (``_COMMON`` first, then pint)."""
    known = _COMMON.get(unit_name)
    if known is not None:
        return known
    if unit_name in _REFUSED:
        raise QuantityError(name, f' "{text}": {_REFUSED[unit_name]}', text=text, field=name)
    resolved = _pint_unit(unit_name)
    if resolved is None:
        hint = _case_hint(unit_name) or f"; write e.g. {examples}"
        raise QuantityError(
            name, f' "{text}": unknown unit "{unit_name}"{hint}', text=text, field=name
        )
    return resolved


def _case_hint(unit_name: str) -> str:
    """Suggest the defined spelling when only the case is wrong ("KG" -> "kg")."""
    lowered = unit_name.lower()
    for known in _COMMON:
        if known.lower() == lowered:
            return f' (units are case-sensitive: did you mean "{known}"?)'
    return ""


@cache
def registry() -> Any:
    """The curated pint registry (``data/units.txt``) with exact Fraction magnitudes.

    Built once per process, on first use; importing this module does not import pint.

    Returns:
        A ``pint.UnitRegistry``.

    """
    import pint

    definitions = resources.files("ketadose.data").joinpath("units.txt")
    with resources.as_file(definitions) as path:
        return pint.UnitRegistry(str(path), non_int_type=Fraction)


@cache
def _pint_unit(unit_name: str) -> tuple[str, Fraction] | None:
    """Resolve one unit name with pint, or None when the registry does not define it."""
    ureg = registry()
    try:
        unit = ureg.Unit(unit_name)
    except Exception:  # pint raises UndefinedUnitError, and others for odd names
        return None
    dimensionality = dict(unit.dimensionality)
    if len(dimensionality) != 1:  # every defined unit has exactly one base dimension
        return None
    ((dimension, exponent),) = dimensionality.items()
    if exponent != 1:
        return None
    dimension_name = str(dimension).strip("[]")
    base = ureg.Unit(BASE_UNIT[dimension_name])
    factor = ureg.Quantity(Fraction(1), unit).to(base).magnitude
    return dimension_name, Fraction(factor)


@cache
def _canonical_factor(kind: Kind) -> Fraction:
    """Base-unit factor of a kind's own unit (mg/kg -> 1/1000000)."""
    return _resolve(kind.unit, kind.unit, kind.label, kind.example)[1]


def show(value: float, reference: float | None = None) -> str:
    """A value for a message: never "0" for a non-zero value, never equal-looking to a limit.

    Args:
        value: The value.
        reference: A limit it is compared with; more digits are shown if needed to tell them
            apart (1.5004 against 1.5).

    Returns:
        The text.
    """
    text = format_number(value)
    if (text == "0" and value != 0) or (
        reference is not None and value != reference and text == format_number(reference)
    ):
        text = f"{value:.12g}"
    return text


def format_number(value: float, step: float | None = None) -> str:
    """Format a number the clinical way: a leading zero, no trailing zeros, no exponent.

    Rounding is half-up on the decimal value (35.25 -> 35.3 with ``step=0.1``), as a clinician
    rounds, not banker's rounding on the binary float.

    Args:
        value: The number.
        step: Round to a multiple of this (0.1 for a pump rate); ``None`` keeps up to 6
            decimals, enough to show every value ketadose computes without float noise.

    Returns:
        The text, e.g. ``"35"``, ``"0.5"``, ``"52.5"``.

    """
    from decimal import ROUND_HALF_UP, Decimal, localcontext

    with localcontext() as context:
        # Enough digits for any finite float at any step: quantize never runs out of precision.
        context.prec = 400
        exact = Decimal(repr(float(value)))
        if step is None:
            rounded = exact.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
        else:
            increment = Decimal(repr(float(step)))
            rounded = (exact / increment).quantize(Decimal(1), rounding=ROUND_HALF_UP) * increment
        text = f"{rounded:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def round_to(value: float, step: float) -> float:
    """Round half-up to a multiple of ``step``, returned as the float of the decimal result.

    Args:
        value: The number.
        step: The increment, e.g. 0.1.

    Returns:
        ``float(format_number(value, step))``.

    """
    return float(format_number(value, step))
