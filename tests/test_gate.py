"""The one safety gate (ketadose.gate): regressions with values worked by hand.

Each class is one kind of case; the numbers in the assertions are worked out in the comments,
not read back from the tool.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner, Result

from ketadose import gate
from ketadose.cli import app
from ketadose.escalation import NextSession
from ketadose.models import SessionDose
from ketadose.planning import CheckedStep, PlannedSession
from tests.factories import complete
from tests.test_gate_properties import HEADER, clinic_protocol, protocol_toml, withheld

runner = CliRunner()
AT = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def run(*argv: str) -> Result:
    """ketadose with the shipped limit library (KETADOSE_LIMITS unset)."""
    return runner.invoke(app, list(argv), env={"KETADOSE_LIMITS": None})


def document(result: Result) -> dict[str, Any]:
    """The JSON document a command printed."""
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def write(folder: Path, *protocols: dict[str, Any]) -> str:
    """A clinic protocol file in ``folder``; its path."""
    path = folder / "clinic.toml"
    path.write_text(protocol_toml(*protocols))
    return str(path)


def hard(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The hard findings of a document."""
    return [f for f in data["findings"] if f["severity"] == "hard"]


class TestPumpRateRoundedToTheSafeSide:
    """A pump rate whose nearest step would pass a hard maximum is rounded down, and says so."""

    def test_crps_62ml_bag_at_1ml_per_h(self) -> None:
        result = run(
            "dose", "-p", "crps", "--weight", "80kg", "--bag", "62mL", "--pump-step", "1mL/h",
            "--json",
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        data = document(result)
        # 0.35 mg/kg/h x 80 kg = 28 mg/h, capped at 25 mg/h; 100 mg in 62 mL; 25 / (100/62)
        # = 15.5 mL/h, whose nearest 1 mL/h step (16) would give 16 x 100/62 = 25.8 mg/h.
        (phase,) = data["phases"]
        assert phase["pump_rate_ml_per_h"] == pytest.approx(15.5)
        assert phase["pump_rate_ml_per_h_rounded"] == 15.0
        delivered = 15 * data["preparation"]["delivered_mg_per_ml"]
        assert delivered == pytest.approx(15 * 100 / 62, rel=1e-12)  # 24.19 mg/h
        assert delivered <= 25
        assert phase["delivered_rate_mg_per_h"] == pytest.approx(delivered, rel=1e-12)
        assert "pump-rate-rounded-down" in {f["code"] for f in data["findings"]}


class TestDrawRoundedToTheSafeSide:
    """A draw whose nearest graduation would pass the hard total per kg is rounded down."""

    def test_draw_of_1_7475_ml_is_drawn_as_1_74(self) -> None:
        # 1.5 mg/kg x 116.5 kg = 174.75 mg (at the 1.5 mg/kg hard maximum) = 1.7475 mL of
        # 100 mg/mL; the nearest 0.01 mL (1.75 mL = 175 mg = 1.50215 mg/kg) is past it.
        result = run(
            "dose", "-p", "depression", "--weight", "116.5kg", "--dose", "1.5mg/kg",
            "--duration", "60min", "--vial", "100mg/mL", "--override-reason", "worked case",
            "--json",
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        data = document(result)
        prep = data["preparation"]
        assert prep["draw_ml"] == pytest.approx(1.7475)
        assert prep["draw_ml_rounded"] == 1.74
        assert "draw-rounded-down" in {f["code"] for f in data["findings"]}
        bag_mg = prep["draw_ml_rounded"] * prep["vial_mg_per_ml"]  # 174 mg
        assert bag_mg == pytest.approx(174)
        assert bag_mg / 116.5 <= 1.5
        assert data["delivered_total_mg_per_kg"] <= 1.5 * (1 + 1e-9)
        # The pump runs 174.75 mg/h / 1.7475 mg/mL = 100 mL/h of a 1.74 mg/mL bag: 174 mg/h.
        (phase,) = data["phases"]
        assert phase["pump_rate_ml_per_h_rounded"] == 100.0
        assert phase["delivered_rate_mg_per_h"] == pytest.approx(174)


class TestRoundingStepsAreRealIncrements:
    """An odd pump or draw step is a typing error: refused with exit 2, nothing on stdout."""

    def test_pump_step_0_7(self) -> None:
        result = run("dose", "-p", "depression", "--weight", "80kg", "--pump-step", "0.7mL/h")
        assert result.exit_code == 2
        assert "not a pump increment" in result.stderr
        assert result.stdout == ""

    def test_draw_step_0_03(self) -> None:
        result = run("dose", "-p", "depression", "--weight", "80kg", "--draw-step", "0.03mL")
        assert result.exit_code == 2
        assert "not a syringe graduation" in result.stderr
        assert result.stdout == ""


class TestFixedPhaseIsAnInfusion:
    """An IV fixed-mg phase over a duration is rate-checked: 100 mg in 2 min is refused."""

    def test_fixed_100mg_over_2min(self, tmp_path: Path) -> None:
        fixed = {"kind": "fixed", "dose": "100 mg", "duration": "2 min"}
        path = write(tmp_path, clinic_protocol("clinic-fixed", fixed))
        result = run(
            "dose", "-p", "clinic-fixed", "--protocols", path, "--weight", "80kg",
            "--override-reason", "cannot pass a hard limit", "--json",
        )  # fmt: skip
        assert result.exit_code == 4
        data = document(result)
        # 100 mg / (2/60 h) = 3000 mg/h = 37.5 mg/kg/h at 80 kg, past 2 mg/kg/h hard.
        rate = next(f for f in hard(data) if f["parameter"] == "session.rate_per_kg")
        assert rate["value"] == pytest.approx(37.5)
        assert rate["limit"] == 2
        assert withheld(data)


class TestBolusesAreSummed:
    """Several boluses are one dose given fast: their sum meets the per-bolus hard maximum."""

    def test_four_boluses_at_the_limit_each(self, tmp_path: Path) -> None:
        bolus = {"kind": "bolus", "dose": "0.35 mg/kg", "duration": "1 min"}
        path = write(tmp_path, clinic_protocol("clinic-boluses", *[bolus] * 4))
        result = run(
            "dose", "-p", "clinic-boluses", "--protocols", path, "--weight", "80kg",
            "--override-reason", "cannot pass a hard limit", "--json",
        )  # fmt: skip
        assert result.exit_code == 4
        data = document(result)
        summed = [f for f in hard(data) if "4 boluses together" in f["message"]]
        per_kg = next(f for f in summed if f["parameter"] == "session.bolus_dose_per_kg")
        assert per_kg["value"] == pytest.approx(1.4)  # 4 x 0.35
        assert per_kg["limit"] == 0.35
        assert withheld(data)

    def test_two_boluses_within_the_count(self, tmp_path: Path) -> None:
        # Two boluses stay within the 3-bolus hard count: only their 0.6 mg/kg sum refuses.
        bolus = {"kind": "bolus", "dose": "0.3 mg/kg", "duration": "1 min"}
        path = write(tmp_path, clinic_protocol("clinic-two", bolus, bolus))
        result = run(
            "dose", "-p", "clinic-two", "--protocols", path, "--weight", "80kg",
            "--override-reason", "cannot pass a hard limit", "--json",
        )  # fmt: skip
        assert result.exit_code == 4
        data = document(result)
        assert {f["parameter"] for f in hard(data)} == {"session.bolus_dose_per_kg"}
        assert hard(data)[0]["value"] == pytest.approx(0.6)


class TestProfilesAreChosenByRoute:
    """An IV clinic protocol named depression-im gets the default limits, not the IM profile."""

    def protocol(self, tmp_path: Path) -> str:
        # 0.5 mg/kg in 1 min: at the IM profile's soft 0.5 mg/kg, past the default 0.35 hard.
        bolus = {"kind": "bolus", "dose": "0.5 mg/kg", "duration": "1 min"}
        return write(tmp_path, clinic_protocol("depression-im", bolus, bag="10 mL"))

    def test_default_iv_limits_apply(self, tmp_path: Path) -> None:
        path = self.protocol(tmp_path)
        result = run(
            "dose", "-p", "depression-im", "--protocols", path, "--weight", "80kg",
            "--override-reason", "cannot pass a hard limit", "--json",
        )  # fmt: skip
        assert result.exit_code == 4
        data = document(result)
        other = [f for f in data["findings"] if f["code"] == "limit-profile-other-route"]
        assert [f["severity"] for f in other] == ["info"]
        bolus = next(f for f in hard(data) if f["parameter"] == "session.bolus_dose_per_kg")
        assert (bolus["value"], bolus["limit"]) == (0.5, 0.35)

    def test_limits_verify_reports_the_profile(self, tmp_path: Path) -> None:
        path = self.protocol(tmp_path)
        result = run("limits", "verify", "--protocols", path, "--examples", "5")
        assert result.exit_code == 5
        assert "profile-other-route" in result.stdout


class TestPlanChecksItsSteps:
    """plan shows each conditional escalation step checked; a step past a hard limit refuses."""

    def test_depression_step_is_checked(self) -> None:
        result = run(
            "plan", "-p", "depression", "--weight", "80kg", "--start", "2026-11-30", "--json"
        )
        assert result.exit_code == 0, result.stderr
        (step,) = document(result)["escalation_checks"]
        # 0.75 mg/kg x 80 kg = 60 mg over 45 min = 80 mg/h = 1 mg/kg/h (soft 1.5, hard 2);
        # the step 0.5 -> 0.75 is 0.25 mg/kg, at the soft escalation maximum.
        assert step["from_session"] == 4
        assert step["dose_mg_per_kg"] == 0.75
        assert step["total_dose_mg"] == 60
        assert (step["status"], step["ready"]) == ("ok", True)
        assert step["preparation"]["draw_ml_rounded"] == 6.0
        (phase,) = step["phases"]
        assert phase["pump_rate_ml_per_h_rounded"] == pytest.approx(133.3)

    def test_step_past_a_hard_limit_refuses_the_plan(self, tmp_path: Path) -> None:
        timed = {"kind": "timed", "dose": "0.5 mg/kg", "duration": "40 min"}
        step = {
            "from_session": 3,
            "dose": "5 mg/kg",
            "duration": "5 min",
            "condition": "no response after two",
        }
        path = write(tmp_path, clinic_protocol("clinic-steep", timed, escalation=[step]))
        result = run(
            "plan", "-p", "clinic-steep", "--protocols", path, "--weight", "80kg",
            "--start", "2026-11-30", "--override-reason", "cannot pass a hard limit", "--json",
        )  # fmt: skip
        assert result.exit_code == 4
        data = document(result)
        assert all(s["status"] != "hard" for s in data["sessions"])
        (checked,) = data["escalation_checks"]
        assert checked["status"] == "hard"
        assert withheld(checked)
        # 5 mg/kg is past the 1.5 mg/kg hard total; over 5 min it is 60 mg/kg/h.
        parameters = {f["parameter"] for f in checked["findings"] if f["severity"] == "hard"}
        assert {"session.total_dose_per_kg", "session.rate_per_kg"} <= parameters


class TestShadowedOverrides:
    """An override that a scheduled titration would replace after a few sessions is refused."""

    def test_rate_on_a_titrated_protocol(self) -> None:
        result = run(
            "plan", "-p", "neuropathic-pain", "--weight", "80kg", "--rate", "0.3mg/kg/h",
            "--start", "2026-11-30",
        )  # fmt: skip
        assert result.exit_code == 2
        assert "--rate would apply to sessions before" in result.stderr
        assert result.stdout == ""


class TestDuringASession:
    """A reading during a session answers continue / pause / stop, never a programme to start."""

    def check(self, *extra: str) -> Result:
        return run("check", "-p", "depression", "--weight", "80kg", *extra, "--json")

    def test_during_without_a_reading_is_refused(self) -> None:
        # "continue" must come from a reading, never from the absence of one.
        result = run("check", "-p", "depression", "--weight", "80kg", "--during", "--json")
        assert result.exit_code == 2
        assert result.stdout == ""
        assert "--during checks a reading" in result.stderr

    def test_dose_refuses_during(self) -> None:
        result = run("dose", "-p", "depression", "--weight", "80kg", "--during")
        assert result.exit_code == 2
        assert "ketadose check --during" in result.stderr

    def test_soft_reading_overridden_continues(self) -> None:
        # 195/115: past the 180/110 soft during-limits, below the 200/120 hard ones.
        result = self.check("--bp", "195/115", "--during", "--override-reason", "seen")
        assert result.exit_code == 0, result.stderr
        data = document(result)
        assert data["during"]["action"] == "continue"
        assert withheld(data)

    def test_soft_reading_pauses(self) -> None:
        result = self.check("--hr", "45", "--during")  # below the 50 bpm soft minimum
        assert result.exit_code == 3
        data = document(result)
        assert data["during"]["action"] == "pause"
        assert withheld(data)

    @pytest.mark.parametrize(
        "reading",
        [("--bp", "205/100"), ("--hr", "20")],
        ids=["systolic-205", "heart-rate-20"],
    )
    def test_hard_reading_stops(self, reading: tuple[str, str]) -> None:
        result = self.check(*reading, "--during", "--override-reason", "no")
        assert result.exit_code == 4
        data = document(result)
        assert data["during"]["action"] == "stop"
        assert withheld(data)

    def test_same_reading_before_a_session_does_not_start(self) -> None:
        # 195 mmHg is past the 180 mmHg hard pre-session maximum.
        result = self.check("--bp", "195/115")
        assert result.exit_code == 4
        data = document(result)
        assert data["during"] is None
        assert withheld(data)
        assert "vitals_pre.systolic" in {f["parameter"] for f in hard(data)}


class TestLibrariesMustLimit:
    """A limit library that leaves a required side unlimited is a configuration error (exit 5)."""

    EMPTY = HEADER + "\n[profiles.default]\n"

    def test_validate_names_the_missing_sides(self, tmp_path: Path) -> None:
        path = tmp_path / "empty.toml"
        path.write_text(self.EMPTY)
        result = run("limits", "validate", str(path))
        assert result.exit_code == 5
        assert "session.total_dose_per_kg.upper_hard" in result.stderr
        assert "vitals_during.spo2.lower_hard" in result.stderr
        assert result.stdout == ""

    def test_environment_library_refuses_dose(self, tmp_path: Path) -> None:
        path = tmp_path / "empty.toml"
        path.write_text(self.EMPTY)
        result = runner.invoke(
            app,
            ["dose", "-p", "depression", "--weight", "80kg"],
            env={"KETADOSE_LIMITS": str(path)},
        )
        assert result.exit_code == 5
        assert result.stdout == ""

    def test_count_written_as_true(self, tmp_path: Path) -> None:
        path = tmp_path / "bool.toml"
        path.write_text(
            complete(
                HEADER + "\n[profiles.default.session.bolus_count]\nupper_hard = true\n"
                'source = "site policy"\nevidence = "SITE-POLICY"\n'
            )
        )
        result = run("limits", "validate", str(path))
        assert result.exit_code == 5
        assert "bolus_count" in result.stderr
        assert "upper_hard" in result.stderr
        assert "source" not in result.stderr  # refused for the count, not another field


class TestRoundingKeepsAPrescriptionAtTheLimit:
    """A dose prescribed at a hard maximum is rounded to stay within it, not refused (exit 4).

    The draw and each pump rate are steered by every limit their rounding can push a
    delivered value across: the summed boluses, and a bolus given by syringe.
    """

    def test_two_boluses_summing_to_the_maximum(self, tmp_path: Path) -> None:
        bolus = {"kind": "bolus", "dose": "0.175 mg/kg", "duration": "2 min"}
        timed = {"kind": "timed", "dose": "0.5 mg/kg", "duration": "40 min"}
        path = write(tmp_path, clinic_protocol("clinic-split", bolus, timed, bolus))
        result = run(
            "dose", "-p", "clinic-split", "--protocols", path, "--weight", "60.1kg",
            "--override-reason", "two boluses", "--json",
        )  # fmt: skip
        data = document(result)
        assert result.exit_code == 0, hard(data)
        made = data["preparation"]["delivered_mg_per_ml"]
        given = [
            p["pump_rate_ml_per_h_rounded"] * made * p["duration_min"] / 60
            for p in data["phases"]
            if p["kind"] == "bolus"
        ]
        assert sum(given) / 60.1 <= 0.35 * (1 + 1e-9)

    def test_im_bolus_at_the_maximum(self, tmp_path: Path) -> None:
        path = write(
            tmp_path, clinic_protocol("clinic-im", {"kind": "bolus", "dose": "1 mg/kg"}, route="im")
        )
        limits = tmp_path / "limits.toml"
        limits.write_text(
            complete(
                HEADER + '\n[profiles.default.session.bolus_dose_per_kg]\nupper_hard = "1 mg/kg"\n'
                'source = "site policy"\nevidence = "SITE-POLICY"\n'
            )
        )
        result = run(
            "dose", "-p", "clinic-im", "--protocols", path, "--weight", "80.3kg",
            "--vial", "50mg/mL", "--limits", str(limits), "--json",
        )  # fmt: skip
        data = document(result)
        assert result.exit_code == 0, hard(data)
        assert data["preparation"]["draw_ml_rounded"] == 1.6


class TestTolerance:
    """A value past a hard limit by more than 1e-9 of it is past it, whatever the limit's size."""

    def test_bolus_just_past_a_maximum_below_one(self, tmp_path: Path) -> None:
        # 0.3500000005 / 0.35 - 1 = 1.43e-9 relative, 5e-10 mg/kg absolute.
        bolus = {"kind": "bolus", "dose": "0.3500000005 mg/kg", "duration": "2 min"}
        path = write(tmp_path, clinic_protocol("clinic-edge", bolus, bag="10 mL"))
        result = run(
            "dose", "-p", "clinic-edge", "--protocols", path, "--weight", "80kg",
            "--override-reason", "soft concentration", "--json",
        )  # fmt: skip
        assert document(result)["phases"][0]["dose_mg_per_kg"] == 0.3500000005
        assert result.exit_code == 4


class TestPrescribedBeforePrepared:
    """A dose past a hard limit is refused with the limit, not as "does not fit in the bag"."""

    def test_40mg_per_kg(self) -> None:
        result = run("dose", "-p", "depression", "--weight", "80kg", "--dose", "40mg/kg", "--json")
        assert result.exit_code == 4
        data = document(result)
        total = next(f for f in hard(data) if f["parameter"] == "session.total_dose_per_kg")
        assert (total["value"], total["limit"]) == (40, 1.5)
        assert "does not fit" not in result.stderr
        assert withheld(data)


class TestSealedTypes:
    """Only the gate makes the checked types; its own tokens refuse any other key."""

    @pytest.mark.parametrize("model", [SessionDose, PlannedSession, NextSession, CheckedStep])
    def test_not_made_outside_the_gate(self, model: type[Any]) -> None:
        with pytest.raises(ValidationError, match="made only by ketadose.gate"):
            model(status="ok", ready=True, findings=(), phases=(), at=AT, date=date(2026, 11, 30))

    def test_prepared_needs_the_gate_key(self) -> None:
        with pytest.raises(TypeError, match="ketadose.gate"):
            gate.Prepared(None, (), False, object())  # type: ignore[arg-type]

    def test_verdict_needs_the_gate_key(self) -> None:
        with pytest.raises(TypeError, match="ketadose.gate"):
            gate.Verdict(
                object(),
                findings=(),
                status="ok",
                ready=True,
                override_reason=None,
                phases=(),
                preparation=None,
                measured=None,
                during=None,
            )


class TestProgrammeCache:
    """Programmes are reused per dosing input only: never across what changes a dose or a check."""

    def test_same_weight_other_height_keeps_its_own_patient_and_findings(self) -> None:
        from ketadose.dosing import DoseRequest
        from ketadose.limits import load_library as load_limits
        from ketadose.models import Patient
        from ketadose.protocols import load_library as load_protocols

        entry = load_protocols().get_protocol("depression")
        limits = load_limits()
        tall = gate.prepare_session(
            entry, DoseRequest(patient=Patient(weight_kg=80, height_cm=190)), limits
        )
        short = gate.prepare_session(
            entry, DoseRequest(patient=Patient(weight_kg=80, height_cm=130)), limits
        )
        assert tall.session.phases == short.session.phases  # one programme, reused
        assert (tall.session.patient.height_cm, short.session.patient.height_cm) == (190, 130)
        # BMI 47 kg/m2 is past the 40 kg/m2 soft maximum; BMI 22 is not.
        assert "bmi-high" in {f.code for f in short.findings}
        assert "bmi-high" not in {f.code for f in tall.findings}

    def test_what_changes_the_programme_is_never_shared(self) -> None:
        from ketadose.dosing import DoseRequest
        from ketadose.limits import load_library as load_limits
        from ketadose.models import Patient, Rounding, WeightPolicy
        from ketadose.protocols import load_library as load_protocols

        entry = load_protocols().get_protocol("depression")
        limits = load_limits()
        patient = Patient(weight_kg=110, height_cm=170, sex="female")
        plain = gate.prepare_session(entry, DoseRequest(patient=patient), limits)
        adjusted = gate.prepare_session(
            entry, DoseRequest(patient=patient, policy=WeightPolicy.ADJUSTED), limits
        )
        strong = gate.prepare_session(
            entry, DoseRequest(patient=patient, vial_mg_per_ml=50), limits
        )
        coarse = gate.prepare_session(
            entry, DoseRequest(patient=patient, rounding=Rounding(pump_rate_ml_per_h=1)), limits
        )
        assert plain.session.total_dose_mg == 55  # 0.5 mg/kg x 110 kg
        assert adjusted.session.total_dose_mg != 55  # on adjusted weight
        assert plain.session.preparation is not None and strong.session.preparation is not None
        assert (plain.session.preparation.draw_ml, strong.session.preparation.draw_ml) == (5.5, 1.1)
        assert coarse.session.rounding.pump_rate_ml_per_h == 1
