"""Issue 12, the shipped data corrected: each rule worked out by hand on the shipped libraries.

Esketamine doses are whole 28-mg devices and 84 mg is refused on day 1; an IM injection has a
volume per site; an age limit written "65 and over" includes 65; a medication hold is measured
from the last dose; the Ketalar label's blood-pressure contraindication reaches IV protocols.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ketadose.libfile import Quantity
from ketadose.limits import check, load_library
from ketadose.models import CheckContext, Finding, MedicationUse, Patient, PreviousSession, Severity
from ketadose.protocols import load_library as load_protocols
from ketadose.units import Kind
from tests.factories import dose_for

S = Severity

LIMITS = load_library()
PROTOCOLS = load_protocols()
AT = datetime(2026, 12, 7, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))


def codes(findings: list[Finding], *wanted: str) -> list[tuple[str, S]]:
    """The findings with these codes (all non-info ones when none is named)."""
    return [
        (f.code, f.severity)
        for f in findings
        if (f.code in wanted) or (not wanted and f.severity is not S.INFO)
    ]


def nasal(mg: float, history: tuple[PreviousSession, ...] = (), age: float = 40) -> list[Finding]:
    entry = PROTOCOLS.get_protocol("esketamine-nasal")
    session = dose_for(entry, 70, dose=Quantity(Kind.DOSE, mg, f"{mg}mg"))
    session = session.model_copy(update={"patient": Patient(weight_kg=70, age_years=age)})
    return check(session, LIMITS, CheckContext(at=AT, history=history))


AFTER_56 = (PreviousSession(at=AT - timedelta(days=3, hours=12), dose_mg=56),)


class TestEsketamineDevices:
    """A nasal dose is a whole number of 28-mg devices; 84 mg only after a first 56 mg."""

    def test_day_one_56_mg_passes(self) -> None:
        assert codes(nasal(56)) == []

    def test_70_mg_is_not_whole_devices(self) -> None:
        findings = nasal(70, AFTER_56)
        assert codes(findings) == [("total-dose-step", S.HARD)]
        step = next(f for f in findings if f.code == "total-dose-step")
        assert (step.value, step.limit, step.unit) == (70, 28, "mg")
        assert "give 56 mg or 84 mg" in step.message

    def test_84_mg_on_day_one_is_refused_as_off_label(self) -> None:
        findings = nasal(84)
        assert codes(findings) == [("first-session-dose-high", S.HARD)]
        found = next(f for f in findings if f.code == "first-session-dose-high")
        assert (found.value, found.limit) == (84, 56)
        assert "56-mg dose" in (found.source or "")

    def test_84_mg_after_a_first_56_mg_passes(self) -> None:
        assert codes(nasal(84, AFTER_56)) == []

    def test_28_mg_is_one_device_but_below_the_label_dose(self) -> None:
        assert codes(nasal(28, AFTER_56)) == [("total-dose-low", S.SOFT)]

    def test_112_mg_is_whole_devices_but_above_the_label(self) -> None:
        assert codes(nasal(112, AFTER_56)) == [
            ("total-dose-high", S.HARD),
            ("dose-per-24h-high", S.HARD),  # one 84-mg label dose a day
        ]

    def test_the_checker_knows_no_protocol_id(self) -> None:
        """The device rule is the library's (a step and a first-session limit), not code."""
        total = LIMITS.limit("esketamine-nasal", "session", "total_dose", "intranasal")
        first = LIMITS.limit("esketamine-nasal", "series", "first_session_dose", "intranasal")
        assert total is not None and total.bounds.step == 28
        assert first is not None and first.bounds.upper_hard == 56
        iv = LIMITS.limit("depression", "session", "total_dose", "iv")
        assert iv is not None and iv.bounds.step is None


def im(weight: float, vial: float | None = None) -> list[Finding]:
    entry = PROTOCOLS.get_protocol("depression-im")
    return check(dose_for(entry, weight, vial_mg_per_ml=vial), LIMITS, CheckContext(at=AT))


class TestInjectionVolume:
    """0.5 mg/kg IM from the 10 mg/mL vial: 0.05 mL/kg, at most 5 mL a site (soft), 10 (hard)."""

    @pytest.mark.parametrize(
        ("weight", "expected"),
        [
            (70, []),  # 35 mg = 3.5 mL
            (100, []),  # 50 mg = 5 mL: exactly at the 5-mL maximum, which is allowed
            (110, [("injection-volume-high", S.SOFT)]),  # 5.5 mL
            (200, [("injection-volume-high", S.SOFT)]),  # 10 mL: at the hard maximum
            (210, [("injection-volume-high", S.HARD)]),  # 10.5 mL
        ],
    )
    def test_volume_per_site(self, weight: float, expected: list[tuple[str, S]]) -> None:
        assert codes(im(weight), "injection-volume-high") == expected

    def test_the_stronger_vial_is_a_smaller_injection(self) -> None:
        findings = im(110, vial=50)  # 55 mg = 1.1 mL
        assert codes(findings, "injection-volume-high") == []

    def test_the_message_gives_the_drawn_volume(self) -> None:
        found = next(f for f in im(110) if f.code == "injection-volume-high")
        assert found.value == pytest.approx(5.5)
        assert (found.limit, found.unit) == (5, "mL")
        assert found.parameter == "session.injection_volume"

    def test_iv_infusions_are_not_injections(self) -> None:
        entry = PROTOCOLS.get_protocol("depression")
        findings = check(dose_for(entry, 110), LIMITS, CheckContext(at=AT))
        assert codes(findings, "injection-volume-high") == []


def aged(age: float) -> list[Finding]:
    session = dose_for(PROTOCOLS.get_protocol("depression"), 70)
    session = session.model_copy(update={"patient": Patient(weight_kg=70, age_years=age)})
    return check(session, LIMITS, CheckContext(at=AT))


class TestAgeWording:
    """ "65 and over" includes 65; the adult minimum 18 and the plausibility maximum 120 pass."""

    @pytest.mark.parametrize(
        ("age", "expected"),
        [
            (17.9, [("age-low", S.HARD)]),
            (18, []),
            (64.9, []),
            (65, [("age-high", S.SOFT)]),
            (65.1, [("age-high", S.SOFT)]),
            (120, [("age-high", S.SOFT)]),
            (120.5, [("age-high", S.HARD)]),
        ],
    )
    def test_boundaries(self, age: float, expected: list[tuple[str, S]]) -> None:
        assert codes(aged(age)) == expected

    def test_the_message_says_at_or_above(self) -> None:
        found = next(f for f in aged(65) if f.code == "age-high")
        assert "age 65 y is at or above the soft limit 65 y" in found.message


def screened(*uses: MedicationUse, protocol: str = "depression") -> list[Finding]:
    session = dose_for(PROTOCOLS.get_protocol(protocol), 70)
    return check(session, LIMITS, CheckContext(at=AT, medications=uses))


class TestMedicationHold:
    """Theophylline's 48-h hold is measured from the last dose, boundaries included."""

    @pytest.mark.parametrize(
        ("hours", "expected"),
        [
            (0, ("medication-theophylline-and-aminophylline", S.HARD)),
            (12, ("medication-theophylline-and-aminophylline", S.HARD)),
            (47.9, ("medication-theophylline-and-aminophylline", S.HARD)),
            (48, ("medication-theophylline-and-aminophylline-held", S.INFO)),  # exactly the hold
            (2000, ("medication-theophylline-and-aminophylline-held", S.INFO)),
        ],
    )
    def test_boundaries(self, hours: float, expected: tuple[str, S]) -> None:
        findings = screened(MedicationUse("theophylline", hours_since=hours))
        assert codes(findings, *expected[:1]) == [expected]

    def test_2000_hours_ago_is_not_a_current_interaction(self) -> None:
        (found,) = [
            f for f in screened(MedicationUse("aminophylline", 2000)) if "amino" in f.message
        ]
        assert found.severity is S.INFO
        assert "last dose 2000 h ago, at least the 48 h hold: not a current interaction" in (
            found.message
        )

    def test_within_the_hold_says_how_long_is_left(self) -> None:
        (found,) = [f for f in screened(MedicationUse("theophylline", 12)) if "theo" in f.message]
        assert "hold 48 h from the last dose (36 h to go)" in found.message

    def test_no_time_is_still_hard(self) -> None:
        (found,) = [f for f in screened(MedicationUse("theophylline")) if "theo" in f.message]
        assert found.severity is S.HARD
        assert "time of last dose not given" in found.message

    def test_a_medication_without_a_hold_says_it_is_screened_as_current(self) -> None:
        (found,) = screened(MedicationUse("lamotrigine", 2000))
        assert found.severity is S.INFO
        assert "no hold for it, so it is screened as current" in found.message


class TestBloodPressureHazard:
    """Ketalar: contraindicated where 'a significant elevation of blood pressure would
    constitute a serious hazard': aneurysm, AVM and intracerebral haemorrhage, every route."""

    @pytest.mark.parametrize(
        "protocol", ["depression", "crps", "depression-im", "esketamine-nasal"]
    )
    @pytest.mark.parametrize(
        ("condition", "code"),
        [
            ("aneurysm", "condition-aneurysmal-vascular-disease"),
            ("AVM", "condition-arteriovenous-malformation"),
            ("intracerebral hemorrhage", "condition-history-of-intracerebral-haemorrhage"),
        ],
    )
    def test_hard_on_every_protocol(self, protocol: str, condition: str, code: str) -> None:
        entry = PROTOCOLS.get_protocol(protocol)
        session = dose_for(entry, 70)
        findings = check(session, LIMITS, CheckContext(at=AT, conditions=(condition,)))
        assert codes(findings, code) == [(code, S.HARD)]
        found = next(f for f in findings if f.code == code)
        assert "Ketalar" in (found.source or "") and "serious hazard" in (found.source or "")
