"""Command-line conventions (issue 14): --version, -h, completion, fail-closed reads, audit JSON."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ketadose
from ketadose.cli import app
from ketadose.records import json_value

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert (result.exit_code, result.stdout) == (0, f"ketadose {ketadose.__version__}\n")


@pytest.mark.parametrize("args", [["-h"], ["dose", "-h"], ["session", "record", "-h"]])
def test_short_help(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: ketadose")


def test_completion_is_offered() -> None:
    assert "--install-completion" in runner.invoke(app, ["--help"]).stdout


@pytest.mark.parametrize(
    "args",
    [
        ["patient", "show", "P1"],
        ["history", "P1"],
        ["next", "P1", "--date", "2026-12-01T09:00"],
        ["audit"],
    ],
)
def test_reads_fail_closed_on_a_missing_store(args: list[str], tmp_path: Path) -> None:
    missing = tmp_path / "mistyped.sqlite3"
    result = runner.invoke(app, [*args, "--store", str(missing)])
    assert result.exit_code == 6
    assert result.stderr == f"ketadose: error: no store at {missing}\n"
    assert not missing.exists()  # never created empty


def test_a_read_of_an_existing_store_still_works(tmp_path: Path) -> None:
    store = str(tmp_path / "store.sqlite3")
    add = ["patient", "add", "P1", "-p", "depression", "--weight", "80kg", "--baseline", "30"]
    assert runner.invoke(app, [*add, "--store", store]).exit_code == 0
    result = runner.invoke(app, ["patient", "show", "P1", "--json", "--store", store])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["patient"]["id"] == "P1"


class Colour(Enum):
    RED = "red"


def test_audit_inputs_are_json_values() -> None:
    assert json_value(["lorazepam:12"]) == ["lorazepam:12"]
    assert json_value(False) is False
    assert json_value(80.5) == 80.5
    assert json_value(Colour.RED) == "red"
    assert json_value(Path("x/limits.toml")) == "x/limits.toml"
    assert json_value(("b", "a")) == ["b", "a"]


def test_an_override_is_logged_with_json_inputs(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite3"
    args = ["dose", "-p", "depression", "--weight", "120kg", "--override-reason", "reviewed"]
    assert runner.invoke(app, [*args, "--store", str(store), "--json"]).exit_code == 0
    result = runner.invoke(app, ["audit", "--json", "--store", str(store)])
    (entry,) = json.loads(result.stdout)["entries"]
    inputs = entry["inputs"] if "inputs" in entry else json.loads(entry["inputs_json"])
    assert inputs["weight"] == "120kg"
    assert all(value != "False" and value != "None" for value in inputs.values())
