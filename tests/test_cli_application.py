"""The application: a run builds only the command it names, and it is the same command."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.main import get_command

from ketadose.cli import app, application


def _params(command: object) -> list[tuple[str, tuple[str, ...], object]]:
    return [(p.name, tuple(p.opts), p.default) for p in command.params]  # type: ignore[attr-defined]


def _find(group: object, path: tuple[str, ...]) -> object:
    for name in path:
        group = group.commands[name]  # type: ignore[attr-defined]
    return group


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["dose", "-p", "depression", "--weight", "80kg"], ("dose",)),
        (["--tz", "Europe/Paris", "--debug", "plan", "-p", "x"], ("plan",)),
        (["--tz=UTC", "session", "record", "P1"], ("session", "record")),
        (["limits", "verify", "--examples", "10"], ("limits", "verify")),
        (["dose", "--help"], ("dose",)),  # the same help (see below)
        (["--help", "dose"], None),  # the app's help is the whole app's
        (["-h"], None),
        (["--version"], None),
        (["session"], None),  # a group alone: Click shows its help
        (["session", "recrd"], None),  # not a command: Click says so, with a suggestion
        (["dos"], None),
        ([], None),
    ],
)
def test_the_command_a_run_names(args: list[str], named: tuple[str, ...] | None) -> None:
    assert application._named(args) == named


@pytest.mark.parametrize(
    ("args", "listed"),
    [
        (["--help"], ()),
        (["-h", "dose"], ()),  # Click shows the app's help: -h is eager
        (["--tz", "UTC", "--debug", "--help"], ()),
        (["--tz=UTC", "--version"], ()),
        ([], ()),  # the app given nothing: Typer shows its help
        (["session", "--help"], ("session",)),
        (["--debug", "limits"], ("limits",)),
        (["session", "--version"], None),  # not a group's option: Click says so
        (["dose", "--help"], None),  # a command's own help: built by _named
        (["session", "record", "-h"], None),
        (["--debug"], None),  # "Missing command."
        (["dos", "--help"], None),
    ],
)
def test_the_listing_a_run_shows(args: list[str], listed: tuple[str, ...] | None) -> None:
    assert application._listed(args) == listed


@pytest.mark.parametrize("group", [(), *[(name,) for name in application.GROUPS]], ids=str)
def test_a_listing_says_what_the_whole_app_says(group: tuple[str, ...]) -> None:
    """The stand-ins' listing is the whole app's help, byte for byte."""
    from typer.testing import CliRunner

    args = [*group, "--help"]
    listed = CliRunner().invoke(application.build(group, listing=True), args)
    whole = CliRunner().invoke(app, args)
    assert whole.exit_code == listed.exit_code == 0
    assert "Commands:" in whole.output
    assert listed.output == whole.output


def test_completion_builds_the_whole_app(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_KETADOSE_COMPLETE", "bash_complete")
    assert application._named(["dose", "--weight"]) is None
    assert application._listed(["--help"]) is None


@pytest.mark.parametrize(
    "path",
    [tuple(filter(None, (group, name))) for group, name, _, _ in application.COMMANDS],
    ids=" ".join,
)
def test_a_command_built_alone_is_the_command_of_the_whole_app(path: tuple[str, ...]) -> None:
    alone = _find(get_command(application.build(path)), path)
    whole = _find(get_command(app), path)
    assert _params(alone) == _params(whole)
    assert alone.help == whole.help  # type: ignore[attr-defined]
    assert alone.callback.__wrapped__ is whole.callback.__wrapped__  # type: ignore[attr-defined]


def test_every_command_is_registered_once() -> None:
    paths = [(group, name) for group, name, _, _ in application.COMMANDS]
    assert len(paths) == len(set(paths))
    assert {group for group, _ in paths} - {None} == set(application.GROUPS)


def test_a_dose_loads_no_other_command_and_no_pydantic_plugins() -> None:
    probe = (
        "import sys\n"
        "from ketadose.cli import main\n"
        "try:\n"
        "    main(['dose', '-p', 'depression', '--weight', '80kg', '--json'])\n"
        "except SystemExit as end:\n"
        "    assert end.code == 0, end.code\n"
        "from pydantic.plugin._loader import get_plugins\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('ketadose.cli.commands.'))\n"
        "print(loaded, 'importlib.metadata' in sys.modules, tuple(get_plugins()), "
        "file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stderr.splitlines()[-1] == "['ketadose.cli.commands.dose'] False ()"


def test_the_exit_skips_the_shutdown_collections_once_registered() -> None:
    # Garbage is collected every 20,000 allocations from main on (THRESHOLDS). Registered
    # before main: an exit handler runs after those registered later (LIFO), so
    # it sees what ketadose's left. Two runs in one process register one handler; garbage is
    # still collected between them; the output file of a run is whole.
    probe = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('frozen at exit', gc.get_freeze_count() > 0, "
        "file=sys.stderr))\n"
        "from ketadose.cli import application, main\n"
        "for _ in range(2):\n"
        "    try:\n"
        "        main(['dose', '-p', 'depression', '--weight', '80kg', '--json'])\n"
        "    except SystemExit as end:\n"
        "        assert end.code == 0, end.code\n"
        "print('handlers', len(application._exit_handler), 'frozen now', "
        "gc.get_freeze_count(), gc.get_threshold() == application.THRESHOLDS, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    last = done.stderr.splitlines()[-2:]
    assert last == ["handlers 1 frozen now 0 True", "frozen at exit True"]
    assert done.stdout.count('"schema_version"') == 2  # both documents written whole
    assert done.stdout.endswith("}\n")
