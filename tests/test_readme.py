"""The README's commands are true: CI runs its test command, its examples run, examples/ runs."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ketadose.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```sh\n(.*?)```", README, flags=re.DOTALL)


#: Walk-throughs: blocks that add a patient and go on from there, run in order on one store.
WALKS = [block for block in BLOCKS if "ketadose patient add" in block]
STORE_BLOCK = WALKS[0]
#: The clinicians' walk-through: registered in order, as the OS user (``$USER``).
(CLINICIANS_BLOCK,) = [block for block in BLOCKS if "ketadose clinician add" in block]


def readme_examples(blocks: list[str] | None = None) -> list[str]:
    """The `ketadose ...` lines of the README's sh blocks (the walk-throughs apart)."""
    chosen = (
        [b for b in BLOCKS if b not in WALKS and b != CLINICIANS_BLOCK]
        if blocks is None
        else blocks
    )
    lines = [line.strip() for block in chosen for line in block.splitlines()]
    return [line for line in lines if line.startswith("ketadose ")]


def invoke(line: str) -> tuple[int, Any]:
    command, _, comment = line.partition("  #")
    expected = re.search(r"exit (\d)", comment)
    args = shlex.split(command)[1:]
    args = [str(ROOT / a) if a.startswith(("examples/", "ketadose/")) else a for a in args]
    result = CliRunner().invoke(app, args)
    return (int(expected[1]) if expected else 0), result


class TestReadme:
    """The commands a new user pastes are the ones CI and the tests run."""

    def test_install_and_run_command(self) -> None:
        quick = BLOCKS[0].strip()
        assert quick.startswith("python3 -m venv .venv && .venv/bin/pip install")
        assert "ketadose dose --protocol depression --weight 80kg" in quick

    def test_ci_runs_exactly_the_readme_test_command(self) -> None:
        test_command = BLOCKS[1].strip()
        assert "pytest" in test_command
        ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
        last = [line for line in ci.splitlines() if line.strip() and not line.startswith("#")][-1]
        assert last == test_command

    @pytest.mark.parametrize("line", readme_examples())
    def test_usage_examples_run(self, line: str) -> None:
        expected, result = invoke(line)
        assert result.exit_code == expected, result.stderr
        assert result.stdout

    def test_store_walk_through_runs_in_order(self) -> None:
        lines = readme_examples([STORE_BLOCK])
        assert len(lines) == 11
        for line in lines:
            expected, result = invoke(line)
            assert result.exit_code == expected, (line, result.stderr)

    def test_clinicians_walk_through_runs_in_order(self) -> None:
        from ketadose.cli.env import os_user

        lines = readme_examples([CLINICIANS_BLOCK])
        assert len(lines) == 4
        for line in lines:
            expected, result = invoke(line.replace('"$USER"', os_user()))
            assert result.exit_code == expected, (line, result.stderr)

    @pytest.mark.parametrize("block", WALKS[1:], ids=["subcutaneous", "sublingual"])
    def test_route_walk_throughs_run_in_order(
        self, block: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("KETADOSE_STORE", str(tmp_path / "store.sqlite3"))
        lines = readme_examples([block])
        assert len(lines) == 7
        for line in lines:
            expected, result = invoke(line)
            assert result.exit_code == expected, (line, result.stderr)
        decision = re.search(r"# (\w+)", lines[-1])
        assert decision is not None
        assert "Next for " in result.stdout and decision[1] in result.stdout

    def test_there_are_usage_examples(self) -> None:
        assert len(readme_examples()) >= 8


class TestExamples:
    """Scripts in examples/ run against the installed package."""

    def test_weight_table(self) -> None:
        script = ROOT / "examples" / "weight_table.py"
        out = subprocess.run(
            [sys.executable, str(script), "depression", "50", "120", "10"],
            capture_output=True,
            text=True,
            check=True,
        )
        rows = out.stdout.splitlines()
        assert rows[0] == "weight_kg,total_dose_mg,draw_ml,pump_rate_ml_per_h,status,ready"
        assert "70,35,3.5,150.0,ok,true" in rows
        assert len(rows) == 9

    def test_weight_table_checks_every_row(self) -> None:
        # 400 kg x 0.5 mg/kg = 200 mg: past the weight's hard limit, so no draw and no pump rate.
        script = ROOT / "examples" / "weight_table.py"
        out = subprocess.run(
            [sys.executable, str(script), "depression", "400", "400", "1"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.splitlines()[1] == "400,200,,,hard,false"

    @pytest.mark.parametrize(
        ("output", "args", "code"),
        [
            (
                "patients-plans.csv",
                ("batch", "examples/patients.csv", "-p", "depression", "--start", "2026-11-30",
                 "--format", "csv", "--jobs", "1"),
                2,  # P-0007's weight has no unit: an error record, and the run goes on
            ),
            (
                "plan-sheet.html",
                ("plan", "-p", "depression", "--weight", "80kg", "--height", "178cm", "--sex",
                 "male", "--start", "2026-11-30", "--patient-id", "P-0001", "--price", "400-800",
                 "--format", "html"),
                0,
            ),
        ],
    )  # fmt: skip
    def test_example_outputs_are_current(
        self, output: str, args: tuple[str, ...], code: int
    ) -> None:
        """examples/ holds what these commands write today, byte for byte."""
        argv = [str(ROOT / a) if a.startswith("examples/") else a for a in args]
        result = CliRunner().invoke(app, argv)
        assert result.exit_code == code, result.stderr
        assert result.stdout_bytes == (ROOT / "examples" / output).read_bytes()


class TestForTesters:
    """The README's property test runs as written, as a tester's own test file."""

    def test_python_example_runs(self, tmp_path: Path) -> None:
        (block,) = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
        assert len([line for line in block.splitlines() if line.strip()]) <= 8
        test_file = tmp_path / "test_mine.py"
        test_file.write_text(block, encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
            capture_output=True, text=True, cwd=tmp_path, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-2000:]
        assert "1 passed" in done.stdout
