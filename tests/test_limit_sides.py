"""Every limited parameter, every side: a library with sides 10/20/30/40 and values around them.

For each parameter a probe builds a session (or context) whose checked value is exactly ``x``
in the parameter's unit; values at a limit pass it, values beyond it are soft or hard.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ketadose.limits import (
    SECTIONS,
    LimitLibrary,
    check,
    check_predicted_peak,
    load_file,
)
from ketadose.models import (
    CheckContext,
    DosedSession,
    Finding,
    Patient,
    PreviousSession,
    Severity,
    Vitals,
)
from ketadose.pk import DEFAULT_MODEL, MODELS, Infusion, peaks, session_infusions
from tests.factories import SRC, dose_for, protocol

AT = datetime(2026, 11, 27, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))
UNITS = {
    "total_dose_per_kg": "mg/kg",
    "total_dose": "mg",
    "total_dose_per_kg_actual": "mg/kg",
    "bolus_dose_per_kg": "mg/kg",
    "bolus_dose": "mg",
    "bolus_count": "",
    "bolus_rate_per_kg": "mg/kg/h",
    "bolus_duration": "min",
    "rate_per_kg": "mg/kg/h",
    "rate": "mg/h",
    "rate_per_kg_actual": "mg/kg/h",
    "infusion_duration": "min",
    "total_duration": "min",
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
    "interval": "min",
    "escalation_step": "mg/kg",
    "systolic": "mmHg",
    "diastolic": "mmHg",
    "heart_rate": "bpm",
    "spo2": "%",
}

Probe = Callable[[float], tuple[DosedSession, CheckContext]]
PEAK_PER_MG = peaks(MODELS[DEFAULT_MODEL], 80, [[Infusion(0, 40, 1)]])[0]


def plain(session: DosedSession) -> tuple[DosedSession, CheckContext]:
    return session, CheckContext(at=AT)


def timed(dose: str, minutes: float = 60, bag: str = "1000 mL", weight: float = 80) -> DosedSession:
    entry = protocol({"kind": "timed", "dose": dose, "duration": f"{minutes} min"}, bag=bag)
    return dose_for(entry, weight)


def history(*sessions: PreviousSession) -> CheckContext:
    return CheckContext(at=AT, history=sessions)


def vitals(**values: float) -> Callable[[DosedSession], tuple[DosedSession, CheckContext]]:
    def probe(session: DosedSession) -> tuple[DosedSession, CheckContext]:
        return session, CheckContext(at=AT, vitals=Vitals(**values))

    return probe


def during(**values: float) -> tuple[DosedSession, CheckContext]:
    return timed("0.5 mg/kg"), CheckContext(at=AT, vitals=Vitals(**values), during=True)


PROBES: dict[str, Probe] = {
    "total_dose_per_kg": lambda x: plain(timed(f"{x} mg/kg", bag="10000 mL")),
    "total_dose": lambda x: plain(timed(f"{x} mg")),
    "total_dose_per_kg_actual": lambda x: plain(timed(f"{x} mg/kg", bag="10000 mL")),
    "bolus_count": lambda x: plain(
        dose_for(
            protocol(
                *({"kind": "bolus", "dose": "1 mg", "duration": "2 min"} for _ in range(int(x))),
                bag="10000 mL",
            )
        )
    ),
    # x/10 mg/kg over 6 min is x mg/kg/h.
    "bolus_rate_per_kg": lambda x: plain(
        dose_for(
            protocol(
                {"kind": "bolus", "dose": f"{x / 10} mg/kg", "duration": "6 min"}, bag="10000 mL"
            )
        )
    ),
    "bolus_duration": lambda x: plain(
        dose_for(protocol({"kind": "bolus", "dose": "1 mg", "duration": f"{x} min"}))
    ),
    "rate_per_kg_actual": lambda x: plain(
        dose_for(
            protocol({"kind": "rate", "rate": f"{x} mg/kg/h", "duration": "1 h"}, bag="10000 mL")
        )
    ),
    "total_duration": lambda x: plain(timed("0.5 mg/kg", minutes=x)),
    "bolus_dose_per_kg": lambda x: plain(
        dose_for(
            protocol({"kind": "bolus", "dose": f"{x} mg/kg", "duration": "2 min"}, bag="10000 mL")
        )
    ),
    "bolus_dose": lambda x: plain(
        dose_for(
            protocol({"kind": "bolus", "dose": f"{x} mg", "duration": "2 min"}, bag="10000 mL")
        )
    ),
    "rate_per_kg": lambda x: plain(
        dose_for(
            protocol({"kind": "rate", "rate": f"{x} mg/kg/h", "duration": "1 h"}, bag="10000 mL")
        )
    ),
    "rate": lambda x: plain(
        dose_for(protocol({"kind": "rate", "rate": f"{x} mg/h", "duration": "1 h"}))
    ),
    "infusion_duration": lambda x: plain(timed("0.5 mg/kg", minutes=x)),
    "final_concentration": lambda x: plain(
        dose_for(
            protocol({"kind": "timed", "dose": f"{x * 100} mg", "duration": "1 h"}),
            vial_mg_per_ml=100,
        )
    ),
    "pump_rate": lambda x: plain(timed("0.5 mg/kg", bag=f"{x} mL")),
    # x mL of the 10 mg/mL vial, injected IM undiluted.
    "injection_volume": lambda x: plain(
        dose_for(protocol({"kind": "bolus", "dose": f"{x * 10} mg"}, route="im"))
    ),
    # x mL of a 10 mg/mL sublingual solution, measured in 0.01 mL steps: x * 10 mg.
    "liquid_volume": lambda x: plain(
        dose_for(
            protocol(
                {"kind": "fixed", "dose": f"{x * 10} mg"},
                route="sublingual",
                form={
                    "kind": "solution",
                    "name": "test solution",
                    "strengths": ["10 mg/mL"],
                    "step": "0.01 mL",
                    **SRC,
                },
            )
        )
    ),
    # x whole tablets of 10 mg, taken by mouth: x * 10 mg.
    "tablet_count": lambda x: plain(
        dose_for(
            protocol(
                {"kind": "fixed", "dose": f"{x * 10} mg"},
                route="oral",
                form={
                    "kind": "tablet",
                    "name": "test tablet",
                    "strengths": ["10 mg"],
                    "split": 1,
                    **SRC,
                },
            )
        )
    ),
    # No previous session: this one is the first of its series.
    "first_session_dose": lambda x: (timed(f"{x} mg"), CheckContext(at=AT)),
    # A 40-min infusion whose own predicted peak (default model, 80 kg) is x ng/mL: peaks are
    # proportional to the dose.
    "predicted_peak": lambda x: plain(timed(f"{x / PEAK_PER_MG:.12f} mg", minutes=40)),
    "weight": lambda x: plain(timed("0.5 mg/kg", weight=x)),
    "age": lambda x: plain(
        dose_for(
            protocol({"kind": "timed", "dose": "0.5 mg/kg", "duration": "1 h"}), 80
        ).model_copy(update={"patient": Patient(weight_kg=80, age_years=x)})
    ),
    "bmi": lambda x: plain(
        dose_for(
            protocol({"kind": "timed", "dose": "0.5 mg/kg", "duration": "1 h"}), 80
        ).model_copy(update={"patient": Patient(weight_kg=x, height_cm=100)})
    ),
    "dose_per_24h": lambda x: (timed(f"{x} mg"), CheckContext(at=AT)),
    "dose_per_7d": lambda x: (timed(f"{x} mg/kg", bag="10000 mL"), CheckContext(at=AT)),
    "sessions_per_7d": lambda x: (
        timed("0.5 mg/kg"),
        history(
            *(PreviousSession(at=AT - timedelta(minutes=3 * (i + 1))) for i in range(int(x) - 1))
        ),
    ),
    "interval": lambda x: (
        timed("0.5 mg/kg"),
        history(PreviousSession(at=AT - timedelta(minutes=x))),
    ),
    "escalation_step": lambda x: (
        timed(f"{0.5 + x} mg/kg", bag="10000 mL"),
        history(PreviousSession(at=AT - timedelta(days=3), dose_mg_per_kg=0.5)),
    ),
    "systolic": lambda x: vitals(systolic=x)(timed("0.5 mg/kg")),
    "diastolic": lambda x: vitals(diastolic=x)(timed("0.5 mg/kg")),
    "heart_rate": lambda x: vitals(heart_rate=x)(timed("0.5 mg/kg")),
    "spo2": lambda x: vitals(spo2=x)(timed("0.5 mg/kg")),
}

EXPECTED = [
    (5, Severity.HARD, "lower_hard"),
    (10, Severity.SOFT, "lower_soft"),  # at the hard minimum: not hard, still below soft
    (15, Severity.SOFT, "lower_soft"),
    (20, None, None),  # exactly at the soft minimum
    (25, None, None),
    (30, None, None),  # exactly at the soft maximum
    (35, Severity.SOFT, "upper_soft"),
    (40, Severity.SOFT, "upper_soft"),  # at the hard maximum: not hard
    (45, Severity.HARD, "upper_hard"),
]


def checked_findings(
    session: DosedSession, library: LimitLibrary, context: CheckContext
) -> list[Finding]:
    """What the gate's checker finds, the session's own predicted peak included."""
    peak = peaks(MODELS[DEFAULT_MODEL], 80, [session_infusions(session.phases)])[0]
    return check(session, library, context) + check_predicted_peak(library, "t", "iv", peak)


def library_for(section: str, parameter: str) -> LimitLibrary:
    unit = UNITS[parameter]
    sides = "\n".join(
        f"{side} = {value}" if not unit else f'{side} = "{value} {unit}"'
        for side, value in (
            ("lower_hard", 10),
            ("lower_soft", 20),
            ("upper_soft", 30),
            ("upper_hard", 40),
        )
    )
    text = (
        '[library]\nname = "sides"\nversion = "1"\n\n'
        f'[profiles.default.{section}.{parameter}]\n{sides}\nsource = "test"\nevidence = "SITE-POLICY"\n'
    )
    return load_file(text.encode(), "sides.toml")


def all_parameters() -> list[tuple[str, str]]:
    return [(section, name) for section, model in SECTIONS.items() for name in model.model_fields]


class TestEveryParameter:
    """Each parameter of each section is checked on all four sides, boundaries included."""

    def test_every_parameter_has_a_probe(self) -> None:
        names = {name for _, name in all_parameters()}
        assert names == set(PROBES) == set(UNITS)

    @pytest.mark.parametrize(("section", "parameter"), all_parameters(), ids=lambda v: str(v))
    @pytest.mark.parametrize(("value", "severity", "side"), EXPECTED, ids=lambda v: str(v))
    def test_sides(
        self,
        section: str,
        parameter: str,
        value: float,
        severity: Severity | None,
        side: str | None,
    ) -> None:
        library = library_for(section, parameter)
        if section == "vitals_during":
            session, context = during(**{parameter: value})
        else:
            session, context = PROBES[parameter](value)
        checked = checked_findings(session, library, context)
        findings = [f for f in checked if f.parameter == f"{section}.{parameter}"]
        if severity is None:
            assert findings == []
            return
        assert len(findings) == 1, findings
        (finding,) = findings
        assert (finding.severity, finding.side) == (severity, side)
        assert finding.value == pytest.approx(value, rel=1e-9)
        limits = {"lower_hard": 10, "lower_soft": 20, "upper_soft": 30, "upper_hard": 40}
        assert finding.limit == limits[str(side)]
        assert finding.source == "test"


def library_in_mg(section: str, parameter: str) -> LimitLibrary:
    """``library_for`` with the sides written in mg (a fixed-dose limit)."""
    sides = "\n".join(
        f'{side} = "{value} mg"'
        for side, value in (("lower_hard", 10), ("lower_soft", 20), ("upper_soft", 30), ("upper_hard", 40))
    )  # fmt: skip
    text = (
        '[library]\nname = "sides"\nversion = "1"\n\n'
        f'[profiles.default.{section}.{parameter}]\n{sides}\nsource = "test"\nevidence = "SITE-POLICY"\n'
    )
    return load_file(text.encode(), "sides.toml")


class TestEscalationStepInMg:
    """An escalation step limited in mg (a fixed-dose ladder) is checked in mg on every side."""

    @pytest.mark.parametrize("previous", ["mg", "per kg"])
    @pytest.mark.parametrize(("value", "severity", "side"), EXPECTED, ids=lambda v: str(v))
    def test_sides(
        self, previous: str, value: float, severity: Severity | None, side: str | None
    ) -> None:
        # 50 mg before, 50 + x mg now. Given per kg, the previous dose is 0.625 mg/kg at this
        # session's 80 kg = 50 mg (regression: it used to leave the step unchecked).
        given = (
            PreviousSession(at=AT - timedelta(days=3), dose_mg=50)
            if previous == "mg"
            else PreviousSession(at=AT - timedelta(days=3), dose_mg_per_kg=0.625)
        )
        session = timed(f"{50 + value} mg")
        findings = [
            f
            for f in check(session, library_in_mg("series", "escalation_step"), history(given))
            if f.parameter == "series.escalation_step"
        ]
        if severity is None:
            assert findings == []
            return
        (finding,) = findings
        assert (finding.severity, finding.side, finding.unit) == (severity, side, "mg")
        assert finding.value == pytest.approx(value, rel=1e-9)
