"""CLI tests for limit checking: check, dose exit codes 3 and 4, overrides, limits commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ketadose.cli import app
from tests.factories import TEST_LIMITS

runner = CliRunner()
LIMITS = ["--limits", str(TEST_LIMITS)]
AT = ["--at", "2026-11-27T09:00"]


def run(*args: str, env: dict[str, str | None] | None = None) -> Any:
    return runner.invoke(app, list(args), env=env)


def checked(*args: str) -> tuple[int, dict[str, Any], str]:
    result = run(*args, *LIMITS, *AT, "--json")
    return result.exit_code, json.loads(result.stdout), result.stderr


class TestExitCodes:
    """0 within limits, 3 soft not overridden, 0 overridden, 4 hard (refused)."""

    def test_ok(self) -> None:
        code, data, stderr = checked("dose", "-p", "depression", "--weight", "80kg")
        assert code == 0
        assert stderr == ""
        assert data["status"] == "ok"
        assert data["ready"] is True
        assert data["library"]["name"] == "test limits"
        assert data["library"]["approved"] is True
        assert data["protocol_library"]["approved"] is False

    def test_soft_exits_3_with_findings_and_how_to_override(self) -> None:
        code, data, stderr = checked(
            "dose",
            "-p",
            "depression",
            "--weight",
            "80kg",
            "--dose",
            "1.2mg/kg",
            "--duration",
            "60min",
        )
        assert code == 3
        assert data["status"] == "soft"
        assert data["ready"] is False
        soft = [f for f in data["findings"] if f["severity"] == "soft"]
        assert [f["code"] for f in soft] == ["total-dose-per-kg-high"]
        assert soft[0]["overridden"] is False
        assert soft[0]["value"] == 1.2
        assert soft[0]["limit"] == 1
        assert soft[0]["source"] == "test"
        assert data["phases"][0]["pump_rate_ml_per_h"] == 100  # shown, but not ready
        assert "--override-reason" in stderr
        assert len(stderr.strip().splitlines()) == 1

    def test_override_with_reason_exits_0(self) -> None:
        code, data, _ = checked(
            "dose",
            "-p",
            "depression",
            "--weight",
            "80kg",
            "--dose",
            "1.2mg/kg",
            "--duration",
            "60min",
            "--override-reason",
            "poor response at 0.75 mg/kg, tolerated",
        )
        assert code == 0
        assert data["status"] == "soft"
        assert data["ready"] is True
        assert data["override_reason"] == "poor response at 0.75 mg/kg, tolerated"
        soft = [f for f in data["findings"] if f["severity"] == "soft"]
        assert all(f["overridden"] for f in soft)
        assert all(f["override_reason"] == "poor response at 0.75 mg/kg, tolerated" for f in soft)

    def test_hard_exits_4_and_withholds_the_pump_programme(self) -> None:
        args = [
            "dose",
            "-p",
            "depression",
            "--weight",
            "80kg",
            "--dose",
            "1.8mg/kg",
            "--duration",
            "60min",
        ]
        for extra in ([], ["--override-reason", "please"]):
            code, data, stderr = checked(*args, *extra)
            assert code == 4
            assert data["status"] == "hard"
            assert data["ready"] is False
            assert data["preparation"] is None
            assert data["phases"][0]["pump_rate_ml_per_h"] is None
            assert data["phases"][0]["dose_mg"] == 144
            hard = [f for f in data["findings"] if f["severity"] == "hard"]
            assert hard[0]["code"] == "total-dose-per-kg-high"
            assert hard[0]["overridden"] is False
            assert "refused" in stderr

    def test_hard_table_says_refused(self) -> None:
        result = run("dose", "-p", "depression", "--weight", "80kg", "--dose", "1.8mg/kg", *LIMITS)
        assert result.exit_code == 4
        assert "REFUSED" in result.stdout
        assert "do not programme the pump" in result.stdout


class TestCheckCommand:
    """check takes vitals, medications, conditions and previous sessions."""

    def test_vitals_medications_conditions(self) -> None:
        code, data, _ = checked(
            "check",
            "-p",
            "depression",
            "--weight",
            "80kg",
            "--bp",
            "150/95",
            "--hr",
            "80",
            "--spo2",
            "97",
            "--med",
            "Lorazepam:12",
            "--condition",
            "pregnant",
        )
        assert code == 3
        codes = [f["code"] for f in data["findings"] if f["severity"] != "info"]
        assert codes == [
            "systolic-high",
            "diastolic-high",
            "medication-benzodiazepines",
            "condition-pregnancy",
        ]

    def test_during(self) -> None:
        code, data, _ = checked(
            "check", "-p", "depression", "--weight", "80kg", "--bp", "185/100", "--during"
        )
        assert code == 3
        assert [f["parameter"] for f in data["findings"] if f["severity"] == "soft"] == [
            "vitals_during.systolic"
        ]

    def test_hard_medication(self) -> None:
        code, data, _ = checked(
            "check", "-p", "depression", "--weight", "80kg", "--med", "aminophylline"
        )
        assert code == 4
        assert data["status"] == "hard"

    def test_previous_sessions(self) -> None:
        code, data, _ = checked(
            "check",
            "-p",
            "depression",
            "--weight",
            "80kg",
            "--previous",
            "2026-11-26T09:00=40mg",
            "--last-session",
            "2026-11-24T09:00",
        )
        assert code == 3
        codes = {f["code"]: f for f in data["findings"]}
        assert codes["interval-low"]["value"] == 1440
        assert codes["interval-low"]["severity"] == "soft"

    def test_check_table_leads_with_findings(self) -> None:
        result = run("check", "-p", "depression", "--weight", "80kg", "--bp", "150/95", *LIMITS)
        assert result.exit_code == 3
        assert result.stdout.index("Findings") < result.stdout.index("Session programme")

    @pytest.mark.parametrize(
        ("args", "fragment"),
        [
            (["--bp", "95/150"], "diastolic 150 is not below systolic 95"),
            (["--bp", "150/"], "is not systolic/diastolic"),
            (["--spo2", "101"], "above 100%"),
            (["--med", "lorazepam:1,5"], "comma"),
            (["--last-session", "yesterday"], "not a date and time"),
            (["--previous", "2026-11-28T09:00=40mg"], "later than this session"),
            (["--override-reason", "  "], "override-reason"),
        ],
    )
    def test_bad_context_exits_2(self, args: list[str], fragment: str) -> None:
        result = run("check", "-p", "depression", "--weight", "80kg", *args, *LIMITS, *AT, "--json")
        assert result.exit_code == 2
        assert result.stdout == ""
        assert fragment in result.stderr


class TestLibrarySelection:
    """--limits, then KETADOSE_LIMITS, then the shipped example; the env names a file only."""

    def test_env_names_the_file(self) -> None:
        result = run(
            "dose",
            "-p",
            "depression",
            "--weight",
            "80kg",
            "--json",
            env={"KETADOSE_LIMITS": str(TEST_LIMITS)},
        )
        assert json.loads(result.stdout)["library"]["name"] == "test limits"

    def test_flag_beats_env(self, tmp_path: Path) -> None:
        result = run(
            "dose",
            "-p",
            "depression",
            "--weight",
            "80kg",
            "--json",
            "--limits",
            str(TEST_LIMITS),
            env={"KETADOSE_LIMITS": str(tmp_path / "missing.toml")},
        )
        assert result.exit_code == 0

    def test_missing_file_exits_5(self, tmp_path: Path) -> None:
        result = run(
            "dose",
            "-p",
            "depression",
            "--weight",
            "80kg",
            "--limits",
            str(tmp_path / "missing.toml"),
        )
        assert result.exit_code == 5
        assert "cannot read" in result.stderr

    def test_invalid_library_exits_5_naming_file_and_field(self, tmp_path: Path) -> None:
        bad = tmp_path / "limits.toml"
        bad.write_text(
            TEST_LIMITS.read_text().replace('upper_hard = "25 mg/h"', 'upper_hard = "25 mg"')
        )
        result = run("dose", "-p", "depression", "--weight", "80kg", "--limits", str(bad))
        assert result.exit_code == 5
        assert result.stderr.startswith(
            f"ketadose: error: {bad}: profiles.crps.session.rate: upper_hard:"
        )

    def test_shipped_example_is_unapproved(self) -> None:
        result = run(
            "dose", "-p", "depression", "--weight", "80kg", "--json", env={"KETADOSE_LIMITS": None}
        )
        data = json.loads(result.stdout)
        assert data["library"]["approved"] is False
        assert "library-unapproved" in [f["code"] for f in data["findings"]]


class TestLimitsCommands:
    """limits show, validate and init."""

    def test_show_json(self) -> None:
        result = run("limits", "show", "--json", *LIMITS)
        data = json.loads(result.stdout)
        crps = data["profiles"]["crps"]["session"]["rate"]
        assert crps["upper_hard"] == "25 mg/h"
        assert crps["values"]["upper_hard"] == 25
        assert crps["unit"] == "mg/h"
        assert data["medications"][0]["class"] == "benzodiazepine"

    def test_show_for_protocol_merges_default(self) -> None:
        data = json.loads(run("limits", "show", "--protocol", "crps", "--json", *LIMITS).stdout)
        session = data["limits"]["session"]
        assert session["rate"]["upper_hard"] == "25 mg/h"  # crps's own
        assert session["total_dose_per_kg"]["upper_hard"] == "3 mg/kg"  # crps replaces default
        assert session["bolus_dose_per_kg"]["upper_hard"] == "0.35 mg/kg"  # inherited

    def test_show_table(self) -> None:
        result = run("limits", "show", *LIMITS)
        assert result.exit_code == 0
        assert "Profile default: session" in result.stdout
        assert "total_dose_per_kg" in result.stdout
        assert "benzodiazepines" in result.stdout

    def test_validate(self) -> None:
        result = run("limits", "validate", str(TEST_LIMITS))
        assert result.exit_code == 0
        assert result.stdout.startswith("valid: test limits 1 sha256 ")
        assert "approved" in result.stdout

    def test_validate_invalid(self, tmp_path: Path) -> None:
        bad = tmp_path / "l.toml"
        bad.write_text(
            "[library]\nname='x'\nversion='1'\n[profiles.default.session.rate]\nupper_hard='1'\nsource='sss'\nevidence='HIGH'\n"
        )
        result = run("limits", "validate", str(bad))
        assert result.exit_code == 5
        assert "profiles.default.session.rate: upper_hard: " in result.stderr

    def test_init_writes_a_valid_unapproved_copy_and_never_overwrites(self, tmp_path: Path) -> None:
        target = tmp_path / "clinic-limits.toml"
        assert run("limits", "init", str(target)).exit_code == 0
        text = target.read_text()
        assert text.startswith("# A copy of ketadose's EXAMPLE limit library.")
        assert run("limits", "validate", str(target)).exit_code == 0
        target.write_text("mine")
        again = run("limits", "init", str(target))
        assert again.exit_code == 2
        assert "refusing to overwrite" in again.stderr
        assert target.read_text() == "mine"
        assert [p.name for p in tmp_path.iterdir()] == ["clinic-limits.toml"]

    def test_init_to_stdout_pipes_into_validate(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        copy = run("limits", "init", "-")
        assert copy.exit_code == 0
        assert copy.stdout.startswith("# A copy of ketadose's EXAMPLE limit library.")
        assert list(tmp_path.iterdir()) == []  # no file called "-"
        checked = runner.invoke(app, ["limits", "validate", "-"], input=copy.stdout)
        assert checked.exit_code == 0, checked.stderr


class TestShippedLibrary:
    """The shipped example library speaks the way the issue asks."""

    def test_message_for_a_dose_past_the_site_policy_maximum(self) -> None:
        result = run(
            "dose",
            "-p",
            "depression",
            "--weight",
            "80kg",
            "--dose",
            "1.8mg/kg",
            "--json",
            env={"KETADOSE_LIMITS": None},
        )
        assert result.exit_code == 4
        messages = [f["message"] for f in json.loads(result.stdout)["findings"]]
        assert (
            "total dose 1.8 mg/kg exceeds the hard maximum 1.5 mg/kg for depression (site policy example)"
            in messages
        )

    def test_spravato_pre_dose_caution(self) -> None:
        result = run(
            "check",
            "-p",
            "esketamine-nasal",
            "--bp",
            "145/85",
            "--json",
            env={"KETADOSE_LIMITS": None},
        )
        assert result.exit_code == 3
        soft = [f for f in json.loads(result.stdout)["findings"] if f["severity"] == "soft"]
        assert [(f["parameter"], f["limit"]) for f in soft] == [("vitals_pre.systolic", 140)]

    def test_crps_protocol_cap_applies_before_the_limit(self) -> None:
        args = ["dose", "-p", "crps", "--weight", "100kg", "--rate", "30mg/h", "--json"]
        data = json.loads(run(*args, env={"KETADOSE_LIMITS": None}).stdout)
        assert data["phases"][0]["rate_mg_per_h"] == 25
        assert "protocol-cap-applied" in [f["code"] for f in data["findings"]]

    def test_crps_rate_per_kg_past_schwartzman_is_refused(self) -> None:
        args = ["dose", "-p", "crps", "--weight", "40kg", "--rate", "0.5mg/kg/h", "--json"]
        result = run(*args, env={"KETADOSE_LIMITS": None})
        assert result.exit_code == 4
        hard = [f for f in json.loads(result.stdout)["findings"] if f["severity"] == "hard"]
        assert ("session.rate_per_kg", 0.35) in [(f["parameter"], f["limit"]) for f in hard]


class TestLibraryFiles:
    """Library paths that are not files, or are blank, are configuration errors (exit 5)."""

    def test_blank_env_is_refused(self) -> None:
        result = run("dose", "-p", "depression", "--weight", "80kg", env={"KETADOSE_LIMITS": ""})
        assert result.exit_code == 5
        assert result.stderr == (
            "ketadose: error: KETADOSE_LIMITS: is set but empty; unset it to use the shipped example\n"
        )

    def test_fifo_is_refused_without_hanging(self, tmp_path: Path) -> None:
        import os

        fifo = tmp_path / "limits.toml"
        os.mkfifo(fifo)
        result = run("dose", "-p", "depression", "--weight", "80kg", "--limits", str(fifo))
        assert result.exit_code == 5
        assert "not a regular file" in result.stderr

    def test_huge_file_is_refused(self, tmp_path: Path) -> None:
        big = tmp_path / "limits.toml"
        big.write_bytes(b"#" * 5_000_001)
        result = run("dose", "-p", "depression", "--weight", "80kg", "--limits", str(big))
        assert result.exit_code == 5
        assert "larger than 5 MB" in result.stderr

    def test_path_with_spaces_is_kept_in_the_message(self, tmp_path: Path) -> None:
        missing = tmp_path / "my  limits.toml"
        result = run("dose", "-p", "depression", "--weight", "80kg", "--limits", str(missing))
        assert str(missing) in result.stderr


class TestReviewRegressions:
    """Defects found in review stay fixed."""

    def test_last_session_dose_counts_toward_the_24h_limit(self) -> None:
        args = [
            "dose",
            "-p",
            "depression",
            "--weight",
            "80kg",
            "--at",
            "2026-11-26T08:00",
            "--json",
        ]
        for option in ("--previous", "--last-session"):
            result = run(*args, option, "2026-11-25T09:00=100mg", env={"KETADOSE_LIMITS": None})
            assert result.exit_code == 4, option
            hard = [
                f["code"] for f in json.loads(result.stdout)["findings"] if f["severity"] == "hard"
            ]
            assert "dose-per-24h-high" in hard

    def test_weight_based_protocol_needs_a_weight_even_with_a_dose_in_mg(self) -> None:
        result = run("dose", "-p", "depression", "--dose", "120mg", *LIMITS)
        assert result.exit_code == 2
        assert "give --weight" in result.stderr
        result = run("dose", "-p", "crps", "--rate", "25mg/h", *LIMITS)
        assert result.exit_code == 2

    def test_coarse_pump_step_is_refused(self) -> None:
        result = run(
            "dose", "-p", "depression", "--weight", "80kg", "--pump-step", "10mL/h", *LIMITS
        )
        assert result.exit_code == 2
        assert "pump step 10 mL/h is not a pump increment" in result.stderr

    def test_refused_session_shows_no_volumes(self) -> None:
        result = run(
            "dose",
            "-p",
            "depression-im",
            "--weight",
            "80kg",
            "--dose",
            "1.1mg/kg",
            "--json",
            env={"KETADOSE_LIMITS": None},
        )
        assert result.exit_code == 4
        phase = json.loads(result.stdout)["phases"][0]
        assert phase["volume_ml"] is None
        assert phase["dose_mg"] == 88

    def test_value_and_limit_are_told_apart(self) -> None:
        result = run(
            "dose",
            "-p",
            "depression",
            "--weight",
            "80kg",
            "--dose",
            "1.5004mg/kg",
            "--bag",
            "250mL",
            "--json",
            env={"KETADOSE_LIMITS": None},
        )
        messages = [
            f["message"]
            for f in json.loads(result.stdout)["findings"]
            if f["code"] == "total-dose-per-kg-high"
        ]
        assert messages[0].startswith("total dose 1.5004 mg/kg exceeds the hard maximum 1.5 mg/kg")

    def test_interval_is_shown_in_hours(self) -> None:
        _code, data, _ = checked(
            "check", "-p", "depression", "--weight", "80kg", "--last-session", "2026-11-26T10:00"
        )
        interval = next(f for f in data["findings"] if f["code"] == "interval-low")
        assert (
            "interval since the last session 23 h is below the soft minimum 40 h"
            in interval["message"]
        )

    def test_condition_on_two_lines_is_refused(self) -> None:
        result = run(
            "check", "-p", "depression", "--weight", "80kg", "--condition", "preg\nnancy", *LIMITS
        )
        assert result.exit_code == 2

    def test_medication_just_taken(self) -> None:
        code, data, _ = checked(
            "check", "-p", "depression", "--weight", "80kg", "--med", "lorazepam:0"
        )
        assert code == 3
        med = next(f for f in data["findings"] if f["code"] == "medication-benzodiazepines")
        assert "last dose 0 h ago" in med["message"]

    def test_output_records_the_session_time_and_context(self) -> None:
        _code, data, _ = checked("check", "-p", "depression", "--weight", "80kg", "--bp", "120/80")
        assert data["at"] == "2026-11-27T09:00:00+01:00"  # the clinic zone (tests: Berlin)
        assert data["context"]["vitals"]["systolic"] == 120

    def test_broken_pipe_is_reported_not_a_bug(self) -> None:
        import subprocess
        import sys

        script = Path(sys.executable).parent / "ketadose"
        done = subprocess.run(
            f"'{script}' limits show | head -1", shell=True, capture_output=True, text=True
        )
        assert "output closed before it was all written" in done.stderr
        assert "internal error" not in done.stderr

    def test_unwritable_output(self) -> None:
        import subprocess
        import sys

        if not Path("/dev/full").exists():
            pytest.skip("no /dev/full on this system")
        script = Path(sys.executable).parent / "ketadose"
        with open("/dev/full", "w") as full:
            done = subprocess.run(
                [str(script), "protocols", "list", "--json"],
                stdout=full,
                stderr=subprocess.PIPE,
                text=True,
            )
        assert done.returncode == 2
        assert done.stderr.startswith("ketadose: error: cannot write output:")


class TestShippedCorrections:
    """Issue 12's corrected shipped data through the command line (exit codes and findings)."""

    def shipped(self, *args: str) -> tuple[int, list[tuple[str, str]]]:
        result = run(*args, "--at", "2026-12-07T09:00", "--json", env={"KETADOSE_LIMITS": None})
        findings = json.loads(result.stdout)["findings"]
        return result.exit_code, [
            (f["code"], f["severity"]) for f in findings if f["severity"] != "info"
        ]

    NASAL = ("check", "-p", "esketamine-nasal", "--weight", "70kg", "--age", "40y")

    def test_esketamine_70_mg_is_refused(self) -> None:
        code, found = self.shipped(
            *self.NASAL, "--dose", "70mg", "--previous", "2026-12-03T21:00=56mg"
        )
        assert (code, found) == (4, [("total-dose-step", "hard")])

    def test_esketamine_84_mg_on_day_one_is_refused(self) -> None:
        code, found = self.shipped(*self.NASAL, "--dose", "84mg")
        assert (code, found) == (4, [("first-session-dose-high", "hard")])

    def test_esketamine_84_mg_after_56_mg_passes(self) -> None:
        code, found = self.shipped(
            *self.NASAL, "--dose", "84mg", "--previous", "2026-12-03T21:00=56mg"
        )
        assert (code, found) == (0, [])

    @pytest.mark.parametrize(
        ("med", "exit_code"),
        [
            ("theophylline:2000", 0),
            ("theophylline:48h", 0),
            ("theophylline:47h", 4),
            ("theophylline@2026-12-05T09:00", 0),  # exactly 48 h before --at
            ("theophylline@2026-12-05T09:01", 4),
        ],
    )
    def test_theophylline_hold_from_the_last_dose(self, med: str, exit_code: int) -> None:
        code, _ = self.shipped(
            "check", "-p", "depression", "--weight", "70kg", "--age", "40y", "--med", med
        )
        assert code == exit_code

    def test_im_injection_over_5_ml_needs_a_reason(self) -> None:
        code, found = self.shipped(
            "check", "-p", "depression-im", "--weight", "110kg", "--age", "40y"
        )
        assert (code, found) == (3, [("injection-volume-high", "soft")])
