"""The Typer apps, every command's registration, ``--debug`` and ``--tz``, and :func:`main`.

Commands are registered here, in the order ``--help`` lists them; each command's body lives in
its module under :mod:`ketadose.cli.commands`, which imports the core only when it runs.
"""

import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer

from ketadose.cli import env, exits
from ketadose.cli.commands import (
    audit,
    batch,
    config,
    dose,
    history,
    limits,
    patient,
    plan,
    protocols,
    schema,
    score,
    session,
    session_record,
    simulate,
)
from ketadose.cli.exits import command
from ketadose.cli.metavars import ReadableGroup
from ketadose.cli.options import TZ_HELP
from ketadose.cli.streams import standard_streams

app = typer.Typer(
    name="ketadose",
    help="Weight-based ketamine session doses and pump programmes from a protocol library.\n\n"
    "Decision support for licensed clinicians; the shipped library is an unapproved example.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    cls=ReadableGroup,
)
patient_app = typer.Typer(
    help="Add and show pseudonymous patients in the record store.", no_args_is_help=True
)
session_app = typer.Typer(help="Record sessions given, in the record store.", no_args_is_help=True)
protocols_app = typer.Typer(
    help="List and show the protocol library, with sources and evidence.",
    no_args_is_help=True,
)
app.add_typer(protocols_app, name="protocols")
app.add_typer(patient_app, name="patient")
app.add_typer(session_app, name="session")
score_app = typer.Typer(
    help="Record and show questionnaires scored item by item (PHQ-9, GAD-7, PCL-5, MADRS).",
    no_args_is_help=True,
)
app.add_typer(score_app, name="score")
limits_app = typer.Typer(
    help="Show, validate and start a limit library (soft and hard limits, screening).",
    no_args_is_help=True,
)
app.add_typer(limits_app, name="limits")
config_app = typer.Typer(
    help="Show the clinic defaults in effect (the config file, the environment).",
    no_args_is_help=True,
)
app.add_typer(config_app, name="config")


def _version(value: bool) -> None:
    """``--version``: the package's one version, then exit 0."""
    if value:
        from ketadose import __version__

        typer.echo(f"ketadose {__version__}")
        raise typer.Exit()


@app.callback()
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


app.command(
    "dose",
    help="Compute one session's dose and pump programme for a patient, checked against the "
    "limit library.",
)(command(dose.session_command))
app.command(
    "check",
    help="Check a session (dose, patient, vitals, medications, conditions, previous sessions) "
    "against the limit library; prints the findings first.",
)(command(dose.session_command))
app.command()(plan.plan)
app.command()(simulate.simulate)
app.command()(schema.schema)
app.command()(batch.batch)
patient_app.command("add")(patient.patient_add)
patient_app.command("show")(patient.patient_show)
session_app.command("record")(session_record.session_record)
session_app.command("vitals")(session.session_vitals)
session_app.command("show")(session.session_show)
session_app.command("discharge")(session.session_discharge)
app.command()(history.history)
app.command("next")(history.next_session)
app.command()(audit.audit)
config_app.command("show")(config.config_show)
score_app.command("record")(score.score_record)
score_app.command("acknowledge")(score.score_acknowledge)
score_app.command("show")(score.score_show)
protocols_app.command("list")(protocols.protocols_list)
protocols_app.command("show")(protocols.protocols_show)
limits_app.command("show")(limits.limits_show)
limits_app.command("validate")(limits.limits_validate)
limits_app.command("verify")(limits.limits_verify)
limits_app.command("init")(limits.limits_init)


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
    with exits.entry_point():
        standard_streams()
        _main_command(list(sys.argv[1:] if argv is None else argv))


def _main_command(args: list[str]) -> None:
    from typer.main import get_command

    command = get_command(app)  # built once: checked for repeats, then run
    repeated = _repeated_option(command, args)
    if repeated is not None:
        raise exits.usage(repeated)
    with exits.parsing():
        code = command.main(args=args, prog_name="ketadose", standalone_mode=False)
    sys.exit(int(code or 0))
