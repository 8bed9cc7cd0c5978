"""The command line spells the fields a core error names as its flags (ketadose.cli.exits)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from ketadose.cli import app, exits
from ketadose.errors import InputError, InputField

runner = CliRunner()
PLAN = ["plan", "-p", "depression", "--weight", "80kg", "--start", "2026-11-30"]


def _options(command: Any) -> Iterator[str]:
    """Every long option of a command and its subcommands."""
    for param in command.params:
        yield from (name for name in param.opts if name.startswith("--"))
    for sub in getattr(command, "commands", {}).values():
        yield from _options(sub)


FLAGS = frozenset(_options(get_command(app)))


class TestEveryFieldHasAFlag:
    """No field the core can name falls through unspelled: each is an option a command takes."""

    @pytest.mark.parametrize("field", list(InputField), ids=lambda f: f.name)
    def test_the_flag_exists(self, field: InputField) -> None:
        assert exits.flag(field) in FLAGS

    def test_the_flags_are_distinct(self) -> None:
        assert len({exits.flag(f) for f in InputField}) == len(InputField)

    @pytest.mark.parametrize(
        ("field", "flag"),
        [
            (InputField.WEIGHT, "--weight"),
            (InputField.PUMP_STEP, "--pump-step"),
            (InputField.DROP_FACTOR, "--drop-factor"),
            (InputField.DOSING_WEIGHT, "--dosing-weight"),
            (InputField.OVERRIDE_REASON, "--override-reason"),
            (InputField.MEDICATION, "--med"),
            (InputField.SESSION_TIME, "--at"),
            (InputField.PER_WEEK, "--per-week"),
        ],
    )
    def test_by_name_or_by_the_table(self, field: InputField, flag: str) -> None:
        assert exits.flag(field) == flag

    def test_the_stderr_line_spells_flags(self, capsys: pytest.CaptureFixture[str]) -> None:
        @exits.command
        def body() -> None:
            raise InputError("give ", InputField.WEIGHT, ' or "{height}"')

        with pytest.raises(typer.Exit) as ended:
            body()
        assert ended.value.exit_code == 2
        assert capsys.readouterr().err == 'ketadose: error: give --weight or "{height}"\n'


def stderr(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    (line,) = result.stderr.splitlines()
    return line


class TestMessages:
    """Core refusals read on the command line with the flags a clinician types."""

    @pytest.mark.parametrize(
        ("args", "line"),
        [
            (
                ["dose", "-p", "depression"],
                "ketadose: error: this protocol doses by body weight: give --weight, e.g. 80kg",
            ),
            (
                ["dose", "-p", "depression", "--weight", "80kg", "--dosing-weight", "ideal"],
                "ketadose: error: dosing weight ideal needs --height and --sex (e.g. 178cm, male)",
            ),
            (
                ["dose", "-p", "depression-oral", "--weight", "80kg", "--bag", "100mL"],
                "ketadose: error: --bag does not apply to the oral route",
            ),
            (
                ["dose", "-p", "depression", "--weight", "80kg", "--strength", "10mg/mL"],
                "ketadose: error: --strength does not apply to the iv route: use --vial",
            ),
            (
                ["dose", "-p", "depression", "--weight", "80kg", "--med", "@2026-11-26T08:00"],
                'ketadose: error: --med "@2026-11-26T08:00" needs a name, e.g. lorazepam:12 '
                "(12 h since the last dose) or lorazepam@2026-11-26T08:00",
            ),
            (
                ["dose", "-p", "depression", "--weight", "80kg", "--at", "2026-13-01T09:00"],
                'ketadose: error: --at "2026-13-01T09:00" is not a date and time; '
                "write e.g. 2026-11-26T09:00",
            ),
            (
                [*PLAN, "--per-week", "9"],
                "ketadose: error: --per-week 9: 1 to 7 sessions a week",
            ),
            (
                ["plan", "-p", "depression", "--weight", "80kg", "--start", "2026-02-30"],
                'ketadose: error: --start "2026-02-30" is not a date; write e.g. 2026-11-30',
            ),
        ],
    )
    def test_line(self, args: list[str], line: str) -> None:
        assert stderr(*args) == line
