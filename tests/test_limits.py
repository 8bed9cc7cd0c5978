"""Tests for ketadose.limits: the library file, the checker, overrides and status."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from ketadose.cli import app
from ketadose.errors import ConfigError, InputError, InputField
from ketadose.libfile import Quantity
from ketadose.limits import (
    Bounds,
    check,
    classify,
    load_file,
    override,
    status,
)
from ketadose.models import CheckContext, Finding, MedicationUse, PreviousSession, Severity, Vitals
from ketadose.protocols import load_library as load_protocols
from ketadose.units import Kind
from tests.factories import (
    CRPS,
    DAKWAR,
    TEST_LIMITS,
    TIMED,
    complete,
    dose_for,
    limits_library,
    protocol,
)

LIMITS = limits_library()
AT = datetime(2026, 11, 27, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))


def codes(findings: list[Finding], severity: Severity | None = None) -> list[str]:
    return [f.code for f in findings if severity is None or f.severity is severity]


def per_kg(value: float) -> Quantity:
    return Quantity(Kind.DOSE_PER_KG, value, f"{value}mg/kg")


class TestClassify:
    """Four sides, in order of severity; exactly at a limit passes."""

    BOUNDS = Bounds(Kind.DOSE_PER_KG, lower_hard=0.05, lower_soft=0.1, upper_soft=1, upper_hard=1.5)

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (0.01, (Severity.HARD, "lower_hard")),
            (0.05, (Severity.SOFT, "lower_soft")),
            (0.07, (Severity.SOFT, "lower_soft")),
            (0.1, None),
            (0.5, None),
            (1.0, None),
            (1.2, (Severity.SOFT, "upper_soft")),
            (1.5, (Severity.SOFT, "upper_soft")),
            (1.5000001, (Severity.HARD, "upper_hard")),
            (9, (Severity.HARD, "upper_hard")),
        ],
    )
    def test_sides(self, value: float, expected: tuple[Severity, str] | None) -> None:
        assert classify(value, self.BOUNDS) == expected

    def test_float_noise_at_a_limit_is_at_the_limit(self) -> None:
        assert 0.1 * 3 != 0.3
        assert classify(0.1 * 3, Bounds(Kind.DOSE_PER_KG, upper_hard=0.3)) is None

    @given(
        st.floats(min_value=0, max_value=10),
        st.floats(min_value=0, max_value=10),
        st.lists(st.floats(min_value=0.01, max_value=5), min_size=4, max_size=4),
    )
    def test_monotone(self, a: float, b: float, sides: list[float]) -> None:
        low, high = sorted((a, b))
        lh, ls, us, uh = sorted(sides)
        bounds = Bounds(Kind.DOSE, lower_hard=lh, lower_soft=ls, upper_soft=us, upper_hard=uh)
        rank = {None: 0, Severity.SOFT: 1, Severity.HARD: 2}

        def upper(value: float) -> int:
            found = classify(value, bounds)
            return rank[found[0]] if found and found[1].startswith("upper") else 0

        def lower(value: float) -> int:
            found = classify(value, bounds)
            return rank[found[0]] if found and found[1].startswith("lower") else 0

        assert upper(low) <= upper(high)
        assert lower(low) >= lower(high)


class TestSessionLimits:
    """Each session parameter is checked where it applies, with value, limit and source."""

    def test_standard_dose_has_no_limit_finding(self) -> None:
        session = dose_for(protocol(TIMED), 80)
        assert check(session, LIMITS, CheckContext(at=AT)) == []

    def test_total_dose_per_kg_soft_then_hard(self) -> None:
        soft = check(dose_for(protocol(TIMED), 80, dose=per_kg(1.2)), LIMITS)
        # 1.2 mg/kg over 40 min is also 1.8 mg/kg/h, above the 1.5 mg/kg/h soft maximum
        assert codes(soft, Severity.SOFT) == ["total-dose-per-kg-high", "rate-per-kg-high"]
        finding = soft[0]
        assert finding.parameter == "session.total_dose_per_kg"
        assert finding.value == pytest.approx(1.2)
        assert finding.limit == 1
        assert finding.side == "upper_soft"
        assert finding.unit == "mg/kg"
        assert finding.source == "test"
        assert finding.message.startswith(
            "total dose 1.2 mg/kg exceeds the soft maximum 1 mg/kg for t (site policy)"
        )
        hard = check(dose_for(protocol(TIMED), 80, dose=per_kg(1.8)), LIMITS)
        assert "total-dose-per-kg-high" in codes(hard, Severity.HARD)
        message = next(f.message for f in hard if f.code == "total-dose-per-kg-high")
        assert message.startswith("total dose 1.8 mg/kg exceeds the hard maximum 1.5 mg/kg")

    def test_exactly_at_the_hard_limit_is_not_hard(self) -> None:
        # 1.5 mg/kg over 60 min: total dose and rate (1.5 mg/kg/h) both exactly at a limit
        findings = check(dose_for(protocol(TIMED), 80, dose=per_kg(1.5), duration_min=60), LIMITS)
        assert codes(findings, Severity.HARD) == []
        assert codes(findings, Severity.SOFT) == ["total-dose-per-kg-high"]

    def test_total_dose_mg(self) -> None:
        findings = check(dose_for(protocol(TIMED), 160, dose=per_kg(1)), LIMITS)
        assert "total-dose-high" in codes(findings, Severity.HARD)

    def test_lower_limits(self) -> None:
        findings = check(dose_for(protocol(TIMED), 80, dose=per_kg(0.04)), LIMITS)
        assert "total-dose-per-kg-low" in codes(findings, Severity.HARD)

    def test_bolus_limits_apply_to_bolus_phases_only(self) -> None:
        session = dose_for(protocol(*DAKWAR), 80)
        assert codes(check(session, LIMITS)) == []
        bolus = protocol({"kind": "bolus", "dose": "0.5 mg/kg", "duration": "2 min"}, bag="50 mL")
        assert "bolus-dose-per-kg-high" in codes(check(dose_for(bolus, 80), LIMITS), Severity.HARD)

    def test_rate_and_duration(self) -> None:
        fast = dose_for(protocol(TIMED), 80, duration_min=15)  # 0.5 mg/kg in 15 min = 2 mg/kg/h
        findings = check(fast, LIMITS)
        assert "infusion-duration-low" in codes(findings, Severity.SOFT)
        assert "rate-per-kg-high" in codes(findings, Severity.SOFT)
        faster = check(dose_for(protocol(TIMED), 80, duration_min=10), LIMITS)
        assert "rate-per-kg-high" in codes(faster, Severity.HARD)

    def test_concentration_and_pump_rate(self) -> None:
        small_bag = dose_for(protocol(TIMED), 80, final_volume_ml=10)  # 40 mg in 10 mL
        assert "final-concentration-high" in codes(check(small_bag, LIMITS), Severity.SOFT)
        smaller = dose_for(protocol(TIMED), 80, final_volume_ml=5)  # 8 mg/mL
        assert "final-concentration-high" in codes(check(smaller, LIMITS), Severity.HARD)
        fast = dose_for(protocol(TIMED), 80, final_volume_ml=1000, duration_min=40)
        assert "pump-rate-high" in codes(check(fast, LIMITS), Severity.HARD)  # 1500 mL/h

    def test_protocol_profile_refines_the_default(self) -> None:
        crps = protocol(CRPS, protocol_id="crps")
        assert codes(check(dose_for(crps, 80), LIMITS)) == []
        uncapped = protocol(
            {"kind": "rate", "rate": "0.35 mg/kg/h", "duration": "4 h"}, protocol_id="crps"
        )
        findings = check(dose_for(uncapped, 80), LIMITS)  # 28 mg/h > 25 mg/h
        assert codes(findings, Severity.HARD) == ["rate-high", "dose-per-24h-high"]
        # the same programme under another protocol id has no rate limit in mg/h
        other = protocol({"kind": "rate", "rate": "0.35 mg/kg/h", "duration": "4 h"})
        assert "rate-high" not in codes(check(dose_for(other, 80), LIMITS))


class TestPatientLimits:
    """Weight, age and BMI plausibility."""

    @pytest.mark.parametrize(
        ("weight", "expected"),
        [
            (900, Severity.HARD),
            (120, Severity.SOFT),
            (45, None),
            (40, Severity.SOFT),
            (25, Severity.HARD),
        ],
    )
    def test_weight(self, weight: float, expected: Severity | None) -> None:
        session = dose_for(protocol(TIMED, bag="1000 mL"), weight)
        found = [f for f in check(session, LIMITS) if f.parameter == "patient.weight"]
        assert [f.severity for f in found] == ([] if expected is None else [expected])


class TestSeries:
    """Interval, sessions per week, accumulated dose and escalation from previous sessions."""

    def test_interval_and_sessions_per_week(self) -> None:
        history = tuple(PreviousSession(at=AT - timedelta(days=d), dose_mg=40) for d in (1, 3, 5))
        findings = check(
            dose_for(protocol(TIMED), 80), LIMITS, CheckContext(at=AT, history=history)
        )
        assert "interval-low" in codes(findings, Severity.SOFT)  # 24 h < 40 h soft minimum
        assert "sessions-per-7d-high" in codes(findings, Severity.SOFT)  # 4 in 7 days: soft max 3
        interval = next(f for f in findings if f.code == "interval-low")
        assert interval.value == 24 * 60
        assert interval.unit == "min"

    def test_too_soon_is_hard(self) -> None:
        history = (PreviousSession(at=AT - timedelta(hours=12), dose_mg=40),)
        findings = check(
            dose_for(protocol(TIMED), 80), LIMITS, CheckContext(at=AT, history=history)
        )
        assert "interval-low" in codes(findings, Severity.HARD)
        assert "dose-per-24h-high" not in codes(findings)  # 1.0 mg/kg in 24 h: within 1.5

    def test_accumulated_per_kg_and_mg(self) -> None:
        history = (
            PreviousSession(at=AT - timedelta(hours=23), dose_mg_per_kg=1.2),
            PreviousSession(at=AT - timedelta(days=3), dose_mg=100),
        )
        findings = check(
            dose_for(protocol(TIMED), 80), LIMITS, CheckContext(at=AT, history=history)
        )
        per_day = next(f for f in findings if f.code == "dose-per-24h-high")
        assert per_day.value == pytest.approx(1.2 + 0.5)
        assert per_day.severity is Severity.HARD
        week = next(f for f in findings if f.code == "dose-per-7d-high")
        assert week.value == pytest.approx(1.2 * 80 + 100 + 40)
        assert week.limit == 200

    def test_escalation_step(self) -> None:
        history = (PreviousSession(at=AT - timedelta(days=3), dose_mg_per_kg=0.5),)
        session = dose_for(protocol(TIMED), 80, dose=per_kg(0.8))
        findings = check(session, LIMITS, CheckContext(at=AT, history=history))
        step = next(f for f in findings if f.code == "escalation-step-high")
        assert step.severity is Severity.SOFT
        assert step.value == pytest.approx(0.3)

    def test_previous_dose_unknown_is_reported(self) -> None:
        history = (PreviousSession(at=AT - timedelta(days=3)),)
        findings = check(
            dose_for(protocol(TIMED), 80), LIMITS, CheckContext(at=AT, history=history)
        )
        assert "dose-per-7d-incomplete" in codes(findings, Severity.INFO)

    def test_a_later_session_counts_on_its_side(self) -> None:
        """A session recorded after the fact is checked with the sessions after it too."""
        for offset in (timedelta(0), timedelta(hours=1), timedelta(days=1)):
            alone = check(dose_for(protocol(TIMED), 80), LIMITS, CheckContext(at=AT))
            history = (PreviousSession(at=AT + offset, dose_mg=40.0),)
            found = check(
                dose_for(protocol(TIMED), 80), LIMITS, CheckContext(at=AT, history=history)
            )
            assert [f for f in found if f.parameter == "series.interval"], offset
            assert len(found) > len(alone)


class TestVitals:
    """Pre-session (hold) and during-session (pause/stop) vital-sign limits."""

    def test_pre_session(self) -> None:
        vitals = Vitals(systolic=150, diastolic=95, heart_rate=80, spo2=97)
        findings = check(dose_for(protocol(TIMED)), LIMITS, CheckContext(vitals=vitals))
        assert codes(findings) == ["systolic-high", "diastolic-high"]
        assert {f.severity for f in findings} == {Severity.SOFT}

    def test_exactly_140_90_passes(self) -> None:
        vitals = Vitals(systolic=140, diastolic=90)
        assert check(dose_for(protocol(TIMED)), LIMITS, CheckContext(vitals=vitals)) == []

    def test_during_uses_its_own_limits(self) -> None:
        vitals = Vitals(systolic=185)
        pre = check(dose_for(protocol(TIMED)), LIMITS, CheckContext(vitals=vitals))
        during = check(dose_for(protocol(TIMED)), LIMITS, CheckContext(vitals=vitals, during=True))
        assert [f.severity for f in pre] == [Severity.HARD]
        assert [f.severity for f in during] == [Severity.SOFT]
        assert during[0].parameter == "vitals_during.systolic"

    def test_low_spo2_is_hard(self) -> None:
        findings = check(dose_for(protocol(TIMED)), LIMITS, CheckContext(vitals=Vitals(spo2=88)))
        assert [(f.code, f.severity) for f in findings] == [("spo2-low", Severity.HARD)]


class TestMedications:
    """Screening by name or alias, any case, with hold times."""

    def screen(self, *uses: MedicationUse) -> list[Finding]:
        return check(dose_for(protocol(TIMED)), LIMITS, CheckContext(medications=uses))

    @pytest.mark.parametrize("name", ["lorazepam", "LORAZEPAM", " Diazepam ", "benzodiazepines"])
    def test_alias_and_case(self, name: str) -> None:
        findings = self.screen(MedicationUse(name, hours_since=12))
        assert [(f.code, f.severity) for f in findings] == [
            ("medication-benzodiazepines", Severity.SOFT)
        ]
        assert "hold 24 h" in findings[0].message

    def test_hold_respected_is_info(self) -> None:
        findings = self.screen(MedicationUse("lorazepam", hours_since=24))
        assert [(f.code, f.severity) for f in findings] == [
            ("medication-benzodiazepines-held", Severity.INFO)
        ]

    def test_unknown_time_is_soft(self) -> None:
        findings = self.screen(MedicationUse("lorazepam"))
        assert findings[0].severity is Severity.SOFT
        assert "time of last dose not given" in findings[0].message

    def test_hard_and_info_entries(self) -> None:
        findings = self.screen(MedicationUse("aminophylline"), MedicationUse("Lamotrigine"))
        assert [f.severity for f in findings] == [Severity.HARD, Severity.INFO]

    def test_unknown_medication_is_soft_not_silent(self) -> None:
        findings = self.screen(MedicationUse("lorazpam"))
        assert [(f.code, f.severity) for f in findings] == [("medication-unknown", Severity.SOFT)]


class TestConditions:
    """Contraindications by alias, limited to the protocols they name."""

    def test_relative(self) -> None:
        findings = check(dose_for(protocol(TIMED)), LIMITS, CheckContext(conditions=("Pregnant",)))
        assert [(f.code, f.severity) for f in findings] == [("condition-pregnancy", Severity.SOFT)]

    def test_absolute_only_for_its_protocols(self) -> None:
        context = CheckContext(conditions=("aneurysm",))
        other = check(dose_for(protocol(TIMED)), LIMITS, context)
        assert [(f.code, f.severity) for f in other] == [
            ("condition-aneurysmal-vascular-disease-other-protocols", Severity.INFO)
        ]
        esketamine = protocol(
            {"kind": "fixed", "dose": "56 mg"}, route="intranasal", protocol_id="esketamine-nasal"
        )
        findings = check(dose_for(esketamine, None), LIMITS, context)
        assert [(f.code, f.severity) for f in findings] == [
            ("condition-aneurysmal-vascular-disease", Severity.HARD)
        ]

    def test_unknown_condition_is_soft(self) -> None:
        findings = check(dose_for(protocol(TIMED)), LIMITS, CheckContext(conditions=("preganncy",)))
        assert codes(findings, Severity.SOFT) == ["condition-unknown"]


class TestOverrides:
    """A reason acknowledges soft findings; nothing overrides a hard one."""

    FINDINGS = [
        Finding(severity=Severity.SOFT, code="a", message="a"),
        Finding(severity=Severity.HARD, code="b", message="b"),
        Finding(severity=Severity.INFO, code="c", message="c"),
    ]

    def test_only_soft_findings_are_overridden(self) -> None:
        done = override(self.FINDINGS, "  discussed with Dr B  ")
        assert [(f.overridden, f.override_reason) for f in done] == [
            (True, "discussed with Dr B"),
            (False, None),
            (False, None),
        ]

    @pytest.mark.parametrize("reason", ["", "   ", "two\nlines"])
    def test_blank_or_multiline_reason_is_refused(self, reason: str) -> None:
        with pytest.raises(InputError, match="^override reason must be one line") as refused:
            override(self.FINDINGS, reason)
        assert refused.value.fields == (InputField.OVERRIDE_REASON,)

    def test_status(self) -> None:
        assert status(self.FINDINGS) == "hard"
        assert status(self.FINDINGS[::2]) == "soft"
        assert status(self.FINDINGS[2:]) == "ok"
        assert status([]) == "ok"


class TestMonotoneChecker:
    """Raising a dose never makes a dose finding less severe."""

    @given(st.floats(min_value=0.05, max_value=3), st.floats(min_value=0, max_value=2))
    def test_raising_the_dose(self, dose: float, extra: float) -> None:
        rank = {Severity.INFO: 0, Severity.SOFT: 1, Severity.HARD: 2}

        def worst(value: float) -> int:
            session = dose_for(protocol(TIMED, bag="1000 mL"), 80, dose=per_kg(value))
            upper = [f for f in check(session, LIMITS) if f.side and f.side.startswith("upper")]
            return max((rank[f.severity] for f in upper), default=0)

        assert worst(dose) <= worst(dose + extra)


LIBRARY_HEAD = '[library]\nname = "x"\nversion = "1"\n\n'
DEFAULT_LIMIT = (
    '[profiles.default.session.total_dose_per_kg]\nupper_hard = "1.5 mg/kg"\n'
    'source = "s s"\nevidence = "HIGH"\n'
)


class TestLibraryValidation:
    """Each kind of invalid library is refused naming the file, the field and the problem."""

    def test_test_library_is_valid_and_approved(self) -> None:
        assert LIMITS.ref.approved is True
        assert LIMITS.ref.path == str(TEST_LIMITS)

    @pytest.mark.parametrize(
        ("body", "location", "message"),
        [
            (
                DEFAULT_LIMIT.replace("upper_hard", "upper_hadr"),
                "profiles.default.session.total_dose_per_kg.upper_hadr",
                "unknown key",
            ),
            (
                DEFAULT_LIMIT.replace('"1.5 mg/kg"', '"1.5 mg/h"'),
                "profiles.default.session.total_dose_per_kg",
                "not a dose",
            ),
            (
                DEFAULT_LIMIT.replace('"1.5 mg/kg"', '"1.5"'),
                "profiles.default.session.total_dose_per_kg",
                "has no unit",
            ),
            (
                DEFAULT_LIMIT.replace('"1.5 mg/kg"', "1.5"),
                "profiles.default.session.total_dose_per_kg.upper_hard",
                "Input should be",
            ),
            (
                DEFAULT_LIMIT.replace(
                    'upper_hard = "1.5 mg/kg"', 'upper_hard = "1 mg/kg"\nupper_soft = "2 mg/kg"'
                ),
                "profiles.default.session.total_dose_per_kg",
                "upper_soft (2) is above upper_hard (1)",
            ),
            (
                DEFAULT_LIMIT.replace('upper_hard = "1.5 mg/kg"\n', ""),
                "profiles.default.session.total_dose_per_kg",
                "needs at least one of",
            ),
            (
                DEFAULT_LIMIT.replace('"HIGH"', '"NOT CONFIRMED"'),
                "profiles.default.session.total_dose_per_kg.evidence",
                "Input should be",
            ),
            (
                DEFAULT_LIMIT.replace("total_dose_per_kg", "total_dose_per_kilo"),
                "profiles.default.session.total_dose_per_kilo",
                "unknown key",
            ),
            (DEFAULT_LIMIT.replace("default", "crps"), "(top level)", "needs a [profiles.default]"),
            (
                DEFAULT_LIMIT
                + '[profiles.default.series.sessions_per_7d]\nupper_hard = "3"\nsource = "s s"\nevidence = "HIGH"\n',
                "profiles.default.series.sessions_per_7d",
                "a count is a whole number",
            ),
            (
                DEFAULT_LIMIT
                + '[profiles.default.series.dose_per_24h]\nupper_soft = "1 mg/kg"\nupper_hard = "100 mg"\nsource = "s s"\nevidence = "HIGH"\n',
                "profiles.default.series.dose_per_24h",
                "write all four sides in one kind",
            ),
            (
                DEFAULT_LIMIT
                + '[[medications]]\nname = "a"\nclass = "c"\naliases = ["b"]\nseverity = "soft"\nmessage = "mmm"\nsource = "s s"\nevidence = "HIGH"\n[[medications]]\nname = "B"\nclass = "c"\nseverity = "soft"\nmessage = "mmm"\nsource = "s s"\nevidence = "HIGH"\n',
                "(top level)",
                'medication name "b" is used by "a" and "B"',
            ),
            (
                DEFAULT_LIMIT
                + '[[conditions]]\nname = "a"\nseverity = "info"\nmessage = "mmm"\nsource = "s s"\nevidence = "HIGH"\n',
                "conditions[0].severity",
                "Input should be",
            ),
        ],
    )
    def test_invalid(self, body: str, location: str, message: str) -> None:
        with pytest.raises(ConfigError) as info:
            load_file((LIBRARY_HEAD + body).encode(), "clinic-limits.toml")
        assert info.value.path == "clinic-limits.toml"
        assert info.value.location == location
        assert message in str(info.value)
        assert "\n" not in str(info.value)

    def test_profile_for_unknown_protocol(self) -> None:
        library = load_file(
            (
                LIBRARY_HEAD
                + DEFAULT_LIMIT
                + '[profiles.depresion]\nroute = "iv"\n'
                + DEFAULT_LIMIT.replace("default", "depresion")
            ).encode(),
            "l.toml",
        )
        with pytest.raises(ConfigError, match='profile "depresion" names no protocol'):
            library.check_protocols({"depression": "iv"})

    def test_medication_for_unknown_protocol(self) -> None:
        text = (
            LIBRARY_HEAD
            + DEFAULT_LIMIT
            + '[[conditions]]\nname = "allergy"\nseverity = "hard"\nmessage = "mmm"\n'
            'source = "s s"\nevidence = "HIGH"\nprotocols = ["depresion"]\n'
        )
        library = load_file(text.encode(), "l.toml")
        with pytest.raises(ConfigError) as info:
            library.check_protocols({"depression": "iv"})
        assert str(info.value) == (
            'l.toml: conditions[0](allergy).protocols: "depresion" names no protocol in the '
            "protocol library"
        )

    @given(st.binary(max_size=200))
    def test_random_bytes_are_refused_cleanly(self, data: bytes) -> None:
        try:
            load_file(data, "fuzz.toml")
        except ConfigError as error:
            assert str(error).startswith("fuzz.toml: ")


class TestRouteProfiles:
    """Limits in effect: the default, refined by the route's profile, refined by the protocol's
    own profile only where it is written for the protocol's route."""

    TEXT = complete(
        LIBRARY_HEAD + '[profiles.default.session.final_concentration]\nupper_hard = "5 mg/mL"\n'
        'source = "s s"\nevidence = "HIGH"\n'
        '[routes.im.session.final_concentration]\nupper_hard = "100 mg/mL"\n'
        'source = "s s"\nevidence = "HIGH"\n'
        '[profiles.shot]\nroute = "im"\n'
        '[profiles.shot.session.final_concentration]\nupper_hard = "50 mg/mL"\n'
        'source = "s s"\nevidence = "HIGH"\n'
    )

    def hard(self, protocol_id: str, route: str) -> float | None:
        library = load_file(self.TEXT.encode(), "r.toml")
        limit = library.limit(protocol_id, "session", "final_concentration", route)
        assert limit is not None
        return limit.bounds.upper_hard

    def test_each_layer_refines_the_one_before(self) -> None:
        assert self.hard("other", "iv") == 5  # the default
        assert self.hard("other", "im") == 100  # the IM route's profile
        assert self.hard("shot", "im") == 50  # the protocol's own, written for IM

    def test_a_profile_for_another_route_never_applies(self) -> None:
        library = load_file(self.TEXT.encode(), "r.toml")
        assert self.hard("shot", "iv") == 5  # an IV protocol that reuses the id "shot"
        assert library.foreign_profile("shot", "iv") == "im"
        assert library.foreign_profile("shot", "im") is None

    def test_a_protocol_profile_must_name_its_route(self) -> None:
        text = self.TEXT.replace('[profiles.shot]\nroute = "im"\n', "")
        with pytest.raises(ConfigError, match="profiles.shot must name the route it is written"):
            load_file(text.encode(), "r.toml")

    def test_the_default_and_a_route_profile_name_no_route(self) -> None:
        text = self.TEXT.replace(LIBRARY_HEAD, LIBRARY_HEAD + '[profiles.default]\nroute = "iv"\n')
        with pytest.raises(ConfigError, match="profiles.default applies to every route"):
            load_file(text.encode(), "r.toml")

    def test_completeness_is_checked_per_protocol_and_route(self) -> None:
        text = LIBRARY_HEAD + DEFAULT_LIMIT
        library = load_file(text.encode(), "thin.toml")
        with pytest.raises(ConfigError, match=r"limits nothing for depression \(iv\) on 25 side"):
            library.check_protocols({"depression": "iv"})
        assert "session.total_dose.upper_hard" in library.missing("depression", "iv")
        assert "session.total_dose_per_kg.upper_hard" not in library.missing("depression", "iv")
        load_file(complete(text).encode(), "ok.toml").check_protocols({"depression": "iv"})

    def test_each_route_needs_its_own_limits(self) -> None:
        # An injection's volume (IM, SC); a measured liquid's volume and tablet count
        # (sublingual, oral), each an upper hard side; an IV protocol needs none of them.
        by_route = ("injection_volume", "liquid_volume", "tablet_count")
        text = "\n".join(
            block
            for block in complete(LIBRARY_HEAD).split("\n\n")
            if not any(parameter in block for parameter in by_route)
        )
        library = load_file(text.encode(), "thin.toml")
        assert library.missing("p", "iv") == []
        for route in ("im", "sc"):
            assert library.missing("p", route) == ["session.injection_volume.upper_hard"]
        for route in ("sublingual", "oral"):
            assert library.missing("p", route) == [
                "session.liquid_volume.upper_hard",
                "session.tablet_count.upper_hard",
            ]

    def test_the_wide_test_library_serves_every_shipped_protocol(self) -> None:
        # tests.factories.complete is the one helper test libraries are completed with.
        routes = {pid: entry.protocol.route for pid, entry in load_protocols().items()}
        load_file(complete(LIBRARY_HEAD).encode(), "wide.toml").check_protocols(routes)

    def test_limits_show_lists_routes_and_profile_routes(self) -> None:
        result = CliRunner().invoke(
            app, ["limits", "show", "--json"], env={"KETADOSE_LIMITS": None}
        )
        data = json.loads(result.stdout)
        assert data["routes"]["im"]["session"]["final_concentration"]["values"]["upper_hard"] == 100
        assert data["profiles"]["depression-im"]["route"] == "im"
        assert data["profiles"]["default"]["route"] is None
