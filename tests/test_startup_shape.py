"""What a command imports to start (issue 15): module-import assertions, never timings."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

#: Runs the command line in a fresh interpreter and prints the modules it imported.
PROBE = """
import atexit, json, sys
atexit.register(lambda: sys.__stderr__.write("MODULES " + json.dumps(sorted(sys.modules)) + "\\n"))
from ketadose.cli import main
main(sys.argv[1:])
"""

DOSE = ["dose", "-p", "depression", "--weight", "80kg"]


def imported(*args: str, **environ: str) -> set[str]:
    env = {**os.environ, "COLUMNS": "100", **environ}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env
    )
    assert result.returncode in (0, 1), result.stderr  # check's soft finding exits 1
    assert result.stdout
    line = next(x for x in result.stderr.splitlines() if x.startswith("MODULES "))
    return set(json.loads(line.removeprefix("MODULES ")))


def test_a_dose_as_json_imports_neither_rich_nor_the_config_document(tmp_path: Path) -> None:
    # a user config directory without a config file (whatever this machine's user has)
    modules = imported(*DOSE, "--json", XDG_CONFIG_HOME=str(tmp_path), HOME=str(tmp_path))
    assert "ketadose.gate" in modules and "ketadose.render.json" in modules
    assert not {m for m in modules if m == "rich" or m.startswith("rich.")}
    assert "ketadose.render.config_doc" not in modules
    assert "ketadose.planning" not in modules
    # no TOML is read: the shipped libraries load from their twins, and there is no config file
    assert "tomllib" not in modules


@pytest.mark.parametrize("command", [DOSE, ["check", *DOSE[1:]]])
def test_a_table_does_not_load_rich_emoji_codes(command: list[str]) -> None:
    modules = imported(*command)
    assert "rich.table" in modules
    assert "rich._emoji_codes" not in modules
    assert "ketadose.planning" not in modules


def test_the_help_imports_no_pydantic() -> None:
    modules = imported("--help")
    assert "typer" in modules
    # (pydantic.plugin._loader is the app's own stand-in, a module of no pydantic code)
    assert "pydantic" not in modules and "pydantic.main" not in modules


@pytest.mark.parametrize("command", [DOSE, [*DOSE, "--json"], ["check", *DOSE[1:]]])
def test_a_dose_imports_neither_the_store_nor_its_database_libraries(command: list[str]) -> None:
    # SQLAlchemy, Alembic and psycopg are the store's (issue 16): a clean dose writes nothing.
    modules = imported(*command)
    assert "ketadose.gate" in modules
    roots = {m.split(".")[0] for m in modules}
    assert not roots & {"sqlalchemy", "alembic", "psycopg", "sqlite3"}
    assert "ketadose.store" not in modules
