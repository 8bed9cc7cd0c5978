"""The arrows hold: the core never reaches the edge, render never reaches the store or the edge.

An AST scan of every module of the package (imports at any depth, lazy ones included): the
core (everything but ``ketadose.cli``, ``ketadose.render`` and the ``__main__`` entry point)
imports neither typer, rich, the renderers, the store nor the command line; the renderers
import neither the command line nor the store; and only the edge environment reads the
process environment, the wall clock or the OS user.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ketadose"
#: The modules that may read os.environ, the clock and the OS user: the edge environment.
EDGE_ENVIRONMENT = {"ketadose.cli.env"}


def modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return found


MODULES = modules()


def imports(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def reaches(names: set[str], *prefixes: str) -> list[str]:
    return sorted(n for n in names if any(n == p or n.startswith(f"{p}.") for p in prefixes))


def is_edge(name: str) -> bool:
    return name == "ketadose.__main__" or name.startswith(("ketadose.cli", "ketadose.render"))


def is_store(name: str) -> bool:
    """The store's own modules: the store, its SQL, URLs, PostgreSQL schema and migrations."""
    return name.startswith(("ketadose.store", "ketadose.migrations"))


CORE = sorted(name for name in MODULES if not is_edge(name))
RENDER = sorted(name for name in MODULES if name.startswith("ketadose.render"))


def test_the_scan_sees_the_package() -> None:
    assert {"ketadose.gate", "ketadose.dosing", "ketadose.store"} <= set(CORE)
    assert {"ketadose.render.table", "ketadose.render.fhir"} <= set(RENDER)


@pytest.mark.parametrize("name", CORE)
def test_core_never_imports_the_edge(name: str) -> None:
    banned = ("typer", "rich", "ketadose.render", "ketadose.store", "ketadose.cli")
    found = reaches(imports(MODULES[name]), *banned)
    if is_store(name):  # the store is core, imported by the edge; its modules use each other
        found = [n for n in found if not n.startswith("ketadose.store")]
    assert found == [], f"{name} imports {found}"


@pytest.mark.parametrize("name", RENDER)
def test_render_never_imports_the_command_line_or_the_store(name: str) -> None:
    found = reaches(imports(MODULES[name]), "ketadose.cli", "ketadose.store")
    assert found == [], f"{name} imports {found}"


def reads_the_environment(tree: ast.Module) -> list[str]:
    """``os.environ``/``os.getenv``, ``getpass``, ``datetime.now``/``date.today``, ``time.time``."""
    seen: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            owner = node.value.id if isinstance(node.value, ast.Name) else None
            pair = (owner, node.attr)
            if pair in {
                ("os", "environ"),
                ("os", "getenv"),
                ("getpass", "getuser"),
                ("pwd", "getpwuid"),
                ("os", "geteuid"),
                ("datetime", "now"),
                ("datetime", "utcnow"),
                ("date", "today"),
                ("time", "time"),
            }:
                seen.append((node.lineno, f"{owner}.{node.attr} (line {node.lineno})"))
    return [text for _, text in sorted(seen)]


@pytest.mark.parametrize("name", sorted(set(MODULES) - EDGE_ENVIRONMENT))
def test_only_the_edge_environment_reads_environment_clock_or_user(name: str) -> None:
    assert reads_the_environment(MODULES[name]) == []


def test_the_check_finds_a_read() -> None:
    tree = ast.parse(
        "import os\nos.environ.get('X')\nfrom datetime import datetime\ndatetime.now()\n"
    )
    assert reads_the_environment(tree) == ["os.environ (line 2)", "datetime.now (line 4)"]
