"""Review of issue 14 (the edge as a package): each defect found, as a test of the right behaviour.

Each test drives the command line from outside, as a user or a script would, and asserts the
documented exit code (``ketadose.errors.ExitCode``) and the one line on stderr.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ketadose.cli import app

runner = CliRunner()


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, list(args), env=env)


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config file KETADOSE_CONFIG names; each test writes its own content."""
    path = tmp_path / "clinic.toml"
    monkeypatch.setenv("KETADOSE_CONFIG", str(path))
    return path


class TestConfigFileValues:
    """A bad value in the config file is the file's error: exit 5, naming the file and the key."""

    def test_wrong_type_names_the_key_once(self, config_file: Path) -> None:
        """``tz = 5``: "FILE: tz: ..." , not "FILE: tz: tz: ..."."""
        config_file.write_text("tz = 5\n")
        result = invoke("config", "show")
        assert result.exit_code == 5
        assert f"{config_file}: tz: Input should be a valid string" in result.stderr
        assert "tz: tz:" not in result.stderr

    def test_unknown_zone_in_the_file_is_a_config_error(
        self, config_file: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``tz = "Mars/Olympus"`` with no --tz or KETADOSE_TZ: exit 5 naming the file, not 2."""
        monkeypatch.delenv("KETADOSE_TZ")
        config_file.write_text('tz = "Mars/Olympus"\n')
        result = invoke("dose", "-p", "depression", "--weight", "80kg")
        assert result.exit_code == 5
        assert str(config_file) in result.stderr
        assert 'tz: unknown time zone "Mars/Olympus"' in result.stderr

    def test_a_flag_still_beats_a_bad_zone_in_the_file(
        self, config_file: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The file's zone is never read when --tz is given: the dose is computed (exit 0)."""
        monkeypatch.delenv("KETADOSE_TZ")
        config_file.write_text('tz = "Mars/Olympus"\n')
        result = invoke("--tz", "UTC", "dose", "-p", "depression", "--weight", "80kg", "--json")
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["total_dose_mg"] == 40  # 0.5 mg/kg x 80 kg

    @pytest.mark.parametrize(
        ("key", "value", "told"),
        [
            ("pump_step", "0.7mL/h", "pump step 0.7 mL/h is not a pump increment"),
            ("draw_step", "3mL", "draw step 3 mL is not a syringe graduation"),
        ],
    )
    def test_a_step_no_pump_takes_is_the_files_error(
        self, config_file: Path, key: str, value: str, told: str
    ) -> None:
        """A config step that is refused names the file and the key (exit 5)."""
        config_file.write_text(f'{key} = "{value}"\n')
        result = invoke("dose", "-p", "depression", "--weight", "80kg")
        assert result.exit_code == 5
        assert f"{config_file}: {key}: {told}" in result.stderr

    def test_the_same_step_as_a_flag_is_a_usage_error(self) -> None:
        """--pump-step 0.7mL/h is the user's typing: exit 2, as before."""
        result = invoke("dose", "-p", "depression", "--weight", "80kg", "--pump-step", "0.7mL/h")
        assert result.exit_code == 2
        assert "pump step 0.7 mL/h is not a pump increment" in result.stderr

    def test_a_flag_beats_a_bad_step_in_the_file(self, config_file: Path) -> None:
        """--pump-step 1mL/h wins over the file's 0.7 mL/h: 100 mL over 40 min is 150 mL/h."""
        config_file.write_text('pump_step = "0.7mL/h"\n')
        result = invoke(
            "dose", "-p", "depression", "--weight", "80kg", "--pump-step", "1mL/h", "--json"
        )
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["phases"][0]["pump_rate_ml_per_h_rounded"] == 150


class TestConfigShowTz:
    """``config show`` reports --tz as the flag it is, before or after the command."""

    @pytest.mark.parametrize(
        "argv",
        [
            ("config", "show", "--tz", "UTC", "--json"),
            ("--tz", "UTC", "config", "show", "--json"),
        ],
    )
    def test_tz_flag_wins_over_the_environment(self, argv: tuple[str, ...]) -> None:
        """KETADOSE_TZ=Europe/Berlin, --tz UTC: the value is UTC, its source the flag."""
        result = invoke(*argv)
        assert result.exit_code == 0, result.stderr
        tz = json.loads(result.stdout)["settings"]["tz"]
        assert (tz["value"], tz["source"]) == ("UTC", "flag")

    def test_unknown_zone_flag_is_refused(self) -> None:
        """``config show --tz Mars/X`` does not print Mars/X as in effect: exit 2."""
        result = invoke("config", "show", "--tz", "Mars/X", "--json")
        assert result.exit_code == 2
        assert 'unknown time zone "Mars/X"' in result.stderr


class TestFormatHelp:
    """--help lists only the formats a command takes (the others are refused, exit 2)."""

    @pytest.mark.parametrize(
        ("argv", "formats"),
        [
            (("simulate",), "table|json|csv"),
            (("config", "show"), "table|json|csv"),
            (("audit",), "table|json|csv"),
            (("protocols", "show"), "table|json"),
            (("limits", "verify"), "table|json"),
            (("next",), "table|json|csv|markdown"),
            (("history",), "table|json|csv|markdown|html"),
            (("dose",), "table|json|csv|markdown|html|fhir"),
        ],
    )
    def test_format_metavar_is_the_commands_own(self, argv: tuple[str, ...], formats: str) -> None:
        result = invoke(*argv, "--help", env={"COLUMNS": "120"})
        assert result.exit_code == 0
        words = [line.split() for line in result.stdout.splitlines()]
        shown = [w[1] for w in words if w[:1] == ["--format"]]
        assert shown[0] == formats

    def test_simulate_help_does_not_offer_html(self) -> None:
        """simulate refuses --format html, so its help does not offer it."""
        result = invoke("simulate", "--help", env={"COLUMNS": "120"})
        assert "html" not in result.stdout
        assert invoke("simulate", "-p", "depression", "--format", "html").exit_code == 2


class TestSimulateWidth:
    """simulate's text is laid out at the terminal's width (80 at least), as the tables are."""

    def test_no_line_past_80_and_no_quantity_split(self) -> None:
        """At 80 columns the summary wraps between words: "80 kg" stays on one line."""
        result = invoke("simulate", "-p", "depression", "--weight", "80kg", env={"COLUMNS": "80"})
        assert result.exit_code == 0, result.stderr
        lines = result.stdout.splitlines()
        assert max(len(line) for line in lines) <= 80
        assert not any(line.endswith((" 80", " 177.3", " 97.5")) for line in lines)
        # Peak of 0.5 mg/kg over 40 min at 80 kg (Clements 250 model): 177.3 ng/mL at 40 min.
        assert "Peak 177.3 ng/mL at 40 min" in result.stdout

    def test_file_is_the_same_as_80_columns(self, tmp_path: Path) -> None:
        """-o FILE is laid out at exactly 80 columns, as every table written to a file."""
        out = tmp_path / "sim.txt"
        argv = ("simulate", "-p", "depression", "--weight", "80kg")
        assert invoke(*argv, "-o", str(out)).exit_code == 0
        shown = invoke(*argv, env={"COLUMNS": "80"}).stdout
        assert out.read_text() == shown


class TestReadsFailClosed:
    """Every command that only reads the store refuses one that does not exist (exit 6)."""

    @pytest.mark.parametrize(
        "argv",
        [
            ("session", "show", "P1"),
            ("score", "show", "P1"),
            ("patient", "show", "P1"),
            ("history", "P1"),
            ("next", "P1"),
            ("audit",),
        ],
    )
    def test_mistyped_store_is_refused_and_not_created(
        self, tmp_path: Path, argv: tuple[str, ...]
    ) -> None:
        """A mistyped --store: "no store at PATH", exit 6, and no file left behind."""
        missing = tmp_path / "stroe.sqlite3"
        result = invoke(*argv, "--store", str(missing))
        assert result.exit_code == 6
        assert f"no store at {missing}" in result.stderr
        assert not missing.exists()


class TestOneLineMessages:
    """Click's own messages come out as one readable line (through ``main``, as the console script)."""

    def run_main(self, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[Any, str]:
        from ketadose.cli import main

        with pytest.raises(SystemExit) as exit_:
            main(list(argv))
        return exit_.value.code, capsys.readouterr().err

    def test_missing_argument_lists_choices_without_tab_escapes(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``ketadose schema``: "Choose from: dose, check, ...", not "\\x09dose, \\x09check"."""
        code, err = self.run_main(capsys, "schema")
        assert code == 2
        assert err.count("\n") == 1
        assert "\\x09" not in err
        assert "Choose from: dose, check, plan," in err

    def test_a_typed_tab_still_shows(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A tab inside what the user typed is shown as its escape, never passed raw."""
        code, err = self.run_main(capsys, "dose", "-p", "depression", "--weight", "80\tkg")
        assert code == 2
        assert "80\\x09kg" in err


class TestBlankStoreVariable:
    """KETADOSE_STORE set but blank is refused, as KETADOSE_LIMITS and KETADOSE_TZ are."""

    @pytest.mark.parametrize(
        "argv",
        [
            ("history", "P1"),
            ("patient", "add", "P1", "-p", "depression", "--weight", "80kg", "--baseline", "30"),
            ("dose", "-p", "depression", "--weight", "80kg", "--dose", "1.2mg/kg"),
        ],
    )
    def test_blank_store_variable_never_falls_back(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, argv: tuple[str, ...]
    ) -> None:
        """KETADOSE_STORE="": exit 5 naming the variable; the user's own store is not touched.

        (1.2 mg/kg is past the shipped soft maximum of 1 mg/kg, so ``dose`` has an audit entry to write.)
        """
        monkeypatch.setenv("KETADOSE_STORE", "")
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
        result = invoke(*argv)
        assert result.exit_code == 5, (result.exit_code, result.stderr)
        assert "KETADOSE_STORE: is set but empty" in result.stderr
        assert not (tmp_path / "data").exists()
