"""The error hierarchy: messages built of text and fields, spelled by whoever shows them."""

from __future__ import annotations

import ast
import pickle
import re
from pathlib import Path

import pytest

import ketadose
from ketadose.errors import (
    ConfigError,
    ExitCode,
    InputError,
    InputField,
    KetadoseError,
    QuantityError,
    joined,
)
from ketadose.units import Kind, parse_as

CORE = Path(ketadose.__file__).parent


class TestSpelling:
    """A message names fields; str() spells them plainly, spelled() as the caller says."""

    def test_plain_and_spelled(self) -> None:
        error = InputError("give ", InputField.PUMP_STEP, " or ", InputField.DROP_FACTOR, ".")
        assert str(error) == "give pump step or drop factor."
        assert error.message == "give pump step or drop factor."
        assert error.spelled(lambda f: f"<{f.name}>") == "give <PUMP_STEP> or <DROP_FACTOR>."
        assert error.fields == (InputField.PUMP_STEP, InputField.DROP_FACTOR)
        assert error.exit_code is ExitCode.USAGE

    def test_text_with_braces_is_never_read_as_a_template(self) -> None:
        typed = '{weight} {0} {{}} "%s"'
        error = InputError(InputField.MEDICATION, f' "{typed}" needs a name')
        assert str(error) == f'medication "{typed}" needs a name'
        assert error.spelled(lambda f: "--med") == f'--med "{typed}" needs a name'

    def test_a_plain_message_has_no_fields(self) -> None:
        error = KetadoseError("the store is locked")
        assert (str(error), error.fields, error.args) == (
            "the store is locked",
            (),
            ("the store is locked",),
        )

    def test_joined(self) -> None:
        parts = joined([InputField.HEIGHT, InputField.SEX], " and ")
        assert parts == (InputField.HEIGHT, " and ", InputField.SEX)
        assert joined([], ", ") == ()

    def test_a_quantity_named_by_a_field_keeps_it(self) -> None:
        with pytest.raises(QuantityError) as refused:
            parse_as("5", Kind.DURATION, field=InputField.STEP)
        error = refused.value
        assert str(error) == 'time step "5" has no unit; write e.g. 40min or 4h'
        assert error.fields == (InputField.STEP,)
        assert (error.text, error.field) == ("5", InputField.STEP)

    def test_a_quantity_named_by_its_kind_is_plain_text(self) -> None:
        with pytest.raises(QuantityError) as refused:
            parse_as("80", Kind.WEIGHT)
        assert refused.value.fields == ()
        assert str(refused.value) == 'weight "80" has no unit; write e.g. 80kg or 176lb'

    def test_fields_survive_pickling(self) -> None:
        # Batch rows are planned in worker processes.
        error = pickle.loads(pickle.dumps(InputError("give ", InputField.WEIGHT)))
        assert (str(error), error.fields) == ("give weight", (InputField.WEIGHT,))

    def test_config_error_names_its_file(self) -> None:
        error = ConfigError("unknown key", path="limits.toml", location="routes.iv")
        assert str(error) == "limits.toml: routes.iv: unknown key"


def _flag_texts(tree: ast.AST) -> list[tuple[int, str]]:
    """String constants inside a call ``SomeError(...)`` that contain a ``--flag``."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = str(getattr(node.func, "id", None) or getattr(node.func, "attr", ""))
        if name.endswith("Error"):
            found += [
                (inner.lineno, inner.value)
                for inner in ast.walk(node)
                if isinstance(inner, ast.Constant)
                and isinstance(inner.value, str)
                and re.search(r"(^|[\s(\"'])--[a-z]", inner.value)
            ]
    return found


class TestTheCoreSpeaksOfFields:
    """No error the core raises writes a command-line flag: it names a field."""

    @pytest.mark.parametrize(
        "path",
        sorted(
            p
            for p in CORE.glob("*.py")
            # strategies and fuzzing build argv, not messages; the store's modules are not the core
            if p.name not in ("strategies.py", "fuzzing.py") and not p.name.startswith("store")
        ),
        ids=lambda p: p.name,
    )
    def test_no_flag_in_a_core_error(self, path: Path) -> None:
        assert _flag_texts(ast.parse(path.read_text(), str(path))) == []

    def test_the_scan_finds_a_flag(self) -> None:
        tree = ast.parse('raise InputError(f"--sessions {n}: plan 1 to 100 sessions")')
        assert _flag_texts(tree) == [(1, "--sessions ")]
