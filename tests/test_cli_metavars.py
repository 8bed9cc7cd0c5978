"""--help shows what a value looks like: capitals, a form or the choices, never a Python type."""

from __future__ import annotations

import re
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from ketadose.cli import app
from ketadose.cli.metavars import FORMS


def paths(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group of the app, as the words that name it."""
    found = [path]
    for name, sub in getattr(command, "commands", {}).items():
        found += paths(sub, (*path, name))
    return found


PATHS = paths(get_command(app))
#: A readable metavar: words in capitals (FILE, DROP_FACTOR), a form (NAME[:TIME], FILE.toml)
#: or the choices (male|female).
READABLE = re.compile(r"[A-Z][A-Z0-9_]*|[a-z0-9.-]+(\|[a-z0-9.-]+)+")


class TestMetavars:
    """Every command's --help names values the way a clinician reads them."""

    def test_every_command_is_covered(self) -> None:
        assert ("dose",) in PATHS and ("session", "record") in PATHS and len(PATHS) > 20

    @pytest.mark.parametrize("path", PATHS, ids=" ".join)
    def test_help_has_no_python_types(self, path: tuple[str, ...]) -> None:
        result = CliRunner().invoke(app, [*path, "--help"])
        assert result.exit_code == 0
        options = [line for line in result.stdout.splitlines() if line.lstrip().startswith("-")]
        for line in options:
            assert "<" not in line and "list[" not in line, line

    @pytest.mark.parametrize("path", PATHS, ids=" ".join)
    def test_every_option_metavar_is_readable(self, path: tuple[str, ...]) -> None:
        command: Any = get_command(app)
        for name in path:
            command = command.commands[name]
        for param in command.params:
            if param.param_type_name == "option" and param.metavar is not None:
                value = param.metavar
                assert value in FORMS.values() or READABLE.fullmatch(value), (param.opts, value)

    def test_forms_and_choices(self) -> None:
        text = CliRunner().invoke(app, ["check", "--help"]).stdout
        assert "--med NAME[:TIME]" in text and "--weight WEIGHT" in text
        assert "--sex male|female" in text and "--protocols FILE.toml" in text
