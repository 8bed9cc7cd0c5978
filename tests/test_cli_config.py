"""The clinic config file at the edge: read when a value is needed, flag > env > file > built-in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ketadose.cli import app

runner = CliRunner()


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "ketadose.toml"
    monkeypatch.setenv("KETADOSE_CONFIG", str(path))
    return path


def dose(*args: str) -> dict:  # type: ignore[type-arg]
    result = runner.invoke(app, ["dose", "-p", "depression", "--weight", "80kg", "--json", *args])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_the_config_files_store_clinician_and_tz(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "clinic.sqlite3"
    config.write_text(f'store = "{store}"\nclinician = "RN Config"\ntz = "America/New_York"\n')
    monkeypatch.delenv("KETADOSE_STORE")
    monkeypatch.delenv("KETADOSE_TZ")
    add = ["patient", "add", "P1", "-p", "depression", "--weight", "80kg", "--baseline", "30"]
    assert runner.invoke(app, add).exit_code == 0
    assert store.is_file()  # the config file's store, not the user data directory
    runner.invoke(app, ["dose", "-p", "depression", "--weight", "120kg", "--override-reason", "ok"])
    (entry,) = json.loads(runner.invoke(app, ["audit", "--json"]).stdout)["entries"]
    assert entry["claimed"] == "RN Config"  # beside the OS user, never instead of it
    assert entry["at"].endswith("-05:00")  # New York in December


def test_a_flag_and_the_environment_beat_the_config_file(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config.write_text('pump_step = "1mL/h"\ndraw_step = "0.1mL"\n')
    # 0.5 mg/kg x 80 kg = 40 mg in 100 mL over 40 min: 150 mL/h; 4 mL of 10 mg/mL.
    assert dose()["rounding"] == {"pump_rate_ml_per_h": 1.0, "draw_ml": 0.1}
    monkeypatch.setenv("KETADOSE_DRAW_STEP", "0.05mL")
    assert dose()["rounding"]["draw_ml"] == 0.05
    assert dose("--pump-step", "0.1mL/h")["rounding"]["pump_rate_ml_per_h"] == 0.1


def test_paper_from_the_config_file(config: Path) -> None:
    config.write_text('paper = "letter"\n')
    page = runner.invoke(app, ["dose", "-p", "depression", "--weight", "80kg", "--format", "html"])
    assert page.exit_code == 0
    assert "size: letter" in page.stdout.casefold() or "size: Letter" in page.stdout


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('stroe = "/tmp/x"\n', "unknown key 'stroe'"),
        ('paper = "A3"\n', "paper"),
        ("store = 1\n", "store"),
    ],
)
def test_a_bad_config_file_is_refused(config: Path, text: str, message: str) -> None:
    config.write_text(text)
    result = runner.invoke(app, ["dose", "-p", "depression", "--weight", "80kg", "--json"])
    assert result.exit_code == 5
    assert message in result.stderr and str(config) in result.stderr


def test_a_named_config_file_that_is_not_there(config: Path) -> None:
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 5
    assert "no config file there" in result.stderr


def test_config_show_says_where_each_value_comes_from(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config.write_text('clinician = "RN Config"\npaper = "letter"\n')
    monkeypatch.setenv("KETADOSE_PAPER", "a4")
    result = runner.invoke(app, ["config", "show", "--json"])
    assert result.exit_code == 0
    shown = json.loads(result.stdout)
    assert shown["config_file"] == {"path": str(config), "named": True, "exists": True}
    settings = shown["settings"]
    assert (settings["clinician"]["value"], settings["clinician"]["source"]) == (
        "RN Config",
        "config file",
    )
    assert (settings["paper"]["value"], settings["paper"]["source"]) == ("a4", "environment")
    assert settings["pump_step"] == {
        "value": "0.1mL/h",
        "source": "built-in",
        "variable": "KETADOSE_PUMP_STEP",
    }
    assert settings["tz"]["source"] == "environment"  # the tests' KETADOSE_TZ


def test_no_config_file_is_no_config(monkeypatch: pytest.MonkeyPatch) -> None:
    # The default location (an empty config directory in the tests): nothing to read.
    result = runner.invoke(app, ["config", "show", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["config_file"]["exists"] is False


def test_an_empty_config_variable_is_refused() -> None:
    from typer.testing import CliRunner

    from ketadose.cli import app

    result = CliRunner().invoke(app, ["config", "show"], env={"KETADOSE_CONFIG": ""})
    assert result.exit_code == 5
    assert "KETADOSE_CONFIG" in result.stderr
    assert "is set but empty" in result.stderr
