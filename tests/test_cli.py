"""Tests for the command line: exit codes, stdout/stderr contract, JSON contract, help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from ketadose.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def run(*args: str) -> Any:
    return runner.invoke(app, list(args))


def dose_json(*args: str) -> dict[str, Any]:
    result = run("dose", *args, "--json")
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def all_commands() -> list[tuple[str, ...]]:
    """Every command path of the app, e.g. ("protocols", "show")."""
    paths: list[tuple[str, ...]] = []

    def walk(command: Any, prefix: tuple[str, ...]) -> None:
        paths.append(prefix)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, (*prefix, name))

    walk(get_command(app), ())
    return paths


class TestHelp:
    """Every command explains itself, and help stays light."""

    @pytest.mark.parametrize("path", all_commands(), ids=lambda p: " ".join(p) or "ketadose")
    def test_every_command_has_help_text(self, path: tuple[str, ...]) -> None:
        result = run(*path, "--help")
        assert result.exit_code == 0
        assert "Usage:" in result.stdout
        command: Any = get_command(app)
        for name in path:
            command = command.commands[name]
        assert (command.help or "").strip(), f"{' '.join(path)} has no help text"

    def test_help_does_not_import_pint_or_the_core(self) -> None:
        code = (
            "import sys\n"
            "from ketadose.cli import app\n"
            "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('pint', 'rich.table', 'ketadose.protocols', 'ketadose.dosing')"
            " if m in sys.modules]\n"
            "print('HEAVY:' + ','.join(heavy))\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip().splitlines()[-1] == "HEAVY:"

    def test_dose_json_does_not_import_pint_or_rich(self) -> None:
        code = (
            "import sys\n"
            "from ketadose.cli import app\n"
            "try:\n    app(['dose', '-p', 'depression', '--weight', '80kg', '--json'])\n"
            "except SystemExit:\n    pass\n"
            "print('pint' in sys.modules, 'rich.table' in sys.modules, 'ketadose.store' in sys.modules)\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.stdout.strip().splitlines()[-1] == "False False False"


class TestDoseJson:
    """The JSON contract scripts depend on: names, values, nulls."""

    def test_contract_keys_and_values(self) -> None:
        data = dose_json("--protocol", "depression", "--weight", "70kg")
        assert data["schema_version"] == 2
        assert data["protocol"] == {
            "id": "depression",
            "name": data["protocol"]["name"],
            "category": "psychiatric",
            "route": "iv",
        }
        assert {"weight_kg", "height_cm", "sex", "bmi"} <= set(data["patient"])
        assert data["patient"]["weight_kg"] == 70
        assert data["patient"]["height_cm"] is None
        assert data["dosing_weight"] == {"basis": "actual", "kg": 70, "note": None}
        (phase,) = data["phases"]
        assert phase == {
            "kind": "timed",
            "label": phase["label"],
            "dose_mg": 35,
            "dose_mg_per_kg": 0.5,
            "duration_min": 40,
            "rate_mg_per_h": 52.5,
            "rate_mg_per_kg_per_h": 0.75,
            "pump_rate_ml_per_h": 150,
            "pump_rate_ml_per_h_rounded": 150,
            "volume_ml": 100,
            "drops_per_min": None,
            "delivered_dose_mg": 35,
            "delivered_rate_mg_per_h": 52.5,
        }
        assert data["total_dose_mg"] == 35
        assert (data["delivered_total_mg"], data["delivered_total_mg_per_kg"]) == (35, 0.5)
        assert data["during"] is None
        assert data["total_duration_min"] == 40
        prep = data["preparation"]
        assert (prep["vial_mg_per_ml"], prep["draw_ml"], prep["final_volume_ml"]) == (10, 3.5, 100)
        assert prep["final_mg_per_ml"] == 0.35
        assert (prep["delivered_mg"], prep["delivered_mg_per_ml"]) == (35, 0.35)
        assert {"severity", "code", "message", "parameter", "value", "limit", "source"} <= set(
            data["findings"][0]
        )
        assert data["status"] == "ok"
        assert data["ready"] is True
        for key in ("library", "protocol_library"):
            library = data[key]
            assert {"name", "version", "sha256", "approved"} <= set(library)
            assert library["approved"] is False
            assert len(library["sha256"]) == 64
        assert data["library"]["path"] == "ketadose/data/limits.toml"
        assert data["protocol_library"]["path"] == "ketadose/data/protocols.toml"

    def test_no_float_noise(self) -> None:
        data = dose_json("-p", "cocaine-use-disorder", "--weight", "80kg")
        assert [p["dose_mg"] for p in data["phases"]] == [8.8, 48]
        assert data["total_dose_mg_per_kg"] == 0.71

    def test_pounds_and_overrides(self) -> None:
        data = dose_json(
            "-p", "depression", "--weight", "176lb", "--dose", "0.75mg/kg", "--duration", "45min"
        )
        assert data["patient"]["weight_kg"] == 79.83225712
        assert data["phases"][0]["dose_mg"] == pytest.approx(0.75 * 79.83225712, rel=1e-11)
        assert data["phases"][0]["duration_min"] == 45
        codes = [f["code"] for f in data["findings"]]
        assert "dose-override" in codes
        assert "duration-override" in codes

    def test_ideal_weight_basis_is_shown(self) -> None:
        data = dose_json(
            "-p",
            "depression",
            "--weight",
            "100kg",
            "--height",
            "170cm",
            "--sex",
            "male",
            "--dosing-weight",
            "ideal",
        )
        assert data["dosing_weight"]["basis"] == "ideal"
        assert data["dosing_weight"]["kg"] == pytest.approx(65.937007874, rel=1e-9)
        assert data["patient"]["bmi"] == pytest.approx(100 / 1.7**2, rel=1e-9)

    def test_stdout_is_one_json_document(self) -> None:
        result = run("dose", "-p", "crps", "--weight", "80kg", "--json")
        assert result.exit_code == 0
        assert result.stderr == ""
        json.loads(result.stdout)

    def test_rounding_steps_are_configurable(self) -> None:
        data = dose_json("-p", "depression", "--weight", "83kg", "--pump-step", "1mL/h")
        assert data["rounding"]["pump_rate_ml_per_h"] == 1
        assert data["phases"][0]["pump_rate_ml_per_h_rounded"] == 150


class TestTable:
    """The clinician's table names the basis, the units and the library status."""

    def test_table_output(self) -> None:
        result = run("dose", "-p", "depression", "--weight", "70kg")
        assert result.exit_code == 0
        out = result.stdout
        assert "Dosing weight: 70 kg [actual]" in out
        assert "UNAPPROVED EXAMPLE LIBRARY" in out
        assert "mg/kg" in out
        assert "mL/h" in out
        assert "Preparation: draw 3.5 mL of 10 mg/mL (35 mg), add 96.5 mL" in out


class TestExitCodes:
    """Bad input: one stderr line, the documented code, nothing on stdout, no traceback."""

    @pytest.mark.parametrize(
        ("args", "fragment"),
        [
            (["-p", "depression", "--weight", "80"], "has no unit"),
            (["-p", "depression", "--weight", "80mL"], "not a weight"),
            (["-p", "depression", "--weight", "nan"], "not a number followed by a unit"),
            (["-p", "depression", "--weight", "0kg"], "is zero"),
            (["-p", "depression", "--weight", "-80kg"], "has a sign"),
            (["-p", "depression", "--weight", "8Okg"], "unknown unit"),
            (["-p", "depression", "--weight", "80kg", "--dose", "0,5mg/kg"], "comma"),
            (["-p", "depression", "--weight", "80kg", "--dose", "0.5"], "has no unit"),
            (["-p", "depression"], "give --weight"),
            (["-p", "nope", "--weight", "80kg"], 'unknown protocol "nope"'),
            (
                ["-p", "depression", "--weight", "80kg", "--dosing-weight", "ideal"],
                "needs --height",
            ),
            (
                ["-p", "cocaine-use-disorder", "--weight", "80kg", "--dose", "0.5mg/kg"],
                "exactly one",
            ),
            (["-p", "depression", "--weight", "80kg", "--vial", "20mg/mL"], "is not made"),
            (["-p", "esketamine-nasal", "--bag", "100mL"], "does not apply"),
            (["-p", "depression", "--weight", "80kg", "--bag", "2mL"], "does not fit"),
            (["-p", "depression", "--weight", "80kg", "--drop-factor", "13"], "drop factor 13"),
        ],
    )
    def test_input_errors_exit_2(self, args: list[str], fragment: str) -> None:
        result = run("dose", *args, "--json")
        assert result.exit_code == 2
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1
        assert lines[0].startswith("ketadose: error: ")
        assert fragment in lines[0]
        assert "Traceback" not in result.stderr

    def test_bad_flag_is_a_usage_error(self) -> None:
        result = run("dose", "--protocol", "depression", "--wieght", "80kg")
        assert result.exit_code == 2
        assert "No such option" in result.stderr

    def test_invalid_protocol_file_exits_5_naming_file_and_field(self, tmp_path: Path) -> None:
        bad = tmp_path / "clinic.toml"
        text = (ROOT / "examples" / "clinic-protocols.toml").read_text(encoding="utf-8")
        bad.write_text(text.replace('dose = "0.6 mg/kg"', 'dose = "0.6"'), encoding="utf-8")
        result = run("dose", "-p", "depression", "--weight", "80kg", "--protocols", str(bad))
        assert result.exit_code == 5
        assert result.stderr.strip() == (
            f"ketadose: error: {bad}: protocol[0](dakwar-test).phases[1].dose: "
            'dose "0.6" has no unit; write e.g. 0.5mg/kg or 500mcg/kg or 60mg'
        )

    def test_internal_error_exits_1_without_traceback(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import ketadose.gate

        def boom(*args: object, **kwargs: object) -> None:
            raise RuntimeError("simulated bug")

        monkeypatch.setattr(ketadose.gate, "session", boom)
        result = run("dose", "-p", "depression", "--weight", "80kg")
        assert result.exit_code == 1
        assert "internal error (RuntimeError: simulated bug)" in result.stderr
        assert "--debug" in result.stderr
        assert "Traceback" not in result.stderr

    def test_debug_shows_the_traceback(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import ketadose.gate

        def boom(*args: object, **kwargs: object) -> None:
            raise RuntimeError("simulated bug")

        monkeypatch.setattr(ketadose.gate, "session", boom)
        result = run("--debug", "dose", "-p", "depression", "--weight", "80kg")
        assert isinstance(result.exception, RuntimeError)


class TestStrength:
    """--strength names one of the protocol's strengths, in the unit of its form."""

    def test_a_listed_strength(self) -> None:
        result = run("dose", "-p", "depression-oral", "--weight", "80kg", "--strength", "10mg/mL", "--json")  # fmt: skip
        assert result.exit_code == 0, result.stderr
        # 50 mg / 10 mg/mL = 5 mL
        assert json.loads(result.stdout)["measured"]["amount_rounded"] == 5.0

    def test_a_tablet_strength_for_a_solution_is_refused(self) -> None:
        # Regression: "10mg" (mg per tablet) was taken for the oral solution's 10 mg/mL.
        result = run("dose", "-p", "depression-oral", "--weight", "80kg", "--strength", "10mg")
        assert result.exit_code == 2
        assert "--strength 10mg is not in mg/mL" in result.stderr

    def test_not_for_a_vial_route(self) -> None:
        result = run("dose", "-p", "depression", "--weight", "80kg", "--strength", "10mg/mL")
        assert result.exit_code == 2
        assert "--strength does not apply to the iv route: use --vial" in result.stderr


class TestProtocolsCommands:
    """The library can be listed and shown, with sources and evidence."""

    def test_list_json(self) -> None:
        result = run("protocols", "list", "--json")
        assert result.exit_code == 0
        data = json.loads(result.stdout)
        ids = [p["id"] for p in data["protocols"]]
        assert "depression" in ids
        assert len(ids) == 21  # 18 required (issue 2) + depression-sc-kads, -sublingual, -oral
        crps = next(p for p in data["protocols"] if p["id"] == "crps")
        assert crps["phases"][0]["rate"] == "0.35 mg/kg/h"
        assert crps["phases"][0]["cap"] == "25 mg/h"
        assert crps["weight_based"] is True

    def test_show_table_has_sources(self) -> None:
        result = run("protocols", "show", "crps")
        assert result.exit_code == 0
        assert "Schwartzman" in result.stdout
        assert "HIGH" in result.stdout

    def test_show_json(self) -> None:
        result = run("protocols", "show", "depression", "--json")
        data = json.loads(result.stdout)
        assert data["protocol"]["id"] == "depression"
        assert data["protocol"]["phases"][0]["evidence"] == "HIGH"

    def test_clinic_file_is_listed_with_its_library(self) -> None:
        clinic = ROOT / "examples" / "clinic-protocols.toml"
        result = run("protocols", "list", "--json", "--protocols", str(clinic))
        data = json.loads(result.stdout)
        crps = next(p for p in data["protocols"] if p["id"] == "crps")
        assert crps["library"]["approved"] is True
        assert crps["library"]["name"] == "Example clinic protocols"

    def test_unknown_protocol_exits_2(self) -> None:
        result = run("protocols", "show", "nope")
        assert result.exit_code == 2


class TestRealProcess:
    """The installed entry points behave the same in a real process."""

    def test_python_m(self) -> None:
        out = subprocess.run(
            [sys.executable, "-m", "ketadose", "dose", "-p", "crps", "--weight", "80kg", "--json"],
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0
        data = json.loads(out.stdout)
        assert data["phases"][0]["rate_mg_per_h"] == 25

    def test_console_script_error(self) -> None:
        script = Path(sys.executable).parent / "ketadose"
        out = subprocess.run(
            [str(script), "dose", "-p", "depression", "--weight", "80 KG"],
            capture_output=True,
            text=True,
        )
        assert out.returncode == 2
        assert out.stdout == ""
        assert out.stderr == (
            'ketadose: error: weight "80 KG": unknown unit "KG" (units are case-sensitive: '
            'did you mean "kg"?)\n'
        )


class TestUsageErrorsInARealProcess:
    """Typer's own usage errors become one `ketadose: error:` line, exit 2."""

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (
                ["dose", "-p", "depression", "--weight", "80kg", "--sex", "Male"],
                "Invalid value for '--sex'",
            ),
            (["dose"], "Missing option '--protocol'"),
            (["bogus"], "No such command 'bogus'"),
            (
                ["dose", "-p", "depression", "--weight", "80kg", "--weight", "40kg"],
                "--weight is given 2 times; give it once",
            ),
            (
                ["dose", "-p", "crps", "--protocol", "depression", "--weight", "80kg"],
                "--protocol is given 2 times",
            ),
            (
                ["dose", "--weight=80kg", "-p", "depression", "--weight=70kg"],
                "--weight is given 2 times",
            ),
        ],
    )
    def test_one_line(self, args: list[str], message: str) -> None:
        script = Path(sys.executable).parent / "ketadose"
        done = subprocess.run([str(script), *args], capture_output=True, text=True)
        assert done.returncode == 2
        assert done.stdout == ""
        lines = done.stderr.splitlines()
        assert len(lines) == 1
        assert lines[0].startswith("ketadose: error: ")
        assert message in lines[0]

    def test_repeatable_options_may_repeat(self) -> None:
        script = Path(sys.executable).parent / "ketadose"
        done = subprocess.run(
            [
                str(script),
                "check",
                "-p",
                "depression",
                "--weight",
                "80kg",
                "--med",
                "lamotrigine",
                "--med",
                "sertraline",
                "--json",
            ],
            capture_output=True,
            text=True,
        )
        assert done.returncode in (0, 3)
        assert "given 2 times" not in done.stderr
