"""Hypothesis strategies for testing ketadose, and for testing a clinic's setup against it.

Needs the ``test`` extra (``pip install 'ketadose[test]'``); importing :mod:`ketadose` itself
never imports hypothesis. Every "valid" strategy is sound: what it yields, ketadose accepts
(``tests/test_strategies.py`` checks each one). The hostile and invalid ones yield what must be
refused, each with what makes it so. A property test in five lines::

    from hypothesis import given
    from ketadose import strategies as ks
    from ketadose.units import Kind, parse_as

    @given(ks.quantities(Kind.DOSE_PER_KG))
    def test_every_dose_spelling_reads_exactly(case):
        text, mg_per_kg = case
        assert parse_as(text, Kind.DOSE_PER_KG) == mg_per_kg
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from ketadose.events import AdverseEvent, Grade
from ketadose.limits import REQUIRED, REQUIRED_BY_ROUTE, SECTIONS, SIDES, LimitLibrary
from ketadose.models import MedicationUse, Patient, Sex, Vitals, WeightPolicy
from ketadose.records import Answer, BloodPressure, PatientRecord, Reading, SessionRecord
from ketadose.units import Kind
from ketadose.weight import dosing_weight

_LB = Fraction("0.45359237")
#: Accepted spellings of each kind's unit, with how many of ``kind.unit`` one of them is.
SPELLINGS: dict[Kind, tuple[tuple[str, Fraction], ...]] = {
    Kind.WEIGHT: (("kg", Fraction(1)), ("lb", _LB), ("lbs", _LB), ("g", Fraction(1, 1000))),
    Kind.HEIGHT: (("cm", Fraction(1)), ("m", Fraction(100)), ("in", Fraction("2.54"))),
    Kind.AGE: (("y", Fraction(1)),),
    Kind.DURATION: (("min", Fraction(1)), ("h", Fraction(60)), ("hr", Fraction(60))),
    Kind.DOSE: (("mg", Fraction(1)), ("mcg", Fraction(1, 1000)), ("g", Fraction(1000))),
    Kind.DOSE_PER_KG: (
        ("mg/kg", Fraction(1)),
        ("mcg/kg", Fraction(1, 1000)),
        ("mg/lb", 1 / _LB),
    ),
    Kind.RATE: (("mg/h", Fraction(1)), ("mg/min", Fraction(60)), ("mcg/min", Fraction(6, 100))),
    Kind.RATE_PER_KG: (
        ("mg/kg/h", Fraction(1)),
        ("mg/kg/min", Fraction(60)),
        ("mcg/kg/min", Fraction(6, 100)),
    ),
    Kind.CONCENTRATION: (
        ("mg/mL", Fraction(1)),
        ("mg/ml", Fraction(1)),
        ("mg/L", Fraction(1, 1000)),
    ),
    Kind.PLASMA: (("ng/mL", Fraction(1)), ("mcg/L", Fraction(1)), ("mg/L", Fraction(1000))),
    Kind.VOLUME: (("mL", Fraction(1)), ("ml", Fraction(1)), ("L", Fraction(1000))),
    Kind.PUMP_RATE: (("mL/h", Fraction(1)), ("mL/min", Fraction(60)), ("ml/hr", Fraction(1))),
    Kind.BMI: (("kg/m2", Fraction(1)), ("kg/m²", Fraction(1)), ("kg/m^2", Fraction(1))),
    Kind.PRESSURE: (("mmHg", Fraction(1)),),
    Kind.HEART_RATE: (("bpm", Fraction(1)),),
    Kind.SATURATION: (("%", Fraction(1)),),
}


def numbers(
    *, low: str = "0.0001", high: str = "100000", places: int = 4
) -> st.SearchStrategy[str]:
    """Positive decimals as a clinician writes them: a leading zero, no exponent, no sign.

    Args:
        low: Smallest value.
        high: Largest value.
        places: Most decimal places.

    Returns:
        Number texts such as ``"0.5"`` or ``"176"``.
    """
    decimals = st.decimals(min_value=low, max_value=high, places=places, allow_nan=False)
    return decimals.filter(lambda d: d > 0).map(lambda d: f"{d.normalize():f}")


@st.composite
def quantities(draw: st.DrawFn, kind: Kind) -> tuple[str, float]:
    """A valid quantity of ``kind`` in any accepted spelling, and its exact value.

    Args:
        draw: (hypothesis)
        kind: What it is.

    Returns:
        ``(text, value in kind.unit)``, e.g. ``("176 lb", 79.83225712)``; ``parse_as(text,
        kind)`` returns exactly that value.
    """
    number = draw(numbers())
    unit, factor = draw(st.sampled_from(SPELLINGS[kind]))
    space = draw(st.sampled_from(("", " ")))
    return f"{number}{space}{unit}", float(Fraction(number) * factor)


#: Ways of writing a quantity that must be refused, each with the rule it breaks.
HOSTILE = (
    ("nan", "not a number: NaNkg"),
    ("inf", "not finite: infkg"),
    ("-0", "a sign: -0kg"),
    ("exponent", "exponent notation: 1e308kg, 1e-320kg"),
    ("huge", "more than 15 significant digits"),
    ("arabic-indic", "Unicode digits: ٨٠kg"),
    ("full-width", "full-width digits: ８０kg"),
    ("letter-o", "a letter O for a zero: 8Okg"),
    ("comma", "a comma decimal: 0,5mg/kg"),
    ("thousands", "a thousands separator: 1,000mg"),
    ("junk", "trailing junk: 80kg;rm"),
    ("empty", "empty or blank"),
    ("long", "10 kB of text"),
    ("control", "a control character"),
    ("case", "wrong case: 80 KG, 0.5 MG/KG"),
    ("ug", "ug or µg for mcg (ISMP)"),
    ("cc", "cc for mL (ISMP)"),
    ("bare", "a number with no unit"),
    ("zero", "zero"),
    ("leading-dot", "no leading zero: .5mg/kg"),
    ("wrong-kind", "a unit of another kind"),
)


_ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
_FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


@st.composite
def hostile_quantities(draw: st.DrawFn, kind: Kind = Kind.WEIGHT) -> tuple[str, str]:
    """A text that is not a valid quantity of ``kind`` and must be refused, never misread.

    Args:
        draw: (hypothesis)
        kind: The kind it is offered as.

    Returns:
        ``(text, the rule it breaks)``; ``parse(text, kind)`` raises ``QuantityError``.
    """
    rule, why = draw(st.sampled_from(HOSTILE))
    unit = SPELLINGS[kind][0][0]
    number = draw(numbers(low="1", high="999", places=0))
    texts = {
        "nan": [f"NaN{unit}", f"nan {unit}"],
        "inf": [f"inf{unit}", f"Infinity {unit}"],
        "-0": [f"-0{unit}", f"-{number}{unit}", f"+{number}{unit}"],
        "exponent": [f"1e308{unit}", f"1e-320{unit}", f"{number}E2{unit}"],
        "huge": [f"{'9' * 16}{unit}", f"1{'0' * 400}{unit}"],
        "arabic-indic": [f"{number.translate(_ARABIC_INDIC)}{unit}"],
        "full-width": [f"{number.translate(_FULL_WIDTH)}{unit}"],
        "letter-o": [f"8O{unit}", f"1O0{unit}", f"O.5{unit}"],
        "comma": [f"0,5{unit}", f"{number},5 {unit}"],
        "thousands": [f"1,000{unit}", f"1 000{unit}", f"1_000{unit}"],
        "junk": [
            f"{number}{unit};rm",
            f"{number}{unit} x",
            f"{number}{unit}\\",
            f"{number}{unit}$",
        ],
        "empty": ["", " ", "   "],
        "long": [f"{number}{unit}" + " " * 10_000, "9" * 10_000 + unit],
        "control": [
            f"{number}\x00{unit}",
            f"{number}\t{unit}",
            f"{number}{unit}\n",
            f"\x1b{number}{unit}",
        ],
        "case": [f"{number}{unit.upper()}", f"{number} {unit.swapcase()}"]
        if unit.upper() != unit
        else [f"{number}KG"],
        "ug": [f"{number}ug", f"{number}µg", f"{number}μg/kg"],
        "cc": [f"{number}cc"],
        "bare": [number, f"{number}."],
        "zero": [f"0{unit}", f"0.0{unit}", f"00{unit}"],
        "leading-dot": [f".5{unit}", f".{number}{unit}"],
        "wrong-kind": [f"{number}{_other_unit(kind)}"],
    }
    return draw(st.sampled_from(texts[rule])), why


def _other_unit(kind: Kind) -> str:
    """A unit of a different kind (a volume for a mass, a body weight for anything else)."""
    return "mL" if kind in (Kind.WEIGHT, Kind.DOSE) else "kg"


@st.composite
def patients(draw: st.DrawFn, *, extreme: bool = False) -> Patient:
    """Adult patients: realistic by default, or at the edges of plausibility.

    Args:
        draw: (hypothesis)
        extreme: 30-300 kg, 120-230 cm, BMI 12-80, 18-105 years, instead of 45-150 kg,
            150-200 cm, BMI 17-45, 18-85 years.

    Returns:
        A patient with a weight, and a height, sex and age each present or absent; weight and
        height together always give a BMI in range.
    """
    weight_range, height_range, bmi_range, age_range = (
        ((30, 300), (120, 230), (12, 80), (18, 105))
        if extreme
        else ((45, 150), (150, 200), (17, 45), (18, 85))
    )
    weight = float(draw(st.decimals(*map(str, weight_range), places=1)))
    height: float | None = None
    if draw(st.booleans()):
        # Heights that keep weight / height^2 within the BMI range (and the height range).
        low = max(height_range[0], math.ceil(100 * math.sqrt(weight / bmi_range[1])))
        high = min(height_range[1], math.floor(100 * math.sqrt(weight / bmi_range[0])))
        if low <= high:
            height = float(draw(st.integers(low, high)))
    return Patient(
        weight_kg=weight,
        height_cm=height,
        sex=draw(st.none() | st.sampled_from(tuple(Sex))),
        age_years=draw(st.none() | st.integers(*age_range).map(float)),
    )


def vitals(*, extreme: bool = False) -> st.SearchStrategy[Vitals]:
    """Blood pressure, heart rate and SpO2, each present or absent.

    Args:
        extreme: Values from crisis to collapse, not only those of a calm outpatient.

    Returns:
        Vitals.
    """
    systolic = (60, 260) if extreme else (95, 160)
    diastolic = (30, 150) if extreme else (55, 100)
    heart = (30, 200) if extreme else (50, 110)
    spo2 = (70, 100) if extreme else (92, 100)

    def reading(bounds: tuple[int, int]) -> st.SearchStrategy[float | None]:
        return st.none() | st.integers(*bounds).map(float)

    return st.builds(
        Vitals,
        systolic=reading(systolic),
        diastolic=reading(diastolic),
        heart_rate=reading(heart),
        spo2=reading(spo2),
    )


def medications(library: LimitLibrary) -> st.SearchStrategy[MedicationUse]:
    """Medications by any name or alias the library screens, in any case, with hours since.

    Args:
        library: The limit library whose medications are drawn.

    Returns:
        Medication uses; unknown names are not drawn (see ``medication-unknown``).
    """
    names = sorted(library.named("medications"))
    spelled = st.sampled_from(names).flatmap(
        lambda name: st.sampled_from((name, name.upper(), name.title()))
    )
    hours = st.none() | st.decimals(min_value="0", max_value="720", places=1).map(float)
    return st.builds(MedicationUse, name=spelled, hours_since=hours)


def protocol_ids(library: Any | None = None) -> st.SearchStrategy[str]:
    """Ids of the protocols in effect (the shipped library by default).

    Args:
        library: A ``ProtocolLibrary``, or None for the shipped one.

    Returns:
        Protocol ids.
    """
    from ketadose.protocols import load_library

    return st.sampled_from(sorted(library or load_library()))


_SOURCE = {"source": "generated by ketadose.strategies", "evidence": "SITE-POLICY"}


@st.composite
def protocol_definitions(draw: st.DrawFn) -> dict[str, Any]:
    """A valid protocol definition (the TOML table of one ``[[protocol]]``) as a dict.

    Args:
        draw: (hypothesis)

    Returns:
        A dict that ``Protocol.model_validate`` accepts: an IV protocol of one timed phase,
        one rate phase (optionally capped) or a bolus then a timed phase, with a series.
    """
    minutes = st.integers(5, 240).map(lambda m: f"{m} min")
    per_kg = st.decimals(min_value="0.05", max_value="1.5", places=2).map(lambda d: f"{d:f} mg/kg")
    shape = draw(st.sampled_from(("timed", "rate", "bolus+timed")))
    if shape == "timed":
        phases = [{"kind": "timed", "dose": draw(per_kg), "duration": draw(minutes)}]
    elif shape == "rate":
        rate = draw(st.decimals(min_value="0.05", max_value="1.5", places=2))
        phase = {"kind": "rate", "rate": f"{rate:f} mg/kg/h", "duration": draw(minutes)}
        if draw(st.booleans()):
            phase["cap"] = f"{draw(st.integers(5, 100))} mg/h"
        phases = [phase]
    else:
        bolus = {"kind": "bolus", "dose": "0.1 mg/kg", "duration": "2 min", "label": "loading"}
        phases = [bolus, {"kind": "timed", "dose": draw(per_kg), "duration": draw(minutes)}]
    low = draw(st.integers(1, 7))
    high = draw(st.integers(low, 7))
    return {
        "id": draw(st.from_regex(r"\Aclinic-[a-z0-9]{1,12}\Z")),
        "name": "Generated protocol",
        "category": draw(st.sampled_from(("psychiatric", "pain"))),
        "route": "iv",
        "summary": "generated",
        "references": ["generated"],
        "phases": [{**_SOURCE, **phase} for phase in phases],
        "series": {"sessions": draw(st.integers(1, 12)), "per_week": [low, high], **_SOURCE},
        "preparation": {"final_volume": f"{draw(st.sampled_from((100, 250, 500)))} mL", **_SOURCE},
    }


#: The unit each limit parameter is written in by :func:`limit_libraries` ("" for a count).
LIMIT_UNITS = {
    "total_dose_per_kg": "mg/kg",
    "total_dose": "mg",
    "bolus_dose_per_kg": "mg/kg",
    "bolus_dose": "mg",
    "rate_per_kg": "mg/kg/h",
    "rate": "mg/h",
    "total_dose_per_kg_actual": "mg/kg",
    "bolus_count": "",
    "bolus_rate_per_kg": "mg/kg/h",
    "bolus_duration": "min",
    "rate_per_kg_actual": "mg/kg/h",
    "total_duration": "min",
    "infusion_duration": "min",
    "final_concentration": "mg/mL",
    "pump_rate": "mL/h",
    "injection_volume": "mL",
    "liquid_volume": "mL",
    "tablet_count": "",
    "first_session_dose": "mg",
    "predicted_peak": "ng/mL",
    "weight": "kg",
    "age": "y",
    "bmi": "kg/m2",
    "dose_per_24h": "mg",
    "dose_per_7d": "mg/kg",
    "sessions_per_7d": "",
    "interval": "h",
    "escalation_step": "mg/kg",
    "systolic": "mmHg",
    "diastolic": "mmHg",
    "heart_rate": "bpm",
    "spo2": "%",
}

LimitTables = dict[tuple[str, str, str], dict[str, Decimal | int]]


@st.composite
def limit_tables(
    draw: st.DrawFn, profiles: tuple[str, ...] = ("depression", "crps")
) -> LimitTables:
    """Random valid limits: ``(profile, section, parameter)`` to ordered sides.

    Args:
        draw: (hypothesis)
        profiles: Protocol ids that may get a profile beside ``default``.

    Returns:
        The tables; :func:`limits_toml` writes them as a library file.
    """
    tables: LimitTables = {}
    chosen_profiles = ["default", *draw(st.lists(st.sampled_from(profiles), unique=True))]
    for profile in chosen_profiles:
        for section, model in SECTIONS.items():
            parameters = st.lists(
                st.sampled_from(sorted(model.model_fields)), unique=True, max_size=3
            )
            for parameter in draw(parameters):
                sides = draw(st.lists(st.sampled_from(SIDES), min_size=1, max_size=4, unique=True))
                values: st.SearchStrategy[Decimal | int] = (
                    st.integers(0, 50)
                    if not LIMIT_UNITS[parameter]  # a count
                    else st.decimals(min_value="0.001", max_value="9999", places=3)
                )
                drawn = sorted(draw(st.lists(values, min_size=len(sides), max_size=len(sides))))
                ordered = [side for side in SIDES if side in sides]
                tables[(profile, section, parameter)] = dict(zip(ordered, drawn, strict=True))
    _complete(draw, tables)
    return tables


def _complete(draw: st.DrawFn, tables: LimitTables) -> None:
    """Give every required hard side (``limits.REQUIRED``) a value, so the library is valid.

    The default profile gets each required parameter it lacks; any profile that names a
    required parameter gets the hard sides it lacks (a protocol's limit replaces the
    default's whole), each beyond the sides already drawn, so the order still holds.
    """
    route_required = [r for required in REQUIRED_BY_ROUTE.values() for r in required]
    for section, parameter, needed in (*REQUIRED, *dict.fromkeys(route_required)):
        profiles = {profile for profile, sec, par in tables if (sec, par) == (section, parameter)}
        for profile in profiles | {"default"}:
            sides = tables.setdefault((profile, section, parameter), {})
            for side in needed:
                if side in sides:
                    continue
                upper = side.startswith("upper")
                if not LIMIT_UNITS[parameter]:  # a count
                    counts = [int(v) for v in sides.values()]
                    low, high = (
                        (max(counts, default=0), 50) if upper else (0, min(counts, default=50))
                    )
                    sides[side] = draw(st.integers(low, high))
                    continue
                present = [v for v in sides.values() if isinstance(v, Decimal)]
                if upper:
                    floor = max(present, default=Decimal("0.001"))
                    value = draw(st.decimals(min_value=floor, max_value="9999", places=3))
                else:
                    ceiling = min(present, default=Decimal("9999"))
                    value = draw(st.decimals(min_value="0.001", max_value=ceiling, places=3))
                sides[side] = value
            tables[(profile, section, parameter)] = {
                side: sides[side] for side in SIDES if side in sides
            }


def limits_toml(
    tables: LimitTables, *, approved: bool = False, routes: dict[str, str] | None = None
) -> str:
    """A limit library file with these limits (every one sourced as SITE-POLICY).

    Args:
        tables: As :func:`limit_tables` draws them.
        approved: Name an approver.
        routes: The route each protocol profile is written for (default: ``iv``).

    Returns:
        TOML text.
    """
    routes = routes or {}
    approval = 'approved_by = "QA"\napproved_on = 2026-01-01\n' if approved else ""
    lines = [f'[library]\nname = "generated"\nversion = "1"\n{approval}']
    if not any(profile == "default" for profile, _, _ in tables):
        lines.append("[profiles.default]\n")
    for profile in dict.fromkeys(profile for profile, _, _ in tables):
        if profile != "default":
            lines.append(f'[profiles.{profile}]\nroute = "{routes.get(profile, "iv")}"\n')
    for (profile, section, parameter), sides in tables.items():
        lines.append(f"[profiles.{profile}.{section}.{parameter}]")
        unit = LIMIT_UNITS[parameter]
        for side, value in sides.items():
            lines.append(f"{side} = {value}" if not unit else f'{side} = "{value:f} {unit}"')
        lines.append('source = "generated"\nevidence = "SITE-POLICY"\n')
    return "\n".join(lines) + "\n"


#: How :func:`invalid_limit_libraries` breaks a valid library, and what that breaks.
BREAKAGES = {
    "swap": "sides out of order (a soft maximum above the hard one)",
    "unit": "a side in a unit of another kind",
    "key": "an unknown key",
    "bare": "a quantity without its unit",
    "evidence": "NOT CONFIRMED evidence",
    "no-default": "no [profiles.default]",
    "syntax": "not TOML",
    "binary": "not text",
}


@st.composite
def invalid_limit_libraries(draw: st.DrawFn) -> tuple[bytes, str]:
    """A limit library file that must be refused (exit 5), and what makes it invalid.

    Args:
        draw: (hypothesis)

    Returns:
        ``(file bytes, the breakage from BREAKAGES)``.
    """
    breakage = draw(st.sampled_from(sorted(BREAKAGES)))
    base = '[library]\nname = "broken"\nversion = "1"\n\n'
    limit = (
        "[profiles.default.session.total_dose]\n"
        'lower_soft = "1 mg"\nupper_soft = "{soft}"\nupper_hard = "{hard}"\n'
        'source = "site policy"\nevidence = "{evidence}"\n'
    )
    low, high = sorted(draw(st.lists(st.integers(2, 500), min_size=2, max_size=2, unique=True)))
    fields = {"soft": f"{low} mg", "hard": f"{high} mg", "evidence": "SITE-POLICY"}
    if breakage == "swap":
        fields["soft"], fields["hard"] = fields["hard"], fields["soft"]
    elif breakage == "unit":
        fields["hard"] = f"{high} mL"
    elif breakage == "bare":
        fields["hard"] = str(high)
    elif breakage == "evidence":
        fields["evidence"] = "NOT CONFIRMED"
    text = base + limit.format(**fields)
    if breakage == "key":
        text += 'sauce = "typo"\n'
    elif breakage == "no-default":
        text = text.replace("profiles.default.", "profiles.depression.")
    elif breakage == "syntax":
        text = text.replace(" = ", " == ", 1)
    data = text.encode()
    if breakage == "binary":
        data = draw(st.sampled_from((b"\x00\xff\xfe" + data, text.encode("utf-16"))))
    return data, BREAKAGES[breakage]


_ANSWERS: tuple[Answer, ...] = ("continue", "continue", "continue", "pause", "stop")
_EVENT_TERMS = ("nausea", "dissociation", "hypertension", "sedation", "vomiting")


@st.composite
def adverse_events(draw: st.DrawFn) -> AdverseEvent:
    """A graded adverse event of the vocabulary, of any grade."""
    return AdverseEvent(draw(st.sampled_from(_EVENT_TERMS)), draw(st.sampled_from(list(Grade))))


@st.composite
def readings(
    draw: st.DrawFn, start: datetime, minutes: float, *, clean: bool = False
) -> tuple[Reading, ...]:
    """A vitals timeline for a session from ``start``: complete, or with gaps.

    Readings run from 15 min before the start to 45 min after the end. A ``clean`` timeline is
    every 5 min (so it meets every schedule the shipped protocols have) with values inside
    the shipped limits, answered continue: the evidence an escalation needs. Otherwise values
    are plausible or past a limit, with answers drawn, not computed (the decision must check
    what was recorded).
    """
    if clean:
        times = [start + timedelta(minutes=t) for t in range(-15, int(minutes) + 46, 5)]
        timeline = []
        for at in times:
            systolic = draw(st.integers(110, 139))
            timeline.append(
                Reading(
                    at=at,
                    systolic=float(systolic),
                    diastolic=float(draw(st.integers(60, 85))),
                    heart_rate=float(draw(st.integers(60, 95))),
                    spo2=float(draw(st.integers(96, 100))),
                    sedation=draw(st.none() | st.integers(3, 5)),
                )
            )
        return tuple(timeline)
    every = draw(st.sampled_from((5, 10, 15, 30)))
    times = [start - timedelta(minutes=15)]
    t = float(every)
    while t <= minutes + 45:
        times.append(start + timedelta(minutes=t))
        t += every
    kept = (
        draw(st.lists(st.sampled_from(times), unique=True, max_size=len(times)))
        if draw(st.booleans())
        else times
    )
    timeline = []
    for at in sorted(kept):
        answer = draw(st.sampled_from(_ANSWERS))
        systolic = draw(st.integers(90, 210))
        timeline.append(
            Reading(
                at=at,
                systolic=float(systolic),
                diastolic=float(draw(st.integers(50, min(125, systolic - 10)))),
                heart_rate=float(draw(st.integers(45, 150))),
                spo2=float(draw(st.integers(88, 100))),
                sedation=draw(st.none() | st.integers(0, 5)),
                answer=answer,
                findings=() if answer == "continue" else (f"vitals-{answer}",),
            )
        )
    return tuple(timeline)


def _pressure(draw: st.DrawFn, clean: bool = False) -> BloodPressure:
    """A peak blood pressure: inside the shipped limits when ``clean``, else up to 210/125."""
    systolic = draw(st.integers(110, 139) if clean else st.integers(100, 210))
    high = 85 if clean else min(125, systolic - 10)
    return BloodPressure(float(systolic), float(draw(st.integers(60, high))))


def _rate(clean: bool) -> st.SearchStrategy[float]:
    return (st.integers(60, 95) if clean else st.integers(0, 150)).map(float)


def _saturation(clean: bool) -> st.SearchStrategy[float]:
    return (st.integers(96, 100) if clean else st.integers(85, 100)).map(float)


@st.composite
def session_histories(
    draw: st.DrawFn, protocol_id: str = "depression", *, max_sessions: int = 8
) -> tuple[PatientRecord, list[SessionRecord]]:
    """A patient and the sessions given, as the record store and ``next --history`` hold them.

    Sessions are 1-7 days apart at doses on and off the protocol's ladder (0.3-1 mg/kg), on
    actual, ideal, adjusted or lean weight (recorded or only as mg and mg/kg), with or
    without summary vitals (heart rates down to 0), vitals timelines complete or with gaps,
    graded adverse events of every grade, early stops and scores, so that every ``next``
    rule can come up.

    Args:
        draw: (hypothesis)
        protocol_id: The patient's protocol.
        max_sessions: Most sessions given.

    Returns:
        ``(patient, sessions in time order)``.
    """
    weight = float(draw(st.decimals(min_value="45", max_value="150", places=1)))
    height = float(draw(st.integers(150, 200)))
    sex = draw(st.sampled_from(("male", "female")))
    baseline = float(draw(st.integers(10, 60)))
    patient = PatientRecord(
        id="P-1",
        protocol=protocol_id,
        baseline=baseline,
        weight_kg=weight,
        height_cm=height,
        sex=sex,
    )
    policy = draw(st.sampled_from(list(WeightPolicy)))
    basis, _ = dosing_weight(Patient(weight_kg=weight, height_cm=height, sex=Sex(sex)), policy)
    recorded = draw(st.booleans())
    at = datetime(2026, 11, 2, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    sessions: list[SessionRecord] = []
    for _ in range(draw(st.integers(0, max_sessions))):
        at += timedelta(days=draw(st.integers(1, 7)))
        per_kg = draw(st.sampled_from((0.3, 0.4, 0.5, 0.5, 0.6, 0.75, 0.75, 1.0)))
        # About half the sessions are clean (tolerated on evidence, so escalation can come up);
        # the others carry events of any grade, early stops and partial or bad timelines.
        clean = draw(st.booleans())
        events = (
            []
            if clean
            else draw(st.lists(adverse_events(), max_size=2, unique_by=lambda e: e.term))
        )
        stopped = not clean and draw(st.booleans()) and draw(st.booleans())
        summary = draw(st.booleans())
        sessions.append(
            SessionRecord(
                patient_id=patient.id,
                at=at,
                protocol=protocol_id,
                dose_mg=per_kg * basis.kg * (0.5 if stopped else 1.0),
                dose_mg_per_kg=per_kg * (0.5 if stopped else 1.0),
                duration_min=20.0 if stopped else 40.0,
                bp_peak=(_pressure(draw, clean) if summary else None),
                heart_rate=draw(st.none() | _rate(clean)) if summary else None,
                spo2=draw(st.none() | _saturation(clean)) if summary else None,
                score=draw(st.none() | st.integers(0, 60).map(float)),
                adverse_events=tuple(events),
                weight_policy=policy.value if recorded else None,
                dosing_weight_kg=basis.kg if recorded else None,
                planned_dose_mg=per_kg * basis.kg if recorded else None,
                planned_dose_mg_per_kg=per_kg if recorded else None,
                stopped_at=at + timedelta(minutes=20) if stopped else None,
                readings=draw(readings(at, 40.0, clean=True))
                if clean
                else (draw(readings(at, 40.0)) if draw(st.booleans()) else ()),
            )
        )
    return patient, sessions


_DOSE_OPTIONS: dict[str, st.SearchStrategy[str]] = {
    "--weight": st.one_of(
        quantities(Kind.WEIGHT).map(lambda q: q[0]),
        hostile_quantities(Kind.WEIGHT).map(lambda q: q[0]),
    ),
    "--height": quantities(Kind.HEIGHT).map(lambda q: q[0]),
    "--age": quantities(Kind.AGE).map(lambda q: q[0]),
    "--sex": st.sampled_from(("male", "female", "other")),
    "--dosing-weight": st.sampled_from(("actual", "ideal", "adjusted", "lean", "heaviest")),
    "--dose": st.one_of(
        quantities(Kind.DOSE_PER_KG).map(lambda q: q[0]),
        quantities(Kind.DOSE).map(lambda q: q[0]),
        hostile_quantities(Kind.DOSE_PER_KG).map(lambda q: q[0]),
    ),
    "--rate": quantities(Kind.RATE_PER_KG).map(lambda q: q[0]),
    "--duration": quantities(Kind.DURATION).map(lambda q: q[0]),
    "--vial": st.sampled_from(("10mg/mL", "50mg/mL", "100mg/mL", "20mg/mL", "10 mg")),
    "--bag": quantities(Kind.VOLUME).map(lambda q: q[0]),
    "--override-reason": st.text(max_size=40),
}
_CHECK_OPTIONS: dict[str, st.SearchStrategy[str]] = {
    "--bp": st.sampled_from(("150/95", "120/80", "95/150", "150/", "abc", "300/200")),
    "--hr": st.sampled_from(("80", "80bpm", "0", "-5", "1e3")),
    "--spo2": st.sampled_from(("97", "97%", "101", "")),
    "--med": st.sampled_from(("lamotrigine", "Lamotrigine:12", "unknownium", "x:y")),
    "--condition": st.sampled_from(("pregnancy", "psychosis", "nothing")),
    "--at": st.sampled_from(("2026-11-30T09:00", "2026-13-01T09:00", "now")),
}
_PLAN_OPTIONS: dict[str, st.SearchStrategy[str]] = {
    "--start": st.sampled_from(("2026-11-30", "2026-02-30", "tomorrow", "2026-12-24")),
    "--sessions": st.integers(-1, 120).map(str),
    "--per-week": st.integers(0, 8).map(str),
    "--days": st.sampled_from(("mon,wed,fri", "sat,sun", "funday", "")),
    "--holidays": st.sampled_from(("US", "GB", "XX")),
    "--price": st.sampled_from(("400-800", "800-400", "free", "400")),
    "--patient-id": st.text(max_size=70),
}


_IDS = st.sampled_from(("P-1", "nobody", "", "x" * 80, "P\x1b1"))
_FILES = st.sampled_from(("missing.toml", "/", "/dev/null", "-", ""))
#: The other commands' arguments: the positional ones first, then options to draw from.
_OTHER: dict[str, tuple[list[st.SearchStrategy[str]], dict[str, st.SearchStrategy[str]]]] = {
    "batch": ([_FILES], {"--protocol": st.sampled_from(("depression", "nope")), **_PLAN_OPTIONS}),
    "protocols list": ([], {}),
    "protocols show": ([st.sampled_from(("depression", "crps", "nope", ""))], {}),
    "limits show": ([], {"--protocol": st.sampled_from(("depression", "nope"))}),
    "limits validate": ([_FILES], {}),
    "limits verify": (
        [],
        {"--examples": st.integers(-1, 30).map(str), "--seed": st.integers(-5, 5).map(str)},
    ),
    "limits init": ([_FILES], {}),
    "patient add": (
        [_IDS],
        {
            "--protocol": st.sampled_from(("depression", "nope")),
            "--weight": _DOSE_OPTIONS["--weight"],
            "--baseline": st.sampled_from(("30", "-1", "abc", "1e9")),
        },
    ),
    "patient show": ([_IDS], {}),
    "session record": (
        [_IDS],
        {
            "--date": st.sampled_from(("2026-11-30T09:00", "yesterday")),
            "--dose": _DOSE_OPTIONS["--dose"],
            "--score": st.sampled_from(("20", "-3", "x")),
            "--ae": st.sampled_from(("nausea", "nausea:severe", "")),
        },
    ),
    "audit": ([], {"--patient": _IDS}),
}
#: Every command :func:`argument_vectors` knows.
COMMANDS = ("dose", "check", "plan", "next", "history", "schema", *_OTHER)


@st.composite
def argument_vectors(draw: st.DrawFn, command: str) -> list[str]:
    """A ``ketadose`` argument vector for ``command``, valid or not, to fuzz the CLI with.

    Options come from the command's real ones, with valid and hostile values, in any order,
    sometimes with an unknown option or a repeated one; any output format may be asked for.

    Args:
        draw: (hypothesis)
        command: One of ``COMMANDS`` (``"limits verify"`` for a subcommand).

    Returns:
        The arguments after ``ketadose``.
    """
    argv = command.split()
    if command in _OTHER:
        positional, options = _OTHER[command]
        argv += [draw(strategy) for strategy in positional]
        names = st.lists(st.sampled_from(sorted(options)), max_size=4, unique=True)
        for name in draw(names) if options else []:
            argv += [name, draw(options[name])]
        argv += draw(st.sampled_from(([], [], ["--json"], ["--bogus"])))
        return argv
    if command in ("dose", "check", "plan"):
        argv += ["--protocol", draw(protocol_ids() | st.sampled_from(("nope", "")))]
        options = {**_DOSE_OPTIONS, **(_PLAN_OPTIONS if command == "plan" else _CHECK_OPTIONS)}
        for name in draw(st.lists(st.sampled_from(sorted(options)), max_size=6, unique=True)):
            argv += [name, draw(options[name])]
    elif command in ("next", "history"):
        argv.append(draw(st.sampled_from(("P-1", "nobody", ""))))
    else:
        argv.append(draw(st.sampled_from(("dose", "plan", "batch", "nothing"))))
    if command != "schema":
        formats = ("table", "json", "csv", "markdown", "html", "fhir", "xml")
        argv += draw(
            st.sampled_from(([], ["--json"], ["--format", draw(st.sampled_from(formats))]))
        )
    argv += draw(st.sampled_from(([], [], ["--bogus"], ["--weight", "80kg", "--weight", "90kg"])))
    return argv


@st.composite
def form_protocol_definitions(draw: st.DrawFn) -> dict[str, Any]:
    """A valid sublingual or oral protocol definition (one ``[[protocol]]`` table) as a dict.

    Args:
        draw: (hypothesis)

    Returns:
        A dict that ``Protocol.model_validate`` accepts: one fixed (mg) or bolus (mg/kg) phase
        measured from a solution (strengths in mg/mL, a step in mL) or tablets (strengths in
        mg, split 1, 2 or 4), optionally with escalation steps in mg, a bioavailability, and
        a take-home setting.
    """
    route = draw(st.sampled_from(("sublingual", "oral")))
    kind = draw(st.sampled_from(("solution", "tablet")))
    if kind == "solution":
        strength = st.decimals(min_value="0.5", max_value="200", places=1).map(
            lambda d: f"{d:f} mg/mL"
        )
        step = draw(st.sampled_from(("0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1")))
        measure: dict[str, Any] = {"step": f"{step} mL"}
    else:
        strength = st.sampled_from((1, 2.5, 5, 10, 12.5, 20, 25, 50, 100)).map(lambda v: f"{v} mg")
        measure = {"split": draw(st.sampled_from((1, 2, 4)))}
    strengths = draw(
        st.lists(strength, min_size=1, max_size=3, unique_by=lambda s: float(s.split()[0]))
    )
    form = {"kind": kind, "name": f"{route} {kind}", "strengths": strengths, **measure}
    if draw(st.booleans()):
        mg = draw(st.decimals(min_value="1", max_value="400", places=1))
        phase = {"kind": "fixed", "dose": f"{mg:f} mg", "label": "dose"}
    else:
        per_kg = draw(st.decimals(min_value="0.05", max_value="5", places=2))
        phase = {"kind": "bolus", "dose": f"{per_kg:f} mg/kg", "label": "dose"}
    sessions = draw(st.integers(1, 12))
    steps = []
    if sessions >= 2 and draw(st.booleans()):
        froms = draw(st.lists(st.integers(2, sessions), min_size=1, max_size=3, unique=True))
        doses = draw(
            st.lists(
                st.decimals(min_value="1", max_value="400", places=1),
                min_size=len(froms),
                max_size=len(froms),
                unique=True,
            )
        )
        for number, mg in zip(sorted(froms), sorted(doses), strict=True):
            step_dose = {
                "from_session": number,
                "dose": f"{mg:f} mg",
                "condition": "not responding",
            }
            steps.append({**_SOURCE, **step_dose, "scheduled": draw(st.booleans())})
    low = draw(st.integers(1, 7))
    high = draw(st.integers(low, 7))
    definition: dict[str, Any] = {
        "id": draw(st.from_regex(r"\Aclinic-[a-z0-9]{1,12}\Z")),
        "name": "Generated protocol",
        "category": "psychiatric",
        "route": route,
        "setting": draw(st.sampled_from(("clinic", "take-home"))),
        "summary": "generated",
        "references": ["generated"],
        "phases": [{**_SOURCE, **phase}],
        "form": {**_SOURCE, **form},
        "series": {"sessions": sessions, "per_week": [low, high], **_SOURCE},
    }
    if steps:
        definition["escalation"] = steps
    if draw(st.booleans()):
        percent = draw(st.integers(1, 100))
        bio: dict[str, Any] = {"percent": float(percent), "cite": "Generated 2026"}
        if draw(st.booleans()):
            bio["percent_high"] = float(draw(st.integers(percent, 100)))
        definition["bioavailability"] = {**_SOURCE, **bio}
    return definition


def _toml_value(value: Any) -> str:
    """One value of a generated protocol as TOML (strings, numbers, booleans, lists)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def protocol_toml(definitions: list[dict[str, Any]]) -> str:
    """A clinic protocol file holding these ``[[protocol]]`` definitions.

    Args:
        definitions: As :func:`protocol_definitions` or :func:`form_protocol_definitions`
            draw them (a table is a dict, an array of tables a list of dicts).

    Returns:
        TOML text.
    """
    lines = ['[library]\nname = "generated"\nversion = "1"\n']
    for definition in definitions:
        lines.append("[[protocol]]")
        tables = {k: v for k, v in definition.items() if isinstance(v, dict)}
        arrays = {
            k: v
            for k, v in definition.items()
            if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)
        }
        for key, value in definition.items():
            if key not in tables and key not in arrays:
                lines.append(f"{key} = {_toml_value(value)}")
        for key, table in tables.items():
            lines.append(f"\n[protocol.{key}]")
            lines.extend(f"{k} = {_toml_value(v)}" for k, v in table.items())
        for key, rows in arrays.items():
            for row in rows:
                lines.append(f"\n[[protocol.{key}]]")
                lines.extend(f"{k} = {_toml_value(v)}" for k, v in row.items())
        lines.append("")
    return "\n".join(lines) + "\n"


@st.composite
def form_protocol_cases(draw: st.DrawFn, *, near_limit: bool = False) -> dict[str, Any]:
    """A sublingual or oral clinic protocol, a limit library and a patient to dose by them.

    The limits are :func:`limit_tables` with a profile of the protocol's own (of its route),
    whose total dose, per-kg total and liquid volume or tablet count are often drawn near
    what the dose measures, so that rounding to the form's step meets a limit; the profile's
    escalation step is in mg.

    Args:
        draw: (hypothesis)
        near_limit: always a permissive library whose hard maximum on the measured volume
            or tablet count lies between the exact amount and the step above it, so that
            rounding must go down (the region a property must not leave unvisited to chance:
            about 1 case in 75 of the general draw lands there).

    Returns:
        ``protocol`` (the definition), ``protocols_toml``, ``limits_toml``, ``weight_kg``,
        ``strength`` (None: the form's first), ``level`` (0: the programme; n: escalation
        step n, given after the level below), ``override_reason`` (None, or one that
        acknowledges every soft finding).
    """
    protocol = draw(form_protocol_definitions())
    pid, route = protocol["id"], protocol["route"]
    # Random libraries refuse almost every dose on some limit; a permissive one (every
    # required hard side wide) lets the limits drawn near the dose decide.
    random_library = not near_limit and draw(st.booleans())
    tables = draw(limit_tables(profiles=(pid,)) if random_library else _wide_tables())
    weight_sides = tables.get((pid, "patient", "weight"), tables[("default", "patient", "weight")])
    # A weight the library allows where it can (else any adult's: the gate refuses it).
    low = max(math.ceil(weight_sides.get("lower_hard", 30)), 30)
    high = min(math.floor(weight_sides.get("upper_hard", 250)), 250)
    weight = draw(st.integers(low, high) if low <= high else st.integers(30, 250))
    form = protocol["form"]
    values = [float(s.split()[0]) for s in form["strengths"]]
    strength = draw(st.sampled_from([None, *values]))
    levels = [protocol["phases"][0]["dose"], *(s["dose"] for s in protocol.get("escalation", ()))]
    level = draw(st.integers(0, len(levels) - 1))
    value, unit = levels[level].split()
    mg = float(value) * (float(weight) if unit == "mg/kg" else 1.0)
    exact = mg / (values[0] if strength is None else strength)
    if near_limit or draw(st.sampled_from((True, True, False))):
        # A hard maximum near the dose: rounding to the form's step may have to go down.
        measured = "liquid_volume" if form["kind"] == "solution" else "tablet_count"
        step = float(form["step"].split()[0]) if "step" in form else 1 / form["split"]
        above = math.ceil(exact / step - 1e-9) * step  # the step at or above the exact amount
        if near_limit or draw(st.booleans()):  # between the exact amount and the step above
            limit = exact + draw(st.floats(0, 1)) * (above - exact)
        else:
            limit = exact * draw(st.floats(0.9, 1.1))
        if measured == "tablet_count":
            tables[(pid, "session", measured)] = {"upper_hard": max(0, math.floor(limit))}
        else:
            near = Decimal(str(max(round(limit, 3), 0.001)))
            tables[(pid, "session", measured)] = {"upper_hard": near}
        which = (
            None if near_limit else draw(st.sampled_from(("total_dose", "total_dose_per_kg", None)))
        )
        if which is not None:
            per = mg if which == "total_dose" else mg / float(weight)
            near = Decimal(str(max(round(per * draw(st.floats(0.95, 1.05)), 3), 0.001)))
            tables[(pid, "session", which)] = {"upper_hard": near}
    text = limits_toml(tables, routes={pid: route})
    # The protocol's escalation step in mg: the unit of a fixed-dose ladder.
    header = f"[profiles.{pid}.series.escalation_step]"
    if header in text:
        head, _, tail = text.partition(header)
        block, sep, rest = tail.partition("\n\n")
        text = head + header + block.replace(' mg/kg"', ' mg"') + sep + rest
    return {
        "protocol": protocol,
        "protocols_toml": protocol_toml([protocol]),
        "limits_toml": text,
        "weight_kg": float(weight),
        "strength": strength,
        "level": level,
        "override_reason": draw(st.sampled_from((None, "generated: clinic policy"))),
    }


@st.composite
def _wide_tables(draw: st.DrawFn) -> LimitTables:
    """Limit tables of the default profile with every required hard side far from any dose."""
    tables: LimitTables = {}
    route_required = [r for required in REQUIRED_BY_ROUTE.values() for r in required]
    for section, parameter, needed in (*REQUIRED, *dict.fromkeys(route_required)):
        count = not LIMIT_UNITS[parameter]
        wide: dict[str, Decimal | int] = {
            side: (0 if count else Decimal("0.001"))
            if side.startswith("lower")
            else (50 if count else Decimal("9999"))
            for side in needed
        }
        tables[("default", section, parameter)] = {s: wide[s] for s in SIDES if s in wide}
    if draw(st.booleans()):  # a soft maximum somewhere below, to be acknowledged
        parameter = draw(st.sampled_from(("total_dose", "liquid_volume", "tablet_count")))
        sides = tables[("default", "session", parameter)]
        soft = draw(st.integers(1, 20))
        sides = {"upper_soft": soft if parameter == "tablet_count" else Decimal(soft), **sides}
        tables[("default", "session", parameter)] = sides
    return tables
