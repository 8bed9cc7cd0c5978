"""The Typer apps, every command's registration, ``--debug`` and ``--tz``, and :func:`main`.

Commands are registered here, in the order ``--help`` lists them; each command's body lives in
its module under :mod:`ketadose.cli.commands`, which imports the core only when it runs.
"""

import sys
from collections.abc import Iterator, Sequence
from typing import Annotated, Any

import typer

from ketadose.cli import env, exits
from ketadose.cli.metavars import ReadableGroup
from ketadose.cli.options import TZ_HELP
from ketadose.cli.streams import standard_streams

#: The command groups, in the order ``--help`` lists them, with their help.
GROUPS = {
    "protocols": "List and show the protocol library, with sources and evidence.",
    "patient": "Add and show pseudonymous patients in the record store.",
    "session": "Record sessions given, in the record store.",
    "score": "Record and show questionnaires scored item by item (PHQ-9, GAD-7, PCL-5, MADRS).",
    "limits": "Show, validate and start a limit library (soft and hard limits, screening).",
    "config": "Show the clinic defaults in effect (the config file, the environment).",
    "store": "Check and migrate the record store (schema, permissions, triggers, hash chains).",
    "clinician": "Register clinicians with their roles (who may override what).",
    "override": "Co-sign an override as an independent second clinician.",
}

#: Every command, in the order ``--help`` lists them: (group or None, name, the module under
#: ketadose.cli.commands and its function, the help when it is not the function's docstring).
COMMANDS: tuple[tuple[str | None, str, str, str | None], ...] = (
    (
        None,
        "dose",
        "dose.session_command",
        "Compute one session's dose and pump programme for a patient, checked against the "
        "limit library.",
    ),
    (
        None,
        "check",
        "dose.session_command",
        "Check a session (dose, patient, vitals, medications, conditions, previous sessions) "
        "against the limit library; prints the findings first.",
    ),
    (None, "plan", "plan.plan", None),
    (None, "simulate", "simulate.simulate", None),
    (None, "schema", "schema.schema", None),
    (None, "batch", "batch.batch", None),
    ("patient", "add", "patient.patient_add", None),
    ("patient", "show", "patient.patient_show", None),
    ("session", "record", "session_record.session_record", None),
    ("session", "vitals", "session.session_vitals", None),
    ("session", "show", "session.session_show", None),
    ("session", "discharge", "session.session_discharge", None),
    (None, "history", "history.history", None),
    (None, "next", "history.next_session", None),
    (None, "audit", "audit.audit", None),
    ("config", "show", "config.config_show", None),
    ("store", "check", "store.store_check", None),
    ("store", "migrate", "store.store_migrate", None),
    ("clinician", "add", "clinician.clinician_add", None),
    ("clinician", "list", "clinician.clinician_list", None),
    ("clinician", "policy", "clinician.clinician_policy", None),
    ("override", "cosign", "clinician.override_cosign", None),
    ("score", "record", "score.score_record", None),
    ("score", "acknowledge", "score.score_acknowledge", None),
    ("score", "show", "score.score_show", None),
    ("protocols", "list", "protocols.protocols_list", None),
    ("protocols", "show", "protocols.protocols_show", None),
    ("limits", "show", "limits.limits_show", None),
    ("limits", "validate", "limits.limits_validate", None),
    ("limits", "verify", "limits.limits_verify", None),
    ("limits", "init", "limits.limits_init", None),
)


def _version(value: bool) -> None:
    """``--version``: the package's one version, then exit 0."""
    if value:
        from ketadose import __version__

        typer.echo(f"ketadose {__version__}")
        raise typer.Exit()


def _main(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks of internal errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            help="Show the version and exit.",
        ),
    ] = False,
    tz: Annotated[str | None, typer.Option("--tz", metavar="ZONE", help=TZ_HELP)] = None,
) -> None:
    exits.set_debug(debug)
    env.set_app_tz(tz)


def build(only: tuple[str, ...] | None = None, *, listing: bool = False) -> typer.Typer:
    """The Typer app: every command, or (``only``) just the one a run names, or a group's.

    A run builds, and imports the module of, only the command it runs: Click would otherwise
    build all of them on every start (about a tenth of ``dose --json``'s start-up). ``only`` is
    ``("dose",)``, ``("session", "record")`` or a group, ``("session",)``; completion and a
    name that is not a command get the whole app, so what they say is unchanged.

    ``listing`` is for a run that only lists commands (the app's or a group's help): each
    command is then a stand-in with the command's help and no options, since building every
    command's options is most of what ``ketadose --help`` would cost.
    """
    import importlib

    app = typer.Typer(
        name="ketadose",
        help="Weight-based ketamine session doses and pump programmes from a protocol "
        "library.\n\nDecision support for licensed clinicians; the shipped library is an "
        "unapproved example.",
        no_args_is_help=True,
        add_completion=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
        cls=ReadableGroup,
    )
    app.callback()(_main)
    groups = {
        name: typer.Typer(help=text, no_args_is_help=True)
        for name, text in GROUPS.items()
        if not only or only[0] == name
    }
    for name, group in groups.items():
        app.add_typer(group, name=name)
    for group_name, name, target, text in COMMANDS:
        if only is not None and _path(group_name, name)[: len(only)] != only:
            continue
        module, function = target.split(".")
        body = getattr(importlib.import_module(f"ketadose.cli.commands.{module}"), function)
        owner = app if group_name is None else groups[group_name]
        owner.command(name, help=text)(_stand_in(body) if listing else body)
    return app


def _stand_in(body: Any) -> Any:
    """A command's stand-in in a listing: its help, and no options (it is never run)."""

    def listed() -> None:
        raise AssertionError("a listing's stand-in is never run")  # pragma: no cover

    listed.__doc__ = body.__doc__
    return listed


def _path(group: str | None, name: str) -> tuple[str, ...]:
    """A command's words: ``("dose",)``, ``("session", "record")``."""
    return (name,) if group is None else (group, name)


def _without_app_options(args: list[str]) -> Iterator[str]:
    """The arguments without the app's own options (``--debug``, ``--tz ZONE``, ``--tz=ZONE``)."""
    rest = iter(args)
    for arg in rest:
        if arg == "--tz":
            next(rest, None)  # the app's --tz takes a value
        elif arg != "--debug" and not arg.startswith("--tz="):
            yield arg


def _named(args: list[str]) -> tuple[str, ...] | None:
    """The command a run names (``("dose",)``, ``("session", "record")``), if it names one.

    None (build everything) for the app's help or completion, or when the words before the
    options do not name a command (Click then says what is wrong, as always).
    """
    if env.completing():
        return None
    words: list[str] = []
    for arg in _without_app_options(args):
        if arg in ("-h", "--help", "--version"):
            return None
        if arg.startswith("-") or len(words) == 2:
            break
        words.append(arg)
        if len(words) == 1 and arg not in GROUPS:
            break
    named = tuple(words)
    return named if named in {_path(group, name) for group, name, _, _ in COMMANDS} else None


def _listed(args: list[str]) -> tuple[str, ...] | None:
    """The app or group whose commands a run only lists: ``()``, ``("session",)``, or None.

    That is its help (``-h``, ``--help``; ``--version`` at the app), or the app or a group given
    no arguments (Typer then shows its help); the commands are then never run.
    """
    if env.completing():
        return None
    words: list[str] = []
    for arg in _without_app_options(args):
        if arg in ("-h", "--help") or (arg == "--version" and not words):
            return tuple(words)
        if words or arg not in GROUPS:
            return None  # a command, a group's command, or a mistake Click names
        words.append(arg)
    return tuple(words) if words or not args else None


def _repeated_option(command: Any, args: list[str]) -> str | None:
    """Name an option that takes one value but was given twice (``--weight 80kg --weight 40kg``).

    Click would silently keep the last one; for a dose that is an ambiguous input.
    """
    rest = list(args)
    while rest and isinstance(getattr(command, "commands", None), dict):
        names = [a for a in rest if not a.startswith("-")]
        if not names or names[0] not in command.commands:
            break
        command = command.commands[names[0]]
        rest = rest[rest.index(names[0]) + 1 :]
    for param in command.params:
        if getattr(param, "multiple", False) or getattr(param, "is_flag", False):
            continue
        opts = [o for o in param.opts if o.startswith("-")]
        count = sum(1 for a in rest if a in opts or any(a.startswith(f"{o}=") for o in opts))
        if count > 1:
            return f"{max(opts, key=len)} is given {count} times; give it once"
    return None


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point (``ketadose``, ``python -m ketadose``).

    Typer reports a usage error (unknown option, bad choice, missing value) in four lines;
    here it becomes the one ``ketadose: error:`` line every other error is, with exit 2.
    Ctrl-C anywhere is one ``ketadose: interrupted`` line and exit 130.

    Args:
        argv: The arguments after the program's name (default: ``sys.argv[1:]``).
    """
    import gc

    with exits.entry_point():
        standard_streams()
        _without_pydantic_plugins()
        _no_collection_at_exit()
        gc.set_threshold(*THRESHOLDS)
        _main_command(list(sys.argv[1:] if argv is None else argv))


#: Garbage-collection thresholds from the start of a run on. Importing the core, pydantic and
#: the libraries makes hundreds of thousands of objects and almost no garbage; at Python's
#: default (a collection every 700 allocations) the collector walks them again and again for
#: nothing (~15 M instructions of a ``dose --json`` run). Collected every 20,000 allocations
#: (as the batch does, ``ketadose.parallel.THRESHOLDS``), a run's cycles are still collected,
#: just rarely. Kept after the command (the process ends; giving the default back would make
#: the next allocation collect everything once).
THRESHOLDS = (20_000, 20, 20)


def _no_collection_at_exit() -> None:
    """At the process's exit, skip the garbage collections of Python's shutdown.

    When the interpreter ends, it collects garbage several times while it tears the modules
    down, walking every object still alive (typer's, pydantic's, the libraries: ~53 M
    instructions of a ``dose --json`` run of ~980 M) to find cycles the operating system is
    about to free anyway. Frozen by an exit handler, they are not walked; every object is
    still released by its reference count as the modules go, so files are closed and flushed
    as before (ketadose closes its files and stores in ``with`` blocks, not by collection).
    Registered once; it runs only when the process ends, so a program or a test suite that
    calls :func:`main` many times collects garbage as usual until then.
    """
    import atexit
    import gc

    if not _exit_handler:
        atexit.register(gc.freeze)
        _exit_handler.append(gc.freeze)


#: Whether :func:`_no_collection_at_exit` registered its handler in this process.
_exit_handler: list[object] = []


def _without_pydantic_plugins() -> None:
    """Run the command line without pydantic plugins.

    Pydantic loads a plugin from any installed package's ``pydantic`` entry point and runs it
    on every validation; a dosing tool's validation is not to be changed by whatever else is
    installed. Looking the entry points up also costs ``importlib.metadata``, about 5 % of a
    dose's start-up. The library, imported by a program of its own, leaves plugins as that
    program has them.
    """
    import types

    loader = types.ModuleType("pydantic.plugin._loader")
    loader.get_plugins = tuple  # type: ignore[attr-defined]  # no plugins: ()
    sys.modules.setdefault("pydantic.plugin._loader", loader)


def _main_command(args: list[str]) -> None:
    from typer.main import get_command

    listed = _listed(args)
    app = build(listed, listing=True) if listed is not None else build(_named(args))
    command = get_command(app)  # built once: checked for repeats, then run
    repeated = _repeated_option(command, args)
    if repeated is not None:
        raise exits.usage(repeated)
    with exits.parsing():
        code = command.main(args=args, prog_name="ketadose", standalone_mode=False)
    sys.exit(int(code or 0))


def __getattr__(name: str) -> typer.Typer:
    """``app``, the whole Typer app (CliRunner tests, documentation), built on first use."""
    if name == "app":
        globals()["app"] = whole = build()
        return whole
    raise AttributeError(name)
